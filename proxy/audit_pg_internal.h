/*
 * audit_pg_internal: what the warehouse sink's files share (audit_pg.c: the
 * sink thread and the warehouse; audit_spool.c: the local spool that keeps
 * records in order while the warehouse is away). Private.
 */
#ifndef MARTGATE_AUDIT_PG_INTERNAL_H
#define MARTGATE_AUDIT_PG_INTERNAL_H

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

#include "adapters/audit_store.h"
#include "proxy/audit_pg.h"

#define PG_BACKOFF_MIN_MS 1000
#define PG_BACKOFF_MAX_MS 30000
#define PG_BATCH_MAX_BYTES (8u << 20)     /* one INSERT carries at most this much JSON */
#define PG_LINE_MAX_BYTES (64u << 20)     /* a longer spool line is skipped (it is in the audit file) */
#define PG_MEM_MAX_BYTES (256u << 20)     /* memory held when the spool cannot be written either */
#define PG_LOG_EVERY_MS 5000              /* repeated spool failures are logged this often */

typedef struct pg_line {
    struct pg_line *next;
    size_t len;
    char data[];
} pg_line;

struct audit_pg {
    audit_pg_config cfg;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t done_cv;
    pg_line *mem_head, *mem_tail;
    size_t mem_count, mem_limit, mem_bytes;
    int64_t spool_err_logged_ms;
    unsigned long long spool_err_quiet;   /* failures not logged since */
    int64_t mem_first_ms;    /* when the oldest line in memory arrived */
    int spool_fd;            /* O_APPEND, for writing */
    off_t spool_size, spool_read_off;
    unsigned long long spool_lines;   /* lines between read offset and size */
    size_t inflight_count;
    bool stopping, done;
    int64_t stop_deadline_ms;
    audit_store_cancel *cancel;   /* of the store, for a stop past its deadline */
    audit_pg_stats stats;
    pthread_t thread;
    bool started;

    /* sink thread only */
    audit_store *store;      /* the warehouse, while connected */
    FILE *spool_rd;
};

void audit_pg_lines_free(pg_line *l);
pg_line *audit_pg_line_new(const char *data, size_t len);
int audit_spool_write_fully(int fd, const char *data, size_t len);
void audit_spool_failed_locked(audit_pg *p, size_t n, int err);
int audit_spool_lines_locked(audit_pg *p, const pg_line *lines, size_t n);
int audit_spool_memory_locked(audit_pg *p);
pg_line *audit_spool_read_batch(audit_pg *p, off_t from, off_t size, off_t *end_off, size_t *count,
                                 size_t *lines);

#endif
