/*
 * audit_pg: the optional warehouse sink of the audit trail. The audit writer
 * (proxy/audit.c) hands it every JSON line it has written to the audit file;
 * a thread of this module inserts them in batches into a table of the
 * warehouse (governance.audit_events by default, created if absent) over a
 * libpq connection of its own. While the warehouse is unreachable or slow,
 * lines go to a local spool file and are replayed in order when it is back;
 * the connection is retried with exponential backoff. Retried batches cannot
 * produce duplicates: each row's record_id is the SHA-256 of the record and
 * inserts skip ids already present.
 */
#ifndef MARTGATE_AUDIT_PG_H
#define MARTGATE_AUDIT_PG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *conninfo;          /* libpq connection string */
    char *password;          /* or NULL */
    char *schema, *table;    /* validated identifiers, lower case */
    int batch_size;          /* rows per INSERT at most */
    int flush_interval_ms;   /* how long a partial batch may wait */
    char *spool_path;
    int stop_timeout_ms;     /* how long audit_pg_stop tries to flush */
} audit_pg_config;

typedef struct audit_pg audit_pg;

/* Opens (creates) the spool file and starts the thread; the connection is
 * made by the thread. A spool left by an earlier run is replayed first.
 * NULL with err filled on failure. cfg is copied. */
audit_pg *audit_pg_start(const audit_pg_config *cfg, char *err, size_t errlen);
/* Hands over newline-terminated JSON lines (copied). Never waits for the
 * network; may append to the spool file. Called by the audit writer only. */
void audit_pg_submit(audit_pg *p, const char *lines, size_t len);
/* Tries to insert what is left for up to stop_timeout_ms, keeps the rest in
 * the spool for the next start, joins the thread and frees. NULL-safe. */
void audit_pg_stop(audit_pg *p);

typedef struct {
    unsigned long long inserted;     /* rows the warehouse accepted */
    unsigned long long spooled;      /* lines appended to the spool */
    unsigned long long replayed;     /* lines inserted from the spool (after an outage or a restart) */
    unsigned long long pending;      /* lines not yet inserted (memory + spool + in flight) */
    unsigned long long dropped;      /* lines given up: neither spool nor memory could hold them */
    bool connected;
} audit_pg_stats;
void audit_pg_get_stats(audit_pg *p, audit_pg_stats *out);

/* Copies and frees an audit_pg_config's strings. */
int audit_pg_config_copy(audit_pg_config *dst, const audit_pg_config *src);
void audit_pg_config_clear(audit_pg_config *c);

#endif
