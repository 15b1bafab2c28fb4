/*
 * test_decide: decisions under the reference policy (fixtures/policy/passei):
 * the decisions corpus (fixtures/policy/decisions.json, also run by
 * `martgate policy test`), reasons a person can read, the starting
 * search_path, catalog visibility predicates (which must parse as SQL),
 * claims binding, prepared statements, decision reuse and the hot path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pg_query.h>

#include "policy/analyze.h"
#include "policy/decide.h"
#include "policy/policy.h"
#include "policy/policy_cases.h"

#define FIX "tests/unit/fixtures/policy/"

static policy_t *P;

static int setup(void **state)
{
    char err[2048];
    if (policy_load(FIX "passei", &P, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    policy_unref(P);
    return 0;
}

/* Analyses and decides sql for who with an explicit search_path. */
static decide_verdict run(const decide_principal *who, const char *const *sp, size_t nsp, const char *sql,
                          decision *d, analysis **out)
{
    analyze_context ctx = {.database = "dw", .search_path = sp, .n_search_path = nsp};
    analysis *a = NULL;
    analyze_error aerr;
    if (analyze_sql(sql, &ctx, &a, &aerr) != 0) {
        fprintf(stderr, "analysis failed: %s\n", aerr.message);
        fail();
    }
    decide_request req = {.sql = sql, .facts = a, .who = who};
    char err[512];
    decision_init(d);
    assert_int_equal(decide(P, &req, d, err, sizeof err), 0);
    *out = a;
    return d->verdict;
}

static const char *const PUBLIC_PATH[] = {"public"};

static void test_corpus(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    size_t passed = 0, failed = 0;
    char err[2048];
    int rc = policy_run_cases(P, FIX "decisions.json", out, &passed, &failed, err, sizeof err);
    fclose(out);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    if (failed)
        fputs(buf, stderr);
    assert_int_equal(rc, 0);
    assert_int_equal(failed, 0);
    assert_true(passed >= 60);
    char last[64];
    snprintf(last, sizeof last, "%zu passed, 0 failed\n", passed);
    assert_non_null(strstr(buf, last));
    free(buf);
}

static void test_failing_cases_are_explained(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    size_t passed = 0, failed = 0;
    char err[2048];
    assert_int_equal(policy_run_cases(P, FIX "failing-cases.json", out, &passed, &failed, err, sizeof err), 0);
    fclose(out);
    assert_int_equal(passed, 1);
    assert_int_equal(failed, 3);
    assert_non_null(strstr(buf, "FAIL expects allow (" FIX "failing-cases.json:"));
    assert_non_null(strstr(buf, "expected allow, got deny; expected rule 'squad-origination-marts', got no rule"));
    assert_non_null(strstr(buf, "reason: no rule gives olga read on raw.leads"));
    assert_non_null(strstr(buf, "FAIL cases[2]: " FIX "failing-cases.json:"));
    assert_non_null(strstr(buf, "missing required key 'sql'"));
    assert_non_null(strstr(buf, "expected it to turn on 'raw.other', it turned on 'raw.leads'"));
    assert_non_null(strstr(buf, "\n1 passed, 3 failed\n"));
    free(buf);
    /* a file that is not a cases file */
    out = open_memstream(&buf, &len);
    assert_int_equal(policy_run_cases(P, FIX "passei/00-base.json", out, &passed, &failed, err, sizeof err), -1);
    fclose(out);
    free(buf);
    assert_non_null(strstr(err, "unknown key"));
}

