/*
 * server: the acceptor, the limits across workers, signals, reload, the
 * graceful stop, and `martgate serve --config FILE [--check]`.
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
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy/commands.h"
#include "common/clock.h"
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

/* ---- limits across workers ------------------------------------------- */

typedef struct pending_addr {
    char addr[64];
    int n;
} pending_addr;

/* Counts one more connection not logged in from addr, unless it has `limit`
 * already: the count before, or -1 (*n_out has it) when at the limit. */
static int pending_try_add(server *srv, const char *addr, int limit, int *n_out)
{
    pthread_mutex_lock(&srv->pending_mu);
    size_t i = 0;
    while (i < srv->npending_addrs && strcmp(srv->pending_addrs[i].addr, addr) != 0)
        i++;
    int n = i < srv->npending_addrs ? srv->pending_addrs[i].n : 0;
    *n_out = n;
    int rc = -1;
    if (n < limit) {
        if (i == srv->npending_addrs) {
            if (srv->npending_addrs == srv->pending_cap) {
                size_t cap = srv->pending_cap ? srv->pending_cap * 2 : 16;
                pending_addr *p = realloc(srv->pending_addrs, cap * sizeof *p);
                if (!p)
                    goto out;
                srv->pending_addrs = p;
                srv->pending_cap = cap;
            }
            snprintf(srv->pending_addrs[i].addr, sizeof srv->pending_addrs[i].addr, "%s", addr);
            srv->pending_addrs[i].n = 0;
            srv->npending_addrs++;
        }
        srv->pending_addrs[i].n++;
        rc = n;
    }
out:
    pthread_mutex_unlock(&srv->pending_mu);
    return rc;
}

static void pending_remove(server *srv, const char *addr)
{
    pthread_mutex_lock(&srv->pending_mu);
    for (size_t i = 0; i < srv->npending_addrs; i++) {
        if (strcmp(srv->pending_addrs[i].addr, addr) == 0) {
            if (--srv->pending_addrs[i].n == 0)
                srv->pending_addrs[i] = srv->pending_addrs[--srv->npending_addrs];
            break;
        }
    }
    pthread_mutex_unlock(&srv->pending_mu);
}

void server_login_done(server *srv, session *s)
{
    if (s->pending) {
        s->pending = false;
        atomic_fetch_sub(&srv->npending, 1);
    }
    if (s->pending_counted) {
        s->pending_counted = false;
        pending_remove(srv, s->client_addr);
    }
}

void server_session_gone(server *srv, worker *w)
{
    atomic_fetch_sub(&srv->nsessions, 1);
    atomic_fetch_sub(&w->load, 1);
}

/* The acceptor's own counter of a limit (read by scrapes under mu). */
static void count_refusal(server *srv, metrics_limit limit)
{
    pthread_mutex_lock(&srv->mu);
    srv->metrics.limits[limit]++;
    pthread_mutex_unlock(&srv->mu);
}

/* n: the connections from peer not logged in yet, besides the refused one.
 * m: the counters of the calling worker, or NULL for the acceptor's. */
static void log_pending_refusal(server *srv, metrics_block *m, const char *peer, bool total, int n)
{
    metrics_limit limit = total ? MG_LIMIT_MAX_PENDING_LOGINS : MG_LIMIT_MAX_PENDING_PER_ADDRESS;
    if (m)
        m->limits[limit]++;
    else
        count_refusal(srv, limit);
    unsigned long more;
    if (log_rate_ok(&srv->pending_refusals, &more))
        log_msg(LOG_WARNING, "refused a connection from %s: %d connections %s not logged in yet (limits.%s)%s",
                peer, n, total ? "in all" : "from there",
                total ? "max_pending_logins" : "max_pending_per_address",
                more ? " (and more not logged in the last second)" : "");
}

