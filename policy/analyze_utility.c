/*
 * analyze_utility: the facts of every PostgreSQL 15 statement other than
 * SELECT/INSERT/UPDATE/DELETE/MERGE/SET: DDL (analyze_ddl, for what the
 * analyser models object by object; objects_complete = false for the rest), COPY, EXPLAIN, PREPARE/EXECUTE, cursors, transaction control,
 * and the constructs no policy can see through (DO, CALL, CREATE FUNCTION,
 * LOAD, LISTEN/NOTIFY, ALTER SYSTEM, extensions, per-role settings), which
 * are flagged. raw_expression_tree_walker does not descend into utility
 * statements, so each one is handled here by hand; walk_utility returns
 * false for a node type it does not know and the caller flags it.
 */
#include "policy/analyze_walk.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool defelem_is_true(DefElem *d)
{
    if (!d->arg)
        return true;
    if (IsA(d->arg, String)) {
        const char *v = strVal(d->arg);
        return !(strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0 ||
                 strcasecmp(v, "no") == 0 || strcmp(v, "0") == 0);
    }
    if (IsA(d->arg, Integer))
        return intVal(d->arg) != 0;
    if (IsA(d->arg, Boolean))
        return boolVal(d->arg);
    return true;
}

/* ---- statements that hold other statements ---------------------------- */

static analyze_stmt_kind walk_inner(walk_state *st, Node *query)
{
    const char *tag;
    return walk_statement(st, query, &tag);
}

static analyze_stmt_kind walk_copy(walk_state *st, CopyStmt *c)
{
    analyze_stmt_kind kind = c->is_from ? ANALYZE_STMT_WRITE : ANALYZE_STMT_READ;
    if (c->relation)
        walk_add_rangevar(st, c->relation, c->is_from ? ANALYZE_ACCESS_WRITE : ANALYZE_ACCESS_READ,
                          ANALYZE_USE_COPY, false);
    if (c->query) {
        analyze_stmt_kind inner = walk_inner(st, c->query);
        if (inner == ANALYZE_STMT_WRITE)
            kind = ANALYZE_STMT_WRITE;
        else if (inner == ANALYZE_STMT_UNSUPPORTED)
            kind = inner;
    }
    walk_expr(st, c->whereClause);
    if (c->filename)
        walk_flag(st, c->is_program ? ANALYZE_FLAG_COPY_PROGRAM : ANALYZE_FLAG_COPY_FILE,
                  c->is_program ? "COPY runs a program on the database server"
                                : "COPY reads or writes a file on the database server",
                  c->filename, -1);
    return kind;
}

/* ---- DDL the analyser does not model object by object ------------------ */

typedef struct unmodelled_stmt {
    NodeTag tag;
    const char *name;
} unmodelled_stmt;

