/*
 * admin_console: martgate's own answers on the admin pseudo-database (see
 * admin_console.h). Simple query protocol only, as PgBouncer's console.
 */
#include "proxy/admin_console.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "proxy/metrics.h"
#include "proxy/pgwire.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/audit_trail.h"

#define ADMIN_MAX_QUERY 8192

bool admin_console_database(const session *s)
{
    return s->cfg->admin_database && s->database && strcmp(s->cfg->admin_database, s->database) == 0;
}

bool admin_console_allowed(const session *s)
{
    for (size_t i = 0; i < s->ident.ngroups; i++)
        for (size_t k = 0; k < s->cfg->n_admin_groups; k++)
            if (strcmp(s->ident.groups[i], s->cfg->admin_groups[k]) == 0)
                return true;
    return false;
}

static const char *operator_name(const session *s)
{
    return s->ident.user ? s->ident.user : s->user ? s->user : "?";
}

/* One audit record per login and command: who, from where, what, and how it ended. */
typedef struct {
    uint64_t id;
    const char *user;
} admin_target;

static void audit_admin(session *s, const char *command, const char *result, const admin_target *target)
{
    if (!audit_enabled(s->wk->audit))
        return;
    json_t *rec = json_pack("{sssIssssss}", "event", "admin", "session", (json_int_t)s->id, "user", operator_name(s),
                            "client", s->client_addr, "command", command);
    if (!rec)
        return;
    json_object_set_new(rec, "result", json_string(result));
    if (target) {
        json_object_set_new(rec, "target_session", json_integer((json_int_t)target->id));
        json_object_set_new(rec, "target_user", json_string(target->user ? target->user : ""));
    }
    audit_submit_always(s->wk->audit, rec);
}

void admin_console_start(session *s)
{
    struct evbuffer *out = conn_out(&s->client);
    pgw_auth_request(out, 0);
    pgw_parameter_status(out, "server_version", "15.0 (martgate admin console)");
    pgw_parameter_status(out, "server_encoding", "UTF8");
    pgw_parameter_status(out, "client_encoding", "UTF8");
    pgw_parameter_status(out, "DateStyle", "ISO, MDY");
    pgw_parameter_status(out, "integer_datetimes", "on");
    pgw_parameter_status(out, "standard_conforming_strings", "on");
    pgw_parameter_status(out, "application_name", s->application_name ? s->application_name : "");
    pgw_ready_for_query(out, 'I');
    session_login_timer_end(s);
    session_set_state(s, SS_ADMIN);
    server_login_done(s->wk->srv, s);
    s->wk->metrics.logins[MG_LOGIN_OK]++;
    session_log(s, LOG_INFO, "admin console login");
    audit_admin(s, "login", "ok", NULL);
}

/* ---- answers ------------------------------------------------------------ */

static void rows_begin(session *s, const char *const *cols, size_t n)
{
    pgw_row_description(conn_out(&s->client), cols, n);
}

static void row(session *s, const char *const *vals, size_t n)
{
    pgw_data_row(conn_out(&s->client), vals, n);
}

static void rows_end(session *s, size_t n)
{
    char tag[32];
    snprintf(tag, sizeof tag, "SHOW %zu", n);
    pgw_command_complete(conn_out(&s->client), tag);
}

static void iso_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* SHOW SESSIONS: each worker copies its sessions' rows on its own thread. */
enum { SESSION_COLS = 11 };
typedef struct {
    uint64_t id;
    char *vals[SESSION_COLS];
} session_row;
typedef struct {
    session_row *rows;
    size_t n, cap;
    bool oom;
} session_rows;

