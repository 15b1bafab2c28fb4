/*
 * policy_cases: decision test files for a policy (`martgate policy test`),
 * the governance team's way to pin down what their policy must allow,
 * rewrite or deny. A file is a JSON array of cases, or an object
 * {"columns": {"schema.table": ["col", ...]}, "database": "dw", "cases": [...]}.
 * A case: {name, user, groups?, claims?, sql, search_path?, expect:
 * allow|rewrite|deny, rule?: id|null, on?: "raw.leads", reason?: substring,
 * rewritten?: exact SQL, rewritten_contains?: [substrings]}. "warehouse"
 * (a facts object, or the name of a facts file next to the cases file, as
 * `martgate policy warehouse` writes it) stands in for the warehouse's
 * settings and functions. Without
 * search_path a case starts with the policy's search_path for the principal.
 *
 * Also the column catalog from JSON that tests and `policy explain
 * --columns-from` use in place of the warehouse.
 */
#ifndef MARTGATE_POLICY_CASES_H
#define MARTGATE_POLICY_CASES_H

#include <jansson.h>
#include <stdio.h>

#include "policy/decide.h"
#include "policy/policy.h"

/* Most cases one file may hold, and its size limit. */
#define POLICY_CASES_MAX 100000u
#define POLICY_CASES_MAX_BYTES (16u * 1024u * 1024u)

/* Runs every case of `path` against p, printing each failure (and why) to
 * out, then the line "N passed, N failed". Returns 0 when the file could be
 * read (whatever the cases did), -1 with err when it could not. */
int policy_run_cases(const policy_t *p, const char *path, FILE *out, size_t *passed, size_t *failed,
                     char *err, size_t errlen);

/* The same with the warehouse's facts given (e.g. `policy test --warehouse
 * FILE`); a "warehouse" in the cases file wins. */
int policy_run_cases_with(const policy_t *p, const warehouse_facts *wh, const char *path, FILE *out,
                          size_t *passed, size_t *failed, char *err, size_t errlen);

/* A rewrite_columns_fn over {"schema.table": ["c1", ...]} (ctx: that json_t
 * object). Unknown tables fail (-1). */
int policy_cases_columns(void *ctx, const char *schema, const char *table, const char ***names, size_t *n);

#endif
