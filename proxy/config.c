/*
 * config: loads and validates martgate.json. Every error names the file, the
 * line and column, and the field, and unknown keys are errors, so a typo can
 * never silently change what the proxy does.
 */
#include "proxy/config.h"

#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <event2/util.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json_doc.h"
#include "common/log.h"
#include "common/path.h"
#include "proxy/cancel_key.h"
#include "proxy/secret_file.h"
#include "proxy/tls.h"



static int parse_listen(const json_doc *doc, const json_t *root, config *c, char *err, size_t errlen)
{
    const char **list = NULL;
    size_t n = 0;
    int rc = json_doc_get_strings(doc, root, "", "listen", true, &list, &n, err, errlen);
    if (rc)
        return -1;
    json_t *at = json_object_get(root, "listen");
    if (n == 0) {
        free(list);
        return json_doc_error(doc, at, err, errlen, "listen", "needs at least one address");
    }
    c->listen = calloc(n, sizeof *c->listen);
    for (size_t i = 0; c->listen && i < n; i++) {
        const char *colon = strrchr(list[i], ':');
        if (!colon || colon == list[i] || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
            const char *bad = list[i];
            free(list);
            return json_doc_error(doc, at, err, errlen, "listen",
                                  "'%s' is not host:port (use [::1]:6432 for IPv6)", bad);
        }
        c->listen[i] = strdup(list[i]);
        c->nlisten++;
    }
    free(list);
    if (!c->listen)
        return -1;
    if (json_doc_get_bool(doc, root, "", "so_reuseport", false, &c->so_reuseport, err, errlen) < 0)
        return -1;
    /* worker threads: by default one per core, up to what a cancel key
     * can name (proxy/cancel_key.h) */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long long most = CANCEL_KEY_MAX_WORKER + 1;
    long long workers = cores < 1 ? 1 : cores > most ? most : cores;
    if (json_doc_get_int(doc, root, "", "workers", false, 1, most, &workers, err, errlen) < 0)
        return -1;
    c->workers = (int)workers;
    return 0;
}

static int parse_tls(const json_doc *doc, const json_t *root, config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"cert_file", "key_file", "min_version", "allow_plaintext", NULL};
    json_t *tls = json_object_get(root, "tls");
    if (!tls)
        return json_doc_error(doc, root, err, errlen, "tls",
                              "missing: give cert_file and key_file (or allow_plaintext: true for development)");
    if (json_doc_check_keys(doc, tls, "tls", keys, err, errlen))
        return -1;
    const char *cert = NULL, *key = NULL, *minv = "1.2";
    if (json_doc_get_bool(doc, tls, "tls", "allow_plaintext", false, &c->allow_plaintext, err, errlen) < 0 ||
        json_doc_get_string(doc, tls, "tls", "cert_file", false, &cert, err, errlen) < 0 ||
        json_doc_get_string(doc, tls, "tls", "key_file", false, &key, err, errlen) < 0 ||
        json_doc_get_string(doc, tls, "tls", "min_version", false, &minv, err, errlen) < 0)
        return -1;
    int version;
    if (strcmp(minv, "1.2") == 0)
        version = TLS1_2_VERSION;
    else if (strcmp(minv, "1.3") == 0)
        version = TLS1_3_VERSION;
    else
        return json_doc_error(doc, json_object_get(tls, "min_version"), err, errlen, "tls.min_version",
                              "'%s' is not supported: use \"1.2\" or \"1.3\"", minv);
    if (!cert != !key)
        return json_doc_error(doc, tls, err, errlen, "tls", "cert_file and key_file go together");
    if (!cert) {
        if (!c->allow_plaintext)
            return json_doc_error(doc, tls, err, errlen, "tls",
                                  "no cert_file/key_file and allow_plaintext is false: nobody could connect");
        return 0;
    }
    char *cp = path_resolve(c->dir, cert), *kp = path_resolve(c->dir, key);
    char why[768];
    c->ssl_ctx = cp && kp ? tls_server_ctx_new(cp, kp, version, why, sizeof why) : NULL;
    free(cp);
    free(kp);
    if (!c->ssl_ctx)
        return json_doc_error(doc, tls, err, errlen, "tls", "%s", why);
    return 0;
}

