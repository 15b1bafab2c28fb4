/*
 * sql_scan: the PostgreSQL scanner (libpg_query's core_yylex) turned into a
 * token array with byte ranges, for policy/rewrite: the parser gives where a
 * table reference starts, the tokens give where it ends, and whether it is
 * preceded by ONLY or TABLE. Never a home-made tokenizer: quoting, U&"..."
 * names, dollar quoting and nested comments are the server's own rules.
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/analyze_internal.h"

/* Token codes the scanner API fixes (scanner.h: IDENT = 258 and so on). */
enum {
    TOKEN_IDENT = 258,
    TOKEN_UIDENT = 259,
    TOKEN_SCONST = 261,
    TOKEN_USCONST = 262,
    TOKEN_BCONST = 263,
    TOKEN_XCONST = 264,
    /* keywords come back as KEYWORD_BASE + their index in ScanKeywords */
    KEYWORD_BASE = 4096
};

typedef struct scan_job {
    const char *sql;        /* where scanning starts */
    int offset;             /* of sql in the whole text */
    int until;              /* stop SQL_SCAN_MARGIN tokens after this; < 0: never */
    sql_token *tokens;
    size_t n, cap;
    bool out_of_memory;
    int stop_at;            /* start of the first token not kept; -1: end of text */
} scan_job;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void scan_all(void *arg)
{
    scan_job *job = arg;
    int nk = ScanKeywords.num_keywords;
    uint16 *keyword_tokens = palloc(sizeof(uint16) * (size_t)(nk > 0 ? nk : 1));
    for (int i = 0; i < nk; i++)
        keyword_tokens[i] = (uint16)(KEYWORD_BASE + i);
    union {
        core_yy_extra_type extra;
        char room[sizeof(core_yy_extra_type) + 64];
    } state;
    core_YYSTYPE value;
    int location = 0;
    core_yyscan_t scanner = scanner_init(job->sql, &state.extra, &ScanKeywords, keyword_tokens);
    int after = 0;
    for (;;) {
        int tok = core_yylex(&value, &location, scanner);
        if (tok == 0)
            break;
        if (job->until >= 0 && location + job->offset > job->until && ++after > SQL_SCAN_MARGIN) {
            job->stop_at = location + job->offset;
            break;
        }
        if (job->n == job->cap) {
            size_t ncap = job->cap ? job->cap * 2 : 64;
            sql_token *grown = realloc(job->tokens, ncap * sizeof *grown);
            if (!grown) {
                job->out_of_memory = true;
                break;
            }
            job->tokens = grown;
            job->cap = ncap;
        }
        sql_token *t = &job->tokens[job->n++];
        memset(t, 0, sizeof *t);
        t->start = location + job->offset;
        const char *at = job->sql + location;   /* relative to where scanning began */
        if (tok >= KEYWORD_BASE) {
            t->kind = SQL_TOK_KEYWORD;
            t->keyword_index = tok - KEYWORD_BASE;
        } else if (tok == TOKEN_IDENT || tok == TOKEN_UIDENT) {
            t->kind = SQL_TOK_IDENT;
        } else if (tok >= TOKEN_SCONST && tok <= TOKEN_XCONST) {
            t->kind = SQL_TOK_STRING;
        } else if ((at[0] == '-' && at[1] == '-') || (at[0] == '/' && at[1] == '*')) {
            t->kind = SQL_TOK_COMMENT;
        } else if (tok < 256) {
            t->kind = SQL_TOK_CHAR;
            t->ch = (char)tok;
        } else {
            t->kind = SQL_TOK_OTHER;
        }
    }
    scanner_finish(scanner);
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
    scan_job job = {.sql = sql + from, .offset = from, .until = until, .stop_at = -1};
    MemoryContext mcx = pg_query_enter_memory_context();
    int rc = 0;
    if (pg_guard_call(scan_all, &job) != 0) {
        ErrorData *e = CopyErrorData();
        FlushErrorState();
        snprintf(err, errlen, "cannot scan the statement: %s",
                 e && e->message ? e->message : "scanner error");
        rc = -1;
    } else if (job.out_of_memory) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    pg_query_exit_memory_context(mcx);
    if (rc != 0) {
        free(job.tokens);
        return -1;
    }
    for (size_t i = 0; i < job.n; i++) {
        size_t end = i + 1 < job.n      ? (size_t)job.tokens[i + 1].start
                     : job.stop_at >= 0 ? (size_t)job.stop_at
                                        : total;
        while (end > (size_t)job.tokens[i].start + 1 && is_space(sql[end - 1]))
            end--;
        job.tokens[i].end = (int)end;
    }
    *tokens = job.tokens;
    *n = job.n;
    return 0;
}

int sql_keyword_index(const char *word)
{
    return ScanKeywordLookup(word, &ScanKeywords);
}
