/*
 * audit_pg: copies the audit trail into a warehouse table (see audit_pg.h).
 *
 * Order is kept by one invariant: lines in flight (the batch being inserted)
 * are older than every line in the spool, which are older than every line in
 * memory. The writer appends to memory only while the spool is empty and
 * memory is below its limit; otherwise it moves memory to the spool and
 * appends there. The sink thread inserts the batch in flight first, then the
 * spool from its read offset, then memory; while the warehouse is down it
 * moves memory to the spool, so a long outage costs disk, not RAM.
 */
#include "proxy/audit_pg.h"
#include "proxy/audit_pg_internal.h"

#include "adapters/audit_store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"





int audit_pg_config_copy(audit_pg_config *d, const audit_pg_config *s)
{
    *d = *s;
    d->conninfo = s->conninfo ? strdup(s->conninfo) : NULL;
    d->password = s->password ? strdup(s->password) : NULL;
    d->schema = s->schema ? strdup(s->schema) : NULL;
    d->table = s->table ? strdup(s->table) : NULL;
    d->spool_path = s->spool_path ? strdup(s->spool_path) : NULL;
    if ((s->conninfo && !d->conninfo) || (s->password && !d->password) || (s->schema && !d->schema) ||
        (s->table && !d->table) || (s->spool_path && !d->spool_path))
        return -1;
    return 0;
}

void audit_pg_config_clear(audit_pg_config *c)
{
    free(c->conninfo);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c->schema);
    free(c->table);
    free(c->spool_path);
    memset(c, 0, sizeof *c);
}

void audit_pg_lines_free(pg_line *l)
{
    while (l) {
        pg_line *n = l->next;
        free(l);
        l = n;
    }
}

pg_line *audit_pg_line_new(const char *data, size_t len)
{
    pg_line *l = malloc(sizeof *l + len + 1);
    if (!l)
        return NULL;
    l->next = NULL;
    l->len = len;
    memcpy(l->data, data, len);
    l->data[len] = 0;
    return l;
}

/* ---------------------------------------------------------- warehouse -- */

static void pg_disconnect(audit_pg *p)
{
    pthread_mutex_lock(&p->mu);
    audit_store_cancel_free(p->cancel);
    p->cancel = NULL;
    p->stats.connected = false;
    pthread_mutex_unlock(&p->mu);
    audit_store_close(p->store);
    p->store = NULL;
}

