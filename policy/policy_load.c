/*
 * policy_load: reads policy JSON (one file, or a directory of *.json merged in
 * name order), checks it strictly and compiles it into the immutable struct
 * policy that policy/decide reads. Every error names file:line:column and the
 * field; loading goes on after an error so that `martgate policy check` can
 * list all of them at once. Warnings (shadowed rules, unused datasets) never
 * stop a load.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/json_doc.h"
#include "policy/policy_internal.h"

/* ---- messages ------------------------------------------------------- */

typedef struct loader {
    policy_messages msgs;
    policy_t *p;
    json_doc **docs;
    size_t n_docs;
    /* definitions seen so far, for duplicate checks across files */
    const char *defaults_search_path_where;
    const char *defaults_catalog_where;
    char where_buf[2][512];
    bool oom;
    /* rules while loading, with their global sequence */
    struct pending_rule { policy_rule r; size_t seq; } *pend;
    size_t n_pend;
} loader;

static void push_msg(loader *L, bool error, const char *text)
{
    char ***arr = error ? &L->msgs.errors : &L->msgs.warnings;
    size_t *n = error ? &L->msgs.n_errors : &L->msgs.n_warnings;
    char **na = realloc(*arr, (*n + 1) * sizeof **arr);
    char *copy = strdup(text);
    if (!na || !copy) {
        free(copy);
        if (na)
            *arr = na;
        L->oom = true;
        return;
    }
    *arr = na;
    (*arr)[(*n)++] = copy;
}

__attribute__((format(printf, 5, 6)))
static int lerr(loader *L, const json_doc *d, const json_t *at, const char *field, const char *fmt, ...)
{
    char msg[1024], line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_doc_error(d, at, line, sizeof line, field, "%s", msg);
    push_msg(L, true, line);
    return -1;
}

__attribute__((format(printf, 5, 6)))
static void lwarn(loader *L, const json_doc *d, const json_t *at, const char *field, const char *fmt, ...)
{
    char msg[1024], line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d)
        json_doc_error(d, at, line, sizeof line, field, "%s", msg);
    else
        snprintf(line, sizeof line, "%s", msg);
    push_msg(L, false, line);
}

/* Keeps the error text of a json_doc getter (already formatted). */
static int lkeep(loader *L, const char *text)
{
    push_msg(L, true, text);
    return -1;
}

static char *where_of(const json_doc *d, const json_t *v)
{
    int line = 0, col = 0;
    char buf[600];
    if (json_doc_where(d, v, &line, &col))
        snprintf(buf, sizeof buf, "%s:%d:%d", json_doc_name(d), line, col);
    else
        snprintf(buf, sizeof buf, "%s", json_doc_name(d));
    return strdup(buf);
}

void policy_messages_free(policy_messages *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_errors; i++)
        free(m->errors[i]);
    for (size_t i = 0; i < m->n_warnings; i++)
        free(m->warnings[i]);
    free(m->errors);
    free(m->warnings);
    memset(m, 0, sizeof *m);
}

/* ---- small checks --------------------------------------------------- */

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > POLICY_MAX_NAME)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-' || *c == '.' || *c == ':' || *c == '@'))
            return false;
    return true;
}

/* A string array member: the json array (or single string), each item a
 * non-empty string. Returns 0 (items in *arr), 1 absent, -1 error. */
static int get_str_list(loader *L, const json_doc *d, const json_t *obj, const char *field,
                        const char *key, bool required, json_t **arr)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return lerr(L, d, obj, field, "missing required key '%s'", key);
        return 1;
    }
    if (json_is_string(v)) {
        if (!*json_string_value(v))
            return lerr(L, d, v, field, "'%s' must not be empty", key);
        *arr = v;
        return 0;
    }
    if (!json_is_array(v))
        return lerr(L, d, v, field, "'%s' must be a string or an array of strings", key);
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c) {
        if (!json_is_string(c))
            return lerr(L, d, c, field, "'%s'[%zu] must be a string", key, i);
        if (!*json_string_value(c))
            return lerr(L, d, c, field, "'%s'[%zu] must not be empty", key, i);
    }
    *arr = v;
    return 0;
}

static size_t list_size(json_t *arr) { return json_is_array(arr) ? json_array_size(arr) : 1; }
static json_t *list_get(json_t *arr, size_t i) { return json_is_array(arr) ? json_array_get(arr, i) : arr; }

static int get_opt_string(loader *L, const json_doc *d, const json_t *obj, const char *field,
                          const char *key, char **out)
{
    const char *s = NULL;
    char e[1400];
    int rc = json_doc_get_string(d, obj, field, key, false, &s, e, sizeof e);
    if (rc < 0)
        return lkeep(L, e);
    if (rc == 0 && !(*out = strdup(s)))
        L->oom = true;
    return 0;
}

static int check_keys(loader *L, const json_doc *d, const json_t *obj, const char *field,
                      const char *const *allowed)
{
    char e[1400];
    if (json_doc_check_keys(d, obj, field, allowed, e, sizeof e) < 0)
        return lkeep(L, e);
    return 0;
}

/* ---- patterns ------------------------------------------------------- */

static const char *glob_problem(const char *s)
{
    if (!*s)
        return "is empty";
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20)
            return "holds a control character";
    return NULL;
}

/* A schema glob in a dataset, "schemas" or the schema part of "tables". */
static int check_schema_glob(loader *L, const json_doc *d, const json_t *at, const char *field,
                             const char *s)
{
    const char *prob = glob_problem(s);
    if (prob)
        return lerr(L, d, at, field, "schema pattern '%s' %s", s, prob);
    if (strchr(s, '.'))
        return lerr(L, d, at, field, "schema pattern '%s' holds a '.': name a schema, or use \"tables\" for schema.table", s);
    if (!glob_has_wildcard(s)) {
        if (policy_is_catalog_schema(s) || strcmp(s, "pg_toast") == 0)
            return lerr(L, d, at, field,
                        "'%s' is a system schema: its catalogs are always readable (filtered), and the ones "
                        "that leak data are the built-in dataset '" POLICY_SENSITIVE_DATASET "'", s);
        if (policy_is_reserved_schema(s) && strcmp(s, "pg_temp") != 0)
            return lerr(L, d, at, field, "schema names starting with pg_ are reserved by PostgreSQL ('%s')", s);
    } else if (strncmp(s, "pg_", 3) == 0) {
        return lerr(L, d, at, field,
                    "pattern '%s' can only match reserved pg_ schemas, which wildcards never match", s);
    }
    return 0;
}

static int make_objpat(loader *L, policy_objpat *op, const char *schema, size_t slen, const char *table,
                       const char *text)
{
    char *s = strndup(schema, slen);
    int rc = (!s || glob_compile(&op->schema, s) || glob_compile(&op->table, table) ||
              !(op->text = strdup(text))) ? -1 : 0;
    free(s);
    if (rc)
        L->oom = true;
    return rc;
}

static void objpat_free(policy_objpat *op)
{
    glob_free(&op->schema);
    glob_free(&op->table);
    free(op->text);
}

