/*
 * test_decide_warehouse: the decisions that follow the warehouse's own
 * metadata (common/warehouse_facts) rather than lists of names: settings by
 * context and category, functions PUBLIC may not execute, the policy's
 * settings.allow / functions.allow, statements without a table list for a
 * principal who writes everything, what happens offline (no facts), and the
 * facts' JSON form and service-role check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/warehouse_facts.h"
#include "common/warehouse_json.h"
#include "policy/analyze.h"
#include "policy/decide.h"
#include "policy/policy.h"

static const char POLICY[] =
    "{\"datasets\": {\"marts\": {\"schemas\": [\"sales_mart\"]}, \"all\": {\"schemas\": [\"*\"]}},"
    " \"rules\": ["
    "  {\"id\": \"admins-write\", \"subjects\": {\"users\": [\"root\"]}, \"objects\": {\"datasets\": [\"all\"]}, "
    "   \"access\": \"write\"},"
    "  {\"id\": \"mixed-deny\", \"subjects\": {\"users\": [\"half\"]}, \"objects\": {\"tables\": [\"sales_mart.secret\"]}, "
    "   \"access\": \"deny\"},"
    "  {\"id\": \"mixed-write\", \"subjects\": {\"users\": [\"half\"]}, \"objects\": {\"datasets\": [\"all\"]}, "
    "   \"access\": \"write\"},"
    "  {\"id\": \"analysts-read\", \"subjects\": {\"users\": [\"*\"]}, \"objects\": {\"datasets\": [\"marts\"]}, "
    "   \"access\": \"read\"}],"
    " \"functions\": {\"allow\": [\"pg_ls_logdir\"]},"
    " \"settings\": {\"allow\": [\"app.*\", \"log_statement_sample_rate\"], \"deny\": [\"work_mem\"]}}";

typedef struct {
    policy_t *p;
    warehouse_facts *wh;
} fixture;

static int setup(void **state)
{
    static fixture f;
    char err[2048];
    if (policy_load_text("t.json", POLICY, strlen(POLICY), &f.p, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    f.wh = wh_new();
    wh_add_setting(f.wh, "TimeZone", "user", "Client Connection Defaults / Locale and Formatting");
    wh_add_setting(f.wh, "work_mem", "user", "Resource Usage / Memory");
    wh_add_setting(f.wh, "log_statement", "superuser", "Reporting and Logging / What to Log");
    wh_add_setting(f.wh, "log_statement_sample_rate", "superuser", "Reporting and Logging / When to Log");
    wh_add_setting(f.wh, "application_name", "user", "Reporting and Logging / What to Log");
    wh_add_setting(f.wh, "synchronous_commit", "user", "Write-Ahead Log / Settings");
    wh_add_admin_function(f.wh, "pg_catalog", "pg_ls_logdir");
    wh_add_admin_function(f.wh, "pg_catalog", "pg_hba_file_rules");
    wh_add_admin_function(f.wh, "ext", "secret_fn");
    if (wh_finish(f.wh) != 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    policy_unref(f->p);
    wh_free(f->wh);
    return 0;
}

/* The verdict for sql as user, with the facts given (NULL: offline) and the
 * version the session's warehouse reports (NULL: the facts'); the reason into why. */
static decide_verdict verdict_at(const fixture *f, const warehouse_facts *wh, const char *version, const char *user,
                                 const char *sql, char *why, size_t len)
{
    static const char *const path[] = {"public"};
    analyze_context ctx = {.database = "dw", .search_path = path, .n_search_path = 1};
    analysis *a = NULL;
    analyze_error aerr;
    assert_int_equal(analyze_sql(sql, &ctx, &a, &aerr), 0);
    decide_principal who = {user, NULL, 0, NULL};
    decide_request req = {.sql = sql, .facts = a, .who = &who, .warehouse = wh, .server_version = version};
    decision d;
    decision_init(&d);
    char err[256];
    assert_int_equal(decide(f->p, &req, &d, err, sizeof err), 0);
    decide_verdict v = d.verdict;
    snprintf(why, len, "%s", decision_reason(&d));
    decision_free(&d);
    analysis_free(a);
    return v;
}

