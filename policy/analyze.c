/*
 * analyze: the public face of SQL analysis (see analyze.h): the arena that
 * owns an analysis, the fact builders the parse-tree walker
 * (analyze_walk.c) fills, and the audit helpers over libpg_query's
 * fingerprint and normalize. This file sees only <pg_query.h>, never the
 * PostgreSQL server headers.
 */
#include "policy/analyze.h"

#include <ctype.h>
#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "policy/analyze_internal.h"

const char *analyze_parser_version(void)
{
    return PG_VERSION;
}

/* ---- arena ---------------------------------------------------------- */

struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
};

struct analyze_arena {
    struct arena_chunk *chunks;   /* extra chunks (the first one is inline) */
    char *cur;
    size_t left;
};

#define ARENA_ALIGN 8u
#define ARENA_FIRST_BYTES 6144u
#define ARENA_CHUNK_BYTES 16384u

static size_t align_up(size_t n)
{
    return (n + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1);
}

void *arena_alloc(struct analyze_arena *arena, size_t n)
{
    n = align_up(n ? n : 1);
    if (n > arena->left) {
        size_t want = n + align_up(sizeof(struct arena_chunk));
        size_t size = want > ARENA_CHUNK_BYTES ? want : ARENA_CHUNK_BYTES;
        struct arena_chunk *c = malloc(size);
        if (!c)
            return NULL;
        c->next = arena->chunks;
        c->size = size;
        arena->chunks = c;
        arena->cur = (char *)c + align_up(sizeof(struct arena_chunk));
        arena->left = size - align_up(sizeof(struct arena_chunk));
    }
    void *p = arena->cur;
    arena->cur += n;
    arena->left -= n;
    return p;
}

