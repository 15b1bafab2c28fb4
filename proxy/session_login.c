/*
 * session_login: the login's three states of a session. STARTUP reads the
 * startup packet (with TLS negotiation, GSSENC refusal and cancel requests)
 * and checks its parameters; AUTH takes the password, verifies it as a JWT
 * and sets up the principal; CONNECTING opens the warehouse session through
 * adapters/postgres, checks what the warehouse says of it and hands over to
 * the relay (READY). proxy/session.c owns the rest of the session's life.
 */
#include "proxy/session.h"

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "proxy/admin_console.h"
#include "proxy/audit_trail.h"
#include "proxy/cancel_forward.h"
#include "proxy/cancel_key.h"
#include "proxy/ops_http.h"
#include "proxy/server.h"
#include "proxy/session_internal.h"

/* ---- PROXY_HEADER -------------------------------------------------------- */

/* A peer in proxy_protocol.trusted (a load balancer) names the client in a
 * PROXY protocol header before anything else: read it (bounded, under the
 * login timeout that runs since accept), and from then on the client's
 * address is the header's everywhere (log prefix, audit, the pending-login
 * limit per address, the admin console). A LOCAL header or an UNKNOWN/UNSPEC
 * one (health checks) keeps the peer's own address. */
void session_read_proxy_header(session *s)
{
    struct evbuffer *in = conn_in(&s->client);
    uint8_t buf[PROXY_HEADER_MAX_BYTES];
    size_t len = evbuffer_get_length(in);
    if (len > sizeof buf)
        len = sizeof buf;
    if (evbuffer_copyout(in, buf, len) != (ev_ssize_t)len) {
        session_kill(s);
        return;
    }
    proxy_header h;
    size_t used = 0;
    int rc = proxy_header_parse(buf, len, &h, &used);
    if (rc == PROXY_NEED_MORE)
        return;
    if (rc == PROXY_ERROR && !proxy_header_looks_like(buf, len)) {
        session_log(s, LOG_WARNING, "refused: no PROXY protocol header from a proxy_protocol.trusted address "
                    "(first byte 0x%02x); connect through the load balancer", buf[0]);
        session_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "a PROXY protocol header was expected from this address");
        return;
    }
    if (rc == PROXY_ERROR) {
        session_log(s, LOG_WARNING, "refused: bad PROXY protocol header from a proxy_protocol.trusted address: %s",
                    h.reason);
        session_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "invalid PROXY protocol header");
        return;
    }
    evbuffer_drain(in, used);
    char peer[80];
    snprintf(peer, sizeof peer, "%s:%d", s->client_addr, s->client_port);
    if (h.has_address)
        s->client_port = proxy_header_source(&h, s->client_addr, sizeof s->client_addr);
    session_log(s, LOG_DEBUG, "PROXY protocol v%d header from %s: %s", h.version, peer,
                h.local ? "LOCAL (the proxy's own connection)"
                        : h.has_address ? "client address from the header" : "no address (the peer's stands)");
    session_set_state(s, SS_STARTUP);
    /* the pending-login limit per address, now under the client's own */
    if (!server_pending_address_ok(s->wk->srv, s)) {
        session_fatal(s, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many connections waiting to log in");
        return;
    }
}

/* ---- STARTUP ---------------------------------------------------------- */

/* A CancelRequest, carried to the worker whose session its key names. */
typedef struct cancel_msg {
    uint32_t pid, key;
    bool forwarded;              /* by a peer instance */
    char from[128];              /* the canceller, for the log */
} cancel_msg;

#define NO_SESSION(fwd) ((fwd) ? "a key that matches no session (forwarded by a peer instance)" \
                              : "a key that matches no session")

static void refuse_cancel(worker *w, const cancel_msg *m, const char *why)
{
    w->metrics.cancels[MG_CANCEL_REFUSED]++;
    static log_rate wrong_keys;
    unsigned long unlogged;
    if (log_rate_ok(&wrong_keys, &unlogged))
        log_msg(LOG_INFO, "cancel request from %s with %s%s", m->from, why,
                unlogged ? " (and more not logged in the last second)" : "");
}

