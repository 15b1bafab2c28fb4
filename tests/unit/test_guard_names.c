/*
 * test_guard_names: the guard's table of prepared statements, cursors and
 * portals by name (proxy/guard_names.c): 100 000 random adds and drops of
 * names that collide in the index checked against a plain list after every
 * step, whole-table drops, names that share their first bytes, a
 * session's worth of names (a client may bind thousands), and a table that
 * exists only while it holds a name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/guard.h"

#define NAMES 300

static void check_table(const guard_names *t, const bool *present, char names[][16])
{
    size_t n = 0;
    for (int i = 0; i < NAMES; i++) {
        guard_named *e = guard_names_find(t, names[i]);
        if (present[i]) {
            assert_non_null(e);
            assert_string_equal(e->name, names[i]);
            n++;
        } else {
            assert_null(e);
        }
    }
    assert_int_equal(t ? t->n : 0, n);
    assert_true(!t == !n);   /* a table holds a name, or is none */
}

static void test_random_adds_and_drops(void **state)
{
    (void)state;
    static char names[NAMES][16];
    bool present[NAMES] = {false};
    for (int i = 0; i < NAMES; i++)
        snprintf(names[i], sizeof names[i], "S_%d", i);
    guard_names *t = NULL;
    unsigned seed = 12345;
    for (int step = 0; step < 100000; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % NAMES);
        if ((seed >> 4) & 1) {
            guard_named *e = guard_names_add(&t, NULL, names[i]);
            assert_non_null(e);
            present[i] = true;
        } else {
            guard_names_drop(&t, names[i]);
            present[i] = false;
        }
        if (step % 997 == 0 || step > 99000)
            check_table(t, present, names);
    }
    check_table(t, present, names);
    /* adding again finds the entry that is there */
    guard_named *e = guard_names_add(&t, NULL, names[7]);
    assert_ptr_equal(e, guard_names_find(t, names[7]));
    guard_names_drop(&t, NULL);
    memset(present, 0, sizeof present);
    check_table(t, present, names);
    guard_names_drop(&t, "never there");
    guard_names_free(&t);
}

static void test_many_long_names(void **state)
{
    (void)state;
    guard_names *t = NULL;
    char name[300];
    /* names alike but for their last bytes, as a client binding p...p1, p...p2 */
    memset(name, 'p', 200);
    for (int i = 0; i < 20000; i++) {
        snprintf(name + 200, sizeof name - 200, "%d", i);
        assert_non_null(guard_names_add(&t, NULL, name));
    }
    assert_int_equal(t->n, 20000);
    for (int i = 0; i < 20000; i += 2) {
        snprintf(name + 200, sizeof name - 200, "%d", i);
        guard_names_drop(&t, name);
    }
    assert_int_equal(t->n, 10000);
    for (int i = 0; i < 20000; i++) {
        snprintf(name + 200, sizeof name - 200, "%d", i);
        guard_named *e = guard_names_find(t, name);
        if (i % 2)
            assert_non_null(e);
        else
            assert_null(e);
    }
    assert_null(guard_names_find(t, ""));
    assert_non_null(guard_names_add(&t, NULL, ""));   /* the unnamed statement or portal */
    assert_non_null(guard_names_find(t, ""));
    guard_names_free(&t);
    assert_null(t);
    assert_null(guard_names_find(t, ""));
}

#include "fake_tmpl.h"

/* A session that names nothing holds no table: the first add allocates
 * it, the drop of the last name frees it. */
static void test_allocated_while_not_empty(void **state)
{
    (void)state;
    guard_names *t = NULL;
    /* NULL is the empty table */
    assert_null(guard_names_find(t, "a"));
    assert_null(guard_names_find(t, ""));
    guard_names_drop(&t, "a");
    guard_names_drop(&t, NULL);
    guard_names_free(&t);
    assert_null(t);
    /* the first add allocates it, with the operations given */
    guard_named *a = guard_names_add(&t, &fake_ops, "a");
    assert_non_null(a);
    assert_non_null(t);
    assert_ptr_equal(t->tmpl_ops, &fake_ops);
    assert_ptr_equal(guard_names_find(t, "a"), a);
    assert_non_null(guard_names_add(&t, NULL, "b"));
    assert_ptr_equal(t->tmpl_ops, &fake_ops);   /* set once, at allocation */
    /* a drop that leaves a name keeps it; one of no name there changes nothing */
    guard_names_drop(&t, "a");
    assert_non_null(t);
    assert_null(guard_names_find(t, "a"));
    guard_names_drop(&t, "never there");
    assert_non_null(t);
    assert_int_equal(t->n, 1);
    /* the last drop frees it, releasing what its entry held */
    live_refs = 0;
    guard_names_find(t, "b")->tmpl = fake_ref((struct trail_tmpl *)&tmpl_storage);
    guard_names_find(t, "b")->text = strdup("SELECT 1");
    guard_names_find(t, "b")->text_len = strlen("SELECT 1");
    t->text_bytes += strlen("SELECT 1");
    guard_names_drop(&t, "b");
    assert_null(t);
    assert_int_equal(live_refs, 0);
    assert_null(guard_names_find(t, "b"));
    /* and so does dropping every name */
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        assert_non_null(guard_names_add(&t, NULL, name));
    }
    assert_int_equal(t->n, 50);
    guard_names_drop(&t, NULL);
    assert_null(t);
    /* allocated again by the next add */
    assert_non_null(guard_names_add(&t, NULL, ""));
    assert_non_null(t);
    guard_names_free(&t);
    assert_null(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_adds_and_drops),
        cmocka_unit_test(test_many_long_names),
        cmocka_unit_test(test_allocated_while_not_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
