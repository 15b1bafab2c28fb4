/*
 * audit_store: the audit table of the warehouse through libpq (see
 * audit_store.h).
 */
#include "adapters/audit_store.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct audit_store {
    PGconn *conn;
    char *qtable;            /* "schema"."table" */
    char *insert_sql;
};

static char *quote_ident(const char *s)
{
    size_t n = strlen(s);
    char *q = malloc(n + 3);
    if (q)
        snprintf(q, n + 3, "\"%s\"", s);   /* identifiers were validated: no quotes inside */
    return q;
}

#define J_TEXT(k) "e->>'" k "'"
#define J_INT(k) "CASE WHEN jsonb_typeof(e->'" k "') = 'number' THEN (e->>'" k "')::numeric::bigint END"
#define J_REAL(k) "CASE WHEN jsonb_typeof(e->'" k "') = 'number' THEN (e->>'" k "')::double precision END"
#define J_BOOL(k) "CASE WHEN jsonb_typeof(e->'" k "') = 'boolean' THEN (e->>'" k "')::boolean END"
#define J_ARR(k)                                                                                            \
    "CASE WHEN jsonb_typeof(e->'" k "') = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(e->'" k     \
    "')) END"

static const char INSERT_FMT[] =
    "INSERT INTO %s (record_id, ts, event, session_id, user_name, groups, client_addr, client_port, "
    "application_name, database_name, end_user, statement_index, kind, decision, rule, reason, relations, "
    "datasets, fingerprint, query, query_unparsable, rewritten, duration_ms, row_count, sqlstate, record) "
    "SELECT encode(sha256(convert_to(e::text, 'UTF8')), 'hex'), "
    "coalesce((e->>'ts')::timestamptz, now()), coalesce(e->>'event', ''), " J_TEXT("session") ", "
    J_TEXT("user") ", " J_ARR("groups") ", " J_TEXT("client_addr") ", " J_INT("client_port") ", "
    J_TEXT("application_name") ", " J_TEXT("database") ", " J_TEXT("end_user") ", " J_INT("statement_index") ", "
    J_TEXT("kind") ", " J_TEXT("decision") ", " J_TEXT("rule") ", " J_TEXT("reason") ", " J_ARR("relations") ", "
    J_ARR("datasets") ", " J_TEXT("fingerprint") ", " J_TEXT("query") ", " J_BOOL("query_unparsable") ", "
    J_BOOL("rewritten") ", " J_REAL("duration_ms") ", " J_INT("rows") ", " J_TEXT("sqlstate") ", e "
    "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n "
    "ON CONFLICT (record_id) DO NOTHING";

static const char CREATE_FMT[] =
    "CREATE SCHEMA IF NOT EXISTS %s;\n"
    "CREATE TABLE IF NOT EXISTS %s (\n"
    "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
    "  record_id text NOT NULL UNIQUE,\n"
    "  ts timestamptz NOT NULL,\n"
    "  event text NOT NULL,\n"
    "  session_id text,\n"
    "  user_name text,\n"
    "  groups text[],\n"
    "  client_addr text,\n"
    "  client_port integer,\n"
    "  application_name text,\n"
    "  database_name text,\n"
    "  end_user text,\n"
    "  statement_index integer,\n"
    "  kind text,\n"
    "  decision text,\n"
    "  rule text,\n"
    "  reason text,\n"
    "  relations text[],\n"
    "  datasets text[],\n"
    "  fingerprint text,\n"
    "  query text,\n"
    "  query_unparsable boolean,\n"
    "  rewritten boolean,\n"
    "  duration_ms double precision,\n"
    "  row_count bigint,\n"
    "  sqlstate text,\n"
    "  record jsonb NOT NULL,\n"
    "  inserted_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS %s ON %s (ts);\n"
    "CREATE INDEX IF NOT EXISTS %s ON %s (user_name, ts);\n"
    "COMMENT ON TABLE %s IS 'martgate audit trail: one row per event (see martgate docs/audit.md)';\n";