/* "schema.table" glob. */
static int parse_table_pat(loader *L, const json_doc *d, const json_t *at, const char *field,
                           const char *s, policy_objpat *op)
{
    const char *dot = strchr(s, '.');
    if (!dot || dot == s || !dot[1])
        return lerr(L, d, at, field, "table pattern '%s' must be schema.table (globs allowed, e.g. \"sales_mart.*\")", s);
    if (strchr(dot + 1, '.'))
        return lerr(L, d, at, field, "table pattern '%s' has more than one '.': write schema.table", s);
    char schema[512];
    snprintf(schema, sizeof schema, "%.*s", (int)(dot - s), s);
    if (check_schema_glob(L, d, at, field, schema) < 0)
        return -1;
    const char *prob = glob_problem(dot + 1);
    if (prob)
        return lerr(L, d, at, field, "table pattern '%s' %s", s, prob);
    return make_objpat(L, op, s, (size_t)(dot - s), dot + 1, s);
}

static int parse_subjects(loader *L, const json_doc *d, const json_t *obj, const char *field,
                          policy_subjects *out)
{
    static const char *const keys[] = {"groups", "users", NULL};
    memset(out, 0, sizeof *out);
    if (check_keys(L, d, obj, field, keys) < 0)
        return -1;
    json_t *groups = NULL, *users = NULL;
    int rg = get_str_list(L, d, obj, field, "groups", false, &groups);
    int ru = get_str_list(L, d, obj, field, "users", false, &users);
    if (rg < 0 || ru < 0)
        return -1;
    size_t ng = rg == 0 ? list_size(groups) : 0, nu = ru == 0 ? list_size(users) : 0;
    if (ng + nu == 0)
        return lerr(L, d, obj, field, "needs \"groups\" or \"users\" (use \"users\": \"*\" for everyone)");
    out->groups = calloc(ng ? ng : 1, sizeof *out->groups);
    out->users = calloc(nu ? nu : 1, sizeof *out->users);
    if (!out->groups || !out->users) {
        L->oom = true;
        return -1;
    }
    for (size_t i = 0; i < ng; i++) {
        const char *s = json_string_value(list_get(groups, i));
        if (glob_problem(s))
            return lerr(L, d, list_get(groups, i), field, "group pattern '%s' %s", s, glob_problem(s));
        if (glob_compile(&out->groups[out->n_groups++], s))
            L->oom = true;
    }
    for (size_t i = 0; i < nu; i++) {
        const char *s = json_string_value(list_get(users, i));
        if (glob_problem(s))
            return lerr(L, d, list_get(users, i), field, "user pattern '%s' %s", s, glob_problem(s));
        if (glob_compile(&out->users[out->n_users++], s))
            L->oom = true;
    }
    return 0;
}

static void subjects_free(policy_subjects *s)
{
    for (size_t i = 0; i < s->n_groups; i++)
        glob_free(&s->groups[i]);
    for (size_t i = 0; i < s->n_users; i++)
        glob_free(&s->users[i]);
    free(s->groups);
    free(s->users);
    memset(s, 0, sizeof *s);
}

/* ---- datasets ------------------------------------------------------- */

static policy_dataset *find_dataset(policy_t *p, const char *name)
{
    for (size_t i = 0; i < p->n_datasets; i++)
        if (strcmp(p->datasets[i].name, name) == 0)
            return &p->datasets[i];
    return NULL;
}

static void dataset_free(policy_dataset *ds)
{
    for (size_t i = 0; i < ds->n_pats; i++)
        objpat_free(&ds->pats[i]);
    free(ds->pats);
    free(ds->name);
    free(ds->description);
    free(ds->owner);
    free(ds->classification);
    free(ds->where);
}

static policy_dataset *new_dataset(loader *L)
{
    policy_t *p = L->p;
    policy_dataset *n = realloc(p->datasets, (p->n_datasets + 1) * sizeof *n);
    if (!n) {
        L->oom = true;
        return NULL;
    }
    p->datasets = n;
    memset(&n[p->n_datasets], 0, sizeof *n);
    return &n[p->n_datasets++];
}

static const char *const sensitive_tables[] = {
    "pg_catalog.pg_statistic", "pg_catalog.pg_statistic_ext", "pg_catalog.pg_statistic_ext_data",
    "pg_catalog.pg_stats", "pg_catalog.pg_stats_ext", "pg_catalog.pg_stats_ext_exprs",
    "pg_catalog.pg_stat_activity", "pg_catalog.pg_stat_replication", "pg_catalog.pg_stat_wal_receiver",
    "pg_catalog.pg_stat_subscription", "pg_catalog.pg_stat_statements", "pg_catalog.pg_stat_statements_info",
    "pg_catalog.pg_authid", "pg_catalog.pg_shadow", "pg_catalog.pg_user_mapping",
    "pg_catalog.pg_user_mappings", "pg_catalog.pg_largeobject", "pg_catalog.pg_file_settings",
    "pg_catalog.pg_hba_file_rules", "pg_catalog.pg_ident_file_mappings",
    "*.pg_stat_statements", "*.pg_stat_statements_info",
    NULL};

static int add_builtin_datasets(loader *L)
{
    policy_dataset *ds = new_dataset(L);
    if (!ds)
        return -1;
    ds->builtin = true;
    ds->name = strdup(POLICY_SENSITIVE_DATASET);
    ds->description = strdup("catalog relations that leak table contents, credentials or other sessions' queries");
    ds->owner = strdup("martgate");
    ds->classification = strdup("restricted");
    ds->where = strdup("built-in");
    size_t n = 0;
    while (sensitive_tables[n])
        n++;
    ds->pats = calloc(n, sizeof *ds->pats);
    if (!ds->name || !ds->description || !ds->owner || !ds->classification || !ds->where || !ds->pats) {
        L->oom = true;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = sensitive_tables[i], *dot = strchr(s, '.');
        if (make_objpat(L, &ds->pats[ds->n_pats++], s, (size_t)(dot - s), dot + 1, s))
            return -1;
    }
    return 0;
}

static void parse_datasets(loader *L, const json_doc *d, json_t *obj)
{
    if (!json_is_object(obj)) {
        lerr(L, d, obj, "datasets", "must be an object: dataset name -> {\"schemas\": [...]}");
        return;
    }
    static const char *const keys[] = {"schemas", "description", "owner", "classification", NULL};
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char field[300];
        snprintf(field, sizeof field, "datasets.%s", name);
        if (!valid_name(name)) {
            lerr(L, d, v, field, "dataset name must be 1-%u characters of letters, digits, _ - . : @",
                 POLICY_MAX_NAME);
            continue;
        }
        policy_dataset *prev = find_dataset(L->p, name);
        if (prev) {
            if (prev->builtin)
                lerr(L, d, v, field, "'%s' is a built-in dataset and cannot be redefined", name);
            else
                lerr(L, d, v, field, "dataset '%s' is already defined at %s", name, prev->where);
            continue;
        }
        if (check_keys(L, d, v, field, keys) < 0)
            continue;
        json_t *schemas = NULL;
        if (get_str_list(L, d, v, field, "schemas", true, &schemas) != 0)
            continue;
        size_t ns = list_size(schemas);
        if (ns == 0) {
            lerr(L, d, schemas, field, "'schemas' must list at least one schema pattern");
            continue;
        }
        bool bad = false;
        for (size_t i = 0; i < ns; i++)
            if (check_schema_glob(L, d, list_get(schemas, i), field, json_string_value(list_get(schemas, i))) < 0)
                bad = true;
        if (bad)
            continue;
        policy_dataset *ds = new_dataset(L);
        if (!ds)
            return;
        ds->name = strdup(name);
        ds->where = where_of(d, v);
        ds->pats = calloc(ns, sizeof *ds->pats);
        if (!ds->name || !ds->where || !ds->pats) {
            L->oom = true;
            return;
        }
        for (size_t i = 0; i < ns; i++) {
            const char *s = json_string_value(list_get(schemas, i));
            if (make_objpat(L, &ds->pats[ds->n_pats++], s, strlen(s), "*", s))
                return;
        }
        get_opt_string(L, d, v, field, "description", &ds->description);
        get_opt_string(L, d, v, field, "owner", &ds->owner);
        get_opt_string(L, d, v, field, "classification", &ds->classification);
    }
}

