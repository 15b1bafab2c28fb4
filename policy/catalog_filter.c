/*
 * catalog_filter: the replacement SELECTs that hide restricted schemas and
 * tables from the catalogs clients browse (psql's \dn and \dt, pgjdbc's
 * DatabaseMetaData, Metabase's sync). Each keeps the catalog's exact column
 * set (SELECT * or alias.*) and only the rows whose object the principal may
 * see; the visibility test is SQL built by the caller (policy/decide) over
 * the text expressions naming each row's schema and table. OFFSET 0 keeps
 * the planner from pushing the client's own predicates below the filter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "policy/rewrite.h"

typedef enum catalog_shape {
    SHAPE_NAMESPACE = 1,   /* pg_namespace: one schema per row */
    SHAPE_CLASS,           /* pg_class */
    SHAPE_ATTRIBUTE,       /* pg_attribute: attrelid -> pg_class */
    SHAPE_DESCRIPTION,     /* pg_description: (classoid, objoid) */
    SHAPE_CONSTRAINT,      /* pg_constraint: connamespace, conrelid */
    SHAPE_OF_TABLE,        /* rows of a table by its OID (schema_column): pg_index
                              (indrelid), pg_statistic_ext (stxrelid) */
    SHAPE_TYPE,            /* pg_type: typnamespace; a row type follows its table */
    SHAPE_OF_NAMESPACE,    /* rows of a schema by its OID (schema_column): pg_proc (pronamespace)... */
    SHAPE_NAMED_COLUMNS    /* a view with schema (and table) name columns */
} catalog_shape;

typedef struct filtered_catalog {
    const char *schema;
    const char *name;
    catalog_shape shape;
    const char *schema_column;   /* SHAPE_NAMED_COLUMNS; SHAPE_OF_TABLE: the table's OID column */
    const char *table_column;    /* SHAPE_NAMED_COLUMNS; NULL: schema rows */
    const char *schema2_column;  /* a second object the row names (a view's table), or NULL */
    const char *table2_column;
} filtered_catalog;

