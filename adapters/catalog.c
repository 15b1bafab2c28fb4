/*
 * adapters/catalog: a refresh runs on a worker thread with blocking libpq
 * (connect, one query over pg_attribute), builds a new snapshot, and hands it
 * to the event loop through an eventfd; the loop swaps it in and wakes the
 * sessions that waited for it.
 */
#include "adapters/catalog.h"
#include "common/text_hash.h"
#include "common/warehouse_facts.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "adapters/postgres.h"

typedef struct {
    char *key;              /* "schema\0table\0" */
    size_t keylen;
    const char **cols;
    size_t ncols;
} cat_entry;

typedef struct {
    cat_entry *slots;       /* open addressing */
    size_t nslots, n;
    char **strings;         /* every allocation, freed together */
    size_t nstrings, capstrings;
    double taken_at;
    warehouse_facts *facts; /* settings, administrative functions, service role */
} snapshot;

typedef struct waiter {
    void (*cb)(void *);
    void *arg;
    struct waiter *next;
} waiter;

struct catalog_cache {
    char *name, *conninfo, *password;
    struct event_base *base;
    int efd;
    struct event *ev;
    snapshot *current;
    unsigned long generation;   /* of current: a new snapshot, a new number */
    bool failed;
    /* worker hand-off, under mu */
    pthread_mutex_t mu;
    pthread_t thread;
    bool running, joined;
    snapshot *ready;
    char error[256];
    double started_at;
    waiter *waiters;
};

double catalog_now(void) { return clock_mono_s(); }

/* Numbers snapshots across every cache of the process (a reload makes new
 * caches), so that a number names one snapshot's facts. */
static _Atomic unsigned long snapshots_made;

static void snapshot_free(snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nstrings; i++)
        free(s->strings[i]);
    free(s->strings);
    for (size_t i = 0; i < s->nslots; i++)
        free(s->slots[i].cols);
    free(s->slots);
    wh_free(s->facts);
    free(s);
}

static char *snap_keep(snapshot *s, char *p)
{
    if (!p)
        return NULL;
    if (s->nstrings == s->capstrings) {
        size_t cap = s->capstrings ? s->capstrings * 2 : 256;
        char **n = realloc(s->strings, cap * sizeof *n);
        if (!n) {
            free(p);
            return NULL;
        }
        s->strings = n;
        s->capstrings = cap;
    }
    s->strings[s->nstrings++] = p;
    return p;
}

