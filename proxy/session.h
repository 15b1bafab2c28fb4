/*
 * session: one client connection, from the first byte to the last. Its state
 * machine: PROXY_HEADER (only for a peer in proxy_protocol.trusted: the
 * PROXY protocol header that names the client) → STARTUP (SSLRequest → TLS, GSSENCRequest → 'N', CancelRequest,
 * StartupMessage) → AUTH (cleartext password = JWT) → CONNECTING (libpq opens
 * the warehouse session) → READY (proxy/relay.c moves messages both ways) →
 * CLOSING (flush the last error, then free).
 */
#ifndef MARTGATE_SESSION_H
#define MARTGATE_SESSION_H

#include <netinet/in.h>   /* INET6_ADDRSTRLEN */
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* only what the struct holds: the session's parts include their own headers */
#include "adapters/postgres.h"
#include "proxy/config.h"
#include "proxy/conn.h"
#include "proxy/guard.h"
#include "proxy/jwt_verify.h"
#include "proxy/pgwire.h"
#include "proxy/relay.h"

struct trail_state;
struct trail_req;

struct worker;

typedef enum {
    SS_PROXY_HEADER,                 /* a trusted load balancer's PROXY header comes first (proxy/proxy_protocol) */
    SS_STARTUP,
    SS_AUTH,
    SS_CONNECTING,
    SS_READY,
    SS_ADMIN,                        /* logged in to the admin console (proxy/admin_console) */
    SS_CLOSING,
    SS_DEAD,                         /* freed at the next turn of the loop */
} session_state;

/* What only the login needs: freed once logged in, so an idle session holds
 * none of it. */
typedef struct {
    char *startup_packet;            /* copy; the pairs of startup point into it */
    char *options_buf;               /* settings split out of "options" */
    pg_startup *startup;             /* the parsed packet */
    char *search_path_text;          /* the warehouse session's starting search_path */
    double connect_started;          /* monotonic: the warehouse connection began */
} session_login;

typedef struct session {
    /* members by size, largest first, so the struct has no padding holes
     * (one is allocated per client: its size is an idle session's memory) */
    uint64_t id;
    struct worker *wk;               /* the worker thread that runs it (proxy/worker) */
    config *cfg;                     /* the config this session started with */
    conn client;                     /* client.ssl is set once TLS starts */
    conn server;                     /* warehouse side, valid when server_open */
    backend *be;

    session_login *login;            /* until logged in (session.c, forget_login), then NULL */
    const char *user, *database, *application_name;   /* into login->startup_packet, then names */
    char *names;                     /* once logged in: user, database, application_name */
    char *application_name_set;      /* as the warehouse last reported it (owned) */
    jwt_identity ident;

    struct event *timer;             /* the login timeout (freed once logged in), then the
                                      * close timeout; NULL in between */
    relay_state relay;
    session_guard guard;             /* policy state: principal, search_path, prepared */
    struct trail_state *trail;       /* audit: statement templates and portals */
    struct trail_req *pending_req;   /* audit records of the statement being forwarded */
    unsigned long long statements;   /* statement records written */
    time_t connected_at;             /* accepted (for the admin console) */
    const char *last_decision;       /* "allow", "rewrite", "deny" of the last statement, or NULL */
    double audit_wait_since;         /* monotonic: began waiting for audit room */
    struct session *prev, *next;     /* the worker's list */
    struct session *reap_next;       /* DEAD: the worker's list of sessions to free (worker_reap) */

    int fd;
    int client_port;
    session_state state;
    unsigned application_name_serial;   /* changes with application_name (audit base cache) */
    uint32_t key_pid, key_secret;    /* what the client was given */
    unsigned metrics_db;             /* the database's metrics label (a configured one, or "(none)") */
    char client_addr[INET6_ADDRSTRLEN];   /* the client's: the peer's, or what its PROXY header says */
    bool draining;                   /* server stopping: close when idle */
    bool over_limit;                 /* beyond max_clients: refused after the startup packet */
    bool pending;                    /* accepted, not logged in yet (limits.max_pending_logins) */
    bool pending_counted;            /* ... counted under client_addr (limits.max_pending_per_address) */
    bool server_open;
    bool audit_started;              /* session_start written: session_end owed */
    bool waiting_audit;              /* paused until the audit queue has room */
    bool waiting_facts;              /* login paused until the warehouse's metadata is read */
    bool facts_waited;               /* ... which it waits for once */
    bool on_standby;                 /* the warehouse session is the database's standby (read-only principal) */
    bool standby_failed;             /* no standby answered: the primary instead */
    /* the read events of client and server (conn_init's rev_mem), in the
     * session's own allocation: read them through session_event_mem */
    _Alignas(max_align_t) unsigned char conn_events[];
} session;

enum { SESSION_EV_CLIENT, SESSION_EV_SERVER, SESSION_N_EVENTS };
/* The memory of the session's read event `which` (SESSION_EV_*). */
static inline void *session_event_mem(session *s, int which)
{
    return s->conn_events + (size_t)which * conn_event_size();
}

session *session_new(struct worker *wk, config *cfg, int fd, const struct sockaddr *addr, int addrlen);
/* The client address of addr as logs print it, into buf; returns the port. */
int session_address(const struct sockaddr *addr, char *buf, size_t len);
/* Sends err (may be NULL) to the client, then closes once it is written.
 * Never frees synchronously: callers may touch s afterwards. */
void session_close(session *s, const pg_error *err);
/* Drops the connection now; the memory is freed at the next loop turn. */
void session_kill(session *s);
/* Logged in: the login timeout is over (its timer freed). */
void session_login_timer_end(session *s);
/* Frees at once; only for the server's own shutdown paths. */
void session_free(session *s);
/* Writes what is buffered for the client and the warehouse, then frees the
 * buffers left empty: only at the end of an event's work. */
void session_flush(session *s);
/* Asks the warehouse to cancel what this session is running. */
void session_cancel(session *s);

/* Which configuration a session sees after a reload (docs/architecture.md):
 * the one it started with, s->cfg, for everything that shaped its connection
 * (TLS, JWT keys, databases, limits, timeouts); the server's current one for
 * governance: the policy and the hint of its denials, so that a reload that
 * narrows access holds from the next statement of every session. Session code
 * reads governance only through these two. */
const policy_t *session_policy(const session *s);
const char *session_deny_hint(const session *s);

/* "proxy_header", "startup", "auth", "connecting", "ready", "admin", "closing", "closed". */
const char *session_state_name(session_state st);
/* The state machine's one transition function (see session.c). */
void session_set_state(session *s, session_state next);

void session_log(const session *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
