/*
 * warehouse_facts: the storage (one string list freed together, arrays
 * sorted once) and lookups (binary search) of a warehouse's facts.
 */
#include "common/warehouse_facts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/grow.h"

warehouse_facts *wh_new(void)
{
    return calloc(1, sizeof(warehouse_facts));
}

void wh_free(warehouse_facts *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_strings; i++)
        free(f->strings[i]);
    free(f->strings);
    free(f->settings);
    free(f->admin);
    free(f->catalog_rels);
    free(f);
}

static const char *keep(warehouse_facts *f, const char *s)
{
    if (f->oom)
        return NULL;
    char **n = grow_array(f->strings, &f->cap_strings, f->n_strings + 1, sizeof *n, 64);
    char *copy = strdup(s ? s : "");
    if (!n || !copy) {
        free(copy);
        f->oom = true;
        return NULL;
    }
    f->strings = n;
    f->strings[f->n_strings++] = copy;
    return copy;
}

void wh_add_setting(warehouse_facts *f, const char *name, const char *context, const char *category)
{
    wh_setting *n = grow_array(f->settings, &f->cap_settings, f->n_settings + 1, sizeof *n, 64);
    if (!n) {
        f->oom = true;
        return;
    }
    f->settings = n;
    wh_setting s = {keep(f, name), keep(f, context), keep(f, category)};
    if (!f->oom)
        f->settings[f->n_settings++] = s;
}

void wh_add_admin_function(warehouse_facts *f, const char *schema, const char *name)
{
    wh_function *n = grow_array(f->admin, &f->cap_admin, f->n_admin + 1, sizeof *n, 64);
    if (!n) {
        f->oom = true;
        return;
    }
    f->admin = n;
    wh_function fn = {keep(f, schema), keep(f, name)};
    if (!f->oom)
        f->admin[f->n_admin++] = fn;
}

void wh_add_catalog_relation(warehouse_facts *f, const char *name)
{
    const char **n = grow_array(f->catalog_rels, &f->cap_catalog_rels, f->n_catalog_rels + 1, sizeof *n, 256);
    if (!n) {
        f->oom = true;
        return;
    }
    f->catalog_rels = n;
    const char *kept = keep(f, name);
    if (!f->oom)
        f->catalog_rels[f->n_catalog_rels++] = kept;
    f->catalog_known = true;
}

void wh_set_catalog_known(warehouse_facts *f)
{
    f->catalog_known = true;
}

void wh_set_server_version(warehouse_facts *f, const char *version)
{
    f->server_version = version ? keep(f, version) : NULL;
}

void wh_set_role(warehouse_facts *f, const char *name, bool superuser, bool bypassrls, bool createrole,
                 const char *predefined)
{
    f->role = (wh_service_role){true, keep(f, name), superuser, bypassrls, createrole, keep(f, predefined)};
}

static int cmp_setting(const void *a, const void *b)
{
    return strcasecmp(((const wh_setting *)a)->name, ((const wh_setting *)b)->name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_function(const void *a, const void *b)
{
    return strcmp(((const wh_function *)a)->name, ((const wh_function *)b)->name);
}

int wh_finish(warehouse_facts *f)
{
    if (f->oom)
        return -1;
    if (f->n_settings)
        qsort(f->settings, f->n_settings, sizeof *f->settings, cmp_setting);
    if (f->n_admin)
        qsort(f->admin, f->n_admin, sizeof *f->admin, cmp_function);
    if (f->n_catalog_rels)
        qsort(f->catalog_rels, f->n_catalog_rels, sizeof *f->catalog_rels, cmp_name);
    return 0;
}

const wh_setting *wh_find_setting(const warehouse_facts *f, const char *name)
{
    if (!f || !name || !f->n_settings)
        return NULL;
    wh_setting key = {.name = name};
    return bsearch(&key, f->settings, f->n_settings, sizeof *f->settings, cmp_setting);
}

bool wh_function_is_admin(const warehouse_facts *f, const char *schema, const char *name)
{
    if (!f || !name || !f->n_admin)
        return false;
    size_t lo = 0, hi = f->n_admin;
    while (lo < hi) {   /* the first entry of that name */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(f->admin[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < f->n_admin && strcmp(f->admin[i].name, name) == 0; i++)
        if (!schema || strcmp(f->admin[i].schema, schema) == 0)
            return true;
    return false;
}

bool wh_same_version(const warehouse_facts *f, const char *server_version)
{
    return f && (!server_version || (f->server_version && strcmp(f->server_version, server_version) == 0));
}

bool wh_catalog_lacks(const warehouse_facts *f, const char *server_version, const char *name)
{
    if (!f || !name || !f->catalog_known || !wh_same_version(f, server_version))
        return false;
    return !f->n_catalog_rels ||
           !bsearch(&name, f->catalog_rels, f->n_catalog_rels, sizeof *f->catalog_rels, cmp_name);
}

bool wh_role_privileged(const warehouse_facts *f, char *buf, size_t len)
{
    if (len)
        buf[0] = 0;
    if (!f || !f->role.known)
        return false;
    const wh_service_role *r = &f->role;
    size_t off = 0;
#define ADD(...)                                                                              \
    do {                                                                                     \
        int w_ = snprintf(buf + off, len > off ? len - off : 0, "%s", off ? ", " : "");      \
        off += w_ > 0 ? (size_t)w_ : 0;                                                      \
        w_ = snprintf(buf + off, len > off ? len - off : 0, __VA_ARGS__);                    \
        off += w_ > 0 ? (size_t)w_ : 0;                                                      \
    } while (0)
    if (r->superuser)
        ADD("superuser");
    if (r->bypassrls)
        ADD("BYPASSRLS");
    if (r->createrole)
        ADD("CREATEROLE");
    if (r->predefined && *r->predefined)
        ADD("member of %s", r->predefined);
#undef ADD
    return off > 0;
}
