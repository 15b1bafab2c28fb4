/*
 * analyze: SQL text -> facts a policy can decide on. The text is parsed with
 * the real PostgreSQL 15 parser (libpg_query's raw parse tree) and walked once;
 * the result lists, for every statement of a (possibly multi-statement)
 * string, its kind and byte range, and, flat over the whole text, every
 * relation referenced (with read/write access, resolved to schema.table the
 * way the server would), every function called, every setting or role change,
 * and every construct no policy can see through ("flags", fail closed).
 *
 * Nothing here decides anything: policy/decide turns these facts into allow,
 * rewrite or deny. policy/rewrite uses the locations kept here to substitute
 * relations in the text.
 *
 * Memory: one arena per analysis; every pointer inside an `analysis` lives
 * until analysis_free(). Nothing points into the parser's memory or into the
 * caller's SQL text. Not thread-hostile: each thread may analyse on its own.
 */
#ifndef MARTGATE_ANALYZE_H
#define MARTGATE_ANALYZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest SQL text analyze_sql accepts (bytes); longer text is an error. */
#define ANALYZE_MAX_SQL_BYTES (16u * 1024u * 1024u)

/* ---- input: what the session knows ---------------------------------- */

/* Optional catalog look-up: does schema.name exist as a relation (table,
 * view, matview, foreign table, sequence...) in the warehouse? `schema` may be
 * "pg_temp", meaning the session's own temporary schema. */
typedef bool (*analyze_relation_exists_fn)(void *ctx, const char *schema, const char *name);

typedef struct analyze_context {
    const char *database;            /* session database; a different catalog
                                        name in a qualified name is a fact
                                        (ANALYZE_RES_OTHER_DATABASE). NULL: any
                                        catalog name counts as other. */
    const char *const *search_path;  /* schemas in order as the server holds
                                        them (already split, unquoted); "$user"
                                        allowed. n == 0: PostgreSQL's default
                                        ("$user", public). */
    size_t n_search_path;
    const char *const *reset_search_path; /* what RESET search_path / SET
                                        search_path TO DEFAULT go back to (the
                                        session's startup value); n == 0: the
                                        context's search_path */
    size_t n_reset_search_path;
    const char *session_user;        /* expands "$user" (the warehouse login
                                        role). NULL keeps "$user" as a candidate
                                        schema, which no policy should match:
                                        give it */
    analyze_relation_exists_fn relation_exists;  /* optional */
    void *catalog_ctx;               /* passed to relation_exists */
} analyze_context;

/* ---- output: statements --------------------------------------------- */

typedef enum analyze_stmt_kind {
    ANALYZE_STMT_READ = 1,        /* SELECT, TABLE, VALUES, COPY TO. EXPLAIN,
                                     PREPARE and DECLARE take the kind of the
                                     statement they hold (tag says which) */
    ANALYZE_STMT_WRITE,           /* INSERT, UPDATE, DELETE, MERGE, COPY FROM,
                                     TRUNCATE, data-modifying WITH,
                                     REFRESH MATERIALIZED VIEW */
    ANALYZE_STMT_DDL,             /* CREATE/ALTER/DROP..., GRANT, COMMENT,
                                     SELECT INTO, CREATE TABLE AS */
    ANALYZE_STMT_SESSION,         /* SET, RESET, SET ROLE, DISCARD,
                                     SET SESSION CHARACTERISTICS */
    ANALYZE_STMT_TRANSACTION,     /* BEGIN, COMMIT, ROLLBACK, SAVEPOINT,
                                     SET TRANSACTION, PREPARE TRANSACTION... */
    ANALYZE_STMT_UTILITY,         /* SHOW, FETCH, CLOSE, DEALLOCATE, EXECUTE,
                                     LOCK, VACUUM, ANALYZE, CHECKPOINT,
                                     LISTEN... (anything else known) */
    ANALYZE_STMT_UNSUPPORTED      /* a statement kind the analyser does not
                                     handle; always carries a flag */
} analyze_stmt_kind;

