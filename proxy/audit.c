/*
 * audit: the audit trail's queue and writer thread (see audit.h). The event
 * loop only copies a record (JSON text) into a bounded batch; one writer
 * thread takes the batch, adds what the query_text mode says of each
 * statement's text (fingerprint, normalized text), appends JSON lines to the file,
 * fsyncs, reopens on request between batches and hands every written line to
 * the warehouse sink. A failed write is rolled back (ftruncate to the size
 * before it), logged with the count of records concerned, and retried.
 */
#include "proxy/audit.h"
#include "proxy/audit_internal.h"
#include "proxy/audit_query.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <pg_query.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proxy/audit_pg.h"
#include "common/clock.h"
#include "common/log.h"
#include "proxy/secret_file.h"

#define AUDIT_WRITER_TICK_MS 10        /* polling interval while records keep coming */
#define AUDIT_RETRY_MIN_MS 100
#define AUDIT_RETRY_MAX_MS 5000
#define AUDIT_REOPEN_RETRY_MS 1000



/* One record in a batch: this header, then its members (JSON without the
 * braces), the statement's text and its normalized text when it has them,
 * each NUL-terminated, padded to 8 bytes. */
typedef struct audit_node {
    uint32_t len, qlen, nlen;
    bool has_query, has_normalized;
    char data[];
} audit_node;

/* Records one after another in one buffer. Sessions append to the log's
 * front batch; the writer swaps it with its own, emptied one and writes
 * that: no allocation per record in steady state, and no memory handed
 * from one thread's malloc arena to the other's. */
typedef struct {
    char *data;
    size_t len, cap;
    size_t count;
} audit_batch;

static size_t node_size(const audit_node *nd)
{
    size_t n = sizeof *nd + nd->len + 1 + (nd->has_query ? nd->qlen + 1 : 0) + (nd->has_normalized ? nd->nlen + 1 : 0);
    return (n + 7) & ~(size_t)7;
}

#define BATCH_FOREACH(b, nd) \
    for (audit_node *nd = (audit_node *)(void *)(b)->data; (char *)nd < (b)->data + (b)->len; \
         nd = (audit_node *)(void *)((char *)nd + node_size(nd)))

typedef struct audit_waiter {
    void (*cb)(void *arg);
    void *arg;
    struct audit_waiter *next;
} audit_waiter;

/* One event loop's sessions waiting for room, woken on that loop's thread
 * through its own eventfd (each worker thread attaches one). */
struct audit_loop {
    audit_log *a;
    struct event_base *base;
    int wake_fd;
    struct event *wake_ev;
    bool wake_added;            /* the loop's thread only */
    audit_waiter *waiters;      /* waiting for room (a->mu) */
    audit_waiter *firing;       /* being called back now (a->mu) */
    struct audit_loop *next;    /* a->loops (a->mu) */
};

struct audit_log {
    bool enabled;
    audit_settings cfg;
    audit_loop *loop0;          /* the loop audit_start was given */
    audit_loop *loops;          /* every attached loop (mu) */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;     /* the writer waits on it */
    pthread_cond_t idle_cv;     /* tests wait for the writer to be idle */
    audit_batch front;          /* records waiting (count: front.count) */
    size_t count;
    bool stopping, paused, reopen_req, busy, writer_waiting;
    bool writer_ticking;   /* records came lately: the writer polls instead of being woken */
    bool writer_polls;     /* the writer's current wait ends by itself within a tick */
    bool any_waiters;           /* some loop has waiters (mu) */
    pthread_t thread;
    bool thread_started;
    audit_stats stats;

    /* writer thread only */
    int fd;
    bool dirty;
    int64_t last_sync_ms;
    int64_t reopen_not_before_ms;
    int64_t stop_failing_since;   /* first failed write after the stop request */
    jsonw buf;
    audit_batch back;           /* the batch being written */

    audit_pg *pg;
};

/* ------------------------------------------------------------ helpers -- */



void audit_timestamp(char buf[32])
{
    /* every statement gets one: the date and time are formatted once a
     * second per thread, the microseconds by hand */
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[24];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    size_t n = strlen(cached);
    memcpy(buf, cached, n);
    long us = ts.tv_nsec / 1000;
    buf[n++] = '.';
    for (int i = 5; i >= 0; i--, us /= 10)
        buf[n + (size_t)i] = (char)('0' + us % 10);
    n += 6;
    buf[n++] = 'Z';
    buf[n] = 0;
}



