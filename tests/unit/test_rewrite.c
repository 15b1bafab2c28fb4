/*
 * test_rewrite: policy/rewrite. Relation substitution is checked against the
 * exact expected text (every byte outside the substituted names unchanged),
 * and every output is parsed again with the real parser. The builders
 * (masked relation, mask kinds, quoting) are checked text for text, and the
 * catalog filters over the real catalog queries of psql, pgjdbc and Metabase.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/analyze.h"
#include "policy/rewrite.h"

#define SUB "SELECT * FROM mart.t WHERE f OFFSET 0"

static const char *const test_path[] = {"public"};
static const analyze_context test_ctx = {.database = "warehouse",
                                         .search_path = test_path,
                                         .n_search_path = 1,
                                         .session_user = "metabase"};

static void assert_parses(const char *sql)
{
    analysis *a = NULL;
    analyze_error err;
    int rc = analyze_sql(sql, &test_ctx, &a, &err);
    if (rc != 0)
        print_error("does not parse (%s at %d): %s\n", err.message, err.cursor_position, sql);
    assert_int_equal(rc, 0);
    analysis_free(a);
}

/* Substitutes every relation read in FROM whose resolved schema.name is
 * `target` ("*" for all of them) with SUB. Returns the rewrite's status. */
static int rewrite_target(const char *sql, const char *target, char **out, char *err,
                          size_t errlen)
{
    analysis *a = NULL;
    analyze_error aerr;
    assert_int_equal(analyze_sql(sql, &test_ctx, &a, &aerr), 0);
    rewrite_substitution subs[16];
    size_t n = 0;
    for (size_t i = 0; i < a->n_relations && n < 16; i++) {
        const analysis_relation *r = &a->relations[i];
        char name[256];
        snprintf(name, sizeof name, "%s.%s", r->schema ? r->schema : "?", r->name);
        if (!strcmp(target, "*") || !strcmp(target, name)) {
            subs[n].relation = i;
            subs[n].replacement = SUB;
            n++;
        }
    }
    int rc = rewrite_apply(sql, a, subs, n, out, err, errlen);
    analysis_free(a);
    return rc;
}

static void expect_rewrite(const char *sql, const char *target, const char *expected)
{
    char *out = NULL;
    char err[512] = "";
    int rc = rewrite_target(sql, target, &out, err, sizeof err);
    if (rc != 0)
        print_error("rewrite failed: %s\n  for %s\n", err, sql);
    assert_int_equal(rc, 0);
    if (strcmp(out, expected) != 0)
        print_error("rewrite of   %s\n  expected    %s\n  actual      %s\n", sql, expected, out);
    assert_string_equal(out, expected);
    assert_parses(out);
    free(out);
}

static void expect_rewrite_error(const char *sql, const char *target, const char *message)
{
    char *out = (char *)1;
    char err[512] = "";
    assert_int_equal(rewrite_target(sql, target, &out, err, sizeof err), -1);
    assert_null(out);
    if (!strstr(err, message))
        print_error("error \"%s\" does not say \"%s\"\n", err, message);
    assert_non_null(strstr(err, message));
}

/* ---- substitution ------------------------------------------------------ */

static void test_plain_and_aliases(void **state)
{
    (void)state;
    expect_rewrite("SELECT * FROM mart.t", "mart.t", "SELECT * FROM (" SUB ") AS t");
    expect_rewrite("SELECT x.a FROM mart.t x WHERE x.a > 1", "mart.t",
                   "SELECT x.a FROM (" SUB ") x WHERE x.a > 1");
    expect_rewrite("SELECT x.a FROM mart.t AS x", "mart.t", "SELECT x.a FROM (" SUB ") AS x");
    expect_rewrite("SELECT * FROM mart.t AS x(a, b)", "mart.t",
                   "SELECT * FROM (" SUB ") AS x(a, b)");
    expect_rewrite("SELECT t FROM mart.t", "mart.t", "SELECT t FROM (" SUB ") AS t");
    expect_rewrite("select count(*)\n  from\tmart.t\nwhere 1=1;", "mart.t",
                   "select count(*)\n  from\t(" SUB ") AS t\nwhere 1=1;");
    expect_rewrite("SELECT * FROM\"mart\".\"t\"WHERE true", "mart.t",
                   "SELECT * FROM(" SUB ") AS t WHERE true");
    expect_rewrite("SELECT * FROM\"mart\".\"T\"\"x\"", "mart.T\"x",
                   "SELECT * FROM(" SUB ") AS \"T\"\"x\"");
    expect_rewrite("SELECT 1 FROM mart.\"T\",mart.u", "mart.T",
                   "SELECT 1 FROM (" SUB ") AS \"T\",mart.u");
}

static void test_schema_qualified_columns(void **state)
{
    (void)state;
    expect_rewrite("SELECT mart.t.a, \"mart\".\"t\".\"b\", mart.t.* FROM mart.t WHERE mart.t.a > 1",
                   "mart.t",
                   "SELECT t.a, \"t\".\"b\", t.* FROM (" SUB ") AS t WHERE t.a > 1");
    /* what Metabase writes */
    expect_rewrite("SELECT \"mart\".\"t\".\"id\" AS \"id\", \"mart\".\"t\".\"email\" AS \"email\" "
                   "FROM \"mart\".\"t\" WHERE \"mart\".\"t\".\"id\" = 1 LIMIT 2000",
                   "mart.t",
                   "SELECT \"t\".\"id\" AS \"id\", \"t\".\"email\" AS \"email\" FROM (" SUB
                   ") AS t WHERE \"t\".\"id\" = 1 LIMIT 2000");
    expect_rewrite("SELECT warehouse.mart.t.a FROM warehouse.mart.t", "mart.t",
                   "SELECT t.a FROM (" SUB ") AS t");
    expect_rewrite("SELECT mart /* c */ . t . a FROM mart.t", "mart.t",
                   "SELECT t . a FROM (" SUB ") AS t");
    /* an unqualified reference that may be public.t, columns written so */
    expect_rewrite("SELECT public.t.a FROM t", "?.t", "SELECT t.a FROM (" SUB ") AS t");
    expect_rewrite("SELECT other.t.a FROM t", "?.t", "SELECT other.t.a FROM (" SUB ") AS t");
    /* columns of other tables stay */
    expect_rewrite("SELECT mart.t.a, mart.u.b FROM mart.t, mart.u", "mart.t",
                   "SELECT t.a, mart.u.b FROM (" SUB ") AS t, mart.u");
    /* with an alias the schema-qualified form is not valid SQL: left alone */
    expect_rewrite("SELECT x.a FROM mart.t x ORDER BY mart.u.a", "mart.t",
                   "SELECT x.a FROM (" SUB ") x ORDER BY mart.u.a");
}

