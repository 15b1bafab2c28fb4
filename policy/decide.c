/*
 * decide: turns analysis facts into a decision under a policy. Rules are
 * matched per relation (first match wins; for a write, rules with access read
 * are skipped: they say nothing about writes), built-in treatments cover the
 * system catalogs, temporary tables and reserved schemas, and the denied
 * functions/settings lists are checked for every call and SET. Reasons are
 * kept as codes plus pointers and only formatted on request.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/grow.h"
#include "policy/catalog_classes.h"
#include "policy/decide_internal.h"



/* ---- decision buffer ------------------------------------------------ */

void decision_init(decision *d)
{
    memset(d, 0, sizeof *d);
    d->deciding = DECIDE_NONE;
}

void decision_reset(decision *d)
{
    for (size_t i = 0; i < d->n_items; i++)
        free(d->items[i].note);
    free(d->rewritten_sql);
    d->rewritten_sql = NULL;
    d->n_items = 0;
    d->verdict = DECIDE_ALLOW;
    d->rule_id = NULL;
    d->deciding = DECIDE_NONE;
    d->reason_done = false;
    d->reason[0] = 0;
}

void decision_free(decision *d)
{
    decision_reset(d);
    free(d->items);
    d->items = NULL;
    d->cap = 0;
}

static decide_item *add_item(decision *d, decide_item_kind kind, size_t index, size_t stmt)
{
    decide_item *grown = grow_array(d->items, &d->cap, d->n_items + 1, sizeof *grown, 16);
    if (!grown)
        return NULL;
    d->items = grown;
    decide_item *it = &d->items[d->n_items++];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->index = index;
    it->stmt_index = stmt;
    return it;
}

const char *decide_verdict_name(decide_verdict v)
{
    return v == DECIDE_ALLOW ? "allow" : v == DECIDE_REWRITE ? "rewrite" : "deny";
}

/* ---- functions and settings ------------------------------------------ */

/* set_config('search_path', 'constant', is_local) is SET search_path in
 * another form (pg_dump sends it first thing): the setting item decides it
 * like SET. Any other use of set_config stays denied. */
static bool is_constant_search_path_set_config(const analysis *a, const analysis_function *f)
{
    if (strcmp(f->name, "set_config") != 0 || (f->schema && strcmp(f->schema, "pg_catalog") != 0))
        return false;
    for (size_t i = 0; i < a->n_settings; i++) {
        const analysis_setting *st = &a->settings[i];
        if (st->stmt_index == f->stmt_index && st->via_function && st->name &&
            !strcmp(st->name, "search_path") && !st->name_not_constant && !st->value_not_constant &&
            st->location == f->location)
            return true;
    }
    return false;
}

static void decide_function(const policy_t *p, const subj *s, const warehouse_facts *wh, const analysis *a,
                            const analysis_function *f, decide_item *it)
{
    it->schema = f->schema;
    it->name = f->name;
    if (is_constant_search_path_set_config(a, f)) {
        it->verdict = DECIDE_ALLOW;
        it->why = W_FN_OK;
        return;
    }
    const policy_fnpat *granted = NULL;
    for (size_t i = 0; i < p->n_functions; i++) {
        const policy_fnpat *fp = &p->functions[i];
        if (!glob_match(&fp->name, f->name))
            continue;
        if (fp->has_schema && f->schema && !glob_match(&fp->schema, f->schema))
            continue;
        if (fp->allow) {
            if (!granted)
                granted = fp;
            continue;
        }
        it->verdict = DECIDE_DENY;
        it->why = fp->reason ? W_FN_BUILTIN : W_FN_POLICY;
        it->ref[0] = fp;
        return;
    }
    /* what the warehouse itself keeps from PUBLIC is administrative: the
     * service account's privileges are never what lets a principal run it */
    if (!granted && wh_function_is_admin(wh, f->schema, f->name)) {
        it->verdict = DECIDE_DENY;
        it->why = W_FN_ADMIN;
        return;
    }
    if (f->schema && !policy_is_catalog_schema(f->schema) && !schema_readable(p, s, f->schema)) {
        it->verdict = DECIDE_DENY;
        it->why = W_FN_SCHEMA;
        return;
    }
    it->verdict = DECIDE_ALLOW;
    it->why = W_FN_OK;
}

