/*
 * audit_trail: building and completing audit records for one session.
 *
 * Records are JSON text from the start (proxy/jsonw): at tens of thousands
 * of statements a second, building a tree of values per record and
 * serializing it again was most of auditing's cost. What a record is made of:
 *
 *   base      the session's fields (user, groups, client...), built once per
 *             session and again when application_name or the impersonated
 *             role changes; shared by reference
 *   template  one statement as decided: its base, the Metabase end user, the
 *             decision members (statement_index ... reason), its text and
 *             normalized text; a prepared statement's template serves each
 *             Execute of it
 *   request   a Query or an Execute in flight: per statement its template and
 *             what the warehouse's answer says (duration, rows, SQLSTATE)
 *
 * A record is written out in one go when its request completes.
 */
#include "proxy/audit_trail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/metabase.h"
#include "proxy/audit.h"
#include "common/clock.h"
#include "proxy/jsonw.h"
#include "common/log.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* Shared text with a reference count (event-loop thread only). */
typedef struct trail_blob {
    unsigned refs;
    size_t len;
    char data[];
} trail_blob;

typedef struct trail_tmpl {
    unsigned refs;
    trail_blob *base;
    char end_user[48];      /* "metabase:N", or "" */
    bool end_user_trusted;  /* else recorded as end_user_claimed */
    size_t members_len, qlen, nlen;
    bool has_normalized;
    char data[];            /* members \0 query \0 [normalized \0] */
} trail_tmpl;

typedef struct {
    trail_tmpl *t;
    double ms;
    long long rows;         /* < 0: null */
    char sqlstate[6];
    bool answered;          /* sqlstate (or its null) known */
    bool sqlstate_null, suspended, not_executed;
    bool interrupted;       /* the session ended before the answer came */
} trail_rec;

struct trail_req {
    size_t n, next;         /* next: the statement the next answer completes */
    double t_last;
    long long rows_seen;    /* DataRows of a suspended portal */
    trail_rec recs[];
};

/* The templates of prepared statements, cursors and portals live in the
 * guard's entries of those (proxy/guard.h), which follow their life: Parse,
 * PREPARE, DECLARE, Bind, Close, DEALLOCATE, DISCARD, transaction ends. */
struct trail_state {
    trail_blob *base;       /* the session's fields now */
    unsigned base_app;      /* what it was built with: application_name's serial */
    char *base_role;        /* ... and a copy of the impersonated role (a pointer
                             * could be freed and handed out again for another) */
    int trusts_remark;      /* -1 unknown; 1: a Metabase remark names the end user */
    char last_end_user[48]; /* the last statement's trusted end user (the admin console shows it) */
    /* Statement records' "search_path" and "claims" members (for `policy
     * replay`), kept as text: the path with a copy of the value it shows
     * (the guard narrows it in place after learning it, so no serial tells),
     * the claims with the object they show (the session's, or NULL while
     * impersonating: each lives as long as the session). */
    char *path_member;
    schema_list path_shown;
    char *claims_member;    /* "" when the claims are none */
    const void *claims_shown;
    bool claims_done;
};

static audit_log *log_of(const session *s)
{
    return s->wk->audit;
}

static trail_state *state_of(session *s)
{
    if (!s->trail && (s->trail = calloc(1, sizeof *s->trail)))
        s->trail->trusts_remark = -1;
    return s->trail;
}

/* Does this session's Metabase remark name its end user (audit.h)? Asked
 * once per session, for the principal that logged in. */
static bool trusts_remark(session *s)
{
    trail_state *t = state_of(s);
    if (!t)
        return false;
    if (t->trusts_remark < 0) {
        const policy_t *p = session_policy(s);
        bool imp = p && s->guard.ready && decide_is_impersonator(p, &s->guard.login_who);
        t->trusts_remark = audit_trusts_end_user(log_of(s), s->user, imp);
    }
    return t->trusts_remark == 1;
}

const char *trail_end_user(const struct session *s)
{
    return s->trail && s->trail->last_end_user[0] ? s->trail->last_end_user : NULL;
}

static void blob_unref(trail_blob *b)
{
    if (b && --b->refs == 0)
        free(b);
}

static void tmpl_unref(trail_tmpl *t)
{
    if (t && --t->refs == 0) {
        blob_unref(t->base);
        free(t);
    }
}

static trail_tmpl *tmpl_ref(trail_tmpl *t)
{
    if (t)
        t->refs++;
    return t;
}

const guard_tmpl_ops trail_tmpl_ops = {.ref = tmpl_ref, .release = tmpl_unref};

