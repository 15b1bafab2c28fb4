/*
 * cmd_policy_matrix: `martgate policy matrix PATH`, the picture of access an
 * auditor asks for: every subject the policy names (groups, users, roles for
 * impersonation, and everyone else) against every dataset, each cell the
 * effective access (policy/decide_access), with the tables and schema
 * patterns that differ from their dataset listed as exceptions. With
 * --catalog CONNINFO the exceptions are found among the warehouse's real
 * tables, and the schemas no dataset covers are listed.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/catalog.h"
#include "policy/decide_access.h"
#include "policy/policy.h"
#include "proxy/commands.h"
#include "proxy/review_out.h"

static const char matrix_usage[] =
    "usage: martgate policy matrix [--format terminal|markdown|html|json] [--catalog CONNINFO] PATH\n";

static const char legend[] =
    "- none, R read, R+f read with a row filter, R+m read with column masks, W read and write, w write only";

typedef struct exception_row {
    size_t subject;
    char *object, *dataset, *text;
    const char *rule;
} exception_row;

typedef struct matrix {
    const policy_t *p;
    access_space sp;
    size_t n_ds;
    const char **ds, **ds_class;
    access_cell *cells;          /* subject x dataset */
    exception_row *ex;
    size_t n_ex, cap_ex;
    const char **uncovered;      /* --catalog: schemas no dataset covers */
    size_t n_uncovered;
    const char **catalog;        /* the block catalog_read_relations gave (owns those names) */
    bool oom;
} matrix;

static void add_exception(matrix *m, size_t subject, const access_object *o, const char *ds, const access_cell *c)
{
    if (m->oom)
        return;
    if (m->n_ex == m->cap_ex) {
        size_t cap = m->cap_ex ? 2 * m->cap_ex : 32;
        exception_row *n = realloc(m->ex, cap * sizeof *n);
        if (!n) {
            m->oom = true;
            return;
        }
        m->ex = n;
        m->cap_ex = cap;
    }
    exception_row *e = &m->ex[m->n_ex++];
    char label[512];
    access_object_label(o, label, sizeof label);
    e->subject = subject;
    e->object = strdup(label);
    e->dataset = ds ? strdup(ds) : NULL;
    e->text = access_cell_text(c);
    e->rule = c->read_rule ? c->read_rule : c->write_rule;
    if (!e->object || !e->text || (ds && !e->dataset))
        m->oom = true;
}

/* The dataset's own cell: at its first pattern. */
static const access_object *dataset_object(const matrix *m, const char *ds)
{
    for (size_t k = 0; k < m->sp.n_objects; k++)
        if (access_object_in_dataset(m->p, ds, &m->sp.objects[k]))
            return &m->sp.objects[k];
    return NULL;
}

static size_t dataset_index(const matrix *m, const char *ds)
{
    for (size_t d = 0; d < m->n_ds; d++)
        if (ds && strcmp(m->ds[d], ds) == 0)
            return d;
    return m->n_ds;
}

/* Exceptions: objects whose access differs from their dataset's cell, or that
 * are in no dataset and someone may reach. */
static void find_exceptions(matrix *m, const access_object *objs, size_t n_objs)
{
    for (size_t s = 0; s < m->sp.n_subjects && !m->oom; s++)
        for (size_t k = 0; k < n_objs && !m->oom; k++) {
            const access_object *o = &objs[k];
            const char *ds = access_object_dataset(m->p, o);
            size_t d = dataset_index(m, ds);
            access_cell c;
            if (access_cell_get(m->p, &m->sp.subjects[s], o, &c) < 0) {
                m->oom = true;
                break;
            }
            bool differs = d < m->n_ds ? !access_cell_equal(&c, &m->cells[s * m->n_ds + d]) : c.read || c.write;
            if (differs)
                add_exception(m, s, o, ds, &c);
        }
}

