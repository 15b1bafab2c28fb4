/*
 * cmd_policy: `martgate policy check|explain|test|warehouse|catalog`, the governance team's
 * tools for a policy before it is deployed: check it strictly, explain what
 * it decides for one person and one SQL text (rule and reason for every
 * relation, function and setting, and the rewritten SQL), run decision
 * test files in CI, read a warehouse's settings and functions for both, and
 * list the class of every catalog relation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapters/catalog.h"
#include "common/warehouse_json.h"
#include "policy/analyze.h"
#include "policy/catalog_classes.h"
#include "policy/decide.h"
#include "common/json_doc.h"
#include "policy/policy.h"
#include "policy/policy_cases.h"
#include "policy/rewrite.h"
#include "proxy/commands.h"
#include "proxy/policy_offline.h"

static const char usage_text[] =
    "usage: martgate policy check [--strict] PATH\n"
    "       martgate policy explain --policy PATH --user USER [--groups G1,G2] [--claim NAME=VALUE]...\n"
    "                               [--search-path S1,S2] [--database DB] [--columns-from FILE.json]\n"
    "                               [--warehouse FILE.json] SQL\n"
    "       martgate policy test PATH TESTS.json [--warehouse FILE.json]\n"
    "       martgate policy replay --policy NEW [--warehouse FILE.json] [--columns-from FILE.json] [--json]\n"
    "                              [--top N] AUDIT...\n"
    "       martgate policy warehouse CONNINFO > FILE.json\n"
    "       martgate policy catalog\n"
    "       martgate policy diff [--format terminal|markdown|json] OLD NEW\n"
    "       martgate policy matrix [--format terminal|markdown|html|json] [--catalog CONNINFO] PATH\n"
    "\n"
    "PATH is a policy file or a directory of *.json policy files (docs/policy.md).\n"
    "  check    load the policy strictly: print a summary and the warnings (exit 0), or every\n"
    "           error with file:line:column and the field (exit 1). Warnings are the parts that\n"
    "           do nothing or overlap: rules an earlier rule shadows, datasets, groups and roles\n"
    "           nothing uses, datasets matching the same schemas; --strict exits 1 on any warning\n"
    "  explain  the decision for one SQL text: allow, rewrite or deny, the rule and reason for\n"
    "           every relation, function and setting, and the rewritten SQL. Without\n"
    "           --search-path the principal's starting search_path from the policy is used;\n"
    "           --claim values that are JSON (numbers, arrays) are taken as JSON, others as strings;\n"
    "           --columns-from names a JSON object {\"schema.table\": [\"col\", ...]} standing in\n"
    "           for the warehouse catalog when masks need a table's columns; --warehouse names\n"
    "           the warehouse's settings and functions as `policy warehouse` wrote them (without\n"
    "           it, SET of anything but search_path is denied: martgate decides settings by what\n"
    "           the warehouse says they are)\n"
    "  test     run decision cases (a JSON array, or {\"columns\", \"database\", \"cases\"}); print\n"
    "           each failure and why, then \"N passed, N failed\"; exit 1 on any failure\n"
    "  replay   decide every statement record of the audit files (plain or gzip) again under\n"
    "           policy NEW as the same principal (user, groups, impersonated role, database,\n"
    "           search_path, claims) and report the decisions that change: newly denied, newly\n"
    "           allowed, rewrite changes, by user and dataset, counted by record and by distinct\n"
    "           fingerprint, and the records it cannot replay, by reason. Exit 0 no decision\n"
    "           changes, 1 some change, 2 a usage error, 3 an error\n"
    "  warehouse  read a warehouse's settings (pg_settings), the functions PUBLIC may not execute\n"
    "           and the login role's attributes, as JSON for --warehouse and test files (the\n"
    "           password from PGPASSWORD or ~/.pgpass, as libpq reads them)\n"
    "  catalog  every classified relation of pg_catalog and information_schema as\n"
    "           schema.name<TAB>class (filtered, safe or restricted), sorted; any other is denied\n"
    "  diff     every change of effective access from policy OLD to NEW (after rule order and first\n"
    "           match), subject by object, and of search_path, catalog visibility, impersonation,\n"
    "           functions, settings and roles. A side may be --git REV[:PATH] (PATH from the\n"
    "           repository's top; without it, the other side's path). Exit 0 no change, 1 changes\n"
    "           that do not widen access, 2 access widens somewhere, 3 an error\n"
    "  matrix   every subject the policy names (groups, users, roles, everyone else) x every\n"
    "           dataset, each cell the effective access, and the tables that differ from their\n"
    "           dataset; --catalog CONNINFO finds those among the warehouse's real tables and\n"
    "           lists the schemas no dataset covers\n";

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

int cmd_policy_load(const char *path, policy_t **p)
{
    return load_policy(path, p, true);
}

static int cmd_check(int argc, char **argv)
{
    bool strict = argc == 4 && strcmp(argv[2], "--strict") == 0;
    if (argc != 3 + strict)
        return usage(stderr, 2);
    const char *path = argv[2 + strict];
    policy_t *p = NULL;
    policy_messages m;
    char err[2048], sum[256];
    int rc = policy_load(path, &p, &m, err, sizeof err);
    for (size_t i = 0; i < m.n_errors; i++)
        printf("error: %s\n", m.errors[i]);
    for (size_t i = 0; i < m.n_warnings; i++)
        printf("warning: %s\n", m.warnings[i]);
    if (rc == 0) {
        policy_summary(p, sum, sizeof sum);
        printf("%s: ok: %s, %zu warning%s%s\n", path, sum, m.n_warnings, m.n_warnings == 1 ? "" : "s",
               strict && m.n_warnings ? " (--strict: failing)" : "");
    } else {
        printf("%s: %zu error%s\n", path, m.n_errors, m.n_errors == 1 ? "" : "s");
    }
    bool failed = rc != 0 || (strict && m.n_warnings > 0);
    policy_messages_free(&m);
    policy_unref(p);
    return failed ? 1 : 0;
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

/* What `policy explain` was asked: the policy, the principal and one SQL text. */
typedef struct {
    const char *policy_path, *user, *groups, *search_path, *database, *columns_path, *warehouse_path, *sql;
    json_t *claims;              /* from --claim; owned */
} explain_options;