static int parse_databases(const json_doc *doc, const json_t *root, config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"conninfo", "standby_conninfo", "password_file", "password_env",
                                       "allow_privileged_service_account", NULL};
    json_t *dbs = json_object_get(root, "databases");
    if (!json_is_object(dbs) || json_object_size(dbs) == 0)
        return json_doc_error(doc, dbs ? dbs : root, err, errlen, "databases",
                              "must be an object mapping at least one database name to its warehouse");
    c->databases = calloc(json_object_size(dbs), sizeof *c->databases);
    if (!c->databases)
        return -1;
    const char *name;
    json_t *d;
    json_object_foreach(dbs, name, d) {
        char field[300];
        snprintf(field, sizeof field, "databases.%s", name);
        if (json_doc_check_keys(doc, d, field, keys, err, errlen))
            return -1;
        const char *conninfo = NULL, *standby = NULL, *pwfile = NULL, *pwenv = NULL;
        bool privileged = false;
        if (json_doc_get_string(doc, d, field, "conninfo", true, &conninfo, err, errlen) < 0 ||
            json_doc_get_string(doc, d, field, "standby_conninfo", false, &standby, err, errlen) < 0 ||
            json_doc_get_bool(doc, d, field, "allow_privileged_service_account", false, &privileged, err,
                              errlen) < 0 ||
            json_doc_get_string(doc, d, field, "password_file", false, &pwfile, err, errlen) < 0 ||
            json_doc_get_string(doc, d, field, "password_env", false, &pwenv, err, errlen) < 0)
            return -1;
        if (pwfile && pwenv)
            return json_doc_error(doc, d, err, errlen, field, "password_file and password_env exclude each other");
        config_database *db = &c->databases[c->ndatabases++];
        db->name = strdup(name);
        db->conninfo = strdup(conninfo);
        db->standby_conninfo = standby ? strdup(standby) : NULL;
        db->allow_privileged_service_account = privileged;
        if (pwfile) {
            char why[300], *p = path_resolve(c->dir, pwfile);
            db->password = p ? secret_file_read(p, why, sizeof why) : NULL;
            free(p);
            if (!db->password)
                return json_doc_error(doc, json_object_get(d, "password_file"), err, errlen,
                                      field, "%s", why);
        } else if (pwenv) {
            const char *v = getenv(pwenv);
            if (!v)
                return json_doc_error(doc, json_object_get(d, "password_env"), err, errlen, field,
                                      "environment variable %s is not set", pwenv);
            db->password = strdup(v);
        }
    }
    return 0;
}

static int parse_limits(const json_doc *doc, const json_t *root, config *c, char *err, size_t errlen)
{
    /* each limit: its key, the smallest and largest value, the default */
    static const struct {
        const char *key;
        long long min, max, dflt;
    } L[] = {
        {"max_message_bytes", 1024, 1 << 30, 1 << 20},
        {"max_clients", 1, 1000000, 1000},
        {"max_pending_logins", 1, 1000000, 200},
        {"max_pending_per_address", 1, 1000000, 64},
        {"login_timeout_seconds", 1, 3600, 10},
        {"shutdown_timeout_seconds", 0, 86400, 30},
    };
    enum { N = sizeof L / sizeof L[0] };
    const char *keys[N + 1];
    long long v[N];
    for (size_t i = 0; i < N; i++) {
        keys[i] = L[i].key;
        v[i] = L[i].dflt;
    }
    keys[N] = NULL;
    json_t *l = json_object_get(root, "limits");
    if (l && json_doc_check_keys(doc, l, "limits", keys, err, errlen))
        return -1;
    for (size_t i = 0; l && i < N; i++) {
        long long x;
        int rc = json_doc_get_int(doc, l, "limits", L[i].key, false, L[i].min, L[i].max, &x, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 0)
            v[i] = x;
    }
    c->max_message_bytes = (size_t)v[0];
    c->max_clients = (int)v[1];
    c->max_pending_logins = (int)v[2];
    c->max_pending_per_address = (int)v[3];
    c->login_timeout_s = (int)v[4];
    c->shutdown_timeout_s = (int)v[5];
    return 0;
}

