/*
 * fuzz_policy: the policy loader (policy_load_text) on arbitrary JSON text,
 * copied into a buffer of exactly its size (the loader takes a length), with a
 * policy_messages collector. A policy that loads is then used: a few fixed
 * statements (analysed once) are decided for three principals, and the
 * starting search_path, the catalog visibility predicate and impersonation are
 * computed. It asserts (abort()): on success *out is non-NULL and no error was
 * collected; on failure *out is NULL, err is non-empty and at least one error
 * was collected; verdicts are ALLOW, REWRITE or DENY; a REWRITE's text, the
 * search_path text (as SET search_path TO ...) and the catalog predicate (as a
 * WHERE clause) are SQL the analyser accepts, since policy names and
 * expressions must never break out of their quoting; everything is freed
 * (messages with policy_messages_free, the policy with policy_unref).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/analyze.h"
#include "policy/decide.h"
#include "policy/policy.h"

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "fuzz_policy: invariant failed: %s: ", #cond); \
            fprintf(stderr, __VA_ARGS__);                                \
            fputc('\n', stderr);                                         \
            abort();                                                     \
        }                                                                \
    } while (0)

static const char *const SEARCH_PATH[] = {"public", "raw"};
static const analyze_context CTX = {
    .database = "dw", .search_path = SEARCH_PATH, .n_search_path = 2, .session_user = "svc",
};

static const char *const STATEMENTS[] = {
    "SELECT * FROM raw.leads",
    "SELECT * FROM shared_mart.customers c JOIN funnel_data_mart.leads l ON l.id = c.id",
    "SELECT * FROM leads",
    "INSERT INTO sales_mart.scratch_x SELECT * FROM sales_mart.orders",
    "SET search_path TO raw, staging",
    "SELECT pg_sleep(1), public.http_get('x')",
    "SET ROLE metabase_origination",
    "SELECT * FROM pg_catalog.pg_stats",
};
#define N_STATEMENTS (sizeof STATEMENTS / sizeof STATEMENTS[0])
static analysis *FACTS[N_STATEMENTS];
static json_t *claims;

static const char *COLUMNS[] = {"id", "name", "email", "cpf", "phone", "birth_date", "salary",
                                "region", "squad", "owner_email", "team", "a", "b", "c"};

static int columns(void *ctx, const char *schema, const char *table, const char ***names, size_t *n)
{
    (void)ctx;
    (void)schema;
    (void)table;
    *names = COLUMNS;
    *n = sizeof COLUMNS / sizeof COLUMNS[0];
    return 0;
}

static void init(void)
{
    for (size_t i = 0; i < N_STATEMENTS; i++) {
        analyze_error e;
        if (analyze_sql(STATEMENTS[i], &CTX, &FACTS[i], &e) != 0) {
            fprintf(stderr, "fuzz_policy: cannot analyse \"%s\": %s\n", STATEMENTS[i], e.message);
            abort();
        }
    }
    claims = json_pack("{s:s,s:[s,s],s:i}", "region", "south", "teams", "a'b", "c", "level", 3);
    if (!claims)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    init();
    return 0;
}

static void check_parses(const char *what, const char *sql)
{
    analysis *a = NULL;
    analyze_error e;
    memset(&e, 0, sizeof e);
    CHECK(analyze_sql(sql, &CTX, &a, &e) == 0, "%s does not parse (%s at %d): %s", what, e.message,
          e.cursor_position, sql);
    analysis_free(a);
}

static void use_policy(const policy_t *p, const decide_principal *who)
{
    decision d;
    decision_init(&d);
    for (size_t i = 0; i < N_STATEMENTS; i++) {
        decide_request req = {.sql = STATEMENTS[i], .facts = FACTS[i], .who = who, .columns = columns};
        char err[512] = "";
        int rc = decide(p, &req, &d, err, sizeof err);
        CHECK(d.verdict == DECIDE_ALLOW || d.verdict == DECIDE_REWRITE || d.verdict == DECIDE_DENY,
              "verdict %d", (int)d.verdict);
        if (rc != 0)
            CHECK(d.verdict == DECIDE_DENY, "decide failed (%s) with verdict %s", err,
                  decide_verdict_name(d.verdict));
        CHECK(decision_reason(&d) != NULL, "no reason");
        char buf[512];
        for (size_t k = 0; k < d.n_items; k++)
            decide_item_reason(&d, k, buf, sizeof buf);
        if (d.verdict == DECIDE_REWRITE) {
            CHECK(d.rewritten_sql != NULL, "REWRITE without text");
            check_parses("rewritten text", d.rewritten_sql);
        }
    }
    decision_free(&d);

    const char **schemas = NULL;
    size_t n = 0;
    if (decide_search_path(p, who, &schemas, &n) == 0)
        free(schemas);
    char *sp = decide_search_path_text(p, who);
    if (sp) {
        size_t len = strlen(sp) + 32;
        char *sql = malloc(len);
        if (sql) {
            snprintf(sql, len, "SET search_path TO %s", sp);
            check_parses("search_path text", sql);
            free(sql);
        }
        free(sp);
    }

    (void)decide_full_catalog(p, who);
    decide_visibility v = {p, who};
    char *pred = decide_catalog_visible(&v, "n.nspname", "c.relname");
    if (pred) {
        size_t len = strlen(pred) + 64;
        char *sql = malloc(len);
        if (sql) {
            snprintf(sql, len, "SELECT 1 FROM t WHERE %s", pred);
            check_parses("catalog predicate", sql);
            free(sql);
        }
        free(pred);
    }
    char *hidden = decide_catalog_column_hidden(&v, "n.nspname", "c.relname", "a.attname");
    if (hidden) {
        size_t len = strlen(hidden) + 64;
        char *sql = malloc(len);
        if (sql) {
            snprintf(sql, len, "SELECT 1 FROM t WHERE %s", hidden);
            check_parses("hidden-column predicate", sql);
            free(sql);
        }
        free(hidden);
    }

    const char *const *groups = NULL;
    size_t ng = 0;
    char why[256];
    (void)decide_impersonation(p, who, "metabase_origination", &groups, &ng, why, sizeof why);
    const char *eff[16];
    (void)decide_effective_groups(p, who, eff, 16);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!claims)
        init();
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);

    policy_t *p = (policy_t *)(uintptr_t)1;   /* must be overwritten */
    policy_messages msgs;
    char err[2048] = "";
    int rc = policy_load_text("fuzz.json", text, size, &p, &msgs, err, sizeof err);
    CHECK(rc == 0 || rc == -1, "policy_load_text returned %d", rc);
    if (rc == 0) {
        CHECK(p != NULL, "success without a policy");
        CHECK(msgs.n_errors == 0, "success with %zu errors, first: %s", msgs.n_errors, msgs.errors[0]);
        char summary[256];
        policy_summary(p, summary, sizeof summary);
        policy_t *again = policy_ref(p);
        CHECK(again == p, "policy_ref returned another pointer");
        policy_unref(again);

        const char *groups[] = {"analysts", "squad-sales"};
        decide_principal carla = {.user = "carla"};
        decide_principal olga = {.user = "olga", .claims = claims};
        decide_principal sam = {.user = "sam", .groups = groups, .n_groups = 2, .claims = claims};
        use_policy(p, &carla);
        use_policy(p, &olga);
        use_policy(p, &sam);
    } else {
        CHECK(p == NULL, "failure left *out set");
        CHECK(err[0] != 0, "failure without an error message");
        CHECK(msgs.n_errors > 0, "failure (%s) with no error collected", err);
    }
    for (size_t i = 0; i < msgs.n_errors; i++)
        CHECK(msgs.errors[i] && msgs.errors[i][0], "empty error %zu", i);
    for (size_t i = 0; i < msgs.n_warnings; i++)
        CHECK(msgs.warnings[i] && msgs.warnings[i][0], "empty warning %zu", i);
    policy_messages_free(&msgs);
    policy_unref(p);
    free(text);
    return 0;
}