/* ------------------------------------------------------------- writer -- */

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void sync_file(audit_log *a)
{
    if (!a->dirty)
        return;
    if (fdatasync(a->fd) != 0)
        log_msg(LOG_ERROR, "audit: fsync of %s failed: %s (records written since the last fsync may not be "
                           "on disk)", a->cfg.file, strerror(errno));
    a->dirty = false;
    a->last_sync_ms = clock_mono_ms();
}

/* Writer thread, lock not held: closes the file and opens it again by its
 * path. On failure the old descriptor stays in use (nothing is lost) and the
 * reopen is tried again later. */
static void do_reopen(audit_log *a)
{
    int fd = open_file(a->cfg.file);
    if (fd < 0) {
        int e = errno;
        log_msg(LOG_ERROR, "audit: cannot reopen %s: %s; still writing to the file opened before, retrying "
                           "in %d ms", a->cfg.file, strerror(e), AUDIT_REOPEN_RETRY_MS);
        pthread_mutex_lock(&a->mu);
        a->reopen_req = true;
        a->reopen_not_before_ms = clock_mono_ms() + AUDIT_REOPEN_RETRY_MS;
        pthread_mutex_unlock(&a->mu);
        return;
    }
    sync_file(a);
    close(a->fd);
    a->fd = fd;
    log_msg(LOG_INFO, "audit: reopened %s", a->cfg.file);
}

/* Appends a record as one line to the writer's buffer: its members, then
 * what its query text gives by query_text mode. jsonw escapes control
 * characters, so a record is exactly one line. */
static bool serialize(audit_log *a, const audit_node *nd)
{
    size_t before = a->buf.len;
    jw_raw(&a->buf, "{", 1);
    jw_raw(&a->buf, nd->data, nd->len);
    if (nd->has_query) {
        const char *q = nd->data + nd->len + 1;
        const char *norm = nd->has_normalized ? q + nd->qlen + 1 : NULL;
        audit_query_members(a->cfg.qmode, q, nd->qlen, norm, nd->nlen, &a->buf);
    }
    jw_raw(&a->buf, "}\n", 2);
    if (a->buf.oom) {
        a->buf.oom = false;
        a->buf.len = before;
        return false;
    }
    return true;
}

