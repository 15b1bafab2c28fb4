/*
 * metrics: label tables, histograms and the Prometheus text exposition
 * (see metrics.h).
 */
#include "proxy/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const double decide_bounds[METRICS_DECIDE_BUCKETS] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0};
static const double connect_bounds[METRICS_CONNECT_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};

static const char *const login_names[MG_LOGIN_N] = {
    "ok", "token", "database", "principal", "tls_required", "startup",
    "service_role", "metadata", "warehouse", "timeout"};
static const char *const decision_names[MG_DECISION_N] = {"allow", "rewrite", "deny"};
static const char *const limit_names[MG_LIMIT_N] = {"max_clients", "max_pending_logins", "max_pending_per_address",
                                                     "max_message_bytes"};
static const char *const cancel_names[MG_CANCEL_N] = {"forwarded", "refused", "to_peer"};

/* Every table of names, shared by the worker threads: interning (a login,
 * a denial) and a scrape take it. Names are only ever appended. */
static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned name_locked(metrics_names *t, const char *name)
{
    if (!name || !*name)
        name = "(none)";
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->names[i], name) == 0)
            return (unsigned)i;
    if (t->n >= METRICS_OTHER)
        return METRICS_OTHER;
    char *copy = strdup(name);
    if (!copy)
        return METRICS_OTHER;
    t->names[t->n] = copy;
    return (unsigned)t->n++;
}

unsigned metrics_name(metrics_names *t, const char *name)
{
    pthread_mutex_lock(&names_mu);
    unsigned k = name_locked(t, name);
    pthread_mutex_unlock(&names_mu);
    return k;
}

const char *metrics_name_at(const metrics_names *t, unsigned k)
{
    pthread_mutex_lock(&names_mu);
    const char *n = k < t->n ? t->names[k] : NULL;
    pthread_mutex_unlock(&names_mu);
    return n;
}

void metrics_names_free(metrics_names *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->names[i]);
    memset(t, 0, sizeof *t);
}

static void observe(metrics_histogram *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
}

void metrics_observe_decide(metrics_block *b, double seconds)
{
    observe(&b->decide_seconds, decide_bounds, METRICS_DECIDE_BUCKETS, seconds);
}

void metrics_observe_connect(metrics_block *b, double seconds)
{
    observe(&b->connect_seconds, connect_bounds, METRICS_CONNECT_BUCKETS, seconds);
}

/* ---- exposition ------------------------------------------------------- */

typedef struct {
    struct evbuffer *out;
    int err;
} writer;

static void add(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (evbuffer_add_vprintf(w->out, fmt, ap) < 0)
        w->err = -1;
    va_end(ap);
}

/* A label value as the text format wants it: \, " and newline escaped. */
static void label_value(writer *w, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            add(w, "\\%c", *p);
        else if (*p == '\n')
            add(w, "\\n");
        else if (evbuffer_add(w->out, p, 1) != 0)
            w->err = -1;
    }
}

static void head(writer *w, const char *name, const char *type, const char *help)
{
    add(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *name_at(const metrics_names *t, unsigned i)
{
    return i == METRICS_OTHER ? "other" : metrics_name_at(t, i);
}

#define SUM(field) ({                          \
    uint64_t s_ = 0;                           \
    for (size_t k_ = 0; k_ < n; k_++)          \
        s_ += blocks[k_]->field;               \
    s_;                                        \
})

