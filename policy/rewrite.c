/*
 * rewrite: relation substitution on the query text (see rewrite.h), the
 * quoting helpers, and the masked/filtered relation builder. The catalog
 * replacements are in catalog_filter.c. Positions come from the analysis
 * (parser locations) and from the PostgreSQL scanner (sql_scan.c); every
 * byte outside the substituted ranges is copied unchanged.
 */
#include "policy/rewrite.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/analyze_internal.h"

static bool ident_is_plain(const char *name)
{
    if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    int category = sql_keyword_category(name);
    return category < 0 || category == 0;   /* not a keyword, or unreserved */
}

void rewrite_add_ident(textbuf *b, const char *name)
{
    if (ident_is_plain(name)) {
        textbuf_add(b, name);
        return;
    }
    textbuf_addn(b, "\"", 1);
    for (const char *c = name; *c; c++) {
        if (*c == '"')
            textbuf_addn(b, "\"", 1);
        textbuf_addn(b, c, 1);
    }
    textbuf_addn(b, "\"", 1);
}

void rewrite_add_literal(textbuf *b, const char *value)
{
    bool backslash = strchr(value, '\\') != NULL;
    textbuf_add(b, backslash ? "E'" : "'");
    for (const char *c = value; *c; c++) {
        if (*c == '\'' || (*c == '\\' && backslash))
            textbuf_addn(b, c, 1);
        textbuf_addn(b, c, 1);
    }
    textbuf_addn(b, "'", 1);
}

char *rewrite_quote_ident(const char *name)
{
    if (!name)
        return NULL;
    textbuf b = {0};
    rewrite_add_ident(&b, name);
    return textbuf_finish(&b);
}

char *rewrite_quote_literal(const char *value)
{
    if (!value)
        return NULL;
    textbuf b = {0};
    rewrite_add_literal(&b, value);
    return textbuf_finish(&b);
}

/* ---- substitution ----------------------------------------------------- */

typedef struct text_edit {
    int start, end;      /* byte range replaced */
    char *text;          /* malloc'd replacement, "" for a deletion */
} text_edit;

typedef struct token_view {
    const char *sql;
    const sql_token *t;
    size_t n;
} token_view;

static long find_token(const token_view *v, int start)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->t[mid].start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->n && v->t[lo].start == start ? (long)lo : -1;
}

static long next_token(const token_view *v, long i)
{
    for (i++; i < (long)v->n; i++)
        if (v->t[i].kind != SQL_TOK_COMMENT)
            return i;
    return -1;
}

static long prev_token(const token_view *v, long i)
{
    for (i--; i >= 0; i--)
        if (v->t[i].kind != SQL_TOK_COMMENT)
            return i;
    return -1;
}

static bool is_char(const token_view *v, long i, char c)
{
    return i >= 0 && v->t[i].kind == SQL_TOK_CHAR && v->t[i].ch == c;
}

static bool is_keyword(const token_view *v, long i, int keyword)
{
    return i >= 0 && keyword >= 0 && v->t[i].kind == SQL_TOK_KEYWORD &&
           v->t[i].keyword_index == keyword;
}

static bool is_name(const token_view *v, long i)
{
    return i >= 0 && (v->t[i].kind == SQL_TOK_IDENT || v->t[i].kind == SQL_TOK_KEYWORD);
}

/* A name token, with a following UESCAPE 'c' if it is U&"...". Returns the
 * index of the last token of the name, or -1. */
static long consume_name(const token_view *v, long i, int kw_uescape)
{
    if (!is_name(v, i))
        return -1;
    long last = i;
    long j = next_token(v, i);
    if (is_keyword(v, j, kw_uescape)) {
        long k = next_token(v, j);
        if (k >= 0 && v->t[k].kind == SQL_TOK_STRING)
            last = k;
    }
    return last;
}

/* Last token of a dotted name of `parts` names starting at token i. */
static long consume_dotted(const token_view *v, long i, int parts, int kw_uescape)
{
    long last = consume_name(v, i, kw_uescape);
    for (int p = 1; p < parts && last >= 0; p++) {
        long dot = next_token(v, last);
        if (!is_char(v, dot, '.'))
            return -1;
        last = consume_name(v, next_token(v, dot), kw_uescape);
    }
    return last;
}

static int name_parts(const analysis_relation *r)
{
    return r->catalog ? 3 : r->qualified ? 2 : 1;
}

static int compare_edits(const void *x, const void *y)
{
    const text_edit *a = x, *b = y;
    return (a->start > b->start) - (a->start < b->start);
}

static void free_edits(text_edit *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].text);
    free(e);
}

