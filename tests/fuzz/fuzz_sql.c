/*
 * fuzz_sql: arbitrary SQL text through the policy engine. The reference policy
 * (tests/unit/fixtures/policy/passei, loaded once; the working directory must
 * be the repository root) decides every text the analyser (policy/analyze)
 * accepts, for "carla" (no token groups) and for "olga" (claims
 * {"region":"south"}), with a column look-up so masks can be rewritten; the
 * scanner-only shape (analyze_shape_of) and analyze_normalize run on the same
 * text. It asserts (abort()): what the parser accepts the scanner accepts too;
 * a shape's normalized text is at most the input plus 12 bytes per constant
 * and matches analyze_normalize's; a decision's verdict is ALLOW, REWRITE or
 * DENY (DENY when decide() fails); a REWRITE carries rewritten text that the
 * analyser itself accepts; and everything is freed (LeakSanitizer).
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

#define POLICY_DIR "tests/unit/fixtures/policy/passei"

#define CHECK(cond, ...)                                              \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "fuzz_sql: invariant failed: %s: ", #cond); \
            fprintf(stderr, __VA_ARGS__);                             \
            fputc('\n', stderr);                                      \
            abort();                                                  \
        }                                                             \
    } while (0)

static policy_t *P;
static json_t *olga_claims;

static const char *const SEARCH_PATH[] = {"public", "raw"};
static const analyze_context CTX = {
    .database = "dw",
    .search_path = SEARCH_PATH,
    .n_search_path = 2,
    .session_user = "svc",
};

/* Every table has the columns the fixture policy's masks and filters name. */
static const char *COLUMNS[] = {"id", "name", "email", "cpf", "phone", "birth_date", "salary",
                                "region", "squad", "owner_email", "team"};

static int columns(void *ctx, const char *schema, const char *table, const char ***names, size_t *n)
{
    (void)ctx;
    (void)schema;
    (void)table;
    *names = COLUMNS;
    *n = sizeof COLUMNS / sizeof COLUMNS[0];
    return 0;
}

static bool prepared(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "p") == 0;
}

static void init(void)
{
    char err[2048] = "";
    if (policy_load(POLICY_DIR, &P, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_sql: cannot load %s (run from the repository root): %s\n", POLICY_DIR, err);
        abort();
    }
    olga_claims = json_pack("{s:s}", "region", "south");
    if (!olga_claims)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    init();
    return 0;
}

static void decide_for(const decide_principal *who, const char *sql, const analysis *a)
{
    decide_request req = {
        .sql = sql, .facts = a, .who = who, .columns = columns, .prepared = prepared,
    };
    decision d;
    char err[512] = "";
    decision_init(&d);
    int rc = decide(P, &req, &d, err, sizeof err);
    CHECK(rc == 0 || rc == -1, "decide returned %d", rc);
    CHECK(d.verdict == DECIDE_ALLOW || d.verdict == DECIDE_REWRITE || d.verdict == DECIDE_DENY,
          "verdict %d for %s", (int)d.verdict, who->user);
    if (rc != 0)
        CHECK(d.verdict == DECIDE_DENY, "decide failed (%s) but verdict is %s", err,
              decide_verdict_name(d.verdict));
    CHECK(d.deciding == DECIDE_NONE || d.deciding < d.n_items, "deciding item %zu of %zu", d.deciding,
          d.n_items);
    /* reasons are formatted lazily: exercise that code too */
    const char *reason = decision_reason(&d);
    CHECK(reason != NULL, "no reason");
    char buf[512];
    for (size_t i = 0; i < d.n_items; i++) {
        decide_item_reason(&d, i, buf, sizeof buf);
        decide_item_label(&d.items[i], buf, sizeof buf);
    }
    if (d.verdict == DECIDE_REWRITE) {
        CHECK(d.rewritten_sql != NULL, "REWRITE for %s without rewritten_sql", who->user);
        analysis *again = NULL;
        analyze_error aerr;
        memset(&aerr, 0, sizeof aerr);
        int arc = analyze_sql(d.rewritten_sql, &CTX, &again, &aerr);
        CHECK(arc == 0, "rewritten text for %s does not parse (%s at %d): %s", who->user, aerr.message,
              aerr.cursor_position, d.rewritten_sql);
        analysis_free(again);
    }
    decision_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!P)
        init();
    char *sql = malloc(size + 1);
    if (!sql)
        return 0;
    memcpy(sql, data, size);
    sql[size] = 0;
    size_t len = strlen(sql);   /* the text ends at the first NUL, as a C string does */

    analysis *a = NULL;
    analyze_error aerr;
    memset(&aerr, 0, sizeof aerr);
    int parsed = analyze_sql(sql, &CTX, &a, &aerr) == 0;
    if (!parsed)
        CHECK(a == NULL, "analyze_sql failed but left *out set");

    analyze_shape sh;
    analyze_error serr;
    memset(&serr, 0, sizeof serr);
    int shaped = analyze_shape_of(sql, &sh, &serr) == 0;
    if (parsed)
        CHECK(shaped, "analyze_sql accepts what analyze_shape_of rejects (%s at %d)", serr.message,
              serr.cursor_position);
    if (shaped) {
        CHECK(sh.normalized != NULL, "shape without normalized text");
        CHECK(strlen(sh.normalized) == sh.normalized_len, "normalized_len %zu, strlen %zu",
              sh.normalized_len, strlen(sh.normalized));
        CHECK(sh.normalized_len <= len + 12 * sh.n_constants,
              "normalized text of %zu bytes for %zu bytes of input with %zu constants", sh.normalized_len,
              len, sh.n_constants);
        CHECK(sh.key_len >= sh.normalized_len + 1, "key of %zu bytes", sh.key_len);
    }

    char *norm = NULL;
    char nerr[256] = "";
    int normalized = analyze_normalize(sql, &norm, nerr, sizeof nerr) == 0;
    CHECK(normalized == shaped, "analyze_normalize %s where analyze_shape_of %s", normalized ? "succeeds" : "fails",
          shaped ? "succeeds" : "fails");
    if (normalized && shaped)
        CHECK(strcmp(norm, sh.normalized) == 0, "analyze_normalize and analyze_shape_of disagree");
    free(norm);
    if (shaped)
        analyze_shape_clear(&sh);

    if (parsed) {
        CHECK(a->sql_length == len, "analysis of %zu bytes for a text of %zu", a->sql_length, len);
        decide_principal carla = {.user = "carla"};
        decide_for(&carla, sql, a);
        decide_principal olga = {.user = "olga", .claims = olga_claims};
        decide_for(&olga, sql, a);
        analysis_free(a);
    }
    free(sql);
    return 0;
}
