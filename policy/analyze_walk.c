/*
 * analyze_walk: parses SQL with libpg_query's raw parser and walks the tree
 * to record the facts of analyze.h. This file handles the statements that
 * read and write data (SELECT, INSERT, UPDATE, DELETE, MERGE), their CTE
 * scopes and FROM items, expressions (through the server's
 * raw_expression_tree_walker), functions, settings, and name resolution
 * against the search_path. DDL and other utility statements are in
 * analyze_utility.c. Anything not handled is flagged, never skipped.
 */
#include "policy/analyze_walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- small helpers -------------------------------------------------- */

analysis_stmt *walk_current_stmt(walk_state *st)
{
    return &st->b->a->stmts[st->stmt];
}

void walk_flag(walk_state *st, analyze_flag_kind kind, const char *reason, const char *detail,
               int location)
{
    analysis_flag *f = builder_add_flag(st->b);
    if (!f)
        return;
    f->stmt_index = st->stmt;
    f->kind = kind;
    f->reason = reason;      /* always a string literal */
    f->detail = builder_strdup(st->b, detail);
    f->location = location;
}

/* The parts of a dotted name given as a List of String. */
static bool split_name_list(List *names, const char **catalog, const char **schema,
                            const char **name)
{
    *catalog = *schema = *name = NULL;
    int n = list_length(names);
    if (n < 1 || n > 3)
        return false;
    ListCell *lc;
    foreach (lc, names)
        if (!IsA(lfirst(lc), String))
            return false;
    *name = strVal(llast(names));
    if (n >= 2)
        *schema = strVal(list_nth(names, n - 2));
    if (n == 3)
        *catalog = strVal(linitial(names));
    return true;
}

/* ---- name resolution ------------------------------------------------ */

static const char *expand_path_entry(const walk_state *st, const char *entry)
{
    if (strcmp(entry, "$user") == 0 && st->ctx && st->ctx->session_user)
        return st->ctx->session_user;
    return entry;
}

static bool catalog_has(const walk_state *st, const char *schema, const char *name)
{
    return st->ctx->relation_exists(st->ctx->catalog_ctx, schema, name);
}

/* Unqualified name: pg_temp (only known through the catalog callback: a
 * temporary table holds only what its owner put there), pg_catalog unless
 * listed, then the search_path in order. `creating`: the name is created
 * here, so only the path's schemas can receive it. */