/* ---- groups --------------------------------------------------------- */

static void parse_groups(loader *L, const json_doc *d, json_t *obj)
{
    if (!json_is_object(obj)) {
        lerr(L, d, obj, "groups", "must be an object: group name -> {\"members\": [...]}");
        return;
    }
    static const char *const keys[] = {"members", "description", NULL};
    policy_t *p = L->p;
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char field[300];
        snprintf(field, sizeof field, "groups.%s", name);
        if (!valid_name(name)) {
            lerr(L, d, v, field, "group name must be 1-%u characters of letters, digits, _ - . : @", POLICY_MAX_NAME);
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < p->n_groups; i++)
            if (strcmp(p->groups[i].name, name) == 0) {
                lerr(L, d, v, field, "group '%s' is already defined at %s", name, p->groups[i].where);
                dup = true;
            }
        if (dup || check_keys(L, d, v, field, keys) < 0)
            continue;
        json_t *members = NULL;
        if (get_str_list(L, d, v, field, "members", true, &members) != 0)
            continue;
        policy_group *ng = realloc(p->groups, (p->n_groups + 1) * sizeof *ng);
        if (!ng) {
            L->oom = true;
            return;
        }
        p->groups = ng;
        policy_group *g = &ng[p->n_groups++];
        memset(g, 0, sizeof *g);
        g->name = strdup(name);
        g->where = where_of(d, v);
        size_t nm = list_size(members);
        g->members = calloc(nm ? nm : 1, sizeof *g->members);
        if (!g->name || !g->where || !g->members) {
            L->oom = true;
            return;
        }
        for (size_t i = 0; i < nm; i++)
            if (glob_compile(&g->members[g->n_members++], json_string_value(list_get(members, i))))
                L->oom = true;
        get_opt_string(L, d, v, field, "description", &g->description);
    }
}

/* ---- roles and impersonators ---------------------------------------- */

static void parse_roles(loader *L, const json_doc *d, json_t *obj)
{
    if (!json_is_object(obj)) {
        lerr(L, d, obj, "roles", "must be an object: role name -> {\"groups\": [...]}");
        return;
    }
    static const char *const keys[] = {"groups", "description", NULL};
    policy_t *p = L->p;
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char field[300];
        snprintf(field, sizeof field, "roles.%s", name);
        if (!valid_name(name)) {
            lerr(L, d, v, field, "role name must be 1-%u characters of letters, digits, _ - . : @", POLICY_MAX_NAME);
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < p->n_roles; i++)
            if (strcmp(p->roles[i].name, name) == 0) {
                lerr(L, d, v, field, "role '%s' is already defined at %s", name, p->roles[i].where);
                dup = true;
            }
        if (dup || check_keys(L, d, v, field, keys) < 0)
            continue;
        json_t *groups = NULL;
        if (get_str_list(L, d, v, field, "groups", true, &groups) != 0)
            continue;
        bool bad = false;
        for (size_t i = 0; i < list_size(groups); i++)
            if (glob_has_wildcard(json_string_value(list_get(groups, i)))) {
                lerr(L, d, list_get(groups, i), field, "a role's groups are names, not patterns");
                bad = true;
            }
        if (bad)
            continue;
        policy_role *nr = realloc(p->roles, (p->n_roles + 1) * sizeof *nr);
        if (!nr) {
            L->oom = true;
            return;
        }
        p->roles = nr;
        policy_role *r = &nr[p->n_roles++];
        memset(r, 0, sizeof *r);
        r->name = strdup(name);
        r->where = where_of(d, v);
        r->groups = calloc(list_size(groups) + 1, sizeof *r->groups);
        if (!r->name || !r->where || !r->groups) {
            L->oom = true;
            return;
        }
        for (size_t i = 0; i < list_size(groups); i++)
            if (!(r->groups[r->n_groups++] = strdup(json_string_value(list_get(groups, i)))))
                L->oom = true;
        get_opt_string(L, d, v, field, "description", &r->description);
    }
}

static void parse_impersonators(loader *L, const json_doc *d, json_t *arr)
{
    if (!json_is_array(arr)) {
        lerr(L, d, arr, "impersonators", "must be an array of {\"subjects\": {...}, \"roles\": [...]}");
        return;
    }
    static const char *const keys[] = {"subjects", "roles", "description", NULL};
    policy_t *p = L->p;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        char field[64];
        snprintf(field, sizeof field, "impersonators[%zu]", i);
        if (check_keys(L, d, v, field, keys) < 0)
            continue;
        json_t *subj = json_object_get(v, "subjects");
        if (!subj) {
            lerr(L, d, v, field, "missing required key 'subjects'");
            continue;
        }
        json_t *roles = NULL;
        if (get_str_list(L, d, v, field, "roles", true, &roles) != 0)
            continue;
        const char *desc;
        char e[1400];
        if (json_doc_get_string(d, v, field, "description", false, &desc, e, sizeof e) < 0) {
            lkeep(L, e);
            continue;
        }
        policy_impersonator imp;
        memset(&imp, 0, sizeof imp);
        char sfield[80];
        snprintf(sfield, sizeof sfield, "%s.subjects", field);
        if (parse_subjects(L, d, subj, sfield, &imp.subjects) < 0) {
            subjects_free(&imp.subjects);
            continue;
        }
        imp.roles = calloc(list_size(roles) + 1, sizeof *imp.roles);
        if (!imp.roles) {
            subjects_free(&imp.subjects);
            L->oom = true;
            return;
        }
        for (size_t k = 0; k < list_size(roles); k++) {
            const char *r = json_string_value(list_get(roles, k));
            if (glob_compile(&imp.roles[imp.n_roles++], r))
                L->oom = true;
            bool any = false;
            for (size_t j = 0; j < p->n_roles && !any; j++)
                any = glob_match(&imp.roles[imp.n_roles - 1], p->roles[j].name);
            if (!any)
                lwarn(L, d, list_get(roles, k), field, "role pattern '%s' matches no role in \"roles\"", r);
        }
        policy_impersonator *ni = realloc(p->impersonators, (p->n_impersonators + 1) * sizeof *ni);
        if (!ni) {
            subjects_free(&imp.subjects);
            for (size_t k = 0; k < imp.n_roles; k++)
                glob_free(&imp.roles[k]);
            free(imp.roles);
            L->oom = true;
            return;
        }
        p->impersonators = ni;
        ni[p->n_impersonators++] = imp;
    }
}

/* ---- functions and settings ----------------------------------------- */

