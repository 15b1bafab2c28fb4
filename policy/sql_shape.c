/*
 * sql_shape: the shape of a SQL text, what stays of it when every constant
 * is blanked, found with the PostgreSQL scanner (libpg_query's core_yylex;
 * never a home-made tokenizer). It serves two jobs with one scan:
 *
 *  - the normalized text of the audit log: every constant token (integer,
 *    float, string in any of its forms, bit string) replaced by $n, numbered
 *    after the highest $n the text already has, so no literal reaches the log;
 *  - the key of the decision memo (proxy/intercept): two texts with the same
 *    key have the same tokens in the same order except for the values of
 *    their constants. The key is the normalized text, a NUL, and for every
 *    placeholder that stands for a constant its offset and token type, so a
 *    real $n parameter and a blanked constant never look alike.
 *
 * Only one construct lets a constant change what the rest of a text means:
 * UESCAPE 'c' after a U&"..." identifier picks the escape character the
 * identifier is decoded with. A text with UESCAPE is marked not decidable by
 * shape (analyze_shape.decidable false); the caller then parses it fully.
 */
#include <pg_query.h>
#undef PG_MAJORVERSION
#undef PG_VERSION
#undef PG_VERSION_NUM
#undef PG_VERSION_STR

#include "postgres.h"
#include "common/keywords.h"
#include "parser/scanner.h"
#include "pg_query_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/analyze_internal.h"

/* Token codes the scanner API fixes (parser/gram.h of PostgreSQL 15). */
enum {
    TOKEN_FCONST = 260,
    TOKEN_SCONST = 261,
    TOKEN_USCONST = 262,
    TOKEN_BCONST = 263,
    TOKEN_XCONST = 264,
    TOKEN_ICONST = 266,
    TOKEN_PARAM = 267,
    KEYWORD_BASE = 4096   /* keywords come back as KEYWORD_BASE + index */
};

/* Keyword index → token code, the same for every scan: built once. */
static uint16 *keyword_tokens;
static int uescape_index = -1;
static pthread_once_t keyword_once = PTHREAD_ONCE_INIT;

static void build_keyword_tokens(void)
{
    int nk = ScanKeywords.num_keywords;
    uint16 *t = malloc(sizeof *t * (size_t)(nk > 0 ? nk : 1));
    if (!t)
        return;
    for (int i = 0; i < nk; i++)
        t[i] = (uint16)(KEYWORD_BASE + i);
    uescape_index = ScanKeywordLookup("uescape", &ScanKeywords);
    keyword_tokens = t;
}

typedef struct {
    int start, end;
    char type;             /* 'i' integer, 'f' float, 's' string, 'b' bit, 'x' hex */
} shape_const;

typedef struct {
    const char *sql;
    shape_const *consts;
    size_t n, cap;
    long max_param;
    bool uescape;
    bool out_of_memory;
} shape_job;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char const_type(int tok)
{
    switch (tok) {
    case TOKEN_ICONST: return 'i';
    case TOKEN_FCONST: return 'f';
    case TOKEN_SCONST: case TOKEN_USCONST: return 's';
    case TOKEN_BCONST: return 'b';
    case TOKEN_XCONST: return 'x';
    default: return 0;
    }
}

/* A constant ends where the next token starts, less the blanks between. */
static void close_pending(shape_job *job, int next_start)
{
    if (job->n == 0 || job->consts[job->n - 1].end >= 0)
        return;
    int end = next_start;
    while (end > job->consts[job->n - 1].start + 1 && is_space(job->sql[end - 1]))
        end--;
    job->consts[job->n - 1].end = end;
}