static void test_joins_subqueries_ctes(void **state)
{
    (void)state;
    expect_rewrite("SELECT * FROM mart.t JOIN mart.u ON t.id = u.id LEFT JOIN mart.v v ON true",
                   "mart.t",
                   "SELECT * FROM (" SUB ") AS t JOIN mart.u ON t.id = u.id LEFT JOIN mart.v v ON "
                   "true");
    expect_rewrite("WITH c AS (SELECT * FROM mart.t) SELECT * FROM c, (SELECT a FROM mart.t) s",
                   "mart.t",
                   "WITH c AS (SELECT * FROM (" SUB ") AS t) SELECT * FROM c, (SELECT a FROM (" SUB
                   ") AS t) s");
    expect_rewrite("SELECT * FROM mart.a, LATERAL (SELECT * FROM mart.t WHERE t.id = a.id) x",
                   "mart.t",
                   "SELECT * FROM mart.a, LATERAL (SELECT * FROM (" SUB
                   ") AS t WHERE t.id = a.id) x");
    expect_rewrite("SELECT 1 WHERE EXISTS (SELECT 1 FROM mart.t WHERE mart.t.a = 1)", "mart.t",
                   "SELECT 1 WHERE EXISTS (SELECT 1 FROM (" SUB ") AS t WHERE t.a = 1)");
    expect_rewrite("SELECT a FROM mart.t UNION ALL SELECT a FROM mart.t", "mart.t",
                   "SELECT a FROM (" SUB ") AS t UNION ALL SELECT a FROM (" SUB ") AS t");
    expect_rewrite("SELECT * FROM mart.t NATURAL JOIN mart.u", "*",
                   "SELECT * FROM (" SUB ") AS t NATURAL JOIN (" SUB ") AS u");
}

static void test_writes_around_reads(void **state)
{
    (void)state;
    expect_rewrite("INSERT INTO other.x SELECT * FROM mart.t", "mart.t",
                   "INSERT INTO other.x SELECT * FROM (" SUB ") AS t");
    expect_rewrite("UPDATE other.x SET a = t.a FROM mart.t WHERE t.id = x.id", "mart.t",
                   "UPDATE other.x SET a = t.a FROM (" SUB ") AS t WHERE t.id = x.id");
    expect_rewrite("DELETE FROM other.x USING mart.t s WHERE s.id = x.id", "mart.t",
                   "DELETE FROM other.x USING (" SUB ") s WHERE s.id = x.id");
    expect_rewrite("MERGE INTO other.x USING mart.t s ON s.id = x.id WHEN MATCHED THEN DELETE",
                   "mart.t",
                   "MERGE INTO other.x USING (" SUB ") s ON s.id = x.id WHEN MATCHED THEN DELETE");
    expect_rewrite("CREATE VIEW other.v AS SELECT * FROM mart.t", "mart.t",
                   "CREATE VIEW other.v AS SELECT * FROM (" SUB ") AS t");
    /* a stored query keeps the filter it was made under: a temporary view
     * (always readable by its session) or a table made from the read */
    expect_rewrite("CREATE TEMP VIEW v AS SELECT * FROM mart.t", "mart.t",
                   "CREATE TEMP VIEW v AS SELECT * FROM (" SUB ") AS t");
    expect_rewrite("CREATE TEMP TABLE x AS SELECT * FROM mart.t", "mart.t",
                   "CREATE TEMP TABLE x AS SELECT * FROM (" SUB ") AS t");
    expect_rewrite("CREATE MATERIALIZED VIEW other.m AS SELECT * FROM mart.t", "mart.t",
                   "CREATE MATERIALIZED VIEW other.m AS SELECT * FROM (" SUB ") AS t");
    expect_rewrite("COPY (SELECT * FROM mart.t) TO STDOUT", "mart.t",
                   "COPY (SELECT * FROM (" SUB ") AS t) TO STDOUT");
    expect_rewrite("EXPLAIN SELECT * FROM mart.t", "mart.t",
                   "EXPLAIN SELECT * FROM (" SUB ") AS t");
}

static void test_names_as_written(void **state)
{
    (void)state;
    expect_rewrite("SELECT * FROM \"Mart\".\"T\"", "Mart.T", "SELECT * FROM (" SUB ") AS \"T\"");
    expect_rewrite("SELECT * FROM MART.T", "mart.t", "SELECT * FROM (" SUB ") AS t");
    expect_rewrite("SELECT * FROM U&\"m\\0061rt\".t", "mart.t", "SELECT * FROM (" SUB ") AS t");
    expect_rewrite("SELECT * FROM U&\"m!0061rt\" UESCAPE '!' . t x", "mart.t",
                   "SELECT * FROM (" SUB ") x");
    expect_rewrite("SELECT * FROM mart.\"select\"", "mart.select",
                   "SELECT * FROM (" SUB ") AS \"select\"");
    expect_rewrite("SELECT * FROM mart.user", "mart.user", "SELECT * FROM (" SUB ") AS \"user\"");
    expect_rewrite("SELECT * FROM mart.\"we\"\"ird\"", "mart.we\"ird",
                   "SELECT * FROM (" SUB ") AS \"we\"\"ird\"");
    expect_rewrite("SELECT * FROM mart /* raw.leads */ . t -- mart.t\n", "mart.t",
                   "SELECT * FROM (" SUB ") AS t -- mart.t\n");
    expect_rewrite("SELECT 'mart.t', $$ FROM mart.t $$ FROM mart.t", "mart.t",
                   "SELECT 'mart.t', $$ FROM mart.t $$ FROM (" SUB ") AS t");
    expect_rewrite("SELECT * FROM mart.données", "mart.données",
                   "SELECT * FROM (" SUB ") AS \"données\"");
}

