/*
 * policy_load_lint: the warnings of a policy that loads but has parts that do
 * nothing or mean two things: datasets no rule names, roles no impersonator
 * may assume or no rule reaches, policy groups nothing matches, and schemas
 * that two datasets both claim. Each is a load warning naming file:line:col
 * (shadowed rules are policy_load_rules.c's); `martgate policy check
 * --strict` fails on any warning. Private to policy/policy_load*.c.
 */
#include <stdio.h>
#include <string.h>

#include "policy/policy_load_internal.h"

/* ---- what matches a name ------------------------------------------------ */

static bool any_glob(const policy_glob *g, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (glob_match(&g[i], name))
            return true;
    return false;
}

static bool subjects_name_group(const policy_subjects *s, const char *group)
{
    return any_glob(s->groups, s->n_groups, group);
}

/* Does anything of the policy decide by membership of this group? */
static bool group_referenced(const policy_t *p, const char *group)
{
    for (size_t i = 0; i < p->n_rules; i++)
        if (subjects_name_group(&p->rules[i].subjects, group))
            return true;
    for (size_t i = 0; i < p->n_search_paths; i++)
        if (!p->search_paths[i].everyone && subjects_name_group(&p->search_paths[i].subjects, group))
            return true;
    if (p->has_full_catalog && subjects_name_group(&p->full_catalog, group))
        return true;
    for (size_t i = 0; i < p->n_impersonators; i++)
        if (subjects_name_group(&p->impersonators[i].subjects, group))
            return true;
    return false;
}

/* Does a rule's subject match a session impersonating this role (user: the
 * role's name, groups: the role's)? */
static bool role_reached(const policy_t *p, const policy_role *role)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        const policy_subjects *s = &p->rules[i].subjects;
        if (any_glob(s->users, s->n_users, role->name))
            return true;
        for (size_t g = 0; g < role->n_groups; g++)
            if (subjects_name_group(s, role->groups[g]))
                return true;
    }
    return false;
}

static bool role_assumable(const policy_t *p, const policy_role *role)
{
    for (size_t i = 0; i < p->n_impersonators; i++)
        if (any_glob(p->impersonators[i].roles, p->impersonators[i].n_roles, role->name))
            return true;
    return false;
}

/* ---- two datasets, one schema ------------------------------------------- */

/* Some name matches both globs (sound for the glob kinds: a general glob
 * against another is only said to overlap when one covers the other). */
static bool globs_overlap(const policy_glob *a, const policy_glob *b)
{
    if (a->kind == GLOB_ANY || b->kind == GLOB_ANY)
        return true;
    if (a->kind == GLOB_EXACT)
        return glob_match(b, a->text);
    if (b->kind == GLOB_EXACT)
        return glob_match(a, b->text);
    if (a->kind == GLOB_PREFIX && b->kind == GLOB_PREFIX) {
        size_t n = a->fixed < b->fixed ? a->fixed : b->fixed;
        return strncmp(a->text, b->text, n) == 0;
    }
    if (a->kind == GLOB_SUFFIX && b->kind == GLOB_SUFFIX) {
        size_t n = a->fixed < b->fixed ? a->fixed : b->fixed;
        return memcmp(a->text + a->len - n, b->text + b->len - n, n) == 0;
    }
    if ((a->kind == GLOB_PREFIX && b->kind == GLOB_SUFFIX) || (a->kind == GLOB_SUFFIX && b->kind == GLOB_PREFIX))
        return true;   /* "ab*" and "*yz" both match "abyz" */
    return glob_covers(a, b) || glob_covers(b, a);
}

static void warn_shared_schemas(loader *L)
{
    const policy_t *p = L->p;
    for (size_t i = 0; i < p->n_datasets; i++) {
        const policy_dataset *a = &p->datasets[i];
        if (a->builtin)
            continue;
        for (size_t j = i + 1; j < p->n_datasets; j++) {
            const policy_dataset *b = &p->datasets[j];
            if (b->builtin)
                continue;
            bool found = false;
            for (size_t x = 0; x < a->n_pats && !found; x++)
                for (size_t y = 0; y < b->n_pats && !found; y++) {
                    const policy_objpat *pa = &a->pats[x], *pb = &b->pats[y];
                    if (globs_overlap(&pa->schema, &pb->schema) && globs_overlap(&pa->table, &pb->table)) {
                        lwarn(L, NULL, NULL, NULL,
                              "%s: datasets.%s: its \"%s\" and \"%s\" of dataset %s (%s) can match the same "
                              "relations: a rule on either reaches them, and reasons name only one",
                              b->where, b->name, pb->text, pa->text, a->name, a->where);
                        found = true;
                    }
                }
        }
    }
}

/* ---- all of them ---------------------------------------------------------- */

void warn_unused(loader *L)
{
    const policy_t *p = L->p;
    for (size_t i = 0; i < p->n_datasets; i++) {
        const policy_dataset *ds = &p->datasets[i];
        if (ds->builtin)
            continue;
        bool used = false;
        for (size_t r = 0; r < p->n_rules && !used; r++)
            for (size_t k = 0; k < p->rules[r].n_datasets && !used; k++)
                used = p->rules[r].datasets[k] == ds;
        if (!used)
            lwarn(L, NULL, NULL, NULL,
                  "%s: datasets.%s: no rule names this dataset (only its schemas' own rules, if any, reach it)",
                  ds->where, ds->name);
    }
    for (size_t i = 0; i < p->n_groups; i++)
        if (!group_referenced(p, p->groups[i].name))
            lwarn(L, NULL, NULL, NULL,
                  "%s: groups.%s: no rule, search_path, catalog visibility or impersonator entry names this "
                  "group, so membership of it changes nothing",
                  p->groups[i].where, p->groups[i].name);
    for (size_t i = 0; i < p->n_roles; i++) {
        const policy_role *role = &p->roles[i];
        if (!role_assumable(p, role))
            lwarn(L, NULL, NULL, NULL, "%s: roles.%s: no impersonators entry may assume this role", role->where,
                  role->name);
        else if (!role_reached(p, role))
            lwarn(L, NULL, NULL, NULL,
                  "%s: roles.%s: no rule's subjects match this role or its groups: a session impersonating it "
                  "is denied everything",
                  role->where, role->name);
    }
    warn_shared_schemas(L);
}
