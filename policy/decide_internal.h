/*
 * decide_internal: what the three parts of decide share (decide.c decides,
 * decide_reason.c words the reasons, decide_visibility.c answers the
 * session-level questions: search_path, catalog visibility, impersonation).
 * Private to policy/decide*.c.
 */
#ifndef MARTGATE_DECIDE_INTERNAL_H
#define MARTGATE_DECIDE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/decide.h"
#include "common/textbuf.h"
#include "policy/policy_internal.h"
#include "policy/rewrite.h"

/* Why an item got its verdict: reasons are formatted from these on demand. */
enum why {
    W_NONE = 0,
    /* relations */
    W_RULE_READ, W_RULE_READ_FILTERED, W_RULE_WRITE, W_RULE_DENY, W_DEFAULT_READ, W_DEFAULT_WRITE,
    W_CATALOG, W_CATALOG_FILTERED, W_CATALOG_FULL, W_CATALOG_WRITE, W_CATALOG_NOT_FILTERABLE,
    W_TEMP, W_TEMP_WRITER, W_RESERVED_SCHEMA, W_NOT_FOUND, W_OTHER_DB, W_UNRESOLVED, W_AMBIGUOUS_REWRITE,
    W_NOT_SUBSTITUTABLE, W_COLUMNS_UNKNOWN, W_BIND_FAILED, W_REWRITE_FAILED, W_LOCKS_ROWS,
    /* schemas */
    W_SCHEMA_WRITE_RULE, W_SCHEMA_DENY_RULE, W_SCHEMA_DEFAULT,
    /* functions */
    W_FN_OK, W_FN_BUILTIN, W_FN_POLICY, W_FN_SCHEMA, W_FN_ADMIN,
    /* settings */
    W_SET_OK, W_SET_POLICY, W_SET_BUILTIN, W_SET_VALUE, W_SET_PARSE_RESET, W_SET_ALLOWED, W_SET_NO_FACTS,
    W_SET_UNKNOWN, W_SET_CONTEXT, W_SET_CATEGORY, W_SP_OK, W_SP_UNREADABLE, W_SP_USER,
    W_SP_NOT_CONSTANT, W_SP_RESET,
    /* roles, statements, flags */
    W_ROLE, W_ROLE_DISCARD, W_STMT_UNSUPPORTED, W_STMT_DDL_INCOMPLETE, W_STMT_INCOMPLETE, W_STMT_UTILITY, W_STMT_EXECUTE, W_FLAG,
    /* EXPLAIN of a rewritten statement (decide_explain.c; the reason is in the note) */
    W_EXPLAIN_REWRITTEN,
    /* a catalog relation in no class of policy/catalog_classes.c */
    W_CATALOG_UNCLASSIFIED,
    /* client_min_messages below NOTICE (decide_settings.c) */
    W_SET_MESSAGES
};

/* The principal as rules see it: user and effective groups. */
typedef struct subj {
    const char *user;
    const char **groups;
    size_t n_groups;
    const char *stack[32];
    const char **heap;
} subj;


/* decide_relations.c: one relation's verdict, with its rule and dataset */
typedef struct rel_verdict {
    decide_verdict verdict;
    int why;
    const policy_rule *rule;     /* deciding rule */
    const policy_rule *hint;     /* default deny: a rule that matched the subject */
    const char *dataset, *pattern;
} rel_verdict;
void decide_one_relation(const policy_t *p, const subj *s, const char *schema, const char *name,
                         bool write, bool full_catalog, rel_verdict *out);
/* A rule that lets the principal write the whole of schema (CREATE in it),
 * or NULL with *why the reason code. */
const policy_rule *schema_write_rule(const policy_t *p, const subj *s, const char *schema, int *why);
/* Does a rule let the principal write every relation (for statements whose
 * objects the analyser cannot name)? */
bool writes_everything(const policy_t *p, const subj *s);

int subj_init(subj *s, const policy_t *p, const decide_principal *who);
void subj_free(subj *s);
int subjects_match(const policy_subjects *ps, const subj *s, const char **what);
void describe_subject(const policy_subjects *ps, const subj *s, char *buf, size_t len);
const char *dataset_of(const policy_t *p, const char *schema, const char *name);
const char *norm_schema(const char *schema);
bool schema_readable(const policy_t *p, const subj *s, const char *schema);
/* One relation's verdict and deciding rule (NULL: default or built-in). */
decide_verdict relation_verdict(const policy_t *p, const subj *s, const char *schema, const char *name, bool write,
                                const policy_rule **rule);
bool full_catalog(const policy_t *p, const subj *s);
/* Has the principal a write rule on anything? */
bool writes_somewhere(const policy_t *p, const subj *s);
/* policy/decide_settings.c */
void decide_setting(const policy_t *p, const subj *s, const warehouse_facts *wh, const analysis_setting *st,
                    decide_item *it);
bool objpat_match(const policy_objpat *op, const char *schema, const char *name);
bool rule_objects_match(const policy_t *p, const policy_rule *r, const char *schema, const char *name,
                               bool sensitive, const char **dataset, const char **pattern);
bool is_sensitive(const policy_t *p, const char *schema, const char *name);

/* decide_explain.c: should EXPLAIN statement `stmt` be denied, its
 * relations decided (items in out)? 1 with *note the reason (malloc'd),
 * 0 no, -1 out of memory. */
int decide_explain_denial(const policy_t *p, const decide_request *req, const decision *out, size_t stmt,
                          char **note);

/* decide_masks.c */
int build_masked(const decide_request *req, const subj *s, const policy_rule *r, const char *schema,
                        const char *name, bool only, decide_item *it, char **out);

#endif
