/*
 * policy_load: reads policy JSON (one file, or a directory of *.json merged in
 * name order), checks it strictly and compiles it into the immutable struct
 * policy that policy/decide reads. Every error names file:line:column and the
 * field; loading goes on after an error so that `martgate policy check` can
 * list all of them at once. Warnings (shadowed rules, policy_load_lint's
 * unused and overlapping parts) never stop a load.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/policy_load_internal.h"

/* ---- messages ------------------------------------------------------- */



void push_msg(loader *L, bool error, const char *text)
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
int lerr(loader *L, const json_doc *d, const json_t *at, const char *field, const char *fmt, ...)
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
void lwarn(loader *L, const json_doc *d, const json_t *at, const char *field, const char *fmt, ...)
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
int lkeep(loader *L, const char *text)
{
    push_msg(L, true, text);
    return -1;
}

char *where_of(const json_doc *d, const json_t *v)
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

bool valid_name(const char *s)
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
int get_str_list(loader *L, const json_doc *d, const json_t *obj, const char *field,
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

size_t list_size(json_t *arr) { return json_is_array(arr) ? json_array_size(arr) : 1; }
json_t *list_get(json_t *arr, size_t i) { return json_is_array(arr) ? json_array_get(arr, i) : arr; }

int get_opt_string(loader *L, const json_doc *d, const json_t *obj, const char *field,
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

int check_keys(loader *L, const json_doc *d, const json_t *obj, const char *field,
                      const char *const *allowed)
{
    char e[1400];
    if (json_doc_check_keys(d, obj, field, allowed, e, sizeof e) < 0)
        return lkeep(L, e);
    return 0;
}

/* ---- patterns ------------------------------------------------------- */

const char *glob_problem(const char *s)
{
    if (!*s)
        return "is empty";
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20)
            return "holds a control character";
    return NULL;
}

/* A schema glob in a dataset, "schemas" or the schema part of "tables". */
int check_schema_glob(loader *L, const json_doc *d, const json_t *at, const char *field,
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

int make_objpat(loader *L, policy_objpat *op, const char *schema, size_t slen, const char *table,
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

void objpat_free(policy_objpat *op)
{
    glob_free(&op->schema);
    glob_free(&op->table);
    free(op->text);
}

/* "schema.table" glob. */
int parse_table_pat(loader *L, const json_doc *d, const json_t *at, const char *field,
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

int parse_subjects(loader *L, const json_doc *d, const json_t *obj, const char *field,
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

void subjects_free(policy_subjects *s)
{
    for (size_t i = 0; i < s->n_groups; i++)
        glob_free(&s->groups[i]);
    for (size_t i = 0; i < s->n_users; i++)
        glob_free(&s->users[i]);
    free(s->groups);
    free(s->users);
    memset(s, 0, sizeof *s);
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

uint64_t policy_serial(const policy_t *p) { return p->serial; }

void policy_summary(const policy_t *p, char *buf, size_t len)
{
    size_t nds = 0;
    for (size_t i = 0; i < p->n_datasets; i++)
        nds += !p->datasets[i].builtin;
    snprintf(buf, len, "%zu file%s, %zu dataset%s, %zu group%s, %zu rule%s, %zu role%s", p->n_files,
             p->n_files == 1 ? "" : "s", nds, nds == 1 ? "" : "s", p->n_groups, p->n_groups == 1 ? "" : "s",
             p->n_rules, p->n_rules == 1 ? "" : "s", p->n_roles, p->n_roles == 1 ? "" : "s");
}

bool policy_hash_mask_use(const policy_t *p, char *buf, size_t len)
{
    for (size_t i = 0; p && i < p->n_rules; i++)
        for (size_t k = 0; k < p->rules[i].n_columns; k++)
            if (p->rules[i].columns[k].kind == MASK_HASH) {
                snprintf(buf, len, "rule '%s' (column %s)", p->rules[i].id, p->rules[i].columns[k].name);
                return true;
            }
    return false;
}

/* ---- the load ------------------------------------------------------- */

/* Builds the policy from L->docs; returns 0 or -1 (errors in L->msgs). */
static int build(loader *L)
{
    policy_t *p = L->p;
    if (add_builtin_datasets(L) < 0)
        return -1;
    add_builtin_functions(L);
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
        warn_unused(L);
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
        static atomic_uint_fast64_t serials;
        atomic_init(&L->p->refs, 1);
        L->p->serial = atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed) + 1;
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

/* The one setup of both entry points: an empty loader with a policy to fill.
 * -1 (err filled) when out of memory. */
static int loader_start(loader *L, policy_t **out, policy_messages *msgs, char *err, size_t errlen)
{
    memset(L, 0, sizeof *L);
    if (msgs)
        memset(msgs, 0, sizeof *msgs);
    *out = NULL;
    L->p = calloc(1, sizeof *L->p);
    if (!L->p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int policy_load(const char *path, policy_t **out, policy_messages *msgs, char *err, size_t errlen)
{
    loader L;
    if (loader_start(&L, out, msgs, err, errlen) != 0)
        return -1;
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
    if (loader_start(&L, out, msgs, err, errlen) != 0)
        return -1;
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
