/*
 * Unit tests for proxy/audit and `martgate audit` (proxy/cmd_audit): records
 * field by field through a real audit log in the three query_text modes, a
 * full queue in both modes, waiting and wake-up on the event loop, reopen
 * under load, close draining, write failures retried and never dropped,
 * config errors with file:line, and the review CLI on fixture files (plain
 * and gzip), its filters, summary and --follow across a rotation.
 *
 * `test_audit sink-driver CONFIG` is not a unit test: it is the small program
 * tests/integration/t_audit_sink.sh drives to exercise the warehouse sink
 * against a real PostgreSQL (commands on stdin, see sink_driver()).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pg_query.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "proxy/audit.h"
#include "proxy/jsonw.h"

int cmd_audit_main(int argc, char **argv);

static char dir[] = "/tmp/martgate-test-audit-XXXXXX";

/* ------------------------------------------------------------ helpers -- */

static char *path_in(const char *name)
{
    static char buf[8][512];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

static size_t count_lines(const char *path)
{
    char *s = slurp(path);
    size_t n = 0;
    for (char *p = s; *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

/* Every line of a file parsed; fails the test on a line that is not JSON. */
static json_t *read_records(const char *path)
{
    json_t *arr = json_array();
    char *s = slurp(path), *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *r = json_loads(line, 0, &e);
        if (!r)
            fail_msg("%s: not JSON: %s: %s", path, e.text, line);
        json_array_append_new(arr, r);
    }
    free(s);
    return arr;
}

static bool lookup_db(void *arg, const char *name, const char **conninfo, const char **password)
{
    (void)arg;
    if (strcmp(name, "app") != 0)
        return false;
    *conninfo = "host=127.0.0.1 port=1 dbname=app";
    *password = "pw";
    return true;
}

/* Opens an audit log from the "audit" member of a config text. */
static audit_log *open_log(const char *text, struct event_base *base, char *err, size_t errlen)
{
    json_doc *doc = json_doc_parse("test.json", text, strlen(text), err, errlen);
    if (!doc)
        return NULL;
    audit_log *a = audit_open(doc, json_object_get(json_doc_root(doc), "audit"), dir, base, lookup_db, NULL,
                              err, errlen);
    json_doc_free(doc);
    return a;
}

static audit_log *open_log_ok(const char *text, struct event_base *base)
{
    char err[1024] = "";
    audit_log *a = open_log(text, base, err, sizeof err);
    if (!a)
        fail_msg("audit_open: %s", err);
    return a;
}

static json_t *statement_record(const char *query, int index)
{
    return json_pack("{s:s, s:s, s:s, s:[s,s], s:s, s:i, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:[s], s:[s], "
                     "s:s, s:b, s:f, s:i, s:s}",
                     "event", "statement", "session", "42", "user", "alice", "groups", "analysts", "origination",
                     "client_addr", "127.0.0.1", "client_port", 5555, "application_name", "psql", "database", "app",
                     "end_user", "userID: 7", "statement_index", index, "kind", "select", "decision", "rewrite",
                     "rule", "mask-email", "reason", "email is masked for analysts", "relations", "mart.customers",
                     "datasets", "origination", "query", query, "rewritten", 1, "duration_ms", 1.25, "rows", 3,
                     "sqlstate", "00000");
}

static void assert_ts_format(const char *ts)
{
    regex_t re;
    assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
                             REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, ts, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("ts '%s' is not RFC 3339 UTC with microseconds", ts);
}

static char *fingerprint_of(const char *q)
{
    PgQueryFingerprintResult r = pg_query_fingerprint(q);
    char *s = r.error ? NULL : strdup(r.fingerprint_str);
    pg_query_free_fingerprint_result(r);
    return s;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Redirects fd (1 or 2) to a file until restore_fd. */
typedef struct {
    int fd, saved;
    char path[512];
} fd_capture;

static void capture_fd(fd_capture *c, int fd, const char *name)
{
    fflush(fd == 1 ? stdout : stderr);
    c->fd = fd;
    snprintf(c->path, sizeof c->path, "%s/%s", dir, name);
    c->saved = dup(fd);
    int f = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(f >= 0);
    dup2(f, fd);
    close(f);
}

static char *restore_fd(fd_capture *c)
{
    fflush(c->fd == 1 ? stdout : stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    return slurp(c->path);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* -------------------------------------------------------------- config -- */

static void expect_config_error(const char *text, const char *where, const char *what)
{
    char err[1024] = "";
    audit_log *a = open_log(text, NULL, err, sizeof err);
    if (a) {
        audit_close(a);
        fail_msg("accepted: %s", text);
    }
    if (!strstr(err, where) || !strstr(err, what))
        fail_msg("error '%s' lacks '%s' or '%s'", err, where, what);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_config_error("{\n \"audit\": {\n  \"file\": \"a.jsonl\",\n  \"qeue_size\": 5\n }\n}",
                        "test.json:4:", "audit: unknown key 'qeue_size'");
    expect_config_error("{\n \"audit\": {\n  \"file\": \"a.jsonl\",\n  \"query_text\": \"raw\"\n }\n}",
                        "test.json:4:", "audit.query_text: 'raw' is not one of normalized, full, none");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"queue_size\": 0}}", "test.json:1:",
                        "'queue_size' is 0, must be between 16");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"when_full\": \"drop\"}}", "test.json:1:",
                        "audit.when_full: 'drop' is not one of block, deny");
    expect_config_error("{\n \"audit\": {\"file\": \"a.jsonl\",\n  \"end_user_from\": [\"metabase-*\", 7]}}",
                        "test.json:3:", "'end_user_from'[1] must be a string");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"fsync_interval_ms\": -1}}", "test.json:1:",
                        "fsync_interval_ms");
    expect_config_error("{\"audit\": {\"query_text\": \"full\"}}", "test.json:1:", "missing required key 'file'");
    expect_config_error("{\"audit\": {\"file\": 7}}", "test.json:1:", "'file' must be a string");
    expect_config_error("{\"audit\": [1]}", "test.json:1:", "audit: must be an object");
    expect_config_error("{\n \"audit\": {\"file\": \"a.jsonl\",\n  \"warehouse\": {\"database\": \"nope\"}}}",
                        "test.json:3:", "audit.warehouse.database: 'nope' is not one of the config's databases");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"warehouse\": {\"database\": \"app\", "
                        "\"conninfo\": \"host=x\"}}}",
                        "test.json:1:", "give either \"database\"");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"warehouse\": {\"database\": \"app\", "
                        "\"password_file\": \"x\"}}}",
                        "test.json:1:", "password_file and password_env go with \"conninfo\"");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"warehouse\": {\"database\": \"app\", "
                        "\"table\": \"audit_events\"}}}",
                        "test.json:1:", "audit.warehouse.table: 'audit_events' is not schema.table");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"warehouse\": {\"database\": \"app\", "
                        "\"table\": \"gov.x;drop\"}}}",
                        "test.json:1:", "is not schema.table");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"warehouse\": {\"database\": \"app\", "
                        "\"batch_size\": 0}}}",
                        "test.json:1:", "'batch_size' is 0");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"warehouse\": {\"conninfo\": \"host=x\", "
                        "\"password_file\": \"missing.pass\"}}}",
                        "test.json:1:", "audit.warehouse.password_file: cannot open");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"warehouse\": {\"database\": \"app\", "
                        "\"spool_file\": \"a.jsonl\"}}}",
                        "test.json:1:", "must not be the audit file itself");
    expect_config_error("{\"audit\": {\"file\": \"a.jsonl\", \"warehouse\": {\"databse\": \"app\"}}}",
                        "test.json:1:", "audit.warehouse: unknown key 'databse'");
    /* the file itself cannot be opened: a readable error, no config location needed */
    char err[1024] = "";
    struct event_base *base = event_base_new();
    assert_null(open_log("{\"audit\": {\"file\": \"/nonexistent-dir/audit.jsonl\"}}", base, err, sizeof err));
    assert_non_null(strstr(err, "cannot open /nonexistent-dir/audit.jsonl"));
    event_base_free(base);
}