static void histogram(writer *w, const char *name, const char *help, const metrics_block *const *blocks, size_t n,
                      size_t offset, const double *bounds, size_t nb)
{
    head(w, name, "histogram", help);
    uint64_t cum = 0;
    double sum = 0;
    for (size_t i = 0; i <= nb; i++) {
        for (size_t k = 0; k < n; k++)
            cum += ((const metrics_histogram *)((const char *)blocks[k] + offset))->counts[i];
        if (i < nb)
            add(w, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
        else
            add(w, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    for (size_t k = 0; k < n; k++)
        sum += ((const metrics_histogram *)((const char *)blocks[k] + offset))->sum;
    add(w, "%s_sum %.9f\n%s_count %llu\n", name, sum, name, (unsigned long long)cum);
}

/* A counter by name index, one line per name that counted anything. */
static void by_name(writer *w, const char *metric, const char *label, const metrics_names *t,
                    const metrics_block *const *blocks, size_t n, size_t offset, size_t stride, size_t column)
{
    for (unsigned i = 0; i < METRICS_MAX_NAMES; i++) {
        const char *nm = name_at(t, i);
        if (!nm)
            continue;
        uint64_t v = 0;
        for (size_t k = 0; k < n; k++)
            v += *(const uint64_t *)((const char *)blocks[k] + offset + i * stride + column * sizeof(uint64_t));
        if (!v)
            continue;
        add(w, "%s{%s=\"", metric, label);
        label_value(w, nm);
        add(w, "\"} %llu\n", (unsigned long long)v);
    }
}

int metrics_write(struct evbuffer *out, const metrics_block *const *blocks, size_t n, const metrics_names *databases,
                  const metrics_names *datasets, const metrics_session_count *sessions, size_t nsessions,
                  const metrics_info *info)
{
    writer w = {out, 0};

    head(&w, "martgate_build_info", "gauge", "martgate's version and the libraries it was built with");
    add(&w, "martgate_build_info{version=\"");
    label_value(&w, info->version);
    add(&w, "\",libpg_query=\"");
    label_value(&w, info->pg_query_version);
    add(&w, "\",openssl=\"");
    label_value(&w, info->openssl_version);
    add(&w, "\"} 1\n");
    head(&w, "martgate_start_time_seconds", "gauge", "when martgate started, in Unix seconds");
    add(&w, "martgate_start_time_seconds %.3f\n", info->start_time);

    head(&w, "martgate_client_sessions", "gauge", "client sessions by state and database");
    for (size_t i = 0; i < nsessions; i++) {
        add(&w, "martgate_client_sessions{state=\"%s\",database=\"", sessions[i].state);
        label_value(&w, name_at(databases, sessions[i].database));
        add(&w, "\"} %llu\n", (unsigned long long)sessions[i].n);
    }

    head(&w, "martgate_logins_total", "counter", "logins by result: ok, or the reason of the refusal");
    for (int r = 0; r < MG_LOGIN_N; r++)
        add(&w, "martgate_logins_total{result=\"%s\"} %llu\n", login_names[r], (unsigned long long)SUM(logins[r]));

    head(&w, "martgate_statements_total", "counter",
         "statement texts decided (Query and Parse messages) by decision and database");
    for (unsigned i = 0; i < METRICS_MAX_NAMES; i++) {
        const char *nm = name_at(databases, i);
        if (!nm)
            continue;
        for (int d = 0; d < MG_DECISION_N; d++) {
            uint64_t v = SUM(statements[i][d]);
            if (!v)
                continue;
            add(&w, "martgate_statements_total{decision=\"%s\",database=\"", decision_names[d]);
            label_value(&w, nm);
            add(&w, "\"} %llu\n", (unsigned long long)v);
        }
    }
    head(&w, "martgate_denials_total", "counter", "statements denied by policy, by the dataset of the deciding relation");
    by_name(&w, "martgate_denials_total", "dataset", datasets, blocks, n, offsetof(metrics_block, denials),
            sizeof(uint64_t), 0);
    histogram(&w, "martgate_decision_seconds", "time to analyse and decide a statement", blocks, n,
              offsetof(metrics_block, decide_seconds), decide_bounds, METRICS_DECIDE_BUCKETS);

    head(&w, "martgate_warehouse_connections_total", "counter", "warehouse sessions opened, by database");
    by_name(&w, "martgate_warehouse_connections_total", "database", databases, blocks, n,
            offsetof(metrics_block, warehouse_opens), sizeof(uint64_t), 0);
    head(&w, "martgate_warehouse_connection_failures_total", "counter",
         "warehouse sessions that could not be opened, by database");
    by_name(&w, "martgate_warehouse_connection_failures_total", "database", databases, blocks, n,
            offsetof(metrics_block, warehouse_failures), sizeof(uint64_t), 0);
    histogram(&w, "martgate_warehouse_connect_seconds", "time to open a warehouse session (TCP, TLS, authentication)",
              blocks, n, offsetof(metrics_block, connect_seconds), connect_bounds, METRICS_CONNECT_BUCKETS);

    head(&w, "martgate_received_bytes_total", "counter", "bytes read, by side (client or warehouse)");
    add(&w, "martgate_received_bytes_total{from=\"client\"} %llu\n", (unsigned long long)SUM(bytes_from_clients));
    add(&w, "martgate_received_bytes_total{from=\"warehouse\"} %llu\n", (unsigned long long)SUM(bytes_from_warehouse));

    head(&w, "martgate_cancel_requests_total", "counter",
         "cancel requests: forwarded to the warehouse, refused (no session has the key), or sent to the "
         "peer instance the key names (to_peer)");
    for (int c = 0; c < MG_CANCEL_N; c++)
        add(&w, "martgate_cancel_requests_total{result=\"%s\"} %llu\n", cancel_names[c],
            (unsigned long long)SUM(cancels[c]));
    head(&w, "martgate_limit_refusals_total", "counter", "connections and messages refused by a limit (limits.*)");
    for (int l = 0; l < MG_LIMIT_N; l++)
        add(&w, "martgate_limit_refusals_total{limit=\"%s\"} %llu\n", limit_names[l],
            (unsigned long long)SUM(limits[l]));
    head(&w, "martgate_tls_handshake_failures_total", "counter", "client TLS handshakes that failed");
    add(&w, "martgate_tls_handshake_failures_total %llu\n", (unsigned long long)SUM(tls_failures));

    head(&w, "martgate_config_reloads_total", "counter", "configuration reloads (SIGHUP), by result");
    add(&w, "martgate_config_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)info->reloads_ok);
    add(&w, "martgate_config_reloads_total{result=\"failed\"} %llu\n", (unsigned long long)info->reloads_failed);
    if (info->policy_hash) {
        head(&w, "martgate_policy_info", "gauge", "the policy loaded: the SHA-256 of its files (first 16 hex digits)");
        add(&w, "martgate_policy_info{sha256=\"");
        label_value(&w, info->policy_hash);
        add(&w, "\"} 1\n");
        head(&w, "martgate_policy_loaded_time_seconds", "gauge", "when the policy loaded was read, in Unix seconds");
        add(&w, "martgate_policy_loaded_time_seconds %.3f\n", info->policy_loaded_at);
    }

    if (info->audit_enabled) {
        head(&w, "martgate_audit_records_written_total", "counter", "audit records appended to the audit file");
        add(&w, "martgate_audit_records_written_total %llu\n", (unsigned long long)info->audit_written);
        head(&w, "martgate_audit_full_refusals_total", "counter",
             "times the audit queue was full when a statement asked for room (it waited, or was refused)");
        add(&w, "martgate_audit_full_refusals_total %llu\n", (unsigned long long)info->audit_refused);
        head(&w, "martgate_audit_queue_records", "gauge", "audit records waiting to be written");
        add(&w, "martgate_audit_queue_records %llu\n", (unsigned long long)info->audit_queued);
        head(&w, "martgate_audit_queue_capacity_records", "gauge", "audit.queue_size");
        add(&w, "martgate_audit_queue_capacity_records %llu\n", (unsigned long long)info->audit_queue_size);
        double blocked = 0;
        for (size_t k = 0; k < n; k++)
            blocked += blocks[k]->audit_blocked_seconds;
        head(&w, "martgate_audit_blocked_seconds_total", "counter",
             "time statements were held waiting for room in the audit queue (audit.when_full = block)");
        add(&w, "martgate_audit_blocked_seconds_total %.6f\n", blocked);
        if (info->audit_warehouse) {
            head(&w, "martgate_audit_warehouse_inserted_total", "counter", "audit rows the warehouse table accepted");
            add(&w, "martgate_audit_warehouse_inserted_total %llu\n", (unsigned long long)info->audit_wh_inserted);
            head(&w, "martgate_audit_warehouse_spooled_total", "counter",
                 "audit rows written to the spool while the warehouse was behind or down");
            add(&w, "martgate_audit_warehouse_spooled_total %llu\n", (unsigned long long)info->audit_wh_spooled);
            head(&w, "martgate_audit_warehouse_replayed_total", "counter",
                 "audit rows inserted from the spool once the warehouse was back (or after a restart)");
            add(&w, "martgate_audit_warehouse_replayed_total %llu\n", (unsigned long long)info->audit_wh_replayed);
            head(&w, "martgate_audit_warehouse_pending_records", "gauge",
                 "audit rows not in the warehouse yet (memory, spool, in flight)");
            add(&w, "martgate_audit_warehouse_pending_records %llu\n", (unsigned long long)info->audit_wh_pending);
            head(&w, "martgate_audit_warehouse_dropped_total", "counter",
                 "audit rows the warehouse sink gave up (spool unwritable, memory full; the file has them)");
            add(&w, "martgate_audit_warehouse_dropped_total %llu\n", (unsigned long long)info->audit_wh_dropped);
            head(&w, "martgate_audit_warehouse_up", "gauge", "1 when the warehouse audit sink is connected");
            add(&w, "martgate_audit_warehouse_up %d\n", info->audit_wh_connected ? 1 : 0);
        }
    }
    return w.err;
}
