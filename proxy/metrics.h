/*
 * metrics: martgate's counters and histograms, and the Prometheus text
 * exposition of them with the gauges read at scrape time (sessions by state,
 * the audit log's queue, the policy loaded). A block of counters belongs to
 * one event loop and is written only by that loop's thread: plain additions,
 * no lock or atomic on the hot path; a scrape runs on the loop and sums the
 * blocks it is given. Labels are bounded: enums, or names from the
 * configuration and the policy (databases, datasets) interned in a table of
 * METRICS_MAX_NAMES, beyond which they count as "other". Never a label per
 * user, address or query text.
 */
#ifndef MARTGATE_METRICS_H
#define MARTGATE_METRICS_H

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MG_LOGIN_OK = 0,
    MG_LOGIN_TOKEN,              /* the JWT was refused (or too long) */
    MG_LOGIN_DATABASE,           /* no such database in the configuration */
    MG_LOGIN_PRINCIPAL,          /* the policy refuses the principal (search_path, role) */
    MG_LOGIN_TLS_REQUIRED,       /* a plaintext connection where TLS is required */
    MG_LOGIN_STARTUP,            /* a startup parameter refused, or a bad packet */
    MG_LOGIN_SERVICE_ROLE,       /* the service role is more privileged than allowed */
    MG_LOGIN_METADATA,           /* the warehouse's metadata could not be read */
    MG_LOGIN_WAREHOUSE,          /* the warehouse could not be reached or refused */
    MG_LOGIN_TIMEOUT,            /* limits.login_timeout_seconds */
    MG_LOGIN_N
} metrics_login;

typedef enum { MG_DECISION_ALLOW = 0, MG_DECISION_REWRITE, MG_DECISION_DENY, MG_DECISION_N } metrics_decision;

typedef enum {
    MG_LIMIT_MAX_CLIENTS = 0,
    MG_LIMIT_MAX_PENDING_LOGINS,
    MG_LIMIT_MAX_PENDING_PER_ADDRESS,
    MG_LIMIT_MAX_MESSAGE_BYTES,
    MG_LIMIT_N
} metrics_limit;

typedef enum {
    MG_CANCEL_FORWARDED = 0,     /* the key matched a session here: its warehouse query was cancelled */
    MG_CANCEL_REFUSED,           /* no session has the key (or a peer id that is not configured) */
    MG_CANCEL_TO_PEER,           /* the key names a peer: the cancel was sent to it (proxy/cancel_forward) */
    MG_CANCEL_N
} metrics_cancel;

#define METRICS_MAX_NAMES 64
#define METRICS_OTHER (METRICS_MAX_NAMES - 1)   /* the name index of "other" */
#define METRICS_DECIDE_BUCKETS 13
#define METRICS_CONNECT_BUCKETS 13

typedef struct {
    uint64_t counts[METRICS_CONNECT_BUCKETS + 1];   /* per bucket (not cumulative), the last +Inf */
    double sum;
} metrics_histogram;

/* One event loop's counters. */
typedef struct metrics_block {
    uint64_t logins[MG_LOGIN_N];
    uint64_t statements[METRICS_MAX_NAMES][MG_DECISION_N];   /* by database name index */
    uint64_t denials[METRICS_MAX_NAMES];                      /* by dataset name index */
    metrics_histogram decide_seconds;
    uint64_t warehouse_opens[METRICS_MAX_NAMES], warehouse_failures[METRICS_MAX_NAMES];
    metrics_histogram connect_seconds;
    uint64_t bytes_from_clients, bytes_from_warehouse;
    uint64_t cancels[MG_CANCEL_N];
    uint64_t limits[MG_LIMIT_N];
    uint64_t tls_failures;
    double audit_blocked_seconds;   /* statements held waiting for room in the audit queue */
} metrics_block;

/* The interned label names of one kind (databases, datasets). */
typedef struct {
    char *names[METRICS_MAX_NAMES];
    size_t n;
} metrics_names;

/* What a scrape reports beside the counters, read by the caller. */
typedef struct {
    const char *version, *pg_query_version, *openssl_version;
    double start_time;               /* Unix seconds */
    uint64_t reloads_ok, reloads_failed;
    const char *policy_hash;         /* NULL: no policy */
    double policy_loaded_at;         /* Unix seconds */
    /* the audit log (audit_get_stats) */
    int audit_enabled, audit_warehouse;
    uint64_t audit_written, audit_refused, audit_queued, audit_queue_size;
    uint64_t audit_wh_inserted, audit_wh_spooled, audit_wh_replayed, audit_wh_pending, audit_wh_dropped;
    int audit_wh_connected;
} metrics_info;

/* The index of name in the table (interned on first use; "other" when the
 * table is full; NULL or "" is "(none)"). */
unsigned metrics_name(metrics_names *t, const char *name);
/* The name of index k, or NULL (the string lives as long as the table). */
const char *metrics_name_at(const metrics_names *t, unsigned k);
void metrics_names_free(metrics_names *t);

void metrics_observe_decide(metrics_block *b, double seconds);
void metrics_observe_connect(metrics_block *b, double seconds);

/* Session counts by state name and database name index, given by the
 * caller's walk of its sessions. */
typedef struct {
    const char *state;
    unsigned database;
    uint64_t n;
} metrics_session_count;

/* Appends the exposition of blocks[0..n) summed, the sessions and the info
 * to out (Prometheus text format 0.0.4). -1 out of memory. */
int metrics_write(struct evbuffer *out, const metrics_block *const *blocks, size_t n, const metrics_names *databases,
                  const metrics_names *datasets, const metrics_session_count *sessions, size_t nsessions,
                  const metrics_info *info);

#endif
