/*
 * test_policy_load: the policy language and its loader. A directory policy
 * merges; strictness errors name file:line:column and the field; SQL
 * expressions are parsed at load; shadowed rules warn; the size limit holds;
 * globs and templates compile to what decide relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy/policy_internal.h"

#define FIX "tests/unit/fixtures/policy/"

static policy_t *load_text_ok(const char *text, policy_messages *m)
{
    char err[2048];
    policy_t *p = NULL;
    int rc = policy_load_text("t.json", text, strlen(text), &p, m, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(p);
    return p;
}

/* Loads text that must fail; returns the messages (caller frees). */
static void load_text_fail(const char *text, policy_messages *m, char *err, size_t errlen)
{
    policy_t *p = (policy_t *)1;
    int rc = policy_load_text("t.json", text, strlen(text), &p, m, err, errlen);
    assert_int_equal(rc, -1);
    assert_null(p);
    assert_true(m->n_errors >= 1);
}

static bool any_contains(char **arr, size_t n, const char *needle)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(arr[i], needle))
            return true;
    return false;
}

static void dump(const policy_messages *m)
{
    for (size_t i = 0; i < m->n_errors; i++)
        fprintf(stderr, "  error: %s\n", m->errors[i]);
    for (size_t i = 0; i < m->n_warnings; i++)
        fprintf(stderr, "  warning: %s\n", m->warnings[i]);
}

#define EXPECT_ERROR(text, needle)                                       \
    do {                                                                 \
        policy_messages m_;                                              \
        char e_[2048];                                                   \
        load_text_fail(text, &m_, e_, sizeof e_);                        \
        if (!any_contains(m_.errors, m_.n_errors, needle)) {             \
            fprintf(stderr, "expected an error containing: %s\n", needle); \
            dump(&m_);                                                   \
        }                                                                \
        assert_true(any_contains(m_.errors, m_.n_errors, needle));       \
        policy_messages_free(&m_);                                       \
    } while (0)

/* ---- the reference policy ------------------------------------------ */

static void test_directory_loads(void **state)
{
    policy_messages m;
    char err[2048], sum[256];
    policy_t *p = NULL;
    int rc = policy_load(FIX "passei", &p, &m, err, sizeof err);
    if (rc)
        dump(&m);
    assert_int_equal(rc, 0);
    assert_int_equal(m.n_errors, 0);
    if (m.n_warnings)
        dump(&m);
    assert_int_equal(m.n_warnings, 0);
    policy_summary(p, sum, sizeof sum);
    assert_string_equal(sum, "5 files, 6 datasets, 5 groups, 13 rules, 2 roles");
    /* order: priority 100 first, then file name order, everyone (-10) last */
    assert_string_equal(p->rules[0].id, "data-scientists-no-secrets");
    assert_string_equal(p->rules[1].id, "data-engineers-write");
    assert_string_equal(p->rules[p->n_rules - 1].id, "everyone-shared");
    assert_string_equal(p->rules[6].id, "squad-origination-marts");
    /* built-ins: the sensitive dataset and the function list, extended */
    assert_non_null(p->sensitive);
    bool http = false, lo = false;
    for (size_t i = 0; i < p->n_functions; i++) {
        http |= strcmp(p->functions[i].text, "public.http_*") == 0;
        lo |= strcmp(p->functions[i].text, "lo_*") == 0;
    }
    assert_true(http && lo);
    assert_int_equal(p->n_impersonators, 1);
    assert_int_equal(p->n_search_paths, 4);
    assert_true(p->has_full_catalog);
    assert_string_equal(policy_source(p), FIX "passei");
    policy_messages_free(&m);
    /* reference counting */
    assert_ptr_equal(policy_ref(p), p);
    policy_unref(p);
    policy_unref(p);
    policy_unref(NULL);
}

static void test_single_file_loads(void **state)
{
    char err[2048];
    policy_t *p = NULL;
    assert_int_equal(policy_load(FIX "passei/10-data-team.json", &p, NULL, err, sizeof err), -1);
    /* that file names datasets defined in another: a clear error */
    assert_non_null(strstr(err, "dataset 'raw' is not defined"));
    assert_non_null(strstr(err, "10-data-team.json:"));
    p = NULL;
    assert_int_equal(policy_load(FIX "passei/00-base.json", &p, NULL, err, sizeof err), 0);
    policy_unref(p);
}

