/*
 * jsonw: JSON text written straight into a growing buffer, for the audit
 * records built on the hot path (one per statement): no tree, no allocation
 * per value. Strings are escaped as JSON requires, and a byte sequence that
 * is not valid UTF-8 becomes U+FFFD, so a record is always valid JSON on one
 * line whatever a client sent.
 *
 * Members are written as `"key":value` with a comma before each, except at
 * the start of the buffer or right after a '{'; the caller adds the braces
 * (the audit writer appends the query's own members before closing a record).
 */
#ifndef MARTGATE_JSONW_H
#define MARTGATE_JSONW_H

#include <stdbool.h>
#include <stddef.h>

#include "common/textbuf.h"

/* A jsonw is a common/textbuf: s, len, oom as there. */
typedef textbuf jsonw;

static inline void jw_reset(jsonw *w) { textbuf_reset(w); }   /* empties, keeps the memory */
static inline void jw_free(jsonw *w) { textbuf_free(w); }
static inline void jw_raw(jsonw *w, const char *s, size_t n) { textbuf_addn(w, s, n); }
/* A JSON string of n bytes of s. */
void jw_string(jsonw *w, const char *s, size_t n);

/* Members: "key":value. A NULL string is written as null. */
void jw_str(jsonw *w, const char *key, const char *value);
void jw_strn(jsonw *w, const char *key, const char *value, size_t n);
void jw_int(jsonw *w, const char *key, long long value);
void jw_ms(jsonw *w, const char *key, double ms);   /* milliseconds, to the microsecond */
void jw_bool(jsonw *w, const char *key, bool value);
void jw_null(jsonw *w, const char *key);
void jw_strs(jsonw *w, const char *key, const char *const *values, size_t n);
/* "key": and nothing else: the caller writes the value. */
void jw_key(jsonw *w, const char *key);

#endif
