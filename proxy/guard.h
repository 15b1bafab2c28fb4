/*
 * guard: the session state that could widen access and that statements
 * change: the principal decisions are made for (impersonation), the
 * effective search_path, and the prepared statements and portals that change
 * search_path when they run.
 *
 * search_path is tracked without trusting guesses: a statement that may
 * change it makes the tracked value the union of everything it could now be
 * (the old value and every new one; decide requires every candidate schema
 * of an unqualified name to agree), and the relay asks the warehouse (SHOW
 * search_path, answered to martgate only) once the client's statement has
 * run; the answer replaces the union. Transaction ends that may undo a change
 * do the same. A statement that changes search_path need not run when it is
 * decided: a PREPARE, or a Parse, runs at each EXECUTE or protocol Execute,
 * so the guard keeps what each prepared statement (by name, the unnamed one
 * too) and each portal bound from one would do, and applies it when it runs.
 *
 * The guard is told what the relay forwards and what the warehouse answers,
 * and never calls back: what it needs done it leaves in its state for the
 * caller (proxy/relay) to carry out after each call: ask the warehouse for
 * search_path (guard_wants_search_path), keep the names a statement touches
 * with its request (session_guard.touched), end the session when the guard
 * can no longer follow it (session_guard.lost). It knows the session only
 * through session_guard and the policy a call is made under.
 */
#ifndef MARTGATE_GUARD_H
#define MARTGATE_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/analyze.h"
#include "policy/decide.h"
#include "proxy/schema_list.h"

/* What running a statement may do to search_path. */
typedef struct {
    bool changes;
    schema_list schemas;     /* values it may set */
    bool to_startup;         /* RESET, SET ... TO DEFAULT, RESET ALL, DISCARD ALL */
    bool incomplete;         /* out of memory while recording it: the path cannot be known */
} path_effect;

/* What a decision was made for: the policy (by serial), the principal (a
 * counter bumped at each impersonation change) and the effective search_path
 * (the server parses a prepared statement again when it has changed). A
 * prepared statement or cursor allowed under another epoch is decided again
 * before it runs. */
typedef struct {
    uint64_t policy;
    uint32_t who;
    char *path;              /* the search_path, as guard.c encodes it (owned) */
    size_t path_len;
} guard_epoch;

struct trail_tmpl;

/* The audit trail's templates, kept in the entries below by reference: the
 * guard shares and drops references through these (the session sets them;
 * proxy/audit_trail's trail_tmpl_ref and trail_tmpl_release) and never
 * looks inside. */
typedef struct {
    struct trail_tmpl *(*ref)(struct trail_tmpl *t);
    void (*release)(struct trail_tmpl *t);
} guard_tmpl_ops;

/* A prepared statement, cursor or portal of the session: its effect on
 * search_path and the audit template of what it runs (proxy/audit_trail;
 * a reference); statements and cursors also keep their text and the epoch
 * they were allowed in. */
typedef struct {
    char *name;
    path_effect effect;
    char *text;              /* statements and cursors: the text decided (the client's) */
    size_t text_len;
    guard_epoch epoch;
    struct trail_tmpl *tmpl; /* NULL: not audited (auditing off, or unknown) */
    /* protocol-level statements (Parse): what the warehouse holds, so that
     * martgate can prepare it again under the same name */
    bool protocol;
    bool unsure;             /* a Parse or Close of the name failed or was skipped (see guard_outcome) */
    bool replaced;           /* it was prepared or declared again over an earlier one: until the
                              * warehouse says it took the new one, it may hold one of `alts` */
    char *alts;              /* the earlier texts of the name, each NUL-terminated (alts_len bytes
                              * in all, at most GUARD_MAX_ALTS of them), or NULL */
    size_t alts_len;
    unsigned n_alts;
    bool alts_lost;          /* more than GUARD_MAX_ALTS, or out of memory: they cannot be decided */
    bool indirect;           /* it runs another: EXECUTE, FETCH or MOVE (decided again at each Bind) */
    bool names_effects;      /* running it prepares, deallocates, declares or closes by name, or DISCARDs */
    uint64_t bound_policy;   /* portals: the policy and principal it was bound under */
    uint32_t bound_who;
    char *held;              /* the text forwarded, when not `text` (a rewrite) */
    unsigned char *types;    /* the Parse's parameter count and type OIDs, as sent */
    size_t held_len, types_len;
} guard_named;

/* Entries by name (guard_names.c): a dense array and a hash index,
 * allocated when its first entry is added and freed when its last is
 * dropped, so a session with no names holds a NULL pointer (NULL is the
 * empty table: find returns NULL, drop and free do nothing). Pointers to
 * entries hold until the table changes, and a drop that empties it frees
 * the table itself: hold neither across one. */