void *arena_zalloc(struct analyze_arena *arena, size_t n)
{
    void *p = arena_alloc(arena, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *arena_strndup(struct analyze_arena *arena, const char *s, size_t n)
{
    char *p = arena_alloc(arena, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *arena_strdup(struct analyze_arena *arena, const char *s)
{
    return s ? arena_strndup(arena, s, strlen(s)) : NULL;
}

/* One malloc holds the analysis, its arena and the first arena block. */
static analysis *analysis_new(void)
{
    size_t head = align_up(sizeof(analysis)) + align_up(sizeof(struct analyze_arena));
    char *mem = malloc(head + ARENA_FIRST_BYTES);
    if (!mem)
        return NULL;
    analysis *a = (analysis *)mem;
    memset(a, 0, sizeof *a);
    struct analyze_arena *arena = (struct analyze_arena *)(mem + align_up(sizeof(analysis)));
    arena->chunks = NULL;
    arena->cur = mem + head;
    arena->left = ARENA_FIRST_BYTES;
    a->arena = arena;
    return a;
}

void analysis_free(analysis *a)
{
    if (!a)
        return;
    struct arena_chunk *c = a->arena ? a->arena->chunks : NULL;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

/* ---- builders ------------------------------------------------------- */

/* Grows *items (elements of size `size`) so one more fits. */
static void *builder_push(analysis_builder *b, void **items, size_t *n, size_t *cap,
                          size_t size)
{
    if (b->out_of_memory)
        return NULL;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        void *fresh = arena_alloc(b->arena, ncap * size);
        if (!fresh) {
            b->out_of_memory = true;
            return NULL;
        }
        if (*n)
            memcpy(fresh, *items, *n * size);
        *items = fresh;
        *cap = ncap;
    }
    char *slot = (char *)*items + *n * size;
    memset(slot, 0, size);
    (*n)++;
    return slot;
}

#define BUILDER_ADD(fn, type, field, count, capfield)                                 \
    type *fn(analysis_builder *b)                                                      \
    {                                                                                  \
        void *items = b->a->field;                                                     \
        type *slot = builder_push(b, &items, &b->a->count, &b->capfield, sizeof(type)); \
        b->a->field = items;                                                           \
        return slot;                                                                   \
    }

BUILDER_ADD(builder_add_stmt, analysis_stmt, stmts, n_stmts, cap_stmts)
BUILDER_ADD(builder_add_relation, analysis_relation, relations, n_relations, cap_relations)
BUILDER_ADD(builder_add_schema, analysis_schema, schemas, n_schemas, cap_schemas)
BUILDER_ADD(builder_add_colref, analysis_colref, colrefs, n_colrefs, cap_colrefs)
BUILDER_ADD(builder_add_function, analysis_function, functions, n_functions, cap_functions)
BUILDER_ADD(builder_add_setting, analysis_setting, settings, n_settings, cap_settings)
BUILDER_ADD(builder_add_role, analysis_role_change, roles, n_roles, cap_roles)
BUILDER_ADD(builder_add_flag, analysis_flag, flags, n_flags, cap_flags)

char *builder_strdup(analysis_builder *b, const char *s)
{
    if (!s)
        return NULL;
    char *p = arena_strdup(b->arena, s);
    if (!p)
        b->out_of_memory = true;
    return p;
}

/* ---- GUC list values ------------------------------------------------ */

int analyze_split_guc_list(struct analyze_arena *arena, const char *value,
                           const char ***items)
{
    size_t cap = 4, n = 0;
    const char **out = arena_alloc(arena, cap * sizeof *out);
    if (!out)
        return -1;
    const char *p = value;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0') {
        *items = out;
        return 0;
    }
    for (;;) {
        char *name;
        if (*p == '"') {
            /* quoted: "" is a literal quote, case kept */
            const char *q = p + 1;
            size_t len = 0;
            for (const char *r = q;; r++) {
                if (*r == '\0')
                    return -1;
                if (*r == '"') {
                    if (r[1] == '"') {
                        r++;
                        len++;
                        continue;
                    }
                    break;
                }
                len++;
            }
            name = arena_alloc(arena, len + 1);
            if (!name)
                return -1;
            size_t k = 0;
            for (q = p + 1;; q++) {
                if (*q == '"') {
                    if (q[1] == '"') {
                        name[k++] = '"';
                        q++;
                        continue;
                    }
                    break;
                }
                name[k++] = *q;
            }
            name[k] = '\0';
            p = q + 1;
        } else {
            const char *start = p;
            while (*p && *p != ',' && !isspace((unsigned char)*p))
                p++;
            if (p == start)
                return -1;
            name = arena_strndup(arena, start, (size_t)(p - start));
            if (!name)
                return -1;
            for (char *c = name; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
        }
        if (n == cap) {
            const char **grown = arena_alloc(arena, cap * 2 * sizeof *grown);
            if (!grown)
                return -1;
            memcpy(grown, out, n * sizeof *out);
            out = grown;
            cap *= 2;
        }
        out[n++] = name;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == ',') {
            p++;
            while (isspace((unsigned char)*p))
                p++;
            continue;
        }
        if (*p == '\0')
            break;
        return -1;
    }
    *items = out;
    return (int)n;
}

/* ---- public API ----------------------------------------------------- */

int analyze_sql(const char *sql, const analyze_context *ctx, analysis **out,
                analyze_error *err)
{
    analyze_error local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    *out = NULL;
    if (!sql) {
        snprintf(err->message, sizeof err->message, "no SQL text");
        memcpy(err->sqlstate, "XX000", 6);
        return -1;
    }
    size_t len = strlen(sql);
    if (len > ANALYZE_MAX_SQL_BYTES) {
        snprintf(err->message, sizeof err->message,
                 "statement is too long (%zu bytes, at most %u)", len,
                 (unsigned)ANALYZE_MAX_SQL_BYTES);
        memcpy(err->sqlstate, "54000", 6);
        return -1;
    }
    analysis *a = analysis_new();
    if (!a) {
        snprintf(err->message, sizeof err->message, "out of memory");
        memcpy(err->sqlstate, "53200", 6);
        return -1;
    }
    a->sql_length = len;
    analysis_builder b = {.a = a, .arena = a->arena};
    int rc = analyze_walk_sql(sql, ctx, &b, err);
    if (rc == 0 && b.out_of_memory) {
        snprintf(err->message, sizeof err->message, "out of memory");
        memcpy(err->sqlstate, "53200", 6);
        rc = -1;
    }
    if (rc != 0) {
        analysis_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

const char *analyze_stmt_kind_name(analyze_stmt_kind kind)
{
    switch (kind) {
    case ANALYZE_STMT_READ: return "read";
    case ANALYZE_STMT_WRITE: return "write";
    case ANALYZE_STMT_DDL: return "DDL";
    case ANALYZE_STMT_SESSION: return "session";
    case ANALYZE_STMT_TRANSACTION: return "transaction";
    case ANALYZE_STMT_UTILITY: return "utility";
    case ANALYZE_STMT_UNSUPPORTED: return "unsupported";
    }
    return "unknown";
}

const char *analyze_flag_kind_name(analyze_flag_kind kind)
{
    switch (kind) {
    case ANALYZE_FLAG_UNSUPPORTED: return "unsupported";
    case ANALYZE_FLAG_DO: return "do";
    case ANALYZE_FLAG_EXECUTE: return "execute";
    case ANALYZE_FLAG_COPY_FILE: return "copy_file";
    case ANALYZE_FLAG_COPY_PROGRAM: return "copy_program";
    case ANALYZE_FLAG_CREATE_FUNCTION: return "create_function";
    case ANALYZE_FLAG_CALL: return "call";
    case ANALYZE_FLAG_LISTEN_NOTIFY: return "listen_notify";
    case ANALYZE_FLAG_LOAD: return "load";
    case ANALYZE_FLAG_ALTER_SYSTEM: return "alter_system";
    case ANALYZE_FLAG_CREATE_EXTENSION: return "create_extension";
    case ANALYZE_FLAG_ROLE_DB_SETTING: return "role_db_setting";
    case ANALYZE_FLAG_DYNAMIC_SETTING: return "dynamic_setting";
    case ANALYZE_FLAG_RULE: return "rule";
    case ANALYZE_FLAG_TOO_DEEP: return "too_deep";
    }
    return "unknown";
}

/* ---- audit helpers -------------------------------------------------- */

static void copy_pg_error(const PgQueryError *e, char *err, size_t errlen)
{
    if (err && errlen)
        snprintf(err, errlen, "%s (at character %d)", e->message ? e->message : "error",
                 e->cursorpos);
}

int analyze_fingerprint(const char *sql, uint64_t *fingerprint, char hex[17], char *err,
                        size_t errlen)
{
    if (!sql || strlen(sql) > ANALYZE_MAX_SQL_BYTES) {
        if (err && errlen)
            snprintf(err, errlen, "statement missing or too long");
        return -1;
    }
    PgQueryFingerprintResult r = pg_query_fingerprint(sql);
    int rc = 0;
    if (r.error) {
        copy_pg_error(r.error, err, errlen);
        rc = -1;
    } else {
        if (fingerprint)
            *fingerprint = r.fingerprint;
        if (hex)
            snprintf(hex, 17, "%016llx", (unsigned long long)r.fingerprint);
    }
    pg_query_free_fingerprint_result(r);
    return rc;
}