static int read_catalog(matrix *m, const char *conninfo, access_object **objs, size_t *n_objs)
{
    const char **schemas, **tables;
    size_t n;
    char err[1024];
    if (catalog_read_relations(conninfo, NULL, &schemas, &tables, &n, err, sizeof err) < 0) {
        size_t l = strlen(err);
        while (l && err[l - 1] == '\n')
            err[--l] = '\0';
        fprintf(stderr, "martgate policy matrix: --catalog: %s\n", err);
        return -1;
    }
    m->catalog = schemas;
    *objs = calloc(n ? n : 1, sizeof **objs);
    m->uncovered = calloc(n ? n : 1, sizeof *m->uncovered);
    int rc = *objs && m->uncovered ? 0 : -1;
    *n_objs = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        bool covered = false;
        const char *probe = tables[i] ? tables[i] : "\x01";
        access_object any;
        if (access_object_real(&any, schemas[i], probe) < 0) {
            rc = -1;
            break;
        }
        covered = access_object_dataset(m->p, &any) != NULL;
        access_object_clear(&any);
        if (!covered && (m->n_uncovered == 0 || strcmp(m->uncovered[m->n_uncovered - 1], schemas[i]) != 0))
            m->uncovered[m->n_uncovered++] = schemas[i];
        if (tables[i] && access_object_real(&(*objs)[(*n_objs)++], schemas[i], tables[i]) < 0)
            rc = -1;
    }
    if (rc < 0) {
        fprintf(stderr, "martgate policy matrix: out of memory\n");
        return -1;
    }
    return 0;
}

static int build(matrix *m, const char *conninfo)
{
    const policy_t *one[1] = {m->p};
    if (access_space_build(one, 1, &m->sp) < 0)
        return -1;
    const char *name, *cls;
    while (access_dataset_at(m->p, m->n_ds, &name, &cls))
        m->n_ds++;
    m->ds = calloc(m->n_ds + 1, sizeof *m->ds);
    m->ds_class = calloc(m->n_ds + 1, sizeof *m->ds_class);
    m->cells = calloc(m->sp.n_subjects * m->n_ds + 1, sizeof *m->cells);
    if (!m->ds || !m->ds_class || !m->cells)
        return -1;
    for (size_t d = 0; d < m->n_ds; d++)
        access_dataset_at(m->p, d, &m->ds[d], &m->ds_class[d]);
    for (size_t s = 0; s < m->sp.n_subjects; s++)
        for (size_t d = 0; d < m->n_ds; d++) {
            const access_object *o = dataset_object(m, m->ds[d]);
            access_cell *c = &m->cells[s * m->n_ds + d];
            if (o && access_cell_get(m->p, &m->sp.subjects[s], o, c) < 0)
                return -1;
        }
    if (!conninfo) {
        find_exceptions(m, m->sp.objects, m->sp.n_objects);
        return m->oom ? -1 : 0;
    }
    access_object *objs = NULL;
    size_t n_objs = 0;
    int rc = read_catalog(m, conninfo, &objs, &n_objs);
    if (rc == 0) {
        find_exceptions(m, objs, n_objs);
        rc = m->oom ? -1 : 0;
    }
    for (size_t i = 0; i < n_objs; i++)
        access_object_clear(&objs[i]);
    free(objs);
    return rc == 0 ? 0 : -2;
}

static void matrix_free(matrix *m)
{
    for (size_t i = 0; i < m->n_ex; i++) {
        free(m->ex[i].object);
        free(m->ex[i].dataset);
        free(m->ex[i].text);
    }
    free(m->ex);
    free(m->cells);
    free(m->ds);
    free(m->ds_class);
    free(m->uncovered);
    free(m->catalog);
    access_space_free(&m->sp);
}

/* ---- output -------------------------------------------------------------- */