static cat_entry *snap_find(const snapshot *s, const char *key, size_t keylen)
{
    if (!s || !s->nslots)
        return NULL;
    size_t mask = s->nslots - 1, i = (size_t)text_hash(key, keylen) & mask;
    while (s->slots[i].key) {
        if (s->slots[i].keylen == keylen && memcmp(s->slots[i].key, key, keylen) == 0)
            return &s->slots[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

/* Builds a snapshot from rows (schema, table, column) ordered by table. */
static snapshot *build_snapshot(PGresult *res, char *err, size_t errlen)
{
    int rows = PQntuples(res);
    snapshot *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    size_t tables = 0;
    for (int r = 0; r < rows; r++)
        if (r == 0 || strcmp(PQgetvalue(res, r, 0), PQgetvalue(res, r - 1, 0)) ||
            strcmp(PQgetvalue(res, r, 1), PQgetvalue(res, r - 1, 1)))
            tables++;
    s->nslots = 16;
    while (s->nslots < tables * 2)
        s->nslots <<= 1;
    s->slots = calloc(s->nslots, sizeof *s->slots);
    if (!s->slots)
        goto oom;
    for (int r = 0; r < rows;) {
        const char *schema = PQgetvalue(res, r, 0), *table = PQgetvalue(res, r, 1);
        int end = r;
        while (end < rows && !strcmp(PQgetvalue(res, end, 0), schema) && !strcmp(PQgetvalue(res, end, 1), table))
            end++;
        size_t ls = strlen(schema), lt = strlen(table), keylen = ls + lt + 2;
        char *key = snap_keep(s, malloc(keylen));
        const char **cols = calloc((size_t)(end - r) + 1, sizeof *cols);
        if (!key || !cols) {
            free(cols);
            goto oom;
        }
        memcpy(key, schema, ls + 1);
        memcpy(key + ls + 1, table, lt + 1);
        for (int i = r; i < end; i++) {
            char *c = snap_keep(s, strdup(PQgetvalue(res, i, 2)));
            if (!c) {
                free(cols);
                goto oom;
            }
            cols[i - r] = c;
        }
        size_t mask = s->nslots - 1, i = (size_t)text_hash(key, keylen) & mask;
        while (s->slots[i].key)
            i = (i + 1) & mask;
        s->slots[i] = (cat_entry){key, keylen, cols, (size_t)(end - r)};
        s->n++;
        r = end;
    }
    return s;
oom:
    snprintf(err, errlen, "out of memory building the catalog snapshot");
    snapshot_free(s);
    return NULL;
}

static const char CATALOG_SQL[] =
    "SELECT n.nspname, c.relname, a.attname"
    "  FROM pg_catalog.pg_attribute a"
    "  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE a.attnum > 0 AND NOT a.attisdropped"
    "   AND c.relkind IN ('r', 'v', 'm', 'f', 'p')"
    "   AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_toast%'"
    "   AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
    " ORDER BY n.nspname, c.relname, a.attnum";

/* Every setting the server knows, with what it is (context, category).
 * From PostgreSQL 15 a superuser setting the service role was granted SET
 * on (GRANT SET ON PARAMETER lc_messages TO ...) is one it may set as it
 * may a user setting, and so reads as one; a superuser service role's grants
 * say nothing (it has them all). */
static const char SETTINGS_SQL[] = "SELECT name, context, category FROM pg_catalog.pg_settings";
static const char SETTINGS_SQL_15[] =
    "SELECT name,"
    "       CASE WHEN context = 'superuser' AND NOT (SELECT rolsuper FROM pg_catalog.pg_roles"
    "                                                 WHERE rolname = CURRENT_USER)"
    "                 AND pg_catalog.has_parameter_privilege(name, 'SET') THEN 'user' ELSE context END,"
    "       category"
    "  FROM pg_catalog.pg_settings";

/* Built-in functions PUBLIC may not execute, now or as initdb (or CREATE
 * EXTENSION) left them: what the server itself considers administrative.
 * Built-in is an OID below FirstNormalObjectId (16384) or initial privileges
 * recorded by an extension; a user's own function with EXECUTE revoked from
 * PUBLIC is a dataset's business, decided by its schema's rules. */
static const char ADMIN_FUNCTIONS_SQL[] =
    "SELECT DISTINCT n.nspname, p.proname"
    "  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
    "  LEFT JOIN pg_catalog.pg_init_privs ip ON ip.objoid = p.oid"
    "       AND ip.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND ip.objsubid = 0"
    " WHERE (p.oid < 16384 AND NOT pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE'))"
    "    OR (ip.initprivs IS NOT NULL AND NOT EXISTS ("
    "        SELECT 1 FROM pg_catalog.aclexplode(ip.initprivs) a"
    "         WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))";

/* The service role: its attributes and the predefined roles (OIDs below
 * FirstNormalObjectId, but pg_database_owner) it is a member of. */
static const char SERVICE_ROLE_SQL[] =
    "SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole,"
    "       CASE WHEN r.rolsuper THEN '' ELSE COALESCE(("
    "         SELECT pg_catalog.string_agg(p.rolname::pg_catalog.text, ', ' ORDER BY p.rolname)"
    "           FROM pg_catalog.pg_roles p"
    "          WHERE p.oid < 16384 AND p.rolname <> 'pg_database_owner' AND p.oid <> r.oid"
    "            AND pg_catalog.pg_has_role(r.oid, p.oid, 'MEMBER')), '') END"
    "  FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER";

/* Every relation of pg_catalog, of any kind (tables, views, indexes,
 * sequences): the server looks there before the search_path, so an
 * unqualified pg_* name not among them is not the server's own. */
static const char CATALOG_RELATIONS_SQL[] =
    "SELECT c.relname FROM pg_catalog.pg_class c"
    " WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace";

static PGresult *query(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    snprintf(err, errlen, "reading %s: %s", what, PQresultErrorMessage(res));
    PQclear(res);
    return NULL;
}

static warehouse_facts *read_facts(PGconn *conn, char *err, size_t errlen)
{
    warehouse_facts *f = wh_new();
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    PGresult *res = query(conn, PQserverVersion(conn) >= 150000 ? SETTINGS_SQL_15 : SETTINGS_SQL, "pg_settings", err,
                          errlen);
    for (int r = 0; res && r < PQntuples(res); r++)
        wh_add_setting(f, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
    bool ok = res != NULL;
    PQclear(res);
    res = ok ? query(conn, ADMIN_FUNCTIONS_SQL, "the functions PUBLIC may not execute", err, errlen) : NULL;
    for (int r = 0; res && r < PQntuples(res); r++)
        wh_add_admin_function(f, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
    ok = res != NULL;
    PQclear(res);
    res = ok ? query(conn, SERVICE_ROLE_SQL, "the service role", err, errlen) : NULL;
    if (res && PQntuples(res) == 1)
        wh_set_role(f, PQgetvalue(res, 0, 0), *PQgetvalue(res, 0, 1) == 't', *PQgetvalue(res, 0, 2) == 't',
                    *PQgetvalue(res, 0, 3) == 't', PQgetvalue(res, 0, 4));
    ok = res != NULL;
    PQclear(res);
    wh_set_server_version(f, PQparameterStatus(conn, "server_version"));
    res = ok ? query(conn, CATALOG_RELATIONS_SQL, "the relations of pg_catalog", err, errlen) : NULL;
    if (res)
        wh_set_catalog_known(f);
    for (int r = 0; res && r < PQntuples(res); r++)
        wh_add_catalog_relation(f, PQgetvalue(res, r, 0));
    ok = res != NULL;
    PQclear(res);
    if (!ok || wh_finish(f) != 0) {
        if (ok)
            snprintf(err, errlen, "out of memory reading the warehouse's settings and functions");
        wh_free(f);
        return NULL;
    }
    return f;
}

/* A blocking connection for reading metadata, parsed as martgate parses
 * like every warehouse session; NULL with err filled. */
static PGconn *open_conn(const char *conninfo, const char *password, char *err, size_t errlen)
{
    char options[4096];
    if (backend_parse_options(conninfo, NULL, options, sizeof options) != 0) {
        snprintf(err, errlen, "the conninfo's options are too long");
        return NULL;
    }
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", "client_encoding",
                          "password", NULL};
    const char *vals[] = {conninfo, "martgate-catalog", "10", options, "UTF8", password, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) == CONNECTION_OK)
        return conn;
    snprintf(err, errlen, "%s", conn ? PQerrorMessage(conn) : "out of memory");
    PQfinish(conn);
    return NULL;
}

warehouse_facts *catalog_read_facts(const char *conninfo, const char *password, char *err, size_t errlen)
{
    PGconn *conn = open_conn(conninfo, password, err, errlen);
    warehouse_facts *f = conn ? read_facts(conn, err, errlen) : NULL;
    PQfinish(conn);
    return f;
}

#define RELATIONS_SQL \
    "SELECT n.nspname, c.relname FROM pg_catalog.pg_namespace n " \
    "LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'v', 'm', 'p', 'f') " \
    "WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1, 2"

int catalog_read_relations(const char *conninfo, const char *password, const char ***schemas,
                           const char ***tables, size_t *n, char *err, size_t errlen)
{
    *schemas = *tables = NULL;
    *n = 0;
    PGconn *conn = open_conn(conninfo, password, err, errlen);
    if (!conn)
        return -1;
    PGresult *res = PQexec(conn, RELATIONS_SQL);
    int rc = -1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        goto out;
    }
    size_t rows = (size_t)PQntuples(res), bytes = 0;
    for (size_t i = 0; i < rows; i++)
        bytes += (size_t)PQgetlength(res, (int)i, 0) + (size_t)PQgetlength(res, (int)i, 1) + 2;
    /* the two pointer arrays, then the strings */
    char *block = malloc(2 * rows * sizeof(char *) + bytes + 1);
    if (!block) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    const char **sv = (const char **)block, **tv = sv + rows;
    char *w = (char *)(tv + rows);
    for (size_t i = 0; i < rows; i++) {
        for (int col = 0; col < 2; col++) {
            const char **dst = col ? &tv[i] : &sv[i];
            if (PQgetisnull(res, (int)i, col)) {
                *dst = NULL;
                continue;
            }
            size_t l = (size_t)PQgetlength(res, (int)i, col);
            memcpy(w, PQgetvalue(res, (int)i, col), l);
            w[l] = '\0';
            *dst = w;
            w += l + 1;
        }
    }
    *schemas = sv;
    *tables = tv;
    *n = rows;
    rc = 0;
out:
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static void *refresh_thread(void *arg)
{
    catalog_cache *c = arg;
    char err[256] = "";
    snapshot *snap = NULL;
    double started = catalog_now();
    PGconn *conn = open_conn(c->conninfo, c->password, err, sizeof err);
    if (conn) {
        PGresult *res = PQexec(conn, CATALOG_SQL);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            snprintf(err, sizeof err, "%s", PQresultErrorMessage(res));
        else
            snap = build_snapshot(res, err, sizeof err);
        PQclear(res);
        if (snap && !(snap->facts = read_facts(conn, err, sizeof err))) {
            snapshot_free(snap);
            snap = NULL;
        }
    }
    PQfinish(conn);
    if (snap)
        snap->taken_at = started;
    size_t l = strlen(err);
    while (l && err[l - 1] == '\n')
        err[--l] = 0;
    pthread_mutex_lock(&c->mu);
    c->ready = snap;
    snprintf(c->error, sizeof c->error, "%s", err);
    pthread_mutex_unlock(&c->mu);
    uint64_t one = 1;
    ssize_t w = write(c->efd, &one, sizeof one);
    (void)w;
    return NULL;
}

static void join_worker(catalog_cache *c)
{
    if (c->running && !c->joined) {
        pthread_join(c->thread, NULL);
        c->joined = true;
    }
    c->running = false;
}

static void on_refresh_done(evutil_socket_t fd, short what, void *arg)
{
    catalog_cache *c = arg;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
    (void)what;
    join_worker(c);
    pthread_mutex_lock(&c->mu);
    snapshot *snap = c->ready;
    c->ready = NULL;
    char error[256];
    snprintf(error, sizeof error, "%s", c->error);
    waiter *w = c->waiters;
    c->waiters = NULL;
    pthread_mutex_unlock(&c->mu);
    if (snap) {
        snapshot_free(c->current);
        c->current = snap;
        c->generation = ++snapshots_made;
        c->failed = false;
        log_msg(LOG_INFO, "catalog of database \"%s\": %zu tables and views, %zu settings, %zu functions PUBLIC may "
                "not execute", c->name, snap->n, snap->facts->n_settings, snap->facts->n_admin);
        char why[256];
        if (wh_role_privileged(snap->facts, why, sizeof why))
            log_msg(LOG_WARNING, "database \"%s\": the service role \"%s\" is %s; martgate needs none of that "
                    "(docs/security.md, least privilege)", c->name, snap->facts->role.name, why);
    } else {
        c->failed = true;
        log_msg(LOG_ERROR, "catalog of database \"%s\" could not be read: %s", c->name, error);
    }
    while (w) {
        waiter *next = w->next;
        w->cb(w->arg);
        free(w);
        w = next;
    }
}

catalog_cache *catalog_cache_new(struct event_base *base, const char *name, const char *conninfo,
                                 const char *password, char *err, size_t errlen)
{
    catalog_cache *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base = base;
    c->name = strdup(name);
    c->conninfo = strdup(conninfo);
    c->password = password ? strdup(password) : NULL;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&c->mu, NULL);
    if (c->efd >= 0)
        c->ev = event_new(base, c->efd, EV_READ | EV_PERSIST, on_refresh_done, c);
    if (!c->name || !c->conninfo || (password && !c->password) || c->efd < 0 || !c->ev ||
        event_add(c->ev, NULL) != 0) {
        snprintf(err, errlen, "cannot set up the catalog cache of \"%s\"", name);
        catalog_cache_free(c);
        return NULL;
    }
    return c;
}

void catalog_cache_free(catalog_cache *c)
{
    if (!c)
        return;
    join_worker(c);
    if (c->ev)
        event_free(c->ev);
    if (c->efd >= 0)
        close(c->efd);
    snapshot_free(c->current);
    snapshot_free(c->ready);
    /* whoever waited looks again (at the cache that replaced this one) */
    waiter *w = c->waiters;
    c->waiters = NULL;
    while (w) {
        waiter *n = w->next;
        w->cb(w->arg);
        free(w);
        w = n;
    }
    pthread_mutex_destroy(&c->mu);
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c->conninfo);
    free(c->name);
    free(c);
}

void catalog_cache_refresh(catalog_cache *c)
{
    if (c->running)
        return;
    c->started_at = catalog_now();
    c->joined = false;
    if (pthread_create(&c->thread, NULL, refresh_thread, c) != 0) {
        log_msg(LOG_ERROR, "catalog of database \"%s\": cannot start a refresh thread", c->name);
        c->failed = true;
        return;
    }
    c->running = true;
}

catalog_status catalog_cache_columns(catalog_cache *c, const char *schema, const char *table,
                                     double since, const char ***names, size_t *n)
{
    char key[512];
    size_t ls = strlen(schema), lt = strlen(table);
    if (ls + lt + 2 > sizeof key)
        return CATALOG_ABSENT;
    memcpy(key, schema, ls + 1);
    memcpy(key + ls + 1, table, lt + 1);
    cat_entry *e = snap_find(c->current, key, ls + lt + 2);
    if (e) {
        *names = e->cols;
        *n = e->ncols;
        return CATALOG_FOUND;
    }
    if (!c->current)
        return c->failed && !c->running ? CATALOG_FAILED : CATALOG_UNKNOWN;
    if (since > 0 && c->current->taken_at < since)
        return CATALOG_UNKNOWN;
    return CATALOG_ABSENT;
}

const warehouse_facts *catalog_cache_facts(const catalog_cache *c, unsigned long *generation)
{
    /* c may be NULL: a database without a cache has no facts */
    if (generation)
        *generation = c && c->current ? c->generation : 0;
    return c && c->current ? c->current->facts : NULL;
}

bool catalog_cache_failed(const catalog_cache *c)
{
    return c->failed && !c->running;
}

int catalog_cache_wait(catalog_cache *c, void (*cb)(void *arg), void *arg)
{
    waiter *w = malloc(sizeof *w);
    if (!w)
        return -1;
    w->cb = cb;
    w->arg = arg;
    pthread_mutex_lock(&c->mu);
    w->next = c->waiters;
    c->waiters = w;
    pthread_mutex_unlock(&c->mu);
    catalog_cache_refresh(c);
    return 0;
}

void catalog_cache_wait_cancel(catalog_cache *c, void *arg)
{
    pthread_mutex_lock(&c->mu);
    for (waiter **pp = &c->waiters; *pp;) {
        if ((*pp)->arg == arg) {
            waiter *dead = *pp;
            *pp = dead->next;
            free(dead);
        } else {
            pp = &(*pp)->next;
        }
    }
    pthread_mutex_unlock(&c->mu);
}
