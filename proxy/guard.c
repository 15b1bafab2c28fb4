/*
 * guard: session state that could widen access. See guard.h.
 */
#include "proxy/guard.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/log.h"
#include "policy/decide_memo.h"

static void guard_log(const session_guard *g, log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void guard_log(const session_guard *g, log_level level, const char *fmt, ...)
{
    if (level < log_get_level())
        return;
    char prefix[256] = "";
    if (g->log_prefix)
        g->log_prefix(g, prefix, sizeof prefix);
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, prefix, fmt, ap);
    va_end(ap);
}

/* ---- what a statement does to search_path ---------------------------------- */

static void effect_clear(path_effect *e)
{
    schema_list_clear(&e->schemas);
    memset(e, 0, sizeof *e);
}

/* Adds to e what the settings of statement `index` of a may do when it runs
 * (every statement when index is DECIDE_NONE). */
static void effect_of(const analysis *a, size_t index, path_effect *e)
{
    for (size_t i = 0; i < a->n_settings; i++) {
        const analysis_setting *st = &a->settings[i];
        if (index != DECIDE_NONE && st->stmt_index != index)
            continue;
        bool sp = st->name && !strcmp(st->name, "search_path");
        bool all = st->action == ANALYZE_SET_RESET_ALL ||
                   (st->action == ANALYZE_SET_DISCARD && st->name && !strcmp(st->name, "all"));
        if (!sp && !all)
            continue;
        e->changes = true;
        if (st->action == ANALYZE_SET_VALUE && st->schemas) {
            for (size_t k = 0; k < st->n_schemas; k++)
                if (schema_list_add(&e->schemas, st->schemas[k]) != 0)
                    e->incomplete = true;   /* fails closed: effect_apply ends the session */
        } else {
            e->to_startup = true;
        }
    }
}

static int effect_copy(path_effect *dst, const path_effect *src)
{
    effect_clear(dst);
    dst->changes = src->changes;
    dst->to_startup = src->to_startup;
    dst->incomplete = src->incomplete;
    if (schema_list_copy(&dst->schemas, &src->schemas) != 0) {
        dst->incomplete = true;
        return -1;
    }
    return 0;
}

/* The guard can no longer follow the session (out of memory): what it
 * decides next could rest on state it does not know, so the session ends
 * (fail closed; the relay reads g->lost after every call). The first
 * reason is kept and logged. */
static void guard_lose(session_guard *g, const char *why)
{
    if (g->lost)
        return;
    g->lost = why;
    guard_log(g, LOG_ERROR, "%s", why);
}

/* Names would resolve against a search_path martgate does not know. */
static void path_lost(session_guard *g)
{
    guard_lose(g, "out of memory while following search_path; the session is ended");
}

/* The statement runs now: the tracked value widens to everything it may
 * be, and the relay learns the real one once the statement has run. */
static void effect_apply(session_guard *g, const path_effect *e)
{
    if (!e->changes)
        return;
    if (e->incomplete || schema_list_union(&g->effective_path, &e->schemas) != 0 ||
        (e->to_startup && schema_list_union(&g->effective_path, &g->startup_path) != 0)) {
        /* a search_path martgate cannot follow would resolve names it did
         * not decide: fail closed */
        path_lost(g);
        return;
    }
    g->tx_path_changed = true;
    g->path_changes++;
    g->learn_wanted = true;   /* after the statement has run (guard_wants_search_path) */
}

/* ---- prepared statements and portals by name -------------------------------- */

/* Sets name's effect (a copy), adding the name to table *tp if new (the
 * table too, with the session's template operations); returns the entry. */
static guard_named *names_put(session_guard *g, guard_names **tp, const char *name, const path_effect *e)
{
    guard_named *n = guard_names_add(tp, g->tmpl_ops, name);
    if (n && effect_copy(&n->effect, e) != 0)
        n->effect.incomplete = true;   /* its Execute ends the session (effect_apply) */
    return n;
}

