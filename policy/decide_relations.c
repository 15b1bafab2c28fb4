/*
 * decide_relations: who the principal is to the rules (its effective
 * groups), and what the rules say of one relation or schema: the first
 * matching rule, the built-in treatments (system catalogs, temporary tables,
 * reserved and sensitive schemas), datasets, write rules, full catalog
 * visibility. decide.c asks it for each relation of a statement; the diff and
 * matrix probes (decide_access.c) ask relation_verdict, so that they cannot
 * disagree with the proxy.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/grow.h"
#include "policy/catalog_classes.h"
#include "policy/decide_internal.h"

/* ---- principal ------------------------------------------------------ */



size_t decide_effective_groups(const policy_t *p, const decide_principal *who, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < who->n_groups; i++) {
        if (n < max)
            out[n] = who->groups[i];
        n++;
    }
    if (!who->user)
        return n;
    for (size_t i = 0; i < p->n_groups; i++) {
        const policy_group *g = &p->groups[i];
        bool member = false;
        for (size_t k = 0; k < g->n_members && !member; k++)
            member = glob_match(&g->members[k], who->user);
        if (!member)
            continue;
        bool dup = false;
        for (size_t k = 0; k < who->n_groups && !dup; k++)
            dup = strcmp(who->groups[k], g->name) == 0;
        if (dup)
            continue;
        if (n < max)
            out[n] = g->name;
        n++;
    }
    return n;
}

int subj_init(subj *s, const policy_t *p, const decide_principal *who)
{
    s->user = who->user ? who->user : "";
    s->heap = NULL;
    size_t n = decide_effective_groups(p, who, s->stack, 32);
    if (n > 32) {
        s->heap = malloc(n * sizeof *s->heap);
        if (!s->heap)
            return -1;
        decide_effective_groups(p, who, s->heap, n);
        s->groups = s->heap;
    } else {
        s->groups = s->stack;
    }
    s->n_groups = n;
    return 0;
}

void subj_free(subj *s)
{
    free(s->heap);
}

/* 0 no match; 1 user; 2 group (*what = the group); 3 everyone ("*"). */
int subjects_match(const policy_subjects *ps, const subj *s, const char **what)
{
    for (size_t i = 0; i < ps->n_users; i++)
        if (glob_match(&ps->users[i], s->user)) {
            *what = s->user;
            return ps->users[i].kind == GLOB_ANY ? 3 : 1;
        }
    for (size_t i = 0; i < ps->n_groups; i++)
        for (size_t k = 0; k < s->n_groups; k++)
            if (glob_match(&ps->groups[i], s->groups[k])) {
                *what = s->groups[k];
                return 2;
            }
    return 0;
}

void describe_subject(const policy_subjects *ps, const subj *s, char *buf, size_t len)
{
    const char *what = NULL;
    switch (subjects_match(ps, s, &what)) {
    case 1: snprintf(buf, len, "user %s", what); break;
    case 2: snprintf(buf, len, "group %s", what); break;
    case 3: snprintf(buf, len, "everyone"); break;
    default: snprintf(buf, len, "%s", s->user); break;
    }
}

/* ---- relations ------------------------------------------------------ */

bool objpat_match(const policy_objpat *op, const char *schema, const char *name)
{
    return glob_match_schema(&op->schema, schema) && glob_match(&op->table, name);
}

bool is_sensitive(const policy_t *p, const char *schema, const char *name)
{
    const policy_dataset *ds = p->sensitive;
    for (size_t i = 0; i < ds->n_pats; i++) {
        const policy_objpat *op = &ds->pats[i];
        /* "*.pg_stat_statements": any schema, reserved ones included */
        if ((op->schema.kind == GLOB_ANY || glob_match(&op->schema, schema)) && glob_match(&op->table, name))
            return true;
    }
    return false;
}

/* Does rule r name (schema, name)? *dataset / *pattern say through what. */
bool rule_objects_match(const policy_t *p, const policy_rule *r, const char *schema, const char *name,
                               bool sensitive, const char **dataset, const char **pattern)
{
    for (size_t k = 0; k < r->n_datasets; k++) {
        const policy_dataset *ds = r->datasets[k];
        if (ds->builtin) {
            if (sensitive && ds == p->sensitive) {
                *dataset = ds->name;
                return true;
            }
            continue;
        }
        if (sensitive)
            continue;
        for (size_t i = 0; i < ds->n_pats; i++)
            if (objpat_match(&ds->pats[i], schema, name)) {
                *dataset = ds->name;
                return true;
            }
    }
    if (sensitive)
        return false;
    for (size_t i = 0; i < r->n_pats; i++)
        if (objpat_match(&r->pats[i], schema, name)) {
            *pattern = r->pats[i].text;
            return true;
        }
    return false;
}

