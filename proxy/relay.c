/*
 * relay: message flow of a READY session. See relay.h for the model.
 *
 * Client → warehouse (this file): Query/Parse are held whole (bounded by
 * max_message_bytes) and go through intercept; FunctionCall is refused;
 * everything else is streamed without being held. Warehouse → client is
 * proxy/relay_backend.c. Each direction stops reading when the other side's
 * output passes RELAY_HIGH_WATER and resumes when it drains to half.
 */
#include "proxy/relay.h"
#include "proxy/relay_internal.h"
#include "proxy/relay_queue.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/catalog.h"
#include "common/clock.h"
#include "proxy/audit_trail.h"
#include "proxy/intercept.h"
#include "common/log.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* Fails to parse on any SQL engine, so the warehouse answers it with an
 * error at exactly the place of the statement it stands for. */
#define POISON_SQL "martgate: statement denied"

/* The relay queue's hooks: a request's audit records are complete; a
 * request that named a statement or cursor failed (the guard learns). */
static void request_done(void *ctx, struct trail_req *req, bool interrupted)
{
    session *s = ctx;
    if (interrupted)
        trail_interrupted(req);
    trail_finish(s, req);
}

static void request_unsure(void *ctx, char what, const char *name)
{
    session *s = ctx;
    guard_outcome_failed(&s->guard, what, name);
}

static void request_sure(void *ctx, char what, const char *name)
{
    session *s = ctx;
    guard_outcome_ok(&s->guard, what, name);
}

/* One table for every session: its queue's ctx is the session. */
static const rq_hooks relay_hooks = {.done = request_done, .unsure = request_unsure, .sure = request_sure};

/* The relay counts the queue before each client message it reads and stops
 * at RELAY_QUEUE_MAX: the message counted last, then a held Parse and
 * martgate's own Close before it, make RELAY_QUEUE_MAX + 2 in flight at
 * most, and a ring's capacity (doubled when full) stays under twice that,
 * far from RQ_MAX_CAP. */
_Static_assert(2 * ((uint64_t)RELAY_QUEUE_MAX + 2) <= RQ_MAX_CAP, "the queue's rings stay below RQ_MAX_CAP");

/* The names the statements the guard was just told of touch go with the
 * request being pushed (relay_queue), so that the guard learns if it fails. */
static void take_touched(session *s)
{
    session_guard *g = &s->guard;
    for (size_t off = 0; off < g->touched_len;) {
        const char *rec = g->touched + off;
        if (!rq_names_note_kind(&s->relay.q, rec[0], rec + 1))
            s->relay.q.names_lost = true;   /* the relay ends the session */
        off += strlen(rec) + 1;
    }
    g->touched_len = 0;
}

/* The guard lost track of the session (guard.h): it ends, before anything
 * more of it reaches the warehouse. Returns false then. */
bool relay_guard_following(session *s)
{
    if (!s->guard.lost)
        return true;
    pg_error err = {.severity = "FATAL", .sqlstate = SQLSTATE_OUT_OF_MEMORY, .message = s->guard.lost};
    session_close(s, &err);
    return false;
}

void relay_free(relay_state *r)
{
    free(r->learned);
    r->learned = NULL;
    rq_free(&r->q);
}

bool relay_idle(const session *s)
{
    return rq_len(&s->relay.q) == 0 && s->relay.tx_status == 'I';
}

/* The guard wants the session's real search_path (guard.h): asked once the
 * statement that changed it has run and nothing else is in flight. */
void relay_inject_learn(session *s)
{
    if (pgw_query(conn_out(&s->server), GUARD_SEARCH_PATH_QUERY) == 0 && rq_push(&s->relay.q, INTERNAL))
        guard_search_path_asked(&s->guard);
}

/* ---- backpressure ---------------------------------------------------------- */

/* Flushes dst; if it still holds more than the high-water mark, stops
 * reading src until dst drains. Returns true when src was paused. */
bool relay_pause_if_backed_up(conn *dst, conn *src, bool *paused)
{
    if (conn_out_len(dst) <= RELAY_HIGH_WATER)
        return false;
    if (conn_flush(dst) == 0 && conn_out_len(dst) <= RELAY_HIGH_WATER)
        return false;
    conn_read(src, false);
    *paused = true;
    return true;
}

