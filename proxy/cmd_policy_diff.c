/*
 * cmd_policy_diff: `martgate policy diff OLD NEW`, what a change to the
 * policy does to access before it is merged. Both sides are compared as
 * effective access (policy/decide_access: after rule order and first match),
 * subject by object, plus what each subject starts with (search_path, catalog
 * visibility, roles it may impersonate) and the policy-wide lists (functions,
 * settings, roles, defaults). A side may come from a Git revision
 * (--git REV[:PATH]). The exit status is for CI: 0 no change, 1 changes that
 * do not widen access, 2 access widens somewhere, 3 an error.
 */
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/decide_access.h"
#include "policy/policy.h"
#include "proxy/commands.h"
#include "proxy/review_out.h"

extern char **environ;

enum { DIFF_NONE = 0, DIFF_NARROWS = 1, DIFF_WIDENS = 2, DIFF_ERROR = 3 };

static const char diff_usage[] =
    "usage: martgate policy diff [--format terminal|markdown|json] OLD NEW\n"
    "       OLD and NEW: a policy file or directory, or --git REV[:PATH] for that path at a Git\n"
    "       revision of the current repository (PATH from the repository's top, as `git show\n"
    "       REV:PATH`; without :PATH, the other side's path)\n"
    "exit: 0 no change of access, 1 changes that do not widen access, 2 access widens, 3 error\n";

typedef struct change {
    char *subject, *object, *dataset, *before, *after;
    const char *before_rule, *after_rule;
    int effect;                  /* +1 widens, -1 narrows, 0 neither */
} change;

typedef struct changes {
    change *v;
    size_t n, cap;
    bool oom;
} changes;

static void add_change(changes *cs, const char *subject, const char *object, const char *dataset,
                       const char *before, const char *after, const char *brule, const char *arule, int effect)
{
    if (cs->oom)
        return;
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? 2 * cs->cap : 32;
        change *n = realloc(cs->v, cap * sizeof *n);
        if (!n) {
            cs->oom = true;
            return;
        }
        cs->v = n;
        cs->cap = cap;
    }
    change *c = &cs->v[cs->n++];
    c->subject = strdup(subject);
    c->object = strdup(object);
    c->dataset = dataset ? strdup(dataset) : NULL;
    c->before = strdup(before ? before : "");
    c->after = strdup(after ? after : "");
    c->before_rule = brule;
    c->after_rule = arule;
    c->effect = effect;
    if (!c->subject || !c->object || !c->before || !c->after || (dataset && !c->dataset))
        cs->oom = true;
}

static void free_changes(changes *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        free(cs->v[i].subject);
        free(cs->v[i].object);
        free(cs->v[i].dataset);
        free(cs->v[i].before);
        free(cs->v[i].after);
    }
    free(cs->v);
}

/* ---- a side from Git ----------------------------------------------------- */

static int run(char *const argv[], const char *out_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path)
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first line a command prints, or NULL. */
static char *run_line(char *const argv[], const char *tmpdir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.out", tmpdir);
    if (run(argv, path) != 0)
        return NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[4096];
    char *line = fgets(buf, sizeof buf, f) ? strdup(buf) : strdup("");
    fclose(f);
    unlink(path);
    if (line)
        line[strcspn(line, "\n")] = '\0';
    return line;
}

/* Where `path` (as given on the command line) is inside the repository, or
 * NULL when it is not. */
static char *repo_relative(const char *path, const char *top)
{
    char *real = realpath(path, NULL);
    if (!real)
        return NULL;
    size_t n = strlen(top);
    char *rel = NULL;
    if (strncmp(real, top, n) == 0 && (real[n] == '/' || real[n] == '\0'))
        rel = strdup(real[n] ? real + n + 1 : ".");
    free(real);
    return rel;
}

