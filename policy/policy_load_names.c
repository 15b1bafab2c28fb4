/*
 * policy_load_names: the sections of a policy that define names and lists:
 * datasets, groups, roles and impersonators, denied functions and settings
 * (with the built-in lists), and defaults.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/catalog_classes.h"
#include "policy/policy_load_internal.h"

/* ---- datasets ------------------------------------------------------- */

policy_dataset *find_dataset(policy_t *p, const char *name)
{
    for (size_t i = 0; i < p->n_datasets; i++)
        if (strcmp(p->datasets[i].name, name) == 0)
            return &p->datasets[i];
    return NULL;
}

void dataset_free(policy_dataset *ds)
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

/* pg_sensitive: the RESTRICTED catalog relations (policy/catalog_classes.c),
 * and pg_stat_statements in whatever schema the extension went to. */
static const char *const sensitive_extension_tables[] = {
    "*.pg_stat_statements", "*.pg_stat_statements_info", NULL};

int add_builtin_datasets(loader *L)
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
    const char *schema, *name;
    catalog_class cls;
    while (sensitive_extension_tables[n])
        n++;
    for (size_t i = 0; catalog_classes_at(i, &schema, &name, &cls); i++)
        n += cls == CATALOG_RESTRICTED;
    ds->pats = calloc(n, sizeof *ds->pats);
    if (!ds->name || !ds->description || !ds->owner || !ds->classification || !ds->where || !ds->pats) {
        L->oom = true;
        return -1;
    }
    for (size_t i = 0; catalog_classes_at(i, &schema, &name, &cls); i++) {
        if (cls != CATALOG_RESTRICTED)
            continue;
        char text[160];
        snprintf(text, sizeof text, "%s.%s", schema, name);
        if (make_objpat(L, &ds->pats[ds->n_pats++], text, strlen(schema), name, text))
            return -1;
    }
    for (size_t i = 0; sensitive_extension_tables[i]; i++) {
        const char *s = sensitive_extension_tables[i], *dot = strchr(s, '.');
        if (make_objpat(L, &ds->pats[ds->n_pats++], s, (size_t)(dot - s), dot + 1, s))
            return -1;
    }
    return 0;
}

void parse_datasets(loader *L, const json_doc *d, json_t *obj)
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

void parse_groups(loader *L, const json_doc *d, json_t *obj)
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

void parse_roles(loader *L, const json_doc *d, json_t *obj)
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

void parse_impersonators(loader *L, const json_doc *d, json_t *arr)
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

/* defaults.KEY, one of two values (a or b), defined by one file only
 * (*where: where, in L->where_buf[slot]). Returns the value, or NULL when
 * absent or wrong (the error is recorded with `must`). */
static const char *default_choice(loader *L, const json_doc *d, json_t *obj, const char *key, const char *a,
                                  const char *b, int slot, const char **where, const char *must)
{
    json_t *j = json_object_get(obj, key);
    if (!j)
        return NULL;
    char field[64];
    snprintf(field, sizeof field, "defaults.%s", key);
    const char *v = json_string_value(j);
    if (*where) {
        lerr(L, d, j, field, "already defined at %s (one file holds it)", *where);
        return NULL;
    }
    if (!v || (strcmp(v, a) != 0 && strcmp(v, b) != 0)) {
        lerr(L, d, j, field, "%s", must);
        return NULL;
    }
    char *w = where_of(d, j);
    snprintf(L->where_buf[slot], sizeof L->where_buf[slot], "%s", w ? w : "?");
    free(w);
    *where = L->where_buf[slot];
    return v;
}

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
    {"ts_stat", "runs SQL text martgate cannot see"},
    {"ts_rewrite", "runs SQL text martgate cannot see (the form with a query)"},
    {"crosstab*", "runs SQL text martgate cannot see (tablefunc)"},
    {"connectby", "reads a table named by a string martgate cannot check (tablefunc)"},
    {"xpath_table", "reads a table named by a string martgate cannot check (xml2)"},
    {"get_raw_page", "reads a table's pages around the policy (pageinspect)"},
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
    {"current_query", "returns the text the warehouse runs, which holds what a rewrite added (the hash mask's key)"},
    {"pg_notify", "sends messages to other sessions"},
    {NULL, NULL}};

