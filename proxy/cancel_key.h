/*
 * cancel_key: the layout of the process id martgate hands a client in
 * BackendKeyData, so that any worker of any instance can tell whose session
 * a CancelRequest names without a shared table:
 *
 *   bit 31      0 (clients read the pid as a positive int32)
 *   bits 30..23 the instance's peer_id (0 when peering is off)
 *   bits 22..18 the index of the worker thread that runs the session
 *   bits 17..0  random, unique among that worker's live sessions
 *
 * The secret key beside it stays 32 random bits: the pid only routes.
 */
#ifndef MARTGATE_CANCEL_KEY_H
#define MARTGATE_CANCEL_KEY_H

#include <stdint.h>

#define CANCEL_KEY_MAX_WORKERS 32
#define CANCEL_KEY_MAX_PEER 255

static inline uint32_t cancel_key_pid(unsigned peer_id, unsigned worker_index, uint32_t random)
{
    return ((uint32_t)(peer_id & 0xff) << 23) | ((uint32_t)(worker_index & 0x1f) << 18) | (random & 0x3ffff);
}

static inline unsigned cancel_key_peer(uint32_t pid) { return (pid >> 23) & 0xff; }
static inline unsigned cancel_key_worker(uint32_t pid) { return (pid >> 18) & 0x1f; }

#endif