/* The effective search_path as bytes, each schema length-prefixed (names
 * may hold any byte). Returns the length, or 0 when it does not fit (then
 * nothing is ever current: decided again each time). */
static size_t path_key(const session_guard *g, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < g->effective_path.n; i++) {
        size_t n = strlen(g->effective_path.v[i]);
        if (o + 2 + n > cap)
            return 0;
        buf[o++] = (char)(n >> 8);
        buf[o++] = (char)n;
        memcpy(buf + o, g->effective_path.v[i], n);
        o += n;
    }
    if (o + 1 > cap)
        return 0;
    buf[o++] = '|';   /* an empty path is not "unknown" */
    return o;
}

/* Records the epoch of now in e. */
static void epoch_now(const session_guard *g, const policy_t *p, guard_epoch *e)
{
    char key[2048];
    size_t n = path_key(g, key, sizeof key);
    free(e->path);
    e->policy = p ? policy_serial(p) : 0;
    e->who = g->who_serial;
    e->path = n ? malloc(n) : NULL;
    e->path_len = e->path ? n : 0;
    if (e->path)
        memcpy(e->path, key, n);
}

static bool epoch_is_now(const session_guard *g, const policy_t *p, const guard_epoch *e)
{
    if (!e->path || e->policy != (p ? policy_serial(p) : 0) || e->who != g->who_serial)
        return false;
    char key[2048];
    size_t n = path_key(g, key, sizeof key);
    return n && n == e->path_len && memcmp(key, e->path, n) == 0;
}

/* Keeps the text an entry of table t was decided on (n bytes) and the epoch
 * (none when e is NULL: then t may be too). */
static void entry_decided(const session_guard *g, const policy_t *pol, guard_names *t, guard_named *e,
                          const char *text, size_t n)
{
    if (!e)
        return;
    char *copy = strndup(text, n);
    free(e->text);
    t->text_bytes -= e->text_len;
    e->text = copy;   /* NULL out of memory: guard_stale then always asks again */
    e->text_len = copy ? n : 0;
    t->text_bytes += e->text_len;
    epoch_now(g, pol, &e->epoch);
}

/* Name e is prepared or declared again: until the warehouse says the new
 * one took (guard_outcome_ok), it may still hold the one the guard had, or
 * one of that one's own earlier texts. */
static void entry_replaced(guard_names *t, guard_named *e)
{
    e->replaced = true;
    if (!e->text) {   /* what the warehouse may hold under it is not known */
        e->alts_lost = true;
        return;
    }
    if (e->alts_lost)
        return;
    if (e->n_alts >= GUARD_MAX_ALTS) {
        e->alts_lost = true;
        return;
    }
    char *grown = realloc(e->alts, e->alts_len + e->text_len + 1);
    if (!grown) {
        e->alts_lost = true;
        return;
    }
    memcpy(grown + e->alts_len, e->text, e->text_len + 1);
    e->alts = grown;
    e->alts_len += e->text_len + 1;
    t->text_bytes += e->text_len + 1;
    e->n_alts++;
}

static void entry_alts_clear(guard_names *t, guard_named *e)
{
    free(e->alts);
    t->text_bytes -= e->alts_len;
    e->alts = NULL;
    e->alts_len = 0;
    e->n_alts = 0;
    e->alts_lost = false;
    e->replaced = false;
}

static size_t names_n(const guard_names *t)
{
    return t ? t->n : 0;
}

static size_t names_text_bytes(const guard_names *t)
{
    return t ? t->text_bytes : 0;
}

bool guard_full(const session_guard *g, size_t n, size_t bytes)
{
    return names_n(g->statements) + names_n(g->cursors) + n > GUARD_MAX_KEPT ||
           names_text_bytes(g->statements) + names_text_bytes(g->cursors) + bytes > GUARD_MAX_KEPT_BYTES;
}

