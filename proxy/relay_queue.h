/*
 * relay_queue: the requests of a session in flight to the warehouse, in the
 * order the warehouse answers them (proxy/relay's bookkeeping). Each entry
 * is a message type (P B D E C S Q F, martgate's own kinds below; POISON
 * when it stands for a denied one), the audit record it completes, the
 * error that replaces a poison's answer, and for Query, Parse, Close and
 * Execute the statement and cursor names whose fate the guard must learn if
 * the warehouse fails or skips it (guard_outcome_failed).
 *
 * The session embeds only the small relay_queue: the entries, their rings
 * and the names live in a struct rq_rings of relay_queue.c, made by the
 * first push (or name noted) and freed again by rq_trim once nothing is in
 * flight, so an idle session holds none of it. Without it the queue is
 * empty: every rq_* below answers so (rq_len 0, rq_head 0, ...).
 */
#ifndef MARTGATE_RELAY_QUEUE_H
#define MARTGATE_RELAY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/pgwire.h"

struct trail_req;

/* What becomes of the entries the queue pops: the relay's to carry out
 * (the queue is bookkeeping and calls nothing else). One table serves every
 * queue; each hook is passed the queue's ctx. done: a request's audit
 * records are complete (interrupted: the session ends with it in flight; it
 * may have run). unsure: a request that named statement ('S') or cursor
 * ('K') `name` failed or was skipped. */
typedef struct {
    void (*done)(void *ctx, struct trail_req *req, bool interrupted);
    void (*unsure)(void *ctx, char what, const char *name);
    /* it did what it asked, and no later request was in flight to touch
     * the name again (NULL: not told) */
    void (*sure)(void *ctx, char what, const char *name);
} rq_hooks;

/* The most entries a ring grows to: a push past it fails as out of memory
 * does. It keeps head + len (less than twice the capacity) within uint32_t;
 * the relay stops reading its client long before (RELAY_QUEUE_MAX). */
#define RQ_MAX_CAP (UINT32_C(1) << 31)

struct rq_rings;

/* The queue (hooks and ctx set before the first push): what must outlast
 * the rings while nothing is in flight. */
typedef struct {
    struct rq_rings *rings;  /* the entries in flight and their names; NULL while none is (rq_trim) */
    const rq_hooks *hooks;   /* the same static table for every session */
    void *ctx;               /* passed to each hook (the relay's session) */
    /* the Query at the head met an error (false again once it is popped,
     * so while nothing is in flight) */
    bool head_failed;
    /* An error in an extended batch whose Sync the client has not sent yet:
     * the warehouse skips every message until that Sync, so each request
     * pushed before it is popped at once as skipped (no answer comes). Set
     * when that leaves nothing in flight: it outlasts the rings. */
    bool skip_to_sync;
    /* out of memory keeping names (the rings too, with nothing in flight):
     * the session ends */
    bool names_lost;
} relay_queue;

#define POISON 0x80
#define INTERNAL 'i'   /* a query of martgate's own: its answers are not relayed */
/* martgate's own Close and Parse of a statement it prepares again before a
 * Bind: their CloseComplete and ParseComplete are not relayed, an error is
 * (in place of the Bind's answer) */
#define HIDDEN_CLOSE 'c'
#define HIDDEN_PARSE 'p'
/* Where the client's CopyDone or CopyFail stands among its requests: no
 * answer; it only tells which Syncs the warehouse ignored in COPY (see
 * rq_copy_started). Popped once it reaches the head. */
#define COPY_END 'z'

bool rq_push_req(relay_queue *q, uint8_t kind, struct trail_req *req);
bool rq_push(relay_queue *q, uint8_t kind);
/* A poison entry of kind: e is the error its answer is replaced with (copied). */
bool rq_push_poison(relay_queue *q, uint8_t kind, const pg_error *e);
/* The requests in flight. */
uint32_t rq_len(const relay_queue *q);
uint8_t rq_head(const relay_queue *q);
struct trail_req *rq_head_req(const relay_queue *q);
/* The error that replaces the answer of the poison at the head (NULL: the
 * head is not one). */
const pg_error *rq_head_poison(const relay_queue *q);

/* The names of the request being pushed, before it is: a statement ('S')
 * or cursor ('K') name each, then rq_names_end. false: out of memory. */
bool rq_names_note_kind(relay_queue *q, char what, const char *name);
bool rq_names_note(relay_queue *q, const char *name);
bool rq_names_end(relay_queue *q);
/* The names noted so far, and forgetting those noted since (the request
 * they were noted for is not pushed after all). */
size_t rq_names_mark(const relay_queue *q);
void rq_names_rewind(relay_queue *q, size_t mark);

/* Pops the head; ok false: it failed or was skipped. COPY_END entries that
 * reach the head go with it. */
void rq_pop_outcome(relay_queue *q, bool ok);
void rq_pop(relay_queue *q);
/* Pops the head if it is a request of type expected (poison or not). */
void rq_pop_if(relay_queue *q, char expected);
/* The same, false when the head is not one (an answer to nothing). */
bool rq_pop_expected(relay_queue *q, char expected);
/* After an error the warehouse skips the rest of an extended batch, the
 * requests queued now and those the client sends before its Sync. */
void rq_pop_after_error(relay_queue *q);
/* A CopyInResponse for the head (see relay_queue.c); true: the client has
 * not ended its COPY data yet. */
bool rq_copy_started(relay_queue *q);
/* Frees the rings (struct rq_rings) while nothing is in flight: an idle
 * session holds none. */
void rq_trim(relay_queue *q);
/* Every entry popped (audit records marked interrupted) and freed. */
void rq_free(relay_queue *q);

#endif