/* hash_mask_key_file: the key of the hash mask (policy/rewrite.h), read as
 * bytes (one trailing newline stripped), at least CONFIG_MIN_HASH_KEY_BYTES
 * of them; a key longer than one HMAC block is hashed first, as HMAC says.
 * Only the pads are kept. */
static int parse_hash_key(const json_doc *doc, const json_t *root, config *c, char *err, size_t errlen)
{
    const char *file = NULL;
    if (json_doc_get_string(doc, root, "", "hash_mask_key_file", false, &file, err, errlen) < 0)
        return -1;
    if (!file)
        return 0;
    json_t *at = json_object_get(root, "hash_mask_key_file");
    char why[600], *path = path_resolve(c->dir, file);
    size_t n = 0;
    char *key = path ? secret_file_read_len(path, &n, why, sizeof why) : NULL;
    if (!path)
        snprintf(why, sizeof why, "out of memory");
    int rc = 0;
    if (!key) {
        rc = json_doc_error(doc, at, err, errlen, "hash_mask_key_file", "%s", why);
    } else if (n == 0) {
        rc = json_doc_error(doc, at, err, errlen, "hash_mask_key_file",
                            "%s is empty: write a key of at least %d bytes into it (openssl rand -hex 32 > %s)", path,
                            CONFIG_MIN_HASH_KEY_BYTES, path);
    } else if (memchr(key, 0, n)) {
        rc = json_doc_error(doc, at, err, errlen, "hash_mask_key_file",
                            "%s holds a NUL byte: the key must be text (openssl rand -hex 32 > %s)", path, path);
    } else if (n < CONFIG_MIN_HASH_KEY_BYTES) {
        rc = json_doc_error(doc, at, err, errlen, "hash_mask_key_file",
                            "%s holds %zu bytes: a hash mask key needs at least %d (openssl rand -hex 32 > %s)", path,
                            n, CONFIG_MIN_HASH_KEY_BYTES, path);
    } else {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int dlen = 0;
        const unsigned char *k0 = (const unsigned char *)key;
        size_t k0len = n;
        if (n > REWRITE_HASH_BLOCK) {
            if (EVP_Digest(key, n, digest, &dlen, EVP_sha256(), NULL) != 1) {
                rc = json_doc_error(doc, at, err, errlen, "hash_mask_key_file", "cannot hash the key (OpenSSL)");
            }
            k0 = digest;
            k0len = dlen;
        }
        c->hash_key = rc == 0 ? malloc(sizeof *c->hash_key) : NULL;
        if (rc == 0 && (!c->hash_key || rewrite_hash_key_init(c->hash_key, k0, k0len) != 0))
            rc = json_doc_error(doc, at, err, errlen, "hash_mask_key_file", "out of memory");
        explicit_bzero(digest, sizeof digest);
        struct stat sb;
        if (rc == 0 && stat(path, &sb) == 0 && (sb.st_mode & 077))
            log_msg(LOG_WARNING, "hash_mask_key_file %s can be read by other users (mode %03o): whoever reads it "
                                 "can compute the hash mask of any value; chmod 600 it",
                    path, (unsigned)(sb.st_mode & 0777));
    }
    if (key) {
        explicit_bzero(key, n);
        free(key);
    }
    free(path);
    return rc ? -1 : 0;
}