static const unmodelled_stmt unmodelled[] = {
    {T_AlterDomainStmt, "ALTER DOMAIN"},
    {T_GrantRoleStmt, "GRANT ROLE"},
    {T_DefineStmt, "CREATE"},
    {T_CreateDomainStmt, "CREATE DOMAIN"},
    {T_CreatedbStmt, "CREATE DATABASE"},
    {T_DropdbStmt, "DROP DATABASE"},
    {T_CreatePLangStmt, "CREATE LANGUAGE"},
    {T_CreateRoleStmt, "CREATE ROLE"},
    {T_AlterRoleStmt, "ALTER ROLE"},
    {T_DropRoleStmt, "DROP ROLE"},
    {T_AlterDatabaseStmt, "ALTER DATABASE"},
    {T_AlterDatabaseRefreshCollStmt, "ALTER DATABASE"},
    {T_CreateConversionStmt, "CREATE CONVERSION"},
    {T_CreateCastStmt, "CREATE CAST"},
    {T_CreateOpClassStmt, "CREATE OPERATOR CLASS"},
    {T_CreateOpFamilyStmt, "CREATE OPERATOR FAMILY"},
    {T_AlterOpFamilyStmt, "ALTER OPERATOR FAMILY"},
    {T_CreateTableSpaceStmt, "CREATE TABLESPACE"},
    {T_DropTableSpaceStmt, "DROP TABLESPACE"},
    {T_AlterObjectDependsStmt, "ALTER EXTENSION DEPENDS"},
    {T_AlterOperatorStmt, "ALTER OPERATOR"},
    {T_AlterTypeStmt, "ALTER TYPE"},
    {T_DropOwnedStmt, "DROP OWNED"},
    {T_ReassignOwnedStmt, "REASSIGN OWNED"},
    {T_CreateEnumStmt, "CREATE TYPE"},
    {T_CreateRangeStmt, "CREATE TYPE"},
    {T_AlterEnumStmt, "ALTER TYPE"},
    {T_AlterTSDictionaryStmt, "ALTER TEXT SEARCH DICTIONARY"},
    {T_AlterTSConfigurationStmt, "ALTER TEXT SEARCH CONFIGURATION"},
    {T_CreateFdwStmt, "CREATE FOREIGN DATA WRAPPER"},
    {T_AlterFdwStmt, "ALTER FOREIGN DATA WRAPPER"},
    {T_CreateForeignServerStmt, "CREATE SERVER"},
    {T_AlterForeignServerStmt, "ALTER SERVER"},
    {T_CreateUserMappingStmt, "CREATE USER MAPPING"},
    {T_AlterUserMappingStmt, "ALTER USER MAPPING"},
    {T_DropUserMappingStmt, "DROP USER MAPPING"},
    {T_AlterTableSpaceOptionsStmt, "ALTER TABLESPACE"},
    {T_AlterTableMoveAllStmt, "ALTER TABLE ALL IN TABLESPACE"},
    {T_SecLabelStmt, "SECURITY LABEL"},
    {T_CreateEventTrigStmt, "CREATE EVENT TRIGGER"},
    {T_AlterEventTrigStmt, "ALTER EVENT TRIGGER"},
    {T_CreateTransformStmt, "CREATE TRANSFORM"},
    {T_CreateAmStmt, "CREATE ACCESS METHOD"},
    {T_CreatePublicationStmt, "CREATE PUBLICATION"},
    {T_AlterPublicationStmt, "ALTER PUBLICATION"},
    {T_CreateSubscriptionStmt, "CREATE SUBSCRIPTION"},
    {T_AlterSubscriptionStmt, "ALTER SUBSCRIPTION"},
    {T_DropSubscriptionStmt, "DROP SUBSCRIPTION"},
    {T_AlterCollationStmt, "ALTER COLLATION"},
    {T_AlterStatsStmt, "ALTER STATISTICS"},
    {T_AlterFunctionStmt, "ALTER FUNCTION"},
    {T_AlterDefaultPrivilegesStmt, "ALTER DEFAULT PRIVILEGES"},
};

static const char *transaction_tag(TransactionStmtKind k)
{
    switch (k) {
    case TRANS_STMT_BEGIN: return "BEGIN";
    case TRANS_STMT_START: return "START TRANSACTION";
    case TRANS_STMT_COMMIT: return "COMMIT";
    case TRANS_STMT_ROLLBACK: return "ROLLBACK";
    case TRANS_STMT_SAVEPOINT: return "SAVEPOINT";
    case TRANS_STMT_RELEASE: return "RELEASE";
    case TRANS_STMT_ROLLBACK_TO: return "ROLLBACK";
    case TRANS_STMT_PREPARE: return "PREPARE TRANSACTION";
    case TRANS_STMT_COMMIT_PREPARED: return "COMMIT PREPARED";
    case TRANS_STMT_ROLLBACK_PREPARED: return "ROLLBACK PREPARED";
    }
    return "TRANSACTION";
}

static void discard(walk_state *st, DiscardStmt *d)
{
    const char *what = "all";
    switch (d->target) {
    case DISCARD_ALL: what = "all"; break;
    case DISCARD_PLANS: what = "plans"; break;
    case DISCARD_SEQUENCES: what = "sequences"; break;
    case DISCARD_TEMP: what = "temp"; break;
    }
    analysis_setting *s = builder_add_setting(st->b);
    if (s) {
        s->stmt_index = st->stmt;
        s->action = ANALYZE_SET_DISCARD;
        s->name = what;
        s->location = -1;
    }
    if (d->target == DISCARD_ALL) {
        /* DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT and RESET ALL */
        analysis_role_change *r = builder_add_role(st->b);
        if (r) {
            r->stmt_index = st->stmt;
            r->action = ANALYZE_ROLE_RESET_SESSION_AUTH;
            r->location = -1;
        }
    }
}