static int print_json(const matrix *m, const char *path, bool catalog)
{
    json_t *datasets = json_array(), *subjects = json_array();
    for (size_t d = 0; d < m->n_ds; d++)
        json_array_append_new(datasets, json_pack("{s:s, s:s?}", "name", m->ds[d], "classification", m->ds_class[d]));
    static const char *const kinds[] = {"everyone", "group", "user", "role"};
    for (size_t s = 0; s < m->sp.n_subjects; s++) {
        const access_subject *sub = &m->sp.subjects[s];
        json_t *access = json_object(), *ex = json_array();
        for (size_t d = 0; d < m->n_ds; d++) {
            const access_cell *c = &m->cells[s * m->n_ds + d];
            char code[16], *text = access_cell_text(c);
            json_object_set_new(access, m->ds[d],
                                json_pack("{s:s, s:s?, s:s?}", "code", access_cell_code(c, code, sizeof code), "text",
                                          text, "rule", c->read_rule ? c->read_rule : c->write_rule));
            free(text);
        }
        for (size_t i = 0; i < m->n_ex; i++)
            if (m->ex[i].subject == s)
                json_array_append_new(ex, json_pack("{s:s, s:s?, s:s, s:s?}", "object", m->ex[i].object, "dataset",
                                                    m->ex[i].dataset, "access", m->ex[i].text, "rule", m->ex[i].rule));
        json_array_append_new(subjects, json_pack("{s:s, s:s, s:o, s:o}", "kind", kinds[sub->kind], "name", sub->name,
                                                  "access", access, "exceptions", ex));
    }
    json_t *doc = json_pack("{s:s, s:o, s:o}", "policy", path, "datasets", datasets, "subjects", subjects);
    if (doc && catalog) {
        json_t *u = json_array();
        for (size_t i = 0; i < m->n_uncovered; i++)
            json_array_append_new(u, json_string(m->uncovered[i]));
        json_object_set_new(doc, "uncovered_schemas", u);
    }
    int rc = doc && json_dumpf(doc, stdout, JSON_INDENT(1)) == 0 ? 0 : -1;
    json_decref(doc);
    fputc('\n', stdout);
    return rc;
}

/* HTML: each cell's code with its whole access (and rule) as its title. */
static int print_html_grid(const matrix *m)
{
    char label[512], code[16];
    fputs("<table>\n<tr><th>Subject</th>", stdout);
    for (size_t d = 0; d < m->n_ds; d++) {
        fputs("<th>", stdout);
        review_html_text(stdout, m->ds[d]);
        fputs("</th>", stdout);
    }
    fputs("</tr>\n", stdout);
    for (size_t s = 0; s < m->sp.n_subjects; s++) {
        access_subject_label(&m->sp.subjects[s], label, sizeof label);
        fputs("<tr><th>", stdout);
        review_html_text(stdout, label);
        fputs("</th>", stdout);
        for (size_t d = 0; d < m->n_ds; d++) {
            const access_cell *c = &m->cells[s * m->n_ds + d];
            const char *rule = c->read_rule ? c->read_rule : c->write_rule;
            char *text = access_cell_text(c);
            if (!text)
                return -1;
            fputs("<td title=\"", stdout);
            review_html_text(stdout, text);
            if (rule) {
                fputs(" (rule ", stdout);
                review_html_text(stdout, rule);
                fputs(")", stdout);
            }
            printf("\">%s</td>", access_cell_code(c, code, sizeof code));
            free(text);
        }
        fputs("</tr>\n", stdout);
    }
    fputs("</table>\n", stdout);
    return 0;
}

static int print_grid(const matrix *m, review_format f)
{
    if (f == REVIEW_HTML)
        return print_html_grid(m);
    review_table t;
    review_table_init(&t, m->n_ds + 1);
    const char **row = calloc(m->n_ds + 1, sizeof *row);
    char (*codes)[16] = calloc(m->n_ds + 1, sizeof *codes);
    char label[512];
    if (!row || !codes) {
        free(row);
        free(codes);
        return -1;
    }
    row[0] = f == REVIEW_TERMINAL ? "SUBJECT" : "Subject";
    for (size_t d = 0; d < m->n_ds; d++)
        row[d + 1] = m->ds[d];
    review_table_row(&t, row);
    for (size_t s = 0; s < m->sp.n_subjects; s++) {
        access_subject_label(&m->sp.subjects[s], label, sizeof label);
        row[0] = label;
        for (size_t d = 0; d < m->n_ds; d++)
            row[d + 1] = access_cell_code(&m->cells[s * m->n_ds + d], codes[d], sizeof codes[d]);
        review_table_row(&t, row);
    }
    review_table_write(&t, f, stdout);
    bool oom = t.oom;
    review_table_free(&t);
    free(row);
    free(codes);
    return oom ? -1 : 0;
}