/* On the worker the key names (its thread). */
static void cancel_here(worker *w, const cancel_msg *m)
{
    session *target = worker_find_by_key(w, m->pid);
    if (target && CRYPTO_memcmp(&target->key_secret, &m->key, sizeof m->key) == 0) {
        w->metrics.cancels[MG_CANCEL_FORWARDED]++;
        if (m->forwarded)
            session_log(target, LOG_INFO, "cancel request from %s came through a peer martgate instance", m->from);
        session_cancel(target);
    } else {
        refuse_cancel(w, m, NO_SESSION(m->forwarded));
    }
}

static void cancel_posted(worker *w, void *arg)
{
    cancel_here(w, arg);
    free(arg);
}

/* A CancelRequest, or (forwarded) a cancel another martgate instance sent
 * on because the key names this one. The key's pid says whose session it is
 * (proxy/cancel_key.h): one of this instance's (carried to the worker that
 * runs it), a configured peer's (sent on to it, never when it was forwarded
 * to us already: two instances whose "peers" disagree cannot pass it back
 * and forth; one cancel in, at most one connection out), or nobody's. The
 * peers are this worker's current configuration's. */
static void handle_cancel_request(session *s, uint32_t pid, uint32_t key, bool forwarded)
{
    server *srv = s->wk->srv;
    unsigned peer_id = cancel_key_peer(pid);
    unsigned owner = cancel_key_worker(pid);
    cancel_msg m = {.pid = pid, .key = key, .forwarded = forwarded};
    snprintf(m.from, sizeof m.from, "%s:%d", s->client_addr, s->client_port);
    bool ours = peer_id == srv->peer_id;
    if (ours && owner < srv->nworkers && cancel_key_valid(pid)) {
        cancel_msg *copy;
        if (owner == s->wk->index)
            cancel_here(s->wk, &m);
        else if ((copy = malloc(sizeof *copy)) != NULL) {
            *copy = m;
            worker_post(&srv->workers[owner], cancel_posted, copy, free);
        }
    } else if (!ours && !forwarded && peer_id != 0) {
        const config_peer *peer = config_find_peer(s->wk->cfg, (int)peer_id);
        char why[96];
        if (!peer) {
            snprintf(why, sizeof why, "a key naming peer %u, which peers does not list", peer_id);
            refuse_cancel(s->wk, &m, why);
        } else if (cancel_key_valid(pid)) {
            /* one connection per cancel, bounded in flight; it logs a drop */
            (void)cancel_forward(s->wk->cancel_fwd, peer, pid, key, s->client_addr, s->client_port);
        } else {
            refuse_cancel(s->wk, &m, NO_SESSION(forwarded));
        }
    } else {
        refuse_cancel(s->wk, &m, NO_SESSION(forwarded));
    }
    /* PostgreSQL answers a cancel request with nothing but a closed socket */
    session_kill(s);
}

static int start_tls(session *s)
{
    /* 'S' goes out in the clear, everything after it inside TLS */
    evbuffer_add(conn_out(&s->client), "S", 1);
    if (conn_flush(&s->client) < 0 || conn_out_len(&s->client) > 0)
        return -1;
    SSL *ssl = SSL_new(s->cfg->ssl_ctx);
    if (!ssl)
        return -1;
    conn_tls_accept(&s->client, ssl);
    return 0;
}

static void connect_warehouse(session *s);

/* A startup parameter's value: no control character (the server splits
 * "-c" settings on any whitespace, and nothing legitimate needs one). */
static bool plain_value(const char *v)
{
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return false;
    return true;
}

/* The server's own separators of "options" (pg_split_opts: isspace). */
static bool option_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Replaces the "options" startup parameter by the settings it carries
 * ("-c name=value", "-cname=value", "--name=value"; whitespace separates,
 * a backslash escapes the next character, as the server splits them), so
 * that each is checked like any other startup parameter. */
