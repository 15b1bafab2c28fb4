/*
 * audit_spool: the warehouse sink's local spool. Lines the warehouse has not
 * taken yet are appended to a file and read back in order from an offset;
 * when even the spool cannot be written they wait in bounded memory.
 */
#include "proxy/audit_pg_internal.h"
#include "common/clock.h"
#include "common/log.h"

/* ------------------------------------------------------------- spool -- */

int audit_spool_write_fully(int fd, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

/* Lock held. Appends a buffer of n whole lines; all or nothing. */
static int spool_append_locked(audit_pg *p, const char *data, size_t len, size_t n)
{
    if (audit_spool_write_fully(p->spool_fd, data, len) != 0) {
        int e = errno;
        if (ftruncate(p->spool_fd, p->spool_size) != 0)
            log_msg(LOG_ERROR, "audit warehouse: cannot cut a partial write back from %s: %s", p->cfg.spool_path,
                    strerror(errno));
        errno = e;
        return -1;
    }
    p->spool_size += (off_t)len;
    p->spool_lines += n;
    p->stats.spooled += n;
    return 0;
}

/* Lock held. Logs a failed spool write, at most every PG_LOG_EVERY_MS. */
void audit_spool_failed_locked(audit_pg *p, size_t n, int err)
{
    int64_t now = clock_mono_ms();
    if (p->spool_err_logged_ms && now - p->spool_err_logged_ms < PG_LOG_EVERY_MS) {
        p->spool_err_quiet++;
        return;
    }
    log_msg(LOG_ERROR, "audit warehouse: cannot write %zu records to the spool %s: %s; %zu records (%zu KiB) wait "
                       "in memory (%llu more failures since the last message)", n, p->cfg.spool_path,
            strerror(err), p->mem_count, p->mem_bytes / 1024, p->spool_err_quiet);
    p->spool_err_logged_ms = now;
    p->spool_err_quiet = 0;
}

/* Lock held. Appends a list of n lines to the spool; on failure the caller
 * keeps them (errno set). */
int audit_spool_lines_locked(audit_pg *p, const pg_line *lines, size_t n)
{
    if (!lines)
        return 0;
    size_t total = 0;
    for (const pg_line *l = lines; l; l = l->next)
        total += l->len + 1;
    char *buf = malloc(total);
    if (!buf)
        return -1;
    size_t off = 0;
    for (const pg_line *l = lines; l; l = l->next) {
        memcpy(buf + off, l->data, l->len);
        off += l->len;
        buf[off++] = '\n';
    }
    int rc = spool_append_locked(p, buf, total, n);
    int e = errno;
    free(buf);
    errno = e;
    return rc;
}

/* Lock held. Moves the lines in memory to the end of the spool (they are
 * newer than everything there). On failure they stay in memory. */
int audit_spool_memory_locked(audit_pg *p)
{
    if (!p->mem_head)
        return 0;
    if (audit_spool_lines_locked(p, p->mem_head, p->mem_count) != 0) {
        audit_spool_failed_locked(p, p->mem_count, errno);
        return -1;
    }
    audit_pg_lines_free(p->mem_head);
    p->mem_head = p->mem_tail = NULL;
    p->mem_count = 0;
    p->mem_bytes = 0;
    return 0;
}

void audit_pg_submit(audit_pg *p, const char *lines, size_t len)
{
    if (!p || len == 0)
        return;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += lines[i] == '\n';
    pthread_mutex_lock(&p->mu);
    bool to_spool = p->spool_size > p->spool_read_off || p->mem_count + n > p->mem_limit ||
                    p->mem_bytes + len > PG_MEM_MAX_BYTES / 4;
    if (to_spool && audit_spool_memory_locked(p) == 0) {
        if (spool_append_locked(p, lines, len, n) == 0) {
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            return;
        }
        audit_spool_failed_locked(p, n, errno);
    }
    /* in memory: the fast path, or the spool failed (then memory is capped) */
    size_t dropped = 0;
    const char *s = lines, *end = lines + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t l = nl ? (size_t)(nl - s) : (size_t)(end - s);
        pg_line *ln = l && p->mem_bytes + l <= PG_MEM_MAX_BYTES ? audit_pg_line_new(s, l) : NULL;
        if (ln) {
            if (p->mem_tail)
                p->mem_tail->next = ln;
            else {
                p->mem_head = ln;
                p->mem_first_ms = clock_mono_ms();
            }
            p->mem_tail = ln;
            p->mem_count++;
            p->mem_bytes += l;
        } else if (l) {
            dropped++;
        }
        s += l + 1;
    }
    if (dropped) {
        p->stats.dropped += dropped;
        int64_t now = clock_mono_ms();
        if (!p->spool_err_logged_ms || now - p->spool_err_logged_ms >= PG_LOG_EVERY_MS) {
            log_msg(LOG_ERROR, "audit warehouse: neither the spool nor memory (%zu KiB held) can take more: "
                               "%llu records so far are not copied to the warehouse (they are in the audit file)",
                    p->mem_bytes / 1024, p->stats.dropped);
            p->spool_err_logged_ms = now;
        }
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Sink thread: reads up to batch_size lines of the spool from the read
 * offset, not beyond size. *end_off is where the next batch starts; *lines
 * counts the lines read, the skipped ones included. */
pg_line *audit_spool_read_batch(audit_pg *p, off_t from, off_t size, off_t *end_off, size_t *count,
                                 size_t *lines)
{
    pg_line *head = NULL, *tail = NULL;
    size_t n = 0, bytes = 0;
    off_t off = from;
    *count = 0;
    *lines = 0;
    *end_off = from;
    if (fseeko(p->spool_rd, from, SEEK_SET) != 0) {
        log_msg(LOG_ERROR, "audit warehouse: cannot seek in the spool %s: %s", p->cfg.spool_path, strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    while (n < (size_t)p->cfg.batch_size && bytes < PG_BATCH_MAX_BYTES && off < size) {
        ssize_t r = getline(&line, &cap, p->spool_rd);
        if (r <= 0 || off + r > size || line[r - 1] != '\n')
            break;   /* only whole lines written before `size` was read */
        off += r;
        ++*lines;
        size_t l = (size_t)r - 1;
        if (l == 0)
            continue;
        if (l > PG_LINE_MAX_BYTES) {
            log_msg(LOG_ERROR, "audit warehouse: skipped a spool line of %zu bytes at offset %lld of %s "
                               "(the record is in the audit file)", l, (long long)(off - r), p->cfg.spool_path);
            continue;
        }
        pg_line *ln = audit_pg_line_new(line, l);
        if (!ln) {
            off -= r;
            --*lines;
            break;
        }
        if (tail)
            tail->next = ln;
        else
            head = ln;
        tail = ln;
        n++;
        bytes += l;
    }
    free(line);
    *end_off = off;
    *count = n;
    return head;
}

