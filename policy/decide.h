/*
 * decide: analysis facts (policy/analyze) + principal + policy -> allow,
 * rewrite or deny, with the deciding rule and a reason a person can read.
 *
 * Every relation, schema, function, setting, role change and flag of every
 * statement gets an item with its own verdict, rule and reason; the string is
 * allowed only if every item is, and one denied statement denies the whole
 * string. Row filters and column masks become relation substitutions through
 * policy/rewrite, catalog relations are filtered to what the principal may
 * see (rewrite_catalog_substitutions with decide_catalog_visible), unless the
 * policy gives the principal full catalog visibility.
 *
 * Hot path: the allow path allocates nothing once the decision's item buffer
 * has grown (reuse one `decision` per session with decision_reset), and
 * reasons are formatted only when asked for.
 *
 * Lifetimes: a decision borrows from the policy, the analysis and the
 * principal passed to decide()
    __attribute__((warn_unused_result)); format reasons (decision_reason,
 * decide_item_reason) before any of those are freed.
 *
 * What decide needs from policy/analyze and policy/rewrite (agreed through
 * their headers): analysis_relation.{schema,name,access,usage,resolution,
 * candidates,tablesample,only}, statement kinds/tags/objects_complete/
 * locks_rows/execute_name, functions, settings (with search_path schemas),
 * role changes, flags; rewrite_apply, rewrite_masked_relation,
 * rewrite_mask_sql, rewrite_quote_literal/ident, rewrite_is_filtered_catalog,
 * rewrite_catalog_substitutions.
 */
#ifndef MARTGATE_DECIDE_H
#define MARTGATE_DECIDE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/warehouse_facts.h"
#include "policy/analyze.h"
#include "policy/policy.h"
#include "policy/rewrite.h"

/* Who is asking: from the verified token. Policy-defined group membership is
 * added by decide itself. */
typedef struct decide_principal {
    const char *user;
    const char *const *groups;   /* the token's groups */
    size_t n_groups;
    const json_t *claims;        /* the token's claims (an object), or NULL */
} decide_principal;

typedef enum decide_verdict {
    DECIDE_ALLOW = 0,
    DECIDE_REWRITE,              /* allowed, with the text in rewritten_sql */
    DECIDE_DENY
} decide_verdict;

typedef enum decide_item_kind {
    DECIDE_ITEM_STATEMENT = 1,   /* the statement itself (kind, unsupported...) */
    DECIDE_ITEM_RELATION,
    DECIDE_ITEM_SCHEMA,          /* a schema as a DDL object */
    DECIDE_ITEM_FUNCTION,
    DECIDE_ITEM_SETTING,
    DECIDE_ITEM_ROLE,            /* SET ROLE / SESSION AUTHORIZATION */
    DECIDE_ITEM_FLAG             /* a construct no policy can see through */
} decide_item_kind;

typedef struct decide_item {
    decide_item_kind kind;
    size_t index;                /* into the analysis array of this kind */
    size_t stmt_index;
    decide_verdict verdict;      /* REWRITE: this relation is substituted */
    const char *rule_id;         /* deciding rule; NULL: built-in or default */
    const char *dataset;         /* the dataset the relation matched, or NULL */
    const char *schema;          /* relation/function schema, or NULL */
    const char *name;            /* relation/function/setting/role/tag name */
    unsigned access;             /* relations: what was needed (ANALYZE_ACCESS_*) */
    /* private to decide.c */
    int why;
    const void *ref[2];
    char *note;
} decide_item;

#define DECIDE_NONE ((size_t)-1)

typedef struct decision {
    decide_verdict verdict;
    const char *rule_id;         /* the deciding item's rule, or NULL */
    size_t deciding;             /* index into items, or DECIDE_NONE */
    char *rewritten_sql;         /* REWRITE: the text to forward (owned) */
    decide_item *items;
    size_t n_items;
    /* private */
    size_t cap;
    const void *policy, *who, *facts;
    bool reason_done;
    char reason[1024];
} decision;

void decision_init(decision *d);
/* Frees the rewritten text and notes, keeps the item buffer for reuse. */
void decision_reset(decision *d);
void decision_free(decision *d);

/* The overall reason (the deciding item's), formatted on first call. */
const char *decision_reason(decision *d);
/* One item's reason into buf. */
void decide_item_reason(const decision *d, size_t i, char *buf, size_t len);
/* "relation raw.leads", "function pg_read_file", "setting search_path"... */
void decide_item_label(const decide_item *it, char *buf, size_t len);
const char *decide_verdict_name(decide_verdict v);

/* Optional: does the session know prepared statement `name` (prepared after
 * an allowed PREPARE)? EXECUTE of anything else is denied. */
typedef bool (*decide_prepared_fn)(void *ctx, const char *name);

/* Optional, for EXPLAIN EXECUTE name (and EXPLAIN CREATE TABLE AS EXECUTE):
 * was the prepared statement forwarded rewritten (a row filter, column mask
 * or catalog filter applied), and does the text the warehouse holds carry
 * the hash mask's key? A bit set of these; NULL: both assumed. */