static void dump_to_stderr(const char *data, size_t len)
{
    static const char prefix[] = "martgate-audit-unwritten: ";
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        struct iovec_like { const char *b; size_t n; } parts[2] = {{prefix, sizeof prefix - 1}, {p, n}};
        for (int i = 0; i < 2; i++) {
            size_t off = 0;
            while (off < parts[i].n) {
                ssize_t w = write(STDERR_FILENO, parts[i].b + off, parts[i].n - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
        }
        p += n;
    }
}

/* Writes a whole buffer of nrec lines, or nothing: a failed attempt is cut
 * back to the size the file had before it, logged and retried with backoff.
 * Returns true when written; false only when stopping and the retries ran
 * out (the lines then went to stderr). */
static bool write_all(audit_log *a, const char *data, size_t len, size_t nrec)
{
    int delay = AUDIT_RETRY_MIN_MS;
    for (;;) {
        struct stat st;
        off_t start = fstat(a->fd, &st) == 0 ? st.st_size : -1;
        size_t off = 0;
        int e = 0;
        while (off < len) {
            ssize_t w = write(a->fd, data + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                e = w < 0 ? errno : ENOSPC;
                break;
            }
            off += (size_t)w;
        }
        if (off == len) {
            a->stop_failing_since = 0;
            return true;
        }
        if (off > 0 && start >= 0 && ftruncate(a->fd, start) != 0)
            log_msg(LOG_ERROR, "audit: cannot cut a partial write back from %s: %s", a->cfg.file,
                    strerror(errno));
        pthread_mutex_lock(&a->mu);
        a->stats.write_errors++;
        bool stopping = a->stopping;
        pthread_mutex_unlock(&a->mu);
        int64_t now = clock_mono_ms();
        if (stopping && !a->stop_failing_since)
            a->stop_failing_since = now;
        if (stopping && now - a->stop_failing_since >= (int64_t)AUDIT_CLOSE_RETRY_S * 1000) {
            log_msg(LOG_ERROR, "audit: cannot write %zu records to %s: %s; shutting down, so they follow on "
                               "stderr as 'martgate-audit-unwritten:' lines", nrec, a->cfg.file, strerror(e));
            dump_to_stderr(data, len);
            return false;
        }
        log_msg(LOG_ERROR, "audit: cannot write %zu records to %s: %s; retrying in %d ms (nothing is dropped; "
                           "sessions wait or are refused while the queue is full)",
                nrec, a->cfg.file, strerror(e), delay);
        pthread_mutex_lock(&a->mu);
        struct timespec until = clock_deadline_in(delay);
        /* sleep the delay; a reopen request, or a stop request arriving now
         * (which starts the bounded retry period), cuts it short */
        while (!a->reopen_req && a->stopping == stopping) {
            if (pthread_cond_timedwait(&a->work_cv, &a->mu, &until) == ETIMEDOUT)
                break;
        }
        bool reopen = a->reopen_req && clock_mono_ms() >= a->reopen_not_before_ms;
        if (reopen)
            a->reopen_req = false;
        pthread_mutex_unlock(&a->mu);
        if (reopen)
            do_reopen(a);
        delay = delay * 2 > AUDIT_RETRY_MAX_MS ? AUDIT_RETRY_MAX_MS : delay * 2;
    }
}

static void process_batch(audit_log *a, audit_batch *batch)
{
    jw_reset(&a->buf);
    size_t lines = 0;
    BATCH_FOREACH(batch, nd) {
        if (serialize(a, nd)) {
            lines++;
        } else {
            /* keep it visible rather than lose it */
            log_msg(LOG_ERROR, "audit: a record could not be serialized (out of memory); it follows on stderr");
            dump_to_stderr(nd->data, nd->len);
            ssize_t w = write(STDERR_FILENO, "\n", 1);
            (void)w;
        }
    }
    batch->len = 0;
    batch->count = 0;
    if (lines == 0)
        return;
    bool ok = write_all(a, a->buf.s, a->buf.len, lines);
    if (ok) {
        a->dirty = true;
        if (a->cfg.fsync_interval_ms == 0 || clock_mono_ms() - a->last_sync_ms >= a->cfg.fsync_interval_ms)
            sync_file(a);
        if (a->pg)
            audit_pg_submit(a->pg, a->buf.s, a->buf.len);
    }
    pthread_mutex_lock(&a->mu);
    if (ok)
        a->stats.written += lines;
    pthread_mutex_unlock(&a->mu);
}

static void *writer_main(void *arg)
{
    audit_log *a = arg;
    a->last_sync_ms = clock_mono_ms();
    pthread_mutex_lock(&a->mu);
    for (;;) {
        int64_t now = clock_mono_ms();
        if (a->reopen_req && now >= a->reopen_not_before_ms) {
            a->reopen_req = false;
            a->busy = true;
            pthread_mutex_unlock(&a->mu);
            do_reopen(a);
            pthread_mutex_lock(&a->mu);
            a->busy = false;
            pthread_cond_broadcast(&a->idle_cv);
            continue;
        }
        if (a->count && (!a->paused || a->stopping)) {
            /* take every record waiting: the two batches change places */
            audit_batch taken = a->front;
            a->front = a->back;
            a->back = taken;
            a->count = 0;
            a->busy = true;
            if (a->any_waiters) {
                a->any_waiters = false;
                for (audit_loop *l = a->loops; l; l = l->next) {
                    if (l->waiters) {
                        uint64_t one = 1;
                        ssize_t w = write(l->wake_fd, &one, sizeof one);
                        (void)w;
                    }
                }
            }
            pthread_mutex_unlock(&a->mu);
            process_batch(a, &a->back);
            pthread_mutex_lock(&a->mu);
            a->busy = false;
            a->writer_ticking = true;
            pthread_cond_broadcast(&a->idle_cv);
            continue;
        }
        if (a->stopping)
            break;
        /* idle: sleep until work, a stop, the fsync deadline or a reopen retry */
        int64_t wake_at = 0;
        if (a->dirty)
            wake_at = a->last_sync_ms + a->cfg.fsync_interval_ms;
        if (a->reopen_req && (!wake_at || a->reopen_not_before_ms < wake_at))
            wake_at = a->reopen_not_before_ms;
        if (a->dirty && now >= a->last_sync_ms + a->cfg.fsync_interval_ms) {
            pthread_mutex_unlock(&a->mu);
            sync_file(a);
            pthread_mutex_lock(&a->mu);
            continue;
        }
        /* Under load the writer polls every few milliseconds instead of
         * being woken for each record: a wake-up per statement (a futex call
         * and a context switch on both sides) cost more than the writing. */
        bool ticking = a->writer_ticking;
        a->writer_ticking = false;
        if (ticking && (!wake_at || wake_at > now + AUDIT_WRITER_TICK_MS))
            wake_at = now + AUDIT_WRITER_TICK_MS;
        a->writer_polls = ticking;
        a->writer_waiting = true;
        if (wake_at) {
            struct timespec until = clock_deadline_in(wake_at - now);
            pthread_cond_timedwait(&a->work_cv, &a->mu, &until);
        } else {
            pthread_cond_wait(&a->work_cv, &a->mu);
        }
        a->writer_waiting = false;
    }
    pthread_mutex_unlock(&a->mu);
    sync_file(a);
    audit_query_memo_free();
    /* libpg_query frees this thread's memory context at thread exit (calling
     * pg_query_exit() here as well would free it twice: libpg_query 15-4.0) */
    return NULL;
}

/* -------------------------------------------------- event-loop wakeups -- */

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    audit_loop *l = arg;
    audit_log *a = l->a;
    (void)what;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&a->mu);
    /* move the waiters to the firing list, keeping their order */
    audit_waiter **tailp = &l->firing;
    while (*tailp)
        tailp = &(*tailp)->next;
    *tailp = l->waiters;
    l->waiters = NULL;
    pthread_mutex_unlock(&a->mu);
    for (;;) {
        pthread_mutex_lock(&a->mu);
        audit_waiter *w = l->firing;
        if (w)
            l->firing = w->next;
        pthread_mutex_unlock(&a->mu);
        if (!w)
            break;
        void (*cb)(void *) = w->cb;
        void *cbarg = w->arg;
        free(w);
        cb(cbarg);
    }
    pthread_mutex_lock(&a->mu);
    bool none = l->waiters == NULL;
    pthread_mutex_unlock(&a->mu);
    if (none && l->wake_added) {
        event_del(l->wake_ev);
        l->wake_added = false;
    }
}

