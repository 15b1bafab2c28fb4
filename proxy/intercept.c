/*
 * intercept: policy enforcement for one session. See intercept.h; the
 * session state decisions depend on is proxy/guard's.
 */
#include "proxy/intercept.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/catalog.h"
#include "common/clock.h"
#include "policy/analyze.h"
#include "policy/decide_memo.h"
#include "common/log.h"
#include "common/textbuf.h"
#include "proxy/audit_trail.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* ---- callbacks for decide ---------------------------------------------------- */

static int guard_columns(void *ctx, const char *schema, const char *table, const char ***names, size_t *n)
{
    session *s = ctx;
    catalog_cache *c = worker_catalog(s->wk, s->database);
    if (!c)
        return -1;
    switch (catalog_cache_columns(c, schema, table, s->guard.catalog_since, names, n)) {
    case CATALOG_FOUND:
        return 0;
    case CATALOG_UNKNOWN:
        s->guard.catalog_missing = true;
        return -1;
    default:
        return -1;
    }
}

/* The warehouse's settings and functions decisions are made with (*gen:
 * its snapshot's number, part of the memo state), or NULL. */
static const warehouse_facts *session_facts(session *s, unsigned long *gen)
{
    return catalog_cache_facts(worker_catalog(s->wk, s->database), gen);
}

static bool guard_prepared(void *ctx, const char *name)
{
    const session *s = ctx;
    return guard_has_statement(&s->guard, name);
}

/* The hash mask's key of the configuration whose policy decides (NULL: none). */
static const rewrite_hash_key *session_hash_key(const session *s)
{
    return s->wk->cfg->hash_key;
}

static void session_context(const session *s, analyze_context *ctx);
static unsigned guard_prepared_rewrite(void *ctx, const char *name);

/* A decision request for one statement of this session, with everything the
 * session knows (columns, prepared statements, warehouse facts, hash key);
 * `nested`: asked from inside a decision (EXPLAIN EXECUTE's look at the
 * prepared statement), which does not look further. */
static decide_request session_request(session *s, const char *sql, const analysis *a, const decide_principal *who,
                                      bool nested)
{
    decide_request req = {
        .sql = sql, .facts = a, .who = who,
        .columns = guard_columns, .columns_ctx = s,
        .prepared = guard_prepared, .prepared_ctx = s,
        .warehouse = session_facts(s, NULL),
        .server_version = s->be ? backend_parameter(s->be, "server_version") : NULL,
        .hash_key = session_hash_key(s),
        .prepared_rewrite = nested ? NULL : guard_prepared_rewrite,
    };
    return req;
}

/* For EXPLAIN EXECUTE name: was the prepared statement forwarded rewritten,
 * with the hash mask's key? Its text is decided again: EXECUTE ran
 * current_enough first, so it is current (decided under this policy,
 * principal and search_path) and decides as when it was prepared. What
 * cannot be told counts as rewritten with the key. */
static unsigned guard_prepared_rewrite(void *ctx, const char *name)
{
    session *s = ctx;
    const unsigned unknown = DECIDE_PREPARED_REWRITTEN | DECIDE_PREPARED_KEYED;
    const guard_named *e = guard_statement(&s->guard, name);
    const policy_t *p = session_policy(s);
    if (!e || !e->text || e->unsure || e->indirect || !p)
        return unknown;
    analyze_context actx;
    session_context(s, &actx);
    analysis *a = NULL;
    analyze_error aerr;
    if (analyze_sql(e->text, &actx, &a, &aerr) != 0)
        return unknown;
    decide_request req = session_request(s, e->text, a, &s->guard.who, true);
    decision d;
    decision_init(&d);
    char err[512];
    unsigned r = unknown;
    if (decide(p, &req, &d, err, sizeof err) == 0 && d.verdict != DECIDE_DENY) {
        const rewrite_hash_key *k = session_hash_key(s);
        r = d.verdict == DECIDE_REWRITE ? DECIDE_PREPARED_REWRITTEN : 0;
        if (d.verdict == DECIDE_REWRITE && (!d.rewritten_sql || (k && strstr(d.rewritten_sql, k->ipad_hex))))
            r |= DECIDE_PREPARED_KEYED;
    }
    decision_free(&d);
    analysis_free(a);
    return r;
}

/* ---- the decision ------------------------------------------------------------ */