static void test_settings_and_noop(void **state)
{
    (void)state;
    char err[1024] = "";
    const char *text = "{\"audit\": {\"file\": \"s.jsonl\", \"warehouse\": {\"database\": \"app\"}}}";
    json_doc *doc = json_doc_parse("test.json", text, strlen(text), err, sizeof err);
    assert_non_null(doc);
    audit_settings *s = audit_settings_parse(doc, json_object_get(json_doc_root(doc), "audit"), dir, lookup_db,
                                             NULL, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_true(audit_settings_enabled(s));
    audit_settings *off = audit_settings_parse(doc, NULL, dir, NULL, NULL, err, sizeof err);
    assert_non_null(off);
    assert_false(audit_settings_enabled(off));
    const char *text2 = "{\"audit\": {\"file\": \"s.jsonl\", \"warehouse\": {\"database\": \"app\", "
                        "\"batch_size\": 500, \"table\": \"Governance.Audit_Events\"}}}";
    json_doc *doc2 = json_doc_parse("test2.json", text2, strlen(text2), err, sizeof err);
    audit_settings *same = audit_settings_parse(doc2, json_object_get(json_doc_root(doc2), "audit"), dir, lookup_db,
                                                NULL, err, sizeof err);
    assert_non_null(same);
    assert_true(audit_settings_same(s, same));   /* defaults spelled out; names fold to lower case */
    assert_false(audit_settings_same(s, off));
    assert_true(audit_settings_same(off, off));
    json_doc_free(doc2);
    const char *text3 = "{\"audit\": {\"file\": \"s.jsonl\", \"queue_size\": 100, "
                        "\"warehouse\": {\"database\": \"app\"}}}";
    doc2 = json_doc_parse("test3.json", text3, strlen(text3), err, sizeof err);
    audit_settings *other = audit_settings_parse(doc2, json_object_get(json_doc_root(doc2), "audit"), dir, lookup_db,
                                                 NULL, err, sizeof err);
    assert_false(audit_settings_same(s, other));
    audit_settings_free(other);
    audit_settings_free(same);
    audit_settings_free(off);
    audit_settings_free(s);
    json_doc_free(doc2);
    json_doc_free(doc);

    /* no "audit" section: a no-op log, never NULL */
    audit_log *a = open_log("{}", NULL, err, sizeof err);
    assert_non_null(a);
    assert_false(audit_enabled(a));
    assert_string_equal(audit_query_text_mode(a), "none");
    assert_int_equal(audit_submit(a, json_pack("{s:s}", "event", "statement")), AUDIT_OK);
    audit_reopen(a);
    audit_close(a);
    audit_close(NULL);
    assert_false(audit_enabled(NULL));
    assert_int_equal(audit_submit(NULL, json_object()), AUDIT_OK);

    char ts[32];
    audit_timestamp(ts);
    assert_ts_format(ts);
}

/* ------------------------------------------------------------- records -- */

static const char SECRET_QUERY[] =
    "SELECT email FROM mart.customers WHERE email = 'alice@example.com' AND id = 42";

/* One log per mode: the same records in, checked field by field out. */
static json_t *records_through(const char *mode, const char *file)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"audit\": {\"file\": \"%s\", \"query_text\": \"%s\", \"fsync_interval_ms\": 0}}",
             file, mode);
    struct event_base *base = event_base_new();
    audit_log *a = open_log_ok(cfg, base);
    assert_string_equal(audit_query_text_mode(a), mode);
    assert_true(audit_enabled(a));
    json_t *start = json_pack("{s:s, s:s, s:s, s:s, s:[s], s:s, s:i, s:s, s:s}", "ts", "2024-05-01T08:00:00.000001Z",
                              "event", "session_start", "session", "42", "user", "alice", "groups", "analysts",
                              "client_addr", "127.0.0.1", "client_port", 5555, "application_name", "psql",
                              "database", "app");
    assert_int_equal(audit_submit(a, start), AUDIT_OK);
    assert_int_equal(audit_submit(a, statement_record(SECRET_QUERY, 0)), AUDIT_OK);
    assert_int_equal(audit_submit(a, statement_record("SELEC 'bob@example.com' FROM", 1)), AUDIT_OK);
    assert_int_equal(audit_submit(a, json_pack("{s:s, s:s, s:s, s:s, s:i}", "event", "login_failed", "user", "eve",
                                               "reason", "token expired", "client_addr", "10.1.2.3", "client_port",
                                               40000)),
                     AUDIT_OK);
    assert_int_equal(audit_submit(a, json_pack("{s:s, s:s, s:s, s:f}", "event", "session_end", "session", "42",
                                               "user", "alice", "duration_ms", 12.5)),
                     AUDIT_OK);
    assert_true(audit_test_wait_idle(a, 5000));
    audit_stats st;
    audit_get_stats(a, &st);
    assert_int_equal(st.submitted, 5);
    assert_int_equal(st.written, 5);
    assert_int_equal(st.refused, 0);
    audit_close(a);
    event_base_free(base);
    return read_records(path_in(file));
}

