/*
 * relay: message flow of a READY session. See relay.h for the model.
 *
 * Client → warehouse: Query/Parse are held whole (bounded by
 * max_message_bytes) and go through intercept; FunctionCall is refused;
 * everything else is streamed without being held. Warehouse → client:
 * streamed, except ErrorResponse and ReadyForQuery, which are small and read
 * whole. Each direction stops reading when the other side's output passes
 * RELAY_HIGH_WATER and resumes when it drains to half.
 */
#include "proxy/relay.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/intercept.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"

#define POISON 0x80
/* Fails to parse on any SQL engine, so the warehouse answers it with an
 * error at exactly the place of the statement it stands for. */
#define POISON_SQL "martgate: statement denied"
#define MAX_INSPECTED_ERROR (64 * 1024)

/* ---- the queue of requests in flight ------------------------------------- */

static bool q_grow(relay_queue *q)
{
    size_t ncap = q->cap ? q->cap * 2 : 16;
    uint8_t *k = malloc(ncap);
    if (!k)
        return false;
    for (size_t i = 0; i < q->len; i++)
        k[i] = q->kinds[(q->head + i) % q->cap];
    free(q->kinds);
    q->kinds = k;
    q->cap = ncap;
    q->head = 0;
    return true;
}

static bool q_push(relay_queue *q, uint8_t kind)
{
    if (q->len == q->cap && !q_grow(q))
        return false;
    q->kinds[(q->head + q->len) % q->cap] = kind;
    q->len++;
    return true;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static bool q_push_poison(relay_queue *q, uint8_t kind, const pg_error *e)
{
    if (q->plen == q->pcap) {
        size_t ncap = q->pcap ? q->pcap * 2 : 4;
        pg_error *p = malloc(ncap * sizeof *p);
        if (!p)
            return false;
        for (size_t i = 0; i < q->plen; i++)
            p[i] = q->poison[(q->phead + i) % q->pcap];
        free(q->poison);
        q->poison = p;
        q->pcap = ncap;
        q->phead = 0;
    }
    pg_error *slot = &q->poison[(q->phead + q->plen) % q->pcap];
    slot->severity = "ERROR";
    slot->sqlstate = dup_or_null(e->sqlstate);
    slot->message = dup_or_null(e->message);
    slot->detail = dup_or_null(e->detail);
    slot->hint = dup_or_null(e->hint);
    q->plen++;
    return q_push(q, kind | POISON);
}

static uint8_t q_head(const relay_queue *q) { return q->len ? q->kinds[q->head] : 0; }

static void free_error(pg_error *e)
{
    free((char *)e->sqlstate);
    free((char *)e->message);
    free((char *)e->detail);
    free((char *)e->hint);
}

static void q_pop(relay_queue *q)
{
    if (!q->len)
        return;
    if (q->kinds[q->head] & POISON) {
        free_error(&q->poison[q->phead]);
        q->phead = (q->phead + 1) % q->pcap;
        q->plen--;
    }
    q->head = (q->head + 1) % q->cap;
    q->len--;
}

void relay_free(relay_state *r)
{
    while (r->q.len)
        q_pop(&r->q);
    free(r->q.kinds);
    free(r->q.poison);
    memset(&r->q, 0, sizeof r->q);
}

bool relay_idle(const session *s)
{
    return s->relay.q.len == 0 && s->relay.tx_status == 'I';
}

/* ---- backpressure ---------------------------------------------------------- */

static void pause_reading(struct bufferevent *bev, bool *paused)
{
    if (!*paused) {
        bufferevent_disable(bev, EV_READ);
        *paused = true;
    }
}

static void on_client_drained(struct bufferevent *bev, void *arg)
{
    session *s = arg;
    (void)bev;
    if (s->state == SS_READY && s->relay.server_paused) {
        s->relay.server_paused = false;
        bufferevent_enable(s->server, EV_READ);
        (void)relay_server_readable(s);
    }
}

static void on_server_drained(struct bufferevent *bev, void *arg)
{
    session *s = arg;
    (void)bev;
    if (s->state == SS_READY && s->relay.client_paused) {
        s->relay.client_paused = false;
        bufferevent_enable(s->client, EV_READ);
        (void)relay_client_readable(s);
    }
}

bool relay_start(session *s)
{
    bufferevent_data_cb rd;
    bufferevent_event_cb ev;
    void *arg;
    bufferevent_getcb(s->client, &rd, NULL, &ev, &arg);
    bufferevent_setcb(s->client, rd, on_client_drained, ev, arg);
    bufferevent_getcb(s->server, &rd, NULL, &ev, &arg);
    bufferevent_setcb(s->server, rd, on_server_drained, ev, arg);
    bufferevent_setwatermark(s->client, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
    bufferevent_setwatermark(s->server, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
    bufferevent_enable(s->server, EV_READ);
    bufferevent_enable(s->client, EV_READ);
    /* the client may have pipelined queries behind its password */
    return relay_client_readable(s);
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
    struct evbuffer *out = bufferevent_get_output(s->server);
    int rc = kind == 'P' ? pgw_parse(out, stmt_name, POISON_SQL) : pgw_query(out, POISON_SQL);
    return rc == 0 && q_push_poison(&s->relay.q, kind == 'P' ? 'P' : 'Q', e);
}

/* Query, Parse or FunctionCall, held whole in `in`: decide and forward. */
static bool handle_statement(session *s, char type, uint32_t len)
{
    struct evbuffer *in = bufferevent_get_input(s->client);
    struct evbuffer *out = bufferevent_get_output(s->server);
    const char *msg = (const char *)evbuffer_pullup(in, (ev_ssize_t)len + 1);
    if (!msg) {
        session_free(s);
        return false;
    }
    const char *body = msg + 5;
    size_t blen = len - 4, pos = 0;

    if (type == 'F') {
        evbuffer_drain(in, len + 1);
        pg_error e = {.severity = "ERROR", .sqlstate = SQLSTATE_INSUFFICIENT_PRIVILEGE,
                      .message = "function call messages are not allowed through martgate",
                      .detail = "No policy can see inside a FunctionCall message.",
                      .hint = "Call the function from a SQL statement instead."};
        session_log(s, LOG_INFO, "denied a FunctionCall message");
        return forward_denial(s, 'Q', NULL, &e) ? true : (session_free(s), false);
    }

    const char *name = NULL, *sql;
    if (type == 'P')
        name = pgw_read_cstring(body, blen, &pos);
    sql = pgw_read_cstring(body, blen, &pos);
    if ((type == 'P' && !name) || !sql || (type == 'Q' && pos != blen)) {
        protocol_violation(s, type == 'Q' ? "invalid Query message" : "invalid Parse message");
        return false;
    }
    size_t rest = blen - pos; /* Parse: parameter count and types */
    if (type == 'P' && (rest < 2 || rest != 2 + 4 * (size_t)(((unsigned char)body[pos] << 8) | (unsigned char)body[pos + 1]))) {
        protocol_violation(s, "invalid Parse message: parameter types do not match their count");
        return false;
    }

    intercept_result res;
    intercept_statement(s, type, name, sql, &res);
    bool ok = true;
    switch (res.verdict) {
    case INTERCEPT_ALLOW:
        ok = evbuffer_remove_buffer(in, out, len + 1) == (int)len + 1 && q_push(&s->relay.q, (uint8_t)type);
        break;
    case INTERCEPT_REPLACE:
        if (type == 'Q') {
            ok = pgw_query(out, res.text) == 0;
        } else {
            size_t nlen = strlen(name) + 1, tlen = strlen(res.text) + 1;
            unsigned char hdr[5];
            hdr[0] = 'P';
            pgw_put_u32(hdr + 1, (uint32_t)(4 + nlen + tlen + rest));
            ok = evbuffer_add(out, hdr, 5) == 0 && evbuffer_add(out, name, nlen) == 0 &&
                 evbuffer_add(out, res.text, tlen) == 0 && evbuffer_add(out, body + pos, rest) == 0;
        }
        evbuffer_drain(in, len + 1);
        ok = ok && q_push(&s->relay.q, (uint8_t)type);
        break;
    case INTERCEPT_DENY: {
        pg_error e = {.severity = "ERROR", .sqlstate = res.sqlstate[0] ? res.sqlstate : SQLSTATE_INSUFFICIENT_PRIVILEGE,
                      .message = res.message ? res.message : "statement denied by policy",
                      .detail = res.detail, .hint = res.hint};
        evbuffer_drain(in, len + 1);
        ok = forward_denial(s, type, name, &e);
        break;
    }
    }
    intercept_result_clear(&res);
    if (!ok) {
        session_log(s, LOG_ERROR, "out of memory relaying a statement");
        session_free(s);
    }
    return ok;
}

static bool tracked_request(char type)
{
    return type == 'B' || type == 'E' || type == 'D' || type == 'C' || type == 'S';
}

bool relay_client_readable(session *s)
{
    relay_state *r = &s->relay;
    struct evbuffer *in = bufferevent_get_input(s->client);
    struct evbuffer *out = bufferevent_get_output(s->server);
    while (s->state == SS_READY) {
        if (r->client_remaining) {
            int n = evbuffer_remove_buffer(in, out, r->client_remaining);
            if (n <= 0)
                break;
            r->client_remaining -= (uint32_t)n;
            continue;
        }
        if (evbuffer_get_length(out) > RELAY_HIGH_WATER || r->q.len >= RELAY_QUEUE_MAX) {
            pause_reading(s->client, &r->client_paused);
            break;
        }
        char type;
        uint32_t len;
        if (!pgw_peek_header(in, &type, &len))
            break;
        if (len < 4 || len > 0x3fffffff) {
            protocol_violation(s, "invalid message length");
            return false;
        }
        switch (type) {
        case 'Q':
        case 'P':
        case 'F':
            if (len + 1 > s->cfg->max_message_bytes) {
                char msg[256];
                snprintf(msg, sizeof msg, "message of %u bytes exceeds martgate's limit of %zu bytes (limits.max_message_bytes)",
                         len + 1, s->cfg->max_message_bytes);
                session_log(s, LOG_WARNING, "%s", msg);
                pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_PROGRAM_LIMIT_EXCEEDED, .message = msg};
                session_close(s, &e);
                return false;
            }
            if (evbuffer_get_length(in) < (size_t)len + 1)
                return false;
            if (!handle_statement(s, type, len))
                return false;
            break;
        case 'X':
            session_log(s, LOG_DEBUG, "client sent Terminate");
            evbuffer_drain(in, evbuffer_get_length(in));
            session_close(s, NULL);
            return false;
        case 'B': case 'E': case 'D': case 'C': case 'S':
        case 'H': case 'd': case 'c': case 'f':
            if (tracked_request(type) && !q_push(&r->q, (uint8_t)type)) {
                session_free(s);
                return false;
            }
            r->client_remaining = len + 1;
            break;
        default: {
            char msg[64];
            snprintf(msg, sizeof msg, "invalid frontend message type %d", (unsigned char)type);
            session_log(s, LOG_WARNING, "%s", msg);
            protocol_violation(s, msg);
            return false;
        }
        }
    }
    return s->state == SS_READY;
}

/* ---- warehouse → client ------------------------------------------------------- */

static bool is_extended(uint8_t kind)
{
    kind &= (uint8_t)~POISON;
    return kind == 'P' || kind == 'B' || kind == 'D' || kind == 'E' || kind == 'C';
}

static void pop_if(relay_queue *q, char expected)
{
    if (q->len && (q_head(q) & (uint8_t)~POISON) == (uint8_t)expected)
        q_pop(q);
}

/* ErrorResponse: ours replaces the warehouse's when it answers a poison;
 * in the extended protocol the warehouse now skips to Sync, and so do we. */
static bool relay_error(session *s, uint32_t len)
{
    relay_state *r = &s->relay;
    struct evbuffer *in = bufferevent_get_input(s->server);
    struct evbuffer *out = bufferevent_get_output(s->client);
    uint8_t head = q_head(&r->q);
    if (head & POISON) {
        evbuffer_drain(in, len + 1);
        pgw_error(out, &r->q.poison[r->q.phead]);
    } else {
        evbuffer_remove_buffer(in, out, len + 1);
    }
    while (r->q.len && is_extended(q_head(&r->q)))
        q_pop(&r->q);
    return true;
}

bool relay_server_readable(session *s)
{
    relay_state *r = &s->relay;
    if (s->state != SS_READY)
        return false;
    struct evbuffer *in = bufferevent_get_input(s->server);
    struct evbuffer *out = bufferevent_get_output(s->client);
    for (;;) {
        if (r->server_remaining) {
            int n = evbuffer_remove_buffer(in, out, r->server_remaining);
            if (n <= 0)
                break;
            r->server_remaining -= (uint32_t)n;
            continue;
        }
        if (evbuffer_get_length(out) > RELAY_HIGH_WATER) {
            pause_reading(s->server, &r->server_paused);
            break;
        }
        char type;
        uint32_t len;
        if (!pgw_peek_header(in, &type, &len))
            break;
        if (len < 4 || len > 0x3fffffff) {
            session_log(s, LOG_ERROR, "the warehouse sent an invalid message length %u", len);
            pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_PROTOCOL_VIOLATION,
                          .message = "the warehouse sent an invalid message"};
            session_close(s, &e);
            return false;
        }
        if (type == 'E' && len < MAX_INSPECTED_ERROR) {
            if (evbuffer_get_length(in) < (size_t)len + 1)
                break;
            relay_error(s, len);
            continue;
        }
        if (type == 'Z') {
            if (len != 5) {
                pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_PROTOCOL_VIOLATION,
                              .message = "the warehouse sent an invalid ReadyForQuery"};
                session_close(s, &e);
                return false;
            }
            unsigned char z[6];
            if (evbuffer_copyout(in, z, 6) < 6)
                break;
            r->tx_status = (char)z[5];
            evbuffer_remove_buffer(in, out, 6);
            uint8_t head = q_head(&r->q) & (uint8_t)~POISON;
            if (head == 'S' || head == 'Q' || head == 'F')
                q_pop(&r->q);
            else
                session_log(s, LOG_WARNING, "ReadyForQuery with no Sync/Query in flight (head %d)", head);
            if (s->draining && relay_idle(s)) {
                pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_ADMIN_SHUTDOWN,
                              .message = "terminating connection due to administrator command"};
                session_close(s, &e);
                server_maybe_exit(s->srv);
                return false;
            }
            continue;
        }
        switch (type) {
        case '1': pop_if(&r->q, 'P'); break;
        case '2': pop_if(&r->q, 'B'); break;
        case '3': pop_if(&r->q, 'C'); break;
        case 'T': case 'n': pop_if(&r->q, 'D'); break;
        case 'C': case 'I': case 's': pop_if(&r->q, 'E'); break;
        case 'E': /* too large to inspect: still an error for the queue */
            while (r->q.len && is_extended(q_head(&r->q)))
                q_pop(&r->q);
            break;
        default: break;
        }
        r->server_remaining = len + 1;
    }
    if (r->client_paused && r->q.len < RELAY_QUEUE_MAX / 2 &&
        evbuffer_get_length(bufferevent_get_output(s->server)) <= RELAY_HIGH_WATER) {
        r->client_paused = false;
        bufferevent_enable(s->client, EV_READ);
        return relay_client_readable(s);
    }
    return true;
}
