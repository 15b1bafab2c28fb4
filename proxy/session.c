/*
 * session: one client connection's life: created at accept, its state
 * machine (session.h), its events, closing and freeing. The login's states
 * (STARTUP, AUTH, CONNECTING) are proxy/session_login.c.
 */
#include "proxy/session.h"

#include <arpa/inet.h>
#include <assert.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/textbuf.h"
#include "proxy/audit_trail.h"
#include "proxy/admin_console.h"
#include "proxy/server.h"
#include "proxy/session_internal.h"

const char *session_state_name(session_state st)
{
    switch (st) {
    case SS_PROXY_HEADER: return "proxy_header";
    case SS_STARTUP: return "startup";
    case SS_AUTH: return "auth";
    case SS_CONNECTING: return "connecting";
    case SS_READY: return "ready";
    case SS_ADMIN: return "admin";
    case SS_CLOSING: return "closing";
    default: return "closed";
    }
}

static void login_free(session_login *l)
{
    if (!l)
        return;
    free(l->startup);
    free(l->startup_packet);
    free(l->options_buf);
    free(l->search_path_text);
    free(l);
}

/* What only the login needs (session_login) goes once logged in: the
 * session keeps a copy of the three names it goes on using (user, database,
 * application_name), so that an idle session holds none of the rest. Out
 * of memory, it keeps everything. */
static void forget_login(session *s)
{
    if (!s->login)
        return;
    if (s->login->startup_packet) {
        const char *name[3] = {s->user, s->database, s->application_name};
        if (!(s->names = text_pack(name, 3)))
            return;
        s->user = name[0];
        s->database = name[1];
        s->application_name = name[2];
    }
    login_free(s->login);
    s->login = NULL;
}

/* The only way a session changes state; the transitions are the ones the
 * state machine of session.h allows (checked in the ASan/Debug build). A
 * session moves forward only: (PROXY_HEADER ->) STARTUP -> AUTH -> CONNECTING -> READY (or
 * AUTH -> ADMIN, the admin console), any live state -> CLOSING -> DEAD, or
 * straight to DEAD when killed. */
void session_set_state(session *s, session_state next)
{
    session_state from = s->state;
    (void)from;
    assert(from != SS_DEAD);
    assert(next == SS_DEAD || next == SS_CLOSING || (from == SS_PROXY_HEADER && next == SS_STARTUP) ||
           (from == SS_STARTUP && next == SS_AUTH) ||
           (from == SS_AUTH && next == SS_CONNECTING) || (from == SS_CONNECTING && next == SS_READY) ||
           (from == SS_AUTH && next == SS_ADMIN));
    assert(from != SS_CLOSING || next == SS_DEAD);
    s->state = next;
    if (next == SS_READY || next == SS_ADMIN)
        forget_login(s);
}

static void on_client_io(conn *c, conn_event what, void *arg);
static void close_warehouse(session *s);

/* The prefix of the session's log lines, made when a line is written (a
 * copy kept per session would be an idle session's memory). */
static void session_prefix(const session *s, char *buf, size_t len)
{
    snprintf(buf, len, "session=%llu user=%.128s client=%s:%d", (unsigned long long)s->id,
             s->user ? s->user : "-", s->client_addr, s->client_port);
}

/* The guard's log lines carry the prefix of the session it is part of. */
static void guard_prefix(const session_guard *g, char *buf, size_t len)
{
    session_prefix((const session *)(const void *)((const char *)g - offsetof(session, guard)), buf, len);
}

void session_log(const session *s, int level, const char *fmt, ...)
{
    if (level < (int)log_get_level())
        return;
    char prefix[256];
    session_prefix(s, prefix, sizeof prefix);
    va_list ap;
    va_start(ap, fmt);
    log_vmsg((log_level)level, prefix, fmt, ap);
    va_end(ap);
}

void session_fatal(session *s, const char *sqlstate, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pg_error e = {.severity = "FATAL", .sqlstate = sqlstate, .message = msg};
    session_close(s, &e);
}

/* A login refused: the audit record, and the metric of its reason. */
void session_login_failed(session *s, metrics_login reason, const char *why)
{
    s->wk->metrics.logins[reason]++;
    trail_login_failed(s, why);
}

