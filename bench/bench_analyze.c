/*
 * bench_analyze: how long SQL analysis (policy/analyze) takes per statement,
 * for a pgbench point query, a typical one-table Metabase question and a
 * large Metabase-generated query with joins, plus the
 * relation substitution of policy/rewrite for the large one, and the shape
 * (one scanner pass: the decision memo's key and the normalized text). With
 * --policy FILE it also times analysis + decision (policy/decide) for a
 * principal (--user, --group, repeatable). Prints the median of many timed
 * runs in microseconds.
 *
 *   bench_analyze [--runs N] [--policy FILE --user U --group G ...]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/analyze.h"
#include "policy/decide.h"
#include "policy/policy.h"
#include "policy/rewrite.h"

static const char point_query[] = "SELECT abalance FROM pgbench_accounts WHERE aid = 1";

/* The shape of what Metabase 0.4x/0.5x sends for an MBQL question with joins,
 * breakouts and a custom column, remark included. */
static const char metabase_query[] =
    "-- Metabase:: userID: 1 queryType: MBQL queryHash: "
    "7d3f5a0c2b9e41f68a1d0e2c3b4a5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a\n"
    "SELECT \"source\".\"created_at\" AS \"created_at\", \"source\".\"Leads__channel\" AS "
    "\"Leads__channel\", \"source\".\"stage\" AS \"stage\", \"source\".\"count\" AS \"count\", "
    "\"source\".\"sum\" AS \"sum\", \"source\".\"avg\" AS \"avg\", \"source\".\"sum_2\" AS "
    "\"sum_2\"\n"
    "FROM (SELECT date_trunc('month', CAST(\"funnel_data_mart\".\"funnel\".\"created_at\" AS "
    "timestamp)) AS \"created_at\", \"Leads\".\"channel\" AS \"Leads__channel\", CASE WHEN "
    "\"funnel_data_mart\".\"funnel\".\"contract_id\" IS NOT NULL THEN 'signed' WHEN "
    "\"funnel_data_mart\".\"funnel\".\"proposal_sent_at\" IS NOT NULL THEN 'proposal' WHEN "
    "\"funnel_data_mart\".\"funnel\".\"qualified\" = TRUE THEN 'qualified' ELSE 'lead' END AS "
    "\"stage\", count(*) AS \"count\", sum(\"Contracts\".\"amount\") AS \"sum\", "
    "avg(\"Contracts\".\"amount\") AS \"avg\", sum(CASE WHEN \"Contracts\".\"status\" = 'active' "
    "THEN \"Contracts\".\"monthly_fee\" ELSE 0 END) AS \"sum_2\"\n"
    "FROM \"funnel_data_mart\".\"funnel\"\n"
    "LEFT JOIN \"staging\".\"leads\" \"Leads\" ON \"funnel_data_mart\".\"funnel\".\"lead_id\" = "
    "\"Leads\".\"id\"\n"
    "LEFT JOIN \"staging\".\"contracts\" \"Contracts\" ON "
    "\"funnel_data_mart\".\"funnel\".\"contract_id\" = \"Contracts\".\"id\"\n"
    "LEFT JOIN \"origination_mart\".\"squads\" \"Squads\" ON \"Leads\".\"squad_id\" = "
    "\"Squads\".\"id\"\n"
    "LEFT JOIN \"origination_mart\".\"regions\" \"Regions\" ON \"Squads\".\"region_id\" = "
    "\"Regions\".\"id\"\n"
    "WHERE (\"funnel_data_mart\".\"funnel\".\"created_at\" >= date_trunc('month', CAST((now() + "
    "INTERVAL '-12 month') AS timestamp)) AND \"funnel_data_mart\".\"funnel\".\"created_at\" < "
    "date_trunc('month', CAST(now() AS timestamp)) AND (\"Regions\".\"name\" = 'South' OR "
    "\"Regions\".\"name\" = 'Southeast') AND (\"Leads\".\"channel\" IS NOT NULL AND "
    "(\"Leads\".\"channel\" <> '' OR \"Leads\".\"channel\" IS NULL)) AND lower(\"Squads\".\"name\") "
    "LIKE '%origination%')\n"
    "GROUP BY date_trunc('month', CAST(\"funnel_data_mart\".\"funnel\".\"created_at\" AS "
    "timestamp)), \"Leads\".\"channel\", CASE WHEN \"funnel_data_mart\".\"funnel\".\"contract_id\" "
    "IS NOT NULL THEN 'signed' WHEN \"funnel_data_mart\".\"funnel\".\"proposal_sent_at\" IS NOT "
    "NULL THEN 'proposal' WHEN \"funnel_data_mart\".\"funnel\".\"qualified\" = TRUE THEN "
    "'qualified' ELSE 'lead' END\n"
    "ORDER BY date_trunc('month', CAST(\"funnel_data_mart\".\"funnel\".\"created_at\" AS "
    "timestamp)) ASC, \"Leads\".\"channel\" ASC, CASE WHEN "
    "\"funnel_data_mart\".\"funnel\".\"contract_id\" IS NOT NULL THEN 'signed' WHEN "
    "\"funnel_data_mart\".\"funnel\".\"proposal_sent_at\" IS NOT NULL THEN 'proposal' WHEN "
    "\"funnel_data_mart\".\"funnel\".\"qualified\" = TRUE THEN 'qualified' ELSE 'lead' END ASC) "
    "\"source\"\n"
    "LIMIT 1048575";