static int pg_connect(audit_pg *p, char *why, size_t whylen)
{
    p->store = audit_store_open(p->cfg.conninfo, p->cfg.password, p->cfg.schema, p->cfg.table, why, whylen);
    if (!p->store)
        return -1;
    pthread_mutex_lock(&p->mu);
    p->cancel = audit_store_cancel_new(p->store);   /* NULL: a stop cannot interrupt, only wait */
    p->stats.connected = true;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static char *json_array_of(const pg_line *lines)
{
    size_t total = 2;
    for (const pg_line *l = lines; l; l = l->next)
        total += l->len + 1;
    char *s = malloc(total + 1);
    if (!s)
        return NULL;
    size_t off = 0;
    s[off++] = '[';
    for (const pg_line *l = lines; l; l = l->next) {
        if (off > 1)
            s[off++] = ',';
        memcpy(s + off, l->data, l->len);
        off += l->len;
    }
    s[off++] = ']';
    s[off] = 0;
    return s;
}

/* Inserts a batch. A data error sends the rows one by one, and a row the
 * warehouse still refuses is logged and skipped (it stays in the audit
 * file). Returns 0, or -1 when the warehouse failed (the batch is retried
 * whole later; rows already in are skipped by record_id). */
static int insert_batch(audit_pg *p, pg_line *batch, size_t n, char *why, size_t whylen)
{
    char *json = json_array_of(batch);
    if (!json) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    int rc = audit_store_insert(p->store, json, why, whylen);
    free(json);
    if (rc <= 0)
        return rc;
    log_msg(LOG_WARNING, "audit warehouse: a batch of %zu records was refused (%s); inserting them one by one", n,
            why);
    for (pg_line *l = batch; l; l = l->next) {
        char *one = malloc(l->len + 3);
        if (!one) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        one[0] = '[';
        memcpy(one + 1, l->data, l->len);
        one[l->len + 1] = ']';
        one[l->len + 2] = 0;
        rc = audit_store_insert(p->store, one, why, whylen);
        free(one);
        if (rc < 0)
            return -1;
        if (rc > 0)
            log_msg(LOG_ERROR, "audit warehouse: the warehouse refused a record (%s); it is skipped there and "
                               "stays in the audit file: %.300s", why, l->data);
    }
    return 0;
}

/* ------------------------------------------------------------- thread -- */

/* At exit: keeps what was not inserted in the spool, oldest first. */
static void persist_remaining(audit_pg *p, pg_line *inflight, size_t ninflight, bool inflight_from_spool)
{
    pthread_mutex_lock(&p->mu);
    size_t left = (size_t)p->spool_lines + p->mem_count + (inflight_from_spool ? 0 : ninflight);
    if (left == 0) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    bool rewrite = (!inflight_from_spool && ninflight > 0) || p->spool_read_off > 0;
    int rc = 0;
    if (!rewrite) {
        rc = audit_spool_memory_locked(p);
    } else {
        char *tmp = NULL;
        int fd = -1;
        if (asprintf(&tmp, "%s.tmp", p->cfg.spool_path) < 0)
            tmp = NULL;
        if (tmp)
            fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        rc = fd < 0 ? -1 : 0;
        for (pg_line *l = inflight_from_spool ? NULL : inflight; rc == 0 && l; l = l->next)
            rc = audit_spool_write_fully(fd, l->data, l->len) || audit_spool_write_fully(fd, "\n", 1) ? -1 : 0;
        /* the unread part of the spool */
        off_t off = p->spool_read_off;
        char chunk[65536];
        while (rc == 0 && off < p->spool_size) {
            size_t want = (size_t)(p->spool_size - off) < sizeof chunk ? (size_t)(p->spool_size - off) : sizeof chunk;
            ssize_t r = pread(p->spool_fd, chunk, want, off);
            if (r <= 0) {
                rc = -1;
                break;
            }
            rc = audit_spool_write_fully(fd, chunk, (size_t)r);
            off += r;
        }
        for (pg_line *l = p->mem_head; rc == 0 && l; l = l->next)
            rc = audit_spool_write_fully(fd, l->data, l->len) || audit_spool_write_fully(fd, "\n", 1) ? -1 : 0;
        if (rc == 0 && fsync(fd) != 0)
            rc = -1;
        if (fd >= 0 && close(fd) != 0)
            rc = -1;
        if (rc == 0 && rename(tmp, p->cfg.spool_path) != 0)
            rc = -1;
        if (rc != 0 && tmp)
            unlink(tmp);
        free(tmp);
    }
    if (rc == 0 && !rewrite && fdatasync(p->spool_fd) != 0)
        rc = -1;
    if (rc == 0)
        log_msg(LOG_WARNING, "audit warehouse: %zu records are not in the warehouse yet; they are kept in %s and "
                             "sent at the next start", left, p->cfg.spool_path);
    else
        log_msg(LOG_ERROR, "audit warehouse: %zu records are not in the warehouse and could not be kept in %s: %s "
                           "(they are in the audit file)", left, p->cfg.spool_path, strerror(errno));
    pthread_mutex_unlock(&p->mu);
}

/* The sink thread's own state between turns of its loop. */
typedef struct {
    int backoff;                 /* ms before the next connection attempt after a failure */
    int64_t next_connect;
    bool stop_failed, was_connected;
    pg_line *inflight;           /* the batch being inserted, oldest first */
    size_t ninflight;
    bool from_spool;             /* inflight was read from the spool (it is still there) */
    off_t spool_end;             /* where the batch in flight ends in the spool */
    size_t spool_consumed;       /* spool lines the batch in flight covers */
} sink_state;

static void sink_backoff(sink_state *t)
{
    t->next_connect = clock_mono_ms() + t->backoff;
    t->backoff = t->backoff * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : t->backoff * 2;
}

/* Not connected and due: connects, or logs why not and backs off. */
static void sink_connect(audit_pg *p, sink_state *t)
{
    char why[1024];
    if (pg_connect(p, why, sizeof why) != 0) {
        pthread_mutex_lock(&p->mu);
        size_t waiting = t->ninflight + p->mem_count + (size_t)p->spool_lines;
        audit_spool_memory_locked(p);
        pthread_mutex_unlock(&p->mu);
        if (p->stopping)
            t->stop_failed = true;
        else
            log_msg(t->was_connected || t->backoff == PG_BACKOFF_MIN_MS ? LOG_ERROR : LOG_WARNING,
                    "audit warehouse: %s; %zu records wait in %s; retrying in %d s", why, waiting,
                    p->cfg.spool_path, t->backoff / 1000);
        t->was_connected = false;
        sink_backoff(t);
        return;
    }
    log_msg(LOG_INFO, "audit warehouse: connected; writing to %s", audit_store_table(p->store));
    t->was_connected = true;
}

/* Called with the lock held and nothing in flight; returns with it
 * released. True when a batch is now in flight (the spool first, then
 * memory once a batch is full, stopping or old enough); false when there was
 * none and the thread waited. */
static bool sink_take_batch(audit_pg *p, sink_state *t, int64_t now)
{
    if (p->spool_size > p->spool_read_off) {
        off_t from = p->spool_read_off, size = p->spool_size;
        pthread_mutex_unlock(&p->mu);
        t->inflight = audit_spool_read_batch(p, from, size, &t->spool_end, &t->ninflight, &t->spool_consumed);
        t->from_spool = true;
        pthread_mutex_lock(&p->mu);
        if (!t->ninflight) {
            /* nothing usable (skipped lines, or a read error): move past what was consumed */
            if (t->spool_end > p->spool_read_off) {
                p->spool_read_off = t->spool_end;
                p->spool_lines = p->spool_lines >= t->spool_consumed ? p->spool_lines - t->spool_consumed : 0;
            } else {
                log_msg(LOG_ERROR, "audit warehouse: cannot read the spool %s; retrying in 1 s", p->cfg.spool_path);
                struct timespec until = clock_deadline_in(1000);
                pthread_cond_timedwait(&p->cv, &p->mu, &until);
            }
            pthread_mutex_unlock(&p->mu);
            return false;
        }
        p->inflight_count = t->ninflight;
        pthread_mutex_unlock(&p->mu);
        return true;
    }
    if (p->mem_count && (p->mem_count >= (size_t)p->cfg.batch_size || p->stopping ||
                         now - p->mem_first_ms >= p->cfg.flush_interval_ms)) {
        pg_line *last = p->mem_head;
        size_t n = 1, bytes = last->len;
        while (last->next && n < (size_t)p->cfg.batch_size && bytes < PG_BATCH_MAX_BYTES) {
            last = last->next;
            bytes += last->len;
            n++;
        }
        t->inflight = p->mem_head;
        p->mem_head = last->next;
        if (!p->mem_head)
            p->mem_tail = NULL;
        else
            p->mem_first_ms = now;   /* close enough: the rest arrived after */
        last->next = NULL;
        p->mem_count -= n;
        p->mem_bytes -= bytes;
        t->ninflight = n;
        t->from_spool = false;
        p->inflight_count = n;
        pthread_mutex_unlock(&p->mu);
        return true;
    }
    if (p->mem_count) {
        struct timespec until = clock_deadline_in(p->mem_first_ms + p->cfg.flush_interval_ms - now);
        pthread_cond_timedwait(&p->cv, &p->mu, &until);
    } else {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return false;
}

static void sink_drop_inflight(audit_pg *p, sink_state *t)
{
    audit_pg_lines_free(t->inflight);
    t->inflight = NULL;
    t->ninflight = 0;
    p->inflight_count = 0;
}

/* The batch in flight is in the warehouse: forget it (and its spool lines). */
static void sink_inserted(audit_pg *p, sink_state *t)
{
    pthread_mutex_lock(&p->mu);
    p->stats.inserted += t->ninflight;
    if (t->from_spool) {
        p->stats.replayed += t->ninflight;
        p->spool_read_off = t->spool_end;
        p->spool_lines = p->spool_lines >= t->spool_consumed ? p->spool_lines - t->spool_consumed : 0;
        if (p->spool_read_off >= p->spool_size) {
            if (ftruncate(p->spool_fd, 0) == 0) {
                p->spool_size = p->spool_read_off = 0;
                p->spool_lines = 0;
            }
        }
    }
    sink_drop_inflight(p, t);
    pthread_mutex_unlock(&p->mu);
    t->backoff = PG_BACKOFF_MIN_MS;
}

/* The insert failed: the batch goes back to the spool (it opens it: the
 * oldest records), the connection is dropped and retried later. */
static void sink_insert_failed(audit_pg *p, sink_state *t, const char *why)
{
    pthread_mutex_lock(&p->mu);
    size_t waiting = t->ninflight + p->mem_count + (size_t)p->spool_lines;
    if (t->from_spool) {
        /* still in the spool from the read offset: read again later */
        sink_drop_inflight(p, t);
    } else if (p->spool_size == p->spool_read_off) {
        /* the oldest records: they open the spool, memory follows */
        if (audit_spool_lines_locked(p, t->inflight, t->ninflight) != 0)
            audit_spool_failed_locked(p, t->ninflight, errno);
        else
            sink_drop_inflight(p, t);
    }
    audit_spool_memory_locked(p);
    pthread_mutex_unlock(&p->mu);
    log_msg(LOG_ERROR, "audit warehouse: insert into %s failed: %s; %zu records wait (spool %s); "
                       "reconnecting in %d s", audit_store_table(p->store), why, waiting, p->cfg.spool_path,
            t->backoff / 1000);
    pg_disconnect(p);
    if (p->stopping)
        t->stop_failed = true;
    sink_backoff(t);
}

static void *pg_main(void *arg)
{
    audit_pg *p = arg;
    sink_state t = {.backoff = PG_BACKOFF_MIN_MS};
    char why[1024];

    for (;;) {
        pthread_mutex_lock(&p->mu);
        int64_t now = clock_mono_ms();
        bool pending = t.ninflight || p->mem_count || p->spool_size > p->spool_read_off;
        if (p->stopping && (!pending || t.stop_failed || now >= p->stop_deadline_ms)) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        if (!p->store && !p->stopping && now < t.next_connect) {
            /* down: keep memory small, wait for the next attempt */
            audit_spool_memory_locked(p);
            struct timespec until = clock_deadline_in(t.next_connect - now);
            pthread_cond_timedwait(&p->cv, &p->mu, &until);
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        if (!p->store) {
            pthread_mutex_unlock(&p->mu);
            sink_connect(p, &t);
            continue;
        }
        if (!t.ninflight) {
            if (!sink_take_batch(p, &t, now))
                continue;
        } else {
            pthread_mutex_unlock(&p->mu);
        }
        if (insert_batch(p, t.inflight, t.ninflight, why, sizeof why) == 0)
            sink_inserted(p, &t);
        else
            sink_insert_failed(p, &t, why);
    }
    pg_disconnect(p);
    persist_remaining(p, t.inflight, t.ninflight, t.from_spool);
    audit_pg_lines_free(t.inflight);
    pthread_mutex_lock(&p->mu);
    p->inflight_count = 0;
    p->done = true;
    pthread_cond_broadcast(&p->done_cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* --------------------------------------------------------------- API -- */

static void pg_free(audit_pg *p)
{
    audit_pg_lines_free(p->mem_head);
    if (p->spool_rd)
        fclose(p->spool_rd);
    if (p->spool_fd >= 0)
        close(p->spool_fd);
    audit_pg_config_clear(&p->cfg);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

audit_pg *audit_pg_start(const audit_pg_config *cfg, char *err, size_t errlen)
{
    audit_pg *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "audit.warehouse: out of memory");
        return NULL;
    }
    p->spool_fd = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (audit_pg_config_copy(&p->cfg, cfg) < 0) {
        snprintf(err, errlen, "audit.warehouse: out of memory");
        goto fail;
    }
    p->mem_limit = (size_t)p->cfg.batch_size * 8 > 4096 ? (size_t)p->cfg.batch_size * 8 : 4096;
    p->spool_fd = open(p->cfg.spool_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (p->spool_fd < 0) {
        snprintf(err, errlen, "audit.warehouse.spool_file: cannot open %s: %s", p->cfg.spool_path, strerror(errno));
        goto fail;
    }
    p->spool_rd = fopen(p->cfg.spool_path, "re");
    if (!p->spool_rd) {
        snprintf(err, errlen, "audit.warehouse.spool_file: cannot read %s: %s", p->cfg.spool_path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(p->spool_fd, &st) != 0) {
        snprintf(err, errlen, "audit.warehouse.spool_file: %s: %s", p->cfg.spool_path, strerror(errno));
        goto fail;
    }
    p->spool_size = st.st_size;
    if (p->spool_size > 0) {
        char last = '\n';
        if (pread(p->spool_fd, &last, 1, p->spool_size - 1) == 1 && last != '\n') {
            /* an earlier run died in the middle of a line: end it, so it is one bad line, not two */
            if (audit_spool_write_fully(p->spool_fd, "\n", 1) == 0)
                p->spool_size++;
            log_msg(LOG_WARNING, "audit warehouse: the spool %s ended in the middle of a line", p->cfg.spool_path);
        }
        char chunk[65536];
        ssize_t r;
        off_t off = 0;
        while ((r = pread(p->spool_fd, chunk, sizeof chunk, off)) > 0) {
            for (ssize_t i = 0; i < r; i++)
                p->spool_lines += chunk[i] == '\n';
            off += r;
        }
        log_msg(LOG_INFO, "audit warehouse: %llu records left by an earlier run are in %s; they are sent first",
                p->spool_lines, p->cfg.spool_path);
    }
    int rc = pthread_create(&p->thread, NULL, pg_main, p);
    if (rc != 0) {
        snprintf(err, errlen, "audit.warehouse: cannot start its thread: %s", strerror(rc));
        goto fail;
    }
    p->started = true;
    return p;
fail:
    pg_free(p);
    return NULL;
}

void audit_pg_stop(audit_pg *p)
{
    if (!p)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stopping = true;
        p->stop_deadline_ms = clock_mono_ms() + p->cfg.stop_timeout_ms;
        pthread_cond_broadcast(&p->cv);
        /* past the deadline, a statement still running is cancelled */
        struct timespec until = clock_deadline_in(p->cfg.stop_timeout_ms + 1000);
        while (!p->done) {
            if (pthread_cond_timedwait(&p->done_cv, &p->mu, &until) == ETIMEDOUT) {
                /* take the handle: the thread cannot free it while we use it unlocked */
                audit_store_cancel *c = p->cancel;
                p->cancel = NULL;
                pthread_mutex_unlock(&p->mu);
                if (c) {
                    audit_store_cancel_send(c);
                    audit_store_cancel_free(c);
                    log_msg(LOG_WARNING, "audit warehouse: cancelled a statement still running at shutdown");
                }
                pthread_mutex_lock(&p->mu);
                until = clock_deadline_in(1000);
            }
        }
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    pg_free(p);
}

void audit_pg_get_stats(audit_pg *p, audit_pg_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    out->pending = p->mem_count + p->spool_lines + p->inflight_count;
    pthread_mutex_unlock(&p->mu);
}
