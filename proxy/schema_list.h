/*
 * schema_list: a list of schema names without duplicates, and the parser of
 * a search_path value as SHOW prints it. The guard's search_path values
 * (startup, committed, effective, what a statement may set) are these.
 */
#ifndef MARTGATE_SCHEMA_LIST_H
#define MARTGATE_SCHEMA_LIST_H

#include <stddef.h>

/* Owned strings, in the order added. */
typedef struct {
    char **v;
    size_t n;
} schema_list;

void schema_list_clear(schema_list *l);
int schema_list_add(schema_list *l, const char *s) __attribute__((warn_unused_result));
int schema_list_set(schema_list *l, const char *const *v, size_t n)
    __attribute__((warn_unused_result));
int schema_list_copy(schema_list *dst, const schema_list *src) __attribute__((warn_unused_result));
/* Adds every name of src that dst does not hold. */
int schema_list_union(schema_list *dst, const schema_list *src) __attribute__((warn_unused_result));
/* Splits a search_path value as SHOW prints it into out; 0, or -1 when
 * malformed (out then holds a prefix of it). */
int schema_list_parse_search_path(const char *text, schema_list *out)
    __attribute__((warn_unused_result));

#endif
