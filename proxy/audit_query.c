/*
 * audit_query: what the audit writer makes of a statement's text: the
 * fingerprint (libpg_query) and, by query_text mode, the normalized text
 * (constants as $n, policy/analyze's shape), the full text or none.
 * Memoized per writer thread.
 */
#include "proxy/audit_query.h"
#include "common/text_hash.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/analyze.h"

/* The writer's memos, direct-mapped and bounded; only the writer thread
 * touches them. By exact text: the normalized text (prepared statements and
 * BI tools repeat the same text). By normalized text: the fingerprint
 * (queries that differ only in their constants share it). */
#define QUERY_MEMO_SLOTS 1024
#define QUERY_MEMO_MAX_TEXT 4096

typedef struct query_memo {
    uint64_t hash;
    char *text;
    char *value;            /* normalized text, or the fingerprint ("" = does not parse) */
} query_memo;

static _Thread_local query_memo *memo_text;
static _Thread_local query_memo *memo_shape;

static void memo_table_free(query_memo **t)
{
    for (size_t i = 0; *t && i < QUERY_MEMO_SLOTS; i++) {
        free((*t)[i].text);
        free((*t)[i].value);
    }
    free(*t);
    *t = NULL;
}

void audit_query_memo_free(void)
{
    memo_table_free(&memo_text);
    memo_table_free(&memo_shape);
}

/* The value memoized for text, or NULL; *slot is where to store one (NULL
 * when the text is too long to memoize). */
static const char *memo_get(query_memo **t, const char *text, size_t n, query_memo **slot)
{
    *slot = NULL;
    if (n > QUERY_MEMO_MAX_TEXT)
        return NULL;
    if (!*t && !(*t = calloc(QUERY_MEMO_SLOTS, sizeof **t)))
        return NULL;
    uint64_t h = text_hash(text, n);
    query_memo *m = &(*t)[h % QUERY_MEMO_SLOTS];
    *slot = m;
    if (m->text && m->hash == h && strlen(m->text) == n && !memcmp(m->text, text, n))
        return m->value;
    return NULL;
}

static void memo_put(query_memo *m, const char *text, size_t n, const char *value)
{
    if (!m)
        return;
    char *t = strndup(text, n), *v = strdup(value);
    if (!t || !v) {
        free(t);
        free(v);
        return;
    }
    free(m->text);
    free(m->value);
    m->hash = text_hash(text, n);
    m->text = t;
    m->value = v;
}

/* The fingerprint of a statement from its normalized text, memoized by that
 * text. libpg_query's fingerprint ignores constants and treats $n alike, so
 * the normalized text has the statement's own; where a placeholder stands
 * where only a literal may (INTERVAL $1), the original text gives it.
 * "" when neither parses. */
static void fingerprint_of(const char *query, const char *normalized, size_t nlen, char out[17])
{
    query_memo *slot;
    const char *known = memo_get(&memo_shape, normalized, nlen, &slot);
    if (known) {
        snprintf(out, 17, "%s", known);
        return;
    }
    char err[64];
    if (analyze_fingerprint(normalized, NULL, out, err, sizeof err) != 0 &&
        analyze_fingerprint(query, NULL, out, err, sizeof err) != 0)
        out[0] = 0;
    memo_put(slot, normalized, nlen, out);
}

void audit_query_members(audit_query_mode mode, const char *query, size_t qlen, const char *normalized,
                         size_t nlen, jsonw *w)
{
    char *made = NULL;
    if (!normalized) {
        query_memo *slot;
        normalized = memo_get(&memo_text, query, qlen, &slot);
        if (!normalized && analyze_normalize(query, &made, NULL, 0) == 0) {
            memo_put(slot, query, qlen, made);
            normalized = made;
        }
        nlen = normalized ? strlen(normalized) : 0;
    }
    char fp[17] = "";
    if (normalized)
        fingerprint_of(query, normalized, nlen, fp);
    bool parsed = fp[0] != 0;
    if (parsed)
        jw_str(w, "fingerprint", fp);
    else
        jw_null(w, "fingerprint");
    switch (mode) {
    case AUDIT_QUERY_NORMALIZED:
        /* a text the parser rejects never leaks, not even normalized */
        if (parsed)
            jw_strn(w, "query", normalized, nlen);
        else
            jw_null(w, "query");
        break;
    case AUDIT_QUERY_FULL:
        jw_strn(w, "query", query, qlen);
        break;
    case AUDIT_QUERY_NONE:
        break;
    }
    if (!parsed)
        jw_bool(w, "query_unparsable", true);
    free(made);
}