typedef struct {
    guard_named *v;
    size_t n, cap;
    uint32_t *slots;
    size_t nslots;
    size_t text_bytes;       /* of the texts kept */
    const guard_tmpl_ops *tmpl_ops; /* NULL: entries hold no template */
} guard_names;

guard_named *guard_names_find(const guard_names *t, const char *name);
/* Finds name in *tp, or adds an empty entry for it, allocating the table
 * (with tmpl_ops, which release its entries' templates) when *tp is NULL;
 * NULL out of memory (then a table allocated for it is freed again). */
guard_named *guard_names_add(guard_names **tp, const guard_tmpl_ops *tmpl_ops, const char *name)
    __attribute__((warn_unused_result));
/* Drops name (every name when NULL), releasing what its entry holds; when
 * none is left the table is freed and *tp set to NULL. */
void guard_names_drop(guard_names **tp, const char *name);
/* Drops every name (and so the table). */
void guard_names_free(guard_names **tp);

/* What one session may keep of prepared statements and cursors (their texts
 * are decided again when they run in another epoch); beyond it a PREPARE,
 * named Parse or DECLARE is refused with SQLSTATE 54000. pgjdbc keeps 256
 * statements and 5 MiB by default. */
#define GUARD_MAX_KEPT 10000
/* Earlier texts kept of one name that the warehouse may still hold. */
#define GUARD_MAX_ALTS 4
#define GUARD_MAX_KEPT_BYTES (64u * 1024 * 1024)

typedef struct session_guard session_guard;
/* Writes the prefix of the guard's log lines (its session's) into buf. */
typedef void (*guard_prefix_fn)(const session_guard *g, char *buf, size_t len);

/* The per-session state decisions depend on. */
struct session_guard {
    decide_principal who;            /* whom statements are decided for now */
    decide_principal login_who;      /* who logged in (the token's principal) */
    char *imp_role;                  /* SET ROLE taken by an impersonator, or NULL */
    schema_list startup_path;        /* what RESET search_path goes back to */
    schema_list committed_path;      /* outside any transaction */
    schema_list effective_path;      /* what the server uses now */
    /* Allocated with their first entry, NULL while empty (see guard_names). */
    guard_names *statements;         /* prepared statements allowed (SQL and protocol; "" unnamed) */
    guard_names *cursors;            /* cursors declared (DECLARE), by name */
    guard_names *portals;            /* portals bound (Bind), until their transaction ends */
    struct decide_memo *memo;        /* decisions kept by statement shape (policy/decide_memo.h) */
    uint64_t memo_first;             /* until there is one: the hash of the last shape it could keep */
    double catalog_since;            /* WAIT: the snapshot must be newer than this */

    guard_prefix_fn log_prefix;      /* the session's, for the guard's log lines (NULL: none) */
    const guard_tmpl_ops *tmpl_ops;
    uint32_t path_changes;           /* bumped at each change the guard applies */
    uint32_t who_serial;             /* bumped whenever `who` changes */
    bool ready;                      /* principal filled in at login */
    bool tx_path_changed;            /* any search_path change in the open transaction */
    bool catalog_missing;
    /* What the caller carries out after a call (see the top of this file). */
    bool learn_wanted;               /* ask the warehouse for search_path once idle */
    uint32_t learn_mark;             /* path_changes when it was asked */
    /* The statement and cursor names the statements just allowed prepare,
     * deallocate, declare or close, each 'S' or 'K', the name, NUL; the
     * relay keeps them with the request (proxy/relay_queue) and tells
     * guard_outcome_failed of each if the request fails, then empties this
     * (touched_len = 0). */
    char *touched;
    size_t touched_len, touched_cap;
    /* Set when the guard can no longer follow the session (out of memory):
     * names would resolve against what it does not know, so the session
     * ends (FATAL, SQLSTATE 53200) with this message. Never cleared. */
    const char *lost;
};

/* Before anything else: how the session's log prefix is written and the
 * template operations (NULL: no audit templates). */
void guard_init(session_guard *g, guard_prefix_fn log_prefix, const guard_tmpl_ops *tmpl_ops);
void guard_free(session_guard *g);

/* Login: fills the principal (who; its strings must outlive the session)
 * and the starting search_path under policy p: the client's own (asked,
 * from the startup packet; every schema of it must be readable) or the
 * policy's. Returns 0, or -1 with a message for the client.
 * *search_path_text (malloc'ed) is what the warehouse session starts with,
 * as SET syntax; NULL when no policy is loaded (then the guard is not
 * ready and nothing is decided). */
