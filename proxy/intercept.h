/*
 * intercept: the one point every complete Query ('Q') and Parse ('P') message
 * passes through before it may reach the warehouse. It analyses the text with
 * policy/analyze, decides with policy/decide against the policy loaded now
 * (a reload applies to the next statement of every session), and answers
 * allow, deny (with the error the client gets), replace (forward the
 * rewritten text) or wait (the warehouse catalog must be read first).
 *
 * It also keeps the session state a decision depends on: the effective
 * search_path (SET, SET LOCAL, RESET, DISCARD, set_config, and transaction
 * ends that undo them) and the prepared statements it allowed.
 */
#ifndef MARTGATE_INTERCEPT_H
#define MARTGATE_INTERCEPT_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/decide.h"

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
} intercept_result;

/* A list of schema names (owned strings). */
typedef struct {
    char **v;
    size_t n;
} schema_list;

/* The per-session state decisions depend on. */
typedef struct {
    bool ready;                      /* principal filled in at login */
    decide_principal who;            /* whom statements are decided for now */
    decide_principal login_who;      /* who logged in (the token's principal) */
    char *imp_role;                  /* SET ROLE taken by an impersonator, or NULL */
    schema_list startup_path;        /* what RESET search_path goes back to */
    schema_list committed_path;      /* outside any transaction */
    schema_list effective_path;      /* what the server uses now */
    schema_list tx_session_path;     /* SET (not LOCAL) inside the open transaction */
    bool tx_path_changed;            /* any search_path change in the open transaction */
    bool tx_session_set;
    char **prepared;                 /* names of allowed prepared statements */
    size_t n_prepared, cap_prepared;
    decision dec;                    /* reused between statements */
    double catalog_since;            /* WAIT: the snapshot must be newer than this */
    bool catalog_missing;
} session_guard;

/* kind is 'Q' or 'P'; stmt_name is the prepared statement's name for 'P'
 * ("" = unnamed) and NULL for 'Q'. sql is NUL-terminated. */
void intercept_statement(struct session *s, char kind, const char *stmt_name, const char *sql,
                         intercept_result *out);
void intercept_result_clear(intercept_result *r);

/* Login: fills the principal and the starting search_path. Returns 0, or -1
 * with a message for the client (e.g. a startup search_path the principal
 * may not use). *search_path_text (malloc'ed) is what the warehouse session
 * starts with, as SET syntax; NULL when no policy is loaded. */
int guard_login(struct session *s, char **search_path_text, char *err, size_t errlen);
void guard_free(session_guard *g);

/* The relay reports ReadyForQuery status changes (a transaction end may undo
 * a search_path change) and the answer to its own SHOW search_path. */
void guard_on_ready_for_query(struct session *s, char previous, char status);
void guard_search_path_learned(struct session *s, const char *value, char tx_status);
/* Splits a search_path value as SHOW prints it; 0 or -1 when malformed. */
int guard_parse_search_path(const char *text, schema_list *out);

#endif