typedef struct analysis_stmt {
    analyze_stmt_kind kind;
    const char *tag;          /* what it is, upper case: "SELECT", "INSERT",
                                 "CREATE TABLE", "SET", "EXPLAIN", ... */
    int location;             /* byte offset of the statement in the text */
    int length;               /* bytes; covers the statement without the
                                 trailing ';' */
    bool objects_complete;    /* DDL/utility: every object touched is listed
                                 in relations[]/schemas[]. false: objects the
                                 analyser does not model (roles, databases,
                                 functions, types...) -> only an admin rule
                                 should allow it */
    bool locks_rows;          /* SELECT ... FOR UPDATE/SHARE */
    bool explain_analyze;     /* EXPLAIN ANALYZE: the inner statement runs */
    bool explain_verbose;     /* EXPLAIN VERBOSE: the plan shows output
                                 expressions (the text a rewrite sent) */
    const char *prepare_name; /* PREPARE name AS ...: the facts of this
                                 statement are those of the prepared one */
    const char *execute_name; /* EXECUTE name (also CREATE TABLE AS EXECUTE) */
    const char *deallocate_name; /* DEALLOCATE name; NULL with
                                    deallocate_all for DEALLOCATE ALL */
    bool deallocate_all;
    const char *cursor_name;  /* DECLARE/FETCH/MOVE/CLOSE cursor name */
} analysis_stmt;

/* ---- output: relations ---------------------------------------------- */

enum {
    ANALYZE_ACCESS_READ = 1u,
    ANALYZE_ACCESS_WRITE = 2u
};

typedef enum analyze_resolution {
    ANALYZE_RES_QUALIFIED = 1,   /* schema written (schema = as written), or
                                    implied by the statement: CREATE TEMP ...
                                    -> "pg_temp", CREATE SCHEMA s CREATE
                                    TABLE t -> s */
    ANALYZE_RES_BUILTIN,         /* unqualified; a pg_catalog relation found by
                                    the built-in list, pg_catalog searched
                                    before the other candidates */
    ANALYZE_RES_CATALOG,         /* unqualified; relation_exists() found it */
    ANALYZE_RES_UNRESOLVED,      /* unqualified, no catalog look-up (or a name
                                    being created): schema is NULL,
                                    candidates[] lists every schema it may
                                    resolve to, in search order; require all
                                    of them to agree. n_candidates == 0: the
                                    search_path is unknown (set_config with an
                                    expression): deny */
    ANALYZE_RES_NOT_FOUND,       /* unqualified; relation_exists() said no
                                    candidate has it (the server will fail) */
    ANALYZE_RES_OTHER_DATABASE   /* catalog.schema.name with a catalog other
                                    than the session's database: deny */
} analyze_resolution;

typedef enum analyze_rel_usage {
    ANALYZE_USE_FROM = 1,    /* a table in a FROM list/JOIN/TABLE x: can be
                                substituted by policy/rewrite */
    ANALYZE_USE_TARGET,      /* the table an INSERT/UPDATE/DELETE/MERGE
                                writes, or SELECT INTO / CREATE TABLE AS
                                creates */
    ANALYZE_USE_COPY,        /* COPY table TO/FROM */
    ANALYZE_USE_DDL,         /* the object of DDL (CREATE/ALTER/DROP/GRANT/
                                COMMENT/CREATE INDEX ON, FOREIGN KEY REFERENCES,
                                LIKE, INHERITS...) */
    ANALYZE_USE_UTILITY,     /* LOCK, TRUNCATE, VACUUM, ANALYZE, CLUSTER,
                                REINDEX, REFRESH MATERIALIZED VIEW */
    ANALYZE_USE_NAME         /* named by a constant ('s.t'::regclass,
                                pg_relation_size('s.t'), ...): none of its
                                rows read, access 0 (policy/analyze_names) */
} analyze_rel_usage;

