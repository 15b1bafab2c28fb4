/*
 * test_decide_access: effective access for the review tools. The space holds
 * what the policies name (globs as subjects, samples that match only their
 * own pattern's shape); cells are first-match decisions (a shadowed rule
 * gives nothing, moving it up does); comparing cells classes every change as
 * widening or narrowing the way `policy diff` reports it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/decide.h"
#include "policy/decide_access.h"
#include "policy/policy.h"

static policy_t *load(const char *text)
{
    char err[2048];
    policy_t *p = NULL;
    int rc = policy_load_text("t.json", text, strlen(text), &p, NULL, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
    return p;
}

static const access_subject *subject(const access_space *sp, access_subject_kind kind, const char *name)
{
    for (size_t i = 0; i < sp->n_subjects; i++)
        if (sp->subjects[i].kind == kind && strcmp(sp->subjects[i].name, name) == 0)
            return &sp->subjects[i];
    fail_msg("no subject %s", name);
    return NULL;
}

static const access_object *object(const access_space *sp, const char *schema, const char *table)
{
    for (size_t i = 0; i < sp->n_objects; i++)
        if (strcmp(sp->objects[i].schema, schema) == 0 && strcmp(sp->objects[i].table, table) == 0)
            return &sp->objects[i];
    fail_msg("no object %s.%s", schema, table);
    return NULL;
}

static const char *code(const policy_t *p, const access_space *sp, access_subject_kind k, const char *s,
                        const char *schema, const char *table, char *buf)
{
    access_cell c;
    assert_int_equal(access_cell_get(p, subject(sp, k, s), object(sp, schema, table), &c), 0);
    return access_cell_code(&c, buf, 16);
}

static const char base[] =
    "{\"datasets\": {\"raw\": {\"schemas\": [\"raw\", \"raw_*\"]}, \"mart\": {\"schemas\": [\"mart\"]}},"
    " \"groups\": {\"eng\": {\"members\": [\"ana\", \"svc-*\"]}},"
    " \"rules\": ["
    "  {\"id\": \"no-secret\", \"subjects\": {\"groups\": [\"squad-*\"]}, \"objects\": {\"tables\": [\"mart.secret\"]},"
    "   \"access\": \"deny\"},"
    "  {\"id\": \"squads\", \"subjects\": {\"groups\": [\"squad-*\"]}, \"objects\": {\"datasets\": [\"mart\"]},"
    "   \"access\": \"read\", \"row_filter\": \"squad = ${claims.squad}\"},"
    "  {\"id\": \"eng\", \"subjects\": {\"groups\": [\"eng\"]}, \"objects\": {\"datasets\": [\"raw\", \"mart\"]},"
    "   \"access\": \"write\"},"
    "  {\"id\": \"all-mart\", \"subjects\": {\"users\": [\"*\"]}, \"objects\": {\"tables\": [\"mart.public_*\"]},"
    "   \"access\": \"read\", \"columns\": {\"email\": \"hash\"}}],"
    " \"roles\": {\"bi_squad\": {\"groups\": [\"squad-a\"]}}}";

static void space_names_what_the_policy_names(void **state)
{
    (void)state;
    policy_t *p = load(base);
    const policy_t *one[] = {p};
    access_space sp;
    assert_int_equal(access_space_build(one, 1, &sp), 0);
    subject(&sp, ACCESS_SUBJECT_EVERYONE, "everyone");
    subject(&sp, ACCESS_SUBJECT_GROUP, "squad-*");
    subject(&sp, ACCESS_SUBJECT_GROUP, "squad-a");      /* the role's group */
    subject(&sp, ACCESS_SUBJECT_GROUP, "eng");
    subject(&sp, ACCESS_SUBJECT_USER, "ana");
    subject(&sp, ACCESS_SUBJECT_USER, "svc-*");
    subject(&sp, ACCESS_SUBJECT_ROLE, "bi_squad");
    for (size_t i = 0; i < sp.n_subjects; i++)
        assert_string_not_equal(sp.subjects[i].name, "*");   /* users "*" is everyone */
    object(&sp, "raw", "*");
    object(&sp, "raw_*", "*");
    object(&sp, "mart", "*");
    object(&sp, "mart", "secret");
    object(&sp, "mart", "public_*");
    /* subjects sorted by kind then name, the whole schema before its tables */
    assert_int_equal(sp.subjects[0].kind, ACCESS_SUBJECT_EVERYONE);
    const access_object *whole = object(&sp, "mart", "*"), *secret = object(&sp, "mart", "secret");
    assert_true(whole < secret);
    assert_string_equal(access_object_dataset(p, object(&sp, "raw_*", "*")), "raw");
    access_space_free(&sp);
    policy_unref(p);
}

