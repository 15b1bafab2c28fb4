/*
 * textbuf: see textbuf.h.
 */
#include "common/textbuf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"

bool textbuf_reserve_slow(textbuf *b, size_t more)
{
    if (b->oom)
        return false;
    if (more < b->cap - b->len)
        return true;
    if (b->fixed || more > (size_t)-1 / 2 - b->len) {
        b->oom = true;
        return false;
    }
    char *grown = grow_array(b->s, &b->cap, b->len + more + 1, 1, 256);
    if (!grown) {
        b->oom = true;
        return false;
    }
    b->s = grown;
    return true;
}

void textbuf_add(textbuf *b, const char *s)
{
    textbuf_addn(b, s, strlen(s));
}

void textbuf_addf(textbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        textbuf_addn(b, small, (size_t)n);
        return;
    }
    if (!textbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void textbuf_reset(textbuf *b)
{
    b->len = 0;
    b->oom = false;
    if (b->s)
        b->s[0] = '\0';
}

void textbuf_free(textbuf *b)
{
    if (!b->fixed) {
        free(b->s);
        b->s = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->oom = false;
}

char *textbuf_finish(textbuf *b)
{
    assert(!b->fixed);
    if (textbuf_reserve(b, 0))
        b->s[b->len] = '\0';
    char *s = b->oom ? NULL : b->s;
    if (!s)
        free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    b->oom = false;
    return s;
}

char *text_pack(const char **v, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i] ? strlen(v[i]) + 1 : 0;
    char *block = malloc(total ? total : 1), *at = block;
    if (!block)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!v[i])
            continue;
        size_t len = strlen(v[i]) + 1;
        memcpy(at, v[i], len);
        v[i] = at;
        at += len;
    }
    return block;
}