static int expand_options(session *s, char *err, size_t errlen)
{
    pg_startup *st = s->login->startup;
    size_t at = st->nparams;
    for (size_t i = 0; i < st->nparams; i++)
        if (!strcmp(st->names[i], "options"))
            at = i;
    if (at == st->nparams)
        return 0;
    const char *src = st->values[at];
    size_t len = strlen(src);
    s->login->options_buf = malloc(len * 2 + 2);
    if (!s->login->options_buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    st->names[at] = st->names[--st->nparams];   /* drop "options" itself */
    st->values[at] = st->values[st->nparams];
    char *out = s->login->options_buf;
    const char *p = src;
    bool pending_c = false;
    for (;;) {
        while (option_space(*p))
            p++;
        if (!*p)
            break;
        char *tok = out;
        while (*p && !option_space(*p)) {
            if (*p == '\\' && p[1])
                p++;
            *out++ = *p++;
        }
        *out++ = 0;
        char *setting;
        if (pending_c) {
            setting = tok;
            pending_c = false;
        } else if (!strcmp(tok, "-c")) {
            pending_c = true;
            continue;
        } else if (!strncmp(tok, "-c", 2)) {
            setting = tok + 2;
        } else if (!strncmp(tok, "--", 2)) {
            setting = tok + 2;
            for (char *d = setting; *d && *d != '='; d++)
                if (*d == '-')
                    *d = '_';
        } else {
            snprintf(err, errlen, "\"options\" may only carry -c name=value settings, not \"%s\"", tok);
            return -1;
        }
        char *eq = strchr(setting, '=');
        if (!eq || eq == setting) {
            snprintf(err, errlen, "invalid setting \"%s\" in \"options\"", setting);
            return -1;
        }
        *eq = 0;
        if (st->nparams == PG_MAX_STARTUP_PARAMS) {
            snprintf(err, errlen, "too many startup parameters");
            return -1;
        }
        st->names[st->nparams] = setting;
        st->values[st->nparams++] = eq + 1;
    }
    if (pending_c) {
        snprintf(err, errlen, "\"options\" ends with -c and no setting");
        return -1;
    }
    return 0;
}

static void handle_startup(session *s)
{
    const pg_startup *st = s->login->startup;
    if (s->over_limit) {
        /* said after TLS and the startup packet, where clients show it */
        session_fatal(s, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many clients already");
        return;
    }
    if (!s->client.ssl && !s->cfg->allow_plaintext) {
        session_log(s, LOG_INFO, "refused: plaintext connection");
        s->wk->metrics.logins[MG_LOGIN_TLS_REQUIRED]++;
        session_fatal(s, SQLSTATE_INVALID_AUTHORIZATION,
              "martgate requires an encrypted connection; connect with sslmode=require or stronger");
        return;
    }
    s->user = pgw_startup_get(st, "user");
    s->database = pgw_startup_get(st, "database");
    s->application_name = pgw_startup_get(st, "application_name");
    if (!s->user || !*s->user) {
        session_fatal(s, SQLSTATE_INVALID_AUTHORIZATION, "no PostgreSQL user name specified in startup packet");
        return;
    }
    if (!s->database || !*s->database)
        s->database = s->user;
    for (size_t i = 0; i < st->nparams; i++)
        if (!plain_value(st->values[i])) {
            session_fatal(s, SQLSTATE_INVALID_PARAMETER_VALUE,
                  "the value of startup parameter \"%s\" contains a control character", st->names[i]);
            return;
        }
    char oerr[300];
    if (expand_options(s, oerr, sizeof oerr) != 0) {
        session_fatal(s, SQLSTATE_INSUFFICIENT_PRIVILEGE, "%s", oerr);
        return;
    }
    for (size_t i = 0; i < st->nparams; i++) {
        const char *n = st->names[i];
        if (!strcmp(n, "user") || !strcmp(n, "database") || !strncmp(n, "_pq_.", 5))
            continue;
        if (!strcmp(n, "replication")) {
            session_fatal(s, SQLSTATE_INSUFFICIENT_PRIVILEGE, "replication connections are not allowed through martgate");
            return;
        }
    }
    struct evbuffer *out = conn_out(&s->client);
    /* newer 3.x minor versions and _pq_ options: say what we speak */
    const char *unknown[PG_MAX_STARTUP_PARAMS];
    size_t nunknown = 0;
    for (size_t i = 0; i < st->nparams; i++)
        if (!strncmp(st->names[i], "_pq_.", 5))
            unknown[nunknown++] = st->names[i];
    if ((st->code & 0xffff) != 0 || nunknown)
        pgw_negotiate_protocol(out, 0, unknown, nunknown);
    pgw_auth_request(out, 3); /* AuthenticationCleartextPassword */
    session_set_state(s, SS_AUTH);
}

void session_read_startup(session *s)
{
    struct evbuffer *in = conn_in(&s->client);
    while (s->state == SS_STARTUP) {
        unsigned char hdr[4];
        if (evbuffer_copyout(in, hdr, 4) < 4)
            return;
        uint32_t len = pgw_get_u32(hdr);
        if (len < 8 || len > PG_MAX_STARTUP_PACKET) {
            uint8_t head[12];
            ev_ssize_t hn = evbuffer_copyout(in, head, sizeof head);
            if (hn > 0 && proxy_header_looks_like(head, (size_t)hn))
                session_log(s, LOG_WARNING, "refused: a PROXY protocol header from an address that "
                            "proxy_protocol.trusted does not list");
            session_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "invalid length of startup packet");
            return;
        }
        if (evbuffer_get_length(in) < len)
            return;
        char *pkt = malloc(len);
        if (!pkt) {
            session_kill(s);
            return;
        }
        evbuffer_remove(in, pkt, len);
        pg_startup st;
        char why[256];
        if (pgw_parse_startup(pkt + 4, len - 4, &st, why, sizeof why) != 0) {
            free(pkt);
            session_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "%s", why);
            return;
        }
        if (st.code == PG_CANCEL_REQUEST_CODE) {
            free(pkt);
            handle_cancel_request(s, st.cancel_pid, st.cancel_key, false);
            return;
        }
        if (st.code == PG_FORWARDED_CANCEL_CODE) {
            free(pkt);
            /* a peer instance sends it in plaintext, before any TLS */
            if (s->client.ssl) {
                session_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "forwarded cancel request inside TLS");
                return;
            }
            handle_cancel_request(s, st.cancel_pid, st.cancel_key, true);
            return;
        }
        if (st.code == PG_SSL_REQUEST_CODE) {
            free(pkt);
            if (s->client.ssl) {
                session_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "SSLRequest inside an encrypted connection");
                return;
            }
            if (!s->cfg->ssl_ctx) {
                evbuffer_add(conn_out(&s->client), "N", 1);
                continue;
            }
            if (evbuffer_get_length(in) > 0) {
                /* bytes behind the request would bypass the handshake (CVE-2021-23214) */
                session_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "received unencrypted data after SSL request");
                return;
            }
            if (start_tls(s) != 0) {
                session_log(s, LOG_WARNING, "cannot start TLS");
                session_kill(s);
            }
            return;
        }
        if (st.code == PG_GSSENC_REQUEST_CODE) {
            free(pkt);
            evbuffer_add(conn_out(&s->client), "N", 1);
            continue;
        }
        s->login->startup = malloc(sizeof *s->login->startup);
        if (!s->login->startup) {
            free(pkt);
            session_kill(s);
            return;
        }
        *s->login->startup = st;
        s->login->startup_packet = pkt;
        handle_startup(s);
    }
}