/* parse_explain_options' result when the command goes on. */
#define EXPLAIN_GO_ON (-1)

/* Prints a usage error for explain and returns its exit status. */
static int explain_usage_error(const char *message, const char *arg)
{
    fputs("martgate policy explain: ", stderr);
    fprintf(stderr, message, arg);
    fputc('\n', stderr);
    return usage(stderr, 2);
}

/* The field of o that an option taking a value fills, or NULL for other arguments. */
static const char **explain_value_target(explain_options *o, const char *a)
{
    if (strcmp(a, "--policy") == 0)
        return &o->policy_path;
    if (strcmp(a, "--user") == 0)
        return &o->user;
    if (strcmp(a, "--groups") == 0)
        return &o->groups;
    if (strcmp(a, "--search-path") == 0)
        return &o->search_path;
    if (strcmp(a, "--database") == 0)
        return &o->database;
    if (strcmp(a, "--columns-from") == 0)
        return &o->columns_path;
    if (strcmp(a, "--warehouse") == 0)
        return &o->warehouse_path;
    return NULL;
}

/* Adds one --claim NAME=VALUE to claims; false when kv is not NAME=VALUE. */
static bool add_explain_claim(json_t *claims, const char *kv)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq || eq == kv)
        return false;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(eq - kv), kv);
    /* a JSON array/object/number/boolean value is taken as such, anything else as a string */
    json_t *val = NULL;
    if (strchr("[{-0123456789tf", eq[1]) && eq[1])
        val = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    json_object_set_new(claims, name, val ? val : json_string(eq + 1));
    return true;
}

