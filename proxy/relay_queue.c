/*
 * relay_queue: the requests of a session in flight to the warehouse, in the
 * order it answers them (see relay_queue.h).
 */
#include "proxy/relay_queue.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"

/* The entries in flight: rings in the order of the requests. One per queue
 * while anything is in flight (or noted for the request being pushed). */
struct rq_rings {
    uint8_t *kinds;          /* ring of message types: P B D E C S Q F; 0x80 = poison */
    struct trail_req **reqs; /* the same ring: audit records a Query/Execute completes */
    pg_error *poison;        /* ring of the errors that replace poison answers */
    uint32_t cap, head, len;    /* of kinds and reqs: entries allocated, the first, in flight */
    uint32_t pcap, phead, plen; /* the same for poison */
    /* In the same order, for each Query, Parse and Close (not poison): the
     * statement and cursor names whose fate the guard must learn if it fails
     * or is skipped, each 'S' (or 'K') name NUL, then a NUL. (size_t: nothing
     * bounds the names of all the requests in flight together.) */
    char *names;
    size_t names_off, names_len, names_cap;
};

/* The ring's invariants (checked in the ASan/Debug build): lengths within
 * capacities, heads inside the rings, one poison error per poisoned request
 * at most, and the names of requests in flight inside their buffer. */
static void rq_check(const struct rq_rings *q)
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

/* The rings, made empty when the queue has none; NULL when out of memory
 * (the push or note fails as a ring that cannot grow does). */
static struct rq_rings *rings_of(relay_queue *q)
{
    if (!q->rings)
        q->rings = calloc(1, sizeof *q->rings);
    return q->rings;
}

static void rings_free(struct rq_rings *q)
{
    free(q->kinds);
    free(q->reqs);
    free(q->poison);
    free(q->names);
    free(q);
}

/* The capacity a full ring grows to: twice its own, 4 at first (most
 * sessions have one request in flight); 0 (refused) past RQ_MAX_CAP. */
static uint32_t ring_next_cap(uint32_t cap)
{
    if (cap >= RQ_MAX_CAP)
        return 0;
    return cap ? cap * 2 : 4;
}

static bool q_grow(struct rq_rings *q)
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
    struct rq_rings *g = rings_of(q);
    if (!g || (g->len == g->cap && !q_grow(g)))
        return false;
    g->kinds[(g->head + g->len) % g->cap] = kind;
    g->reqs[(g->head + g->len) % g->cap] = req;
    g->len++;
    rq_check(g);
    if (q->skip_to_sync) {
        if ((kind & (uint8_t)~POISON) == 'S') {
            q->skip_to_sync = false;   /* the warehouse answers it, and reads on */
        } else if (skipped_after_error(kind)) {
            assert(g->len == 1);       /* everything before it was skipped already */
            rq_pop_outcome(q, false);
        }
    }
    return true;
}

bool rq_push(relay_queue *q, uint8_t kind)
{
    return rq_push_req(q, kind, NULL);
}

uint32_t rq_len(const relay_queue *q) { return q->rings ? q->rings->len : 0; }

struct trail_req *rq_head_req(const relay_queue *q)
{
    return rq_len(q) ? q->rings->reqs[q->rings->head] : NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* Room for one more poison error; false when out of memory. */
static bool poison_room(struct rq_rings *q)
{
    if (q->plen < q->pcap)
        return true;
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
    return true;
}

bool rq_push_poison(relay_queue *q, uint8_t kind, const pg_error *e)
{
    struct rq_rings *g = rings_of(q);
    if (!g || !poison_room(g))
        return false;
    pg_error *slot = &g->poison[(g->phead + g->plen) % g->pcap];
    slot->severity = "ERROR";
    slot->sqlstate = dup_or_null(e->sqlstate);
    slot->message = dup_or_null(e->message);
    slot->detail = dup_or_null(e->detail);
    slot->hint = dup_or_null(e->hint);
    slot->position = e->position;
    slot->parser = e->parser;
    g->plen++;
    return rq_push(q, kind | POISON);
}

uint8_t rq_head(const relay_queue *q) { return rq_len(q) ? q->rings->kinds[q->rings->head] : 0; }

const pg_error *rq_head_poison(const relay_queue *q)
{
    if (!(rq_head(q) & POISON))
        return NULL;
    assert(q->rings->plen > 0);   /* every poisoned request has its error */
    return &q->rings->poison[q->rings->phead];
}

/* ---- the names of Query, Parse and Close requests in flight ---------------- */

static bool has_names(uint8_t kind)
{
    return kind == 'Q' || kind == 'P' || kind == 'C' || kind == 'E' || kind == HIDDEN_CLOSE || kind == HIDDEN_PARSE;
}

static bool names_put(struct rq_rings *q, const char *bytes, size_t n)
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
    struct rq_rings *g = rings_of(q);
    return g && names_put(g, &what, 1) && names_put(g, name, strlen(name) + 1);
}

bool rq_names_note(relay_queue *q, const char *name)
{
    return rq_names_note_kind(q, 'S', name);
}

/* The end of the names of the request being pushed. */
bool rq_names_end(relay_queue *q)
{
    struct rq_rings *g = rings_of(q);
    return g && names_put(g, "", 1);
}

