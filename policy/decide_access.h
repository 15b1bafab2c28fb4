/*
 * decide_access: effective access, for the governance team's review tools
 * (`martgate policy matrix` and `martgate policy diff`): who may read or
 * write what under a policy, after rule order and first match. Nothing here
 * re-implements a rule: every answer is the decision's own (policy/decide.c),
 * asked at one representative name for every schema and table pattern the
 * policies name, as a representative principal of every group, user and role
 * they name. Pure: no I/O.
 *
 * Two policies are compared over the union of what either names (an
 * access_space built from both), so a rule moved above one that shadowed it,
 * a group that gains a member or a dataset that gains a schema each show as
 * the cells whose access changes.
 */
#ifndef MARTGATE_DECIDE_ACCESS_H
#define MARTGATE_DECIDE_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

typedef enum {
    ACCESS_SUBJECT_EVERYONE = 0,  /* a user no rule names, in no group */
    ACCESS_SUBJECT_GROUP,         /* a member of this group only */
    ACCESS_SUBJECT_USER,          /* this user, with the groups the policy gives it */
    ACCESS_SUBJECT_ROLE           /* a session impersonating this role */
} access_subject_kind;

typedef struct access_subject {
    access_subject_kind kind;
    char *name;                   /* as the policy writes it ("squad-*" stays a glob) */
    char *sample;                 /* a name that pattern matches */
} access_subject;

typedef struct access_object {
    char *schema, *table;         /* patterns as written ("raw_*", "*") */
    char *schema_sample, *table_sample;
} access_object;

typedef struct access_space {
    access_subject *subjects;     /* everyone, then groups, users, roles; each by name */
    size_t n_subjects;
    access_object *objects;       /* by schema, then table pattern */
    size_t n_objects;
} access_space;

/* The subjects and objects that policies ps[0..n) name, without duplicates.
 * 0, or -1 on out of memory. */
int access_space_build(const policy_t *const *ps, size_t n, access_space *out);
void access_space_free(access_space *sp);

/* "group squad-sales", "user ana@passeidireto.com", "role finance", "everyone" */
void access_subject_label(const access_subject *s, char *buf, size_t len);
/* "raw.*" / "sales_mart.orders" */
void access_object_label(const access_object *o, char *buf, size_t len);
/* The dataset the object is in under p ("pg_sensitive" for the built-in
 * one), or NULL. Borrowed from p. */
const char *access_object_dataset(const policy_t *p, const access_object *o);
/* Is the object the whole of its schema (table pattern "*")? */
bool access_object_whole_schema(const access_object *o);

/* Dataset i of p in the policy's order, the built-in pg_sensitive last:
 * false past the end. Strings borrowed from p (classification may be NULL). */
bool access_dataset_at(const policy_t *p, size_t i, const char **name, const char **classification);
/* Is o one of dataset `name`'s own schema/table patterns in p? */
bool access_object_in_dataset(const policy_t *p, const char *name, const access_object *o);
/* An object for one real relation (policy matrix --catalog); free with
 * access_object_clear. 0 or -1 on out of memory. */
int access_object_real(access_object *o, const char *schema, const char *table);
void access_object_clear(access_object *o);

/* One subject's access to one object. Strings are borrowed from p. */
typedef struct access_cell {
    bool exists;                  /* false: a role this policy does not define */
    bool read, write;
    const char *read_rule;        /* the rule that decided the read (NULL: default deny) */
    const char *write_rule;
    const char *row_filter;       /* the read rule's row filter, as written, or NULL */
    const void *columns;          /* the read rule's column masks (private) */
    size_t n_columns;
} access_cell;

int access_cell_get(const policy_t *p, const access_subject *s, const access_object *o, access_cell *out);
bool access_cell_equal(const access_cell *a, const access_cell *b);
/* +1 the change widens access somewhere (a lifted or changed row filter or
 * mask counts as widening: it cannot be shown to narrow), -1 it only
 * narrows, 0 no change. */
int access_cell_compare(const access_cell *before, const access_cell *after);
/* "none", "read", "read, row filter region = ${claims.region}",
 * "read, masks email hash; phone last4", "write", ...; malloc'd. */
char *access_cell_text(const access_cell *c);
/* The short form for a matrix cell: "-", "R", "R+f", "R+m", "R+fm", "W",
 * "R+f W" (filtered reads, unfiltered writes). */
const char *access_cell_code(const access_cell *c, char *buf, size_t len);

/* What a subject starts with: its search_path (SET syntax), full catalog
 * visibility, and the roles of the space it may impersonate ("a, b" or ""). */
typedef struct access_defaults {
    char *search_path;
    bool full_catalog;
    char *impersonates;
} access_defaults;

int access_defaults_get(const policy_t *p, const access_space *sp, const access_subject *s, access_defaults *out);
void access_defaults_free(access_defaults *d);

/* Policy-wide facts that change what anyone may do, as sentences
 * ("functions.deny pg_read_server_files", "settings.allow work_mem",
 * "role finance: groups finance-analysts", "defaults.temp_tables writers").
 * effect: +1 having the fact widens access, -1 it narrows, 0 neither. */
typedef struct access_fact {
    char *text;
    int effect;
} access_fact;

int access_facts_get(const policy_t *p, access_fact **out, size_t *n);
void access_facts_free(access_fact *f, size_t n);

#endif
