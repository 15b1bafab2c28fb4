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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "common/log.h"

/* A PGcancel shared by the session and the cancel threads it started. */
typedef struct {
    PGcancel *cancel;
    atomic_int refs;
} cancel_ref;

#define N_REPORTED 13

struct backend {
    PGconn *conn;             /* NULL once detached */
    int own_fd;               /* the warehouse socket after detaching, else -1 */
    char *params[N_REPORTED]; /* backend_reported_parameters' values at login */
    int pid;
    cancel_ref *cancel;
    struct event_base *base;
    struct event *ev;
    int ev_fd;
    short ev_what;
    backend_ready_cb cb;
    void *arg;
};

const char *const backend_reported_parameters[N_REPORTED + 1] = {
    "application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
    "in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser",
    "server_encoding", "server_version", "session_authorization",
    "standard_conforming_strings", "TimeZone", NULL,
};

#define MAX_CANCELS_IN_FLIGHT 32
static atomic_int cancels_in_flight;

static void poll_step(backend *b);

static void cancel_unref(cancel_ref *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        PQfreeCancel(c->cancel);
        free(c);
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
    for (size_t i = 0; i < N_REPORTED; i++) {
        const char *v = PQparameterStatus(b->conn, backend_reported_parameters[i]);
        if (v && !(b->params[i] = strdup(v)))
            return -1;
    }
    b->pid = PQbackendPID(b->conn);
    b->cancel = calloc(1, sizeof *b->cancel);
    if (!b->cancel)
        return -1;
    atomic_init(&b->cancel->refs, 1);
    if (!(b->cancel->cancel = PQgetCancel(b->conn)))
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

static void finish(backend *b, bool ok, const char *msg)
{
    if (b->ev) {
        event_free(b->ev);
        b->ev = NULL;
    }
    b->cb(b, ok, msg, b->arg);
}

/* Waits for the socket libpq names in the direction PQconnectPoll asks. The
 * socket can change between steps (multi-host, SSL or GSS fallback). */
static void wait_for(backend *b, short what)
{
    int fd = PQsocket(b->conn);
    if (!b->ev || fd != b->ev_fd || what != b->ev_what) {
        if (b->ev)
            event_free(b->ev);
        b->ev = event_new(b->base, fd, what, on_socket, b);
        b->ev_fd = fd;
        b->ev_what = what;
    }
    if (!b->ev || event_add(b->ev, NULL) != 0)
        finish(b, false, "cannot watch the warehouse socket");
}

static void poll_step(backend *b)
{
    switch (PQconnectPoll(b->conn)) {
    case PGRES_POLLING_READING:
        wait_for(b, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        wait_for(b, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(b->conn, 1) != 0 || keep_login(b) != 0) {
            finish(b, false, "cannot take over the warehouse connection");
            break;
        }
        finish(b, true, NULL);
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
    for (size_t i = 0; keys && keys[i] && n < 31; i++) {
        k[n] = keys[i];
        v[n++] = values[i];
    }
    k[n] = NULL;
    v[n] = NULL;
    backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->base = base;
    b->cb = cb;
    b->arg = arg;
    b->ev_fd = -1;
    b->own_fd = -1;
    b->conn = PQconnectStartParams(k, v, 1);
    if (!b->conn || PQstatus(b->conn) == CONNECTION_BAD) {
        snprintf(err, errlen, "%s", b->conn ? PQerrorMessage(b->conn) : "out of memory");
        size_t l = strlen(err);
        while (l && (err[l - 1] == '\n'))
            err[--l] = 0;
        if (b->conn)
            PQfinish(b->conn);
        free(b);
        return NULL;
    }
    /* The first PQconnectPoll call must wait for the socket to be writable. */
    wait_for(b, EV_WRITE);
    return b;
}

int backend_fd(const backend *b) { return b->conn ? PQsocket(b->conn) : b->own_fd; }

SSL *backend_ssl(const backend *b)
{
    return b->conn && PQsslInUse(b->conn) ? PQsslStruct(b->conn, "OpenSSL") : NULL;
}

const char *backend_parameter(const backend *b, const char *name)
{
    for (size_t i = 0; i < N_REPORTED; i++)
        if (!strcmp(backend_reported_parameters[i], name))
            return b->params[i];
    return NULL;
}

int backend_pid(const backend *b) { return b->pid; }

static void *cancel_thread(void *arg)
{
    cancel_ref *c = arg;
    char err[256];
    if (!PQcancel(c->cancel, err, sizeof err))
        log_msg(LOG_WARNING, "cancel request to the warehouse failed: %s", err);
    cancel_unref(c);
    atomic_fetch_sub(&cancels_in_flight, 1);
    return NULL;
}

int backend_cancel(backend *b)
{
    if (atomic_fetch_add(&cancels_in_flight, 1) >= MAX_CANCELS_IN_FLIGHT) {
        atomic_fetch_sub(&cancels_in_flight, 1);
        return -1;
    }
    cancel_ref *c = b->cancel;
    pthread_t t;
    pthread_attr_t attr;
    if (!c || pthread_attr_init(&attr) != 0) {
        atomic_fetch_sub(&cancels_in_flight, 1);
        return -1;
    }
    atomic_fetch_add(&c->refs, 1);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, cancel_thread, c);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        cancel_unref(c);
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
    if (b->ev)
        event_free(b->ev);
    if (b->conn)
        PQfinish(b->conn);
    if (b->own_fd >= 0) {
        /* Terminate, as PQfinish would have sent it */
        static const char terminate[5] = {'X', 0, 0, 0, 4};
        ssize_t w = send(b->own_fd, terminate, sizeof terminate, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        close(b->own_fd);
    }
    for (size_t i = 0; i < N_REPORTED; i++)
        free(b->params[i]);
    cancel_unref(b->cancel);
    free(b);
}
