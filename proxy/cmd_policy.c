/*
 * cmd_policy: `martgate policy check|explain|test`, the governance team's
 * tools for a policy before it is deployed: check it strictly, explain what
 * it decides for one person and one SQL text (rule and reason for every
 * relation, function and setting, and the rewritten SQL), and run decision
 * test files in CI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/analyze.h"
#include "policy/decide.h"
#include "common/json_doc.h"
#include "policy/policy.h"
#include "policy/policy_cases.h"
#include "proxy/commands.h"

static const char usage_text[] =
    "usage: martgate policy check PATH\n"
    "       martgate policy explain --policy PATH --user USER [--groups G1,G2] [--claim NAME=VALUE]...\n"
    "                               [--search-path S1,S2] [--database DB] [--columns-from FILE.json] SQL\n"
    "       martgate policy test PATH TESTS.json\n"
    "\n"
    "PATH is a policy file or a directory of *.json policy files (docs/policy.md).\n"
    "  check    load the policy strictly: print a summary and the warnings (exit 0), or every\n"
    "           error with file:line:column and the field (exit 1)\n"
    "  explain  the decision for one SQL text: allow, rewrite or deny, the rule and reason for\n"
    "           every relation, function and setting, and the rewritten SQL. Without\n"
    "           --search-path the principal's starting search_path from the policy is used;\n"
    "           --claim values that are JSON (numbers, arrays) are taken as JSON, others as strings;\n"
    "           --columns-from names a JSON object {\"schema.table\": [\"col\", ...]} standing in\n"
    "           for the warehouse catalog when masks need a table's columns\n"
    "  test     run decision cases (a JSON array, or {\"columns\", \"database\", \"cases\"}); print\n"
    "           each failure and why, then \"N passed, N failed\"; exit 1 on any failure\n";

static int usage(FILE *f, int rc)
{
    fputs(usage_text, f);
    return rc;
}

static int load_policy(const char *path, policy_t **p, bool quiet)
{
    policy_messages m;
    char err[2048];
    int rc = policy_load(path, p, &m, err, sizeof err);
    if (rc != 0) {
        for (size_t i = 0; i < m.n_errors; i++)
            fprintf(stderr, "error: %s\n", m.errors[i]);
    }
    if (!quiet || rc != 0)
        for (size_t i = 0; i < m.n_warnings; i++)
            fprintf(stderr, "warning: %s\n", m.warnings[i]);
    if (rc != 0)
        fprintf(stderr, "%s: %zu error%s\n", path, m.n_errors, m.n_errors == 1 ? "" : "s");
    policy_messages_free(&m);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    if (argc != 3)
        return usage(stderr, 2);
    policy_t *p = NULL;
    policy_messages m;
    char err[2048], sum[256];
    int rc = policy_load(argv[2], &p, &m, err, sizeof err);
    for (size_t i = 0; i < m.n_errors; i++)
        printf("error: %s\n", m.errors[i]);
    for (size_t i = 0; i < m.n_warnings; i++)
        printf("warning: %s\n", m.warnings[i]);
    if (rc == 0) {
        policy_summary(p, sum, sizeof sum);
        printf("%s: ok: %s, %zu warning%s\n", argv[2], sum, m.n_warnings, m.n_warnings == 1 ? "" : "s");
    } else {
        printf("%s: %zu error%s\n", argv[2], m.n_errors, m.n_errors == 1 ? "" : "s");
    }
    policy_messages_free(&m);
    policy_unref(p);
    return rc == 0 ? 0 : 1;
}

/* Splits "a,b,c" into a NULL-terminated array of pieces of a copy. */
static char **split_list(const char *s, size_t *n, char **copy)
{
    *copy = strdup(s);
    size_t cap = 1;
    for (const char *c = s; *c; c++)
        cap += *c == ',';
    char **out = calloc(cap + 1, sizeof *out);
    *n = 0;
    if (!*copy || !out) {
        free(out);
        return NULL;
    }
    char *save = NULL;
    for (char *t = strtok_r(*copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        out[(*n)++] = t;
    }
    return out;
}

static const char *access_text(unsigned a)
{
    if ((a & ANALYZE_ACCESS_READ) && (a & ANALYZE_ACCESS_WRITE))
        return "read+write";
    return a & ANALYZE_ACCESS_WRITE ? "write" : "read";
}

static int cmd_explain(int argc, char **argv)
{
    const char *policy_path = NULL, *user = NULL, *groups = NULL, *search_path = NULL, *database = NULL,
               *columns_path = NULL, *sql = NULL;
    json_t *claims = json_object();
    int rc = 2;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            json_decref(claims);
            return usage(stdout, 0);
        }
        if (strcmp(a, "--policy") == 0)
            target = &policy_path;
        else if (strcmp(a, "--user") == 0)
            target = &user;
        else if (strcmp(a, "--groups") == 0)
            target = &groups;
        else if (strcmp(a, "--search-path") == 0)
            target = &search_path;
        else if (strcmp(a, "--database") == 0)
            target = &database;
        else if (strcmp(a, "--columns-from") == 0)
            target = &columns_path;
        if (target) {
            if (i + 1 >= argc) {
                fprintf(stderr, "martgate policy explain: %s needs a value\n", a);
                json_decref(claims);
                return usage(stderr, 2);
            }
            *target = argv[++i];
            continue;
        }
        if (strcmp(a, "--claim") == 0) {
            const char *kv = i + 1 < argc ? argv[++i] : NULL;
            const char *eq = kv ? strchr(kv, '=') : NULL;
            if (!eq || eq == kv) {
                fprintf(stderr, "martgate policy explain: --claim needs NAME=VALUE\n");
                json_decref(claims);
                return usage(stderr, 2);
            }
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(eq - kv), kv);
            /* a JSON array/object/number/boolean value is taken as such, anything else as a string */
            json_t *val = NULL;
            if (strchr("[{-0123456789tf", eq[1]) && eq[1])
                val = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
            json_object_set_new(claims, name, val ? val : json_string(eq + 1));
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "martgate policy explain: unknown option %s\n", a);
            json_decref(claims);
            return usage(stderr, 2);
        }
        if (sql) {
            fprintf(stderr, "martgate policy explain: one SQL text only (quote it)\n");
            json_decref(claims);
            return usage(stderr, 2);
        }
        sql = a;
    }
    if (!policy_path || !user || !sql) {
        fprintf(stderr, "martgate policy explain: --policy, --user and SQL are required\n");
        json_decref(claims);
        return usage(stderr, 2);
    }
    policy_t *p = NULL;
    json_doc *cols = NULL;
    char *gcopy = NULL, *spcopy = NULL;
    char **glist = NULL, **splist = NULL;
    const char **start = NULL;
    analysis *an = NULL;
    decision d;
    decision_init(&d);
    rc = 1;
    if (load_policy(policy_path, &p, true) != 0)
        goto out;
    char err[2048];
    if (columns_path) {
        cols = json_doc_load(columns_path, POLICY_CASES_MAX_BYTES, err, sizeof err);
        if (!cols) {
            fprintf(stderr, "error: %s\n", err);
            goto out;
        }
        if (!json_is_object(json_doc_root(cols))) {
            json_doc_error(cols, json_doc_root(cols), err, sizeof err, "(top level)",
                           "must be an object: \"schema.table\" -> [columns]");
            fprintf(stderr, "error: %s\n", err);
            goto out;
        }
    }
    size_t ng = 0, nsp = 0;
    if (groups && !(glist = split_list(groups, &ng, &gcopy)))
        goto oom;
    decide_principal who = {user, (const char *const *)glist, ng, claims};
    if (search_path) {
        if (!(splist = split_list(search_path, &nsp, &spcopy)))
            goto oom;
    } else {
        if (decide_search_path(p, &who, &start, &nsp) < 0)
            goto oom;
    }
    static const char *const empty_path[] = {""};
    analyze_context actx = {.database = database,
                            .search_path = search_path ? (const char *const *)splist : start,
                            .n_search_path = nsp};
    if (nsp == 0) {
        actx.search_path = empty_path;
        actx.n_search_path = 1;
    }
    const char *eff[256];
    size_t neff = decide_effective_groups(p, &who, eff, 256);
    printf("principal: %s; groups: ", user);
    for (size_t i = 0; i < neff && i < 256; i++)
        printf("%s%s", i ? ", " : "", eff[i]);
    printf("%s\nsearch_path: ", neff ? "" : "(none)");
    for (size_t i = 0; i < nsp; i++)
        printf("%s%s", i ? ", " : "", search_path ? splist[i] : start[i]);
    printf("%s\n", nsp ? "" : "(empty)");
    printf("catalog visibility: %s\n", decide_full_catalog(p, &who) ? "full" : "filtered to what the principal may read");
    analyze_error aerr;
    if (analyze_sql(sql, &actx, &an, &aerr) != 0) {
        printf("decision: deny\nreason: the SQL does not parse: %s (SQLSTATE %s)\n", aerr.message, aerr.sqlstate);
        goto out;
    }
    decide_request req = {.sql = sql, .facts = an, .who = &who};
    if (cols) {
        req.columns = policy_cases_columns;
        req.columns_ctx = json_doc_root(cols);
    }
    char derr[512] = "";
    decide(p, &req, &d, derr, sizeof derr);
    printf("decision: %s\n", decide_verdict_name(d.verdict));
    printf("rule: %s\n", d.rule_id ? d.rule_id : "(none: built-in or default)");
    printf("reason: %s\n", decision_reason(&d));
    if (*derr)
        printf("error: %s\n", derr);
    for (size_t s = 0; s < an->n_stmts; s++) {
        const analysis_stmt *st = &an->stmts[s];
        printf("statement %zu: %s (%s)\n", s + 1, st->tag ? st->tag : "?", analyze_stmt_kind_name(st->kind));
        for (size_t i = 0; i < d.n_items; i++) {
            const decide_item *it = &d.items[i];
            if (it->stmt_index != s)
                continue;
            char label[400], why[1024];
            decide_item_label(it, label, sizeof label);
            decide_item_reason(&d, i, why, sizeof why);
            const char *kind = it->kind == DECIDE_ITEM_RELATION ? "relation"
                             : it->kind == DECIDE_ITEM_FUNCTION ? "function"
                             : it->kind == DECIDE_ITEM_SETTING  ? "setting"
                             : it->kind == DECIDE_ITEM_SCHEMA   ? "schema"
                             : it->kind == DECIDE_ITEM_ROLE     ? "role"
                             : it->kind == DECIDE_ITEM_FLAG     ? "flag"
                                                                : "statement";
            printf("  %-8s %s%s%s%s: %s [%s]\n    %s\n", kind, label, it->kind == DECIDE_ITEM_RELATION ? " (" : "",
                   it->kind == DECIDE_ITEM_RELATION ? access_text(it->access) : "",
                   it->kind == DECIDE_ITEM_RELATION ? ")" : "", decide_verdict_name(it->verdict),
                   it->rule_id ? it->rule_id : "-", why);
        }
    }
    if (d.verdict == DECIDE_REWRITE && d.rewritten_sql)
        printf("rewritten SQL:\n%s\n", d.rewritten_sql);
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "error: out of memory\n");
    rc = 1;