static const char *const utility_tags[] = {"SHOW", "FETCH", "MOVE", "CLOSE", "CLOSE CURSOR", "CLOSE CURSOR ALL",
                                           "DEALLOCATE", "DEALLOCATE ALL", "EXECUTE", "LOCK", "LOCK TABLE",
                                           "VACUUM", "ANALYZE", "CLUSTER", "REINDEX", "PREPARE", "EXPLAIN",
                                           "DISCARD", "DISCARD ALL", "UNLISTEN", NULL};

static bool utility_allowed(const char *tag)
{
    if (!tag)
        return false;
    for (size_t i = 0; utility_tags[i]; i++)
        if (strcmp(utility_tags[i], tag) == 0)
            return true;
    return false;
}

/* ---- relations of the analysis -------------------------------------- */

static void fill_rel_item(decide_item *it, const rel_verdict *rv)
{
    it->verdict = rv->verdict;
    it->why = rv->why;
    it->ref[0] = rv->rule;
    it->ref[1] = rv->rule ? (const void *)rv->pattern : (const void *)rv->hint;
    it->rule_id = rv->rule ? rv->rule->id : NULL;
    it->dataset = rv->dataset;
}

static void decide_relation(const policy_t *p, const subj *s, const decide_request *req, size_t ri, bool fullcat,
                            decide_item *it)
{
    const analysis *a = req->facts;
    const analysis_relation *rel = &a->relations[ri];
    const analysis_stmt *st = rel->stmt_index < a->n_stmts ? &a->stmts[rel->stmt_index] : NULL;
    bool write = (rel->access & ANALYZE_ACCESS_WRITE) != 0;
    bool locks = !write && st && st->locks_rows && rel->usage == ANALYZE_USE_FROM;
    it->schema = rel->schema;
    it->name = rel->name;
    it->access = rel->access | (locks ? ANALYZE_ACCESS_WRITE : 0);
    rel_verdict rv;
    switch (rel->resolution) {
    case ANALYZE_RES_OTHER_DATABASE:
        it->verdict = DECIDE_DENY;
        it->why = W_OTHER_DB;
        return;
    case ANALYZE_RES_NOT_FOUND:
        it->verdict = DECIDE_DENY;
        it->why = W_NOT_FOUND;
        return;
    case ANALYZE_RES_UNRESOLVED: {
        /* every schema it may resolve to must allow it; a rewrite only when
         * one candidate (besides the session's temporary schema) remains */
        size_t n_real = 0;
        const char *rw_schema = NULL, *ok_schema = NULL;
        rel_verdict rw = {0}, ok = {0};
        for (size_t c = 0; c < rel->n_candidates; c++) {
            const char *cand = rel->candidates[c];
            if (!*cand)   /* an empty search_path: only the session's temporary tables */
                cand = "pg_temp";
            bool temp = strcmp(norm_schema(cand), "pg_temp") == 0;
            /* pg_catalog is a candidate of an unqualified pg_* name martgate
             * does not know; the warehouse's own list says whether it is one */
            if (strcmp(cand, "pg_catalog") == 0 && wh_catalog_lacks(req->warehouse, req->server_version, rel->name))
                continue;
            decide_one_relation(p, s, cand, rel->name, write || locks, fullcat, &rv);
            if (!temp)
                n_real++;
            if (rv.verdict == DECIDE_DENY) {
                fill_rel_item(it, &rv);
                it->schema = cand;
                it->note = strdup("search_path");
                return;
            }
            if (rv.verdict == DECIDE_REWRITE) {
                if (rv.why == W_CATALOG_FILTERED || rw_schema) {
                    it->verdict = DECIDE_DENY;
                    it->why = W_AMBIGUOUS_REWRITE;
                    return;
                }
                rw_schema = cand;
                rw = rv;
            } else if (!ok_schema || (!temp && strcmp(norm_schema(ok_schema), "pg_temp") == 0)) {
                ok_schema = cand;
                ok = rv;
            }
        }
        if (rw_schema) {
            if (n_real > 1) {
                it->verdict = DECIDE_DENY;
                it->why = W_AMBIGUOUS_REWRITE;
                return;
            }
            fill_rel_item(it, &rw);
            it->schema = rw_schema;
        } else if (ok_schema) {
            fill_rel_item(it, &ok);
            it->schema = ok_schema;
        } else {
            it->verdict = DECIDE_DENY;
            it->why = W_UNRESOLVED;
            return;
        }
        break;
    }
    default:
        if (!rel->schema) {
            it->verdict = DECIDE_DENY;
            it->why = W_UNRESOLVED;
            return;
        }
        decide_one_relation(p, s, rel->schema, rel->name, write || locks, fullcat, &rv);
        fill_rel_item(it, &rv);
        if (locks && rv.verdict == DECIDE_DENY && rv.why == W_DEFAULT_WRITE)
            it->why = W_LOCKS_ROWS;
    }
    if (it->verdict == DECIDE_REWRITE && rel->usage == ANALYZE_USE_NAME) {
        /* named, none of its rows read: whoever may read some of it may name it */
        it->verdict = DECIDE_ALLOW;
        it->why = it->why == W_CATALOG_FILTERED ? W_CATALOG : W_RULE_READ;
    } else if (it->verdict == DECIDE_REWRITE && (rel->usage != ANALYZE_USE_FROM || rel->tablesample)) {
        it->verdict = DECIDE_DENY;
        it->why = it->why == W_CATALOG_FILTERED ? W_CATALOG_NOT_FILTERABLE : W_NOT_SUBSTITUTABLE;
    }
}