static void test_conflicting_files(void **state)
{
    policy_messages m;
    char err[2048];
    policy_t *p = NULL;
    assert_int_equal(policy_load(FIX "conflict", &p, &m, err, sizeof err), -1);
    assert_null(p);
    /* both places are named */
    assert_true(any_contains(m.errors, m.n_errors, "conflict/b.json:3:12: datasets.raw: dataset 'raw' is already defined at " FIX "conflict/a.json:2:23"));
    assert_true(any_contains(m.errors, m.n_errors, "rule id 'r1' is already used at " FIX "conflict/a.json:3:13"));
    assert_non_null(strstr(err, "(and 1 more error)"));
    policy_messages_free(&m);
}

static void test_missing_and_empty(void **state)
{
    char err[2048];
    policy_t *p = NULL;
    assert_int_equal(policy_load(FIX "no-such-thing", &p, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(policy_load(FIX "empty", &p, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "no *.json policy files"));
}

/* ---- strictness ---------------------------------------------------- */

static void test_json_syntax_error(void **state)
{
    EXPECT_ERROR("{\n  \"rules\": [\n    {\"id\": \"x\",}\n  ]\n}\n", "t.json:3:");
}

static void test_unknown_keys(void **state)
{
    EXPECT_ERROR("{\"rulez\": []}", "t.json:1:11: (top level): unknown key 'rulez'");
    EXPECT_ERROR("{\"datasets\": {\"raw\": {\"schemas\": [\"raw\"]}},\n"
                 " \"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": [\"*\"]},\n"
                 "   \"objects\": {\"datasets\": [\"raw\"]}, \"acess\": \"read\"}]}",
                 "t.json:3:47: rules[0] 'a': unknown key 'acess'");
    EXPECT_ERROR("{\"datasets\": {\"raw\": {\"schemas\": [\"raw\"], \"owner\": \"x\", \"clasification\": \"y\"}}}",
                 "datasets.raw: unknown key 'clasification'");
    EXPECT_ERROR("{\"defaults\": {\"search_paths\": []}}", "defaults: unknown key 'search_paths'");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"group\": [\"x\"]}, \"objects\": {\"schemas\": [\"s\"]}, \"access\": \"read\"}]}",
                 "rules[0] 'a'.subjects: unknown key 'group'");
}

static void test_types_and_values(void **state)
{
    EXPECT_ERROR("{\"version\": 2}", "'version' is 2, must be between 1 and 1");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"admin\"}]}",
                 "t.json:1:91: rules[0] 'a': access 'admin' must be read, write or deny");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"read\", \"priority\": \"high\"}]}",
                 "'priority' must be an integer");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a b\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"read\"}]}",
                 "rule id must be");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"read\"}]}",
                 "needs \"groups\" or \"users\"");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": \"*\"}, \"objects\": {}, \"access\": \"read\"}]}",
                 "needs \"datasets\", \"schemas\" or \"tables\"");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"datasets\": [\"nope\"]}, \"access\": \"read\"}]}",
                 "dataset 'nope' is not defined");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": [\"*\", 3]}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"read\"}]}",
                 "'users'[1] must be a string");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"tables\": [\"orders\"]}, \"access\": \"read\"}]}",
                 "table pattern 'orders' must be schema.table");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"tables\": [\"db.s.t\"]}, \"access\": \"read\"}]}",
                 "more than one '.'");
    EXPECT_ERROR("{\"groups\": {\"g\": {\"members\": \"x\", \"desc\": 1}}}", "groups.g: unknown key 'desc'");
    EXPECT_ERROR("{\"rules\": {}}", "rules: must be an array");
    EXPECT_ERROR("{\"datasets\": {\"pg_sensitive\": {\"schemas\": [\"x\"]}}}", "built-in dataset");
}

