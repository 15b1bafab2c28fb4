/*
 * relay_backend: the warehouse → client half of a READY session's relay
 * (proxy/relay.c is the client → warehouse half). Answers are streamed,
 * except ErrorResponse and ReadyForQuery, which are small and read whole:
 * they complete requests in the relay queue, with their audit records, and
 * tell the guard what became of statements and cursors. martgate's own
 * queries' answers (the search_path it asks for) are taken, not relayed.
 */
#include "proxy/relay.h"

#include <assert.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proxy/audit_trail.h"
#include "proxy/relay_internal.h"
#include "proxy/relay_queue.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* ---- warehouse → client ------------------------------------------------------- */

/* ParameterStatus: application_name changes (pgjdbc sets it with SET after
 * login) are what the audit trail reports from then on. */
static void note_parameter(session *s, const char *body, size_t len)
{
    size_t pos = 0;
    const char *name = pgw_read_cstring(body, len, &pos);
    const char *value = name ? pgw_read_cstring(body, len, &pos) : NULL;
    if (!value || strcmp(name, "application_name") != 0)
        return;
    char *copy = strdup(value);
    if (!copy)
        return;
    free(s->application_name_set);
    s->application_name_set = copy;
    s->application_name = copy;
    s->application_name_serial++;
}

/* Tells the audit trail what the head request's answer says. */
static void note_answer(struct trail_req *req, char type, const unsigned char *msg, uint32_t len, bool whole)
{
    const char *body = (const char *)msg + 5;
    size_t blen = len - 4;
    if (type == 'D') {
        trail_count_row(req);
    } else if (type == 'C' || type == 'I' || type == 's') {
        trail_answer(req, type, whole && type == 'C' && memchr(body, 0, blen) ? body : "");
    } else if (type == 'E') {
        trail_answer(req, 'E', whole ? pgw_error_field(body, blen, 'C') : NULL);
    }
}

/* Warehouse → client. Completion messages pop the request queue in place;
 * the scan stops at an ErrorResponse answering a poison (to swap it) and
 * after a ReadyForQuery that leaves a draining session idle. */
static scan_result scan_server(session *s, const unsigned char *p, size_t n, size_t *approved)
{
    relay_state *r = &s->relay;
    size_t off = 0;
    while (off + 5 <= n) {
        char type = (char)p[off];
        uint32_t len = pgw_get_u32(p + off + 1);
        *approved = off;
        if (len < 4 || len > 0x3fffffff)
            return SCAN_BAD;
        if (rq_head(&r->q) == INTERNAL)
            return SCAN_HOLD;
        struct trail_req *req = rq_head_req(&r->q);
        if (req)
            note_answer(req, type, p + off, len, off + len + 1 <= n);
        if ((type == 'C' || type == 'E') && r->copy_in)
            r->copy_in = false;   /* the COPY ended (an error ends it early) */
        /* a Sync is answered by ReadyForQuery alone (an error or notice may
         * come first): anything else means the queue is not the warehouse's */
        if ((rq_head(&r->q) & (uint8_t)~POISON) == 'S' && type && strchr("123CDTnsIGHtW", type)) {
            session_log(s, LOG_ERROR, "lost track of the requests in flight: '%c' answers a Sync", type);
            return SCAN_BAD;
        }
        switch (type) {
        case 'G':
            if (!rq_head(&r->q)) {
                session_log(s, LOG_ERROR, "lost track of the requests in flight: CopyInResponse with nothing in flight");
                return SCAN_BAD;
            }
            r->copy_in = rq_copy_started(&r->q);
            break;
        case 'E':
            if (rq_head(&r->q) & POISON)
                return SCAN_HOLD;
            if (rq_head(&r->q) == 'Q')
                r->q.head_failed = true;   /* its later statements did not run */
            rq_pop_after_error(&r->q);
            break;
        case 'Z': {
            if (len != 5)
                return SCAN_BAD;
            if (off + 6 > n)
                return SCAN_MORE;
            char prev = r->tx_status;
            r->tx_status = (char)p[off + 5];
            uint8_t head = rq_head(&r->q) & (uint8_t)~POISON;
            if (head != 'S' && head != 'Q' && head != 'F') {
                session_log(s, LOG_ERROR, "lost track of the requests in flight: ReadyForQuery with no Sync or "
                            "Query in flight");
                return SCAN_BAD;
            }
            rq_pop_outcome(&r->q, !r->q.head_failed);
            r->q.head_failed = false;
            guard_on_ready_for_query(&s->guard, prev, r->tx_status);
            if (s->guard.lost)
                return SCAN_HOLD;   /* the session ends (relay_server_readable) */
            if (guard_wants_search_path(&s->guard) && rq_len(&r->q) == 0 && r->client_remaining == 0)
                relay_inject_learn(s);
            if (s->draining && relay_idle(s)) {
                *approved = off + 6;
                return SCAN_HOLD;
            }
            break;
        }
        case 'S':
            if (off + len + 1 <= n)
                note_parameter(s, (const char *)p + off + 5, len - 4);
            break;
        case '1':
            if (rq_head(&r->q) == HIDDEN_PARSE)
                return SCAN_HOLD;   /* answers martgate's own Parse: dropped */
            if (!rq_pop_expected(&r->q, 'P'))
                return SCAN_BAD;
            break;
        case '2':
            if (!rq_pop_expected(&r->q, 'B'))
                return SCAN_BAD;
            break;
        case '3':
            if (rq_head(&r->q) == HIDDEN_CLOSE)
                return SCAN_HOLD;
            if (!rq_pop_expected(&r->q, 'C'))
                return SCAN_BAD;
            break;
        case 'T': case 'n': rq_pop_if(&r->q, 'D'); break;
        case 'C': case 'I': case 's': rq_pop_if(&r->q, 'E'); break;
        default: break;
        }
        if (off + len + 1 > n) {
            r->server_remaining = (uint32_t)(off + len + 1 - n);
            *approved = n;
            return SCAN_MORE;
        }
        off += len + 1;
    }
    *approved = off;
    return SCAN_MORE;
}