static bool remove_waiter(audit_waiter **list, void *arg)
{
    for (audit_waiter **pp = list; *pp; pp = &(*pp)->next) {
        if ((*pp)->arg == arg) {
            audit_waiter *w = *pp;
            *pp = w->next;
            free(w);
            return true;
        }
    }
    return false;
}

void audit_loop_wait(audit_loop *l, void (*cb)(void *arg), void *arg)
{
    if (!l || !cb)
        return;
    audit_log *a = l->a;
    audit_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        log_msg(LOG_ERROR, "audit: out of memory registering a waiting session");
        return;
    }
    w->cb = cb;
    w->arg = arg;
    pthread_mutex_lock(&a->mu);
    remove_waiter(&l->waiters, arg);
    remove_waiter(&l->firing, arg);
    audit_waiter **tailp = &l->waiters;
    while (*tailp)
        tailp = &(*tailp)->next;
    *tailp = w;
    a->any_waiters = true;
    bool room = a->count < a->cfg.queue_size;
    pthread_mutex_unlock(&a->mu);
    if (!l->wake_added) {
        event_add(l->wake_ev, NULL);
        l->wake_added = true;
    }
    if (room)
        event_active(l->wake_ev, EV_READ, 0);
}

void audit_loop_wait_cancel(audit_loop *l, void *arg)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->a->mu);
    while (remove_waiter(&l->waiters, arg) || remove_waiter(&l->firing, arg))
        ;
    pthread_mutex_unlock(&l->a->mu);
}

void audit_wait(audit_log *a, void (*cb)(void *arg), void *arg)
{
    if (a && a->enabled)
        audit_loop_wait(a->loop0, cb, arg);
}

