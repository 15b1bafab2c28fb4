/*
 * audit_query: what the audit writer makes of a statement's text: the
 * fingerprint (libpg_query) and, by query_text mode, the normalized text
 * (constants as $n), the full text or none. Memoized per writer thread.
 */
#include "proxy/audit_query.h"

#include <pg_query.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The writer's memo of fingerprint and normalized text by exact query text:
 * prepared statements and BI tools repeat the same text, and each miss costs
 * two parses. Direct-mapped, bounded; only the writer thread touches it. */
#define QUERY_MEMO_SLOTS 1024
#define QUERY_MEMO_MAX_TEXT 4096

typedef struct query_memo {
    uint64_t hash;
    char *text;
    char fingerprint[17];   /* "" when the text does not parse */
    char *normalized;       /* NULL when it does not parse */
} query_memo;

static _Thread_local query_memo *memo;        /* by exact text */
static _Thread_local query_memo *memo_shape;  /* fingerprint by normalized text */

static uint64_t text_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void memo_table_free(query_memo **t)
{
    for (size_t i = 0; *t && i < QUERY_MEMO_SLOTS; i++) {
        free((*t)[i].text);
        free((*t)[i].normalized);
    }
    free(*t);
    *t = NULL;
}

void audit_query_memo_free(void)
{
    memo_table_free(&memo);
    memo_table_free(&memo_shape);
}

/* The slot of `text` in table t (allocated on first use); *hit when it
 * already holds that text. NULL when the text is too long to memoize. */
static query_memo *memo_slot(query_memo **t, const char *text, bool *hit)
{
    size_t n = strlen(text);
    *hit = false;
    if (n > QUERY_MEMO_MAX_TEXT)
        return NULL;
    if (!*t && !(*t = calloc(QUERY_MEMO_SLOTS, sizeof **t)))
        return NULL;
    uint64_t h = text_hash(text, n);
    query_memo *m = &(*t)[h % QUERY_MEMO_SLOTS];
    if (m->text && m->hash == h && !strcmp(m->text, text)) {
        *hit = true;
        return m;
    }
    free(m->text);
    free(m->normalized);
    memset(m, 0, sizeof *m);
    m->hash = h;
    m->text = strdup(text);
    return m;
}

/* libpg_query's fingerprint ignores constants and treats $n like them, so
 * the fingerprint of the normalized text is the statement's own: queries
 * that differ only in literals cost one parse (the normalization), not two. */
static void fingerprint_of_shape(const char *normalized, char out[17])
{
    bool hit;
    query_memo *m = memo_slot(&memo_shape, normalized, &hit);
    if (m && hit) {
        memcpy(out, m->fingerprint, 17);
        return;
    }
    out[0] = 0;
    PgQueryFingerprintResult fr = pg_query_fingerprint(normalized);
    if (!fr.error && fr.fingerprint_str)
        snprintf(out, 17, "%s", fr.fingerprint_str);
    pg_query_free_fingerprint_result(fr);
    if (m)
        memcpy(m->fingerprint, out, 17);
}

/* Fingerprint and normalized text of `text`: from the memo, or one
 * normalization (a parse) plus the fingerprint of its shape. */
static const query_memo *query_facts(const char *text, query_memo *scratch)
{
    bool hit;
    query_memo *m = memo_slot(&memo, text, &hit);
    if (m && hit)
        return m;
    if (!m)
        m = scratch;
    PgQueryNormalizeResult nr = pg_query_normalize(text);
    if (!nr.error && nr.normalized_query) {
        m->normalized = strdup(nr.normalized_query);
        if (m->normalized)
            fingerprint_of_shape(m->normalized, m->fingerprint);
    }
    pg_query_free_normalize_result(nr);
    return m;
}

/* Applies the query_text mode to one record: normalized text or none, and the
 * fingerprint. A query libpg_query cannot parse never leaks its text in
 * normalized mode. */
void audit_apply_query_mode(audit_query_mode mode, json_t *rec)
{
    json_t *q = json_object_get(rec, "query");
    if (!json_is_string(q))
        return;
    const char *text = json_string_value(q);
    query_memo scratch = {0};
    const query_memo *m = query_facts(text, &scratch);
    bool parsed = m->fingerprint[0] != 0;
    json_object_set_new(rec, "fingerprint", parsed ? json_string(m->fingerprint) : json_null());
    switch (mode) {
    case AUDIT_QUERY_NORMALIZED: {
        json_t *norm = m->normalized ? json_string(m->normalized) : NULL;
        if (norm) {
            json_object_set_new(rec, "query", norm);
        } else {
            json_object_set_new(rec, "query", json_null());
            json_object_set_new(rec, "query_unparsable", json_true());
        }
        break;
    }
    case AUDIT_QUERY_FULL:
        if (!parsed)
            json_object_set_new(rec, "query_unparsable", json_true());
        break;
    case AUDIT_QUERY_NONE:
        json_object_del(rec, "query");
        if (!parsed)
            json_object_set_new(rec, "query_unparsable", json_true());
        break;
    }
    free(scratch.normalized);   /* only set when the text was not memoized */
}