typedef struct analysis_relation {
    size_t stmt_index;           /* which statement (index into stmts[]) */
    const char *catalog;         /* as written, or NULL */
    const char *schema;          /* resolved schema, NULL when unresolved */
    const char *name;            /* relation name (case already folded by the
                                    parser, quoted names kept as written) */
    unsigned access;             /* ANALYZE_ACCESS_READ | _WRITE */
    analyze_resolution resolution;
    analyze_rel_usage usage;
    const char *const *candidates; /* RES_UNRESOLVED: schemas it may live in,
                                      in search order; "$user" expanded. Never
                                      pg_temp (a temporary table holds only
                                      what its owner wrote; with a catalog
                                      callback pg_temp is asked first and may
                                      be the resolved schema) */
    size_t n_candidates;
    bool qualified;              /* written with a schema (and maybe catalog) */
    /* What policy/rewrite needs (usage == ANALYZE_USE_FROM): */
    int location;                /* byte offset of the first name token */
    const char *alias;           /* alias as the parser folded it, or NULL */
    bool has_column_aliases;     /* AS x(a, b) */
    bool only;                   /* ONLY t (no inheritance children) */
    bool tablesample;            /* t TABLESAMPLE ...: cannot be substituted */
    bool table_stmt;             /* the relation of a `TABLE x` statement */
} analysis_relation;

/* A schema as an object of DDL or GRANT (CREATE/ALTER/DROP SCHEMA,
 * GRANT ... ON SCHEMA / ALL TABLES IN SCHEMA, COMMENT ON SCHEMA,
 * ALTER DEFAULT PRIVILEGES IN SCHEMA, CREATE x IN SCHEMA). */
typedef struct analysis_schema {
    size_t stmt_index;
    const char *name;
    unsigned access;             /* always WRITE today */
} analysis_schema;

/* A column reference written with a schema (schema.table.col, or
 * catalog.schema.table.col, or schema.table.*), which rewrite re-points at
 * the alias of a substituted relation. Unqualified/alias-qualified column
 * references are not recorded. */
typedef struct analysis_colref {
    size_t stmt_index;
    int location;                /* byte offset of the first name token */
    const char *catalog;         /* or NULL */
    const char *schema;
    const char *table;
    int n_fields;                /* name tokens including the column or '*' */
} analysis_colref;

/* ---- output: functions ---------------------------------------------- */

typedef struct analysis_function {
    size_t stmt_index;
    const char *schema;          /* as written, NULL when unqualified. Special
                                    syntax (EXTRACT, SUBSTRING, OVERLAPS,
                                    XMLEXISTS, COLLATION FOR...) reaches the
                                    parser as pg_catalog.f: schema
                                    "pg_catalog", qualified = false */
    const char *name;
    int location;
    bool qualified;              /* schema written by the user */
    bool in_from;                /* table function in FROM (or ROWS FROM) */
    bool in_call;                /* CALL proc(...) */
    int n_args;
} analysis_function;

/* ---- output: settings and roles ------------------------------------- */

typedef enum analyze_setting_action {
    ANALYZE_SET_VALUE = 1,       /* SET name = value / set_config(...) */
    ANALYZE_SET_DEFAULT,         /* SET name TO DEFAULT */
    ANALYZE_SET_FROM_CURRENT,    /* SET name FROM CURRENT */
    ANALYZE_SET_RESET,           /* RESET name */
    ANALYZE_SET_RESET_ALL,       /* RESET ALL (name NULL) */
    ANALYZE_SET_MULTI,           /* SET TRANSACTION ... / SET SESSION
                                    CHARACTERISTICS AS TRANSACTION ...: name
                                    is "transaction" or
                                    "session characteristics" */
    ANALYZE_SET_DISCARD          /* DISCARD ALL|PLANS|SEQUENCES|TEMP: name is
                                    "all", "plans", "sequences" or "temp" */
} analyze_setting_action;

