/*
 * rewrite: the single rewrite primitive of martgate, relation substitution on
 * the query text. A table reference that a policy filters or masks becomes a
 * parenthesised subquery with the same alias:
 *
 *     FROM mart.t            ->  FROM (SELECT ... FROM mart.t WHERE f OFFSET 0) AS t
 *     FROM mart.t x          ->  FROM (...) x
 *     FROM mart.t AS x(a, b) ->  FROM (...) AS x(a, b)
 *     TABLE mart.t           ->  SELECT * FROM (...) AS t
 *
 * and column references written with the old schema (mart.t.col,
 * "mart"."t"."col") are re-pointed at the alias (t.col). Positions come from
 * the parser (policy/analyze) and the PostgreSQL scanner; every other byte of
 * the text is left untouched.
 *
 * Also builds the replacement texts: a masked/filtered table, and the
 * catalog views (pg_class, information_schema.tables, ...) filtered so that
 * restricted schemas and tables are invisible. Identifiers are quoted with
 * quote_ident rules, literals with quote_literal rules; claims reach SQL only
 * through rewrite_quote_literal.
 *
 * All returned strings are malloc'd; the caller frees them.
 */
#ifndef MARTGATE_REWRITE_H
#define MARTGATE_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/textbuf.h"
#include "policy/analyze.h"

/* ---- quoting -------------------------------------------------------- */

/* quote_ident: name as is when it is a lower-case identifier that is not a
 * reserved word, else double-quoted with " doubled. NULL on out of memory. */
char *rewrite_quote_ident(const char *name)
    __attribute__((warn_unused_result));
/* quote_literal: '...' with ' doubled; E'...' with \ doubled when the value
 * holds a backslash (safe whatever standard_conforming_strings is).
 * NULL when value is NULL (the caller writes NULL) or on out of memory. */
char *rewrite_quote_literal(const char *value)
    __attribute__((warn_unused_result));
/* The same, appended to a buffer (an allocation failure sets b->oom). */
void rewrite_add_ident(textbuf *b, const char *name);
void rewrite_add_literal(textbuf *b, const char *value);

/* ---- substitution --------------------------------------------------- */

typedef struct rewrite_substitution {
    size_t relation;         /* index into analysis->relations; its usage must
                                be ANALYZE_USE_FROM and not tablesample */
    const char *replacement; /* a complete SELECT (no parentheses), e.g. from
                                rewrite_masked_relation or
                                rewrite_catalog_relation */
} rewrite_substitution;

/* Produces the new text of `sql` (the exact text `a` was made from) with each
 * listed relation occurrence substituted and schema-qualified column
 * references to it re-pointed at its alias. Returns 0 with *out malloc'd, or
 * -1 with err filled (relation not substitutable, text/analysis mismatch,
 * out of memory); *out is NULL then. n == 0 copies the text. */
