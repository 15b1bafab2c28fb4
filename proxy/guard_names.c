/*
 * guard_names: the session's prepared statements, cursors and portals by
 * name (see guard.h): entries in one dense array, found through an open
 * addressing index (linear probing, deletion by backward shift), so a client
 * with thousands of names costs each Bind and Execute a hash, not a scan.
 * A table exists only while it holds an entry: the first add allocates it,
 * the drop of the last frees it (NULL is the empty table).
 */
#include "proxy/guard.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/text_hash.h"

static size_t home(const guard_names *t, const char *name)
{
    return (size_t)text_hash(name, strlen(name)) & (t->nslots - 1);
}

/* The index slot that holds entry i (slots hold index + 1; 0 is empty). */
static size_t slot_of(const guard_names *t, size_t i)
{
    size_t s = home(t, t->v[i].name);
    while (t->slots[s] != i + 1)
        s = (s + 1) & (t->nslots - 1);
    return s;
}

static bool rebuild(guard_names *t, size_t nslots)
{
    assert(nslots && (nslots & (nslots - 1)) == 0);   /* a power of two: home() masks */
    assert(t->n * 2 <= nslots);                       /* at most half full: probes end */
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return false;
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    for (size_t i = 0; i < t->n; i++) {
        size_t s = home(t, t->v[i].name);
        while (t->slots[s])
            s = (s + 1) & (nslots - 1);
        t->slots[s] = (uint32_t)(i + 1);
    }
    return true;
}

guard_named *guard_names_find(const guard_names *t, const char *name)
{
    if (!t || !t->n)
        return NULL;
    for (size_t s = home(t, name); t->slots[s]; s = (s + 1) & (t->nslots - 1)) {
        guard_named *e = &t->v[t->slots[s] - 1];
        if (strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

/* Adds an empty entry for name, not in t; NULL out of memory. */
static guard_named *entry_add(guard_names *t, const char *name)
{
    assert(t->n <= t->cap && t->n * 2 <= t->nslots + 1);
    guard_named *v = grow_array(t->v, &t->cap, t->n + 1, sizeof *t->v, 4);
    if (!v)
        return NULL;
    t->v = v;
    if ((t->n + 1) * 2 > t->nslots && !rebuild(t, t->nslots ? t->nslots * 2 : 8))
        return NULL;
    char *copy = strdup(name);
    if (!copy)
        return NULL;
    size_t i = t->n++;
    memset(&t->v[i], 0, sizeof t->v[i]);
    t->v[i].name = copy;
    size_t s = home(t, copy);
    while (t->slots[s])
        s = (s + 1) & (t->nslots - 1);
    t->slots[s] = (uint32_t)(i + 1);
    return &t->v[i];
}

/* Frees the table *tp, which holds no entry, and leaves NULL in its place. */
static void table_free(guard_names **tp)
{
    guard_names *t = *tp;
    assert(t->n == 0 && t->text_bytes == 0);   /* entry_free took back what each kept */
    free(t->v);
    free(t->slots);
    free(t);
    *tp = NULL;
}

guard_named *guard_names_add(guard_names **tp, const guard_tmpl_ops *tmpl_ops, const char *name)
{
    guard_named *e = guard_names_find(*tp, name);
    if (e)
        return e;
    if (!*tp) {
        *tp = calloc(1, sizeof **tp);
        if (!*tp)
            return NULL;
        (*tp)->tmpl_ops = tmpl_ops;
    }
    e = entry_add(*tp, name);
    if (!e && !(*tp)->n)
        table_free(tp);   /* its first entry could not be added: no table */
    return e;
}

static void entry_free(guard_names *t, guard_named *e)
{
    free(e->name);
    free(e->text);
    free(e->held);
    free(e->types);
    free(e->alts);
    t->text_bytes -= e->text_len + e->held_len + e->types_len + e->alts_len;
    free(e->epoch.path);
    schema_list_clear(&e->effect.schemas);
    if (e->tmpl) {
        assert(t->tmpl_ops);   /* a template came through the guard's operations */
        t->tmpl_ops->release(e->tmpl);
    }
}

/* Leaves the index as it was: the table is freed next (guard_names_drop). */
static void drop_all(guard_names *t)
{
    for (size_t i = 0; i < t->n; i++)
        entry_free(t, &t->v[i]);
    t->n = 0;
}

static void drop_one(guard_names *t, const char *name)
{
    guard_named *e = guard_names_find(t, name);
    if (!e)
        return;
    size_t i = (size_t)(e - t->v), mask = t->nslots - 1;
    /* take entry i out of the index: backward-shift the probe run after it */
    size_t hole = slot_of(t, i);
    for (size_t j = (hole + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
        size_t h = home(t, t->v[t->slots[j] - 1].name);
        /* may the entry at j move into the hole (its home is not in (hole, j])? */
        bool between = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (!between) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole] = 0;
    entry_free(t, e);
    /* the last entry takes its place in the array */
    size_t last = t->n - 1;
    if (i != last) {
        size_t s = slot_of(t, last);
        t->v[i] = t->v[last];
        t->slots[s] = (uint32_t)(i + 1);
    }
    t->n--;
}

void guard_names_drop(guard_names **tp, const char *name)
{
    if (!*tp)
        return;
    if (name)
        drop_one(*tp, name);
    else
        drop_all(*tp);
    if (!(*tp)->n)
        table_free(tp);
}

void guard_names_free(guard_names **tp)
{
    guard_names_drop(tp, NULL);
}