/* ---- AUTH -------------------------------------------------------------- */

static bool policy_reads_claim_of(const char *name, void *policy)
{
    return policy_reads_claim(policy, name);
}

void session_read_password(session *s)
{
    struct evbuffer *in = conn_in(&s->client);
    char type;
    uint32_t len;
    if (!pgw_peek_header(in, &type, &len))
        return;
    size_t limit = jwt_verifier_max_token_bytes(s->cfg->jwt) + 64;
    if (type != 'p') {
        session_fatal(s, SQLSTATE_PROTOCOL_VIOLATION, "expected password response, got message type %d", type);
        return;
    }
    if (len < 5 || len > limit) {
        session_log(s, LOG_WARNING, "login failed: password message of %u bytes (limit %zu)", len, limit);
        session_login_failed(s, MG_LOGIN_TOKEN, "password message over the token size limit");
        session_fatal(s, SQLSTATE_INVALID_PASSWORD, "password authentication failed for user \"%s\"", s->user);
        return;
    }
    if (evbuffer_get_length(in) < (size_t)len + 1)
        return;
    char *msg = pgw_take_message(in, len);
    if (!msg) {
        session_kill(s);
        return;
    }
    size_t tlen = strnlen(msg + 5, len - 4);
    char why[512];
    int rc = tlen < len - 4 ? jwt_verifier_check(s->cfg->jwt, msg + 5, tlen, s->user, time(NULL),
                                                 &s->ident, why, sizeof why)
                            : (snprintf(why, sizeof why, "password is not NUL-terminated"), -1);
    explicit_bzero(msg, len + 1);
    free(msg);
    if (rc != 0) {
        session_log(s, LOG_WARNING, "login failed: %s", why);
        session_login_failed(s, MG_LOGIN_TOKEN, why);
        session_fatal(s, SQLSTATE_INVALID_PASSWORD, "password authentication failed for user \"%s\"", s->user);
        return;
    }
    if (admin_console_database(s) && admin_console_allowed(s)) {
        admin_console_start(s);
        return;
    }
    if (!config_find_database(s->cfg, s->database)) {
        /* the admin console too, for whoever is not in admin.groups */
        session_log(s, LOG_INFO, "login refused: unknown database \"%s\"%s", s->database,
                    admin_console_database(s) ? " (the admin console, and the principal is in none of admin.groups)"
                                              : "");
        session_login_failed(s, MG_LOGIN_DATABASE, "unknown database");
        session_fatal(s, SQLSTATE_INVALID_CATALOG_NAME, "database \"%s\" does not exist", s->database);
        return;
    }
    s->metrics_db = metrics_name(&s->wk->srv->metric_databases, s->database);   /* a configured one: bounded */
    /* the claims the policy's templates read at login; a reload that starts
     * reading another one reaches the sessions that log in after it (a
     * template whose claim is missing denies, docs/policy.md) */
    jwt_identity_keep_claims(&s->ident, policy_reads_claim_of, (void *)session_policy(s));
    char gerr[300];
    decide_principal who = {
        .user = s->ident.user ? s->ident.user : s->user,
        .groups = (const char *const *)s->ident.groups,
        .n_groups = s->ident.ngroups,
        .claims = s->ident.claims,
    };
    if (guard_login(&s->guard, session_policy(s), &who, pgw_startup_get(s->login->startup, "search_path"),
                    &s->login->search_path_text, gerr, sizeof gerr) != 0) {
        session_log(s, LOG_INFO, "login refused: %s", gerr);
        session_login_failed(s, MG_LOGIN_PRINCIPAL, gerr);
        session_fatal(s, SQLSTATE_INSUFFICIENT_PRIVILEGE, "%s", gerr);
        return;
    }
    connect_warehouse(s);
}

