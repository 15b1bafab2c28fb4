/*
 * intercept: the one point every complete Query ('Q') and Parse ('P') message
 * passes through before it may reach the warehouse. It answers allow, deny
 * (with the error the client gets) or replace (forward other SQL text).
 * The policy engine plugs in here; nothing else in the relay decides.
 */
#ifndef MARTGATE_INTERCEPT_H
#define MARTGATE_INTERCEPT_H

#include <stddef.h>

struct session;

typedef enum { INTERCEPT_ALLOW = 0, INTERCEPT_DENY, INTERCEPT_REPLACE } intercept_verdict;

typedef struct {
    intercept_verdict verdict;
    char *text;          /* REPLACE: the SQL to forward (malloc'ed) */
    char sqlstate[6];    /* DENY */
    char *message;       /* DENY: what the client reads (malloc'ed) */
    char *detail;        /* DENY, optional */
    char *hint;          /* DENY, optional */
} intercept_result;

/* kind is 'Q' or 'P'; stmt_name is the prepared statement's name for 'P'
 * ("" = unnamed) and NULL for 'Q'. sql is NUL-terminated. */
void intercept_statement(struct session *s, char kind, const char *stmt_name, const char *sql,
                         intercept_result *out);
void intercept_result_clear(intercept_result *r);

#endif