/* ---- decide --------------------------------------------------------- */

static int fail(decision *out, char *err, size_t errlen, const char *msg)
{
    out->verdict = DECIDE_DENY;
    snprintf(err, errlen, "%s", msg);
    snprintf(out->reason, sizeof out->reason, "internal error: %s", msg);
    out->reason_done = true;
    return -1;
}

/* One item per fact of the analysis (statements, flags, relations, schemas,
 * functions, settings, roles), each with its verdict. -1 when out of memory. */
/* Is name PREPAREd by a statement of the same text before statement i?
 * (Its EXECUTE then runs what this decision decides.) */
static bool prepared_earlier(const analysis *a, size_t i, const char *name)
{
    for (size_t j = 0; j < i; j++)
        if (a->stmts[j].prepare_name && !strcmp(a->stmts[j].prepare_name, name))
            return true;
    return false;
}

static int decide_items(const policy_t *p, const decide_request *req, subj *s, bool fullcat, decision *out,
                        bool *any_filtered_catalog)
{
    const analysis *a = req->facts;
    /* statements */
    for (size_t i = 0; i < a->n_stmts; i++) {
        const analysis_stmt *st = &a->stmts[i];
        int why = 0;
        if (st->kind == ANALYZE_STMT_UNSUPPORTED)
            why = W_STMT_UNSUPPORTED;
        else if (st->kind == ANALYZE_STMT_DDL && !st->objects_complete)
            why = W_STMT_DDL_INCOMPLETE;
        else if (!st->objects_complete && !writes_everything(p, s))
            why = W_STMT_INCOMPLETE;
        else if (st->kind == ANALYZE_STMT_UTILITY && !utility_allowed(st->tag))
            why = W_STMT_UTILITY;
        else if (st->execute_name && !prepared_earlier(a, i, st->execute_name) &&
                 !(req->prepared && req->prepared(req->prepared_ctx, st->execute_name)))
            why = W_STMT_EXECUTE;
        if (why) {
            decide_item *it = add_item(out, DECIDE_ITEM_STATEMENT, i, i);
            if (!it)
                return -1;
            it->verdict = DECIDE_DENY;
            it->why = why;
            it->name = st->tag ? st->tag : "?";
        }
    }
    /* flags: all deny, except EXECUTE which the statement check above owns */
    for (size_t i = 0; i < a->n_flags; i++) {
        const analysis_flag *f = &a->flags[i];
        if (f->kind == ANALYZE_FLAG_EXECUTE && f->stmt_index < a->n_stmts && a->stmts[f->stmt_index].execute_name)
            continue;
        decide_item *it = add_item(out, DECIDE_ITEM_FLAG, i, f->stmt_index);
        if (!it)
            return -1;
        it->verdict = DECIDE_DENY;
        it->why = W_FLAG;
        it->name = analyze_flag_kind_name(f->kind);
        it->ref[0] = f;
    }
    /* relations */
    for (size_t i = 0; i < a->n_relations; i++) {
        decide_item *it = add_item(out, DECIDE_ITEM_RELATION, i, a->relations[i].stmt_index);
        if (!it)
            return -1;
        decide_relation(p, s, req, i, fullcat, it);
        if (it->verdict == DECIDE_REWRITE && it->why == W_CATALOG_FILTERED)
            *any_filtered_catalog = true;
    }
    /* schemas as DDL objects */
    for (size_t i = 0; i < a->n_schemas; i++) {
        decide_item *it = add_item(out, DECIDE_ITEM_SCHEMA, i, a->schemas[i].stmt_index);
        if (!it)
            return -1;
        it->name = a->schemas[i].name;
        it->access = a->schemas[i].access;
        int why;
        const policy_rule *r = schema_write_rule(p, s, a->schemas[i].name, &why);
        it->why = why;
        it->ref[0] = r;
        it->rule_id = r ? r->id : NULL;
        it->verdict = why == W_SCHEMA_WRITE_RULE ? DECIDE_ALLOW : DECIDE_DENY;
    }
    for (size_t i = 0; i < a->n_functions; i++) {
        decide_item *it = add_item(out, DECIDE_ITEM_FUNCTION, i, a->functions[i].stmt_index);
        if (!it)
            return -1;
        decide_function(p, s, req->warehouse, a, &a->functions[i], it);
    }
    for (size_t i = 0; i < a->n_settings; i++) {
        decide_item *it = add_item(out, DECIDE_ITEM_SETTING, i, a->settings[i].stmt_index);
        if (!it)
            return -1;
        decide_setting(p, s, req->warehouse, &a->settings[i], it);
    }
    /* EXPLAIN of a statement a rewrite changes (decide_explain.c) */
    for (size_t i = 0; i < a->n_stmts; i++) {
        char *note = NULL;
        int e = decide_explain_denial(p, req, out, i, &note);
        decide_item *it = e > 0 ? add_item(out, DECIDE_ITEM_STATEMENT, i, i) : NULL;
        if (e < 0 || (e > 0 && !it)) {
            free(note);
            return -1;
        }
        if (it) {
            it->verdict = DECIDE_DENY;
            it->why = W_EXPLAIN_REWRITTEN;
            it->name = "EXPLAIN";
            it->note = note;
        }
    }
    for (size_t i = 0; i < a->n_roles; i++) {
        decide_item *it = add_item(out, DECIDE_ITEM_ROLE, i, a->roles[i].stmt_index);
        if (!it)
            return -1;
        it->verdict = DECIDE_DENY;
        it->why = W_ROLE;
        bool sa = a->roles[i].action == ANALYZE_ROLE_SET_SESSION_AUTH ||
                  a->roles[i].action == ANALYZE_ROLE_RESET_SESSION_AUTH;
        it->name = sa ? "session_authorization" : "role";
        it->schema = a->roles[i].role;
        /* DISCARD ALL resets the role as part of resetting the session: the
         * session re-applies what martgate itself set (search_path, later the
         * impersonated role). An explicit RESET ROLE stays denied. */
        size_t si = a->roles[i].stmt_index;
        if ((a->roles[i].action == ANALYZE_ROLE_RESET || a->roles[i].action == ANALYZE_ROLE_RESET_SESSION_AUTH) &&
            si < a->n_stmts && a->stmts[si].tag && strcmp(a->stmts[si].tag, "DISCARD") == 0) {
            it->verdict = DECIDE_ALLOW;
            it->why = W_ROLE_DISCARD;
        }
    }

    return 0;
}