static void deny(intercept_result *out, const char *sqlstate, const char *hint, int position,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void deny(intercept_result *out, const char *sqlstate, const char *hint, int position,
                 const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    out->verdict = INTERCEPT_DENY;
    snprintf(out->sqlstate, sizeof out->sqlstate, "%s", sqlstate);
    out->message = strdup(msg);
    out->hint = hint ? strdup(hint) : NULL;
    out->position = position;
}

static bool has_unqualified(const analysis *a)
{
    for (size_t i = 0; i < a->n_relations; i++)
        if (!a->relations[i].qualified)
            return true;
    return false;
}

/* SET ROLE r / RESET ROLE / SET ROLE NONE as the only statement: Metabase's
 * connection impersonation. An impersonator the policy allows becomes the
 * role's principal (its groups, no claims) for the statements that follow;
 * the warehouse only records it in a custom setting, so its own roles and
 * grants are never involved. Returns true when it handled the statement. */
static bool impersonation(session *s, const policy_t *p, char kind, const char *stmt_name,
                          const char *text, const analysis *a, guard_parse *parse, intercept_result *out)
{
    session_guard *g = &s->guard;
    if (a->n_roles != 1 || a->n_stmts != 1 || a->n_relations || a->n_functions || a->n_flags ||
        a->roles[0].via_function)
        return false;
    const analysis_role_change *rc = &a->roles[0];
    const char *hint = session_deny_hint(s);
    const char *local = rc->is_local ? "LOCAL " : "";
    char sql[512];
    /* (a RESET with no role taken changes nothing, wherever it runs) */
    if ((rc->action == ANALYZE_ROLE_SET || (rc->action == ANALYZE_ROLE_RESET && g->imp_role)) &&
        (rc->is_local || s->relay.tx_status != 'I')) {
        /* a role taken inside a transaction would have to follow its
         * rollback; Metabase takes it outside one, so that is all we allow */
        deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0,
             "SET ROLE through martgate works only outside a transaction block, and not as SET LOCAL");
        trail_refused(s, text, out->sqlstate, out->message);
        return true;
    }
    if (rc->action == ANALYZE_ROLE_RESET) {
        if (g->imp_role)
            session_log(s, LOG_INFO, "impersonation of role %s ends", g->imp_role);
        free(g->imp_role);
        g->imp_role = NULL;
        g->who = g->login_who;
        guard_principal_changed(g);
        /* the same command tag as the client's own statement */
        if (a->stmts[0].tag && !strcmp(a->stmts[0].tag, "RESET"))
            snprintf(sql, sizeof sql, "RESET martgate.impersonating");
        else
            snprintf(sql, sizeof sql, "SET %smartgate.impersonating TO DEFAULT", local);
    } else if (rc->action == ANALYZE_ROLE_SET && rc->role) {
        const char *const *groups;
        size_t n;
        char why[300];
        int ok = decide_impersonation(p, &g->login_who, rc->role, &groups, &n, why, sizeof why);
        if (ok <= 0) {
            deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0, "permission denied by policy: %s", why);
            session_log(s, LOG_INFO, "denied: %s", why);
            trail_refused(s, text, out->sqlstate, out->message);
            return true;
        }
        char *lit = rewrite_quote_literal(rc->role);
        char *copy = strdup(rc->role);
        if (!lit || !copy) {
            free(lit);
            free(copy);
            deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0, "out of memory");
            return true;
        }
        snprintf(sql, sizeof sql, "SET %smartgate.impersonating = %s", local, lit);
        free(lit);
        free(g->imp_role);
        g->imp_role = copy;
        g->who.user = g->imp_role;
        g->who.groups = groups;
        g->who.n_groups = n;
        g->who.claims = NULL;
        guard_principal_changed(g);
        session_log(s, LOG_INFO, "impersonating role %s", g->imp_role);
    } else {
        return false;   /* SESSION AUTHORIZATION and the rest: decide denies */
    }
    out->verdict = INTERCEPT_REPLACE;
    out->text = strdup(sql);
    /* a Parse of it is a statement of the new principal's (for the guard) */
    if (parse)
        parse->forwarded = out->text;
    guard_statement_allowed(&s->guard, p, NULL, kind, stmt_name, text, parse);
    /* audited as the client's statement (for a Parse: its Executes) */
    s->pending_req = trail_decided(s, kind, stmt_name, text, a, NULL, false, false, NULL, NULL, NULL, 0);
    return true;
}

/* ---- prepared statements and cursors decided in another epoch -------------- */