bool guard_has_statement(const session_guard *g, const char *name)
{
    return guard_names_find(g->statements, name) != NULL;
}

guard_named *guard_stale(session_guard *g, const policy_t *pol, bool cursor, const char *name)
{
    guard_named *n = guard_names_find(cursor ? g->cursors : g->statements, name);
    if (!n || (n->text && !n->unsure && !n->replaced && !n->indirect && epoch_is_now(g, pol, &n->epoch)))
        return NULL;
    return n;
}

void guard_refresh(session_guard *g, const policy_t *pol, guard_named *n)
{
    epoch_now(g, pol, &n->epoch);
}

void guard_principal_changed(session_guard *g)
{
    g->who_serial++;
}

static void *dup_bytes(const void *p, size_t n)
{
    void *d = n ? malloc(n) : NULL;
    if (d)
        memcpy(d, p, n);
    return d;
}

/* Sets what the warehouse was given for statement e besides its text: the
 * text forwarded when not e's own, and the Parse's parameter types. Out of
 * memory, e is unsure (prepared again before it runs). */
static void entry_held(guard_names *t, guard_named *e, const char *forwarded, const unsigned char *types,
                       size_t types_len)
{
    t->text_bytes -= e->held_len;
    free(e->held);
    e->held = NULL;
    e->held_len = 0;
    if (forwarded && !(e->text && !strcmp(forwarded, e->text))) {
        e->held_len = strlen(forwarded);
        e->held = dup_bytes(forwarded, e->held_len + 1);
        if (!e->held) {
            e->held_len = 0;
            e->unsure = true;
        }
    }
    t->text_bytes += e->held_len;
    if (types == e->types)
        return;
    t->text_bytes -= e->types_len;
    free(e->types);
    e->types = dup_bytes(types, types_len);
    e->types_len = e->types ? types_len : 0;
    t->text_bytes += e->types_len;
    if (types_len && !e->types)
        e->unsure = true;
}

/* A statement prepared under `name` (text, n bytes) with effect e; parse:
 * a Parse message's (NULL: SQL PREPARE). The guard takes it as the
 * client's latest statement of that name; if one of that name is known
 * already, the warehouse keeps that one (the new one fails) or, when it had
 * dropped it unseen, takes the new one: the name is unsure. */
/* Does running a prepare, deallocate, declare or close anything by name? */
static bool names_effects_of(const analysis *a)
{
    for (size_t i = 0; a && i < a->n_stmts; i++) {
        const analysis_stmt *st = &a->stmts[i];
        if (st->prepare_name || st->deallocate_name || st->deallocate_all ||
            (st->tag && (!strcmp(st->tag, "DECLARE CURSOR") || !strcmp(st->tag, "CLOSE CURSOR"))))
            return true;
    }
    for (size_t i = 0; a && i < a->n_settings; i++)
        if (a->settings[i].action == ANALYZE_SET_DISCARD)
            return true;
    return false;
}

/* Does a run another prepared statement or cursor (EXECUTE, FETCH, MOVE)? */
static bool runs_another(const analysis *a)
{
    for (size_t i = 0; a && i < a->n_stmts; i++)
        if (a->stmts[i].execute_name || (a->stmts[i].cursor_name && a->stmts[i].tag &&
                                         (!strcmp(a->stmts[i].tag, "FETCH") || !strcmp(a->stmts[i].tag, "MOVE"))))
            return true;
    return false;
}