/* Everything allowed and some relation filtered, masked or a catalog
 * filtered: builds the substitutions and the rewritten text. A relation or
 * rewrite that cannot be built denies (*first_deny set). -1 (err filled) when
 * out of memory. */
static int decide_rewrite(const policy_t *p, const decide_request *req, subj *s, decision *out,
                          bool any_filtered_catalog, size_t first_rewrite, size_t *first_deny, char *err,
                          size_t errlen)
{
    const analysis *a = req->facts;
    int rc = 0;
    /* build the substitutions */
    size_t cap = out->n_items + 1, n = 0;
    rewrite_substitution *subs = calloc(cap, sizeof *subs);
    if (!subs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < out->n_items && rc == 0; i++) {
        decide_item *it = &out->items[i];
        if (it->kind != DECIDE_ITEM_RELATION || it->verdict != DECIDE_REWRITE || it->why != W_RULE_READ_FILTERED)
            continue;
        const analysis_relation *rel = &a->relations[it->index];
        char *repl = NULL;
        int b = build_masked(req, s, it->ref[0], it->schema, rel->name, rel->only, it, &repl);
        if (b < 0) {
            rc = -1;
            snprintf(err, errlen, "out of memory");
        } else if (b > 0) {
            it->verdict = DECIDE_DENY;
            if (*first_deny == DECIDE_NONE)
                *first_deny = i;
        } else {
            subs[n].relation = it->index;
            subs[n].replacement = repl;
            n++;
        }
    }
    rewrite_substitution *csubs = NULL;
    int nc = 0;
    if (rc == 0 && *first_deny == DECIDE_NONE && any_filtered_catalog) {
        decide_visibility vis = {p, req->who};
        char rerr[512];
        rewrite_catalog_filter cf = {decide_catalog_visible, decide_catalog_column_hidden, &vis};
        nc = rewrite_catalog_substitutions(a, &cf, &csubs, rerr, sizeof rerr);
        if (nc < 0) {
            for (size_t i = 0; i < out->n_items; i++)
                if (out->items[i].why == W_CATALOG_FILTERED) {
                    out->items[i].verdict = DECIDE_DENY;
                    out->items[i].why = W_REWRITE_FAILED;
                    out->items[i].note = strdup(rerr);
                    *first_deny = i;
                    break;
                }
            nc = 0;
        }
    }
    if (rc == 0 && *first_deny == DECIDE_NONE) {
        rewrite_substitution *all = subs;
        if (nc > 0) {
            all = realloc(subs, (n + (size_t)nc) * sizeof *all);
            if (!all) {
                rc = -1;
                snprintf(err, errlen, "out of memory");
                all = subs;
            } else {
                subs = all;
                memcpy(all + n, csubs, (size_t)nc * sizeof *all);
            }
        }
        if (rc == 0) {
            char rerr[512];
            if (rewrite_apply(req->sql, a, all, n + (size_t)nc, &out->rewritten_sql, rerr, sizeof rerr) != 0) {
                decide_item *it = &out->items[first_rewrite];
                it->verdict = DECIDE_DENY;
                it->why = W_REWRITE_FAILED;
                it->note = strdup(rerr);
                *first_deny = first_rewrite;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free((char *)subs[i].replacement);
    free(subs);
    if (csubs) {
        for (int i = 0; i < nc; i++)
            free((char *)csubs[i].replacement);
        free(csubs);
    }
    return rc;
}

/* The decision's verdict from its items: the first denial, else the first
 * rewrite, else allowed (deciding: the first relation). */
static void settle_verdict(decision *out, size_t first_deny, size_t first_rewrite)
{
    if (first_deny != DECIDE_NONE) {
        free(out->rewritten_sql);
        out->rewritten_sql = NULL;
        out->verdict = DECIDE_DENY;
        out->deciding = first_deny;
    } else if (first_rewrite != DECIDE_NONE) {
        out->verdict = DECIDE_REWRITE;
        out->deciding = first_rewrite;
    } else {
        out->verdict = DECIDE_ALLOW;
        out->deciding = out->n_items ? 0 : DECIDE_NONE;
        for (size_t i = 0; i < out->n_items; i++)
            if (out->items[i].kind == DECIDE_ITEM_RELATION) {
                out->deciding = i;
                break;
            }
    }
    out->rule_id = out->deciding != DECIDE_NONE ? out->items[out->deciding].rule_id : NULL;
}

int decide(const policy_t *p, const decide_request *req, decision *out, char *err, size_t errlen)
{
    decision_reset(out);
    out->policy = p;
    out->who = req->who;
    out->facts = req->facts;
    subj s;
    if (subj_init(&s, p, req->who) < 0)
        return fail(out, err, errlen, "out of memory");
    bool any_filtered_catalog = false;
    if (decide_items(p, req, &s, full_catalog(p, &s), out, &any_filtered_catalog) != 0) {
        subj_free(&s);
        return fail(out, err, errlen, "out of memory");
    }
    size_t first_deny = DECIDE_NONE, first_rewrite = DECIDE_NONE;
    for (size_t i = 0; i < out->n_items; i++) {
        if (out->items[i].verdict == DECIDE_DENY && first_deny == DECIDE_NONE)
            first_deny = i;
        if (out->items[i].verdict == DECIDE_REWRITE && first_rewrite == DECIDE_NONE)
            first_rewrite = i;
    }
    int rc = 0;
    if (first_deny == DECIDE_NONE && first_rewrite != DECIDE_NONE)
        rc = decide_rewrite(p, req, &s, out, any_filtered_catalog, first_rewrite, &first_deny, err, errlen);
    subj_free(&s);
    if (rc < 0) {
        free(out->rewritten_sql);
        out->rewritten_sql = NULL;
        out->verdict = DECIDE_DENY;
        snprintf(out->reason, sizeof out->reason, "internal error: %s", err);
        out->reason_done = true;
        return -1;
    }
    settle_verdict(out, first_deny, first_rewrite);
    return 0;
}

