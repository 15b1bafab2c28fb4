/*
 * server: the daemon around the sessions. Listening sockets, the list of live
 * sessions (and the cancel keys handed to their clients), signals: SIGHUP
 * reloads the configuration, SIGTERM/SIGINT stop accepting and let sessions
 * finish up to a timeout. `martgate serve` is here.
 */
#ifndef MARTGATE_SERVER_H
#define MARTGATE_SERVER_H

#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdint.h>

#include "adapters/catalog.h"
#include "proxy/audit.h"
#include "proxy/config.h"
#include "proxy/jsonw.h"
#include "proxy/metrics.h"
#include "common/log.h"

struct session;
struct ops_http;
struct cancel_forwarder;

typedef struct server {
    struct event_base *base;
    config *cfg;                 /* current config; sessions hold their own ref */
    const char *config_path;
    struct evconnlistener **listeners;
    size_t nlisteners;
    struct session *sessions;    /* doubly linked */
    int nsessions;
    int npending;                /* sessions not logged in yet */
    log_rate pending_refusals;   /* connections refused for max_pending_* */
    uint64_t next_session_id;
    bool stopping;
    struct event *sig_term, *sig_int, *sig_hup, *sig_usr1, *shutdown_timer;
    audit_log *audit;            /* started once; a reload keeps it */
    struct cancel_forwarder *cancel_fwd;   /* cancels sent on to peer instances (proxy/cancel_forward) */
    jsonw trail_scratch;         /* the audit record being built, one at a time for every
                                  * session of this loop (proxy/audit_trail.c) */
    catalog_cache **catalogs;    /* per cfg->databases entry, when a policy is loaded */
    size_t ncatalogs;
    /* operations (proxy/ops_http, proxy/metrics) */
    metrics_block metrics;       /* this event loop's counters */
    metrics_names metric_databases, metric_datasets;
    struct ops_http *ops;
    double started_at, policy_loaded_at;   /* Unix seconds */
    uint64_t reloads_ok, reloads_failed;
    double warehouse_ok_at[METRICS_MAX_NAMES];   /* monotonic, by metric_databases index */
    char warehouse_error[METRICS_MAX_NAMES][200];
    char last_reload_error[1024]; /* "" when the last reload worked */
} server;

/* Loads the configuration file again (SIGHUP, the admin console's RELOAD):
 * 0, or -1 keeping the running one (last_reload_error says why). */
int server_reload(server *srv);
/* The live session of that id, or NULL. */
struct session *server_find_by_id(server *srv, uint64_t id);

/* The warehouse catalog cache of a client-visible database, or NULL. */
catalog_cache *server_catalog(server *srv, const char *database);

void server_session_removed(server *srv, struct session *s);
/* Session s has logged in (or is gone): it no longer counts as pending. */
void server_login_done(server *srv, struct session *s);
/* Once a PROXY header named session s's client: false (logged and counted)
 * when that address already has limits.max_pending_per_address connections
 * not logged in. */
bool server_pending_address_ok(server *srv, struct session *s);
/* The live session whose client was given this cancel key pid, or NULL. */
struct session *server_find_by_key(server *srv, uint32_t pid);
/* Picks a cancel key pid no live session uses, in the layout of
 * proxy/cancel_key.h: the configuration's peer_id, worker 0, random bits. */
uint32_t server_new_key_pid(server *srv);
/* Called by sessions that became idle while the server is stopping. */
void server_maybe_exit(server *srv);

#endif