static decide_verdict verdict(const fixture *f, const warehouse_facts *wh, const char *user, const char *sql,
                              char *why, size_t len)
{
    return verdict_at(f, wh, NULL, user, sql, why, len);
}

#define EXPECT_AT(wh, version, user, sql, want, needle)                                            \
    do {                                                                                           \
        char why_[1024];                                                                           \
        decide_verdict v_ = verdict_at(f, wh, version, user, sql, why_, sizeof why_);              \
        if (v_ != (want) || !strstr(why_, needle))                                                 \
            fail_msg("%s as %s: got %s: %s (wanted %s with \"%s\")", sql, user, decide_verdict_name(v_), \
                     why_, decide_verdict_name(want), needle);                                     \
    } while (0)
#define EXPECT(wh, user, sql, want, needle) EXPECT_AT(wh, NULL, user, sql, want, needle)

static void test_settings(void **state)
{
    fixture *f = *state;
    const warehouse_facts *wh = f->wh;
    EXPECT(wh, "ana", "SET TIME ZONE 'UTC'", DECIDE_ALLOW, "");
    EXPECT(wh, "ana", "SET timezone = 'UTC'", DECIDE_ALLOW, "");   /* names compare case-insensitively */
    EXPECT(wh, "ana", "SET application_name = 'x'", DECIDE_ALLOW, "");
    EXPECT(wh, "ana", "SET log_statement = none", DECIDE_DENY, "context 'superuser'");
    EXPECT(wh, "ana", "SET synchronous_commit = off", DECIDE_DENY, "category 'Write-Ahead Log'");
    EXPECT(wh, "ana", "SET work_mem = '1GB'", DECIDE_DENY, "settings.deny");   /* deny wins over user context */
    EXPECT(wh, "ana", "SET never_heard_of = 1", DECIDE_DENY, "not a setting the warehouse knows");
    /* the policy's settings.allow names what the warehouse's metadata would refuse */
    EXPECT(wh, "ana", "SET app.tenant = 'acme'", DECIDE_ALLOW, "settings.allow");
    EXPECT(wh, "ana", "SET log_statement_sample_rate = 0.5", DECIDE_ALLOW, "settings.allow");
    /* offline nothing is known but the parse settings and search_path */
    EXPECT(NULL, "ana", "SET TIME ZONE 'UTC'", DECIDE_DENY, "has not read the warehouse's settings");
    EXPECT(NULL, "ana", "RESET standard_conforming_strings", DECIDE_ALLOW, "goes back to on");
    EXPECT(NULL, "ana", "SET backslash_quote = off", DECIDE_DENY, "may only be safe_encoding");
    char why[400];
    assert_true(decide_setting_value(f->p, wh, "TimeZone", "UTC", why, sizeof why));
    assert_true(decide_setting_value(f->p, wh, "client_encoding", "'utf-8'", why, sizeof why));
    assert_false(decide_setting_value(f->p, wh, "client_encoding", "latin1", why, sizeof why));
    assert_false(decide_setting_value(f->p, wh, "log_statement", "none", why, sizeof why));
    assert_non_null(strstr(why, "context 'superuser'"));
}

