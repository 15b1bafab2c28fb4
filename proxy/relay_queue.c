/*
 * relay_queue: the requests of a session in flight to the warehouse, in the
 * order it answers them (see relay_queue.h).
 */
#include "proxy/relay_queue.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"

/* The ring's invariants (checked in the ASan/Debug build): lengths within
 * capacities, heads inside the rings, one poison error per poisoned request
 * at most, and the names of requests in flight inside their buffer. */
static void rq_check(const relay_queue *q)
{
    assert(q->cap <= RQ_MAX_CAP && q->pcap <= RQ_MAX_CAP);
    assert(q->len <= q->cap);
    assert(q->cap == 0 || q->head < q->cap);
    assert(q->plen <= q->pcap);
    assert(q->pcap == 0 || q->phead < q->pcap);
    assert(q->plen <= q->len);
    assert(q->names_off + q->names_len <= q->names_cap);
    (void)q;
}

/* The capacity a full ring grows to: twice its own, 4 at first (most
 * sessions have one request in flight); 0 (refused) past RQ_MAX_CAP. */
static uint32_t ring_next_cap(uint32_t cap)
{
    if (cap >= RQ_MAX_CAP)
        return 0;
    return cap ? cap * 2 : 4;
}

static bool q_grow(relay_queue *q)
{
    uint32_t ncap = ring_next_cap(q->cap);
    if (!ncap)
        return false;
    uint8_t *k = malloc(ncap);
    struct trail_req **r = calloc(ncap, sizeof *r);
    if (!k || !r) {
        free(k);
        free(r);
        return false;
    }
    for (uint32_t i = 0; i < q->len; i++) {
        k[i] = q->kinds[(q->head + i) % q->cap];
        r[i] = q->reqs[(q->head + i) % q->cap];
    }
    free(q->kinds);
    free(q->reqs);
    q->kinds = k;
    q->reqs = r;
    q->cap = ncap;
    q->head = 0;
    return true;
}

static bool skipped_after_error(uint8_t kind);

/* Pushes a request; req (may be NULL) is the audit record it completes. */
bool rq_push_req(relay_queue *q, uint8_t kind, struct trail_req *req)
{
    assert(q->hooks && q->hooks->done && q->hooks->unsure);   /* set before the first push */
    if (q->len == q->cap && !q_grow(q))
        return false;
    q->kinds[(q->head + q->len) % q->cap] = kind;
    q->reqs[(q->head + q->len) % q->cap] = req;
    q->len++;
    rq_check(q);
    if (q->skip_to_sync) {
        if ((kind & (uint8_t)~POISON) == 'S') {
            q->skip_to_sync = false;   /* the warehouse answers it, and reads on */
        } else if (skipped_after_error(kind)) {
            assert(q->len == 1);       /* everything before it was skipped already */
            rq_pop_outcome(q, false);
        }
    }
    return true;
}

bool rq_push(relay_queue *q, uint8_t kind)
{
    return rq_push_req(q, kind, NULL);
}

