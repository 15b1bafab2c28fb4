/*
 * worker: an event loop thread, its sessions and its inbox (see worker.h).
 */
#include "proxy/worker.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "proxy/cancel_forward.h"
#include "proxy/cancel_key.h"
#include "proxy/pgwire.h"
#include "proxy/server.h"
#include "proxy/session.h"

typedef struct worker_msg {
    worker_fn fn;
    void *arg;
    void (*drop)(void *arg);
    struct worker_msg *next;
} worker_msg;

typedef struct worker_call_req {
    worker_fn fn;
    void *arg;
    bool done;                   /* under the callee's mu */
    pthread_cond_t cv;
    struct worker_call_req *next;
} worker_call_req;

static _Thread_local worker *current;

/* ---- the inbox -------------------------------------------------------- */

static void wake(worker *w)
{
    uint64_t one = 1;
    ssize_t rc = write(w->wake_fd, &one, sizeof one);
    (void)rc;
}

/* Answers the calls waiting on w (w's thread). */
static void run_calls(worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->calls) {
        worker_call_req *c = w->calls;
        w->calls = c->next;
        pthread_mutex_unlock(&w->mu);
        c->fn(w, c->arg);
        pthread_mutex_lock(&w->mu);
        c->done = true;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

static void on_inbox(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    (void)what;
    uint64_t v;
    ssize_t rc = read(fd, &v, sizeof v);
    (void)rc;
    run_calls(w);
    pthread_mutex_lock(&w->mu);
    worker_msg *m = w->posts;
    w->posts = NULL;
    w->posts_tail = &w->posts;
    pthread_mutex_unlock(&w->mu);
    while (m) {
        worker_msg *next = m->next;
        m->fn(w, m->arg);
        free(m);
        m = next;
    }
}

int worker_post(worker *w, worker_fn fn, void *arg, void (*drop)(void *arg))
{
    worker_msg *m = calloc(1, sizeof *m);
    if (!m) {
        if (drop)
            drop(arg);
        return -1;
    }
    m->fn = fn;
    m->arg = arg;
    m->drop = drop;
    pthread_mutex_lock(&w->mu);
    *w->posts_tail = m;
    w->posts_tail = &m->next;
    pthread_mutex_unlock(&w->mu);
    wake(w);
    return 0;
}

void worker_call(worker *w, worker_fn fn, void *arg)
{
    worker *me = current;
    if (me == w) {
        fn(w, arg);
        return;
    }
    worker_call_req c = {.fn = fn, .arg = arg};
    pthread_cond_init(&c.cv, NULL);
    pthread_mutex_lock(&w->mu);
    if (w->exited) {
        pthread_mutex_unlock(&w->mu);
        pthread_cond_destroy(&c.cv);
        return;
    }
    c.next = w->calls;
    w->calls = &c;
    pthread_mutex_unlock(&w->mu);
    wake(w);
    pthread_mutex_lock(&w->mu);
    while (!c.done) {
        if (me) {
            /* answer those who call us meanwhile, then look again */
            pthread_mutex_unlock(&w->mu);
            run_calls(me);
            pthread_mutex_lock(&w->mu);
            if (c.done)
                break;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&c.cv, &w->mu, &until);
        } else {
            pthread_cond_wait(&c.cv, &w->mu);
        }
    }
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&c.cv);
}