/* Makes t the template of a guard entry (a reference is taken). */
static void entry_template(guard_named *e, trail_tmpl *t)
{
    if (!e)
        return;
    tmpl_unref(e->tmpl);
    e->tmpl = tmpl_ref(t);
}

/* ---- the session's fields ------------------------------------------------ */

static void write_session_fields(session *s, jsonw *w)
{
    jw_int(w, "session", (long long)s->id);
    /* several instances (peering): (peer_id, session) names the session */
    if (s->wk->srv->peer_id)
        jw_int(w, "peer_id", (long long)s->wk->srv->peer_id);
    jw_str(w, "user", s->user);
    jw_strs(w, "groups", (const char *const *)s->ident.groups, s->ident.ngroups);
    jw_str(w, "client_addr", s->client_addr);
    jw_int(w, "client_port", s->client_port);
    jw_str(w, "application_name", s->application_name);
    jw_str(w, "database", s->database);
    if (s->guard.imp_role) {
        /* connection impersonation: both names, and the groups decisions used */
        jw_str(w, "impersonated_role", s->guard.imp_role);
        jw_strs(w, "effective_groups", s->guard.who.groups, s->guard.who.n_groups);
    }
}

/* The base now (a borrowed pointer: take a reference to keep it), or NULL
 * out of memory. */
static trail_blob *session_base(session *s)
{
    trail_state *t = state_of(s);
    if (!t)
        return NULL;
    const char *role = s->guard.imp_role;
    bool same_role = role ? t->base_role && !strcmp(t->base_role, role) : !t->base_role;
    if (t->base && t->base_app == s->application_name_serial && same_role)
        return t->base;
    char *role_copy = NULL;
    if (role && !(role_copy = strdup(role)))
        return NULL;
    jsonw *w = &s->wk->trail_scratch;
    jw_reset(w);
    write_session_fields(s, w);
    if (w->oom) {
        free(role_copy);
        return NULL;
    }
    trail_blob *b = malloc(sizeof *b + w->len + 1);
    if (!b) {
        free(role_copy);
        return NULL;
    }
    b->refs = 1;
    b->len = w->len;
    memcpy(b->data, w->s, w->len + 1);
    blob_unref(t->base);
    t->base = b;
    t->base_app = s->application_name_serial;
    free(t->base_role);
    t->base_role = role_copy;
    return b;
}

/* Starts a record in the scratch buffer: base and event. */
static jsonw *record_start(session *s, const trail_blob *base, const char *event)
{
    jsonw *w = &s->wk->trail_scratch;
    jw_reset(w);
    jw_raw(w, base->data, base->len);
    jw_str(w, "event", event);
    return w;
}

/* Ends a record (ts) and hands it over with its statement text, if any:
 * the writer adds the text's members. Completion records are always taken:
 * room was checked when the statement was decided (see intercept), so the
 * queue overshoots by at most the statements in flight. */
static void record_submit(session *s, jsonw *w, const trail_tmpl *t)
{
    char ts[32];
    audit_timestamp(ts);
    jw_str(w, "ts", ts);
    if (w->oom) {
        session_log(s, LOG_ERROR, "audit: out of memory building a record");
        return;
    }
    if (!t) {
        audit_submit_record(log_of(s), w->s, w->len, NULL, 0, NULL, 0);
        return;
    }
    const char *q = t->data + t->members_len + 1;
    audit_submit_record(log_of(s), w->s, w->len, q, t->qlen, t->has_normalized ? q + t->qlen + 1 : NULL, t->nlen);
}

static void session_event(session *s, const char *event, const char *key, const char *value, long long number)
{
    trail_blob *base = session_base(s);
    if (!base) {
        session_log(s, LOG_ERROR, "audit: out of memory recording %s", event);
        return;
    }
    jsonw *w = record_start(s, base, event);
    if (value)
        jw_str(w, key, value);
    else if (key)
        jw_int(w, key, number);
    record_submit(s, w, NULL);
}

void trail_session_start(session *s)
{
    if (!audit_enabled(log_of(s)))
        return;
    s->audit_started = true;
    session_event(s, "session_start", "tls", s->client.ssl ? SSL_get_version(s->client.ssl) : "off", 0);
}

void trail_login_failed(session *s, const char *reason)
{
    if (!audit_enabled(log_of(s)))
        return;
    session_event(s, "login_failed", "reason", reason, 0);
}

void trail_session_end(session *s)
{
    if (!s->audit_started || !audit_enabled(log_of(s)))
        return;
    session_event(s, "session_end", "statements", NULL, (long long)s->statements);
}

/* ---- statements ---------------------------------------------------------- */

