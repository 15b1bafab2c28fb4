/*
 * test_guard: the guard on its own (proxy/guard.c, linked with nothing of
 * proxy/ above it): what it leaves for the relay to carry out instead of
 * calling it (the names a statement touches, the search_path round trip,
 * the lost flag), the unsure names a failed request leaves, epochs across a
 * policy change and an impersonation, the audit templates it holds
 * only through the operations it is given, and its tables of names, held
 * only while they hold a name.
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
#include "proxy/guard.h"

#include "fake_tmpl.h"   /* live_refs, fake_ops, tmpl_storage */

static void test_prefix(const session_guard *g, char *buf, size_t len)
{
    (void)g;
    snprintf(buf, len, "test");
}

/* Each test's guard: logged in, search_path "public". */
static void guard_ready(session_guard *g)
{
    guard_init(g, test_prefix, &fake_ops);
    g->ready = true;
    static const char *const start[] = {"public"};
    assert_int_equal(schema_list_set(&g->startup_path, start, 1), 0);
    assert_int_equal(schema_list_copy(&g->committed_path, &g->startup_path), 0);
    assert_int_equal(schema_list_copy(&g->effective_path, &g->startup_path), 0);
}

static int setup(void **state)
{
    session_guard *g = malloc(sizeof *g);
    if (!g)
        return -1;
    guard_ready(g);
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    guard_free(*state);
    free(*state);
    return 0;
}

/* The guard is told an allowed Query of sql. */
static void allowed(session_guard *g, const char *sql)
{
    analyze_context ctx = {.database = "db",
                           .search_path = (const char *const *)g->effective_path.v,
                           .n_search_path = g->effective_path.n};
    analysis *a = NULL;
    analyze_error err;
    assert_int_equal(analyze_sql(sql, &ctx, &a, &err), 0);
    guard_statement_allowed(g, NULL, a, 'Q', NULL, sql, NULL);
    analysis_free(a);
}

/* The guard is told an allowed Parse of statement `name`. */
static void parsed(session_guard *g, const char *name, const char *sql)
{
    analyze_context ctx = {.database = "db"};
    analysis *a = NULL;
    analyze_error err;
    assert_int_equal(analyze_sql(sql, &ctx, &a, &err), 0);
    guard_parse parse = {0};
    guard_statement_allowed(g, NULL, a, 'P', name, sql, &parse);
    analysis_free(a);
}

static bool has(const schema_list *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return true;
    return false;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_touched_names_for_the_relay(void **state)
{
    session_guard *g = *state;
    /* DEALLOCATE q: a name the guard never saw prepared, which the warehouse
     * has not either: whatever becomes of it changes nothing */
    allowed(g, "PREPARE p AS SELECT 1; DECLARE c CURSOR WITH HOLD FOR SELECT 1; DEALLOCATE q");
    static const char want[] = "Sp\0Kc";
    assert_int_equal(g->touched_len, sizeof want);
    assert_memory_equal(g->touched, want, sizeof want);
    assert_true(guard_has_statement(g, "p"));
    assert_non_null(guard_cursor(g, "c"));
    assert_null(g->lost);
    g->touched_len = 0;   /* the relay took them */
    /* the Query failed before its PREPARE ran: the warehouse may not hold p */
    guard_outcome_failed(g, 'S', "p");
    assert_true(guard_parse_needs_close(g, "p"));
    /* a name the guard had dropped comes back, with no text (unsure) */
    guard_outcome_failed(g, 'S', "q");
    guard_named *q = guard_statement(g, "q");
    assert_non_null(q);
    assert_true(q->unsure);
    assert_null(q->text);
    /* a statement that touches no name leaves nothing */
    allowed(g, "SELECT 1");
    assert_int_equal(g->touched_len, 0);
}

/* A name prepared or declared again keeps what it replaced until the
 * warehouse says the new one took: the warehouse may still hold the old. */
static void test_replaced_names_keep_what_they_replaced(void **state)
{
    session_guard *g = *state;
    allowed(g, "PREPARE p AS SELECT 1");
    g->touched_len = 0;
    guard_named *p = guard_statement(g, "p");
    assert_false(p->replaced);
    assert_null(guard_stale(g, NULL, false, "p"));
    allowed(g, "PREPARE p AS SELECT 2");
    g->touched_len = 0;
    p = guard_statement(g, "p");
    assert_true(p->replaced && p->unsure);
    assert_int_equal(p->n_alts, 1);
    assert_string_equal(p->alts, "PREPARE p AS SELECT 1");
    assert_non_null(guard_stale(g, NULL, false, "p"));   /* decided again, with its alternates */
    /* the second PREPARE failed (p exists): nothing learnt, the old one stays possible */
    guard_outcome_failed(g, 'S', "p");
    assert_int_equal(p->n_alts, 1);
    /* a third one that took: the warehouse holds exactly it */
    allowed(g, "DEALLOCATE p; PREPARE p AS SELECT 3");
    g->touched_len = 0;
    p = guard_statement(g, "p");
    assert_false(p->replaced);   /* DEALLOCATE dropped it: nothing to replace */
    allowed(g, "PREPARE p AS SELECT 4");
    g->touched_len = 0;
    p = guard_statement(g, "p");
    assert_true(p->replaced);
    guard_outcome_ok(g, 'S', "p");
    assert_false(p->replaced || p->unsure);
    assert_int_equal(p->n_alts, 0);
    assert_null(p->alts);
    assert_null(guard_stale(g, NULL, false, "p"));
    /* a cursor declared over one the guard cannot say anything of (a CLOSE
     * of it failed): its alternates are lost, so it is refused until it takes */
    allowed(g, "DECLARE c CURSOR WITH HOLD FOR SELECT 1");
    g->touched_len = 0;
    allowed(g, "CLOSE c");
    g->touched_len = 0;
    guard_outcome_failed(g, 'K', "c");
    allowed(g, "DECLARE c CURSOR WITH HOLD FOR SELECT 2");
    g->touched_len = 0;
    guard_named *c = guard_cursor(g, "c");
    assert_true(c->replaced && c->alts_lost);
    guard_outcome_ok(g, 'K', "c");
    assert_false(c->replaced || c->alts_lost || c->unsure);
    /* at most GUARD_MAX_ALTS earlier texts */
    for (int i = 0; i < GUARD_MAX_ALTS + 2; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "DECLARE c CURSOR WITH HOLD FOR SELECT %d", 10 + i);
        allowed(g, sql);
        g->touched_len = 0;
    }
    c = guard_cursor(g, "c");
    assert_int_equal(c->n_alts, GUARD_MAX_ALTS);
    assert_true(c->alts_lost);
}

