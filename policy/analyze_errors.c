/*
 * analyze_errors: what the server says besides the message when its parser
 * rejects a statement. libpg_query reports the message, position and the
 * source file of a raw-parser error but not its SQLSTATE or HINT; the few
 * raw-parser errors of PostgreSQL 15 (scan.l, parser.c, gram.y) that carry a
 * SQLSTATE other than 42601 (syntax_error) or a HINT are listed here, so that
 * martgate answers a statement its parser rejects as the warehouse would.
 */
#include "policy/analyze_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *file;      /* the end of the parser's source file name, or NULL: any (libpg_query
                            * names parser.c src_backend_parser_parser.c) */
    const char *message;   /* '*' stands for what the server formats in (%s, %d) */
    const char *sqlstate;
    const char *hint;      /* or NULL */
} parser_error;

static const parser_error parser_errors[] = {
    {"scan.l", "invalid Unicode escape", "22025", "Unicode escapes must be \\uXXXX or \\UXXXXXXXX."},
    {"scan.l", "unsafe use of string constant with Unicode escapes", "0A000", NULL},
    {"scan.l", "unsafe use of \\' in a string literal", "22P06",
     "Use '' to write quotes in strings. \\' is insecure in client-only encodings."},
    {"parser.c", "invalid Unicode escape", "42601", "Unicode escapes must be \\XXXX or \\+XXXXXX."},
    {NULL, "UNENCRYPTED PASSWORD is no longer supported", "0A000",
     "Remove UNENCRYPTED to store the password in encrypted form instead."},
    {NULL, "CREATE SCHEMA IF NOT EXISTS cannot include schema elements", "0A000", NULL},
    {NULL, "current database cannot be changed", "0A000", NULL},
    {NULL, "column number must be in range from 1 to *", "22023", NULL},
    {NULL, "modulus for hash partition provided more than once", "42710", NULL},
    {NULL, "remainder for hash partition provided more than once", "42710", NULL},
    {NULL, "MATCH PARTIAL not yet implemented", "0A000", NULL},
    {NULL, "a column list with * is only supported for ON DELETE actions", "0A000", NULL},
    {NULL, "CREATE EXTENSION ... FROM is no longer supported", "0A000", NULL},
    {NULL, "unrecognized row security option \"*\"", "42601",
     "Only PERMISSIVE or RESTRICTIVE policies are supported currently."},
    {NULL, "CREATE OR REPLACE CONSTRAINT TRIGGER is not supported", "0A000", NULL},
    {NULL, "CREATE ASSERTION is not yet implemented", "0A000", NULL},
    {NULL, "aggregates cannot have output arguments", "0A000", NULL},
    {NULL, "missing argument", "42601", "Use NONE to denote the missing argument of a unary operator."},
    {NULL, "WITH CHECK OPTION not supported on recursive views", "0A000", NULL},
    {NULL, "LIMIT #,# syntax is not supported", "42601", "Use separate LIMIT and OFFSET clauses."},
    {NULL, "VALUES in FROM must have an alias", "42601", "For example, FROM (VALUES ...) [AS] foo."},
    {NULL, "subquery in FROM must have an alias", "42601", "For example, FROM (SELECT ...) [AS] foo."},
    {NULL, "precision for type float must be at least 1 bit", "22023", NULL},
    {NULL, "precision for type float must be less than 54 bits", "22023", NULL},
    {NULL, "UNIQUE predicate is not yet implemented", "0A000", NULL},
    {NULL, "frame start cannot be UNBOUNDED FOLLOWING", "42P20", NULL},
    {NULL, "frame starting from following row cannot end with current row", "42P20", NULL},
    {NULL, "frame end cannot be UNBOUNDED PRECEDING", "42P20", NULL},
    {NULL, "frame starting from current row cannot have preceding rows", "42P20", NULL},
    {NULL, "frame starting from following row cannot have preceding rows", "42P20", NULL},
    {NULL, "role name \"*\" is reserved", "42939", NULL},
    {NULL, "* cannot be used as a role name here", "42939", NULL},
    {NULL, "an ordered-set aggregate with a VARIADIC direct argument must have one VARIADIC aggregated argument "
           "of the same data type", "0A000", NULL},
    {NULL, "* constraints cannot be marked DEFERRABLE", "0A000", NULL},
    {NULL, "* constraints cannot be marked NOT VALID", "0A000", NULL},
    {NULL, "* constraints cannot be marked NO INHERIT", "0A000", NULL},
};

/* Does text match pattern, '*' matching any run of characters? */
static bool matches(const char *pat, const char *text)
{
    if (!*pat)
        return !*text;
    if (*pat == '*') {
        for (const char *t = text;; t++) {
            if (matches(pat + 1, t))
                return true;
            if (!*t)
                return false;
        }
    }
    return *pat == *text && matches(pat + 1, text + 1);
}

static bool ends_with(const char *s, const char *end)
{
    size_t n = s ? strlen(s) : 0, m = strlen(end);
    return n >= m && strcmp(s + n - m, end) == 0;
}

void analyze_parser_error(const char *message, const char *file, analyze_error *err)
{
    memcpy(err->sqlstate, "42601", 6);
    err->hint[0] = 0;
    err->parser = true;
    if (!message)
        return;
    for (size_t i = 0; i < sizeof parser_errors / sizeof parser_errors[0]; i++) {
        const parser_error *pe = &parser_errors[i];
        if ((pe->file && !ends_with(file, pe->file)) || !matches(pe->message, message))
            continue;
        memcpy(err->sqlstate, pe->sqlstate, 6);
        if (pe->hint)
            snprintf(err->hint, sizeof err->hint, "%s", pe->hint);
        return;
    }
}
