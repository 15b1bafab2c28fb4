/*
 * adapters/catalog: what the policy engine needs to know about the
 * warehouse's tables — their column lists, to build masked substitutions —
 * fetched over martgate's own libpq connection in a worker thread (never on
 * the event loop), kept as an immutable snapshot and swapped whole when a
 * refresh completes. Sessions that need a table the snapshot lacks ask for a
 * refresh and wait for it without blocking anyone else.
 */
#ifndef MARTGATE_ADAPTERS_CATALOG_H
#define MARTGATE_ADAPTERS_CATALOG_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/warehouse_facts.h"

typedef struct catalog_cache catalog_cache;

catalog_cache *catalog_cache_new(struct event_base *base, const char *name, const char *conninfo,
                                 const char *password, char *err, size_t errlen);
/* Stops the worker (waits for a refresh in flight), calls every waiter (they
 * look again, at whatever replaced this cache) and frees. NULL-safe. */
void catalog_cache_free(catalog_cache *c);

/* Starts a refresh unless one is running. Returns at once. */
void catalog_cache_refresh(catalog_cache *c);

typedef enum {
    CATALOG_FOUND = 0,
    CATALOG_UNKNOWN,     /* no snapshot yet, or the table is newer than it */
    CATALOG_ABSENT,      /* a snapshot taken after the request lacks it */
    CATALOG_FAILED       /* the last refresh failed (the log says why) */
} catalog_status;

/* Columns of schema.table in attribute order; *names is borrowed from the
 * current snapshot and valid until control returns to the event loop.
 * `since` (monotonic seconds, 0 = any) asks for a snapshot not older than
 * that: an older one answers CATALOG_UNKNOWN for missing tables. */
catalog_status catalog_cache_columns(catalog_cache *c, const char *schema, const char *table,
                                     double since, const char ***names, size_t *n);

/* The warehouse's settings, administrative functions and service role, as
 * the current snapshot read them (valid until control returns to the event
 * loop), or NULL before the first snapshot. *generation (may be NULL)
 * changes with every snapshot. */
const warehouse_facts *catalog_cache_facts(const catalog_cache *c, unsigned long *generation);
/* Reads a warehouse's facts now, blocking (for command-line tools); NULL
 * with err filled. wh_free the result. */
warehouse_facts *catalog_read_facts(const char *conninfo, const char *password, char *err, size_t errlen);

/* The warehouse's own schemas (not pg_*, not information_schema) and their
 * tables, views and foreign tables, blocking (for `policy matrix --catalog`):
 * n pairs, sorted; an empty schema has one pair with table NULL. One
 * allocation: free(*schemas) frees it all. 0, or -1 with err filled. */
int catalog_read_relations(const char *conninfo, const char *password, const char ***schemas,
                           const char ***tables, size_t *n, char *err, size_t errlen);

/* The last refresh failed and none is running. */
bool catalog_cache_failed(const catalog_cache *c);

/* Calls cb(arg) on the event-loop thread when the refresh in flight (or the
 * next one) completes; starts one if none runs. */
int catalog_cache_wait(catalog_cache *c, void (*cb)(void *arg), void *arg);
void catalog_cache_wait_cancel(catalog_cache *c, void *arg);

/* Monotonic time in seconds, the clock `since` is measured with. */
double catalog_now(void);

#endif
