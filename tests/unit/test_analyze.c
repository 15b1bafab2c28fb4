/*
 * test_analyze: policy/analyze over the corpus in corpus_analyze.h. Each
 * case's facts are rendered to short strings (statements, relations,
 * functions, settings, roles, flags) and compared exactly, so a case reads
 * like what a reviewer expects to see. Set ANALYZE_CORPUS_PRINT=1 to print
 * the actual rendering of every case (to review a new case).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/analyze.h"

#include "corpus_analyze.h"

static bool fake_catalog(void *ctx, const char *schema, const char *name)
{
    (void)ctx;
    static const char *const known[][2] = {
        {"public", "accounts"}, {"raw", "leads"},     {"staging", "leads"},
        {"pg_temp", "scratch"}, {"mart_a", "orders"}, {"mart_a", "accounts"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(known[i][0], schema) && !strcmp(known[i][1], name))
            return true;
    return false;
}

static const analyze_context *context_for(corpus_ctx c)
{
    static const char *const path_public[] = {"public"};
    static const char *const path_raw[] = {"raw", "public"};
    static const char *const path_user[] = {"$user", "public"};
    static const char *const path_rawcat[] = {"raw", "pg_catalog"};
    static const char *const path_catalog[] = {"mart_a", "public"};
    static analyze_context ctx[6];
    ctx[CTX_DEFAULT] = (analyze_context){.database = "warehouse", .search_path = path_public,
                                         .n_search_path = 1, .session_user = "metabase"};
    ctx[CTX_RAW] = (analyze_context){.database = "warehouse", .search_path = path_raw,
                                     .n_search_path = 2, .session_user = "metabase"};
    ctx[CTX_USER] = (analyze_context){.database = "warehouse", .search_path = path_user,
                                      .n_search_path = 2, .session_user = "metabase"};
    ctx[CTX_RAWCAT] = (analyze_context){.database = "warehouse", .search_path = path_rawcat,
                                        .n_search_path = 2, .session_user = "metabase"};
    ctx[CTX_CATALOG] = (analyze_context){.database = "warehouse", .search_path = path_catalog,
                                         .n_search_path = 2, .session_user = "metabase",
                                         .relation_exists = fake_catalog};
    return c == CTX_NONE ? NULL : &ctx[c];
}

/* ---- rendering -------------------------------------------------------- */

typedef struct text {
    char buf[4096];
    size_t len;
} text;

static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n < sizeof t->buf - t->len ? (size_t)n : sizeof t->buf - t->len - 1;
}

static void sep(text *t)
{
    if (t->len)
        put(t, "; ");
}

static const char *usage_name(analyze_rel_usage u)
{
    switch (u) {
    case ANALYZE_USE_FROM: return "";
    case ANALYZE_USE_TARGET: return "/target";
    case ANALYZE_USE_COPY: return "/copy";
    case ANALYZE_USE_DDL: return "/ddl";
    case ANALYZE_USE_UTILITY: return "/utility";
    case ANALYZE_USE_NAME: return "/name";
    }
    return "/?";
}

static const char *resolution_mark(analyze_resolution r)
{
    switch (r) {
    case ANALYZE_RES_QUALIFIED: return "";
    case ANALYZE_RES_BUILTIN: return "~builtin";
    case ANALYZE_RES_CATALOG: return "~catalog";
    case ANALYZE_RES_UNRESOLVED: return "";
    case ANALYZE_RES_NOT_FOUND: return "~notfound";
    case ANALYZE_RES_OTHER_DATABASE: return "~otherdb";
    }
    return "~?";
}

static void render_stmts(const analysis *a, text *t)
{
    for (size_t i = 0; i < a->n_stmts; i++) {
        const analysis_stmt *s = &a->stmts[i];
        sep(t);
        put(t, "%s %s", analyze_stmt_kind_name(s->kind), s->tag);
        if (!s->objects_complete)
            put(t, " +incomplete");
        if (s->locks_rows)
            put(t, " +locks");
        if (s->explain_analyze)
            put(t, " +analyze");
        if (s->prepare_name)
            put(t, " prepare=%s", s->prepare_name);
        if (s->execute_name)
            put(t, " execute=%s", s->execute_name);
        if (s->deallocate_name)
            put(t, " deallocate=%s", s->deallocate_name);
        if (s->deallocate_all)
            put(t, " deallocate=ALL");
        if (s->cursor_name)
            put(t, " cursor=%s", s->cursor_name);
    }
}