size_t rq_names_mark(const relay_queue *q) { return q->rings ? q->rings->names_len : 0; }

void rq_names_rewind(relay_queue *q, size_t mark)
{
    if (!q->rings)
        return;   /* nothing was noted (mark is 0) */
    assert(mark <= q->rings->names_len);
    q->rings->names_len = mark;
}

/* Takes the names of the request popped; one that failed or was skipped
 * tells the relay of each (hooks->unsure), one that did what it asked
 * while nothing was in flight behind it tells hooks->sure. */
static void names_take(relay_queue *q, bool ok)
{
    struct rq_rings *g = q->rings;
    bool alone = g->len == 1;
    while (g->names_len) {
        const char *rec = g->names + g->names_off;
        size_t n = strlen(rec) + 1;   /* a terminator ends every request's names */
        g->names_off += n;
        g->names_len -= n;
        if (n == 1)
            break;
        if (!ok)
            q->hooks->unsure(q->ctx, rec[0], rec + 1);
        else if (alone && q->hooks->sure)
            q->hooks->sure(q->ctx, rec[0], rec + 1);
    }
    if (!g->names_len)
        g->names_off = 0;
}

/* The warehouse started reading COPY data for the request at the head: it
 * ignores the client's Sync and Flush until CopyDone or CopyFail (libpq
 * sends a Sync behind an extended-protocol COPY), so the Syncs queued behind
 * the head before the first COPY_END are not answered: dropped, and so is
 * that COPY_END (it ends this COPY; a Query may hold more than one). Without
 * a COPY_END the client has not ended its data yet: the relay is in COPY
 * mode until it does. With nothing in flight (an answer to nothing) the
 * queue stays empty. */
bool rq_copy_started(relay_queue *q)
{
    if (!rq_len(q))
        return false;   /* nothing it could answer: the queue stays empty (the caller refuses it) */
    struct rq_rings *g = q->rings;
    uint32_t w = 1;
    bool ended = false;
    for (uint32_t i = 1; i < g->len; i++) {
        uint32_t from = (g->head + i) % g->cap;
        uint8_t k = g->kinds[from];
        if (!ended && (k == 'S' || k == COPY_END)) {
            ended = k == COPY_END;
            continue;
        }
        uint32_t to = (g->head + w++) % g->cap;
        g->kinds[to] = k;
        g->reqs[to] = g->reqs[from];
    }
    g->len = w;
    return !ended;
}


static void free_error(pg_error *e)
{
    free((char *)e->sqlstate);
    free((char *)e->message);
    free((char *)e->detail);
    free((char *)e->hint);
}

/* Advances the head past one entry, then past the COPY_END entries that
 * reach it. */
static void head_advance(struct rq_rings *g)
{
    do {
        g->head = (g->head + 1) % g->cap;
        g->len--;
    } while (g->len && g->kinds[g->head] == COPY_END);
}

/* Pops the head request; ok: it did what it asked (false: it failed, or the
 * warehouse skipped it after an earlier error). */
void rq_pop_outcome(relay_queue *q, bool ok)
{
    if (!rq_len(q))
        return;
    struct rq_rings *g = q->rings;
    if (has_names(g->kinds[g->head]))
        names_take(q, ok);
    if (g->reqs[g->head]) {
        q->hooks->done(q->ctx, g->reqs[g->head], false);
        g->reqs[g->head] = NULL;
    }
    if (g->kinds[g->head] & POISON) {
        assert(g->plen > 0);   /* every poisoned request has its error */
        free_error(&g->poison[g->phead]);
        g->phead = (g->phead + 1) % g->pcap;
        g->plen--;
    }
    head_advance(g);
    rq_check(g);
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
    if (rq_len(q) && (rq_head(q) & (uint8_t)~POISON) == (uint8_t)expected)
        rq_pop(q);
}

/* A ParseComplete, BindComplete or CloseComplete answers the request at the
 * head or nothing: otherwise martgate has lost track of what the warehouse
 * runs, and the session must end (false). */
bool rq_pop_expected(relay_queue *q, char expected)
{
    if (!rq_len(q) || (rq_head(q) & (uint8_t)~POISON) != (uint8_t)expected)
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
    if (!rq_len(q) || !is_extended(rq_head(q)))
        return;
    while (rq_len(q) && skipped_after_error(rq_head(q)))
        rq_pop_outcome(q, false);
    if (!rq_len(q))
        q->skip_to_sync = true;   /* its Sync is still to come */
}

void rq_trim(relay_queue *q)
{
    struct rq_rings *g = q->rings;
    if (!g || g->len || g->plen || g->names_len)
        return;
    assert(!q->head_failed);   /* it goes with the Query at the head */
    rings_free(g);
    q->rings = NULL;
}

void rq_free(relay_queue *q)
{
    while (rq_len(q)) {
        struct trail_req *r = rq_head_req(q);
        if (r) {
            q->hooks->done(q->ctx, r, true);
            q->rings->reqs[q->rings->head] = NULL;
        }
        rq_pop(q);
    }
    if (q->rings)
        rings_free(q->rings);
    memset(q, 0, sizeof *q);
}
