/*
 * ops_http: /metrics, /healthz and /readyz over evhttp (see ops_http.h).
 */
#include "proxy/ops_http.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/postgres.h"
#include "common/clock.h"
#include "common/log.h"
#include "policy/analyze.h"
#include "proxy/metrics.h"
#include "proxy/server.h"
#include "proxy/session.h"

struct ops_http {
    server *srv;
    struct evhttp *http;
    struct event *probe_timer;
    backend *probe[METRICS_MAX_NAMES];   /* a probe in flight, by database name index */
};

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add_printf(b, "%s\n", text);
    reply(req, code, reason, "text/plain; charset=utf-8", b);
    if (b)
        evbuffer_free(b);
}

/* The bearer token, when metrics.token_file is set, compared in constant time. */
static bool authorized(server *srv, struct evhttp_request *req)
{
    config *cfg = server_config(srv);
    const char *want = cfg->metrics_token;
    bool ok = true;
    if (want) {
        const char *got = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
        ok = got && strncmp(got, "Bearer ", 7) == 0;
        if (ok) {
            got += 7;
            size_t n = strlen(want);
            ok = strlen(got) == n && CRYPTO_memcmp(got, want, n) == 0;
        }
    }
    config_unref(cfg);
    return ok;
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    ops_http *h = arg;
    server *srv = h->srv;
    if (!authorized(srv, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        reply_text(req, 401, "Unauthorized", "a bearer token is required (metrics.token_file)");
        return;
    }
    metrics_info info = {
        .version = MARTGATE_VERSION,
        .pg_query_version = analyze_parser_version(),
        .openssl_version = OpenSSL_version(OPENSSL_VERSION),
    };
    char hash[65];
    server_metrics_info(srv, &info, hash);
    /* every worker's counters and sessions, copied on its own thread */
    server_snapshot snap;
    struct evbuffer *b = evbuffer_new();
    bool taken = b && server_snapshot_take(srv, &snap) == 0;
    if (!taken || metrics_write(b, snap.ptrs, snap.n, &srv->metric_databases, &srv->metric_datasets, snap.counts,
                                snap.ncounts, &info) != 0) {
        if (taken)
            server_snapshot_free(&snap);
        if (b)
            evbuffer_free(b);
        reply_text(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    server_snapshot_free(&snap);
    reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

static void put_json_string(struct evbuffer *b, const char *s)
{
    evbuffer_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            evbuffer_add_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            evbuffer_add_printf(b, "\\u%04x", *p);
        else
            evbuffer_add(b, p, 1);
    }
    evbuffer_add(b, "\"", 1);
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
    ops_http *h = arg;
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add_printf(b, "{\"status\": \"%s\", \"sessions\": %d}\n",
                            atomic_load(&h->srv->stopping) ? "stopping" : "ok", atomic_load(&h->srv->nsessions));
    reply(req, 200, "OK", "application/json", b);
    if (b)
        evbuffer_free(b);
}

/* Ready: each check "ok" or why not; 503 when one is not. */
static void on_readyz(struct evhttp_request *req, void *arg)
{
    ops_http *h = arg;
    server *srv = h->srv;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        reply_text(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    config *cfg = server_config(srv);
    bool stopping = atomic_load(&srv->stopping);
    bool ready = !stopping;
    evbuffer_add_printf(b, "{\"checks\": {\"accepting\": ");
    put_json_string(b, stopping ? "no: shutting down" : "ok");
    evbuffer_add_printf(b, ", \"policy\": ");
    if (cfg->policy_path && !cfg->policy) {
        ready = false;
        put_json_string(b, "no policy loaded");
    } else {
        put_json_string(b, cfg->policy ? "ok" : "ok: none configured (every authenticated statement is allowed)");
    }
    double now = clock_mono_s();
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        const char *name = cfg->databases[i].name;
        unsigned k = metrics_name(&srv->metric_databases, name);
        char why[300], last_error[200];
        double at = server_warehouse_state(srv, k, last_error, sizeof last_error);
        if (at > 0 && now - at <= cfg->ready_warehouse_s) {
            snprintf(why, sizeof why, "ok");
        } else {
            ready = false;
            if (last_error[0])
                snprintf(why, sizeof why, "no connection accepted in the last %d s: %s", cfg->ready_warehouse_s,
                         last_error);
            else
                snprintf(why, sizeof why, "no connection accepted in the last %d s", cfg->ready_warehouse_s);
        }
        evbuffer_add_printf(b, ", ");
        char key[128];
        snprintf(key, sizeof key, "warehouse %s", name);
        put_json_string(b, key);
        evbuffer_add_printf(b, ": ");
        put_json_string(b, why);
    }
    audit_stats as;
    audit_get_stats(srv->audit, &as);
    evbuffer_add_printf(b, ", \"audit\": ");
    if (audit_enabled(srv->audit) && as.queued >= as.queue_size) {
        ready = false;
        char why[160];
        snprintf(why, sizeof why, "the audit queue is full (%llu records): statements wait or are refused",
                 as.queued);
        put_json_string(b, why);
    } else {
        put_json_string(b, audit_enabled(srv->audit) ? "ok" : "ok: auditing is off");
    }
    config_unref(cfg);
    evbuffer_add_printf(b, "}, \"ready\": %s}\n", ready ? "true" : "false");
    reply(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", "application/json", b);
    evbuffer_free(b);
}

static void on_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    reply_text(req, 404, "Not Found", "martgate serves /metrics, /healthz and /readyz");
}

/* ---- warehouse probes ------------------------------------------------- */

static void on_probe(backend *b, bool ok, const char *error, void *arg)
{
    ops_http *h = arg;
    for (size_t k = 0; k < METRICS_MAX_NAMES; k++) {
        if (h->probe[k] != b)
            continue;
        server_warehouse_outcome(h->srv, metrics_name_at(&h->srv->metric_databases, (unsigned)k),
                                 ok ? NULL : (error ? error : "unknown error"));
        h->probe[k] = NULL;
    }
    backend_free(b);
}

/* Every few seconds: a database no session opened a connection to within
 * half the readiness window gets a probe (one at a time). */
static void on_probe_timer(evutil_socket_t fd, short what, void *arg)
{
    ops_http *h = arg;
    server *srv = h->srv;
    (void)fd;
    (void)what;
    if (atomic_load(&srv->stopping))
        return;
    double now = clock_mono_s();
    config *cfg = server_config(srv);
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        const config_database *db = &cfg->databases[i];
        unsigned k = metrics_name(&srv->metric_databases, db->name);
        char last_error[8];
        if (k == METRICS_OTHER || h->probe[k] ||
            now - server_warehouse_state(srv, k, last_error, sizeof last_error) < cfg->ready_warehouse_s / 2.0)
            continue;
        char options[4096];
        const char *keys[] = {"application_name", "connect_timeout", "options", NULL};
        const char *vals[] = {"martgate-probe", "5", options, NULL};
        char err[256];
        if (backend_parse_options(db->conninfo, NULL, options, sizeof options) != 0) {
            server_warehouse_outcome(srv, db->name, "the conninfo's options are too long");
            continue;
        }
        h->probe[k] = backend_connect(srv->base, db->conninfo, db->password, keys, vals, on_probe, h, err,
                                      sizeof err);
        if (!h->probe[k])
            server_warehouse_outcome(srv, db->name, err);
    }
    config_unref(cfg);
}

ops_http *ops_http_start(server *srv, char *err, unsigned long errlen)
{
    err[0] = 0;
    const config *cfg = srv->cfg;
    if (!cfg->metrics_listen)
        return NULL;
    ops_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->srv = srv;
    h->http = evhttp_new(srv->base);
    char host[256];
    const char *colon = strrchr(cfg->metrics_listen, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - cfg->metrics_listen), cfg->metrics_listen);
    if (host[0] == '[') {   /* [::1]:9187 */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
    int port = atoi(colon + 1);
    if (!h->http || evhttp_bind_socket(h->http, host, (ev_uint16_t)port) != 0) {
        snprintf(err, errlen, "cannot listen on %s (metrics.listen)", cfg->metrics_listen);
        ops_http_free(h);
        return NULL;
    }
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(h->http, 8192);
    evhttp_set_max_body_size(h->http, 0);
    evhttp_set_timeout(h->http, 10);
    evhttp_set_cb(h->http, "/metrics", on_metrics, h);
    evhttp_set_cb(h->http, "/healthz", on_healthz, h);
    evhttp_set_cb(h->http, "/readyz", on_readyz, h);
    evhttp_set_gencb(h->http, on_other, h);
    h->probe_timer = event_new(srv->base, -1, EV_PERSIST, on_probe_timer, h);
    struct timeval tv = {2, 0};
    if (!h->probe_timer || event_add(h->probe_timer, &tv) != 0) {
        snprintf(err, errlen, "out of memory");
        ops_http_free(h);
        return NULL;
    }
    event_active(h->probe_timer, EV_TIMEOUT, 0);   /* the first probes at once */
    log_msg(LOG_INFO, "serving /metrics, /healthz and /readyz on %s%s", cfg->metrics_listen,
            cfg->metrics_token ? " (metrics behind a bearer token)" : "");
    return h;
}

void ops_http_free(ops_http *h)
{
    if (!h)
        return;
    for (size_t k = 0; k < METRICS_MAX_NAMES; k++)
        backend_free(h->probe[k]);
    if (h->probe_timer)
        event_free(h->probe_timer);
    if (h->http)
        evhttp_free(h->http);
    free(h);
}