static void check_statement_fields(json_t *r, int index)
{
    assert_string_equal(json_string_value(json_object_get(r, "event")), "statement");
    assert_string_equal(json_string_value(json_object_get(r, "session")), "42");
    assert_string_equal(json_string_value(json_object_get(r, "user")), "alice");
    json_t *g = json_object_get(r, "groups");
    assert_int_equal(json_array_size(g), 2);
    assert_string_equal(json_string_value(json_array_get(g, 0)), "analysts");
    assert_string_equal(json_string_value(json_array_get(g, 1)), "origination");
    assert_string_equal(json_string_value(json_object_get(r, "client_addr")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(r, "client_port")), 5555);
    assert_string_equal(json_string_value(json_object_get(r, "application_name")), "psql");
    assert_string_equal(json_string_value(json_object_get(r, "database")), "app");
    assert_string_equal(json_string_value(json_object_get(r, "end_user")), "userID: 7");
    assert_int_equal(json_integer_value(json_object_get(r, "statement_index")), index);
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "select");
    assert_string_equal(json_string_value(json_object_get(r, "decision")), "rewrite");
    assert_string_equal(json_string_value(json_object_get(r, "rule")), "mask-email");
    assert_string_equal(json_string_value(json_object_get(r, "reason")), "email is masked for analysts");
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "relations"), 0)), "mart.customers");
    assert_string_equal(json_string_value(json_array_get(json_object_get(r, "datasets"), 0)), "origination");
    assert_true(json_is_true(json_object_get(r, "rewritten")));
    assert_true(json_real_value(json_object_get(r, "duration_ms")) == 1.25);
    assert_int_equal(json_integer_value(json_object_get(r, "rows")), 3);
    assert_string_equal(json_string_value(json_object_get(r, "sqlstate")), "00000");
    assert_ts_format(json_string_value(json_object_get(r, "ts")));
}

static void check_common(json_t *recs)
{
    assert_int_equal(json_array_size(recs), 5);
    json_t *start = json_array_get(recs, 0);
    /* a ts given by the caller is kept; others are added at submit time */
    assert_string_equal(json_string_value(json_object_get(start, "ts")), "2024-05-01T08:00:00.000001Z");
    assert_string_equal(json_string_value(json_object_get(start, "event")), "session_start");
    assert_null(json_object_get(start, "fingerprint"));   /* no query, nothing computed */
    assert_null(json_object_get(start, "query"));
    check_statement_fields(json_array_get(recs, 1), 0);
    check_statement_fields(json_array_get(recs, 2), 1);
    json_t *lf = json_array_get(recs, 3);
    assert_string_equal(json_string_value(json_object_get(lf, "event")), "login_failed");
    assert_string_equal(json_string_value(json_object_get(lf, "reason")), "token expired");
    assert_int_equal(json_integer_value(json_object_get(lf, "client_port")), 40000);
    assert_ts_format(json_string_value(json_object_get(lf, "ts")));
    json_t *end = json_array_get(recs, 4);
    assert_string_equal(json_string_value(json_object_get(end, "event")), "session_end");
    assert_true(json_real_value(json_object_get(end, "duration_ms")) == 12.5);
}

static void test_records_normalized(void **state)
{
    (void)state;
    json_t *recs = records_through("normalized", "normalized.jsonl");
    check_common(recs);
    char *fp = fingerprint_of(SECRET_QUERY);
    json_t *s = json_array_get(recs, 1);
    assert_string_equal(json_string_value(json_object_get(s, "query")),
                        "SELECT email FROM mart.customers WHERE email = $1 AND id = $2");
    assert_string_equal(json_string_value(json_object_get(s, "fingerprint")), fp);
    assert_int_equal(strlen(fp), 16);
    assert_null(json_object_get(s, "query_unparsable"));
    json_t *bad = json_array_get(recs, 2);
    assert_true(json_is_null(json_object_get(bad, "query")));
    assert_true(json_is_null(json_object_get(bad, "fingerprint")));
    assert_true(json_is_true(json_object_get(bad, "query_unparsable")));
    /* no literal reaches the file */
    char *raw = slurp(path_in("normalized.jsonl"));
    assert_null(strstr(raw, "alice@example.com"));
    assert_null(strstr(raw, "bob@example.com"));
    assert_null(strstr(raw, "42 "));
    free(raw);
    free(fp);
    json_decref(recs);
}

static void test_records_full(void **state)
{
    (void)state;
    json_t *recs = records_through("full", "full.jsonl");
    check_common(recs);
    char *fp = fingerprint_of(SECRET_QUERY);
    json_t *s = json_array_get(recs, 1);
    assert_string_equal(json_string_value(json_object_get(s, "query")), SECRET_QUERY);
    assert_string_equal(json_string_value(json_object_get(s, "fingerprint")), fp);
    json_t *bad = json_array_get(recs, 2);
    assert_string_equal(json_string_value(json_object_get(bad, "query")), "SELEC 'bob@example.com' FROM");
    assert_true(json_is_null(json_object_get(bad, "fingerprint")));
    assert_true(json_is_true(json_object_get(bad, "query_unparsable")));
    free(fp);
    json_decref(recs);
}

static void test_records_none(void **state)
{
    (void)state;
    json_t *recs = records_through("none", "none.jsonl");
    check_common(recs);
    char *fp = fingerprint_of(SECRET_QUERY);
    json_t *s = json_array_get(recs, 1);
    assert_null(json_object_get(s, "query"));
    assert_string_equal(json_string_value(json_object_get(s, "fingerprint")), fp);
    json_t *bad = json_array_get(recs, 2);
    assert_null(json_object_get(bad, "query"));
    assert_true(json_is_null(json_object_get(bad, "fingerprint")));
    assert_true(json_is_true(json_object_get(bad, "query_unparsable")));
    char *raw = slurp(path_in("none.jsonl"));
    assert_null(strstr(raw, "example.com"));
    free(raw);
    free(fp);
    json_decref(recs);
}

/* ------------------------------------------------------------ the queue -- */

static void queue_full(const char *when_full, audit_status expect, const char *file)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"audit\": {\"file\": \"%s\", \"queue_size\": 16, \"when_full\": \"%s\"}}", file,
             when_full);
    struct event_base *base = event_base_new();
    audit_log *a = open_log_ok(cfg, base);
    audit_test_pause(a, true);
    for (int i = 0; i < 16; i++)
        assert_int_equal(audit_submit(a, statement_record("SELECT 1", i)), AUDIT_OK);
    json_t *extra = statement_record("SELECT 2", 16);
    assert_int_equal(audit_submit(a, extra), expect);
    assert_int_equal(audit_submit(a, extra), expect);   /* not taken: still ours */
    /* a session being freed hands over what it held, then its session_end:
     * both are taken beyond queue_size */
    audit_submit_always(a, extra);
    assert_int_equal(audit_submit(a, json_pack("{s:s, s:s}", "event", "session_end", "session", "42")), AUDIT_OK);
    audit_stats st;
    audit_get_stats(a, &st);
    assert_int_equal(st.submitted, 18);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.queued, 18);
    audit_test_pause(a, false);
    assert_true(audit_test_wait_idle(a, 5000));
    assert_int_equal(audit_submit(a, statement_record("SELECT 3", 17)), AUDIT_OK);   /* room again */
    audit_close(a);
    event_base_free(base);
    json_t *recs = read_records(path_in(file));
    assert_int_equal(json_array_size(recs), 19);
    /* in submission order */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(recs, 16), "statement_index")), 16);
    assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 17), "event")), "session_end");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(recs, 18), "statement_index")), 17);
    json_decref(recs);
}

