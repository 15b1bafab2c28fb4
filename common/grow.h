/*
 * grow: the capacity-doubling step every growable array of martgate takes.
 * One place that checks the multiplication for overflow and leaves the array
 * untouched when realloc fails.
 */
#ifndef MARTGATE_GROW_H
#define MARTGATE_GROW_H

#include <stddef.h>

/* Makes items (an array of *cap elements of elem bytes, or NULL) hold at
 * least need elements: doubles from first (or *cap) until it does, and
 * returns the array (items itself when it was large enough), *cap updated.
 * NULL when out of memory or the size would overflow: items is then still
 * valid and *cap unchanged. */
void *grow_array_slow(void *items, size_t *cap, size_t need, size_t elem, size_t first)
    __attribute__((warn_unused_result));
/* (inline: the scanner asks once per token, and a call would cross a library) */
static inline __attribute__((warn_unused_result)) void *grow_array(void *items, size_t *cap, size_t need,
                                                                   size_t elem, size_t first)
{
    return need <= *cap ? items : grow_array_slow(items, cap, need, elem, first);
}

#endif
