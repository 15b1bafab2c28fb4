/*
 * decide_visibility: the session-level questions about a principal: the
 * search_path it starts with, which schemas, tables and columns the catalogs
 * show it (SQL predicates for policy/rewrite's catalog filtering), and which
 * roles it may take by connection impersonation.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/decide_internal.h"

/* ---- search_path and catalog visibility ----------------------------- */

int decide_search_path(const policy_t *p, const decide_principal *who, const char ***schemas, size_t *n)
{
    *schemas = NULL;
    *n = 0;
    subj s;
    if (subj_init(&s, p, who) < 0)
        return -1;
    const policy_search_path *ent = NULL;
    for (size_t i = 0; i < p->n_search_paths && !ent; i++) {
        const char *what;
        if (p->search_paths[i].everyone || subjects_match(&p->search_paths[i].subjects, &s, &what))
            ent = &p->search_paths[i];
    }
    /* no entry for the principal: PostgreSQL's own default but "$user"
     * (the warehouse login is the service role, not the person) */
    static const char *const server_default[] = {"public"};
    const char *const *from = ent ? (const char *const *)ent->schemas : server_default;
    size_t n_from = ent ? ent->n_schemas : 1;
    const char **out = calloc(n_from + 1, sizeof *out);
    if (!out) {
        subj_free(&s);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_from; i++) {
        const char *sc = from[i];
        if (policy_is_catalog_schema(sc) || strcmp(sc, "pg_temp") == 0 || schema_readable(p, &s, sc))
            out[k++] = sc;
    }
    subj_free(&s);
    *schemas = out;
    *n = k;
    return 0;
}

char *decide_search_path_text(const policy_t *p, const decide_principal *who)
{
    const char **sc;
    size_t n;
    if (decide_search_path(p, who, &sc, &n) < 0)
        return NULL;
    textbuf b = {0};
    if (n == 0)
        textbuf_add(&b, "''");
    for (size_t i = 0; i < n; i++) {
        char *q = rewrite_quote_ident(sc[i]);
        if (!q) {
            b.oom = true;
            break;
        }
        if (i)
            textbuf_add(&b, ", ");
        textbuf_add(&b, q);
        free(q);
    }
    free(sc);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    char *fit = realloc(b.s, b.len + 1);   /* sessions keep it: no growth room */
    return fit ? fit : b.s;
}

/* Appends "(c1 OR c2 ...)" for the rule's objects; whole: schema-level test. */
static void rule_sql_cond(const policy_rule *r, const char *sx, const char *tx, bool schema_level, bool only_whole,
                          textbuf *b, bool *any)
{
    *any = false;
    size_t start = b->len;
    textbuf_add(b, "(");
    for (size_t k = 0; k < r->n_datasets; k++) {
        if (r->datasets[k]->builtin)
            continue;
        for (size_t j = 0; j < r->datasets[k]->n_pats; j++) {
            if (*any)
                textbuf_add(b, " OR ");
            if (!glob_to_sql(&r->datasets[k]->pats[j].schema, sx, true, &b->s, &b->len, &b->cap))
                b->oom = true;
            *any = true;
        }
    }
    for (size_t j = 0; j < r->n_pats; j++) {
        const policy_objpat *op = &r->pats[j];
        bool whole = op->table.kind == GLOB_ANY;
        if (schema_level && only_whole && !whole)
            continue;
        if (*any)
            textbuf_add(b, " OR ");
        textbuf_add(b, "(");
        if (!glob_to_sql(&op->schema, sx, true, &b->s, &b->len, &b->cap))
            b->oom = true;
        if (!schema_level && !whole) {
            textbuf_add(b, " AND ");
            if (!glob_to_sql(&op->table, tx, false, &b->s, &b->len, &b->cap))
                b->oom = true;
        }
        textbuf_add(b, ")");
        *any = true;
    }
    if (!*any) {
        b->len = start;
        if (b->s)
            b->s[start] = 0;
        return;
    }
    textbuf_add(b, ")");
}