/* ---- the statement families walk_utility dispatches to ---------------- */

/*
 * Each family helper below handles the statement kinds of one family: it
 * sets *kind and *tag and returns true for a node it knows, and returns
 * false, touching nothing, for any other node. walk_utility has already set
 * *kind to ANALYZE_STMT_DDL, which the DDL families keep.
 */

/* Handles the statements that read or write table data: COPY, TRUNCATE, REFRESH. */
static bool walk_data_utility(walk_state *st, Node *n, analyze_stmt_kind *kind,
                              const char **tag)
{
    switch (nodeTag(n)) {
    case T_CopyStmt:
        *tag = "COPY";
        *kind = walk_copy(st, (CopyStmt *)n);
        return true;
    case T_TruncateStmt: {
        *tag = "TRUNCATE";
        *kind = ANALYZE_STMT_WRITE;
        ListCell *lc;
        foreach (lc, ((TruncateStmt *)n)->relations)
            walk_add_rangevar(st, lfirst(lc), ANALYZE_ACCESS_WRITE, ANALYZE_USE_UTILITY, false);
        return true;
    }
    case T_RefreshMatViewStmt:
        *tag = "REFRESH MATERIALIZED VIEW";
        *kind = ANALYZE_STMT_WRITE;
        walk_add_rangevar(st, ((RefreshMatViewStmt *)n)->relation, ANALYZE_ACCESS_WRITE,
                          ANALYZE_USE_UTILITY, false);
        return true;
    default:
        return false;
    }
}

/* Handles EXPLAIN and the prepared statements: PREPARE, EXECUTE, DEALLOCATE. */
static bool walk_explain_or_prepared(walk_state *st, analysis_stmt *cur, Node *n,
                                     analyze_stmt_kind *kind, const char **tag)
{
    switch (nodeTag(n)) {
    case T_ExplainStmt: {
        ExplainStmt *e = (ExplainStmt *)n;
        *tag = "EXPLAIN";
        ListCell *lc;
        foreach (lc, e->options) {
            DefElem *d = lfirst(lc);
            if (IsA(d, DefElem) && d->defname && !strcmp(d->defname, "analyze") &&
                defelem_is_true(d))
                cur->explain_analyze = true;
            if (IsA(d, DefElem) && d->defname && !strcmp(d->defname, "verbose") &&
                defelem_is_true(d))
                cur->explain_verbose = true;
        }
        *kind = walk_inner(st, e->query);
        return true;
    }
    case T_PrepareStmt: {
        PrepareStmt *p = (PrepareStmt *)n;
        *tag = "PREPARE";
        cur->prepare_name = builder_strdup(st->b, p->name);
        *kind = walk_inner(st, p->query);
        return true;
    }
    case T_ExecuteStmt: {
        ExecuteStmt *e = (ExecuteStmt *)n;
        *tag = "EXECUTE";
        *kind = ANALYZE_STMT_UTILITY;
        cur->execute_name = builder_strdup(st->b, e->name);
        walk_expr(st, (Node *)e->params);
        walk_flag(st, ANALYZE_FLAG_EXECUTE,
                  "EXECUTE runs a prepared statement: its facts are those of its PREPARE",
                  e->name, -1);
        return true;
    }
    case T_DeallocateStmt: {
        DeallocateStmt *d = (DeallocateStmt *)n;
        *tag = "DEALLOCATE";
        *kind = ANALYZE_STMT_UTILITY;
        cur->deallocate_name = builder_strdup(st->b, d->name);
        cur->deallocate_all = d->name == NULL;
        return true;
    }
    default:
        return false;
    }
}