/* The login timeout, and the close timeout of a session in CLOSING. */
static void on_login_timeout(evutil_socket_t fd, short what, void *arg)
{
    session *s = arg;
    (void)fd;
    (void)what;
    if (s->state == SS_CLOSING) {   /* the client never read its last error */
        session_kill(s);
        return;
    }
    session_log(s, LOG_WARNING, "login timed out after %d s in state %s", s->cfg->login_timeout_s,
                session_state_name(s->state));
    s->wk->metrics.logins[MG_LOGIN_TIMEOUT]++;
    session_fatal(s, SQLSTATE_CANNOT_CONNECT_NOW, "login timed out");
}

int session_address(const struct sockaddr *addr, char *buf, size_t len)
{
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)len);
        return ntohs(in->sin_port);
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)len);
        return ntohs(in6->sin6_port);
    }
    snprintf(buf, len, "local");
    return 0;
}

session *session_new(worker *wk, config *cfg, int fd, const struct sockaddr *addr, int addrlen)
{
    session *s = calloc(1, sizeof *s + SESSION_N_EVENTS * conn_event_size());
    if (!s)
        return NULL;
    s->id = atomic_fetch_add(&wk->srv->next_session_id, 1) + 1;
    s->wk = wk;
    s->cfg = config_ref(cfg);
    s->fd = fd;
    /* a trusted load balancer names the client in a PROXY header first */
    s->state = proxy_cidr_list_match(cfg->proxy_trusted, cfg->n_proxy_trusted, addr) ? SS_PROXY_HEADER : SS_STARTUP;
    s->relay.tx_status = 'I';
    s->client_port = session_address(addr, s->client_addr, sizeof s->client_addr);
    (void)addrlen;
    guard_init(&s->guard, guard_prefix, &trail_tmpl_ops);
    s->timer = evtimer_new(s->wk->base, on_login_timeout, s);
    s->login = calloc(1, sizeof *s->login);
    if (conn_init(&s->client, s->wk->base, fd, on_client_io, s, session_event_mem(s, SESSION_EV_CLIENT)) != 0 || !s->timer || !s->login) {
        conn_close(&s->client);
        if (s->timer)
            event_free(s->timer);
        free(s->login);
        config_unref(s->cfg);
        free(s);
        return NULL;
    }
    s->client.low_water = RELAY_HIGH_WATER / 2;
    s->client.bytes_read = &wk->metrics.bytes_from_clients;
    s->metrics_db = metrics_name(&wk->srv->metric_databases, NULL);
    s->connected_at = time(NULL);
    struct timeval tv = {cfg->login_timeout_s, 0};
    evtimer_add(s->timer, &tv);
    conn_read(&s->client, true);
    return s;
}

void session_free(session *s)
{
    if (s->audit_started || s->key_pid)
        session_log(s, LOG_INFO, "session ended");
    worker_session_removed(s->wk, s);
    close_warehouse(s);
    conn_close(&s->client);
    if (s->fd >= 0)
        close(s->fd);
    if (s->timer)
        event_free(s->timer);
    if (s->relay.waiting_catalog || s->waiting_facts) {
        catalog_cache *c = worker_catalog(s->wk, s->database);
        if (c)
            catalog_cache_wait_cancel(c, s);
    }
    if (s->waiting_audit)
        audit_loop_wait_cancel(s->wk->audit_loop, s);
    relay_free(&s->relay);           /* finishes the records of requests in flight */
    trail_discard(s->pending_req);
    trail_session_end(s);            /* after every statement record of the session */
    trail_state_free(s->trail);
    guard_free(&s->guard);
    jwt_identity_clear(&s->ident);
    login_free(s->login);
    free(s->names);
    free(s->application_name_set);
    config_unref(s->cfg);
    free(s);
}

/* The end of every event's work: what is buffered goes out, and the buffers
 * left empty are freed, so an idle session holds none. */
void session_flush(session *s)
{
    if (s->state == SS_DEAD)
        return;
    if (s->server_open)
        conn_flush(&s->server);
    if (s->state == SS_DEAD)
        return;
    conn_flush(&s->client);
    if (s->state == SS_DEAD)
        return;
    if (s->server_open)
        conn_trim(&s->server);
    conn_trim(&s->client);
    rq_trim(&s->relay.q);
}

static void close_warehouse(session *s)
{
    /* a query still running would go on on the warehouse until it next
     * writes to the closed socket: cancel it first */
    if (s->be && s->server_open && !relay_idle(s) && !s->relay.client_terminated && backend_cancel(s->be) == 0)
        session_log(s, LOG_INFO, "cancelled the warehouse query still running");
    if (s->server_open) {
        conn_close(&s->server);
        s->server_open = false;
    }
    if (s->be) {
        backend_free(s->be);
        s->be = NULL;
    }
}

