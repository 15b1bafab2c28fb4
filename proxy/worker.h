/*
 * worker: one event loop on its own thread, and the sessions it runs. The
 * server (proxy/server) accepts every connection on its own thread and hands
 * each socket to the worker with the fewest sessions; from then on the
 * session lives and dies on that worker's thread alone, so nothing a session
 * touches needs a lock. What a worker owns: its event base, its sessions,
 * its counters (proxy/metrics), its catalog caches, its audit-trail scratch
 * buffer and its snapshot of the configuration (a reference, replaced when
 * a reload posts a new one).
 *
 * Other threads reach a worker only through its inbox:
 *   - worker_post: a message the worker runs later, in order (a socket to
 *     serve, a cancel request, a kill, a new configuration, the stop);
 *   - worker_call: a function the worker runs now while the caller waits,
 *     for reading its state (the admin console's SHOW SESSIONS, a scrape).
 *     A worker that waits on another keeps answering calls made to itself,
 *     so two workers calling each other cannot deadlock; a called function
 *     must only read and copy.
 */
#ifndef MARTGATE_WORKER_H
#define MARTGATE_WORKER_H

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "adapters/catalog.h"
#include "proxy/audit.h"
#include "proxy/config.h"
#include "proxy/jsonw.h"
#include "proxy/metrics.h"

struct server;
struct session;
struct worker_msg;
struct worker_call_req;
struct cancel_forwarder;

typedef struct worker {
    struct server *srv;          /* the process-wide part */
    unsigned index;              /* 0..workers-1, also in every cancel key it hands out */
    struct event_base *base;
    pthread_t thread;
    bool thread_started;
    config *cfg;                 /* the current configuration as this loop last took it */
    audit_log *audit;            /* srv->audit */
    audit_loop *audit_loop;      /* this loop's sessions waiting for audit room */
    struct session *sessions;    /* doubly linked */
    struct session *reap;        /* killed sessions, freed at the next turn of the loop */
    struct event *reap_ev;
    int nsessions;
    atomic_int load;             /* sessions handed to it and not yet gone (the acceptor reads it) */
    metrics_block metrics;       /* this loop's counters */
    jsonw trail_scratch;         /* the audit record being built (proxy/audit_trail.c) */
    catalog_cache **catalogs;    /* per cfg->databases entry, when a policy is loaded */
    size_t ncatalogs;
    bool stopping;
    struct event *shutdown_timer;
    struct cancel_forwarder *cancel_fwd;   /* cancels sent on to peer instances (proxy/cancel_forward) */

    /* the inbox */
    pthread_mutex_t mu;
    int wake_fd;                 /* eventfd: something is in the inbox */
    struct event *wake_ev;
    struct worker_msg *posts, **posts_tail;
    struct worker_call_req *calls;
    bool exited;                 /* the loop has ended: calls return unanswered */
} worker;

typedef void (*worker_fn)(worker *w, void *arg);

/* Creates the worker's loop (not its thread): 0, or -1 with err filled. */
int worker_init(worker *w, struct server *srv, unsigned index, config *cfg, char *err, size_t errlen);
/* Starts the thread running the loop until the worker has stopped. */
int worker_start(worker *w);
/* Joins the thread, frees what is left (sessions, catalogs, the loop). */
void worker_finish(worker *w);

/* Runs fn(w, arg) on w's thread, after what was posted before. arg belongs
 * to the message: fn frees it, or drop(arg) does when the message is never
 * run (the worker is gone). -1 when out of memory (drop has run). */
int worker_post(worker *w, worker_fn fn, void *arg, void (*drop)(void *arg));
/* Runs fn(w, arg) on w's thread and returns when it has (at once when the
 * caller is w's thread; without running it when w has ended). fn must only
 * read w's state and copy it into arg. */
void worker_call(worker *w, worker_fn fn, void *arg);
/* Locks mu; a worker thread keeps answering the calls made to it while it
 * waits (a mutex held by someone who waits on this worker cannot deadlock). */
void worker_mutex_lock(pthread_mutex_t *mu);

/* The session registry of this loop (its thread only). */
void worker_session_added(worker *w, struct session *s);
void worker_session_removed(worker *w, struct session *s);
struct session *worker_find_by_id(worker *w, uint64_t id);
/* Frees s (now DEAD) at the next turn of the loop, outside every callback
 * that may still touch it. */
void worker_reap(worker *w, struct session *s);
struct session *worker_find_by_key(worker *w, uint32_t pid);
/* A cancel key pid no live session of this worker uses, with the worker's
 * index in it (proxy/cancel_key.h says the layout). */
uint32_t worker_new_key_pid(worker *w);

/* The warehouse catalog cache of a client-visible database, or NULL. */
catalog_cache *worker_catalog(worker *w, const char *database);

/* Posted by the server: take configuration c (a reference the message
 * holds) for new sessions and governance, and rebuild the catalogs. */
void worker_take_config(worker *w, void *c);
/* Posted by the server: stop (once), or close everything now (again). */
void worker_begin_shutdown(worker *w, void *why);
/* Called by sessions that became idle while the worker is stopping. */
void worker_maybe_exit(worker *w);

#endif