/* ---- CONNECTING ---------------------------------------------------------- */

/* Facts read from another server version (the warehouse was upgraded while
 * martgate ran) say nothing of this one's catalog: decisions treat its
 * pg_catalog as unknown (wh_catalog_lacks) until a refresh reads it again. */
static void check_facts_version(session *s)
{
    catalog_cache *cat = worker_catalog(s->wk, s->database);
    const warehouse_facts *wh = cat ? catalog_cache_facts(cat, NULL) : NULL;
    const char *v = backend_parameter(s->be, "server_version");
    if (!wh || !v || wh_same_version(wh, v))
        return;
    session_log(s, LOG_WARNING, "the warehouse of database \"%s\" reports version %s, its metadata was read from "
                "%s: reading it again", s->database, v, wh->server_version ? wh->server_version : "(unknown)");
    catalog_cache_refresh(cat);
}

static void on_backend_ready(backend *b, bool ok, const char *error, void *arg)
{
    session *s = arg;
    metrics_block *m = &s->wk->metrics;
    if (ok) {
        m->warehouse_opens[s->metrics_db]++;
        metrics_observe_connect(m, clock_mono_s() - s->login->connect_started);
    } else {
        m->warehouse_failures[s->metrics_db]++;
    }
    if (!ok && s->on_standby && !backend_refusal(b)) {
        /* readiness is the primary's: a standby that does not answer costs
         * this session a second connect, not the instance its readiness */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", error ? error : "unknown error");
        msg[strcspn(msg, "\n")] = '\0';
        session_log(s, LOG_WARNING, "no standby of database \"%s\" answered (%s): connecting to the primary",
                    s->database, msg);
        backend_free(s->be);
        s->be = NULL;
        s->standby_failed = true;
        connect_warehouse(s);
        return;
    }
    server_warehouse_outcome(s->wk->srv, s->database, ok ? NULL : (error ? error : "unknown error"));
    if (!ok) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", error ? error : "unknown error");
        size_t l = strlen(msg);
        while (l && msg[l - 1] == '\n')
            msg[--l] = 0;
        const char *refusal = backend_refusal(b);
        session_log(s, LOG_ERROR, "cannot connect to the warehouse of database \"%s\": %s", s->database, msg);
        if (refusal) {
            session_login_failed(s, MG_LOGIN_WAREHOUSE, "the warehouse session does not parse SQL as martgate does");
            session_fatal(s, SQLSTATE_CONNECTION_FAILURE, "%s", refusal);
        } else {
            session_login_failed(s, MG_LOGIN_WAREHOUSE, "the warehouse could not be reached");
            session_fatal(s, SQLSTATE_CONNECTION_FAILURE, "could not connect to the warehouse of database \"%s\"",
                  s->database);
        }
        backend_free(s->be);
        s->be = NULL;
        session_flush(s);
        return;
    }
    if (conn_init(&s->server, s->wk->base, backend_fd(s->be), session_on_server_io, s,
                  session_event_mem(s, SESSION_EV_SERVER)) != 0) {
        session_fatal(s, SQLSTATE_CONNECTION_FAILURE, "out of memory");
        session_flush(s);
        return;
    }
    s->server_open = true;
    s->server.low_water = RELAY_HIGH_WATER / 2;
    s->server.bytes_read = &s->wk->metrics.bytes_from_warehouse;
    check_facts_version(s);
    SSL *ssl = backend_ssl(s->be);
    if (ssl)
        conn_tls_attach(&s->server, ssl);

    struct evbuffer *out = conn_out(&s->client);
    pgw_auth_request(out, 0); /* AuthenticationOk */
    for (const char *const *p = backend_reported_parameters; *p; p++) {
        const char *v = backend_parameter(s->be, *p);
        if (v)
            pgw_parameter_status(out, *p, v);
    }
    /* what is read of them later (proxy/intercept: SHOW and the session's
     * state); the rest is an idle session's memory */
    static const char *const kept[] = {"server_version", "session_authorization", NULL};
    backend_keep_parameters(s->be, kept);
    s->key_pid = worker_new_key_pid(s->wk);
    RAND_bytes((unsigned char *)&s->key_secret, sizeof s->key_secret);
    pgw_backend_key(out, s->key_pid, s->key_secret);
    pgw_ready_for_query(out, 'I');
    session_login_timer_end(s);
    session_set_state(s, SS_READY);
    server_login_done(s->wk->srv, s);
    s->wk->metrics.logins[MG_LOGIN_OK]++;
    char groups[512];
    size_t off = 0;
    groups[0] = 0;
    for (size_t i = 0; i < s->ident.ngroups && off < sizeof groups; i++)
        off += (size_t)snprintf(groups + off, sizeof groups - off, "%s%s", i ? "," : "", s->ident.groups[i]);
    session_log(s, LOG_INFO, "login ok database=%s groups=%s application=%s tls=%s warehouse=%s warehouse_pid=%d",
                s->database, groups[0] ? groups : "-", s->application_name ? s->application_name : "-",
                s->client.ssl ? SSL_get_version(s->client.ssl) : "off", s->on_standby ? "standby" : "primary",
                backend_pid(s->be));
    trail_session_start(s);
    relay_start(s);
    session_flush(s);
}

