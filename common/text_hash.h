/*
 * text_hash: FNV-1a over bytes, for martgate's bounded lookup tables (the
 * decision memo, the audit writer's memos, the catalog cache). Not a defence
 * against collisions: every table compares the whole key after the hash.
 */
#ifndef MARTGATE_TEXT_HASH_H
#define MARTGATE_TEXT_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t text_hash(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

#endif
