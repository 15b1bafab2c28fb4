/*
 * adapters/metabase: the conventions of Metabase as a client. Metabase puts
 * a remark in front of every query it runs for a person:
 *   -- Metabase:: userID: 42 queryType: MBQL queryHash: 8a1c...
 * so the audit trail can name the Metabase user behind a shared connection.
 */
#ifndef MARTGATE_ADAPTERS_METABASE_H
#define MARTGATE_ADAPTERS_METABASE_H

#include <stddef.h>

/* Writes "metabase:42" into out and returns 0 when sql starts (after blanks)
 * with Metabase's remark; -1 otherwise. */
int metabase_end_user(const char *sql, char *out, size_t outlen);

#endif