void audit_wait_cancel(audit_log *a, void *arg)
{
    if (a && a->enabled)
        audit_loop_wait_cancel(a->loop0, arg);
}

static void free_waiters(audit_waiter *w)
{
    while (w) {
        audit_waiter *next = w->next;
        free(w);
        w = next;
    }
}

audit_loop *audit_loop_attach(audit_log *a, struct event_base *base)
{
    if (!a || !a->enabled)
        return NULL;
    audit_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->a = a;
    l->base = base;
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->wake_fd >= 0)
        l->wake_ev = event_new(base, l->wake_fd, EV_READ | EV_PERSIST, on_wake, l);
    if (!l->wake_ev) {
        if (l->wake_fd >= 0)
            close(l->wake_fd);
        free(l);
        return NULL;
    }
    pthread_mutex_lock(&a->mu);
    l->next = a->loops;
    a->loops = l;
    pthread_mutex_unlock(&a->mu);
    return l;
}

void audit_loop_detach(audit_loop *l)
{
    if (!l)
        return;
    audit_log *a = l->a;
    pthread_mutex_lock(&a->mu);
    for (audit_loop **pp = &a->loops; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    free_waiters(l->waiters);
    free_waiters(l->firing);
    pthread_mutex_unlock(&a->mu);
    event_free(l->wake_ev);
    close(l->wake_fd);
    free(l);
}

/* --------------------------------------------------------------- API -- */

audit_log *audit_start(const audit_settings *s, struct event_base *base, char *err, size_t errlen)
{
    audit_log *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "audit: out of memory");
        return NULL;
    }
    a->fd = -1;
    if (!s || !s->enabled)
        return a;   /* the no-op log */
    if (!base) {
        snprintf(err, errlen, "audit: an event loop is needed to wake waiting sessions");
        free(a);
        return NULL;
    }
    if (audit_settings_copy(&a->cfg, s) < 0) {
        snprintf(err, errlen, "audit: out of memory");
        audit_settings_clear(&a->cfg);
        free(a);
        return NULL;
    }
    a->enabled = true;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->work_cv, NULL);
    pthread_cond_init(&a->idle_cv, NULL);
    a->fd = open_file(a->cfg.file);
    if (a->fd < 0) {
        snprintf(err, errlen, "audit.file: cannot open %s: %s", a->cfg.file, strerror(errno));
        goto fail;
    }
    a->loop0 = audit_loop_attach(a, base);
    if (!a->loop0) {
        snprintf(err, errlen, "audit: cannot create the wake-up event: %s", strerror(errno));
        goto fail;
    }
    if (a->cfg.has_warehouse) {
        a->pg = audit_pg_start(&a->cfg.pg, err, errlen);
        if (!a->pg)
            goto fail;
    }
    int rc = pthread_create(&a->thread, NULL, writer_main, a);
    if (rc != 0) {
        snprintf(err, errlen, "audit: cannot start the writer thread: %s", strerror(rc));
        goto fail;
    }
    a->thread_started = true;
    return a;
fail:
    audit_close(a);
    return NULL;
}

audit_log *audit_open(const json_doc *doc, const json_t *audit, const char *base_dir, struct event_base *base,
                      audit_db_lookup lookup, void *lookup_arg, char *err, size_t errlen)
{
    audit_settings *s = audit_settings_parse(doc, audit, base_dir, lookup, lookup_arg, err, errlen);
    if (!s)
        return NULL;
    audit_log *a = audit_start(s, base, err, errlen);
    audit_settings_free(s);
    return a;
}

bool audit_enabled(const audit_log *a) { return a && a->enabled; }

