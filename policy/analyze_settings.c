/*
 * analyze_settings: the settings part of the parse-tree walker: SET, RESET,
 * SET ROLE / SESSION AUTHORIZATION, set_config() calls with their constant
 * arguments, and the search_path in force for each statement of a text
 * (a SET search_path applies to the statements after it).
 */
#include "policy/analyze_walk.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const default_search_path[] = {"$user", "public"};

static char *lower_dup(walk_state *st, const char *s)
{
    char *p = builder_strdup(st->b, s);
    if (p)
        for (char *c = p; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    return p;
}

void walk_set_search_path(walk_state *st, const char *const *schemas, size_t n)
{
    const char **copy = arena_alloc(st->b->arena, (n ? n : 1) * sizeof *copy);
    if (!copy) {
        st->b->out_of_memory = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        copy[i] = builder_strdup(st->b, schemas[i]);
    st->path = copy;
    st->n_path = n;
    st->path_unknown = false;
}

void walk_reset_search_path(walk_state *st)
{
    const analyze_context *c = st->ctx;
    if (c && c->n_reset_search_path) {
        st->path = c->reset_search_path;
        st->n_path = c->n_reset_search_path;
    } else if (c && c->n_search_path) {
        st->path = c->search_path;
        st->n_path = c->n_search_path;
    } else {
        st->path = default_search_path;
        st->n_path = 2;
    }
    st->path_unknown = false;
}

/* ---- constants ------------------------------------------------------ */

/* The text of a constant argument ('x', 'x'::text, 42, 1.5, true), or NULL. */
static const char *const_text(walk_state *st, Node *n)
{
    if (n && IsA(n, TypeCast))
        n = ((TypeCast *)n)->arg;
    if (!n || !IsA(n, A_Const))
        return NULL;
    A_Const *c = (A_Const *)n;
    /* facts from a constant's value hold for this text, not for its shape */
    st->b->a->reads_constants = true;
    if (c->isnull)
        return NULL;
    switch (nodeTag(&c->val)) {
    case T_String:
        return c->val.sval.sval;
    case T_Float:
        return c->val.fval.fval;
    case T_Boolean:
        return c->val.boolval.boolval ? "true" : "false";
    case T_Integer: {
        char buf[24];
        snprintf(buf, sizeof buf, "%d", c->val.ival.ival);
        return builder_strdup(st->b, buf);
    }
    default:
        return NULL;
    }
}

/* A boolean constant (true, 't', 'on', 1...); *known false when it is not. */
static bool const_bool(walk_state *st, Node *n, bool *known)
{
    const char *t = const_text(st, n);
    *known = t != NULL;
    if (!t)
        return false;
    if (!strcasecmp(t, "true") || !strcasecmp(t, "t") || !strcasecmp(t, "on") ||
        !strcasecmp(t, "yes") || !strcasecmp(t, "y") || !strcmp(t, "1"))
        return true;
    if (!strcasecmp(t, "false") || !strcasecmp(t, "f") || !strcasecmp(t, "off") ||
        !strcasecmp(t, "no") || !strcasecmp(t, "n") || !strcmp(t, "0"))
        return false;
    *known = false;
    return false;
}

/* ---- settings and roles --------------------------------------------- */

static void add_role_change(walk_state *st, analyze_role_action action, const char *role,
                            bool is_local, bool via_function, int location)
{
    analysis_role_change *r = builder_add_role(st->b);
    if (!r)
        return;
    r->stmt_index = st->stmt;
    r->action = action;
    r->role = builder_strdup(st->b, role);
    r->is_local = is_local;
    r->via_function = via_function;
    r->location = location;
}

static analysis_setting *add_setting(walk_state *st, analyze_setting_action action,
                                     const char *name, int location)
{
    analysis_setting *s = builder_add_setting(st->b);
    if (!s)
        return NULL;
    s->stmt_index = st->stmt;
    s->action = action;
    s->name = name ? lower_dup(st, name) : NULL;
    s->location = location;
    return s;
}

/* search_path given as a GUC list value (set_config): split, then in force. */
static void set_search_path_value(walk_state *st, analysis_setting *s, const char *value)
{
    const char **items = NULL;
    int n = value ? analyze_split_guc_list(st->b->arena, value, &items) : -1;
    if (n < 0) {
        st->path_unknown = true;   /* the server will refuse it, or we cannot tell */
        return;
    }
    s->schemas = items;
    s->n_schemas = (size_t)n;
    walk_set_search_path(st, items, (size_t)n);
}

void walk_record_set_config(walk_state *st, FuncCall *fc)
{
    if (list_length(fc->args) != 3) {
        if (list_length(fc->args) > 0)
            walk_flag(st, ANALYZE_FLAG_DYNAMIC_SETTING,
                      "set_config() called in a form the analyser cannot read", NULL,
                      fc->location);
        return;
    }
    Node *a0 = linitial(fc->args), *a1 = lsecond(fc->args), *a2 = lthird(fc->args);
    const char *name = IsA(a0, NamedArgExpr) ? NULL : const_text(st, a0);
    const char *value = IsA(a1, NamedArgExpr) ? NULL : const_text(st, a1);
    bool known = false;
    bool is_local = IsA(a2, NamedArgExpr) ? false : const_bool(st, a2, &known);
    if (!name) {
        analysis_setting *s = add_setting(st, ANALYZE_SET_VALUE, NULL, fc->location);
        if (s) {
            s->via_function = true;
            s->name_not_constant = true;
            s->value = builder_strdup(st->b, value);
            s->value_not_constant = value == NULL;
            s->is_local = is_local;
        }
        walk_flag(st, ANALYZE_FLAG_DYNAMIC_SETTING,
                  "set_config() with a setting name that is not a constant", NULL,
                  fc->location);
        st->path_unknown = true;
        return;
    }
    if (!strcasecmp(name, "role")) {
        bool reset = value && !strcasecmp(value, "none");
        add_role_change(st, reset ? ANALYZE_ROLE_RESET : ANALYZE_ROLE_SET, reset ? NULL : value,
                        is_local, true, fc->location);
        return;
    }
    if (!strcasecmp(name, "session_authorization")) {
        add_role_change(st, ANALYZE_ROLE_SET_SESSION_AUTH, value, is_local, true, fc->location);
        return;
    }
    analysis_setting *s = add_setting(st, ANALYZE_SET_VALUE, name, fc->location);
    if (!s)
        return;
    s->via_function = true;
    s->value = builder_strdup(st->b, value);
    s->value_not_constant = value == NULL;
    s->is_local = is_local;
    if (!strcmp(s->name, "search_path"))
        set_search_path_value(st, s, value);
}

/* The value of SET name = a, b as text ("a, b"); NULL if not constant. */
static const char *set_args_text(walk_state *st, List *args)
{
    size_t len = 0;
    ListCell *lc;
    foreach (lc, args) {
        const char *t = const_text(st, lfirst(lc));
        if (!t)
            return NULL;
        len += strlen(t) + 2;
    }
    char *out = arena_alloc(st->b->arena, len + 1);
    if (!out) {
        st->b->out_of_memory = true;
        return NULL;
    }
    out[0] = '\0';
    size_t at = 0;
    foreach (lc, args) {
        const char *t = const_text(st, lfirst(lc));
        at += (size_t)snprintf(out + at, len + 1 - at, "%s%s", at ? ", " : "", t);
    }
    return out;
}

analyze_stmt_kind walk_set(walk_state *st, VariableSetStmt *vs, const char **tag)
{
    *tag = (vs->kind == VAR_RESET || vs->kind == VAR_RESET_ALL) ? "RESET" : "SET";
    if (vs->kind == VAR_RESET_ALL) {
        add_setting(st, ANALYZE_SET_RESET_ALL, NULL, -1);
        walk_reset_search_path(st);
        return ANALYZE_STMT_SESSION;
    }
    if (!vs->name) {
        walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "SET without a setting name", NULL, -1);
        return ANALYZE_STMT_UNSUPPORTED;
    }
    if (vs->kind == VAR_SET_MULTI) {
        analysis_setting *s = add_setting(st, ANALYZE_SET_MULTI, vs->name, -1);
        if (s) {
            s->value = set_args_text(st, vs->args);
            s->is_local = vs->is_local;
        }
        if (!strncmp(vs->name, "TRANSACTION", 11)) {
            *tag = "SET TRANSACTION";
            return ANALYZE_STMT_TRANSACTION;
        }
        return ANALYZE_STMT_SESSION;
    }
    if (!strcasecmp(vs->name, "role")) {
        const char *value = vs->kind == VAR_SET_VALUE ? set_args_text(st, vs->args) : NULL;
        bool reset = vs->kind == VAR_RESET || vs->kind == VAR_SET_DEFAULT ||
                     (value && !strcasecmp(value, "none"));
        add_role_change(st, reset ? ANALYZE_ROLE_RESET : ANALYZE_ROLE_SET, reset ? NULL : value,
                        vs->is_local, false, -1);
        return ANALYZE_STMT_SESSION;
    }
    if (!strcasecmp(vs->name, "session_authorization")) {
        bool reset = vs->kind == VAR_RESET || vs->kind == VAR_SET_DEFAULT;
        const char *value = vs->kind == VAR_SET_VALUE ? set_args_text(st, vs->args) : NULL;
        add_role_change(st,
                        reset ? ANALYZE_ROLE_RESET_SESSION_AUTH : ANALYZE_ROLE_SET_SESSION_AUTH,
                        reset ? NULL : value, vs->is_local, false, -1);
        return ANALYZE_STMT_SESSION;
    }
    analyze_setting_action action = ANALYZE_SET_VALUE;
    switch (vs->kind) {
    case VAR_SET_VALUE: action = ANALYZE_SET_VALUE; break;
    case VAR_SET_DEFAULT: action = ANALYZE_SET_DEFAULT; break;
    case VAR_SET_CURRENT: action = ANALYZE_SET_FROM_CURRENT; break;
    case VAR_RESET: action = ANALYZE_SET_RESET; break;
    default:
        walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "SET form the analyser does not know", vs->name,
                  -1);
        return ANALYZE_STMT_UNSUPPORTED;
    }
    analysis_setting *s = add_setting(st, action, vs->name, -1);
    if (!s)
        return ANALYZE_STMT_SESSION;
    s->is_local = vs->is_local;
    if (action == ANALYZE_SET_VALUE) {
        s->value = set_args_text(st, vs->args);
        s->value_not_constant = s->value == NULL;
    }
    if (!strcmp(s->name, "search_path")) {
        if (action == ANALYZE_SET_VALUE) {
            /* each argument is one schema name, exactly as the parser gave it */
            size_t n = (size_t)list_length(vs->args);
            const char **items = arena_alloc(st->b->arena, (n ? n : 1) * sizeof *items);
            if (!items) {
                st->b->out_of_memory = true;
                return ANALYZE_STMT_SESSION;
            }
            size_t k = 0;
            ListCell *lc;
            foreach (lc, vs->args) {
                const char *t = const_text(st, lfirst(lc));
                if (t)
                    items[k++] = builder_strdup(st->b, t);
            }
            s->schemas = items;
            s->n_schemas = k;
            walk_set_search_path(st, items, k);
        } else if (action != ANALYZE_SET_FROM_CURRENT) {
            walk_reset_search_path(st);
        }
    }
    return ANALYZE_STMT_SESSION;
}

void walk_init_search_path(walk_state *st)
{
    if (st->ctx && st->ctx->n_search_path) {
        st->path = st->ctx->search_path;
        st->n_path = st->ctx->n_search_path;
    } else {
        st->path = default_search_path;
        st->n_path = 2;
    }
    st->path_unknown = false;
}