typedef struct analysis_setting {
    size_t stmt_index;
    analyze_setting_action action;
    const char *name;            /* lower-case GUC name (NULL: RESET ALL,
                                    or set_config with a non-constant name) */
    const char *value;           /* SET_VALUE/MULTI: the value as text, list
                                    items joined with ", " (not re-quoted);
                                    NULL when not a constant */
    bool is_local;               /* SET LOCAL / set_config(..., true) */
    bool via_function;           /* set_config() call, not SET */
    bool name_not_constant;      /* set_config(expr, ...): always flagged too */
    bool value_not_constant;     /* set_config('x', expr, ...) */
    /* search_path only (SET_VALUE): the schema list, unquoted, in order */
    const char *const *schemas;
    size_t n_schemas;
    int location;
} analysis_setting;

typedef enum analyze_role_action {
    ANALYZE_ROLE_SET = 1,               /* SET [LOCAL] ROLE r / set_config('role') */
    ANALYZE_ROLE_RESET,                 /* RESET ROLE, SET ROLE NONE */
    ANALYZE_ROLE_SET_SESSION_AUTH,      /* SET SESSION AUTHORIZATION r */
    ANALYZE_ROLE_RESET_SESSION_AUTH     /* RESET SESSION AUTHORIZATION,
                                           SET SESSION AUTHORIZATION DEFAULT */
} analyze_role_action;

typedef struct analysis_role_change {
    size_t stmt_index;
    analyze_role_action action;
    const char *role;            /* NULL for resets or a non-constant value */
    bool is_local;
    bool via_function;
    int location;
} analysis_role_change;

/* ---- output: flags (what no policy can see through) ----------------- */

typedef enum analyze_flag_kind {
    ANALYZE_FLAG_UNSUPPORTED = 1,   /* statement/node kind not handled
                                       (detail: the node type) */
    ANALYZE_FLAG_DO,                /* DO $$ ... $$ */
    ANALYZE_FLAG_EXECUTE,           /* EXECUTE name (detail: name): the
                                       session must look up the prepared
                                       statement's facts */
    ANALYZE_FLAG_COPY_FILE,         /* COPY ... TO/FROM 'file' (detail) */
    ANALYZE_FLAG_COPY_PROGRAM,      /* COPY ... PROGRAM 'cmd' (detail) */
    ANALYZE_FLAG_CREATE_FUNCTION,   /* CREATE FUNCTION/PROCEDURE (detail: name) */
    ANALYZE_FLAG_CALL,              /* CALL proc() (detail: name) */
    ANALYZE_FLAG_LISTEN_NOTIFY,     /* LISTEN / NOTIFY / UNLISTEN (detail: channel) */
    ANALYZE_FLAG_LOAD,              /* LOAD 'lib' (detail) */
    ANALYZE_FLAG_ALTER_SYSTEM,      /* ALTER SYSTEM (detail: setting) */
    ANALYZE_FLAG_CREATE_EXTENSION,  /* CREATE/ALTER EXTENSION (detail: name) */
    ANALYZE_FLAG_ROLE_DB_SETTING,   /* ALTER ROLE/DATABASE ... SET (detail) */
    ANALYZE_FLAG_DYNAMIC_SETTING,   /* set_config() with a non-constant name */
    ANALYZE_FLAG_RULE,              /* CREATE RULE: rewrites later queries */
    ANALYZE_FLAG_TOO_DEEP           /* nesting beyond what is walked */
} analyze_flag_kind;

typedef struct analysis_flag {
    size_t stmt_index;
    analyze_flag_kind kind;
    const char *reason;          /* a sentence a person can read */
    const char *detail;          /* name/path/node type, or NULL */
    int location;
} analysis_flag;

/* ---- the analysis --------------------------------------------------- */