static void test_only_table_star(void **state)
{
    (void)state;
    expect_rewrite("SELECT * FROM ONLY mart.t", "mart.t", "SELECT * FROM (" SUB ") AS t");
    expect_rewrite("SELECT * FROM ONLY (mart.t) x", "mart.t", "SELECT * FROM (" SUB ") x");
    expect_rewrite("SELECT * FROM mart.t * WHERE true", "mart.t",
                   "SELECT * FROM (" SUB ") AS t WHERE true");
    expect_rewrite("TABLE mart.t", "mart.t", "SELECT * FROM (" SUB ") AS t");
    expect_rewrite("TABLE ONLY mart.t ORDER BY 1", "mart.t",
                   "SELECT * FROM (" SUB ") AS t ORDER BY 1");
    expect_rewrite("SELECT 1 UNION TABLE mart.t", "mart.t",
                   "SELECT 1 UNION SELECT * FROM (" SUB ") AS t");
}

static void test_multi_statement_and_noop(void **state)
{
    (void)state;
    expect_rewrite("SELECT 1; SELECT mart.t.a FROM mart.t; SELECT * FROM mart.u", "mart.t",
                   "SELECT 1; SELECT t.a FROM (" SUB ") AS t; SELECT * FROM mart.u");
    expect_rewrite("SELECT * FROM mart.u", "mart.t", "SELECT * FROM mart.u");
    /* a column reference in another statement than the substitution stays */
    expect_rewrite("SELECT mart.t.a FROM mart.t; SELECT mart.t.a FROM mart.t x, mart.t", "none",
                   "SELECT mart.t.a FROM mart.t; SELECT mart.t.a FROM mart.t x, mart.t");
}

/* The scanner reads only from the first statement with an edit to a little
 * past the last edit: the rest of the text is still copied unchanged. */
static void test_long_text_around_edits(void **state)
{
    (void)state;
    char sql[10000], expected[10000], list[2048];
    size_t at = 0;
    for (int i = 0; i < 300; i++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%d", i ? ", " : "", i);
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM mart.u WHERE x IN (%s); SELECT mart.t.a FROM mart.t WHERE a IN (%s) "
             "/* mart.t */; SELECT 'mart.t' FROM mart.u",
             list, list);
    snprintf(expected, sizeof expected,
             "SELECT 1 FROM mart.u WHERE x IN (%s); SELECT t.a FROM (" SUB
             ") AS t WHERE a IN (%s) /* mart.t */; SELECT 'mart.t' FROM mart.u",
             list, list);
    expect_rewrite(sql, "mart.t", expected);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_rewrite_error("UPDATE mart.t SET a = 1", "mart.t", "cannot be substituted");
    expect_rewrite_error("INSERT INTO mart.t VALUES (1)", "mart.t", "cannot be substituted");
    expect_rewrite_error("COPY mart.t TO STDOUT", "mart.t", "cannot be substituted");
    expect_rewrite_error("SELECT * FROM mart.t TABLESAMPLE SYSTEM (1)", "mart.t", "TABLESAMPLE");
    expect_rewrite_error("LOCK mart.t", "mart.t", "cannot be substituted");

    analysis *a;
    assert_int_equal(analyze_sql("SELECT * FROM mart.t", &test_ctx, &a, NULL), 0);
    char *out = NULL;
    char err[256];
    rewrite_substitution sub = {0, SUB};
    assert_int_equal(rewrite_apply("SELECT * FROM mart.x", a, &sub, 1, &out, err, sizeof err), 0);
    free(out);   /* same length: the name is then whatever is at that place */
    assert_int_equal(rewrite_apply("SELECT * FROM mart.tt", a, &sub, 1, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "not the one that was analysed"));
    rewrite_substitution bad = {7, SUB};
    assert_int_equal(rewrite_apply("SELECT * FROM mart.t", a, &bad, 1, &out, err, sizeof err), -1);
    rewrite_substitution twice[2] = {{0, SUB}, {0, SUB}};
    assert_int_equal(rewrite_apply("SELECT * FROM mart.t", a, twice, 2, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "twice"));
    rewrite_substitution none = {0, NULL};
    assert_int_equal(rewrite_apply("SELECT * FROM mart.t", a, &none, 1, &out, err, sizeof err), -1);
    assert_int_equal(rewrite_apply("SELECT * FROM mart.t", a, NULL, 0, &out, err, sizeof err), 0);
    assert_string_equal(out, "SELECT * FROM mart.t");
    free(out);
    analysis_free(a);
}

/* ---- quoting and builders ---------------------------------------------- */

static void check_quote_ident(const char *in, const char *expected)
{
    char *q = rewrite_quote_ident(in);
    assert_non_null(q);
    assert_string_equal(q, expected);
    free(q);
}

static void check_quote_literal(const char *in, const char *expected)
{
    char *q = rewrite_quote_literal(in);
    assert_non_null(q);
    assert_string_equal(q, expected);
    free(q);
}