static bool same_path(const schema_list *a, const schema_list *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

/* `"search_path":[...]` of the path statements are decided with now, or
 * NULL out of memory; built again only when the path changes. */
static const char *path_member(session *s, trail_state *t)
{
    const schema_list *now = &s->guard.effective_path;
    if (t->path_member && same_path(now, &t->path_shown))
        return t->path_member;
    jsonw w = {0};
    jw_strs(&w, "search_path", (const char *const *)now->v, now->n);
    free(t->path_member);
    t->path_member = NULL;
    schema_list_clear(&t->path_shown);
    if (schema_list_copy(&t->path_shown, now) != 0) {
        jw_free(&w);
        return NULL;
    }
    t->path_member = textbuf_finish(&w);   /* NULL out of memory: built again next time */
    return t->path_member;
}

/* `"claims":{...}` of the claims statements are decided with now (only the
 * ones the policy's templates read: jwt_identity_keep_claims), "" when there
 * are none, or NULL out of memory. */
static const char *claims_member(session *s, trail_state *t)
{
    const json_t *c = s->guard.who.claims;
    if (t->claims_done && t->claims_shown == (const void *)c)
        return t->claims_member;
    free(t->claims_member);
    t->claims_member = NULL;
    t->claims_done = false;
    char *text = c && json_object_size(c) ? json_dumps(c, JSON_COMPACT) : NULL;
    if (c && json_object_size(c) && !text)
        return NULL;
    if (text && asprintf(&t->claims_member, "\"claims\":%s", text) < 0)
        t->claims_member = NULL;
    else if (!text)
        t->claims_member = strdup("");
    free(text);
    if (!t->claims_member)
        return NULL;
    t->claims_done = true;
    t->claims_shown = c;
    return t->claims_member;
}

char *trail_decision_members(session *s, size_t index, const analysis *a, decision *d, const char *verdict,
                             bool rewritten, const char *reason)
{
    trail_state *t = state_of(s);
    if (!t)
        return NULL;
    jsonw *w = &s->wk->trail_scratch;
    jw_reset(w);
    jw_int(w, "statement_index", (long long)index);
    const analysis_stmt *st = a && index < a->n_stmts ? &a->stmts[index] : NULL;
    jw_str(w, "kind", st ? analyze_stmt_kind_name(st->kind) : NULL);
    jw_str(w, "decision", verdict);
    jw_str(w, "rule", d ? d->rule_id : NULL);
    /* relations and their datasets, each dataset once */
    const char *stack[64], **sets = stack;
    size_t nsets = 0;
    if (d && d->n_items > sizeof stack / sizeof *stack && !(sets = malloc(d->n_items * sizeof *sets)))
        return NULL;
    jw_key(w, "relations");
    jw_raw(w, "[", 1);
    bool first = true;
    for (size_t i = 0; d && i < d->n_items; i++) {
        const decide_item *it = &d->items[i];
        if (it->kind != DECIDE_ITEM_RELATION || it->stmt_index != index)
            continue;
        char name[300];
        int n = snprintf(name, sizeof name, "%s%s%s", it->schema ? it->schema : "", it->schema ? "." : "",
                         it->name ? it->name : "?");
        if (!first)
            jw_raw(w, ",", 1);
        first = false;
        jw_string(w, name, n < (int)sizeof name ? (size_t)n : sizeof name - 1);
        bool dup = !it->dataset;
        for (size_t k = 0; k < nsets && !dup; k++)
            dup = !strcmp(sets[k], it->dataset);
        if (!dup)
            sets[nsets++] = it->dataset;
    }
    jw_raw(w, "]", 1);
    jw_strs(w, "datasets", sets, nsets);
    if (sets != stack)
        free(sets);
    jw_bool(w, "rewritten", rewritten);
    jw_str(w, "reason", reason);
    const char *path = path_member(s, t), *claims = claims_member(s, t);
    if (!path || !claims)
        return NULL;
    jw_raw(w, ",", 1);
    jw_raw(w, path, strlen(path));
    if (*claims) {
        jw_raw(w, ",", 1);
        jw_raw(w, claims, strlen(claims));
    }
    return w->oom ? NULL : strdup(w->s);
}

/* A template: the base now, the end user, the decision members and the
 * statement's text. normalized may be NULL (the writer makes it). */
static trail_tmpl *tmpl_new(session *s, const char *sql, const char *stmt_text, size_t qlen,
                            const char *members, const char *normalized, size_t nlen)
{
    trail_blob *base = session_base(s);
    if (!base || !members)
        return NULL;
    size_t mlen = strlen(members);
    trail_tmpl *t = malloc(sizeof *t + mlen + 1 + qlen + 1 + (normalized ? nlen + 1 : 0));
    if (!t)
        return NULL;
    t->refs = 1;
    t->base = base;
    base->refs++;
    if (metabase_end_user(sql, t->end_user, sizeof t->end_user) != 0)
        t->end_user[0] = 0;
    t->end_user_trusted = t->end_user[0] && trusts_remark(s);
    if (t->end_user_trusted && s->trail)
        snprintf(s->trail->last_end_user, sizeof s->trail->last_end_user, "%s", t->end_user);
    t->members_len = mlen;
    t->qlen = qlen;
    t->nlen = normalized ? nlen : 0;
    t->has_normalized = normalized != NULL;
    char *p = t->data;
    memcpy(p, members, mlen + 1);
    p += mlen + 1;
    memcpy(p, stmt_text, qlen);
    p[qlen] = 0;
    if (normalized) {
        memcpy(p + qlen + 1, normalized, nlen);
        p[qlen + 1 + nlen] = 0;
    }
    return t;
}

/* Writes one statement record: template, then the answer's members. */
static void emit(session *s, const trail_rec *r)
{
    const trail_tmpl *t = r->t;
    jsonw *w = record_start(s, t->base, "statement");
    if (t->end_user[0])
        jw_str(w, t->end_user_trusted ? "end_user" : "end_user_claimed", t->end_user);
    jw_raw(w, ",", 1);
    jw_raw(w, t->data, t->members_len);
    jw_ms(w, "duration_ms", r->ms);
    if (r->rows >= 0)
        jw_int(w, "rows", r->rows);
    else
        jw_null(w, "rows");
    if (!r->answered || r->sqlstate_null)
        jw_null(w, "sqlstate");
    else
        jw_str(w, "sqlstate", r->sqlstate);
    if (r->suspended)
        jw_bool(w, "portal_suspended", true);
    if (!r->answered && r->interrupted)
        jw_bool(w, "interrupted", true);    /* sent to the warehouse; the session ended before its answer */
    else if (!r->answered || r->not_executed)
        jw_bool(w, "not_executed", true);   /* skipped: an earlier message of its batch failed */
    s->statements++;
    record_submit(s, w, t);
}

static trail_req *req_new(size_t n)
{
    trail_req *r = calloc(1, sizeof *r + (n ? n : 1) * sizeof(trail_rec));
    if (!r)
        return NULL;
    r->n = n;
    r->t_last = clock_mono_s();
    for (size_t i = 0; i < n; i++)
        r->recs[i].rows = -1;
    return r;
}

/* A statement that does not run: recorded at once. */
static void emit_refused(session *s, trail_tmpl *t, const char *sqlstate)
{
    if (!t) {
        session_log(s, LOG_ERROR, "audit: out of memory recording a refused statement");
        return;
    }
    trail_rec r = {.t = t, .rows = -1, .answered = true, .sqlstate_null = !sqlstate};
    if (sqlstate)
        snprintf(r.sqlstate, sizeof r.sqlstate, "%s", sqlstate);
    emit(s, &r);
    tmpl_unref(t);
}

/* An allowed statement's template goes where its answer will find it: for
 * 'P' it becomes the template of statement stmt_name, for 'Q' the request
 * to attach to the queue entry is returned. Takes t. */
static trail_req *place(session *s, char kind, const char *stmt_name, trail_tmpl *t)
{
    if (!t) {
        session_log(s, LOG_ERROR, "audit: out of memory recording a statement");
        return NULL;
    }
    if (kind == 'P') {
        entry_template(guard_names_find(s->guard.statements, stmt_name ? stmt_name : ""), t);
        tmpl_unref(t);
        return NULL;
    }
    trail_req *r = req_new(1);
    if (!r) {
        tmpl_unref(t);
        return NULL;
    }
    r->recs[0].t = t;
    return r;
}

trail_req *trail_allowed(session *s, char kind, const char *stmt_name, const char *sql, const char *members,
                         const char *normalized, size_t nlen)
{
    if (!audit_enabled(log_of(s)))
        return NULL;
    return place(s, kind, stmt_name, tmpl_new(s, sql, sql, strlen(sql), members, normalized, nlen));
}

trail_req *trail_decided(session *s, char kind, const char *stmt_name, const char *sql,
                         const analysis *a, decision *d, bool denied, bool rewritten,
                         const char *deny_sqlstate, const char *deny_message,
                         const char *normalized, size_t nlen)
{
    if (!audit_enabled(log_of(s)))
        return NULL;
    const char *verdict = denied ? "deny" : rewritten ? "rewrite" : "allow";
    size_t n = a && a->n_stmts ? a->n_stmts : 1;
    const char *reason = d ? decision_reason(d) : NULL;
    if (denied && !reason)
        reason = deny_message;
    if (n > 1)
        normalized = NULL;   /* the shape is the whole text's: the writer normalizes each statement */
    size_t sqllen = strlen(sql);
    trail_req *r = NULL;
    if (!denied && kind != 'P' && !(r = req_new(n)))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        /* each statement's own text when the string has several */
        const analysis_stmt *st = a && i < a->n_stmts ? &a->stmts[i] : NULL;
        const char *text = sql;
        size_t tlen = sqllen;
        if (st && n > 1 && st->location >= 0 && (size_t)st->location < sqllen) {
            text = sql + st->location;
            tlen = (size_t)st->length;
        }
        char *members = trail_decision_members(s, i, a, d, verdict, !denied && rewritten, reason);
        trail_tmpl *t = tmpl_new(s, sql, text, tlen, members, normalized, nlen);
        free(members);
        if (denied) {
            /* nothing runs: one record per statement, each carrying the denial */
            emit_refused(s, t, deny_sqlstate);
        } else if (kind == 'P') {
            return place(s, kind, stmt_name, t);
        } else if (t) {
            /* what a PREPARE or DECLARE keeps runs later: at each EXECUTE or
             * Bind of the statement, each FETCH or Execute of the cursor */
            if (st && st->prepare_name)
                entry_template(guard_names_find(s->guard.statements, st->prepare_name), t);
            else if (st && st->cursor_name && st->tag && !strcmp(st->tag, "DECLARE CURSOR"))
                entry_template(guard_names_find(s->guard.cursors, st->cursor_name), t);
            r->recs[i].t = t;
        } else {
            session_log(s, LOG_ERROR, "audit: out of memory recording a statement");
        }
    }
    return r;
}

