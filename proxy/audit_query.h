/*
 * audit_query: the audit writer's treatment of query text (see audit_query.c).
 */
#ifndef MARTGATE_AUDIT_QUERY_H
#define MARTGATE_AUDIT_QUERY_H

#include <jansson.h>

#include "proxy/audit.h"

/* Applies the query_text mode to one record in place: normalized text or
 * none, and the fingerprint; an unparsable text never leaks in normalized
 * mode. Writer thread only. */
void audit_apply_query_mode(audit_query_mode mode, json_t *rec);
/* Frees the calling thread's memo (at writer exit). */
void audit_query_memo_free(void);

#endif