/* "metrics": the operations listener (proxy/ops_http): /metrics, /healthz, /readyz. */
static int parse_metrics(const json_doc *doc, const json_t *root, config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"listen", "token_file", "ready_warehouse_seconds", NULL};
    c->ready_warehouse_s = 30;
    json_t *m = json_object_get(root, "metrics");
    if (!m)
        return 0;
    if (json_doc_check_keys(doc, m, "metrics", keys, err, errlen))
        return -1;
    const char *listen = NULL, *token = NULL;
    long long ready = 30;
    if (json_doc_get_string(doc, m, "metrics", "listen", true, &listen, err, errlen) < 0 ||
        json_doc_get_string(doc, m, "metrics", "token_file", false, &token, err, errlen) < 0 ||
        json_doc_get_int(doc, m, "metrics", "ready_warehouse_seconds", false, 2, 86400, &ready, err, errlen) < 0)
        return -1;
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
        return json_doc_error(doc, json_object_get(m, "listen"), err, errlen, "metrics.listen",
                              "'%s' is not host:port (127.0.0.1:9187; [::1]:9187 for IPv6)", listen);
    c->metrics_listen = strdup(listen);
    c->ready_warehouse_s = (int)ready;
    if (token) {
        char why[300] = "out of memory", *p = path_resolve(c->dir, token);
        c->metrics_token = p ? secret_file_read(p, why, sizeof why) : NULL;
        free(p);
        if (!c->metrics_token)
            return json_doc_error(doc, json_object_get(m, "token_file"), err, errlen, "metrics.token_file", "%s",
                                  why);
        if (strlen(c->metrics_token) < 16)
            return json_doc_error(doc, json_object_get(m, "token_file"), err, errlen, "metrics.token_file",
                                  "the token is shorter than 16 characters (openssl rand -hex 32 > FILE)");
    }
    return c->metrics_listen ? 0 : -1;
}

/* "admin": the admin console (proxy/admin_console), a pseudo-database that
 * members of admin.groups reach with psql. */
static int parse_admin(const json_doc *doc, const json_t *root, config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"database", "groups", NULL};
    json_t *a = json_object_get(root, "admin");
    if (!a)
        return 0;
    if (json_doc_check_keys(doc, a, "admin", keys, err, errlen))
        return -1;
    const char *db = "martgate";
    const char **groups = NULL;
    size_t n = 0;
    if (json_doc_get_string(doc, a, "admin", "database", false, &db, err, errlen) < 0 ||
        json_doc_get_strings(doc, a, "admin", "groups", true, &groups, &n, err, errlen) != 0)
        return -1;
    if (n == 0) {
        free(groups);
        return json_doc_error(doc, json_object_get(a, "groups"), err, errlen, "admin.groups",
                              "needs at least one group (the console is off without the admin key)");
    }
    if (!*db || config_find_database(c, db)) {
        free(groups);
        return json_doc_error(doc, a, err, errlen, "admin.database",
                              "'%s' must be a name no entry of databases has", db);
    }
    c->admin_database = strdup(db);
    c->admin_groups = calloc(n, sizeof *c->admin_groups);
    for (size_t i = 0; c->admin_groups && i < n; i++)
        if ((c->admin_groups[i] = strdup(groups[i])))
            c->n_admin_groups++;
    free(groups);
    return c->admin_database && c->n_admin_groups == n ? 0 : -1;
}

/* "proxy_protocol": the load balancers (CIDR ranges) whose connections
 * start with a PROXY protocol header naming the client (docs/scaling.md). */
static int parse_proxy_protocol(const json_doc *doc, const json_t *root, config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"trusted", NULL};
    json_t *pp = json_object_get(root, "proxy_protocol");
    if (!pp)
        return 0;
    if (json_doc_check_keys(doc, pp, "proxy_protocol", keys, err, errlen))
        return -1;
    const char **list = NULL;
    size_t n = 0;
    if (json_doc_get_strings(doc, pp, "proxy_protocol", "trusted", true, &list, &n, err, errlen) != 0)
        return -1;
    json_t *arr = json_object_get(pp, "trusted");
    if (n == 0) {
        free(list);
        return json_doc_error(doc, arr, err, errlen, "proxy_protocol.trusted",
                              "needs at least one address range (\"127.0.0.1/32\"); without the PROXY protocol, "
                              "leave proxy_protocol out");
    }
    c->proxy_trusted = calloc(n, sizeof *c->proxy_trusted);
    if (!c->proxy_trusted) {
        free(list);
        snprintf(err, errlen, "%s: out of memory", c->path);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char why[200];
        if (proxy_cidr_parse(list[i], &c->proxy_trusted[i], why, sizeof why) != 0) {
            free(list);
            char field[64];
            snprintf(field, sizeof field, "proxy_protocol.trusted[%zu]", i);
            return json_doc_error(doc, json_array_get(arr, i), err, errlen, field,
                                  "%s (an IPv4 or IPv6 range: 10.0.0.0/8, ::1/128)", why);
        }
    }
    c->n_proxy_trusted = n;
    free(list);
    return 0;
}