bool server_pending_address_ok(server *srv, session *s)
{
    int n;
    if (pending_try_add(srv, s->client_addr, s->cfg->max_pending_per_address, &n) >= 0) {
        s->pending_counted = true;
        return true;
    }
    log_pending_refusal(srv, &s->wk->metrics, s->client_addr, false, n);
    return false;
}

/* ---- accepting -------------------------------------------------------- */

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

/* A connection handed to a worker. */
typedef struct accepted {
    int fd;
    struct sockaddr_storage addr;
    int addrlen;
    bool over, counted;
    char peer[64];
} accepted;

/* What accept counted, undone: the connection never became a session. */
static void accepted_undo(accepted *a, worker *w)
{
    atomic_fetch_sub(&w->srv->nsessions, 1);
    atomic_fetch_sub(&w->srv->npending, 1);
    atomic_fetch_sub(&w->load, 1);
    if (a->counted)
        pending_remove(w->srv, a->peer);
}

static void on_handed(worker *w, void *arg)
{
    accepted *a = arg;
    session *s = w->stopping ? NULL : session_new(w, w->cfg, a->fd, (struct sockaddr *)&a->addr, a->addrlen);
    if (!s) {
        if (w->stopping)
            refuse_now(a->fd, SQLSTATE_CANNOT_CONNECT_NOW, "martgate is shutting down");
        else {
            log_msg(LOG_ERROR, "out of memory accepting a connection");
            close(a->fd);
        }
        accepted_undo(a, w);
        free(a);
        return;
    }
    s->over_limit = a->over;
    s->pending = true;
    s->pending_counted = a->counted;
    worker_session_added(w, s);
    free(a);
}

static void on_handed_dropped(void *arg)
{
    accepted *a = arg;
    close(a->fd);
    /* the counters go with the process */
    free(a);
}

static worker *least_loaded(server *srv)
{
    worker *best = &srv->workers[0];
    int load = atomic_load(&best->load);
    for (unsigned i = 1; i < srv->nworkers; i++) {
        int l = atomic_load(&srv->workers[i].load);
        if (l < load) {
            best = &srv->workers[i];
            load = l;
        }
    }
    return best;
}

