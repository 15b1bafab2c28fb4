/*
 * test_metrics: the label table's bound (beyond METRICS_MAX_NAMES - 1 names,
 * "other"), histogram buckets, and the exposition: sums over blocks, label
 * values escaped, only names that counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/metrics.h"

static char *exposition(const metrics_block *const *blocks, size_t n, const metrics_names *dbs,
                        const metrics_names *sets)
{
    metrics_info info = {.version = "0.1.0", .pg_query_version = "15.1", .openssl_version = "OpenSSL 3"};
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_int_equal(metrics_write(b, blocks, n, dbs, sets, NULL, 0, &info), 0);
    size_t len = evbuffer_get_length(b);
    char *s = malloc(len + 1);
    evbuffer_remove(b, s, len);
    s[len] = 0;
    evbuffer_free(b);
    return s;
}

static void test_names_bounded(void **state)
{
    (void)state;
    metrics_names t = {0};
    assert_int_equal(metrics_name(&t, "dw"), 0);
    assert_int_equal(metrics_name(&t, "dw"), 0);
    assert_int_equal(metrics_name(&t, NULL), metrics_name(&t, ""));   /* both "(none)" */
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "db%d", i);
        assert_true(metrics_name(&t, name) <= METRICS_OTHER);
    }
    assert_int_equal(t.n, METRICS_OTHER);                   /* the table stopped growing */
    assert_int_equal(metrics_name(&t, "one-more"), METRICS_OTHER);
    assert_int_equal(metrics_name(&t, "dw"), 0);             /* known names keep their index */
    metrics_names_free(&t);
}

static void test_exposition(void **state)
{
    (void)state;
    metrics_names dbs = {0}, sets = {0};
    unsigned dw = metrics_name(&dbs, "d\"w\\x");
    unsigned raw = metrics_name(&sets, "raw");
    (void)metrics_name(&sets, "never-denied");
    metrics_block a = {0}, b = {0};
    a.logins[MG_LOGIN_OK] = 2;
    b.logins[MG_LOGIN_OK] = 3;
    a.statements[dw][MG_DECISION_DENY] = 4;
    b.denials[raw] = 4;
    metrics_observe_decide(&a, 0.00002);   /* in le="2.5e-05" */
    metrics_observe_decide(&b, 5.0);       /* only in +Inf */
    const metrics_block *blocks[] = {&a, &b};
    char *s = exposition(blocks, 2, &dbs, &sets);
    assert_non_null(strstr(s, "martgate_logins_total{result=\"ok\"} 5\n"));
    assert_non_null(strstr(s, "martgate_statements_total{decision=\"deny\",database=\"d\\\"w\\\\x\"} 4\n"));
    assert_non_null(strstr(s, "martgate_denials_total{dataset=\"raw\"} 4\n"));
    assert_null(strstr(s, "never-denied"));
    assert_non_null(strstr(s, "martgate_decision_seconds_bucket{le=\"1e-05\"} 0\n"));
    assert_non_null(strstr(s, "martgate_decision_seconds_bucket{le=\"2.5e-05\"} 1\n"));
    assert_non_null(strstr(s, "martgate_decision_seconds_bucket{le=\"1\"} 1\n"));
    assert_non_null(strstr(s, "martgate_decision_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(s, "martgate_decision_seconds_count 2\n"));
    free(s);
    metrics_names_free(&dbs);
    metrics_names_free(&sets);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_bounded),
        cmocka_unit_test(test_exposition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