static const filtered_catalog filtered_catalogs[] = {
    {"pg_catalog", "pg_namespace", SHAPE_NAMESPACE, NULL, NULL, NULL, NULL},
    {"pg_catalog", "pg_class", SHAPE_CLASS, NULL, NULL, NULL, NULL},
    {"pg_catalog", "pg_attribute", SHAPE_ATTRIBUTE, NULL, NULL, NULL, NULL},
    {"pg_catalog", "pg_description", SHAPE_DESCRIPTION, NULL, NULL, NULL, NULL},
    {"pg_catalog", "pg_constraint", SHAPE_CONSTRAINT, NULL, NULL, NULL, NULL},
    {"pg_catalog", "pg_index", SHAPE_OF_TABLE, "indrelid", NULL, NULL, NULL},
    /* extended statistics' definitions (which columns); their values are in
     * pg_statistic_ext_data, restricted */
    {"pg_catalog", "pg_statistic_ext", SHAPE_OF_TABLE, "stxrelid", NULL, NULL, NULL},
    {"pg_catalog", "pg_type", SHAPE_TYPE, NULL, NULL, NULL, NULL},
    {"pg_catalog", "pg_indexes", SHAPE_NAMED_COLUMNS, "schemaname", "tablename", NULL, NULL},
    {"pg_catalog", "pg_tables", SHAPE_NAMED_COLUMNS, "schemaname", "tablename", NULL, NULL},
    {"pg_catalog", "pg_views", SHAPE_NAMED_COLUMNS, "schemaname", "viewname", NULL, NULL},
    {"pg_catalog", "pg_matviews", SHAPE_NAMED_COLUMNS, "schemaname", "matviewname", NULL, NULL},
    {"pg_catalog", "pg_sequences", SHAPE_NAMED_COLUMNS, "schemaname", "sequencename", NULL, NULL},
    {"pg_catalog", "pg_policies", SHAPE_NAMED_COLUMNS, "schemaname", "tablename", NULL, NULL},
    {"pg_catalog", "pg_rules", SHAPE_NAMED_COLUMNS, "schemaname", "tablename", NULL, NULL},
    /* a table's column defaults, triggers, rules (a view's text), policies,
     * partitions, sequence parameters */
    {"pg_catalog", "pg_attrdef", SHAPE_OF_TABLE, "adrelid", NULL, NULL, NULL},
    {"pg_catalog", "pg_trigger", SHAPE_OF_TABLE, "tgrelid", NULL, NULL, NULL},
    {"pg_catalog", "pg_rewrite", SHAPE_OF_TABLE, "ev_class", NULL, NULL, NULL},
    {"pg_catalog", "pg_policy", SHAPE_OF_TABLE, "polrelid", NULL, NULL, NULL},
    {"pg_catalog", "pg_inherits", SHAPE_OF_TABLE, "inhrelid", NULL, NULL, NULL},
    {"pg_catalog", "pg_partitioned_table", SHAPE_OF_TABLE, "partrelid", NULL, NULL, NULL},
    {"pg_catalog", "pg_sequence", SHAPE_OF_TABLE, "seqrelid", NULL, NULL, NULL},
    {"pg_catalog", "pg_publication_rel", SHAPE_OF_TABLE, "prrelid", NULL, NULL, NULL},
    {"pg_catalog", "pg_publication_namespace", SHAPE_OF_NAMESPACE, "pnnspid", NULL, NULL, NULL},
    {"pg_catalog", "pg_publication_tables", SHAPE_NAMED_COLUMNS, "schemaname", "tablename", NULL, NULL},
    /* objects of a schema: functions (with their source), operators,
     * collations, conversions, operator classes, text search, extensions */
    {"pg_catalog", "pg_proc", SHAPE_OF_NAMESPACE, "pronamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_operator", SHAPE_OF_NAMESPACE, "oprnamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_collation", SHAPE_OF_NAMESPACE, "collnamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_conversion", SHAPE_OF_NAMESPACE, "connamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_opclass", SHAPE_OF_NAMESPACE, "opcnamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_opfamily", SHAPE_OF_NAMESPACE, "opfnamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_ts_config", SHAPE_OF_NAMESPACE, "cfgnamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_ts_config_map", SHAPE_OF_NAMESPACE, NULL, NULL, NULL, NULL},
    {"pg_catalog", "pg_ts_dict", SHAPE_OF_NAMESPACE, "dictnamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_ts_parser", SHAPE_OF_NAMESPACE, "prsnamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_ts_template", SHAPE_OF_NAMESPACE, "tmplnamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_extension", SHAPE_OF_NAMESPACE, "extnamespace", NULL, NULL, NULL},
    {"pg_catalog", "pg_stat_user_functions", SHAPE_NAMED_COLUMNS, "schemaname", NULL, NULL, NULL},
    {"pg_catalog", "pg_stat_xact_user_functions", SHAPE_NAMED_COLUMNS, "schemaname", NULL, NULL, NULL},
    /* activity statistics name tables and count their rows */
    {"pg_catalog", "pg_stat_all_tables", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_stat_user_tables", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_stat_xact_all_tables", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_stat_xact_user_tables", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_statio_all_tables", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_statio_user_tables", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_stat_all_indexes", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_stat_user_indexes", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_statio_all_indexes", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_statio_user_indexes", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_statio_all_sequences", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"pg_catalog", "pg_statio_user_sequences", SHAPE_NAMED_COLUMNS, "schemaname", "relname", NULL, NULL},
    {"information_schema", "schemata", SHAPE_NAMED_COLUMNS, "schema_name", NULL, NULL, NULL},
    {"information_schema", "tables", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "columns", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "views", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "table_constraints", SHAPE_NAMED_COLUMNS, "table_schema",
     "table_name", NULL, NULL},
    {"information_schema", "key_column_usage", SHAPE_NAMED_COLUMNS, "table_schema",
     "table_name", NULL, NULL},
    {"information_schema", "constraint_column_usage", SHAPE_NAMED_COLUMNS, "table_schema",
     "table_name", NULL, NULL},
    {"information_schema", "sequences", SHAPE_NAMED_COLUMNS, "sequence_schema",
     "sequence_name", NULL, NULL},
    {"information_schema", "constraint_table_usage", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "column_privileges", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "table_privileges", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "role_table_grants", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "role_column_grants", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "column_udt_usage", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "column_options", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "triggers", SHAPE_NAMED_COLUMNS, "event_object_schema", "event_object_table", NULL, NULL},
    {"information_schema", "view_table_usage", SHAPE_NAMED_COLUMNS, "view_schema", "view_name",
     "table_schema", "table_name"},
    {"information_schema", "view_column_usage", SHAPE_NAMED_COLUMNS, "view_schema", "view_name",
     "table_schema", "table_name"},
    {"information_schema", "view_routine_usage", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    /* a table's row type is named like the table */
    {"information_schema", "attributes", SHAPE_NAMED_COLUMNS, "udt_schema", "udt_name", NULL, NULL},
    {"information_schema", "user_defined_types", SHAPE_NAMED_COLUMNS, "user_defined_type_schema",
     "user_defined_type_name", NULL, NULL},
    {"information_schema", "routines", SHAPE_NAMED_COLUMNS, "routine_schema", NULL, NULL, NULL},
    {"information_schema", "parameters", SHAPE_NAMED_COLUMNS, "specific_schema", NULL, NULL, NULL},
    {"information_schema", "domains", SHAPE_NAMED_COLUMNS, "domain_schema", NULL, NULL, NULL},
    {"information_schema", "check_constraints", SHAPE_NAMED_COLUMNS, "constraint_schema", NULL, NULL, NULL},
    {"information_schema", "referential_constraints", SHAPE_NAMED_COLUMNS, "constraint_schema", NULL, NULL, NULL},
    /* privileges and usages of types, domains, routines, sequences */
    {"information_schema", "data_type_privileges", SHAPE_NAMED_COLUMNS, "object_schema", "object_name", NULL, NULL},
    {"information_schema", "udt_privileges", SHAPE_NAMED_COLUMNS, "udt_schema", "udt_name", NULL, NULL},
    {"information_schema", "role_udt_grants", SHAPE_NAMED_COLUMNS, "udt_schema", "udt_name", NULL, NULL},
    {"information_schema", "usage_privileges", SHAPE_NAMED_COLUMNS, "object_schema", "object_name", NULL, NULL},
    {"information_schema", "role_usage_grants", SHAPE_NAMED_COLUMNS, "object_schema", "object_name", NULL, NULL},
    {"information_schema", "routine_privileges", SHAPE_NAMED_COLUMNS, "specific_schema", NULL, NULL, NULL},
    {"information_schema", "role_routine_grants", SHAPE_NAMED_COLUMNS, "specific_schema", NULL, NULL, NULL},
    {"information_schema", "routine_column_usage", SHAPE_NAMED_COLUMNS, "specific_schema", NULL,
     "table_schema", "table_name"},
    {"information_schema", "routine_routine_usage", SHAPE_NAMED_COLUMNS, "specific_schema", NULL,
     "routine_schema", NULL},
    {"information_schema", "routine_sequence_usage", SHAPE_NAMED_COLUMNS, "specific_schema", NULL,
     "sequence_schema", "sequence_name"},
    {"information_schema", "routine_table_usage", SHAPE_NAMED_COLUMNS, "specific_schema", NULL,
     "table_schema", "table_name"},
    {"information_schema", "check_constraint_routine_usage", SHAPE_NAMED_COLUMNS, "constraint_schema", NULL,
     "specific_schema", NULL},
    {"information_schema", "column_column_usage", SHAPE_NAMED_COLUMNS, "table_schema", "table_name", NULL, NULL},
    {"information_schema", "column_domain_usage", SHAPE_NAMED_COLUMNS, "domain_schema", NULL,
     "table_schema", "table_name"},
    {"information_schema", "domain_constraints", SHAPE_NAMED_COLUMNS, "constraint_schema", NULL,
     "domain_schema", NULL},
    {"information_schema", "domain_udt_usage", SHAPE_NAMED_COLUMNS, "udt_schema", NULL, "domain_schema", NULL},
    {"information_schema", "element_types", SHAPE_NAMED_COLUMNS, "object_schema", "object_name", NULL, NULL},
    {"information_schema", "transforms", SHAPE_NAMED_COLUMNS, "udt_schema", "udt_name", NULL, NULL},
    {"information_schema", "triggered_update_columns", SHAPE_NAMED_COLUMNS, "event_object_schema",
     "event_object_table", NULL, NULL},
};

static const filtered_catalog *find_catalog(const char *schema, const char *name)
{
    if (!schema || !name)
        return NULL;
    for (size_t i = 0; i < sizeof filtered_catalogs / sizeof filtered_catalogs[0]; i++)
        if (!strcmp(filtered_catalogs[i].schema, schema) &&
            !strcmp(filtered_catalogs[i].name, name))
            return &filtered_catalogs[i];
    return NULL;
}

bool rewrite_is_filtered_catalog(const char *schema, const char *name)
{
    return find_catalog(schema, name) != NULL;
}

bool rewrite_filtered_catalog_at(size_t i, const char **schema, const char **name)
{
    if (i >= sizeof filtered_catalogs / sizeof filtered_catalogs[0])
        return false;
    *schema = filtered_catalogs[i].schema;
    *name = filtered_catalogs[i].name;
    return true;
}

/* The table name of a pg_class row mg_c: an index counts as its table. */
#define CLASS_TABLE_NAME                                                                        \
    "CASE WHEN mg_c.relkind IN ('i', 'I') THEN (SELECT mg_t.relname::pg_catalog.text "        \
    "FROM pg_catalog.pg_index mg_x JOIN pg_catalog.pg_class mg_t ON mg_t.oid = mg_x.indrelid " \
    "WHERE mg_x.indexrelid = mg_c.oid) ELSE mg_c.relname::pg_catalog.text END"
#define NSPNAME "mg_n.nspname::pg_catalog.text"

typedef struct visibility {
    rewrite_visible_fn fn;
    rewrite_column_hidden_fn hidden;
    void *ctx;
    bool failed;
} visibility;

/* Appends "(<visible(schema_expr, table_expr)>)". */
static void add_visible(textbuf *b, visibility *v, const char *schema_expr, const char *table_expr)
{
    char *test = v->fn(v->ctx, schema_expr, table_expr);
    if (!test) {
        v->failed = true;
        return;
    }
    textbuf_add(b, "(");
    textbuf_add(b, test);
    textbuf_add(b, ")");
    free(test);
}

/* Appends " AND NOT (<hidden(schema, table, column)>)" when a column test is given. */
static void add_column_test(textbuf *b, visibility *v, const char *schema_expr, const char *table_expr,
                            const char *column_expr)
{
    if (!v->hidden)
        return;
    char *test = v->hidden(v->ctx, schema_expr, table_expr, column_expr);
    if (!test) {
        v->failed = true;
        return;
    }
    textbuf_add(b, " AND NOT (");
    textbuf_add(b, test);
    textbuf_add(b, ")");
    free(test);
}

static void build(textbuf *b, const filtered_catalog *c, visibility *v)
{
    switch (c->shape) {
    case SHAPE_NAMESPACE:
        textbuf_add(b, "SELECT * FROM pg_catalog.pg_namespace mg_n WHERE ");
        add_visible(b, v, NSPNAME, NULL);
        break;
    case SHAPE_CLASS:
        textbuf_add(b, "SELECT mg_c.* FROM pg_catalog.pg_class mg_c JOIN pg_catalog.pg_namespace "
                    "mg_n ON mg_n.oid = mg_c.relnamespace WHERE ");
        add_visible(b, v, NSPNAME, CLASS_TABLE_NAME);
        break;
    case SHAPE_ATTRIBUTE:
        textbuf_add(b, "SELECT mg_a.* FROM pg_catalog.pg_attribute mg_a JOIN pg_catalog.pg_class "
                    "mg_c ON mg_c.oid = mg_a.attrelid JOIN pg_catalog.pg_namespace mg_n ON "
                    "mg_n.oid = mg_c.relnamespace WHERE ");
        add_visible(b, v, NSPNAME, CLASS_TABLE_NAME);
        add_column_test(b, v, NSPNAME, CLASS_TABLE_NAME, "mg_a.attname::pg_catalog.text");
        break;
    case SHAPE_OF_TABLE:
        textbuf_add(b, "SELECT mg_i.* FROM pg_catalog.");
        textbuf_add(b, c->name);
        textbuf_add(b, " mg_i JOIN pg_catalog.pg_class mg_c ON mg_c.oid = mg_i.");
        textbuf_add(b, c->schema_column);
        textbuf_add(b, " JOIN pg_catalog.pg_namespace mg_n ON mg_n.oid = mg_c.relnamespace WHERE ");
        add_visible(b, v, NSPNAME, "mg_c.relname::pg_catalog.text");
        break;
    case SHAPE_CONSTRAINT:
        textbuf_add(b, "SELECT mg_k.* FROM pg_catalog.pg_constraint mg_k JOIN "
                    "pg_catalog.pg_namespace mg_n ON mg_n.oid = mg_k.connamespace LEFT JOIN "
                    "pg_catalog.pg_class mg_c ON mg_c.oid = mg_k.conrelid WHERE CASE WHEN "
                    "mg_k.conrelid = 0 THEN ");
        add_visible(b, v, NSPNAME, NULL);
        textbuf_add(b, " ELSE ");
        add_visible(b, v, NSPNAME, "mg_c.relname::pg_catalog.text");
        textbuf_add(b, " END");
        break;
    case SHAPE_DESCRIPTION:
        /* comments on relations (and their columns), schemas, functions,
         * types and constraints follow their object; others stay */
        textbuf_add(b, "SELECT mg_d.* FROM pg_catalog.pg_description mg_d WHERE CASE "
                    "WHEN mg_d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass THEN "
                    "EXISTS (SELECT 1 FROM pg_catalog.pg_class mg_c JOIN pg_catalog.pg_namespace "
                    "mg_n ON mg_n.oid = mg_c.relnamespace WHERE mg_c.oid = mg_d.objoid AND ");
        add_visible(b, v, NSPNAME, CLASS_TABLE_NAME);
        textbuf_add(b, ") WHEN mg_d.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass THEN "
                    "EXISTS (SELECT 1 FROM pg_catalog.pg_namespace mg_n WHERE mg_n.oid = "
                    "mg_d.objoid AND ");
        add_visible(b, v, NSPNAME, NULL);
        textbuf_add(b, ") WHEN mg_d.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass THEN "
                    "EXISTS (SELECT 1 FROM pg_catalog.pg_proc mg_p JOIN pg_catalog.pg_namespace "
                    "mg_n ON mg_n.oid = mg_p.pronamespace WHERE mg_p.oid = mg_d.objoid AND ");
        add_visible(b, v, NSPNAME, NULL);
        textbuf_add(b, ") WHEN mg_d.classoid = 'pg_catalog.pg_type'::pg_catalog.regclass THEN "
                    "EXISTS (SELECT 1 FROM pg_catalog.pg_type mg_y JOIN pg_catalog.pg_namespace "
                    "mg_n ON mg_n.oid = mg_y.typnamespace WHERE mg_y.oid = mg_d.objoid AND ");
        add_visible(b, v, NSPNAME, NULL);
        textbuf_add(b, ") WHEN mg_d.classoid = 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN "
                    "EXISTS (SELECT 1 FROM pg_catalog.pg_constraint mg_k JOIN "
                    "pg_catalog.pg_namespace mg_n ON mg_n.oid = mg_k.connamespace LEFT JOIN "
                    "pg_catalog.pg_class mg_c ON mg_c.oid = mg_k.conrelid WHERE mg_k.oid = "
                    "mg_d.objoid AND CASE WHEN mg_k.conrelid = 0 THEN ");
        add_visible(b, v, NSPNAME, NULL);
        textbuf_add(b, " ELSE ");
        add_visible(b, v, NSPNAME, "mg_c.relname::pg_catalog.text");
        textbuf_add(b, " END) ELSE true END");
        break;
    case SHAPE_TYPE:
        /* types of schemas the principal may read; a table's row type (and
         * its array type) only when the table may be seen */
        textbuf_add(b, "SELECT mg_y.* FROM pg_catalog.pg_type mg_y JOIN pg_catalog.pg_namespace mg_n ON "
                    "mg_n.oid = mg_y.typnamespace LEFT JOIN pg_catalog.pg_type mg_e ON mg_e.oid = "
                    "mg_y.typelem AND mg_y.typcategory = 'A' LEFT JOIN pg_catalog.pg_class mg_c ON "
                    "mg_c.oid = CASE WHEN mg_y.typrelid <> 0 THEN mg_y.typrelid ELSE mg_e.typrelid END "
                    "WHERE CASE WHEN mg_c.oid IS NULL THEN ");
        add_visible(b, v, NSPNAME, NULL);
        textbuf_add(b, " ELSE ");
        add_visible(b, v, NSPNAME, CLASS_TABLE_NAME);
        textbuf_add(b, " END");
        break;
    case SHAPE_OF_NAMESPACE:
        if (!c->schema_column) {
            /* pg_ts_config_map: the rows of a text search configuration */
            textbuf_add(b, "SELECT mg_i.* FROM pg_catalog.pg_ts_config_map mg_i JOIN pg_catalog.pg_ts_config "
                        "mg_t ON mg_t.oid = mg_i.mapcfg JOIN pg_catalog.pg_namespace mg_n ON mg_n.oid = "
                        "mg_t.cfgnamespace WHERE ");
        } else {
            textbuf_addf(b, "SELECT mg_i.* FROM pg_catalog.%s mg_i JOIN pg_catalog.pg_namespace mg_n ON "
                         "mg_n.oid = mg_i.%s WHERE ", c->name, c->schema_column);
        }
        add_visible(b, v, NSPNAME, NULL);
        break;
    case SHAPE_NAMED_COLUMNS: {
        char schema_expr[96], table_expr[96];
        snprintf(schema_expr, sizeof schema_expr, "mg_v.%s::pg_catalog.text", c->schema_column);
        if (c->table_column)
            snprintf(table_expr, sizeof table_expr, "mg_v.%s::pg_catalog.text",
                     c->table_column);
        textbuf_addf(b, "SELECT * FROM %s.%s mg_v WHERE ", c->schema, c->name);
        add_visible(b, v, schema_expr, c->table_column ? table_expr : NULL);
        if (c->schema2_column) {
            char schema2[96], table2[96];
            snprintf(schema2, sizeof schema2, "mg_v.%s::pg_catalog.text", c->schema2_column);
            if (c->table2_column)
                snprintf(table2, sizeof table2, "mg_v.%s::pg_catalog.text", c->table2_column);
            textbuf_add(b, " AND ");
            add_visible(b, v, schema2, c->table2_column ? table2 : NULL);
        }
        if (!strcmp(c->schema, "information_schema") && !strcmp(c->name, "columns"))
            add_column_test(b, v, schema_expr, table_expr, "mg_v.column_name::pg_catalog.text");
        break;
    }
    }
    textbuf_add(b, " OFFSET 0");
}

int rewrite_catalog_relation(const char *schema, const char *name, const rewrite_catalog_filter *f,
                             char **out, char *err, size_t errlen)
{
    *out = NULL;
    const filtered_catalog *c = find_catalog(schema, name);
    if (!c)
        return 1;
    if (!f || !f->visible) {
        snprintf(err, errlen, "catalog filter: no visibility test");
        return -1;
    }
    visibility v = {f->visible, f->column_hidden, f->ctx, false};
    textbuf b = {0};
    build(&b, c, &v);
    if (v.failed) {
        free(b.s);
        snprintf(err, errlen, "catalog filter: the visibility test for %s.%s failed", schema,
                 name);
        return -1;
    }
    *out = textbuf_finish(&b);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void rewrite_free_substitutions(rewrite_substitution *subs, size_t n)
{
    if (!subs)
        return;
    for (size_t i = 0; i < n; i++)
        free((char *)subs[i].replacement);
    free(subs);
}

int rewrite_catalog_substitutions(const analysis *a, const rewrite_catalog_filter *f,
                                  rewrite_substitution **subs, char *err, size_t errlen)
{
    *subs = NULL;
    size_t n = 0, cap = 0;
    rewrite_substitution *list = NULL;
    for (size_t i = 0; i < a->n_relations; i++) {
        const analysis_relation *r = &a->relations[i];
        if (!(r->access & ANALYZE_ACCESS_READ))
            continue;
        if (r->resolution == ANALYZE_RES_UNRESOLVED) {
            /* an unqualified name that may be a filtered catalog */
            bool maybe = false;
            if (r->n_candidates == 0)   /* search_path unknown */
                maybe = rewrite_is_filtered_catalog("pg_catalog", r->name) ||
                        rewrite_is_filtered_catalog("information_schema", r->name);
            for (size_t k = 0; k < r->n_candidates && !maybe; k++)
                maybe = rewrite_is_filtered_catalog(r->candidates[k], r->name);
            if (maybe) {
                snprintf(err, errlen,
                         "relation %s may be a filtered catalog but its schema is unknown: "
                         "write it schema-qualified",
                         r->name);
                rewrite_free_substitutions(list, n);
                return -1;
            }
            continue;
        }
        if (r->resolution == ANALYZE_RES_OTHER_DATABASE || !find_catalog(r->schema, r->name))
            continue;
        if (r->usage != ANALYZE_USE_FROM || r->tablesample) {
            snprintf(err, errlen,
                     "catalog %s.%s is read where it cannot be filtered (only FROM without "
                     "TABLESAMPLE can be)",
                     r->schema, r->name);
            rewrite_free_substitutions(list, n);
            return -1;
        }
        rewrite_substitution *grown = grow_array(list, &cap, n + 1, sizeof *grown, 4);
        if (!grown) {
            snprintf(err, errlen, "out of memory");
            rewrite_free_substitutions(list, n);
            return -1;
        }
        list = grown;
        char *text = NULL;
        if (rewrite_catalog_relation(r->schema, r->name, f, &text, err, errlen) != 0) {
            rewrite_free_substitutions(list, n);
            return -1;
        }
        list[n].relation = i;
        list[n].replacement = text;
        n++;
    }
    *subs = list;
    return (int)n;
}