static void cells_are_first_match(void **state)
{
    (void)state;
    policy_t *p = load(base);
    const policy_t *one[] = {p};
    access_space sp;
    char b[16];
    assert_int_equal(access_space_build(one, 1, &sp), 0);
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_GROUP, "squad-*", "mart", "*", b), "R+f");
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_GROUP, "squad-*", "mart", "secret", b), "-");
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_GROUP, "squad-a", "mart", "*", b), "R+f");
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_GROUP, "squad-*", "raw", "*", b), "-");
    /* a table the squads' dataset rule covers comes first for them */
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_GROUP, "squad-*", "mart", "public_*", b), "R+f");
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_EVERYONE, "everyone", "mart", "public_*", b), "R+m");
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_EVERYONE, "everyone", "mart", "*", b), "-");
    /* members get the group's rules; a member glob's sample is a member */
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_USER, "ana", "raw_*", "*", b), "W");
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_USER, "svc-*", "raw", "*", b), "W");
    assert_string_equal(code(p, &sp, ACCESS_SUBJECT_ROLE, "bi_squad", "mart", "*", b), "R+f");
    access_cell c;
    assert_int_equal(access_cell_get(p, subject(&sp, ACCESS_SUBJECT_GROUP, "squad-*"), object(&sp, "mart", "*"), &c),
                     0);
    assert_string_equal(c.read_rule, "squads");
    assert_string_equal(c.row_filter, "squad = ${claims.squad}");
    char *t = access_cell_text(&c);
    assert_string_equal(t, "read, row filter squad = ${claims.squad}");
    free(t);
    access_space_free(&sp);
    policy_unref(p);
}

static policy_t *kept[16];
static size_t n_kept;

static access_cell cell_of(const char *text, const char *group)
{
    policy_t *p = load(text);
    assert_true(n_kept < 16);
    kept[n_kept++] = p;
    const policy_t *one[] = {p};
    access_space sp;
    assert_int_equal(access_space_build(one, 1, &sp), 0);
    access_cell c;
    assert_int_equal(access_cell_get(p, subject(&sp, ACCESS_SUBJECT_GROUP, group), object(&sp, "m", "*"), &c), 0);
    access_space_free(&sp);
    return c;   /* it borrows from p, kept until the test ends */
}

#define RULE(extra) \
    "{\"datasets\": {\"m\": {\"schemas\": [\"m\"]}}, \"rules\": [{\"id\": \"r\", \"subjects\": {\"groups\": [\"g\"]}," \
    " \"objects\": {\"datasets\": [\"m\"]}, \"access\": " extra "}]}"

static void compare_classes_changes(void **state)
{
    (void)state;
    access_cell none = cell_of("{\"rules\": [{\"id\": \"x\", \"subjects\": {\"groups\": [\"g\"]},"
                               " \"objects\": {\"schemas\": [\"m\"]}, \"access\": \"deny\"}]}", "g");
    access_cell read = cell_of(RULE("\"read\""), "g");
    access_cell write = cell_of(RULE("\"write\""), "g");
    access_cell filt = cell_of(RULE("\"read\", \"row_filter\": \"a = 1\""), "g");
    access_cell filt2 = cell_of(RULE("\"read\", \"row_filter\": \"a = 2\""), "g");
    access_cell mask = cell_of(RULE("\"read\", \"columns\": {\"email\": \"hash\"}"), "g");
    access_cell mask2 = cell_of(RULE("\"read\", \"columns\": {\"email\": \"hash\", \"phone\": \"last4\"}"), "g");
    access_cell maskr = cell_of(RULE("\"read\", \"columns\": {\"email\": \"redact\"}"), "g");
    assert_int_equal(access_cell_compare(&none, &read), 1);
    assert_int_equal(access_cell_compare(&read, &none), -1);
    assert_int_equal(access_cell_compare(&read, &write), 1);
    assert_int_equal(access_cell_compare(&write, &read), -1);
    assert_int_equal(access_cell_compare(&read, &filt), -1);
    assert_int_equal(access_cell_compare(&filt, &read), 1);
    assert_int_equal(access_cell_compare(&filt, &filt2), 1);     /* changed: cannot be shown to narrow */
    assert_int_equal(access_cell_compare(&read, &mask), -1);
    assert_int_equal(access_cell_compare(&mask, &mask2), -1);
    assert_int_equal(access_cell_compare(&mask2, &mask), 1);
    assert_int_equal(access_cell_compare(&mask, &maskr), 1);
    assert_int_equal(access_cell_compare(&read, &read), 0);
    assert_true(access_cell_equal(&read, &read));
    assert_false(access_cell_equal(&mask, &maskr));
    assert_false(access_cell_equal(&filt, &filt2));
    char b[16];
    assert_string_equal(access_cell_code(&mask2, b, sizeof b), "R+m");
    assert_string_equal(access_cell_code(&none, b, sizeof b), "-");
    assert_string_equal(access_cell_code(&write, b, sizeof b), "W");
    while (n_kept)
        policy_unref(kept[--n_kept]);
}

