/*
 * warehouse_facts: what martgate reads from a warehouse's own metadata so
 * that decisions are allow-lists of what the server says things are, not
 * lists of names: its settings (pg_settings: name, context, category), the
 * functions PUBLIC may not execute (their ACL now, or at initdb by
 * pg_init_privs), and the service role's attributes (superuser, BYPASSRLS,
 * CREATEROLE, predefined roles it is a member of), and the names of the
 * relations in pg_catalog (so that an unqualified pg_* name is known to be,
 * or not to be, one of the server's own). adapters/catalog fills a
 * set on its worker thread; policy/decide and proxy/ only read it. Immutable
 * once wh_finish has run.
 */
#ifndef MARTGATE_WAREHOUSE_FACTS_H
#define MARTGATE_WAREHOUSE_FACTS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct wh_setting {
    const char *name;       /* as pg_settings spells it (TimeZone, DateStyle, ...) */
    const char *context;    /* user, superuser, sighup, postmaster, backend, ... */
    const char *category;   /* "Reporting and Logging / What to Log", ... */
} wh_setting;

typedef struct wh_function {
    const char *schema, *name;
} wh_function;

typedef struct wh_service_role {
    bool known;
    const char *name;
    bool superuser, bypassrls, createrole;
    const char *predefined;  /* predefined roles it is a member of, comma-separated, or "" */
} wh_service_role;

typedef struct warehouse_facts {
    wh_setting *settings;    /* sorted by name, case-insensitively */
    size_t n_settings, cap_settings;
    wh_function *admin;      /* functions PUBLIC cannot execute, sorted by name */
    size_t n_admin, cap_admin;
    wh_service_role role;
    const char **catalog_rels; /* relnames in pg_catalog (every relkind), sorted */
    size_t n_catalog_rels, cap_catalog_rels;
    bool catalog_known;      /* catalog_rels was read (even if empty) */
    const char *server_version; /* as the server reported it when read, or NULL */
    char **strings;          /* every string above, freed together */
    size_t n_strings, cap_strings;
    bool oom;
} warehouse_facts;

warehouse_facts *wh_new(void);
void wh_free(warehouse_facts *f);
/* Copy their arguments; an allocation failure sets f->oom. */
void wh_add_setting(warehouse_facts *f, const char *name, const char *context, const char *category);
void wh_add_admin_function(warehouse_facts *f, const char *schema, const char *name);
void wh_set_role(warehouse_facts *f, const char *name, bool superuser, bool bypassrls, bool createrole,
                 const char *predefined);
void wh_add_catalog_relation(warehouse_facts *f, const char *name);
/* The list of pg_catalog's relations was read (call it even when empty). */
void wh_set_catalog_known(warehouse_facts *f);
void wh_set_server_version(warehouse_facts *f, const char *version);
/* Sorts for lookup; -1 when an addition ran out of memory. */
int wh_finish(warehouse_facts *f) __attribute__((warn_unused_result));

/* The setting of that name (case-insensitive, as the server compares), or NULL. */
const wh_setting *wh_find_setting(const warehouse_facts *f, const char *name);
/* Is some function of that name PUBLIC may not execute? schema NULL: in
 * any schema (an unqualified call may resolve to any of them). */
bool wh_function_is_admin(const warehouse_facts *f, const char *schema, const char *name);
/* True only when the warehouse's pg_catalog is known and has no relation
 * of that name (an unknown catalog: false, the name may be there).
 * server_version: the version the asking session's warehouse reports; facts
 * read from another version (the server was upgraded since) know nothing of
 * its catalog. NULL: the facts' own (offline). */
bool wh_catalog_lacks(const warehouse_facts *f, const char *server_version, const char *name);
/* Were these facts read from a server reporting that version? */
bool wh_same_version(const warehouse_facts *f, const char *server_version);
/* Why the service role is more privileged than martgate needs ("superuser,
 * member of pg_read_server_files"), into buf; false when it is not. */
bool wh_role_privileged(const warehouse_facts *f, char *buf, size_t len);

#endif
