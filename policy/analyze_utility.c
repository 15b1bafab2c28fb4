/*
 * analyze_utility: the facts of every PostgreSQL 15 statement other than
 * SELECT/INSERT/UPDATE/DELETE/MERGE/SET: DDL (with the relations and
 * schemas it touches when the analyser models them, objects_complete = false
 * when not), COPY, EXPLAIN, PREPARE/EXECUTE, cursors, transaction control,
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

static void incomplete(walk_state *st)
{
    walk_current_stmt(st)->objects_complete = false;
}

/* ---- pieces shared by CREATE TABLE and ALTER TABLE -------------------- */

static void walk_constraint(walk_state *st, Constraint *c)
{
    if (c->pktable)   /* FOREIGN KEY ... REFERENCES t */
        walk_add_rangevar(st, c->pktable, ANALYZE_ACCESS_READ, ANALYZE_USE_DDL, false);
    walk_expr(st, c->raw_expr);
    walk_expr(st, c->where_clause);
}

static void walk_column_def(walk_state *st, ColumnDef *cd)
{
    walk_expr(st, cd->raw_default);
    ListCell *lc;
    foreach (lc, cd->constraints)
        if (IsA(lfirst(lc), Constraint))
            walk_constraint(st, lfirst(lc));
}

static void walk_table_element(walk_state *st, Node *e)
{
    if (!e)
        return;
    if (IsA(e, ColumnDef))
        walk_column_def(st, (ColumnDef *)e);
    else if (IsA(e, Constraint))
        walk_constraint(st, (Constraint *)e);
    else if (IsA(e, TableLikeClause))   /* LIKE t: copies t's definition */
        walk_add_rangevar(st, ((TableLikeClause *)e)->relation, ANALYZE_ACCESS_READ,
                          ANALYZE_USE_DDL, false);
    else
        incomplete(st);
}

