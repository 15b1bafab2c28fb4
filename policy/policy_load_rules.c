/*
 * policy_load_rules: the rules of a policy (subjects, objects, access, row
 * filters and column masks, checked and compiled) and the warnings for rules
 * an earlier one always wins over.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_load_internal.h"

/* ---- rules ---------------------------------------------------------- */

void rule_free(policy_rule *r)
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

void parse_rules(loader *L, const json_doc *d, json_t *arr, size_t *seq)
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

int pending_cmp(const void *a, const void *b)
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

void warn_shadowed(loader *L)
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