static const struct { const char *pat, *reason; } builtin_functions[] = {
    {"pg_read_file", "reads files on the database server"},
    {"pg_read_binary_file", "reads files on the database server"},
    {"pg_stat_file", "reads files on the database server"},
    {"pg_ls_*", "lists files on the database server"},
    {"pg_file_*", "writes files on the database server"},
    {"pg_logdir_ls", "lists files on the database server"},
    {"pg_current_logfile", "names the server's log files"},
    {"lo_*", "large objects read and write server files and unguarded storage"},
    {"loread", "large objects are unguarded storage"},
    {"lowrite", "large objects are unguarded storage"},
    {"query_to_xml*", "runs SQL text martgate cannot see"},
    {"query_to_json*", "runs SQL text martgate cannot see"},
    {"cursor_to_xml*", "reads a cursor's rows around the policy"},
    {"table_to_xml*", "reads a whole table named by a string martgate cannot check"},
    {"schema_to_xml*", "reads whole schemas around the policy"},
    {"database_to_xml*", "reads the whole database around the policy"},
    {"dblink*", "connects to other databases"},
    {"set_config", "changes settings around martgate's checks (use SET)"},
    {"pg_terminate_backend", "signals other sessions"},
    {"pg_cancel_backend", "signals other sessions"},
    {"pg_signal_backend", "signals other sessions"},
    {"pg_reload_conf", "administers the server"},
    {"pg_rotate_logfile*", "administers the server"},
    {"pg_promote", "administers the server"},
    {"pg_switch_wal", "administers the server"},
    {"pg_create_restore_point", "administers the server"},
    {"pg_backup_*", "administers the server"},
    {"pg_start_backup", "administers the server"},
    {"pg_stop_backup", "administers the server"},
    {"pg_wal_replay_*", "administers the server"},
    {"pg_log_backend_memory_contexts", "administers the server"},
    {"pg_import_system_collations", "administers the server"},
    {"pg_stat_reset*", "administers the server"},
    {"pg_create_*_replication_slot", "administers replication"},
    {"pg_drop_replication_slot", "administers replication"},
    {"pg_copy_*_replication_slot", "administers replication"},
    {"pg_replication_*", "administers replication"},
    {"pg_logical_*", "administers replication"},
    {"binary_upgrade_*", "administers the server"},
    {"pg_stat_get_activity", "shows other sessions' queries"},
    {"pg_stat_get_backend_activity*", "shows other sessions' queries"},
    {"pg_stat_statements*", "shows other sessions' queries"},
    {"pg_notify", "sends messages to other sessions"},
    {"nextval", "changes a sequence (a write martgate cannot attribute)"},
    {"setval", "changes a sequence (a write martgate cannot attribute)"},
    {NULL, NULL}};

static int add_fnpat(loader *L, const char *text, const char *reason)
{
    policy_t *p = L->p;
    policy_fnpat *n = realloc(p->functions, (p->n_functions + 1) * sizeof *n);
    if (!n) {
        L->oom = true;
        return -1;
    }
    p->functions = n;
    policy_fnpat *f = &n[p->n_functions++];
    memset(f, 0, sizeof *f);
    const char *dot = strchr(text, '.');
    const char *name = text;
    if (dot) {
        char schema[512];
        snprintf(schema, sizeof schema, "%.*s", (int)(dot - text), text);
        name = dot + 1;
        if (strcmp(schema, "pg_catalog") != 0) {   /* pg_catalog.x is x */
            f->has_schema = true;
            if (glob_compile(&f->schema, schema))
                L->oom = true;
        }
    }
    if (glob_compile(&f->name, name) || !(f->text = strdup(text)) ||
        (reason && !(f->reason = strdup(reason))))
        L->oom = true;
    return 0;
}

static void parse_functions(loader *L, const json_doc *d, json_t *obj)
{
    static const char *const keys[] = {"deny", NULL};
    if (check_keys(L, d, obj, "functions", keys) < 0)
        return;
    json_t *deny = NULL;
    if (get_str_list(L, d, obj, "functions", "deny", true, &deny) != 0)
        return;
    for (size_t i = 0; i < list_size(deny); i++) {
        json_t *it = list_get(deny, i);
        const char *s = json_string_value(it);
        const char *dot = strchr(s, '.');
        if ((dot && (dot == s || !dot[1] || strchr(dot + 1, '.'))) || glob_problem(s)) {
            lerr(L, d, it, "functions.deny", "'%s' must be name or schema.name (globs allowed)", s);
            continue;
        }
        add_fnpat(L, s, NULL);
    }
}