void relay_client_drained(session *s)
{
    if (s->relay.server_paused) {
        s->relay.server_paused = false;
        conn_read(&s->server, true);
        relay_server_readable(s);
    }
}

/* Nothing holds the client back any more: no statement waits for the
 * catalog, audit room or the search_path, and the queue has room. */
bool relay_client_may_resume(const session *s)
{
    const relay_state *r = &s->relay;
    return r->client_paused && !r->waiting_catalog && !r->waiting_learn && !s->waiting_audit &&
           rq_len(&r->q) < RELAY_QUEUE_MAX / 2;
}

void relay_server_drained(session *s)
{
    if (relay_client_may_resume(s)) {
        s->relay.client_paused = false;
        conn_read(&s->client, true);
        relay_client_readable(s);
    }
}

void relay_start(session *s)
{
    s->relay.q.hooks = &relay_hooks;
    s->relay.q.ctx = s;
    conn_read(&s->server, true);
    conn_read(&s->client, true);
    /* the client may have pipelined queries behind its password */
    relay_client_readable(s);
}

/* ---- client → warehouse ------------------------------------------------------- */

static void protocol_violation(session *s, const char *msg)
{
    pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_PROTOCOL_VIOLATION, .message = msg};
    session_close(s, &e);
}

/* Forwards the poison in place of a denied message and remembers the error. */
static bool forward_denial(session *s, char kind, const char *stmt_name, const pg_error *e)
{
    struct evbuffer *out = conn_out(&s->server);
    int rc = kind == 'P' ? pgw_parse(out, stmt_name, POISON_SQL, NULL, 0) : pgw_query(out, POISON_SQL);
    return rc == 0 && rq_push_poison(&s->relay.q, kind == 'P' ? 'P' : 'Q', e);
}

/* martgate's own Close of statement `name`, ahead of what the client sent
 * next: its CloseComplete is not relayed. */
static bool hidden_close(session *s, const char *name)
{
    relay_queue *q = &s->relay.q;
    return pgw_close(conn_out(&s->server), 'S', name) == 0 && rq_names_note(q, name) && rq_names_end(q) &&
           rq_push(q, HIDDEN_CLOSE);
}

/* Prepares statement `name` again, as the guard has it now (the text
 * forwarded, the client's parameter types), ahead of the Bind at the head
 * of the client's input: martgate's own Close and Parse, whose answers are
 * not relayed, but an error is, in place of the Bind's (the warehouse then
 * skips the Bind). */
static bool reprepare(session *s, const char *name)
{
    relay_queue *q = &s->relay.q;
    const guard_named *e = guard_statement(&s->guard, name);
    if (!e || !e->text)
        return false;
    session_log(s, LOG_DEBUG, "preparing statement \"%s\" again before its Bind", name);
    return hidden_close(s, name) &&
           pgw_parse(conn_out(&s->server), name, e->held ? e->held : e->text, e->types, e->types_len) == 0 &&
           rq_names_note(q, name) && rq_names_end(q) && rq_push(q, HIDDEN_PARSE);
}

/* A statement held for the catalog or for audit room may go on: read the
 * client again, from the held message on. */
static void resume_held(session *s)
{
    if (s->state != SS_READY)
        return;
    s->relay.client_paused = false;
    conn_read(&s->client, true);
    relay_client_readable(s);
    session_flush(s);
}

static void on_catalog_ready(void *arg)
{
    session *s = arg;
    s->relay.waiting_catalog = false;
    resume_held(s);
}

static void on_audit_room(void *arg)
{
    session *s = arg;
    s->waiting_audit = false;
    s->wk->metrics.audit_blocked_seconds += clock_mono_s() - s->audit_wait_since;
    resume_held(s);
}

/* Holds the session's statement until the audit queue has room. */
static void wait_for_audit(session *s)
{
    conn_read(&s->client, false);
    s->relay.client_paused = true;
    s->waiting_audit = true;
    s->audit_wait_since = clock_mono_s();
    audit_loop_wait(s->wk->audit_loop, on_audit_room, s);
}

