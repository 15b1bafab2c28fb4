/*
 * audit_trail: building and completing audit records for one session.
 */
#include "proxy/audit_trail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/metabase.h"
#include "proxy/audit.h"
#include "proxy/clock.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"

struct trail_req {
    json_t **recs;        /* one per statement */
    size_t n, next;       /* next: the statement the next answer completes */
    double t_start, t_last;
    long long rows_seen;  /* DataRows of a suspended portal */
};

typedef struct {
    char *name;
    json_t *tmpl;         /* the decided record of a prepared statement */
} named;

struct trail_state {
    json_t *base;         /* session_fields(), shared by its records */
    const char *base_app; /* what it was built with */
    const char *base_role;
    named *stmts;
    size_t nstmts, capstmts;
    named *portals;       /* portal → the template of its statement */
    size_t nportals, capportals;
};


static audit_log *log_of(const session *s)
{
    return s->srv->audit;
}

static void submit(session *s, json_t *rec)
{
    /* completion records are always taken: room was checked when the
     * statement was decided (see intercept), so the queue overshoots by at
     * most the statements in flight */
    audit_submit_always(log_of(s), rec);
}

/* The fields every record of a session carries, built once per session
 * (again when application_name or the impersonated role changes) and
 * shared by the records through shallow copies: jansson's reference counts
 * are atomic, and nobody changes a value once built, only which values a
 * record's object holds. At tens of thousands of statements a second the
 * allocations saved are most of the trail's cost. */
static json_t *session_fields(session *s)
{
    trail_state *t = s->trail;
    if (t && t->base && t->base_app == s->application_name && t->base_role == s->guard.imp_role)
        return t->base;
    json_t *r = json_object();
    json_t *groups = json_array();
    for (size_t i = 0; i < s->ident.ngroups; i++)
        json_array_append_new(groups, json_string(s->ident.groups[i]));
    json_object_set_new(r, "session", json_integer((json_int_t)s->id));
    json_object_set_new(r, "user", s->user ? json_string(s->user) : json_null());
    json_object_set_new(r, "groups", groups);
    json_object_set_new(r, "client_addr", json_string(s->client_addr));
    json_object_set_new(r, "client_port", json_integer(s->client_port));
    json_object_set_new(r, "application_name", s->application_name ? json_string(s->application_name) : json_null());
    json_object_set_new(r, "database", s->database ? json_string(s->database) : json_null());
    if (s->guard.imp_role) {
        /* connection impersonation: both names, and the groups decisions used */
        json_t *eg = json_array();
        for (size_t i = 0; i < s->guard.who.n_groups; i++)
            json_array_append_new(eg, json_string(s->guard.who.groups[i]));
        json_object_set_new(r, "impersonated_role", json_string(s->guard.imp_role));
        json_object_set_new(r, "effective_groups", eg);
    }
    if (!t)
        return r;   /* the caller owns it */
    json_decref(t->base);
    t->base = r;
    t->base_app = s->application_name;
    t->base_role = s->guard.imp_role;
    return r;
}

static json_t *session_record(session *s, const char *event)
{
    if (!s->trail)
        s->trail = calloc(1, sizeof *s->trail);
    json_t *base = session_fields(s);
    json_t *r = s->trail ? json_copy(base) : base;
    json_object_set_new(r, "event", json_string(event));
    return r;
}

void trail_session_start(session *s)
{
    if (!audit_enabled(log_of(s)))
        return;
    json_t *r = session_record(s, "session_start");
    json_object_set_new(r, "tls", json_string(s->client.ssl ? SSL_get_version(s->client.ssl) : "off"));
    s->audit_started = true;
    submit(s, r);
}

void trail_login_failed(session *s, const char *reason)
{
    if (!audit_enabled(log_of(s)))
        return;
    json_t *r = session_record(s, "login_failed");
    json_object_set_new(r, "reason", json_string(reason));
    submit(s, r);
}

void trail_session_end(session *s)
{
    if (!s->audit_started || !audit_enabled(log_of(s)))
        return;
    json_t *r = session_record(s, "session_end");
    json_object_set_new(r, "statements", json_integer((json_int_t)s->statements));
    submit(s, r);
}

/* ---- statements ---------------------------------------------------------- */

