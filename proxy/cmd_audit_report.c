/*
 * cmd_audit_report: how `martgate audit` shows records: an aligned table
 * (the default) and the --summary counts (user x dataset x decision, the most
 * frequent denied fingerprints, and what the HTML report draws: statements
 * per day, denials by dataset and group, restricted reads, login failures,
 * sessions by application).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "proxy/cmd_audit_internal.h"

/* --------------------------------------------------------------- table -- */

static const char *const col_names[NCOLS] = {"TIME", "EVENT", "SESSION", "USER", "DECISION", "RULE", "DATASETS",
                                             "DETAIL"};
static const size_t col_max[NCOLS] = {32, 13, 20, 40, 8, 40, 40, 0};



/* Display width: code points, not bytes. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* A cell: control characters become spaces; cut to max code points with "…". */
static char *cell_dup(const char *s, size_t max)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    char *d = malloc(n + 4);
    if (!d)
        return NULL;
    size_t o = 0, cps = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool lead = (c & 0xC0) != 0x80;
        if (lead && max && cps == max - 1 && text_width(s + i) > 1) {
            memcpy(d + o, "\xE2\x80\xA6", 3);   /* … */
            o += 3;
            break;
        }
        cps += lead;
        d[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    d[o] = 0;
    return d;
}

static char *join_array(json_t *arr)
{
    size_t n = 1;
    json_t *it;
    size_t i;
    json_array_foreach(arr, i, it) {
        if (json_is_string(it))
            n += strlen(json_string_value(it)) + 1;
    }
    char *s = malloc(n);
    if (!s)
        return NULL;
    s[0] = 0;
    json_array_foreach(arr, i, it) {
        if (!json_is_string(it))
            continue;
        if (s[0])
            strcat(s, ",");
        strcat(s, json_string_value(it));
    }
    return s;
}

void cmd_audit_table_flush(out_table *t, FILE *out)
{
    if (!t->header_done) {
        for (int c = 0; c < NCOLS; c++) {
            size_t w = strlen(col_names[c]);
            if (w > t->width[c])
                t->width[c] = w;
        }
    }
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < NCOLS; c++) {
            size_t w = text_width(t->cells[r * NCOLS + c]);
            if (w > t->width[c])
                t->width[c] = w;
        }
    if (!t->header_done) {
        for (int c = 0; c < NCOLS; c++)
            if (c == NCOLS - 1)
                fprintf(out, "%s\n", col_names[c]);
            else
                fprintf(out, "%-*s  ", (int)t->width[c], col_names[c]);
        t->header_done = true;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        size_t pad = 0;   /* spaces owed before the next non-empty cell: no trailing blanks */
        for (int c = 0; c < NCOLS; c++) {
            const char *s = t->cells[r * NCOLS + c];
            if (*s) {
                fprintf(out, "%*s%s", (int)pad, "", s);
                pad = 0;
            }
            pad += t->width[c] + 2 - text_width(s);
            free(t->cells[r * NCOLS + c]);
        }
        fputc('\n', out);
    }
    t->nrows = 0;
    fflush(out);
}

int cmd_audit_table_add(out_table *t, json_t *rec)
{
    char **cells = grow_array(t->cells, &t->cap, t->nrows + 1, NCOLS * sizeof *cells, 256);   /* rows of NCOLS cells */
    if (!cells)
        return -1;
    t->cells = cells;
    char sbuf[32], ubuf[512];
    const char *user = cmd_audit_str_field(rec, "user"), *eu = cmd_audit_str_field(rec, "end_user");
    if (eu) {
        snprintf(ubuf, sizeof ubuf, "%s (%s)", user ? user : "", eu);
        user = ubuf;
    }
    char *datasets = join_array(json_object_get(rec, "datasets"));
    const char *reason = cmd_audit_str_field(rec, "reason"), *query = cmd_audit_str_field(rec, "query");
    char *detail = NULL;
    if (reason && query) {
        if (asprintf(&detail, "%s | %s", reason, query) < 0)
            detail = NULL;
    } else {
        detail = strdup(reason ? reason : query ? query : json_is_true(json_object_get(rec, "query_unparsable"))
                                                              ? "(query not parsable; text not logged)" : "");
    }
    const char *vals[NCOLS] = {cmd_audit_str_field(rec, "ts"), cmd_audit_str_field(rec, "event"), cmd_audit_session_text(rec, sbuf, sizeof sbuf),
                               user, cmd_audit_str_field(rec, "decision"), cmd_audit_str_field(rec, "rule"), datasets, detail};
    char **row = t->cells + t->nrows * NCOLS;
    int rc = 0;
    for (int c = 0; c < NCOLS; c++) {
        row[c] = cell_dup(vals[c], col_max[c]);
        if (!row[c])
            rc = -1;
    }
    free(datasets);
    free(detail);
    if (rc) {
        for (int c = 0; c < NCOLS; c++)
            free(row[c]);
        return -1;
    }
    t->nrows++;
    return 0;
}

