/*
 * decide_memo: a session's memory of the decisions a statement's shape
 * settles, so that the next text of the same shape is allowed without being
 * parsed again (pgbench and BI tools send the same statement with other
 * constants thousands of times).
 *
 * Provably safe, or not at all:
 *  - the key is the text's shape (analyze_shape): equal keys mean the same
 *    tokens in the same order, only the constants' values differ, and the
 *    parse tree is the same but for those values;
 *  - a decision is kept only when it cannot depend on a constant's value or
 *    on session state that a statement changes (decide_memo_keeps): one
 *    SELECT, INSERT, UPDATE, DELETE or MERGE allowed as written (no rewrite),
 *    with no setting, role change, flag, prepared statement or cursor, and no fact
 *    the analyser took from a constant (analysis.reads_constants);
 *  - everything else a decision depends on (policy, principal, search_path,
 *    database, backend user) is the state, given as bytes: decisions are
 *    kept per state, for the DECIDE_MEMO_STATES states used last (Metabase's
 *    impersonation switches principals back and forth on one connection).
 * Shapes that are not decidable (UESCAPE) are never looked up or kept.
 *
 * The exact text last seen of each shape is kept too: the same text again
 * (a prepared statement's, a dashboard's) is found without even a scan.
 *
 * Bounded: per state at most DECIDE_MEMO_SLOTS entries and
 * DECIDE_MEMO_MAX_BYTES of keys, notes and texts; a key or text over
 * DECIDE_MEMO_MAX_KEY is not kept.
 */
#ifndef MARTGATE_DECIDE_MEMO_H
#define MARTGATE_DECIDE_MEMO_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/analyze.h"
#include "policy/decide.h"

#define DECIDE_MEMO_STATES 4
#define DECIDE_MEMO_SLOTS 16
#define DECIDE_MEMO_MAX_KEY 4096
#define DECIDE_MEMO_MAX_BYTES (16 * 1024)   /* per state */

typedef struct decide_memo decide_memo;

/* May a decision of these facts be kept for their shape? */
bool decide_memo_keeps(const analysis *a, const decision *d);

/* Sets the state decisions are looked up and kept in: one of the last ones
 * again, or a new one (giving up the one used longest ago, if all are
 * taken). Allocates the memo on first use (*m NULL); false out of memory
 * (then nothing is looked up or kept). */
bool decide_memo_state(decide_memo **m, const void *state, size_t len);

/* What the memo knows of a text it has a decision for: the note kept with
 * it (the caller's: the audit members of the decision; "" when it kept
 * none) and the normalized text of its shape. Valid until the next call. */
typedef struct {
    const char *note;
    const char *normalized;
    size_t normalized_len;
} decide_memo_hit;

/* By the exact text (the last one seen of each shape): no scan at all.
 * true on a hit. */
bool decide_memo_find_text(decide_memo *m, const char *sql, size_t len, decide_memo_hit *hit);
/* By shape (decidable shapes only); remembers sql as its shape's last text.
 * true on a hit. */
bool decide_memo_find(decide_memo *m, const analyze_shape *shape, const char *sql, size_t len,
                      decide_memo_hit *hit);

/* Keeps an allowed decision for a shape, with a copy of note (may be NULL);
 * sql is the text decided. */
void decide_memo_put(decide_memo *m, const analyze_shape *shape, const char *sql, size_t len, const char *note);

void decide_memo_free(decide_memo *m);

/* Counters (for tests and the log). */
typedef struct {
    unsigned long long hits, misses, kept, evicted, resets;
    size_t entries, bytes;
} decide_memo_stats;
void decide_memo_get_stats(const decide_memo *m, decide_memo_stats *out);

#endif