typedef struct analysis {
    analysis_stmt *stmts;              size_t n_stmts;
    analysis_relation *relations;      size_t n_relations;
    analysis_schema *schemas;          size_t n_schemas;
    analysis_colref *colrefs;          size_t n_colrefs;
    analysis_function *functions;      size_t n_functions;
    analysis_setting *settings;        size_t n_settings;
    analysis_role_change *roles;       size_t n_roles;
    analysis_flag *flags;              size_t n_flags;
    size_t sql_length;                 /* bytes of the analysed text */
    bool reads_constants;              /* some fact came from the value of a
                                          constant (a setting's value, a
                                          set_config argument): it holds for
                                          this text only, not for every text
                                          of its shape (analyze_shape) */
    /* private: the arena that owns all of the above */
    struct analyze_arena *arena;
} analysis;

/* A syntax (or other parse) error, reported like the server would:
 * SQLSTATE 42601 for syntax errors. */
typedef struct analyze_error {
    char message[256];           /* e.g. `syntax error at or near "FORM"` */
    int cursor_position;         /* 1-based character position, 0 if none */
    char sqlstate[6];            /* "42601" (syntax), "54000" (too long),
                                    "XX000" (internal), or the server's own
                                    for the parser's other errors */
    char hint[160];              /* the server's HINT for that error, or "" */
    bool parser;                 /* the grammar's error (the server's raw
                                    parse meets it first, in any transaction
                                    state), not a limit of martgate's */
} analyze_error;

/* The PostgreSQL version whose grammar the parser is (libpg_query's). */
const char *analyze_parser_version(void);

/* Analyses `sql` (NUL-terminated). Returns 0 and sets *out on success (even
 * when flags were raised: look at them). Returns -1 on a syntax error or any
 * other failure, with *out NULL and err filled (err may be NULL). ctx may be
 * NULL (database unknown, default search_path, no catalog). */
int analyze_sql(const char *sql, const analyze_context *ctx, analysis **out,
                analyze_error *err)
    __attribute__((warn_unused_result));
void analysis_free(analysis *a);

/* Short names for logs and messages ("read", "write", "DDL", ...). */
const char *analyze_stmt_kind_name(analyze_stmt_kind kind);
const char *analyze_flag_kind_name(analyze_flag_kind kind);

/* Is `name` a relation of PostgreSQL 15's pg_catalog (tables and views)? */
bool analyze_is_pg_catalog_relation(const char *name);

/* libpg_query's fingerprint (16 hex digits into hex[17]). Returns 0, or -1
 * with err filled (the text does not parse). Not on the hot path. */
int analyze_fingerprint(const char *sql, uint64_t *fingerprint, char hex[17],
                        char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- the shape of a text (sql_shape.c) ------------------------------ */

/* What stays of a text when its constants are blanked, from one pass of the
 * PostgreSQL scanner (no parse). */
typedef struct analyze_shape {
    char *normalized;            /* every constant token replaced by $n,
                                    numbered after the text's own highest $n;
                                    NUL-terminated */
    size_t normalized_len;
    const char *key;             /* normalized text, NUL, then per constant
                                    its placeholder's offset (4 bytes) and
                                    token type: equal keys mean the same
                                    tokens but for constant values */
    size_t key_len;
    uint64_t hash;               /* of key */
    size_t n_constants;
    bool decidable;              /* false when a constant can change what
                                    the rest means (UESCAPE): such a text
                                    must never share a decision by shape */
} analyze_shape;

/* Returns 0 with *out filled (free with analyze_shape_clear), or -1 when the
 * scanner rejects the text (unterminated quote...) or on out of memory, with
 * err filled. */
int analyze_shape_of(const char *sql, analyze_shape *out, analyze_error *err)
    __attribute__((warn_unused_result));
void analyze_shape_clear(analyze_shape *s);

/* The normalized text alone (malloc'd, caller frees). 0, or -1 with err. */
int analyze_normalize(const char *sql, char **normalized, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
