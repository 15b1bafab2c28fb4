/*
 * policy_internal: the compiled, immutable shape of a loaded policy, shared
 * by the loader (policy/policy_load.c) and the decisions (policy/decide.c).
 * Nothing outside policy/ includes this; callers see policy.h and decide.h.
 */
#ifndef MARTGATE_POLICY_INTERNAL_H
#define MARTGATE_POLICY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "policy/policy.h"

/* ---- globs (policy/policy_glob.c) ----------------------------------- */

/* `*` any run of characters, `?` one character, nothing else is special.
 * Compiled to the cheapest test that answers the same. */
typedef enum {
    GLOB_EXACT = 0,   /* no wildcard */
    GLOB_ANY,         /* "*" */
    GLOB_PREFIX,      /* "abc*" */
    GLOB_SUFFIX,      /* "*abc" */
    GLOB_GENERAL
} glob_kind;

typedef struct policy_glob {
    char *text;
    size_t len;
    size_t fixed;     /* PREFIX/SUFFIX: length of the fixed part */
    glob_kind kind;
} policy_glob;

int glob_compile(policy_glob *g, const char *text);
void glob_free(policy_glob *g);
bool glob_match(const policy_glob *g, const char *s);
/* Schemas: wildcards never match PostgreSQL's reserved names (pg_*,
 * information_schema); only a literal pattern names those. */
bool glob_match_schema(const policy_glob *g, const char *schema);
bool glob_has_wildcard(const char *text);
/* true when every string `b` matches also matches `a` (a sound test: false
 * may still be a cover). */
bool glob_covers(const policy_glob *a, const policy_glob *b);
/* Appends an SQL condition "<expr> = 'x'" or "<expr> LIKE 'x%' ESCAPE '!'"
 * for this glob to buf; schema conditions keep wildcards off pg_* names. */
bool glob_to_sql(const policy_glob *g, const char *expr, bool is_schema,
                 char **buf, size_t *len, size_t *cap);

/* ---- templates: SQL text with ${...} placeholders bound as literals ---- */

typedef enum {
    TPL_TEXT = 0,
    TPL_USER,         /* ${user} */
    TPL_GROUPS,       /* ${groups}: text[] of the principal's groups */
    TPL_CLAIM,        /* ${claims.a.b} */
    TPL_COLUMN        /* ${column}: masks only, the quoted column name */
} tpl_kind;

typedef struct tpl_segment {
    tpl_kind kind;
    char *text;       /* TEXT: the text; CLAIM: the dotted path */
} tpl_segment;

typedef struct policy_template {
    char *source;
    tpl_segment *segs;
    size_t n_segs;
    bool uses_column;
} policy_template;

/* ---- model ---------------------------------------------------------- */

typedef enum { ACCESS_DENY = 0, ACCESS_READ, ACCESS_WRITE } policy_access;

typedef struct policy_objpat {   /* schema.table glob pair */
    policy_glob schema, table;   /* table "*" for whole schemas */
    char *text;                  /* as written, for reasons */
} policy_objpat;

typedef struct policy_dataset {
    char *name, *description, *owner, *classification;
    policy_objpat *pats;
    size_t n_pats;
    char *where;                 /* file:line:col of the definition */
    bool builtin;
} policy_dataset;

typedef struct policy_group {
    char *name, *description;
    policy_glob *members;
    size_t n_members;
    char *where;
} policy_group;

typedef struct policy_subjects {
    policy_glob *groups;
    size_t n_groups;
    policy_glob *users;
    size_t n_users;
} policy_subjects;

typedef enum {
    MASK_PASS = 0,
    MASK_NULL,
    MASK_HASH,
    MASK_REDACT,
    MASK_LAST4,
    MASK_EXPR,
    MASK_DENY
} policy_mask_kind;

typedef struct policy_column {
    char *name;
    policy_mask_kind kind;
    policy_template expr;        /* MASK_EXPR */
} policy_column;

typedef struct policy_rule {
    char *id, *description;
    long long priority;
    size_t order;                /* position after sorting (0 = first) */
    policy_subjects subjects;
    const policy_dataset **datasets;
    size_t n_datasets;
    policy_objpat *pats;         /* from "schemas" and "tables" */
    size_t n_pats;
    policy_access access;
    bool has_row_filter;
    policy_template row_filter;
    policy_column *columns;
    size_t n_columns;
    char *where;                 /* file:line:col */
    char *objects_text;          /* "dataset origination, tables sales_mart.*" */
} policy_rule;

typedef struct policy_search_path {
    bool everyone;
    policy_subjects subjects;
    char **schemas;
    size_t n_schemas;
} policy_search_path;

typedef struct policy_role {
    char *name, *description;
    char **groups;
    size_t n_groups;
    char *where;
} policy_role;

typedef struct policy_impersonator {
    policy_subjects subjects;
    policy_glob *roles;
    size_t n_roles;
} policy_impersonator;

typedef struct policy_fnpat {    /* a denied (or, allow: granted) function */
    bool allow;                  /* functions.allow: may run though PUBLIC may not execute it */
    bool has_schema;
    policy_glob schema, name;
    char *text;
    char *reason;                /* built-in reasons; NULL for policy ones */
} policy_fnpat;

typedef struct policy_setpat {
    bool allow;                  /* settings.allow, else settings.deny */
    policy_glob name;
    char *text;
} policy_setpat;

struct policy {
    atomic_int refs;
    uint64_t serial;             /* unique per load in this process */
    char *source;
    size_t n_files;
    policy_dataset *datasets;
    size_t n_datasets;
    policy_group *groups;
    size_t n_groups;
    policy_rule *rules;          /* evaluation order */
    size_t n_rules;
    policy_search_path *search_paths;
    size_t n_search_paths;
    bool has_full_catalog;
    policy_subjects full_catalog;
    bool explain_plan;           /* defaults.explain_filtered "plan": plain EXPLAIN of a rewritten statement */
    bool temp_by_rules;          /* defaults.temp_tables "rules": pg_temp only by rules naming it (the
                                  * default, "writers": also for a principal with any write rule) */
    policy_fnpat *functions;     /* built-in first, then the policy's */
    size_t n_functions;
    policy_setpat *settings;     /* settings.deny and settings.allow (policy's only) */
    size_t n_settings;
    policy_role *roles;
    size_t n_roles;
    policy_impersonator *impersonators;
    size_t n_impersonators;
    const policy_dataset *sensitive;
};

/* Template binding (policy/policy_template.c). */
int tpl_compile(policy_template *t, const char *src, bool allow_column,
                char *err, size_t errlen);
void tpl_free(policy_template *t);

/* Parses `SELECT <expr>` with libpg_query (placeholders as $n) and checks it
 * is exactly one expression. 0, or -1 with err. */
int tpl_check_sql(const policy_template *t, char *err, size_t errlen);

/* Names of the schemas no dataset may name, and the check for them. */
bool policy_is_catalog_schema(const char *schema);     /* pg_catalog, information_schema */
bool policy_is_reserved_schema(const char *schema);    /* pg_*, information_schema */

#endif
