/*
 * decide_settings: what a principal may change of the warehouse session's
 * settings (SET, RESET, SET ... TO DEFAULT, set_config, startup
 * parameters). An allow-list read from the warehouse itself: a setting may
 * be changed when the server says its context is `user` and it is not one
 * of those that switch off logging, monitoring or integrity (by the server's
 * own category); the policy's settings.allow adds names, settings.deny takes
 * them away. The settings that change how the server tokenizes SQL may only
 * keep the value martgate parses with; search_path may only name schemas
 * the principal may read.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/warehouse_facts.h"
#include "policy/decide_internal.h"

static const char *const builtin_denied_settings[] = {"role", "session_authorization", "local_preload_libraries",
                                                      "session_preload_libraries", "shared_preload_libraries",
                                                      NULL};

/* Categories (pg_settings.category, by prefix) of settings that switch off
 * logging, monitoring or integrity, or load code: not changeable by default
 * even where their context is `user`. */
static const char *const guarded_categories[] = {
    "Reporting and Logging", "Statistics", "Write-Ahead Log", "Replication", "Developer Options",
    "Client Connection Defaults / Shared Library Preloading", NULL};

/* ... except the client's own name, which every driver sets (and martgate
 * records): it switches nothing off. */
static bool category_exception(const char *name)
{
    return strcasecmp(name, "application_name") == 0;
}

const char *decide_guarded_category(const char *category)
{
    for (size_t i = 0; category && guarded_categories[i]; i++)
        if (strncmp(category, guarded_categories[i], strlen(guarded_categories[i])) == 0)
            return guarded_categories[i];
    return NULL;
}

/* ---- the settings martgate's parser depends on ---------------------- */

static bool in_list(const char *v, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcasecmp(v, list[i]) == 0)
            return true;
    return false;
}

/* An encoding name compared as PostgreSQL does (clean_encoding_name: only
 * letters and digits, case-insensitive): UTF8, utf-8, 'utf_8', Unicode. */
static bool is_utf8_name(const char *v)
{
    char clean[32];
    size_t n = 0;
    for (const char *c = v; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))
            clean[n++] = *c;
        else if (*c >= 'A' && *c <= 'Z')
            clean[n++] = (char)(*c - 'A' + 'a');
        if (n + 1 >= sizeof clean)
            return false;
    }
    clean[n] = 0;
    return strcmp(clean, "utf8") == 0 || strcmp(clean, "unicode") == 0;
}

static const char *const on_values[] = {"on", "true", "yes", "1", NULL};
static const char *const bq_values[] = {"safe_encoding", "on", "true", "yes", "1", NULL};

typedef struct parse_setting {
    const char *name;
    const char *value;              /* what martgate parses with (and every session starts with) */
    const char *const *accepted;    /* values that read the same, or NULL: is_utf8_name */
} parse_setting;

/* Keep in step with adapters/postgres.c backend_parse_settings, which
 * starts and verifies every warehouse session with these values. */
static const parse_setting parse_settings[] = {
    {"standard_conforming_strings", "on", on_values},
    {"backslash_quote", "safe_encoding", bq_values},
    {"client_encoding", "UTF8", NULL},
    {NULL, NULL, NULL},
};

static const parse_setting *find_parse_setting(const char *name)
{
    for (const parse_setting *ps = parse_settings; ps->name; ps++)
        if (strcmp(ps->name, name) == 0)
            return ps;
    return NULL;
}

const char *decide_parse_setting_value(const char *name)
{
    const parse_setting *ps = find_parse_setting(name);
    return ps ? ps->value : NULL;
}

/* ---- the decision ----------------------------------------------------- */

static void deny(decide_item *it, int why, const void *ref)
{
    it->verdict = DECIDE_DENY;
    it->why = why;
    it->ref[0] = ref;
}

static void decide_search_path_setting(const policy_t *p, const subj *s, const analysis_setting *st,
                                       decide_item *it)
{
    if (st->action != ANALYZE_SET_VALUE) {
        it->why = W_SP_RESET;
        return;
    }
    if (st->value_not_constant || (!st->schemas && st->value && *st->value)) {
        deny(it, W_SP_NOT_CONSTANT, NULL);
        return;
    }
    for (size_t i = 0; i < st->n_schemas; i++) {
        const char *sc = st->schemas[i];
        if (strcmp(sc, "$user") == 0) {
            deny(it, W_SP_USER, NULL);
            return;
        }
        if (policy_is_catalog_schema(sc) || strcmp(sc, "pg_temp") == 0 || !*sc)
            continue;
        if (!schema_readable(p, s, sc)) {
            deny(it, W_SP_UNREADABLE, sc);
            return;
        }
    }
    it->why = W_SP_OK;
}

