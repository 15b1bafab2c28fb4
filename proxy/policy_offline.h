/*
 * policy_offline: deciding one SQL text for one principal without a session,
 * the way the daemon does (names resolved against a search_path, the offline
 * placeholder hash key, a JSON stand-in for the catalog's column lists).
 * Shared by `martgate policy explain` and `martgate policy replay`.
 */
#ifndef MARTGATE_POLICY_OFFLINE_H
#define MARTGATE_POLICY_OFFLINE_H

#include <stddef.h>

#include "common/json_doc.h"
#include "common/warehouse_json.h"
#include "policy/analyze.h"
#include "policy/decide.h"
#include "policy/policy.h"

/* The analyze context for who in database: names resolve against path (n
 * schemas; an empty list is an empty search_path), or, when path is NULL,
 * against the policy's starting search_path for who, returned in *start
 * (malloc'd array of borrowed names: free it) and *n_start. 0, or -1 out of
 * memory. actx borrows path/start. */
int policy_offline_context(const policy_t *p, const decide_principal *who, const char *database,
                           const char *const *path, size_t n, const char ***start, size_t *n_start,
                           analyze_context *actx);

/* Analyzes sql under actx and decides it for who under p: wh (NULL: settings
 * are unknown), cols (NULL: no column lists; else {"schema.table": [...]}).
 * 0 with *an and *d filled (derr: decide's own error, or ""), or 1 when the
 * SQL does not parse (aerr filled). Free *an with analysis_free either way. */
int policy_offline_decide(const policy_t *p, const decide_principal *who, const analyze_context *actx,
                          const warehouse_facts *wh, const json_doc *cols, const char *sql, analysis **an,
                          analyze_error *aerr, decision *d, char *derr, size_t derrlen);

/* `martgate policy replay` (proxy/cmd_policy_replay.c). */
int cmd_policy_replay(int argc, char **argv);

#endif