struct trail_req *rq_head_req(const relay_queue *q)
{
    return q->len ? q->reqs[q->head] : NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

bool rq_push_poison(relay_queue *q, uint8_t kind, const pg_error *e)
{
    if (q->plen == q->pcap) {
        uint32_t ncap = ring_next_cap(q->pcap);
        pg_error *p = ncap ? malloc(ncap * sizeof *p) : NULL;
        if (!p)
            return false;
        for (uint32_t i = 0; i < q->plen; i++)
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
    slot->position = e->position;
    slot->parser = e->parser;
    q->plen++;
    return rq_push(q, kind | POISON);
}

uint8_t rq_head(const relay_queue *q) { return q->len ? q->kinds[q->head] : 0; }

/* ---- the names of Query, Parse and Close requests in flight ---------------- */

static bool has_names(uint8_t kind)
{
    return kind == 'Q' || kind == 'P' || kind == 'C' || kind == 'E' || kind == HIDDEN_CLOSE || kind == HIDDEN_PARSE;
}

static bool names_put(relay_queue *q, const char *bytes, size_t n)
{
    if (q->names_off + q->names_len + n > q->names_cap) {
        if (q->names_off)
            memmove(q->names, q->names + q->names_off, q->names_len);
        q->names_off = 0;
        char *b = grow_array(q->names, &q->names_cap, q->names_len + n, 1, 64);
        if (!b)
            return false;
        q->names = b;
    }
    memcpy(q->names + q->names_off + q->names_len, bytes, n);
    q->names_len += n;
    return true;
}

/* One name of the request being pushed (true: kept): a statement ('S') or
 * a cursor ('K'). */
bool rq_names_note_kind(relay_queue *q, char what, const char *name)
{
    return names_put(q, &what, 1) && names_put(q, name, strlen(name) + 1);
}

bool rq_names_note(relay_queue *q, const char *name)
{
    return rq_names_note_kind(q, 'S', name);
}

/* The end of the names of the request being pushed. */
bool rq_names_end(relay_queue *q)
{
    return names_put(q, "", 1);
}

/* Takes the names of the request popped; one that failed or was skipped
 * tells the relay of each (hooks->unsure), one that did what it asked
 * while nothing was in flight behind it tells hooks->sure. */
static void names_take(relay_queue *q, bool ok)
{
    bool alone = q->len == 1;
    while (q->names_len) {
        const char *rec = q->names + q->names_off;
        size_t n = strlen(rec) + 1;   /* a terminator ends every request's names */
        q->names_off += n;
        q->names_len -= n;
        if (n == 1)
            break;
        if (!ok)
            q->hooks->unsure(q->ctx, rec[0], rec + 1);
        else if (alone && q->hooks->sure)
            q->hooks->sure(q->ctx, rec[0], rec + 1);
    }
    if (!q->names_len)
        q->names_off = 0;
}

/* The warehouse started reading COPY data for the request at the head: it
 * ignores the client's Sync and Flush until CopyDone or CopyFail (libpq
 * sends a Sync behind an extended-protocol COPY), so the Syncs queued behind
 * the head before the first COPY_END are not answered: dropped, and so is
 * that COPY_END (it ends this COPY; a Query may hold more than one). Without
 * a COPY_END the client has not ended its data yet: the relay is in COPY
 * mode until it does. */
bool rq_copy_started(relay_queue *q)
{
    if (!q->len)
        return false;   /* nothing it could answer: the queue stays empty (the caller refuses it) */
    uint32_t w = 1;
    bool ended = false;
    for (uint32_t i = 1; i < q->len; i++) {
        uint32_t from = (q->head + i) % q->cap;
        uint8_t k = q->kinds[from];
        if (!ended && (k == 'S' || k == COPY_END)) {
            ended = k == COPY_END;
            continue;
        }
        uint32_t to = (q->head + w++) % q->cap;
        q->kinds[to] = k;
        q->reqs[to] = q->reqs[from];
    }
    q->len = w;
    return !ended;
}


static void free_error(pg_error *e)
{
    free((char *)e->sqlstate);
    free((char *)e->message);
    free((char *)e->detail);
    free((char *)e->hint);
}

/* Pops the head request; ok: it did what it asked (false: it failed, or the
 * warehouse skipped it after an earlier error). */
void rq_pop_outcome(relay_queue *q, bool ok)
{
    if (!q->len)
        return;
    if (has_names(q->kinds[q->head]))
        names_take(q, ok);
    if (q->reqs[q->head]) {
        q->hooks->done(q->ctx, q->reqs[q->head], false);
        q->reqs[q->head] = NULL;
    }
    if (q->kinds[q->head] & POISON) {
        assert(q->plen > 0);   /* every poisoned request has its error */
        free_error(&q->poison[q->phead]);
        q->phead = (q->phead + 1) % q->pcap;
        q->plen--;
    }
    q->head = (q->head + 1) % q->cap;
    q->len--;
    while (q->len && q->kinds[q->head] == COPY_END) {
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    rq_check(q);
}

void rq_pop(relay_queue *q) { rq_pop_outcome(q, true); }

static bool is_extended(uint8_t kind)
{
    kind &= (uint8_t)~POISON;
    return kind == 'P' || kind == 'B' || kind == 'D' || kind == 'E' || kind == 'C' || kind == HIDDEN_CLOSE ||
           kind == HIDDEN_PARSE;
}

/* What the warehouse skips after an error in an extended batch: every
 * extended message, and a Query or FunctionCall sent inside the batch. */
static bool skipped_after_error(uint8_t kind)
{
    uint8_t k = kind & (uint8_t)~POISON;
    return is_extended(kind) || k == 'Q' || k == 'F';
}

void rq_pop_if(relay_queue *q, char expected)
{
    if (q->len && (rq_head(q) & (uint8_t)~POISON) == (uint8_t)expected)
        rq_pop(q);
}

/* A ParseComplete, BindComplete or CloseComplete answers the request at the
 * head or nothing: otherwise martgate has lost track of what the warehouse
 * runs, and the session must end (false). */
bool rq_pop_expected(relay_queue *q, char expected)
{
    if (!q->len || (rq_head(q) & (uint8_t)~POISON) != (uint8_t)expected)
        return false;
    rq_pop(q);
    return true;
}

/* After an error the warehouse skips the rest of an extended batch, up to
 * its Sync: a Query or FunctionCall inside the batch too (it answers none
 * of them). A Query's own error leaves it at the head (its ReadyForQuery
 * pops it). */
void rq_pop_after_error(relay_queue *q)
{
    if (!q->len || !is_extended(rq_head(q)))
        return;
    while (q->len && skipped_after_error(rq_head(q)))
        rq_pop_outcome(q, false);
    if (!q->len)
        q->skip_to_sync = true;   /* its Sync is still to come */
}

void rq_trim(relay_queue *q)
{
    if (q->len || q->plen || q->names_len)
        return;
    free(q->kinds);
    free(q->reqs);
    free(q->poison);
    free(q->names);
    q->kinds = NULL;
    q->reqs = NULL;
    q->poison = NULL;
    q->names = NULL;
    q->cap = q->head = q->pcap = q->phead = 0;
    q->names_off = q->names_cap = 0;
}

void rq_free(relay_queue *q)
{
    while (q->len) {
        struct trail_req *r = rq_head_req(q);
        if (r) {
            q->hooks->done(q->ctx, r, true);
            q->reqs[q->head] = NULL;
        }
        rq_pop(q);
    }
    free(q->kinds);
    free(q->reqs);
    free(q->poison);
    free(q->names);
    memset(q, 0, sizeof *q);
}