static void test_queue_full_block(void **state)
{
    (void)state;
    queue_full("block", AUDIT_FULL_WAIT, "full-block.jsonl");
}

static void test_queue_full_deny(void **state)
{
    (void)state;
    queue_full("deny", AUDIT_FULL_DENY, "full-deny.jsonl");
}

typedef struct {
    int calls;
    audit_log *a;
    json_t *pending;     /* a record the "session" still has to submit */
    audit_status last;
} fake_session;

static void on_room(void *arg)
{
    fake_session *s = arg;
    s->calls++;
    if (s->pending) {
        s->last = audit_submit(s->a, s->pending);
        if (s->last == AUDIT_OK)
            s->pending = NULL;
        else
            audit_wait(s->a, on_room, s);
    }
}

static void loop_until(struct event_base *base, int *flag, int want, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    while (*flag < want && mono_ms() < end) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static void test_wait_and_wakeup(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    audit_log *a = open_log_ok("{\"audit\": {\"file\": \"wait.jsonl\", \"queue_size\": 16}}", base);

    /* room now: called on the next loop iteration, not from inside audit_wait */
    fake_session now = {.a = a};
    audit_wait(a, on_room, &now);
    assert_int_equal(now.calls, 0);
    loop_until(base, &now.calls, 1, 2000);
    assert_int_equal(now.calls, 1);

    audit_test_pause(a, true);
    for (int i = 0; i < 16; i++)
        assert_int_equal(audit_submit(a, statement_record("SELECT 1", i)), AUDIT_OK);
    fake_session s1 = {.a = a, .pending = statement_record("SELECT 'one'", 100)};
    fake_session s2 = {.a = a, .pending = statement_record("SELECT 'two'", 200)};
    fake_session gone = {.a = a, .pending = statement_record("SELECT 'gone'", 300)};
    assert_int_equal(audit_submit(a, s1.pending), AUDIT_FULL_WAIT);
    assert_int_equal(audit_submit(a, s2.pending), AUDIT_FULL_WAIT);
    assert_int_equal(audit_submit(a, gone.pending), AUDIT_FULL_WAIT);
    audit_wait(a, on_room, &s1);
    audit_wait(a, on_room, &s2);
    audit_wait(a, on_room, &gone);
    audit_wait(a, on_room, &s1);   /* again: replaces, not twice */
    /* a freed session cancels its wait */
    audit_wait_cancel(a, &gone);
    json_decref(gone.pending);
    gone.pending = NULL;
    for (int i = 0; i < 50; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    assert_int_equal(s1.calls, 0);   /* still full */
    assert_int_equal(s2.calls, 0);
    audit_test_pause(a, false);
    loop_until(base, &s2.calls, 1, 5000);
    loop_until(base, &s1.calls, 1, 5000);
    assert_int_equal(s1.calls, 1);
    assert_int_equal(s2.calls, 1);
    assert_int_equal(gone.calls, 0);
    assert_null(s1.pending);
    assert_null(s2.pending);
    assert_true(audit_test_wait_idle(a, 5000));
    audit_close(a);
    event_base_free(base);
    json_t *recs = read_records(path_in("wait.jsonl"));
    assert_int_equal(json_array_size(recs), 18);
    json_decref(recs);
}

static void test_close_drains(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    audit_log *a = open_log_ok("{\"audit\": {\"file\": \"drain.jsonl\", \"fsync_interval_ms\": 50}}", base);
    audit_test_pause(a, true);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(audit_submit(a, statement_record("SELECT $1::int", i)), AUDIT_OK);
    audit_close(a);   /* paused, yet everything is written */
    event_base_free(base);
    json_t *recs = read_records(path_in("drain.jsonl"));
    assert_int_equal(json_array_size(recs), 5000);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(recs, (size_t)i), "statement_index")), i);
    json_decref(recs);
}

typedef struct {
    audit_log *a;
    int n;
} load_arg;

static void *submit_load(void *arg)
{
    load_arg *l = arg;
    for (int i = 0; i < l->n; i++) {
        json_t *r = statement_record("SELECT * FROM t WHERE id = 7", i);
        while (audit_submit(l->a, r) != AUDIT_OK)
            usleep(200);
    }
    return NULL;
}

static void test_reopen_under_load(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    audit_log *a = open_log_ok("{\"audit\": {\"file\": \"rot.jsonl\", \"queue_size\": 1024}}", base);
    const int N = 40000;
    load_arg l = {a, N};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, submit_load, &l), 0);
    for (int k = 1; k <= 3; k++) {
        audit_stats st;
        do {
            usleep(500);
            audit_get_stats(a, &st);
        } while (st.submitted < (unsigned long long)(N * k / 4));
        char rotated[64];
        snprintf(rotated, sizeof rotated, "rot.jsonl.%d", k);
        assert_int_equal(rename(path_in("rot.jsonl"), path_in(rotated)), 0);
        audit_reopen(a);
    }
    pthread_join(th, NULL);
    audit_close(a);
    event_base_free(base);
    unsigned char *seen = calloc((size_t)N, 1);
    size_t total = 0;
    const char *files[] = {"rot.jsonl.1", "rot.jsonl.2", "rot.jsonl.3", "rot.jsonl"};
    for (int f = 0; f < 4; f++) {
        json_t *recs = read_records(path_in(files[f]));
        size_t i;
        json_t *r;
        json_array_foreach(recs, i, r) {
            json_int_t idx = json_integer_value(json_object_get(r, "statement_index"));
            assert_true(idx >= 0 && idx < N);
            assert_int_equal(seen[idx], 0);
            seen[idx] = 1;
        }
        total += json_array_size(recs);
        json_decref(recs);
    }
    assert_int_equal(total, N);
    /* the last file got records after the last rotation */
    assert_true(count_lines(path_in("rot.jsonl")) > 0);
    free(seen);
}

/* /dev/full: every write fails with ENOSPC. Nothing is dropped: the writer
 * keeps retrying, logging the count, and writes once the path is fixed and
 * reopened. */
static void test_write_failure_retried(void **state)
{
    (void)state;
    assert_int_equal(symlink("/dev/full", path_in("broken.jsonl")), 0);
    fd_capture cap;
    capture_fd(&cap, 2, "broken.stderr");
    struct event_base *base = event_base_new();
    audit_log *a = open_log_ok("{\"audit\": {\"file\": \"broken.jsonl\"}}", base);
    audit_test_pause(a, true);   /* one batch of 3 */
    for (int i = 0; i < 3; i++)
        assert_int_equal(audit_submit(a, statement_record("SELECT 1", i)), AUDIT_OK);
    audit_test_pause(a, false);
    audit_stats st;
    int64_t end = mono_ms() + 5000;
    do {
        usleep(10000);
        audit_get_stats(a, &st);
    } while (st.write_errors < 2 && mono_ms() < end);
    assert_true(st.write_errors >= 2);
    assert_int_equal(st.written, 0);
    /* the operator fixes the file and sends SIGUSR1 */
    assert_int_equal(unlink(path_in("broken.jsonl")), 0);
    audit_reopen(a);
    assert_true(audit_test_wait_idle(a, 10000));
    audit_get_stats(a, &st);
    assert_int_equal(st.written, 3);
    audit_close(a);
    event_base_free(base);
    char *err = restore_fd(&cap);
    if (!strstr(err, "cannot write 3 records to") || !strstr(err, "No space left on device"))
        fail_msg("stderr lacks the failure: %s", err);
    free(err);
    assert_int_equal(count_lines(path_in("broken.jsonl")), 3);
}