static void test_search_path_round_trip(void **state)
{
    session_guard *g = *state;
    assert_false(guard_wants_search_path(g));
    allowed(g, "SET search_path = sales, finance");
    /* until the warehouse says, the path is every value it may now be */
    assert_true(guard_wants_search_path(g));
    assert_true(has(&g->effective_path, "public") && has(&g->effective_path, "sales") &&
                has(&g->effective_path, "finance"));
    guard_search_path_asked(g);
    assert_false(guard_wants_search_path(g));
    guard_search_path_answer(g, "sales, \"Fin\"\"ance\"", 'I');
    assert_int_equal(g->effective_path.n, 2);
    assert_string_equal(g->effective_path.v[0], "sales");
    assert_string_equal(g->effective_path.v[1], "Fin\"ance");
    assert_int_equal(g->committed_path.n, 2);   /* outside a transaction: committed */

    /* an answer to a question asked before a later change is not taken */
    allowed(g, "SET search_path = a");
    guard_search_path_asked(g);
    allowed(g, "SET search_path = b");
    guard_search_path_answer(g, "a", 'I');
    assert_true(has(&g->effective_path, "b"));
    assert_true(guard_wants_search_path(g));
    /* no answer, or one that does not parse: the wider value stays */
    guard_search_path_asked(g);
    size_t wide = g->effective_path.n;
    guard_search_path_answer(g, NULL, 'I');
    assert_int_equal(g->effective_path.n, wide);
    guard_search_path_answer(g, "\"unterminated", 'I');
    assert_int_equal(g->effective_path.n, wide);
}

static void test_transaction_end_widens_and_asks(void **state)
{
    session_guard *g = *state;
    allowed(g, "BEGIN");
    allowed(g, "SET search_path = inner_tx");
    guard_search_path_asked(g);
    guard_search_path_answer(g, "inner_tx", 'T');   /* inside the transaction: not committed */
    assert_int_equal(g->committed_path.n, 1);
    assert_string_equal(g->committed_path.v[0], "public");
    /* a ROLLBACK may undo it: the path widens to both and is asked again */
    guard_on_ready_for_query(g, 'T', 'I');
    assert_true(has(&g->effective_path, "inner_tx") && has(&g->effective_path, "public"));
    assert_true(guard_wants_search_path(g));
}

static void test_incomplete_effect_is_lost(void **state)
{
    session_guard *g = *state;
    parsed(g, "s1", "SET search_path = x");
    assert_false(guard_wants_search_path(g));   /* a Parse runs nothing */
    /* as if memory had run out recording what it sets */
    guard_statement(g, "s1")->effect.incomplete = true;
    guard_on_bind(g, NULL, "", "s1");
    assert_null(g->lost);
    guard_on_execute(g, "");
    assert_non_null(g->lost);   /* the relay ends the session: it fails closed */
    assert_false(guard_wants_search_path(g));
}

