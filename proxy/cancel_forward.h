/*
 * cancel_forward: sends a cancel whose key names another martgate instance
 * (the peer id in its pid, proxy/cancel_key.h) to that instance, for clients
 * whose load balancer took their CancelRequest to the wrong one. One
 * non-blocking connect per cancel on the server's event loop, an optional
 * PROXY v2 header naming the canceller, the 16-byte packet with martgate's
 * forwarded-cancel code (PG_FORWARDED_CANCEL_CODE, which the peer never
 * forwards again), then close: when written, on error, or after
 * CANCEL_FORWARD_TIMEOUT_MS. At most CANCEL_FORWARD_MAX_IN_FLIGHT at a time;
 * beyond that a cancel is dropped with a rate-limited log line, so one
 * incoming cancel costs at most one outgoing connection and a flood of them
 * costs a bounded number. docs/scaling.md, "Cancels across instances".
 */
#ifndef MARTGATE_CANCEL_FORWARD_H
#define MARTGATE_CANCEL_FORWARD_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"

#define CANCEL_FORWARD_MAX_IN_FLIGHT 64
#define CANCEL_FORWARD_TIMEOUT_MS 2000

typedef struct cancel_forwarder cancel_forwarder;

/* A forwarder on base; *sent counts the cancels written to a peer whole
 * (martgate_cancel_requests_total{result="to_peer"}). NULL out of memory. */
cancel_forwarder *cancel_forwarder_new(struct event_base *base, uint64_t *sent);
/* Closes the forwards still in flight and frees f (NULL is fine). */
void cancel_forwarder_free(cancel_forwarder *f);

/* Starts sending the cancel (pid, key) to peer; client_addr:client_port is
 * the canceller, named in the PROXY header when peer->proxy_protocol and in
 * the log lines. The peer's address is copied: a reload may free peer.
 * 0 when on its way, -1 when dropped (logged): the bound of forwards in
 * flight, out of memory, or a connect that failed at once (and for f NULL). */
int cancel_forward(cancel_forwarder *f, const config_peer *peer, uint32_t pid, uint32_t key,
                   const char *client_addr, int client_port);

#endif