/* What names resolve against in the session now. */
static void session_context(const session *s, analyze_context *ctx)
{
    const session_guard *g = &s->guard;
    static const char *const empty_path[] = {""};
    *ctx = (analyze_context){
        .database = s->database,
        .search_path = (const char *const *)g->effective_path.v,
        .n_search_path = g->effective_path.n,
        .reset_search_path = (const char *const *)g->startup_path.v,
        .n_reset_search_path = g->startup_path.n,
        .session_user = s->be ? backend_parameter(s->be, "session_authorization") : NULL,
    };
    if (ctx->n_search_path == 0) {   /* an empty search_path, not the default */
        ctx->search_path = empty_path;
        ctx->n_search_path = 1;
    }
}

typedef enum {
    RECHECK_RUN,        /* what the warehouse holds is what would be forwarded now */
    RECHECK_REPREPARE,  /* a protocol statement to give the warehouse again (guard_reprepared) */
    RECHECK_REFUSE,
} recheck_result;

/* A prepared statement or cursor allowed under another policy, principal or
 * search_path, or unsure, is about to run: its text is decided again, as it
 * would be now. RUN: it may run as the warehouse holds it; REPREPARE: it may
 * run once prepared again as it would be forwarded now (stmt_name: a
 * protocol-level statement, the only kind martgate can prepare again, whose
 * audit template then follows the new decision); REFUSE: why says why. */
static bool current_enough(session *s, const analysis *a, const char *sql, intercept_result *out);

/* Is each earlier text that the warehouse may still hold under e's name
 * allowed now as it was forwarded (as written: an earlier rewrite is not
 * kept)? false with why. */
static bool alternates_allowed(session *s, const guard_named *e, char *why, size_t len)
{
    const policy_t *p = session_policy(s);
    for (size_t off = 0; off < e->alts_len; off += strlen(e->alts + off) + 1) {
        const char *text = e->alts + off;
        analyze_context ctx;
        session_context(s, &ctx);
        analysis *a = NULL;
        analyze_error aerr;
        if (analyze_sql(text, &ctx, &a, &aerr) != 0) {
            snprintf(why, len, "an earlier statement of its name, which the warehouse may still hold: %s", aerr.message);
            return false;
        }
        intercept_result inner;
        memset(&inner, 0, sizeof inner);
        bool ok = current_enough(s, a, text, &inner);
        intercept_result_clear(&inner);
        decision d;
        decision_init(&d);
        char err[512];
        decide_request req = session_request(s, text, a, &s->guard.who, false);
        ok = ok && decide(p, &req, &d, err, sizeof err) == 0 && d.verdict == DECIDE_ALLOW;
        if (!ok)
            snprintf(why, len, "it was declared or prepared again over an earlier one that may not run now, and the "
                     "warehouse may still hold that one: close or deallocate it, then declare or prepare it again");
        decision_free(&d);
        analysis_free(a);
        if (!ok)
            return false;
    }
    return true;
}

