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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/analyze_internal.h"
#include "common/grow.h"
#include "common/text_hash.h"

typedef struct {
    int start, end;
    char type;             /* 'i' integer, 'f' float, 's' string, 'b' bit, 'x' hex */
} shape_const;

typedef struct {
    const char *sql;
    int uescape_index;
    shape_const *consts;
    size_t n, cap;
    long max_param;
    bool uescape;
    bool out_of_memory;
} shape_job;

static char const_type(sql_lex_kind kind)
{
    switch (kind) {
    case SQL_LEX_ICONST: return 'i';
    case SQL_LEX_FCONST: return 'f';
    case SQL_LEX_SCONST: return 's';
    case SQL_LEX_BCONST: return 'b';
    case SQL_LEX_XCONST: return 'x';
    default: return 0;
    }
}

/* A constant ends where the next token starts, less the blanks between. */
static void close_pending(shape_job *job, int next_start)
{
    if (job->n && job->consts[job->n - 1].end < 0)
        job->consts[job->n - 1].end = sql_token_end(job->sql, next_start, job->consts[job->n - 1].start);
}

static bool shape_token(void *arg, const sql_lexeme *t)
{
    shape_job *job = arg;
    close_pending(job, t->location);
    if (t->kind == SQL_LEX_PARAM && t->param > job->max_param)
        job->max_param = t->param;
    else if (t->kind == SQL_LEX_KEYWORD && t->keyword_index == job->uescape_index)
        job->uescape = true;
    char type = const_type(t->kind);
    if (!type)
        return true;
    shape_const *grown = grow_array(job->consts, &job->cap, job->n + 1, sizeof *grown, 16);
    if (!grown) {
        job->out_of_memory = true;
        return false;
    }
    job->consts = grown;
    job->consts[job->n++] = (shape_const){.start = t->location, .end = -1, .type = type};
    return true;
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

/* Writes "$n" at out; returns its length. */
static size_t placeholder(char *out, unsigned long n)
{
    char digits_buf[24], *end = digits_buf + sizeof digits_buf, *p = end;
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    out[0] = '$';
    memcpy(out + 1, p, (size_t)(end - p));
    return 1 + (size_t)(end - p);
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
    static const char oom[] = "out of memory";
    static _Thread_local int uescape = -2;   /* the keyword's index, looked up once */
    if (uescape == -2)
        uescape = sql_keyword_index("uescape");
    shape_job job = {.sql = sql, .uescape_index = uescape};
    char why[256];
    int cursor = 0;
    if (sql_lex(sql, 0, shape_token, &job, why, sizeof why, &cursor) != 0 || job.out_of_memory) {
        free(job.consts);
        if (err) {
            snprintf(err->message, sizeof err->message, "%s", job.out_of_memory ? oom : why);
            err->cursor_position = job.out_of_memory ? 0 : cursor;
            snprintf(err->sqlstate, sizeof err->sqlstate, "%s", job.out_of_memory ? "XX000" : "42601");
        }
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
            snprintf(err->message, sizeof err->message, "%s", oom);
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
        o += placeholder(key + o, first + i);
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
    out->hash = text_hash(key, o);
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