static void statement_prepared(session_guard *g, const policy_t *pol, const char *name, const path_effect *e,
                               const char *text, size_t n, const guard_parse *parse, bool indirect)
{
    guard_named *old = guard_names_find(g->statements, name);
    bool was_known = old && *name && old->text && !old->unsure;
    if (old && *name && !parse)
        entry_replaced(g->statements, old);   /* SQL PREPARE: decided again with what it replaced */
    path_effect both = {0};
    if (was_known) {
        /* whichever runs, the guard expects the effects of both */
        if (effect_copy(&both, &old->effect) != 0 || schema_list_union(&both.schemas, &e->schemas) != 0)
            both.incomplete = true;
        both.changes = both.changes || e->changes;
        both.to_startup = both.to_startup || e->to_startup;
        both.incomplete = both.incomplete || e->incomplete;
        e = &both;
    }
    guard_named *ne = names_put(g, &g->statements, name, e);
    effect_clear(&both);
    if (!ne)
        return;
    entry_decided(g, pol, g->statements, ne, text, n);
    ne->protocol = parse != NULL;
    ne->indirect = indirect;
    ne->unsure = was_known || (old == ne && ne->unsure && !parse);
    entry_held(g->statements, ne, parse ? parse->forwarded : NULL, parse ? parse->types : NULL,
               parse ? parse->types_len : 0);
}

void guard_outcome_failed(session_guard *g, char what, const char *name)
{
    guard_names **tp = what == 'K' ? &g->cursors : &g->statements;
    guard_named *e = guard_names_find(*tp, name);
    if (!e && *name)
        e = guard_names_add(tp, g->tmpl_ops, name);   /* dropped when the warehouse kept it: a name with no text */
    if (e)
        e->unsure = true;
    else if (*name)   /* an unknown cursor would be fetched from unchecked */
        guard_lose(g, "out of memory while following prepared statements and cursors; the session is ended");
}

void guard_outcome_ok(session_guard *g, char what, const char *name)
{
    guard_names *t = what == 'K' ? g->cursors : g->statements;
    guard_named *e = guard_names_find(t, name);
    if (!e || !e->replaced || !e->text)
        return;
    entry_alts_clear(t, e);
    if (!e->protocol && !e->held)
        e->unsure = false;   /* a protocol statement's may also stand for what the guard could not keep */
}

bool guard_parse_needs_close(const session_guard *g, const char *name)
{
    const guard_named *e = *name ? guard_names_find(g->statements, name) : NULL;
    return e && e->unsure;
}

void guard_reprepared(session_guard *g, const policy_t *pol, guard_named *e, const char *forwarded)
{
    assert(g->statements);   /* e is one of them */
    e->unsure = false;
    entry_held(g->statements, e, forwarded, e->types, e->types_len);
    epoch_now(g, pol, &e->epoch);
}

/* ---- the effects of allowed statements ------------------------------------- */

static bool is_tx_end(const char *tag)
{
    return !strcmp(tag, "COMMIT") || !strcmp(tag, "ROLLBACK") || !strcmp(tag, "END") ||
           !strcmp(tag, "ABORT") || !strncmp(tag, "ROLLBACK", 8) || !strncmp(tag, "PREPARE TRANSACTION", 19) ||
           !strcmp(tag, "RELEASE") || !strcmp(tag, "COMMIT PREPARED");
}

/* The text of statement i of a (all of sql when it is the only one). */
static const char *stmt_text(const analysis *a, size_t i, const char *sql, size_t *n)
{
    const analysis_stmt *st = &a->stmts[i];
    size_t total = strlen(sql);
    if (a->n_stmts > 1 && st->location >= 0 && (size_t)st->location + (size_t)st->length <= total) {
        *n = (size_t)st->length;
        return sql + st->location;
    }
    *n = total;
    return sql;
}

/* Keeps what='S' or 'K' and name in g->touched for the relay (see guard.h). */
static void note_touched(session_guard *g, char what, const char *name)
{
    size_t n = strlen(name) + 2;
    char *t = grow_array(g->touched, &g->touched_cap, g->touched_len + n, 1, 256);
    if (!t) {
        /* the guard could not learn of the request's failure */
        guard_lose(g, "out of memory while following prepared statements and cursors; the session is ended");
        return;
    }
    g->touched = t;
    g->touched[g->touched_len] = what;
    memcpy(g->touched + g->touched_len + 1, name, n - 1);
    g->touched_len += n;
}

