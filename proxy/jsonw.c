/*
 * jsonw: JSON text into a growing buffer. See jsonw.h.
 */
#include "proxy/jsonw.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;   /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;   /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

void jw_string(jsonw *w, const char *str, size_t n)
{
    /* worst case: every byte becomes \u00XX (6) or U+FFFD (3 for 1) */
    if (!textbuf_reserve(w, n * 6 + 2))
        return;
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)str, *end = p + n;
    char *o = w->s + w->len;
    *o++ = '"';
    while (p < end) {
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_len(p, (size_t)(end - p));
            if (l) {
                memcpy(o, p, l);
                o += l;
                p += l;
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3);   /* U+FFFD for a byte that is not UTF-8 */
                o += 3;
                p++;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        p++;
    }
    *o++ = '"';
    w->len = (size_t)(o - w->s);
    w->s[w->len] = 0;
}

void jw_key(jsonw *w, const char *key)
{
    size_t k = strlen(key);
    if (!textbuf_reserve(w, k + 4))
        return;
    char *o = w->s + w->len;
    if (w->len && w->s[w->len - 1] != '{')
        *o++ = ',';
    *o++ = '"';
    memcpy(o, key, k);   /* keys are ours: plain ASCII, nothing to escape */
    o += k;
    *o++ = '"';
    *o++ = ':';
    w->len = (size_t)(o - w->s);
    w->s[w->len] = 0;
}

void jw_strn(jsonw *w, const char *key, const char *value, size_t n)
{
    jw_key(w, key);
    if (value)
        jw_string(w, value, n);
    else
        jw_raw(w, "null", 4);
}

void jw_str(jsonw *w, const char *key, const char *value)
{
    jw_strn(w, key, value, value ? strlen(value) : 0);
}

/* Decimal digits of v into the end of buf[24]; returns where they start
 * (two records a statement: printf's machinery costs more than this). */
static char *digits_of(unsigned long long v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

void jw_int(jsonw *w, const char *key, long long value)
{
    char buf[24], *end = buf + sizeof buf;
    unsigned long long mag = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    char *p = digits_of(mag, end);
    if (value < 0)
        *--p = '-';
    jw_key(w, key);
    jw_raw(w, p, (size_t)(end - p));
}

void jw_ms(jsonw *w, const char *key, double ms)
{
    /* microseconds as an integer, then the decimal point put in by hand */
    if (!(ms > 0))
        ms = 0;
    if (ms > 1e15)
        ms = 1e15;
    unsigned long long us = (unsigned long long)(ms * 1000.0 + 0.5);
    char buf[24], *end = buf + sizeof buf;
    char *p = end - 3;
    for (int i = 0; i < 3; i++, us /= 10)
        p[2 - i] = (char)('0' + us % 10);
    *--p = '.';
    p = digits_of(us, p);
    jw_key(w, key);
    jw_raw(w, p, (size_t)(end - p));
}

void jw_bool(jsonw *w, const char *key, bool value)
{
    jw_key(w, key);
    if (value)
        jw_raw(w, "true", 4);
    else
        jw_raw(w, "false", 5);
}

void jw_null(jsonw *w, const char *key)
{
    jw_key(w, key);
    jw_raw(w, "null", 4);
}

void jw_strs(jsonw *w, const char *key, const char *const *values, size_t n)
{
    jw_key(w, key);
    jw_raw(w, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            jw_raw(w, ",", 1);
        jw_string(w, values[i], strlen(values[i]));
    }
    jw_raw(w, "]", 1);
}
