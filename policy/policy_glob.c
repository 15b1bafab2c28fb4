/*
 * policy_glob: the glob patterns of a policy (`*` and `?` only), compiled at
 * load into the cheapest test (exact, prefix, suffix, any, general), their
 * coverage test for shadowed-rule warnings, and their translation into SQL
 * conditions for catalog filtering (LIKE with '!' as the escape character, so
 * the text means the same whatever standard_conforming_strings is).
 */
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "policy/policy_internal.h"

bool glob_has_wildcard(const char *text)
{
    return strpbrk(text, "*?") != NULL;
}

int glob_compile(policy_glob *g, const char *text)
{
    memset(g, 0, sizeof *g);
    g->text = strdup(text);
    if (!g->text)
        return -1;
    g->len = strlen(text);
    const char *star = strchr(text, '*');
    bool q = strchr(text, '?') != NULL;
    if (!star && !q) {
        g->kind = GLOB_EXACT;
    } else if (strcmp(text, "*") == 0) {
        g->kind = GLOB_ANY;
    } else if (!q && star == text + g->len - 1) {
        g->kind = GLOB_PREFIX;
        g->fixed = g->len - 1;
    } else if (!q && star == text && !strchr(text + 1, '*')) {
        g->kind = GLOB_SUFFIX;
        g->fixed = g->len - 1;
    } else {
        g->kind = GLOB_GENERAL;
    }
    return 0;
}

void glob_free(policy_glob *g)
{
    if (g) {
        free(g->text);
        g->text = NULL;
    }
}

/* Iterative matcher with single backtrack point: linear for `*`/`?` globs. */
static bool match_general(const char *p, const char *s)
{
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        if (*p == '?' || (*p && *p == *s)) {
            p++;
            s++;
        } else if (*p == '*') {
            star_p = ++p;
            star_s = s;
        } else if (star_p) {
            p = star_p;
            s = ++star_s;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == 0;
}

bool glob_match(const policy_glob *g, const char *s)
{
    switch (g->kind) {
    case GLOB_EXACT:
        return strcmp(g->text, s) == 0;
    case GLOB_ANY:
        return true;
    case GLOB_PREFIX:
        return strncmp(g->text, s, g->fixed) == 0;
    case GLOB_SUFFIX: {
        size_t n = strlen(s);
        return n >= g->fixed && memcmp(s + n - g->fixed, g->text + 1, g->fixed) == 0;
    }
    default:
        return match_general(g->text, s);
    }
}

bool policy_is_catalog_schema(const char *schema)
{
    return strcmp(schema, "pg_catalog") == 0 || strcmp(schema, "information_schema") == 0;
}

bool policy_is_reserved_schema(const char *schema)
{
    return strncmp(schema, "pg_", 3) == 0 || strcmp(schema, "information_schema") == 0;
}

bool glob_match_schema(const policy_glob *g, const char *schema)
{
    if (g->kind != GLOB_EXACT && policy_is_reserved_schema(schema))
        return false;
    return glob_match(g, schema);
}

bool glob_covers(const policy_glob *a, const policy_glob *b)
{
    if (a->kind == GLOB_ANY)
        return true;
    if (strcmp(a->text, b->text) == 0)
        return true;
    if (b->kind == GLOB_EXACT)
        return glob_match(a, b->text);
    if (a->kind == GLOB_PREFIX)   /* "ab*" covers anything starting with "ab" literally */
        return strncmp(a->text, b->text, a->fixed) == 0 &&
               strcspn(b->text, "*?") >= a->fixed;
    if (a->kind == GLOB_SUFFIX) {
        const char *last = b->text + b->len;
        size_t tail = 0;
        while (last > b->text && last[-1] != '*' && last[-1] != '?') {
            last--;
            tail++;
        }
        return tail >= a->fixed && memcmp(b->text + b->len - a->fixed, a->text + 1, a->fixed) == 0;
    }
    return false;
}

static bool buf_grow(char **buf, size_t *len, size_t *cap, size_t more)
{
    char *n = grow_array(*buf, cap, *len + more + 1, 1, 256);
    if (!n)
        return false;
    *buf = n;
    return true;
}

static bool buf_put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (!buf_grow(buf, len, cap, n))
        return false;
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return true;
}

static bool buf_str(char **buf, size_t *len, size_t *cap, const char *s)
{
    return buf_put(buf, len, cap, s, strlen(s));
}

bool glob_to_sql(const policy_glob *g, const char *expr, bool is_schema,
                 char **buf, size_t *len, size_t *cap)
{
    if (g->kind == GLOB_ANY && !is_schema)
        return buf_str(buf, len, cap, "true");
    bool ok = buf_str(buf, len, cap, "(") && buf_str(buf, len, cap, expr);
    if (g->kind == GLOB_EXACT) {
        ok = ok && buf_str(buf, len, cap, " = '");
        for (const char *c = g->text; ok && *c; c++)
            ok = *c == '\'' ? buf_str(buf, len, cap, "''") : buf_put(buf, len, cap, c, 1);
        ok = ok && buf_str(buf, len, cap, "')");
        return ok;
    }
    ok = ok && buf_str(buf, len, cap, " LIKE '");
    for (const char *c = g->text; ok && *c; c++) {
        switch (*c) {
        case '*': ok = buf_str(buf, len, cap, "%"); break;
        case '?': ok = buf_str(buf, len, cap, "_"); break;
        case '%': ok = buf_str(buf, len, cap, "!%"); break;
        case '_': ok = buf_str(buf, len, cap, "!_"); break;
        case '!': ok = buf_str(buf, len, cap, "!!"); break;
        case '\'': ok = buf_str(buf, len, cap, "''"); break;
        default: ok = buf_put(buf, len, cap, c, 1); break;
        }
    }
    ok = ok && buf_str(buf, len, cap, "' ESCAPE '!'");
    if (is_schema) {   /* wildcards never reach reserved schemas */
        ok = ok && buf_str(buf, len, cap, " AND ") && buf_str(buf, len, cap, expr) &&
             buf_str(buf, len, cap, " NOT LIKE 'pg!_%' ESCAPE '!' AND ") &&
             buf_str(buf, len, cap, expr) && buf_str(buf, len, cap, " <> 'information_schema'");
    }
    return ok && buf_str(buf, len, cap, ")");
}