static recheck_result recheck(session *s, guard_named *e, const char *stmt_name, char *why, size_t len)
{
    const policy_t *p = session_policy(s);
    if (!p) {
        guard_refresh(&s->guard, p, e);
        return RECHECK_RUN;
    }
    if (!e->text) {
        snprintf(why, len, e->unsure ? "a statement that closed it failed, so martgate cannot tell whether the "
                                       "warehouse still holds it: close it and declare or prepare it again"
                                     : "martgate could not keep its text");
        return RECHECK_REFUSE;
    }
    if (e->alts_lost && !(stmt_name && e->protocol)) {
        snprintf(why, len, "it was declared or prepared again over an earlier one that martgate could not keep, and "
                 "the warehouse may still hold that one: close or deallocate it, then declare or prepare it again");
        return RECHECK_REFUSE;
    }
    analyze_context ctx;
    session_context(s, &ctx);
    analysis *a = NULL;
    analyze_error aerr;
    if (analyze_sql(e->text, &ctx, &a, &aerr) != 0) {
        snprintf(why, len, "%s", aerr.message);
        return RECHECK_REFUSE;
    }
    /* what it runs in turn (EXECUTE p, FETCH c) must be current too */
    intercept_result inner;
    memset(&inner, 0, sizeof inner);
    if (!current_enough(s, a, e->text, &inner)) {
        snprintf(why, len, "%s", inner.message ? inner.message : "what it runs may not run now");
        intercept_result_clear(&inner);
        analysis_free(a);
        return RECHECK_REFUSE;
    }
    decide_request req = session_request(s, e->text, a, &s->guard.who, false);
    decision d;
    decision_init(&d);
    char err[512];
    recheck_result r = RECHECK_REFUSE;
    int rc = decide(p, &req, &d, err, sizeof err);
    bool rewrite = rc == 0 && d.verdict == DECIDE_REWRITE;
    const char *now = rewrite ? d.rewritten_sql : e->text;   /* what would be forwarded */
    if (rc != 0) {
        snprintf(why, len, "%s", err);
    } else if (d.verdict == DECIDE_DENY) {
        snprintf(why, len, "%s", decision_reason(&d));
    } else if (!e->unsure && !e->replaced && !strcmp(now, e->held ? e->held : e->text)) {
        guard_refresh(&s->guard, p, e);
        r = RECHECK_RUN;
    } else if (stmt_name && e->protocol) {
        guard_reprepared(&s->guard, p, e, rewrite ? now : NULL);
        r = RECHECK_REPREPARE;
    } else if (!strcmp(now, e->held ? e->held : e->text)) {
        /* unsure or replaced: the warehouse holds this text, nothing, or one
         * of the earlier ones; each may run as it was forwarded. Not made
         * current: decided again each time until the warehouse tells */
        r = alternates_allowed(s, e, why, len) ? RECHECK_RUN : RECHECK_REFUSE;
    } else {
        snprintf(why, len, "it would now be forwarded %s (a row filter or column mask applies differently): "
                 "prepare it again", rewrite ? "rewritten" : "as written");
    }
    if (r != RECHECK_REFUSE && stmt_name)
        (void)trail_decided(s, 'P', stmt_name, e->text, a, &d, false, rewrite, NULL, NULL, NULL, 0);
    decision_free(&d);
    analysis_free(a);
    return r;
}

/* A PREPARE, named Parse or DECLARE beyond what a session may keep. */
static void too_many_kept(session *s, const char *sql, intercept_result *out)
{
    deny(out, SQLSTATE_PROGRAM_LIMIT_EXCEEDED, "Deallocate or close prepared statements and cursors the session no "
         "longer needs.", 0, "this session keeps too many prepared statements and cursors (martgate's limit: %d, "
         "or %u MiB of their text)", GUARD_MAX_KEPT, GUARD_MAX_KEPT_BYTES / (1024 * 1024));
    session_log(s, LOG_WARNING, "refused: %s", out->message);
    trail_refused(s, sql, out->sqlstate, out->message);
}

/* May prepared statement (cursor: cursor) `name` run now? RUN when it is
 * current, unknown, or decided again and allowed as the warehouse holds it;
 * REPREPARE (protocol-level statements only) when it must be prepared
 * again first; REFUSE with the client's message in why, logged and audited
 * as a refusal of audit_text (NULL: the statement's own text). */
static recheck_result still_allowed(session *s, bool cursor, const char *name, bool protocol, const char *audit_text,
                                    char *why, size_t len)
{
    guard_named *e = guard_stale(&s->guard, session_policy(s), cursor, name);
    char reason[600];
    if (!e)
        return RECHECK_RUN;
    recheck_result r = recheck(s, e, protocol ? name : NULL, reason, sizeof reason);
    if (r != RECHECK_REFUSE)
        return r;
    snprintf(why, len, "permission denied by policy: %s \"%s\" was allowed under another policy, principal or "
             "search_path; it may not run now: %s", cursor ? "cursor" : "prepared statement", name, reason);
    session_log(s, LOG_INFO, "denied: %s", why);
    trail_refused(s, audit_text ? audit_text : e->text, SQLSTATE_INSUFFICIENT_PRIVILEGE, why);
    return RECHECK_REFUSE;
}

/* Does a statement of a before statement i prepare (cursor: declare), or
 * deallocate (close), the name? */
static bool analysis_names_earlier(const analysis *a, size_t i, bool cursor, const char *name)
{
    for (size_t j = 0; j < i; j++) {
        const analysis_stmt *st = &a->stmts[j];
        if (!cursor && ((st->prepare_name && !strcmp(st->prepare_name, name)) || st->deallocate_all ||
                        (st->deallocate_name && !strcmp(st->deallocate_name, name))))
            return true;
        if (cursor && st->tag && (!strcmp(st->tag, "DECLARE CURSOR") || !strcmp(st->tag, "CLOSE CURSOR")) &&
            (!st->cursor_name || !strcmp(st->cursor_name, name)))
            return true;
    }
    return false;
}

