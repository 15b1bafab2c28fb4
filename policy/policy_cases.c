/*
 * policy_cases: runs decision test files (see policy_cases.h): each case is
 * analysed with policy/analyze and decided with policy/decide exactly as a
 * session would, then compared with what the case expects.
 */
#include <stdlib.h>
#include <string.h>

#include "common/json_doc.h"
#include "policy/policy_cases.h"

#include "common/path.h"
#include "common/warehouse_json.h"

int policy_cases_columns(void *ctx, const char *schema, const char *table, const char ***names, size_t *n)
{
    const json_t *cols = ctx;
    char key[600];
    snprintf(key, sizeof key, "%s.%s", schema, table);
    json_t *arr = json_is_object(cols) ? json_object_get(cols, key) : NULL;
    if (!json_is_array(arr))
        return -1;
    /* names point into the json strings; the array itself is cached on the json value */
    static __thread const char *buf[1024];
    size_t k = json_array_size(arr);
    if (k > 1024)
        return -1;
    for (size_t i = 0; i < k; i++) {
        if (!json_is_string(json_array_get(arr, i)))
            return -1;
        buf[i] = json_string_value(json_array_get(arr, i));
    }
    *names = buf;
    *n = k;
    return 0;
}

typedef struct case_ctx {
    const policy_t *p;
    const json_doc *doc;
    json_t *columns;
    const warehouse_facts *wh;
    const char *database;
    FILE *out;
} case_ctx;