out:
    decision_free(&d);
    analysis_free(an);
    free(start);
    free(glist);
    free(gcopy);
    free(splist);
    free(spcopy);
    json_doc_free(cols);
    json_decref(claims);
    policy_unref(p);
    return rc;
}

static int cmd_test(int argc, char **argv)
{
    if (argc != 4)
        return usage(stderr, 2);
    policy_t *p = NULL;
    if (load_policy(argv[2], &p, true) != 0)
        return 1;
    size_t passed = 0, failed = 0;
    char err[2048];
    int rc = policy_run_cases(p, argv[3], stdout, &passed, &failed, err, sizeof err);
    policy_unref(p);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    return failed ? 1 : 0;
}

int cmd_policy_main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr, 2);
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0)
        return usage(stdout, 0);
    for (int i = 2; i < argc; i++)
        if ((strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) && strcmp(sub, "explain") != 0)
            return usage(stdout, 0);
    if (strcmp(sub, "check") == 0)
        return cmd_check(argc, argv);
    if (strcmp(sub, "explain") == 0)
        return cmd_explain(argc, argv);
    if (strcmp(sub, "test") == 0)
        return cmd_test(argc, argv);
    fprintf(stderr, "martgate policy: unknown command '%s'\n", sub);
    return usage(stderr, 2);
}
