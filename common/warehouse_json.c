/*
 * warehouse_json: a warehouse's facts as JSON, so that policy tests and
 * `martgate policy explain` can decide offline with what a real warehouse
 * said (`martgate policy warehouse CONNINFO` writes it):
 *   {"settings": [["name", "context", "category"], ...],
 *    "admin_functions": ["schema.name", ...],
 *    "service_role": {"name", "superuser", "bypassrls", "createrole", "predefined"},
 *    "catalog_relations": ["pg_class", ...],  (absent: not known)
 *    "server_version": "15.20"}
 */
#include "common/warehouse_json.h"

#include <stdio.h>
#include <string.h>

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "warehouse facts: %s", what);
    return -1;
}

static int read_settings(warehouse_facts *f, const json_t *arr, char *err, size_t errlen)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return bad(err, errlen, "\"settings\" must be an array of [name, context, category]");
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e) {
        if (!json_is_array(e) || json_array_size(e) != 3 || !json_is_string(json_array_get(e, 0)) ||
            !json_is_string(json_array_get(e, 1)) || !json_is_string(json_array_get(e, 2))) {
            snprintf(err, errlen, "warehouse facts: settings[%zu] must be [name, context, category]", i);
            return -1;
        }
        wh_add_setting(f, json_string_value(json_array_get(e, 0)), json_string_value(json_array_get(e, 1)),
                       json_string_value(json_array_get(e, 2)));
    }
    return 0;
}

static int read_functions(warehouse_facts *f, const json_t *arr, char *err, size_t errlen)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return bad(err, errlen, "\"admin_functions\" must be an array of \"schema.name\"");
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e) {
        const char *s = json_string_value(e), *dot = s ? strchr(s, '.') : NULL;
        if (!dot || dot == s || !dot[1]) {
            snprintf(err, errlen, "warehouse facts: admin_functions[%zu] must be \"schema.name\"", i);
            return -1;
        }
        char schema[256];
        snprintf(schema, sizeof schema, "%.*s", (int)(dot - s), s);
        wh_add_admin_function(f, schema, dot + 1);
    }
    return 0;
}

static int read_catalog(warehouse_facts *f, const json_t *arr, char *err, size_t errlen)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return bad(err, errlen, "\"catalog_relations\" must be an array of relation names");
    wh_set_catalog_known(f);
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e) {
        if (!json_is_string(e) || !*json_string_value(e)) {
            snprintf(err, errlen, "warehouse facts: catalog_relations[%zu] must be a relation name", i);
            return -1;
        }
        wh_add_catalog_relation(f, json_string_value(e));
    }
    return 0;
}

static int read_version(warehouse_facts *f, const json_t *v, char *err, size_t errlen)
{
    if (!v)
        return 0;
    if (!json_is_string(v))
        return bad(err, errlen, "\"server_version\" must be a string (\"15.20\")");
    wh_set_server_version(f, json_string_value(v));
    return 0;
}

static int read_role(warehouse_facts *f, const json_t *r, char *err, size_t errlen)
{
    if (!r)
        return 0;
    const json_t *name = json_object_get(r, "name"), *pre = json_object_get(r, "predefined");
    if (!json_is_object(r) || !json_is_string(name) || (pre && !json_is_string(pre)))
        return bad(err, errlen, "\"service_role\" must be {\"name\": ..., \"superuser\": bool, ...}");
    wh_set_role(f, json_string_value(name), json_is_true(json_object_get(r, "superuser")),
                json_is_true(json_object_get(r, "bypassrls")), json_is_true(json_object_get(r, "createrole")),
                pre ? json_string_value(pre) : "");
    return 0;
}

warehouse_facts *wh_from_json(const json_t *v, char *err, size_t errlen)
{
    if (!json_is_object(v)) {
        bad(err, errlen, "must be an object {\"settings\", \"admin_functions\", \"service_role\", "
                         "\"catalog_relations\"}");
        return NULL;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        if (strcmp(key, "settings") && strcmp(key, "admin_functions") && strcmp(key, "service_role") &&
            strcmp(key, "catalog_relations") && strcmp(key, "server_version") && strcmp(key, "description")) {
            snprintf(err, errlen, "warehouse facts: unknown key \"%s\"", key);
            return NULL;
        }
    }
    warehouse_facts *f = wh_new();
    if (!f) {
        bad(err, errlen, "out of memory");
        return NULL;
    }
    if (read_settings(f, json_object_get(v, "settings"), err, errlen) < 0 ||
        read_functions(f, json_object_get(v, "admin_functions"), err, errlen) < 0 ||
        read_role(f, json_object_get(v, "service_role"), err, errlen) < 0 ||
        read_catalog(f, json_object_get(v, "catalog_relations"), err, errlen) < 0 ||
        read_version(f, json_object_get(v, "server_version"), err, errlen) < 0 ||
        (wh_finish(f) < 0 && bad(err, errlen, "out of memory") < 0)) {
        wh_free(f);
        return NULL;
    }
    return f;
}

json_t *wh_to_json(const warehouse_facts *f)
{
    json_t *o = json_object(), *settings = json_array(), *fns = json_array();
    if (!o || !settings || !fns) {
        json_decref(o);
        json_decref(settings);
        json_decref(fns);
        return NULL;
    }
    json_object_set_new(o, "settings", settings);
    json_object_set_new(o, "admin_functions", fns);
    for (size_t i = 0; i < f->n_settings; i++)
        json_array_append_new(settings, json_pack("[sss]", f->settings[i].name, f->settings[i].context,
                                                  f->settings[i].category));
    for (size_t i = 0; i < f->n_admin; i++) {
        char buf[600];
        snprintf(buf, sizeof buf, "%s.%s", f->admin[i].schema, f->admin[i].name);
        json_array_append_new(fns, json_string(buf));
    }
    if (f->role.known)
        json_object_set_new(o, "service_role",
                            json_pack("{sssbsbsbss}", "name", f->role.name, "superuser", f->role.superuser,
                                      "bypassrls", f->role.bypassrls, "createrole", f->role.createrole,
                                      "predefined", f->role.predefined ? f->role.predefined : ""));
    if (f->server_version)
        json_object_set_new(o, "server_version", json_string(f->server_version));
    if (f->catalog_known) {
        json_t *rels = json_array();
        for (size_t i = 0; rels && i < f->n_catalog_rels; i++)
            json_array_append_new(rels, json_string(f->catalog_rels[i]));
        if (rels)
            json_object_set_new(o, "catalog_relations", rels);
    }
    return o;
}
