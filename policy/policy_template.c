/*
 * policy_template: the SQL expressions of a policy (row filters, mask
 * expressions) split at load into text and ${...} placeholders, so that
 * decide binds ${user}, ${groups}, ${claims.NAME} and ${column} as quoted
 * literals/identifiers and never splices a value into SQL text. A light scan
 * finds strings, quoted identifiers, dollar quotes and comments so that a
 * placeholder can only stand where a literal may; the PostgreSQL parser then
 * checks that the text is exactly one expression.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pg_query.h>

#include "policy/policy_internal.h"

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

static int add_seg(policy_template *t, tpl_kind kind, const char *text, size_t n)
{
    tpl_segment *s = realloc(t->segs, (t->n_segs + 1) * sizeof *s);
    if (!s)
        return -1;
    t->segs = s;
    s[t->n_segs].kind = kind;
    s[t->n_segs].text = text ? strndup(text, n) : NULL;
    if (text && !s[t->n_segs].text)
        return -1;
    t->n_segs++;
    return 0;
}

void tpl_free(policy_template *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_segs; i++)
        free(t->segs[i].text);
    free(t->segs);
    free(t->source);
    memset(t, 0, sizeof *t);
}

static bool valid_claim_path(const char *p, size_t n)
{
    if (n == 0)
        return false;
    bool seg_start = true;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '.') {
            if (seg_start)
                return false;
            seg_start = true;
            continue;
        }
        if (!(isalnum((unsigned char)c) || c == '_' || c == '-' || c == ':'))
            return false;
        seg_start = false;
    }
    return !seg_start;
}

#define TPL_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); tpl_free(t); return -1; } while (0)

int tpl_compile(policy_template *t, const char *src, bool allow_column, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->source = strdup(src);
    if (!t->source)
        TPL_FAIL("out of memory");
    const char *p = src, *text_start = src;
    if (!*src)
        TPL_FAIL("is empty");
    while (*p) {
        char c = *p;
        if (c == '-' && p[1] == '-')
            TPL_FAIL("comments are not allowed (at \"%.20s\")", p);
        if (c == '/' && p[1] == '*')
            TPL_FAIL("comments are not allowed (at \"%.20s\")", p);
        if (c == ';')
            TPL_FAIL("';' is not allowed: write one SQL expression");
        if (c == '\'' || c == '"') {   /* 'string', E'string', "ident" */
            bool esc = c == '\'' && p > src && (p[-1] == 'E' || p[-1] == 'e') &&
                       (p - 1 == src || !ident_char(p[-2]));
            const char *q = p + 1;
            for (;;) {
                if (!*q)
                    TPL_FAIL("unterminated %s", c == '\'' ? "string literal" : "quoted identifier");
                if (esc && *q == '\\' && q[1]) {
                    q += 2;
                    continue;
                }
                if (*q == c) {
                    if (q[1] == c) {
                        q += 2;
                        continue;
                    }
                    break;
                }
                if (*q == '$' && q[1] == '{')
                    TPL_FAIL("placeholder inside a quoted %s: write ${...} bare, it is bound as a quoted literal",
                             c == '\'' ? "string" : "identifier");
                q++;
            }
            p = q + 1;
            continue;
        }
        if (c == '$' && p[1] == '{') {
            if (p > src && (ident_char(p[-1]) || p[-1] == '\'' || p[-1] == '"' || p[-1] == '.'))
                TPL_FAIL("placeholder glued to the text before it (at \"%.20s\"): leave a space or an operator",
                         p > src + 3 ? p - 3 : src);
            const char *end = strchr(p, '}');
            if (!end)
                TPL_FAIL("unterminated placeholder \"%.20s\"", p);
            if (ident_char(end[1]) || end[1] == '\'' || end[1] == '"' || end[1] == '.')
                TPL_FAIL("placeholder glued to the text after it (at \"%.20s\")", p);
            const char *name = p + 2;
            size_t n = (size_t)(end - name);
            if (p > text_start && add_seg(t, TPL_TEXT, text_start, (size_t)(p - text_start)))
                TPL_FAIL("out of memory");
            int rc;
            if (n == 4 && memcmp(name, "user", 4) == 0)
                rc = add_seg(t, TPL_USER, NULL, 0);
            else if (n == 6 && memcmp(name, "groups", 6) == 0)
                rc = add_seg(t, TPL_GROUPS, NULL, 0);
            else if (n == 6 && memcmp(name, "column", 6) == 0) {
                if (!allow_column)
                    TPL_FAIL("${column} is only for column mask expressions");
                t->uses_column = true;
                rc = add_seg(t, TPL_COLUMN, NULL, 0);
            } else if (n > 7 && memcmp(name, "claims.", 7) == 0) {
                if (!valid_claim_path(name + 7, n - 7))
                    TPL_FAIL("bad claim name in ${%.*s}: letters, digits, _ - : and dots between names",
                             (int)n, name);
                rc = add_seg(t, TPL_CLAIM, name + 7, n - 7);
            } else {
                TPL_FAIL("unknown placeholder ${%.*s} (known: ${user}, ${groups}, ${claims.NAME}%s)",
                         (int)n, name, allow_column ? ", ${column}" : "");
            }
            if (rc)
                TPL_FAIL("out of memory");
            p = end + 1;
            text_start = p;
            continue;
        }
        if (c == '$' && (p == src || !ident_char(p[-1]))) {
            const char *q = p + 1;
            if (isdigit((unsigned char)*q))
                TPL_FAIL("parameters like $1 are not allowed; use ${user} or ${claims.NAME}");
            while (*q && ident_char(*q) && *q != '$')
                q++;
            if (*q == '$')
                TPL_FAIL("dollar-quoted strings are not allowed; use '...'");
        }
        p++;
    }
    if (p > text_start && add_seg(t, TPL_TEXT, text_start, (size_t)(p - text_start)))
        TPL_FAIL("out of memory");
    return 0;
}