static void collect_sessions(worker *w, void *arg)
{
    session_rows *out = arg;
    for (const session *x = w->sessions; x; x = x->next) {
        if (x->state == SS_DEAD)
            continue;
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 32;
            session_row *r = realloc(out->rows, cap * sizeof *r);
            if (!r) {
                out->oom = true;
                return;
            }
            out->rows = r;
            out->cap = cap;
        }
        char id[24], client[96], since[32], groups[512], wk[12];
        snprintf(id, sizeof id, "%llu", (unsigned long long)x->id);
        snprintf(wk, sizeof wk, "%u", w->index);
        snprintf(client, sizeof client, "%s:%d", x->client_addr, x->client_port);
        iso_time(x->connected_at, since, sizeof since);
        size_t off = 0;
        groups[0] = 0;
        for (size_t i = 0; i < x->ident.ngroups && off < sizeof groups; i++)
            off += (size_t)snprintf(groups + off, sizeof groups - off, "%s%s", i ? "," : "", x->ident.groups[i]);
        const char *user = x->state >= SS_CONNECTING ? (x->ident.user ? x->ident.user : x->user) : x->user;
        const char *vals[SESSION_COLS] = {id, user, trail_end_user(x), x->state >= SS_CONNECTING ? groups : NULL, client,
                                          x->database, x->application_name, session_state_name(x->state), since,
                                          x->last_decision, wk};
        session_row *r = &out->rows[out->n++];
        r->id = x->id;
        for (size_t i = 0; i < SESSION_COLS; i++) {
            r->vals[i] = vals[i] ? strdup(vals[i]) : NULL;
            out->oom |= vals[i] && !r->vals[i];
        }
    }
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const session_row *)a)->id, y = ((const session_row *)b)->id;
    return x < y ? -1 : x > y;
}

static void show_sessions(session *s)
{
    static const char *const cols[SESSION_COLS] = {"id", "user", "end_user", "groups", "client", "database",
                                                   "application", "state", "since", "last_decision",
                                                   "worker"};
    session_rows rows = {0};
    server_each_worker(s->wk->srv, collect_sessions, &rows);
    qsort(rows.rows, rows.n, sizeof *rows.rows, by_id);
    rows_begin(s, cols, SESSION_COLS);
    for (size_t i = 0; i < rows.n; i++)
        row(s, (const char *const *)rows.rows[i].vals, SESSION_COLS);
    rows_end(s, rows.n);
    for (size_t i = 0; i < rows.n; i++)
        for (size_t k = 0; k < SESSION_COLS; k++)
            free(rows.rows[i].vals[k]);
    free(rows.rows);
    if (rows.oom)
        session_log(s, LOG_ERROR, "SHOW SESSIONS: out of memory, some sessions are missing");
}

/* The exposition /metrics serves, as rows (metric, labels, value): one
 * piece of code for both. */
static void show_stats(session *s)
{
    static const char *const cols[] = {"metric", "labels", "value"};
    server *srv = s->wk->srv;
    metrics_info info = {.version = MARTGATE_VERSION, .pg_query_version = "", .openssl_version = ""};
    char hash[65];
    server_metrics_info(srv, &info, hash);
    server_snapshot snap;
    struct evbuffer *b = evbuffer_new();
    rows_begin(s, cols, 3);
    size_t n = 0;
    if (b && server_snapshot_take(srv, &snap) == 0) {
        if (metrics_write(b, snap.ptrs, snap.n, &srv->metric_databases, &srv->metric_datasets, NULL, 0, &info) == 0) {
            char *line;
            size_t len;
            while ((line = evbuffer_readln(b, &len, EVBUFFER_EOL_LF))) {
                if (line[0] != '#' && line[0]) {
                    char *sp = strrchr(line, ' ');
                    if (sp) {
                        *sp = 0;
                        char *brace = strchr(line, '{');
                        const char *labels = "";
                        if (brace) {
                            *brace = 0;
                            labels = brace + 1;
                            brace[strlen(brace + 1)] = 0;   /* the closing brace */
                        }
                        if (strncmp(line, "martgate_build_info", 19) != 0) {
                            const char *vals[] = {line, labels, sp + 1};
                            row(s, vals, 3);
                            n++;
                        }
                    }
                }
                free(line);
            }
        }
        server_snapshot_free(&snap);
    }
    if (b)
        evbuffer_free(b);
    rows_end(s, n);
}

/* A conninfo as it may be shown: password=... (quoted or not) and the
 * password of a URI's user:password@ removed. */