/* Handles the cursor statements: DECLARE CURSOR, FETCH/MOVE, CLOSE. */
static bool walk_cursor(walk_state *st, analysis_stmt *cur, Node *n, analyze_stmt_kind *kind,
                        const char **tag)
{
    switch (nodeTag(n)) {
    case T_DeclareCursorStmt: {
        DeclareCursorStmt *d = (DeclareCursorStmt *)n;
        *tag = "DECLARE CURSOR";
        cur->cursor_name = builder_strdup(st->b, d->portalname);
        *kind = walk_inner(st, d->query);
        return true;
    }
    case T_FetchStmt: {
        FetchStmt *f = (FetchStmt *)n;
        *tag = f->ismove ? "MOVE" : "FETCH";
        *kind = ANALYZE_STMT_UTILITY;
        cur->cursor_name = builder_strdup(st->b, f->portalname);
        return true;
    }
    case T_ClosePortalStmt:
        *tag = "CLOSE CURSOR";
        *kind = ANALYZE_STMT_UTILITY;
        cur->cursor_name = builder_strdup(st->b, ((ClosePortalStmt *)n)->portalname);
        return true;
    default:
        return false;
    }
}

/* Handles transaction control and the session statements SHOW and DISCARD. */
static bool walk_session_utility(walk_state *st, Node *n, analyze_stmt_kind *kind,
                                 const char **tag)
{
    switch (nodeTag(n)) {
    case T_TransactionStmt:
        *tag = transaction_tag(((TransactionStmt *)n)->kind);
        *kind = ANALYZE_STMT_TRANSACTION;
        return true;
    case T_ConstraintsSetStmt:
        *tag = "SET CONSTRAINTS";
        *kind = ANALYZE_STMT_TRANSACTION;
        return true;
    case T_VariableShowStmt:
        *tag = "SHOW";
        *kind = ANALYZE_STMT_UTILITY;
        return true;
    case T_DiscardStmt:
        *tag = "DISCARD";
        *kind = ANALYZE_STMT_SESSION;
        discard(st, (DiscardStmt *)n);
        return true;
    default:
        return false;
    }
}

/* Records the tables of a VACUUM or ANALYZE; with none named it touches them all. */
static void walk_vacuum(walk_state *st, VacuumStmt *v)
{
    if (!v->rels)
        walk_incomplete(st);
    ListCell *lc;
    foreach (lc, v->rels) {
        VacuumRelation *vr = lfirst(lc);
        if (IsA(vr, VacuumRelation) && vr->relation)
            walk_add_rangevar(st, vr->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_UTILITY,
                              false);
        else
            walk_incomplete(st);
    }
}

/* Handles the maintenance statements: LOCK, VACUUM/ANALYZE, CLUSTER, REINDEX, CHECKPOINT. */
static bool walk_maintenance(walk_state *st, Node *n, analyze_stmt_kind *kind, const char **tag)
{
    switch (nodeTag(n)) {
    case T_LockStmt: {
        LockStmt *l = (LockStmt *)n;
        *tag = "LOCK TABLE";
        *kind = ANALYZE_STMT_UTILITY;
        /* ACCESS SHARE (1) is what SELECT takes; any stronger mode blocks
         * other sessions and needs a write grant on the server too */
        unsigned access = l->mode <= 1 ? ANALYZE_ACCESS_READ : ANALYZE_ACCESS_WRITE;
        ListCell *lc;
        foreach (lc, l->relations)
            walk_add_rangevar(st, lfirst(lc), access, ANALYZE_USE_UTILITY, false);
        return true;
    }
    case T_VacuumStmt: {
        VacuumStmt *v = (VacuumStmt *)n;
        *tag = v->is_vacuumcmd ? "VACUUM" : "ANALYZE";
        *kind = ANALYZE_STMT_UTILITY;
        walk_vacuum(st, v);
        return true;
    }
    case T_ClusterStmt: {
        ClusterStmt *c = (ClusterStmt *)n;
        *tag = "CLUSTER";
        *kind = ANALYZE_STMT_UTILITY;
        if (c->relation)
            walk_add_rangevar(st, c->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_UTILITY, false);
        else
            walk_incomplete(st);
        return true;
    }
    case T_ReindexStmt: {
        ReindexStmt *r = (ReindexStmt *)n;
        *tag = "REINDEX";
        *kind = ANALYZE_STMT_UTILITY;
        if (r->relation)
            walk_add_rangevar(st, r->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_UTILITY, false);
        else if (r->kind == REINDEX_OBJECT_SCHEMA && r->name)
            walk_add_schema(st, r->name);
        else
            walk_incomplete(st);
        return true;
    }
    case T_CheckPointStmt:
        *tag = "CHECKPOINT";
        *kind = ANALYZE_STMT_UTILITY;
        walk_incomplete(st);
        return true;
    default:
        return false;
    }
}