static int print_exceptions(const matrix *m, review_format f)
{
    if (m->n_ex == 0)
        return 0;
    review_table t;
    review_table_init(&t, 4);
    const char *head[] = {"SUBJECT", "OBJECT", "DATASET", "ACCESS"};
    const char *mdhead[] = {"Subject", "Object", "Dataset", "Access"};
    review_table_row(&t, f == REVIEW_TERMINAL ? head : mdhead);
    char label[512];
    for (size_t i = 0; i < m->n_ex; i++) {
        const exception_row *e = &m->ex[i];
        access_subject_label(&m->sp.subjects[e->subject], label, sizeof label);
        char *text = NULL;
        if (e->rule && asprintf(&text, "%s (rule %s)", e->text, e->rule) < 0)
            text = NULL;
        const char *r[] = {label, e->object, e->dataset ? e->dataset : "(none)", text ? text : e->text};
        review_table_row(&t, r);
        free(text);
    }
    review_table_write(&t, f, stdout);
    bool oom = t.oom;
    review_table_free(&t);
    return oom ? -1 : 0;
}

static void print_uncovered(const matrix *m, review_format f)
{
    const char *intro = "Schemas no dataset covers (only a rule naming them reaches them):";
    if (m->n_uncovered == 0)
        intro = "Every schema of the warehouse is in a dataset.";
    if (f == REVIEW_HTML) {
        printf("<h2>Uncovered schemas</h2>\n<p>%s</p>\n<ul>\n", intro);
        for (size_t i = 0; i < m->n_uncovered; i++) {
            fputs("<li>", stdout);
            review_html_text(stdout, m->uncovered[i]);
            fputs("</li>\n", stdout);
        }
        fputs("</ul>\n", stdout);
        return;
    }
    printf(f == REVIEW_MARKDOWN ? "\n#### Uncovered schemas\n\n%s\n\n" : "\n%s\n", intro);
    for (size_t i = 0; i < m->n_uncovered; i++)
        printf(f == REVIEW_MARKDOWN ? "- `%s`\n" : "  %s\n", m->uncovered[i]);
}

static int print_matrix(const matrix *m, const char *path, review_format f, bool catalog)
{
    int rc;
    if (f == REVIEW_JSON)
        return print_json(m, path, catalog);
    if (f == REVIEW_HTML) {
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>martgate access matrix</title>\n"
              "<style>body{font-family:sans-serif;margin:2em;color:#111;background:#fff}"
              "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #999;padding:.25em .6em;"
              "text-align:left}th{background:#eee}</style></head><body>\n<h1>Access matrix: ", stdout);
        review_html_text(stdout, path);
        printf("</h1>\n<p>%s</p>\n", legend);
        rc = print_grid(m, f);
        fputs("<h2>Exceptions</h2>\n", stdout);
        if (rc == 0)
            rc = print_exceptions(m, f);
        if (catalog)
            print_uncovered(m, f);
        fputs("</body></html>\n", stdout);
        return rc;
    }
    if (f == REVIEW_MARKDOWN)
        printf("### Access matrix: `%s`\n\n%s\n\n", path, legend);
    else
        printf("access matrix of %s (%s)\n\n", path, legend);
    rc = print_grid(m, f);
    if (rc == 0 && m->n_ex) {
        printf(f == REVIEW_MARKDOWN ? "\n#### Exceptions\n\n" : "\nexceptions (tables and schemas whose access "
                                                                 "differs from their dataset's):\n\n");
        rc = print_exceptions(m, f);
    }
    if (catalog)
        print_uncovered(m, f);
    return rc;
}

int cmd_policy_matrix(int argc, char **argv)
{
    review_format f = REVIEW_TERMINAL;
    const char *path = NULL, *conninfo = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            if (!review_format_parse(argv[++i], &f)) {
                fprintf(stderr, "martgate policy matrix: --format: terminal, markdown, html or json, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--catalog") == 0 && i + 1 < argc) {
            conninfo = argv[++i];
        } else if (argv[i][0] == '-' || path) {
            fputs(matrix_usage, stderr);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fputs(matrix_usage, stderr);
        return 2;
    }
    policy_t *p = NULL;
    if (cmd_policy_load(path, &p) != 0) {
        fprintf(stderr, "martgate policy matrix: %s does not load\n", path);
        return 1;
    }
    matrix m = {.p = p};
    int rc = build(&m, conninfo);
    if (rc == -1)
        fprintf(stderr, "martgate policy matrix: out of memory\n");
    if (rc == 0 && (print_matrix(&m, path, f, conninfo != NULL) != 0 || fflush(stdout) != 0)) {
        fprintf(stderr, "martgate policy matrix: cannot write the matrix\n");
        rc = -1;
    }
    matrix_free(&m);
    policy_unref(p);
    return rc == 0 ? 0 : 1;
}