/* Statement `name` (every one when NULL) is dropped by a statement of a
 * Query: if the Query fails before it, the warehouse keeps it (see
 * guard_outcome_failed). */
static void statements_dropped(session_guard *g, const char *name)
{
    if (name) {
        if (guard_names_find(g->statements, name))   /* one it does not know, the warehouse has not */
            note_touched(g, 'S', name);
    } else {
        for (size_t i = 0; i < names_n(g->statements); i++)
            note_touched(g, 'S', g->statements->v[i].name);
    }
    guard_names_drop(&g->statements, name);   /* may free the table */
}

/* The same for cursor `name` (every one when NULL): CLOSE, DISCARD ALL. */
static void cursors_dropped(session_guard *g, const char *name)
{
    if (name && guard_names_find(g->cursors, name)) {
        note_touched(g, 'K', name);
    } else if (!name) {
        for (size_t i = 0; i < names_n(g->cursors); i++)
            note_touched(g, 'K', g->cursors->v[i].name);
    }
    guard_names_drop(&g->cursors, name);   /* may free the table */
}

void guard_statement_allowed(session_guard *g, const policy_t *pol, const analysis *a, char kind,
                             const char *stmt_name, const char *sql, const guard_parse *parse)
{
    assert(g->touched_len == 0);   /* the relay took the last statement's names */
    if (kind == 'P') {
        /* a Parse runs nothing: its statement runs at each Execute */
        path_effect e = {0};
        if (a)
            effect_of(a, DECIDE_NONE, &e);
        statement_prepared(g, pol, stmt_name ? stmt_name : "", &e, sql, strlen(sql), parse, runs_another(a));
        effect_clear(&e);
        /* a PREPARE, DEALLOCATE, DECLARE, CLOSE or DISCARD prepared this
         * way does what it does by name when a portal of it runs
         * (intercept_execute), not now */
        guard_named *ne = guard_names_find(g->statements, stmt_name ? stmt_name : "");
        if (ne)
            ne->names_effects = names_effects_of(a);
        return;
    }
    if (!a)
        return;
    path_effect now = {0};
    for (size_t i = 0; i < a->n_stmts; i++) {
        const analysis_stmt *st = &a->stmts[i];
        size_t tlen;
        const char *text = stmt_text(a, i, sql, &tlen);
        if (st->prepare_name) {
            /* PREPARE runs nothing either: EXECUTE runs what it prepared */
            path_effect e = {0};
            effect_of(a, i, &e);
            statement_prepared(g, pol, st->prepare_name, &e, text, tlen, NULL, false);
            note_touched(g, 'S', st->prepare_name);
            effect_clear(&e);
            continue;
        }
        if (st->cursor_name && !strcmp(st->tag, "DECLARE CURSOR")) {
            path_effect none = {0};
            guard_named *c = guard_names_find(g->cursors, st->cursor_name);
            if (c)
                entry_replaced(g->cursors, c);   /* the DECLARE fails if the warehouse still holds it */
            c = names_put(g, &g->cursors, st->cursor_name, &none);
            if (!c)   /* an unknown cursor would be fetched from unchecked */
                guard_lose(g, "out of memory while following prepared statements and cursors; the session is ended");
            entry_decided(g, pol, g->cursors, c, text, tlen);
            if (c)
                c->unsure = false;   /* unless the DECLARE fails */
            note_touched(g, 'K', st->cursor_name);
        } else if (st->cursor_name && !strcmp(st->tag, "CLOSE CURSOR")) {
            cursors_dropped(g, st->cursor_name);
        } else if (!st->cursor_name && st->tag && !strcmp(st->tag, "CLOSE CURSOR")) {
            cursors_dropped(g, NULL);   /* CLOSE ALL */
        }
        effect_of(a, i, &now);
        if (st->execute_name) {
            guard_named *p = guard_names_find(g->statements, st->execute_name);
            if (p && p->effect.changes) {
                now.changes = true;
                now.to_startup = now.to_startup || p->effect.to_startup;
                now.incomplete = now.incomplete || p->effect.incomplete;
                if (schema_list_union(&now.schemas, &p->effect.schemas) != 0)
                    now.incomplete = true;
            }
        }
        if (st->kind == ANALYZE_STMT_TRANSACTION && g->tx_path_changed && is_tx_end(st->tag)) {
            now.changes = true;
            if (schema_list_union(&g->effective_path, &g->committed_path) != 0)
                now.incomplete = true;
        }
        if (st->deallocate_all)
            statements_dropped(g, NULL);
        else if (st->deallocate_name)
            statements_dropped(g, st->deallocate_name);
    }
    for (size_t i = 0; i < a->n_settings; i++) {
        if (a->settings[i].action != ANALYZE_SET_DISCARD || !a->settings[i].name ||
            strcmp(a->settings[i].name, "all") != 0)
            continue;
        /* DISCARD ALL drops every prepared statement and portal, and ends an
         * impersonation, as it resets the role on a server */
        statements_dropped(g, NULL);
        cursors_dropped(g, NULL);
        guard_names_drop(&g->portals, NULL);
        if (g->imp_role) {
            guard_log(g, LOG_INFO, "impersonation of role %s ends (DISCARD ALL)", g->imp_role);
            free(g->imp_role);
            g->imp_role = NULL;
            g->who = g->login_who;
            guard_principal_changed(g);
        }
    }
    effect_apply(g, &now);
    effect_clear(&now);
}