static void test_reasons(void **state)
{
    decide_principal olga = {"olga", NULL, 0, NULL};
    decision d;
    analysis *a;
    assert_int_equal(run(&olga, PUBLIC_PATH, 1, "SELECT l.id FROM raw.leads l JOIN origination_mart.loans o ON o.lead_id = l.id", &d, &a),
                     DECIDE_DENY);
    assert_null(d.rule_id);
    assert_string_equal(decision_reason(&d),
                        "no rule gives olga read on raw.leads (dataset raw; default deny); rule 'squad-origination-marts' "
                        "gives group squad-origination read on dataset origination only");
    /* every item has its own verdict and reason */
    assert_int_equal(d.n_items, 2);
    char why[1024];
    decide_item_reason(&d, 1, why, sizeof why);
    assert_string_equal(why, "relation origination_mart.loans (dataset origination): rule 'squad-origination-marts' gives "
                             "group squad-origination read on dataset origination");
    assert_int_equal(d.items[1].verdict, DECIDE_ALLOW);
    assert_string_equal(d.items[1].rule_id, "squad-origination-marts");
    decision_free(&d);
    analysis_free(a);

    decide_principal carla = {"carla", NULL, 0, NULL};
    assert_int_equal(run(&carla, PUBLIC_PATH, 1, "SELECT * FROM raw.credentials", &d, &a), DECIDE_DENY);
    assert_string_equal(d.rule_id, "data-scientists-no-secrets");
    assert_string_equal(decision_reason(&d), "relation raw.credentials (dataset raw): rule 'data-scientists-no-secrets' "
                                             "denies group data-scientists access to table raw.credentials, raw_*.secrets_*");
    decision_free(&d);
    analysis_free(a);
}

static void test_effective_groups(void **state)
{
    const char *g[8];
    const char *tok[] = {"bi-users"};
    decide_principal maria = {"gov-maria", tok, 1, NULL};
    assert_int_equal(decide_effective_groups(P, &maria, g, 8), 2);
    assert_string_equal(g[0], "bi-users");
    assert_string_equal(g[1], "governance");
    /* a group the token already carries is not repeated */
    const char *tok2[] = {"governance"};
    decide_principal m2 = {"gov-maria", tok2, 1, NULL};
    assert_int_equal(decide_effective_groups(P, &m2, g, 8), 1);
    assert_true(decide_full_catalog(P, &maria));
    decide_principal olga = {"olga", NULL, 0, NULL};
    assert_false(decide_full_catalog(P, &olga));
}

static void test_many_groups(void **state)
{
    /* more groups than the stack buffer: the last one still counts */
    const char *groups[100];
    char names[100][16];
    for (int i = 0; i < 99; i++) {
        snprintf(names[i], sizeof names[i], "noise-%d", i);
        groups[i] = names[i];
    }
    groups[99] = "data-scientists";
    decide_principal who = {"x", groups, 100, NULL};
    decision d;
    analysis *a;
    assert_int_equal(run(&who, PUBLIC_PATH, 1, "SELECT * FROM raw.credentials", &d, &a), DECIDE_DENY);
    assert_string_equal(d.rule_id, "data-scientists-no-secrets");
    decision_free(&d);
    analysis_free(a);
}

static void test_search_path(void **state)
{
    decide_principal sam = {"sam", NULL, 0, NULL};
    const char **sp;
    size_t n;
    assert_int_equal(decide_search_path(P, &sam, &sp, &n), 0);
    assert_int_equal(n, 3);   /* raw is dropped: sam may not read it */
    assert_string_equal(sp[0], "sales_mart");
    assert_string_equal(sp[1], "shared_mart");
    assert_string_equal(sp[2], "public");
    free(sp);
    char *t = decide_search_path_text(P, &sam);
    assert_string_equal(t, "sales_mart, shared_mart, public");
    free(t);
    decide_principal ana = {"ana", NULL, 0, NULL};
    t = decide_search_path_text(P, &ana);
    assert_string_equal(t, "staging, raw, public");
    free(t);
    decide_principal zoe = {"zoe", NULL, 0, NULL};
    t = decide_search_path_text(P, &zoe);
    assert_string_equal(t, "public");
    free(t);
    /* no defaults at all: an empty search_path */
    policy_t *p;
    char err[512];
    assert_int_equal(policy_load_text("x.json", "{}", 2, &p, NULL, err, sizeof err), 0);
    t = decide_search_path_text(p, &zoe);
    assert_string_equal(t, "''");
    free(t);
    policy_unref(p);
    /* the SET search_path test */
    decide_principal olga = {"olga", NULL, 0, NULL};
    assert_true(decide_schema_readable(P, &olga, "origination_mart"));
    assert_true(decide_schema_readable(P, &olga, "funnel_data_mart"));   /* one table pattern is enough */
    assert_true(decide_schema_readable(P, &olga, "pg_catalog"));
    assert_false(decide_schema_readable(P, &olga, "raw"));
    assert_false(decide_schema_readable(P, &olga, "pg_toast"));
}