static const char *str_or(const json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* Runs one case; returns 1 passed, 0 failed, -1 the case itself is malformed
 * (printed as a failure). */
static int run_case(case_ctx *c, size_t idx, json_t *tc)
{
    static const char *const keys[] = {"name", "user", "groups", "claims", "sql", "search_path", "expect",
                                       "rule", "on", "reason", "rewritten", "rewritten_contains",
                                       "description", NULL};
    char field[64], e[1400];
    snprintf(field, sizeof field, "cases[%zu]", idx);
    const char *name = NULL, *user = NULL, *sql = NULL, *expect = NULL;
    if (json_doc_check_keys(c->doc, tc, field, keys, e, sizeof e) < 0 ||
        json_doc_get_string(c->doc, tc, field, "name", true, &name, e, sizeof e) < 0 ||
        json_doc_get_string(c->doc, tc, field, "user", true, &user, e, sizeof e) < 0 ||
        json_doc_get_string(c->doc, tc, field, "sql", true, &sql, e, sizeof e) < 0 ||
        json_doc_get_string(c->doc, tc, field, "expect", true, &expect, e, sizeof e) < 0) {
        fprintf(c->out, "FAIL %s: %s\n", field, e);
        return -1;
    }
    decide_verdict want;
    if (strcmp(expect, "allow") == 0)
        want = DECIDE_ALLOW;
    else if (strcmp(expect, "rewrite") == 0)
        want = DECIDE_REWRITE;
    else if (strcmp(expect, "deny") == 0)
        want = DECIDE_DENY;
    else {
        json_doc_error(c->doc, json_object_get(tc, "expect"), e, sizeof e, field, "expect must be allow, rewrite or deny");
        fprintf(c->out, "FAIL %s: %s\n", name, e);
        return -1;
    }
    const char **groups = NULL, **sp = NULL;
    size_t ng = 0, nsp = 0;
    int rg = json_doc_get_strings(c->doc, tc, field, "groups", false, &groups, &ng, e, sizeof e);
    if (rg < 0) {
        fprintf(c->out, "FAIL %s: %s\n", name, e);
        return -1;
    }
    json_t *claims = json_object_get(tc, "claims");
    if (claims && !json_is_object(claims)) {
        json_doc_error(c->doc, claims, e, sizeof e, field, "claims must be an object");
        fprintf(c->out, "FAIL %s: %s\n", name, e);
        free(groups);
        return -1;
    }
    json_t *spv = json_object_get(tc, "search_path");
    int rs = 1;
    if (json_is_array(spv) && json_array_size(spv) == 0) {
        sp = calloc(1, sizeof *sp);
        rs = sp ? 0 : -1;
    } else {
        rs = json_doc_get_strings(c->doc, tc, field, "search_path", false, &sp, &nsp, e, sizeof e);
    }
    if (rs < 0) {
        fprintf(c->out, "FAIL %s: %s\n", name, e);
        free(groups);
        return -1;
    }
    decide_principal who = {user, groups, ng, claims};
    const char **start = NULL;
    size_t nstart = 0;
    if (rs == 1) {   /* the search_path the session would start with */
        if (decide_search_path(c->p, &who, &start, &nstart) < 0) {
            fprintf(c->out, "FAIL %s: out of memory\n", name);
            free(groups);
            return -1;
        }
    }
    analyze_context actx = {.database = c->database,
                            .search_path = rs == 0 ? sp : start,
                            .n_search_path = rs == 0 ? nsp : nstart};
    /* analyze treats n == 0 as PostgreSQL's default; an empty path is "" */
    static const char *const empty_path[] = {""};
    if (actx.n_search_path == 0) {
        actx.search_path = empty_path;
        actx.n_search_path = 1;
    }
    analysis *a = NULL;
    analyze_error aerr;
    decision d;
    decision_init(&d);
    char got_reason[1024] = "", on_label[400] = "", dec_err[512] = "";
    decide_verdict got = DECIDE_DENY;
    const char *got_rule = NULL;
    if (analyze_sql(sql, &actx, &a, &aerr) != 0) {
        snprintf(got_reason, sizeof got_reason, "analysis failed: %s", aerr.message);
        snprintf(on_label, sizeof on_label, "syntax");
    } else {
        decide_request req = {.sql = sql, .facts = a, .who = &who, .columns = policy_cases_columns,
                              .columns_ctx = c->columns};
        if (!c->columns)
            req.columns = NULL;
        req.warehouse = c->wh;
        /* offline: hash masks with the placeholder key (rewrite.h) */
        rewrite_hash_key placeholder;
        rewrite_hash_key_placeholder(&placeholder);
        req.hash_key = &placeholder;
        decide(c->p, &req, &d, dec_err, sizeof dec_err);
        got = d.verdict;
        got_rule = d.rule_id;
        snprintf(got_reason, sizeof got_reason, "%s", decision_reason(&d));
        if (d.deciding != DECIDE_NONE)
            decide_item_label(&d.items[d.deciding], on_label, sizeof on_label);
    }
    char why[2048] = "";
    size_t off = 0;
#define WHY(...) off += (size_t)snprintf(why + off, off < sizeof why ? sizeof why - off : 0, __VA_ARGS__)
    if (got != want)
        WHY("expected %s, got %s; ", expect, decide_verdict_name(got));
    json_t *rule = json_object_get(tc, "rule");
    if (rule) {
        if (json_is_null(rule) && got_rule)
            WHY("expected no rule, got rule '%s'; ", got_rule);
        else if (json_is_string(rule) && (!got_rule || strcmp(got_rule, json_string_value(rule)) != 0))
            WHY("expected rule '%s', got %s%s%s; ", json_string_value(rule), got_rule ? "'" : "",
                got_rule ? got_rule : "no rule", got_rule ? "'" : "");
    }
    const char *on = str_or(json_object_get(tc, "on"), NULL);
    if (on && strcmp(on, on_label) != 0)
        WHY("expected it to turn on '%s', it turned on '%s'; ", on, on_label);
    const char *reason = str_or(json_object_get(tc, "reason"), NULL);
    if (reason && !strstr(got_reason, reason))
        WHY("expected the reason to contain \"%s\"; ", reason);
    const char *rewritten = str_or(json_object_get(tc, "rewritten"), NULL);
    if (rewritten && (!d.rewritten_sql || strcmp(rewritten, d.rewritten_sql) != 0))
        WHY("expected the rewritten SQL\n      %s\n    got\n      %s\n    ; ", rewritten,
            d.rewritten_sql ? d.rewritten_sql : "(none)");
    json_t *rc = json_object_get(tc, "rewritten_contains");
    for (size_t i = 0; rc && i < (json_is_array(rc) ? json_array_size(rc) : 1); i++) {
        const char *needle = str_or(json_is_array(rc) ? json_array_get(rc, i) : rc, NULL);
        if (needle && (!d.rewritten_sql || !strstr(d.rewritten_sql, needle)))
            WHY("expected the rewritten SQL to contain \"%s\" (got %s); ", needle,
                d.rewritten_sql ? d.rewritten_sql : "none");
    }
#undef WHY
    int result = off == 0;
    if (!result) {
        int line = 0, col = 0;
        json_doc_where(c->doc, tc, &line, &col);
        fprintf(c->out, "FAIL %s (%s:%d): %s\n    reason: %s%s%s\n", name, json_doc_name(c->doc), line, why,
                got_reason, *dec_err ? "\n    error: " : "", dec_err);
    }
    decision_free(&d);
    analysis_free(a);
    free(groups);
    free(sp);
    free(start);
    return result;
}

/* The "warehouse" of a cases file: facts inline, or the name of a facts
 * file (written by `martgate policy warehouse`) relative to the cases file. */
static warehouse_facts *load_warehouse(const json_doc *doc, const char *path, const json_t *v, char *err,
                                       size_t errlen)
{
    char e[1024];
    if (json_is_object(v)) {
        warehouse_facts *f = wh_from_json(v, e, sizeof e);
        if (!f)
            json_doc_error(doc, v, err, errlen, "warehouse", "%s", e);
        return f;
    }
    if (!json_is_string(v)) {
        json_doc_error(doc, v, err, errlen, "warehouse", "must be a facts object or the name of a facts file");
        return NULL;
    }
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = 0;
    char *file = dir ? path_resolve(slash ? dir : NULL, json_string_value(v)) : NULL;
    free(dir);
    json_doc *wd = file ? json_doc_load(file, POLICY_CASES_MAX_BYTES, e, sizeof e) : NULL;
    warehouse_facts *f = wd ? wh_from_json(json_doc_root(wd), e, sizeof e) : NULL;
    if (!f)
        json_doc_error(doc, v, err, errlen, "warehouse", "%s: %s", file ? file : "?", file ? e : "out of memory");
    json_doc_free(wd);
    free(file);
    return f;
}

int policy_run_cases(const policy_t *p, const char *path, FILE *out, size_t *passed, size_t *failed,
                     char *err, size_t errlen)
{
    return policy_run_cases_with(p, NULL, path, out, passed, failed, err, errlen);
}

int policy_run_cases_with(const policy_t *p, const warehouse_facts *wh, const char *path, FILE *out,
                          size_t *passed, size_t *failed, char *err, size_t errlen)
{
    *passed = *failed = 0;
    json_doc *doc = json_doc_load(path, POLICY_CASES_MAX_BYTES, err, errlen);
    if (!doc)
        return -1;
    json_t *root = json_doc_root(doc), *cases = root;
    case_ctx c = {.p = p, .doc = doc, .out = out, .wh = wh};
    warehouse_facts *own_wh = NULL;
    if (json_is_object(root)) {
        static const char *const keys[] = {"columns", "database", "cases", "description", "warehouse", NULL};
        if (json_doc_check_keys(doc, root, "(top level)", keys, err, errlen) < 0 ||
            json_doc_get_string(doc, root, "(top level)", "database", false, &c.database, err, errlen) < 0) {
            json_doc_free(doc);
            return -1;
        }
        cases = json_object_get(root, "cases");
        c.columns = json_object_get(root, "columns");
        json_t *wv = json_object_get(root, "warehouse");
        if (wv && !(own_wh = load_warehouse(doc, path, wv, err, errlen))) {
            json_doc_free(doc);
            return -1;
        }
        c.wh = own_wh;
        if (c.columns && !json_is_object(c.columns)) {
            json_doc_error(doc, c.columns, err, errlen, "columns", "must be an object: \"schema.table\" -> [columns]");
            json_doc_free(doc);
            return -1;
        }
    }
    if (!json_is_array(cases)) {
        json_doc_error(doc, cases ? cases : root, err, errlen, "cases", "must be an array of cases");
        json_doc_free(doc);
        return -1;
    }
    if (json_array_size(cases) > POLICY_CASES_MAX) {
        json_doc_error(doc, cases, err, errlen, "cases", "more than %u cases", POLICY_CASES_MAX);
        json_doc_free(doc);
        return -1;
    }
    size_t i;
    json_t *tc;
    json_array_foreach(cases, i, tc) {
        if (run_case(&c, i, tc) == 1)
            (*passed)++;
        else
            (*failed)++;
    }
    fprintf(out, "%zu passed, %zu failed\n", *passed, *failed);
    wh_free(own_wh);
    json_doc_free(doc);
    return 0;
}
