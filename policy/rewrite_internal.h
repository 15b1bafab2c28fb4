/*
 * rewrite_internal: the growing text buffer rewrite.c and catalog_filter.c
 * build SQL in, with quote_ident / quote_literal appenders. Not for use
 * outside policy/rewrite.
 */
#ifndef MARTGATE_REWRITE_INTERNAL_H
#define MARTGATE_REWRITE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rbuf {
    char *data;
    size_t len, cap;
    bool failed;            /* out of memory: every later append is ignored */
} rbuf;

bool rbuf_grow(rbuf *b, size_t more);
void rbuf_addn(rbuf *b, const char *s, size_t n);
void rbuf_add(rbuf *b, const char *s);
void rbuf_addf(rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rbuf_add_ident(rbuf *b, const char *name);
void rbuf_add_literal(rbuf *b, const char *value);
/* The text (malloc'd, caller frees), or NULL after a failure (freed). */
char *rbuf_finish(rbuf *b);

#endif
