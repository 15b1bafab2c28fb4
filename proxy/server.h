/*
 * server: the daemon around the workers. On its own thread and loop: the
 * listening sockets (one acceptor hands each connection to the worker with
 * the fewest sessions), the limits that count across workers, signals
 * (SIGHUP reloads the configuration, SIGTERM/SIGINT stop accepting and let
 * the workers drain their sessions up to a timeout), the operations HTTP
 * listener. `martgate serve` is here. proxy/worker runs the sessions.
 */
#ifndef MARTGATE_SERVER_H
#define MARTGATE_SERVER_H

#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "adapters/catalog.h"
#include "common/log.h"
#include "proxy/audit.h"
#include "proxy/cancel_key.h"
#include "proxy/config.h"
#include "proxy/metrics.h"
#include "proxy/worker.h"

struct session;
struct ops_http;
struct pending_addr;

typedef struct server {
    struct event_base *base;     /* the server thread's loop */
    const char *config_path;
    struct evconnlistener **listeners;
    size_t nlisteners;
    worker *workers;
    unsigned nworkers;
    unsigned peer_id;            /* this instance's, in every cancel key (taken at start) */
    atomic_bool stopping;
    atomic_int nsessions;        /* every worker's, counted from accept (limits.max_clients) */
    atomic_int npending;         /* not logged in yet (limits.max_pending_logins) */
    atomic_uint_fast64_t next_session_id;
    atomic_int workers_exited;
    int exited_fd;               /* eventfd: a worker's loop has ended */
    struct event *exited_ev;
    struct event *sig_term, *sig_int, *sig_hup, *sig_usr1;
    audit_log *audit;            /* started once; a reload keeps it */
    metrics_names metric_databases, metric_datasets;   /* shared (metrics.c locks them) */
    struct ops_http *ops;

    /* limits.max_pending_per_address across workers */
    pthread_mutex_t pending_mu;
    struct pending_addr *pending_addrs;
    size_t npending_addrs, pending_cap;
    log_rate pending_refusals;

    pthread_mutex_t reload_mu;   /* one reload at a time (SIGHUP, the admin console's RELOAD) */
    pthread_mutex_t mu;          /* what follows */
    config *cfg;                 /* the current configuration (server_config to read it elsewhere) */
    metrics_block metrics;       /* the acceptor's own counters (connections refused) */
    double started_at, policy_loaded_at;   /* Unix seconds */
    uint64_t reloads_ok, reloads_failed;
    double warehouse_ok_at[METRICS_MAX_NAMES];   /* monotonic, by metric_databases index */
    char warehouse_error[METRICS_MAX_NAMES][200];
    char last_reload_error[1024]; /* "" when the last reload worked */
} server;

/* Loads the configuration file again (SIGHUP, the admin console's RELOAD)
 * and hands it to every worker: 0 once each has taken it, or -1 keeping
 * the running one (err says why). Any thread. */
int server_reload(server *srv, char *err, size_t errlen);
/* The current configuration, a reference (config_unref it). Any thread. */
config *server_config(server *srv);

/* Session s has logged in (or is gone): it no longer counts as pending.
 * The session's worker thread. */
void server_login_done(server *srv, struct session *s);
/* A session of w has gone (worker_session_removed). */
void server_session_gone(server *srv, worker *w);
/* Once a PROXY header named session s's client: false (logged and counted)
 * when that address already has limits.max_pending_per_address connections
 * not logged in. */
bool server_pending_address_ok(server *srv, struct session *s);
/* A worker's thread is ending (its loop has returned). */
void server_worker_exited(server *srv, worker *w);

/* What the scrape and the admin console's SHOW STATS report: a copy of
 * every loop's counters (taken on each worker's thread) and the sessions by
 * state and database. */
typedef struct {
    metrics_block *blocks;       /* n: the workers' and the acceptor's */
    const metrics_block **ptrs;
    size_t n;
    metrics_session_count counts[64];
    size_t ncounts;
    int sessions_ready_by_db[METRICS_MAX_NAMES];   /* READY sessions by metric_databases index */
} server_snapshot;
int server_snapshot_take(server *srv, server_snapshot *snap);
void server_snapshot_free(server_snapshot *snap);
/* The server's part of a scrape (start, reloads, policy, audit log). The
 * policy hash is copied into hash (65 bytes). */
void server_metrics_info(server *srv, metrics_info *info, char hash[65]);

/* The warehouse health /readyz and SHOW DATABASES report. Any thread. */
void server_warehouse_outcome(server *srv, const char *database, const char *error);
/* Monotonic time of the last connection database k accepted (0: never) and
 * the last error, into err. */
double server_warehouse_state(server *srv, unsigned k, char *err, size_t errlen);

/* Runs fn on every worker's thread in turn (worker_call), the caller's own
 * included; fn only reads and copies into arg. */
void server_each_worker(server *srv, worker_fn fn, void *arg);
#endif