/* Every prepared statement an EXECUTE runs and every cursor a FETCH or MOVE
 * reads may run now. false with out denied otherwise. */
static bool current_enough(session *s, const analysis *a, const char *sql, intercept_result *out)
{
    for (size_t i = 0; i < a->n_stmts; i++) {
        const analysis_stmt *st = &a->stmts[i];
        bool fetch = st->cursor_name && st->tag && (!strcmp(st->tag, "FETCH") || !strcmp(st->tag, "MOVE"));
        const char *name = st->execute_name ? st->execute_name : fetch ? st->cursor_name : NULL;
        if (name && analysis_names_earlier(a, i, !st->execute_name, name))
            continue;   /* prepared or declared by this text, decided with it (or gone, and the warehouse says so) */
        if (st->execute_name && !guard_has_statement(&s->guard, name)) {
            /* every PREPARE goes through martgate: the warehouse has none of that name */
            deny(out, SQLSTATE_INVALID_SQL_STATEMENT_NAME, NULL, 0, "prepared statement \"%s\" does not exist", name);
            trail_refused(s, sql, out->sqlstate, out->message);
            return false;
        }
        char why[1024];
        if (name && still_allowed(s, !st->execute_name, name, false, sql, why, sizeof why) != RECHECK_RUN) {
            deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, session_deny_hint(s), 0, "%s", why);
            return false;
        }
    }
    return true;
}

intercept_bind_result intercept_bind(session *s, const char *portal, const char *stmt, const char **sqlstate,
                                     char *why, size_t len)
{
    if (s->guard.ready) {
        const guard_named *e = guard_statement(&s->guard, stmt);
        if (!e || (!e->text && e->unsure)) {
            /* the warehouse answers the same, unless it kept what the
             * guard saw closed (a Close or DEALLOCATE that failed) */
            *sqlstate = SQLSTATE_INVALID_SQL_STATEMENT_NAME;
            if (*stmt)
                snprintf(why, len, "prepared statement \"%s\" does not exist", stmt);
            else
                snprintf(why, len, "unnamed prepared statement does not exist");
            return INTERCEPT_BIND_REFUSE;
        }
        *sqlstate = SQLSTATE_INSUFFICIENT_PRIVILEGE;
        switch (still_allowed(s, false, stmt, true, NULL, why, len)) {
        case RECHECK_REFUSE:
            return INTERCEPT_BIND_REFUSE;
        case RECHECK_REPREPARE:
            return INTERCEPT_BIND_REPREPARE;
        case RECHECK_RUN:
            break;
        }
    }
    guard_on_bind(&s->guard, session_policy(s), portal, stmt);
    return INTERCEPT_BIND_GO;
}

bool intercept_execute(session *s, const char *portal, char *why, size_t len)
{
    if (s->guard.ready) {
        /* a portal may be a cursor DECLAREd earlier */
        if (*portal && still_allowed(s, true, portal, false, NULL, why, len) != RECHECK_RUN)
            return false;
        guard_named *p = guard_portal(&s->guard, portal);   /* one lookup for both checks */
        if (!guard_portal_current(&s->guard, session_policy(s), p)) {
            snprintf(why, len, "permission denied by policy: portal \"%s\" was bound under another policy or "
                     "principal; bind it again", portal);
            session_log(s, LOG_INFO, "denied: %s", why);
            trail_refused(s, NULL, SQLSTATE_INSUFFICIENT_PRIVILEGE, why);
            return false;
        }
        /* what its statement does by name happens now (a Parse'd PREPARE,
         * DEALLOCATE, DECLARE, CLOSE or DISCARD) */
        if (p && p->names_effects && p->text) {
            char *text = strdup(p->text);
            analyze_context ctx;
            session_context(s, &ctx);
            analysis *a = NULL;
            analyze_error aerr;
            if (text && analyze_sql(text, &ctx, &a, &aerr) == 0)
                guard_statement_allowed(&s->guard, session_policy(s), a, 'Q', NULL, text, NULL);
            analysis_free(a);
            free(text);
        }
    }
    guard_on_execute(&s->guard, portal);
    return true;
}

/* ---- the decision memo ------------------------------------------------------ */

static void state_str(textbuf *b, const char *v)
{
    /* a tag byte, so that NULL, "" and any text stay distinct */
    textbuf_addn(b, v ? "s" : "n", 1);
    if (v)
        textbuf_addn(b, v, strlen(v) + 1);
}

