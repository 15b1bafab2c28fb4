/*
 * test_replay_tally: proxy/replay_tally, the bookkeeping of `policy replay`:
 * which change a decision pair is, counts by record and by distinct
 * fingerprint (a dashboard's refreshes count once), grouping by dataset and
 * user with one example each, and the records not replayed by reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/replay_tally.h"

static void test_change_of(void **state)
{
    (void)state;
    assert_int_equal(replay_change_of("allow", "r1", "deny", NULL), REPLAY_NEWLY_DENIED);
    assert_int_equal(replay_change_of("rewrite", "r1", "deny", "r2"), REPLAY_NEWLY_DENIED);
    assert_int_equal(replay_change_of("deny", NULL, "allow", "r1"), REPLAY_NEWLY_ALLOWED);
    assert_int_equal(replay_change_of("deny", NULL, "rewrite", "r1"), REPLAY_NEWLY_ALLOWED);
    assert_int_equal(replay_change_of("allow", "r1", "rewrite", "r1"), REPLAY_REWRITE_CHANGED);
    assert_int_equal(replay_change_of("rewrite", "r1", "allow", "r1"), REPLAY_REWRITE_CHANGED);
    assert_int_equal(replay_change_of("rewrite", "r1", "rewrite", "r2"), REPLAY_REWRITE_CHANGED);
    /* no change: the same verdict (an allow by another rule, a deny for another reason) */
    assert_int_equal(replay_change_of("rewrite", "r1", "rewrite", "r1"), -1);
    assert_int_equal(replay_change_of("allow", "r1", "allow", "r2"), -1);
    assert_int_equal(replay_change_of("deny", "r1", "deny", NULL), -1);
}

static void add(replay_tally *t, const char *user, const char *ds, const char *fp, const char *old, const char *new)
{
    const char *sets[1] = {ds};
    replay_record r = {.user = user, .fingerprint = fp, .query = fp, .datasets = sets, .n_datasets = ds ? 1 : 0,
                       .old_decision = old, .old_rule = "r", .new_decision = new, .new_rule = NULL,
                       .reason = "because"};
    replay_tally_add(t, replay_change_of(old, "r", new, NULL), &r);
}

static void test_grouping(void **state)
{
    (void)state;
    replay_tally t;
    assert_int_equal(replay_tally_init(&t), 0);
    /* sam's dashboard refreshed 5 times, and one other statement; ana once on another dataset */
    for (int i = 0; i < 5; i++)
        add(&t, "sam", "funnel", "fp-dash", "rewrite", "deny");
    add(&t, "sam", "funnel", "fp-other", "allow", "deny");
    add(&t, "ana", "raw", "fp-raw", "allow", "deny");
    add(&t, "olga", "sales", "fp-sales", "deny", "allow");
    add(&t, "olga", NULL, "fp-same", "allow", "allow");   /* unchanged */
    replay_tally_not_replayed(&t, "no query text");
    replay_tally_not_replayed(&t, "no query text");
    t.records = 11;
    assert_int_equal(replay_tally_changed(&t), 8);
    json_t *j = replay_tally_json(&t, 10);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "replayed")), 9);
    assert_int_equal(json_integer_value(json_object_get(j, "distinct")), 5);
    json_t *changed = json_object_get(j, "changed");
    assert_int_equal(json_integer_value(json_object_get(changed, "records")), 8);
    assert_int_equal(json_integer_value(json_object_get(changed, "distinct")), 4);
    json_t *changes = json_object_get(j, "changes");
    assert_int_equal(json_array_size(changes), 2);
    json_t *denied = json_array_get(changes, 0);
    assert_string_equal(json_string_value(json_object_get(denied, "change")), "newly_denied");
    assert_int_equal(json_integer_value(json_object_get(denied, "records")), 7);
    assert_int_equal(json_integer_value(json_object_get(denied, "distinct")), 3);
    assert_int_equal(json_integer_value(json_object_get(denied, "users")), 2);
    /* datasets by records: funnel (6) before raw (1) */
    json_t *funnel = json_array_get(json_object_get(denied, "datasets"), 0);
    assert_string_equal(json_string_value(json_object_get(funnel, "dataset")), "funnel");
    assert_int_equal(json_integer_value(json_object_get(funnel, "records")), 6);
    assert_int_equal(json_integer_value(json_object_get(funnel, "distinct")), 2);
    json_t *most = json_object_get(funnel, "most_frequent");
    assert_string_equal(json_string_value(json_object_get(most, "fingerprint")), "fp-dash");
    assert_int_equal(json_integer_value(json_object_get(most, "records")), 5);
    json_t *sam = json_array_get(json_object_get(funnel, "users"), 0);
    assert_string_equal(json_string_value(json_object_get(sam, "user")), "sam");
    assert_int_equal(json_integer_value(json_object_get(sam, "distinct")), 2);
    json_t *ex = json_object_get(sam, "example");
    assert_string_equal(json_string_value(json_object_get(ex, "old")), "rewrite");
    assert_string_equal(json_string_value(json_object_get(ex, "new")), "deny");
    assert_string_equal(json_string_value(json_object_get(ex, "reason")), "because");
    json_t *allowed = json_array_get(changes, 1);
    assert_string_equal(json_string_value(json_object_get(allowed, "change")), "newly_allowed");
    json_t *nr = json_object_get(j, "not_replayed");
    assert_int_equal(json_integer_value(json_object_get(nr, "records")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(nr, "reasons"), "no query text")), 2);
    json_decref(j);
    /* --top 1: one dataset per change */
    j = replay_tally_json(&t, 1);
    assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(j, "changes"), 0), "datasets")), 1);
    json_decref(j);
    /* the text report says the same */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    replay_tally_print(&t, 10, f);
    fclose(f);
    assert_non_null(strstr(buf, "dataset funnel: this change breaks 6 statement records (2 distinct) of 1 user; "
                                "the most frequent (5 records) is: fp-dash"));
    assert_non_null(strstr(buf, "2 records could not be replayed: 2 no query text"));
    free(buf);
    replay_tally_free(&t);
}

static void test_several_datasets(void **state)
{
    (void)state;
    replay_tally t;
    assert_int_equal(replay_tally_init(&t), 0);
    const char *sets[3] = {"raw", "staging", "raw"};
    replay_record r = {.user = "ana", .fingerprint = "fp", .query = "q", .datasets = sets, .n_datasets = 3,
                       .old_decision = "allow", .new_decision = "deny", .reason = "x"};
    replay_tally_add(&t, REPLAY_NEWLY_DENIED, &r);
    json_t *j = replay_tally_json(&t, 0);
    json_t *denied = json_array_get(json_object_get(j, "changes"), 0);
    /* the record counts once in the totals, once under each dataset (a repeated one once) */
    assert_int_equal(json_integer_value(json_object_get(denied, "records")), 1);
    assert_int_equal(json_array_size(json_object_get(denied, "datasets")), 2);
    json_decref(j);
    replay_tally_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_of),
        cmocka_unit_test(test_grouping),
        cmocka_unit_test(test_several_datasets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
