/*
 * adapters/postgres: non-blocking libpq connect on libevent, parameter
 * look-ups, and cancellation through short-lived worker threads.
 *
 * Note: libpq resolves host names with getaddrinfo(), which blocks; configure
 * warehouses by address (hostaddr=) where login latency matters.
 */
#include "adapters/postgres.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/textbuf.h"

#define N_REPORTED 13
_Static_assert(N_REPORTED <= 16, "param_set has a bit per reported parameter");

/* What only the connect needs: freed when it ends (finish), so that a
 * logged-in session's backend is the few members below it. */
typedef struct {
    struct event_base *base;
    struct event *ev;
    backend_ready_cb cb;
    void *arg;
    int ev_fd;
    short ev_what;
    bool checking;            /* the parse-settings query is in flight */
    int check_seen;           /* its rows read so far */
} connecting;

struct backend {
    PGconn *conn;             /* NULL once detached */
    char *param_text;         /* backend_reported_parameters' values at login, one after another
                               * (those reported: param_set), in one block */
    PGcancel *cancel;         /* NULL until logged in */
    char *refusal;            /* why martgate refused the session (for the client) */
    connecting *cn;           /* until the connect ends, else NULL */
    int own_fd;               /* the warehouse socket after detaching, else -1 */
    int pid;
    atomic_int refs;          /* the session's and each cancel thread's: the last
                               * one frees the struct and the cancel (unref) */
    uint16_t param_set;       /* bit i: backend_reported_parameters[i] was reported */
};

/* What martgate's parser assumes of the text it checks; the warehouse
 * session is started with them (startup values are also what RESET and
 * DISCARD ALL go back to, whatever ALTER ROLE/DATABASE SET or
 * postgresql.conf say) and verified before any client statement runs. */
const backend_parse_setting backend_parse_settings[BACKEND_N_PARSE_SETTINGS + 1] = {
    {"standard_conforming_strings", "on"},
    {"backslash_quote", "safe_encoding"},
    {"client_encoding", "UTF8"},
    {NULL, NULL},
};

static const char PARSE_CHECK_SQL[] =
    "SELECT name, setting, reset_val FROM pg_catalog.pg_settings"
    " WHERE name IN ('standard_conforming_strings', 'backslash_quote', 'client_encoding')";

const char *const backend_reported_parameters[N_REPORTED + 1] = {
    "application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
    "in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser",
    "server_encoding", "server_version", "session_authorization",
    "standard_conforming_strings", "TimeZone", NULL,
};

#define MAX_CANCELS_IN_FLIGHT 32
static atomic_int cancels_in_flight;

static void poll_step(backend *b);
static void check_step(backend *b);
static void start_parse_check(backend *b);

static void unref(backend *b)
{
    if (atomic_fetch_sub(&b->refs, 1) == 1) {
        if (b->cancel)
            PQfreeCancel(b->cancel);
        free(b);
    }
}

/* Keeps what the session needs of the login, then, for a plaintext
 * connection, takes the socket from libpq and frees the PGconn: its two
 * 16 KiB buffers and option strings would otherwise be most of an idle
 * session's memory. libpq's descriptor is pointed at an unconnected socket
 * first, so PQfinish's Terminate goes nowhere and the warehouse session
 * lives on, on our descriptor. A TLS connection stays with libpq, whose
 * SSL object reads and writes through it. */
static int keep_login(backend *b)
{
    const char *params[N_REPORTED];
    for (size_t i = 0; i < N_REPORTED; i++)
        if ((params[i] = PQparameterStatus(b->conn, backend_reported_parameters[i])))
            b->param_set |= (uint16_t)(1u << i);
    if (!(b->param_text = text_pack(params, N_REPORTED)))
        return -1;
    b->pid = PQbackendPID(b->conn);
    if (!(b->cancel = PQgetCancel(b->conn)))
        return -1;
    if (PQsslInUse(b->conn))
        return 0;
    int fd = PQsocket(b->conn);
    int mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int dummy = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (mine < 0 || dummy < 0 || dup2(dummy, fd) < 0) {
        if (mine >= 0)
            close(mine);
        if (dummy >= 0)
            close(dummy);
        return 0;   /* keep libpq's connection: only memory is lost */
    }
    close(dummy);
    PQfinish(b->conn);
    b->conn = NULL;
    b->own_fd = mine;
    return 0;
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    poll_step(arg);
}