static void wait_for_catalog(session *s)
{
    catalog_cache *c = worker_catalog(s->wk, s->database);
    conn_read(&s->client, false);
    s->relay.client_paused = true;
    s->relay.waiting_catalog = true;
    if (!c || catalog_cache_wait(c, on_catalog_ready, s) != 0) {
        s->relay.waiting_catalog = false;
        pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_INSUFFICIENT_PRIVILEGE,
                      .message = "the warehouse catalog martgate needs for this statement cannot be read"};
        session_close(s, &e);
    }
}

/* A portal or statement name martgate can follow: at most RELAY_MAX_NAME
 * bytes, no control characters (nothing legitimate has one). */
static bool name_ok(const char *name, char *why, size_t len)
{
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++, n++)
        if (*c < 0x20 || *c == 0x7f) {
            snprintf(why, len, "portal or statement name with a control character");
            return false;
        }
    if (n > RELAY_MAX_NAME) {
        snprintf(why, len, "portal or statement name longer than %d bytes", RELAY_MAX_NAME);
        return false;
    }
    return true;
}

/* Query, Parse or FunctionCall, held whole in `in`: decide and forward.
 * False when the caller must stop (session closing, or waiting). */
static bool handle_statement(session *s, char type, uint32_t len)
{
    struct evbuffer *in = conn_in(&s->client);
    struct evbuffer *out = conn_out(&s->server);
    const char *msg = (const char *)evbuffer_pullup(in, (ev_ssize_t)len + 1);
    if (!msg) {
        session_kill(s);
        return false;
    }
    const char *body = msg + 5;
    size_t blen = len - 4, pos = 0;

    /* A Query (or FunctionCall) inside an extended-protocol batch, after a
     * Flush (asyncpg's COPY): decided like any; the warehouse skips it,
     * unanswered, when the batch failed before it (rq_pop_after_error). */
    if (type == 'F') {
        evbuffer_drain(in, len + 1);
        pg_error e = {.severity = "ERROR", .sqlstate = SQLSTATE_INSUFFICIENT_PRIVILEGE,
                      .message = "function call messages are not allowed through martgate",
                      .detail = "No policy can see inside a FunctionCall message.",
                      .hint = "Call the function from a SQL statement instead."};
        session_log(s, LOG_INFO, "denied a FunctionCall message");
        trail_refused(s, NULL, e.sqlstate, e.message);
        if (forward_denial(s, 'Q', NULL, &e))
            return true;
        session_kill(s);
        return false;
    }

    const char *name = NULL, *sql;
    if (type == 'P')
        name = pgw_read_cstring(body, blen, &pos);
    sql = pgw_read_cstring(body, blen, &pos);
    if ((type == 'P' && !name) || !sql || (type == 'Q' && pos != blen)) {
        protocol_violation(s, type == 'Q' ? "invalid Query message" : "invalid Parse message");
        return false;
    }
    char why[96];
    if (name && !name_ok(name, why, sizeof why)) {
        protocol_violation(s, why);
        return false;
    }
    size_t rest = blen - pos; /* Parse: parameter count and types */
    if (type == 'P' && (rest < 2 || rest != 2 + 4 * (size_t)(((unsigned char)body[pos] << 8) | (unsigned char)body[pos + 1]))) {
        protocol_violation(s, "invalid Parse message: parameter types do not match their count");
        return false;
    }

    if (type == 'P')
        s->relay.in_batch = true;
    relay_queue *q = &s->relay.q;
    size_t names_mark = rq_names_mark(q);
    /* a name the warehouse may hold unseen is closed before a Parse of it */
    bool close_first = type == 'P' && guard_parse_needs_close(&s->guard, name);
    intercept_result res;
    intercept_statement(s, type, name, sql, (const unsigned char *)body + pos, rest, &res);
    take_touched(s);
    if (s->guard.lost) {
        intercept_result_clear(&res);
        if (s->pending_req) {   /* it never reached the warehouse: recorded as skipped */
            trail_finish(s, s->pending_req);
            s->pending_req = NULL;
        }
        return relay_guard_following(s);   /* false: the session ends */
    }
    if (res.verdict != INTERCEPT_ALLOW && res.verdict != INTERCEPT_REPLACE)
        rq_names_rewind(q, names_mark);   /* nothing of it runs */
    bool ok = !q->names_lost;
    if (ok && close_first && (res.verdict == INTERCEPT_ALLOW || res.verdict == INTERCEPT_REPLACE))
        ok = hidden_close(s, name);
    if (ok && (res.verdict == INTERCEPT_ALLOW || res.verdict == INTERCEPT_REPLACE))
        ok = (type != 'P' || rq_names_note(q, name)) && rq_names_end(q);
    if (type == 'Q' && res.verdict != INTERCEPT_WAIT && res.verdict != INTERCEPT_WAIT_AUDIT)
        guard_on_query_message(&s->guard);   /* the Query (or its poison) ends the unnamed statement and portal */
    switch (res.verdict) {
    case INTERCEPT_WAIT:
        /* the message stays in `in`; the catalog wakes us to decide again */
        intercept_result_clear(&res);
        wait_for_catalog(s);
        return false;
    case INTERCEPT_WAIT_AUDIT:
        intercept_result_clear(&res);
        wait_for_audit(s);
        return false;
    case INTERCEPT_ALLOW:
        ok = ok && evbuffer_remove_buffer(in, out, len + 1) == (int)len + 1 &&
             rq_push_req(&s->relay.q, (uint8_t)type, s->pending_req);
        s->pending_req = NULL;
        break;
    case INTERCEPT_REPLACE:
        if (ok)
            ok = (type == 'Q' ? pgw_query(out, res.text)
                              : pgw_parse(out, name, res.text, (const unsigned char *)body + pos, rest)) == 0;
        evbuffer_drain(in, len + 1);
        ok = ok && rq_push_req(&s->relay.q, (uint8_t)type, s->pending_req);
        s->pending_req = NULL;
        break;
    case INTERCEPT_DENY: {
        pg_error e = {.severity = "ERROR", .sqlstate = res.sqlstate[0] ? res.sqlstate : SQLSTATE_INSUFFICIENT_PRIVILEGE,
                      .message = res.message ? res.message : "statement denied by policy",
                      .detail = res.detail, .hint = res.hint, .position = res.position, .parser = res.parser};
        evbuffer_drain(in, len + 1);
        /* the server drops the unnamed statement before it parses; a named
         * one of that name, if any, stays (the Parse fails on it) */
        if (type == 'P' && !*name)
            guard_on_close(&s->guard, 'S', "");
        ok = forward_denial(s, type, name, &e);
        break;
    }
    }
    intercept_result_clear(&res);
    if (s->pending_req) {   /* not attached (out of memory): write it as it is */
        trail_finish(s, s->pending_req);
        s->pending_req = NULL;
    }
    if (!ok) {
        session_log(s, LOG_ERROR, "out of memory relaying a statement");
        session_kill(s);
    }
    return ok;
}