static void resolve_unqualified(walk_state *st, analysis_relation *r, const char *name,
                                bool creating)
{
    r->resolution = ANALYZE_RES_UNRESOLVED;
    if (st->path_unknown)
        return;
    bool catalog_listed = false, temp_listed = false;
    for (size_t i = 0; i < st->n_path; i++) {
        if (strcmp(st->path[i], "pg_catalog") == 0)
            catalog_listed = true;
        else if (strcmp(st->path[i], "pg_temp") == 0)
            temp_listed = true;
    }
    bool builtin = !creating && analyze_is_pg_catalog_relation(name);
    bool have_catalog = st->ctx && st->ctx->relation_exists && !creating;

    if (have_catalog && !temp_listed && catalog_has(st, "pg_temp", name)) {
        r->resolution = ANALYZE_RES_CATALOG;
        r->schema = "pg_temp";
        return;
    }
    if (builtin && !catalog_listed) {
        r->resolution = ANALYZE_RES_BUILTIN;
        r->schema = "pg_catalog";
        return;
    }
    const char **cand = arena_alloc(st->b->arena, (st->n_path + 2) * sizeof *cand);
    if (!cand) {
        st->b->out_of_memory = true;
        return;
    }
    size_t n = 0;
    /* A pg_ name martgate does not know as a catalog relation may still be
     * one on this warehouse (a newer major's view): the server looks in
     * pg_catalog first, so it is a candidate there too, decided as a catalog
     * relation (one in no class is denied). Relations of pg_catalog are all
     * named pg_*; nobody but a superuser can add one. */
    bool maybe_catalog = !creating && !builtin && strncmp(name, "pg_", 3) == 0;
    if (maybe_catalog && !catalog_listed)
        cand[n++] = "pg_catalog";
    for (size_t i = 0; i < st->n_path; i++) {
        const char *e = expand_path_entry(st, st->path[i]);
        if (strcmp(e, "pg_catalog") == 0) {
            if (creating)
                continue;
            if (builtin) {
                if (n == 0) {
                    r->resolution = ANALYZE_RES_BUILTIN;
                    r->schema = "pg_catalog";
                    return;
                }
                cand[n++] = "pg_catalog";
                break;
            }
            if (maybe_catalog)
                cand[n++] = "pg_catalog";
            continue;
        }
        if (strcmp(e, "pg_temp") == 0) {
            if (!creating && have_catalog && catalog_has(st, "pg_temp", name)) {
                r->resolution = ANALYZE_RES_CATALOG;
                r->schema = "pg_temp";
                return;
            }
            continue;
        }
        if (have_catalog) {
            if (catalog_has(st, e, name)) {
                r->resolution = ANALYZE_RES_CATALOG;
                r->schema = builder_strdup(st->b, e);
                return;
            }
            continue;
        }
        cand[n++] = builder_strdup(st->b, e);
    }
    if (have_catalog || n == 0) {
        r->resolution = ANALYZE_RES_NOT_FOUND;
        return;
    }
    r->candidates = cand;
    r->n_candidates = n;
}

analysis_relation *walk_add_relation(walk_state *st, const char *catalog, const char *schema,
                                     const char *name, char relpersistence, int location,
                                     unsigned access, analyze_rel_usage usage, bool creating)
{
    analysis_relation *r = builder_add_relation(st->b);
    if (!r)
        return NULL;
    r->stmt_index = st->stmt;
    r->catalog = builder_strdup(st->b, catalog);
    r->name = builder_strdup(st->b, name);
    r->access = access;
    r->usage = usage;
    r->location = location;
    if (catalog && !(st->ctx && st->ctx->database && strcmp(catalog, st->ctx->database) == 0)) {
        r->resolution = ANALYZE_RES_OTHER_DATABASE;
        r->schema = builder_strdup(st->b, schema);
        r->qualified = true;
    } else if (schema) {
        r->resolution = ANALYZE_RES_QUALIFIED;
        r->schema = builder_strdup(st->b, schema);
        r->qualified = true;
    } else if (creating && st->creation_schema) {
        r->resolution = ANALYZE_RES_QUALIFIED;   /* CREATE SCHEMA s CREATE TABLE t */
        r->schema = builder_strdup(st->b, st->creation_schema);
    } else if (relpersistence == 't') {
        r->resolution = ANALYZE_RES_QUALIFIED;   /* CREATE TEMP ...: pg_temp */
        r->schema = "pg_temp";
    } else {
        resolve_unqualified(st, r, name, creating);
    }
    return r;
}

analysis_relation *walk_add_rangevar(walk_state *st, const RangeVar *rv, unsigned access,
                                     analyze_rel_usage usage, bool creating)
{
    if (!rv)
        return NULL;
    analysis_relation *r = walk_add_relation(st, rv->catalogname, rv->schemaname, rv->relname,
                                             rv->relpersistence, rv->location, access, usage,
                                             creating);
    if (r && rv->alias) {
        r->alias = builder_strdup(st->b, rv->alias->aliasname);
        r->has_column_aliases = rv->alias->colnames != NIL;
    }
    if (r && (usage == ANALYZE_USE_FROM || usage == ANALYZE_USE_TARGET))
        r->only = !rv->inh;
    return r;
}