/* Fills o from argv; EXPLAIN_GO_ON, or the exit status after --help or a usage error. */
static int parse_explain_options(int argc, char **argv, explain_options *o)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return usage(stdout, 0);
        const char **target = explain_value_target(o, a);
        if (target) {
            if (i + 1 >= argc)
                return explain_usage_error("%s needs a value", a);
            *target = argv[++i];
            continue;
        }
        if (strcmp(a, "--claim") == 0) {
            if (!add_explain_claim(o->claims, i + 1 < argc ? argv[++i] : NULL))
                return explain_usage_error("%s", "--claim needs NAME=VALUE");
            continue;
        }
        if (a[0] == '-' && a[1])
            return explain_usage_error("unknown option %s", a);
        if (o->sql)
            return explain_usage_error("%s", "one SQL text only (quote it)");
        o->sql = a;
    }
    if (!o->policy_path || !o->user || !o->sql)
        return explain_usage_error("%s", "--policy, --user and SQL are required");
    return EXPLAIN_GO_ON;
}

/* What explain works from: the policy, the catalog stand-in, the principal
 * and the search_path; it owns the lists it splits. */
typedef struct {
    policy_t *p;
    json_doc *cols;              /* --columns-from, or NULL */
    warehouse_facts *wh;         /* --warehouse, or NULL */
    char *gcopy, *spcopy;
    char **glist, **splist;
    const char **start;          /* the policy's starting search_path */
    const char *const *path;     /* the search_path shown: splist or start */
    size_t nsp;
    decide_principal who;
    analyze_context actx;
} explain_inputs;