static void test_system_schemas(void **state)
{
    EXPECT_ERROR("{\"datasets\": {\"sys\": {\"schemas\": [\"pg_catalog\"]}}}", "is a system schema");
    EXPECT_ERROR("{\"datasets\": {\"sys\": {\"schemas\": [\"information_schema\"]}}}", "is a system schema");
    EXPECT_ERROR("{\"datasets\": {\"sys\": {\"schemas\": [\"pg_*\"]}}}", "wildcards never match");
    EXPECT_ERROR("{\"datasets\": {\"sys\": {\"schemas\": [\"pg_foo\"]}}}", "reserved by PostgreSQL");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"tables\": [\"pg_catalog.pg_stats\"]}, \"access\": \"read\"}]}",
                 "pg_sensitive");
    EXPECT_ERROR("{\"defaults\": {\"search_path\": [{\"schemas\": [\"$user\", \"public\"]}]}}",
                 "defaults.search_path[0]: \"$user\" would name the warehouse login's schema");
    /* pg_temp is nameable (temporary tables need an explicit write rule) */
    policy_t *p = load_text_ok("{\"rules\": [{\"id\": \"a\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"schemas\": [\"pg_temp\"]}, \"access\": \"write\"}]}", NULL);
    policy_unref(p);
}

static void test_row_filters(void **state)
{
    const char *pre = "{\"rules\": [{\"id\": \"f\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"read\", \"row_filter\": ";
    char buf[2048];
#define RF(expr, needle)                                    \
    do {                                                    \
        snprintf(buf, sizeof buf, "%s%s}]}", pre, expr);    \
        EXPECT_ERROR(buf, needle);                          \
    } while (0)
    RF("\"region = \"", "row_filter does not parse as SQL");
    RF("\"true) UNION SELECT (1\"", "row_filter must be exactly one SQL expression");
    RF("\"a), (b\"", "must be exactly one SQL expression");
    RF("\"1) FROM raw.secrets WHERE (true\"", "must be exactly one SQL expression");
    RF("\"region = '${claims.region}'\"", "placeholder inside a quoted string");
    RF("\"region = ${claims.region} -- note\"", "comments are not allowed");
    RF("\"region = ${claims.region}; DROP TABLE x\"", "';' is not allowed");
    RF("\"region = ${claim.region}\"", "unknown placeholder ${claim.region}");
    RF("\"region = x${user}\"", "glued to the text before it");
    RF("\"region = ${user}x\"", "glued to the text after it");
    RF("\"a = ${column}\"", "${column} is only for column mask expressions");
    RF("\"a = $1\"", "parameters like $1 are not allowed");
    RF("\"a = $$x$$\"", "dollar-quoted strings are not allowed");
    RF("\"a = ${claims..x}\"", "bad claim name");
    RF("\"\"", "row_filter is empty");
    /* a filter on a write rule */
    EXPECT_ERROR("{\"rules\": [{\"id\": \"w\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"write\", \"row_filter\": \"true\"}]}",
                 "only a rule with access read may have one");
    /* and the good ones */
    snprintf(buf, sizeof buf, "%s\"region = ${claims.region} AND owner = ${user} AND team = ANY(${groups}) AND x IN (SELECT region FROM governance.user_regions u WHERE u.login = ${claims.sub})\"}]}", pre);
    policy_t *p = load_text_ok(buf, NULL);
    const policy_template *t = &p->rules[0].row_filter;
    assert_true(p->rules[0].has_row_filter);
    assert_int_equal(t->n_segs, 9);
    assert_int_equal(t->segs[0].kind, TPL_TEXT);
    assert_string_equal(t->segs[0].text, "region = ");
    assert_int_equal(t->segs[1].kind, TPL_CLAIM);
    assert_string_equal(t->segs[1].text, "region");
    assert_int_equal(t->segs[3].kind, TPL_USER);
    assert_int_equal(t->segs[5].kind, TPL_GROUPS);
    assert_int_equal(t->segs[7].kind, TPL_CLAIM);
    assert_string_equal(t->segs[7].text, "sub");
    /* the claims a session keeps: exactly those the templates read */
    assert_true(policy_reads_claim(p, "region"));
    assert_true(policy_reads_claim(p, "sub"));
    assert_false(policy_reads_claim(p, "reg"));
    assert_false(policy_reads_claim(p, "regions"));
    assert_false(policy_reads_claim(p, "groups"));
    assert_false(policy_reads_claim(NULL, "region"));
    policy_unref(p);
#undef RF
}

