/*
 * sql_scan: the PostgreSQL scanner (libpg_query's core_yylex), token by token
 * (sql_lex), and turned into a token array with byte ranges for
 * policy/rewrite: the parser gives where a table reference starts, the tokens
 * give where it ends, and whether it is preceded by ONLY or TABLE. Never a
 * home-made tokenizer: quoting, U&"..." names, dollar quoting and nested
 * comments are the server's own rules.
 *
 * libpg_query's scanner returns comments as tokens and keeps one more field
 * at the end of core_yy_extra_type than the server header declares; the
 * extra state below is padded for it. A token ends where the next one starts,
 * less the whitespace between them.
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

#include "common/grow.h"
#include "policy/analyze_internal.h"

/* Token codes the scanner API fixes (parser/gram.h of PostgreSQL 15). */
enum {
    TOKEN_IDENT = 258,
    TOKEN_UIDENT = 259,
    TOKEN_FCONST = 260,
    TOKEN_SCONST = 261,
    TOKEN_USCONST = 262,
    TOKEN_BCONST = 263,
    TOKEN_XCONST = 264,
    TOKEN_ICONST = 266,
    TOKEN_PARAM = 267,
    /* keywords come back as KEYWORD_BASE + their index in ScanKeywords */
    KEYWORD_BASE = 4096
};

/* Keyword index → token code, the same for every scan: built once. */
static uint16 *keyword_tokens;
static pthread_once_t keyword_once = PTHREAD_ONCE_INIT;

static void build_keyword_tokens(void)
{
    int nk = ScanKeywords.num_keywords;
    uint16 *t = malloc(sizeof *t * (size_t)(nk > 0 ? nk : 1));
    if (!t)
        return;
    for (int i = 0; i < nk; i++)
        t[i] = (uint16)(KEYWORD_BASE + i);
    keyword_tokens = t;
}

typedef struct lex_job {
    const char *sql;        /* where scanning starts */
    int offset;             /* of sql in the whole text */
    sql_lex_fn fn;
    void *arg;
} lex_job;

static void lex_all(void *arg)
{
    lex_job *job = arg;
    union {
        core_yy_extra_type extra;
        char room[sizeof(core_yy_extra_type) + 64];
    } state;
    core_YYSTYPE value;
    int location = 0;
    core_yyscan_t scanner = scanner_init(job->sql, &state.extra, &ScanKeywords, keyword_tokens);
    for (;;) {
        int tok = core_yylex(&value, &location, scanner);
        if (tok == 0)
            break;
        sql_lexeme t = {.location = location + job->offset, .keyword_index = -1};
        const char *at = job->sql + location;   /* relative to where scanning began */
        if (tok >= KEYWORD_BASE) {
            t.kind = SQL_LEX_KEYWORD;
            t.keyword_index = tok - KEYWORD_BASE;
        } else if (tok == TOKEN_IDENT || tok == TOKEN_UIDENT) {
            t.kind = SQL_LEX_IDENT;
        } else if (tok == TOKEN_ICONST) {
            t.kind = SQL_LEX_ICONST;
        } else if (tok == TOKEN_FCONST) {
            t.kind = SQL_LEX_FCONST;
        } else if (tok == TOKEN_SCONST || tok == TOKEN_USCONST) {
            t.kind = SQL_LEX_SCONST;
        } else if (tok == TOKEN_BCONST) {
            t.kind = SQL_LEX_BCONST;
        } else if (tok == TOKEN_XCONST) {
            t.kind = SQL_LEX_XCONST;
        } else if (tok == TOKEN_PARAM) {
            t.kind = SQL_LEX_PARAM;
            t.param = value.ival;
        } else if ((at[0] == '-' && at[1] == '-') || (at[0] == '/' && at[1] == '*')) {
            t.kind = SQL_LEX_COMMENT;
        } else if (tok < 256) {
            t.kind = SQL_LEX_CHAR;
            t.ch = (char)tok;
        } else {
            t.kind = SQL_LEX_OTHER;
        }
        if (!job->fn(job->arg, &t))
            break;
    }
    scanner_finish(scanner);
}