bool walk_add_relation_names(walk_state *st, List *names, unsigned access,
                             analyze_rel_usage usage, int drop_last)
{
    int n = list_length(names) - drop_last;
    if (n < 1 || n > 3)
        return false;
    const char *part[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n; i++) {
        Node *item = list_nth(names, i);
        if (!IsA(item, String))
            return false;
        part[i] = strVal(item);
    }
    const char *catalog = n == 3 ? part[0] : NULL;
    const char *schema = n >= 2 ? part[n - 2] : NULL;
    return walk_add_relation(st, catalog, schema, part[n - 1], 'p', -1, access, usage,
                             false) != NULL;
}

void walk_add_schema(walk_state *st, const char *name)
{
    analysis_schema *s = builder_add_schema(st->b);
    if (!s)
        return;
    s->stmt_index = st->stmt;
    s->name = builder_strdup(st->b, name);
    s->access = ANALYZE_ACCESS_WRITE;
}

void walk_add_function_name(walk_state *st, List *funcname, int location, int n_args)
{
    const char *catalog, *schema, *name;
    if (!split_name_list(funcname, &catalog, &schema, &name)) {
        walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "function name the analyser cannot read", NULL,
                  location);
        return;
    }
    analysis_function *f = builder_add_function(st->b);
    if (!f)
        return;
    f->stmt_index = st->stmt;
    f->schema = builder_strdup(st->b, schema);
    f->name = builder_strdup(st->b, name);
    f->location = location;
    f->qualified = schema != NULL;
    f->n_args = n_args;
}

/* ---- expressions ---------------------------------------------------- */

static void record_function(walk_state *st, FuncCall *fc)
{
    const char *catalog, *schema, *name;
    if (!split_name_list(fc->funcname, &catalog, &schema, &name)) {
        walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "function name the analyser cannot read", NULL,
                  fc->location);
        return;
    }
    analysis_function *f = builder_add_function(st->b);
    if (!f)
        return;
    f->stmt_index = st->stmt;
    f->schema = builder_strdup(st->b, schema);
    f->name = builder_strdup(st->b, name);
    f->location = fc->location;
    f->qualified = schema != NULL && fc->funcformat != COERCE_SQL_SYNTAX;
    f->in_from = st->in_from_function;
    f->in_call = st->in_call;
    f->n_args = list_length(fc->args);
    if (!strcmp(name, "set_config") && (!schema || !strcmp(schema, "pg_catalog")))
        walk_record_set_config(st, fc);
    walk_named_by_call(st, fc, schema, name);
}

static void record_colref(walk_state *st, ColumnRef *cr)
{
    int n = list_length(cr->fields);
    if (n < 3 || n > 4)
        return;
    for (int i = 0; i < n - 1; i++)
        if (!IsA(list_nth(cr->fields, i), String))
            return;
    analysis_colref *c = builder_add_colref(st->b);
    if (!c)
        return;
    c->stmt_index = st->stmt;
    c->location = cr->location;
    c->n_fields = n;
    c->catalog = n == 4 ? builder_strdup(st->b, strVal(linitial(cr->fields))) : NULL;
    c->schema = builder_strdup(st->b, strVal(list_nth(cr->fields, n - 3)));
    c->table = builder_strdup(st->b, strVal(list_nth(cr->fields, n - 2)));
}

static void walk_from_item(walk_state *st, Node *n, bool table_stmt);
static analyze_stmt_kind walk_dml(walk_state *st, Node *n, const char **tag);

