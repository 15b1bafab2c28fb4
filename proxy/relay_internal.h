/*
 * relay_internal: what the two halves of the relay, proxy/relay.c (client →
 * warehouse) and proxy/relay_backend.c (warehouse → client), share. Nothing
 * else includes it.
 */
#ifndef MARTGATE_RELAY_INTERNAL_H
#define MARTGATE_RELAY_INTERNAL_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/conn.h"
#include "proxy/session.h"

/* How much of a buffer the scanners look at in one go. */
#define SCAN_WINDOW (64 * 1024)

/* What a scanner found where it stopped. SCAN_DENY: the client message at
 * the approved offset (a Bind or Execute) is refused; the error is in the
 * scanner's `bad` buffer. SCAN_REPREPARE: the Bind there must wait for its
 * statement, whose name is then in `bad` (badlen > RELAY_MAX_NAME), to be
 * prepared again. */
typedef enum { SCAN_MORE, SCAN_HOLD, SCAN_BAD, SCAN_DENY, SCAN_REPREPARE } scan_result;

/* The guard lost track of the session (guard.h): it ends, before anything
 * more of it reaches the warehouse. Returns false then. */
bool relay_guard_following(session *s);
/* Asks the warehouse for the session's search_path (the guard wants it). */
void relay_inject_learn(session *s);
/* Flushes dst; if it still holds more than the high-water mark, stops
 * reading src until dst drains. Returns true when src was paused. */
bool relay_pause_if_backed_up(conn *dst, conn *src, bool *paused);
/* The client's reading may resume: paused, and waiting for nothing. */
bool relay_client_may_resume(const session *s);
/* Moves what is left of a streamed message: 0 nothing left, 1 moved, -1 failed. */
int relay_stream_rest(struct evbuffer *in, struct evbuffer *out, uint32_t *remaining);
/* The next window of `in` to scan, or NULL (less than a header buffered, or
 * out of memory: then the session is killed). */
const unsigned char *relay_scan_window(session *s, struct evbuffer *in, size_t *win);
/* Moves the approved bytes; false (session killed) when that fails. */
bool relay_move_approved(session *s, struct evbuffer *in, struct evbuffer *out, size_t approved);

#endif
