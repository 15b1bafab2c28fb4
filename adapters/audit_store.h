/*
 * audit_store: the warehouse side of the audit sink, the only place that
 * speaks SQL to the audit table. It opens a blocking libpq connection of its
 * own (for the sink's thread, never the event loop), creates the table when
 * absent, and inserts batches of audit records given as one JSON array text.
 * Retried batches cannot produce duplicates: each row's record_id is the
 * SHA-256 of the record and inserts skip ids already present. proxy/audit_pg.c
 * owns the thread, the spool and the order of records.
 */
#ifndef MARTGATE_ADAPTERS_AUDIT_STORE_H
#define MARTGATE_ADAPTERS_AUDIT_STORE_H

#include <stddef.h>

typedef struct audit_store audit_store;
/* A handle that can interrupt the statement a store is running, from any
 * thread; it stays valid after the store is closed. */
typedef struct audit_store_cancel audit_store_cancel;

/* Connects (conninfo is a libpq connection string; password may be NULL),
 * sets a statement timeout, creates schema.table if absent. schema and table
 * are validated lower-case identifiers. NULL with why filled on failure. */
audit_store *audit_store_open(const char *conninfo, const char *password, const char *schema,
                              const char *table, char *why, size_t whylen)
    __attribute__((warn_unused_result));
/* The table as logs name it ("governance"."audit_events"). */
const char *audit_store_table(const audit_store *s);
/* Inserts the records of json_array ("[{...},{...}]"). 0 inserted; 1 the
 * warehouse refused the rows themselves (SQLSTATE class 22 or 23: retrying
 * them as they are cannot help); -1 any other failure (the connection or the
 * warehouse: retry later on a new store). why says what happened. */
int audit_store_insert(audit_store *s, const char *json_array, char *why, size_t whylen)
    __attribute__((warn_unused_result));
void audit_store_close(audit_store *s);

/* NULL when out of memory. */
audit_store_cancel *audit_store_cancel_new(audit_store *s) __attribute__((warn_unused_result));
/* Asks the warehouse to cancel what the store runs now; false if it could not. */
int audit_store_cancel_send(audit_store_cancel *c);
void audit_store_cancel_free(audit_store_cancel *c);

#endif