/* "peer_id" and "peers": cancels across instances behind one load balancer
 * (docs/scaling.md). peer_id goes into every cancel key this instance hands
 * out (proxy/cancel_key.h); each peer is another instance, by its own
 * peer_id, to which a cancel whose key names that id is forwarded. */
static int parse_peers(const json_doc *doc, const json_t *root, config *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", "address", "proxy_protocol", NULL};
    long long own = 0;
    if (json_doc_get_int(doc, root, "", "peer_id", false, 1, CANCEL_KEY_MAX_PEER, &own, err, errlen) < 0)
        return -1;
    c->peer_id = (int)own;
    json_t *arr = json_object_get(root, "peers");
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return json_doc_error(doc, arr, err, errlen, "peers",
                              "must be an array of {\"id\": N, \"address\": \"IP:port\"} objects");
    if (json_array_size(arr) > 0 && c->peer_id == 0)
        return json_doc_error(doc, arr, err, errlen, "peers",
                              "needs peer_id (this instance's own id, 1 to %d): the peers find this instance's "
                              "sessions by it", CANCEL_KEY_MAX_PEER);
    c->peers = calloc(json_array_size(arr) ? json_array_size(arr) : 1, sizeof *c->peers);
    if (!c->peers) {
        snprintf(err, errlen, "%s: out of memory", c->path);
        return -1;
    }
    size_t i;
    json_t *p;
    json_array_foreach(arr, i, p) {
        char field[40];
        snprintf(field, sizeof field, "peers[%zu]", i);
        if (!json_is_object(p))
            return json_doc_error(doc, p, err, errlen, field,
                                  "must be an object {\"id\": N, \"address\": \"IP:port\"}");
        if (json_doc_check_keys(doc, p, field, keys, err, errlen))
            return -1;
        long long id;
        const char *address = NULL;
        bool pp = false;
        if (json_doc_get_int(doc, p, field, "id", true, 1, CANCEL_KEY_MAX_PEER, &id, err, errlen) < 0 ||
            json_doc_get_string(doc, p, field, "address", true, &address, err, errlen) < 0 ||
            json_doc_get_bool(doc, p, field, "proxy_protocol", false, &pp, err, errlen) < 0)
            return -1;
        char sub[64];
        snprintf(sub, sizeof sub, "%s.id", field);
        if (id == c->peer_id)
            return json_doc_error(doc, json_object_get(p, "id"), err, errlen, sub,
                                  "%lld is this instance's own peer_id", id);
        if (config_find_peer(c, (int)id))
            return json_doc_error(doc, json_object_get(p, "id"), err, errlen, sub,
                                  "%lld is listed twice", id);
        /* an IP address and a port, as listen takes them: no host name
         * (a cancel is no time to wait for DNS) */
        snprintf(sub, sizeof sub, "%s.address", field);
        config_peer *peer = &c->peers[c->npeers];
        const char *colon = strrchr(address, ':');
        int sslen = (int)sizeof peer->addr;
        bool shaped = colon && colon != address && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1);
        if (!shaped || evutil_parse_sockaddr_port(address, (struct sockaddr *)&peer->addr, &sslen) != 0 ||
            atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
            return json_doc_error(doc, json_object_get(p, "address"), err, errlen, sub,
                                  "'%s' is not an IP address and port (10.0.2.12:6432; [::1]:6432 for IPv6)",
                                  address);
        peer->addrlen = sslen;
        peer->id = (int)id;
        peer->proxy_protocol = pp;
        peer->address = strdup(address);
        if (!peer->address) {
            snprintf(err, errlen, "%s: out of memory", c->path);
            return -1;
        }
        c->npeers++;
    }
    return 0;
}

