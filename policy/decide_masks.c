/*
 * decide_masks: the rewrites a rule asks for. Binds row-filter and mask
 * templates to the principal (claims and user only ever as quoted literals)
 * and builds the masked, filtered substitution of a relation through
 * policy/rewrite, with the table's column list from the caller's catalog.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/decide_internal.h"

/* ---- templates ------------------------------------------------------ */

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
    textbuf b = {0};
    for (size_t i = 0; i < t->n_segs; i++) {
        const tpl_segment *sg = &t->segs[i];
        switch (sg->kind) {
        case TPL_TEXT:
            textbuf_add(&b, sg->text);
            break;
        case TPL_USER:
            rewrite_add_literal(&b, s->user);
            break;
        case TPL_COLUMN: {
            char *q = rewrite_quote_ident(column);
            if (!q)
                b.oom = true;
            else
                textbuf_add(&b, q);
            free(q);
            break;
        }
        case TPL_GROUPS:
            textbuf_add(&b, "ARRAY[");
            for (size_t k = 0; k < s->n_groups; k++) {
                if (k)
                    textbuf_add(&b, ", ");
                rewrite_add_literal(&b, s->groups[k]);
            }
            textbuf_add(&b, "]::text[]");
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
                textbuf_add(&b, "ARRAY[");
                size_t k;
                json_t *e;
                json_array_foreach(v, k, e) {
                    if (!scalar_text(e, text, sizeof text)) {
                        free(b.s);
                        *missing = sg->text;
                        return 1;
                    }
                    if (k)
                        textbuf_add(&b, ", ");
                    rewrite_add_literal(&b, text);
                }
                textbuf_add(&b, "]::text[]");
            } else if (v && scalar_text(v, text, sizeof text)) {
                rewrite_add_literal(&b, text);
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
int build_masked(const decide_request *req, const subj *s, const policy_rule *r, const char *schema,
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
        textbuf b = {0};
        if (qs && qn) {
            textbuf_add(&b, "SELECT * FROM ");
            if (only)
                textbuf_add(&b, "ONLY ");
            textbuf_add(&b, qs);
            textbuf_add(&b, ".");
            textbuf_add(&b, qn);
            textbuf_add(&b, " WHERE (");
            textbuf_add(&b, filter);
            textbuf_add(&b, ") OFFSET 0");
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
        if (pc->kind == MASK_HASH && !req->hash_key) {
            it->why = W_REWRITE_FAILED;
            it->note = strdup("its hash mask needs a key, and none is configured (hash_mask_key_file in "
                              "martgate's configuration)");
            rc = 1;
        } else if (pc->kind == MASK_HASH) {
            if (!(sql = rewrite_hash_mask_sql(req->hash_key, cols[c])))
                rc = -1;
        } else if (pc->kind == MASK_EXPR) {
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