/* ------------------------------------------------------------- summary -- */



static void count_key(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (v)
        json_integer_set(v, json_integer_value(v) + 1);
    else
        json_object_set_new(obj, key, json_integer(1));
}

int cmd_audit_summary_init(summary *s, const char *const *restricted, size_t n, bool known)
{
    memset(s, 0, sizeof *s);
    s->events = json_object();
    s->udd = json_object();
    s->denied = json_object();
    s->by_day = json_object();
    s->deny_dataset = json_object();
    s->deny_group = json_object();
    s->restricted = json_array();
    s->restricted_reads = json_object();
    s->login_failed = json_object();
    s->sessions_app = json_object();
    s->restricted_known = known;
    if (!s->events || !s->udd || !s->denied || !s->by_day || !s->deny_dataset || !s->deny_group || !s->restricted ||
        !s->restricted_reads || !s->login_failed || !s->sessions_app)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(s->restricted, json_string(restricted[i])) != 0)
            return -1;
    return 0;
}

void cmd_audit_summary_free(summary *s)
{
    json_t **maps[] = {&s->events, &s->udd, &s->denied, &s->by_day, &s->deny_dataset, &s->deny_group,
                       &s->restricted, &s->restricted_reads, &s->login_failed, &s->sessions_app};
    for (size_t i = 0; i < sizeof maps / sizeof *maps; i++) {
        json_decref(*maps[i]);
        *maps[i] = NULL;
    }
}

static bool is_restricted(const summary *s, const char *ds)
{
    json_t *it;
    size_t i;
    json_array_foreach(s->restricted, i, it) {
        if (strcmp(json_string_value(it), ds) == 0)
            return true;
    }
    return false;
}

/* Statements per UTC day (the first 10 characters of ts) and decision. */
static void count_day(summary *s, json_t *rec, const char *dec)
{
    const char *ts = cmd_audit_str_field(rec, "ts");
    char day[11] = "-";
    if (ts && strlen(ts) >= 10) {
        memcpy(day, ts, 10);
        day[10] = 0;
    }
    json_t *d = json_object_get(s->by_day, day);
    if (!d) {
        d = json_pack("{s:i, s:i, s:i}", "allow", 0, "rewrite", 0, "deny", 0);
        if (!d || json_object_set_new(s->by_day, day, d) != 0)
            return;
    }
    count_key(d, dec);
}

/* A denied statement: by each of its datasets and each of its groups ("-" for none). */
static void count_denial(summary *s, json_t *rec)
{
    json_t *it;
    size_t i, n = 0;
    json_array_foreach(json_object_get(rec, "datasets"), i, it) {
        if (json_is_string(it)) {
            count_key(s->deny_dataset, json_string_value(it));
            n++;
        }
    }
    if (n == 0)
        count_key(s->deny_dataset, "-");
    n = 0;
    json_array_foreach(json_object_get(rec, "groups"), i, it) {
        if (json_is_string(it)) {
            count_key(s->deny_group, json_string_value(it));
            n++;
        }
    }
    if (n == 0)
        count_key(s->deny_group, "-");
}