static void check_parses(const char *pred)
{
    size_t n = strlen(pred) + 64;
    char *sql = malloc(n);
    snprintf(sql, n, "SELECT 1 FROM t WHERE %s", pred);
    PgQueryParseResult r = pg_query_parse(sql);
    if (r.error)
        fprintf(stderr, "does not parse: %s\n%s\n", r.error->message, sql);
    assert_null(r.error);
    pg_query_free_parse_result(r);
    free(sql);
}

static void test_catalog_visibility(void **state)
{
    decide_principal olga = {"olga", NULL, 0, NULL};
    decide_visibility v = {P, &olga};
    char *s = decide_catalog_visible(&v, "n.nspname", NULL);
    assert_non_null(s);
    check_parses(s);
    assert_non_null(strstr(s, "(CASE WHEN n.nspname IN ('pg_catalog', 'information_schema') THEN true"));
    assert_non_null(strstr(s, "n.nspname = 'origination_mart'"));
    assert_non_null(strstr(s, "n.nspname = 'funnel_data_mart'"));
    assert_null(strstr(s, "'raw'"));
    assert_non_null(strstr(s, "ELSE false END)"));
    free(s);
    s = decide_catalog_visible(&v, "c.table_schema", "c.table_name");
    check_parses(s);
    assert_non_null(strstr(s, "(c.table_schema = 'shared_mart') AND (c.table_name = 'customers')"));
    free(s);
    /* a deny rule becomes THEN false, before the broader read */
    decide_principal carla = {"carla", NULL, 0, NULL};
    v.who = &carla;
    s = decide_catalog_visible(&v, "s", "t");
    check_parses(s);
    const char *deny = strstr(s, "(s = 'raw') AND (t = 'credentials')");
    const char *read = strstr(s, "s LIKE 'raw!_%' ESCAPE '!'");
    assert_non_null(deny);
    assert_non_null(read);
    assert_true(deny < read);
    assert_non_null(strstr(deny, "THEN false"));
    free(s);
    /* schema level: a table-level deny does not hide the schema */
    s = decide_catalog_visible(&v, "s", NULL);
    check_parses(s);
    assert_null(strstr(s, "credentials"));
    free(s);
    /* quotes and LIKE metacharacters in names stay literal */
    policy_t *p;
    char err[512];
    const char *txt = "{\"rules\": [{\"id\": \"q\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"tables\": [\"o'k_1%.x*\"]}, \"access\": \"read\"}]}";
    assert_int_equal(policy_load_text("q.json", txt, strlen(txt), &p, NULL, err, sizeof err), 0);
    decide_visibility v2 = {p, &olga};
    s = decide_catalog_visible(&v2, "s", "t");
    check_parses(s);
    assert_non_null(strstr(s, "((s = 'o''k_1%') AND (t LIKE 'x%' ESCAPE '!'))"));
    free(s);
    policy_unref(p);
}

static int no_columns(void *ctx, const char *schema, const char *table, const char ***names, size_t *n)
{
    return -1;
}

static bool knows_p(void *ctx, const char *name)
{
    return strcmp(name, "p") == 0;
}