static void test_template_strings(void **state)
{
    char err[256];
    policy_template t;
    /* ${ inside strings, quoted identifiers or E'' strings is refused; '' and \' are skipped correctly */
    assert_int_equal(tpl_compile(&t, "a = 'it''s ${user}'", false, err, sizeof err), -1);
    assert_non_null(strstr(err, "quoted string"));
    assert_int_equal(tpl_compile(&t, "\"${user}\" = 1", false, err, sizeof err), -1);
    assert_non_null(strstr(err, "quoted identifier"));
    assert_int_equal(tpl_compile(&t, "a = E'x\\' ${user}'", false, err, sizeof err), -1);
    assert_int_equal(tpl_compile(&t, "a = 'x\\' AND b = ${user}", false, err, sizeof err), 0);
    assert_int_equal(t.n_segs, 2);
    assert_int_equal(tpl_check_sql(&t, err, sizeof err), 0);
    tpl_free(&t);
    assert_int_equal(tpl_compile(&t, "a = 'unterminated", false, err, sizeof err), -1);
    assert_non_null(strstr(err, "unterminated string"));
    assert_int_equal(tpl_compile(&t, "md5(${column}::text || ${claims.org.salt})", true, err, sizeof err), 0);
    assert_true(t.uses_column);
    assert_int_equal(t.segs[3].kind, TPL_CLAIM);
    assert_string_equal(t.segs[3].text, "org.salt");
    assert_int_equal(tpl_check_sql(&t, err, sizeof err), 0);
    tpl_free(&t);
}

static void test_columns(void **state)
{
    const char *pre = "{\"rules\": [{\"id\": \"c\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"read\", \"columns\": ";
    char buf[2048];
    snprintf(buf, sizeof buf, "%s{\"email\": \"hashed\"}}]}", pre);
    EXPECT_ERROR(buf, "rules[0] 'c'.columns.email: unknown mask 'hashed'");
    snprintf(buf, sizeof buf, "%s{\"email\": {\"expr\": \"left(${column}\"}}}]}", pre);
    EXPECT_ERROR(buf, "columns.email: expr does not parse as SQL");
    snprintf(buf, sizeof buf, "%s{\"email\": {\"mask\": \"hash\"}}}]}", pre);
    EXPECT_ERROR(buf, "columns.email: unknown key 'mask'");
    snprintf(buf, sizeof buf, "%s{\"email\": 3}}]}", pre);
    EXPECT_ERROR(buf, "must be a mask name");
    snprintf(buf, sizeof buf, "%s{}}]}", pre);
    EXPECT_ERROR(buf, "must be an object");
    EXPECT_ERROR("{\"rules\": [{\"id\": \"d\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"deny\", \"columns\": {\"a\": \"null\"}}]}",
                 "only a rule with access read may have them");
    snprintf(buf, sizeof buf, "%s{\"email\": \"hash\", \"cpf\": \"last4\", \"phone\": \"redact\", \"b\": \"null\", \"salary\": \"deny\", \"name\": {\"expr\": \"left(${column}, 1)\"}}}]}", pre);
    policy_t *p = load_text_ok(buf, NULL);
    assert_int_equal(p->rules[0].n_columns, 6);
    assert_int_equal(p->rules[0].columns[0].kind, MASK_HASH);
    assert_int_equal(p->rules[0].columns[4].kind, MASK_DENY);
    assert_int_equal(p->rules[0].columns[5].kind, MASK_EXPR);
    policy_unref(p);
}

static void test_many_errors_reported(void **state)
{
    policy_messages m;
    char err[2048];
    load_text_fail("{\n"
                   "  \"datasets\": {\"a\": {\"schemas\": []}, \"b\": {}},\n"
                   "  \"rules\": [\n"
                   "    {\"id\": \"x\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"datasets\": \"zz\"}, \"access\": \"read\"},\n"
                   "    {\"id\": \"y\", \"subjects\": {\"users\": \"*\"}, \"objects\": {\"schemas\": \"s\"}, \"access\": \"reed\"}\n"
                   "  ]\n"
                   "}\n",
                   &m, err, sizeof err);
    assert_int_equal(m.n_errors, 4);
    assert_true(any_contains(m.errors, m.n_errors, "t.json:2:33: datasets.a: 'schemas' must list at least one"));
    assert_true(any_contains(m.errors, m.n_errors, "t.json:2:43: datasets.b: missing required key 'schemas'"));
    assert_true(any_contains(m.errors, m.n_errors, "t.json:4:69: rules[0] 'x'.objects: dataset 'zz' is not defined"));
    assert_true(any_contains(m.errors, m.n_errors, "t.json:5:84: rules[1] 'y': access 'reed'"));
    assert_non_null(strstr(err, "(and 3 more errors)"));
    policy_messages_free(&m);
}