void cmd_audit_summary_add(summary *s, json_t *rec)
{
    s->records++;
    const char *ev = cmd_audit_str_field(rec, "event");
    count_key(s->events, ev ? ev : "(none)");
    if (ev && strcmp(ev, "login_failed") == 0) {
        const char *r = cmd_audit_str_field(rec, "reason");
        count_key(s->login_failed, r ? r : "-");
    }
    if (ev && strcmp(ev, "session_start") == 0) {
        const char *a = cmd_audit_str_field(rec, "application_name");
        count_key(s->sessions_app, a ? a : "-");
    }
    if (!ev || strcmp(ev, "statement") != 0)
        return;
    const char *user = cmd_audit_str_field(rec, "user"), *eu = cmd_audit_str_field(rec, "end_user");
    char ubuf[512];
    if (eu) {
        snprintf(ubuf, sizeof ubuf, "%s (%s)", user ? user : "", eu);
        user = ubuf;
    }
    if (!user)
        user = "-";
    const char *dec = cmd_audit_str_field(rec, "decision");
    if (!dec)
        dec = "-";
    count_day(s, rec, dec);
    bool allowed = strcmp(dec, "allow") == 0 || strcmp(dec, "rewrite") == 0;
    json_t *ds = json_object_get(rec, "datasets"), *it;
    size_t i, n = 0;
    char *key;
    json_array_foreach(ds, i, it) {
        if (!json_is_string(it))
            continue;
        if (asprintf(&key, "%s\x1f%s\x1f%s", user, json_string_value(it), dec) >= 0) {
            count_key(s->udd, key);
            free(key);
        }
        if (allowed && is_restricted(s, json_string_value(it)) &&
            asprintf(&key, "%s\x1f%s", user, json_string_value(it)) >= 0) {
            count_key(s->restricted_reads, key);
            free(key);
        }
        n++;
    }
    if (n == 0 && asprintf(&key, "%s\x1f-\x1f%s", user, dec) >= 0) {
        count_key(s->udd, key);
        free(key);
    }
    if (strcmp(dec, "deny") == 0) {
        count_denial(s, rec);
        const char *fp = cmd_audit_str_field(rec, "fingerprint");
        if (!fp)
            fp = "(unparsable)";
        json_t *e = json_object_get(s->denied, fp);
        if (!e) {
            e = json_object();
            json_object_set_new(e, "count", json_integer(0));
            json_object_set_new(e, "users", json_object());
            const char *q = cmd_audit_str_field(rec, "query"), *r = cmd_audit_str_field(rec, "reason");
            json_object_set_new(e, "query", q ? json_string(q) : json_null());
            json_object_set_new(e, "reason", r ? json_string(r) : json_null());
            json_object_set_new(s->denied, fp, e);
        }
        count_key(e, "count");
        json_object_set_new(json_object_get(e, "users"), user, json_true());
    }
}

static int cmp_udd(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_denied(const void *a, const void *b)
{
    const denied_row *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->fp, y->fp);
}

