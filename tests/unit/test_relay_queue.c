/*
 * Unit tests for proxy/relay_queue: what a CopyInResponse does to the
 * requests in flight, and that an empty queue stays empty whatever the
 * warehouse says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/relay_queue.h"

static int done_calls;
static void on_done(void *ctx, struct trail_req *req, bool interrupted)
{
    (void)ctx;
    (void)req;
    (void)interrupted;
    done_calls++;
}
static void on_unsure(void *ctx, char what, const char *name)
{
    (void)ctx;
    (void)what;
    (void)name;
}
static const rq_hooks hooks = {.done = on_done, .unsure = on_unsure};

/* A CopyInResponse with nothing in flight answers nothing: no request is
 * made up, so the queue's head stays "none" (the relay refuses the message). */
static void test_copy_started_on_empty(void **state)
{
    (void)state;
    relay_queue q = {.hooks = &hooks};
    assert_false(rq_copy_started(&q));
    assert_int_equal(rq_head(&q), 0);
    assert_int_equal(rq_len(&q), 0);
    rq_trim(&q);   /* an empty queue frees what it has */
    assert_int_equal(rq_head(&q), 0);
    rq_free(&q);
}

/* COPY FROM STDIN of a Query: the Sync queued behind it is dropped (the
 * warehouse ignores Syncs in COPY), and the client's COPY_END ends it. */
static void test_copy_started_drops_syncs(void **state)
{
    (void)state;
    relay_queue q = {.hooks = &hooks};
    assert_true(rq_push(&q, 'Q'));
    assert_true(rq_push(&q, 'S'));
    assert_true(rq_copy_started(&q));   /* no COPY_END yet: still copying */
    assert_int_equal(rq_len(&q), 1);
    assert_int_equal(rq_head(&q), 'Q');
    assert_true(rq_push(&q, COPY_END));
    assert_false(rq_copy_started(&q));   /* ended by the client's CopyDone */
    assert_int_equal(rq_len(&q), 1);
    rq_pop(&q);
    assert_int_equal(rq_head(&q), 0);
    rq_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_started_on_empty),
        cmocka_unit_test(test_copy_started_drops_syncs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