static int only_json(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 5 && strcmp(e->d_name + n - 5, ".json") == 0;
}

static void hash_file(EVP_MD_CTX *md, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    fclose(f);
}

/* The SHA-256 of the policy as read (a file, or a directory's *.json in
 * name order, each name with its content), first 16 hex digits: which
 * policy runs, for /metrics and the logs. */
static void policy_hash(const char *path, char out[17])
{
    out[0] = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        struct dirent **list = NULL;
        int n = scandir(path, &list, only_json, alphasort);
        for (int i = 0; i < n; i++) {
            char *full = path_resolve(path, list[i]->d_name);
            EVP_DigestUpdate(md, list[i]->d_name, strlen(list[i]->d_name) + 1);
            if (full)
                hash_file(md, full);
            free(full);
            free(list[i]);
        }
        free(list);
    } else {
        hash_file(md, path);
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (EVP_DigestFinal_ex(md, d, &dl) == 1 && dl >= 8)
        for (int i = 0; i < 8; i++)
            snprintf(out + 2 * i, 3, "%02x", d[i]);
    EVP_MD_CTX_free(md);
}

static bool lookup_database(void *arg, const char *name, const char **conninfo, const char **password)
{
    const config_database *db = config_find_database(arg, name);
    if (!db)
        return false;
    *conninfo = db->conninfo;
    *password = db->password;
    return true;
}

