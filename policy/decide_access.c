/*
 * decide_access: effective access for the review tools (see decide_access.h).
 * The subjects and objects come from what the policies name; each cell is
 * relation_verdict()'s answer, the same function a statement's relations go
 * through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/textbuf.h"
#include "policy/decide_access.h"
#include "policy/decide_internal.h"

/* A name a pattern matches: every wildcard becomes one \x01, a byte no name
 * a policy writes contains, so the sample matches exactly the patterns that
 * match every name of its own pattern's shape. */
static char *sample_of(const char *glob)
{
    char *s = strdup(glob);
    if (!s)
        return NULL;
    char *w = s;
    for (const char *r = glob; *r; r++) {
        if (*r == '*' || *r == '?') {
            if (w == s || w[-1] != '\x01' || *r == '?')
                *w++ = '\x01';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return s;
}

/* ---- space --------------------------------------------------------------- */

typedef struct {
    access_space *sp;
    size_t cap_s, cap_o;
    bool oom;
} builder;

static void add_subject(builder *b, access_subject_kind kind, const char *name)
{
    if (b->oom || !name)
        return;
    for (size_t i = 0; i < b->sp->n_subjects; i++)
        if (b->sp->subjects[i].kind == kind && strcmp(b->sp->subjects[i].name, name) == 0)
            return;
    if (b->sp->n_subjects == b->cap_s) {
        size_t cap = b->cap_s ? 2 * b->cap_s : 16;
        access_subject *n = realloc(b->sp->subjects, cap * sizeof *n);
        if (!n) {
            b->oom = true;
            return;
        }
        b->sp->subjects = n;
        b->cap_s = cap;
    }
    access_subject *s = &b->sp->subjects[b->sp->n_subjects];
    s->kind = kind;
    s->name = strdup(name);
    s->sample = sample_of(name);
    if (!s->name || !s->sample) {
        free(s->name);
        free(s->sample);
        b->oom = true;
        return;
    }
    b->sp->n_subjects++;
}

static void add_subjects(builder *b, const policy_subjects *ps)
{
    for (size_t i = 0; i < ps->n_groups; i++)
        add_subject(b, ACCESS_SUBJECT_GROUP, ps->groups[i].text);
    for (size_t i = 0; i < ps->n_users; i++)
        if (ps->users[i].kind != GLOB_ANY)    /* "*" is everyone */
            add_subject(b, ACCESS_SUBJECT_USER, ps->users[i].text);
}

static void add_object(builder *b, const policy_objpat *op)
{
    if (b->oom)
        return;
    for (size_t i = 0; i < b->sp->n_objects; i++)
        if (strcmp(b->sp->objects[i].schema, op->schema.text) == 0 &&
            strcmp(b->sp->objects[i].table, op->table.text) == 0)
            return;
    if (b->sp->n_objects == b->cap_o) {
        size_t cap = b->cap_o ? 2 * b->cap_o : 16;
        access_object *n = realloc(b->sp->objects, cap * sizeof *n);
        if (!n) {
            b->oom = true;
            return;
        }
        b->sp->objects = n;
        b->cap_o = cap;
    }
    access_object *o = &b->sp->objects[b->sp->n_objects];
    o->schema = strdup(op->schema.text);
    o->table = strdup(op->table.text);
    o->schema_sample = sample_of(op->schema.text);
    o->table_sample = sample_of(op->table.text);
    if (!o->schema || !o->table || !o->schema_sample || !o->table_sample) {
        free(o->schema);
        free(o->table);
        free(o->schema_sample);
        free(o->table_sample);
        b->oom = true;
        return;
    }
    b->sp->n_objects++;
}

static void add_policy(builder *b, const policy_t *p)
{
    for (size_t i = 0; i < p->n_groups; i++) {
        add_subject(b, ACCESS_SUBJECT_GROUP, p->groups[i].name);
        for (size_t k = 0; k < p->groups[i].n_members; k++)
            if (p->groups[i].members[k].kind != GLOB_ANY)
                add_subject(b, ACCESS_SUBJECT_USER, p->groups[i].members[k].text);
    }
    for (size_t i = 0; i < p->n_rules; i++) {
        add_subjects(b, &p->rules[i].subjects);
        for (size_t k = 0; k < p->rules[i].n_pats; k++)
            add_object(b, &p->rules[i].pats[k]);
    }
    for (size_t i = 0; i < p->n_search_paths; i++)
        add_subjects(b, &p->search_paths[i].subjects);
    if (p->has_full_catalog)
        add_subjects(b, &p->full_catalog);
    for (size_t i = 0; i < p->n_impersonators; i++)
        add_subjects(b, &p->impersonators[i].subjects);
    for (size_t i = 0; i < p->n_roles; i++) {
        add_subject(b, ACCESS_SUBJECT_ROLE, p->roles[i].name);
        for (size_t k = 0; k < p->roles[i].n_groups; k++)
            add_subject(b, ACCESS_SUBJECT_GROUP, p->roles[i].groups[k]);
    }
    for (size_t i = 0; i < p->n_datasets; i++)
        for (size_t k = 0; k < p->datasets[i].n_pats; k++)
            add_object(b, &p->datasets[i].pats[k]);
}

static int cmp_subject(const void *a, const void *b)
{
    const access_subject *x = a, *y = b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    return strcmp(x->name, y->name);
}

static int cmp_object(const void *a, const void *b)
{
    const access_object *x = a, *y = b;
    int c = strcmp(x->schema, y->schema);
    if (c)
        return c;
    /* the whole schema first, then its tables */
    bool wx = access_object_whole_schema(x), wy = access_object_whole_schema(y);
    if (wx != wy)
        return wx ? -1 : 1;
    return strcmp(x->table, y->table);
}

int access_space_build(const policy_t *const *ps, size_t n, access_space *out)
{
    memset(out, 0, sizeof *out);
    builder b = {.sp = out};
    add_subject(&b, ACCESS_SUBJECT_EVERYONE, "everyone");
    for (size_t i = 0; i < n; i++)
        add_policy(&b, ps[i]);
    if (b.oom) {
        access_space_free(out);
        return -1;
    }
    if (out->n_subjects > 1)
        qsort(out->subjects, out->n_subjects, sizeof *out->subjects, cmp_subject);
    if (out->n_objects > 1)
        qsort(out->objects, out->n_objects, sizeof *out->objects, cmp_object);
    return 0;
}

void access_space_free(access_space *sp)
{
    for (size_t i = 0; i < sp->n_subjects; i++) {
        free(sp->subjects[i].name);
        free(sp->subjects[i].sample);
    }
    for (size_t i = 0; i < sp->n_objects; i++) {
        free(sp->objects[i].schema);
        free(sp->objects[i].table);
        free(sp->objects[i].schema_sample);
        free(sp->objects[i].table_sample);
    }
    free(sp->subjects);
    free(sp->objects);
    memset(sp, 0, sizeof *sp);
}

void access_subject_label(const access_subject *s, char *buf, size_t len)
{
    static const char *const kinds[] = {"everyone", "group", "user", "role"};
    if (s->kind == ACCESS_SUBJECT_EVERYONE)
        snprintf(buf, len, "everyone");
    else
        snprintf(buf, len, "%s %s", kinds[s->kind], s->name);
}

bool access_object_whole_schema(const access_object *o)
{
    return strcmp(o->table, "*") == 0;
}

void access_object_label(const access_object *o, char *buf, size_t len)
{
    snprintf(buf, len, "%s.%s", o->schema, o->table);
}

const char *access_object_dataset(const policy_t *p, const access_object *o)
{
    return dataset_of(p, o->schema_sample, o->table_sample);
}

bool access_dataset_at(const policy_t *p, size_t i, const char **name, const char **classification)
{
    size_t k = 0;
    for (size_t d = 0; d < p->n_datasets; d++) {
        if (p->datasets[d].builtin)
            continue;
        if (k++ == i) {
            *name = p->datasets[d].name;
            *classification = p->datasets[d].classification;
            return true;
        }
    }
    if (k != i || !p->sensitive)
        return false;
    *name = p->sensitive->name;
    *classification = p->sensitive->classification;
    return true;
}

bool access_object_in_dataset(const policy_t *p, const char *name, const access_object *o)
{
    for (size_t d = 0; d < p->n_datasets; d++) {
        const policy_dataset *ds = &p->datasets[d];
        if (strcmp(ds->name, name) != 0)
            continue;
        for (size_t k = 0; k < ds->n_pats; k++)
            if (strcmp(ds->pats[k].schema.text, o->schema) == 0 && strcmp(ds->pats[k].table.text, o->table) == 0)
                return true;
    }
    return false;
}

int access_object_real(access_object *o, const char *schema, const char *table)
{
    o->schema = strdup(schema);
    o->table = strdup(table);
    o->schema_sample = strdup(schema);
    o->table_sample = strdup(table);
    if (o->schema && o->table && o->schema_sample && o->table_sample)
        return 0;
    access_object_clear(o);
    return -1;
}

void access_object_clear(access_object *o)
{
    free(o->schema);
    free(o->table);
    free(o->schema_sample);
    free(o->table_sample);
    memset(o, 0, sizeof *o);
}

/* ---- cells --------------------------------------------------------------- */

/* The principal a subject stands for under p; false when p lacks the role. */
static bool principal_of(const policy_t *p, const access_subject *s, decide_principal *who, const char **one)
{
    memset(who, 0, sizeof *who);
    who->user = "\x01";          /* a user no rule names */
    switch (s->kind) {
    case ACCESS_SUBJECT_EVERYONE:
        return true;
    case ACCESS_SUBJECT_GROUP:
        *one = s->sample;
        who->groups = one;
        who->n_groups = 1;
        return true;
    case ACCESS_SUBJECT_USER:
        who->user = s->sample;
        return true;
    case ACCESS_SUBJECT_ROLE:
        for (size_t i = 0; i < p->n_roles; i++)
            if (strcmp(p->roles[i].name, s->name) == 0) {
                who->groups = (const char *const *)p->roles[i].groups;
                who->n_groups = p->roles[i].n_groups;
                return true;
            }
        return false;
    }
    return false;
}

int access_cell_get(const policy_t *p, const access_subject *s, const access_object *o, access_cell *out)
{
    memset(out, 0, sizeof *out);
    decide_principal who;
    const char *one = NULL;
    if (!principal_of(p, s, &who, &one))
        return 0;
    out->exists = true;
    subj sj;
    if (subj_init(&sj, p, &who) < 0)
        return -1;
    const policy_rule *r = NULL;
    decide_verdict v = relation_verdict(p, &sj, o->schema_sample, o->table_sample, false, &r);
    out->read = v != DECIDE_DENY;
    out->read_rule = r ? r->id : NULL;
    if (out->read && r && r->access == ACCESS_READ) {
        out->row_filter = r->has_row_filter ? r->row_filter.source : NULL;
        out->columns = r->columns;
        out->n_columns = r->n_columns;
    }
    v = relation_verdict(p, &sj, o->schema_sample, o->table_sample, true, &r);
    out->write = v != DECIDE_DENY;
    out->write_rule = r ? r->id : NULL;
    subj_free(&sj);
    return 0;
}

static const char *mask_name(const policy_column *c)
{
    switch (c->kind) {
    case MASK_PASS: return "pass";
    case MASK_NULL: return "null";
    case MASK_HASH: return "hash";
    case MASK_REDACT: return "redact";
    case MASK_LAST4: return "last4";
    case MASK_EXPR: return "expression";
    case MASK_DENY: return "deny";
    }
    return "?";
}

static const policy_column *find_column(const access_cell *c, const char *name)
{
    const policy_column *cols = c->columns;
    for (size_t i = 0; i < c->n_columns; i++)
        if (strcmp(cols[i].name, name) == 0)
            return &cols[i];
    return NULL;
}

static bool same_mask(const policy_column *a, const policy_column *b)
{
    if (a->kind != b->kind)
        return false;
    return a->kind != MASK_EXPR || strcmp(a->expr.source, b->expr.source) == 0;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Masks: +1 one is lifted or changed, -1 one is added and none lifted, 0 the same. */
static int compare_masks(const access_cell *before, const access_cell *after)
{
    int r = 0;
    const policy_column *b = before->columns;
    for (size_t i = 0; i < before->n_columns; i++) {
        const policy_column *a = find_column(after, b[i].name);
        if (!a || !same_mask(a, &b[i]))
            return 1;
    }
    const policy_column *a = after->columns;
    for (size_t i = 0; i < after->n_columns; i++)
        if (!find_column(before, a[i].name))
            r = -1;
    return r;
}

int access_cell_compare(const access_cell *before, const access_cell *after)
{
    int widen = 0, narrow = 0;
    if (before->write != after->write)
        *(after->write ? &widen : &narrow) += 1;
    if (before->read != after->read) {
        *(after->read ? &widen : &narrow) += 1;
    } else if (before->read) {
        if (!same_text(before->row_filter, after->row_filter))
            *(before->row_filter ? &widen : &narrow) += 1;    /* lifted or changed: widens */
        int m = compare_masks(before, after);
        if (m > 0)
            widen++;
        else if (m < 0)
            narrow++;
    }
    return widen ? 1 : narrow ? -1 : 0;
}

bool access_cell_equal(const access_cell *a, const access_cell *b)
{
    if (a->read != b->read || a->write != b->write)
        return false;
    if (!a->read)
        return true;
    if (!same_text(a->row_filter, b->row_filter) || a->n_columns != b->n_columns)
        return false;
    return compare_masks(a, b) == 0;
}

char *access_cell_text(const access_cell *c)
{
    textbuf t = {0};
    if (!c->exists)
        textbuf_add(&t, "none (role not defined)");
    else if (!c->read && !c->write)
        textbuf_add(&t, "none");
    else if (c->write && !c->row_filter && !c->n_columns)
        textbuf_add(&t, c->read ? "write" : "write only");
    else {
        textbuf_add(&t, c->read ? "read" : "no read");
        if (c->row_filter) {
            textbuf_add(&t, ", row filter ");
            textbuf_add(&t, c->row_filter);
        }
        const policy_column *cols = c->columns;
        for (size_t i = 0; i < c->n_columns; i++) {
            textbuf_add(&t, i ? "; " : ", masks ");
            textbuf_add(&t, cols[i].name);
            textbuf_add(&t, " ");
            textbuf_add(&t, mask_name(&cols[i]));
            if (cols[i].kind == MASK_EXPR) {
                textbuf_add(&t, " ");
                textbuf_add(&t, cols[i].expr.source);
            }
        }
        if (c->write)
            textbuf_add(&t, "; write");
    }
    if (t.oom) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

const char *access_cell_code(const access_cell *c, char *buf, size_t len)
{
    if (!c->read && !c->write)
        snprintf(buf, len, "-");
    else if (c->write && !c->row_filter && !c->n_columns)
        snprintf(buf, len, c->read ? "W" : "w");
    else
        snprintf(buf, len, "%s%s%s%s%s", c->read ? "R" : "", c->row_filter || c->n_columns ? "+" : "",
                 c->row_filter ? "f" : "", c->n_columns ? "m" : "", c->write ? " W" : "");
    return buf;
}

/* ---- defaults and facts -------------------------------------------------- */

int access_defaults_get(const policy_t *p, const access_space *sp, const access_subject *s, access_defaults *out)
{
    memset(out, 0, sizeof *out);
    decide_principal who;
    const char *one = NULL;
    if (!principal_of(p, s, &who, &one)) {
        out->search_path = strdup("");
        out->impersonates = strdup("");
        return out->search_path && out->impersonates ? 0 : -1;
    }
    out->search_path = decide_search_path_text(p, &who);
    out->full_catalog = decide_full_catalog(p, &who);
    textbuf t = {0};
    textbuf_add(&t, "");
    for (size_t i = 0; i < sp->n_subjects && s->kind != ACCESS_SUBJECT_ROLE; i++) {
        const access_subject *r = &sp->subjects[i];
        if (r->kind != ACCESS_SUBJECT_ROLE)
            continue;
        const char *const *g;
        size_t ng;
        char why[256];
        int ok = decide_impersonation(p, &who, r->name, &g, &ng, why, sizeof why);
        if (ok < 0)
            t.oom = true;
        if (ok > 0) {
            if (t.len)
                textbuf_add(&t, ", ");
            textbuf_add(&t, r->name);
        }
    }
    out->impersonates = t.s;
    if (t.oom || !out->search_path) {
        access_defaults_free(out);
        return -1;
    }
    return 0;
}

void access_defaults_free(access_defaults *d)
{
    free(d->search_path);
    free(d->impersonates);
    memset(d, 0, sizeof *d);
}

static int add_fact(access_fact **v, size_t *n, int effect, const char *a, const char *b)
{
    access_fact *nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    *v = nv;
    textbuf t = {0};
    textbuf_add(&t, a);
    textbuf_add(&t, b ? b : "");
    if (t.oom) {
        free(t.s);
        return -1;
    }
    nv[*n].text = t.s;
    nv[*n].effect = effect;
    (*n)++;
    return 0;
}

int access_facts_get(const policy_t *p, access_fact **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = 0;
    for (size_t i = 0; i < p->n_functions && rc == 0; i++) {
        const policy_fnpat *f = &p->functions[i];
        if (f->reason)           /* built in: the same in every policy */
            continue;
        rc = add_fact(out, n, f->allow ? 1 : -1, f->allow ? "functions.allow " : "functions.deny ", f->text);
    }
    for (size_t i = 0; i < p->n_settings && rc == 0; i++) {
        const policy_setpat *st = &p->settings[i];
        rc = add_fact(out, n, st->allow ? 1 : -1, st->allow ? "settings.allow " : "settings.deny ", st->text);
    }
    for (size_t i = 0; i < p->n_roles && rc == 0; i++) {
        textbuf t = {0};
        textbuf_add(&t, p->roles[i].name);
        textbuf_add(&t, ": groups ");
        for (size_t k = 0; k < p->roles[i].n_groups; k++) {
            if (k)
                textbuf_add(&t, ", ");
            textbuf_add(&t, p->roles[i].groups[k]);
        }
        rc = t.oom ? -1 : add_fact(out, n, 0, "role ", t.s);
        free(t.s);
    }
    if (rc == 0 && p->explain_plan)
        rc = add_fact(out, n, 1, "defaults.explain_filtered plan", NULL);
    if (rc == 0 && !p->temp_by_rules)
        rc = add_fact(out, n, 1, "defaults.temp_tables writers", NULL);
    if (rc < 0) {
        access_facts_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void access_facts_free(access_fact *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].text);
    free(f);
}
