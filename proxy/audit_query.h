/*
 * audit_query: the audit writer's treatment of query text (see audit_query.c).
 */
#ifndef MARTGATE_AUDIT_QUERY_H
#define MARTGATE_AUDIT_QUERY_H

#include <stddef.h>

#include "proxy/audit.h"
#include "proxy/jsonw.h"

/* Appends the members a statement's text gives its record, by query_text
 * mode: "fingerprint", "query" (normalized, full or absent) and
 * "query_unparsable" when the parser rejects the text (whose text then never
 * leaks in normalized mode). normalized may be NULL: it is made here.
 * Writer thread only. */
void audit_query_members(audit_query_mode mode, const char *query, size_t qlen, const char *normalized,
                         size_t nlen, jsonw *w);
/* Frees the calling thread's memo (at writer exit). */
void audit_query_memo_free(void);

#endif