/* A typical one-table MBQL question (breakout by month, two aggregations). */
static const char metabase_simple_query[] =
    "-- Metabase:: userID: 7 queryType: MBQL queryHash: "
    "0a9b8c7d6e5f40312a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091\n"
    "SELECT date_trunc('month', \"origination_mart\".\"contracts\".\"signed_at\") AS "
    "\"signed_at\", \"origination_mart\".\"contracts\".\"product\" AS \"product\", count(*) AS "
    "\"count\", sum(\"origination_mart\".\"contracts\".\"amount\") AS \"sum\"\n"
    "FROM \"origination_mart\".\"contracts\"\n"
    "WHERE (\"origination_mart\".\"contracts\".\"signed_at\" >= date_trunc('month', CAST((now() "
    "+ INTERVAL '-6 month') AS timestamp)) AND \"origination_mart\".\"contracts\".\"signed_at\" < "
    "date_trunc('month', CAST(now() AS timestamp)))\n"
    "GROUP BY date_trunc('month', \"origination_mart\".\"contracts\".\"signed_at\"), "
    "\"origination_mart\".\"contracts\".\"product\"\n"
    "ORDER BY date_trunc('month', \"origination_mart\".\"contracts\".\"signed_at\") ASC, "
    "\"origination_mart\".\"contracts\".\"product\" ASC\n"
    "LIMIT 1048575";

static const char *const bench_path[] = {"public"};
static const analyze_context bench_ctx = {.database = "warehouse",
                                          .search_path = bench_path,
                                          .n_search_path = 1,
                                          .session_user = "martgate"};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *samples, size_t n)
{
    qsort(samples, n, sizeof *samples, compare_double);
    return n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
}

typedef struct bench_decide {
    policy_t *policy;
    decide_principal who;
    decision d;
} bench_decide;

/* One timed unit of work; returns 0 or -1. */
typedef int (*bench_fn)(const char *sql, bench_decide *bd);

static int run_analyze(const char *sql, bench_decide *bd)
{
    (void)bd;
    analysis *a;
    if (analyze_sql(sql, &bench_ctx, &a, NULL) != 0)
        return -1;
    analysis_free(a);
    return 0;
}

/* The shape alone (one scanner pass): the key of the decision memo and the
 * audit log's normalized text. */
static int run_shape(const char *sql, bench_decide *bd)
{
    (void)bd;
    analyze_shape sh;
    if (analyze_shape_of(sql, &sh, NULL) != 0)
        return -1;
    analyze_shape_clear(&sh);
    return 0;
}

static int run_analyze_decide(const char *sql, bench_decide *bd)
{
    analysis *a;
    if (analyze_sql(sql, &bench_ctx, &a, NULL) != 0)
        return -1;
    decide_request req = {.sql = sql, .facts = a, .who = &bd->who};
    char err[256];
    int rc = decide(bd->policy, &req, &bd->d, err, sizeof err);
    analysis_free(a);
    return rc;
}

/* The large query with its fact table substituted by a filtered subquery
 * (analysis + rewrite; the replacement text is prepared once). */