static void defaults_and_facts(void **state)
{
    (void)state;
    policy_t *p = load("{\"datasets\": {\"m\": {\"schemas\": [\"m\"]}},"
                       " \"defaults\": {\"search_path\": [{\"subjects\": {\"groups\": [\"g\"]}, \"schemas\": [\"m\"]}],"
                       "  \"full_catalog_visibility\": {\"groups\": [\"g\"]}},"
                       " \"functions\": {\"deny\": [\"public.http_*\"]}, \"settings\": {\"deny\": [\"work_mem\"]},"
                       " \"rules\": [{\"id\": \"r\", \"subjects\": {\"groups\": [\"g\"]},"
                       "  \"objects\": {\"datasets\": [\"m\"]}, \"access\": \"read\"}],"
                       " \"roles\": {\"bi_g\": {\"groups\": [\"g\"]}},"
                       " \"impersonators\": [{\"subjects\": {\"users\": [\"bi\"]}, \"roles\": [\"bi_*\"]}]}");
    const policy_t *one[] = {p};
    access_space sp;
    assert_int_equal(access_space_build(one, 1, &sp), 0);
    access_defaults d;
    assert_int_equal(access_defaults_get(p, &sp, subject(&sp, ACCESS_SUBJECT_GROUP, "g"), &d), 0);
    assert_string_equal(d.search_path, "m");
    assert_true(d.full_catalog);
    assert_string_equal(d.impersonates, "");
    access_defaults_free(&d);
    assert_int_equal(access_defaults_get(p, &sp, subject(&sp, ACCESS_SUBJECT_USER, "bi"), &d), 0);
    assert_string_equal(d.impersonates, "bi_g");
    assert_false(d.full_catalog);
    access_defaults_free(&d);
    access_fact *f;
    size_t n;
    assert_int_equal(access_facts_get(p, &f, &n), 0);
    bool fn = false, st = false, role = false;
    for (size_t i = 0; i < n; i++) {
        fn |= strcmp(f[i].text, "functions.deny public.http_*") == 0 && f[i].effect == -1;
        st |= strcmp(f[i].text, "settings.deny work_mem") == 0 && f[i].effect == -1;
        role |= strcmp(f[i].text, "role bi_g: groups g") == 0;
    }
    assert_true(fn && st && role);
    access_facts_free(f, n);
    access_space_free(&sp);
    policy_unref(p);
}

/* The standby test: a session goes to a read-only standby only when neither
 * its principal nor any role it may impersonate has a write rule. */
static void may_write(void **state)
{
    (void)state;
    policy_t *p = load("{\"datasets\": {\"m\": {\"schemas\": [\"m\"]}},"
                       " \"groups\": {\"eng\": {\"members\": [\"bob\"]}},"
                       " \"rules\": [{\"id\": \"w\", \"subjects\": {\"groups\": [\"eng\"]},"
                       "  \"objects\": {\"datasets\": [\"m\"]}, \"access\": \"write\"},"
                       " {\"id\": \"r\", \"subjects\": {\"groups\": [\"bi\", \"sci\"]},"
                       "  \"objects\": {\"datasets\": [\"m\"]}, \"access\": \"read\"}],"
                       " \"roles\": {\"bi_eng\": {\"groups\": [\"eng\"]}, \"bi_sci\": {\"groups\": [\"sci\"]}},"
                       " \"impersonators\": [{\"subjects\": {\"users\": [\"bi-w\"]}, \"roles\": [\"bi_*\"]},"
                       "  {\"subjects\": {\"users\": [\"bi-r\"]}, \"roles\": [\"bi_sci\"]}]}");
    const char *eng[] = {"eng"}, *sci[] = {"sci"}, *bi[] = {"bi"};
    decide_principal writer = {"erin", eng, 1, NULL}, reader = {"ana", sci, 1, NULL}, member = {"bob", NULL, 0, NULL},
                     imp_w = {"bi-w", bi, 1, NULL}, imp_r = {"bi-r", bi, 1, NULL}, nobody = {"x", NULL, 0, NULL};
    assert_true(decide_may_write(p, &writer));
    assert_true(decide_may_write(p, &member));      /* eng by the policy's groups */
    assert_false(decide_may_write(p, &reader));
    assert_true(decide_may_write(p, &imp_w));       /* may become bi_eng */
    assert_false(decide_may_write(p, &imp_r));      /* only bi_sci */
    assert_false(decide_may_write(p, &nobody));
    policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(space_names_what_the_policy_names),
        cmocka_unit_test(cells_are_first_match),
        cmocka_unit_test(compare_classes_changes),
        cmocka_unit_test(defaults_and_facts),
        cmocka_unit_test(may_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