const char *dataset_of(const policy_t *p, const char *schema, const char *name)
{
    if (is_sensitive(p, schema, name))
        return p->sensitive->name;
    for (size_t i = 0; i < p->n_datasets; i++) {
        const policy_dataset *ds = &p->datasets[i];
        if (ds->builtin)
            continue;
        for (size_t k = 0; k < ds->n_pats; k++)
            if (objpat_match(&ds->pats[k], schema, name))
                return ds->name;
    }
    return NULL;
}

const char *norm_schema(const char *schema)
{
    if (strncmp(schema, "pg_temp_", 8) == 0 && isdigit((unsigned char)schema[8]))
        return "pg_temp";
    return schema;
}

/* Has the principal a write rule on anything? */
bool writes_somewhere(const policy_t *p, const subj *s)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        const char *what;
        if (p->rules[i].access == ACCESS_WRITE && subjects_match(&p->rules[i].subjects, s, &what))
            return true;
    }
    return false;
}

void decide_one_relation(const policy_t *p, const subj *s, const char *schema, const char *name,
                         bool write, bool full_catalog, rel_verdict *out)
{
    memset(out, 0, sizeof *out);
    schema = norm_schema(schema);
    bool sensitive = is_sensitive(p, schema, name);
    if (!sensitive) {
        if (policy_is_catalog_schema(schema)) {
            catalog_class cls = catalog_class_of(schema, name);
            out->verdict = write ? DECIDE_DENY : DECIDE_ALLOW;
            out->why = write ? W_CATALOG_WRITE : full_catalog ? W_CATALOG_FULL : W_CATALOG;
            if (!write && cls == CATALOG_UNCLASSIFIED) {
                out->verdict = DECIDE_DENY;
                out->why = W_CATALOG_UNCLASSIFIED;
            } else if (!write && !full_catalog && cls == CATALOG_FILTERED) {
                out->verdict = DECIDE_REWRITE;
                out->why = W_CATALOG_FILTERED;
            }
            return;
        }
        if (strcmp(schema, "pg_temp") == 0 && !write) {
            out->verdict = DECIDE_ALLOW;
            out->why = W_TEMP;
            return;
        }
        if (policy_is_reserved_schema(schema) && strcmp(schema, "pg_temp") != 0) {
            out->verdict = DECIDE_DENY;
            out->why = W_RESERVED_SCHEMA;
            return;
        }
    }
    for (size_t i = 0; i < p->n_rules; i++) {
        const policy_rule *r = &p->rules[i];
        const char *what;
        if (!subjects_match(&r->subjects, s, &what))
            continue;
        const char *ds = NULL, *pat = NULL;
        if (!rule_objects_match(p, r, schema, name, sensitive, &ds, &pat))
            continue;
        if (write && r->access == ACCESS_READ) {
            if (!out->hint)
                out->hint = r;
            continue;
        }
        out->rule = r;
        out->dataset = ds ? ds : dataset_of(p, schema, name);
        out->pattern = pat;
        switch (r->access) {
        case ACCESS_DENY:
            out->verdict = DECIDE_DENY;
            out->why = W_RULE_DENY;
            break;
        case ACCESS_WRITE:
            out->verdict = DECIDE_ALLOW;
            out->why = write ? W_RULE_WRITE : W_RULE_READ;
            break;
        default:
            if (r->has_row_filter || r->n_columns) {
                out->verdict = DECIDE_REWRITE;
                out->why = W_RULE_READ_FILTERED;
            } else {
                out->verdict = DECIDE_ALLOW;
                out->why = W_RULE_READ;
            }
        }
        return;
    }
    if (write && !sensitive && !p->temp_by_rules && strcmp(schema, "pg_temp") == 0 && writes_somewhere(p, s)) {
        /* the session's own tables, which only it sees and which hold only
         * what it could read or write anyway (defaults.temp_tables) */
        out->verdict = DECIDE_ALLOW;
        out->why = W_TEMP_WRITER;
        return;
    }
    out->verdict = DECIDE_DENY;
    out->why = write ? W_DEFAULT_WRITE : W_DEFAULT_READ;
    out->dataset = dataset_of(p, schema, name);
    if (!out->hint) {   /* a rule this principal has, to say what it does give */
        for (size_t i = 0; i < p->n_rules; i++) {
            const char *what;
            if (p->rules[i].access != ACCESS_DENY && subjects_match(&p->rules[i].subjects, s, &what)) {
                out->hint = &p->rules[i];
                break;
            }
        }
    }
}