/* Links a record into the queue; reserve: beyond queue_size (never refused). */
static audit_status submit_text(audit_log *a, const char *members, size_t len, const char *query, size_t qlen,
                                const char *normalized, size_t nlen, bool reserve)
{
    if (!a || !a->enabled)
        return AUDIT_OK;
    audit_status full = a->cfg.when_full == AUDIT_WHEN_FULL_DENY ? AUDIT_FULL_DENY : AUDIT_FULL_WAIT;
    if (len > UINT32_MAX / 2 || qlen > UINT32_MAX / 2 || nlen > UINT32_MAX / 2)
        len = qlen = nlen = 0;   /* never: statements are bounded by max_message_bytes */
    audit_node hdr = {.len = (uint32_t)len, .qlen = query ? (uint32_t)qlen : 0,
                      .nlen = query && normalized ? (uint32_t)nlen : 0, .has_query = query != NULL,
                      .has_normalized = query && normalized};
    size_t size = node_size(&hdr);
    pthread_mutex_lock(&a->mu);
    if (!reserve && a->count >= a->cfg.queue_size) {
        a->stats.refused++;
        pthread_mutex_unlock(&a->mu);
        return full;
    }
    audit_batch *b = &a->front;
    if (b->len + size > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->len + size)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            pthread_mutex_unlock(&a->mu);
            if (!reserve) {
                log_msg(LOG_ERROR, "audit: out of memory queueing a record; handled as a full queue");
                return full;
            }
            /* a record that must be kept: visible on stderr rather than lost */
            log_msg(LOG_ERROR, "audit: out of memory queueing a record that must be kept; it follows on stderr");
            dump_to_stderr(members, len);
            ssize_t w = write(STDERR_FILENO, "\n", 1);
            (void)w;
            return AUDIT_OK;
        }
        b->data = d;
        b->cap = cap;
    }
    audit_node *nd = (audit_node *)(void *)(b->data + b->len);
    memcpy(nd, &hdr, sizeof hdr);
    memcpy(nd->data, members, len);
    nd->data[len] = 0;
    if (query) {
        char *q = nd->data + len + 1;
        memcpy(q, query, qlen);
        q[qlen] = 0;
        if (normalized) {
            memcpy(q + qlen + 1, normalized, nlen);
            q[qlen + 1 + nlen] = 0;
        }
    }
    b->len += size;
    b->count++;
    a->count++;
    a->stats.submitted++;
    if (a->writer_waiting && (!a->writer_polls || a->count >= a->cfg.queue_size / 2))
        pthread_cond_signal(&a->work_cv);
    pthread_mutex_unlock(&a->mu);
    return AUDIT_OK;
}

void audit_submit_record(audit_log *a, const char *members, size_t len, const char *query, size_t qlen,
                         const char *normalized, size_t nlen)
{
    (void)submit_text(a, members, len, query, qlen, normalized, nlen, true);
}

static bool is_session_end(json_t *rec)
{
    json_t *ev = json_object_get(rec, "event");
    return json_is_string(ev) && strcmp(json_string_value(ev), "session_end") == 0;
}

/* A record given as a JSON object: its "query" (a string) goes to the writer
 * as the statement's text, the rest as members. */
static audit_status submit_json(audit_log *a, json_t *rec, bool always)
{
    if (!a || !a->enabled) {
        json_decref(rec);
        return AUDIT_OK;
    }
    if (!json_is_object(rec)) {
        log_msg(LOG_ERROR, "audit: internal error: a record that is not a JSON object was submitted");
        json_decref(rec);
        return AUDIT_OK;
    }
    bool reserve = always || is_session_end(rec);
    if (!json_object_get(rec, "ts")) {
        char ts[32];
        audit_timestamp(ts);
        json_object_set_new(rec, "ts", json_string(ts));
    }
    json_t *q = json_object_get(rec, "query");
    bool has_query = json_is_string(q);
    char *query = has_query ? strdup(json_string_value(q)) : NULL;
    if (query)
        json_object_del(rec, "query");   /* q is gone now */
    char *text = json_dumps(rec, JSON_COMPACT);
    audit_status st;
    if (!text || (has_query && !query)) {
        log_msg(LOG_ERROR, "audit: out of memory serializing a record");
        st = reserve ? AUDIT_OK : (a->cfg.when_full == AUDIT_WHEN_FULL_DENY ? AUDIT_FULL_DENY : AUDIT_FULL_WAIT);
    } else {
        size_t n = strlen(text);   /* "{...}": the members are inside the braces */
        st = submit_text(a, text + 1, n >= 2 ? n - 2 : 0, query, query ? strlen(query) : 0, NULL, 0, reserve);
    }
    if (st != AUDIT_OK && query)
        json_object_set_new(rec, "query", json_string(query));   /* not taken: the caller keeps it whole */
    free(text);
    free(query);
    if (st == AUDIT_OK)
        json_decref(rec);
    return st;
}