static void render_relations(const analysis *a, text *t)
{
    for (size_t i = 0; i < a->n_relations; i++) {
        const analysis_relation *r = &a->relations[i];
        sep(t);
        if (r->catalog)
            put(t, "%s.", r->catalog);
        put(t, "%s.%s %s%s%s%s", r->schema ? r->schema : "?", r->name,
            (r->access & ANALYZE_ACCESS_READ) ? "r" : "",
            (r->access & ANALYZE_ACCESS_WRITE) ? "w" : "", usage_name(r->usage),
            resolution_mark(r->resolution));
        if (r->resolution == ANALYZE_RES_UNRESOLVED) {
            put(t, "{");
            for (size_t k = 0; k < r->n_candidates; k++)
                put(t, "%s%s", k ? "," : "", r->candidates[k]);
            put(t, "}");
        }
        if (r->alias)
            put(t, " +alias=%s%s", r->alias, r->has_column_aliases ? "()" : "");
        if (r->only)
            put(t, " +only");
        if (r->tablesample)
            put(t, " +sample");
        if (r->table_stmt)
            put(t, " +table");
    }
    for (size_t i = 0; i < a->n_schemas; i++) {
        sep(t);
        put(t, "schema %s", a->schemas[i].name);
    }
    for (size_t i = 0; i < a->n_colrefs; i++) {
        const analysis_colref *c = &a->colrefs[i];
        sep(t);
        put(t, "column %s%s%s.%s.", c->catalog ? c->catalog : "", c->catalog ? "." : "",
            c->schema, c->table);
    }
}

static void render_functions(const analysis *a, text *t)
{
    for (size_t i = 0; i < a->n_functions; i++) {
        const analysis_function *f = &a->functions[i];
        sep(t);
        if (f->schema)
            put(t, f->qualified ? "%s." : "(%s).", f->schema);
        put(t, "%s/%d", f->name, f->n_args);
        if (f->in_from)
            put(t, " +from");
        if (f->in_call)
            put(t, " +call");
    }
}

static void render_settings(const analysis *a, text *t)
{
    for (size_t i = 0; i < a->n_settings; i++) {
        const analysis_setting *s = &a->settings[i];
        sep(t);
        if (s->is_local)
            put(t, "local ");
        if (s->via_function)
            put(t, "fn ");
        const char *name = s->name ? s->name : "?";
        switch (s->action) {
        case ANALYZE_SET_VALUE: put(t, "%s=%s", name, s->value ? s->value : "?"); break;
        case ANALYZE_SET_DEFAULT: put(t, "%s=DEFAULT", name); break;
        case ANALYZE_SET_FROM_CURRENT: put(t, "%s FROM CURRENT", name); break;
        case ANALYZE_SET_RESET: put(t, "RESET %s", name); break;
        case ANALYZE_SET_RESET_ALL: put(t, "RESET ALL"); break;
        case ANALYZE_SET_MULTI: put(t, "MULTI %s=%s", name, s->value ? s->value : "?"); break;
        case ANALYZE_SET_DISCARD: put(t, "DISCARD %s", name); break;
        }
        if (s->schemas) {
            put(t, " [");
            for (size_t k = 0; k < s->n_schemas; k++)
                put(t, "%s%s", k ? "," : "", s->schemas[k]);
            put(t, "]");
        }
    }
}

static void render_roles(const analysis *a, text *t)
{
    for (size_t i = 0; i < a->n_roles; i++) {
        const analysis_role_change *r = &a->roles[i];
        sep(t);
        if (r->is_local)
            put(t, "local ");
        if (r->via_function)
            put(t, "fn ");
        switch (r->action) {
        case ANALYZE_ROLE_SET: put(t, "SET ROLE %s", r->role ? r->role : "?"); break;
        case ANALYZE_ROLE_RESET: put(t, "RESET ROLE"); break;
        case ANALYZE_ROLE_SET_SESSION_AUTH:
            put(t, "SESSION AUTHORIZATION %s", r->role ? r->role : "?");
            break;
        case ANALYZE_ROLE_RESET_SESSION_AUTH: put(t, "RESET SESSION AUTHORIZATION"); break;
        }
    }
}

static void render_flags(const analysis *a, text *t)
{
    for (size_t i = 0; i < a->n_flags; i++) {
        const analysis_flag *f = &a->flags[i];
        sep(t);
        put(t, "%s", analyze_flag_kind_name(f->kind));
        if (f->detail)
            put(t, "(%s)", f->detail);
        assert_non_null(f->reason);
    }
}

