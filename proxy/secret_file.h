/*
 * secret_file: reads a small secret (a password) from a file: at most a few
 * KiB, one trailing newline (or CRLF) stripped, the stack copy wiped.
 */
#ifndef MARTGATE_SECRET_FILE_H
#define MARTGATE_SECRET_FILE_H

#include <stddef.h>

/* malloc'ed secret, or NULL with why filled ("cannot open x: ...", "x is
 * larger than 4095 bytes"). */
char *secret_file_read(const char *path, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/* The same with its length (*len; NUL bytes kept, a NUL added after). */
char *secret_file_read_len(const char *path, size_t *len, char *why, size_t whylen)
    __attribute__((warn_unused_result));

#endif
