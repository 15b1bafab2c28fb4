/*
 * server: listeners, session registry, signals, reload and graceful stop;
 * `martgate serve --config FILE [--check]`.
 */
#include "proxy/server.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy/cancel_forward.h"
#include "proxy/cancel_key.h"
#include "proxy/commands.h"
#include "common/log.h"
#include "proxy/pgwire.h"
#include "adapters/postgres.h"
#include "proxy/ops_http.h"
#include "proxy/session.h"

static double unix_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void server_session_removed(server *srv, session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (srv->sessions == s)
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    srv->nsessions--;
    server_login_done(srv, s);
    server_maybe_exit(srv);
}

void server_login_done(server *srv, session *s)
{
    if (s->pending) {
        s->pending = false;
        srv->npending--;
    }
}

/* Connections from `addr` that have not logged in yet (those still in
 * their PROXY header do not know their client's address yet). */
static int pending_from(const server *srv, const char *addr)
{
    int n = 0;
    for (const session *s = srv->sessions; s; s = s->next)
        n += s->pending && s->state != SS_PROXY_HEADER && strcmp(s->client_addr, addr) == 0;
    return n;
}

/* n: the connections from peer not logged in yet, besides the refused one */
static void log_pending_refusal(server *srv, const char *peer, bool total, int n)
{
    srv->metrics.limits[total ? MG_LIMIT_MAX_PENDING_LOGINS : MG_LIMIT_MAX_PENDING_PER_ADDRESS]++;
    unsigned long more;
    if (log_rate_ok(&srv->pending_refusals, &more))
        log_msg(LOG_WARNING, "refused a connection from %s: %d connections %s not logged in yet (limits.%s)%s",
                peer, total ? srv->npending : n, total ? "in all" : "from there",
                total ? "max_pending_logins" : "max_pending_per_address",
                more ? " (and more not logged in the last second)" : "");
}

bool server_pending_address_ok(server *srv, session *s)
{
    /* s itself is one of them */
    int n = pending_from(srv, s->client_addr) - 1;
    if (n < s->cfg->max_pending_per_address)
        return true;
    log_pending_refusal(srv, s->client_addr, false, n);
    return false;
}

session *server_find_by_id(server *srv, uint64_t id)
{
    for (session *s = srv->sessions; s; s = s->next)
        if (s->id == id && s->state != SS_DEAD)
            return s;
    return NULL;
}

session *server_find_by_key(server *srv, uint32_t pid)
{
    for (session *s = srv->sessions; s; s = s->next)
        if (s->state == SS_READY && s->key_pid == pid)
            return s;
    return NULL;
}

uint32_t server_new_key_pid(server *srv)
{
    for (;;) {
        uint32_t r;
        RAND_bytes((unsigned char *)&r, sizeof r);
        uint32_t pid = cancel_key_encode((unsigned)srv->cfg->peer_id, 0, r);
        if (!cancel_key_valid(pid))
            continue;
        bool used = false;
        for (session *s = srv->sessions; s && !used; s = s->next)
            used = s->key_pid == pid;
        if (!used)
            return pid;
    }
}

void server_maybe_exit(server *srv)
{
    if (srv->stopping && srv->nsessions == 0)
        event_base_loopexit(srv->base, NULL);
}

/* Refuses a connection beyond max_clients before reading anything: libpq and
 * pgjdbc both report an ErrorResponse sent in answer to their first packet. */