typedef struct rendering {
    text stmts, relations, functions, settings, roles, flags, error;
} rendering;

static void render_case(const analyze_case *c, rendering *out)
{
    memset(out, 0, sizeof *out);
    analysis *a = NULL;
    analyze_error err;
    if (analyze_sql(c->sql, context_for(c->ctx), &a, &err) != 0) {
        put(&out->error, "%s@%d", err.sqlstate, err.cursor_position);
        assert_true(err.message[0] != '\0');
        assert_null(a);
        return;
    }
    render_stmts(a, &out->stmts);
    render_relations(a, &out->relations);
    render_functions(a, &out->functions);
    render_settings(a, &out->settings);
    render_roles(a, &out->roles);
    render_flags(a, &out->flags);
    analysis_free(a);
}

static void print_c_string(const char *field, const text *t)
{
    if (!t->len)
        return;
    printf("     .%s = \"", field);
    for (const char *p = t->buf; *p; p++) {
        if (*p == '"' || *p == '\\')
            putchar('\\');
        putchar(*p);
    }
    printf("\",\n");
}

static void check_field(const analyze_case *c, const char *field, const char *expected,
                        const text *actual, int *failures)
{
    const char *want = expected ? expected : "";
    if (strcmp(want, actual->buf) != 0) {
        print_message("case %s\n  %s expected: %s\n  %s actual:   %s\n", c->sql, field, want,
                      field, actual->buf);
        (*failures)++;
    }
}

static void test_corpus(void **state)
{
    (void)state;
    size_t n = sizeof analyze_corpus / sizeof analyze_corpus[0];
    bool print = getenv("ANALYZE_CORPUS_PRINT") != NULL;
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        const analyze_case *c = &analyze_corpus[i];
        rendering r;
        render_case(c, &r);
        if (print) {
            printf("    {.sql = \"");
            for (const char *p = c->sql; *p; p++) {
                if (*p == '"' || *p == '\\')
                    putchar('\\');
                if (*p == '\n') {
                    printf("\\n");
                    continue;
                }
                putchar(*p);
            }
            printf("\",\n");
            static const char *const ctx_names[] = {"CTX_DEFAULT", "CTX_RAW", "CTX_USER",
                                                     "CTX_RAWCAT", "CTX_CATALOG", "CTX_NONE"};
            if (c->ctx)
                printf("     .ctx = %s,\n", ctx_names[c->ctx]);
            print_c_string("stmts", &r.stmts);
            print_c_string("relations", &r.relations);
            print_c_string("functions", &r.functions);
            print_c_string("settings", &r.settings);
            print_c_string("roles", &r.roles);
            print_c_string("flags", &r.flags);
            print_c_string("error", &r.error);
            printf("    },\n");
            continue;
        }
        check_field(c, "stmts", c->stmts, &r.stmts, &failures);
        check_field(c, "relations", c->relations, &r.relations, &failures);
        check_field(c, "functions", c->functions, &r.functions, &failures);
        check_field(c, "settings", c->settings, &r.settings, &failures);
        check_field(c, "roles", c->roles, &r.roles, &failures);
        check_field(c, "flags", c->flags, &r.flags, &failures);
        check_field(c, "error", c->error, &r.error, &failures);
    }
    print_message("%zu corpus cases, %d mismatches\n", n, failures);
    assert_int_equal(failures, 0);
    assert_true(n >= 150);
}

/* ---- focused tests ---------------------------------------------------- */

static void test_statement_ranges(void **state)
{
    (void)state;
    const char *sql = "SELECT 1; /* two */ SELECT * FROM raw.a ;\n-- trailing";
    analysis *a;
    assert_int_equal(analyze_sql(sql, NULL, &a, NULL), 0);
    assert_int_equal(a->n_stmts, 2);
    assert_int_equal(a->stmts[0].location, 0);
    assert_int_equal(a->stmts[0].length, 8);
    assert_int_equal(a->stmts[1].location, 9);
    assert_int_equal(a->stmts[1].length, (int)(strchr(sql + 10, ';') - sql) - 9);
    assert_int_equal(a->relations[0].location, (int)(strstr(sql, "raw.a") - sql));
    assert_int_equal(a->sql_length, strlen(sql));
    analysis_free(a);
}

static void test_syntax_error_position(void **state)
{
    (void)state;
    analysis *a = (analysis *)1;
    analyze_error err;
    assert_int_equal(analyze_sql("SELECT * FORM t", NULL, &a, &err), -1);
    assert_null(a);
    assert_string_equal(err.sqlstate, "42601");
    assert_int_equal(err.cursor_position, 10);
    assert_non_null(strstr(err.message, "syntax error at or near \"FORM\""));
}