int sql_lex(const char *sql, int from, sql_lex_fn fn, void *arg, char *err, size_t errlen, int *cursorpos)
{
    if (cursorpos)
        *cursorpos = 0;
    pthread_once(&keyword_once, build_keyword_tokens);
    if (!keyword_tokens) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    lex_job job = {.sql = sql + from, .offset = from, .fn = fn, .arg = arg};
    MemoryContext mcx = pg_query_enter_memory_context();
    int rc = 0;
    if (pg_guard_call(lex_all, &job) != 0) {
        ErrorData *e = CopyErrorData();
        FlushErrorState();
        snprintf(err, errlen, "%s", e && e->message ? e->message : "scanner error");
        if (cursorpos && e)
            *cursorpos = e->cursorpos;
        rc = -1;
    }
    pg_query_exit_memory_context(mcx);
    return rc;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int sql_token_end(const char *sql, int next_start, int start)
{
    int end = next_start;
    while (end > start + 1 && is_space(sql[end - 1]))
        end--;
    return end;
}

/* ---- the token array of policy/rewrite --------------------------------------- */

typedef struct scan_job {
    int until;              /* stop SQL_SCAN_MARGIN tokens after this; < 0: never */
    int after;              /* tokens read past `until` */
    sql_token *tokens;
    size_t n, cap;
    bool out_of_memory;
    int stop_at;            /* start of the first token not kept; -1: end of text */
} scan_job;

static bool keep_token(void *arg, const sql_lexeme *l)
{
    scan_job *job = arg;
    if (job->until >= 0 && l->location > job->until && ++job->after > SQL_SCAN_MARGIN) {
        job->stop_at = l->location;
        return false;
    }
    sql_token *grown = grow_array(job->tokens, &job->cap, job->n + 1, sizeof *grown, 64);
    if (!grown) {
        job->out_of_memory = true;
        return false;
    }
    job->tokens = grown;
    sql_token *t = &job->tokens[job->n++];
    memset(t, 0, sizeof *t);
    t->start = l->location;
    switch (l->kind) {
    case SQL_LEX_KEYWORD:
        t->kind = SQL_TOK_KEYWORD;
        t->keyword_index = l->keyword_index;
        break;
    case SQL_LEX_IDENT: t->kind = SQL_TOK_IDENT; break;
    case SQL_LEX_SCONST: case SQL_LEX_BCONST: case SQL_LEX_XCONST: t->kind = SQL_TOK_STRING; break;
    case SQL_LEX_COMMENT: t->kind = SQL_TOK_COMMENT; break;
    case SQL_LEX_CHAR:
        t->kind = SQL_TOK_CHAR;
        t->ch = l->ch;
        break;
    default: t->kind = SQL_TOK_OTHER; break;
    }
    return true;
}

int sql_scan_tokens(const char *sql, int from, int until, sql_token **tokens, size_t *n,
                    char *err, size_t errlen)
{
    *tokens = NULL;
    *n = 0;
    size_t total = strlen(sql);
    if (from < 0 || (size_t)from > total) {
        snprintf(err, errlen, "cannot scan the statement: bad start %d", from);
        return -1;
    }
    scan_job job = {.until = until, .stop_at = -1};
    char why[200];
    if (sql_lex(sql, from, keep_token, &job, why, sizeof why, NULL) != 0 || job.out_of_memory) {
        snprintf(err, errlen, "cannot scan the statement: %s", job.out_of_memory ? "out of memory" : why);
        free(job.tokens);
        return -1;
    }
    for (size_t i = 0; i < job.n; i++) {
        int next = i + 1 < job.n ? job.tokens[i + 1].start : job.stop_at >= 0 ? job.stop_at : (int)total;
        job.tokens[i].end = sql_token_end(sql, next, job.tokens[i].start);
    }
    *tokens = job.tokens;
    *n = job.n;
    return 0;
}

int sql_keyword_index(const char *word)
{
    return ScanKeywordLookup(word, &ScanKeywords);
}