audit_status audit_submit(audit_log *a, json_t *rec) { return submit_json(a, rec, false); }

void audit_submit_always(audit_log *a, json_t *rec) { (void)submit_json(a, rec, true); }

void audit_reopen(audit_log *a)
{
    if (!a || !a->enabled)
        return;
    pthread_mutex_lock(&a->mu);
    a->reopen_req = true;
    a->reopen_not_before_ms = 0;
    pthread_cond_signal(&a->work_cv);
    pthread_mutex_unlock(&a->mu);
}

void audit_close(audit_log *a)
{
    if (!a)
        return;
    if (a->enabled) {
        if (a->thread_started) {
            pthread_mutex_lock(&a->mu);
            a->stopping = true;
            pthread_cond_signal(&a->work_cv);
            pthread_mutex_unlock(&a->mu);
            pthread_join(a->thread, NULL);
        }
        audit_pg_stop(a->pg);
        free(a->front.data);   /* records left only if the thread never ran */
        free(a->back.data);
        /* the workers detached theirs; loop0 (the caller's base) is left */
        while (a->loops)
            audit_loop_detach(a->loops);
        if (a->fd >= 0)
            close(a->fd);
        jw_free(&a->buf);
        audit_settings_clear(&a->cfg);
        pthread_cond_destroy(&a->work_cv);
        pthread_cond_destroy(&a->idle_cv);
        pthread_mutex_destroy(&a->mu);
    }
    free(a);
}

bool audit_trusts_end_user(const audit_log *a, const char *user, bool impersonator)
{
    if (!a || !a->enabled || !user)
        return false;
    if (!a->cfg.has_end_user_from)
        return impersonator;
    for (size_t i = 0; i < a->cfg.n_end_user_from; i++)
        if (fnmatch(a->cfg.end_user_from[i], user, 0) == 0)
            return true;
    return false;
}

const char *audit_query_text_mode(const audit_log *a)
{
    if (!a || !a->enabled)
        return "none";
    switch (a->cfg.qmode) {
    case AUDIT_QUERY_FULL: return "full";
    case AUDIT_QUERY_NONE: return "none";
    default: return "normalized";
    }
}

audit_status audit_room(audit_log *a)
{
    if (!a || !a->enabled)
        return AUDIT_OK;
    pthread_mutex_lock(&a->mu);
    bool room = a->count < a->cfg.queue_size;
    if (!room)
        a->stats.refused++;
    pthread_mutex_unlock(&a->mu);
    if (room)
        return AUDIT_OK;
    return a->cfg.when_full == AUDIT_WHEN_FULL_DENY ? AUDIT_FULL_DENY : AUDIT_FULL_WAIT;
}

void audit_get_stats(audit_log *a, audit_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!a || !a->enabled)
        return;
    pthread_mutex_lock(&a->mu);
    *out = a->stats;
    out->queued = a->count;
    out->queue_size = a->cfg.queue_size;
    pthread_mutex_unlock(&a->mu);
    if (a->pg) {
        out->warehouse = true;
        audit_pg_stats ps;
        audit_pg_get_stats(a->pg, &ps);
        out->warehouse_inserted = ps.inserted;
        out->warehouse_pending = ps.pending;
        out->warehouse_dropped = ps.dropped;
        out->warehouse_spooled = ps.spooled;
        out->warehouse_replayed = ps.replayed;
        out->warehouse_connected = ps.connected;
    }
}

void audit_test_pause(audit_log *a, bool paused)
{
    if (!a || !a->enabled)
        return;
    pthread_mutex_lock(&a->mu);
    a->paused = paused;
    pthread_cond_signal(&a->work_cv);
    pthread_mutex_unlock(&a->mu);
}

bool audit_test_wait_idle(audit_log *a, int timeout_ms)
{
    if (!a || !a->enabled)
        return true;
    struct timespec until = clock_deadline_in(timeout_ms);
    pthread_mutex_lock(&a->mu);
    bool idle;
    while (!(idle = a->count == 0 && !a->busy && !a->reopen_req)) {
        if (pthread_cond_timedwait(&a->idle_cv, &a->mu, &until) == ETIMEDOUT) {
            idle = a->count == 0 && !a->busy && !a->reopen_req;
            break;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return idle;
}