static bool tracked_request(char type)
{
    return type == 'B' || type == 'E' || type == 'D' || type == 'C' || type == 'S';
}


/* Client → warehouse. Messages the relay only counts are approved in place
 * and moved with one evbuffer_remove_buffer per window; Query, Parse,
 * FunctionCall and Terminate stop the scan and are handled whole. */
static scan_result scan_client(session *s, const unsigned char *p, size_t n, size_t *approved,
                               char *bad, size_t badlen)
{
    relay_state *r = &s->relay;
    size_t off = 0;
    while (off + 5 <= n) {
        char type = (char)p[off];
        uint32_t len = pgw_get_u32(p + off + 1);
        *approved = off;
        if (len < 4 || len > 0x3fffffff) {
            snprintf(bad, badlen, "invalid message length");
            return SCAN_BAD;
        }
        switch (type) {
        case 'Q': case 'P': case 'F': case 'X':
            return SCAN_HOLD;
        case 'B': case 'E': case 'D': case 'C': case 'S':
        case 'H': case 'd': case 'c': case 'f':
            break;
        default:
            snprintf(bad, badlen, "invalid frontend message type %d", (unsigned char)type);
            return SCAN_BAD;
        }
        if (rq_len(&r->q) >= RELAY_QUEUE_MAX)
            return SCAN_MORE;
        if (type == 'c' || type == 'f') {
            /* the end of COPY data: a Sync after it is answered again */
            if (r->copy_in)
                r->copy_in = false;
            else if (rq_len(&r->q) && !rq_push(&r->q, COPY_END)) {
                snprintf(bad, badlen, "out of memory");
                return SCAN_BAD;
            }
        }
        /* a Sync the warehouse ignores (in COPY) is not a request */
        bool ignored = type == 'S' && r->copy_in;
        /* before anything can refuse it: the batch lasts until its Sync */
        if (type == 'S' && !ignored)
            r->in_batch = false;
        else if (tracked_request(type) && type != 'S')
            r->in_batch = true;
        struct trail_req *req = NULL;
        if (type == 'B' || type == 'E' || type == 'C') {
            /* the names at the start of the body: the guard follows which
             * portal runs which statement, and so does the audit trail */
            const char *body = (const char *)p + off + 5;
            size_t blen = off + len + 1 <= n ? len - 4 : (n > off + 5 ? n - off - 5 : 0);
            size_t pos = 0;
            if (type == 'C' && blen > 0)
                pos = 1;
            const char *a = pgw_read_cstring(body, blen, &pos);
            const char *b = type == 'B' && a ? pgw_read_cstring(body, blen, &pos) : NULL;
            if (!a || (type == 'B' && !b)) {
                if (off + len + 1 > n && n - off < 5 + 1 + 2 * (RELAY_MAX_NAME + 1))
                    return SCAN_MORE;   /* names not all here yet: wait for them */
                if (off + len + 1 <= n)
                    snprintf(bad, badlen, "invalid %s message: a name is not terminated",
                             type == 'B' ? "Bind" : type == 'E' ? "Execute" : "Close");
                else
                    snprintf(bad, badlen, "portal or statement name longer than %d bytes", RELAY_MAX_NAME);
                return SCAN_BAD;
            }
            if (!name_ok(a, bad, badlen) || (b && !name_ok(b, bad, badlen)))
                return SCAN_BAD;
            if (type == 'B') {
                const char *sqlstate = SQLSTATE_INSUFFICIENT_PRIVILEGE;
                intercept_bind_result br = intercept_bind(s, a, b, &sqlstate, bad, badlen);
                if (br == INTERCEPT_BIND_REPREPARE && !r->reprepared) {
                    snprintf(bad, badlen, "%s", b);
                    r->reprepared = true;
                    return SCAN_REPREPARE;
                }
                r->reprepared = false;
                if (br != INTERCEPT_BIND_GO) {
                    if (br == INTERCEPT_BIND_REPREPARE)   /* again: out of memory */
                        snprintf(bad, badlen, "out of memory preparing statement \"%s\" again", b);
                    r->denied_len = len + 1;
                    r->denied_type = 'B';
                    r->denied_sqlstate = sqlstate;
                    return SCAN_DENY;
                }
            } else if (type == 'E') {
                /* an Execute is a statement the audit log records: it waits,
                 * or is refused, while the log's queue is full */
                audit_status room = audit_room(s->wk->audit);
                if (room == AUDIT_FULL_WAIT) {
                    wait_for_audit(s);
                    return SCAN_MORE;   /* *approved is this message's start */
                }
                if (room == AUDIT_FULL_DENY || !intercept_execute(s, a, bad, badlen)) {
                    if (room == AUDIT_FULL_DENY)
                        snprintf(bad, badlen, "the audit log is not keeping up: statement refused "
                                 "(audit.when_full = deny); try again in a moment");
                    r->denied_len = len + 1;
                    r->denied_type = 'E';
                    r->denied_sqlstate = room == AUDIT_FULL_DENY ? "53400" : SQLSTATE_INSUFFICIENT_PRIVILEGE;
                    return SCAN_DENY;
                }
                take_touched(s);
                if (s->guard.lost)
                    return SCAN_HOLD;   /* the session ends (relay_client_readable) */
                req = trail_execute(s, a);
                if (!rq_names_end(&r->q)) {   /* after the names its run noted */
                    trail_discard(req);
                    snprintf(bad, badlen, "out of memory");
                    return SCAN_BAD;
                }
            } else {
                if (body[0] != 'S' && body[0] != 'P') {
                    snprintf(bad, badlen, "invalid Close message: it closes neither a statement nor a portal");
                    return SCAN_BAD;
                }
                /* a cursor closed as a portal: if the Close fails, the guard learns */
                bool cursor = body[0] == 'P' && guard_cursor(&s->guard, a);
                guard_on_close(&s->guard, body[0], a);
                if ((body[0] == 'S' && !rq_names_note(&r->q, a)) || (cursor && !rq_names_note_kind(&r->q, 'K', a)) ||
                    !rq_names_end(&r->q)) {
                    snprintf(bad, badlen, "out of memory");
                    return SCAN_BAD;
                }
            }
        }
        if (tracked_request(type) && !ignored && !rq_push_req(&r->q, (uint8_t)type, req)) {
            trail_discard(req);
            snprintf(bad, badlen, "out of memory");
            return SCAN_BAD;
        }
        if (off + len + 1 > n) {             /* the rest streams later */
            r->client_remaining = (uint32_t)(off + len + 1 - n);
            *approved = n;
            return SCAN_MORE;
        }
        off += len + 1;
    }
    *approved = off;
    return SCAN_MORE;
}