static bool expr_walker(Node *node, void *context)
{
    walk_state *st = context;
    if (!node)
        return false;
    if (st->b->out_of_memory)
        return true;
    if (st->depth > WALK_MAX_DEPTH) {
        walk_flag(st, ANALYZE_FLAG_TOO_DEEP, "expression nested too deeply to analyse", NULL, -1);
        return true;
    }
    switch (nodeTag(node)) {
    case T_SelectStmt:
        walk_select(st, (SelectStmt *)node);
        return false;
    case T_InsertStmt:
    case T_UpdateStmt:
    case T_DeleteStmt:
    case T_MergeStmt: {
        const char *tag;
        walk_dml(st, node, &tag);
        return false;
    }
    case T_FuncCall: {
        record_function(st, (FuncCall *)node);
        bool saved_from = st->in_from_function, saved_call = st->in_call;
        st->in_from_function = st->in_call = false;
        st->depth++;
        bool stop = raw_expression_tree_walker(node, expr_walker, st);
        st->depth--;
        st->in_from_function = saved_from;
        st->in_call = saved_call;
        return stop;
    }
    case T_ColumnRef:
        record_colref(st, (ColumnRef *)node);
        return false;
    case T_TypeCast: {
        walk_named_by_cast(st, (TypeCast *)node);
        st->depth++;
        bool stop = raw_expression_tree_walker(node, expr_walker, st);
        st->depth--;
        return stop;
    }
    case T_MultiAssignRef: {
        /* SET (a, b) = (SELECT ...): every column shares one source; walk
         * it once */
        MultiAssignRef *m = (MultiAssignRef *)node;
        if (m->colno == 1)
            walk_expr(st, m->source);
        return false;
    }
    case T_RangeVar:
    case T_RangeSubselect:
    case T_RangeFunction:
    case T_JoinExpr:
    case T_RangeTableSample:
    case T_RangeTableFunc:
        walk_from_item(st, node, false);
        return false;
    case T_LockingClause:      /* names FROM items, not relations */
    case T_IntoClause:         /* handled by walk_select */
    case T_WithClause:         /* handled where statements are walked */
    case T_CommonTableExpr:
        return false;
    default: {
        st->depth++;
        bool stop = raw_expression_tree_walker(node, expr_walker, st);
        st->depth--;
        return stop;
    }
    }
}

void walk_expr(walk_state *st, Node *node)
{
    if (node)
        expr_walker(node, st);
}

/* ---- scopes and FROM ------------------------------------------------ */

static bool cte_visible(const walk_state *st, const char *name)
{
    for (const cte_scope *s = st->scope; s; s = s->parent) {
        int i = 0;
        ListCell *lc;
        foreach (lc, s->ctes) {
            if (s->visible >= 0 && i >= s->visible)
                break;
            CommonTableExpr *cte = lfirst(lc);
            if (cte->ctename && !strcmp(cte->ctename, name))
                return true;
            i++;
        }
    }
    return false;
}

/* Walks the CTE bodies of w and leaves st->scope = scope (all visible);
 * the caller restores st->scope. */
static void enter_with(walk_state *st, WithClause *w, cte_scope *scope)
{
    scope->parent = st->scope;
    scope->ctes = w->ctes;
    st->scope = scope;
    int i = 0;
    ListCell *lc;
    foreach (lc, w->ctes) {
        CommonTableExpr *cte = lfirst(lc);
        scope->visible = w->recursive ? -1 : i;
        const char *tag;
        if (cte->ctequery)
            walk_statement(st, cte->ctequery, &tag);
        i++;
    }
    scope->visible = -1;
}

static void walk_from_relation(walk_state *st, RangeVar *rv, bool table_stmt, bool sample)
{
    if (!rv->schemaname && !rv->catalogname && cte_visible(st, rv->relname))
        return;   /* a CTE of an enclosing scope, not a relation */
    analysis_relation *r =
        walk_add_rangevar(st, rv, ANALYZE_ACCESS_READ, ANALYZE_USE_FROM, false);
    if (r) {
        r->table_stmt = table_stmt;
        r->tablesample = sample;
    }
}

