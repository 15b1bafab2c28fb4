/*
 * intercept: the one point every complete Query ('Q') and Parse ('P') message
 * passes through before it may reach the warehouse. It analyses the text with
 * policy/analyze, decides with policy/decide against the policy loaded now
 * (a reload applies to the next statement of every session), and answers
 * allow, deny (with the error the client gets), replace (forward the
 * rewritten text) or wait (the warehouse catalog must be read first).
 *
 * The session state a decision depends on (principal, search_path, prepared
 * statements) is proxy/guard's; intercept tells it what allowed statements do.
 */
#ifndef MARTGATE_INTERCEPT_H
#define MARTGATE_INTERCEPT_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/decide.h"
#include "proxy/guard.h"

struct session;

typedef enum {
    INTERCEPT_ALLOW = 0,
    INTERCEPT_DENY,
    INTERCEPT_REPLACE,
    INTERCEPT_WAIT,      /* keep the message; intercept again after catalog_ready */
    INTERCEPT_WAIT_AUDIT,/* keep the message; intercept again when the audit queue has room */
} intercept_verdict;

typedef struct {
    intercept_verdict verdict;
    char *text;          /* REPLACE: the SQL to forward (malloc'ed) */
    char sqlstate[6];    /* DENY */
    char *message;       /* DENY: what the client reads (malloc'ed) */
    char *detail;        /* DENY, optional */
    char *hint;          /* DENY, optional */
    int position;        /* DENY: 1-based error position, 0 = none */
    bool parser;         /* DENY: the parser's error (analyze_error.parser) */
} intercept_result;

/* kind is 'Q' or 'P'; stmt_name is the prepared statement's name for 'P'
 * ("" = unnamed) and NULL for 'Q'. sql is NUL-terminated. types: a Parse's
 * parameter count and type OIDs as in the message (types_len bytes), kept
 * so that martgate can prepare the statement again. */
void intercept_statement(struct session *s, char kind, const char *stmt_name, const char *sql,
                         const unsigned char *types, size_t types_len, intercept_result *out);
void intercept_result_clear(intercept_result *r);

/* The extended protocol's Bind and Execute, as the relay meets them: a
 * prepared statement (or a cursor named as the portal) allowed under another
 * policy, principal or search_path than now, or unsure (see guard.h), is
 * decided again first. A Bind may then go on (GO), be refused (REFUSE: the
 * relay forwards nothing of it, and the client gets why with *sqlstate:
 * 42501, or 26000 for a statement the guard does not know, which the
 * warehouse would refuse the same way), or go on once the statement is
 * prepared again (REPREPARE: the relay closes it on the warehouse and
 * parses it again, as guard_reprepared left it, then meets the Bind again).
 * Execute returns false when refused (42501). */
typedef enum { INTERCEPT_BIND_GO, INTERCEPT_BIND_REFUSE, INTERCEPT_BIND_REPREPARE } intercept_bind_result;
intercept_bind_result intercept_bind(struct session *s, const char *portal, const char *stmt, const char **sqlstate,
                                     char *why, size_t len);
bool intercept_execute(struct session *s, const char *portal, char *why, size_t len);

#endif