static void accept_one(server *srv, const config *cfg, int fd, struct sockaddr *addr, int len)
{
    /* Beyond max_clients a session still gets its TLS handshake and startup
     * packet read, so the client can show why it is refused (libpq does not
     * show an error sent in answer to SSLRequest); beyond a margin more, the
     * socket is refused at once to bound memory. Only this thread adds to
     * the counts, so a check here holds until the add. */
    int nsessions = atomic_load(&srv->nsessions);
    bool over = nsessions >= cfg->max_clients;
    if (over)
        count_refusal(srv, MG_LIMIT_MAX_CLIENTS);
    if (nsessions >= cfg->max_clients + 64) {
        log_msg(LOG_WARNING, "refused a connection: %d clients already (limits.max_clients)", nsessions);
        refuse_now(fd, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many clients already");
        return;
    }
    if (over)
        log_msg(LOG_WARNING, "refusing a connection: %d clients already (limits.max_clients)", nsessions);
    /* Handshakes not done yet (nobody has logged in on them) may hold only
     * so many of the slots, and only so many from one address: a client
     * that opens connections and never logs in cannot take the room of
     * those who do. */
    accepted *a = calloc(1, sizeof *a);
    if (!a) {
        log_msg(LOG_ERROR, "out of memory accepting a connection");
        close(fd);
        return;
    }
    a->fd = fd;
    a->over = over;
    a->addrlen = len < (int)sizeof a->addr ? len : (int)sizeof a->addr;
    memcpy(&a->addr, addr, (size_t)a->addrlen);
    session_address(addr, a->peer, sizeof a->peer);
    int npending = atomic_load(&srv->npending);
    if (npending >= cfg->max_pending_logins) {
        log_pending_refusal(srv, NULL, a->peer, true, npending);
        refuse_now(fd, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many connections waiting to log in");
        free(a);
        return;
    }
    /* a load balancer's connections are counted under the address its
     * PROXY header names, once read (server_pending_address_ok) */
    if (!proxy_cidr_list_match(cfg->proxy_trusted, cfg->n_proxy_trusted, addr)) {
        int n;
        if (pending_try_add(srv, a->peer, cfg->max_pending_per_address, &n) < 0) {
            log_pending_refusal(srv, NULL, a->peer, false, n);
            refuse_now(fd, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many connections waiting to log in");
            free(a);
            return;
        }
        a->counted = true;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    atomic_fetch_add(&srv->nsessions, 1);
    atomic_fetch_add(&srv->npending, 1);
    worker *w = least_loaded(srv);
    atomic_fetch_add(&w->load, 1);
    worker_post(w, on_handed, a, on_handed_dropped);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int len, void *arg)
{
    server *srv = arg;
    (void)l;
    if (atomic_load(&srv->stopping)) {
        refuse_now(fd, SQLSTATE_CANNOT_CONNECT_NOW, "martgate is shutting down");
        return;
    }
    config *cfg = server_config(srv);
    accept_one(srv, cfg, fd, addr, len);
    config_unref(cfg);
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

static bool same_listen(const config *a, const config *b)
{
    if (a->nlisten != b->nlisten)
        return false;
    for (size_t i = 0; i < a->nlisten; i++)
        if (strcmp(a->listen[i], b->listen[i]) != 0)
            return false;
    return true;
}

config *server_config(server *srv)
{
    pthread_mutex_lock(&srv->mu);
    config *c = config_ref(srv->cfg);
    pthread_mutex_unlock(&srv->mu);
    return c;
}

static void drop_config(void *c) { config_unref(c); }
static void barrier(worker *w, void *arg) { (void)w; (void)arg; }

int server_reload(server *srv, char *err, size_t errlen)
{
    /* a reload waits on every worker: one that runs the admin console's
     * RELOAD keeps answering the others while it waits for this lock */
    worker_mutex_lock(&srv->reload_mu);
    config *c = config_load(srv->config_path, err, errlen);
    pthread_mutex_lock(&srv->mu);
    if (!c) {
        srv->reloads_failed++;
        snprintf(srv->last_reload_error, sizeof srv->last_reload_error, "%s", err);
        pthread_mutex_unlock(&srv->mu);
        pthread_mutex_unlock(&srv->reload_mu);
        log_msg(LOG_ERROR, "reload failed, keeping the running configuration: %s", err);
        return -1;
    }
    config *old = srv->cfg;
    srv->cfg = c;
    srv->last_reload_error[0] = 0;
    srv->reloads_ok++;
    srv->policy_loaded_at = unix_time();
    pthread_mutex_unlock(&srv->mu);
    if (!same_listen(old, c))
        log_msg(LOG_WARNING, "reload: listen addresses changed; that takes a restart");
    if ((old->metrics_listen == NULL) != (c->metrics_listen == NULL) ||
        (c->metrics_listen && strcmp(old->metrics_listen, c->metrics_listen) != 0))
        log_msg(LOG_WARNING, "reload: metrics.listen changed; that takes a restart");
    if (!audit_settings_same(old->audit, c->audit))
        log_msg(LOG_WARNING, "reload: the audit section changed; the running audit log keeps its settings until a restart");
    if (old->workers != c->workers)
        log_msg(LOG_WARNING, "reload: workers changed; that takes a restart");
    if (old->peer_id != c->peer_id)
        log_msg(LOG_WARNING, "reload: peer_id changed from %d to %d; that takes a restart (cancel keys keep %u)",
                old->peer_id, c->peer_id, srv->peer_id);
    config_unref(old);
    log_set_level((log_level)c->log_level);
    /* every worker takes it (the inbox runs before the sockets); the
     * barrier returns once each has run what was posted before it */
    for (unsigned i = 0; i < srv->nworkers; i++)
        worker_post(&srv->workers[i], worker_take_config, config_ref(c), drop_config);
    for (unsigned i = 0; i < srv->nworkers; i++)
        worker_call(&srv->workers[i], barrier, NULL);
    pthread_mutex_unlock(&srv->reload_mu);
    log_msg(LOG_INFO, "configuration reloaded from %s (TLS certificate, JWT keys, databases, limits); "
                      "%d sessions keep theirs", srv->config_path, atomic_load(&srv->nsessions));
    return 0;
}

void server_each_worker(server *srv, worker_fn fn, void *arg)
{
    for (unsigned i = 0; i < srv->nworkers; i++)
        worker_call(&srv->workers[i], fn, arg);
}

/* ---- what a scrape reads ---------------------------------------------- */

typedef struct {
    server_snapshot *snap;
    size_t next;
} snapshot_walk;

static void snapshot_worker(worker *w, void *arg)
{
    snapshot_walk *sw = arg;
    server_snapshot *snap = sw->snap;
    snap->blocks[sw->next++] = w->metrics;
    for (const session *s = w->sessions; s; s = s->next) {
        const char *st = session_state_name(s->state);
        unsigned db = s->metrics_db;
        if (s->state == SS_READY && db < METRICS_MAX_NAMES)
            snap->sessions_ready_by_db[db]++;
        size_t i = 0;
        while (i < snap->ncounts && !(snap->counts[i].database == db && strcmp(snap->counts[i].state, st) == 0))
            i++;
        if (i == snap->ncounts) {
            if (snap->ncounts == sizeof snap->counts / sizeof *snap->counts)
                continue;
            snap->counts[snap->ncounts++] = (metrics_session_count){st, db, 0};
        }
        snap->counts[i].n++;
    }
}

int server_snapshot_take(server *srv, server_snapshot *snap)
{
    memset(snap, 0, sizeof *snap);
    snap->n = srv->nworkers + 1;
    snap->blocks = calloc(snap->n, sizeof *snap->blocks);
    snap->ptrs = calloc(snap->n, sizeof *snap->ptrs);
    if (!snap->blocks || !snap->ptrs) {
        server_snapshot_free(snap);
        return -1;
    }
    snapshot_walk sw = {snap, 0};
    server_each_worker(srv, snapshot_worker, &sw);
    pthread_mutex_lock(&srv->mu);
    snap->blocks[sw.next++] = srv->metrics;
    pthread_mutex_unlock(&srv->mu);
    snap->n = sw.next;   /* a worker that had ended answered nothing */
    for (size_t i = 0; i < snap->n; i++)
        snap->ptrs[i] = &snap->blocks[i];
    return 0;
}

void server_snapshot_free(server_snapshot *snap)
{
    free(snap->blocks);
    free(snap->ptrs);
    memset(snap, 0, sizeof *snap);
}

void server_metrics_info(server *srv, metrics_info *info, char hash[65])
{
    audit_stats as;
    audit_get_stats(srv->audit, &as);
    pthread_mutex_lock(&srv->mu);
    info->start_time = srv->started_at;
    info->reloads_ok = srv->reloads_ok;
    info->reloads_failed = srv->reloads_failed;
    info->policy_loaded_at = srv->policy_loaded_at;
    hash[0] = 0;
    if (srv->cfg->policy)
        snprintf(hash, 65, "%s", srv->cfg->policy_sha256);
    pthread_mutex_unlock(&srv->mu);
    info->policy_hash = hash[0] ? hash : NULL;
    info->audit_enabled = audit_enabled(srv->audit);
    info->audit_warehouse = as.warehouse;
    info->audit_written = as.written;
    info->audit_refused = as.refused;
    info->audit_queued = as.queued;
    info->audit_queue_size = as.queue_size;
    info->audit_wh_inserted = as.warehouse_inserted;
    info->audit_wh_spooled = as.warehouse_spooled;
    info->audit_wh_replayed = as.warehouse_replayed;
    info->audit_wh_pending = as.warehouse_pending;
    info->audit_wh_dropped = as.warehouse_dropped;
    info->audit_wh_connected = as.warehouse_connected;
}

void server_warehouse_outcome(server *srv, const char *database, const char *error)
{
    unsigned k = metrics_name(&srv->metric_databases, database);
    pthread_mutex_lock(&srv->mu);
    if (!error) {
        srv->warehouse_ok_at[k] = clock_mono_s();
        srv->warehouse_error[k][0] = 0;
    } else {
        snprintf(srv->warehouse_error[k], sizeof srv->warehouse_error[k], "%s", error);
        size_t l = strlen(srv->warehouse_error[k]);
        while (l && srv->warehouse_error[k][l - 1] == '\n')
            srv->warehouse_error[k][--l] = 0;
    }
    pthread_mutex_unlock(&srv->mu);
}

double server_warehouse_state(server *srv, unsigned k, char *err, size_t errlen)
{
    if (k >= METRICS_MAX_NAMES) {
        err[0] = 0;
        return 0;
    }
    pthread_mutex_lock(&srv->mu);
    double at = srv->warehouse_ok_at[k];
    snprintf(err, errlen, "%s", srv->warehouse_error[k]);
    pthread_mutex_unlock(&srv->mu);
    return at;
}

/* ---- stopping --------------------------------------------------------- */

void server_worker_exited(server *srv, worker *w)
{
    (void)w;
    atomic_fetch_add(&srv->workers_exited, 1);
    uint64_t one = 1;
    ssize_t rc = write(srv->exited_fd, &one, sizeof one);
    (void)rc;
}

static void on_worker_exited(evutil_socket_t fd, short what, void *arg)
{
    server *srv = arg;
    (void)what;
    uint64_t v;
    ssize_t rc = read(fd, &v, sizeof v);
    (void)rc;
    if ((unsigned)atomic_load(&srv->workers_exited) >= srv->nworkers)
        event_base_loopexit(srv->base, NULL);
}

static void begin_shutdown(server *srv, const char *why)
{
    if (atomic_load(&srv->stopping)) {
        log_msg(LOG_WARNING, "%s again: closing %d sessions now", why, atomic_load(&srv->nsessions));
    } else {
        atomic_store(&srv->stopping, true);
        close_listeners(srv);
        config *cfg = server_config(srv);
        log_msg(LOG_INFO, "%s: not accepting connections; waiting up to %d s for %d sessions to finish",
                why, cfg->shutdown_timeout_s, atomic_load(&srv->nsessions));
        config_unref(cfg);
    }
    for (unsigned i = 0; i < srv->nworkers; i++)
        worker_post(&srv->workers[i], worker_begin_shutdown, NULL, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    server *srv = arg;
    (void)what;
    char err[1024];
    if (sig == SIGHUP)
        (void)server_reload(srv, err, sizeof err);
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
    server *srv = calloc(1, sizeof *srv);   /* the workers point at it */
    if (!srv) {
        config_unref(cfg);
        return 1;
    }
    srv->cfg = cfg;
    srv->config_path = path;
    srv->peer_id = (unsigned)cfg->peer_id;   /* in every cancel key: a restart changes it */
    srv->started_at = srv->policy_loaded_at = unix_time();
    srv->exited_fd = -1;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_mutex_init(&srv->reload_mu, NULL);
    pthread_mutex_init(&srv->pending_mu, NULL);
    int rc = 1;
    srv->base = event_base_new();
    if (!srv->base) {
        log_msg(LOG_ERROR, "cannot create the event loop");
        goto out;
    }
    srv->audit = audit_start(cfg->audit, srv->base, err, sizeof err);
    if (!srv->audit) {
        log_msg(LOG_ERROR, "audit: %s", err);
        goto out;
    }
    srv->nworkers = (unsigned)cfg->workers;
    srv->workers = calloc(srv->nworkers, sizeof *srv->workers);
    if (!srv->workers) {
        srv->nworkers = 0;
        goto out;
    }
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (worker_init(&srv->workers[i], srv, i, cfg, err, sizeof err) != 0) {
            log_msg(LOG_ERROR, "%s", err);
            srv->nworkers = i + 1;   /* worker_finish frees what it made */
            goto out;
        }
    }
    srv->exited_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->exited_fd >= 0)
        srv->exited_ev = event_new(srv->base, srv->exited_fd, EV_READ | EV_PERSIST, on_worker_exited, srv);
    if (!srv->exited_ev || event_add(srv->exited_ev, NULL) != 0) {
        log_msg(LOG_ERROR, "cannot create an event: %s", strerror(errno));
        goto out;
    }
    if (open_listeners(srv, err, sizeof err) != 0) {
        log_msg(LOG_ERROR, "%s", err);
        goto out;
    }
    srv->sig_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
    srv->sig_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
    srv->sig_hup = evsignal_new(srv->base, SIGHUP, on_signal, srv);
    srv->sig_usr1 = evsignal_new(srv->base, SIGUSR1, on_signal, srv);
    evsignal_add(srv->sig_usr1, NULL);
    evsignal_add(srv->sig_term, NULL);
    evsignal_add(srv->sig_int, NULL);
    evsignal_add(srv->sig_hup, NULL);
    srv->ops = ops_http_start(srv, err, sizeof err);
    if (!srv->ops && err[0]) {
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
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (worker_start(&srv->workers[i]) != 0) {
            /* those not started count as ended */
            atomic_fetch_add(&srv->workers_exited, (int)(srv->nworkers - i));
            begin_shutdown(srv, "a worker did not start");
            if ((unsigned)atomic_load(&srv->workers_exited) >= srv->nworkers)
                goto out;
            break;
        }
    }
    log_msg(LOG_INFO, "martgate %s ready (pid %d), %u worker threads", MARTGATE_VERSION, (int)getpid(),
            srv->nworkers);
    event_base_dispatch(srv->base);
    log_msg(LOG_INFO, "martgate stopped");
    rc = 0;
out:
    /* a start that failed half-way: workers not started end here */
    if ((unsigned)atomic_load(&srv->workers_exited) < srv->nworkers && rc != 0) {
        atomic_store(&srv->stopping, true);
        for (unsigned i = 0; i < srv->nworkers; i++)
            if (srv->workers[i].thread_started)
                worker_post(&srv->workers[i], worker_begin_shutdown, NULL, NULL);
    }
    close_listeners(srv);
    for (unsigned i = 0; i < srv->nworkers; i++)
        worker_finish(&srv->workers[i]);   /* joins: every session_end is queued by then */
    free(srv->workers);
    ops_http_free(srv->ops);
    audit_close(srv->audit);
    if (srv->sig_term) event_free(srv->sig_term);
    if (srv->sig_int) event_free(srv->sig_int);
    if (srv->sig_hup) event_free(srv->sig_hup);
    if (srv->sig_usr1) event_free(srv->sig_usr1);
    if (srv->exited_ev) event_free(srv->exited_ev);
    if (srv->exited_fd >= 0) close(srv->exited_fd);
    if (srv->base)
        event_base_free(srv->base);
    metrics_names_free(&srv->metric_databases);
    metrics_names_free(&srv->metric_datasets);
    free(srv->pending_addrs);
    config_unref(srv->cfg);
    pthread_mutex_destroy(&srv->mu);
    pthread_mutex_destroy(&srv->reload_mu);
    pthread_mutex_destroy(&srv->pending_mu);
    free(srv);
    backend_cancel_drain(3.0);   /* cancels of the last sessions' queries */
    return rc;
}