static void test_requests(void **state)
{
    decide_principal olga = {"olga", NULL, 0, NULL};
    const char *const sp[] = {"origination_mart", "public"};
    analyze_context ctx = {.database = "dw", .search_path = sp, .n_search_path = 2};
    analysis *a;
    analyze_error aerr;
    char err[512];
    decision d;
    decision_init(&d);
    /* masks with a column look-up that fails: deny */
    const char *sql = "SELECT * FROM shared_mart.customers";
    assert_int_equal(analyze_sql(sql, &ctx, &a, &aerr), 0);
    decide_request req = {.sql = sql, .facts = a, .who = &olga, .columns = no_columns};
    assert_int_equal(decide(P, &req, &d, err, sizeof err), 0);
    assert_int_equal(d.verdict, DECIDE_DENY);
    assert_non_null(strstr(decision_reason(&d), "its column list is unknown"));
    assert_null(d.rewritten_sql);
    analysis_free(a);
    /* EXECUTE of a prepared statement the session knows */
    sql = "EXECUTE p";
    assert_int_equal(analyze_sql(sql, &ctx, &a, &aerr), 0);
    decide_request r2 = {.sql = sql, .facts = a, .who = &olga, .prepared = knows_p};
    assert_int_equal(decide(P, &r2, &d, err, sizeof err), 0);
    assert_int_equal(d.verdict, DECIDE_ALLOW);
    analysis_free(a);
    sql = "EXECUTE q";
    assert_int_equal(analyze_sql(sql, &ctx, &a, &aerr), 0);
    decide_request r3 = {.sql = sql, .facts = a, .who = &olga, .prepared = knows_p};
    assert_int_equal(decide(P, &r3, &d, err, sizeof err), 0);
    assert_int_equal(d.verdict, DECIDE_DENY);
    analysis_free(a);
    /* claims as arrays bind as text[] */
    json_t *claims = json_pack("{s:[s,s]}", "region", "south", "it's");
    decide_principal o2 = {"olga", NULL, 0, claims};
    sql = "SELECT * FROM funnel_data_mart.leads";
    assert_int_equal(analyze_sql(sql, &ctx, &a, &aerr), 0);
    decide_request r4 = {.sql = sql, .facts = a, .who = &o2};
    assert_int_equal(decide(P, &r4, &d, err, sizeof err), 0);
    assert_int_equal(d.verdict, DECIDE_REWRITE);
    assert_non_null(strstr(d.rewritten_sql, "region = ARRAY['south', 'it''s']::text[]"));
    analysis_free(a);
    json_decref(claims);
    /* an unqualified masked/filtered name the search_path leaves ambiguous */
    const char *const sp2[] = {"funnel_data_mart", "public"};
    ctx.search_path = sp2;
    sql = "SELECT * FROM leads";
    assert_int_equal(analyze_sql(sql, &ctx, &a, &aerr), 0);
    claims = json_pack("{s:s}", "region", "south");
    decide_principal o3 = {"olga", NULL, 0, claims};
    decide_request r5 = {.sql = sql, .facts = a, .who = &o3};
    assert_int_equal(decide(P, &r5, &d, err, sizeof err), 0);
    assert_int_equal(d.verdict, DECIDE_DENY);
    assert_non_null(strstr(decision_reason(&d), "qualify it"));
    analysis_free(a);
    /* with one real candidate it is rewritten, qualified */
    ctx.search_path = sp2;
    ctx.n_search_path = 1;
    assert_int_equal(analyze_sql(sql, &ctx, &a, &aerr), 0);
    decide_request r6 = {.sql = sql, .facts = a, .who = &o3};
    assert_int_equal(decide(P, &r6, &d, err, sizeof err), 0);
    assert_int_equal(d.verdict, DECIDE_REWRITE);
    assert_non_null(strstr(d.rewritten_sql, "FROM funnel_data_mart.leads WHERE"));
    analysis_free(a);
    json_decref(claims);
    decision_free(&d);
}