/* Extracts PATH at REV into tmpdir; returns the policy path inside it. */
static char *git_side(const char *spec, const char *other, const char *tmpdir)
{
    char *rev = strdup(spec);
    if (!rev)
        return NULL;
    char *colon = strchr(rev, ':');
    char *path = colon ? colon + 1 : NULL;
    if (colon)
        *colon = '\0';
    char *top_argv[] = {"git", "rev-parse", "--show-toplevel", NULL};
    char *top = run_line(top_argv, tmpdir);
    char *result = NULL, *rel = NULL;
    if (!top || !*top) {
        fprintf(stderr, "martgate policy diff: --git %s: not inside a Git repository\n", spec);
        goto out;
    }
    if (!path || !*path) {
        if (!other) {
            fprintf(stderr, "martgate policy diff: --git %s: name the path (REV:PATH) when both sides are from Git\n",
                    spec);
            goto out;
        }
        rel = repo_relative(other, top);
        if (!rel) {
            fprintf(stderr, "martgate policy diff: --git %s: %s is not inside the repository %s\n", spec, other, top);
            goto out;
        }
        path = rel;
    }
    char tar[4200];
    snprintf(tar, sizeof tar, "%s/side.tar", tmpdir);
    char *archive[] = {"git", "-C", top, "archive", "--format=tar", "-o", tar, rev, "--", path, NULL};
    if (run(archive, NULL) != 0) {
        fprintf(stderr, "martgate policy diff: --git %s: git archive could not read %s at %s\n", spec, path, rev);
        goto out;
    }
    char *untar[] = {"tar", "-xf", tar, "-C", (char *)tmpdir, NULL};
    if (run(untar, NULL) != 0) {
        fprintf(stderr, "martgate policy diff: --git %s: cannot unpack the archive\n", spec);
        goto out;
    }
    unlink(tar);
    if (asprintf(&result, "%s/%s", tmpdir, path) < 0)
        result = NULL;
out:
    free(rev);
    free(top);
    free(rel);
    return result;
}

static void remove_tree(const char *dir)
{
    char *rm[] = {"rm", "-rf", "--", (char *)dir, NULL};
    (void)run(rm, NULL);
}

/* ---- comparing ----------------------------------------------------------- */

static int load_side(const char *path, const char *label, policy_t **p)
{
    if (cmd_policy_load(path, p) == 0)
        return 0;
    fprintf(stderr, "martgate policy diff: %s does not load\n", label);
    return -1;
}

static void diff_cells(const policy_t *a, const policy_t *b, const access_space *sp, changes *cs)
{
    char subject[512], object[512];
    for (size_t i = 0; i < sp->n_subjects && !cs->oom; i++) {
        const access_subject *s = &sp->subjects[i];
        access_subject_label(s, subject, sizeof subject);
        for (size_t k = 0; k < sp->n_objects && !cs->oom; k++) {
            const access_object *o = &sp->objects[k];
            access_cell x, y;
            if (access_cell_get(a, s, o, &x) < 0 || access_cell_get(b, s, o, &y) < 0) {
                cs->oom = true;
                break;
            }
            if (access_cell_equal(&x, &y))
                continue;
            access_object_label(o, object, sizeof object);
            const char *ds = access_object_dataset(b, o);
            if (!ds)
                ds = access_object_dataset(a, o);
            char *tx = access_cell_text(&x), *ty = access_cell_text(&y);
            if (!tx || !ty)
                cs->oom = true;
            else
                add_change(cs, subject, object, ds, tx, ty, x.read_rule ? x.read_rule : x.write_rule,
                           y.read_rule ? y.read_rule : y.write_rule, access_cell_compare(&x, &y));
            free(tx);
            free(ty);
        }
    }
}

/* Roles in a "a, b" list: +1 when `after` has one `before` lacks. */
static bool list_has(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || (p >= list + 2 && p[-2] == ',' && p[-1] == ' ')) && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

static int list_effect(const char *before, const char *after)
{
    char *copy = strdup(after);
    int widen = 0;
    if (!copy)
        return 1;
    for (char *save, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (*t && !list_has(before, t))
            widen = 1;
    }
    free(copy);
    return widen ? 1 : -1;
}

static void diff_defaults(const policy_t *a, const policy_t *b, const access_space *sp, changes *cs)
{
    char subject[512];
    for (size_t i = 0; i < sp->n_subjects && !cs->oom; i++) {
        const access_subject *s = &sp->subjects[i];
        access_defaults x, y;
        if (access_defaults_get(a, sp, s, &x) < 0) {
            cs->oom = true;
            break;
        }
        if (access_defaults_get(b, sp, s, &y) < 0) {
            access_defaults_free(&x);
            cs->oom = true;
            break;
        }
        access_subject_label(s, subject, sizeof subject);
        if (strcmp(x.search_path, y.search_path) != 0)
            add_change(cs, subject, "search_path", NULL, x.search_path, y.search_path, NULL, NULL, 0);
        if (x.full_catalog != y.full_catalog)
            add_change(cs, subject, "catalog visibility", NULL, x.full_catalog ? "full" : "filtered",
                       y.full_catalog ? "full" : "filtered", NULL, NULL, y.full_catalog ? 1 : -1);
        if (strcmp(x.impersonates, y.impersonates) != 0)
            add_change(cs, subject, "impersonates", NULL, *x.impersonates ? x.impersonates : "none",
                       *y.impersonates ? y.impersonates : "none", NULL, NULL,
                       list_effect(x.impersonates, y.impersonates));
        access_defaults_free(&x);
        access_defaults_free(&y);
    }
}