/* The rest of a message being streamed: 1 when some moved (go on), 0 when
 * none is left to stream, -1 when it waits for more bytes. */
int relay_stream_rest(struct evbuffer *in, struct evbuffer *out, uint32_t *remaining)
{
    if (!*remaining)
        return 0;
    int n = evbuffer_remove_buffer(in, out, *remaining);
    if (n <= 0)
        return -1;
    *remaining -= (uint32_t)n;
    return 1;
}

/* The next window of `in` to scan, or NULL (less than a header buffered, or
 * out of memory: then the session is killed). */
const unsigned char *relay_scan_window(session *s, struct evbuffer *in, size_t *win)
{
    size_t avail = evbuffer_get_length(in);
    if (avail < 5)
        return NULL;
    *win = avail < SCAN_WINDOW ? avail : SCAN_WINDOW;
    const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)*win);
    if (!p)
        session_kill(s);
    return p;
}

/* Moves the approved bytes; false (session killed) when that fails. */
bool relay_move_approved(session *s, struct evbuffer *in, struct evbuffer *out, size_t approved)
{
    if (approved && evbuffer_remove_buffer(in, out, approved) != (int)approved) {
        session_kill(s);
        return false;
    }
    return true;
}

static void too_large(session *s, uint32_t len)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "message of %u bytes exceeds martgate's limit of %zu bytes (limits.max_message_bytes)",
             len + 1, s->cfg->max_message_bytes);
    session_log(s, LOG_WARNING, "%s", msg);
    s->wk->metrics.limits[MG_LIMIT_MAX_MESSAGE_BYTES]++;
    pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_PROGRAM_LIMIT_EXCEEDED, .message = msg};
    session_close(s, &e);
}