/* One decision reused for many statements (as a caller may): the same
 * verdict and reason each time, and its item array kept once grown. How
 * long it takes is measured by bench/bench_analyze, not asserted here. */
static void test_hot_path(void **state)
{
    const char *sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 1";
    decide_principal zoe = {"zoe", NULL, 0, NULL};
    analyze_context ctx = {.database = "dw", .search_path = PUBLIC_PATH, .n_search_path = 1};
    decision d;
    decision_init(&d);
    char err[256];
    size_t cap = 0;
    for (int i = 0; i < 2000; i++) {
        analysis *a;
        analyze_error aerr;
        assert_int_equal(analyze_sql(sql, &ctx, &a, &aerr), 0);
        decide_request req = {.sql = sql, .facts = a, .who = &zoe};
        assert_int_equal(decide(P, &req, &d, err, sizeof err), 0);
        assert_int_equal(d.verdict, DECIDE_ALLOW);
        /* reasons borrow from the analysis: format before freeing it */
        assert_string_equal(decision_reason(&d), "relation public.pgbench_accounts (dataset shared): rule "
                                                 "'everyone-shared' gives everyone read on dataset shared");
        if (i == 0)
            cap = d.cap;
        assert_true(cap >= 1);
        assert_int_equal(d.cap, cap);   /* no reallocation once grown */
        analysis_free(a);
    }
    decision_free(&d);
}


/* EXPLAIN of a rewritten statement (decide_explain.c), the
 * defaults.explain_filtered switch, EXPLAIN EXECUTE, and the keyed hash. */
static const char *const EXPLAIN_POLICY_FMT =
    "{%s\"rules\": ["
    "{\"id\": \"w\", \"subjects\": {\"users\": [\"ann\"]}, \"objects\": {\"tables\": [\"m.out\"]}, \"access\": \"write\"},"
    "{\"id\": \"f\", \"subjects\": {\"users\": [\"ann\"]}, \"objects\": {\"tables\": [\"m.f\"]}, \"access\": \"read\","
    " \"row_filter\": \"region = 'south'\"},"
    "{\"id\": \"h\", \"subjects\": {\"users\": [\"ann\"]}, \"objects\": {\"tables\": [\"m.h\"]}, \"access\": \"read\","
    " \"columns\": {\"email\": \"hash\"}},"
    "{\"id\": \"r\", \"subjects\": {\"users\": [\"ann\"]}, \"objects\": {\"tables\": [\"m.plain\"]}, \"access\": \"read\"}]}";

static int h_columns(void *ctx, const char *schema, const char *table, const char ***names, size_t *n)
{
    static const char *cols[] = {"id", "email"};
    *names = cols;
    *n = 2;
    return 0;
}

static unsigned prepared_bits;
static unsigned prepared_rewrite_is(void *ctx, const char *name)
{
    return prepared_bits;
}

static decide_verdict explain_run(const policy_t *p, const char *sql, const rewrite_hash_key *k, bool rewrite_cb,
                                  char *reason, size_t len, char **rewritten)
{
    static const char *const path[] = {"m"};
    analyze_context ctx = {.database = "dw", .search_path = path, .n_search_path = 1};
    analysis *a = NULL;
    analyze_error aerr;
    assert_int_equal(analyze_sql(sql, &ctx, &a, &aerr), 0);
    decide_principal ann = {"ann", NULL, 0, NULL};
    decide_request req = {.sql = sql, .facts = a, .who = &ann, .columns = h_columns, .prepared = knows_p,
                          .hash_key = k, .prepared_rewrite = rewrite_cb ? prepared_rewrite_is : NULL};
    decision d;
    decision_init(&d);
    char err[512];
    assert_int_equal(decide(p, &req, &d, err, sizeof err), 0);
    decide_verdict v = d.verdict;
    snprintf(reason, len, "%s", decision_reason(&d));
    if (rewritten)
        *rewritten = d.rewritten_sql ? strdup(d.rewritten_sql) : NULL;
    decision_free(&d);
    analysis_free(a);
    return v;
}