int rewrite_apply(const char *sql, const analysis *a,
                  const rewrite_substitution *subs, size_t n,
                  char **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- masked / filtered relations ------------------------------------ */

/* The table's columns in attribute order (names unquoted). Returns 0 and
 * borrowed names that stay valid until rewrite_masked_relation returns, or -1
 * (table unknown / look-up failed). */
typedef int (*rewrite_columns_fn)(void *ctx, const char *schema, const char *table,
                                  const char ***names, size_t *n);

typedef struct rewrite_column_mask {
    const char *column;      /* column name, unquoted */
    const char *sql;         /* expression replacing it (its value keeps the
                                column's name via AS); it may refer to the
                                column by its quoted name. NULL: pass through */
} rewrite_column_mask;

/* Builds `SELECT c1, <mask> AS c2, ... FROM schema.table [ONLY]
 * WHERE (<row_filter>) OFFSET 0` (no WHERE when row_filter is NULL). The
 * column list comes from columns(); masks name columns that must exist, or it
 * is an error (a mask on a column that is not there is a policy error a person
 * must see). `only` keeps ONLY semantics for `FROM ONLY t`. */
int rewrite_masked_relation(const char *schema, const char *table, bool only,
                            rewrite_columns_fn columns, void *columns_ctx,
                            const rewrite_column_mask *masks, size_t n_masks,
                            const char *row_filter_sql,
                            char **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Mask kinds as SQL over a quoted column (decide may use these or build its
 * own expressions). NULLs stay NULL; c is quote_ident(column):
 *   NULL     -> CASE WHEN false THEN c END        (NULL of the column's type)
 *   HASH     -> needs a key: rewrite_hash_mask_sql (NULL here)
 *   REDACT   -> CASE WHEN c IS NULL THEN NULL ELSE '***' END
 *   LAST4    -> CASE WHEN c IS NULL THEN NULL ELSE '***' ||
 *               pg_catalog."right"(c::pg_catalog.text, 4) END
 * NULL on out of memory or an unknown kind. */
typedef enum rewrite_mask_kind {
    REWRITE_MASK_NULL = 1,
    REWRITE_MASK_HASH,
    REWRITE_MASK_REDACT,
    REWRITE_MASK_LAST4
} rewrite_mask_kind;
char *rewrite_mask_sql(rewrite_mask_kind kind, const char *column)
    __attribute__((warn_unused_result));

/* The hash mask is HMAC-SHA256 with a key the principal cannot read, so
 * that nobody can compute the mask of a value they choose (an unsalted
 * digest confirms guesses: email = md5('guess')), while equal values still
 * get equal masks (joinable). The warehouse computes it with built-in
 * functions only (PostgreSQL 11+):
 *
 *   encode(sha256(OPAD || sha256(IPAD || convert_to(c::text, 'UTF8'))), 'hex')
 *
 * where IPAD and OPAD are the key's 64-byte blocks K0 xor 0x36.. and
 * K0 xor 0x5c.., written as decode('<hex>', 'hex'): the pads stand for the
 * key, so the rewritten text is as secret as the key (docs/policy.md). K0
 * is the key padded with zeros to 64 bytes; a longer key is first hashed
 * with SHA-256, as HMAC says, by the caller (policy/ has no SHA-256). */
#define REWRITE_HASH_BLOCK 64
typedef struct rewrite_hash_key {
    char ipad_hex[2 * REWRITE_HASH_BLOCK + 1];
    char opad_hex[2 * REWRITE_HASH_BLOCK + 1];
} rewrite_hash_key;

/* From the key's bytes (1..64 of them). 0, or -1 when len is 0 or > 64. */
int rewrite_hash_key_init(rewrite_hash_key *k, const unsigned char *key, size_t len)
    __attribute__((warn_unused_result));
void rewrite_hash_key_wipe(rewrite_hash_key *k);

/* The key of offline decisions (`martgate policy explain/test`), so that
 * their texts are the daemon's but for the pads. Not a secret, never the
 * deployment's key. */
#define REWRITE_HASH_PLACEHOLDER_KEY "martgate offline placeholder hash key: NOT the deployment's key"
void rewrite_hash_key_placeholder(rewrite_hash_key *k);

/* The hash mask of a quoted column, as above. NULL on out of memory. */
char *rewrite_hash_mask_sql(const rewrite_hash_key *k, const char *column)
    __attribute__((warn_unused_result));

/* ---- catalog filtering ---------------------------------------------- */

/* Returns a malloc'd SQL boolean expression telling whether the object named
 * by the two SQL expressions (both of type text; each may be used several
 * times) is visible to the principal, e.g. "<schema_expr> IN ('mart_a')".
 * table_expr is NULL for schema-level rows (pg_namespace,
 * information_schema.schemata, comments on schemas/functions/types). An index
 * counts as its table. NULL on failure (the rewrite then fails). pg_catalog
 * and information_schema must stay visible or clients stop working. */
typedef char *(*rewrite_visible_fn)(void *ctx, const char *schema_expr,
                                    const char *table_expr);

/* Optional, with a visibility test: a SQL boolean telling whether a column
 * (three text expressions) is hidden from the principal (a "deny" column of
 * a rule), so pg_attribute and information_schema.columns do not list it.
 * NULL on failure. */
typedef char *(*rewrite_column_hidden_fn)(void *ctx, const char *schema_expr,
                                          const char *table_expr, const char *column_expr);

/* What catalog filtering shows: visible (required), column_hidden (optional),
 * and the context both get. */
typedef struct rewrite_catalog_filter {
    rewrite_visible_fn visible;
    rewrite_column_hidden_fn column_hidden;
    void *ctx;
} rewrite_catalog_filter;

/* Filtered catalogs: pg_catalog.pg_namespace, pg_class, pg_attribute,
 * pg_description, pg_constraint, pg_index, pg_indexes, pg_tables, pg_views,
 * pg_matviews, pg_sequences, pg_policies, pg_rules, pg_stats, pg_stats_ext,
 * pg_stats_ext_exprs (these hold sample values), pg_stat[io]_{all,user}_
 * {tables,indexes}, pg_stat_xact_{all,user}_tables, pg_statio_{all,user}_
 * sequences (table names and row counts); information_schema.schemata,
 * tables, columns, views, table_constraints, key_column_usage,
 * constraint_column_usage, sequences. */
bool rewrite_is_filtered_catalog(const char *schema, const char *name);
/* The i-th filtered catalog (for `policy catalog`); false past the end. */
bool rewrite_filtered_catalog_at(size_t i, const char **schema, const char **name);

/* The replacement SELECT for one filtered catalog: every column of the
 * original (SELECT *), only the visible rows, OFFSET 0. Returns 0, 1 when
 * schema.name is not a filtered catalog (*out NULL), or -1 with err. */
int rewrite_catalog_relation(const char *schema, const char *name,
                             const rewrite_catalog_filter *f,
                             char **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Substitutions for every filtered catalog read in `a`. *subs is malloc'd,
 * each replacement malloc'd: release with rewrite_free_substitutions.
 * Returns the number found (0: *subs NULL), or -1 with err: a filtered
 * catalog read where it cannot be substituted (COPY, LOCK, TABLESAMPLE...),
 * or an unqualified name that may be one but whose schema is unknown. */
int rewrite_catalog_substitutions(const analysis *a, const rewrite_catalog_filter *f,
                                  rewrite_substitution **subs,
                                  char *err, size_t errlen)
    __attribute__((warn_unused_result));
void rewrite_free_substitutions(rewrite_substitution *subs, size_t n);

#endif