static void test_epochs(void **state)
{
    session_guard *g = *state;
    const policy_t *pol = NULL;   /* serial 0 */
    parsed(g, "s", "SELECT 1");
    assert_null(guard_stale(g, pol, false, "s"));
    guard_on_bind(g, pol, "p", "s");
    assert_true(guard_portal_current(g, pol, guard_portal(g, "p")));
    /* an impersonation change: decided again, and the portal may not run */
    guard_principal_changed(g);
    guard_named *e = guard_stale(g, pol, false, "s");
    assert_non_null(e);
    assert_false(guard_portal_current(g, pol, guard_portal(g, "p")));
    guard_refresh(g, pol, e);
    assert_null(guard_stale(g, pol, false, "s"));
    /* a search_path change makes it stale too (the server parses it again) */
    allowed(g, "SET search_path = other");
    assert_non_null(guard_stale(g, pol, false, "s"));
}

static void test_templates_by_reference(void **state)
{
    session_guard *g = *state;
    live_refs = 0;
    parsed(g, "s", "SELECT 1");
    /* the audit trail puts a template on the statement (one reference) */
    guard_statement(g, "s")->tmpl = fake_ref((struct trail_tmpl *)&tmpl_storage);
    guard_on_bind(g, NULL, "p1", "s");
    guard_on_bind(g, NULL, "", "s");
    assert_int_equal(live_refs, 3);
    assert_ptr_equal(guard_portal(g, "p1")->tmpl, &tmpl_storage);
    guard_on_bind(g, NULL, "", "s");   /* the unnamed portal bound again */
    assert_int_equal(live_refs, 3);
    guard_on_close(g, 'P', "p1");
    assert_int_equal(live_refs, 2);
    guard_on_ready_for_query(g, 'I', 'I');   /* no portal outlives its transaction */
    assert_int_equal(live_refs, 1);
    guard_free(g);
    assert_int_equal(live_refs, 0);
}

/* A session with no prepared statement, cursor or portal holds no table:
 * each is allocated with its first name and freed with its last. */
static void test_tables_only_while_named(void **state)
{
    session_guard *g = *state;
    assert_null(g->statements);
    assert_null(g->cursors);
    assert_null(g->portals);
    assert_false(guard_full(g, GUARD_MAX_KEPT, 0));
    assert_true(guard_full(g, GUARD_MAX_KEPT + 1, 0));
    assert_null(guard_statement(g, "p"));
    guard_on_close(g, 'S', "p");
    guard_on_ready_for_query(g, 'I', 'I');
    assert_null(g->statements);
    allowed(g, "PREPARE p AS SELECT 1; DECLARE c CURSOR WITH HOLD FOR SELECT 1");
    g->touched_len = 0;
    assert_non_null(g->statements);
    assert_non_null(g->cursors);
    assert_ptr_equal(g->statements->tmpl_ops, &fake_ops);
    assert_true(guard_full(g, GUARD_MAX_KEPT - 1, 0));   /* p and c count */
    guard_on_bind(g, NULL, "", "p");
    assert_non_null(g->portals);
    guard_on_ready_for_query(g, 'I', 'I');   /* no portal outlives its transaction */
    assert_null(g->portals);
    allowed(g, "DEALLOCATE p; CLOSE c");
    g->touched_len = 0;
    assert_null(g->statements);
    assert_null(g->cursors);
    assert_false(guard_full(g, GUARD_MAX_KEPT, GUARD_MAX_KEPT_BYTES));
    /* a CLOSE that failed: the cursor comes back (no text), until a Close
     * of it as a portal */
    guard_outcome_failed(g, 'K', "c");
    assert_non_null(g->cursors);
    guard_on_close(g, 'P', "c");
    assert_null(g->cursors);
    /* the unnamed statement and portal go with the next Query message */
    parsed(g, "", "SELECT 1");
    guard_on_bind(g, NULL, "", "");
    assert_non_null(g->statements);
    assert_non_null(g->portals);
    guard_on_query_message(g);
    assert_null(g->statements);
    assert_null(g->portals);
    /* DISCARD ALL drops every table */
    parsed(g, "s", "SELECT 1");
    guard_on_bind(g, NULL, "p", "s");
    allowed(g, "DECLARE d CURSOR WITH HOLD FOR SELECT 1");
    g->touched_len = 0;
    allowed(g, "DISCARD ALL");
    g->touched_len = 0;
    assert_null(g->statements);
    assert_null(g->cursors);
    assert_null(g->portals);
    assert_null(g->lost);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_touched_names_for_the_relay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaced_names_keep_what_they_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_path_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transaction_end_widens_and_asks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incomplete_effect_is_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_templates_by_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tables_only_while_named, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
