/*
 * replay_tally: what `martgate policy replay` found, counted: the statement
 * records whose decision changes under the new policy, by kind of change,
 * dataset and user, each counted by record and by distinct fingerprint (a
 * dashboard's thousand refreshes are one statement), with one example each;
 * and the records that could not be replayed, by reason. Pure bookkeeping
 * (jansson maps), printed as text or JSON.
 */
#ifndef MARTGATE_REPLAY_TALLY_H
#define MARTGATE_REPLAY_TALLY_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    REPLAY_NEWLY_DENIED,      /* allowed or rewritten before, denied now */
    REPLAY_NEWLY_ALLOWED,     /* denied before, allowed or rewritten now */
    REPLAY_REWRITE_CHANGED,   /* allow <-> rewrite, or rewritten by another rule */
    REPLAY_NKINDS
} replay_change;

typedef struct {
    unsigned long long records;      /* statement records read */
    unsigned long long replayed;     /* ... decided again */
    json_t *distinct;                /* fingerprints replayed -> count */
    json_t *kinds[REPLAY_NKINDS];    /* per kind: {records, fps{}, users{}, datasets{name: group}} */
    json_t *not_replayed;            /* reason -> records */
} replay_tally;

/* One record: old/new are "allow", "rewrite" or "deny" (with their rules,
 * NULL for none); datasets the ones it touched (none: "(none)"). A change
 * counts once in its kind's totals and once under each dataset. */
typedef struct {
    const char *user, *fingerprint, *query;
    const char *const *datasets;
    size_t n_datasets;
    const char *old_decision, *old_rule, *new_decision, *new_rule, *reason;
} replay_record;

int replay_tally_init(replay_tally *t);   /* 0, or -1 out of memory */
void replay_tally_free(replay_tally *t);
/* Which change old -> new is (rules compared for rewrite -> rewrite); -1: none. */
int replay_change_of(const char *old_decision, const char *old_rule, const char *new_decision, const char *new_rule);
const char *replay_change_name(replay_change k);   /* "newly_denied", ... */
/* A record replayed: its fingerprint counted, and the change if any (k < 0: none). */
void replay_tally_add(replay_tally *t, int k, const replay_record *r);
void replay_tally_not_replayed(replay_tally *t, const char *reason);
/* How many records changed (all kinds). */
unsigned long long replay_tally_changed(const replay_tally *t);
/* The report: top limits the datasets per kind and the users per dataset. */
json_t *replay_tally_json(const replay_tally *t, int top);
void replay_tally_print(const replay_tally *t, int top, FILE *out);

#endif
