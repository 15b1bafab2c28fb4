/*
 * catalog_classes: the SAFE and RESTRICTED relations of pg_catalog and
 * information_schema (PostgreSQL 15); the FILTERED ones live with their
 * filters in catalog_filter.c. A relation in neither list is unclassified and
 * denied (decide.c). tests/integration/t_catalog_classes.sh enumerates the
 * test warehouse's relations and fails on one that is not classified, and on
 * one classified here that the warehouse does not have.
 *
 * SAFE means no per-object rows about user data: server-wide definitions
 * (access methods, casts, languages, text search, operators), role and
 * database lists, counters of the whole server, OIDs without names. Names of
 * objects in hidden schemas can still print through a regproc or regtype
 * column (pg_aggregate.aggtransfn, pg_range.rngsubtype): names, never rows,
 * as docs/policy.md's known limits say.
 * RESTRICTED means table contents (statistics samples), credentials, server
 * files and settings files, other sessions (activity, locks, progress, SSL),
 * replication slots and subscriptions (their connection strings), foreign
 * servers' options, and this session's own statements as
 * the warehouse holds them (rewritten, with the hash mask's key).
 */
#include <string.h>

#include "policy/catalog_classes.h"
#include "policy/rewrite.h"

typedef struct classified {
    const char *schema, *name;
    catalog_class cls;
} classified;

#define S(n) {"pg_catalog", n, CATALOG_SAFE}
#define R(n) {"pg_catalog", n, CATALOG_RESTRICTED}
#define IS(n) {"information_schema", n, CATALOG_SAFE}
#define IR(n) {"information_schema", n, CATALOG_RESTRICTED}

static const classified classes[] = {
    /* definitions of the server and of types, functions, operators */
    S("pg_aggregate"), S("pg_am"), S("pg_amop"), S("pg_amproc"), S("pg_cast"), S("pg_enum"),
    S("pg_event_trigger"), S("pg_language"), S("pg_range"), S("pg_transform"), S("pg_tablespace"),
    S("pg_available_extensions"), S("pg_available_extension_versions"), S("pg_parameter_acl"),
    S("pg_timezone_abbrevs"), S("pg_timezone_names"), S("pg_settings"),
    /* publications' names and flags (psql's \d lists a table's); which
     * tables and schemas they hold is filtered */
    S("pg_publication"),
    /* OIDs and privileges, no names */
    S("pg_depend"), S("pg_shdepend"), S("pg_init_privs"), S("pg_default_acl"), S("pg_largeobject_metadata"),
    /* roles and databases (passwords are in pg_authid, restricted) */
    S("pg_auth_members"), S("pg_roles"), S("pg_user"), S("pg_group"), S("pg_database"), S("pg_shdescription"),
    /* counters of the whole server, and of system tables only */
    S("pg_stat_archiver"), S("pg_stat_bgwriter"), S("pg_stat_database"), S("pg_stat_database_conflicts"),
    S("pg_stat_recovery_prefetch"), S("pg_stat_slru"), S("pg_stat_wal"), S("pg_stat_sys_indexes"),
    S("pg_stat_sys_tables"), S("pg_stat_xact_sys_tables"), S("pg_statio_sys_indexes"),
    S("pg_statio_sys_sequences"), S("pg_statio_sys_tables"),
    /* table contents: statistics hold sample values */
    R("pg_statistic"), R("pg_statistic_ext_data"), R("pg_stats"), R("pg_stats_ext"), R("pg_stats_ext_exprs"),
    /* credentials, server files, per-role settings */
    R("pg_authid"), R("pg_shadow"), R("pg_user_mapping"), R("pg_user_mappings"), R("pg_largeobject"),
    R("pg_file_settings"), R("pg_hba_file_rules"), R("pg_ident_file_mappings"), R("pg_config"),
    R("pg_db_role_setting"), R("pg_seclabel"), R("pg_seclabels"), R("pg_shseclabel"),
    R("pg_shmem_allocations"),
    /* other sessions */
    R("pg_stat_activity"), R("pg_locks"), R("pg_prepared_xacts"), R("pg_stat_gssapi"), R("pg_stat_ssl"),
    R("pg_stat_progress_analyze"), R("pg_stat_progress_basebackup"), R("pg_stat_progress_cluster"),
    R("pg_stat_progress_copy"), R("pg_stat_progress_create_index"), R("pg_stat_progress_vacuum"),
    /* replication, publication, subscription */
    R("pg_stat_replication"), R("pg_stat_replication_slots"), R("pg_stat_wal_receiver"),
    R("pg_stat_subscription"), R("pg_stat_subscription_stats"), R("pg_replication_origin"),
    R("pg_replication_origin_status"), R("pg_replication_slots"), R("pg_subscription"),
    R("pg_subscription_rel"),
    /* foreign servers: their options name hosts and users */
    R("pg_foreign_data_wrapper"), R("pg_foreign_server"), R("pg_foreign_table"),
    /* this session's statements as the warehouse holds them: rewritten
     * texts, with the hash mask's key */
    R("pg_prepared_statements"), R("pg_cursors"), R("pg_backend_memory_contexts"),

    IS("administrable_role_authorizations"), IS("applicable_roles"), IS("enabled_roles"),
    IS("character_sets"), IS("collations"), IS("collation_character_set_applicability"),
    IS("information_schema_catalog_name"), IS("sql_features"), IS("sql_implementation_info"),
    IS("sql_parts"), IS("sql_sizing"),
    IR("_pg_foreign_data_wrappers"), IR("_pg_foreign_servers"), IR("_pg_foreign_table_columns"),
    IR("_pg_foreign_tables"), IR("_pg_user_mappings"), IR("foreign_data_wrapper_options"),
    IR("foreign_data_wrappers"), IR("foreign_server_options"), IR("foreign_servers"),
    IR("foreign_table_options"), IR("foreign_tables"), IR("user_mapping_options"), IR("user_mappings"),
};

catalog_class catalog_class_of(const char *schema, const char *name)
{
    if (!schema || !name)
        return CATALOG_UNCLASSIFIED;
    if (rewrite_is_filtered_catalog(schema, name))
        return CATALOG_FILTERED;
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (!strcmp(classes[i].name, name) && !strcmp(classes[i].schema, schema))
            return classes[i].cls;
    return CATALOG_UNCLASSIFIED;
}

const char *catalog_class_name(catalog_class c)
{
    switch (c) {
    case CATALOG_FILTERED:
        return "filtered";
    case CATALOG_SAFE:
        return "safe";
    case CATALOG_RESTRICTED:
        return "restricted";
    default:
        return "unclassified";
    }
}

bool catalog_classes_at(size_t i, const char **schema, const char **name, catalog_class *c)
{
    if (i >= sizeof classes / sizeof classes[0])
        return false;
    *schema = classes[i].schema;
    *name = classes[i].name;
    *c = classes[i].cls;
    return true;
}