/* Only targetList (one unnamed ResTarget), op and limitOption may be set. */
static bool is_single_expression(json_t *root)
{
    json_t *stmts = json_object_get(root, "stmts");
    if (!json_is_array(stmts) || json_array_size(stmts) != 1)
        return false;
    json_t *stmt = json_object_get(json_array_get(stmts, 0), "stmt");
    json_t *sel = json_object_get(stmt, "SelectStmt");
    if (!sel || json_object_size(stmt) != 1)
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(sel, k, v) {
        if (strcmp(k, "targetList") == 0)
            continue;
        if (strcmp(k, "op") == 0 && json_is_string(v) && strcmp(json_string_value(v), "SETOP_NONE") == 0)
            continue;
        if (strcmp(k, "limitOption") == 0)
            continue;
        return false;
    }
    json_t *tl = json_object_get(sel, "targetList");
    if (!json_is_array(tl) || json_array_size(tl) != 1)
        return false;
    json_t *rt = json_object_get(json_array_get(tl, 0), "ResTarget");
    return rt && !json_object_get(rt, "name");
}

int tpl_check_sql(const policy_template *t, char *err, size_t errlen)
{
    size_t cap = 32;
    for (size_t i = 0; i < t->n_segs; i++)
        cap += t->segs[i].text ? strlen(t->segs[i].text) : 0;
    cap += t->n_segs * 8;
    char *sql = malloc(cap);
    if (!sql) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t off = (size_t)snprintf(sql, cap, "SELECT (");
    int param = 1;
    for (size_t i = 0; i < t->n_segs; i++) {
        if (t->segs[i].kind == TPL_TEXT)
            off += (size_t)snprintf(sql + off, cap - off, "%s", t->segs[i].text);
        else if (t->segs[i].kind == TPL_COLUMN)
            off += (size_t)snprintf(sql + off, cap - off, "c");
        else
            off += (size_t)snprintf(sql + off, cap - off, "$%d", param++);
    }
    snprintf(sql + off, cap - off, ")");
    PgQueryParseResult r = pg_query_parse(sql);
    int rc = 0;
    if (r.error) {
        int at = r.error->cursorpos - 8;   /* minus "SELECT (" */
        if (at > 0)
            snprintf(err, errlen, "does not parse as SQL: %s (near character %d)", r.error->message, at);
        else
            snprintf(err, errlen, "does not parse as SQL: %s", r.error->message);
        rc = -1;
    } else {
        json_error_t je;
        json_t *root = json_loads(r.parse_tree, 0, &je);
        if (!root || !is_single_expression(root)) {
            snprintf(err, errlen, "must be exactly one SQL expression");
            rc = -1;
        }
        json_decref(root);
    }
    pg_query_free_parse_result(r);
    free(sql);
    return rc;
}

static bool template_reads_claim(const policy_template *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n_segs; i++) {
        const tpl_segment *sg = &t->segs[i];
        if (sg->kind == TPL_CLAIM && !strncmp(sg->text, name, len) && (sg->text[len] == 0 || sg->text[len] == '.'))
            return true;
    }
    return false;
}

bool policy_reads_claim(const policy_t *p, const char *name)
{
    if (!p)
        return false;
    size_t len = strlen(name);
    for (size_t r = 0; r < p->n_rules; r++) {
        const policy_rule *rule = &p->rules[r];
        if (rule->has_row_filter && template_reads_claim(&rule->row_filter, name, len))
            return true;
        for (size_t c = 0; c < rule->n_columns; c++)
            if (template_reads_claim(&rule->columns[c].expr, name, len))
                return true;
    }
    return false;
}
