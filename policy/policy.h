/*
 * policy: the governance team's policy, loaded from JSON and then immutable.
 *
 * A policy is one file or a directory whose *.json files are merged (each
 * squad may own a file). It names datasets (sets of schemas), groups (policy-
 * defined membership added to the groups a token carries), ordered rules
 * (who may read or write which datasets/tables, with optional row filters and
 * column masks), defaults (starting search_path, full catalog visibility),
 * extra denied functions and settings, and the roles/impersonators section
 * kept for Metabase connection impersonation. docs/policy.md is the reference.
 *
 * Loading is strict: unknown keys, wrong types, dangling references, bad globs
 * and SQL expressions that do not parse are errors naming file:line:column and
 * the field; rules an earlier rule always wins over are warnings. Globs are
 * compiled and placeholders split at load, so policy/decide never touches JSON.
 *
 * A loaded policy is shared by many sessions: it is reference counted
 * (policy_ref/policy_unref are thread-safe) and never changes after load; a
 * reload builds a new one that callers swap in.
 */
#ifndef MARTGATE_POLICY_H
#define MARTGATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on what a policy may be (each crossing is a load error). */
#define POLICY_MAX_FILE_BYTES  (4u * 1024u * 1024u)   /* one JSON file */
#define POLICY_MAX_TOTAL_BYTES (32u * 1024u * 1024u)  /* all files of a directory */
#define POLICY_MAX_FILES       256u                   /* *.json in a directory */
#define POLICY_MAX_NAME        128u                   /* ids, dataset/group/role names */

typedef struct policy policy_t;

/* Everything a load found: every error and every warning as a full line
 * ("policy/sales.json:12:7: rules[2].access: must be read, write or deny"). */
typedef struct policy_messages {
    char **errors;
    size_t n_errors;
    char **warnings;
    size_t n_warnings;
} policy_messages;

void policy_messages_free(policy_messages *m);

/* Loads a policy file, or a directory of *.json files (not recursive, hidden
 * files skipped, merged in byte order of their names). Returns 0 and *out (a
 * reference the caller owns), or -1 with err holding the first error and how
 * many more there were. msgs (optional) receives every error and warning. */
int policy_load(const char *path, policy_t **out, policy_messages *msgs,
                char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The same from one in-memory document called `name` in messages. */
int policy_load_text(const char *name, const char *text, size_t len, policy_t **out,
                     policy_messages *msgs, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Reference counting (atomic): a session holds a reference for its life;
 * the last unref frees the policy. Both accept NULL. */
policy_t *policy_ref(policy_t *p);
void policy_unref(policy_t *p);

/* One line: "N files, N datasets, N groups, N rules, N roles". */
void policy_summary(const policy_t *p, char *buf, size_t len);

/* A number no other policy loaded by this process has: what was decided
 * under one policy is known to be of that one (pointers may be reused). */
uint64_t policy_serial(const policy_t *p);

/* Where the policy came from (the path given to policy_load). */
const char *policy_source(const policy_t *p);

/* The built-in dataset of catalog relations that leak table contents or
 * other sessions' queries (pg_statistic, pg_stats, pg_stat_activity,
 * pg_stat_statements, ...): denied unless a rule grants it by this name. */
#define POLICY_SENSITIVE_DATASET "pg_sensitive"

/* Whether a row filter or column mask of p reads the token claim `name`
 * (${claims.name} or ${claims.name.field}): a session keeps only the claims
 * its policy reads (proxy/session.c). NULL p reads none. */
bool policy_reads_claim(const policy_t *p, const char *name);

/* The first rule that masks a column with "hash", as "rule 'id' (column
 * email)" into buf; false when no rule does. Hash masks are keyed (policy/
 * rewrite.h rewrite_hash_key): a deployment that uses one must give the key. */
bool policy_hash_mask_use(const policy_t *p, char *buf, size_t len);

#endif