static void walk_from_item(walk_state *st, Node *n, bool table_stmt)
{
    if (!n)
        return;
    switch (nodeTag(n)) {
    case T_RangeVar:
        walk_from_relation(st, (RangeVar *)n, table_stmt, false);
        break;
    case T_RangeSubselect: {
        RangeSubselect *rs = (RangeSubselect *)n;
        walk_expr(st, rs->subquery);
        break;
    }
    case T_RangeFunction: {
        RangeFunction *rf = (RangeFunction *)n;
        ListCell *lc;
        foreach (lc, rf->functions) {
            List *pair = lfirst(lc);   /* (function call, column definitions) */
            Node *call = pair ? linitial(pair) : NULL;
            st->in_from_function = call && IsA(call, FuncCall);
            walk_expr(st, call);
            st->in_from_function = false;
        }
        break;
    }
    case T_JoinExpr: {
        JoinExpr *j = (JoinExpr *)n;
        walk_from_item(st, j->larg, false);
        walk_from_item(st, j->rarg, false);
        walk_expr(st, j->quals);
        break;
    }
    case T_RangeTableSample: {
        RangeTableSample *ts = (RangeTableSample *)n;
        if (ts->relation && IsA(ts->relation, RangeVar))
            walk_from_relation(st, (RangeVar *)ts->relation, false, true);
        else
            walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "TABLESAMPLE over something not a table",
                      NULL, ts->location);
        walk_expr(st, (Node *)ts->args);
        walk_expr(st, ts->repeatable);
        break;
    }
    case T_RangeTableFunc: {
        /* XMLTABLE: its document and row expressions may hold anything */
        st->depth++;
        raw_expression_tree_walker(n, expr_walker, st);
        st->depth--;
        break;
    }
    default: {
        char detail[48];
        snprintf(detail, sizeof detail, "node type %d", (int)nodeTag(n));
        walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "FROM item the analyser does not know", detail,
                  -1);
        break;
    }
    }
}

static void walk_from_list(walk_state *st, List *from, bool table_stmt)
{
    ListCell *lc;
    foreach (lc, from)
        walk_from_item(st, lfirst(lc), table_stmt);
}

/* `TABLE x` is parsed as SELECT * FROM x with a target list the grammar
 * made up (no location). */
static bool is_table_stmt(const SelectStmt *s)
{
    if (list_length(s->targetList) != 1 || list_length(s->fromClause) != 1)
        return false;
    Node *t = linitial(s->targetList);
    return IsA(t, ResTarget) && ((ResTarget *)t)->location < 0 &&
           IsA(linitial(s->fromClause), RangeVar);
}

void walk_select(walk_state *st, SelectStmt *s)
{
    if (!s)
        return;
    if (++st->depth > WALK_MAX_DEPTH) {
        walk_flag(st, ANALYZE_FLAG_TOO_DEEP, "query nested too deeply to analyse", NULL, -1);
        st->depth--;
        return;
    }
    const cte_scope *saved = st->scope;
    cte_scope scope;
    if (s->withClause)
        enter_with(st, s->withClause, &scope);
    if (s->op != SETOP_NONE) {
        walk_select(st, s->larg);
        walk_select(st, s->rarg);
    } else {
        if (s->intoClause) {
            walk_add_rangevar(st, s->intoClause->rel, ANALYZE_ACCESS_WRITE, ANALYZE_USE_TARGET,
                              true);
            st->select_into = true;
        }
        walk_expr(st, (Node *)s->valuesLists);
        walk_from_list(st, s->fromClause, is_table_stmt(s));
        walk_expr(st, (Node *)s->targetList);
        walk_expr(st, s->whereClause);
        walk_expr(st, (Node *)s->groupClause);
        walk_expr(st, s->havingClause);
        walk_expr(st, (Node *)s->windowClause);
        walk_expr(st, (Node *)s->distinctClause);
    }
    walk_expr(st, (Node *)s->sortClause);
    walk_expr(st, s->limitOffset);
    walk_expr(st, s->limitCount);
    if (s->lockingClause)
        walk_current_stmt(st)->locks_rows = true;
    st->scope = saved;
    st->depth--;
}

/* ---- INSERT, UPDATE, DELETE, MERGE ------------------------------------ */

