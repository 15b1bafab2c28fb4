/*
 * textbuf: the one growing byte buffer of martgate (SQL built by policy/,
 * JSON audit records, decision-memo keys). Always NUL-terminated once
 * anything was added; an allocation failure sets `oom` and every later append
 * is ignored, so a builder checks once at the end instead of at every call.
 * A buffer may also live in caller-provided storage that it never outgrows
 * (textbuf_fixed): past its size it fails the same way.
 */
#ifndef MARTGATE_TEXTBUF_H
#define MARTGATE_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct textbuf {
    char *s;       /* NUL-terminated when len > 0 */
    size_t len, cap;
    bool oom;      /* an append failed: the text is incomplete */
    bool fixed;    /* s is the caller's storage: never realloc'd or freed */
} textbuf;

/* A buffer over storage[size] (size > 0) that never grows. */
static inline textbuf textbuf_fixed(char *storage, size_t size)
{
    textbuf b = {storage, 0, size, false, true};
    storage[0] = '\0';
    return b;
}

bool textbuf_reserve_slow(textbuf *b, size_t more) __attribute__((warn_unused_result));
/* Room for `more` bytes and the NUL; false (and oom set) when there is none.
 * Inline: the JSON writer asks before every value of every audit record. */
static inline __attribute__((warn_unused_result)) bool textbuf_reserve(textbuf *b, size_t more)
{
    if (!b->oom && more < b->cap - b->len)   /* len < cap always holds: room for the NUL */
        return true;
    return textbuf_reserve_slow(b, more);
}
/* Appends n bytes (inline: the audit writer and the decision memo's key
 * call it for every value, and a call would cross a library). */
static inline void textbuf_addn(textbuf *b, const void *data, size_t n)
{
    if (!textbuf_reserve(b, n))
        return;
    memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
}
void textbuf_add(textbuf *b, const char *s);
static inline void textbuf_addc(textbuf *b, char c)
{
    textbuf_addn(b, &c, 1);
}
void textbuf_addf(textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties, keeps the memory. */
void textbuf_reset(textbuf *b);
void textbuf_free(textbuf *b);
/* The text, malloc'd and now the caller's, or NULL after a failure (the
 * buffer is freed either way). Not for fixed buffers. */
char *textbuf_finish(textbuf *b) __attribute__((warn_unused_result));

/* Copies the strings v[0..n) (NULL entries stay NULL) into one allocation
 * and points v at the copies: what a long-lived holder of a few short strings
 * keeps (one allocation instead of n). Returns the block to free, or NULL out
 * of memory, v untouched. */
char *text_pack(const char **v, size_t n) __attribute__((warn_unused_result));

#endif
