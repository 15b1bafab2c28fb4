/*
 * analyze_internal: what the files of policy/analyze and policy/rewrite share
 * and nobody else should use: the arena that owns an analysis, the fact
 * builders the parse-tree walker fills, the built-in name lists, the guard
 * that turns a PostgreSQL error (longjmp) into a return code, and the
 * PostgreSQL scanner's tokens. Free of PostgreSQL server headers, so both
 * kinds of files can include it.
 */
#ifndef MARTGATE_ANALYZE_INTERNAL_H
#define MARTGATE_ANALYZE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/analyze.h"

/* ---- arena (analyze.c) ---------------------------------------------- */

struct analyze_arena;
/* NULL on out of memory. Memory is 8-byte aligned and not zeroed. */
void *arena_alloc(struct analyze_arena *arena, size_t n);
void *arena_zalloc(struct analyze_arena *arena, size_t n);
char *arena_strdup(struct analyze_arena *arena, const char *s);
char *arena_strndup(struct analyze_arena *arena, const char *s, size_t n);

/* ---- fact builder (analyze.c), filled by the walker ----------------- */

typedef struct analysis_builder {
    analysis *a;
    struct analyze_arena *arena;
    size_t cap_stmts, cap_relations, cap_schemas, cap_colrefs, cap_functions,
           cap_settings, cap_roles, cap_flags;
    bool out_of_memory;
} analysis_builder;

/* Each returns a zeroed new element (stmt_index unset), or NULL and sets
 * out_of_memory. */
analysis_stmt *builder_add_stmt(analysis_builder *b);
analysis_relation *builder_add_relation(analysis_builder *b);
analysis_schema *builder_add_schema(analysis_builder *b);
analysis_colref *builder_add_colref(analysis_builder *b);
analysis_function *builder_add_function(analysis_builder *b);
analysis_setting *builder_add_setting(analysis_builder *b);
analysis_role_change *builder_add_role(analysis_builder *b);
analysis_flag *builder_add_flag(analysis_builder *b);
char *builder_strdup(analysis_builder *b, const char *s);

/* The walker (analyze_walk.c): parses sql and fills b. Returns 0, or -1 with
 * err filled for a syntax error / failure. */
/* analyze_errors.c: err's SQLSTATE and hint for the raw parser's error
 * `message` raised in source file `file`, as the server gives them. */
void analyze_parser_error(const char *message, const char *file, analyze_error *err);

int analyze_walk_sql(const char *sql, const analyze_context *ctx,
                     analysis_builder *b, analyze_error *err);

/* Splits a GUC list value ("a, \"B\", $user") like the server's
 * SplitIdentifierString: unquoted names folded to lower case. Returns the
 * count, or -1 on a malformed list / out of memory; *items arena-owned. */
int analyze_split_guc_list(struct analyze_arena *arena, const char *value,
                           const char ***items);

/* ---- names (sql_names.c) -------------------------------------------- */

/* Keyword category of a lower-case word: -1 not a keyword, else 0
 * unreserved, 1 column name, 2 type/function name, 3 reserved. */
int sql_keyword_category(const char *word);

/* ---- PostgreSQL error guard (pg_guard.c) ------------------------------ */

/* Runs fn(arg) with a PostgreSQL error handler in place (the equivalent of
 * PG_TRY for code compiled against the server headers, whose declarations of
 * the thread-local error state do not match libpg_query's). Returns 0, or -1
 * when an ERROR was raised: the error is then still pending; the caller
 * must read it (CopyErrorData) and clear it (FlushErrorState). */
int pg_guard_call(void (*fn)(void *), void *arg);

/* ---- scanner tokens (sql_scan.c) ------------------------------------ */

typedef enum sql_token_kind {
    SQL_TOK_IDENT = 1,     /* identifier, quoted identifier, U&"..." */
    SQL_TOK_KEYWORD,       /* any keyword (keyword_index says which) */
    SQL_TOK_STRING,        /* string constant of any form */
    SQL_TOK_COMMENT,       /* -- or slash-star comment */
    SQL_TOK_CHAR,          /* a single character token: ch */
    SQL_TOK_OTHER          /* numbers, operators, parameters, ... */
} sql_token_kind;

typedef struct sql_token {
    int start;             /* byte offset */
    int end;               /* one past the last byte */
    sql_token_kind kind;
    int keyword_index;     /* SQL_TOK_KEYWORD: index in ScanKeywords */
    char ch;               /* SQL_TOK_CHAR */
} sql_token;

/* One token as the PostgreSQL scanner returns it. */
typedef enum sql_lex_kind {
    SQL_LEX_KEYWORD = 1,   /* keyword_index says which */
    SQL_LEX_IDENT,         /* identifier, quoted identifier, U&"..." */
    SQL_LEX_ICONST,        /* integer constant */
    SQL_LEX_FCONST,        /* float/numeric constant */
    SQL_LEX_SCONST,        /* string constant: '...', E'...', $$...$$, U&'...' */
    SQL_LEX_BCONST,        /* B'...' */
    SQL_LEX_XCONST,        /* X'...' */
    SQL_LEX_PARAM,         /* $n (param says n) */
    SQL_LEX_COMMENT,       /* -- or slash-star comment */
    SQL_LEX_CHAR,          /* a single character token: ch */
    SQL_LEX_OTHER          /* operators, typecasts, ... */
} sql_lex_kind;

typedef struct sql_lexeme {
    sql_lex_kind kind;
    int location;          /* byte offset of its first byte in the whole text */
    int keyword_index;     /* SQL_LEX_KEYWORD: index in ScanKeywords, else -1 */
    long param;            /* SQL_LEX_PARAM */
    char ch;               /* SQL_LEX_CHAR */
} sql_lexeme;

/* Called per token; false stops the scan. */
typedef bool (*sql_lex_fn)(void *arg, const sql_lexeme *t);

/* Runs the PostgreSQL scanner over sql from byte `from` (a token boundary),
 * calling fn for each token. Returns 0, or -1 when the scanner rejects the
 * text (unterminated quote...), with err filled and *cursorpos (may be NULL)
 * the 1-based position it gives. */
int sql_lex(const char *sql, int from, sql_lex_fn fn, void *arg, char *err, size_t errlen, int *cursorpos);

/* Where a token that starts at `start` ends, when the next one starts at
 * next_start: there, less the blanks between them. */
int sql_token_end(const char *sql, int next_start, int start);

/* Scans the text with the PostgreSQL scanner, from byte `from` (a token
 * boundary: 0 or a statement's start) until SQL_SCAN_MARGIN tokens after
 * byte `until` have been read (until < 0: to the end). Token offsets are
 * from the start of sql. Returns 0 with *tokens malloc'd (caller frees), or
 * -1 with err filled. */
#define SQL_SCAN_MARGIN 48
int sql_scan_tokens(const char *sql, int from, int until, sql_token **tokens, size_t *n,
                    char *err, size_t errlen);
/* The keyword index of a lower-case keyword, or -1. */
int sql_keyword_index(const char *word);

#endif