static bool has_fact(const access_fact *f, size_t n, const char *text)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].text, text) == 0)
            return true;
    return false;
}

static void diff_facts(const policy_t *a, const policy_t *b, changes *cs)
{
    access_fact *fa, *fb;
    size_t na, nb;
    if (access_facts_get(a, &fa, &na) < 0) {
        cs->oom = true;
        return;
    }
    if (access_facts_get(b, &fb, &nb) < 0) {
        access_facts_free(fa, na);
        cs->oom = true;
        return;
    }
    for (size_t i = 0; i < na; i++)
        if (!has_fact(fb, nb, fa[i].text))
            add_change(cs, "policy", fa[i].text, NULL, "present", "removed", NULL, NULL, -fa[i].effect);
    for (size_t i = 0; i < nb; i++)
        if (!has_fact(fa, na, fb[i].text))
            add_change(cs, "policy", fb[i].text, NULL, "absent", "added", NULL, NULL, fb[i].effect);
    access_facts_free(fa, na);
    access_facts_free(fb, nb);
}

/* ---- output -------------------------------------------------------------- */

static const char *effect_name(int e)
{
    return e > 0 ? "widens" : e < 0 ? "narrows" : "changes";
}

static int verdict_of(const changes *cs)
{
    int v = DIFF_NONE;
    for (size_t i = 0; i < cs->n; i++)
        if (cs->v[i].effect > 0)
            return DIFF_WIDENS;
        else
            v = DIFF_NARROWS;
    return v;
}

static const char *verdict_text(int v)
{
    switch (v) {
    case DIFF_NONE: return "no change of access";
    case DIFF_NARROWS: return "access only narrows (or changes nothing it grants)";
    default: return "access widens: a reviewer must approve";
    }
}

static char *with_rule(const char *text, const char *rule)
{
    char *s;
    if (asprintf(&s, rule ? "%s (rule %s)" : "%s", text, rule) < 0)
        return NULL;
    return s;
}

static int print_json(const changes *cs, const char *old_label, const char *new_label, int v)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < cs->n; i++) {
        const change *c = &cs->v[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "subject", c->subject, "object", c->object,
                              "before", c->before, "after", c->after, "effect", effect_name(c->effect));
        if (o && c->dataset)
            json_object_set_new(o, "dataset", json_string(c->dataset));
        if (o && c->before_rule)
            json_object_set_new(o, "before_rule", json_string(c->before_rule));
        if (o && c->after_rule)
            json_object_set_new(o, "after_rule", json_string(c->after_rule));
        json_array_append_new(arr, o);
    }
    static const char *const results[] = {"none", "narrows", "widens"};
    json_t *doc = json_pack("{s:s, s:s, s:s, s:i, s:o}", "old", old_label, "new", new_label, "result", results[v],
                            "exit", v, "changes", arr);
    if (!doc || json_dumpf(doc, stdout, JSON_INDENT(1)) != 0) {
        json_decref(doc);
        return -1;
    }
    json_decref(doc);
    fputc('\n', stdout);
    return 0;
}