static void redact_conninfo(const char *in, char *out, size_t len)
{
    size_t o = 0;
    const char *p = in;
    const char *uri = strstr(in, "://");
    while (*p && o + 1 < len) {
        if (uri && p == uri + 3) {   /* postgresql://user:secret@host */
            const char *at = strchr(p, '@'), *colon = strchr(p, ':');
            if (at && colon && colon < at) {
                while (p < colon && o + 1 < len)
                    out[o++] = *p++;
                o += (size_t)snprintf(out + o, len - o, ":[hidden]");
                p = at;
                continue;
            }
        }
        if ((p == in || isspace((unsigned char)p[-1])) && strncasecmp(p, "password", 8) == 0) {
            const char *q = p + 8;
            while (isspace((unsigned char)*q))
                q++;
            if (*q == '=') {
                q++;
                while (isspace((unsigned char)*q))
                    q++;
                if (*q == '\'') {
                    for (q++; *q && *q != '\''; q++)
                        if (*q == '\\' && q[1])
                            q++;
                    if (*q)
                        q++;
                } else {
                    while (*q && !isspace((unsigned char)*q))
                        q++;
                }
                o += (size_t)snprintf(out + o, len - o, "password=[hidden]");
                p = q;
                continue;
            }
        }
        out[o++] = *p++;
    }
    out[o < len ? o : len - 1] = 0;
}

static void show_databases(session *s)
{
    static const char *const cols[] = {"name", "warehouse", "sessions", "ready", "last_error"};
    server *srv = s->wk->srv;
    const config *cfg = s->wk->cfg;
    server_snapshot snap;
    bool counted = server_snapshot_take(srv, &snap) == 0;
    rows_begin(s, cols, 5);
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        const config_database *db = &cfg->databases[i];
        char wh[1024], count[16], last_error[200];
        redact_conninfo(db->conninfo, wh, sizeof wh);
        unsigned k = metrics_name(&srv->metric_databases, db->name);
        snprintf(count, sizeof count, "%d", counted && k < METRICS_OTHER ? snap.sessions_ready_by_db[k] : 0);
        double at = server_warehouse_state(srv, k, last_error, sizeof last_error);
        bool ready = at > 0 && clock_mono_s() - at <= cfg->ready_warehouse_s;
        const char *vals[] = {db->name, wh, count, ready ? "yes" : "no", last_error[0] ? last_error : NULL};
        row(s, vals, 5);
    }
    rows_end(s, cfg->ndatabases);
    if (counted)
        server_snapshot_free(&snap);
}

static void show_policy(session *s)
{
    static const char *const cols[] = {"path", "sha256", "loaded_at", "summary", "last_reload_error"};
    server *srv = s->wk->srv;
    const config *cfg = s->wk->cfg;
    char at[32], summary[256] = "", last_error[1024];
    pthread_mutex_lock(&srv->mu);
    iso_time((time_t)srv->policy_loaded_at, at, sizeof at);
    snprintf(last_error, sizeof last_error, "%s", srv->last_reload_error);
    pthread_mutex_unlock(&srv->mu);
    if (cfg->policy)
        policy_summary(cfg->policy, summary, sizeof summary);
    rows_begin(s, cols, 5);
    const char *vals[] = {cfg->policy_path, cfg->policy ? cfg->policy_sha256 : NULL, at,
                          cfg->policy ? summary : "no policy configured: every authenticated statement is allowed",
                          last_error[0] ? last_error : NULL};
    row(s, vals, 5);
    rows_end(s, 1);
}

static void show_config(session *s)
{
    static const char *const cols[] = {"key", "value"};
    const config *cfg = s->wk->cfg;
    char listen[512] = "", buf[16][64];
    for (size_t i = 0, off = 0; i < cfg->nlisten && off < sizeof listen; i++)
        off += (size_t)snprintf(listen + off, sizeof listen - off, "%s%s", i ? ", " : "", cfg->listen[i]);
    long long nums[] = {(long long)cfg->ndatabases, cfg->max_clients, cfg->max_pending_logins,
                        cfg->max_pending_per_address, (long long)cfg->max_message_bytes, cfg->login_timeout_s,
                        cfg->shutdown_timeout_s, cfg->ready_warehouse_s};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
        snprintf(buf[i], sizeof buf[i], "%lld", nums[i]);
    const char *rows[][2] = {
        {"config_file", cfg->path},
        {"listen", listen},
        {"tls", cfg->ssl_ctx ? (cfg->allow_plaintext ? "optional" : "required") : "off"},
        {"databases", buf[0]},
        {"policy", cfg->policy_path ? cfg->policy_path : "(none)"},
        {"deny_hint", cfg->deny_hint ? cfg->deny_hint : "(none)"},
        {"hash_mask_key", cfg->hash_key ? "(set)" : "(none)"},
        {"audit", audit_enabled(s->wk->audit) ? audit_query_text_mode(s->wk->audit) : "off"},
        {"limits.max_clients", buf[1]},
        {"limits.max_pending_logins", buf[2]},
        {"limits.max_pending_per_address", buf[3]},
        {"limits.max_message_bytes", buf[4]},
        {"limits.login_timeout_seconds", buf[5]},
        {"limits.shutdown_timeout_seconds", buf[6]},
        {"log_level", log_level_name((log_level)cfg->log_level)},
        {"metrics.listen", cfg->metrics_listen ? cfg->metrics_listen : "(off)"},
        {"metrics.token", cfg->metrics_token ? "(set)" : "(none)"},
        {"metrics.ready_warehouse_seconds", buf[7]},
        {"admin.database", cfg->admin_database},
    };
    size_t n = sizeof rows / sizeof *rows;
    rows_begin(s, cols, 2);
    for (size_t i = 0; i < n; i++)
        row(s, rows[i], 2);
    rows_end(s, n);
}