static int cmp_count(const void *a, const void *b)
{
    const count_row *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

count_row *cmd_audit_sorted_counts(json_t *map, size_t *n)
{
    size_t k = 0;
    count_row *rows = calloc(json_object_size(map) + 1, sizeof *rows);
    const char *key;
    json_t *v;
    if (!rows) {
        *n = 0;
        return NULL;
    }
    json_object_foreach(map, key, v) {
        rows[k].key = key;
        rows[k].count = (long long)json_integer_value(v);
        k++;
    }
    qsort(rows, k, sizeof *rows, cmp_count);
    *n = k;
    return rows;
}

denied_row *cmd_audit_top_denied(summary *s, int top, size_t *n)
{
    size_t j = 0;
    denied_row *rows = calloc(json_object_size(s->denied) + 1, sizeof *rows);
    const char *key;
    json_t *v;
    if (!rows) {
        *n = 0;
        return NULL;
    }
    json_object_foreach(s->denied, key, v) {
        rows[j].fp = key;
        rows[j].count = (long long)json_integer_value(json_object_get(v, "count"));
        rows[j].users = json_object_size(json_object_get(v, "users"));
        rows[j].e = v;
        j++;
    }
    qsort(rows, j, sizeof *rows, cmp_denied);
    if ((size_t)top < j)
        j = (size_t)top;
    *n = j;
    return rows;
}

const char **cmd_audit_days(summary *s, size_t *n)
{
    size_t k = 0;
    const char **days = calloc(json_object_size(s->by_day) + 1, sizeof *days);
    const char *key;
    json_t *v;
    if (!days) {
        *n = 0;
        return NULL;
    }
    json_object_foreach(s->by_day, key, v) days[k++] = key;
    qsort(days, k, sizeof *days, cmp_udd);
    *n = k;
    return days;
}

/* The aggregates added for the report, as keys of the --summary --json object. */
static void summary_json_extra(summary *s, json_t *o)
{
    json_t *days = json_array();
    size_t n;
    const char **d = cmd_audit_days(s, &n);
    for (size_t i = 0; d && i < n; i++) {
        json_t *e = json_pack("{s:s}", "day", d[i]);
        json_object_update(e, json_object_get(s->by_day, d[i]));
        json_array_append_new(days, e);
    }
    free(d);
    json_object_set_new(o, "by_day_decision", days);
    json_object_set(o, "deny_by_dataset", s->deny_dataset);
    json_object_set(o, "deny_by_group", s->deny_group);
    json_object_set(o, "restricted_datasets", s->restricted);
    json_object_set_new(o, "restricted_datasets_known", json_boolean(s->restricted_known));
    json_t *reads = json_array();
    count_row *r = cmd_audit_sorted_counts(s->restricted_reads, &n);
    for (size_t i = 0; r && i < n; i++) {
        const char *sep = strchr(r[i].key, '\x1f');
        json_array_append_new(reads, json_pack("{s:s%, s:s, s:I}", "user", r[i].key, (size_t)(sep - r[i].key),
                                               "dataset", sep + 1, "count", (json_int_t)r[i].count));
    }
    free(r);
    json_object_set_new(o, "restricted_reads", reads);
    json_object_set(o, "login_failures_by_reason", s->login_failed);
    json_object_set(o, "sessions_by_application", s->sessions_app);
}

void cmd_audit_print_summary(summary *s, int top, bool json, FILE *out)
{
    size_t n = json_object_size(s->udd), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    const char *key;
    json_t *v;
    json_object_foreach(s->udd, key, v) keys[k++] = key;
    qsort(keys, k, sizeof *keys, cmp_udd);
    size_t j;
    denied_row *rows = cmd_audit_top_denied(s, top, &j);
    if (!rows)
        j = 0;

    if (json) {
        json_t *o = json_object(), *arr = json_array(), *fps = json_array();
        json_object_set_new(o, "records", json_integer((json_int_t)s->records));
        json_object_set(o, "events", s->events);
        for (size_t i = 0; i < k; i++) {
            char *copy = strdup(keys[i]);
            char *d1 = copy ? strchr(copy, '\x1f') : NULL, *d2 = d1 ? strchr(d1 + 1, '\x1f') : NULL;
            if (d2) {
                *d1 = *d2 = 0;
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I}", "user", copy, "dataset", d1 + 1,
                                                     "decision", d2 + 1, "count",
                                                     json_integer_value(json_object_get(s->udd, keys[i]))));
            }
            free(copy);
        }
        json_object_set_new(o, "by_user_dataset_decision", arr);
        for (size_t i = 0; i < j; i++)
            json_array_append_new(fps, json_pack("{s:s, s:I, s:I, s:O, s:O}", "fingerprint", rows[i].fp, "count",
                                                 (json_int_t)rows[i].count, "users", (json_int_t)rows[i].users, "query",
                                                 json_object_get(rows[i].e, "query"), "reason",
                                                 json_object_get(rows[i].e, "reason")));
        json_object_set_new(o, "top_denied_fingerprints", fps);
        summary_json_extra(s, o);
        json_dumpf(o, out, JSON_COMPACT);
        fputc('\n', out);
        json_decref(o);
    } else {
        fprintf(out, "%llu records", s->records);
        json_object_foreach(s->events, key, v) fprintf(out, ", %lld %s", (long long)json_integer_value(v), key);
        fprintf(out, "\n\nStatements by user, dataset and decision\n");
        size_t wu = 4, wd = 7;
        for (size_t i = 0; i < k; i++) {
            const char *d1 = strchr(keys[i], '\x1f'), *d2 = strchr(d1 + 1, '\x1f');
            if ((size_t)(d1 - keys[i]) > wu)
                wu = (size_t)(d1 - keys[i]);
            if ((size_t)(d2 - d1 - 1) > wd)
                wd = (size_t)(d2 - d1 - 1);
        }
        fprintf(out, "%-*s  %-*s  %-8s  %s\n", (int)wu, "USER", (int)wd, "DATASET", "DECISION", "COUNT");
        for (size_t i = 0; i < k; i++) {
            const char *d1 = strchr(keys[i], '\x1f'), *d2 = strchr(d1 + 1, '\x1f');
            fprintf(out, "%-*.*s  %-*.*s  %-8s  %lld\n", (int)wu, (int)(d1 - keys[i]), keys[i], (int)wd,
                    (int)(d2 - d1 - 1), d1 + 1, d2 + 1, (long long)json_integer_value(json_object_get(s->udd, keys[i])));
        }
        fprintf(out, "\nMost frequent denied statements (top %d)\n", top);
        fprintf(out, "%-7s  %-5s  %-16s  %s\n", "COUNT", "USERS", "FINGERPRINT", "REASON | QUERY");
        for (size_t i = 0; i < j; i++) {
            json_t *q = json_object_get(rows[i].e, "query"), *r = json_object_get(rows[i].e, "reason");
            char *detail = NULL;
            if (asprintf(&detail, "%s | %s", json_is_string(r) ? json_string_value(r) : "-",
                         json_is_string(q) ? json_string_value(q) : "-") < 0)
                detail = NULL;
            char *cell = cell_dup(detail, 0);
            fprintf(out, "%-7lld  %-5zu  %-16s  %s\n", (long long)rows[i].count, rows[i].users, rows[i].fp,
                    cell ? cell : "");
            free(cell);
            free(detail);
        }
    }
    free(keys);
    free(rows);
}