static void test_functions(void **state)
{
    fixture *f = *state;
    const warehouse_facts *wh = f->wh;
    EXPECT(wh, "ana", "SELECT * FROM pg_hba_file_rules()", DECIDE_DENY, "does not let PUBLIC execute");
    EXPECT(wh, "ana", "SELECT * FROM pg_catalog.pg_hba_file_rules()", DECIDE_DENY, "does not let PUBLIC execute");
    EXPECT(wh, "ana", "SELECT ext.secret_fn()", DECIDE_DENY, "does not let PUBLIC execute");
    EXPECT(wh, "ana", "SELECT secret_fn()", DECIDE_DENY, "does not let PUBLIC execute");   /* may resolve to ext */
    EXPECT(wh, "ana", "SELECT pg_ls_logdir()", DECIDE_DENY, "built-in list");  /* functions.allow never lifts a deny */
    EXPECT(wh, "ana", "SELECT now()", DECIDE_ALLOW, "");
    /* offline only the built-in list applies */
    EXPECT(NULL, "ana", "SELECT * FROM pg_hba_file_rules()", DECIDE_ALLOW, "");
}

static void test_functions_allow(void **state)
{
    fixture *f = *state;
    char err[2048];
    policy_t *p = NULL;
    const char *text = "{\"functions\": {\"allow\": [\"pg_hba_file_rules\"]}}";
    assert_int_equal(policy_load_text("a.json", text, strlen(text), &p, NULL, err, sizeof err), 0);
    fixture g = {p, f->wh};
    char why[1024];
    assert_int_equal(verdict(&g, f->wh, "ana", "SELECT * FROM pg_hba_file_rules()", why, sizeof why), DECIDE_ALLOW);
    assert_int_equal(verdict(&g, f->wh, "ana", "SELECT ext.secret_fn()", why, sizeof why), DECIDE_DENY);
    policy_unref(p);
}

static void test_no_table_list(void **state)
{
    fixture *f = *state;
    const warehouse_facts *wh = f->wh;
    /* acting on every table needs write on every table */
    EXPECT(wh, "root", "VACUUM", DECIDE_ALLOW, "");
    EXPECT(wh, "root", "ANALYZE VERBOSE", DECIDE_ALLOW, "");
    EXPECT(wh, "half", "VACUUM", DECIDE_DENY, "names no table");   /* a deny before the catch-all */
    EXPECT(wh, "ana", "VACUUM VERBOSE", DECIDE_DENY, "names no table");
    EXPECT(wh, "ana", "CLUSTER", DECIDE_DENY, "names no table");
    EXPECT(wh, "ana", "REINDEX DATABASE dw", DECIDE_DENY, "names no table");
    EXPECT(wh, "ana", "ANALYZE sales_mart.orders", DECIDE_DENY, "");   /* read is not enough */
    EXPECT(wh, "half", "ANALYZE sales_mart.orders", DECIDE_ALLOW, "");
}

static void test_facts(void **state)
{
    fixture *f = *state;
    assert_non_null(wh_find_setting(f->wh, "timezone"));
    assert_null(wh_find_setting(f->wh, "timezon"));
    assert_true(wh_function_is_admin(f->wh, NULL, "secret_fn"));
    assert_false(wh_function_is_admin(f->wh, "public", "secret_fn"));
    char why[200];
    assert_false(wh_role_privileged(f->wh, why, sizeof why));   /* no role read: nothing to say */
    /* the JSON form round-trips and names what is wrong with a bad one */
    json_t *j = wh_to_json(f->wh);
    assert_non_null(j);
    char err[300];
    warehouse_facts *back = wh_from_json(j, err, sizeof err);
    json_decref(j);
    assert_non_null(back);
    assert_int_equal(back->n_settings, f->wh->n_settings);
    assert_true(wh_function_is_admin(back, "ext", "secret_fn"));
    wh_free(back);
    json_t *bad = json_loads("{\"settings\": [[\"a\", \"user\"]]}", 0, NULL);
    assert_null(wh_from_json(bad, err, sizeof err));
    assert_non_null(strstr(err, "settings[0] must be [name, context, category]"));
    json_decref(bad);
    bad = json_loads("{\"service_role\": {\"name\": \"svc\", \"superuser\": true, \"predefined\": "
                     "\"pg_read_server_files\"}, \"extra\": 1}", 0, NULL);
    assert_null(wh_from_json(bad, err, sizeof err));
    assert_non_null(strstr(err, "unknown key \"extra\""));
    json_object_del(bad, "extra");
    back = wh_from_json(bad, err, sizeof err);
    json_decref(bad);
    assert_non_null(back);
    assert_true(wh_role_privileged(back, why, sizeof why));
    assert_string_equal(why, "superuser, member of pg_read_server_files");
    wh_free(back);
}