void trail_refused(session *s, const char *sql, const char *sqlstate, const char *message)
{
    if (!audit_enabled(log_of(s)))
        return;
    char *members = trail_decision_members(s, 0, NULL, NULL, "deny", false, message);
    const char *text = sql ? sql : "";
    trail_tmpl *t = tmpl_new(s, text, text, strlen(text), members, NULL, 0);
    free(members);
    emit_refused(s, t, sqlstate);
}

trail_req *trail_execute(session *s, const char *portal)
{
    if (!audit_enabled(log_of(s)))
        return NULL;
    /* a portal of a Bind, or a cursor DECLAREd in SQL */
    guard_named *p = guard_names_find(s->guard.portals, portal);
    if (!p || !p->tmpl)
        p = guard_names_find(s->guard.cursors, portal);
    if (!p || !p->tmpl)
        return NULL;
    trail_req *r = req_new(1);
    if (r)
        r->recs[0].t = tmpl_ref(p->tmpl);
    return r;
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
    trail_rec *rec = &r->recs[r->next++];
    double t = clock_mono_s();
    rec->ms = (t - r->t_last) * 1000.0;
    r->t_last = t;
    rec->answered = true;
    if (type == 'C') {
        rec->rows = tag_rows(text);
        memcpy(rec->sqlstate, "00000", 6);
    } else if (type == 's') {
        rec->rows = r->rows_seen;
        memcpy(rec->sqlstate, "00000", 6);
        rec->suspended = true;
    } else if (type == 'I') {
        rec->rows = 0;
        memcpy(rec->sqlstate, "00000", 6);
    } else {
        if (text)
            snprintf(rec->sqlstate, sizeof rec->sqlstate, "%s", text);
        else
            rec->sqlstate_null = true;
        /* after an error the rest of a Query string does not run */
        for (size_t i = r->next; i < r->n; i++) {
            r->recs[i].answered = true;
            r->recs[i].sqlstate_null = true;
            r->recs[i].not_executed = true;
        }
        r->next = r->n;
    }
}

void trail_interrupted(trail_req *r)
{
    for (size_t i = 0; r && i < r->n; i++)
        r->recs[i].interrupted = true;
}

void trail_finish(session *s, trail_req *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (r->recs[i].t)
            emit(s, &r->recs[i]);
    trail_discard(r);
}

void trail_discard(trail_req *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        tmpl_unref(r->recs[i].t);
    free(r);
}

void trail_state_free(trail_state *t)
{
    if (!t)
        return;
    blob_unref(t->base);
    free(t->base_role);
    free(t->path_member);
    schema_list_clear(&t->path_shown);
    free(t->claims_member);
    free(t);
}