static void test_shadowed_rules_warn(void **state)
{
    policy_messages m;
    policy_t *p = load_text_ok(
        "{\"datasets\": {\"marts\": {\"schemas\": [\"*_mart\"]}},\n"
        " \"rules\": [\n"
        "  {\"id\": \"broad\", \"subjects\": {\"groups\": [\"squad-*\"]}, \"objects\": {\"datasets\": [\"marts\"]}, \"access\": \"read\"},\n"
        "  {\"id\": \"narrow\", \"subjects\": {\"groups\": [\"squad-sales\"]}, \"objects\": {\"tables\": [\"sales_mart.orders\"]}, \"access\": \"deny\"},\n"
        "  {\"id\": \"hidden\", \"subjects\": {\"groups\": [\"squad-sales\"]}, \"objects\": {\"schemas\": [\"sales_mart\"]}, \"access\": \"read\"},\n"
        "  {\"id\": \"writes\", \"subjects\": {\"groups\": [\"squad-sales\"]}, \"objects\": {\"schemas\": [\"sales_mart\"]}, \"access\": \"write\"},\n"
        "  {\"id\": \"other\", \"subjects\": {\"users\": [\"bob\"]}, \"objects\": {\"schemas\": [\"x\"]}, \"access\": \"read\"}\n"
        " ]}",
        &m);
    /* broad read covers narrow's reads, and a deny's reads too: narrow is hidden as a read,
       but a read rule says nothing about writes, so a deny stays reachable for writes */
    assert_false(any_contains(m.warnings, m.n_warnings, "rule 'narrow' can never match"));
    assert_true(any_contains(m.warnings, m.n_warnings, "t.json:5:3: rules: rule 'hidden' can never match: rule 'broad'"));
    assert_false(any_contains(m.warnings, m.n_warnings, "rule 'writes'"));
    assert_false(any_contains(m.warnings, m.n_warnings, "rule 'other'"));
    policy_messages_free(&m);
    policy_unref(p);
    /* an unused dataset warns */
    p = load_text_ok("{\"datasets\": {\"lonely\": {\"schemas\": [\"l\"]}}}", &m);
    assert_true(any_contains(m.warnings, m.n_warnings, "datasets.lonely: no rule names this dataset"));
    policy_messages_free(&m);
    policy_unref(p);
}

static void test_impersonators(void **state)
{
    policy_messages m;
    policy_t *p = load_text_ok("{\"roles\": {\"mb_sales\": {\"groups\": [\"squad-sales\"]}},\n"
                               " \"impersonators\": [{\"subjects\": {\"users\": [\"metabase\"]}, \"roles\": [\"mb_*\", \"other_*\"]}]}",
                               &m);
    assert_int_equal(p->n_roles, 1);
    assert_int_equal(p->n_impersonators, 1);
    assert_true(any_contains(m.warnings, m.n_warnings, "role pattern 'other_*' matches no role"));
    policy_messages_free(&m);
    policy_unref(p);
    EXPECT_ERROR("{\"roles\": {\"r\": {\"groups\": [\"g*\"]}}}", "a role's groups are names, not patterns");
    EXPECT_ERROR("{\"impersonators\": [{\"roles\": [\"r\"]}]}", "impersonators[0]: missing required key 'subjects'");
    EXPECT_ERROR("{\"impersonators\": {}}", "impersonators: must be an array");
}

static void test_functions_settings(void **state)
{
    EXPECT_ERROR("{\"functions\": {\"deny\": [\"a.b.c\"]}}", "must be name or schema.name");
    EXPECT_ERROR("{\"functions\": {\"grant\": [\"lo_import\"]}}", "functions: unknown key 'grant'");
    EXPECT_ERROR("{\"settings\": {\"deny\": [\"search_path\"]}}", "cannot be denied outright");
    EXPECT_ERROR("{\"settings\": {\"allow\": [\"search_path\"]}}", "cannot be allowed outright");
    EXPECT_ERROR("{\"functions\": {\"allow\": [\"a.b.c\"]}}", "functions.allow");
    policy_t *p = load_text_ok("{\"functions\": {\"deny\": [\"pg_catalog.version\", \"etl.*\"]}, \"settings\": {\"deny\": [\"Work_Mem\"]}}", NULL);
    policy_fnpat *last = &p->functions[p->n_functions - 1], *prev = last - 1;
    assert_false(prev->has_schema);   /* pg_catalog.x is x */
    assert_string_equal(prev->name.text, "version");
    assert_true(last->has_schema);
    assert_string_equal(p->settings[0].name.text, "work_mem");
    assert_false(p->settings[0].allow);
    assert_false(last->allow);
    policy_unref(p);
    /* allow lists: what the warehouse's metadata would deny, granted by name */
    p = load_text_ok("{\"functions\": {\"allow\": [\"pg_ls_waldir\"]}, \"settings\": {\"allow\": [\"App.*\"]}}", NULL);
    last = &p->functions[p->n_functions - 1];
    assert_true(last->allow);
    assert_string_equal(last->name.text, "pg_ls_waldir");
    assert_true(p->settings[0].allow);
    assert_string_equal(p->settings[0].name.text, "app.*");
    policy_unref(p);
}