static void refuse_now(int fd, const char *sqlstate, const char *msg)
{
    struct evbuffer *b = evbuffer_new();
    if (b) {
        pg_error e = {.severity = "FATAL", .sqlstate = sqlstate, .message = msg};
        pgw_error(b, &e);
        evbuffer_write(b, fd);
        evbuffer_free(b);
    }
    close(fd);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int len, void *arg)
{
    server *srv = arg;
    (void)l;
    if (srv->stopping) {
        refuse_now(fd, SQLSTATE_CANNOT_CONNECT_NOW, "martgate is shutting down");
        return;
    }
    /* Beyond max_clients a session still gets its TLS handshake and startup
     * packet read, so the client can show why it is refused (libpq does not
     * show an error sent in answer to SSLRequest); beyond a margin more, the
     * socket is refused at once to bound memory. */
    bool over = srv->nsessions >= srv->cfg->max_clients;
    if (srv->nsessions >= srv->cfg->max_clients + 64) {
        srv->metrics.limits[MG_LIMIT_MAX_CLIENTS]++;
        log_msg(LOG_WARNING, "refused a connection: %d clients already (limits.max_clients)", srv->nsessions);
        refuse_now(fd, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many clients already");
        return;
    }
    if (over) {
        srv->metrics.limits[MG_LIMIT_MAX_CLIENTS]++;
        log_msg(LOG_WARNING, "refusing a connection: %d clients already (limits.max_clients)", srv->nsessions);
    }
    /* Handshakes not done yet (nobody has logged in on them) may hold only
     * so many of the slots, and only so many from one address: a client
     * that opens connections and never logs in cannot take the room of
     * those who do. */
    char peer[64];
    session_address(addr, peer, sizeof peer);
    /* a load balancer's connections are counted under the address its
     * PROXY header names, once read (server_pending_address_ok) */
    bool proxied = proxy_cidr_list_match(srv->cfg->proxy_trusted, srv->cfg->n_proxy_trusted, addr);
    if (srv->npending >= srv->cfg->max_pending_logins ||
        (!proxied && pending_from(srv, peer) >= srv->cfg->max_pending_per_address)) {
        log_pending_refusal(srv, peer, srv->npending >= srv->cfg->max_pending_logins, pending_from(srv, peer));
        refuse_now(fd, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many connections waiting to log in");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    session *s = session_new(srv, srv->cfg, fd, addr, len);
    if (!s) {
        log_msg(LOG_ERROR, "out of memory accepting a connection");
        close(fd);
        return;
    }
    s->over_limit = over;
    s->pending = true;
    srv->npending++;
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
}

static int open_listeners(server *srv, char *err, size_t errlen)
{
    srv->listeners = calloc(srv->cfg->nlisten, sizeof *srv->listeners);
    if (!srv->listeners)
        return -1;
    for (size_t i = 0; i < srv->cfg->nlisten; i++) {
        struct sockaddr_storage ss;
        int sslen = sizeof ss;
        if (evutil_parse_sockaddr_port(srv->cfg->listen[i], (struct sockaddr *)&ss, &sslen) != 0) {
            snprintf(err, errlen, "%s: listen: '%s' is not an IP address and port", srv->cfg->path,
                     srv->cfg->listen[i]);
            return -1;
        }
        unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
        if (srv->cfg->so_reuseport)
            flags |= LEV_OPT_REUSEABLE_PORT;
        struct evconnlistener *l = evconnlistener_new_bind(srv->base, on_accept, srv, flags, 512,
                                                           (struct sockaddr *)&ss, sslen);
        if (!l) {
            snprintf(err, errlen, "cannot listen on %s: %s", srv->cfg->listen[i], strerror(errno));
            return -1;
        }
        srv->listeners[srv->nlisteners++] = l;
        log_msg(LOG_INFO, "listening on %s", srv->cfg->listen[i]);
    }
    return 0;
}

static void close_listeners(server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++)
        evconnlistener_free(srv->listeners[i]);
    free(srv->listeners);
    srv->listeners = NULL;
    srv->nlisteners = 0;
}

/* Column lists for masks come from each warehouse's catalog: read at start
 * and on every reload, in worker threads. */
static void build_catalogs(server *srv)
{
    catalog_cache **old = srv->catalogs;
    size_t nold = srv->ncatalogs;
    srv->catalogs = NULL;
    srv->ncatalogs = 0;
    if (srv->cfg->policy) {
        srv->catalogs = calloc(srv->cfg->ndatabases, sizeof *srv->catalogs);
        for (size_t i = 0; srv->catalogs && i < srv->cfg->ndatabases; i++) {
            const config_database *db = &srv->cfg->databases[i];
            char err[256];
            srv->catalogs[i] = catalog_cache_new(srv->base, db->name, db->conninfo, db->password, err, sizeof err);
            if (srv->catalogs[i])
                catalog_cache_refresh(srv->catalogs[i]);
            else
                log_msg(LOG_ERROR, "%s", err);
        }
        if (srv->catalogs)
            srv->ncatalogs = srv->cfg->ndatabases;
    }
    for (size_t i = 0; i < nold; i++)
        catalog_cache_free(old[i]);
    free(old);
}

catalog_cache *server_catalog(server *srv, const char *database)
{
    for (size_t i = 0; i < srv->ncatalogs; i++)
        if (strcmp(srv->cfg->databases[i].name, database) == 0)
            return srv->catalogs[i];
    return NULL;
}

static bool same_listen(const config *a, const config *b)
{
    if (a->nlisten != b->nlisten)
        return false;
    for (size_t i = 0; i < a->nlisten; i++)
        if (strcmp(a->listen[i], b->listen[i]) != 0)
            return false;
    return true;
}

int server_reload(server *srv)
{
    char err[1024];
    config *c = config_load(srv->config_path, err, sizeof err);
    if (!c) {
        log_msg(LOG_ERROR, "reload failed, keeping the running configuration: %s", err);
        srv->reloads_failed++;
        snprintf(srv->last_reload_error, sizeof srv->last_reload_error, "%s", err);
        return -1;
    }
    srv->last_reload_error[0] = 0;
    srv->reloads_ok++;
    srv->policy_loaded_at = unix_time();
    if (!same_listen(srv->cfg, c))
        log_msg(LOG_WARNING, "reload: listen addresses changed; that takes a restart");
    if ((srv->cfg->metrics_listen == NULL) != (c->metrics_listen == NULL) ||
        (c->metrics_listen && strcmp(srv->cfg->metrics_listen, c->metrics_listen) != 0))
        log_msg(LOG_WARNING, "reload: metrics.listen changed; that takes a restart");
    if (!audit_settings_same(srv->cfg->audit, c->audit))
        log_msg(LOG_WARNING, "reload: the audit section changed; the running audit log keeps its settings until a restart");
    if (srv->cfg->peer_id != c->peer_id)
        log_msg(LOG_WARNING, "reload: peer_id changed from %d to %d; the %d sessions open keep cancel keys with "
                "the old one (cancels that reach this instance still find them)", srv->cfg->peer_id, c->peer_id,
                srv->nsessions);
    config_unref(srv->cfg);
    srv->cfg = c;
    log_set_level((log_level)c->log_level);
    build_catalogs(srv);
    log_msg(LOG_INFO, "configuration reloaded from %s (TLS certificate, JWT keys, databases, limits); "
                      "%d sessions keep theirs", srv->config_path, srv->nsessions);
    return 0;
}

static void on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
    server *srv = arg;
    (void)fd;
    (void)what;
    log_msg(LOG_WARNING, "shutdown timeout: closing %d sessions still open", srv->nsessions);
    while (srv->sessions)
        session_free(srv->sessions);
    event_base_loopexit(srv->base, NULL);
}

static void begin_shutdown(server *srv, const char *why)
{
    if (srv->stopping) {
        log_msg(LOG_WARNING, "%s again: closing %d sessions now", why, srv->nsessions);
        while (srv->sessions)
            session_free(srv->sessions);
        event_base_loopexit(srv->base, NULL);
        return;
    }
    srv->stopping = true;
    close_listeners(srv);
    log_msg(LOG_INFO, "%s: not accepting connections; waiting up to %d s for %d sessions to finish",
            why, srv->cfg->shutdown_timeout_s, srv->nsessions);
    pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_ADMIN_SHUTDOWN,
                  .message = "terminating connection due to administrator command"};
    session *next;
    for (session *s = srv->sessions; s; s = next) {
        next = s->next;
        s->draining = true;
        /* a login in progress finishes, and a session that has not yet sent
         * its first request gets its answer (its client connected before the
         * stop, and is about to ask): each is closed once idle after that
         * request, as a busy session is */
        bool logging_in = s->state == SS_PROXY_HEADER || s->state == SS_STARTUP || s->state == SS_AUTH ||
                          s->state == SS_CONNECTING;
        bool fresh = s->state == SS_READY && !s->relay.asked;
        if (!logging_in && !fresh && (s->state != SS_READY || relay_idle(s)))
            session_close(s, &e);
    }
    if (srv->nsessions == 0) {
        event_base_loopexit(srv->base, NULL);
        return;
    }
    struct timeval tv = {srv->cfg->shutdown_timeout_s, 0};
    srv->shutdown_timer = evtimer_new(srv->base, on_shutdown_timeout, srv);
    evtimer_add(srv->shutdown_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    server *srv = arg;
    (void)what;
    if (sig == SIGHUP)
        (void)server_reload(srv);
    else if (sig == SIGUSR1)
        audit_reopen(srv->audit);
    else
        begin_shutdown(srv, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: martgate serve --config FILE [--check]\n"
               "  --config FILE  the JSON configuration (see docs/configuration.md)\n"
               "  --check        validate the configuration and exit\n");
}

int cmd_serve_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *path = NULL;
    bool check = false;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': path = optarg; break;
        case 'k': check = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    char err[1024];
    config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "martgate: %s\n", err);
        return 1;
    }
    if (check) {
        printf("%s: ok (%zu listen addresses, %zu databases, TLS %s)\n", path, cfg->nlisten,
               cfg->ndatabases, cfg->ssl_ctx ? (cfg->allow_plaintext ? "optional" : "required") : "off");
        config_unref(cfg);
        return 0;
    }
    log_set_level((log_level)cfg->log_level);
    signal(SIGPIPE, SIG_IGN);
    server srv = {0};
    srv.cfg = cfg;
    srv.config_path = path;
    srv.started_at = srv.policy_loaded_at = unix_time();
    srv.base = event_base_new();
    if (!srv.base) {
        fprintf(stderr, "martgate: cannot create the event loop\n");
        config_unref(cfg);
        return 1;
    }
    int rc = 1;
    srv.cancel_fwd = cancel_forwarder_new(srv.base, &srv.metrics.cancels[MG_CANCEL_TO_PEER]);
    if (!srv.cancel_fwd) {
        log_msg(LOG_ERROR, "out of memory");
        goto out;
    }
    srv.audit = audit_start(cfg->audit, srv.base, err, sizeof err);
    if (!srv.audit) {
        log_msg(LOG_ERROR, "audit: %s", err);
        goto out;
    }
    if (open_listeners(&srv, err, sizeof err) != 0) {
        log_msg(LOG_ERROR, "%s", err);
        goto out;
    }
    srv.sig_term = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
    srv.sig_int = evsignal_new(srv.base, SIGINT, on_signal, &srv);
    srv.sig_hup = evsignal_new(srv.base, SIGHUP, on_signal, &srv);
    srv.sig_usr1 = evsignal_new(srv.base, SIGUSR1, on_signal, &srv);
    evsignal_add(srv.sig_usr1, NULL);
    evsignal_add(srv.sig_term, NULL);
    evsignal_add(srv.sig_int, NULL);
    evsignal_add(srv.sig_hup, NULL);
    build_catalogs(&srv);
    srv.ops = ops_http_start(&srv, err, sizeof err);
    if (!srv.ops && err[0]) {
        log_msg(LOG_ERROR, "%s", err);
        goto out;
    }
    if (cfg->policy) {
        char summary[256];
        policy_summary(cfg->policy, summary, sizeof summary);
        log_msg(LOG_INFO, "policy %s: %s", cfg->policy_path, summary);
    } else {
        log_msg(LOG_WARNING, "no policy configured: every statement of an authenticated user is allowed");
    }
    if (cfg->peer_id) {
        char peers[512] = "";
        size_t off = 0;
        for (size_t i = 0; i < cfg->npeers && off < sizeof peers; i++)
            off += (size_t)snprintf(peers + off, sizeof peers - off, "%s%d at %s%s", i ? ", " : "",
                                    cfg->peers[i].id, cfg->peers[i].address,
                                    cfg->peers[i].proxy_protocol ? " (PROXY header)" : "");
        log_msg(LOG_INFO, "peer_id %d: cancels whose key names a peer go to it; peers: %s", cfg->peer_id,
                cfg->npeers ? peers : "none");
    }
    log_msg(LOG_INFO, "martgate %s ready (pid %d)", MARTGATE_VERSION, (int)getpid());
    event_base_dispatch(srv.base);
    log_msg(LOG_INFO, "martgate stopped");
    rc = 0;
out:
    while (srv.sessions)
        session_free(srv.sessions);
    close_listeners(&srv);
    ops_http_free(srv.ops);
    for (size_t i = 0; i < srv.ncatalogs; i++)
        catalog_cache_free(srv.catalogs[i]);
    free(srv.catalogs);
    cancel_forwarder_free(srv.cancel_fwd);
    audit_close(srv.audit);   /* every session_end is queued by now */
    if (srv.sig_term) event_free(srv.sig_term);
    if (srv.sig_int) event_free(srv.sig_int);
    if (srv.sig_hup) event_free(srv.sig_hup);
    if (srv.sig_usr1) event_free(srv.sig_usr1);
    if (srv.shutdown_timer) event_free(srv.shutdown_timer);
    event_base_free(srv.base);
    metrics_names_free(&srv.metric_databases);
    metrics_names_free(&srv.metric_datasets);
    jw_free(&srv.trail_scratch);
    config_unref(srv.cfg);
    backend_cancel_drain(3.0);   /* cancels of the last sessions' queries */
    return rc;
}
