/*
 * json_doc: jansson parse plus a second, token-level pass over the same text
 * that records the line and column of every value, keyed by its json_t
 * pointer. jansson keeps object keys in insertion order and duplicate keys are
 * rejected, so the text and the tree can be walked in step.
 */
#include "common/json_doc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const json_t *key;
    int line, col;
} loc_slot;

struct json_doc {
    char *name;
    json_t *root;
    loc_slot *slots;   /* open addressing, power-of-two size */
    size_t nslots;
};

typedef struct {
    const char *p, *end;
    int line, col;
} scanner;

static size_t ptr_hash(const void *p, size_t mask)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0xed5ad4bbU;
    x ^= x >> 11;
    return (size_t)x & mask;
}

static void loc_put(json_doc *d, const json_t *v, int line, int col)
{
    size_t mask = d->nslots - 1, i = ptr_hash(v, mask);
    while (d->slots[i].key && d->slots[i].key != v)
        i = (i + 1) & mask;
    d->slots[i].key = v;
    d->slots[i].line = line;
    d->slots[i].col = col;
}

bool json_doc_where(const json_doc *d, const json_t *v, int *line, int *col)
{
    if (!d || !v || !d->nslots)
        return false;
    size_t mask = d->nslots - 1, i = ptr_hash(v, mask);
    while (d->slots[i].key) {
        if (d->slots[i].key == v) {
            *line = d->slots[i].line;
            *col = d->slots[i].col;
            return true;
        }
        i = (i + 1) & mask;
    }
    return false;
}

static void sc_adv(scanner *s)
{
    if (s->p >= s->end)
        return;
    if (*s->p == '\n') {
        s->line++;
        s->col = 1;
    } else if (((unsigned char)*s->p & 0xC0) != 0x80) {
        s->col++;   /* count characters, not UTF-8 continuation bytes */
    }
    s->p++;
}

static void sc_ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        sc_adv(s);
}

static void sc_skip_string(scanner *s)
{
    sc_adv(s); /* opening quote */
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\')
            sc_adv(s);
        sc_adv(s);
    }
    sc_adv(s);
}

static size_t count_values(const json_t *v)
{
    size_t n = 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c) n += count_values(c);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) n += count_values(c);
    }
    return n;
}

/* Walks the text of one value in step with v, recording locations. */
static void walk(json_doc *d, scanner *s, const json_t *v)
{
    sc_ws(s);
    loc_put(d, v, s->line, s->col);
    if (json_is_object(v)) {
        sc_adv(s); /* { */
        void *it = json_object_iter((json_t *)v);
        while (it) {
            sc_ws(s);
            sc_skip_string(s); /* key */
            sc_ws(s);
            sc_adv(s);         /* : */
            walk(d, s, json_object_iter_value(it));
            sc_ws(s);
            if (s->p < s->end && *s->p == ',')
                sc_adv(s);
            it = json_object_iter_next((json_t *)v, it);
        }
        sc_ws(s);
        sc_adv(s); /* } */
    } else if (json_is_array(v)) {
        sc_adv(s); /* [ */
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) {
            walk(d, s, c);
            sc_ws(s);
            if (s->p < s->end && *s->p == ',')
                sc_adv(s);
        }
        sc_ws(s);
        sc_adv(s); /* ] */
    } else if (json_is_string(v)) {
        sc_skip_string(s);
    } else {
        while (s->p < s->end && !strchr(",]} \t\r\n", *s->p))
            sc_adv(s);
    }
}

json_doc *json_doc_parse(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", name, je.line, je.column, je.text);
        return NULL;
    }
    json_doc *d = calloc(1, sizeof *d);
    if (!d) {
        json_decref(root);
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    d->name = strdup(name);
    d->root = root;
    size_t n = count_values(root) * 2, sz = 16;
    while (sz < n)
        sz <<= 1;
    d->slots = calloc(sz, sizeof *d->slots);
    if (!d->name || !d->slots) {
        json_doc_free(d);
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    d->nslots = sz;
    scanner s = {text, text + len, 1, 1};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        s.p += 3;
    walk(d, &s, root);
    return d;
}

json_doc *json_doc_load(const char *path, size_t max_bytes, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if ((size_t)st.st_size > max_bytes) {
        snprintf(err, errlen, "%s: file is %lld bytes, more than the limit of %zu",
                 path, (long long)st.st_size, max_bytes);
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)st.st_size) {
        snprintf(err, errlen, "%s: cannot read", path);
        free(buf);
        return NULL;
    }
    json_doc *d = json_doc_parse(path, buf, got, err, errlen);
    free(buf);
    return d;
}

