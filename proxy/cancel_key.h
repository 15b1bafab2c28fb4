/*
 * cancel_key: the layout of the process id martgate hands each client in
 * BackendKeyData, so that a CancelRequest that a load balancer sends to
 * another martgate instance names the instance (and, with worker threads, the
 * worker) whose session it is meant for (PgBouncer's peer_id does the same):
 *
 *   bit  31      0 (clients read the pid as a positive int32)
 *   bits 30..23  peer id, 0..255 (config "peer_id"; 0: no peering)
 *   bits 22..18  worker index, 0..31
 *   bits 17..0   random, unique among the worker's live sessions, never 0
 *                (so that no pid is 0)
 *
 * The secret key beside it stays 32 random bits: the pid says where to look,
 * the secret is what proves the canceller was given the key.
 */
#ifndef MARTGATE_CANCEL_KEY_H
#define MARTGATE_CANCEL_KEY_H

#include <stdbool.h>
#include <stdint.h>

#define CANCEL_KEY_PEER_SHIFT   23
#define CANCEL_KEY_PEER_MASK    0xffu
#define CANCEL_KEY_WORKER_SHIFT 18
#define CANCEL_KEY_WORKER_MASK  0x1fu
#define CANCEL_KEY_RANDOM_MASK  0x3ffffu

#define CANCEL_KEY_MAX_PEER   255
#define CANCEL_KEY_MAX_WORKER 31

/* The pid of (peer, worker, random); each is cut to its field's bits. A
 * random part of 0 gives a pid that cancel_key_valid refuses: draw again. */
static inline uint32_t cancel_key_encode(unsigned peer, unsigned worker_index, uint32_t random)
{
    return ((uint32_t)(peer & CANCEL_KEY_PEER_MASK) << CANCEL_KEY_PEER_SHIFT) |
           ((uint32_t)(worker_index & CANCEL_KEY_WORKER_MASK) << CANCEL_KEY_WORKER_SHIFT) |
           (random & CANCEL_KEY_RANDOM_MASK);
}

static inline unsigned cancel_key_peer(uint32_t pid)
{
    return (pid >> CANCEL_KEY_PEER_SHIFT) & CANCEL_KEY_PEER_MASK;
}

static inline unsigned cancel_key_worker(uint32_t pid)
{
    return (pid >> CANCEL_KEY_WORKER_SHIFT) & CANCEL_KEY_WORKER_MASK;
}

static inline uint32_t cancel_key_random(uint32_t pid)
{
    return pid & CANCEL_KEY_RANDOM_MASK;
}

/* Whether martgate could have handed out this pid: bit 31 clear, random
 * part not 0. */
static inline bool cancel_key_valid(uint32_t pid)
{
    return (pid & 0x80000000u) == 0 && cancel_key_random(pid) != 0;
}

#endif
