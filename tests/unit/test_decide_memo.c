/*
 * test_decide_memo: the decision memo (policy/decide_memo) under the
 * reference policy (fixtures/policy/passei). Its bookkeeping (state, slots,
 * byte budget), which decisions it keeps, and the property it rests on:
 * whenever it would keep a decision, every text of the same shape with other
 * constants (of the same types, chosen to look like names, injections and
 * settings) gets the same decision from a full analysis, for every statement
 * of the analysis corpus and the decisions corpus and every persona.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/analyze.h"
#include "policy/decide.h"
#include "policy/decide_memo.h"
#include "policy/policy.h"

#include "corpus_analyze.h"

#define FIX "tests/unit/fixtures/policy/"

static policy_t *P;

static int setup(void **state)
{
    (void)state;
    char err[2048];
    if (policy_load(FIX "passei", &P, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    policy_unref(P);
    return 0;
}

static const char *const PATH[] = {"public", "raw"};

/* Full analysis and decision; -1 when the text does not parse. */
static int decide_text(const decide_principal *who, const char *sql, decision *d, analysis **a)
{
    analyze_context ctx = {.database = "dw", .search_path = PATH, .n_search_path = 2, .session_user = "svc"};
    *a = NULL;
    if (analyze_sql(sql, &ctx, a, NULL) != 0)
        return -1;
    decide_request req = {.sql = sql, .facts = *a, .who = who};
    char err[512];
    decision_init(d);
    assert_int_equal(decide(P, &req, d, err, sizeof err), 0);
    return 0;
}

/* What a decision says, as one string: verdict, rule, each item's target. */
static void summary(decision *d, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "%s %s:", decide_verdict_name(d->verdict), d->rule_id ? d->rule_id : "-");
    for (size_t i = 0; i < d->n_items && o < len; i++) {
        char label[256];
        decide_item_label(&d->items[i], label, sizeof label);
        o += (size_t)snprintf(buf + o, len - o, " [%s %s %s]", label, decide_verdict_name(d->items[i].verdict),
                              d->items[i].rule_id ? d->items[i].rule_id : "-");
    }
}

/* Constants to put in place of each placeholder, by token type. */
static const char *replacement(char type, int which)
{
    static const char *const ints[] = {"0", "2147483647", "42"};
    static const char *const floats[] = {"0.5", "1e300", "3.14"};
    static const char *const strings[] = {"'raw.leads'", "'x'' OR 1=1; SELECT * FROM raw.leads --'",
                                          "E'search_path\\\\raw'", "$m$staging.leads$m$", "U&'\\0072aw'"};
    static const char *const bits[] = {"B'0'", "B'1111'"};
    static const char *const hexes[] = {"X'0'", "X'ffff'"};
    switch (type) {
    case 'i': return ints[which % 3];
    case 'f': return floats[which % 3];
    case 's': return strings[which % 5];
    case 'b': return bits[which % 2];
    default: return hexes[which % 2];
    }
}

/* The text of shape sh with every constant replaced (variant `which`). */
static char *variant(const analyze_shape *sh, int which)
{
    size_t cap = sh->normalized_len + sh->n_constants * 64 + 1, o = 0, from = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    const unsigned char *sig = (const unsigned char *)sh->key + sh->normalized_len + 1;
    for (size_t i = 0; i < sh->n_constants; i++) {
        size_t at = ((size_t)sig[5 * i] << 24) | ((size_t)sig[5 * i + 1] << 16) | ((size_t)sig[5 * i + 2] << 8) |
                    sig[5 * i + 3];
        char type = (char)sig[5 * i + 4];
        assert_true(sh->normalized[at] == '$');
        memcpy(out + o, sh->normalized + from, at - from);
        o += at - from;
        const char *r = replacement(type, which + (int)i);
        memcpy(out + o, r, strlen(r));
        o += strlen(r);
        from = at + 1;
        while (sh->normalized[from] >= '0' && sh->normalized[from] <= '9')
            from++;
    }
    memcpy(out + o, sh->normalized + from, sh->normalized_len - from);
    o += sh->normalized_len - from;
    out[o] = 0;
    return out;
}

static size_t checked, kept;

/* The property, for one text and one principal. */
static void check_text(const decide_principal *who, const char *sql)
{
    decision d;
    analysis *a;
    if (decide_text(who, sql, &d, &a) != 0)
        return;   /* does not parse: never memoized (the scanner may still read it) */
    checked++;
    analyze_shape sh;
    bool shaped = analyze_shape_of(sql, &sh, NULL) == 0;
    if (!shaped || !sh.decidable || !decide_memo_keeps(a, &d)) {
        if (shaped)
            analyze_shape_clear(&sh);
        decision_free(&d);
        analysis_free(a);
        return;
    }
    kept++;
    char want[4096];
    summary(&d, want, sizeof want);
    for (int which = 0; which < 5 && sh.n_constants; which++) {
        char *v = variant(&sh, which);
        analyze_shape vs;
        assert_int_equal(analyze_shape_of(v, &vs, NULL), 0);
        /* the same shape, by construction */
        assert_true(vs.key_len == sh.key_len && !memcmp(vs.key, sh.key, sh.key_len));
        analyze_shape_clear(&vs);
        decision vd;
        analysis *va;
        if (decide_text(who, v, &vd, &va) == 0) {
            char got[4096];
            summary(&vd, got, sizeof got);
            if (strcmp(want, got) != 0) {
                fprintf(stderr, "memo would be wrong for %s\n  %s\n  decided: %s\n  variant: %s\n  decided: %s\n",
                        who->user, sql, want, v, got);
                fail();
            }
            decision_free(&vd);
            analysis_free(va);
        }
        free(v);
    }
    analyze_shape_clear(&sh);
    decision_free(&d);
    analysis_free(a);
}