/* The verdict on one relation the way a statement's would be (catalog
 * schemas aside), and the rule that gave it: for the review tools
 * (policy/decide_access.c), so their effective access is the decision's. */
decide_verdict relation_verdict(const policy_t *p, const subj *s, const char *schema, const char *name, bool write,
                                const policy_rule **rule)
{
    rel_verdict rv;
    decide_one_relation(p, s, schema, name, write, false, &rv);
    *rule = rv.rule;
    return rv.verdict;
}

bool schema_readable(const policy_t *p, const subj *s, const char *schema)
{
    if (policy_is_catalog_schema(schema))
        return true;
    for (size_t i = 0; i < p->n_rules; i++) {
        const policy_rule *r = &p->rules[i];
        const char *what;
        if (!subjects_match(&r->subjects, s, &what))
            continue;
        bool whole = false, part = false;
        for (size_t k = 0; k < r->n_datasets && !whole; k++) {
            if (r->datasets[k]->builtin)
                continue;
            for (size_t j = 0; j < r->datasets[k]->n_pats && !whole; j++)
                whole = glob_match_schema(&r->datasets[k]->pats[j].schema, schema);
        }
        for (size_t j = 0; j < r->n_pats && !whole; j++) {
            if (!glob_match_schema(&r->pats[j].schema, schema))
                continue;
            if (r->pats[j].table.kind == GLOB_ANY)
                whole = true;
            else
                part = true;
        }
        if (whole)
            return r->access != ACCESS_DENY;
        if (part && r->access != ACCESS_DENY)
            return true;
    }
    return false;
}

bool decide_schema_readable(const policy_t *p, const decide_principal *who, const char *schema)
{
    subj s;
    if (subj_init(&s, p, who) < 0)
        return false;
    bool ok = schema_readable(p, &s, schema);
    subj_free(&s);
    return ok;
}

/* For DDL on a schema: the first rule naming the whole schema decides. */
const policy_rule *schema_write_rule(const policy_t *p, const subj *s, const char *schema, int *why)
{
    *why = W_SCHEMA_DEFAULT;
    if (policy_is_reserved_schema(schema))
        return NULL;
    for (size_t i = 0; i < p->n_rules; i++) {
        const policy_rule *r = &p->rules[i];
        const char *what;
        if (r->access == ACCESS_READ || !subjects_match(&r->subjects, s, &what))
            continue;
        bool whole = false;
        for (size_t k = 0; k < r->n_datasets && !whole; k++)
            for (size_t j = 0; j < r->datasets[k]->n_pats && !whole; j++)
                whole = !r->datasets[k]->builtin && glob_match_schema(&r->datasets[k]->pats[j].schema, schema);
        for (size_t j = 0; j < r->n_pats && !whole; j++)
            whole = r->pats[j].table.kind == GLOB_ANY && glob_match_schema(&r->pats[j].schema, schema);
        if (whole) {
            *why = r->access == ACCESS_WRITE ? W_SCHEMA_WRITE_RULE : W_SCHEMA_DENY_RULE;
            return r;
        }
    }
    return NULL;
}

/* Does the principal write every table of every schema of ours? The rules
 * a write is decided by (access read says nothing about writes; first match
 * wins) must reach one that writes "*.*" before any that denies something. */
bool writes_everything(const policy_t *p, const subj *s)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        const policy_rule *r = &p->rules[i];
        const char *what;
        if (r->access == ACCESS_READ || !subjects_match(&r->subjects, s, &what))
            continue;
        if (r->access == ACCESS_DENY)
            return false;
        for (size_t k = 0; k < r->n_datasets; k++)
            for (size_t j = 0; !r->datasets[k]->builtin && j < r->datasets[k]->n_pats; j++)
                if (r->datasets[k]->pats[j].schema.kind == GLOB_ANY && r->datasets[k]->pats[j].table.kind == GLOB_ANY)
                    return true;
        for (size_t j = 0; j < r->n_pats; j++)
            if (r->pats[j].schema.kind == GLOB_ANY && r->pats[j].table.kind == GLOB_ANY)
                return true;
    }
    return false;
}

bool full_catalog(const policy_t *p, const subj *s)
{
    const char *what;
    return p->has_full_catalog && subjects_match(&p->full_catalog, s, &what);
}

bool decide_full_catalog(const policy_t *p, const decide_principal *who)
{
    subj s;
    if (subj_init(&s, p, who) < 0)
        return false;
    bool ok = full_catalog(p, &s);
    subj_free(&s);
    return ok;
}