static void parse_settings(loader *L, const json_doc *d, json_t *obj)
{
    static const char *const keys[] = {"deny", NULL};
    if (check_keys(L, d, obj, "settings", keys) < 0)
        return;
    json_t *deny = NULL;
    if (get_str_list(L, d, obj, "settings", "deny", true, &deny) != 0)
        return;
    policy_t *p = L->p;
    for (size_t i = 0; i < list_size(deny); i++) {
        json_t *it = list_get(deny, i);
        const char *s = json_string_value(it);
        if (glob_problem(s)) {
            lerr(L, d, it, "settings.deny", "'%s' %s", s, glob_problem(s));
            continue;
        }
        if (strcmp(s, "search_path") == 0) {
            lerr(L, d, it, "settings.deny", "search_path is always checked against what the principal may read; it cannot be denied outright");
            continue;
        }
        policy_setpat *n = realloc(p->settings, (p->n_settings + 1) * sizeof *n);
        if (!n) {
            L->oom = true;
            return;
        }
        p->settings = n;
        policy_setpat *sp = &n[p->n_settings++];
        memset(sp, 0, sizeof *sp);
        /* GUC names are case-insensitive: compare lower case */
        char low[256];
        snprintf(low, sizeof low, "%s", s);
        for (char *c = low; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        if (glob_compile(&sp->name, low) || !(sp->text = strdup(s)))
            L->oom = true;
    }
}

/* ---- defaults ------------------------------------------------------- */

static void parse_defaults(loader *L, const json_doc *d, json_t *obj)
{
    static const char *const keys[] = {"search_path", "full_catalog_visibility", NULL};
    if (check_keys(L, d, obj, "defaults", keys) < 0)
        return;
    policy_t *p = L->p;
    json_t *sp = json_object_get(obj, "search_path");
    if (sp) {
        if (L->defaults_search_path_where) {
            lerr(L, d, sp, "defaults.search_path", "already defined at %s (one file holds it)",
                 L->defaults_search_path_where);
        } else if (!json_is_array(sp)) {
            lerr(L, d, sp, "defaults.search_path",
                 "must be an array of {\"subjects\": {...}, \"schemas\": [...]} (first match wins)");
        } else {
            char *w = where_of(d, sp);
            snprintf(L->where_buf[0], sizeof L->where_buf[0], "%s", w ? w : "?");
            free(w);
            L->defaults_search_path_where = L->where_buf[0];
            static const char *const ekeys[] = {"subjects", "schemas", NULL};
            p->search_paths = calloc(json_array_size(sp) + 1, sizeof *p->search_paths);
            if (!p->search_paths) {
                L->oom = true;
                return;
            }
            size_t i;
            json_t *e;
            json_array_foreach(sp, i, e) {
                char field[64];
                snprintf(field, sizeof field, "defaults.search_path[%zu]", i);
                if (check_keys(L, d, e, field, ekeys) < 0)
                    continue;
                json_t *schemas = json_object_get(e, "schemas");
                if (!schemas) {
                    lerr(L, d, e, field, "missing required key 'schemas' (use [] for an empty search_path)");
                    continue;
                }
                if (json_is_array(schemas) && json_array_size(schemas) == 0) {
                    /* empty path: fine */
                } else if (get_str_list(L, d, e, field, "schemas", true, &schemas) != 0) {
                    continue;
                }
                size_t ns = json_is_array(schemas) ? json_array_size(schemas) : 1;
                bool bad = false;
                for (size_t k = 0; k < ns; k++) {
                    json_t *it = list_get(schemas, k);
                    const char *s = json_string_value(it);
                    if (strcmp(s, "$user") == 0) {
                        lerr(L, d, it, field, "\"$user\" would name the warehouse login's schema, not the person's: name the schema");
                        bad = true;
                    } else if (glob_has_wildcard(s) || strchr(s, '.')) {
                        lerr(L, d, it, field, "'%s' must be a schema name (no patterns)", s);
                        bad = true;
                    }
                }
                policy_search_path *ent = &p->search_paths[p->n_search_paths];
                json_t *subj = json_object_get(e, "subjects");
                char sfield[80];
                snprintf(sfield, sizeof sfield, "%s.subjects", field);
                if (subj) {
                    if (parse_subjects(L, d, subj, sfield, &ent->subjects) < 0) {
                        subjects_free(&ent->subjects);
                        continue;
                    }
                } else {
                    ent->everyone = true;
                }
                if (bad) {
                    subjects_free(&ent->subjects);
                    continue;
                }
                ent->schemas = calloc(ns + 1, sizeof *ent->schemas);
                if (!ent->schemas) {
                    L->oom = true;
                    return;
                }
                for (size_t k = 0; k < ns; k++)
                    if (!(ent->schemas[ent->n_schemas++] = strdup(json_string_value(list_get(schemas, k)))))
                        L->oom = true;
                p->n_search_paths++;
            }
        }
    }
    json_t *fc = json_object_get(obj, "full_catalog_visibility");
    if (fc) {
        if (L->defaults_catalog_where) {
            lerr(L, d, fc, "defaults.full_catalog_visibility", "already defined at %s (one file holds it)",
                 L->defaults_catalog_where);
        } else {
            char *w = where_of(d, fc);
            snprintf(L->where_buf[1], sizeof L->where_buf[1], "%s", w ? w : "?");
            free(w);
            L->defaults_catalog_where = L->where_buf[1];
            if (parse_subjects(L, d, fc, "defaults.full_catalog_visibility", &p->full_catalog) == 0)
                p->has_full_catalog = true;
            else
                subjects_free(&p->full_catalog);
        }
    }
}

/* ---- rules ---------------------------------------------------------- */

static void rule_free(policy_rule *r)
{
    free(r->id);
    free(r->description);
    subjects_free(&r->subjects);
    free(r->datasets);
    for (size_t i = 0; i < r->n_pats; i++)
        objpat_free(&r->pats[i]);
    free(r->pats);
    tpl_free(&r->row_filter);
    for (size_t i = 0; i < r->n_columns; i++) {
        free(r->columns[i].name);
        tpl_free(&r->columns[i].expr);
    }
    free(r->columns);
    free(r->where);
    free(r->objects_text);
}

static const struct { const char *name; policy_mask_kind kind; } mask_names[] = {
    {"null", MASK_NULL}, {"hash", MASK_HASH}, {"redact", MASK_REDACT},
    {"last4", MASK_LAST4}, {"deny", MASK_DENY}, {NULL, 0}};

static int parse_columns(loader *L, const json_doc *d, json_t *obj, const char *rfield, policy_rule *r)
{
    char field[300];
    snprintf(field, sizeof field, "%s.columns", rfield);
    if (!json_is_object(obj) || json_object_size(obj) == 0)
        return lerr(L, d, obj, field, "must be an object: column name -> \"null\"|\"hash\"|\"redact\"|\"last4\"|\"deny\"|{\"expr\": \"SQL over ${column}\"}");
    r->columns = calloc(json_object_size(obj), sizeof *r->columns);
    if (!r->columns) {
        L->oom = true;
        return -1;
    }
    int rc = 0;
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        char cfield[400];
        snprintf(cfield, sizeof cfield, "%s.%s", field, name);
        if (!*name || strlen(name) > 63) {
            rc = lerr(L, d, v, cfield, "column names are 1-63 bytes");
            continue;
        }
        policy_column *c = &r->columns[r->n_columns];
        if (json_is_string(v)) {
            const char *m = json_string_value(v);
            size_t k;
            for (k = 0; mask_names[k].name; k++)
                if (strcmp(mask_names[k].name, m) == 0)
                    break;
            if (!mask_names[k].name) {
                rc = lerr(L, d, v, cfield, "unknown mask '%s' (known: null, hash, redact, last4, deny, or {\"expr\": \"...\"})", m);
                continue;
            }
            c->kind = mask_names[k].kind;
        } else if (json_is_object(v)) {
            static const char *const keys[] = {"expr", NULL};
            if (check_keys(L, d, v, cfield, keys) < 0) {
                rc = -1;
                continue;
            }
            const char *expr;
            char e[1400];
            if (json_doc_get_string(d, v, cfield, "expr", true, &expr, e, sizeof e) < 0) {
                rc = lkeep(L, e);
                continue;
            }
            char terr[512];
            if (tpl_compile(&c->expr, expr, true, terr, sizeof terr) < 0 ||
                tpl_check_sql(&c->expr, terr, sizeof terr) < 0) {
                tpl_free(&c->expr);
                rc = lerr(L, d, json_object_get(v, "expr"), cfield, "expr %s", terr);
                continue;
            }
            c->kind = MASK_EXPR;
        } else {
            rc = lerr(L, d, v, cfield, "must be a mask name or {\"expr\": \"...\"}");
            continue;
        }
        if (!(c->name = strdup(name))) {
            tpl_free(&c->expr);
            L->oom = true;
            return -1;
        }
        r->n_columns++;
    }
    return rc;
}

static void append_text(char *buf, size_t len, const char *s)
{
    size_t off = strlen(buf);
    if (off < len)
        snprintf(buf + off, len - off, "%s", s);
}