static const char *const G_ENG[] = {"data-engineers"};
static const char *const G_SCI[] = {"data-scientists"};

static void test_same_shape_same_decision(void **state)
{
    (void)state;
    json_t *claims = json_pack("{s:s}", "region", "south");
    decide_principal who[] = {
        {.user = "ana"},
        {.user = "carla"},
        {.user = "olga", .claims = claims},
        {.user = "sam", .claims = claims},
        {.user = "nobody"},
        {.user = "x", .groups = G_ENG, .n_groups = 1},
        {.user = "y", .groups = G_SCI, .n_groups = 1},
    };
    for (size_t w = 0; w < sizeof who / sizeof *who; w++)
        for (size_t i = 0; i < sizeof analyze_corpus / sizeof *analyze_corpus; i++)
            check_text(&who[w], analyze_corpus[i].sql);
    json_error_t je;
    json_t *doc = json_load_file(FIX "decisions.json", 0, &je);
    assert_non_null(doc);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        const char *groups[16];
        size_t ng = 0, k;
        json_t *g;
        json_array_foreach(json_object_get(c, "groups"), k, g) if (ng < 16) groups[ng++] = json_string_value(g);
        decide_principal p = {.user = json_string_value(json_object_get(c, "user")), .groups = groups,
                              .n_groups = ng, .claims = json_object_get(c, "claims")};
        check_text(&p, json_string_value(json_object_get(c, "sql")));
    }
    json_decref(doc);
    json_decref(claims);
    printf("# %zu decisions checked, %zu the memo would keep, each against 5 texts of its shape\n", checked, kept);
    assert_true(checked > 1500);
    assert_true(kept > 200);
}

/* What it keeps and what it never does. */
static void test_keeps(void **state)
{
    (void)state;
    decide_principal ana = {.user = "ana"}, olga = {.user = "olga"};
    static const char *const keep[] = {
        "SELECT * FROM raw.leads WHERE id = 1",
        "SELECT 1",
        "INSERT INTO raw.leads (id) VALUES (1)",
        "UPDATE raw.leads SET name = 'x' WHERE id = 2",
        "SELECT * FROM raw.leads FOR UPDATE",
        "WITH x AS (SELECT * FROM raw.leads) SELECT count(*) FROM x",
    };
    static const char *const never[] = {
        "SET search_path = raw",
        "SELECT set_config('search_path', 'raw', false)",
        "PREPARE p AS SELECT 1",
        "EXECUTE p",
        "DEALLOCATE ALL",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "FETCH 1 FROM c",
        "BEGIN",
        "SELECT 1; SELECT 2",
        "DO $$ BEGIN END $$",
        "EXPLAIN SELECT 1",
        "SHOW search_path",
        "CREATE TABLE raw.t (id int)",
        "COPY raw.leads TO '/tmp/x'",
        "SET ROLE nobody",
        "LISTEN x",
    };
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        decision d;
        analysis *a;
        assert_int_equal(decide_text(&ana, keep[i], &d, &a), 0);
        if (!decide_memo_keeps(a, &d))
            fail_msg("should keep: %s", keep[i]);
        decision_free(&d);
        analysis_free(a);
    }
    for (size_t i = 0; i < sizeof never / sizeof *never; i++) {
        decision d;
        analysis *a;
        assert_int_equal(decide_text(&ana, never[i], &d, &a), 0);
        if (decide_memo_keeps(a, &d))
            fail_msg("should never keep: %s", never[i]);
        decision_free(&d);
        analysis_free(a);
    }
    /* a denial is never kept, nor a rewrite */
    decision d;
    analysis *a;
    assert_int_equal(decide_text(&olga, "SELECT * FROM raw.leads", &d, &a), 0);
    assert_int_equal(d.verdict, DECIDE_DENY);
    assert_false(decide_memo_keeps(a, &d));
    decision_free(&d);
    analysis_free(a);
    assert_false(decide_memo_keeps(NULL, NULL));
}

static void put_text(decide_memo *m, const char *sql, const char *note)
{
    analyze_shape sh;
    assert_int_equal(analyze_shape_of(sql, &sh, NULL), 0);
    decide_memo_put(m, &sh, sql, strlen(sql), note);
    analyze_shape_clear(&sh);
}

static const char *get_text(decide_memo *m, const char *sql)
{
    analyze_shape sh;
    assert_int_equal(analyze_shape_of(sql, &sh, NULL), 0);
    decide_memo_hit hit;
    const char *note = decide_memo_find(m, &sh, sql, strlen(sql), &hit) ? hit.note : NULL;
    if (note)
        assert_string_equal(hit.normalized, sh.normalized);
    analyze_shape_clear(&sh);
    return note;
}

