/*
 * replay_tally: the counts of `martgate policy replay` (replay_tally.h).
 */
#include "proxy/replay_tally.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[REPLAY_NKINDS] = {"newly_denied", "newly_allowed", "rewrite_changed"};
static const char *const kind_titles[REPLAY_NKINDS] = {
    "newly denied (allowed or rewritten before, denied under the new policy)",
    "newly allowed (denied before, allowed or rewritten under the new policy)",
    "rewrite changes (a row filter or mask now applies, no longer applies, or by another rule)"};

const char *replay_change_name(replay_change k)
{
    return k < REPLAY_NKINDS ? kind_names[k] : "?";
}

int replay_tally_init(replay_tally *t)
{
    memset(t, 0, sizeof *t);
    bool ok = (t->distinct = json_object()) && (t->not_replayed = json_object());
    for (int k = 0; ok && k < REPLAY_NKINDS; k++)
        ok = (t->kinds[k] = json_pack("{s:I,s:o,s:o,s:o}", "records", (json_int_t)0, "fps", json_object(), "users",
                                      json_object(), "datasets", json_object())) != NULL;
    if (!ok) {
        replay_tally_free(t);
        return -1;
    }
    return 0;
}

void replay_tally_free(replay_tally *t)
{
    json_decref(t->distinct);
    json_decref(t->not_replayed);
    for (int k = 0; k < REPLAY_NKINDS; k++)
        json_decref(t->kinds[k]);
    memset(t, 0, sizeof *t);
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int replay_change_of(const char *old_decision, const char *old_rule, const char *new_decision, const char *new_rule)
{
    bool old_deny = same(old_decision, "deny"), new_deny = same(new_decision, "deny");
    if (!old_deny && new_deny)
        return REPLAY_NEWLY_DENIED;
    if (old_deny && !new_deny)
        return REPLAY_NEWLY_ALLOWED;
    if (old_deny)
        return -1;
    bool old_rw = same(old_decision, "rewrite"), new_rw = same(new_decision, "rewrite");
    if (old_rw != new_rw || (old_rw && !same(old_rule, new_rule)))
        return REPLAY_REWRITE_CHANGED;
    return -1;
}

/* map[key] += by, for an integer member (created at 0). */
static void bump(json_t *map, const char *key, long long by)
{
    json_t *v = json_object_get(map, key);
    if (v)
        json_integer_set(v, json_integer_value(v) + by);
    else
        json_object_set_new(map, key, json_integer(by));
}

/* obj.records += 1 */
static void bump_records(json_t *obj)
{
    bump(obj, "records", 1);
}

/* map[key], an object created empty when absent (NULL out of memory). */
static json_t *child(json_t *map, const char *key)
{
    json_t *v = json_object_get(map, key);
    if (!v && json_object_set_new(map, key, json_object()) == 0)
        v = json_object_get(map, key);
    return v;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The dataset group ds of kind: the record counted there. */
static void add_to_dataset(json_t *kind, const char *ds, const char *fp, const char *user, const replay_record *r)
{
    json_t *g = child(json_object_get(kind, "datasets"), ds);
    json_t *gf = g ? child(g, "fps") : NULL, *gu = g ? child(g, "users") : NULL;
    if (!gf || !gu)
        return;
    bump_records(g);
    json_t *f = child(gf, fp);
    if (f) {
        bump(f, "count", 1);
        if (!json_object_get(f, "query"))
            json_object_set_new(f, "query", str_or_null(r->query));
    }
    json_t *u = child(gu, user), *uf = u ? child(u, "fps") : NULL;
    if (!uf)
        return;
    bump_records(u);
    bump(uf, fp, 1);
    if (!json_object_get(u, "example"))
        json_object_set_new(u, "example",
                            json_pack("{s:o,s:s,s:o,s:o,s:o,s:o,s:o}", "query", str_or_null(r->query), "fingerprint",
                                      fp, "old", str_or_null(r->old_decision), "old_rule", str_or_null(r->old_rule),
                                      "new", str_or_null(r->new_decision), "new_rule", str_or_null(r->new_rule),
                                      "reason", str_or_null(r->reason)));
}

void replay_tally_add(replay_tally *t, int k, const replay_record *r)
{
    const char *fp = r->fingerprint ? r->fingerprint : r->query ? r->query : "?";
    t->replayed++;
    bump(t->distinct, fp, 1);
    if (k < 0 || k >= REPLAY_NKINDS)
        return;
    json_t *kind = t->kinds[k];
    const char *user = r->user ? r->user : "(unknown)";
    bump_records(kind);
    bump(json_object_get(kind, "fps"), fp, 1);
    bump(json_object_get(kind, "users"), user, 1);
    if (!r->n_datasets)
        add_to_dataset(kind, "(none)", fp, user, r);
    for (size_t i = 0; i < r->n_datasets; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = same(r->datasets[j], r->datasets[i]);
        if (!dup && r->datasets[i])
            add_to_dataset(kind, r->datasets[i], fp, user, r);
    }
}

void replay_tally_not_replayed(replay_tally *t, const char *reason)
{
    bump(t->not_replayed, reason, 1);
}

static long long int_of(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

unsigned long long replay_tally_changed(const replay_tally *t)
{
    unsigned long long n = 0;
    for (int k = 0; k < REPLAY_NKINDS; k++)
        n += (unsigned long long)int_of(t->kinds[k], "records");
    return n;
}

/* ---- sorted views ------------------------------------------------------ */

typedef struct {
    const char *key;
    long long n;
    json_t *v;
} row;

static int row_cmp(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* The members of map by count (an integer member, or value.field), highest first; malloc'd. */
static row *sorted(const json_t *map, const char *field, size_t *n)
{
    *n = 0;
    row *rows = malloc((json_object_size(map) + 1) * sizeof *rows);
    if (!rows)
        return NULL;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)map, key, v) {
        rows[*n] = (row){key, field ? int_of(v, field) : json_integer_value(v), v};
        (*n)++;
    }
    qsort(rows, *n, sizeof *rows, row_cmp);
    return rows;
}

static json_t *user_json(const char *name, json_t *u)
{
    json_t *ex = json_object_get(u, "example");
    return json_pack("{s:s,s:I,s:I,s:O}", "user", name, "records", (json_int_t)int_of(u, "records"), "distinct",
                     (json_int_t)json_object_size(json_object_get(u, "fps")), "example", ex ? ex : json_null());
}

static json_t *dataset_json(const char *name, json_t *g, int top)
{
    size_t nf = 0, nu = 0;
    json_t *gf = json_object_get(g, "fps"), *gu = json_object_get(g, "users");
    row *fps = sorted(gf, "count", &nf), *users = sorted(gu, "records", &nu);
    json_t *us = json_array(), *most = json_null();
    for (size_t i = 0; users && us && i < nu && (top <= 0 || i < (size_t)top); i++)
        json_array_append_new(us, user_json(users[i].key, users[i].v));
    if (fps && nf)
        most = json_pack("{s:s,s:I,s:O}", "fingerprint", fps[0].key, "records", (json_int_t)fps[0].n, "query",
                         json_object_get(fps[0].v, "query"));
    json_t *out = json_pack("{s:s,s:I,s:I,s:I,s:o,s:o}", "dataset", name, "records",
                            (json_int_t)int_of(g, "records"), "distinct", (json_int_t)nf, "user_count",
                            (json_int_t)nu, "most_frequent", most ? most : json_null(), "users",
                            us ? us : json_array());
    free(fps);
    free(users);
    return out;
}

json_t *replay_tally_json(const replay_tally *t, int top)
{
    json_t *changes = json_array(), *reasons = json_object();
    unsigned long long changed = 0, distinct_changed = 0, nr = 0;
    for (int k = 0; changes && k < REPLAY_NKINDS; k++) {
        json_t *kind = t->kinds[k];
        long long recs = int_of(kind, "records");
        if (!recs)
            continue;
        changed += (unsigned long long)recs;
        distinct_changed += json_object_size(json_object_get(kind, "fps"));
        size_t nd = 0;
        row *ds = sorted(json_object_get(kind, "datasets"), "records", &nd);
        json_t *arr = json_array();
        for (size_t i = 0; ds && arr && i < nd && (top <= 0 || i < (size_t)top); i++)
            json_array_append_new(arr, dataset_json(ds[i].key, ds[i].v, top));
        free(ds);
        json_array_append_new(changes,
                              json_pack("{s:s,s:I,s:I,s:I,s:o}", "change", kind_names[k], "records", (json_int_t)recs,
                                        "distinct", (json_int_t)json_object_size(json_object_get(kind, "fps")),
                                        "users", (json_int_t)json_object_size(json_object_get(kind, "users")),
                                        "datasets", arr ? arr : json_array()));
    }
    const char *key;
    json_t *v;
    json_object_foreach(t->not_replayed, key, v) {
        nr += (unsigned long long)json_integer_value(v);
        json_object_set(reasons, key, v);
    }
    return json_pack("{s:I,s:I,s:I,s:{s:I,s:I},s:o,s:{s:I,s:o}}", "records", (json_int_t)t->records, "replayed",
                     (json_int_t)t->replayed, "distinct", (json_int_t)json_object_size(t->distinct), "changed",
                     "records", (json_int_t)changed, "distinct", (json_int_t)distinct_changed, "changes",
                     changes ? changes : json_array(), "not_replayed", "records", (json_int_t)nr, "reasons",
                     reasons ? reasons : json_object());
}

static const char *s_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static const char *plural(long long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void print_dataset(json_t *d, replay_change k, FILE *out)
{
    long long recs = int_of(d, "records"), dist = int_of(d, "distinct"), users = int_of(d, "user_count");
    static const char *const verbs[REPLAY_NKINDS] = {"breaks", "allows", "changes the rewrite of"};
    fprintf(out, "  dataset %s: this change %s %lld statement %s (%lld distinct) of %lld %s", s_of(d, "dataset"),
            verbs[k], recs, plural(recs, "record", "records"), dist, users, plural(users, "user", "users"));
    json_t *most = json_object_get(d, "most_frequent");
    if (json_is_object(most))
        fprintf(out, "; the most frequent (%lld %s) is: %s", int_of(most, "records"),
                plural(int_of(most, "records"), "record", "records"), s_of(most, "query"));
    fputc('\n', out);
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(d, "users"), i, u) {
        json_t *ex = json_object_get(u, "example");
        long long ur = int_of(u, "records");
        fprintf(out, "    %s: %lld %s (%lld distinct)\n", s_of(u, "user"), ur, plural(ur, "record", "records"),
                int_of(u, "distinct"));
        fprintf(out, "      e.g. %s\n", s_of(ex, "query"));
        fprintf(out, "      was %s (rule %s), now %s (rule %s): %s\n", s_of(ex, "old"), s_of(ex, "old_rule"),
                s_of(ex, "new"), s_of(ex, "new_rule"), s_of(ex, "reason"));
    }
}

void replay_tally_print(const replay_tally *t, int top, FILE *out)
{
    json_t *j = replay_tally_json(t, top);
    if (!j) {
        fprintf(out, "out of memory\n");
        return;
    }
    json_t *ch = json_object_get(j, "changed");
    long long changed = int_of(ch, "records");
    fprintf(out, "replayed %lld of %lld statement records (%lld distinct statements): ", int_of(j, "replayed"),
            int_of(j, "records"), int_of(j, "distinct"));
    if (changed)
        fprintf(out, "%lld %s (%lld distinct) change decision\n", changed, plural(changed, "record", "records"),
                int_of(ch, "distinct"));
    else
        fprintf(out, "no decision changes\n");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "changes"), i, c) {
        replay_change k = REPLAY_NEWLY_DENIED;
        for (int n = 0; n < REPLAY_NKINDS; n++)
            if (strcmp(s_of(c, "change"), kind_names[n]) == 0)
                k = (replay_change)n;
        long long recs = int_of(c, "records"), users = int_of(c, "users");
        fprintf(out, "\n%s: %lld %s (%lld distinct) of %lld %s\n", kind_titles[k], recs,
                plural(recs, "record", "records"), int_of(c, "distinct"), users, plural(users, "user", "users"));
        size_t n;
        json_t *d;
        json_array_foreach(json_object_get(c, "datasets"), n, d)
            print_dataset(d, k, out);
    }
    json_t *nr = json_object_get(j, "not_replayed");
    long long nnr = int_of(nr, "records");
    if (nnr) {
        fprintf(out, "\n%lld %s could not be replayed:", nnr, plural(nnr, "record", "records"));
        size_t nrows = 0;
        row *rows = sorted(json_object_get(nr, "reasons"), NULL, &nrows);
        for (size_t r = 0; rows && r < nrows; r++)
            fprintf(out, "%s %lld %s", r ? ";" : "", rows[r].n, rows[r].key);
        fputc('\n', out);
        free(rows);
    }
    json_decref(j);
}