char *decide_catalog_visible(void *ctx, const char *schema_expr, const char *table_expr)
{
    const decide_visibility *v = ctx;
    const policy_t *p = v->policy;
    subj s;
    if (subj_init(&s, p, v->who) < 0)
        return NULL;
    textbuf b = {0};
    bool schema_level = table_expr == NULL;
    textbuf_add(&b, "(CASE WHEN ");
    textbuf_add(&b, schema_expr);
    textbuf_add(&b, " IN ('pg_catalog', 'information_schema') THEN true");
    for (size_t i = 0; i < p->n_rules; i++) {
        const policy_rule *r = &p->rules[i];
        const char *what;
        if (!subjects_match(&r->subjects, &s, &what))
            continue;
        bool deny = r->access == ACCESS_DENY, any;
        size_t mark = b.len;
        textbuf_add(&b, " WHEN ");
        rule_sql_cond(r, schema_expr, table_expr, schema_level, schema_level && deny, &b, &any);
        if (!any) {
            b.len = mark;
            if (b.s)
                b.s[mark] = 0;
            continue;
        }
        textbuf_add(&b, deny ? " THEN false" : " THEN true");
    }
    textbuf_add(&b, " ELSE false END)");
    subj_free(&s);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* Hidden columns: the "deny" columns of the rule that decides a read of the
 * table for this principal (the first matching rule, as for rows). */
char *decide_catalog_column_hidden(void *ctx, const char *schema_expr, const char *table_expr,
                                   const char *column_expr)
{
    const decide_visibility *v = ctx;
    const policy_t *p = v->policy;
    subj s;
    if (subj_init(&s, p, v->who) < 0)
        return NULL;
    textbuf b = {0};
    textbuf_add(&b, "(CASE WHEN ");
    textbuf_add(&b, schema_expr);
    textbuf_add(&b, " IN ('pg_catalog', 'information_schema') THEN false");
    bool any_deny = false;
    for (size_t i = 0; i < p->n_rules; i++) {
        const policy_rule *r = &p->rules[i];
        const char *what;
        if (!subjects_match(&r->subjects, &s, &what))
            continue;
        bool any;
        size_t mark = b.len;
        textbuf_add(&b, " WHEN ");
        rule_sql_cond(r, schema_expr, table_expr, false, false, &b, &any);
        if (!any) {
            b.len = mark;
            if (b.s)
                b.s[mark] = 0;
            continue;
        }
        size_t ndeny = 0;
        for (size_t k = 0; k < r->n_columns; k++)
            if (r->columns[k].kind == MASK_DENY)
                ndeny++;
        if (!ndeny || r->access == ACCESS_DENY) {
            textbuf_add(&b, " THEN false");
            continue;
        }
        any_deny = true;
        textbuf_add(&b, " THEN ");
        textbuf_add(&b, column_expr);
        textbuf_add(&b, " IN (");
        size_t done = 0;
        for (size_t k = 0; k < r->n_columns; k++) {
            if (r->columns[k].kind != MASK_DENY)
                continue;
            if (done++)
                textbuf_add(&b, ", ");
            rewrite_add_literal(&b, r->columns[k].name);
        }
        textbuf_add(&b, ")");
    }
    textbuf_add(&b, " ELSE false END)");
    subj_free(&s);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    if (!any_deny) {   /* keep the common case's text short */
        free(b.s);
        return strdup("false");
    }
    return b.s;
}

/* ---- connection impersonation (Metabase's SET ROLE) ------------------- */

bool decide_is_impersonator(const policy_t *p, const decide_principal *who)
{
    subj s;
    if (!p || subj_init(&s, p, who) != 0)
        return false;
    bool ok = false;
    for (size_t i = 0; i < p->n_impersonators && !ok; i++) {
        const char *what;
        ok = subjects_match(&p->impersonators[i].subjects, &s, &what) > 0;
    }
    subj_free(&s);
    return ok;
}

bool decide_may_write(const policy_t *p, const decide_principal *who)
{
    subj s;
    if (subj_init(&s, p, who) != 0)
        return true;   /* out of memory: the primary, which can do both */
    bool w = writes_somewhere(p, &s);
    for (size_t i = 0; i < p->n_impersonators && !w; i++) {
        const char *what;
        if (subjects_match(&p->impersonators[i].subjects, &s, &what) <= 0)
            continue;
        for (size_t r = 0; r < p->n_roles && !w; r++) {
            bool may = false;
            for (size_t k = 0; k < p->impersonators[i].n_roles && !may; k++)
                may = glob_match(&p->impersonators[i].roles[k], p->roles[r].name);
            if (!may)
                continue;
            /* as proxy/intercept.c impersonates: the role's name and groups */
            decide_principal as = {p->roles[r].name, (const char *const *)p->roles[r].groups, p->roles[r].n_groups,
                                   NULL};
            subj rs;
            if (subj_init(&rs, p, &as) != 0) {
                w = true;
                break;
            }
            w = writes_somewhere(p, &rs);
            subj_free(&rs);
        }
    }
    subj_free(&s);
    return w;
}

int decide_impersonation(const policy_t *p, const decide_principal *who, const char *role,
                         const char *const **groups, size_t *n_groups, char *why, size_t whylen)
{
    const policy_role *r = NULL;
    for (size_t i = 0; i < p->n_roles && !r; i++)
        if (strcmp(p->roles[i].name, role) == 0)
            r = &p->roles[i];
    if (!r) {
        snprintf(why, whylen, "role \"%s\" is not mapped to groups by the policy", role);
        return 0;
    }
    subj s;
    if (subj_init(&s, p, who) != 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    bool ok = false;
    for (size_t i = 0; i < p->n_impersonators && !ok; i++) {
        const policy_impersonator *imp = &p->impersonators[i];
        const char *what;
        if (subjects_match(&imp->subjects, &s, &what) <= 0)
            continue;
        for (size_t k = 0; k < imp->n_roles && !ok; k++)
            ok = glob_match(&imp->roles[k], role);
    }
    subj_free(&s);
    if (!ok) {
        snprintf(why, whylen, "%s may not impersonate role \"%s\" (not an impersonator for it in the policy)",
                 who->user ? who->user : "this user", role);
        return 0;
    }
    *groups = (const char *const *)r->groups;
    *n_groups = r->n_groups;
    return 1;
}