static void state_list(textbuf *b, const char *const *v, size_t n)
{
    textbuf_addn(b, &n, sizeof n);
    for (size_t i = 0; i < n; i++)
        state_str(b, v[i]);
}

/* Everything but the text that a decision depends on, as bytes: the policy
 * (by serial), the principal decisions are made for, the effective
 * search_path and what names resolve against. The decision memo's entries
 * hold only in the state they were made in. */
static bool memo_enter_state(session *s, const policy_t *p)
{
    session_guard *g = &s->guard;
    char bytes[2048];
    textbuf b = textbuf_fixed(bytes, sizeof bytes);   /* overflowed: no memo for this state */
    uint64_t serial = policy_serial(p);
    textbuf_addn(&b, &serial, sizeof serial);
    unsigned long facts = 0;   /* the functions PUBLIC may not execute decide calls */
    (void)session_facts(s, &facts);
    textbuf_addn(&b, &facts, sizeof facts);
    textbuf_addn(&b, &g->who.claims, sizeof g->who.claims);
    state_str(&b, g->who.user);
    state_list(&b, g->who.groups, g->who.n_groups);
    state_str(&b, g->imp_role);
    state_str(&b, s->database);
    state_str(&b, s->be ? backend_parameter(s->be, "session_authorization") : NULL);
    state_list(&b, (const char *const *)g->effective_path.v, g->effective_path.n);
    return !b.oom && decide_memo_state(&g->memo, bytes, b.len);
}

static void decide_statement(session *s, const policy_t *p, char kind, const char *stmt_name, const char *sql,
                             guard_parse *parse, const analyze_shape *memo, const analyze_shape *shape,
                             intercept_result *out);

/* May a decision of shape `shape` go into the memo? Once the session has a
 * memo, yes; the first one only when its shape comes a second time in a
 * row (a session that runs one statement and idles keeps no memo). */
static bool memo_may_start(session *s, const policy_t *p, const analyze_shape *shape)
{
    session_guard *g = &s->guard;
    if (g->memo)
        return true;
    if (g->memo_first != shape->hash) {
        g->memo_first = shape->hash;
        return false;
    }
    return memo_enter_state(s, p);
}

/* Allowed as written, as the memo says: no statement of it changes state. */
static void allowed_by_memo(session *s, const policy_t *p, char kind, const char *stmt_name, const char *sql,
                            const guard_parse *parse, const decide_memo_hit *hit)
{
    guard_statement_allowed(&s->guard, p, NULL, kind, stmt_name, sql, parse);
    s->pending_req = trail_allowed(s, kind, stmt_name, sql, hit->note, hit->normalized, hit->normalized_len);
}

static void intercept_decide(session *s, char kind, const char *stmt_name, const char *sql,
                             const unsigned char *types, size_t types_len, intercept_result *out);

/* Decides, and counts the decision and its time (metrics) once it is made. */
void intercept_statement(session *s, char kind, const char *stmt_name, const char *sql,
                         const unsigned char *types, size_t types_len, intercept_result *out)
{
    double t0 = clock_mono_s();
    intercept_decide(s, kind, stmt_name, sql, types, types_len, out);
    metrics_block *m = &s->wk->metrics;
    switch (out->verdict) {
    case INTERCEPT_ALLOW: m->statements[s->metrics_db][MG_DECISION_ALLOW]++; s->last_decision = "allow"; break;
    case INTERCEPT_REPLACE: m->statements[s->metrics_db][MG_DECISION_REWRITE]++; s->last_decision = "rewrite"; break;
    case INTERCEPT_DENY: m->statements[s->metrics_db][MG_DECISION_DENY]++; s->last_decision = "deny"; break;
    default: return;   /* it waits, and is decided again */
    }
    metrics_observe_decide(m, clock_mono_s() - t0);
}