static int parse_rule(loader *L, const json_doc *d, json_t *v, size_t idx, policy_rule *r)
{
    static const char *const keys[] = {"id", "description", "priority", "subjects", "objects",
                                       "access", "row_filter", "columns", NULL};
    static const char *const okeys[] = {"datasets", "schemas", "tables", NULL};
    char field[200], e[1400];
    memset(r, 0, sizeof *r);
    snprintf(field, sizeof field, "rules[%zu]", idx);
    const char *id = NULL, *access = NULL, *filter = NULL, *desc = NULL;
    if (json_doc_get_string(d, v, field, "id", true, &id, e, sizeof e) < 0)
        return lkeep(L, e);
    snprintf(field, sizeof field, "rules[%zu] '%s'", idx, id);
    if (check_keys(L, d, v, field, keys) < 0)
        return -1;
    if (!valid_name(id))
        return lerr(L, d, json_object_get(v, "id"), field, "rule id must be 1-%u characters of letters, digits, _ - . : @",
                    POLICY_MAX_NAME);
    int rc = 0;
    if (json_doc_get_string(d, v, field, "access", true, &access, e, sizeof e) < 0)
        return lkeep(L, e);
    if (strcmp(access, "read") == 0)
        r->access = ACCESS_READ;
    else if (strcmp(access, "write") == 0)
        r->access = ACCESS_WRITE;
    else if (strcmp(access, "deny") == 0)
        r->access = ACCESS_DENY;
    else
        rc = lerr(L, d, json_object_get(v, "access"), field, "access '%s' must be read, write or deny", access);
    r->priority = 0;
    if (json_doc_get_int(d, v, field, "priority", false, -1000000, 1000000, &r->priority, e, sizeof e) < 0)
        rc = lkeep(L, e);
    if (json_doc_get_string(d, v, field, "description", false, &desc, e, sizeof e) < 0)
        rc = lkeep(L, e);
    if (!(r->id = strdup(id)) || (desc && !(r->description = strdup(desc))) || !(r->where = where_of(d, v))) {
        L->oom = true;
        return -1;
    }
    /* subjects */
    json_t *subj = json_object_get(v, "subjects");
    char sfield[260];
    snprintf(sfield, sizeof sfield, "%s.subjects", field);
    if (!subj)
        rc = lerr(L, d, v, field, "missing required key 'subjects'");
    else if (parse_subjects(L, d, subj, sfield, &r->subjects) < 0)
        rc = -1;
    /* objects */
    json_t *objs = json_object_get(v, "objects");
    char ofield[260];
    snprintf(ofield, sizeof ofield, "%s.objects", field);
    char otext[512] = "";
    if (!objs) {
        rc = lerr(L, d, v, field, "missing required key 'objects'");
    } else if (check_keys(L, d, objs, ofield, okeys) < 0) {
        rc = -1;
    } else {
        json_t *dsl = NULL, *schemas = NULL, *tables = NULL;
        int r1 = get_str_list(L, d, objs, ofield, "datasets", false, &dsl);
        int r2 = get_str_list(L, d, objs, ofield, "schemas", false, &schemas);
        int r3 = get_str_list(L, d, objs, ofield, "tables", false, &tables);
        size_t nd = r1 == 0 ? list_size(dsl) : 0, ns = r2 == 0 ? list_size(schemas) : 0,
               nt = r3 == 0 ? list_size(tables) : 0;
        if (r1 < 0 || r2 < 0 || r3 < 0) {
            rc = -1;
        } else if (nd + ns + nt == 0) {
            rc = lerr(L, d, objs, ofield, "needs \"datasets\", \"schemas\" or \"tables\"");
        } else {
            r->datasets = calloc(nd + 1, sizeof *r->datasets);
            r->pats = calloc(ns + nt + 1, sizeof *r->pats);
            if (!r->datasets || !r->pats) {
                L->oom = true;
                return -1;
            }
            if (nd) {
                append_text(otext, sizeof otext, nd > 1 ? "datasets " : "dataset ");
                for (size_t i = 0; i < nd; i++) {
                    const char *name = json_string_value(list_get(dsl, i));
                    policy_dataset *ds = find_dataset(L->p, name);
                    if (!ds) {
                        rc = lerr(L, d, list_get(dsl, i), ofield, "dataset '%s' is not defined", name);
                        continue;
                    }
                    r->datasets[r->n_datasets++] = ds;
                    if (i)
                        append_text(otext, sizeof otext, ", ");
                    append_text(otext, sizeof otext, name);
                }
            }
            for (size_t i = 0; i < ns; i++) {
                json_t *it = list_get(schemas, i);
                const char *s = json_string_value(it);
                if (check_schema_glob(L, d, it, ofield, s) < 0) {
                    rc = -1;
                    continue;
                }
                if (make_objpat(L, &r->pats[r->n_pats++], s, strlen(s), "*", s))
                    return -1;
                append_text(otext, sizeof otext, *otext ? (i ? ", " : "; schema ") : "schema ");
                append_text(otext, sizeof otext, s);
            }
            for (size_t i = 0; i < nt; i++) {
                json_t *it = list_get(tables, i);
                const char *s = json_string_value(it);
                if (parse_table_pat(L, d, it, ofield, s, &r->pats[r->n_pats]) < 0) {
                    rc = -1;
                    continue;
                }
                r->n_pats++;
                append_text(otext, sizeof otext, *otext ? (i ? ", " : "; table ") : "table ");
                append_text(otext, sizeof otext, s);
            }
        }
    }
    if (!(r->objects_text = strdup(otext))) {
        L->oom = true;
        return -1;
    }
    /* row filter and columns: reads only */
    json_t *rf = json_object_get(v, "row_filter");
    if (json_doc_get_string(d, v, field, "row_filter", false, &filter, e, sizeof e) < 0) {
        rc = lkeep(L, e);
    } else if (filter) {
        char terr[512];
        if (r->access != ACCESS_READ) {
            rc = lerr(L, d, rf, field, "row_filter applies to reads: only a rule with access read may have one");
        } else if (tpl_compile(&r->row_filter, filter, false, terr, sizeof terr) < 0 ||
                   tpl_check_sql(&r->row_filter, terr, sizeof terr) < 0) {
            tpl_free(&r->row_filter);
            rc = lerr(L, d, rf, field, "row_filter %s", terr);
        } else {
            r->has_row_filter = true;
        }
    }
    json_t *cols = json_object_get(v, "columns");
    if (cols) {
        if (r->access != ACCESS_READ)
            rc = lerr(L, d, cols, field, "columns (masks) apply to reads: only a rule with access read may have them");
        else if (parse_columns(L, d, cols, field, r) < 0)
            rc = -1;
    }
    return rc;
}

static void parse_rules(loader *L, const json_doc *d, json_t *arr, size_t *seq)
{
    if (!json_is_array(arr)) {
        lerr(L, d, arr, "rules", "must be an array of rules (order matters: first match wins)");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        policy_rule r;
        int rc = parse_rule(L, d, v, i, &r);
        if (rc == 0 && r.id) {
            for (size_t k = 0; k < L->n_pend; k++)
                if (strcmp(L->pend[k].r.id, r.id) == 0) {
                    char f[200];
                    snprintf(f, sizeof f, "rules[%zu]", i);
                    rc = lerr(L, d, json_object_get(v, "id"), f, "rule id '%s' is already used at %s", r.id,
                              L->pend[k].r.where);
                    break;
                }
        }
        if (rc < 0) {
            rule_free(&r);
            continue;
        }
        struct pending_rule *np = realloc(L->pend, (L->n_pend + 1) * sizeof *np);
        if (!np) {
            rule_free(&r);
            L->oom = true;
            return;
        }
        L->pend = np;
        np[L->n_pend].r = r;
        np[L->n_pend].seq = (*seq)++;
        L->n_pend++;
    }
}