/* At shutdown, records that cannot be written go to stderr after the retries. */
static void test_close_unwritable_goes_to_stderr(void **state)
{
    (void)state;
    assert_int_equal(symlink("/dev/full", path_in("full2.jsonl")), 0);
    fd_capture cap;
    capture_fd(&cap, 2, "full2.stderr");
    struct event_base *base = event_base_new();
    audit_log *a = open_log_ok("{\"audit\": {\"file\": \"full2.jsonl\"}}", base);
    assert_int_equal(audit_submit(a, statement_record("SELECT 'x'", 1)), AUDIT_OK);
    assert_int_equal(audit_submit(a, json_pack("{s:s, s:s}", "event", "session_end", "session", "42")), AUDIT_OK);
    int64_t t0 = mono_ms();
    audit_close(a);
    int64_t took = mono_ms() - t0;
    event_base_free(base);
    char *err = restore_fd(&cap);
    size_t dumped = 0;
    for (char *p = err; (p = strstr(p, "martgate-audit-unwritten: {")); p++)
        dumped++;
    if (dumped != 2)
        fail_msg("expected 2 records on stderr, got %zu: %s", dumped, err);
    assert_non_null(strstr(err, "\"event\":\"session_end\""));
    assert_true(took >= AUDIT_CLOSE_RETRY_S * 1000 - 500);
    free(err);
}

/* ---------------------------------------------------------------- CLI -- */

static const char FIXTURE[] =
    "{\"ts\":\"2024-05-01T08:00:00.000001Z\",\"event\":\"session_start\",\"session\":\"s1\",\"user\":\"alice\","
    "\"groups\":[\"analysts\",\"origination\"],\"client_addr\":\"10.0.0.1\",\"client_port\":50000,"
    "\"application_name\":\"psql\",\"database\":\"app\"}\n"
    "{\"ts\":\"2024-05-01T08:00:01.000000Z\",\"event\":\"statement\",\"session\":\"s1\",\"user\":\"alice\","
    "\"groups\":[\"analysts\",\"origination\"],\"statement_index\":0,\"kind\":\"select\",\"decision\":\"allow\","
    "\"rule\":\"origination-read\",\"reason\":\"origination reads its mart\","
    "\"relations\":[\"origination_mart.funnel\"],\"datasets\":[\"origination\"],\"fingerprint\":\"aaaa\","
    "\"query\":\"SELECT * FROM origination_mart.funnel\",\"rewritten\":false,\"duration_ms\":1.5,\"rows\":10,"
    "\"sqlstate\":\"00000\"}\n"
    "{\"ts\":\"2024-05-01T08:00:02Z\",\"event\":\"statement\",\"session\":\"s1\",\"user\":\"alice\","
    "\"groups\":[\"analysts\",\"origination\"],\"statement_index\":0,\"kind\":\"select\",\"decision\":\"deny\","
    "\"rule\":\"default\",\"reason\":\"no rule grants read on dataset raw\",\"relations\":[\"raw.leads\"],"
    "\"datasets\":[\"raw\"],\"fingerprint\":\"bbbb\",\"query\":\"SELECT * FROM raw.leads WHERE id = $1\","
    "\"sqlstate\":\"42501\"}\n"
    "{\"ts\":\"2024-05-01T08:00:03Z\",\"event\":\"statement\",\"session\":\"s1\",\"user\":\"alice\","
    "\"groups\":[\"analysts\",\"origination\"],\"statement_index\":0,\"kind\":\"select\",\"decision\":\"deny\","
    "\"rule\":\"default\",\"reason\":\"no rule grants read on dataset raw\",\"relations\":[\"raw.leads\"],"
    "\"datasets\":[\"raw\"],\"fingerprint\":\"bbbb\",\"query\":\"SELECT * FROM raw.leads WHERE id = $1\","
    "\"sqlstate\":\"42501\"}\n"
    "this is not json\n"
    "[1,2]\n"
    "{\"ts\":\"2024-05-02T09:00:00Z\",\"event\":\"statement\",\"session\":\"s2\",\"user\":\"bob\","
    "\"groups\":[\"sales\"],\"statement_index\":0,\"kind\":\"select\",\"decision\":\"deny\",\"rule\":\"default\","
    "\"reason\":\"no rule grants read on dataset staging\",\"relations\":[\"staging.contracts\"],"
    "\"datasets\":[\"staging\"],\"fingerprint\":\"cccc\",\"query\":\"SELECT * FROM staging.contracts\"}\n"
    "{\"ts\":\"2024-05-02T09:00:01Z\",\"event\":\"statement\",\"session\":\"s3\",\"user\":\"metabase\","
    "\"end_user\":\"userID: 7\",\"groups\":[\"sales\"],\"statement_index\":0,\"kind\":\"select\","
    "\"decision\":\"rewrite\",\"rule\":\"sales-rows\",\"reason\":\"rows filtered by region\","
    "\"relations\":[\"sales_mart.orders\"],\"datasets\":[\"sales\"],\"fingerprint\":\"dddd\","
    "\"query\":\"SELECT count(*) FROM sales_mart.orders\",\"rewritten\":true}\n"
    "{\"ts\":\"2024-05-02T09:00:02Z\",\"event\":\"login_failed\",\"user\":\"mallory\",\"client_addr\":\"10.0.0.9\","
    "\"client_port\":1,\"reason\":\"token expired\"}\n"
    "{\"ts\":\"2024-05-03T00:00:00Z\",\"event\":\"session_end\",\"session\":\"s1\",\"user\":\"alice\","
    "\"duration_ms\":1000}\n";

typedef struct {
    int rc;
    char *out, *err;
} cli_result;

/* Runs `martgate audit ARGS...` (NULL-terminated) with stdin from stdin_path
 * (or left alone), capturing stdout and stderr. */
static cli_result run_cli(const char *stdin_path, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "audit";
    va_list ap;
    va_start(ap, stdin_path);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    int saved_in = -1;
    if (stdin_path) {
        saved_in = dup(0);
        int f = open(stdin_path, O_RDONLY);
        assert_true(f >= 0);
        dup2(f, 0);
        close(f);
    }
    fd_capture o, e;
    capture_fd(&o, 1, "cli.out");
    capture_fd(&e, 2, "cli.err");
    cli_result r;
    r.rc = cmd_audit_main(argc, argv);
    r.out = restore_fd(&o);
    r.err = restore_fd(&e);
    if (saved_in >= 0) {
        dup2(saved_in, 0);
        close(saved_in);
    }
    return r;
}