void guard_on_query_message(session_guard *g)
{
    guard_names_drop(&g->statements, "");
    guard_names_drop(&g->portals, "");
}

void guard_on_bind(session_guard *g, const policy_t *pol, const char *portal, const char *stmt)
{
    guard_named *p = guard_names_find(g->portals, portal);
    if (p && *portal)
        return;   /* a named portal that exists stays: the server refuses the Bind */
    const guard_named *st = guard_names_find(g->statements, stmt);
    static const path_effect none = {0};
    p = names_put(g, &g->portals, portal, st ? &st->effect : &none);
    if (!p)   /* its Execute would run what it does to search_path unseen */
        guard_lose(g, "out of memory while following portals; the session is ended");
    st = guard_names_find(g->statements, stmt);   /* the table of portals moved, not this one */
    if (p) {
        if (g->tmpl_ops) {
            if (p->tmpl)
                g->tmpl_ops->release(p->tmpl);
            p->tmpl = st && st->tmpl ? g->tmpl_ops->ref(st->tmpl) : NULL;
        }
        p->bound_policy = pol ? policy_serial(pol) : 0;
        p->bound_who = g->who_serial;
        /* what it does by name when it runs: decided again then */
        free(p->text);
        g->portals->text_bytes -= p->text_len;   /* p is one of them */
        p->text = st && st->names_effects && st->text ? strdup(st->text) : NULL;
        p->text_len = p->text ? st->text_len : 0;
        g->portals->text_bytes += p->text_len;
        p->names_effects = p->text != NULL;
    }
}

bool guard_portal_current(const session_guard *g, const policy_t *pol, const guard_named *p)
{
    return !p || (p->bound_policy == (pol ? policy_serial(pol) : 0) && p->bound_who == g->who_serial);
}

void guard_on_execute(session_guard *g, const char *portal)
{
    const guard_named *p = guard_names_find(g->portals, portal);
    if (p)
        effect_apply(g, &p->effect);
}

void guard_on_close(session_guard *g, char what, const char *name)
{
    guard_names_drop(what == 'S' ? &g->statements : &g->portals, name);
    if (what != 'S')
        guard_names_drop(&g->cursors, name);   /* a cursor is a portal too */
}

guard_named *guard_statement(const session_guard *g, const char *name)
{
    return guard_names_find(g->statements, name);
}