/* One message answering martgate's own SHOW search_path: consumed here. */
static void take_internal_answer(session *s, char type, uint32_t len)
{
    relay_state *r = &s->relay;
    struct evbuffer *in = conn_in(&s->server);
    if (type == 'D') {
        const unsigned char *m = evbuffer_pullup(in, (ev_ssize_t)len + 1);
        /* DataRow: int16 columns, int32 length, bytes */
        if (m && len >= 10 && ((m[5] << 8) | m[6]) == 1) {
            uint32_t vlen = pgw_get_u32(m + 7);
            if (vlen != 0xffffffffu && 10 + (size_t)vlen <= (size_t)len + 1) {
                free(r->learned);
                r->learned = strndup((const char *)m + 11, vlen);
            }
        }
    } else if (type == 'Z') {
        unsigned char z[6];
        evbuffer_copyout(in, z, 6);
        r->tx_status = (char)z[5];
        rq_pop(&r->q);
        guard_search_path_answer(&s->guard, r->learned, r->tx_status);
        free(r->learned);
        r->learned = NULL;
        r->waiting_learn = false;   /* a held statement goes on (see the end of relay_server_readable) */
        if (guard_wants_search_path(&s->guard) && rq_len(&r->q) == 0)
            relay_inject_learn(s);
    }
    evbuffer_drain(in, len + 1);
}

void relay_server_readable(session *s)
{
    relay_state *r = &s->relay;
    struct evbuffer *in = conn_in(&s->server);
    struct evbuffer *out = conn_out(&s->client);
    while (s->state == SS_READY) {
        int st = relay_stream_rest(in, out, &r->server_remaining);
        if (st > 0)
            continue;
        if (st < 0)
            break;
        if (relay_pause_if_backed_up(&s->client, &s->server, &r->server_paused))
            break;
        size_t win;
        const unsigned char *p = relay_scan_window(s, in, &win);
        if (!p)
            break;
        size_t approved = 0;
        scan_result res = scan_server(s, p, win, &approved);
        if (!relay_move_approved(s, in, out, approved) || !relay_guard_following(s))
            return;
        if (res == SCAN_BAD) {
            session_log(s, LOG_ERROR, "the warehouse sent an invalid or unexpected message");
            pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_PROTOCOL_VIOLATION,
                          .message = "the warehouse sent an invalid or unexpected message"};
            session_close(s, &e);
            return;
        }
        if (res == SCAN_MORE) {
            if (approved == 0 && r->server_remaining == 0)
                break;
            continue;
        }
        if (s->draining && relay_idle(s)) {
            pg_error e = {.severity = "FATAL", .sqlstate = SQLSTATE_ADMIN_SHUTDOWN,
                          .message = "terminating connection due to administrator command"};
            session_close(s, &e);
            return;
        }
        char type;
        uint32_t len;
        pgw_peek_header(in, &type, &len);
        if (evbuffer_get_length(in) < (size_t)len + 1)
            break;
        if (rq_head(&r->q) == INTERNAL) {
            take_internal_answer(s, type, len);
            if (!relay_guard_following(s))
                return;
            continue;
        }
        if (rq_head(&r->q) == HIDDEN_CLOSE || rq_head(&r->q) == HIDDEN_PARSE) {
            evbuffer_drain(in, len + 1);   /* its CloseComplete or ParseComplete */
            rq_pop(&r->q);
            continue;
        }
        /* an ErrorResponse answering a poison is at the head: swap in ours,
         * unless the transaction had failed already: the statement would
         * have met the warehouse's 25P02 (the poison's syntax error comes
         * first there), which says nothing of it; but a syntax error of the
         * client's own text is what the warehouse's parser would say first */
        evbuffer_drain(in, len + 1);
        const pg_error *ours = rq_head_poison(&r->q);
        assert(ours);   /* the scan holds only at an ErrorResponse for a poison here */
        if (r->tx_status == 'E' && !ours->parser) {
            pg_error aborted = {.severity = "ERROR", .sqlstate = SQLSTATE_IN_FAILED_TRANSACTION,
                                .message = "current transaction is aborted, commands ignored until end of "
                                           "transaction block"};
            pgw_error(out, &aborted);
        } else {
            pgw_error(out, ours);
        }
        rq_pop_after_error(&r->q);
    }
    if (s->state == SS_READY && relay_client_may_resume(s) && conn_out_len(&s->server) <= RELAY_HIGH_WATER) {
        r->client_paused = false;
        conn_read(&s->client, true);
        relay_client_readable(s);
    }
}