static void test_quoting(void **state)
{
    (void)state;
    check_quote_ident("abc", "abc");
    check_quote_ident("_x1", "_x1");
    check_quote_ident("Abc", "\"Abc\"");
    check_quote_ident("1x", "\"1x\"");
    check_quote_ident("a b", "\"a b\"");
    check_quote_ident("x\"y", "\"x\"\"y\"");
    check_quote_ident("select", "\"select\"");
    check_quote_ident("user", "\"user\"");
    check_quote_ident("abort", "abort");          /* unreserved keyword */
    check_quote_ident("between", "\"between\"");  /* column-name keyword */
    check_quote_ident("left", "\"left\"");        /* type/function-name keyword */
    check_quote_ident("données", "\"données\"");
    check_quote_ident("a$", "\"a$\"");
    check_quote_ident("", "\"\"");
    assert_null(rewrite_quote_ident(NULL));

    check_quote_literal("abc", "'abc'");
    check_quote_literal("O'Reilly", "'O''Reilly'");
    check_quote_literal("a\\b", "E'a\\\\b'");
    check_quote_literal("'; DROP TABLE x; --", "'''; DROP TABLE x; --'");
    check_quote_literal("\\'", "E'\\\\'''");
    check_quote_literal("", "''");
    assert_null(rewrite_quote_literal(NULL));

    /* quoted literals are single string constants to the parser */
    const char *tricky[] = {"x' OR '1'='1", "a\\", "\\'; select 1; --", "$$", "é'ü"};
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++) {
        char *q = rewrite_quote_literal(tricky[i]);
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT * FROM t WHERE region = %s", q);
        analysis *a;
        assert_int_equal(analyze_sql(sql, &test_ctx, &a, NULL), 0);
        assert_int_equal(a->n_stmts, 1);
        assert_int_equal(a->n_functions, 0);
        analysis_free(a);
        free(q);
    }
}

typedef struct fake_table {
    const char *schema, *table;
    const char *columns[8];
    size_t n;
} fake_table;

static int fake_columns(void *ctx, const char *schema, const char *table, const char ***names,
                        size_t *n)
{
    const fake_table *t = ctx;
    for (; t->schema; t++) {
        if (!strcmp(t->schema, schema) && !strcmp(t->table, table)) {
            *names = (const char **)t->columns;
            *n = t->n;
            return 0;
        }
    }
    return -1;
}

static const fake_table fake_tables[] = {
    {"mart", "leads", {"id", "email", "Name", "select", "region"}, 5},
    {"Mart", "Empty", {NULL}, 0},
    {NULL, NULL, {NULL}, 0},
};

static void test_masked_relation(void **state)
{
    (void)state;
    char *out = NULL;
    char err[256];
    rewrite_hash_key key;
    assert_int_equal(rewrite_hash_key_init(&key, (const unsigned char *)"k", 1), 0);
    char *hash = rewrite_hash_mask_sql(&key, "email");
    char *null = rewrite_mask_sql(REWRITE_MASK_NULL, "Name");
    rewrite_column_mask masks[] = {{"email", hash}, {"Name", null}, {"region", NULL}};
    char *region = rewrite_quote_literal("South'East");
    char filter[128];
    snprintf(filter, sizeof filter, "region = %s", region);
    assert_int_equal(rewrite_masked_relation("mart", "leads", false, fake_columns,
                                             (void *)fake_tables, masks, 3, filter, &out, err,
                                             sizeof err),
                     0);
    char want[2048];
    snprintf(want, sizeof want, "SELECT id, (%s) AS email, "
                                "(CASE WHEN false THEN \"Name\" END) AS \"Name\", \"select\", region "
                                "FROM mart.leads WHERE (region = 'South''East') OFFSET 0", hash);
    assert_string_equal(out, want);
    char sql[2048];
    snprintf(sql, sizeof sql, "SELECT * FROM (%s) AS leads", out);
    assert_parses(sql);
    free(out);

    assert_int_equal(rewrite_masked_relation("mart", "leads", true, fake_columns,
                                             (void *)fake_tables, NULL, 0, NULL, &out, err,
                                             sizeof err),
                     0);
    assert_string_equal(out, "SELECT id, email, \"Name\", \"select\", region FROM ONLY mart.leads "
                             "OFFSET 0");
    free(out);

    assert_int_equal(rewrite_masked_relation("Mart", "Empty", false, fake_columns,
                                             (void *)fake_tables, NULL, 0, "true", &out, err,
                                             sizeof err),
                     0);
    assert_string_equal(out, "SELECT FROM \"Mart\".\"Empty\" WHERE (true) OFFSET 0");
    free(out);

    /* a mask on a column the table does not have is an error a person sees */
    rewrite_column_mask wrong[] = {{"phone", hash}};
    assert_int_equal(rewrite_masked_relation("mart", "leads", false, fake_columns,
                                             (void *)fake_tables, wrong, 1, NULL, &out, err,
                                             sizeof err),
                     -1);
    assert_null(out);
    assert_non_null(strstr(err, "phone"));
    assert_int_equal(rewrite_masked_relation("mart", "nope", false, fake_columns,
                                             (void *)fake_tables, NULL, 0, NULL, &out, err,
                                             sizeof err),
                     -1);
    assert_non_null(strstr(err, "mart.nope"));
    free(hash);
    free(null);
    free(region);
}