void worker_mutex_lock(pthread_mutex_t *mu)
{
    worker *me = current;
    if (!me) {
        pthread_mutex_lock(mu);
        return;
    }
    while (pthread_mutex_trylock(mu) != 0) {
        run_calls(me);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

/* ---- sessions --------------------------------------------------------- */

void worker_session_added(worker *w, session *s)
{
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    w->nsessions++;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    (void)fd;
    (void)what;
    while (w->reap)
        session_free(w->reap);   /* takes it off the list */
}

void worker_reap(worker *w, session *s)
{
    s->reap_next = w->reap;
    w->reap = s;
    event_active(w->reap_ev, EV_TIMEOUT, 0);
}

void worker_session_removed(worker *w, session *s)
{
    for (session **pp = &w->reap; *pp; pp = &(*pp)->reap_next)
        if (*pp == s) {
            *pp = s->reap_next;
            break;
        }
    s->reap_next = NULL;
    if (s->prev)
        s->prev->next = s->next;
    else if (w->sessions == s)
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    w->nsessions--;
    server_login_done(w->srv, s);
    server_session_gone(w->srv, w);
    worker_maybe_exit(w);
}

session *worker_find_by_id(worker *w, uint64_t id)
{
    for (session *s = w->sessions; s; s = s->next)
        if (s->id == id && s->state != SS_DEAD)
            return s;
    return NULL;
}

session *worker_find_by_key(worker *w, uint32_t pid)
{
    for (session *s = w->sessions; s; s = s->next)
        if (s->state == SS_READY && s->key_pid == pid)
            return s;
    return NULL;
}

uint32_t worker_new_key_pid(worker *w)
{
    for (;;) {
        uint32_t r;
        RAND_bytes((unsigned char *)&r, sizeof r);
        uint32_t pid = cancel_key_encode(w->srv->peer_id, w->index, r);
        if (!cancel_key_valid(pid))
            continue;
        bool used = false;
        for (session *s = w->sessions; s && !used; s = s->next)
            used = s->key_pid == pid;
        if (!used)
            return pid;
    }
}

/* ---- configuration and catalogs --------------------------------------- */

/* Column lists for masks come from each warehouse's catalog: read at start
 * and on every reload, in the catalog's own threads, one cache per worker
 * (a waiting session is woken on its own loop). */
static void build_catalogs(worker *w)
{
    catalog_cache **old = w->catalogs;
    size_t nold = w->ncatalogs;
    w->catalogs = NULL;
    w->ncatalogs = 0;
    if (w->cfg->policy) {
        w->catalogs = calloc(w->cfg->ndatabases, sizeof *w->catalogs);
        for (size_t i = 0; w->catalogs && i < w->cfg->ndatabases; i++) {
            const config_database *db = &w->cfg->databases[i];
            char err[256];
            w->catalogs[i] = catalog_cache_new(w->base, db->name, db->conninfo, db->password, err, sizeof err);
            if (w->catalogs[i])
                catalog_cache_refresh(w->catalogs[i]);
            else
                log_msg(LOG_ERROR, "%s", err);
        }
        if (w->catalogs)
            w->ncatalogs = w->cfg->ndatabases;
    }
    for (size_t i = 0; i < nold; i++)
        catalog_cache_free(old[i]);
    free(old);
}

catalog_cache *worker_catalog(worker *w, const char *database)
{
    for (size_t i = 0; i < w->ncatalogs; i++)
        if (strcmp(w->cfg->databases[i].name, database) == 0)
            return w->catalogs[i];
    return NULL;
}

void worker_take_config(worker *w, void *c)
{
    config_unref(w->cfg);
    w->cfg = c;
    build_catalogs(w);
}

/* ---- stopping --------------------------------------------------------- */

void worker_maybe_exit(worker *w)
{
    if (w->stopping && w->nsessions == 0)
        event_base_loopexit(w->base, NULL);
}

static void close_all(worker *w)
{
    while (w->sessions)
        session_free(w->sessions);
    event_base_loopexit(w->base, NULL);
}

static void on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    (void)fd;
    (void)what;
    if (w->nsessions)
        log_msg(LOG_WARNING, "shutdown timeout: closing %d sessions still open", w->nsessions);
    close_all(w);
}

void worker_begin_shutdown(worker *w, void *why)
{
    (void)why;
    if (w->stopping) {
        close_all(w);
        return;
    }
    w->stopping = true;
    pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_ADMIN_SHUTDOWN,
                  .message = "terminating connection due to administrator command"};
    session *next;
    for (session *s = w->sessions; s; s = next) {
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
    if (w->nsessions == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    struct timeval tv = {w->cfg->shutdown_timeout_s, 0};
    w->shutdown_timer = evtimer_new(w->base, on_shutdown_timeout, w);
    if (w->shutdown_timer)
        evtimer_add(w->shutdown_timer, &tv);
}

/* ---- life ------------------------------------------------------------- */

int worker_init(worker *w, server *srv, unsigned index, config *cfg, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->srv = srv;
    w->index = index;
    w->cfg = config_ref(cfg);
    w->audit = srv->audit;
    w->wake_fd = -1;
    w->posts_tail = &w->posts;
    pthread_mutex_init(&w->mu, NULL);
    /* two priorities: the inbox (0) runs before the sockets (1), so that a
     * configuration posted by a reload holds before the next statement */
    w->base = event_base_new();
    if (!w->base || event_base_priority_init(w->base, 2) != 0) {
        snprintf(err, errlen, "worker %u: cannot create the event loop", index);
        return -1;
    }
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd >= 0)
        w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_inbox, w);
    w->reap_ev = event_new(w->base, -1, 0, on_reap, w);
    if (!w->reap_ev || !w->wake_ev || event_priority_set(w->wake_ev, 0) != 0 || event_add(w->wake_ev, NULL) != 0) {
        snprintf(err, errlen, "worker %u: cannot create its inbox: %s", index, strerror(errno));
        return -1;
    }
    w->cancel_fwd = cancel_forwarder_new(w->base, &w->metrics.cancels[MG_CANCEL_TO_PEER]);
    if (!w->cancel_fwd) {
        snprintf(err, errlen, "worker %u: out of memory", index);
        return -1;
    }
    if (audit_enabled(srv->audit)) {
        w->audit_loop = audit_loop_attach(srv->audit, w->base);
        if (!w->audit_loop) {
            snprintf(err, errlen, "worker %u: cannot attach to the audit log", index);
            return -1;
        }
    }
    return 0;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    current = w;
    build_catalogs(w);
    event_base_dispatch(w->base);
    /* sessions the loop left (a stop that closed them all at once) */
    while (w->sessions)
        session_free(w->sessions);
    for (size_t i = 0; i < w->ncatalogs; i++)
        catalog_cache_free(w->catalogs[i]);
    free(w->catalogs);
    w->catalogs = NULL;
    w->ncatalogs = 0;
    audit_loop_detach(w->audit_loop);
    w->audit_loop = NULL;
    pthread_mutex_lock(&w->mu);
    w->exited = true;   /* calls made from now on return at once */
    pthread_mutex_unlock(&w->mu);
    run_calls(w);       /* nobody stays waiting on a worker that ended */
    /* (libpg_query frees this thread's memory context at thread exit) */
    server_worker_exited(w->srv, w);
    conn_thread_end();
    current = NULL;
    return NULL;
}

int worker_start(worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        log_msg(LOG_ERROR, "worker %u: cannot start its thread: %s", w->index, strerror(rc));
        return -1;
    }
    w->thread_started = true;
    return 0;
}

void worker_finish(worker *w)
{
    if (w->thread_started)
        pthread_join(w->thread, NULL);
    w->thread_started = false;
    /* what was posted after the loop ended */
    worker_msg *m = w->posts;
    while (m) {
        worker_msg *next = m->next;
        if (m->drop)
            m->drop(m->arg);
        free(m);
        m = next;
    }
    w->posts = NULL;
    if (w->shutdown_timer)
        event_free(w->shutdown_timer);
    cancel_forwarder_free(w->cancel_fwd);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->reap_ev)
        event_free(w->reap_ev);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    if (w->base)
        event_base_free(w->base);
    jw_free(&w->trail_scratch);
    config_unref(w->cfg);
    pthread_mutex_destroy(&w->mu);
}