void json_doc_free(json_doc *d)
{
    if (!d)
        return;
    json_decref(d->root);
    free(d->slots);
    free(d->name);
    free(d);
}

json_t *json_doc_root(const json_doc *d) { return d->root; }
const char *json_doc_name(const json_doc *d) { return d->name; }

int json_doc_error(const json_doc *d, const json_t *at, char *err, size_t errlen,
                   const char *field, const char *fmt, ...)
{
    int line = 0, col = 0;
    size_t off;
    if (json_doc_where(d, at, &line, &col))
        off = (size_t)snprintf(err, errlen, "%s:%d:%d: ", d->name, line, col);
    else
        off = (size_t)snprintf(err, errlen, "%s: ", d->name);
    if (field && *field && off < errlen)
        off += (size_t)snprintf(err + off, errlen - off, "%s: ", field);
    if (off < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + off, errlen - off, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int json_doc_check_keys(const json_doc *d, const json_t *obj, const char *field,
                        const char *const *allowed, char *err, size_t errlen)
{
    if (!json_is_object(obj))
        return json_doc_error(d, obj, err, errlen, field, "must be an object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, k) == 0) {
                ok = true;
                break;
            }
        if (!ok) {
            char known[512];
            size_t off = 0;
            known[0] = 0;
            for (const char *const *a = allowed; *a && off < sizeof known; a++)
                off += (size_t)snprintf(known + off, sizeof known - off, "%s%s",
                                        a == allowed ? "" : ", ", *a);
            return json_doc_error(d, v, err, errlen, field, "unknown key '%s' (known: %s)", k, known);
        }
    }
    return 0;
}

static int get_member(const json_doc *d, const json_t *obj, const char *field, const char *key,
                      bool required, json_t **v, char *err, size_t errlen)
{
    *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!*v || json_is_null(*v)) {
        if (required)
            return json_doc_error(d, obj, err, errlen, field, "missing required key '%s'", key);
        return 1;
    }
    return 0;
}

int json_doc_get_string(const json_doc *d, const json_t *obj, const char *field, const char *key,
                        bool required, const char **out, char *err, size_t errlen)
{
    json_t *v;
    int rc = get_member(d, obj, field, key, required, &v, err, errlen);
    if (rc)
        return rc;
    if (!json_is_string(v))
        return json_doc_error(d, v, err, errlen, field, "'%s' must be a string", key);
    *out = json_string_value(v);
    return 0;
}

int json_doc_get_int(const json_doc *d, const json_t *obj, const char *field, const char *key,
                     bool required, long long min, long long max, long long *out,
                     char *err, size_t errlen)
{
    json_t *v;
    int rc = get_member(d, obj, field, key, required, &v, err, errlen);
    if (rc)
        return rc;
    if (!json_is_integer(v))
        return json_doc_error(d, v, err, errlen, field, "'%s' must be an integer", key);
    long long x = json_integer_value(v);
    if (x < min || x > max)
        return json_doc_error(d, v, err, errlen, field, "'%s' is %lld, must be between %lld and %lld",
                              key, x, min, max);
    *out = x;
    return 0;
}

int json_doc_get_bool(const json_doc *d, const json_t *obj, const char *field, const char *key,
                      bool required, bool *out, char *err, size_t errlen)
{
    json_t *v;
    int rc = get_member(d, obj, field, key, required, &v, err, errlen);
    if (rc)
        return rc;
    if (!json_is_boolean(v))
        return json_doc_error(d, v, err, errlen, field, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

int json_doc_get_strings(const json_doc *d, const json_t *obj, const char *field, const char *key,
                         bool required, const char ***out, size_t *n, char *err, size_t errlen)
{
    json_t *v;
    int rc = get_member(d, obj, field, key, required, &v, err, errlen);
    if (rc)
        return rc;
    size_t cnt = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_string(v))
        return json_doc_error(d, v, err, errlen, field, "'%s' must be a string or an array of strings", key);
    const char **arr = calloc(cnt + 1, sizeof *arr);
    if (!arr)
        return json_doc_error(d, v, err, errlen, field, "out of memory");
    if (json_is_string(v)) {
        arr[0] = json_string_value(v);
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) {
            if (!json_is_string(c)) {
                free(arr);
                return json_doc_error(d, c, err, errlen, field, "'%s'[%zu] must be a string", key, i);
            }
            arr[i] = json_string_value(c);
        }
    }
    *out = arr;
    if (n)
        *n = cnt;
    return 0;
}