static void connecting_free(backend *b)
{
    if (b->cn && b->cn->ev)
        event_free(b->cn->ev);
    free(b->cn);
    b->cn = NULL;
}

/* The connect's end: its state goes before the callback, which may free b. */
static void finish(backend *b, bool ok, const char *msg)
{
    backend_ready_cb cb = b->cn->cb;
    void *arg = b->cn->arg;
    connecting_free(b);
    cb(b, ok, msg, arg);
}

/* Waits for the socket libpq names in the direction PQconnectPoll asks. The
 * socket can change between steps (multi-host, SSL or GSS fallback). */
static void wait_for(backend *b, short what)
{
    connecting *cn = b->cn;
    int fd = PQsocket(b->conn);
    if (!cn->ev || fd != cn->ev_fd || what != cn->ev_what) {
        if (cn->ev)
            event_free(cn->ev);
        cn->ev = event_new(cn->base, fd, what, on_socket, b);
        cn->ev_fd = fd;
        cn->ev_what = what;
    }
    if (!cn->ev || event_add(cn->ev, NULL) != 0)
        finish(b, false, "cannot watch the warehouse socket");
}

/* Refuses the session: msg is for the operator's log, the client is told
 * only that martgate refused it and why in one line. */
static void refuse(backend *b, const char *name, const char *what, const char *value)
{
    char client[300], log[900];
    const char *want = "";
    for (const backend_parse_setting *p = backend_parse_settings; p->name; p++)
        if (!strcmp(p->name, name))
            want = p->value;
    snprintf(client, sizeof client,
             "martgate refused the warehouse session: its %s is \"%s\" where martgate parses SQL with \"%s\"",
             name, value ? value : "(not reported)", want);
    snprintf(log, sizeof log,
             "refused the warehouse session: %s %s is \"%s\", martgate needs \"%s\" (it starts every session "
             "with %s=%s; something between martgate and the warehouse dropped the startup options, or the "
             "server ignores them). Remove the override (ALTER ROLE ... RESET %s, ALTER DATABASE ... RESET %s, "
             "postgresql.conf) and make sure a pooler in between passes startup parameters",
             name, what, value ? value : "(not reported)", want, name, want, name, name);
    free(b->refusal);
    b->refusal = strdup(client);
    finish(b, false, log);
}

static bool parse_value_ok(const char *name, const char *value)
{
    for (const backend_parse_setting *p = backend_parse_settings; p->name; p++)
        if (!strcmp(p->name, name))
            return value && strcasecmp(value, p->value) == 0;
    return true;
}

/* The reported values first (ParameterStatus), then a query for what is
 * not reported and for the values RESET would restore. */
static void start_parse_check(backend *b)
{
    static const char *const reported[] = {"standard_conforming_strings", "client_encoding", NULL};
    for (const char *const *r = reported; *r; r++) {
        const char *v = PQparameterStatus(b->conn, *r);
        if (!parse_value_ok(*r, v)) {
            refuse(b, *r, "reported at login", v);
            return;
        }
    }
    if (!PQsendQuery(b->conn, PARSE_CHECK_SQL)) {
        finish(b, false, PQerrorMessage(b->conn));
        return;
    }
    b->cn->checking = true;
    check_step(b);
}