/* Flags a DO block, naming its language (plpgsql unless it says otherwise). */
static void walk_do(walk_state *st, DoStmt *stmt)
{
    const char *language = "plpgsql";
    ListCell *lc;
    foreach (lc, stmt->args) {
        DefElem *d = lfirst(lc);
        if (IsA(d, DefElem) && !strcmp(d->defname, "language") && d->arg &&
            IsA(d->arg, String))
            language = strVal(d->arg);
    }
    walk_flag(st, ANALYZE_FLAG_DO, "DO runs procedural code the analyser cannot see into",
              language, -1);
}

/* Walks the arguments of a CALL and flags the procedure it runs. */
static void walk_call(walk_state *st, CallStmt *c)
{
    const char *name = NULL;
    if (c->funccall) {
        st->in_call = true;
        walk_expr(st, (Node *)c->funccall);
        st->in_call = false;
        if (c->funccall->funcname)
            name = strVal(llast(c->funccall->funcname));
    }
    walk_flag(st, ANALYZE_FLAG_CALL, "CALL runs a procedure the analyser cannot see into",
              name, -1);
}

/* Handles the statements that run or install code no policy can see into. */
static bool walk_opaque_code(walk_state *st, Node *n, analyze_stmt_kind *kind, const char **tag)
{
    switch (nodeTag(n)) {
    case T_DoStmt:
        *tag = "DO";
        *kind = ANALYZE_STMT_UTILITY;
        walk_do(st, (DoStmt *)n);
        return true;
    case T_CallStmt:
        *tag = "CALL";
        *kind = ANALYZE_STMT_UTILITY;
        walk_call(st, (CallStmt *)n);
        return true;
    case T_CreateFunctionStmt: {
        CreateFunctionStmt *f = (CreateFunctionStmt *)n;
        *tag = f->is_procedure ? "CREATE PROCEDURE" : "CREATE FUNCTION";
        walk_incomplete(st);
        walk_flag(st, ANALYZE_FLAG_CREATE_FUNCTION,
                  "a function body is code the analyser cannot see into",
                  f->funcname ? strVal(llast(f->funcname)) : NULL, -1);
        return true;
    }
    case T_LoadStmt:
        *tag = "LOAD";
        *kind = ANALYZE_STMT_UTILITY;
        walk_flag(st, ANALYZE_FLAG_LOAD, "LOAD loads a shared library into the server",
                  ((LoadStmt *)n)->filename, -1);
        return true;
    case T_CreateExtensionStmt:
        *tag = "CREATE EXTENSION";
        walk_incomplete(st);
        walk_flag(st, ANALYZE_FLAG_CREATE_EXTENSION, "an extension installs code in the server",
                  ((CreateExtensionStmt *)n)->extname, -1);
        return true;
    case T_AlterExtensionStmt:
        *tag = "ALTER EXTENSION";
        walk_incomplete(st);
        walk_flag(st, ANALYZE_FLAG_CREATE_EXTENSION, "an extension installs code in the server",
                  ((AlterExtensionStmt *)n)->extname, -1);
        return true;
    case T_AlterExtensionContentsStmt:
        *tag = "ALTER EXTENSION";
        walk_incomplete(st);
        walk_flag(st, ANALYZE_FLAG_CREATE_EXTENSION, "an extension installs code in the server",
                  ((AlterExtensionContentsStmt *)n)->extname, -1);
        return true;
    default:
        return false;
    }
}