#define DECIDE_PREPARED_REWRITTEN 1u
#define DECIDE_PREPARED_KEYED 2u
typedef unsigned (*decide_prepared_rewrite_fn)(void *ctx, const char *name);

typedef struct decide_request {
    const char *sql;             /* the exact text `facts` was made from */
    const analysis *facts;
    const decide_principal *who;
    rewrite_columns_fn columns;  /* optional: a table's columns, for masks */
    void *columns_ctx;
    decide_prepared_fn prepared;
    void *prepared_ctx;
    /* the warehouse's own metadata (settings, functions PUBLIC may not
     * execute); NULL offline: settings are then denied as unknown and only
     * the built-in function list applies */
    const warehouse_facts *warehouse;
    /* the version the session's warehouse reports (facts of another version
     * say nothing of its catalog); NULL: the facts' own */
    const char *server_version;
    /* the hash mask's key (the daemon's from hash_mask_key_file, the
     * placeholder offline); NULL: a read a hash mask applies to is denied */
    const rewrite_hash_key *hash_key;
    decide_prepared_rewrite_fn prepared_rewrite;   /* ctx: prepared_ctx */
} decide_request;

/* Decides. Returns 0 with *out filled (verdict, items, rewrite), or -1 when
 * something failed inside (out of memory, a rewrite the builders refused):
 * then out->verdict is DENY too and err says what failed. `out` must have
 * been initialised with decision_init; it is reset first. */
int decide(const policy_t *p, const decide_request *req, decision *out, char *err, size_t errlen);

/* The search_path a session starts with: the first defaults.search_path
 * entry whose subjects match (none: public, the server's default without
 * "$user"), keeping only schemas the principal may read
 * (pg_catalog, pg_temp and information_schema always kept). Returns 0 with
 * *schemas a malloc'd array (free() it) of strings owned by the policy, or
 * -1 on out of memory. *n may be 0: an empty search_path. */
int decide_search_path(const policy_t *p, const decide_principal *who, const char ***schemas, size_t *n)
    __attribute__((warn_unused_result));
/* The same as SET syntax: "origination_mart, \"Sales\"" or "''" (malloc'd). */
char *decide_search_path_text(const policy_t *p, const decide_principal *who)
    __attribute__((warn_unused_result));

/* May a session give setting `name` (any case) the value `value`, as SET or
 * as a startup parameter? The same test as a SET statement's (built-in
 * denials, the policy's settings.deny, values martgate must read the same as
 * the server: standard_conforming_strings on, client_encoding UTF8). Not for
 * search_path (decide_schema_readable per schema). p may be NULL (no policy:
 * the built-in tests only). false with the reason in why. */
/* May a principal give this setting this value (a startup parameter)? The
 * same rules as SET; why filled when not. */
bool decide_setting_value(const policy_t *p, const warehouse_facts *wh, const char *name, const char *value,
                          char *why, size_t whylen);
/* The guarded category (logging, monitoring, integrity...) a pg_settings
 * category falls in, or NULL. */
const char *decide_guarded_category(const char *category);

/* May the principal read something in `schema` (the SET search_path test)? */
bool decide_schema_readable(const policy_t *p, const decide_principal *who, const char *schema);

/* Does the policy give the principal full catalog visibility? */
bool decide_full_catalog(const policy_t *p, const decide_principal *who);

/* Catalog filtering: the rewrite_visible_fn (policy/rewrite.h) for a
 * principal. ctx must point to a decide_visibility that outlives the call. */
typedef struct decide_visibility {
    const policy_t *policy;
    const decide_principal *who;
} decide_visibility;
char *decide_catalog_visible(void *ctx, const char *schema_expr, const char *table_expr);
/* The rewrite_column_hidden_fn: columns a rule denies ("deny" masks). */
char *decide_catalog_column_hidden(void *ctx, const char *schema_expr, const char *table_expr,
                                   const char *column_expr);

/* Connection impersonation (Metabase Pro/Enterprise sends SET ROLE r before a
 * person's queries): may `who` act as policy role `role`? 1 with the role's
 * groups (borrowed from the policy), 0 with the reason in why, -1 on out of
 * memory. The policy's `roles` map names to groups and its `impersonators`
 * say who may take which roles. */
int decide_impersonation(const policy_t *p, const decide_principal *who, const char *role,
                         const char *const **groups, size_t *n_groups, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/* May a session of `who` ever write: a write rule for it, or for a role it may
 * impersonate (the test for sending a session to a read-only standby). */
bool decide_may_write(const policy_t *p, const decide_principal *who);

/* Is `who` one of the policy's impersonators (for any role)? */
bool decide_is_impersonator(const policy_t *p, const decide_principal *who);

/* The principal's groups: the token's plus the policy's memberships.
 * Returns the count; writes up to max borrowed names into out. */
size_t decide_effective_groups(const policy_t *p, const decide_principal *who, const char **out, size_t max);

#endif