/* Reads the check's result without blocking; on success hands over. */
static void check_step(backend *b)
{
    int f = PQflush(b->conn);
    if (f < 0) {
        finish(b, false, PQerrorMessage(b->conn));
        return;
    }
    if (f > 0) {
        wait_for(b, EV_WRITE);
        return;
    }
    if (!PQconsumeInput(b->conn)) {
        finish(b, false, PQerrorMessage(b->conn));
        return;
    }
    while (!PQisBusy(b->conn)) {
        PGresult *res = PQgetResult(b->conn);
        if (!res) {
            b->cn->checking = false;
            if (b->cn->check_seen != BACKEND_N_PARSE_SETTINGS) {
                finish(b, false, "the warehouse did not answer martgate's check of its parse settings");
                return;
            }
            if (keep_login(b) != 0) {
                finish(b, false, "cannot take over the warehouse connection");
                return;
            }
            finish(b, true, NULL);
            return;
        }
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "checking the warehouse session's parse settings failed: %s",
                     PQresultErrorMessage(res));
            PQclear(res);
            finish(b, false, msg);
            return;
        }
        for (int r = 0; r < PQntuples(res); r++) {
            const char *name = PQgetvalue(res, r, 0);
            const char *setting = PQgetvalue(res, r, 1), *reset = PQgetvalue(res, r, 2);
            bool set_ok = parse_value_ok(name, setting);
            if (!set_ok || !parse_value_ok(name, reset)) {
                char n[64], v[128];   /* the result's strings go with PQclear */
                snprintf(n, sizeof n, "%s", name);
                snprintf(v, sizeof v, "%s", set_ok ? reset : setting);
                PQclear(res);
                refuse(b, n, set_ok ? "would RESET to" : "is set to", v);
                return;
            }
            b->cn->check_seen++;
        }
        PQclear(res);
        if (b->cn->check_seen > BACKEND_N_PARSE_SETTINGS)
            break;
    }
    if (b->cn->check_seen > BACKEND_N_PARSE_SETTINGS) {
        finish(b, false, "unexpected answer to martgate's check of the parse settings");
        return;
    }
    wait_for(b, EV_READ);
}

