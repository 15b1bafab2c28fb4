/*
 * audit_trail: what a session tells the audit log. It builds the records of
 * session events (session_start, login_failed, session_end) and of every
 * statement decided, and follows statements through the relay to fill in
 * what only the warehouse's answer tells: duration, rows, SQLSTATE.
 *
 * A Query message yields one record per statement of its text, completed by
 * the CommandComplete/ErrorResponse answers in order. In the extended
 * protocol the decision is made at Parse and each Execute of a portal of that
 * statement yields one record. A denied statement is recorded at once.
 */
#ifndef MARTGATE_AUDIT_TRAIL_H
#define MARTGATE_AUDIT_TRAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/analyze.h"
#include "policy/decide.h"
#include "proxy/guard.h"

struct session;

/* Records of one request in flight (a Query, or an Execute). */
typedef struct trail_req trail_req;

void trail_session_start(struct session *s);
void trail_login_failed(struct session *s, const char *reason);
void trail_session_end(struct session *s);
/* The end user the session's last statement named in a trusted Metabase
 * remark ("metabase:7"), or NULL. */
const char *trail_end_user(const struct session *s);

/* A statement was decided. Builds its record(s): for a denial they go out at
 * once; otherwise, for 'Q', the request to attach to the queue entry is
 * returned; for 'P' the record becomes the template of statement stmt_name.
 * normalized (may be NULL) is the text's normalized form when the caller
 * has it (policy/analyze's shape). */
trail_req *trail_decided(struct session *s, char kind, const char *stmt_name, const char *sql,
                         const analysis *a, decision *d, bool denied, bool rewritten,
                         const char *deny_sqlstate, const char *deny_message,
                         const char *normalized, size_t nlen);
/* What a statement's record says of its decision (the members statement_index
 * through reason) as JSON text, malloc'd; NULL out of memory. The decision
 * memo keeps it with the statement's shape. */
char *trail_decision_members(struct session *s, size_t index, const analysis *a, decision *d,
                             const char *verdict, bool rewritten, const char *reason);
/* A statement allowed from the decision memo: its record from the members
 * memoized with its shape; placed as trail_decided places an allowed one. */
trail_req *trail_allowed(struct session *s, char kind, const char *stmt_name, const char *sql,
                         const char *members, const char *normalized, size_t nlen);
/* A statement refused before any decision (unparsable text, FunctionCall). */
void trail_refused(struct session *s, const char *sql, const char *sqlstate, const char *message);

/* An Execute of a portal (or of a cursor named as one) starts a request
 * with the template of what it runs; NULL when nothing is known of it. */
trail_req *trail_execute(struct session *s, const char *portal);

/* Templates are kept in the guard's entries (proxy/guard.h), by reference:
 * the guard takes and drops references through these operations (the
 * session hands them to guard_init) and never calls the trail itself. */
typedef struct trail_tmpl trail_tmpl;
extern const guard_tmpl_ops trail_tmpl_ops;

/* The warehouse's answers: CommandComplete ('C' with its tag), empty query
 * ('I'), PortalSuspended ('s'), ErrorResponse ('E' with its SQLSTATE). */
void trail_answer(trail_req *r, char type, const char *tag_or_sqlstate);
/* The request is over (ReadyForQuery for a Query, completion for an
 * Execute, or skipped after an error): its records go to the audit log. */
void trail_finish(struct session *s, trail_req *r);
/* The session ends with the request in flight: its unanswered statements
 * are recorded as interrupted (they may have run), not as skipped. */
void trail_interrupted(trail_req *r);
/* Frees a request without writing it (session torn down hard). */
void trail_discard(trail_req *r);

/* Per-session state: statement templates and portal bindings. */
typedef struct trail_state trail_state;
void trail_state_free(trail_state *t);

/* Rows a suspended portal returned so far (the relay counts DataRows). */
void trail_count_row(trail_req *r);

#endif