static void intercept_decide(session *s, char kind, const char *stmt_name, const char *sql,
                             const unsigned char *types, size_t types_len, intercept_result *out)
{
    memset(out, 0, sizeof *out);
    guard_parse parse_msg = {types, types_len, NULL};
    guard_parse *parse = kind == 'P' ? &parse_msg : NULL;
    switch (audit_room(s->wk->audit)) {
    case AUDIT_OK:
        break;
    case AUDIT_FULL_WAIT:
        out->verdict = INTERCEPT_WAIT_AUDIT;   /* the session waits; nothing is lost */
        return;
    case AUDIT_FULL_DENY:
        deny(out, "53400", NULL, 0, "the audit log is not keeping up: statement refused "
             "(audit.when_full = deny); try again in a moment");
        session_log(s, LOG_WARNING, "statement refused: the audit queue is full");
        return;
    }
    const policy_t *p = session_policy(s);
    if (!p) {
        /* no policy configured: martgate is a plain authenticating proxy */
        guard_statement_allowed(&s->guard, p, NULL, kind, stmt_name, sql, parse);
        s->pending_req = trail_decided(s, kind, stmt_name, sql, NULL, NULL, false, false, NULL, NULL, NULL, 0);
        return;
    }
    session_guard *g = &s->guard;
    const char *hint = session_deny_hint(s);
    if (!g->ready) {
        deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0,
             "this session started before martgate's policy was loaded; reconnect");
        return;
    }
    size_t len = strlen(sql);
    if (kind == 'P' && stmt_name && *stmt_name && guard_full(g, 1, len)) {
        too_many_kept(s, sql, out);
        return;
    }
    /* a text of a shape decided before in this state: allowed as written */
    /* until a session keeps a decision it has no memo (an idle session
     * costs less): nothing to find, and the first shape to keep must come
     * twice (see decide_statement) */
    bool memo = !g->memo || memo_enter_state(s, p);
    decide_memo_hit hit;
    if (memo && g->memo && decide_memo_find_text(g->memo, sql, len, &hit)) {
        allowed_by_memo(s, p, kind, stmt_name, sql, parse, &hit);
        return;
    }
    analyze_shape shape;
    bool shaped = analyze_shape_of(sql, &shape, NULL) == 0;
    memo = memo && shaped && shape.decidable;
    if (memo && g->memo && decide_memo_find(g->memo, &shape, sql, len, &hit))
        allowed_by_memo(s, p, kind, stmt_name, sql, parse, &hit);
    else
        decide_statement(s, p, kind, stmt_name, sql, parse, memo ? &shape : NULL, shaped ? &shape : NULL, out);
    if (shaped)
        analyze_shape_clear(&shape);
}

/* Analysis and decision of a text the memo does not know. memo: the shape
 * to keep an allowed decision under (NULL: none); shape: the text's shape
 * when the scanner read it (NULL: it did not). */