static void test_defaults_once(void **state)
{
    char dir[] = "/tmp/martgate-policy-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/a.json", dir);
    snprintf(b, sizeof b, "%s/b.json", dir);
    FILE *f = fopen(a, "w");
    fputs("{\"defaults\": {\"search_path\": [{\"schemas\": [\"public\"]}]}}", f);
    fclose(f);
    f = fopen(b, "w");
    fputs("{\"defaults\": {\"search_path\": [{\"schemas\": []}]}}", f);
    fclose(f);
    policy_messages m;
    char err[2048];
    policy_t *p = NULL;
    assert_int_equal(policy_load(dir, &p, &m, err, sizeof err), -1);
    char want[400];
    snprintf(want, sizeof want, "b.json:1:30: defaults.search_path: already defined at %s:1:30", a);
    if (!any_contains(m.errors, m.n_errors, want))
        dump(&m);
    assert_true(any_contains(m.errors, m.n_errors, want));
    policy_messages_free(&m);
    unlink(a);
    unlink(b);
    rmdir(dir);
}

static void test_size_limit(void **state)
{
    char path[] = "/tmp/martgate-policy-big-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"description\": \"", f);
    for (size_t i = 0; i < POLICY_MAX_FILE_BYTES; i += 64)
        fputs("0123456789012345678901234567890123456789012345678901234567890123", f);
    fputs("\"}", f);
    fclose(f);
    char err[2048];
    policy_t *p = NULL;
    assert_int_equal(policy_load(path, &p, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than the limit"));
    unlink(path);
    /* from memory too */
    size_t n = POLICY_MAX_FILE_BYTES + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    assert_int_equal(policy_load_text("big.json", big, n, &p, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than the limit"));
    free(big);
}

/* ---- globs ---------------------------------------------------------- */

/* The parts of a policy that do nothing or overlap (policy_load_lint.c). */
static void test_lint_warnings(void **state)
{
    (void)state;
    policy_messages m;
    policy_t *p = load_text_ok(
        "{\"datasets\": {\"marts\": {\"schemas\": [\"*_mart\"]}, \"sales\": {\"schemas\": [\"sales_mart\"]},\n"
        "              \"raw\": {\"schemas\": [\"raw\"]}, \"rawish\": {\"schemas\": [\"raw_*\"]}},\n"
        " \"groups\": {\"used\": {\"members\": [\"ana\"]}, \"idle\": {\"members\": [\"bob\"]}},\n"
        " \"roles\": {\"mb_reached\": {\"groups\": [\"used\"]}, \"mb_dark\": {\"groups\": [\"nobody\"]},\n"
        "           \"orphan\": {\"groups\": [\"used\"]}},\n"
        " \"impersonators\": [{\"subjects\": {\"users\": [\"metabase\"]}, \"roles\": [\"mb_*\"]}],\n"
        " \"rules\": [\n"
        "  {\"id\": \"a\", \"subjects\": {\"groups\": [\"used\"]}, \"objects\": {\"datasets\": [\"marts\", \"raw\"]}, \"access\": \"read\"},\n"
        "  {\"id\": \"b\", \"subjects\": {\"users\": [\"bob\"]}, \"objects\": {\"datasets\": [\"sales\", \"rawish\"]}, \"access\": \"read\"}\n"
        " ]}",
        &m);
    assert_true(any_contains(m.warnings, m.n_warnings, "t.json:3:51: groups.idle: no rule, search_path"));
    assert_false(any_contains(m.warnings, m.n_warnings, "groups.used"));
    assert_true(any_contains(m.warnings, m.n_warnings, "roles.mb_dark: no rule's subjects match this role"));
    assert_true(any_contains(m.warnings, m.n_warnings, "roles.orphan: no impersonators entry may assume this role"));
    assert_false(any_contains(m.warnings, m.n_warnings, "roles.mb_reached"));
    /* "*_mart" and "sales_mart" overlap, so do "raw_*" and "*_mart" (raw_mart); "raw" and "raw_*" do not */
    assert_true(any_contains(m.warnings, m.n_warnings,
                             "t.json:1:58: datasets.sales: its \"sales_mart\" and \"*_mart\" of dataset marts (t.json:1:24)"));
    assert_true(any_contains(m.warnings, m.n_warnings, "datasets.rawish: its \"raw_*\" and \"*_mart\" of dataset marts"));
    assert_false(any_contains(m.warnings, m.n_warnings, "of dataset raw "));
    assert_int_equal(m.n_warnings, 5);
    policy_messages_free(&m);
    policy_unref(p);
}

static void test_globs(void **state)
{
    policy_glob g, h;
    glob_compile(&g, "raw_*");
    assert_int_equal(g.kind, GLOB_PREFIX);
    assert_true(glob_match(&g, "raw_x"));
    assert_true(glob_match(&g, "raw_"));
    assert_false(glob_match(&g, "raw"));
    glob_free(&g);
    glob_compile(&g, "*_mart");
    assert_int_equal(g.kind, GLOB_SUFFIX);
    assert_true(glob_match(&g, "sales_mart"));
    assert_false(glob_match(&g, "mart"));
    assert_true(glob_match_schema(&g, "sales_mart"));
    glob_free(&g);
    glob_compile(&g, "a?c*d");
    assert_int_equal(g.kind, GLOB_GENERAL);
    assert_true(glob_match(&g, "abcd"));
    assert_true(glob_match(&g, "axcxxd"));
    assert_false(glob_match(&g, "acd"));
    glob_free(&g);
    glob_compile(&g, "*");
    assert_true(glob_match(&g, "anything"));
    assert_false(glob_match_schema(&g, "pg_catalog"));   /* wildcards never reach reserved schemas */
    assert_false(glob_match_schema(&g, "information_schema"));
    assert_true(glob_match_schema(&g, "public"));
    /* coverage */
    glob_compile(&h, "raw_*");
    assert_true(glob_covers(&g, &h));
    assert_false(glob_covers(&h, &g));
    policy_glob i;
    glob_compile(&i, "raw_x*");
    assert_true(glob_covers(&h, &i));
    assert_false(glob_covers(&i, &h));
    glob_free(&i);
    glob_compile(&i, "ra?_x");
    assert_false(glob_covers(&h, &i));   /* ? is not a literal '_' */
    glob_free(&i);
    glob_free(&g);
    glob_free(&h);
    /* SQL */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    glob_compile(&g, "raw_*");
    assert_true(glob_to_sql(&g, "n.nspname", true, &buf, &len, &cap));
    assert_string_equal(buf, "(n.nspname LIKE 'raw!_%' ESCAPE '!' AND n.nspname NOT LIKE 'pg!_%' ESCAPE '!' AND "
                             "n.nspname <> 'information_schema')");
    glob_free(&g);
    len = 0;
    glob_compile(&g, "o'k!100%");
    assert_true(glob_to_sql(&g, "t", false, &buf, &len, &cap));
    assert_string_equal(buf, "(t = 'o''k!100%')");
    glob_free(&g);
    len = 0;
    glob_compile(&g, "o'k!1%?*");
    assert_true(glob_to_sql(&g, "t", false, &buf, &len, &cap));
    assert_string_equal(buf, "(t LIKE 'o''k!!1!%_%' ESCAPE '!')");
    glob_free(&g);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory_loads),
        cmocka_unit_test(test_single_file_loads),
        cmocka_unit_test(test_conflicting_files),
        cmocka_unit_test(test_missing_and_empty),
        cmocka_unit_test(test_json_syntax_error),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_types_and_values),
        cmocka_unit_test(test_system_schemas),
        cmocka_unit_test(test_row_filters),
        cmocka_unit_test(test_template_strings),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_many_errors_reported),
        cmocka_unit_test(test_shadowed_rules_warn),
        cmocka_unit_test(test_impersonators),
        cmocka_unit_test(test_functions_settings),
        cmocka_unit_test(test_defaults_once),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_lint_warnings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