static analyze_stmt_kind walk_dml(walk_state *st, Node *n, const char **tag)
{
    const cte_scope *saved = st->scope;
    cte_scope scope;
    st->writes = true;
    switch (nodeTag(n)) {
    case T_InsertStmt: {
        InsertStmt *s = (InsertStmt *)n;
        *tag = "INSERT";
        if (s->withClause)
            enter_with(st, s->withClause, &scope);
        unsigned access = ANALYZE_ACCESS_WRITE;
        if (s->returningList ||
            (s->onConflictClause && s->onConflictClause->action == ONCONFLICT_UPDATE))
            access |= ANALYZE_ACCESS_READ;
        walk_add_rangevar(st, s->relation, access, ANALYZE_USE_TARGET, false);
        walk_expr(st, s->selectStmt);
        if (s->onConflictClause) {
            walk_expr(st, (Node *)s->onConflictClause->infer);
            walk_expr(st, (Node *)s->onConflictClause->targetList);
            walk_expr(st, s->onConflictClause->whereClause);
        }
        walk_expr(st, (Node *)s->returningList);
        break;
    }
    case T_UpdateStmt: {
        UpdateStmt *s = (UpdateStmt *)n;
        *tag = "UPDATE";
        if (s->withClause)
            enter_with(st, s->withClause, &scope);
        walk_add_rangevar(st, s->relation, ANALYZE_ACCESS_READ | ANALYZE_ACCESS_WRITE,
                          ANALYZE_USE_TARGET, false);
        walk_expr(st, (Node *)s->targetList);
        walk_from_list(st, s->fromClause, false);
        walk_expr(st, s->whereClause);
        walk_expr(st, (Node *)s->returningList);
        break;
    }
    case T_DeleteStmt: {
        DeleteStmt *s = (DeleteStmt *)n;
        *tag = "DELETE";
        if (s->withClause)
            enter_with(st, s->withClause, &scope);
        walk_add_rangevar(st, s->relation, ANALYZE_ACCESS_READ | ANALYZE_ACCESS_WRITE,
                          ANALYZE_USE_TARGET, false);
        walk_from_list(st, s->usingClause, false);
        walk_expr(st, s->whereClause);
        walk_expr(st, (Node *)s->returningList);
        break;
    }
    case T_MergeStmt: {
        MergeStmt *s = (MergeStmt *)n;
        *tag = "MERGE";
        if (s->withClause)
            enter_with(st, s->withClause, &scope);
        walk_add_rangevar(st, s->relation, ANALYZE_ACCESS_READ | ANALYZE_ACCESS_WRITE,
                          ANALYZE_USE_TARGET, false);
        walk_from_item(st, s->sourceRelation, false);
        walk_expr(st, s->joinCondition);
        walk_expr(st, (Node *)s->mergeWhenClauses);
        break;
    }
    default:
        *tag = "UNKNOWN";
        break;
    }
    st->scope = saved;
    return ANALYZE_STMT_WRITE;
}

/* ---- statements ----------------------------------------------------- */

analyze_stmt_kind walk_statement(walk_state *st, Node *n, const char **tag)
{
    *tag = "UNKNOWN";
    if (!n) {
        walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "empty statement node", NULL, -1);
        return ANALYZE_STMT_UNSUPPORTED;
    }
    switch (nodeTag(n)) {
    case T_SelectStmt: {
        bool saved = st->select_into;
        st->select_into = false;
        walk_select(st, (SelectStmt *)n);
        bool into = st->select_into;
        st->select_into = saved;
        *tag = into ? "SELECT INTO" : "SELECT";
        return into ? ANALYZE_STMT_DDL : ANALYZE_STMT_READ;
    }
    case T_InsertStmt:
    case T_UpdateStmt:
    case T_DeleteStmt:
    case T_MergeStmt:
        return walk_dml(st, n, tag);
    case T_VariableSetStmt:
        return walk_set(st, (VariableSetStmt *)n, tag);
    default: {
        analyze_stmt_kind kind = ANALYZE_STMT_UNSUPPORTED;
        if (walk_utility(st, n, &kind, tag))
            return kind;
        char detail[48];
        snprintf(detail, sizeof detail, "node type %d", (int)nodeTag(n));
        walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "statement kind the analyser does not handle",
                  detail, -1);
        *tag = "UNKNOWN";
        return ANALYZE_STMT_UNSUPPORTED;
    }
    }
}