static size_t nlines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void cli_free(cli_result *r)
{
    free(r->out);
    free(r->err);
}

/* Counts the records `--json` prints for a set of filters. */
#define JSON_COUNT(expect, ...)                                                                                   \
    do {                                                                                                          \
        cli_result r_ = run_cli(NULL, "--json", __VA_ARGS__, fx, NULL);                                           \
        if (r_.rc != 0 || nlines(r_.out) != (size_t)(expect))                                                     \
            fail_msg("%s: rc %d, %zu records (expected %d)\n%s%s", #__VA_ARGS__, r_.rc, nlines(r_.out), expect, \
                     r_.out, r_.err);                                                                             \
        cli_free(&r_);                                                                                            \
    } while (0)

static void write_gz(const char *path, const char *text)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
    assert_int_equal(gzclose(g), Z_OK);
}

static void test_cli_filters(void **state)
{
    (void)state;
    const char *fx = path_in("fixture.jsonl");
    write_file(fx, FIXTURE);

    cli_result r = run_cli(NULL, "--json", fx, NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(nlines(r.out), 8);
    /* bad lines: reported with file:line, skipped */
    char where5[600], where6[600];
    snprintf(where5, sizeof where5, "%s:5: ", fx);
    snprintf(where6, sizeof where6, "%s:6: not a JSON object", fx);
    if (!strstr(r.err, where5) || !strstr(r.err, where6) || !strstr(r.err, "2 bad lines skipped"))
        fail_msg("stderr: %s", r.err);
    /* --json prints the lines as they are in the log */
    assert_non_null(strstr(r.out, "{\"ts\":\"2024-05-02T09:00:02Z\",\"event\":\"login_failed\""));
    cli_free(&r);

    JSON_COUNT(5, "--user", "alice");
    JSON_COUNT(1, "--user", "userID: 7");            /* the end user Metabase names */
    JSON_COUNT(6, "--user", "alice", "--user", "bob");
    JSON_COUNT(3, "--decision", "deny");
    JSON_COUNT(2, "--user", "alice", "--decision", "deny");
    JSON_COUNT(4, "--decision", "deny", "--decision", "rewrite");
    JSON_COUNT(2, "--dataset", "raw");
    JSON_COUNT(2, "--relation", "leads");
    JSON_COUNT(2, "--relation", "raw.leads");
    JSON_COUNT(0, "--relation", "other.leads");
    JSON_COUNT(2, "--group", "sales");
    JSON_COUNT(4, "--group", "origination");
    JSON_COUNT(5, "--session", "s1");
    JSON_COUNT(1, "--event", "login_failed");
    JSON_COUNT(4, "--event", "statement", "--since", "2024-05-01T08:00:02Z");
    JSON_COUNT(3, "--since", "2024-05-02", "--until", "2024-05-02");   /* a bare --until date: the whole day */
    JSON_COUNT(2, "--since", "2024-05-01T08:00:01Z", "--until", "2024-05-01T08:00:03Z");   /* until exclusive */
    JSON_COUNT(6, "--since", "2024-05-01T10:00:02+02:00");
    JSON_COUNT(1, "--until", "2024-05-01T08:00:00.5Z");
    JSON_COUNT(2, "--limit", "2");

    /* stdin when no FILE */
    r = run_cli(fx, "--json", "--decision", "deny", NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(nlines(r.out), 3);
    assert_non_null(strstr(r.err, "<stdin>:5: "));
    cli_free(&r);

    /* usage errors and unreadable files */
    r = run_cli(NULL, "--decision", "maybe", fx, NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "use allow, rewrite or deny"));
    cli_free(&r);
    r = run_cli(NULL, "--since", "yesterday", fx, NULL);
    assert_int_equal(r.rc, 2);
    cli_free(&r);
    r = run_cli(NULL, "--since", "2024-05-02", "--until", "2024-05-01", fx, NULL);
    assert_int_equal(r.rc, 2);
    cli_free(&r);
    r = run_cli(NULL, "--follow", fx, fx, NULL);
    assert_int_equal(r.rc, 2);
    cli_free(&r);
    r = run_cli(NULL, "--json", path_in("missing.jsonl"), fx, NULL);
    assert_int_equal(r.rc, 1);
    assert_int_equal(nlines(r.out), 8);   /* the others are still read */
    assert_non_null(strstr(r.err, "missing.jsonl: No such file or directory"));
    cli_free(&r);
    r = run_cli(NULL, "--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: martgate audit"));
    cli_free(&r);
}

static void test_cli_gzip_and_many_files(void **state)
{
    (void)state;
    const char *fx = path_in("fixture.jsonl");
    write_file(fx, FIXTURE);
    const char *gz = path_in("fixture.jsonl.1.gz");
    write_gz(gz, FIXTURE);
    cli_result r = run_cli(NULL, "--json", "--decision", "deny", gz, NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(nlines(r.out), 3);
    char where[600];
    snprintf(where, sizeof where, "%s:6: not a JSON object", gz);
    assert_non_null(strstr(r.err, where));
    cli_free(&r);
    /* rotated (compressed) first, then the live file */
    r = run_cli(NULL, "--json", "--event", "session_end", gz, fx, NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(nlines(r.out), 2);
    cli_free(&r);
    /* a corrupt gzip file is an error, not a crash */
    const char *bad = path_in("bad.gz");
    static const char garbage[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage-garbage";
    FILE *f = fopen(bad, "wb");
    fwrite(garbage, 1, sizeof garbage - 1, f);
    fclose(f);
    r = run_cli(NULL, "--json", bad, NULL);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "bad.gz: "));
    cli_free(&r);
    /* a compressed file cut short: what was there is read, and the status says it */
    char *whole = slurp(gz);
    struct stat st;
    assert_int_equal(stat(gz, &st), 0);
    const char *cut = path_in("cut.gz");
    f = fopen(cut, "wb");
    fwrite(whole, 1, (size_t)st.st_size - 12, f);   /* without the trailer and a little data */
    fclose(f);
    free(whole);
    r = run_cli(NULL, "--json", cut, NULL);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "compressed data ends early"));
    assert_true(nlines(r.out) >= 7);
    cli_free(&r);
}