static void test_mask_kinds(void **state)
{
    (void)state;
    struct {
        rewrite_mask_kind kind;
        const char *column, *expected;
    } cases[] = {
        {REWRITE_MASK_NULL, "email", "CASE WHEN false THEN email END"},
        {REWRITE_MASK_REDACT, "email", "CASE WHEN email IS NULL THEN NULL ELSE '***' END"},
        {REWRITE_MASK_LAST4, "card",
         "CASE WHEN card IS NULL THEN NULL ELSE '***' || pg_catalog.\"right\"(card::pg_catalog.text, "
         "4) END"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *sql = rewrite_mask_sql(cases[i].kind, cases[i].column);
        assert_non_null(sql);
        assert_string_equal(sql, cases[i].expected);
        char query[512];
        snprintf(query, sizeof query, "SELECT %s AS x FROM t", sql);
        assert_parses(query);
        free(sql);
    }
    assert_null(rewrite_mask_sql((rewrite_mask_kind)99, "x"));
    /* the hash mask needs a key: never the unsalted md5 of old */
    assert_null(rewrite_mask_sql(REWRITE_MASK_HASH, "x"));
}

/* The keyed hash mask: HMAC-SHA256 in SQL from the key's pads (the values
 * themselves are checked against an independent HMAC in
 * tests/integration/t_sidechannel.sh). */
static void test_hash_mask(void **state)
{
    (void)state;
    rewrite_hash_key k;
    assert_int_equal(rewrite_hash_key_init(&k, (const unsigned char *)"k", 1), 0);
    char ipad[129], opad[129];
    snprintf(ipad, sizeof ipad, "5d");   /* 'k' ^ 0x36, then zeros ^ 0x36 */
    snprintf(opad, sizeof opad, "37");   /* 'k' ^ 0x5c, then zeros ^ 0x5c */
    for (int i = 1; i < 64; i++) {
        memcpy(ipad + 2 * i, "36", 3);
        memcpy(opad + 2 * i, "5c", 3);
    }
    assert_string_equal(k.ipad_hex, ipad);
    assert_string_equal(k.opad_hex, opad);
    char *sql = rewrite_hash_mask_sql(&k, "Email");
    char want[1024];
    snprintf(want, sizeof want,
             "pg_catalog.encode(pg_catalog.sha256(pg_catalog.decode('%s', 'hex') OPERATOR(pg_catalog.||) "
             "pg_catalog.sha256(pg_catalog.decode('%s', 'hex') OPERATOR(pg_catalog.||) "
             "pg_catalog.convert_to(\"Email\"::pg_catalog.text, 'UTF8'))), 'hex')", opad, ipad);
    assert_string_equal(sql, want);
    char query[1200];
    snprintf(query, sizeof query, "SELECT %s AS x FROM t", sql);
    assert_parses(query);
    free(sql);
    /* 64 bytes is one block; longer keys are the caller's to hash first */
    unsigned char big[65];
    memset(big, 'a', sizeof big);
    assert_int_equal(rewrite_hash_key_init(&k, big, 64), 0);
    assert_int_equal(rewrite_hash_key_init(&k, big, 65), -1);
    assert_int_equal(rewrite_hash_key_init(&k, big, 0), -1);
    assert_null(rewrite_hash_mask_sql(&k, NULL));
    assert_null(rewrite_hash_mask_sql(NULL, "x"));
    /* the offline placeholder is a fixed, labelled key, not the one above */
    rewrite_hash_key ph;
    rewrite_hash_key_placeholder(&ph);
    assert_string_not_equal(ph.ipad_hex, k.ipad_hex);
    assert_non_null(strstr(REWRITE_HASH_PLACEHOLDER_KEY, "placeholder"));
    rewrite_hash_key_wipe(&k);
    assert_int_equal(k.ipad_hex[0], 0);
}

/* The masked relation substituted into a query, end to end. */
static void test_masked_substitution(void **state)
{
    (void)state;
    const char *sql = "SELECT \"mart\".\"leads\".\"email\", count(*) FROM \"mart\".\"leads\" "
                      "GROUP BY \"mart\".\"leads\".\"email\"";
    analysis *a;
    assert_int_equal(analyze_sql(sql, &test_ctx, &a, NULL), 0);
    rewrite_hash_key key;
    assert_int_equal(rewrite_hash_key_init(&key, (const unsigned char *)"k", 1), 0);
    char *hash = rewrite_hash_mask_sql(&key, "email");
    rewrite_column_mask masks[] = {{"email", hash}};
    char *repl = NULL, *out = NULL;
    char err[256];
    assert_int_equal(rewrite_masked_relation(a->relations[0].schema, a->relations[0].name,
                                             a->relations[0].only, fake_columns,
                                             (void *)fake_tables, masks, 1, "region = 'south'",
                                             &repl, err, sizeof err),
                     0);
    rewrite_substitution sub = {0, repl};
    assert_int_equal(rewrite_apply(sql, a, &sub, 1, &out, err, sizeof err), 0);
    char want[2048];
    snprintf(want, sizeof want, "SELECT \"leads\".\"email\", count(*) FROM (SELECT id, "
                                "(%s) AS email, \"Name\", "
                                "\"select\", region FROM mart.leads WHERE (region = 'south') OFFSET "
                                "0) AS leads GROUP BY \"leads\".\"email\"", hash);
    assert_string_equal(out, want);
    assert_parses(out);
    free(out);
    free(repl);
    free(hash);
    analysis_free(a);
}

/* ---- catalog filtering ------------------------------------------------- */

static int visible_calls;

static char *test_visible(void *ctx, const char *schema_expr, const char *table_expr)
{
    (void)ctx;
    visible_calls++;
    char *out = NULL;
    int rc;
    if (table_expr)
        rc = asprintf(&out, "%s IN ('pg_catalog', 'information_schema', 'mart_a') AND %s <> 'secret'",
                      schema_expr, table_expr);
    else
        rc = asprintf(&out, "%s IN ('pg_catalog', 'information_schema', 'mart_a')", schema_expr);
    return rc < 0 ? NULL : out;
}

static char *failing_visible(void *ctx, const char *schema_expr, const char *table_expr)
{
    (void)ctx;
    (void)schema_expr;
    (void)table_expr;
    return NULL;
}

static void test_catalog_relation_texts(void **state)
{
    (void)state;
    char *out = NULL;
    char err[256];
    assert_int_equal(rewrite_catalog_relation("pg_catalog", "pg_namespace", &(rewrite_catalog_filter){test_visible, NULL, NULL},
                                              &out, err, sizeof err),
                     0);
    assert_string_equal(out, "SELECT * FROM pg_catalog.pg_namespace mg_n WHERE "
                             "(mg_n.nspname::pg_catalog.text IN ('pg_catalog', "
                             "'information_schema', 'mart_a')) OFFSET 0");
    free(out);
    assert_int_equal(rewrite_catalog_relation("information_schema", "tables", &(rewrite_catalog_filter){test_visible, NULL, NULL},
                                              &out, err, sizeof err),
                     0);
    assert_string_equal(out, "SELECT * FROM information_schema.tables mg_v WHERE "
                             "(mg_v.table_schema::pg_catalog.text IN ('pg_catalog', "
                             "'information_schema', 'mart_a') AND mg_v.table_name::pg_catalog.text "
                             "<> 'secret') OFFSET 0");
    free(out);
    assert_int_equal(rewrite_catalog_relation("pg_catalog", "pg_am", &(rewrite_catalog_filter){test_visible, NULL, NULL}, &out,
                                              err, sizeof err),
                     1);
    assert_null(out);
    assert_int_equal(rewrite_catalog_relation("pg_catalog", "pg_class", &(rewrite_catalog_filter){failing_visible, NULL, NULL},
                                              &out, err, sizeof err),
                     -1);
    assert_null(out);

    /* every filtered catalog's replacement parses */
    const char *all[128][2];
    size_t nall = 0;
    while (nall < 128 && rewrite_filtered_catalog_at(nall, &all[nall][0], &all[nall][1]))
        nall++;
    assert_true(nall > 60 && nall < 128);
    for (size_t i = 0; i < nall; i++) {
        assert_true(rewrite_is_filtered_catalog(all[i][0], all[i][1]));
        assert_int_equal(rewrite_catalog_relation(all[i][0], all[i][1], &(rewrite_catalog_filter){test_visible, NULL, NULL}, &out,
                                                  err, sizeof err),
                         0);
        char sql[4096];
        snprintf(sql, sizeof sql, "SELECT * FROM (%s) AS x", out);
        assert_parses(sql);
        free(out);
    }
    assert_false(rewrite_is_filtered_catalog("pg_catalog", "pg_am"));
    assert_true(rewrite_is_filtered_catalog("pg_catalog", "pg_proc"));
    assert_false(rewrite_is_filtered_catalog("public", "pg_class"));
    assert_false(rewrite_is_filtered_catalog(NULL, "pg_class"));
}

typedef struct client_query {
    const char *who;
    const char *sql;
    int substitutions;
} client_query;

static const client_query client_queries[] = {
    {"psql \\dn",
     "SELECT n.nspname AS \"Name\",\n  pg_catalog.pg_get_userbyid(n.nspowner) AS \"Owner\"\n"
     "FROM pg_catalog.pg_namespace n\nWHERE n.nspname !~ '^pg_' AND n.nspname <> "
     "'information_schema'\nORDER BY 1;",
     1},
    {"psql \\dt",
     "SELECT n.nspname as \"Schema\",\n  c.relname as \"Name\",\n  CASE c.relkind WHEN 'r' THEN "
     "'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN "
     "'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN "
     "'partitioned table' WHEN 'I' THEN 'partitioned index' END as \"Type\",\n  "
     "pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"\nFROM pg_catalog.pg_class c\n     LEFT "
     "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n     LEFT JOIN pg_catalog.pg_am am "
     "ON am.oid = c.relam\nWHERE c.relkind IN ('r','p','')\n      AND n.nspname <> "
     "'pg_catalog'\n      AND n.nspname !~ '^pg_toast'\n      AND n.nspname <> "
     "'information_schema'\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 1,2;",
     2},
    {"psql \\d name (look-up)",
     "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     LEFT JOIN "
     "pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relname OPERATOR(pg_catalog.~) "
     "'^(leads)$' COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY "
     "2, 3;",
     2},
    {"psql \\d name (columns)",
     "SELECT a.attname,\n  pg_catalog.format_type(a.atttypid, a.atttypmod),\n  (SELECT "
     "pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)\n   FROM pg_catalog.pg_attrdef d\n   WHERE "
     "d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),\n  a.attnotnull,\n  (SELECT "
     "c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t\n   WHERE c.oid = "
     "a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS "
     "attcollation,\n  a.attidentity,\n  a.attgenerated\nFROM pg_catalog.pg_attribute a\nWHERE "
     "a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped\nORDER BY a.attnum;",
     4},
    {"psql \\d name (indexes)",
     "SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, "
     "pg_catalog.pg_get_indexdef(i.indexrelid, 0, true),\n  pg_catalog.pg_get_constraintdef(con.oid, "
     "true), contype, condeferrable, condeferred, i.indisreplident, c2.reltablespace\nFROM "
     "pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_index i\n  LEFT JOIN "
     "pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND conindid = i.indexrelid AND contype "
     "IN ('p','u','x'))\nWHERE c.oid = '16384' AND c.oid = i.indrelid AND i.indexrelid = c2.oid\n"
     "ORDER BY i.indisprimary DESC, c2.relname;",
     4},
    {"pgjdbc getSchemas",
     "SELECT nspname AS TABLE_SCHEM, NULL AS TABLE_CATALOG FROM pg_catalog.pg_namespace  WHERE "
     "nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_'  OR nspname = "
     "(pg_catalog.current_schemas(true))[1]) AND (nspname !~ '^pg_toast_temp_'  OR nspname = "
     "replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_'))  ORDER BY "
     "TABLE_SCHEM",
     1},
    {"pgjdbc getTables",
     "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME,  CASE n.nspname "
     "~ '^pg_' OR n.nspname = 'information_schema'  WHEN true THEN CASE  WHEN n.nspname = "
     "'pg_catalog' OR n.nspname = 'information_schema' THEN CASE c.relkind   WHEN 'r' THEN 'SYSTEM "
     "TABLE'   WHEN 'v' THEN 'SYSTEM VIEW'   WHEN 'i' THEN 'SYSTEM INDEX'   ELSE NULL   END  WHEN "
     "n.nspname = 'pg_toast' THEN CASE c.relkind   WHEN 'r' THEN 'SYSTEM TOAST TABLE'   WHEN 'i' "
     "THEN 'SYSTEM TOAST INDEX'   ELSE NULL   END  ELSE CASE c.relkind   WHEN 'r' THEN 'TEMPORARY "
     "TABLE'   WHEN 'p' THEN 'TEMPORARY TABLE'   WHEN 'i' THEN 'TEMPORARY INDEX'   WHEN 'S' THEN "
     "'TEMPORARY SEQUENCE'   WHEN 'v' THEN 'TEMPORARY VIEW'   ELSE NULL   END  END  WHEN false THEN "
     "CASE c.relkind  WHEN 'r' THEN 'TABLE'  WHEN 'p' THEN 'PARTITIONED TABLE'  WHEN 'i' THEN "
     "'INDEX'  WHEN 'P' then 'PARTITIONED INDEX'  WHEN 'S' THEN 'SEQUENCE'  WHEN 'v' THEN 'VIEW'  "
     "WHEN 'c' THEN 'TYPE'  WHEN 'f' THEN 'FOREIGN TABLE'  WHEN 'm' THEN 'MATERIALIZED VIEW'  ELSE "
     "NULL  END  ELSE NULL  END  AS TABLE_TYPE, d.description AS REMARKS,  '' as TYPE_CAT, '' as "
     "TYPE_SCHEM, '' as TYPE_NAME, '' AS SELF_REFERENCING_COL_NAME, '' AS REF_GENERATION  FROM "
     "pg_catalog.pg_namespace n, pg_catalog.pg_class c  LEFT JOIN pg_catalog.pg_description d ON "
     "(c.oid = d.objoid AND d.objsubid = 0  and d.classoid = 'pg_class'::regclass)  WHERE "
     "c.relnamespace = n.oid  AND c.relname LIKE '%' AND (false  OR ( c.relkind IN ('r','p') AND "
     "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' )  OR ( c.relkind = 'v' AND "
     "n.nspname <> 'pg_catalog' AND n.nspname <> 'information_schema' ) )  ORDER BY "
     "TABLE_TYPE,TABLE_SCHEM,TABLE_NAME ",
     3},
    {"pgjdbc getColumns",
     "SELECT * FROM (SELECT n.nspname,c.relname,a.attname,a.atttypid,a.attnotnull OR (t.typtype = "
     "'d' AND t.typnotnull) AS attnotnull,a.atttypmod,a.attlen,t.typtypmod,row_number() OVER "
     "(PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum, nullif(a.attidentity, '') as "
     "attidentity,nullif(a.attgenerated, '') as attgenerated,pg_catalog.pg_get_expr(def.adbin, "
     "def.adrelid) AS adsrc,dsc.description,t.typbasetype,t.typtype  FROM pg_catalog.pg_namespace n "
     " JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid)  JOIN pg_catalog.pg_attribute a ON "
     "(a.attrelid=c.oid)  JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid)  LEFT JOIN "
     "pg_catalog.pg_attrdef def ON (a.attrelid=def.adrelid AND a.attnum = def.adnum)  LEFT JOIN "
     "pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)  LEFT JOIN "
     "pg_catalog.pg_class dc ON (dc.oid=dsc.classoid AND dc.relname='pg_class')  LEFT JOIN "
     "pg_catalog.pg_namespace dn ON (dc.relnamespace=dn.oid AND dn.nspname='pg_catalog')  WHERE "
     "c.relkind in ('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped  AND n.nspname "
     "LIKE 'mart_a' AND c.relname LIKE 'orders') c WHERE true  AND attname LIKE '%' ORDER BY "
     "nspname,c.relname,attnum ",
     8},
    {"pgjdbc getPrimaryKeys",
     "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM,   ct.relname AS TABLE_NAME, "
     "a.attname AS COLUMN_NAME,   (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, "
     "ci.relname AS PK_NAME,   information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS "
     "A_ATTNUM FROM pg_catalog.pg_class ct   JOIN pg_catalog.pg_attribute a ON (ct.oid = "
     "a.attrelid)   JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)   JOIN "
     "pg_catalog.pg_index i ON ( a.attrelid = i.indrelid)   JOIN pg_catalog.pg_class ci ON (ci.oid "
     "= i.indexrelid) WHERE true  AND n.nspname = E'mart_a' AND ct.relname = E'orders' AND "
     "i.indisprimary ",
     5},
    {"Metabase describe tables",
     "SELECT n.nspname AS schema, c.relname AS name, CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' "
     "THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN "
     "'MATERIALIZED VIEW' ELSE NULL END AS type, d.description AS description, stat.n_live_tup AS "
     "estimated_row_count FROM pg_catalog.pg_class AS c INNER JOIN pg_catalog.pg_namespace AS n ON "
     "c.relnamespace = n.oid LEFT JOIN pg_catalog.pg_description AS d ON (c.oid = d.objoid) AND "
     "(d.objsubid = 0) AND (d.classoid = 'pg_class'::regclass) LEFT JOIN pg_stat_user_tables AS "
     "stat ON (n.nspname = stat.schemaname) AND (c.relname = stat.relname) WHERE c.relnamespace = "
     "n.oid AND c.relkind IN ('r', 'p', 'v', 'f', 'm') AND n.nspname !~ "
     "'^information_schema|catalog_history|pg_' AND has_schema_privilege(n.nspname, 'USAGE') AND "
     "(has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT')) ORDER BY "
     "type ASC, schema ASC, name ASC",
     4},
    {"Metabase describe fields",
     "SELECT c.column_name AS \"name\", CASE WHEN c.udt_schema IN ('public', 'pg_catalog') THEN "
     "format('%I', c.udt_name) ELSE format('%I.%I', c.udt_schema, c.udt_name) END AS "
     "\"database-type\", c.ordinal_position - 1 AS \"database-position\", c.table_schema AS "
     "\"table-schema\", c.table_name AS \"table-name\", pk.column_name IS NOT NULL AS \"pk?\", "
     "col_description(cast(cast(format('%I.%I', cast(c.table_schema AS text), cast(c.table_name AS "
     "text)) AS regclass) AS oid), c.ordinal_position) AS \"field-comment\" FROM "
     "information_schema.columns AS c LEFT JOIN (SELECT tc.table_schema, tc.table_name, "
     "kc.column_name FROM information_schema.table_constraints AS tc INNER JOIN "
     "information_schema.key_column_usage AS kc ON (tc.constraint_name = kc.constraint_name) AND "
     "(tc.table_schema = kc.table_schema) AND (tc.table_name = kc.table_name) WHERE "
     "tc.constraint_type = 'PRIMARY KEY') AS pk ON (c.table_schema = pk.table_schema) AND "
     "(c.table_name = pk.table_name) AND (c.column_name = pk.column_name) WHERE c.table_schema !~ "
     "'^information_schema|catalog_history|pg_' AND (c.table_schema IN ('mart_a')) ORDER BY "
     "\"table-schema\" ASC, \"table-name\" ASC, \"database-position\" ASC",
     3},
    {"unqualified catalog names",
     "SELECT nspname FROM pg_namespace UNION ALL SELECT relname FROM pg_class WHERE relkind = 'r'",
     2},
};

static void test_client_catalog_queries(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof client_queries / sizeof client_queries[0]; i++) {
        const client_query *q = &client_queries[i];
        analysis *a;
        analyze_error aerr;
        if (analyze_sql(q->sql, &test_ctx, &a, &aerr) != 0)
            print_error("%s: %s\n", q->who, aerr.message);
        rewrite_substitution *subs = NULL;
        char err[512];
        int n = rewrite_catalog_substitutions(a, &(rewrite_catalog_filter){test_visible, NULL, NULL}, &subs, err, sizeof err);
        if (n != q->substitutions)
            print_error("%s: %d substitutions, expected %d (%s)\n", q->who, n, q->substitutions,
                        n < 0 ? err : "");
        assert_int_equal(n, q->substitutions);
        char *out = NULL;
        assert_int_equal(rewrite_apply(q->sql, a, subs, (size_t)n, &out, err, sizeof err), 0);
        assert_parses(out);
        /* the rewritten text reads no filtered catalog unfiltered */
        analysis *b;
        assert_int_equal(analyze_sql(out, &test_ctx, &b, NULL), 0);
        for (size_t r = 0; r < b->n_relations; r++)
            if (b->relations[r].usage != ANALYZE_USE_NAME &&   /* 'pg_class'::regclass reads nothing */
                rewrite_is_filtered_catalog(b->relations[r].schema, b->relations[r].name)) {
                /* only inside our own replacement subqueries (aliases mg_*) */
                const char *at = out + b->relations[r].location;
                const char *space = strchr(at, ' ');
                assert_non_null(space);
                assert_true(strncmp(space + 1, "mg_", 3) == 0);
            }
        analysis_free(b);
        free(out);
        rewrite_free_substitutions(subs, (size_t)n);
        analysis_free(a);
    }
}