/* A refused Bind or Execute at the head of `in`: nothing of it is
 * forwarded; in its place goes one that ends too early (names only, none of
 * the counts that follow them), which the warehouse refuses with an error
 * before it runs anything, whatever statements and portals exist (a name
 * cannot do: the server looks names up by their first 63 bytes, and a
 * client can create any of those). So the error comes exactly where the
 * answer would have, the rest of the batch is skipped until Sync, and the
 * relay swaps the error for martgate's. */
static bool refuse_message(session *s, const char *why)
{
    relay_state *r = &s->relay;
    struct evbuffer *out = conn_out(&s->server);
    size_t have = conn_in_len(&s->client);
    size_t n = have < r->denied_len ? have : r->denied_len;
    evbuffer_drain(conn_in(&s->client), n);
    r->client_discard = (uint32_t)(r->denied_len - n);
    pg_error e = {.severity = "ERROR", .sqlstate = r->denied_sqlstate, .message = why,
                  .hint = strcmp(r->denied_sqlstate, SQLSTATE_INSUFFICIENT_PRIVILEGE) ? NULL : session_deny_hint(s)};
    /* Bind: portal "", statement "" and nothing more; Execute: portal ""
     * without its row limit */
    static const unsigned char bind[] = {'B', 0, 0, 0, 6, 0, 0};
    static const unsigned char execute[] = {'E', 0, 0, 0, 5, 0};
    bool ok = r->denied_type == 'B' ? evbuffer_add(out, bind, sizeof bind) == 0
                                    : evbuffer_add(out, execute, sizeof execute) == 0;
    return ok && rq_push_poison(&r->q, (uint8_t)r->denied_type, &e);
}