static json_t *statement_record(session *s, const char *sql, size_t index, const analysis *a,
                                const decision *d, const char *verdict, bool rewritten)
{
    json_t *r = session_record(s, "statement");
    char end_user[64];
    if (metabase_end_user(sql, end_user, sizeof end_user) == 0)
        json_object_set_new(r, "end_user", json_string(end_user));
    json_object_set_new(r, "statement_index", json_integer((json_int_t)index));
    const analysis_stmt *st = a && index < a->n_stmts ? &a->stmts[index] : NULL;
    json_object_set_new(r, "kind", st ? json_string(analyze_stmt_kind_name(st->kind)) : json_null());
    json_object_set_new(r, "decision", json_string(verdict));
    json_object_set_new(r, "rule", d && d->rule_id ? json_string(d->rule_id) : json_null());
    json_t *rels = json_array(), *sets = json_array();
    for (size_t i = 0; d && i < d->n_items; i++) {
        const decide_item *it = &d->items[i];
        if (it->kind != DECIDE_ITEM_RELATION || it->stmt_index != index)
            continue;
        char name[300];
        snprintf(name, sizeof name, "%s%s%s", it->schema ? it->schema : "", it->schema ? "." : "",
                 it->name ? it->name : "?");
        json_array_append_new(rels, json_string(name));
        if (it->dataset) {
            bool dup = false;
            size_t k;
            json_t *v;
            json_array_foreach(sets, k, v) dup = dup || !strcmp(json_string_value(v), it->dataset);
            if (!dup)
                json_array_append_new(sets, json_string(it->dataset));
        }
    }
    json_object_set_new(r, "relations", rels);
    json_object_set_new(r, "datasets", sets);
    /* the statement's own text (the writer normalizes it) */
    if (st && st->location >= 0 && (size_t)st->location < strlen(sql) && a->n_stmts > 1)
        json_object_set_new(r, "query", json_stringn(sql + st->location, (size_t)st->length));
    else
        json_object_set_new(r, "query", json_string(sql));
    json_object_set_new(r, "rewritten", json_boolean(rewritten));
    return r;
}

static trail_req *req_new(size_t n)
{
    trail_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->recs = calloc(n ? n : 1, sizeof *r->recs);
    if (!r->recs) {
        free(r);
        return NULL;
    }
    r->n = n;
    r->t_start = r->t_last = clock_mono_s();
    return r;
}

static trail_state *state_of(session *s)
{
    if (!s->trail)
        s->trail = calloc(1, sizeof *s->trail);
    return s->trail;
}

static named *find(named *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].name, name))
            return &v[i];
    return NULL;
}

/* Sets name → tmpl (a reference is taken), replacing an older one. */
static void put(named **v, size_t *n, size_t *cap, const char *name, json_t *tmpl)
{
    named *e = find(*v, *n, name);
    if (e) {
        json_decref(e->tmpl);
        e->tmpl = json_incref(tmpl);
        return;
    }
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        named *nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return;
        *v = nv;
        *cap = c;
    }
    char *copy = strdup(name);
    if (!copy)
        return;
    (*v)[*n] = (named){copy, json_incref(tmpl)};
    (*n)++;
}

static void drop(named *v, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!name || !strcmp(v[i].name, name)) {
            free(v[i].name);
            json_decref(v[i].tmpl);
            v[i] = v[--*n];
            if (name)
                return;
            i--;
        }
}

trail_req *trail_decided(session *s, char kind, const char *stmt_name, const char *sql,
                         const analysis *a, decision *d, bool denied, bool rewritten,
                         const char *deny_sqlstate, const char *deny_message)
{
    if (!audit_enabled(log_of(s)))
        return NULL;
    const char *verdict = denied ? "deny" : rewritten ? "rewrite" : "allow";
    size_t n = a && a->n_stmts ? a->n_stmts : 1;
    const char *reason = d ? decision_reason(d) : NULL;
    if (denied) {
        /* nothing runs: one record per statement, each carrying the denial */
        for (size_t i = 0; i < n; i++) {
            json_t *r = statement_record(s, sql, i, a, d, verdict, false);
            json_object_set_new(r, "reason", json_string(reason ? reason : deny_message));
            json_object_set_new(r, "sqlstate", json_string(deny_sqlstate));
            json_object_set_new(r, "duration_ms", json_real(0));
            json_object_set_new(r, "rows", json_null());
            s->statements++;
            submit(s, r);
        }
        return NULL;
    }
    if (kind == 'P') {
        json_t *tmpl = statement_record(s, sql, 0, a, d, verdict, rewritten);
        json_object_set_new(tmpl, "reason", reason ? json_string(reason) : json_null());
        trail_state *t = state_of(s);
        if (t)
            put(&t->stmts, &t->nstmts, &t->capstmts, stmt_name ? stmt_name : "", tmpl);
        json_decref(tmpl);
        return NULL;
    }
    trail_req *r = req_new(n);
    if (!r)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        r->recs[i] = statement_record(s, sql, i, a, d, verdict, rewritten);
        json_object_set_new(r->recs[i], "reason", reason ? json_string(reason) : json_null());
    }
    return r;
}

