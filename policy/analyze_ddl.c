/*
 * analyze_ddl: the DDL the analyser models object by object, for
 * analyze_utility: CREATE/ALTER TABLE (columns, constraints, the tables a
 * foreign key reads), DROP, COMMENT, GRANT/REVOKE, renames, CREATE SCHEMA
 * (and the statements inside it), indexes, views, materialized views,
 * sequences, CREATE TABLE AS, statistics, partitions and inheritance,
 * triggers, rules and policies on tables: the relations and schemas each
 * touches, with objects_complete = false where one is not named.
 */
#include "policy/analyze_walk.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void walk_incomplete(walk_state *st)
{
    walk_current_stmt(st)->objects_complete = false;
}

static analyze_stmt_kind walk_inner(walk_state *st, Node *query)
{
    const char *tag;
    return walk_statement(st, query, &tag);
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
        walk_incomplete(st);
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
        walk_incomplete(st);
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
                walk_incomplete(st);
    } else if (d->removeType == OBJECT_POLICY || d->removeType == OBJECT_TRIGGER || d->removeType == OBJECT_RULE) {
        /* the table's name, then the policy's, trigger's or rule's */
        foreach (lc, d->objects)
            if (!IsA(lfirst(lc), List) ||
                !walk_add_relation_names(st, lfirst(lc), ANALYZE_ACCESS_WRITE, ANALYZE_USE_DDL, 1))
                walk_incomplete(st);
    } else if (d->removeType == OBJECT_SCHEMA) {
        foreach (lc, d->objects) {
            if (IsA(lfirst(lc), String))
                walk_add_schema(st, strVal(lfirst(lc)));
            else
                walk_incomplete(st);
        }
    } else {
        walk_incomplete(st);
    }
}

static void walk_comment(walk_state *st, CommentStmt *c)
{
    if (is_relation_object(c->objtype) && c->object && IsA(c->object, List)) {
        if (!walk_add_relation_names(st, (List *)c->object, ANALYZE_ACCESS_WRITE,
                                     ANALYZE_USE_DDL, 0))
            walk_incomplete(st);
    } else if ((c->objtype == OBJECT_COLUMN || c->objtype == OBJECT_TABCONSTRAINT || c->objtype == OBJECT_TRIGGER ||
                c->objtype == OBJECT_RULE) && c->object && IsA(c->object, List)) {
        /* the table's name, then the column's, constraint's, trigger's or rule's */
        if (!walk_add_relation_names(st, (List *)c->object, ANALYZE_ACCESS_WRITE,
                                     ANALYZE_USE_DDL, 1))
            walk_incomplete(st);
    } else if (c->objtype == OBJECT_SCHEMA && c->object && IsA(c->object, String)) {
        walk_add_schema(st, strVal(c->object));
    } else {
        walk_incomplete(st);
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
                walk_incomplete(st);
        }
    } else if ((g->targtype == ACL_TARGET_OBJECT && g->objtype == OBJECT_SCHEMA) ||
               g->targtype == ACL_TARGET_ALL_IN_SCHEMA) {
        foreach (lc, g->objects) {
            if (IsA(lfirst(lc), String))
                walk_add_schema(st, strVal(lfirst(lc)));
            else
                walk_incomplete(st);
        }
    } else {
        walk_incomplete(st);
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
                walk_incomplete(st);
            }
        }
    } else if (r->renameType == OBJECT_SCHEMA) {
        walk_add_schema(st, r->subname);
        walk_add_schema(st, r->newname);
    } else {
        walk_incomplete(st);
    }
}

static void walk_create_schema(walk_state *st, CreateSchemaStmt *cs)
{
    if (!cs->schemaname) {   /* CREATE SCHEMA AUTHORIZATION role: named after the role */
        walk_incomplete(st);
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
        walk_incomplete(st);   /* its rows come from a foreign server */
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
            walk_incomplete(st);
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
        walk_incomplete(st);   /* the function runs later, on other people's writes */
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
            walk_incomplete(st);
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
            walk_incomplete(st);
        return true;
    }
    case T_CreateSchemaStmt:
        *tag = "CREATE SCHEMA";
        walk_create_schema(st, (CreateSchemaStmt *)n);
        return true;
    case T_ImportForeignSchemaStmt:
        *tag = "IMPORT FOREIGN SCHEMA";
        walk_add_schema(st, ((ImportForeignSchemaStmt *)n)->local_schema);
        walk_incomplete(st);
        return true;
    default:
        return false;
    }
}

bool walk_ddl(walk_state *st, analysis_stmt *cur, Node *n, const char **tag)
{
    return walk_object_ddl(st, n, tag) ||
           walk_relation_ddl(st, cur, n, tag) ||
           walk_table_attachment_ddl(st, n, tag) ||
           walk_schema_ddl(st, n, tag);
}
