/*
 * schema_list: schema names without duplicates. See schema_list.h.
 */
#include "proxy/schema_list.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void schema_list_clear(schema_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static bool list_has(const schema_list *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

int schema_list_add(schema_list *l, const char *s)
{
    if (list_has(l, s))
        return 0;
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

int schema_list_set(schema_list *l, const char *const *v, size_t n)
{
    schema_list_clear(l);
    for (size_t i = 0; i < n; i++)
        if (schema_list_add(l, v[i]) != 0)
            return -1;
    return 0;
}

int schema_list_copy(schema_list *dst, const schema_list *src)
{
    return schema_list_set(dst, (const char *const *)src->v, src->n);
}

int schema_list_union(schema_list *dst, const schema_list *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (schema_list_add(dst, src->v[i]) != 0)
            return -1;
    return 0;
}

/* Splits a search_path value as SHOW prints it: identifiers separated by
 * commas, double-quoted ones with "" for a quote. */
int schema_list_parse_search_path(const char *text, schema_list *out)
{
    schema_list_clear(out);
    const char *p = text;
    char buf[256];
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t n = 0;
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"')
                    p++;
                if (n + 1 >= sizeof buf)
                    return -1;
                buf[n++] = *p++;
            }
            if (*p != '"')
                return -1;
            p++;
        } else {
            while (*p && *p != ',' && *p != ' ') {
                if (n + 1 >= sizeof buf)
                    return -1;
                buf[n++] = *p++;
            }
        }
        buf[n] = 0;
        if (n && schema_list_add(out, buf) != 0)
            return -1;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return 0;
}