/* The built-in deny list, which a policy's own list extends, never replaces. */
void add_builtin_functions(loader *L)
{
    for (size_t k = 0; builtin_functions[k].pat; k++)
        add_fnpat(L, builtin_functions[k].pat, builtin_functions[k].reason);
}

int add_fnpat(loader *L, const char *text, const char *reason)
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

void parse_functions(loader *L, const json_doc *d, json_t *obj)
{
    static const char *const keys[] = {"deny", "allow", NULL};
    if (check_keys(L, d, obj, "functions", keys) < 0)
        return;
    static const char *const lists[] = {"deny", "allow"};
    for (size_t l = 0; l < 2; l++) {
        json_t *names = NULL;
        if (get_str_list(L, d, obj, "functions", lists[l], false, &names) != 0 || !names)
            continue;
        char field[32];
        snprintf(field, sizeof field, "functions.%s", lists[l]);
        for (size_t i = 0; i < list_size(names); i++) {
            json_t *it = list_get(names, i);
            const char *s = json_string_value(it);
            const char *dot = strchr(s, '.');
            if ((dot && (dot == s || !dot[1] || strchr(dot + 1, '.'))) || glob_problem(s)) {
                lerr(L, d, it, field, "'%s' must be name or schema.name (globs allowed)", s);
                continue;
            }
            if (add_fnpat(L, s, NULL) == 0)
                L->p->functions[L->p->n_functions - 1].allow = l == 1;
        }
    }
}

void parse_settings(loader *L, const json_doc *d, json_t *obj)
{
    static const char *const keys[] = {"deny", "allow", NULL};
    if (check_keys(L, d, obj, "settings", keys) < 0)
        return;
    policy_t *p = L->p;
    static const char *const lists[] = {"deny", "allow"};
    for (size_t l = 0; l < 2; l++) {
        json_t *names = NULL;
        if (get_str_list(L, d, obj, "settings", lists[l], false, &names) != 0 || !names)
            continue;
        char field[32];
        snprintf(field, sizeof field, "settings.%s", lists[l]);
        for (size_t i = 0; i < list_size(names); i++) {
            json_t *it = list_get(names, i);
            const char *s = json_string_value(it);
            if (glob_problem(s)) {
                lerr(L, d, it, field, "'%s' %s", s, glob_problem(s));
                continue;
            }
            if (strcmp(s, "search_path") == 0) {
                lerr(L, d, it, field, "search_path is always checked against what the principal may read; it "
                     "cannot be %s outright", l ? "allowed" : "denied");
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
            sp->allow = l == 1;
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
}

/* ---- defaults ------------------------------------------------------- */

void parse_defaults(loader *L, const json_doc *d, json_t *obj)
{
    static const char *const keys[] = {"search_path", "full_catalog_visibility", "explain_filtered", "temp_tables",
                                       NULL};
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
    /* EXPLAIN of a statement a row filter, mask or catalog filter rewrites:
     * "deny" (the default) or "plan" (plain EXPLAIN only; see docs/policy.md) */
    const char *v = default_choice(L, d, obj, "explain_filtered", "deny", "plan", 2, &L->defaults_explain_where,
                                   "must be \"deny\" (the default) or \"plan\" (plain EXPLAIN, without ANALYZE or "
                                   "VERBOSE)");
    if (v)
        p->explain_plan = strcmp(v, "plan") == 0;
    /* temporary tables: "writers" (the default) or "rules" (see docs/policy.md) */
    v = default_choice(L, d, obj, "temp_tables", "writers", "rules", 3, &L->defaults_temp_where,
                       "must be \"writers\" (the default: a principal with any write rule may create and write "
                       "temporary tables) or \"rules\" (only by rules naming the schema pg_temp)");
    if (v)
        p->temp_by_rules = strcmp(v, "rules") == 0;
}