static void scan_shape(void *arg)
{
    shape_job *job = arg;
    union {
        core_yy_extra_type extra;
        char room[sizeof(core_yy_extra_type) + 64];   /* libpg_query keeps one more field */
    } state;
    core_YYSTYPE value;
    int location = 0;
    core_yyscan_t scanner = scanner_init(job->sql, &state.extra, &ScanKeywords, keyword_tokens);
    for (;;) {
        int tok = core_yylex(&value, &location, scanner);
        if (tok == 0)
            break;
        close_pending(job, location);
        if (tok == TOKEN_PARAM) {
            if (value.ival > job->max_param)
                job->max_param = value.ival;
        } else if (uescape_index >= 0 && tok == KEYWORD_BASE + uescape_index) {
            job->uescape = true;
        }
        char type = const_type(tok);
        if (!type)
            continue;
        if (job->n == job->cap) {
            size_t ncap = job->cap ? job->cap * 2 : 16;
            shape_const *grown = realloc(job->consts, ncap * sizeof *grown);
            if (!grown) {
                job->out_of_memory = true;
                break;
            }
            job->consts = grown;
            job->cap = ncap;
        }
        job->consts[job->n++] = (shape_const){.start = location, .end = -1, .type = type};
    }
    scanner_finish(scanner);
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* Decimal digits of v (v >= 1). */
static size_t digits(unsigned long v)
{
    size_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

int analyze_shape_of(const char *sql, analyze_shape *out, analyze_error *err)
{
    memset(out, 0, sizeof *out);
    if (err)
        memset(err, 0, sizeof *err);
    size_t total = sql ? strlen(sql) : 0;
    if (!sql || total > ANALYZE_MAX_SQL_BYTES) {
        if (err) {
            snprintf(err->message, sizeof err->message, "statement missing or too long");
            snprintf(err->sqlstate, sizeof err->sqlstate, "54000");
        }
        return -1;
    }
    pthread_once(&keyword_once, build_keyword_tokens);
    if (!keyword_tokens) {
        if (err) {
            snprintf(err->message, sizeof err->message, "out of memory");
            snprintf(err->sqlstate, sizeof err->sqlstate, "XX000");
        }
        return -1;
    }
    shape_job job = {.sql = sql};
    MemoryContext mcx = pg_query_enter_memory_context();
    int rc = 0;
    if (pg_guard_call(scan_shape, &job) != 0) {
        ErrorData *e = CopyErrorData();
        FlushErrorState();
        if (err) {
            snprintf(err->message, sizeof err->message, "%s", e && e->message ? e->message : "scanner error");
            err->cursor_position = e ? e->cursorpos : 0;
            snprintf(err->sqlstate, sizeof err->sqlstate, "42601");
        }
        rc = -1;
    } else if (job.out_of_memory) {
        if (err) {
            snprintf(err->message, sizeof err->message, "out of memory");
            snprintf(err->sqlstate, sizeof err->sqlstate, "XX000");
        }
        rc = -1;
    }
    pg_query_exit_memory_context(mcx);
    if (rc != 0) {
        free(job.consts);
        return -1;
    }
    close_pending(&job, (int)total);

    /* normalized text, NUL, then 5 bytes per constant: offset (4, big
     * endian) and type; a constant never grows by more than its $n */
    unsigned long first = (unsigned long)job.max_param + 1;
    size_t size = total + 1 + job.n * (5 + digits(first + job.n));
    char *key = malloc(size + 1);
    if (!key) {
        free(job.consts);
        if (err) {
            snprintf(err->message, sizeof err->message, "out of memory");
            snprintf(err->sqlstate, sizeof err->sqlstate, "XX000");
        }
        return -1;
    }
    size_t o = 0;
    int from = 0;
    for (size_t i = 0; i < job.n; i++) {
        const shape_const *c = &job.consts[i];
        memcpy(key + o, sql + from, (size_t)(c->start - from));
        o += (size_t)(c->start - from);
        job.consts[i].start = (int)o;   /* now: where its placeholder is in the output */
        o += (size_t)sprintf(key + o, "$%lu", first + i);
        from = c->end;
    }
    memcpy(key + o, sql + from, total - (size_t)from);
    o += total - (size_t)from;
    key[o++] = 0;
    out->normalized_len = o - 1;
    for (size_t i = 0; i < job.n; i++) {
        uint32_t at = (uint32_t)job.consts[i].start;
        key[o++] = (char)(at >> 24);
        key[o++] = (char)(at >> 16);
        key[o++] = (char)(at >> 8);
        key[o++] = (char)at;
        key[o++] = job.consts[i].type;
    }
    free(job.consts);
    out->key = key;
    out->normalized = key;
    out->key_len = o;
    out->n_constants = job.n;
    out->hash = hash_bytes(key, o);
    out->decidable = !job.uescape;
    return 0;
}

void analyze_shape_clear(analyze_shape *s)
{
    free(s->normalized);   /* the key's own allocation */
    memset(s, 0, sizeof *s);
}

int analyze_normalize(const char *sql, char **normalized, char *err, size_t errlen)
{
    *normalized = NULL;
    analyze_shape s;
    analyze_error e;
    if (analyze_shape_of(sql, &s, &e) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s", e.message);
        return -1;
    }
    *normalized = s.normalized;   /* the key's allocation, starting with the text */
    return 0;
}