/* ---- entry point ---------------------------------------------------- */

typedef struct walk_job {
    walk_state *st;
    RawStmt *raw;
    size_t sql_length;
} walk_job;

/* One statement of the text, under the error guard. */
static void walk_one(void *arg)
{
    walk_job *job = arg;
    walk_state *st = job->st;
    RawStmt *raw = job->raw;
    analysis_stmt *s = builder_add_stmt(st->b);
    if (!s)
        return;
    st->stmt = st->b->a->n_stmts - 1;
    s->location = raw->stmt_location;
    s->length = raw->stmt_len ? raw->stmt_len : (int)job->sql_length - raw->stmt_location;
    s->objects_complete = true;
    s->kind = ANALYZE_STMT_UNSUPPORTED;   /* until walked to the end */
    s->tag = "UNKNOWN";
    st->writes = false;
    st->select_into = false;
    st->in_from_function = st->in_call = false;
    st->creation_schema = NULL;
    st->depth = 0;
    st->scope = NULL;
    const char *tag = "UNKNOWN";
    analyze_stmt_kind kind = walk_statement(st, raw->stmt, &tag);
    s = walk_current_stmt(st);
    if (kind == ANALYZE_STMT_READ && st->writes)
        kind = ANALYZE_STMT_WRITE;
    s->kind = kind;
    s->tag = tag;
}

/* A backend ERROR raised while walking a statement (an unknown node deep in
 * an expression, stack depth): the statement is unsupported, flagged. */
static void record_pg_error(walk_state *st, size_t n_before)
{
    ErrorData *e = CopyErrorData();
    FlushErrorState();
    if (st->b->a->n_stmts == n_before) {   /* failed before its entry was made */
        analysis_stmt *s = builder_add_stmt(st->b);
        if (!s)
            return;
        st->stmt = st->b->a->n_stmts - 1;
        s->tag = "UNKNOWN";
    }
    analysis_stmt *s = walk_current_stmt(st);
    s->kind = ANALYZE_STMT_UNSUPPORTED;
    walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "the analyser failed on this statement",
              e && e->message ? e->message : NULL, -1);
}

int analyze_walk_sql(const char *sql, const analyze_context *ctx, analysis_builder *b,
                     analyze_error *err)
{
    MemoryContext mcx = pg_query_enter_memory_context();
    PgQueryInternalParsetreeAndError r = pg_query_raw_parse(sql);
    int rc = 0;
    if (r.error) {
        snprintf(err->message, sizeof err->message, "%s",
                 r.error->message ? r.error->message : "syntax error");
        err->cursor_position = r.error->cursorpos;
        analyze_parser_error(r.error->message, r.error->filename, err);
        pg_query_free_error(r.error);
        rc = -1;
    } else {
        walk_state st = {.b = b, .ctx = ctx, .sql = sql};
        walk_init_search_path(&st);
        walk_job job = {.st = &st, .sql_length = strlen(sql)};
        ListCell *lc;
        foreach (lc, r.tree) {
            job.raw = lfirst(lc);
            size_t n_before = b->a->n_stmts;
            if (pg_guard_call(walk_one, &job) != 0)
                record_pg_error(&st, n_before);
            if (b->out_of_memory)
                break;
        }
    }
    if (r.stderr_buffer)
        free(r.stderr_buffer);
    pg_query_exit_memory_context(mcx);
    return rc;
}