static void poll_step(backend *b)
{
    if (b->cn->checking) {
        check_step(b);
        return;
    }
    switch (PQconnectPoll(b->conn)) {
    case PGRES_POLLING_READING:
        wait_for(b, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        wait_for(b, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(b->conn, 1) != 0) {
            finish(b, false, "cannot take over the warehouse connection");
            break;
        }
        start_parse_check(b);
        break;
    default:
        finish(b, false, PQerrorMessage(b->conn));
        break;
    }
}

backend *backend_connect(struct event_base *base, const char *conninfo, const char *password,
                         const char *const *keys, const char *const *values,
                         backend_ready_cb cb, void *arg, char *err, size_t errlen)
{
    /* dbname=conninfo is expanded first (expand_dbname); later keywords win. */
    const char *k[32], *v[32];
    size_t n = 0;
    k[n] = "dbname";
    v[n++] = conninfo;
    if (password) {
        k[n] = "password";
        v[n++] = password;
    }
    const char *options = NULL;
    for (size_t i = 0; keys && keys[i] && n < 29; i++) {
        if (!strcmp(keys[i], "options")) {
            options = values[i];
            continue;
        }
        if (!strcmp(keys[i], "client_encoding"))
            continue;   /* always the one martgate parses with */
        k[n] = keys[i];
        v[n++] = values[i];
    }
    /* the parse settings go last: a later -c of the same name would win */
    char opts[4096 + 128];
    if (backend_parse_options(conninfo, options, opts, sizeof opts) != 0) {
        snprintf(err, errlen, "startup options are too long");
        return NULL;
    }
    k[n] = "options";
    v[n++] = opts;
    k[n] = "client_encoding";
    v[n++] = "UTF8";
    k[n] = NULL;
    v[n] = NULL;
    backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->cn = calloc(1, sizeof *b->cn);
    if (!b->cn) {
        free(b);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *b->cn = (connecting){.base = base, .cb = cb, .arg = arg, .ev_fd = -1};
    b->own_fd = -1;
    atomic_init(&b->refs, 1);
    b->conn = PQconnectStartParams(k, v, 1);
    if (!b->conn || PQstatus(b->conn) == CONNECTION_BAD) {
        snprintf(err, errlen, "%s", b->conn ? PQerrorMessage(b->conn) : "out of memory");
        size_t l = strlen(err);
        while (l && (err[l - 1] == '\n'))
            err[--l] = 0;
        if (b->conn)
            PQfinish(b->conn);
        free(b->cn);
        free(b);
        return NULL;
    }
    /* The first PQconnectPoll call must wait for the socket to be writable. */
    wait_for(b, EV_WRITE);
    return b;
}

int backend_parse_options(const char *conninfo, const char *options, char *buf, size_t len)
{
    /* the conninfo's own options first: the keyword given here replaces them */
    char *own = NULL;
    PQconninfoOption *opts = conninfo ? PQconninfoParse(conninfo, NULL) : NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "options") && o->val && *o->val)
            own = strdup(o->val);
    PQconninfoFree(opts);
    int w = snprintf(buf, len, "%s%s%s", own ? own : "", own && options && *options ? " " : "",
                     options && *options ? options : "");
    free(own);
    if (w < 0 || (size_t)w >= len)
        return -1;
    size_t off = (size_t)w;
    for (const backend_parse_setting *p = backend_parse_settings; p->name; p++) {
        if (!strcmp(p->name, "client_encoding"))
            continue;   /* libpq's own keyword */
        w = snprintf(buf + off, len - off, "%s-c %s=%s", off ? " " : "", p->name, p->value);
        if (w < 0 || (size_t)w >= len - off)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

const char *backend_refusal(const backend *b) { return b->refusal; }

int backend_fd(const backend *b) { return b->conn ? PQsocket(b->conn) : b->own_fd; }

SSL *backend_ssl(const backend *b)
{
    return b->conn && PQsslInUse(b->conn) ? PQsslStruct(b->conn, "OpenSSL") : NULL;
}

const char *backend_parameter(const backend *b, const char *name)
{
    const char *v = b->param_text;
    for (size_t i = 0; i < N_REPORTED && v; i++) {
        bool set = b->param_set & (1u << i);
        if (!strcmp(backend_reported_parameters[i], name))
            return set ? v : NULL;
        if (set)
            v += strlen(v) + 1;
    }
    return NULL;
}

void backend_keep_parameters(backend *b, const char *const *names)
{
    const char *v[N_REPORTED];
    uint16_t keep = 0;
    for (size_t i = 0; i < N_REPORTED; i++) {
        v[i] = NULL;
        for (const char *const *n = names; *n; n++)
            if (!strcmp(*n, backend_reported_parameters[i]) && (v[i] = backend_parameter(b, *n)))
                keep |= (uint16_t)(1u << i);
    }
    if (keep == b->param_set)
        return;
    char *text = keep ? text_pack(v, N_REPORTED) : NULL;
    if (keep && !text)
        return;   /* out of memory: all of them stay */
    free(b->param_text);
    b->param_text = text;
    b->param_set = keep;
}

int backend_pid(const backend *b) { return b->pid; }

static void *cancel_thread(void *arg)
{
    backend *b = arg;   /* only its cancel is read: the session may have freed the rest */
    char err[256];
    if (!PQcancel(b->cancel, err, sizeof err))
        log_msg(LOG_WARNING, "cancel request to the warehouse failed: %s", err);
    unref(b);
    atomic_fetch_sub(&cancels_in_flight, 1);
    return NULL;
}

int backend_cancel(backend *b)
{
    if (atomic_fetch_add(&cancels_in_flight, 1) >= MAX_CANCELS_IN_FLIGHT) {
        atomic_fetch_sub(&cancels_in_flight, 1);
        return -1;
    }
    pthread_t t;
    pthread_attr_t attr;
    if (!b->cancel || pthread_attr_init(&attr) != 0) {
        atomic_fetch_sub(&cancels_in_flight, 1);
        return -1;
    }
    atomic_fetch_add(&b->refs, 1);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, cancel_thread, b);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        unref(b);
        atomic_fetch_sub(&cancels_in_flight, 1);
        return -1;
    }
    return 0;
}

void backend_cancel_drain(double seconds)
{
    for (int i = 0; i < (int)(seconds * 100) && atomic_load(&cancels_in_flight) > 0; i++)
        usleep(10000);
}

void backend_free(backend *b)
{
    if (!b)
        return;
    connecting_free(b);
    if (b->conn)
        PQfinish(b->conn);
    if (b->own_fd >= 0) {
        /* Terminate, as PQfinish would have sent it */
        static const char terminate[5] = {'X', 0, 0, 0, 4};
        ssize_t w = send(b->own_fd, terminate, sizeof terminate, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        close(b->own_fd);
    }
    free(b->param_text);
    free(b->refusal);
    unref(b);   /* a cancel thread still sending keeps the struct and its cancel */
}