/* Appends "-c name=value" to the warehouse's options, escaping what the
 * server would split on. false when it does not fit. */
static bool add_option(char *options, size_t cap, size_t *off, const char *name, const char *value)
{
    int w = snprintf(options + *off, cap - *off, "%s-c %s=", *off ? " " : "", name);
    if (w < 0 || (size_t)w >= cap - *off)
        return false;
    *off += (size_t)w;
    for (const char *c = value; *c; c++) {
        if (*off + 3 >= cap)
            return false;
        if (option_space(*c) || *c == '\\')
            options[(*off)++] = '\\';
        options[(*off)++] = *c;
    }
    options[*off] = 0;
    return true;
}

static void on_facts_ready(void *arg)
{
    session *s = arg;
    s->waiting_facts = false;
    connect_warehouse(s);
    session_flush(s);
}

/* Refuses the login: the audit and the log get `why`, the client `fmt`. */
static void refuse_login(session *s, metrics_login reason, const char *sqlstate, const char *why, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void refuse_login(session *s, metrics_login reason, const char *sqlstate, const char *why, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    session_login_failed(s, reason, why);
    session_fatal(s, sqlstate, "%s", msg);
}

/* What the warehouse's own metadata says before a session may open: the
 * service role is not more privileged than martgate needs (unless the
 * config allows it), and each startup parameter is a setting the principal
 * may give that value (the rules of SET). false when the session was
 * refused or waits for the metadata (read once per snapshot, not per login). */
static bool warehouse_allows(session *s, const config_database *db)
{
    const policy_t *p = session_policy(s);
    if (!p)
        return true;   /* no policy: a plain authenticating proxy */
    catalog_cache *cat = worker_catalog(s->wk, s->database);
    const warehouse_facts *wh = cat ? catalog_cache_facts(cat, NULL) : NULL;
    if (!wh) {
        /* again after a reload replaced the cache it waited on (its
         * successor may still be reading); not after a failed read */
        if (cat && (!s->facts_waited || !catalog_cache_failed(cat))) {
            s->facts_waited = true;
            if (catalog_cache_wait(cat, on_facts_ready, s) == 0) {
                s->waiting_facts = true;
                if (s->state != SS_CONNECTING)
                    session_set_state(s, SS_CONNECTING);   /* waiting again after a reload */
                conn_read(&s->client, false);
                return false;
            }
        }
        session_log(s, LOG_ERROR, "login refused: the metadata of database \"%s\" (settings, functions, service "
                    "role) could not be read from the warehouse; the catalog log line says why", s->database);
        refuse_login(s, MG_LOGIN_METADATA, SQLSTATE_CONNECTION_FAILURE, "the warehouse's metadata could not be read",
                     "could not read the warehouse metadata of database \"%s\"", s->database);
        return false;
    }
    char why[300];
    if (wh_role_privileged(wh, why, sizeof why) && !db->allow_privileged_service_account) {
        session_log(s, LOG_ERROR, "login refused: the service role \"%s\" of database \"%s\" is %s; give it only "
                    "the grants docs/security.md lists, or set databases.%s.allow_privileged_service_account",
                    wh->role.name, s->database, why, s->database);
        refuse_login(s, MG_LOGIN_SERVICE_ROLE, SQLSTATE_INSUFFICIENT_PRIVILEGE, "the service role is privileged",
                     "martgate refuses to open warehouse sessions for database \"%s\": its service role is more "
                     "privileged than martgate allows (the operator's log says what to change)", s->database);
        return false;
    }
    const pg_startup *st = s->login->startup;
    for (size_t i = 0; i < st->nparams; i++) {
        const char *n = st->names[i];
        if (!strcmp(n, "user") || !strcmp(n, "database") || !strncmp(n, "_pq_.", 5))
            continue;
        char reason[400];
        if (!decide_setting_value(p, wh, n, st->values[i], reason, sizeof reason)) {
            session_log(s, LOG_INFO, "refused startup parameter %s: %s", n, reason);
            refuse_login(s, MG_LOGIN_STARTUP, SQLSTATE_INSUFFICIENT_PRIVILEGE, "startup parameter refused",
                         "startup parameter refused: %s", reason);
            return false;
        }
    }
    return true;
}

static void connect_warehouse(session *s)
{
    const config_database *db = config_find_database(s->cfg, s->database);
    if (!warehouse_allows(s, db))
        return;
    const char *keys[PG_MAX_STARTUP_PARAMS + 2], *vals[PG_MAX_STARTUP_PARAMS + 2];
    char options[4096];
    size_t n = 0, off = 0;
    options[0] = 0;
    for (size_t i = 0; i < s->login->startup->nparams; i++) {
        const char *name = s->login->startup->names[i], *v = s->login->startup->values[i];
        if (!strcmp(name, "user") || !strcmp(name, "database") || !strncmp(name, "_pq_.", 5))
            continue;
        if (!strcmp(name, "search_path") && s->login->search_path_text)
            continue;   /* added below as the policy allowed it */
        if (!strcmp(name, "client_encoding"))
            continue;   /* UTF8 by another spelling (checked): the adapter sends UTF8 */
        if (!strcmp(name, "application_name")) {
            keys[n] = name;
            vals[n++] = v;
            continue;
        }
        /* other parameters travel as -c name=value */
        if (!add_option(options, sizeof options, &off, name, v)) {
            session_fatal(s, SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "startup parameters are too long");
            return;
        }
    }
    if (s->login->search_path_text && !add_option(options, sizeof options, &off, "search_path", s->login->search_path_text)) {
        session_fatal(s, SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "search_path is too long");
        return;
    }
    if (off) {
        keys[n] = "options";
        vals[n++] = options;
    }
    /* client_encoding, standard_conforming_strings and backslash_quote are
     * the adapter's: it starts and verifies every session with them */
    keys[n] = NULL;
    vals[n] = NULL;
    char err[512];
    if (s->state != SS_CONNECTING)   /* it waited for the warehouse facts */
        session_set_state(s, SS_CONNECTING);
    conn_read(&s->client, false);
    s->login->connect_started = clock_mono_s();
    /* a principal that can never write goes to the standby when there is one */
    const policy_t *p = session_policy(s);
    s->on_standby = db->standby_conninfo && !s->standby_failed && p && !decide_may_write(p, &s->guard.login_who);
    s->be = backend_connect(s->wk->base, s->on_standby ? db->standby_conninfo : db->conninfo, db->password, keys, vals,
                            on_backend_ready, s, err, sizeof err);
    if (!s->be) {
        s->wk->metrics.warehouse_failures[s->metrics_db]++;
        server_warehouse_outcome(s->wk->srv, s->database, err);
        session_log(s, LOG_ERROR, "cannot connect to the warehouse of database \"%s\": %s", s->database, err);
        session_fatal(s, SQLSTATE_CONNECTION_FAILURE, "could not connect to the warehouse of database \"%s\"", s->database);
    }
}