static void test_cli_table(void **state)
{
    (void)state;
    const char *fx = path_in("fixture.jsonl");
    write_file(fx, FIXTURE);
    cli_result r = run_cli(NULL, "--decision", "deny", "--decision", "rewrite", fx, NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(nlines(r.out), 5);   /* header + 4 */
    char *save = NULL, *text = strdup(r.out);
    char *header = strtok_r(text, "\n", &save);
    assert_true(strncmp(header, "TIME", 4) == 0);
    const char *cols[] = {"EVENT", "SESSION", "USER", "DECISION", "RULE", "DATASETS", "DETAIL"};
    size_t pos[7];
    for (int c = 0; c < 7; c++) {
        char *p = strstr(header, cols[c]);
        assert_non_null(p);
        pos[c] = (size_t)(p - header);
    }
    int rows = 0;
    for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save), rows++) {
        /* every column starts under its header, after two spaces */
        for (int c = 0; c < 7; c++) {
            assert_true(strlen(line) > pos[c]);
            assert_true(line[pos[c]] != ' ');
            assert_true(line[pos[c] - 1] == ' ' && line[pos[c] - 2] == ' ');
        }
    }
    assert_int_equal(rows, 4);
    assert_non_null(strstr(r.out, "metabase (userID: 7)"));
    assert_non_null(strstr(r.out, "no rule grants read on dataset raw | SELECT * FROM raw.leads WHERE id = $1"));
    free(text);
    cli_free(&r);
}

static void test_cli_summary(void **state)
{
    (void)state;
    const char *fx = path_in("fixture.jsonl");
    write_file(fx, FIXTURE);
    cli_result r = run_cli(NULL, "--summary", "--json", fx, NULL);
    assert_int_equal(r.rc, 0);
    json_error_t e;
    json_t *s = json_loads(r.out, 0, &e);
    if (!s)
        fail_msg("summary is not JSON: %s\n%s", e.text, r.out);
    assert_int_equal(json_integer_value(json_object_get(s, "records")), 8);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s, "events"), "statement")), 5);
    json_t *udd = json_object_get(s, "by_user_dataset_decision"), *row;
    size_t i;
    int found = 0;
    json_array_foreach(udd, i, row) {
        const char *u = json_string_value(json_object_get(row, "user"));
        const char *d = json_string_value(json_object_get(row, "dataset"));
        const char *dec = json_string_value(json_object_get(row, "decision"));
        json_int_t n = json_integer_value(json_object_get(row, "count"));
        if (!strcmp(u, "alice") && !strcmp(d, "raw") && !strcmp(dec, "deny") && n == 2)
            found++;
        if (!strcmp(u, "alice") && !strcmp(d, "origination") && !strcmp(dec, "allow") && n == 1)
            found++;
        if (!strcmp(u, "metabase (userID: 7)") && !strcmp(d, "sales") && !strcmp(dec, "rewrite") && n == 1)
            found++;
    }
    assert_int_equal(json_array_size(udd), 4);
    assert_int_equal(found, 3);
    json_t *top = json_object_get(s, "top_denied_fingerprints");
    assert_int_equal(json_array_size(top), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(top, 0), "fingerprint")), "bbbb");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(top, 0), "count")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(top, 0), "reason")),
                        "no rule grants read on dataset raw");
    json_decref(s);
    cli_free(&r);

    r = run_cli(NULL, "--summary", "--top", "1", fx, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "8 records"));
    assert_non_null(strstr(r.out, "USER"));
    assert_non_null(strstr(r.out, "bbbb"));
    assert_null(strstr(r.out, "cccc"));   /* --top 1 */
    cli_free(&r);
}

static void test_cli_line_limit(void **state)
{
    (void)state;
    const char *fx = path_in("long.jsonl");
    char *big = malloc(5000);
    memset(big, 'x', 4999);
    big[4999] = 0;
    FILE *f = fopen(fx, "w");
    fprintf(f, "{\"event\":\"statement\",\"user\":\"a\"}\n{\"event\":\"statement\",\"query\":\"%s\"}\n"
               "{\"event\":\"statement\",\"user\":\"b\"}\n{\"event\":\"statement\",\"user\":\"c\"}",
            big);   /* the last line has no newline */
    fclose(f);
    free(big);
    cli_result r = run_cli(NULL, "--json", "--max-line-bytes", "1000", fx, NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(nlines(r.out), 3);
    char where[600];
    snprintf(where, sizeof where, "%s:2: line longer than 1000 bytes; skipped", fx);
    if (!strstr(r.err, where))
        fail_msg("stderr: %s", r.err);
    cli_free(&r);
    r = run_cli(NULL, "--json", fx, NULL);   /* the default limit is far above */
    assert_int_equal(nlines(r.out), 4);
    cli_free(&r);
}

typedef struct {
    char *argv[8];
    int rc;
} follow_arg;

static void *run_follow(void *arg)
{
    follow_arg *f = arg;
    f->rc = cmd_audit_main(6, f->argv);
    return NULL;
}

static void append(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_cli_follow_rotation(void **state)
{
    (void)state;
    const char *live = path_in("live.jsonl");
    write_file(live, "{\"event\":\"statement\",\"statement_index\":1}\n");
    fd_capture o;
    capture_fd(&o, 1, "follow.out");
    follow_arg fa = {.argv = {"audit", "--follow", "--json", "--limit", "5", (char *)live, NULL}};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_follow, &fa), 0);
    usleep(400000);
    append(live, "{\"event\":\"statement\",\"statement_index\":2}\n{\"event\":\"statement\",");
    usleep(400000);
    append(live, "\"statement_index\":3}\n");   /* a line written in two parts is one record */
    usleep(100000);
    /* logrotate renames; the writer still adds to the old file until it reopens; then the new file */
    assert_int_equal(rename(live, path_in("live.jsonl.1")), 0);
    append(path_in("live.jsonl.1"), "{\"event\":\"statement\",\"statement_index\":4}\n");
    usleep(400000);
    write_file(live, "{\"event\":\"statement\",\"statement_index\":5}\n");
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    int jr = pthread_timedjoin_np(th, NULL, &until);
    char *out = restore_fd(&o);
    if (jr != 0)
        fail_msg("--follow did not finish: %s", out);
    assert_int_equal(fa.rc, 0);
    json_t *idx = json_array();
    char *save = NULL;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *r = json_loads(l, 0, NULL);
        assert_non_null(r);
        json_array_append(idx, json_object_get(r, "statement_index"));
        json_decref(r);
    }
    char *got = json_dumps(idx, JSON_COMPACT);
    assert_string_equal(got, "[1,2,3,4,5]");
    free(got);
    json_decref(idx);
    free(out);
}

/* ------------------------------------------------------- sink driver -- */

/* `test_audit sink-driver CONFIG`: opens the "audit" section of CONFIG and
 * reads commands from stdin, one per line, answering one line each:
 *   submit N TAG   N statement records (statement_index 0..N-1, rule TAG)
 *   submit-bad     one record whose ts the warehouse refuses
 *   stats          "submitted W written X inserted Y pending Z connected C"
 *   wait SECONDS   until nothing is pending for the warehouse (or timeout)
 *   close          audit_close, then exit */
