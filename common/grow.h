/*
 * grow: the capacity-doubling step every growable array of martgate takes.
 * One place that checks the multiplication for overflow and leaves the array
 * untouched when realloc fails.
 */
#ifndef MARTGATE_GROW_H
#define MARTGATE_GROW_H

#include <stddef.h>

/* Makes *items (of *cap elements of elem bytes) hold at least need
 * elements: doubles from first (or *cap) until it does. 0, or -1 when out of
 * memory or the size would overflow (then *items and *cap are unchanged). */
int grow_array(void **items, size_t *cap, size_t need, size_t elem, size_t first)
    __attribute__((warn_unused_result));

#endif