/* Handles LISTEN, UNLISTEN and NOTIFY, which talk to other sessions. */
static bool walk_listen_notify(walk_state *st, Node *n, analyze_stmt_kind *kind,
                               const char **tag)
{
    switch (nodeTag(n)) {
    case T_ListenStmt:
        *tag = "LISTEN";
        *kind = ANALYZE_STMT_UTILITY;
        walk_flag(st, ANALYZE_FLAG_LISTEN_NOTIFY, "LISTEN subscribes to server notifications",
                  ((ListenStmt *)n)->conditionname, -1);
        return true;
    case T_UnlistenStmt:
        /* ends only this session's subscriptions, which LISTEN never made:
         * a no-op that connection pools send on every reset (asyncpg) */
        *tag = "UNLISTEN";
        *kind = ANALYZE_STMT_UTILITY;
        return true;
    case T_NotifyStmt:
        *tag = "NOTIFY";
        *kind = ANALYZE_STMT_UTILITY;
        walk_flag(st, ANALYZE_FLAG_LISTEN_NOTIFY, "NOTIFY sends a message to other sessions",
                  ((NotifyStmt *)n)->conditionname, -1);
        return true;
    default:
        return false;
    }
}

/* Handles ALTER SYSTEM and ALTER ROLE/DATABASE ... SET: settings of later sessions. */
static bool walk_persistent_settings(walk_state *st, Node *n, const char **tag)
{
    switch (nodeTag(n)) {
    case T_AlterSystemStmt: {
        AlterSystemStmt *a = (AlterSystemStmt *)n;
        *tag = "ALTER SYSTEM";
        walk_incomplete(st);
        walk_flag(st, ANALYZE_FLAG_ALTER_SYSTEM, "ALTER SYSTEM changes the server configuration",
                  a->setstmt ? a->setstmt->name : NULL, -1);
        return true;
    }
    case T_AlterRoleSetStmt: {
        AlterRoleSetStmt *a = (AlterRoleSetStmt *)n;
        *tag = "ALTER ROLE";
        walk_incomplete(st);
        walk_flag(st, ANALYZE_FLAG_ROLE_DB_SETTING,
                  "ALTER ROLE ... SET changes settings of later sessions",
                  a->setstmt ? a->setstmt->name : NULL, -1);
        return true;
    }
    case T_AlterDatabaseSetStmt: {
        AlterDatabaseSetStmt *a = (AlterDatabaseSetStmt *)n;
        *tag = "ALTER DATABASE";
        walk_incomplete(st);
        walk_flag(st, ANALYZE_FLAG_ROLE_DB_SETTING,
                  "ALTER DATABASE ... SET changes settings of later sessions",
                  a->setstmt ? a->setstmt->name : NULL, -1);
        return true;
    }
    default:
        return false;
    }
}

/* Handles the DDL listed in unmodelled[]: named, marked as touching unknown objects. */
static bool walk_unmodelled(walk_state *st, Node *n, analyze_stmt_kind *kind, const char **tag)
{
    for (size_t i = 0; i < sizeof unmodelled / sizeof unmodelled[0]; i++) {
        if (nodeTag(n) == unmodelled[i].tag) {
            *tag = unmodelled[i].name;
            *kind = ANALYZE_STMT_DDL;
            walk_incomplete(st);
            return true;
        }
    }
    return false;
}

/*
 * The facts of a utility statement: each family helper in turn, until one
 * knows the node. A node none of them knows returns false, and the caller
 * flags it, so an unknown statement is denied.
 */
bool walk_utility(walk_state *st, Node *n, analyze_stmt_kind *kind, const char **tag)
{
    analysis_stmt *cur = walk_current_stmt(st);
    *kind = ANALYZE_STMT_DDL;
    return walk_data_utility(st, n, kind, tag) ||
           walk_explain_or_prepared(st, cur, n, kind, tag) ||
           walk_cursor(st, cur, n, kind, tag) ||
           walk_session_utility(st, n, kind, tag) ||
           walk_maintenance(st, n, kind, tag) ||
           walk_ddl(st, cur, n, tag) ||
           walk_opaque_code(st, n, kind, tag) ||
           walk_listen_notify(st, n, kind, tag) ||
           walk_persistent_settings(st, n, tag) ||
           walk_unmodelled(st, n, kind, tag);
}