/* Loads the --columns-from file, which must hold a JSON object; 0, or -1 with the error printed. */
static int load_explain_columns(const char *path, json_doc **cols)
{
    char err[2048];
    *cols = json_doc_load(path, POLICY_CASES_MAX_BYTES, err, sizeof err);
    if (!*cols) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    if (!json_is_object(json_doc_root(*cols))) {
        json_doc_error(*cols, json_doc_root(*cols), err, sizeof err, "(top level)",
                       "must be an object: \"schema.table\" -> [columns]");
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    return 0;
}

/* A facts file as `policy warehouse` writes it; NULL with the error printed. */
static warehouse_facts *load_warehouse_file(const char *path)
{
    char err[2048];
    json_doc *d = json_doc_load(path, POLICY_CASES_MAX_BYTES, err, sizeof err);
    warehouse_facts *f = d ? wh_from_json(json_doc_root(d), err, sizeof err) : NULL;
    if (!f)
        fprintf(stderr, "error: %s%s%s\n", d ? path : "", d ? ": " : "", err);
    json_doc_free(d);
    return f;
}

/* Builds the principal and the search_path the SQL is analyzed with; false when out of memory. */
static bool explain_principal(const explain_options *o, explain_inputs *in)
{
    size_t ng = 0;
    if (o->groups && !(in->glist = split_list(o->groups, &ng, &in->gcopy)))
        return false;
    in->who = (decide_principal){o->user, (const char *const *)in->glist, ng, o->claims};
    if (o->search_path && !(in->splist = split_list(o->search_path, &in->nsp, &in->spcopy)))
        return false;
    size_t nstart;
    if (policy_offline_context(in->p, &in->who, o->database, (const char *const *)in->splist, in->nsp, &in->start,
                               &nstart, &in->actx) != 0)
        return false;
    in->path = in->splist ? (const char *const *)in->splist : in->start;
    if (!in->splist)
        in->nsp = nstart;
    return true;
}

/* Loads the policy, the columns and the principal; 0, or 1 with the error printed. */
static int load_explain_inputs(const explain_options *o, explain_inputs *in)
{
    memset(in, 0, sizeof *in);
    if (load_policy(o->policy_path, &in->p, true) != 0)
        return 1;
    if (o->columns_path && load_explain_columns(o->columns_path, &in->cols) != 0)
        return 1;
    if (o->warehouse_path && !(in->wh = load_warehouse_file(o->warehouse_path)))
        return 1;
    if (!explain_principal(o, in)) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    return 0;
}

/* Frees what load_explain_inputs made. */
static void free_explain_inputs(explain_inputs *in)
{
    free(in->start);
    free(in->glist);
    free(in->gcopy);
    free(in->splist);
    free(in->spcopy);
    json_doc_free(in->cols);
    wh_free(in->wh);
    policy_unref(in->p);
}

/* Prints who asks: the effective groups, the search_path and the catalog visibility. */
static void print_explain_principal(const explain_inputs *in)
{
    const char *eff[256];
    size_t neff = decide_effective_groups(in->p, &in->who, eff, 256);
    printf("principal: %s; groups: ", in->who.user);
    for (size_t i = 0; i < neff && i < 256; i++)
        printf("%s%s", i ? ", " : "", eff[i]);
    printf("%s\nsearch_path: ", neff ? "" : "(none)");
    for (size_t i = 0; i < in->nsp; i++)
        printf("%s%s", i ? ", " : "", in->path[i]);
    printf("%s\n", in->nsp ? "" : "(empty)");
    printf("catalog visibility: %s\n",
           decide_full_catalog(in->p, &in->who) ? "full" : "filtered to what the principal may read");
}

/* The word explain prints for a decision item's kind. */
static const char *item_kind_text(decide_item_kind kind)
{
    return kind == DECIDE_ITEM_RELATION ? "relation"
         : kind == DECIDE_ITEM_FUNCTION ? "function"
         : kind == DECIDE_ITEM_SETTING  ? "setting"
         : kind == DECIDE_ITEM_SCHEMA   ? "schema"
         : kind == DECIDE_ITEM_ROLE     ? "role"
         : kind == DECIDE_ITEM_FLAG     ? "flag"
                                        : "statement";
}

/* Prints every statement and, under it, each item decided with its rule and reason. */
static void print_explain_items(const analysis *an, const decision *d)
{
    for (size_t s = 0; s < an->n_stmts; s++) {
        const analysis_stmt *st = &an->stmts[s];
        printf("statement %zu: %s (%s)\n", s + 1, st->tag ? st->tag : "?", analyze_stmt_kind_name(st->kind));
        for (size_t i = 0; i < d->n_items; i++) {
            const decide_item *it = &d->items[i];
            if (it->stmt_index != s)
                continue;
            char label[400], why[1024];
            decide_item_label(it, label, sizeof label);
            decide_item_reason(d, i, why, sizeof why);
            bool rel = it->kind == DECIDE_ITEM_RELATION;
            printf("  %-8s %s%s%s%s: %s [%s]\n    %s\n", item_kind_text(it->kind), label, rel ? " (" : "",
                   rel ? access_text(it->access) : "", rel ? ")" : "", decide_verdict_name(it->verdict),
                   it->rule_id ? it->rule_id : "-", why);
        }
    }
}

/* Analyzes and decides the SQL and prints the decision; 0, or 1 when the SQL does not parse. */
static int explain_decision(const explain_options *o, explain_inputs *in)
{
    analysis *an = NULL;
    analyze_error aerr;
    decision d;
    decision_init(&d);
    char derr[512] = "";
    if (policy_offline_decide(in->p, &in->who, &in->actx, in->wh, in->cols, o->sql, &an, &aerr, &d, derr,
                              sizeof derr) != 0) {
        printf("decision: deny\nreason: the SQL does not parse: %s (SQLSTATE %s)\n", aerr.message, aerr.sqlstate);
        decision_free(&d);
        analysis_free(an);
        return 1;
    }
    rewrite_hash_key placeholder;   /* the key policy_offline_decide used, for the note below */
    rewrite_hash_key_placeholder(&placeholder);
    printf("decision: %s\n", decide_verdict_name(d.verdict));
    printf("rule: %s\n", d.rule_id ? d.rule_id : "(none: built-in or default)");
    printf("reason: %s\n", decision_reason(&d));
    if (*derr)
        printf("error: %s\n", derr);
    print_explain_items(an, &d);
    if (d.verdict == DECIDE_REWRITE && d.rewritten_sql)
        printf("rewritten SQL:\n%s\n", d.rewritten_sql);
    if (d.rewritten_sql && strstr(d.rewritten_sql, placeholder.ipad_hex))
        printf("note: hash masks above use martgate's offline placeholder key (\"%s\"), not the "
               "deployment's hash_mask_key_file\n", REWRITE_HASH_PLACEHOLDER_KEY);
    decision_free(&d);
    analysis_free(an);
    return 0;
}

/* `policy explain`: parse the options, load the policy and the principal, decide the SQL, print. */
static int cmd_explain(int argc, char **argv)
{
    explain_options o = {.claims = json_object()};
    int rc = parse_explain_options(argc, argv, &o);
    if (rc == EXPLAIN_GO_ON) {
        explain_inputs in;
        rc = load_explain_inputs(&o, &in);
        if (rc == 0) {
            print_explain_principal(&in);
            rc = explain_decision(&o, &in);
        }
        free_explain_inputs(&in);
    }
    json_decref(o.claims);
    return rc;
}

static int cmd_test(int argc, char **argv)
{
    const char *wpath = NULL;
    if (argc == 6 && strcmp(argv[4], "--warehouse") == 0)
        wpath = argv[5];
    else if (argc != 4)
        return usage(stderr, 2);
    policy_t *p = NULL;
    if (load_policy(argv[2], &p, true) != 0)
        return 1;
    warehouse_facts *wh = wpath ? load_warehouse_file(wpath) : NULL;
    if (wpath && !wh) {
        policy_unref(p);
        return 1;
    }
    size_t passed = 0, failed = 0;
    char err[2048];
    int rc = policy_run_cases_with(p, wh, argv[3], stdout, &passed, &failed, err, sizeof err);
    wh_free(wh);
    policy_unref(p);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    return failed ? 1 : 0;
}

/* `policy warehouse CONNINFO`: the facts martgate decides settings and
 * functions by, as JSON on stdout. */
static int cmd_warehouse(int argc, char **argv)
{
    if (argc != 3)
        return usage(stderr, 2);
    char err[1024];
    warehouse_facts *f = catalog_read_facts(argv[2], NULL, err, sizeof err);
    if (!f) {
        fprintf(stderr, "martgate policy warehouse: %s\n", err);
        return 1;
    }
    json_t *j = wh_to_json(f);
    wh_free(f);
    if (!j || json_dumpf(j, stdout, JSON_INDENT(1)) != 0) {
        json_decref(j);
        fprintf(stderr, "martgate policy warehouse: cannot write the facts\n");
        return 1;
    }
    json_decref(j);
    fputc('\n', stdout);
    return 0;
}

/* `policy catalog`: the classes of docs/policy.md's Catalogs, one per line. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_catalog(int argc, char **argv)
{
    (void)argv;
    if (argc != 2)
        return usage(stderr, 2);
    const char *schema, *name;
    catalog_class cls;
    size_t n = 0, nf = 0;
    while (rewrite_filtered_catalog_at(nf, &schema, &name))
        nf++;
    while (catalog_classes_at(n, &schema, &name, &cls))
        n++;
    char **lines = calloc(n + nf, sizeof *lines);
    if (!lines)
        return 1;
    for (size_t i = 0; i < nf; i++)
        if (rewrite_filtered_catalog_at(i, &schema, &name) &&
            asprintf(&lines[i], "%s.%s\tfiltered", schema, name) < 0)
            lines[i] = NULL;
    for (size_t i = 0; i < n; i++)
        if (catalog_classes_at(i, &schema, &name, &cls) &&
            asprintf(&lines[nf + i], "%s.%s\t%s", schema, name, catalog_class_name(cls)) < 0)
            lines[nf + i] = NULL;
    int rc = 0;
    for (size_t i = 0; i < n + nf; i++)
        if (!lines[i])
            rc = 1;
    if (rc == 0) {
        qsort(lines, n + nf, sizeof *lines, cmp_str);
        for (size_t i = 0; i < n + nf; i++)
            printf("%s\n", lines[i]);
    } else {
        fprintf(stderr, "martgate policy catalog: out of memory\n");
    }
    for (size_t i = 0; i < n + nf; i++)
        free(lines[i]);
    free(lines);
    return rc;
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
    if (strcmp(sub, "replay") == 0)
        return cmd_policy_replay(argc, argv);
    if (strcmp(sub, "warehouse") == 0)
        return cmd_warehouse(argc, argv);
    if (strcmp(sub, "catalog") == 0)
        return cmd_catalog(argc, argv);
    if (strcmp(sub, "diff") == 0)
        return cmd_policy_diff(argc, argv);
    if (strcmp(sub, "matrix") == 0)
        return cmd_policy_matrix(argc, argv);
    fprintf(stderr, "martgate policy: unknown command '%s'\n", sub);
    return usage(stderr, 2);
}