guard_named *guard_cursor(const session_guard *g, const char *name)
{
    return guard_names_find(g->cursors, name);
}

guard_named *guard_portal(const session_guard *g, const char *name)
{
    return guard_names_find(g->portals, name);
}

/* ---- what the warehouse tells ---------------------------------------------- */

static void search_path_learned(session_guard *g, const char *value, char tx_status)
{
    schema_list l = {0};
    if (schema_list_parse_search_path(value, &l) != 0) {
        guard_log(g, LOG_WARNING, "cannot parse search_path \"%s\"; keeping the wider value", value);
        schema_list_clear(&l);
        return;
    }
    schema_list_clear(&g->effective_path);
    g->effective_path = l;
    if (tx_status == 'I') {
        if (schema_list_copy(&g->committed_path, &g->effective_path) != 0) {
            /* a ROLLBACK would restore a path martgate does not know */
            path_lost(g);
            return;
        }
        g->tx_path_changed = false;
    }
}

bool guard_wants_search_path(const session_guard *g)
{
    return g->learn_wanted && !g->lost;
}

void guard_search_path_asked(session_guard *g)
{
    /* asked once the statement that changed it has run, never before it
     * (it would learn the old value) */
    g->learn_wanted = false;
    g->learn_mark = g->path_changes;
}

void guard_search_path_answer(session_guard *g, const char *value, char tx_status)
{
    if (value && g->path_changes == g->learn_mark)
        search_path_learned(g, value, tx_status);
    else if (value)
        g->learn_wanted = true;   /* something changed it since the question: ask again */
    else
        guard_log(g, LOG_DEBUG, "SHOW search_path gave no answer; keeping the wider value");
}

void guard_on_ready_for_query(session_guard *g, char previous, char status)
{
    if (status == 'I')
        guard_names_drop(&g->portals, NULL);   /* outside a transaction block no portal is left */
    if (!g->ready)
        return;
    /* a transaction that changed search_path ended: it may have undone the change */
    if (g->tx_path_changed && previous != 'I' && status == 'I') {
        if (schema_list_union(&g->effective_path, &g->committed_path) != 0) {
            path_lost(g);
            return;
        }
        g->path_changes++;
        g->learn_wanted = true;   /* after the statement has run (guard_wants_search_path) */
    }
}

void guard_init(session_guard *g, guard_prefix_fn log_prefix, const guard_tmpl_ops *tmpl_ops)
{
    memset(g, 0, sizeof *g);
    g->log_prefix = log_prefix;
    g->tmpl_ops = tmpl_ops;   /* and the tables', as each is allocated (names_put) */
}

int guard_login(session_guard *g, const policy_t *p, const decide_principal *who, const char *asked,
                char **search_path_text, char *err, size_t errlen)
{
    *search_path_text = NULL;
    if (!p)
        return 0;
    g->who = *who;
    g->login_who = g->who;
    if (asked) {
        /* the client's own (pgjdbc currentSchema): every schema must be readable */
        if (schema_list_parse_search_path(asked, &g->startup_path) != 0) {
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
            schema_list_set(&g->startup_path, schemas, n) != 0) {
            free(schemas);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        free(schemas);
        *search_path_text = decide_search_path_text(p, &g->who);
    }
    if (!*search_path_text || schema_list_copy(&g->committed_path, &g->startup_path) != 0 ||
        schema_list_copy(&g->effective_path, &g->startup_path) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->ready = true;
    return 0;
}

void guard_free(session_guard *g)
{
    free(g->touched);
    schema_list_clear(&g->startup_path);
    schema_list_clear(&g->committed_path);
    schema_list_clear(&g->effective_path);
    guard_names_free(&g->statements);
    guard_names_free(&g->cursors);
    guard_names_free(&g->portals);
    free(g->imp_role);
    decide_memo_free(g->memo);
    memset(g, 0, sizeof *g);
}