static int run_analyze_rewrite(const char *sql, bench_decide *bd)
{
    (void)bd;
    static const char replacement[] =
        "SELECT \"id\", \"lead_id\", \"contract_id\", \"created_at\", \"proposal_sent_at\", "
        "\"qualified\" FROM \"funnel_data_mart\".\"funnel\" WHERE (\"region\" = 'South') OFFSET 0";
    analysis *a;
    if (analyze_sql(sql, &bench_ctx, &a, NULL) != 0)
        return -1;
    rewrite_substitution sub = {0, replacement};
    char *out = NULL;
    char err[256];
    int rc = rewrite_apply(sql, a, &sub, 1, &out, err, sizeof err);
    free(out);
    analysis_free(a);
    return rc;
}

static int measure(const char *label, const char *sql, bench_fn fn, bench_decide *bd,
                   size_t runs)
{
    double *samples = malloc(runs * sizeof *samples);
    if (!samples)
        return -1;
    for (size_t i = 0; i < runs / 10 + 10; i++)   /* warm up */
        if (fn(sql, bd) != 0) {
            fprintf(stderr, "bench_analyze: %s failed\n", label);
            free(samples);
            return -1;
        }
    for (size_t i = 0; i < runs; i++) {
        double t0 = now_us();
        fn(sql, bd);
        samples[i] = now_us() - t0;
    }
    double med = median(samples, runs);
    printf("%-34s %6zu bytes  median %8.2f us  p90 %8.2f us  (%zu runs)\n", label, strlen(sql),
           med, samples[runs * 9 / 10], runs);
    free(samples);
    return 0;
}

int main(int argc, char **argv)
{
    size_t runs = 20000;
    const char *policy_path = NULL;
    const char *user = "bench";
    const char *groups[16];
    size_t n_groups = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--policy") && i + 1 < argc) {
            policy_path = argv[++i];
        } else if (!strcmp(argv[i], "--user") && i + 1 < argc) {
            user = argv[++i];
        } else if (!strcmp(argv[i], "--group") && i + 1 < argc && n_groups < 16) {
            groups[n_groups++] = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: %s [--runs N] [--policy FILE [--user U] [--group G]...]\n",
                    argv[0]);
            return 2;
        }
    }
    if (runs < 10)
        runs = 10;

    bench_decide bd = {.who = {.user = user, .groups = groups, .n_groups = n_groups}};
    int rc = 0;
    rc |= measure("analyze: point query", point_query, run_analyze, &bd, runs);
    rc |= measure("analyze: Metabase one-table query", metabase_simple_query, run_analyze, &bd,
                  runs);
    rc |= measure("analyze: Metabase query", metabase_query, run_analyze, &bd, runs);
    rc |= measure("shape: point query", point_query, run_shape, &bd, runs);
    rc |= measure("shape: Metabase one-table query", metabase_simple_query, run_shape, &bd, runs);
    rc |= measure("shape: Metabase query", metabase_query, run_shape, &bd, runs);
    rc |= measure("analyze+rewrite: Metabase query", metabase_query, run_analyze_rewrite, &bd,
                  runs);
    if (policy_path) {
        char err[512];
        if (policy_load(policy_path, &bd.policy, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "bench_analyze: %s\n", err);
            return 1;
        }
        decision_init(&bd.d);
        rc |= measure("analyze+decide: point query", point_query, run_analyze_decide, &bd, runs);
        rc |= measure("analyze+decide: Metabase one-table", metabase_simple_query,
                      run_analyze_decide, &bd, runs);
        rc |= measure("analyze+decide: Metabase query", metabase_query, run_analyze_decide, &bd,
                      runs);
        /* a decision borrows from its analysis: keep one alive to print it */
        analysis *a;
        if (analyze_sql(metabase_query, &bench_ctx, &a, NULL) == 0) {
            decide_request req = {.sql = metabase_query, .facts = a, .who = &bd.who};
            if (decide(bd.policy, &req, &bd.d, err, sizeof err) == 0)
                printf("decision for the Metabase query: %s (%s)\n",
                       decide_verdict_name(bd.d.verdict), decision_reason(&bd.d));
            decision_free(&bd.d);
            analysis_free(a);
        }
        policy_unref(bd.policy);
    }
    return rc ? 1 : 0;
}
