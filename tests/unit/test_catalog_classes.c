/*
 * test_catalog_classes: every catalog relation martgate knows is in exactly
 * one class (filtered with a filter, safe, restricted), the restricted ones
 * are the built-in pg_sensitive dataset, and a relation in no class is
 * unclassified. tests/integration/t_catalog_classes.sh checks the same list
 * against a real server's relations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/analyze.h"
#include "policy/catalog_classes.h"
#include "policy/decide.h"
#include "policy/policy.h"
#include "policy/rewrite.h"

static void test_each_relation_once(void **state)
{
    (void)state;
    const char *s1, *n1, *s2, *n2;
    catalog_class c1, c2;
    size_t nf = 0, nt = 0;
    while (rewrite_filtered_catalog_at(nf, &s1, &n1)) {
        assert_int_equal(catalog_class_of(s1, n1), CATALOG_FILTERED);
        for (size_t j = 0; rewrite_filtered_catalog_at(j, &s2, &n2); j++)
            if (j != nf && !strcmp(s1, s2) && !strcmp(n1, n2))
                fail_msg("%s.%s is filtered twice", s1, n1);
        nf++;
    }
    while (catalog_classes_at(nt, &s1, &n1, &c1)) {
        assert_true(c1 == CATALOG_SAFE || c1 == CATALOG_RESTRICTED);
        assert_true(!strcmp(s1, "pg_catalog") || !strcmp(s1, "information_schema"));
        if (rewrite_is_filtered_catalog(s1, n1))
            fail_msg("%s.%s is filtered and %s", s1, n1, catalog_class_name(c1));
        for (size_t j = 0; catalog_classes_at(j, &s2, &n2, &c2); j++)
            if (j != nt && !strcmp(s1, s2) && !strcmp(n1, n2))
                fail_msg("%s.%s is classified twice", s1, n1);
        assert_int_equal(catalog_class_of(s1, n1), c1);
        nt++;
    }
    assert_true(nf > 60);
    assert_true(nt > 60);
}

static void test_examples(void **state)
{
    (void)state;
    assert_int_equal(catalog_class_of("information_schema", "data_type_privileges"), CATALOG_FILTERED);
    assert_int_equal(catalog_class_of("information_schema", "udt_privileges"), CATALOG_FILTERED);
    assert_int_equal(catalog_class_of("information_schema", "role_udt_grants"), CATALOG_FILTERED);
    assert_int_equal(catalog_class_of("pg_catalog", "pg_proc"), CATALOG_FILTERED);
    assert_int_equal(catalog_class_of("pg_catalog", "pg_am"), CATALOG_SAFE);
    assert_int_equal(catalog_class_of("pg_catalog", "pg_stats"), CATALOG_RESTRICTED);
    assert_int_equal(catalog_class_of("pg_catalog", "pg_stat_io"), CATALOG_UNCLASSIFIED);   /* PostgreSQL 16 */
    assert_int_equal(catalog_class_of("public", "pg_class"), CATALOG_UNCLASSIFIED);
    assert_int_equal(catalog_class_of(NULL, "pg_class"), CATALOG_UNCLASSIFIED);
    assert_string_equal(catalog_class_name(CATALOG_UNCLASSIFIED), "unclassified");
}

/* Each class decides as it says, for a principal with a read rule on one
 * schema: filtered rewritten, safe allowed, restricted and unclassified
 * denied; restricted allowed through a rule on pg_sensitive. */
static void test_decisions(void **state)
{
    (void)state;
    static const char policy_json[] =
        "{\"datasets\": {\"m\": {\"schemas\": [\"m\"]}},"
        " \"rules\": [{\"id\": \"r\", \"subjects\": {\"users\": [\"*\"]}, \"objects\": {\"datasets\": [\"m\"]},"
        " \"access\": \"read\"},"
        " {\"id\": \"ops\", \"subjects\": {\"users\": [\"ops\"]}, \"objects\": {\"datasets\": [\"pg_sensitive\"]},"
        " \"access\": \"read\"}]}";
    policy_t *p = NULL;
    char err[1024];
    assert_int_equal(policy_load_text("classes.json", policy_json, sizeof policy_json - 1, &p, NULL, err, sizeof err),
                     0);
    const char *s, *n;
    catalog_class c;
    for (int who = 0; who < 2; who++) {
        decide_principal pr = {.user = who ? "ops" : "ana"};
        for (size_t i = 0; catalog_classes_at(i, &s, &n, &c); i++) {
            char sql[200];
            snprintf(sql, sizeof sql, "SELECT * FROM %s.%s", s, n);
            analysis *a = NULL;
            assert_int_equal(analyze_sql(sql, NULL, &a, NULL), 0);
            decide_request req = {.sql = sql, .facts = a, .who = &pr};
            decision d;
            decision_init(&d);
            assert_int_equal(decide(p, &req, &d, err, sizeof err), 0);
            decide_verdict want = c == CATALOG_SAFE || who ? DECIDE_ALLOW : DECIDE_DENY;
            if (d.verdict != want)
                fail_msg("%s (%s) as %s: verdict %d, expected %d", sql, catalog_class_name(c), pr.user, d.verdict,
                         want);
            decision_free(&d);
            analysis_free(a);
        }
    }
    policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_relation_once),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_decisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
