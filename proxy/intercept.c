/*
 * intercept: policy enforcement for one session. See intercept.h.
 *
 * search_path is tracked without trusting guesses: a statement that may
 * change it makes the tracked value the union of everything it could now be
 * (the old value and every new one; decide requires every candidate schema
 * of an unqualified name to agree), and the relay asks the warehouse
 * (SHOW search_path, answered to martgate only) after the client's
 * statement; the answer replaces the union. Transaction ends that may undo a
 * change do the same.
 */
#include "proxy/intercept.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/catalog.h"
#include "policy/analyze.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"

/* ---- schema lists ---------------------------------------------------------- */

static void list_clear(schema_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static bool list_has(const schema_list *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

static int list_add(schema_list *l, const char *s)
{
    if (list_has(l, s))
        return 0;
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static int list_set(schema_list *l, const char *const *v, size_t n)
{
    list_clear(l);
    for (size_t i = 0; i < n; i++)
        if (list_add(l, v[i]) != 0)
            return -1;
    return 0;
}

static int list_copy(schema_list *dst, const schema_list *src)
{
    return list_set(dst, (const char *const *)src->v, src->n);
}

static int list_union(schema_list *dst, const schema_list *src)
{
    for (size_t i = 0; i < src->n; i++)
        if (list_add(dst, src->v[i]) != 0)
            return -1;
    return 0;
}

/* Splits a search_path value as SHOW prints it: identifiers separated by
 * commas, double-quoted ones with "" for a quote. */
int guard_parse_search_path(const char *text, schema_list *out)
{
    list_clear(out);
    const char *p = text;
    char buf[256];
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t n = 0;
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"')
                    p++;
                if (n + 1 >= sizeof buf)
                    return -1;
                buf[n++] = *p++;
            }
            if (*p != '"')
                return -1;
            p++;
        } else {
            while (*p && *p != ',' && *p != ' ') {
                if (n + 1 >= sizeof buf)
                    return -1;
                buf[n++] = *p++;
            }
        }
        buf[n] = 0;
        if (n && list_add(out, buf) != 0)
            return -1;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return 0;
}

/* ---- callbacks for decide ---------------------------------------------------- */

static const policy_t *current_policy(const session *s)
{
    return s->srv->cfg->policy;
}

static int guard_columns(void *ctx, const char *schema, const char *table, const char ***names, size_t *n)
{
    session *s = ctx;
    catalog_cache *c = server_catalog(s->srv, s->database);
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

static bool guard_prepared(void *ctx, const char *name)
{
    session *s = ctx;
    for (size_t i = 0; i < s->guard.n_prepared; i++)
        if (strcmp(s->guard.prepared[i], name) == 0)
            return true;
    return false;
}

static void prepared_add(session_guard *g, const char *name)
{
    for (size_t i = 0; i < g->n_prepared; i++)
        if (strcmp(g->prepared[i], name) == 0)
            return;
    if (g->n_prepared == g->cap_prepared) {
        size_t cap = g->cap_prepared ? g->cap_prepared * 2 : 8;
        char **v = realloc(g->prepared, cap * sizeof *v);
        if (!v)
            return;
        g->prepared = v;
        g->cap_prepared = cap;
    }
    char *copy = strdup(name);
    if (copy)
        g->prepared[g->n_prepared++] = copy;
}

static void prepared_remove(session_guard *g, const char *name)
{
    for (size_t i = 0; i < g->n_prepared; i++)
        if (!name || strcmp(g->prepared[i], name) == 0) {
            free(g->prepared[i]);
            g->prepared[i] = g->prepared[--g->n_prepared];
            if (name)
                return;
            i--;
        }
}

/* ---- login ---------------------------------------------------------------- */

int guard_login(session *s, char **search_path_text, char *err, size_t errlen)
{
    session_guard *g = &s->guard;
    *search_path_text = NULL;
    const policy_t *p = current_policy(s);
    if (!p)
        return 0;
    g->who.user = s->ident.user ? s->ident.user : s->user;
    g->who.groups = (const char *const *)s->ident.groups;
    g->who.n_groups = s->ident.ngroups;
    g->who.claims = s->ident.claims;
    g->login_who = g->who;
    decision_init(&g->dec);
    const char *asked = pgw_startup_get(&s->startup, "search_path");
    if (asked) {
        /* the client's own (pgjdbc currentSchema): every schema must be readable */
        if (guard_parse_search_path(asked, &g->startup_path) != 0) {
            snprintf(err, errlen, "invalid search_path in the startup packet");
            return -1;
        }
        for (size_t i = 0; i < g->startup_path.n; i++)
            if (!decide_schema_readable(p, &g->who, g->startup_path.v[i])) {
                snprintf(err, errlen, "search_path schema \"%s\" is not readable under martgate's policy",
                         g->startup_path.v[i]);
                return -1;
            }
        *search_path_text = strdup(asked);
    } else {
        const char **schemas = NULL;
        size_t n = 0;
        if (decide_search_path(p, &g->who, &schemas, &n) != 0 ||
            list_set(&g->startup_path, schemas, n) != 0) {
            free(schemas);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(schemas);
        *search_path_text = decide_search_path_text(p, &g->who);
        if (!*search_path_text) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (list_copy(&g->committed_path, &g->startup_path) != 0 ||
        list_copy(&g->effective_path, &g->startup_path) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->ready = true;
    return 0;
}

void guard_free(session_guard *g)
{
    list_clear(&g->startup_path);
    list_clear(&g->committed_path);
    list_clear(&g->effective_path);
    list_clear(&g->tx_session_path);
    prepared_remove(g, NULL);
    free(g->prepared);
    free(g->imp_role);
    if (g->ready)
        decision_free(&g->dec);
    memset(g, 0, sizeof *g);
}

/* ---- effects of an allowed statement --------------------------------------- */

static bool is_tx_end(const char *tag)
{
    return !strcmp(tag, "COMMIT") || !strcmp(tag, "ROLLBACK") || !strcmp(tag, "END") ||
           !strcmp(tag, "ABORT") || !strncmp(tag, "ROLLBACK", 8) || !strncmp(tag, "PREPARE TRANSACTION", 19) ||
           !strcmp(tag, "RELEASE") || !strcmp(tag, "COMMIT PREPARED");
}

/* Widens the tracked search_path by what the statements of `a` may set and
 * asks the relay to learn the real value afterwards. */
static void apply_effects(session *s, const analysis *a, char kind, const char *stmt_name)
{
    session_guard *g = &s->guard;
    bool changes = false;
    for (size_t i = 0; i < a->n_settings; i++) {
        const analysis_setting *st = &a->settings[i];
        bool sp = st->name && !strcmp(st->name, "search_path");
        bool all = st->action == ANALYZE_SET_RESET_ALL ||
                   (st->action == ANALYZE_SET_DISCARD && st->name && !strcmp(st->name, "all"));
        if (!sp && !all)
            continue;
        changes = true;
        if (st->action == ANALYZE_SET_VALUE && st->schemas) {
            for (size_t k = 0; k < st->n_schemas; k++)
                list_add(&g->effective_path, st->schemas[k]);
        } else {
            list_union(&g->effective_path, &g->startup_path);
        }
    }
    for (size_t i = 0; i < a->n_stmts; i++) {
        const analysis_stmt *st = &a->stmts[i];
        if (st->kind == ANALYZE_STMT_TRANSACTION && g->tx_path_changed && is_tx_end(st->tag)) {
            changes = true;
            list_union(&g->effective_path, &g->committed_path);
        }
        if (st->prepare_name)
            prepared_add(g, st->prepare_name);
        if (st->deallocate_all)
            prepared_remove(g, NULL);
        else if (st->deallocate_name)
            prepared_remove(g, st->deallocate_name);
    }
    if (kind == 'P' && stmt_name && *stmt_name)
        prepared_add(g, stmt_name);
    /* DISCARD ALL ends an impersonation, as it resets the role on a server */
    for (size_t i = 0; i < a->n_settings && g->imp_role; i++)
        if (a->settings[i].action == ANALYZE_SET_DISCARD && a->settings[i].name &&
            !strcmp(a->settings[i].name, "all")) {
            session_log(s, LOG_INFO, "impersonation of role %s ends (DISCARD ALL)", g->imp_role);
            free(g->imp_role);
            g->imp_role = NULL;
            g->who = g->login_who;
        }
    if (changes) {
        g->tx_path_changed = true;
        relay_learn_search_path(s, kind == 'P');
    }
}

/* SHOW search_path answered: the truth replaces the union. */
void guard_search_path_learned(session *s, const char *value, char tx_status)
{
    session_guard *g = &s->guard;
    schema_list l = {0};
    if (guard_parse_search_path(value, &l) != 0) {
        session_log(s, LOG_WARNING, "cannot parse search_path \"%s\"; keeping the wider value", value);
        list_clear(&l);
        return;
    }
    list_clear(&g->effective_path);
    g->effective_path = l;
    if (tx_status == 'I') {
        list_copy(&g->committed_path, &g->effective_path);
        g->tx_path_changed = false;
    }
}

/* A transaction that changed search_path ended: it may have undone the change. */
void guard_on_ready_for_query(session *s, char previous, char status)
{
    session_guard *g = &s->guard;
    if (g->ready && g->tx_path_changed && previous != 'I' && status == 'I') {
        list_union(&g->effective_path, &g->committed_path);
        relay_learn_search_path(s, false);
    }
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
                          const char *text, const analysis *a, intercept_result *out)
{
    session_guard *g = &s->guard;
    if (a->n_roles != 1 || a->n_stmts != 1 || a->n_relations || a->n_functions || a->n_flags ||
        a->roles[0].via_function)
        return false;
    const analysis_role_change *rc = &a->roles[0];
    const char *hint = s->srv->cfg->deny_hint;
    const char *local = rc->is_local ? "LOCAL " : "";
    char sql[512];
    if ((rc->action == ANALYZE_ROLE_SET || rc->action == ANALYZE_ROLE_RESET) &&
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
        session_log(s, LOG_INFO, "impersonating role %s", g->imp_role);
    } else {
        return false;   /* SESSION AUTHORIZATION and the rest: decide denies */
    }
    out->verdict = INTERCEPT_REPLACE;
    out->text = strdup(sql);
    /* audited as the client's statement (for a Parse: its Executes) */
    s->pending_req = trail_decided(s, kind, stmt_name, text, a, NULL, false, false, NULL, NULL, NULL, 0);
    return true;
}

void intercept_statement(session *s, char kind, const char *stmt_name, const char *sql,
                         intercept_result *out)
{
    memset(out, 0, sizeof *out);
    switch (audit_room(s->srv->audit)) {
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
    const policy_t *p = current_policy(s);
    if (!p) {
        /* no policy configured: martgate is a plain authenticating proxy */
        s->pending_req = trail_decided(s, kind, stmt_name, sql, NULL, NULL, false, false, NULL, NULL, NULL, 0);
        return;
    }
    session_guard *g = &s->guard;
    const char *hint = s->srv->cfg->deny_hint;
    if (!g->ready) {
        deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0,
             "this session started before martgate's policy was loaded; reconnect");
        return;
    }
    analyze_context ctx = {
        .database = s->database,
        .search_path = (const char *const *)g->effective_path.v,
        .n_search_path = g->effective_path.n,
        .reset_search_path = (const char *const *)g->startup_path.v,
        .n_reset_search_path = g->startup_path.n,
        .session_user = s->be ? backend_parameter(s->be, "session_authorization") : NULL,
    };
    static const char *const empty_path[] = {""};
    if (ctx.n_search_path == 0) {   /* an empty search_path, not the default */
        ctx.search_path = empty_path;
        ctx.n_search_path = 1;
    }
    analysis *a = NULL;
    analyze_error aerr;
    if (analyze_sql(sql, &ctx, &a, &aerr) != 0) {
        /* what our parser cannot read is not forwarded (fail closed) */
        deny(out, aerr.sqlstate[0] ? aerr.sqlstate : "42601", NULL, aerr.cursor_position, "%s", aerr.message);
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
        list_copy(&wide, &g->effective_path);
        for (size_t i = 0; i < a->n_settings; i++)
            for (size_t k = 0; a->settings[i].schemas && k < a->settings[i].n_schemas; k++)
                list_add(&wide, a->settings[i].schemas[k]);
        ctx.search_path = (const char *const *)wide.v;
        ctx.n_search_path = wide.n;
        analysis_free(a);
        a = NULL;
        int rc = analyze_sql(sql, &ctx, &a, &aerr);
        list_clear(&wide);
        if (rc != 0) {
            deny(out, aerr.sqlstate[0] ? aerr.sqlstate : "42601", NULL, aerr.cursor_position, "%s", aerr.message);
            trail_refused(s, sql, out->sqlstate, aerr.message);
            return;
        }
    }
    if (impersonation(s, p, kind, stmt_name, sql, a, out)) {
        analysis_free(a);
        return;
    }
    decide_request req = {
        .sql = sql, .facts = a, .who = &g->who,
        .columns = guard_columns, .columns_ctx = s,
        .prepared = guard_prepared, .prepared_ctx = s,
    };
    char err[512];
    g->catalog_missing = false;
    int rc = decide(p, &req, &g->dec, err, sizeof err);
    if (rc != 0) {
        session_log(s, LOG_ERROR, "decision failed: %s", err);
        deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0, "martgate could not decide on this statement: %s", err);
    } else if (g->dec.verdict == DECIDE_DENY && g->catalog_missing) {
        /* a masked table the catalog snapshot does not know yet: read it, then decide again */
        if (g->catalog_since == 0)
            g->catalog_since = catalog_now();
        out->verdict = INTERCEPT_WAIT;
    } else if (g->dec.verdict == DECIDE_DENY) {
        const char *reason = decision_reason(&g->dec);
        deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0, "permission denied by policy: %s", reason);
        if (g->dec.rule_id) {
            char detail[300];
            snprintf(detail, sizeof detail, "Decided by rule \"%s\".", g->dec.rule_id);
            out->detail = strdup(detail);
        }
        session_log(s, LOG_INFO, "denied: %s", reason);
    } else {
        if (g->dec.verdict == DECIDE_REWRITE) {
            out->verdict = INTERCEPT_REPLACE;
            out->text = strdup(g->dec.rewritten_sql);
            if (!out->text)
                deny(out, SQLSTATE_INSUFFICIENT_PRIVILEGE, hint, 0, "out of memory rewriting the statement");
        }
        if (out->verdict != INTERCEPT_DENY)
            apply_effects(s, a, kind, stmt_name);
    }
    if (out->verdict != INTERCEPT_WAIT) {
        g->catalog_since = 0;
        if (rc != 0)
            trail_refused(s, sql, out->sqlstate, out->message);
        else
            s->pending_req = trail_decided(s, kind, stmt_name, sql, a, &g->dec, out->verdict == INTERCEPT_DENY,
                                           out->verdict == INTERCEPT_REPLACE, out->sqlstate, out->message, NULL, 0);
    }
    decision_reset(&g->dec);
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