static int sink_driver(const char *config_path)
{
    char err[1024];
    json_doc *doc = json_doc_load(config_path, 1 << 20, err, sizeof err);
    if (!doc) {
        fprintf(stderr, "sink-driver: %s\n", err);
        return 1;
    }
    char *cdir = strdup(config_path), *slash = strrchr(cdir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(cdir, ".");
    struct event_base *base = event_base_new();
    audit_log *a = audit_open(doc, json_object_get(json_doc_root(doc), "audit"), cdir, base, NULL, NULL, err,
                              sizeof err);
    json_doc_free(doc);
    free(cdir);
    if (!a) {
        fprintf(stderr, "sink-driver: %s\n", err);
        event_base_free(base);
        return 1;
    }
    char line[256];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        int n;
        char tag[64];
        double secs;
        if (sscanf(line, "submit %d %63s", &n, tag) == 2) {
            for (int i = 0; i < n; i++) {
                json_t *r = json_pack("{s:s, s:s, s:s, s:[s], s:i, s:s, s:s, s:s, s:[s], s:[s], s:s, s:i}",
                                      "event", "statement", "session", tag, "user", "driver", "groups", "g",
                                      "statement_index", i, "decision", "allow", "rule", tag, "kind", "select",
                                      "relations", "s.t", "datasets", "d", "query", "SELECT * FROM s.t WHERE x = 1",
                                      "client_port", 5432);
                while (audit_submit(a, r) != AUDIT_OK)
                    usleep(1000);
            }
            printf("ok\n");
        } else if (strncmp(line, "submit-bad", 10) == 0) {
            /* a record whose ts the warehouse cannot take (it should never happen) */
            json_t *r = json_pack("{s:s, s:s, s:s}", "ts", "not a time", "event", "statement", "session", "bad");
            while (audit_submit(a, r) != AUDIT_OK)
                usleep(1000);
            printf("ok\n");
        } else if (strncmp(line, "stats", 5) == 0) {
            audit_stats st;
            audit_get_stats(a, &st);
            printf("submitted %llu written %llu inserted %llu pending %llu connected %d spooled %llu replayed %llu\n",
                   st.submitted, st.written, st.warehouse_inserted, st.warehouse_pending, st.warehouse_connected,
                   st.warehouse_spooled, st.warehouse_replayed);
        } else if (sscanf(line, "wait %lf", &secs) == 1) {
            audit_test_wait_idle(a, (int)(secs * 1000));
            int64_t end = mono_ms() + (int64_t)(secs * 1000);
            audit_stats st;
            do {
                audit_get_stats(a, &st);
                if (st.warehouse_pending == 0)
                    break;
                usleep(50000);
            } while (mono_ms() < end);
            printf("pending %llu\n", st.warehouse_pending);
        } else if (strncmp(line, "close", 5) == 0) {
            break;
        } else {
            printf("unknown command\n");
        }
    }
    audit_close(a);
    event_base_free(base);
    printf("closed\n");
    return 0;
}

/* jsonw: whatever bytes a client sent, a record is one line of valid JSON
 * that reads back as the same text (invalid UTF-8 as U+FFFD). */
static void test_jsonw_escaping(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *back;   /* what jansson reads back */
    } cases[] = {
#define C(in, back) {in, sizeof in - 1, back}
        C("plain", "plain"),
        C("quote \" and \\ backslash", "quote \" and \\ backslash"),
        C("line\nfeed\r\ttab\b\f", "line\nfeed\r\ttab\b\f"),
        C("ctl \x01\x1f del \x7f", "ctl \x01\x1f del \x7f"),
        C("nul \0 inside", NULL),
        C("utf-8 \xc3\xa7\xc3\xa3o \xe2\x82\xac \xf0\x9f\x98\x80", "utf-8 \xc3\xa7\xc3\xa3o \xe2\x82\xac \xf0\x9f\x98\x80"),
        C("bad \xff byte", "bad \xef\xbf\xbd byte"),
        C("cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"),
        C("surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
        C("overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd"),
#undef C
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        jsonw w = {0};
        jw_raw(&w, "{", 1);
        jw_strn(&w, "v", cases[i].in, cases[i].len);
        jw_int(&w, "n", -42);
        jw_ms(&w, "ms", 1.2345678);
        jw_bool(&w, "b", true);
        jw_null(&w, "z");
        static const char *const list[] = {"a", "\"b\""};
        jw_strs(&w, "l", list, 2);
        jw_raw(&w, "}", 1);
        assert_false(w.oom);
        assert_null(memchr(w.s, '\n', w.len));   /* one line */
        json_error_t je;
        json_t *o = json_loadb(w.s, w.len, JSON_ALLOW_NUL, &je);
        if (!o)
            fail_msg("case %zu: not valid JSON (%s): %s", i, je.text, w.s);
        json_t *v = json_object_get(o, "v");
        if (cases[i].back) {
            assert_string_equal(json_string_value(v), cases[i].back);
        } else {
            assert_int_equal(json_string_length(v), cases[i].len);
            assert_memory_equal(json_string_value(v), cases[i].in, cases[i].len);
        }
        assert_int_equal(json_integer_value(json_object_get(o, "n")), -42);
        assert_true(json_real_value(json_object_get(o, "ms")) == 1.235);
        assert_true(json_is_true(json_object_get(o, "b")));
        assert_true(json_is_null(json_object_get(o, "z")));
        assert_string_equal(json_string_value(json_array_get(json_object_get(o, "l"), 1)), "\"b\"");
        json_decref(o);
        jw_free(&w);
    }
    /* numbers, written by hand */
    jsonw w = {0};
    jw_int(&w, "a", 0);
    jw_int(&w, "b", INT64_MIN);
    jw_int(&w, "c", 1234567890123LL);
    jw_ms(&w, "d", 0.0004);
    jw_ms(&w, "e", 1234.5678);
    jw_ms(&w, "f", -3);
    jw_ms(&w, "g", 0.05);
    assert_string_equal(w.s, "\"a\":0,\"b\":-9223372036854775808,\"c\":1234567890123,\"d\":0.000,"
                             "\"e\":1234.568,\"f\":0.000,\"g\":0.050");
    jw_free(&w);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "sink-driver") == 0)
        return sink_driver(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonw_escaping),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_settings_and_noop),
        cmocka_unit_test(test_records_normalized),
        cmocka_unit_test(test_records_full),
        cmocka_unit_test(test_records_none),
        cmocka_unit_test(test_queue_full_block),
        cmocka_unit_test(test_queue_full_deny),
        cmocka_unit_test(test_wait_and_wakeup),
        cmocka_unit_test(test_close_drains),
        cmocka_unit_test(test_reopen_under_load),
        cmocka_unit_test(test_write_failure_retried),
        cmocka_unit_test(test_close_unwritable_goes_to_stderr),
        cmocka_unit_test(test_cli_filters),
        cmocka_unit_test(test_cli_gzip_and_many_files),
        cmocka_unit_test(test_cli_table),
        cmocka_unit_test(test_cli_summary),
        cmocka_unit_test(test_cli_line_limit),
        cmocka_unit_test(test_cli_follow_rotation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