static void show_help(session *s)
{
    static const char *const cols[] = {"command", "what it does"};
    static const char *const rows[][2] = {
        {"SHOW SESSIONS", "every client session: id, user, end user, groups, client, database, state, since, last decision, worker"},
        {"SHOW STATS", "the counters /metrics serves"},
        {"SHOW DATABASES", "the configured warehouses (no password), their sessions and readiness"},
        {"SHOW POLICY", "the policy's path, SHA-256, load time and the last reload error"},
        {"SHOW CONFIG", "the running configuration (secrets shown as (set))"},
        {"RELOAD", "read the configuration and policy again (as SIGHUP)"},
        {"KILL SESSION id", "end that session with 57P01 (audited with your name)"},
    };
    rows_begin(s, cols, 2);
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        row(s, rows[i], 2);
    rows_end(s, sizeof rows / sizeof *rows);
}

static void error(session *s, const char *sqlstate, const char *msg, const char *hint)
{
    pg_error e = {.severity = "ERROR", .sqlstate = sqlstate, .message = msg, .hint = hint};
    pgw_error(conn_out(&s->client), &e);
}

/* ---- KILL SESSION across workers ---------------------------------------- */

typedef struct {
    uint64_t id;
    worker *owner;               /* the worker that runs it, or NULL */
    char user[256];
} kill_find;

static void find_session(worker *w, void *arg)
{
    kill_find *f = arg;
    const session *t = worker_find_by_id(w, f->id);
    if (!t || t->state == SS_CLOSING)
        return;
    f->owner = w;
    snprintf(f->user, sizeof f->user, "%s", t->ident.user ? t->ident.user : t->user ? t->user : "");
}

typedef struct {
    uint64_t id, by_session;
    char operator[256];
} kill_msg;

/* On the target's worker: ends it with 57P01, if it is still there. */
static void kill_session(worker *w, void *arg)
{
    kill_msg *k = arg;
    session *t = worker_find_by_id(w, k->id);
    if (t && t->state != SS_CLOSING) {
        char detail[300];
        snprintf(detail, sizeof detail, "Ended from martgate's admin console by %s.", k->operator);
        session_log(t, LOG_WARNING, "killed from the admin console by %s (session %llu)", k->operator,
                    (unsigned long long)k->by_session);
        pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_ADMIN_SHUTDOWN,
                      .message = "terminating connection due to administrator command", .detail = detail};
        session_close(t, &e);
    }
    free(k);
}

/* ---- commands -------------------------------------------------------------- */