static void test_too_long(void **state)
{
    (void)state;
    size_t n = ANALYZE_MAX_SQL_BYTES + 1;
    char *sql = malloc(n + 1);
    assert_non_null(sql);
    memset(sql, ' ', n);
    memcpy(sql, "SELECT 1", 8);
    sql[n] = '\0';
    analysis *a;
    analyze_error err;
    assert_int_equal(analyze_sql(sql, NULL, &a, &err), -1);
    assert_string_equal(err.sqlstate, "54000");
    free(sql);
}

static void test_empty_text(void **state)
{
    (void)state;
    analysis *a;
    assert_int_equal(analyze_sql("", NULL, &a, NULL), 0);
    assert_int_equal(a->n_stmts, 0);
    analysis_free(a);
    assert_int_equal(analyze_sql(" ; -- nothing\n", NULL, &a, NULL), 0);
    assert_int_equal(a->n_stmts, 0);
    analysis_free(a);
}

static void test_deep_nesting_is_flagged_or_refused(void **state)
{
    (void)state;
    /* 3000 nested scalar subqueries: either the parser refuses them, or
     * the walker flags them; never a silent pass */
    size_t depth = 3000;
    size_t len = depth * strlen("(SELECT ") + 1 + depth + 32;
    char *sql = malloc(len);
    assert_non_null(sql);
    strcpy(sql, "SELECT ");
    for (size_t i = 0; i < depth; i++)
        strcat(sql, "(SELECT ");
    strcat(sql, "1");
    for (size_t i = 0; i < depth; i++)
        strcat(sql, ")");
    analysis *a = NULL;
    analyze_error err;
    int rc = analyze_sql(sql, NULL, &a, &err);
    if (rc == 0) {
        bool flagged = false;
        for (size_t i = 0; i < a->n_flags; i++)
            flagged |= a->flags[i].kind == ANALYZE_FLAG_TOO_DEEP ||
                       a->flags[i].kind == ANALYZE_FLAG_UNSUPPORTED;
        assert_true(flagged || a->n_functions == 0);
        analysis_free(a);
    } else {
        assert_true(err.message[0] != '\0');
    }
    free(sql);
}

static void test_many_relations(void **state)
{
    (void)state;
    /* arena growth: 2000 relations in one statement */
    size_t n = 2000;
    char *sql = malloc(n * 24 + 32);
    assert_non_null(sql);
    strcpy(sql, "SELECT 1 FROM ");
    char item[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(item, sizeof item, "%sschema_%zu.t_%zu", i ? ", " : "", i % 7, i);
        strcat(sql, item);
    }
    analysis *a;
    assert_int_equal(analyze_sql(sql, NULL, &a, NULL), 0);
    assert_int_equal(a->n_relations, n);
    assert_string_equal(a->relations[1999].name, "t_1999");
    assert_string_equal(a->relations[1999].schema, "schema_4");
    analysis_free(a);
    free(sql);
}

static void test_fingerprint_and_normalize(void **state)
{
    (void)state;
    uint64_t f1, f2;
    char h1[17], h2[17], err[256];
    assert_int_equal(analyze_fingerprint("SELECT * FROM t WHERE id = 1", &f1, h1, err, sizeof err),
                     0);
    assert_int_equal(analyze_fingerprint("select *  from t where id = 42", &f2, h2, err,
                                         sizeof err),
                     0);
    assert_true(f1 == f2);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 16);
    assert_int_equal(analyze_fingerprint("SELEC", &f1, h1, err, sizeof err), -1);
    char *norm = NULL;
    assert_int_equal(analyze_normalize("SELECT * FROM t WHERE a = 'secret' AND b = 2", &norm,
                                       err, sizeof err),
                     0);
    assert_string_equal(norm, "SELECT * FROM t WHERE a = $1 AND b = $2");
    free(norm);
    assert_int_equal(analyze_normalize("SELECT 'unterminated", &norm, err, sizeof err), -1);
    assert_null(norm);
}

/* Normalized text and shape key: one scan, every constant blanked. */
static void shape_expect(const char *sql, const char *normalized, bool decidable)
{
    analyze_shape sh;
    analyze_error e;
    assert_int_equal(analyze_shape_of(sql, &sh, &e), 0);
    assert_string_equal(sh.normalized, normalized);
    assert_int_equal(sh.normalized_len, strlen(normalized));
    assert_true(sh.decidable == decidable);
    analyze_shape_clear(&sh);
}

