/*
 * relay: the READY state of a session. Moves protocol messages client →
 * warehouse (every Query/Parse through proxy/intercept, FunctionCall refused)
 * and warehouse → client (streamed, never buffered whole), with bounded
 * buffers and backpressure both ways.
 *
 * Denials keep the protocol's order without martgate guessing it: a denied
 * Query or Parse is replaced by a statement that fails to parse ("poison"),
 * so the warehouse itself answers with an error exactly where the answer
 * would have been, skips the rest of the extended-protocol batch until Sync
 * and fails an open transaction. The relay swaps that error for martgate's.
 * To know which answer belongs to which request, it keeps a queue of the
 * requests in flight and pops one per completion message.
 */
#ifndef MARTGATE_RELAY_H
#define MARTGATE_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/pgwire.h"
#include "proxy/relay_queue.h"

struct session;

/* Longest portal or statement name of a Parse, Bind, Execute or Close
 * (bytes): the guard reads every one to follow what runs, so a longer one is
 * refused (PostgreSQL's own identifiers stop at 63), and so is a name with a
 * control character. */
#define RELAY_MAX_NAME 256

typedef struct {
    relay_queue q;
    /* the refused message (scan_client → refuse_message): its length,
     * sqlstate and, below, type */
    size_t denied_len;
    const char *denied_sqlstate;
    char *learned;               /* the answer to GUARD_SEARCH_PATH_QUERY, while it arrives */
    uint32_t client_remaining;   /* bytes of a streamed client message still to move */
    uint32_t client_discard;     /* bytes of a refused client message still to drop */
    uint32_t server_remaining;   /* bytes of a streamed warehouse message still to move */
    char denied_type;
    char tx_status;              /* last ReadyForQuery status: 'I', 'T' or 'E' */
    bool reprepared;             /* the statement of the Bind at the head was prepared again */
    bool in_batch;               /* extended-protocol messages sent since the last Sync */
    bool copy_in;                /* the warehouse reads COPY data; the client has not ended it */
    bool client_paused, server_paused;
    bool waiting_catalog;        /* a statement waits for the warehouse catalog */
    bool waiting_learn;          /* a statement waits for martgate's SHOW search_path */
    bool client_terminated;      /* Terminate passed on: what is in flight runs to its end */
    bool asked;                  /* the client has sent something since its login */
} relay_state;

#define RELAY_QUEUE_MAX 65536     /* requests in flight before we stop reading the client */
#define RELAY_HIGH_WATER (256 * 1024)

/* None of these frees the session (see session_close), and none flushes:
 * the caller flushes both sides once per event. */
void relay_start(struct session *s);
void relay_client_readable(struct session *s);
void relay_server_readable(struct session *s);
/* The client's (warehouse's) output drained: resume reading the other side. */
void relay_client_drained(struct session *s);
void relay_server_drained(struct session *s);
void relay_free(relay_state *r);
/* True when nothing is in flight and no transaction is open. */
bool relay_idle(const struct session *s);
#endif