/* May this setting be changed at all (whatever the value)? */
static void decide_allow_list(const policy_t *p, const warehouse_facts *wh, const char *name, decide_item *it)
{
    for (size_t i = 0; p && i < p->n_settings; i++)
        if (p->settings[i].allow && glob_match(&p->settings[i].name, name)) {
            it->why = W_SET_ALLOWED;
            it->ref[0] = &p->settings[i];
            return;
        }
    if (!wh) {
        deny(it, W_SET_NO_FACTS, NULL);
        return;
    }
    const wh_setting *ws = wh_find_setting(wh, name);
    if (!ws) {
        deny(it, W_SET_UNKNOWN, NULL);
        return;
    }
    /* the reason is formatted later (the audit record), when this snapshot of
     * the facts may be gone: it names only strings of static storage */
    if (strcmp(ws->context, "user") != 0) {
        static const char *const contexts[] = {"internal", "postmaster", "sighup", "superuser-backend", "backend",
                                               "superuser", NULL};
        deny(it, W_SET_CONTEXT, NULL);
        it->ref[1] = "not user";
        for (size_t i = 0; contexts[i]; i++)
            if (strcmp(ws->context, contexts[i]) == 0)
                it->ref[1] = contexts[i];
        return;
    }
    const char *guarded = category_exception(name) ? NULL : decide_guarded_category(ws->category);
    if (guarded) {
        deny(it, W_SET_CATEGORY, NULL);
        it->ref[1] = guarded;
    }
}

void decide_setting(const policy_t *p, const subj *s, const warehouse_facts *wh, const analysis_setting *st,
                    decide_item *it)
{
    it->name = st->name ? st->name : (st->action == ANALYZE_SET_RESET_ALL ? "all" : "(not constant)");
    it->verdict = DECIDE_ALLOW;
    it->why = W_SET_OK;
    if (!st->name) {
        if (st->action != ANALYZE_SET_RESET_ALL)
            deny(it, W_SP_NOT_CONSTANT, NULL);
        return;   /* RESET ALL: back to what the session started with */
    }
    if (st->action == ANALYZE_SET_MULTI || st->action == ANALYZE_SET_DISCARD)
        return;   /* SET TRANSACTION ..., SET SESSION CHARACTERISTICS ..., DISCARD */
    for (size_t i = 0; builtin_denied_settings[i]; i++)
        if (strcmp(st->name, builtin_denied_settings[i]) == 0) {
            deny(it, W_SET_BUILTIN, NULL);
            return;
        }
    for (size_t i = 0; p && i < p->n_settings; i++)
        if (!p->settings[i].allow && glob_match(&p->settings[i].name, st->name)) {
            deny(it, W_SET_POLICY, &p->settings[i]);
            return;
        }
    if (strcmp(st->name, "search_path") == 0) {
        decide_search_path_setting(p, s, st, it);
        return;
    }
    const parse_setting *ps = find_parse_setting(st->name);
    if (ps) {
        if (st->action != ANALYZE_SET_VALUE) {
            /* RESET, TO DEFAULT, FROM CURRENT: the session started with
             * martgate's value (verified at login), which is also its reset value */
            it->why = W_SET_PARSE_RESET;
            it->ref[1] = ps->value;
            return;
        }
        const char *v = st->value;
        if (!v || !(ps->accepted ? in_list(v, ps->accepted) : is_utf8_name(v))) {
            deny(it, W_SET_VALUE, NULL);
            it->ref[1] = ps->value;
        }
        return;
    }
    /* LOG and DEBUG levels would send the server's own log lines to the
     * client: the session's statements as the warehouse ran them (rewritten,
     * the hash mask's key pads included) when it logs statements */
    static const char *const client_levels[] = {"notice", "warning", "error", NULL};
    if (strcasecmp(st->name, "client_min_messages") == 0 && st->action == ANALYZE_SET_VALUE &&
        (!st->value || !in_list(st->value, client_levels))) {
        deny(it, W_SET_MESSAGES, NULL);
        return;
    }
    decide_allow_list(p, wh, st->name, it);
}

bool decide_setting_value(const policy_t *p, const warehouse_facts *wh, const char *name, const char *value,
                          char *why, size_t whylen)
{
    char lower[128];
    size_t n = 0;
    for (; name[n] && n + 1 < sizeof lower; n++)
        lower[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] + 32 : name[n]);
    lower[n] = 0;
    if (strcmp(lower, "search_path") == 0)
        return true;   /* the caller checks each schema */
    analysis_setting st = {.action = ANALYZE_SET_VALUE, .name = lower, .value = value};
    decide_item it = {.kind = DECIDE_ITEM_SETTING};
    decide_principal nobody = {.user = ""};
    subj s = {.user = ""};   /* settings other than search_path do not depend on who asks */
    decide_setting(p, &s, wh, &st, &it);
    if (it.verdict == DECIDE_ALLOW)
        return true;
    decision d;
    decision_init(&d);
    d.items = &it;
    d.n_items = 1;
    d.policy = p;
    d.who = &nobody;
    decide_item_reason(&d, 0, why, whylen);
    return false;
}