typedef struct keyword_ids {
    int only, table, uescape;
} keyword_ids;

static int substitution_edit(const token_view *v, const keyword_ids *kw,
                             const analysis_relation *r, const char *replacement,
                             text_edit *out, char *err, size_t errlen)
{
    const char *what = r->name ? r->name : "?";
    if (r->usage != ANALYZE_USE_FROM) {
        snprintf(err, errlen,
                 "relation %s cannot be substituted where it is used (only tables read in "
                 "FROM can be)", what);
        return -1;
    }
    if (r->tablesample) {
        snprintf(err, errlen, "relation %s is read with TABLESAMPLE and cannot be substituted",
                 what);
        return -1;
    }
    long first = find_token(v, r->location);
    long last = first >= 0 ? consume_dotted(v, first, name_parts(r), kw->uescape) : -1;
    if (last < 0) {
        snprintf(err, errlen, "relation %s not found at byte %d of the text", what, r->location);
        return -1;
    }
    long after = next_token(v, last);
    if (is_char(v, after, '*')) {   /* t * : inheritance, the default anyway */
        last = after;
        after = next_token(v, last);
    }
    long start_tok = first;
    if (r->only) {
        long p = prev_token(v, first);
        if (is_keyword(v, p, kw->only)) {
            start_tok = p;
        } else if (is_char(v, p, '(') && is_keyword(v, prev_token(v, p), kw->only) &&
                   is_char(v, after, ')')) {
            start_tok = prev_token(v, p);
            last = after;
        } else {
            snprintf(err, errlen, "cannot find ONLY before relation %s", what);
            return -1;
        }
    }
    if (r->table_stmt) {
        long p = prev_token(v, start_tok);
        if (!is_keyword(v, p, kw->table)) {
            snprintf(err, errlen, "cannot find TABLE before relation %s", what);
            return -1;
        }
        start_tok = p;
    }
    textbuf b = {0};
    if (r->table_stmt)
        textbuf_add(&b, "SELECT * FROM ");
    textbuf_add(&b, "(");
    textbuf_add(&b, replacement);
    textbuf_add(&b, ")");
    out->start = v->t[start_tok].start;
    out->end = v->t[last].end;
    if (!r->alias) {
        textbuf_add(&b, " AS ");
        rewrite_add_ident(&b, r->name);
        /* keep the alias apart from a token written right after the name */
        unsigned char next = (unsigned char)v->sql[out->end];
        if (next == '"' || next == '_' || next == '$' || next >= 0x80 ||
            (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
            (next >= '0' && next <= '9'))
            textbuf_add(&b, " ");
    }
    out->text = textbuf_finish(&b);
    if (!out->text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* schema.t.col -> t.col for a substituted relation t without alias. Returns
 * 1 with an edit, 0 when the column reference is not one of them, -1. */
static int colref_edit(const token_view *v, const keyword_ids *kw, const analysis *a,
                       const analysis_colref *c, const rewrite_substitution *subs, size_t n,
                       text_edit *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const analysis_relation *r = &a->relations[subs[i].relation];
        if (r->alias || r->stmt_index != c->stmt_index || !same(r->name, c->table))
            continue;
        bool schema_matches = same(r->schema, c->schema);
        for (size_t k = 0; !r->schema && k < r->n_candidates && !schema_matches; k++)
            schema_matches = same(r->candidates[k], c->schema);
        if (!schema_matches)
            continue;
        if (c->catalog && !(r->catalog ? same(r->catalog, c->catalog) : true))
            continue;
        long first = find_token(v, c->location);
        int before_table = c->n_fields - 2;   /* names before the table name */
        long last = first >= 0 ? consume_dotted(v, first, before_table, kw->uescape) : -1;
        long dot = last >= 0 ? next_token(v, last) : -1;
        long table = is_char(v, dot, '.') ? next_token(v, dot) : -1;
        if (table < 0) {
            snprintf(err, errlen, "column reference %s.%s... not found at byte %d", c->schema,
                     c->table, c->location);
            return -1;
        }
        out->start = v->t[first].start;
        out->end = v->t[table].start;
        out->text = strdup("");
        if (!out->text) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 1;
    }
    return 0;
}

int rewrite_apply(const char *sql, const analysis *a, const rewrite_substitution *subs, size_t n,
                  char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!sql || !a || (n && !subs)) {
        snprintf(err, errlen, "rewrite: missing text or analysis");
        return -1;
    }
    size_t len = strlen(sql);
    if (len != a->sql_length) {
        snprintf(err, errlen, "rewrite: the text is not the one that was analysed");
        return -1;
    }
    if (n == 0) {
        *out = strdup(sql);
        if (!*out) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (subs[i].relation >= a->n_relations || !subs[i].replacement) {
            snprintf(err, errlen, "rewrite: substitution %zu names no relation", i);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (subs[j].relation == subs[i].relation) {
                snprintf(err, errlen, "rewrite: relation %zu substituted twice", subs[i].relation);
                return -1;
            }
    }
    /* Scan only from the first statement with an edit to just past the last
     * place an edit may need (column references of those statements). */
    size_t first_stmt = a->n_stmts, last_stmt = 0;
    int until = 0;
    for (size_t i = 0; i < n; i++) {
        const analysis_relation *r = &a->relations[subs[i].relation];
        if (r->stmt_index < first_stmt)
            first_stmt = r->stmt_index;
        if (r->stmt_index > last_stmt)
            last_stmt = r->stmt_index;
        if (r->location > until)
            until = r->location;
    }
    for (size_t i = 0; i < a->n_colrefs; i++) {
        const analysis_colref *c = &a->colrefs[i];
        if (c->stmt_index >= first_stmt && c->stmt_index <= last_stmt && c->location > until)
            until = c->location;
    }
    int from = first_stmt < a->n_stmts ? a->stmts[first_stmt].location : 0;
    sql_token *tokens = NULL;
    size_t ntok = 0;
    if (sql_scan_tokens(sql, from, until, &tokens, &ntok, err, errlen) != 0)
        return -1;
    token_view v = {sql, tokens, ntok};
    keyword_ids kw = {sql_keyword_index("only"), sql_keyword_index("table"),
                      sql_keyword_index("uescape")};

    size_t cap = n + a->n_colrefs, ne = 0;
    text_edit *edits = calloc(cap ? cap : 1, sizeof *edits);
    int rc = edits ? 0 : -1;
    if (!edits)
        snprintf(err, errlen, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (substitution_edit(&v, &kw, &a->relations[subs[i].relation], subs[i].replacement,
                              &edits[ne], err, errlen) != 0)
            rc = -1;
        else
            ne++;
    }
    for (size_t i = 0; rc == 0 && i < a->n_colrefs; i++) {
        int r = colref_edit(&v, &kw, a, &a->colrefs[i], subs, n, &edits[ne], err, errlen);
        if (r < 0)
            rc = -1;
        else if (r > 0)
            ne++;
    }
    if (rc == 0) {
        qsort(edits, ne, sizeof *edits, compare_edits);
        for (size_t i = 1; i < ne; i++)
            if (edits[i].start < edits[i - 1].end) {
                snprintf(err, errlen, "rewrite: two substitutions overlap at byte %d",
                         edits[i].start);
                rc = -1;
                break;
            }
    }
    if (rc == 0) {
        textbuf b = {0};
        size_t at = 0;
        for (size_t i = 0; i < ne; i++) {
            textbuf_addn(&b, sql + at, (size_t)edits[i].start - at);
            textbuf_add(&b, edits[i].text);
            at = (size_t)edits[i].end;
        }
        textbuf_addn(&b, sql + at, len - at);
        *out = textbuf_finish(&b);
        if (!*out) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    if (edits)
        free_edits(edits, ne);
    free(tokens);
    return rc;
}

/* ---- masked / filtered relation ---------------------------------------- */

int rewrite_masked_relation(const char *schema, const char *table, bool only,
                            rewrite_columns_fn columns, void *columns_ctx,
                            const rewrite_column_mask *masks, size_t n_masks,
                            const char *row_filter_sql, char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!schema || !table || !columns) {
        snprintf(err, errlen, "masked relation: schema, table and a column look-up are needed");
        return -1;
    }
    const char **names = NULL;
    size_t ncol = 0;
    if (columns(columns_ctx, schema, table, &names, &ncol) != 0) {
        snprintf(err, errlen, "cannot list the columns of %s.%s", schema, table);
        return -1;
    }
    for (size_t m = 0; m < n_masks; m++) {
        bool found = false;
        for (size_t c = 0; c < ncol && !found; c++)
            found = masks[m].column && names[c] && strcmp(masks[m].column, names[c]) == 0;
        if (!found) {
            snprintf(err, errlen, "masked column %s is not a column of %s.%s",
                     masks[m].column ? masks[m].column : "(null)", schema, table);
            return -1;
        }
    }
    textbuf b = {0};
    textbuf_add(&b, "SELECT ");
    for (size_t c = 0; c < ncol; c++) {
        const char *mask = NULL;
        for (size_t m = 0; m < n_masks; m++)
            if (strcmp(masks[m].column, names[c]) == 0 && masks[m].sql)
                mask = masks[m].sql;
        if (c)
            textbuf_add(&b, ", ");
        if (mask) {
            textbuf_add(&b, "(");
            textbuf_add(&b, mask);
            textbuf_add(&b, ") AS ");
        }
        rewrite_add_ident(&b, names[c]);
    }
    textbuf_add(&b, ncol ? " FROM " : "FROM ");
    if (only)
        textbuf_add(&b, "ONLY ");
    rewrite_add_ident(&b, schema);
    textbuf_add(&b, ".");
    rewrite_add_ident(&b, table);
    if (row_filter_sql) {
        textbuf_add(&b, " WHERE (");
        textbuf_add(&b, row_filter_sql);
        textbuf_add(&b, ")");
    }
    textbuf_add(&b, " OFFSET 0");
    *out = textbuf_finish(&b);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

char *rewrite_mask_sql(rewrite_mask_kind kind, const char *column)
{
    if (!column)
        return NULL;
    textbuf b = {0};
    switch (kind) {
    case REWRITE_MASK_NULL:
        textbuf_add(&b, "CASE WHEN false THEN ");
        rewrite_add_ident(&b, column);
        textbuf_add(&b, " END");
        break;
    case REWRITE_MASK_HASH:   /* keyed: rewrite_hash_mask_sql */
        free(b.s);
        return NULL;
    case REWRITE_MASK_REDACT:
        textbuf_add(&b, "CASE WHEN ");
        rewrite_add_ident(&b, column);
        textbuf_add(&b, " IS NULL THEN NULL ELSE '***' END");
        break;
    case REWRITE_MASK_LAST4:
        textbuf_add(&b, "CASE WHEN ");
        rewrite_add_ident(&b, column);
        textbuf_add(&b, " IS NULL THEN NULL ELSE '***' || pg_catalog.\"right\"(");
        rewrite_add_ident(&b, column);
        textbuf_add(&b, "::pg_catalog.text, 4) END");
        break;
    default:
        free(b.s);
        return NULL;
    }
    return textbuf_finish(&b);
}

/* ---- the keyed hash mask ------------------------------------------------ */

int rewrite_hash_key_init(rewrite_hash_key *k, const unsigned char *key, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!key || len == 0 || len > REWRITE_HASH_BLOCK)
        return -1;
    for (size_t i = 0; i < REWRITE_HASH_BLOCK; i++) {
        unsigned char k0 = i < len ? key[i] : 0;
        unsigned char ip = (unsigned char)(k0 ^ 0x36), op = (unsigned char)(k0 ^ 0x5c);
        k->ipad_hex[2 * i] = hex[ip >> 4];
        k->ipad_hex[2 * i + 1] = hex[ip & 15];
        k->opad_hex[2 * i] = hex[op >> 4];
        k->opad_hex[2 * i + 1] = hex[op & 15];
    }
    k->ipad_hex[2 * REWRITE_HASH_BLOCK] = 0;
    k->opad_hex[2 * REWRITE_HASH_BLOCK] = 0;
    return 0;
}

void rewrite_hash_key_wipe(rewrite_hash_key *k)
{
    if (k)
        explicit_bzero(k, sizeof *k);
}

void rewrite_hash_key_placeholder(rewrite_hash_key *k)
{
    static const char placeholder[] = REWRITE_HASH_PLACEHOLDER_KEY;
    _Static_assert(sizeof placeholder - 1 <= REWRITE_HASH_BLOCK, "the placeholder fits one block");
    if (rewrite_hash_key_init(k, (const unsigned char *)placeholder, sizeof placeholder - 1) != 0)
        memset(k, 0, sizeof *k);   /* cannot happen: it fits one block */
}

char *rewrite_hash_mask_sql(const rewrite_hash_key *k, const char *column)
{
    if (!k || !column)
        return NULL;
    /* OPERATOR(pg_catalog.||): no operator of the session's search_path can
     * stand in for the concatenation */
    textbuf b = {0};
    textbuf_add(&b, "pg_catalog.encode(pg_catalog.sha256(pg_catalog.decode('");
    textbuf_add(&b, k->opad_hex);
    textbuf_add(&b, "', 'hex') OPERATOR(pg_catalog.||) pg_catalog.sha256(pg_catalog.decode('");
    textbuf_add(&b, k->ipad_hex);
    textbuf_add(&b, "', 'hex') OPERATOR(pg_catalog.||) pg_catalog.convert_to(");
    rewrite_add_ident(&b, column);
    textbuf_add(&b, "::pg_catalog.text, 'UTF8'))), 'hex')");
    return textbuf_finish(&b);
}