static int print_table(const changes *cs, const char *old_label, const char *new_label, int v, review_format f)
{
    if (f == REVIEW_MARKDOWN)
        printf("### martgate policy diff: %s\n\n`%s` → `%s`, %zu change%s\n\n", verdict_text(v), old_label, new_label,
               cs->n, cs->n == 1 ? "" : "s");
    else
        printf("policy diff %s -> %s: %s, %zu change%s\n", old_label, new_label, verdict_text(v), cs->n,
               cs->n == 1 ? "" : "s");
    if (cs->n == 0)
        return 0;
    if (f != REVIEW_MARKDOWN)
        putchar('\n');
    review_table t;
    review_table_init(&t, 6);
    const char *head[] = {"EFFECT", "SUBJECT", "OBJECT", "DATASET", "BEFORE", "AFTER"};
    const char *mdhead[] = {"Effect", "Subject", "Object", "Dataset", "Before", "After"};
    review_table_row(&t, f == REVIEW_MARKDOWN ? mdhead : head);
    /* widening first: what the reviewer must look at */
    for (int pass = 1; pass >= -1; pass--)
        for (size_t i = 0; i < cs->n; i++) {
            const change *c = &cs->v[i];
            if (c->effect != pass)
                continue;
            char *b = with_rule(c->before, c->before_rule), *a = with_rule(c->after, c->after_rule);
            const char *row[] = {effect_name(c->effect), c->subject, c->object, c->dataset ? c->dataset : "",
                                 b ? b : c->before, a ? a : c->after};
            review_table_row(&t, row);
            free(b);
            free(a);
        }
    review_table_write(&t, f, stdout);
    bool oom = t.oom;
    review_table_free(&t);
    return oom ? -1 : 0;
}

int cmd_policy_diff(int argc, char **argv)
{
    review_format f = REVIEW_TERMINAL;
    const char *spec[2] = {NULL, NULL};
    bool git[2] = {false, false};
    int n = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            if (!review_format_parse(argv[++i], &f) || f == REVIEW_HTML) {
                fprintf(stderr, "martgate policy diff: --format: terminal, markdown or json, not '%s'\n", argv[i]);
                return DIFF_ERROR;
            }
        } else if (strcmp(argv[i], "--git") == 0 && i + 1 < argc && n < 2) {
            git[n] = true;
            spec[n++] = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "martgate policy diff: unknown option '%s'\n%s", argv[i], diff_usage);
            return DIFF_ERROR;
        } else if (n < 2) {
            spec[n++] = argv[i];
        } else {
            fputs(diff_usage, stderr);
            return DIFF_ERROR;
        }
    }
    if (n != 2) {
        fputs(diff_usage, stderr);
        return DIFF_ERROR;
    }
    char tmpl[2][64] = {"", ""};
    const char *path[2] = {spec[0], spec[1]};
    char *owned[2] = {NULL, NULL};
    char label[2][4200];
    policy_t *p[2] = {NULL, NULL};
    int rc = DIFF_ERROR;
    for (int s = 0; s < 2; s++) {
        snprintf(label[s], sizeof label[s], "%s%s", git[s] ? "git " : "", spec[s]);
        if (!git[s])
            continue;
        snprintf(tmpl[s], sizeof tmpl[s], "/tmp/martgate-diff.XXXXXX");
        if (!mkdtemp(tmpl[s])) {
            perror("martgate policy diff: mkdtemp");
            tmpl[s][0] = '\0';
            goto out;
        }
        owned[s] = git_side(spec[s], git[1 - s] ? NULL : spec[1 - s], tmpl[s]);
        if (!owned[s])
            goto out;
        path[s] = owned[s];
    }
    for (int s = 0; s < 2; s++)
        if (load_side(path[s], label[s], &p[s]) != 0)
            goto out;
    access_space sp;
    const policy_t *both[2] = {p[0], p[1]};
    if (access_space_build(both, 2, &sp) < 0) {
        fprintf(stderr, "martgate policy diff: out of memory\n");
        goto out;
    }
    changes cs = {0};
    diff_cells(p[0], p[1], &sp, &cs);
    diff_defaults(p[0], p[1], &sp, &cs);
    diff_facts(p[0], p[1], &cs);
    access_space_free(&sp);
    if (cs.oom) {
        fprintf(stderr, "martgate policy diff: out of memory\n");
    } else {
        int v = verdict_of(&cs);
        int w = f == REVIEW_JSON ? print_json(&cs, label[0], label[1], v)
                                 : print_table(&cs, label[0], label[1], v, f);
        if (w == 0 && fflush(stdout) == 0)
            rc = v;
        else
            fprintf(stderr, "martgate policy diff: cannot write the report\n");
    }
    free_changes(&cs);
out:
    for (int s = 0; s < 2; s++) {
        policy_unref(p[s]);
        free(owned[s]);
        if (tmpl[s][0])
            remove_tree(tmpl[s]);
    }
    return rc;
}
