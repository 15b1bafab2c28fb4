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

#include "policy/decide.h"
#include "policy/policy_internal.h"

enum why {
    W_NONE = 0,
    /* relations */
    W_RULE_READ, W_RULE_READ_FILTERED, W_RULE_WRITE, W_RULE_DENY, W_DEFAULT_READ, W_DEFAULT_WRITE,
    W_CATALOG, W_CATALOG_FILTERED, W_CATALOG_FULL, W_CATALOG_WRITE, W_CATALOG_NOT_FILTERABLE,
    W_TEMP, W_RESERVED_SCHEMA, W_NOT_FOUND, W_OTHER_DB, W_UNRESOLVED, W_AMBIGUOUS_REWRITE,
    W_NOT_SUBSTITUTABLE, W_COLUMNS_UNKNOWN, W_BIND_FAILED, W_REWRITE_FAILED, W_LOCKS_ROWS,
    /* schemas */
    W_SCHEMA_WRITE_RULE, W_SCHEMA_DENY_RULE, W_SCHEMA_DEFAULT,
    /* functions */
    W_FN_OK, W_FN_BUILTIN, W_FN_POLICY, W_FN_SCHEMA,
    /* settings */
    W_SET_OK, W_SET_POLICY, W_SET_BUILTIN, W_SET_VALUE, W_SP_OK, W_SP_UNREADABLE, W_SP_USER,
    W_SP_NOT_CONSTANT, W_SP_RESET,
    /* roles, statements, flags */
    W_ROLE, W_ROLE_DISCARD, W_STMT_UNSUPPORTED, W_STMT_DDL_INCOMPLETE, W_STMT_UTILITY, W_STMT_EXECUTE, W_FLAG
};

/* ---- principal ------------------------------------------------------ */

typedef struct subj {
    const char *user;
    const char **groups;
    size_t n_groups;
    const char *stack[32];
    const char **heap;
} subj;

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

static int subj_init(subj *s, const policy_t *p, const decide_principal *who)
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

static void subj_free(subj *s)
{
    free(s->heap);
}

/* 0 no match; 1 user; 2 group (*what = the group); 3 everyone ("*"). */
static int subjects_match(const policy_subjects *ps, const subj *s, const char **what)
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

static void describe_subject(const policy_subjects *ps, const subj *s, char *buf, size_t len)
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

static bool objpat_match(const policy_objpat *op, const char *schema, const char *name)
{
    return glob_match_schema(&op->schema, schema) && glob_match(&op->table, name);
}