void session_kill(session *s)
{
    if (s->state == SS_DEAD)
        return;
    session_set_state(s, SS_DEAD);
    close_warehouse(s);
    conn_read(&s->client, false);
    if (s->timer)
        evtimer_del(s->timer);
    worker_reap(s->wk, s);   /* freed at the next turn of the loop */
}

void session_login_timer_end(session *s)
{
    if (s->timer)
        event_free(s->timer);
    s->timer = NULL;
}

void session_close(session *s, const pg_error *err)
{
    if (s->state == SS_CLOSING || s->state == SS_DEAD)
        return;
    session_set_state(s, SS_CLOSING);
    close_warehouse(s);
    conn_read(&s->client, false);
    if (err) {
        session_log(s, LOG_INFO, "closing: %s (%s)", err->message, err->sqlstate);
        if (!s->client.closed)
            pgw_error(conn_out(&s->client), err);
    }
    if (s->client.closed || conn_flush(&s->client) < 0 || conn_out_len(&s->client) == 0) {
        session_kill(s);
        return;
    }
    /* free once the last bytes are out (CONN_DRAINED), or after 5 s */
    if (!s->timer && !(s->timer = evtimer_new(s->wk->base, on_login_timeout, s))) {
        session_kill(s);
        return;
    }
    s->client.low_water = 0;
    s->client.above_low = true;
    struct timeval tv = {5, 0};
    evtimer_add(s->timer, &tv);
}

void session_cancel(session *s)
{
    if (s->state != SS_READY || !s->be)
        return;
    session_log(s, LOG_INFO, "cancel request forwarded to the warehouse");
    if (backend_cancel(s->be) != 0)
        session_log(s, LOG_WARNING, "cancel request dropped: too many cancels in flight");
}

/* ---- events ---------------------------------------------------------------- */

static void on_client_io(conn *c, conn_event what, void *arg)
{
    session *s = arg;
    (void)c;
    if (what == CONN_CLOSED) {
        if (s->client.handshaking)
            s->wk->metrics.tls_failures++;
        if (s->state == SS_READY)
            session_log(s, LOG_INFO, "client disconnected: %s", conn_error(&s->client));
        else if (s->state == SS_PROXY_HEADER && conn_in_len(&s->client) > 0)
            session_log(s, LOG_WARNING, "refused: the connection closed within its PROXY protocol header "
                        "(%zu bytes of it came)", conn_in_len(&s->client));
        else if (s->state != SS_CLOSING)
            session_log(s, LOG_DEBUG, "client went away during login: %s", conn_error(&s->client));
        session_kill(s);
        return;
    }
    if (what == CONN_DRAINED) {
        if (s->state == SS_CLOSING)
            session_kill(s);
        else if (s->state == SS_READY)
            relay_client_drained(s);
    } else if (what == CONN_READABLE || what == CONN_TLS_READY) {
        if (s->state == SS_PROXY_HEADER)
            session_read_proxy_header(s);   /* then the startup packet behind it, if it came along */
        switch (s->state) {
        case SS_PROXY_HEADER:
            break;
        case SS_STARTUP:
            if (conn_in_len(&s->client) == 0)
                break;
            session_read_startup(s);
            if (s->state == SS_AUTH && conn_in_len(&s->client) > 0)
                session_read_password(s);   /* the client sent its password with the startup packet */
            break;
        case SS_AUTH:
            session_read_password(s);
            break;
        case SS_READY:
            relay_client_readable(s);
            break;
        case SS_ADMIN:
            admin_console_readable(s);
            break;
        default:
            break;
        }
    }
    session_flush(s);
}

void session_on_server_io(conn *c, conn_event what, void *arg)
{
    session *s = arg;
    (void)c;
    if (what == CONN_CLOSED) {
        if (s->state == SS_READY)
            relay_server_readable(s); /* deliver the warehouse's last words */
        if (s->state == SS_READY) {
            session_log(s, LOG_WARNING, "warehouse connection closed: %s", conn_error(&s->server));
            pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_CONNECTION_FAILURE,
                          .message = "the warehouse closed the connection"};
            session_close(s, &e);
        }
    } else if (what == CONN_DRAINED) {
        if (s->state == SS_READY)
            relay_server_drained(s);
    } else if (s->state == SS_READY) {
        relay_server_readable(s);
    }
    session_flush(s);
}

const policy_t *session_policy(const session *s)
{
    return s->wk->cfg->policy;
}

const char *session_deny_hint(const session *s)
{
    return s->wk->cfg->deny_hint;
}