int guard_login(session_guard *g, const policy_t *p, const decide_principal *who, const char *asked,
                char **search_path_text, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Does the session have prepared statement `name` (EXECUTE is decided by it)? */
bool guard_has_statement(const session_guard *g, const char *name);

/* Would keeping n more prepared statements or cursors of `bytes` bytes of
 * text in all cross the limits above? */
bool guard_full(const session_guard *g, size_t n, size_t bytes);

/* The prepared statement (cursors: the cursor) `name` when it was allowed
 * in another epoch than now, is unsure, or runs another prepared statement
 * or cursor (which may be stale): it must be decided again before it runs.
 * NULL when it is current or unknown. */
guard_named *guard_stale(session_guard *g, const policy_t *pol, bool cursor, const char *name);
/* It was decided again and may run: it is current now. */
void guard_refresh(session_guard *g, const policy_t *pol, guard_named *n);

/* A Parse message being decided: what the warehouse is given besides the
 * statement's name and the client's text. */
typedef struct {
    const unsigned char *types;   /* parameter count and type OIDs, as in the message */
    size_t types_len;
    const char *forwarded;        /* the text forwarded in place of the client's (a rewrite), or NULL */
} guard_parse;

/* An allowed Query ('Q') or Parse ('P', statement stmt_name, parse) of text
 * sql with analysis a: what its statements do as they run (search_path,
 * transaction ends, DISCARD ALL), and the prepared statements and cursors
 * it creates, runs or drops. a == NULL: a statement with none of these
 * (one the decision memo allowed). */
void guard_statement_allowed(session_guard *g, const policy_t *pol, const analysis *a, char kind,
                             const char *stmt_name, const char *sql, const guard_parse *parse);

/* The guard follows Parse and Close at once, as the relay forwards them; the
 * warehouse may then fail one, or skip it after an earlier error of its
 * batch, and a Query's PREPARE or DEALLOCATE may not run when an earlier
 * statement of it fails. Then the warehouse may hold under that statement
 * (what 'S') or cursor ('K') name something other than the guard knows, or
 * something the guard dropped: the name is marked unsure (kept with no text
 * when the guard had dropped it). An unsure statement is prepared again
 * before a Bind of it runs; an unsure SQL statement or cursor is decided
 * again from its text and every earlier text it may still hold (alts), and
 * refused when one of them may not run, or when it has no text. */
void guard_outcome_failed(session_guard *g, char what, const char *name);
/* A request that named statement ('S') or cursor ('K') `name` did what it
 * asked: a PREPARE, Parse or DECLARE of it took, so the warehouse holds the
 * text the guard has and none of the earlier ones. */
void guard_outcome_ok(session_guard *g, char what, const char *name);
/* Must the warehouse's statement `name` be closed before a Parse of that
 * name goes on (the name is unsure)? */
bool guard_parse_needs_close(const session_guard *g, const char *name);
/* Prepared statement e was decided again before a Bind and is prepared
 * again under its name (martgate's Close and Parse go first) with the text
 * forwarded now (NULL: its own). */
void guard_reprepared(session_guard *g, const policy_t *pol, guard_named *e, const char *forwarded);
/* The principal changed (impersonation): decisions made before are stale. */
void guard_principal_changed(session_guard *g);

/* The extended protocol, as the relay forwards it. A Query message destroys
 * the unnamed statement and portal; Bind ties a portal to a statement (and
 * to its audit template); Execute runs a portal; Close ('S' or 'P') drops
 * one. */
void guard_on_query_message(session_guard *g);
void guard_on_bind(session_guard *g, const policy_t *pol, const char *portal, const char *stmt);
void guard_on_execute(session_guard *g, const char *portal);
/* Was portal p (guard_portal; NULL: unknown to the guard) bound under the
 * policy and principal of now? A portal bound before a reload or an
 * impersonation change may not run on. */
bool guard_portal_current(const session_guard *g, const policy_t *pol, const guard_named *p);
void guard_on_close(session_guard *g, char what, const char *name);

/* The entries the audit trail keeps its templates in: the prepared statement
 * `name` (cursor: the cursor, portal: the portal), NULL when unknown. */
guard_named *guard_statement(const session_guard *g, const char *name);
guard_named *guard_cursor(const session_guard *g, const char *name);
guard_named *guard_portal(const session_guard *g, const char *name);

/* Every ReadyForQuery: a transaction end may undo a search_path change, and
 * outside a transaction no portal is left (but WITH HOLD cursors). */
void guard_on_ready_for_query(session_guard *g, char previous, char status);
/* The round trip that learns the real search_path after a change: the
 * relay sends GUARD_SEARCH_PATH_QUERY (its answers go to martgate only)
 * when the guard wants it and nothing is in flight, says it did
 * (guard_search_path_asked), and hands over the value of its one row, or
 * NULL when there was none, at its ReadyForQuery (status tx_status). An
 * answer to a question asked before a later change is not taken: the guard
 * wants another. */
#define GUARD_SEARCH_PATH_QUERY "SHOW search_path"
bool guard_wants_search_path(const session_guard *g);
void guard_search_path_asked(session_guard *g);
void guard_search_path_answer(session_guard *g, const char *value, char tx_status);

#endif