static int pending_cmp(const void *a, const void *b)
{
    const struct pending_rule *x = a, *y = b;
    if (x->r.priority != y->r.priority)
        return x->r.priority > y->r.priority ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- shadowing ------------------------------------------------------ */

static bool subjects_cover(const policy_subjects *a, const policy_subjects *b)
{
    for (size_t i = 0; i < a->n_users; i++)
        if (a->users[i].kind == GLOB_ANY)
            return true;   /* everyone */
    for (size_t i = 0; i < b->n_groups; i++) {
        bool ok = false;
        for (size_t k = 0; k < a->n_groups && !ok; k++)
            ok = glob_covers(&a->groups[k], &b->groups[i]);
        if (!ok)
            return false;
    }
    for (size_t i = 0; i < b->n_users; i++) {
        bool ok = false;
        for (size_t k = 0; k < a->n_users && !ok; k++)
            ok = glob_covers(&a->users[k], &b->users[i]);
        if (!ok)
            return false;
    }
    return true;
}

static bool objpat_covered_by_rule(const policy_rule *a, const policy_objpat *op)
{
    for (size_t i = 0; i < a->n_pats; i++)
        if (glob_covers(&a->pats[i].schema, &op->schema) && glob_covers(&a->pats[i].table, &op->table))
            return true;
    for (size_t k = 0; k < a->n_datasets; k++)
        for (size_t i = 0; i < a->datasets[k]->n_pats; i++) {
            const policy_objpat *x = &a->datasets[k]->pats[i];
            if (glob_covers(&x->schema, &op->schema) && glob_covers(&x->table, &op->table))
                return true;
        }
    return false;
}

static bool objects_cover(const policy_rule *a, const policy_rule *b)
{
    for (size_t k = 0; k < b->n_datasets; k++) {
        bool same = false;
        for (size_t j = 0; j < a->n_datasets && !same; j++)
            same = a->datasets[j] == b->datasets[k];
        if (same)
            continue;
        if (b->datasets[k]->builtin)
            return false;   /* only a rule naming it reaches it */
        for (size_t i = 0; i < b->datasets[k]->n_pats; i++)
            if (!objpat_covered_by_rule(a, &b->datasets[k]->pats[i]))
                return false;
    }
    for (size_t i = 0; i < b->n_pats; i++)
        if (!objpat_covered_by_rule(a, &b->pats[i]))
            return false;
    return true;
}

static void warn_shadowed(loader *L)
{
    policy_t *p = L->p;
    for (size_t j = 1; j < p->n_rules; j++) {
        const policy_rule *b = &p->rules[j];
        for (size_t i = 0; i < j; i++) {
            const policy_rule *a = &p->rules[i];
            /* a read rule says nothing about writes: it cannot hide a write/deny rule's writes */
            if (a->access == ACCESS_READ && b->access != ACCESS_READ)
                continue;
            if (subjects_cover(&a->subjects, &b->subjects) && objects_cover(a, b)) {
                char line[1200];
                snprintf(line, sizeof line,
                         "%s: rules: rule '%s' can never match: rule '%s' (%s) comes first and covers the same or "
                         "broader subjects and objects",
                         b->where, b->id, a->id, a->where);
                push_msg(L, false, line);
                break;
            }
        }
    }
}

/* ---- files ---------------------------------------------------------- */

static const char *const top_keys[] = {"version", "description", "datasets", "groups", "rules", "defaults",
                                       "functions", "settings", "roles", "impersonators", NULL};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_doc(loader *L, json_doc *d)
{
    json_doc **n = realloc(L->docs, (L->n_docs + 1) * sizeof *n);
    if (!n) {
        json_doc_free(d);
        L->oom = true;
        return -1;
    }
    L->docs = n;
    n[L->n_docs++] = d;
    json_t *root = json_doc_root(d);
    if (check_keys(L, d, root, "(top level)", top_keys) < 0)
        return -1;
    long long version = 1;
    char e[1400];
    if (json_doc_get_int(d, root, "(top level)", "version", false, 1, 1, &version, e, sizeof e) < 0)
        lkeep(L, e);
    const char *desc;
    if (json_doc_get_string(d, root, "(top level)", "description", false, &desc, e, sizeof e) < 0)
        lkeep(L, e);
    return 0;
}

static void read_dir(loader *L, const char *path)
{
    DIR *dir = opendir(path);
    if (!dir) {
        char line[1200];
        snprintf(line, sizeof line, "%s: cannot open directory: %s", path, strerror(errno));
        push_msg(L, true, line);
        return;
    }
    char **names = NULL;
    size_t n = 0, total = 0;
    struct dirent *de;
    bool too_many = false;
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        if (n >= POLICY_MAX_FILES) {
            too_many = true;
            break;
        }
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn) {
            L->oom = true;
            break;
        }
        names = nn;
        if (!(names[n] = strdup(de->d_name))) {
            L->oom = true;
            break;
        }
        n++;
    }
    closedir(dir);
    if (too_many) {
        char line[1200];
        snprintf(line, sizeof line, "%s: more than %u policy files", path, POLICY_MAX_FILES);
        push_msg(L, true, line);
    } else if (n == 0 && !L->oom) {
        char line[1200];
        snprintf(line, sizeof line, "%s: no *.json policy files in the directory", path);
        push_msg(L, true, line);
    }
    if (n)
        qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n && !too_many; i++) {
        char full[4096], e[1400];
        snprintf(full, sizeof full, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", names[i]);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            total += (size_t)st.st_size;
            if (total > POLICY_MAX_TOTAL_BYTES) {
                char line[4200];
                snprintf(line, sizeof line, "%s: the policy files add up to more than %u bytes", full,
                         POLICY_MAX_TOTAL_BYTES);
                push_msg(L, true, line);
                break;
            }
        }
        json_doc *d = json_doc_load(full, POLICY_MAX_FILE_BYTES, e, sizeof e);
        if (!d)
            lkeep(L, e);
        else
            add_doc(L, d);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- free ----------------------------------------------------------- */

static void policy_free(policy_t *p)
{
    if (!p)
        return;
    free(p->source);
    for (size_t i = 0; i < p->n_datasets; i++)
        dataset_free(&p->datasets[i]);
    free(p->datasets);
    for (size_t i = 0; i < p->n_groups; i++) {
        policy_group *g = &p->groups[i];
        for (size_t k = 0; k < g->n_members; k++)
            glob_free(&g->members[k]);
        free(g->members);
        free(g->name);
        free(g->description);
        free(g->where);
    }
    free(p->groups);
    for (size_t i = 0; i < p->n_rules; i++)
        rule_free(&p->rules[i]);
    free(p->rules);
    for (size_t i = 0; i < p->n_search_paths; i++) {
        subjects_free(&p->search_paths[i].subjects);
        for (size_t k = 0; k < p->search_paths[i].n_schemas; k++)
            free(p->search_paths[i].schemas[k]);
        free(p->search_paths[i].schemas);
    }
    free(p->search_paths);
    subjects_free(&p->full_catalog);
    for (size_t i = 0; i < p->n_functions; i++) {
        glob_free(&p->functions[i].schema);
        glob_free(&p->functions[i].name);
        free(p->functions[i].text);
        free(p->functions[i].reason);
    }
    free(p->functions);
    for (size_t i = 0; i < p->n_settings; i++) {
        glob_free(&p->settings[i].name);
        free(p->settings[i].text);
    }
    free(p->settings);
    for (size_t i = 0; i < p->n_roles; i++) {
        policy_role *r = &p->roles[i];
        for (size_t k = 0; k < r->n_groups; k++)
            free(r->groups[k]);
        free(r->groups);
        free(r->name);
        free(r->description);
        free(r->where);
    }
    free(p->roles);
    for (size_t i = 0; i < p->n_impersonators; i++) {
        subjects_free(&p->impersonators[i].subjects);
        for (size_t k = 0; k < p->impersonators[i].n_roles; k++)
            glob_free(&p->impersonators[i].roles[k]);
        free(p->impersonators[i].roles);
    }
    free(p->impersonators);
    free(p);
}

policy_t *policy_ref(policy_t *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void policy_unref(policy_t *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        policy_free(p);
}

const char *policy_source(const policy_t *p) { return p->source; }

void policy_summary(const policy_t *p, char *buf, size_t len)
{
    size_t nds = 0;
    for (size_t i = 0; i < p->n_datasets; i++)
        nds += !p->datasets[i].builtin;
    snprintf(buf, len, "%zu file%s, %zu dataset%s, %zu group%s, %zu rule%s, %zu role%s", p->n_files,
             p->n_files == 1 ? "" : "s", nds, nds == 1 ? "" : "s", p->n_groups, p->n_groups == 1 ? "" : "s",
             p->n_rules, p->n_rules == 1 ? "" : "s", p->n_roles, p->n_roles == 1 ? "" : "s");
}

/* ---- the load ------------------------------------------------------- */

/* Builds the policy from L->docs; returns 0 or -1 (errors in L->msgs). */
static int build(loader *L)
{
    policy_t *p = L->p;
    if (add_builtin_datasets(L) < 0)
        return -1;
    for (size_t k = 0; builtin_functions[k].pat; k++)
        add_fnpat(L, builtin_functions[k].pat, builtin_functions[k].reason);
    /* pass 1: names (datasets, groups, roles) so rules may refer across files */
    for (size_t i = 0; i < L->n_docs; i++) {
        json_t *root = json_doc_root(L->docs[i]);
        if (!json_is_object(root))
            continue;
        json_t *v;
        if ((v = json_object_get(root, "datasets")))
            parse_datasets(L, L->docs[i], v);
        if ((v = json_object_get(root, "groups")))
            parse_groups(L, L->docs[i], v);
        if ((v = json_object_get(root, "roles")))
            parse_roles(L, L->docs[i], v);
    }
    /* pass 2: everything that refers to names */
    size_t seq = 0;
    for (size_t i = 0; i < L->n_docs; i++) {
        json_t *root = json_doc_root(L->docs[i]);
        if (!json_is_object(root))
            continue;
        json_t *v;
        if ((v = json_object_get(root, "rules")))
            parse_rules(L, L->docs[i], v, &seq);
        if ((v = json_object_get(root, "defaults")))
            parse_defaults(L, L->docs[i], v);
        if ((v = json_object_get(root, "functions")))
            parse_functions(L, L->docs[i], v);
        if ((v = json_object_get(root, "settings")))
            parse_settings(L, L->docs[i], v);
        if ((v = json_object_get(root, "impersonators")))
            parse_impersonators(L, L->docs[i], v);
    }
    /* rules in evaluation order: priority (higher first), then file name order, then position */
    if (L->n_pend)
        qsort(L->pend, L->n_pend, sizeof *L->pend, pending_cmp);
    p->rules = calloc(L->n_pend + 1, sizeof *p->rules);
    if (!p->rules) {
        L->oom = true;
        return -1;
    }
    for (size_t i = 0; i < L->n_pend; i++) {
        p->rules[i] = L->pend[i].r;
        p->rules[i].order = i;
    }
    p->n_rules = L->n_pend;
    free(L->pend);
    L->pend = NULL;
    L->n_pend = 0;
    p->sensitive = find_dataset(p, POLICY_SENSITIVE_DATASET);
    if (L->msgs.n_errors == 0) {
        warn_shadowed(L);
        for (size_t i = 0; i < p->n_datasets; i++) {
            if (p->datasets[i].builtin)
                continue;
            bool used = false;
            for (size_t r = 0; r < p->n_rules && !used; r++)
                for (size_t k = 0; k < p->rules[r].n_datasets && !used; k++)
                    used = p->rules[r].datasets[k] == &p->datasets[i];
            if (!used) {
                char line[900];
                snprintf(line, sizeof line, "%s: datasets.%s: no rule names this dataset (only its schemas' "
                         "own rules, if any, reach it)", p->datasets[i].where, p->datasets[i].name);
                push_msg(L, false, line);
            }
        }
    }
    if (L->oom) {
        push_msg(L, true, "out of memory while loading the policy");
        return -1;
    }
    return L->msgs.n_errors ? -1 : 0;
}

static int finish(loader *L, const char *source, policy_t **out, policy_messages *msgs, char *err, size_t errlen)
{
    int rc = -1;
    if (!L->oom) {
        L->p->source = strdup(source);
        L->p->n_files = L->n_docs;
        rc = build(L);
        if (!L->p->source && rc == 0) {
            push_msg(L, true, "out of memory");
            rc = -1;
        }
    }
    for (size_t i = 0; i < L->n_pend; i++)
        rule_free(&L->pend[i].r);
    free(L->pend);
    for (size_t i = 0; i < L->n_docs; i++)
        json_doc_free(L->docs[i]);
    free(L->docs);
    if (rc == 0) {
        atomic_init(&L->p->refs, 1);
        *out = L->p;
    } else {
        policy_free(L->p);
        *out = NULL;
        if (L->msgs.n_errors == 0)
            push_msg(L, true, "out of memory");
        if (L->msgs.n_errors > 1)
            snprintf(err, errlen, "%s (and %zu more error%s)", L->msgs.errors[0], L->msgs.n_errors - 1,
                     L->msgs.n_errors == 2 ? "" : "s");
        else
            snprintf(err, errlen, "%s", L->msgs.errors[0]);
    }
    if (msgs)
        *msgs = L->msgs;
    else
        policy_messages_free(&L->msgs);
    return rc;
}

int policy_load(const char *path, policy_t **out, policy_messages *msgs, char *err, size_t errlen)
{
    loader L;
    memset(&L, 0, sizeof L);
    if (msgs)
        memset(msgs, 0, sizeof *msgs);
    *out = NULL;
    L.p = calloc(1, sizeof *L.p);
    if (!L.p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        char line[1200];
        snprintf(line, sizeof line, "%s: cannot open: %s", path, strerror(errno));
        push_msg(&L, true, line);
    } else if (S_ISDIR(st.st_mode)) {
        read_dir(&L, path);
    } else {
        char e[1400];
        json_doc *d = json_doc_load(path, POLICY_MAX_FILE_BYTES, e, sizeof e);
        if (!d)
            lkeep(&L, e);
        else
            add_doc(&L, d);
    }
    return finish(&L, path, out, msgs, err, errlen);
}

int policy_load_text(const char *name, const char *text, size_t len, policy_t **out, policy_messages *msgs,
                     char *err, size_t errlen)
{
    loader L;
    memset(&L, 0, sizeof L);
    if (msgs)
        memset(msgs, 0, sizeof *msgs);
    *out = NULL;
    L.p = calloc(1, sizeof *L.p);
    if (!L.p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char e[1400];
    if (len > POLICY_MAX_FILE_BYTES) {
        char line[1200];
        snprintf(line, sizeof line, "%s: policy is %zu bytes, more than the limit of %u", name, len,
                 POLICY_MAX_FILE_BYTES);
        push_msg(&L, true, line);
    } else {
        json_doc *d = json_doc_parse(name, text, len, e, sizeof e);
        if (!d)
            lkeep(&L, e);
        else
            add_doc(&L, d);
    }
    return finish(&L, name, out, msgs, err, errlen);
}