static void decide_statement(session *s, const policy_t *p, char kind, const char *stmt_name, const char *sql,
                             guard_parse *parse, const analyze_shape *memo, const analyze_shape *shape,
                             intercept_result *out)
{
    session_guard *g = &s->guard;
    const char *hint = session_deny_hint(s);
    analyze_context ctx;
    session_context(s, &ctx);
    analysis *a = NULL;
    analyze_error aerr;
    if (analyze_sql(sql, &ctx, &a, &aerr) != 0) {
        /* what our parser cannot read is not forwarded (fail closed) */
        deny(out, aerr.sqlstate[0] ? aerr.sqlstate : "42601", aerr.hint[0] ? aerr.hint : NULL,
             aerr.cursor_position, "%s", aerr.message);
        out->parser = aerr.parser;
        trail_refused(s, sql, out->sqlstate, aerr.message);
        return;
    }
    /* a search_path change inside this text: later statements may resolve
     * against either value, so analyse them against both */
    bool sets_path = false;
    for (size_t i = 0; i < a->n_settings; i++)
        if (a->settings[i].name && !strcmp(a->settings[i].name, "search_path") && a->settings[i].schemas)
            sets_path = true;
    if (sets_path && a->n_stmts > 1 && has_unqualified(a)) {
        schema_list wide = {0};
        bool complete = schema_list_copy(&wide, &g->effective_path) == 0;
        for (size_t i = 0; complete && i < a->n_settings; i++)
            for (size_t k = 0; complete && a->settings[i].schemas && k < a->settings[i].n_schemas; k++)
                complete = schema_list_add(&wide, a->settings[i].schemas[k]) == 0;
        if (!complete) {
            /* a narrower path than the statement may use: refuse it */
            schema_list_clear(&wide);
            analysis_free(a);
            deny(out, SQLSTATE_OUT_OF_MEMORY, NULL, 0, "out of memory while analysing the statement");
            trail_refused(s, sql, out->sqlstate, "out of memory");
            return;
        }
        ctx.search_path = (const char *const *)wide.v;
        ctx.n_search_path = wide.n;
        analysis_free(a);
        a = NULL;
        int rc = analyze_sql(sql, &ctx, &a, &aerr);
        schema_list_clear(&wide);
        if (rc != 0) {
            deny(out, aerr.sqlstate[0] ? aerr.sqlstate : "42601", aerr.hint[0] ? aerr.hint : NULL,
                 aerr.cursor_position, "%s", aerr.message);
            out->parser = aerr.parser;
            trail_refused(s, sql, out->sqlstate, aerr.message);
            return;
        }
    }
    if (!current_enough(s, a, sql, out)) {
        analysis_free(a);
        return;
    }
    size_t keeps = 0, kept_bytes = 0;
    for (size_t i = 0; i < a->n_stmts; i++)
        if (a->stmts[i].prepare_name || (a->stmts[i].cursor_name && !strcmp(a->stmts[i].tag, "DECLARE CURSOR"))) {
            keeps++;
            kept_bytes += (size_t)a->stmts[i].length;
        }
    if (keeps && guard_full(g, keeps, kept_bytes)) {
        too_many_kept(s, sql, out);
        analysis_free(a);
        return;
    }
    if (impersonation(s, p, kind, stmt_name, sql, a, parse, out)) {
        analysis_free(a);
        return;
    }
    decide_request req = session_request(s, sql, a, &g->who, false);
    decision dec;   /* this statement's only: an idle session keeps none of it */
    decision_init(&dec);
    char err[512];
    g->catalog_missing = false;
    int rc = decide(p, &req, &dec, err, sizeof err);
    if (rc != 0) {
        session_log(s, LOG_ERROR, "decision failed: %s", err);
        deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0, "martgate could not decide on this statement: %s", err);
    } else if (dec.verdict == DECIDE_DENY && g->catalog_missing) {
        /* a masked table the catalog snapshot does not know yet: read it, then decide again */
        if (g->catalog_since == 0)
            g->catalog_since = catalog_now();
        out->verdict = INTERCEPT_WAIT;
    } else if (dec.verdict == DECIDE_DENY) {
        const char *reason = decision_reason(&dec);
        const char *dataset = dec.deciding < dec.n_items ? dec.items[dec.deciding].dataset : NULL;
        s->wk->metrics.denials[metrics_name(&s->wk->srv->metric_datasets, dataset)]++;
        deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0, "permission denied by policy: %s", reason);
        if (dec.rule_id) {
            char detail[300];
            snprintf(detail, sizeof detail, "Decided by rule \"%s\".", dec.rule_id);
            out->detail = strdup(detail);
        }
        session_log(s, LOG_INFO, "denied: %s", reason);
    } else {
        if (dec.verdict == DECIDE_REWRITE) {
            out->verdict = INTERCEPT_REPLACE;
            out->text = strdup(dec.rewritten_sql);
            if (!out->text)
                deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0, "out of memory rewriting the statement");
        }
        if (out->verdict != INTERCEPT_DENY) {
            if (parse)
                parse->forwarded = out->text;
            guard_statement_allowed(&s->guard, p, a, kind, stmt_name, sql, parse);
        }
    }
    if (out->verdict != INTERCEPT_WAIT) {
        g->catalog_since = 0;
        if (rc != 0) {
            trail_refused(s, sql, out->sqlstate, out->message);
        } else if (memo && out->verdict == INTERCEPT_ALLOW && decide_memo_keeps(a, &dec) &&
                   memo_may_start(s, p, memo)) {
            /* the next text of this shape is allowed without a parse */
            bool audited = audit_enabled(s->wk->audit);
            char *members = audited ? trail_decision_members(s, 0, a, &dec, "allow", false,
                                                             decision_reason(&dec))
                                    : NULL;
            if (members || !audited)
                decide_memo_put(g->memo, memo, sql, strlen(sql), members);
            s->pending_req = trail_allowed(s, kind, stmt_name, sql, members, shape->normalized, shape->normalized_len);
            free(members);
        } else {
            s->pending_req = trail_decided(s, kind, stmt_name, sql, a, &dec, out->verdict == INTERCEPT_DENY,
                                           out->verdict == INTERCEPT_REPLACE, out->sqlstate, out->message,
                                           shape ? shape->normalized : NULL, shape ? shape->normalized_len : 0);
        }
    }
    decision_free(&dec);
    analysis_free(a);
}

void intercept_result_clear(intercept_result *r)
{
    free(r->text);
    free(r->message);
    free(r->detail);
    free(r->hint);
    memset(r, 0, sizeof *r);
}
