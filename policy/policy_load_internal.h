/*
 * policy_load_internal: what the policy loader's files share (policy_load.c
 * reads files and the sections that define names; policy_load_rules.c the
 * rules and the shadowing warnings). Private to policy/policy_load*.c.
 */
#ifndef MARTGATE_POLICY_LOAD_INTERNAL_H
#define MARTGATE_POLICY_LOAD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/json_doc.h"
#include "policy/policy_internal.h"

/* One load: its messages, the policy being built, the documents read. */
typedef struct loader {
    policy_messages msgs;
    policy_t *p;
    json_doc **docs;
    size_t n_docs;
    /* definitions seen so far, for duplicate checks across files */
    const char *defaults_search_path_where;
    const char *defaults_catalog_where;
    const char *defaults_explain_where;
    const char *defaults_temp_where;
    char where_buf[4][512];
    bool oom;
    /* rules while loading, with their global sequence */
    struct pending_rule { policy_rule r; size_t seq; } *pend;
    size_t n_pend;
} loader;

void push_msg(loader *L, bool error, const char *text);
int lerr(loader *L, const json_doc *d, const json_t *at, const char *field, const char *fmt, ...);
int lkeep(loader *L, const char *text);
char *where_of(const json_doc *d, const json_t *v);
bool valid_name(const char *s);
int get_str_list(loader *L, const json_doc *d, const json_t *obj, const char *field,
                        const char *key, bool required, json_t **arr);
size_t list_size(json_t *arr);
json_t *list_get(json_t *arr, size_t i);
int check_keys(loader *L, const json_doc *d, const json_t *obj, const char *field,
                      const char *const *allowed);
int check_schema_glob(loader *L, const json_doc *d, const json_t *at, const char *field,
                             const char *s);
int make_objpat(loader *L, policy_objpat *op, const char *schema, size_t slen, const char *table,
                       const char *text);
void objpat_free(policy_objpat *op);
int parse_table_pat(loader *L, const json_doc *d, const json_t *at, const char *field,
                           const char *s, policy_objpat *op);
int parse_subjects(loader *L, const json_doc *d, const json_t *obj, const char *field,
                          policy_subjects *out);
void subjects_free(policy_subjects *s);
policy_dataset *find_dataset(policy_t *p, const char *name);
void rule_free(policy_rule *r);
void parse_rules(loader *L, const json_doc *d, json_t *arr, size_t *seq);
void warn_shadowed(loader *L);
/* policy_load_lint.c: datasets, groups and roles nothing uses; datasets sharing schemas */
void warn_unused(loader *L);
/* qsort order of the rules collected from every file */
int pending_cmp(const void *a, const void *b);

/* policy_load_names.c and policy_load.c */
void lwarn(loader *L, const json_doc *d, const json_t *at, const char *field, const char *fmt, ...);
int get_opt_string(loader *L, const json_doc *d, const json_t *obj, const char *field,
                          const char *key, char **out);
const char *glob_problem(const char *s);
void dataset_free(policy_dataset *ds);
int add_builtin_datasets(loader *L);
void parse_datasets(loader *L, const json_doc *d, json_t *obj);
void parse_groups(loader *L, const json_doc *d, json_t *obj);
void parse_roles(loader *L, const json_doc *d, json_t *obj);
void parse_impersonators(loader *L, const json_doc *d, json_t *arr);
int add_fnpat(loader *L, const char *text, const char *reason);
void add_builtin_functions(loader *L);
void parse_functions(loader *L, const json_doc *d, json_t *obj);
void parse_settings(loader *L, const json_doc *d, json_t *obj);
void parse_defaults(loader *L, const json_doc *d, json_t *obj);

#endif