/* Splits a command into at most 3 words (lower-cased), false when longer. */
static bool words(char *cmd, char *w[3], size_t *n)
{
    *n = 0;
    for (char *t = strtok(cmd, " \t\r\n"); t; t = strtok(NULL, " \t\r\n")) {
        if (*n == 3)
            return false;
        w[(*n)++] = t;
    }
    for (size_t i = 0; i < *n && i < 2; i++)
        for (char *c = w[i]; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    return true;
}

static bool run_command(session *s, const char *text)
{
    char cmd[ADMIN_MAX_QUERY];
    snprintf(cmd, sizeof cmd, "%s", text);
    char *w[3];
    size_t n;
    bool ok = words(cmd, w, &n);
    const char *hint = "SHOW HELP lists the commands";
    if (ok && n == 2 && !strcmp(w[0], "show")) {
        if (!strcmp(w[1], "sessions"))
            show_sessions(s);
        else if (!strcmp(w[1], "stats"))
            show_stats(s);
        else if (!strcmp(w[1], "databases"))
            show_databases(s);
        else if (!strcmp(w[1], "policy"))
            show_policy(s);
        else if (!strcmp(w[1], "config"))
            show_config(s);
        else if (!strcmp(w[1], "help"))
            show_help(s);
        else
            ok = false;
        if (ok)
            audit_admin(s, text, "ok", NULL);
    } else if (ok && n == 1 && !strcmp(w[0], "reload")) {
        char err[1024];
        if (server_reload(s->wk->srv, err, sizeof err) == 0) {
            pgw_command_complete(conn_out(&s->client), "RELOAD");
            audit_admin(s, text, "ok", NULL);
        } else {
            error(s, "F0000", err, "the running configuration stays");
            audit_admin(s, text, "failed", NULL);
            return false;
        }
    } else if (ok && n == 3 && !strcmp(w[0], "kill") && !strcmp(w[1], "session")) {
        char *end;
        unsigned long long id = strtoull(w[2], &end, 10);
        kill_find f = {.id = id};
        if (*w[2] && !*end)
            server_each_worker(s->wk->srv, find_session, &f);
        if (!f.owner) {
            error(s, "42704", "no such session (SHOW SESSIONS lists them)", NULL);
            audit_admin(s, text, "no such session", NULL);
            return false;
        }
        if (f.owner == s->wk && id == s->id) {
            error(s, "55000", "this is your own session: \\q ends it", NULL);
            audit_admin(s, text, "own session", NULL);
            return false;
        }
        kill_msg *k = calloc(1, sizeof *k);
        if (!k) {
            error(s, "53200", "out of memory", NULL);
            return false;
        }
        k->id = id;
        k->by_session = s->id;
        snprintf(k->operator, sizeof k->operator, "%s", operator_name(s));
        admin_target t = {id, f.user};
        audit_admin(s, text, "ok", &t);
        worker_post(f.owner, kill_session, k, free);
        pgw_command_complete(conn_out(&s->client), "KILL");
        return true;
    } else {
        ok = false;
    }
    if (!ok) {
        char msg[300];
        snprintf(msg, sizeof msg, "the admin console does not know \"%.200s\"", text);
        error(s, "42601", msg, hint);
        audit_admin(s, text, "unknown command", NULL);
    }
    return ok;
}

/* A Query: its commands (split at ';', none of them holds one) in order,
 * up to the first error. */
static void run_query(session *s, char *q)
{
    bool any = false;
    for (char *c = q, *semi; c; c = semi ? semi + 1 : NULL) {
        semi = strchr(c, ';');
        if (semi)
            *semi = 0;
        while (isspace((unsigned char)*c))
            c++;
        size_t l = strlen(c);
        while (l && isspace((unsigned char)c[l - 1]))
            c[--l] = 0;
        if (!*c)
            continue;
        any = true;
        if (!run_command(s, c))
            break;
    }
    if (!any)
        pgw_empty_query(conn_out(&s->client));
    pgw_ready_for_query(conn_out(&s->client), 'I');
}

void admin_console_readable(session *s)
{
    struct evbuffer *in = conn_in(&s->client);
    char type;
    uint32_t len;
    while (s->state == SS_ADMIN && pgw_peek_header(in, &type, &len)) {
        if (type == 'X') {
            session_kill(s);
            return;
        }
        if (type != 'Q' || len < 5 || len > ADMIN_MAX_QUERY) {
            pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_PROTOCOL_VIOLATION,
                          .message = type != 'Q' ? "the admin console speaks the simple query protocol only (psql)"
                                                 : "admin command too long"};
            session_close(s, &e);
            return;
        }
        if (evbuffer_get_length(in) < (size_t)len + 1)
            return;
        char *msg = pgw_take_message(in, len);
        if (!msg) {
            session_kill(s);
            return;
        }
        run_query(s, msg + 5);   /* a NUL inside ends the text, as the server reads it */
        free(msg);
    }
}