static void test_catalog_psql_dn_exact(void **state)
{
    (void)state;
    const char *sql = client_queries[0].sql;
    analysis *a;
    assert_int_equal(analyze_sql(sql, &test_ctx, &a, NULL), 0);
    rewrite_substitution *subs = NULL;
    char err[256];
    assert_int_equal(rewrite_catalog_substitutions(a, &(rewrite_catalog_filter){test_visible, NULL, NULL}, &subs, err, sizeof err),
                     1);
    char *out = NULL;
    assert_int_equal(rewrite_apply(sql, a, subs, 1, &out, err, sizeof err), 0);
    assert_string_equal(out,
                        "SELECT n.nspname AS \"Name\",\n  pg_catalog.pg_get_userbyid(n.nspowner) AS "
                        "\"Owner\"\nFROM (SELECT * FROM pg_catalog.pg_namespace mg_n WHERE "
                        "(mg_n.nspname::pg_catalog.text IN ('pg_catalog', 'information_schema', "
                        "'mart_a')) OFFSET 0) n\nWHERE n.nspname !~ '^pg_' AND n.nspname <> "
                        "'information_schema'\nORDER BY 1;");
    free(out);
    rewrite_free_substitutions(subs, 1);
    analysis_free(a);
}

static void test_catalog_refusals(void **state)
{
    (void)state;
    const char *refused[] = {
        "COPY pg_catalog.pg_class TO STDOUT",
        "SELECT * FROM pg_catalog.pg_class TABLESAMPLE SYSTEM (50)",
        "LOCK pg_catalog.pg_class IN ACCESS SHARE MODE",
        "SET search_path = information_schema; SELECT * FROM tables",
        "SELECT set_config(x, 'y', false) FROM t; SELECT * FROM pg_class",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        analysis *a;
        assert_int_equal(analyze_sql(refused[i], &test_ctx, &a, NULL), 0);
        rewrite_substitution *subs = (rewrite_substitution *)1;
        char err[256] = "";
        int n = rewrite_catalog_substitutions(a, &(rewrite_catalog_filter){test_visible, NULL, NULL}, &subs, err, sizeof err);
        if (n != -1)
            print_error("not refused: %s\n", refused[i]);
        assert_int_equal(n, -1);
        assert_true(err[0] != '\0');
        analysis_free(a);
    }
    /* a visibility callback failure is an error, and nothing leaks */
    analysis *a;
    assert_int_equal(analyze_sql("SELECT * FROM pg_namespace, pg_class", &test_ctx, &a, NULL), 0);
    rewrite_substitution *subs = NULL;
    char err[256];
    assert_int_equal(rewrite_catalog_substitutions(a, &(rewrite_catalog_filter){failing_visible, NULL, NULL}, &subs, err,
                                                   sizeof err),
                     -1);
    analysis_free(a);
    /* nothing to filter */
    assert_int_equal(analyze_sql("SELECT * FROM pg_catalog.pg_am, mart.t", &test_ctx, &a, NULL),
                     0);
    assert_int_equal(rewrite_catalog_substitutions(a, &(rewrite_catalog_filter){test_visible, NULL, NULL}, &subs, err, sizeof err),
                     0);
    assert_null(subs);
    analysis_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_aliases),
        cmocka_unit_test(test_schema_qualified_columns),
        cmocka_unit_test(test_joins_subqueries_ctes),
        cmocka_unit_test(test_writes_around_reads),
        cmocka_unit_test(test_names_as_written),
        cmocka_unit_test(test_only_table_star),
        cmocka_unit_test(test_multi_statement_and_noop),
        cmocka_unit_test(test_long_text_around_edits),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_masked_relation),
        cmocka_unit_test(test_mask_kinds),
        cmocka_unit_test(test_hash_mask),
        cmocka_unit_test(test_masked_substitution),
        cmocka_unit_test(test_catalog_relation_texts),
        cmocka_unit_test(test_client_catalog_queries),
        cmocka_unit_test(test_catalog_psql_dn_exact),
        cmocka_unit_test(test_catalog_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