static void test_bookkeeping(void **state)
{
    (void)state;
    decide_memo *m = NULL;
    assert_null(get_text(m, "SELECT 1"));
    assert_true(decide_memo_state(&m, "A", 1));
    assert_non_null(m);
    put_text(m, "SELECT * FROM t WHERE id = 1", "note-1");
    put_text(m, "SELECT 2", NULL);
    assert_string_equal(get_text(m, "SELECT * FROM t WHERE id = 987"), "note-1");
    assert_string_equal(get_text(m, "SELECT 3"), "");          /* kept without a note */
    assert_null(get_text(m, "SELECT * FROM t WHERE id = '1'"));  /* another constant type */
    assert_null(get_text(m, "SELECT * FROM t WHERE id = $1"));   /* a parameter is not a constant */
    /* the exact text last seen of a shape is found without a scan */
    decide_memo_hit hit;
    const char *q1 = "SELECT * FROM t WHERE id = 1", *q2 = "SELECT * FROM t WHERE id = 987";
    assert_true(decide_memo_find_text(m, q2, strlen(q2), &hit));   /* the last one found by shape */
    assert_string_equal(hit.note, "note-1");
    assert_string_equal(hit.normalized, "SELECT * FROM t WHERE id = $1");
    assert_false(decide_memo_find_text(m, q1, strlen(q1), &hit));
    assert_false(decide_memo_find_text(m, "SELECT * FROM t WHERE id = 5", 28, &hit));
    /* decisions hold in their own state only; a state of before comes back
     * with its decisions (impersonation back and forth) */
    assert_true(decide_memo_state(&m, "A", 1));
    assert_string_equal(get_text(m, "SELECT 3"), "");
    assert_true(decide_memo_state(&m, "AB", 2));
    assert_null(get_text(m, "SELECT 3"));
    assert_false(decide_memo_find_text(m, q2, strlen(q2), &hit));
    put_text(m, "SELECT 4", "in AB");
    assert_true(decide_memo_state(&m, "A", 1));
    assert_string_equal(get_text(m, "SELECT 5"), "");        /* A's own note-less decision */
    assert_true(decide_memo_state(&m, "AB", 2));
    assert_string_equal(get_text(m, "SELECT 6"), "in AB");
    decide_memo_stats st;
    decide_memo_get_stats(m, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.resets, 0);
    /* more states than it keeps: the one used longest ago is given up */
    for (int i = 0; i < DECIDE_MEMO_STATES; i++) {
        char name[8];
        snprintf(name, sizeof name, "S%d", i);
        assert_true(decide_memo_state(&m, name, strlen(name)));
    }
    assert_true(decide_memo_state(&m, "A", 1));
    assert_null(get_text(m, "SELECT 3"));
    decide_memo_get_stats(m, &st);
    assert_int_equal(st.resets, 2);   /* A's and AB's decisions went */
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);

    /* UESCAPE: never kept */
    put_text(m, "SELECT * FROM U&\"r!0061w\" UESCAPE '!'.leads", "x");
    decide_memo_get_stats(m, &st);
    assert_int_equal(st.entries, 0);

    /* bounded: slots, then bytes */
    for (int i = 0; i < 40; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT c%d FROM t WHERE id = 1", i);
        put_text(m, sql, "n");
    }
    decide_memo_get_stats(m, &st);
    assert_int_equal(st.entries, DECIDE_MEMO_SLOTS);
    assert_int_equal(st.evicted, 40 - DECIDE_MEMO_SLOTS);
    assert_non_null(get_text(m, "SELECT c39 FROM t WHERE id = 5"));
    assert_null(get_text(m, "SELECT c0 FROM t WHERE id = 5"));
    char *big = malloc(DECIDE_MEMO_MAX_KEY + 64);
    assert_non_null(big);
    snprintf(big, DECIDE_MEMO_MAX_KEY + 64, "SELECT %0*d", DECIDE_MEMO_MAX_KEY, 0);
    memcpy(big + 7, "aaaa", 4);   /* a long name, not a constant */
    put_text(m, big, "n");
    assert_null(get_text(m, big));   /* over DECIDE_MEMO_MAX_KEY: not kept */
    free(big);
    char *note = malloc(DECIDE_MEMO_MAX_BYTES / 4);
    memset(note, 'n', DECIDE_MEMO_MAX_BYTES / 4 - 1);
    note[DECIDE_MEMO_MAX_BYTES / 4 - 1] = 0;
    for (int i = 0; i < 8; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT d%d FROM t", i);
        put_text(m, sql, note);
        decide_memo_get_stats(m, &st);
        assert_true(st.bytes <= DECIDE_MEMO_MAX_BYTES);
    }
    assert_non_null(get_text(m, "SELECT d7 FROM t"));
    free(note);
    decide_memo_free(m);
    decide_memo_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bookkeeping),
        cmocka_unit_test(test_keeps),
        cmocka_unit_test(test_same_shape_same_decision),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