static bool is_sensitive(const policy_t *p, const char *schema, const char *name)
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
static bool rule_objects_match(const policy_t *p, const policy_rule *r, const char *schema, const char *name,
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

static const char *dataset_of(const policy_t *p, const char *schema, const char *name)
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

typedef struct rel_verdict {
    decide_verdict verdict;
    int why;
    const policy_rule *rule;     /* deciding rule */
    const policy_rule *hint;     /* default deny: a rule that matched the subject */
    const char *dataset, *pattern;
} rel_verdict;

static const char *norm_schema(const char *schema)
{
    if (strncmp(schema, "pg_temp_", 8) == 0 && isdigit((unsigned char)schema[8]))
        return "pg_temp";
    return schema;
}

static void decide_one_relation(const policy_t *p, const subj *s, const char *schema, const char *name,
                                bool write, bool full_catalog, rel_verdict *out)
{
    memset(out, 0, sizeof *out);
    schema = norm_schema(schema);
    bool sensitive = is_sensitive(p, schema, name);
    if (!sensitive) {
        if (policy_is_catalog_schema(schema)) {
            out->verdict = write ? DECIDE_DENY : DECIDE_ALLOW;
            out->why = write ? W_CATALOG_WRITE : full_catalog ? W_CATALOG_FULL : W_CATALOG;
            if (!write && !full_catalog && rewrite_is_filtered_catalog(schema, name)) {
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

static bool schema_readable(const policy_t *p, const subj *s, const char *schema)
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
static const policy_rule *schema_write_rule(const policy_t *p, const subj *s, const char *schema, int *why)
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

static bool full_catalog(const policy_t *p, const subj *s)
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
    if (d->n_items == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 16;
        decide_item *n = realloc(d->items, ncap * sizeof *n);
        if (!n)
            return NULL;
        d->items = n;
        d->cap = ncap;
    }
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

/* ---- templates ------------------------------------------------------ */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 128;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *x = realloc(b->s, nc);
        if (!x) {
            b->oom = true;
            return;
        }
        b->s = x;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_literal(sbuf *b, const char *v)
{
    char *q = rewrite_quote_literal(v);
    if (!q) {
        b->oom = true;
        return;
    }
    sb_str(b, q);
    free(q);
}

static bool scalar_text(const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
    else
        return false;
    return true;
}

/* Binds a template. Returns 0 (malloc'd *out), 1 when a claim is missing or
 * unusable (*missing names it), -1 out of memory. */
static int bind_template(const policy_template *t, const subj *s, const json_t *claims, const char *column,
                         char **out, const char **missing)
{
    sbuf b = {0};
    for (size_t i = 0; i < t->n_segs; i++) {
        const tpl_segment *sg = &t->segs[i];
        switch (sg->kind) {
        case TPL_TEXT:
            sb_str(&b, sg->text);
            break;
        case TPL_USER:
            sb_literal(&b, s->user);
            break;
        case TPL_COLUMN: {
            char *q = rewrite_quote_ident(column);
            if (!q)
                b.oom = true;
            else
                sb_str(&b, q);
            free(q);
            break;
        }
        case TPL_GROUPS:
            sb_str(&b, "ARRAY[");
            for (size_t k = 0; k < s->n_groups; k++) {
                if (k)
                    sb_str(&b, ", ");
                sb_literal(&b, s->groups[k]);
            }
            sb_str(&b, "]::text[]");
            break;
        case TPL_CLAIM: {
            const json_t *v = claims;
            const char *path = sg->text;
            while (v && *path) {
                const char *dot = strchr(path, '.');
                size_t n = dot ? (size_t)(dot - path) : strlen(path);
                char key[256];
                snprintf(key, sizeof key, "%.*s", (int)n, path);
                v = json_is_object(v) ? json_object_get(v, key) : NULL;
                path += n + (dot ? 1 : 0);
            }
            char text[4096];
            if (v && json_is_array(v)) {
                sb_str(&b, "ARRAY[");
                size_t k;
                json_t *e;
                json_array_foreach(v, k, e) {
                    if (!scalar_text(e, text, sizeof text)) {
                        free(b.s);
                        *missing = sg->text;
                        return 1;
                    }
                    if (k)
                        sb_str(&b, ", ");
                    sb_literal(&b, text);
                }
                sb_str(&b, "]::text[]");
            } else if (v && scalar_text(v, text, sizeof text)) {
                sb_literal(&b, text);
            } else {
                free(b.s);
                *missing = sg->text;
                return 1;
            }
            break;
        }
        }
    }
    if (b.oom) {
        free(b.s);
        return -1;
    }
    *out = b.s ? b.s : strdup("");
    return *out ? 0 : -1;
}

/* ---- masked relations ---------------------------------------------- */

typedef struct col_list {
    const char **names;
    size_t n;
} col_list;

static int list_columns(void *ctx, const char *schema, const char *table, const char ***names, size_t *n)
{
    col_list *cl = ctx;
    *names = cl->names;
    *n = cl->n;
    return 0;
}

static rewrite_mask_kind mask_kind(policy_mask_kind k)
{
    switch (k) {
    case MASK_NULL: return REWRITE_MASK_NULL;
    case MASK_HASH: return REWRITE_MASK_HASH;
    case MASK_REDACT: return REWRITE_MASK_REDACT;
    default: return REWRITE_MASK_LAST4;
    }
}

/* Builds the replacement SELECT for a filtered/masked relation. Returns 0,
 * or 1 with it->why/note set (deny), or -1 out of memory. */
static int build_masked(const decide_request *req, const subj *s, const policy_rule *r, const char *schema,
                        const char *name, bool only, decide_item *it, char **out)
{
    char *filter = NULL;
    const char *missing = NULL;
    int rc;
    if (r->has_row_filter) {
        rc = bind_template(&r->row_filter, s, req->who->claims, NULL, &filter, &missing);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            it->why = W_BIND_FAILED;
            it->note = strdup(missing);
            return 1;
        }
    }
    char err[512];
    if (!r->n_columns) {   /* a row filter alone needs no column list: SELECT * keeps every column */
        char *qs = rewrite_quote_ident(schema), *qn = rewrite_quote_ident(name);
        sbuf b = {0};
        if (qs && qn) {
            sb_str(&b, "SELECT * FROM ");
            if (only)
                sb_str(&b, "ONLY ");
            sb_str(&b, qs);
            sb_str(&b, ".");
            sb_str(&b, qn);
            sb_str(&b, " WHERE (");
            sb_str(&b, filter);
            sb_str(&b, ") OFFSET 0");
        }
        free(qs);
        free(qn);
        free(filter);
        if (!qs || !qn || b.oom) {
            free(b.s);
            return -1;
        }
        *out = b.s;
        return 0;
    }
    const char **cols = NULL;
    size_t ncols = 0;
    if (!req->columns || req->columns(req->columns_ctx, schema, name, &cols, &ncols) != 0) {
        free(filter);
        it->why = W_COLUMNS_UNKNOWN;
        return 1;
    }
    const char **keep = malloc((ncols + 1) * sizeof *keep);
    rewrite_column_mask *masks = calloc(r->n_columns + 1, sizeof *masks);
    char **owned = calloc(r->n_columns + 1, sizeof *owned);
    size_t nkeep = 0, nmasks = 0;
    rc = 0;
    if (!keep || !masks || !owned)
        rc = -1;
    for (size_t c = 0; rc == 0 && c < ncols; c++) {
        const policy_column *pc = NULL;
        for (size_t k = 0; k < r->n_columns && !pc; k++)
            if (strcmp(r->columns[k].name, cols[c]) == 0)
                pc = &r->columns[k];
        if (pc && pc->kind == MASK_DENY)
            continue;
        keep[nkeep++] = cols[c];
        if (!pc)
            continue;
        char *sql = NULL;
        if (pc->kind == MASK_EXPR) {
            int b = bind_template(&pc->expr, s, req->who->claims, cols[c], &sql, &missing);
            if (b < 0) {
                rc = -1;
            } else if (b > 0) {
                it->why = W_BIND_FAILED;
                it->note = strdup(missing);
                rc = 1;
            }
        } else if (!(sql = rewrite_mask_sql(mask_kind(pc->kind), cols[c]))) {
            rc = -1;
        }
        if (sql) {
            owned[nmasks] = sql;
            masks[nmasks].column = cols[c];
            masks[nmasks].sql = sql;
            nmasks++;
        }
    }
    if (rc == 0) {
        col_list cl = {keep, nkeep};
        if (rewrite_masked_relation(schema, name, only, list_columns, &cl, masks, nmasks, filter, out, err,
                                    sizeof err) != 0) {
            it->why = W_REWRITE_FAILED;
            it->note = strdup(err);
            rc = 1;
        }
    }
    for (size_t k = 0; k < nmasks; k++)
        free(owned[k]);
    free(owned);
    free(masks);
    free(keep);
    free(filter);
    return rc;
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

static void decide_function(const policy_t *p, const subj *s, const analysis *a,
                            const analysis_function *f, decide_item *it)
{
    it->schema = f->schema;
    it->name = f->name;
    if (is_constant_search_path_set_config(a, f)) {
        it->verdict = DECIDE_ALLOW;
        it->why = W_FN_OK;
        return;
    }
    for (size_t i = 0; i < p->n_functions; i++) {
        const policy_fnpat *fp = &p->functions[i];
        if (!glob_match(&fp->name, f->name))
            continue;
        if (fp->has_schema && f->schema && !glob_match(&fp->schema, f->schema))
            continue;
        it->verdict = DECIDE_DENY;
        it->why = fp->reason ? W_FN_BUILTIN : W_FN_POLICY;
        it->ref[0] = fp;
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

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static const char *const builtin_denied_settings[] = {"role", "session_authorization", "local_preload_libraries",
                                                      "session_preload_libraries", "shared_preload_libraries",
                                                      NULL};

static void decide_setting(const policy_t *p, const subj *s, const analysis_setting *st, decide_item *it)
{
    it->name = st->name ? st->name : (st->action == ANALYZE_SET_RESET_ALL ? "all" : "(not constant)");
    it->verdict = DECIDE_ALLOW;
    it->why = W_SET_OK;
    if (!st->name) {
        if (st->action != ANALYZE_SET_RESET_ALL) {
            it->verdict = DECIDE_DENY;
            it->why = W_SP_NOT_CONSTANT;
        }
        return;
    }
    if (st->action == ANALYZE_SET_MULTI || st->action == ANALYZE_SET_DISCARD)
        return;
    bool setting_value = st->action == ANALYZE_SET_VALUE;
    for (size_t i = 0; builtin_denied_settings[i]; i++)
        if (strcmp(st->name, builtin_denied_settings[i]) == 0) {
            it->verdict = DECIDE_DENY;
            it->why = W_SET_BUILTIN;
            return;
        }
    for (size_t i = 0; i < p->n_settings; i++)
        if (glob_match(&p->settings[i].name, st->name)) {
            it->verdict = DECIDE_DENY;
            it->why = W_SET_POLICY;
            it->ref[0] = &p->settings[i];
            return;
        }
    if (strcmp(st->name, "search_path") == 0) {
        if (!setting_value) {
            it->why = W_SP_RESET;
            return;
        }
        if (st->value_not_constant || (!st->schemas && st->value && *st->value)) {
            it->verdict = DECIDE_DENY;
            it->why = W_SP_NOT_CONSTANT;
            return;
        }
        for (size_t i = 0; i < st->n_schemas; i++) {
            const char *sc = st->schemas[i];
            if (strcmp(sc, "$user") == 0) {
                it->verdict = DECIDE_DENY;
                it->why = W_SP_USER;
                return;
            }
            if (policy_is_catalog_schema(sc) || strcmp(sc, "pg_temp") == 0 || !*sc)
                continue;
            if (!schema_readable(p, s, sc)) {
                it->verdict = DECIDE_DENY;
                it->why = W_SP_UNREADABLE;
                it->ref[0] = sc;
                return;
            }
        }
        it->why = W_SP_OK;
        return;
    }
    if (!setting_value)
        return;
    const char *v = st->value;
    if (strcmp(st->name, "standard_conforming_strings") == 0) {
        if (!v || !(ieq(v, "on") || ieq(v, "true") || ieq(v, "yes") || ieq(v, "1"))) {
            it->verdict = DECIDE_DENY;
            it->why = W_SET_VALUE;
        }
    } else if (strcmp(st->name, "client_encoding") == 0) {
        if (!v || !(ieq(v, "utf8") || ieq(v, "utf-8") || ieq(v, "unicode"))) {
            it->verdict = DECIDE_DENY;
            it->why = W_SET_VALUE;
        }
    }
}

static const char *const utility_tags[] = {"SHOW", "FETCH", "MOVE", "CLOSE", "CLOSE CURSOR", "CLOSE CURSOR ALL",
                                           "DEALLOCATE", "DEALLOCATE ALL", "EXECUTE", "LOCK", "LOCK TABLE",
                                           "VACUUM", "ANALYZE", "CLUSTER", "REINDEX", "PREPARE", "EXPLAIN",
                                           "DISCARD", "DISCARD ALL", NULL};

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

static void decide_relation(const policy_t *p, const subj *s, const analysis *a, size_t ri, bool fullcat,
                            decide_item *it)
{
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
            bool temp = strcmp(norm_schema(cand), "pg_temp") == 0;
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
    if (it->verdict == DECIDE_REWRITE && (rel->usage != ANALYZE_USE_FROM || rel->tablesample)) {
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

#define ADD(kind, idx, stmt)                                          \
    ({                                                                \
        decide_item *it_ = add_item(out, kind, idx, stmt);            \
        if (!it_) {                                                   \
            subj_free(&s);                                            \
            return fail(out, err, errlen, "out of memory");           \
        }                                                             \
        it_;                                                          \
    })

int decide(const policy_t *p, const decide_request *req, decision *out, char *err, size_t errlen)
{
    decision_reset(out);
    out->policy = p;
    out->who = req->who;
    out->facts = req->facts;
    const analysis *a = req->facts;
    subj s;
    if (subj_init(&s, p, req->who) < 0)
        return fail(out, err, errlen, "out of memory");
    bool fullcat = full_catalog(p, &s);

    /* statements */
    for (size_t i = 0; i < a->n_stmts; i++) {
        const analysis_stmt *st = &a->stmts[i];
        int why = 0;
        if (st->kind == ANALYZE_STMT_UNSUPPORTED)
            why = W_STMT_UNSUPPORTED;
        else if (st->kind == ANALYZE_STMT_DDL && !st->objects_complete)
            why = W_STMT_DDL_INCOMPLETE;
        else if (st->kind == ANALYZE_STMT_UTILITY && !utility_allowed(st->tag))
            why = W_STMT_UTILITY;
        else if (st->execute_name && !(req->prepared && req->prepared(req->prepared_ctx, st->execute_name)))
            why = W_STMT_EXECUTE;
        if (why) {
            decide_item *it = ADD(DECIDE_ITEM_STATEMENT, i, i);
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
        decide_item *it = ADD(DECIDE_ITEM_FLAG, i, f->stmt_index);
        it->verdict = DECIDE_DENY;
        it->why = W_FLAG;
        it->name = analyze_flag_kind_name(f->kind);
        it->ref[0] = f;
    }
    /* relations */
    bool any_filtered_catalog = false;
    for (size_t i = 0; i < a->n_relations; i++) {
        decide_item *it = ADD(DECIDE_ITEM_RELATION, i, a->relations[i].stmt_index);
        decide_relation(p, &s, a, i, fullcat, it);
        if (it->verdict == DECIDE_REWRITE && it->why == W_CATALOG_FILTERED)
            any_filtered_catalog = true;
    }
    /* schemas as DDL objects */
    for (size_t i = 0; i < a->n_schemas; i++) {
        decide_item *it = ADD(DECIDE_ITEM_SCHEMA, i, a->schemas[i].stmt_index);
        it->name = a->schemas[i].name;
        it->access = a->schemas[i].access;
        int why;
        const policy_rule *r = schema_write_rule(p, &s, a->schemas[i].name, &why);
        it->why = why;
        it->ref[0] = r;
        it->rule_id = r ? r->id : NULL;
        it->verdict = why == W_SCHEMA_WRITE_RULE ? DECIDE_ALLOW : DECIDE_DENY;
    }
    for (size_t i = 0; i < a->n_functions; i++) {
        decide_item *it = ADD(DECIDE_ITEM_FUNCTION, i, a->functions[i].stmt_index);
        decide_function(p, &s, a, &a->functions[i], it);
    }
    for (size_t i = 0; i < a->n_settings; i++) {
        decide_item *it = ADD(DECIDE_ITEM_SETTING, i, a->settings[i].stmt_index);
        decide_setting(p, &s, &a->settings[i], it);
    }
    for (size_t i = 0; i < a->n_roles; i++) {
        decide_item *it = ADD(DECIDE_ITEM_ROLE, i, a->roles[i].stmt_index);
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

    /* the verdict */
    size_t first_deny = DECIDE_NONE, first_rewrite = DECIDE_NONE;
    for (size_t i = 0; i < out->n_items; i++) {
        if (out->items[i].verdict == DECIDE_DENY && first_deny == DECIDE_NONE)
            first_deny = i;
        if (out->items[i].verdict == DECIDE_REWRITE && first_rewrite == DECIDE_NONE)
            first_rewrite = i;
    }
    int rc = 0;
    if (first_deny == DECIDE_NONE && first_rewrite != DECIDE_NONE) {
        /* build the substitutions */
        size_t cap = out->n_items + 1, n = 0;
        rewrite_substitution *subs = calloc(cap, sizeof *subs);
        if (!subs) {
            subj_free(&s);
            return fail(out, err, errlen, "out of memory");
        }
        for (size_t i = 0; i < out->n_items && rc == 0; i++) {
            decide_item *it = &out->items[i];
            if (it->kind != DECIDE_ITEM_RELATION || it->verdict != DECIDE_REWRITE || it->why != W_RULE_READ_FILTERED)
                continue;
            const analysis_relation *rel = &a->relations[it->index];
            char *repl = NULL;
            int b = build_masked(req, &s, it->ref[0], it->schema, rel->name, rel->only, it, &repl);
            if (b < 0) {
                rc = -1;
                snprintf(err, errlen, "out of memory");
            } else if (b > 0) {
                it->verdict = DECIDE_DENY;
                if (first_deny == DECIDE_NONE)
                    first_deny = i;
            } else {
                subs[n].relation = it->index;
                subs[n].replacement = repl;
                n++;
            }
        }
        rewrite_substitution *csubs = NULL;
        int nc = 0;
        if (rc == 0 && first_deny == DECIDE_NONE && any_filtered_catalog) {
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
                        first_deny = i;
                        break;
                    }
                nc = 0;
            }
        }
        if (rc == 0 && first_deny == DECIDE_NONE) {
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
                    first_deny = first_rewrite;
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
    }
    subj_free(&s);
    if (rc < 0) {
        free(out->rewritten_sql);
        out->rewritten_sql = NULL;
        out->verdict = DECIDE_DENY;
        snprintf(out->reason, sizeof out->reason, "internal error: %s", err);
        out->reason_done = true;
        return -1;
    }
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
    return 0;
}

/* ---- reasons -------------------------------------------------------- */

static const char *access_word(policy_access a)
{
    return a == ACCESS_WRITE ? "write" : a == ACCESS_READ ? "read" : "deny";
}

void decide_item_label(const decide_item *it, char *buf, size_t len)
{
    switch (it->kind) {
    case DECIDE_ITEM_RELATION:
        if (it->schema)
            snprintf(buf, len, "%s.%s", it->schema, it->name);
        else
            snprintf(buf, len, "%s", it->name);
        break;
    case DECIDE_ITEM_FUNCTION:
        if (it->schema)
            snprintf(buf, len, "%s.%s", it->schema, it->name);
        else
            snprintf(buf, len, "%s", it->name);
        break;
    default:
        snprintf(buf, len, "%s", it->name ? it->name : "?");
    }
}

static const char *kind_word(decide_item_kind k)
{
    switch (k) {
    case DECIDE_ITEM_STATEMENT: return "statement";
    case DECIDE_ITEM_RELATION: return "relation";
    case DECIDE_ITEM_SCHEMA: return "schema";
    case DECIDE_ITEM_FUNCTION: return "function";
    case DECIDE_ITEM_SETTING: return "setting";
    case DECIDE_ITEM_ROLE: return "role change";
    default: return "construct";
    }
}

static void in_dataset(const decide_item *it, char *buf, size_t len)
{
    if (it->dataset)
        snprintf(buf, len, " (dataset %s)", it->dataset);
    else
        buf[0] = 0;
}

void decide_item_reason(const decision *d, size_t i, char *buf, size_t len)
{
    const decide_item *it = &d->items[i];
    const policy_t *p = d->policy;
    const decide_principal *who = d->who;
    const analysis *a = d->facts;
    char label[400], subjd[200] = "", ds[200];
    decide_item_label(it, label, sizeof label);
    in_dataset(it, ds, sizeof ds);
    const char *dsn = it->dataset;
    if (!dsn && it->kind == DECIDE_ITEM_RELATION && it->schema && p) {
        dsn = dataset_of(p, norm_schema(it->schema), it->name);
        if (dsn)
            snprintf(ds, sizeof ds, " (dataset %s)", dsn);
    }
    const policy_rule *r = it->ref[0];
    subj s;
    bool have_subj = p && who && subj_init(&s, p, who) == 0;
    const char *user = who && who->user ? who->user : "this user";
    int why = it->why;
    switch (why) {
    case W_RULE_READ:
    case W_RULE_WRITE:
    case W_RULE_DENY:
    case W_RULE_READ_FILTERED:
    case W_SCHEMA_WRITE_RULE:
    case W_SCHEMA_DENY_RULE:
        if (r && have_subj)
            describe_subject(&r->subjects, &s, subjd, sizeof subjd);
        break;
    default:
        break;
    }
    const char *via = it->note && strcmp(it->note, "search_path") == 0 && it->kind == DECIDE_ITEM_RELATION
                          ? " (an unqualified name that the search_path may resolve there)" : "";
    switch (why) {
    case W_RULE_READ:
        snprintf(buf, len, "relation %s%s%s: rule '%s' gives %s %s on %s", label, ds, via, r->id, subjd,
                 access_word(r->access), r->objects_text);
        break;
    case W_RULE_WRITE:
        snprintf(buf, len, "relation %s%s%s: rule '%s' gives %s write on %s", label, ds, via, r->id, subjd,
                 r->objects_text);
        break;
    case W_RULE_READ_FILTERED: {
        size_t nm = 0, nd = 0;
        for (size_t k = 0; k < r->n_columns; k++)
            r->columns[k].kind == MASK_DENY ? nd++ : nm++;
        char extra[200] = "";
        if (r->has_row_filter)
            snprintf(extra, sizeof extra, "a row filter");
        if (nm) {
            size_t o = strlen(extra);
            snprintf(extra + o, sizeof extra - o, "%s%zu masked column%s", o ? ", " : "", nm, nm == 1 ? "" : "s");
        }
        if (nd) {
            size_t o = strlen(extra);
            snprintf(extra + o, sizeof extra - o, "%s%zu hidden column%s", o ? ", " : "", nd, nd == 1 ? "" : "s");
        }
        snprintf(buf, len, "relation %s%s%s: rule '%s' gives %s read on %s with %s (rewritten)", label, ds, via,
                 r->id, subjd, r->objects_text, extra);
        break;
    }
    case W_RULE_DENY:
        snprintf(buf, len, "relation %s%s%s: rule '%s' denies %s access to %s", label, ds, via, r->id, subjd,
                 r->objects_text);
        break;
    case W_DEFAULT_READ:
    case W_DEFAULT_WRITE:
    case W_LOCKS_ROWS: {
        const policy_rule *h = it->ref[1];
        char hint[600] = "";
        if (h && have_subj) {
            char hs[200];
            describe_subject(&h->subjects, &s, hs, sizeof hs);
            if (why == W_DEFAULT_READ)
                snprintf(hint, sizeof hint, "; rule '%s' gives %s %s on %s only", h->id, hs, access_word(h->access),
                         h->objects_text);
            else
                snprintf(hint, sizeof hint, " (rule '%s' gives %s read only)", h->id, hs);
        }
        if (why == W_DEFAULT_READ && dsn)
            snprintf(buf, len, "no rule gives %s read on %s (dataset %s; default deny)%s%s", user, label, dsn, via, hint);
        else if (why == W_DEFAULT_READ)
            snprintf(buf, len, "no rule gives %s read on %s (default deny)%s%s", user, label, via, hint);
        else if (why == W_LOCKS_ROWS)
            snprintf(buf, len, "SELECT ... FOR UPDATE/SHARE locks rows of %s%s: that needs a write rule, and no rule "
                     "gives %s write on it%s", label, ds, user, hint);
        else
            snprintf(buf, len, "no rule gives %s write on %s%s%s: writes need an explicit write rule%s", user, label,
                     ds, via, hint);
        break;
    }
    case W_CATALOG:
        snprintf(buf, len, "relation %s is a system catalog: readable by everyone", label);
        break;
    case W_CATALOG_FULL:
        snprintf(buf, len, "relation %s is a system catalog: readable, and the policy gives %s full catalog "
                 "visibility", label, user);
        break;
    case W_CATALOG_FILTERED:
        snprintf(buf, len, "relation %s is a system catalog: its rows are filtered to the schemas and tables %s may "
                 "read (rewritten)", label, user);
        break;
    case W_CATALOG_WRITE:
        snprintf(buf, len, "relation %s is a system catalog: never written through martgate", label);
        break;
    case W_CATALOG_NOT_FILTERABLE:
        snprintf(buf, len, "relation %s is a system catalog whose rows must be filtered for %s, which martgate can "
                 "only do for a table in FROM (not COPY, TABLESAMPLE...)", label, user);
        break;
    case W_TEMP:
        snprintf(buf, len, "relation %s is in the session's own temporary schema", label);
        break;
    case W_RESERVED_SCHEMA:
        snprintf(buf, len, "relation %s is in a reserved system schema", label);
        break;
    case W_NOT_FOUND:
        snprintf(buf, len, "relation %s is in none of the schemas of the search_path", label);
        break;
    case W_OTHER_DB:
        snprintf(buf, len, "relation %s names another database", label);
        break;
    case W_UNRESOLVED:
        snprintf(buf, len, "relation %s cannot be resolved to a schema: qualify it", label);
        break;
    case W_AMBIGUOUS_REWRITE:
        snprintf(buf, len, "relation %s needs a row filter, mask or catalog filter, and the search_path leaves it "
                 "ambiguous which table it is: qualify it (schema.table)", label);
        break;
    case W_NOT_SUBSTITUTABLE:
        snprintf(buf, len, "relation %s has a row filter or masks (rule '%s'), which martgate can only apply to a "
                 "table in FROM without TABLESAMPLE: read it with SELECT ... FROM", label, r ? r->id : "?");
        break;
    case W_COLUMNS_UNKNOWN:
        snprintf(buf, len, "relation %s has masked columns (rule '%s') but its column list is unknown", label,
                 r ? r->id : "?");
        break;
    case W_BIND_FAILED:
        snprintf(buf, len, "relation %s: rule '%s' needs claim '%s', which %s's token does not carry (or not as a "
                 "string, number, boolean or array of those)", label, r ? r->id : "?", it->note ? it->note : "?",
                 user);
        break;
    case W_REWRITE_FAILED:
        snprintf(buf, len, "%s %s cannot be rewritten: %s", kind_word(it->kind), label, it->note ? it->note : "?");
        break;
    case W_SCHEMA_WRITE_RULE:
        snprintf(buf, len, "schema %s: rule '%s' gives %s write on %s", label, r->id, subjd, r->objects_text);
        break;
    case W_SCHEMA_DENY_RULE:
        snprintf(buf, len, "schema %s: rule '%s' denies %s access to %s", label, r->id, subjd, r->objects_text);
        break;
    case W_SCHEMA_DEFAULT:
        snprintf(buf, len, "no rule gives %s write on the whole schema %s (DDL on a schema needs one)", user, label);
        break;
    case W_FN_OK:
        snprintf(buf, len, "function %s is not denied", label);
        break;
    case W_FN_BUILTIN: {
        const policy_fnpat *fp = it->ref[0];
        snprintf(buf, len, "function %s is denied (built-in list, '%s'): it %s", label, fp->text, fp->reason);
        break;
    }
    case W_FN_POLICY: {
        const policy_fnpat *fp = it->ref[0];
        snprintf(buf, len, "function %s is denied by the policy's functions.deny ('%s')", label, fp->text);
        break;
    }
    case W_FN_SCHEMA:
        snprintf(buf, len, "function %s is in schema %s, which no rule lets %s read", label, it->schema, user);
        break;
    case W_SET_OK:
        snprintf(buf, len, "setting %s may be changed", label);
        break;
    case W_SET_POLICY:
        snprintf(buf, len, "setting %s is denied by the policy's settings.deny ('%s')", label,
                 ((const policy_setpat *)it->ref[0])->text);
        break;
    case W_SET_BUILTIN:
        snprintf(buf, len, "setting %s cannot be changed through martgate", label);
        break;
    case W_SET_VALUE:
        snprintf(buf, len, "setting %s may only be %s through martgate (the SQL martgate checks must read the same "
                 "as the server does)", label, strcmp(it->name, "client_encoding") == 0 ? "UTF8" : "on");
        break;
    case W_SP_OK:
        snprintf(buf, len, "search_path names only schemas %s may read", user);
        break;
    case W_SP_RESET:
        snprintf(buf, len, "search_path goes back to the session's starting search_path");
        break;
    case W_SP_UNREADABLE:
        snprintf(buf, len, "search_path names schema %s, which no rule lets %s read", (const char *)it->ref[0], user);
        break;
    case W_SP_USER:
        snprintf(buf, len, "search_path names \"$user\", which the server reads as the warehouse login's schema, not "
                 "%s's: name the schemas", user);
        break;
    case W_SP_NOT_CONSTANT:
        snprintf(buf, len, "setting %s is changed to a value martgate cannot read", label);
        break;
    case W_ROLE:
        snprintf(buf, len, "%s changes (SET ROLE, SET SESSION AUTHORIZATION) are not allowed through martgate",
                 label);
        break;
    case W_ROLE_DISCARD:
        snprintf(buf, len, "DISCARD ALL resets the session's %s; the session re-applies what martgate set", label);
        break;
    case W_STMT_UNSUPPORTED:
        snprintf(buf, len, "unsupported statement (%s)", label);
        break;
    case W_STMT_DDL_INCOMPLETE:
        snprintf(buf, len, "%s touches objects martgate does not model (roles, functions, types...): denied", label);
        break;
    case W_STMT_UTILITY:
        snprintf(buf, len, "statement %s is not allowed through martgate", label);
        break;
    case W_STMT_EXECUTE:
        snprintf(buf, len, "EXECUTE %s: martgate has not seen this prepared statement allowed in this session",
                 a && it->index < a->n_stmts && a->stmts[it->index].execute_name ? a->stmts[it->index].execute_name
                                                                                 : "?");
        break;
    case W_FLAG: {
        const analysis_flag *f = it->ref[0];
        snprintf(buf, len, "%s%s%s%s", f->reason ? f->reason : label, f->detail ? " (" : "",
                 f->detail ? f->detail : "", f->detail ? ")" : "");
        break;
    }
    default:
        snprintf(buf, len, "%s %s", kind_word(it->kind), label);
    }
    if (have_subj)
        subj_free(&s);
}

const char *decision_reason(decision *d)
{
    if (d->reason_done)
        return d->reason;
    d->reason_done = true;
    if (d->deciding != DECIDE_NONE) {
        decide_item_reason(d, d->deciding, d->reason, sizeof d->reason);
    } else if (d->verdict == DECIDE_ALLOW) {
        snprintf(d->reason, sizeof d->reason, "nothing in the statement needs a rule");
    } else {
        snprintf(d->reason, sizeof d->reason, "denied");
    }
    return d->reason;
}

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
    const char **out = calloc((ent ? ent->n_schemas : 0) + 1, sizeof *out);
    if (!out) {
        subj_free(&s);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; ent && i < ent->n_schemas; i++) {
        const char *sc = ent->schemas[i];
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
    sbuf b = {0};
    if (n == 0)
        sb_str(&b, "''");
    for (size_t i = 0; i < n; i++) {
        char *q = rewrite_quote_ident(sc[i]);
        if (!q) {
            b.oom = true;
            break;
        }
        if (i)
            sb_str(&b, ", ");
        sb_str(&b, q);
        free(q);
    }
    free(sc);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* Appends "(c1 OR c2 ...)" for the rule's objects; whole: schema-level test. */
static void rule_sql_cond(const policy_rule *r, const char *sx, const char *tx, bool schema_level, bool only_whole,
                          sbuf *b, bool *any)
{
    *any = false;
    size_t start = b->len;
    sb_str(b, "(");
    for (size_t k = 0; k < r->n_datasets; k++) {
        if (r->datasets[k]->builtin)
            continue;
        for (size_t j = 0; j < r->datasets[k]->n_pats; j++) {
            if (*any)
                sb_str(b, " OR ");
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
            sb_str(b, " OR ");
        sb_str(b, "(");
        if (!glob_to_sql(&op->schema, sx, true, &b->s, &b->len, &b->cap))
            b->oom = true;
        if (!schema_level && !whole) {
            sb_str(b, " AND ");
            if (!glob_to_sql(&op->table, tx, false, &b->s, &b->len, &b->cap))
                b->oom = true;
        }
        sb_str(b, ")");
        *any = true;
    }
    if (!*any) {
        b->len = start;
        if (b->s)
            b->s[start] = 0;
        return;
    }
    sb_str(b, ")");
}

char *decide_catalog_visible(void *ctx, const char *schema_expr, const char *table_expr)
{
    const decide_visibility *v = ctx;
    const policy_t *p = v->policy;
    subj s;
    if (subj_init(&s, p, v->who) < 0)
        return NULL;
    sbuf b = {0};
    bool schema_level = table_expr == NULL;
    sb_str(&b, "(CASE WHEN ");
    sb_str(&b, schema_expr);
    sb_str(&b, " IN ('pg_catalog', 'information_schema') THEN true");
    for (size_t i = 0; i < p->n_rules; i++) {
        const policy_rule *r = &p->rules[i];
        const char *what;
        if (!subjects_match(&r->subjects, &s, &what))
            continue;
        bool deny = r->access == ACCESS_DENY, any;
        size_t mark = b.len;
        sb_str(&b, " WHEN ");
        rule_sql_cond(r, schema_expr, table_expr, schema_level, schema_level && deny, &b, &any);
        if (!any) {
            b.len = mark;
            if (b.s)
                b.s[mark] = 0;
            continue;
        }
        sb_str(&b, deny ? " THEN false" : " THEN true");
    }
    sb_str(&b, " ELSE false END)");
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
    sbuf b = {0};
    sb_str(&b, "(CASE WHEN ");
    sb_str(&b, schema_expr);
    sb_str(&b, " IN ('pg_catalog', 'information_schema') THEN false");
    bool any_deny = false;
    for (size_t i = 0; i < p->n_rules; i++) {
        const policy_rule *r = &p->rules[i];
        const char *what;
        if (!subjects_match(&r->subjects, &s, &what))
            continue;
        bool any;
        size_t mark = b.len;
        sb_str(&b, " WHEN ");
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
            sb_str(&b, " THEN false");
            continue;
        }
        any_deny = true;
        sb_str(&b, " THEN ");
        sb_str(&b, column_expr);
        sb_str(&b, " IN (");
        size_t done = 0;
        for (size_t k = 0; k < r->n_columns; k++) {
            if (r->columns[k].kind != MASK_DENY)
                continue;
            if (done++)
                sb_str(&b, ", ");
            sb_literal(&b, r->columns[k].name);
        }
        sb_str(&b, ")");
    }
    sb_str(&b, " ELSE false END)");
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
