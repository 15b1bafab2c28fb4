/*
 * config: the daemon's configuration file (JSON), validated strictly and
 * turned into ready-to-use objects (TLS context, JWT verifier, warehouse
 * connection strings). A config is immutable and reference-counted: a reload
 * builds a new one and swaps it; sessions keep the one they logged in with.
 */
#ifndef MARTGATE_CONFIG_H
#define MARTGATE_CONFIG_H

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "policy/policy.h"
#include "policy/rewrite.h"
#include "proxy/audit.h"
#include "proxy/jwt_verify.h"
#include "proxy/proxy_protocol.h"

typedef struct {
    char *name;       /* the database name clients ask for */
    char *conninfo;   /* libpq connection string of the warehouse */
    char *standby_conninfo;   /* read-only sessions' warehouse (a standby), or NULL */
    bool allow_privileged_service_account;   /* superuser, BYPASSRLS, CREATEROLE, predefined roles: warn, not refuse */
    char *password;   /* service account password (file or env), or NULL */
} config_database;

/* One entry of "peers": another martgate instance behind the same load
 * balancer, to which cancels whose key names its peer id are forwarded
 * (proxy/cancel_forward, docs/scaling.md). */
typedef struct {
    int id;                          /* 1..255, its own "peer_id" */
    char *address;                   /* "IP:port" as written */
    struct sockaddr_storage addr;    /* ... parsed */
    int addrlen;
    bool proxy_protocol;             /* send a PROXY v2 header naming the canceller first */
} config_peer;

typedef struct config {
    atomic_int refcount;            /* sessions of every worker hold it */
    char *path;
    char *dir;                      /* relative paths resolve here */
    char **listen;                  /* "host:port" / "[v6]:port" */
    size_t nlisten;
    bool so_reuseport;              /* share the ports with another martgate (a restart that drops nothing) */
    int workers;                    /* event-loop threads (proxy/worker); a restart changes it */
    SSL_CTX *ssl_ctx;               /* NULL when TLS is not configured */
    bool allow_plaintext;
    jwt_verifier *jwt;
    policy_t *policy;               /* NULL: no policy configured (allow all) */
    char *policy_path;
    char *deny_hint;                /* hint on every denial ("ask #data-governance") */
    rewrite_hash_key *hash_key;     /* the hash mask's key pads, from hash_mask_key_file, or NULL */
    audit_settings *audit;          /* the "audit" section (auditing off when absent) */
    config_database *databases;
    size_t ndatabases;
    size_t max_message_bytes;       /* largest client message held in memory */
    int max_clients;
    int max_pending_logins;         /* connections not logged in yet, in all */
    int max_pending_per_address;    /* ... and from one client address */
    int login_timeout_s;
    int shutdown_timeout_s;
    int log_level;
    char *metrics_listen;           /* metrics.listen "host:port", or NULL: no operations listener */
    char *metrics_token;            /* the bearer token of /metrics (metrics.token_file), or NULL */
    int ready_warehouse_s;          /* metrics.ready_warehouse_seconds */
    char policy_sha256[17];
    char *admin_database;           /* admin.database (default "martgate") when admin.groups is set, or NULL */
    char **admin_groups;            /* admin.groups: who may use the admin console */
    size_t n_admin_groups;         /* the policy files' SHA-256, first 16 hex digits ("" without one) */
    proxy_cidr *proxy_trusted;      /* proxy_protocol.trusted: peers that must send a PROXY header */
    size_t n_proxy_trusted;
    int peer_id;                    /* this instance's id in cancel keys (1..255), 0: no peering */
    config_peer *peers;             /* the other instances, by id */
    size_t npeers;
} config;

#define CONFIG_MAX_FILE_BYTES (1u << 20)
/* The shortest hash mask key (bytes of hash_mask_key_file): 32, the size of
 * a SHA-256 output, as `openssl rand -hex 32` writes 64. */
#define CONFIG_MIN_HASH_KEY_BYTES 32

config *config_load(const char *path, char *err, size_t errlen);
config *config_ref(config *c);
void config_unref(config *c);
const config_database *config_find_database(const config *c, const char *name);
/* The entry of "peers" with this id, or NULL. */
const config_peer *config_find_peer(const config *c, int id);

#endif
