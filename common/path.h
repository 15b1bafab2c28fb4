/*
 * path: file names in configuration and policy files are relative to the
 * directory of the file that names them; this is the one rule for that.
 */
#ifndef MARTGATE_PATH_H
#define MARTGATE_PATH_H

/* path as is when absolute or when base_dir is NULL or empty, else
 * base_dir/path (one slash between). malloc'd; NULL when out of memory. */
char *path_resolve(const char *base_dir, const char *path) __attribute__((warn_unused_result));

#endif
