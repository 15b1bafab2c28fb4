/*
 * Unit tests for proxy/pgwire: startup packets (valid, malformed, limits),
 * message builders checked byte by byte, error field look-up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/pgwire.h"

static size_t build_startup(char *buf, size_t cap, const char *const *kv, size_t n)
{
    size_t off = 0;
    pgw_put_u32(buf, PG_PROTOCOL_3_0);
    off = 4;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(kv[i]) + 1;
        assert_true(off + l < cap);
        memcpy(buf + off, kv[i], l);
        off += l;
    }
    buf[off++] = 0;
    return off;
}

static void test_startup_valid(void **state)
{
    (void)state;
    const char *kv[] = {"user", "alice", "database", "app", "application_name", "psql"};
    char buf[256], err[128];
    size_t n = build_startup(buf, sizeof buf, kv, 6);
    pg_startup st;
    assert_int_equal(pgw_parse_startup(buf, n, &st, err, sizeof err), 0);
    assert_int_equal(st.code, PG_PROTOCOL_3_0);
    assert_int_equal(st.nparams, 3);
    assert_string_equal(pgw_startup_get(&st, "user"), "alice");
    assert_string_equal(pgw_startup_get(&st, "database"), "app");
    assert_string_equal(pgw_startup_get(&st, "application_name"), "psql");
    assert_null(pgw_startup_get(&st, "options"));
}

static void test_startup_missing_terminator(void **state)
{
    (void)state;
    const char *kv[] = {"user", "alice"};
    char buf[64], err[128];
    size_t n = build_startup(buf, sizeof buf, kv, 2);
    pg_startup st;
    /* drop the final NUL: the packet no longer ends the list */
    assert_int_equal(pgw_parse_startup(buf, n - 1, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "terminator"));
    /* a name without a value */
    memcpy(buf + 4, "user\0", 5);
    assert_int_equal(pgw_parse_startup(buf, 9, &st, err, sizeof err), -1);
}

static void test_startup_too_many_params(void **state)
{
    (void)state;
    char buf[4096], err[128];
    size_t off = 4;
    pgw_put_u32(buf, PG_PROTOCOL_3_0);
    for (int i = 0; i < PG_MAX_STARTUP_PARAMS + 1; i++)
        off += (size_t)sprintf(buf + off, "p%d", i) + 1, buf[off++] = 'v', buf[off++] = 0;
    buf[off++] = 0;
    pg_startup st;
    assert_int_equal(pgw_parse_startup(buf, off, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than"));
}

static void test_startup_requests(void **state)
{
    (void)state;
    char buf[12], err[128];
    pg_startup st;
    pgw_put_u32(buf, PG_SSL_REQUEST_CODE);
    assert_int_equal(pgw_parse_startup(buf, 4, &st, err, sizeof err), 0);
    assert_int_equal(st.code, PG_SSL_REQUEST_CODE);
    pgw_put_u32(buf, PG_CANCEL_REQUEST_CODE);
    pgw_put_u32(buf + 4, 1234);
    pgw_put_u32(buf + 8, 0xdeadbeef);
    assert_int_equal(pgw_parse_startup(buf, 12, &st, err, sizeof err), 0);
    assert_int_equal(st.cancel_pid, 1234);
    assert_int_equal(st.cancel_key, 0xdeadbeef);
    assert_int_equal(pgw_parse_startup(buf, 8, &st, err, sizeof err), -1);
    pgw_put_u32(buf, 2u << 16);  /* protocol 2.0 */
    assert_int_equal(pgw_parse_startup(buf, 4, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "unsupported frontend protocol 2.0"));
}

static void test_error_message_bytes(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    pg_error e = {.severity = "ERROR", .sqlstate = "42501", .message = "denied", .hint = "ask"};
    assert_int_equal(pgw_error(b, &e), 0);
    size_t n = evbuffer_get_length(b);
    char *m = (char *)evbuffer_pullup(b, -1);
    assert_int_equal(m[0], 'E');
    assert_int_equal(pgw_get_u32(m + 1), n - 1);
    assert_string_equal(pgw_error_field(m + 5, n - 5, 'C'), "42501");
    assert_string_equal(pgw_error_field(m + 5, n - 5, 'M'), "denied");
    assert_string_equal(pgw_error_field(m + 5, n - 5, 'H'), "ask");
    assert_null(pgw_error_field(m + 5, n - 5, 'D'));
    assert_int_equal(m[n - 1], 0);
    evbuffer_free(b);
}

static void test_builders(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    pgw_ready_for_query(b, 'T');
    pgw_backend_key(b, 7, 9);
    pgw_parse(b, "s1", "select 1", NULL, 0);
    unsigned char *m = evbuffer_pullup(b, -1);
    static const unsigned char z[] = {'Z', 0, 0, 0, 5, 'T'};
    assert_memory_equal(m, z, 6);
    assert_int_equal(m[6], 'K');
    assert_int_equal(pgw_get_u32(m + 7), 12);
    assert_int_equal(pgw_get_u32(m + 11), 7);
    assert_int_equal(pgw_get_u32(m + 15), 9);
    assert_int_equal(m[19], 'P');
    assert_int_equal(pgw_get_u32(m + 20), 4 + 3 + 9 + 2);
    assert_memory_equal(m + 24, "s1\0select 1\0\0\0", 14);
    char type;
    uint32_t len;
    assert_true(pgw_peek_header(b, &type, &len));
    assert_int_equal(type, 'Z');
    assert_int_equal(len, 5);
    evbuffer_free(b);
}

static void test_error_truncates_long_message(void **state)
{
    (void)state;
    char big[10000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    struct evbuffer *b = evbuffer_new();
    pg_error e = {.severity = "ERROR", .sqlstate = "XX000", .message = big};
    assert_int_equal(pgw_error(b, &e), 0);
    size_t n = evbuffer_get_length(b);
    assert_true(n <= 4096 + 5);
    char *m = (char *)evbuffer_pullup(b, -1);
    assert_int_equal(pgw_get_u32(m + 1), n - 1);
    assert_int_equal(m[n - 1], 0);
    assert_int_equal(m[n - 2], 0);
    evbuffer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_startup_valid),
        cmocka_unit_test(test_startup_missing_terminator),
        cmocka_unit_test(test_startup_too_many_params),
        cmocka_unit_test(test_startup_requests),
        cmocka_unit_test(test_error_message_bytes),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_error_truncates_long_message),
    };
    return cmocka_run_group_tests_name("pgwire", tests, NULL, NULL);
}