static const char *one_line(const char *msg, char *buf, size_t n)
{
    snprintf(buf, n, "%s", msg ? msg : "");
    for (char *c = buf; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    size_t l = strlen(buf);
    while (l && buf[l - 1] == ' ')
        buf[--l] = 0;
    return buf;
}

/* Creates the schema, table and indexes when the table is absent. */
static int ensure_table(audit_store *s, const char *schema, const char *table, char *why, size_t whylen)
{
    const char *params[1] = {s->qtable};
    PGresult *r = PQexecParams(s->conn, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, params, NULL, NULL, 0);
    char msg[512];
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(why, whylen, "checking for %s: %s", s->qtable, one_line(PQerrorMessage(s->conn), msg, sizeof msg));
        PQclear(r);
        return -1;
    }
    bool exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (exists)
        return 0;
    char *qschema = quote_ident(schema);
    char ts_idx[64], user_idx[64];
    snprintf(ts_idx, sizeof ts_idx, "%s_ts_idx", table);
    snprintf(user_idx, sizeof user_idx, "%s_user_ts_idx", table);
    char *qts = quote_ident(ts_idx), *quser = quote_ident(user_idx);
    char *sql = NULL;
    int rc = -1;
    if (qschema && qts && quser &&
        asprintf(&sql, CREATE_FMT, qschema, s->qtable, qts, s->qtable, quser, s->qtable, s->qtable) >= 0) {
        /* one simple-protocol message with several statements runs as one transaction */
        r = PQexec(s->conn, sql);
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            rc = 0;
            log_msg(LOG_INFO, "audit warehouse: created table %s", s->qtable);
        } else {
            snprintf(why, whylen, "creating %s: %s", s->qtable, one_line(PQerrorMessage(s->conn), msg, sizeof msg));
        }
        PQclear(r);
    } else {
        snprintf(why, whylen, "out of memory");
    }
    free(sql);
    free(qschema);
    free(qts);
    free(quser);
    return rc;
}

/* Notices of the sink's own connection go to the log as one debug line. */
static void sink_notice(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    log_msg(LOG_DEBUG, "audit warehouse sink: %s", one_line(message, line, sizeof line));
}

void audit_store_close(audit_store *s)
{
    if (!s)
        return;
    if (s->conn)
        PQfinish(s->conn);
    free(s->qtable);
    free(s->insert_sql);
    free(s);
}

audit_store *audit_store_open(const char *conninfo, const char *password, const char *schema,
                              const char *table, char *why, size_t whylen)
{
    audit_store *s = calloc(1, sizeof *s);
    char *qs = quote_ident(schema), *qt = quote_ident(table);
    if (s && qs && qt && asprintf(&s->qtable, "%s.%s", qs, qt) < 0)
        s->qtable = NULL;
    free(qs);
    free(qt);
    if (!s || !s->qtable || asprintf(&s->insert_sql, INSERT_FMT, s->qtable) < 0) {
        if (s)
            s->insert_sql = NULL;
        snprintf(why, whylen, "out of memory");
        audit_store_close(s);
        return NULL;
    }
    /* defaults first: the conninfo (expanded from dbname) may override them;
     * the configured password and the application name come after it */
    const char *keys[10], *vals[10];
    int k = 0;
    keys[k] = "connect_timeout", vals[k++] = "5";
    keys[k] = "keepalives_idle", vals[k++] = "30";
    keys[k] = "keepalives_interval", vals[k++] = "10";
    keys[k] = "keepalives_count", vals[k++] = "3";
    keys[k] = "tcp_user_timeout", vals[k++] = "60000";
    keys[k] = "dbname", vals[k++] = conninfo;
    keys[k] = "fallback_application_name", vals[k++] = "martgate-audit";
    if (password)
        keys[k] = "password", vals[k++] = password;
    keys[k] = NULL, vals[k] = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    char msg[512];
    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(why, whylen, "cannot connect: %s", c ? one_line(PQerrorMessage(c), msg, sizeof msg) : "out of memory");
        PQfinish(c);
        audit_store_close(s);
        return NULL;
    }
    s->conn = c;
    PQsetNoticeProcessor(c, sink_notice, NULL);   /* "schema already exists" etc.: debug log lines */
    PGresult *r = PQexec(c, "SET statement_timeout = '60s'");
    PQclear(r);
    if (ensure_table(s, schema, table, why, whylen) != 0) {
        audit_store_close(s);
        return NULL;
    }
    return s;
}

const char *audit_store_table(const audit_store *s)
{
    return s->qtable;
}

int audit_store_insert(audit_store *s, const char *json_array, char *why, size_t whylen)
{
    const char *params[1] = {json_array};
    PGresult *r = PQexecParams(s->conn, s->insert_sql, 1, NULL, params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        char msg[512];
        snprintf(why, whylen, "%s%s%s", st ? st : "", st ? " " : "",
                 one_line(PQerrorMessage(s->conn), msg, sizeof msg));
        rc = st && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0) && PQstatus(s->conn) == CONNECTION_OK
                 ? 1 : -1;
    }
    PQclear(r);
    return rc;
}

struct audit_store_cancel {
    PGcancel *pg;
};

audit_store_cancel *audit_store_cancel_new(audit_store *s)
{
    audit_store_cancel *c = calloc(1, sizeof *c);
    if (c && !(c->pg = PQgetCancel(s->conn))) {
        free(c);
        c = NULL;
    }
    return c;
}

int audit_store_cancel_send(audit_store_cancel *c)
{
    char ebuf[256];
    return c && PQcancel(c->pg, ebuf, sizeof ebuf);
}

void audit_store_cancel_free(audit_store_cancel *c)
{
    if (!c)
        return;
    PQfreeCancel(c->pg);
    free(c);
}
