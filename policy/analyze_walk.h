/*
 * analyze_walk: the parse-tree walker shared by analyze_walk.c (statements
 * that read and write data, expressions, name resolution),
 * analyze_settings.c (SET, set_config, the search_path in force) and
 * analyze_utility.c (DDL and the other utility statements). Only these two
 * files include it: it pulls in the PostgreSQL 15 server headers, whose
 * node layouts are those of libpg_query's raw parse tree.
 */
#ifndef MARTGATE_ANALYZE_WALK_H
#define MARTGATE_ANALYZE_WALK_H

/* pg_query.h and the server's pg_config.h both define PG_VERSION*: take
 * libpg_query's declarations first, then let the server headers define the
 * version macros. */
#include <pg_query.h>
#undef PG_MAJORVERSION
#undef PG_VERSION
#undef PG_VERSION_NUM
#undef PG_VERSION_STR

#include "postgres.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "pg_query_internal.h"

#include "policy/analyze.h"
#include "policy/analyze_internal.h"

/* Deeper nesting than this is flagged (the parser's own stack check stops
 * far less deep trees already). */
#define WALK_MAX_DEPTH 4000

typedef struct cte_scope {
    const struct cte_scope *parent;
    List *ctes;                  /* CommonTableExpr */
    int visible;                 /* how many of ctes are in scope; -1: all */
} cte_scope;

typedef struct walk_state {
    analysis_builder *b;
    const analyze_context *ctx;
    const char *sql;
    size_t stmt;                 /* index of the statement being walked */
    const cte_scope *scope;
    int depth;
    bool in_from_function;       /* the next FuncCall is a table function */
    bool in_call;                /* the next FuncCall is CALL's procedure */
    bool writes;                 /* a data-modifying statement was met */
    bool select_into;            /* SELECT ... INTO met */
    const char *creation_schema; /* CREATE SCHEMA s <elements>: where the
                                    elements' unqualified objects go */
    /* search_path in force for the statement being walked */
    const char *const *path;
    size_t n_path;
    bool path_unknown;           /* set_config('search_path', <expr>) */
    const char **path_storage;   /* arena copy when the path was SET */
} walk_state;

/* analyze_walk.c */
analysis_stmt *walk_current_stmt(walk_state *st);
void walk_flag(walk_state *st, analyze_flag_kind kind, const char *reason,
               const char *detail, int location);
void walk_expr(walk_state *st, Node *node);
void walk_select(walk_state *st, SelectStmt *s);
/* Any statement node; returns its kind and sets *tag. Facts are recorded
 * against st->stmt. */
analyze_stmt_kind walk_statement(walk_state *st, Node *n, const char **tag);
/* Records a relation; creating: the statement creates it (resolution by the
 * creation rules). Returns NULL when out of memory. */
analysis_relation *walk_add_relation(walk_state *st, const char *catalog,
                                     const char *schema, const char *name,
                                     char relpersistence, int location,
                                     unsigned access, analyze_rel_usage usage,
                                     bool creating);
analysis_relation *walk_add_rangevar(walk_state *st, const RangeVar *rv, unsigned access,
                                     analyze_rel_usage usage, bool creating);
/* A name given as a List of String (DROP TABLE a.b, COMMENT ON TABLE ...). */
bool walk_add_relation_names(walk_state *st, List *names, unsigned access,
                             analyze_rel_usage usage, int drop_last);
void walk_add_schema(walk_state *st, const char *name);
void walk_add_function_name(walk_state *st, List *funcname, int location, int n_args);
/* analyze_settings.c: the search path for the rest of the text (arena copy
 * of schemas), back to the context's (init) or its reset value (reset);
 * SET/RESET statements; set_config() calls. */
void walk_set_search_path(walk_state *st, const char *const *schemas, size_t n);
void walk_init_search_path(walk_state *st);
void walk_reset_search_path(walk_state *st);
analyze_stmt_kind walk_set(walk_state *st, VariableSetStmt *vs, const char **tag);
void walk_record_set_config(walk_state *st, FuncCall *fc);
/* analyze_names.c: relations named by a constant, in a regclass cast or as
 * the argument of a function that takes one (the call's schema and name). */
void walk_named_by_cast(walk_state *st, const TypeCast *tc);
void walk_named_by_call(walk_state *st, const FuncCall *fc, const char *schema, const char *name);

/* analyze_utility.c: statements other than SELECT/INSERT/UPDATE/DELETE/
 * MERGE/SET. Returns false when the node type is not one it handles. */
bool walk_utility(walk_state *st, Node *n, analyze_stmt_kind *kind, const char **tag);
/* analyze_ddl.c: the DDL modelled object by object (false: not one of it). */
bool walk_ddl(walk_state *st, analysis_stmt *cur, Node *n, const char **tag);
/* The current statement touches objects the analyser does not name. */
void walk_incomplete(walk_state *st);

#endif