config *config_load(const char *path, char *err, size_t errlen)
{
    static const char *const keys[] = {"listen", "so_reuseport", "workers", "tls", "auth", "databases", "limits", "policy",
                                       "deny_hint", "audit", "log_level", "hash_mask_key_file", "metrics", "admin",
                                       "proxy_protocol", "peer_id", "peers", NULL};
    json_doc *doc = json_doc_load(path, CONFIG_MAX_FILE_BYTES, err, errlen);
    if (!doc)
        return NULL;
    config *c = calloc(1, sizeof *c);
    char *pathcopy = strdup(path);
    if (!c || !pathcopy) {
        free(c);
        free(pathcopy);
        json_doc_free(doc);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    c->refcount = 1;
    c->path = strdup(path);
    c->dir = strdup(dirname(pathcopy));
    free(pathcopy);
    c->log_level = LOG_INFO;
    json_t *root = json_doc_root(doc);
    const char *level = NULL;
    int ok = json_doc_check_keys(doc, root, "", keys, err, errlen) == 0 &&
             parse_listen(doc, root, c, err, errlen) == 0 &&
             parse_tls(doc, root, c, err, errlen) == 0 &&
             parse_databases(doc, root, c, err, errlen) == 0 &&
             parse_limits(doc, root, c, err, errlen) == 0 &&
             parse_hash_key(doc, root, c, err, errlen) == 0 &&
             parse_metrics(doc, root, c, err, errlen) == 0 &&
             parse_admin(doc, root, c, err, errlen) == 0 &&
             parse_proxy_protocol(doc, root, c, err, errlen) == 0 &&
             parse_peers(doc, root, c, err, errlen) == 0 &&
             json_doc_get_string(doc, root, "", "log_level", false, &level, err, errlen) >= 0;
    if (ok && level) {
        c->log_level = log_level_from_name(level);
        if (c->log_level < 0) {
            json_doc_error(doc, json_object_get(root, "log_level"), err, errlen, "log_level",
                           "'%s' is not one of debug, info, warning, error", level);
            ok = 0;
        }
    }
    if (ok) {
        json_t *auth = json_object_get(root, "auth");
        if (!auth) {
            json_doc_error(doc, root, err, errlen, "auth", "missing: martgate needs JWT keys to log anyone in");
            ok = 0;
        } else {
            c->jwt = jwt_verifier_load(doc, auth, c->dir, err, errlen);
            ok = c->jwt != NULL;
        }
    }
    const char *policy = NULL, *hint = NULL;
    if (ok && (json_doc_get_string(doc, root, "", "policy", false, &policy, err, errlen) < 0 ||
               json_doc_get_string(doc, root, "", "deny_hint", false, &hint, err, errlen) < 0))
        ok = 0;
    if (ok && hint)
        c->deny_hint = strdup(hint);
    if (ok) {
        c->audit = audit_settings_parse(doc, json_object_get(root, "audit"), c->dir, lookup_database, c,
                                        err, errlen);
        ok = c->audit != NULL;
    }
    if (ok && policy) {
        /* every error of the policy goes to the log; err gets the first */
        c->policy_path = path_resolve(c->dir, policy);
        policy_messages msgs = {0};
        char perr[1024];
        if (!c->policy_path || policy_load(c->policy_path, &c->policy, &msgs, perr, sizeof perr) != 0) {
            for (size_t i = 0; i < msgs.n_errors; i++)
                log_msg(LOG_ERROR, "policy: %s", msgs.errors[i]);
            json_doc_error(doc, json_object_get(root, "policy"), err, errlen, "policy", "%s",
                           c->policy_path ? perr : "out of memory");
            ok = 0;
        }
        for (size_t i = 0; i < msgs.n_warnings; i++)
            log_msg(LOG_WARNING, "policy: %s", msgs.warnings[i]);
        policy_messages_free(&msgs);
        if (ok)
            policy_hash(c->policy_path, c->policy_sha256);
    }
    char hash_use[400];
    if (ok && c->policy && !c->hash_key && policy_hash_mask_use(c->policy, hash_use, sizeof hash_use)) {
        /* fail at start or reload, not at the first read of the column */
        json_doc_error(doc, json_object_get(root, "policy"), err, errlen, "hash_mask_key_file",
                       "the policy masks a column with \"hash\" (%s), which needs a key: set hash_mask_key_file to "
                       "a file of at least %d bytes that only martgate can read (openssl rand -hex 32 > FILE)",
                       hash_use, CONFIG_MIN_HASH_KEY_BYTES);
        ok = 0;
    }
    json_doc_free(doc);
    if (!ok) {
        config_unref(c);
        return NULL;
    }
    return c;
}

config *config_ref(config *c)
{
    atomic_fetch_add_explicit(&c->refcount, 1, memory_order_relaxed);
    return c;
}

void config_unref(config *c)
{
    /* the last reference frees: acq_rel so that every thread's use of it
     * happens before the free */
    if (!c || atomic_fetch_sub_explicit(&c->refcount, 1, memory_order_acq_rel) > 1)
        return;
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    free(c->listen);
    for (size_t i = 0; i < c->ndatabases; i++) {
        free(c->databases[i].name);
        free(c->databases[i].conninfo);
        free(c->databases[i].standby_conninfo);
        if (c->databases[i].password) {
            explicit_bzero(c->databases[i].password, strlen(c->databases[i].password));
            free(c->databases[i].password);
        }
    }
    free(c->databases);
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    if (c->jwt)
        jwt_verifier_free(c->jwt);
    policy_unref(c->policy);
    free(c->policy_path);
    free(c->deny_hint);
    if (c->hash_key) {
        rewrite_hash_key_wipe(c->hash_key);
        free(c->hash_key);
    }
    audit_settings_free(c->audit);
    free(c->metrics_listen);
    free(c->admin_database);
    for (size_t i = 0; i < c->n_admin_groups; i++)
        free(c->admin_groups[i]);
    free(c->admin_groups);
    free(c->proxy_trusted);
    for (size_t i = 0; i < c->npeers; i++)
        free(c->peers[i].address);
    free(c->peers);
    if (c->metrics_token) {
        explicit_bzero(c->metrics_token, strlen(c->metrics_token));
        free(c->metrics_token);
    }
    free(c->path);
    free(c->dir);
    free(c);
}

const config_database *config_find_database(const config *c, const char *name)
{
    for (size_t i = 0; i < c->ndatabases; i++)
        if (strcmp(c->databases[i].name, name) == 0)
            return &c->databases[i];
    return NULL;
}

const config_peer *config_find_peer(const config *c, int id)
{
    for (size_t i = 0; i < c->npeers; i++)
        if (c->peers[i].id == id)
            return &c->peers[i];
    return NULL;
}