static void test_explain_of_rewrites(void **state)
{
    char txt[4096], err[2048], why[1024];
    policy_t *deny_p = NULL, *plan_p = NULL;
    snprintf(txt, sizeof txt, EXPLAIN_POLICY_FMT, "");
    assert_int_equal(policy_load_text("d.json", txt, strlen(txt), &deny_p, NULL, err, sizeof err), 0);
    snprintf(txt, sizeof txt, EXPLAIN_POLICY_FMT, "\"defaults\": {\"explain_filtered\": \"plan\"}, ");
    assert_int_equal(policy_load_text("p.json", txt, strlen(txt), &plan_p, NULL, err, sizeof err), 0);
    rewrite_hash_key key;
    assert_int_equal(rewrite_hash_key_init(&key, (const unsigned char *)"0123456789abcdef0123456789abcdef", 32), 0);
    static const struct {
        const char *sql;
        decide_verdict by_default, with_plan;
        const char *reason_default, *reason_plan;
    } cases[] = {   /* plain EXPLAIN under "plan" runs on the rewritten text */
        {"EXPLAIN SELECT * FROM m.f", DECIDE_DENY, DECIDE_REWRITE, "defaults.explain_filtered: \"plan\"", NULL},
        {"EXPLAIN (FORMAT json, COSTS off) SELECT * FROM m.f", DECIDE_DENY, DECIDE_REWRITE, "relation m.f", NULL},
        {"EXPLAIN ANALYZE SELECT * FROM m.f", DECIDE_DENY, DECIDE_DENY, "hidden rows' counts", "drop ANALYZE"},
        {"EXPLAIN (ANALYZE true) SELECT * FROM m.f", DECIDE_DENY, DECIDE_DENY, NULL, "EXPLAIN ANALYZE of"},
        {"EXPLAIN VERBOSE SELECT * FROM m.f", DECIDE_DENY, DECIDE_DENY, NULL, "EXPLAIN VERBOSE of"},
        {"EXPLAIN (VERBOSE on, FORMAT xml) SELECT * FROM m.f", DECIDE_DENY, DECIDE_DENY, NULL, "drop ANALYZE and VERBOSE"},
        {"EXPLAIN ANALYZE VERBOSE SELECT * FROM m.f", DECIDE_DENY, DECIDE_DENY, NULL, "EXPLAIN ANALYZE VERBOSE"},
        {"EXPLAIN SELECT email FROM m.h", DECIDE_DENY, DECIDE_DENY, NULL, "hash-masked column (relation m.h)"},
        {"EXPLAIN WITH x AS (SELECT * FROM m.f) SELECT * FROM m.plain, x", DECIDE_DENY, DECIDE_REWRITE, NULL, NULL},
        {"EXPLAIN SELECT * FROM m.plain WHERE id IN (SELECT id FROM m.h)", DECIDE_DENY, DECIDE_DENY, NULL, "hash-masked"},
        {"EXPLAIN CREATE TABLE m.out AS SELECT * FROM m.f", DECIDE_DENY, DECIDE_REWRITE, NULL, NULL},
        {"EXPLAIN ANALYZE CREATE TABLE m.out AS SELECT * FROM m.f", DECIDE_DENY, DECIDE_DENY, NULL, "drop ANALYZE"},
        {"EXPLAIN ANALYZE VERBOSE SELECT * FROM m.plain", DECIDE_ALLOW, DECIDE_ALLOW, NULL, NULL},
        {"SELECT * FROM m.f", DECIDE_REWRITE, DECIDE_REWRITE, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        decide_verdict v = explain_run(deny_p, cases[i].sql, &key, false, why, sizeof why, NULL);
        if (v != cases[i].by_default || (cases[i].reason_default && !strstr(why, cases[i].reason_default)))
            fail_msg("%s (default): got %s: %s", cases[i].sql, decide_verdict_name(v), why);
        v = explain_run(plan_p, cases[i].sql, &key, false, why, sizeof why, NULL);
        if (v != cases[i].with_plan || (cases[i].reason_plan && !strstr(why, cases[i].reason_plan)))
            fail_msg("%s (plan): got %s: %s", cases[i].sql, decide_verdict_name(v), why);
    }
    /* EXPLAIN EXECUTE: what the session says the statement was forwarded as */
    static const struct {
        unsigned bits;
        bool cb;
        decide_verdict by_default, with_plan;
    } ex[] = {
        {0, true, DECIDE_ALLOW, DECIDE_ALLOW},
        {DECIDE_PREPARED_REWRITTEN, true, DECIDE_DENY, DECIDE_ALLOW},
        {DECIDE_PREPARED_REWRITTEN | DECIDE_PREPARED_KEYED, true, DECIDE_DENY, DECIDE_DENY},
        {0, false, DECIDE_DENY, DECIDE_DENY},   /* no way to tell: as if keyed */
    };
    const char *const ex_sql[] = {"EXPLAIN EXECUTE p", "EXPLAIN ANALYZE EXECUTE p"};
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        for (size_t k = 0; k < 2; k++) {
            prepared_bits = ex[i].bits;
            bool rewritten = ex[i].bits || !ex[i].cb;
            decide_verdict v = explain_run(deny_p, ex_sql[k], &key, ex[i].cb, why, sizeof why, NULL);
            if (v != ex[i].by_default)
                fail_msg("%s bits %u (default): got %s: %s", ex_sql[k], ex[i].bits, decide_verdict_name(v), why);
            if (v == DECIDE_DENY)
                assert_non_null(strstr(why, "prepared statement p"));
            v = explain_run(plan_p, ex_sql[k], &key, ex[i].cb, why, sizeof why, NULL);
            decide_verdict want = k == 1 && rewritten ? DECIDE_DENY : ex[i].with_plan;
            if (v != want)
                fail_msg("%s bits %u (plan): got %s: %s", ex_sql[k], ex[i].bits, decide_verdict_name(v), why);
        }
    /* the hash mask: keyed with the request's key, denied without one */
    char *out = NULL;
    assert_int_equal(explain_run(deny_p, "SELECT email FROM m.h", &key, false, why, sizeof why, &out), DECIDE_REWRITE);
    assert_non_null(out);
    assert_non_null(strstr(out, key.ipad_hex));
    assert_non_null(strstr(out, key.opad_hex));
    assert_non_null(strstr(out, "pg_catalog.sha256("));
    assert_null(strstr(out, "md5"));
    free(out);
    assert_int_equal(explain_run(deny_p, "SELECT email FROM m.h", NULL, false, why, sizeof why, &out), DECIDE_DENY);
    assert_null(out);
    assert_non_null(strstr(why, "hash_mask_key_file"));
    char use[200];
    assert_true(policy_hash_mask_use(deny_p, use, sizeof use));
    assert_string_equal(use, "rule 'h' (column email)");
    assert_false(policy_hash_mask_use(P, use, sizeof use) && strstr(use, "rule 'h'"));
    policy_unref(deny_p);
    policy_unref(plan_p);
    /* the switch's values */
    policy_t *bad = NULL;
    const char *btxt = "{\"defaults\": {\"explain_filtered\": \"yes\"}}";
    assert_int_equal(policy_load_text("b.json", btxt, strlen(btxt), &bad, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "defaults.explain_filtered"));
    assert_non_null(strstr(err, "\"plan\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_failing_cases_are_explained),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_effective_groups),
        cmocka_unit_test(test_many_groups),
        cmocka_unit_test(test_search_path),
        cmocka_unit_test(test_catalog_visibility),
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_hot_path),
        cmocka_unit_test(test_explain_of_rewrites),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