static bool same_shape(const char *a, const char *b)
{
    analyze_shape x, y;
    analyze_error e;
    assert_int_equal(analyze_shape_of(a, &x, &e), 0);
    assert_int_equal(analyze_shape_of(b, &y, &e), 0);
    bool same = x.key_len == y.key_len && memcmp(x.key, y.key, x.key_len) == 0;
    assert_true(!same || x.hash == y.hash);
    analyze_shape_clear(&x);
    analyze_shape_clear(&y);
    return same;
}

static void test_shape(void **state)
{
    (void)state;
    /* every kind of constant; numbering continues after the text's own $n */
    shape_expect("SELECT 1, 1.5, 1e9, 'a', E'b\\'c', $$d'$$, $q$e$q$, B'101', X'ff', U&'d\\0061t', $2",
                 "SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $2", true);
    shape_expect("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;",
                 "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", true);
    /* a string continued on the next line is one constant */
    shape_expect("SELECT 'a'\n   'b' FROM t", "SELECT $1 FROM t", true);
    shape_expect("SELECT -1, INTERVAL '1 day', DATE '2020-01-01'", "SELECT -$1, INTERVAL $2, DATE $3", true);
    /* names, quoted names and comments are not constants */
    shape_expect("SELECT \"it's\" FROM \"Raw\".t -- who's 'x'\n/* 'y' */ WHERE a = 'ção'",
                 "SELECT \"it's\" FROM \"Raw\".t -- who's 'x'\n/* 'y' */ WHERE a = $1", true);
    shape_expect("SELECT 'secret@example.com' AS e; SELECT 2", "SELECT $1 AS e; SELECT $2", true);
    /* UESCAPE: the constant decides what the name is */
    shape_expect("SELECT * FROM U&\"r!0061w\" UESCAPE '!'.leads", "SELECT * FROM U&\"r!0061w\" UESCAPE $1.leads", false);

    assert_true(same_shape("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = 42"));
    assert_true(same_shape("SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = 'it''s'"));
    /* a constant of another type, or a real parameter, is another shape */
    assert_false(same_shape("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = '1'"));
    assert_false(same_shape("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = $1"));
    assert_false(same_shape("SELECT 'x', $1", "SELECT $2, $1"));
    /* names are kept as written: another case is another shape */
    assert_false(same_shape("SELECT * FROM raw.t", "SELECT * FROM Raw.t"));
    assert_false(same_shape("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = 1 "));

    analyze_shape sh;
    analyze_error e;
    assert_int_equal(analyze_shape_of("SELECT 'unterminated", &sh, &e), -1);
    assert_string_equal(e.sqlstate, "42601");
    assert_int_equal(analyze_shape_of("SELECT $$never closed", &sh, &e), -1);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(analyze_is_pg_catalog_relation("pg_class"));
    assert_true(analyze_is_pg_catalog_relation("pg_stat_activity"));
    assert_false(analyze_is_pg_catalog_relation("tables"));
    assert_false(analyze_is_pg_catalog_relation("pg_nothing"));
    assert_string_equal(analyze_stmt_kind_name(ANALYZE_STMT_DDL), "DDL");
    assert_string_equal(analyze_flag_kind_name(ANALYZE_FLAG_COPY_PROGRAM), "copy_program");
}

static void test_reset_search_path_context(void **state)
{
    (void)state;
    static const char *const path[] = {"mart_a"};
    static const char *const reset[] = {"mart_b", "public"};
    analyze_context ctx = {.database = "warehouse", .search_path = path, .n_search_path = 1,
                           .reset_search_path = reset, .n_reset_search_path = 2};
    analysis *a;
    assert_int_equal(analyze_sql("SELECT * FROM t; RESET search_path; SELECT * FROM t", &ctx,
                                 &a, NULL),
                     0);
    assert_int_equal(a->n_relations, 2);
    assert_int_equal(a->relations[0].n_candidates, 1);
    assert_string_equal(a->relations[0].candidates[0], "mart_a");
    assert_int_equal(a->relations[1].n_candidates, 2);
    assert_string_equal(a->relations[1].candidates[0], "mart_b");
    analysis_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_statement_ranges),
        cmocka_unit_test(test_syntax_error_position),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_empty_text),
        cmocka_unit_test(test_deep_nesting_is_flagged_or_refused),
        cmocka_unit_test(test_many_relations),
        cmocka_unit_test(test_fingerprint_and_normalize),
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_reset_search_path_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