/* An unqualified pg_* name martgate does not classify may be a relation of
 * pg_catalog (the server looks there first): the warehouse's own list of
 * them says whether it is, for the version it was read from. */
static void test_catalog_relations(void **state)
{
    fixture *f = *state;
    warehouse_facts *wh = wh_new();
    wh_add_catalog_relation(wh, "pg_class");
    wh_add_catalog_relation(wh, "pg_zz_new_view");
    wh_set_server_version(wh, "15.20");
    assert_int_equal(wh_finish(wh), 0);
    assert_true(wh_catalog_lacks(wh, "15.20", "pg_notes"));
    assert_false(wh_catalog_lacks(wh, "15.20", "pg_zz_new_view"));
    assert_false(wh_catalog_lacks(wh, "16.1", "pg_notes"));   /* another version: not known */
    assert_false(wh_catalog_lacks(f->wh, NULL, "pg_notes"));   /* no list read */
    /* root writes every schema: a name the catalog lacks is public's */
    EXPECT_AT(wh, "15.20", "root", "SELECT * FROM pg_notes", DECIDE_ALLOW, "public.pg_notes");
    EXPECT_AT(wh, "15.20", "root", "ALTER TABLE pg_notes RENAME TO notes", DECIDE_ALLOW, "");
    EXPECT_AT(wh, NULL, "root", "SELECT to_regclass('pg_notes')", DECIDE_ALLOW, "");
    /* one it has is a catalog relation, unclassified: denied */
    EXPECT_AT(wh, "15.20", "root", "SELECT * FROM pg_zz_new_view", DECIDE_DENY, "has not classified");
    /* offline, without the list, or with facts of another version: it may be one */
    EXPECT_AT(wh, "16.1", "root", "SELECT * FROM pg_notes", DECIDE_DENY, "pg_catalog.pg_notes");
    EXPECT(f->wh, "root", "SELECT * FROM pg_notes", DECIDE_DENY, "pg_catalog.pg_notes");
    EXPECT(NULL, "root", "SELECT * FROM pg_notes", DECIDE_DENY, "pg_catalog.pg_notes");
    EXPECT_AT(wh, "15.20", "root", "ALTER TABLE pg_zz_new_view RENAME TO v", DECIDE_DENY, "system catalog");
    /* the JSON form keeps the list and the version; an empty list is a list */
    json_t *j = wh_to_json(wh);
    char err[300];
    warehouse_facts *back = wh_from_json(j, err, sizeof err);
    json_decref(j);
    assert_non_null(back);
    assert_true(wh_catalog_lacks(back, "15.20", "pg_notes"));
    assert_false(wh_catalog_lacks(back, "15.20", "pg_class"));
    wh_free(back);
    j = json_loads("{\"catalog_relations\": []}", 0, NULL);
    back = wh_from_json(j, err, sizeof err);
    json_decref(j);
    assert_non_null(back);
    assert_true(wh_catalog_lacks(back, NULL, "pg_class"));
    wh_free(back);
    j = json_loads("{\"catalog_relations\": [\"pg_class\", 3]}", 0, NULL);
    assert_null(wh_from_json(j, err, sizeof err));
    assert_non_null(strstr(err, "catalog_relations[1] must be a relation name"));
    json_decref(j);
    wh_free(wh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_functions_allow),
        cmocka_unit_test(test_no_table_list),
        cmocka_unit_test(test_facts),
        cmocka_unit_test(test_catalog_relations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