void trail_refused(session *s, const char *sql, const char *sqlstate, const char *message)
{
    if (!audit_enabled(log_of(s)))
        return;
    json_t *r = statement_record(s, sql ? sql : "", 0, NULL, NULL, "deny", false);
    json_object_set_new(r, "reason", json_string(message));
    json_object_set_new(r, "sqlstate", json_string(sqlstate));
    json_object_set_new(r, "duration_ms", json_real(0));
    json_object_set_new(r, "rows", json_null());
    s->statements++;
    submit(s, r);
}

void trail_bind(session *s, const char *portal, const char *stmt)
{
    trail_state *t = s->trail;
    if (!t)
        return;
    named *st = find(t->stmts, t->nstmts, stmt);
    if (st)
        put(&t->portals, &t->nportals, &t->capportals, portal, st->tmpl);
    else
        drop(t->portals, &t->nportals, portal);
}

trail_req *trail_execute(session *s, const char *portal)
{
    trail_state *t = s->trail;
    named *p = t ? find(t->portals, t->nportals, portal) : NULL;
    if (!p)
        return NULL;
    trail_req *r = req_new(1);
    if (r)
        r->recs[0] = json_copy(p->tmpl);   /* shallow: the template's values are never changed */
    return r;
}

void trail_close(session *s, char what, const char *name)
{
    trail_state *t = s->trail;
    if (!t)
        return;
    if (what == 'S')
        drop(t->stmts, &t->nstmts, name);
    else
        drop(t->portals, &t->nportals, name);
}

static long long tag_rows(const char *tag)
{
    const char *sp = strrchr(tag, ' ');
    if (!sp || !strchr("0123456789", sp[1]))
        return -1;
    static const char *const counted[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY",
                                          "FETCH", "MOVE", NULL};
    for (const char *const *c = counted; *c; c++)
        if (!strncmp(tag, *c, strlen(*c)))
            return atoll(sp + 1);
    return -1;
}

void trail_count_row(trail_req *r)
{
    if (r)
        r->rows_seen++;
}

void trail_answer(trail_req *r, char type, const char *text)
{
    if (!r || r->next >= r->n)
        return;
    json_t *rec = r->recs[r->next++];
    double t = clock_mono_s();
    json_object_set_new(rec, "duration_ms", json_real((t - r->t_last) * 1000.0));
    r->t_last = t;
    if (type == 'C') {
        long long rows = tag_rows(text);
        json_object_set_new(rec, "rows", rows >= 0 ? json_integer(rows) : json_null());
        json_object_set_new(rec, "sqlstate", json_string("00000"));
    } else if (type == 's') {
        json_object_set_new(rec, "rows", json_integer(r->rows_seen));
        json_object_set_new(rec, "sqlstate", json_string("00000"));
        json_object_set_new(rec, "portal_suspended", json_true());
    } else if (type == 'I') {
        json_object_set_new(rec, "rows", json_integer(0));
        json_object_set_new(rec, "sqlstate", json_string("00000"));
    } else {
        json_object_set_new(rec, "rows", json_null());
        json_object_set_new(rec, "sqlstate", text ? json_string(text) : json_null());
        /* after an error the rest of a Query string does not run */
        for (size_t i = r->next; i < r->n; i++) {
            json_object_set_new(r->recs[i], "sqlstate", json_null());
            json_object_set_new(r->recs[i], "not_executed", json_true());
        }
        r->next = r->n;
    }
}

void trail_finish(session *s, trail_req *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        if (!r->recs[i])
            continue;
        if (!json_object_get(r->recs[i], "sqlstate")) {
            /* skipped: an earlier message of its batch failed */
            json_object_set_new(r->recs[i], "sqlstate", json_null());
            json_object_set_new(r->recs[i], "not_executed", json_true());
        }
        s->statements++;
        submit(s, r->recs[i]);
        r->recs[i] = NULL;
    }
    trail_discard(r);
}

void trail_discard(trail_req *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        json_decref(r->recs[i]);
    free(r->recs);
    free(r);
}

void trail_state_free(trail_state *t)
{
    if (!t)
        return;
    drop(t->stmts, &t->nstmts, NULL);
    drop(t->portals, &t->nportals, NULL);
    json_decref(t->base);
    free(t->stmts);
    free(t->portals);
    free(t);
}