static void walk_create_table(walk_state *st, CreateStmt *cs)
{
    walk_add_rangevar(st, cs->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, true);
    ListCell *lc;
    foreach (lc, cs->tableElts)
        walk_table_element(st, lfirst(lc));
    foreach (lc, cs->constraints)
        walk_table_element(st, lfirst(lc));
    /* INHERITS (p) / PARTITION OF p: p's content changes */
    foreach (lc, cs->inhRelations)
        if (IsA(lfirst(lc), RangeVar))
            walk_add_rangevar(st, lfirst(lc), ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
    if (cs->ofTypename)
        incomplete(st);
}

static void walk_alter_table(walk_state *st, AlterTableStmt *at)
{
    walk_add_rangevar(st, at->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
    ListCell *lc;
    foreach (lc, at->cmds) {
        AlterTableCmd *cmd = lfirst(lc);
        if (!IsA(cmd, AlterTableCmd) || !cmd->def)
            continue;
        Node *def = cmd->def;
        switch (nodeTag(def)) {
        case T_ColumnDef:
            walk_column_def(st, (ColumnDef *)def);
            break;
        case T_Constraint:
            walk_constraint(st, (Constraint *)def);
            break;
        case T_RangeVar:   /* INHERIT / NO INHERIT parent */
            walk_add_rangevar(st, (RangeVar *)def, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
            break;
        case T_PartitionCmd:   /* ATTACH / DETACH PARTITION */
            walk_add_rangevar(st, ((PartitionCmd *)def)->name, ANALYZE_ACCESS_WRITE,
                              ANALYZE_USE_DDL, false);
            break;
        case T_ReplicaIdentityStmt:
        case T_List:   /* SET (...) options */
        case T_String:
        case T_Integer:
            break;
        default:
            walk_expr(st, def);   /* ALTER COLUMN ... TYPE ... USING expr, SET DEFAULT expr */
            break;
        }
    }
}

/* ---- objects named by lists ------------------------------------------ */

static bool is_relation_object(ObjectType t)
{
    return t == OBJECT_TABLE || t == OBJECT_VIEW || t == OBJECT_MATVIEW ||
           t == OBJECT_INDEX || t == OBJECT_SEQUENCE || t == OBJECT_FOREIGN_TABLE;
}

static void walk_drop(walk_state *st, DropStmt *d)
{
    ListCell *lc;
    if (is_relation_object(d->removeType)) {
        foreach (lc, d->objects)
            if (!IsA(lfirst(lc), List) ||
                !walk_add_relation_names(st, lfirst(lc), ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, 0))
                incomplete(st);
    } else if (d->removeType == OBJECT_POLICY || d->removeType == OBJECT_TRIGGER || d->removeType == OBJECT_RULE) {
        /* the table's name, then the policy's, trigger's or rule's */
        foreach (lc, d->objects)
            if (!IsA(lfirst(lc), List) ||
                !walk_add_relation_names(st, lfirst(lc), ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, 1))
                incomplete(st);
    } else if (d->removeType == OBJECT_SCHEMA) {
        foreach (lc, d->objects) {
            if (IsA(lfirst(lc), String))
                walk_add_schema(st, strVal(lfirst(lc)));
            else
                incomplete(st);
        }
    } else {
        incomplete(st);
    }
}

static void walk_comment(walk_state *st, CommentStmt *c)
{
    if (is_relation_object(c->objtype) && c->object && IsA(c->object, List)) {
        if (!walk_add_relation_names(st, (List *)c->object, ANALYZE_ACCESS_WRITE,
                                     ANALYZE_USE_DDL, 0))
            incomplete(st);
    } else if ((c->objtype == OBJECT_COLUMN || c->objtype == OBJECT_TABCONSTRAINT || c->objtype == OBJECT_TRIGGER ||
                c->objtype == OBJECT_RULE) && c->object && IsA(c->object, List)) {
        /* the table's name, then the column's, constraint's, trigger's or rule's */
        if (!walk_add_relation_names(st, (List *)c->object, ANALYZE_ACCESS_WRITE,
                                     ANALYZE_USE_DDL, 1))
            incomplete(st);
    } else if (c->objtype == OBJECT_SCHEMA && c->object && IsA(c->object, String)) {
        walk_add_schema(st, strVal(c->object));
    } else {
        incomplete(st);
    }
}

static void walk_grant(walk_state *st, GrantStmt *g)
{
    ListCell *lc;
    if (g->targtype == ACL_TARGET_OBJECT &&
        (g->objtype == OBJECT_TABLE || g->objtype == OBJECT_SEQUENCE)) {
        foreach (lc, g->objects) {
            if (IsA(lfirst(lc), RangeVar))
                walk_add_rangevar(st, lfirst(lc), ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
            else
                incomplete(st);
        }
    } else if ((g->targtype == ACL_TARGET_OBJECT && g->objtype == OBJECT_SCHEMA) ||
               g->targtype == ACL_TARGET_ALL_IN_SCHEMA) {
        foreach (lc, g->objects) {
            if (IsA(lfirst(lc), String))
                walk_add_schema(st, strVal(lfirst(lc)));
            else
                incomplete(st);
        }
    } else {
        incomplete(st);
    }
}

static void walk_rename(walk_state *st, RenameStmt *r)
{
    if (r->relation) {
        analysis_relation *old = walk_add_rangevar(st, r->relation, ANALYZE_ACCESS_WRITE,
                                                   ANALYZE_USE_DDL, false);
        if (old && is_relation_object(r->renameType) && r->newname) {
            /* the new name lands in the same schema: the old one's, or any
             * of the schemas an unqualified old name may resolve to */
            char *schema = old->schema ? (char *)old->schema : NULL;
            analyze_resolution res = old->resolution;
            const char *const *cand = old->candidates;
            size_t n_cand = old->n_candidates;
            analysis_relation *fresh =
                walk_add_relation(st, r->relation->catalogname, schema, r->newname, 'p', -1,
                                  ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, true);
            if (fresh && !schema && (res == ANALYZE_RES_UNRESOLVED || res == ANALYZE_RES_NOT_FOUND) && n_cand) {
                fresh->schema = NULL;
                fresh->resolution = ANALYZE_RES_UNRESOLVED;
                fresh->candidates = cand;
                fresh->n_candidates = n_cand;
            } else if (fresh && !schema) {
                incomplete(st);
            }
        }
    } else if (r->renameType == OBJECT_SCHEMA) {
        walk_add_schema(st, r->subname);
        walk_add_schema(st, r->newname);
    } else {
        incomplete(st);
    }
}

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

static void walk_create_schema(walk_state *st, CreateSchemaStmt *cs)
{
    if (!cs->schemaname) {   /* CREATE SCHEMA AUTHORIZATION role: named after the role */
        incomplete(st);
        if (cs->schemaElts)
            walk_flag(st, ANALYZE_FLAG_UNSUPPORTED,
                      "CREATE SCHEMA AUTHORIZATION with elements", NULL, -1);
        return;
    }
    walk_add_schema(st, cs->schemaname);
    if (!cs->schemaElts)
        return;
    /* The elements run with the new schema at the front of the path. */
    const char *const *saved_path = st->path;
    size_t saved_n = st->n_path;
    bool saved_unknown = st->path_unknown;
    const char **path = arena_alloc(st->b->arena, (saved_n + 1) * sizeof *path);
    if (!path) {
        st->b->out_of_memory = true;
        return;
    }
    path[0] = cs->schemaname;
    for (size_t i = 0; i < saved_n; i++)
        path[i + 1] = saved_path[i];
    st->path = path;
    st->n_path = saved_n + 1;
    const char *saved_creation = st->creation_schema;
    st->creation_schema = cs->schemaname;
    ListCell *lc;
    foreach (lc, cs->schemaElts)
        walk_inner(st, lfirst(lc));
    st->creation_schema = saved_creation;
    st->path = saved_path;
    st->n_path = saved_n;
    st->path_unknown = saved_unknown;
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
        incomplete(st);
    ListCell *lc;
    foreach (lc, v->rels) {
        VacuumRelation *vr = lfirst(lc);
        if (IsA(vr, VacuumRelation) && vr->relation)
            walk_add_rangevar(st, vr->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_UTILITY,
                              false);
        else
            incomplete(st);
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
            incomplete(st);
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
            incomplete(st);
        return true;
    }
    case T_CheckPointStmt:
        *tag = "CHECKPOINT";
        *kind = ANALYZE_STMT_UTILITY;
        incomplete(st);
        return true;
    default:
        return false;
    }
}

/* Handles the DDL with its own walker: tables, DROP, COMMENT, GRANT/REVOKE, renames. */
static bool walk_object_ddl(walk_state *st, Node *n, const char **tag)
{
    switch (nodeTag(n)) {
    case T_CreateStmt:
        *tag = "CREATE TABLE";
        walk_create_table(st, (CreateStmt *)n);
        return true;
    case T_CreateForeignTableStmt:
        *tag = "CREATE FOREIGN TABLE";
        walk_create_table(st, &((CreateForeignTableStmt *)n)->base);
        incomplete(st);   /* its rows come from a foreign server */
        return true;
    case T_AlterTableStmt:
        *tag = "ALTER TABLE";
        walk_alter_table(st, (AlterTableStmt *)n);
        return true;
    case T_DropStmt:
        *tag = "DROP";
        walk_drop(st, (DropStmt *)n);
        return true;
    case T_CommentStmt:
        *tag = "COMMENT";
        walk_comment(st, (CommentStmt *)n);
        return true;
    case T_GrantStmt:
        *tag = ((GrantStmt *)n)->is_grant ? "GRANT" : "REVOKE";
        walk_grant(st, (GrantStmt *)n);
        return true;
    case T_RenameStmt:
        *tag = "ALTER";
        walk_rename(st, (RenameStmt *)n);
        return true;
    default:
        return false;
    }
}

/* Records CREATE TABLE AS / CREATE MATERIALIZED VIEW: the new table and its query. */
static void walk_create_table_as(walk_state *st, analysis_stmt *cur, CreateTableAsStmt *c)
{
    if (c->into)
        walk_add_rangevar(st, c->into->rel, ANALYZE_ACCESS_WRITE, ANALYZE_USE_TARGET, true);
    if (c->query && IsA(c->query, ExecuteStmt)) {
        ExecuteStmt *e = (ExecuteStmt *)c->query;
        cur->execute_name = builder_strdup(st->b, e->name);
        walk_expr(st, (Node *)e->params);
        walk_flag(st, ANALYZE_FLAG_EXECUTE,
                  "CREATE TABLE AS EXECUTE runs a prepared statement", e->name, -1);
    } else {
        walk_inner(st, c->query);
    }
}

/* Handles the DDL that creates or alters a relation other than a plain table. */
static bool walk_relation_ddl(walk_state *st, analysis_stmt *cur, Node *n, const char **tag)
{
    switch (nodeTag(n)) {
    case T_IndexStmt: {
        IndexStmt *i = (IndexStmt *)n;
        *tag = "CREATE INDEX";
        walk_add_rangevar(st, i->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
        walk_expr(st, (Node *)i->indexParams);
        walk_expr(st, (Node *)i->indexIncludingParams);
        walk_expr(st, i->whereClause);
        return true;
    }
    case T_ViewStmt: {
        ViewStmt *v = (ViewStmt *)n;
        *tag = "CREATE VIEW";
        walk_add_rangevar(st, v->view, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, true);
        walk_inner(st, v->query);
        return true;
    }
    case T_CreateTableAsStmt: {
        CreateTableAsStmt *c = (CreateTableAsStmt *)n;
        *tag = c->objtype == OBJECT_MATVIEW ? "CREATE MATERIALIZED VIEW" : "CREATE TABLE AS";
        walk_create_table_as(st, cur, c);
        return true;
    }
    case T_CreateSeqStmt:
        *tag = "CREATE SEQUENCE";
        walk_add_rangevar(st, ((CreateSeqStmt *)n)->sequence, ANALYZE_ACCESS_WRITE,
                          ANALYZE_USE_DDL, true);
        return true;
    case T_AlterSeqStmt:
        *tag = "ALTER SEQUENCE";
        walk_add_rangevar(st, ((AlterSeqStmt *)n)->sequence, ANALYZE_ACCESS_WRITE,
                          ANALYZE_USE_DDL, false);
        return true;
    case T_CompositeTypeStmt:
        *tag = "CREATE TYPE";
        walk_add_rangevar(st, ((CompositeTypeStmt *)n)->typevar, ANALYZE_ACCESS_WRITE,
                          ANALYZE_USE_DDL, true);
        return true;
    default:
        return false;
    }
}

/* Records the tables and expressions of a CREATE STATISTICS. */
static void walk_create_stats(walk_state *st, CreateStatsStmt *s)
{
    ListCell *lc;
    foreach (lc, s->relations) {
        if (IsA(lfirst(lc), RangeVar))
            walk_add_rangevar(st, lfirst(lc), ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
        else
            incomplete(st);
    }
    foreach (lc, s->exprs) {
        StatsElem *e = lfirst(lc);
        if (IsA(e, StatsElem))
            walk_expr(st, e->expr);
    }
}

/* Handles the DDL that hangs triggers, rules, policies or statistics on a table. */
static bool walk_table_attachment_ddl(walk_state *st, Node *n, const char **tag)
{
    switch (nodeTag(n)) {
    case T_CreateTrigStmt: {
        CreateTrigStmt *t = (CreateTrigStmt *)n;
        *tag = "CREATE TRIGGER";
        walk_add_rangevar(st, t->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
        if (t->constrrel)
            walk_add_rangevar(st, t->constrrel, ANALYZE_ACCESS_READ, ANALYZE_USE_DDL, false);
        walk_add_function_name(st, t->funcname, -1, list_length(t->args));
        walk_expr(st, t->whenClause);
        incomplete(st);   /* the function runs later, on other people's writes */
        return true;
    }
    case T_RuleStmt: {
        RuleStmt *r = (RuleStmt *)n;
        *tag = "CREATE RULE";
        walk_add_rangevar(st, r->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
        walk_expr(st, r->whereClause);
        ListCell *lc;
        foreach (lc, r->actions)
            walk_inner(st, lfirst(lc));
        walk_flag(st, ANALYZE_FLAG_RULE, "a rule rewrites later queries on the table",
                  r->rulename, -1);
        return true;
    }
    case T_CreatePolicyStmt: {
        CreatePolicyStmt *p = (CreatePolicyStmt *)n;
        *tag = "CREATE POLICY";
        walk_add_rangevar(st, p->table, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
        walk_expr(st, p->qual);
        walk_expr(st, p->with_check);
        return true;
    }
    case T_AlterPolicyStmt: {
        AlterPolicyStmt *p = (AlterPolicyStmt *)n;
        *tag = "ALTER POLICY";
        walk_add_rangevar(st, p->table, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
        walk_expr(st, p->qual);
        walk_expr(st, p->with_check);
        return true;
    }
    case T_CreateStatsStmt:
        *tag = "CREATE STATISTICS";
        walk_create_stats(st, (CreateStatsStmt *)n);
        return true;
    default:
        return false;
    }
}

/* Handles the DDL about schemas and owners: SET SCHEMA, OWNER TO, CREATE/IMPORT SCHEMA. */
static bool walk_schema_ddl(walk_state *st, Node *n, const char **tag)
{
    switch (nodeTag(n)) {
    case T_AlterObjectSchemaStmt: {
        AlterObjectSchemaStmt *a = (AlterObjectSchemaStmt *)n;
        *tag = "ALTER SET SCHEMA";
        if (a->relation) {
            walk_add_rangevar(st, a->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
            walk_add_relation(st, NULL, a->newschema, a->relation->relname, 'p', -1,
                              ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, true);
        } else {
            incomplete(st);
        }
        walk_add_schema(st, a->newschema);
        return true;
    }
    case T_AlterOwnerStmt: {
        AlterOwnerStmt *a = (AlterOwnerStmt *)n;
        *tag = "ALTER OWNER";
        if (a->relation)
            walk_add_rangevar(st, a->relation, ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, false);
        else if (a->objectType == OBJECT_SCHEMA && a->object && IsA(a->object, String))
            walk_add_schema(st, strVal(a->object));
        else
            incomplete(st);
        return true;
    }
    case T_CreateSchemaStmt:
        *tag = "CREATE SCHEMA";
        walk_create_schema(st, (CreateSchemaStmt *)n);
        return true;
    case T_ImportForeignSchemaStmt:
        *tag = "IMPORT FOREIGN SCHEMA";
        walk_add_schema(st, ((ImportForeignSchemaStmt *)n)->local_schema);
        incomplete(st);
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
        incomplete(st);
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
        incomplete(st);
        walk_flag(st, ANALYZE_FLAG_CREATE_EXTENSION, "an extension installs code in the server",
                  ((CreateExtensionStmt *)n)->extname, -1);
        return true;
    case T_AlterExtensionStmt:
        *tag = "ALTER EXTENSION";
        incomplete(st);
        walk_flag(st, ANALYZE_FLAG_CREATE_EXTENSION, "an extension installs code in the server",
                  ((AlterExtensionStmt *)n)->extname, -1);
        return true;
    case T_AlterExtensionContentsStmt:
        *tag = "ALTER EXTENSION";
        incomplete(st);
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
        incomplete(st);
        walk_flag(st, ANALYZE_FLAG_ALTER_SYSTEM, "ALTER SYSTEM changes the server configuration",
                  a->setstmt ? a->setstmt->name : NULL, -1);
        return true;
    }
    case T_AlterRoleSetStmt: {
        AlterRoleSetStmt *a = (AlterRoleSetStmt *)n;
        *tag = "ALTER ROLE";
        incomplete(st);
        walk_flag(st, ANALYZE_FLAG_ROLE_DB_SETTING,
                  "ALTER ROLE ... SET changes settings of later sessions",
                  a->setstmt ? a->setstmt->name : NULL, -1);
        return true;
    }
    case T_AlterDatabaseSetStmt: {
        AlterDatabaseSetStmt *a = (AlterDatabaseSetStmt *)n;
        *tag = "ALTER DATABASE";
        incomplete(st);
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
            incomplete(st);
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
           walk_object_ddl(st, n, tag) ||
           walk_relation_ddl(st, cur, n, tag) ||
           walk_table_attachment_ddl(st, n, tag) ||
           walk_schema_ddl(st, n, tag) ||
           walk_opaque_code(st, n, kind, tag) ||
           walk_listen_notify(st, n, kind, tag) ||
           walk_persistent_settings(st, n, tag) ||
           walk_unmodelled(st, n, kind, tag);
}