void relay_client_readable(session *s)
{
    relay_state *r = &s->relay;
    struct evbuffer *in = conn_in(&s->client);
    struct evbuffer *out = conn_out(&s->server);
    if (evbuffer_get_length(in))
        r->asked = true;
    while (s->state == SS_READY) {
        if (r->client_discard) {   /* the rest of a refused message */
            size_t have = evbuffer_get_length(in);
            size_t n = have < r->client_discard ? have : r->client_discard;
            if (!n)
                break;
            evbuffer_drain(in, n);
            r->client_discard -= (uint32_t)n;
            continue;
        }
        int st = relay_stream_rest(in, out, &r->client_remaining);
        if (st > 0)
            continue;
        if (st < 0)
            break;
        if (rq_len(&r->q) && rq_head(&r->q) == INTERNAL) {
            /* martgate asked for the search_path a statement just changed:
             * nothing of the client goes on until the answer is in (one round
             * trip, only after a change), so the answer is the path the next
             * statement runs with, and that statement is decided against it
             * rather than against every value the path might have */
            conn_read(&s->client, false);
            r->client_paused = true;
            r->waiting_learn = true;
            break;
        }
        if (rq_len(&r->q) >= RELAY_QUEUE_MAX) {
            conn_read(&s->client, false);
            r->client_paused = true;
            break;
        }
        if (relay_pause_if_backed_up(&s->server, &s->client, &r->client_paused))
            break;
        size_t win;
        const unsigned char *p = relay_scan_window(s, in, &win);
        if (!p)
            break;
        size_t approved = 0;
        char bad[1024];
        _Static_assert(sizeof bad > RELAY_MAX_NAME, "bad carries a statement name for SCAN_REPREPARE");
        scan_result res = scan_client(s, p, win, &approved, bad, sizeof bad);
        if (!relay_guard_following(s))
            return;
        if (!relay_move_approved(s, in, out, approved))
            return;
        if (res == SCAN_BAD) {
            session_log(s, LOG_WARNING, "%s", bad);
            protocol_violation(s, bad);
            return;
        }
        if (res == SCAN_REPREPARE) {
            if (!reprepare(s, bad)) {
                session_log(s, LOG_ERROR, "out of memory preparing a statement again");
                session_kill(s);
                return;
            }
            continue;   /* the Bind is met again, its statement current */
        }
        if (res == SCAN_DENY) {
            if (!refuse_message(s, bad)) {
                session_log(s, LOG_ERROR, "out of memory refusing a message");
                session_kill(s);
                return;
            }
            continue;
        }
        if (res == SCAN_MORE) {
            if (approved == 0 && r->client_remaining == 0)
                break;   /* a partial header, or the queue is full */
            continue;
        }
        /* SCAN_HOLD: a Query, Parse, FunctionCall or Terminate is at the head */
        char type;
        uint32_t len;
        pgw_peek_header(in, &type, &len);
        if (type == 'X') {
            /* what the client sent before it goes on to the warehouse and
             * runs, as it would without martgate; the warehouse ends the
             * session when it reads the Terminate */
            session_log(s, LOG_DEBUG, "client sent Terminate");
            evbuffer_drain(in, evbuffer_get_length(in));
            if (!relay_idle(s)) {
                static const unsigned char terminate[5] = {'X', 0, 0, 0, 4};
                evbuffer_add(out, terminate, sizeof terminate);
                conn_flush(&s->server);
                r->client_terminated = true;
            }
            session_close(s, NULL);
            return;
        }
        if (len + 1 > s->cfg->max_message_bytes) {
            too_large(s, len);
            return;
        }
        if (evbuffer_get_length(in) < (size_t)len + 1)
            break;
        if (!handle_statement(s, type, len))
            return;
    }
}
