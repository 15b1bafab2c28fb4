/*
 * audit_settings: the "audit" section of the configuration, checked
 * strictly (file:line:col and field in every error) without opening
 * anything, so config_load can run it for --check and for reloads.
 */
#include <ctype.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/path.h"
#include "proxy/audit_internal.h"
#include "proxy/secret_file.h"


/* ----------------------------------------------------------- settings -- */

static void patterns_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void audit_settings_clear(audit_settings *s)
{
    free(s->file);
    audit_pg_config_clear(&s->pg);
    patterns_free(s->end_user_from, s->n_end_user_from);
    memset(s, 0, sizeof *s);
}

void audit_settings_free(audit_settings *s)
{
    if (!s)
        return;
    audit_settings_clear(s);
    free(s);
}

bool audit_settings_enabled(const audit_settings *s) { return s && s->enabled; }

static bool str_same(const char *x, const char *y)
{
    return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

bool audit_settings_same(const audit_settings *x, const audit_settings *y)
{
    if (!audit_settings_enabled(x) || !audit_settings_enabled(y))
        return audit_settings_enabled(x) == audit_settings_enabled(y);
    if (!str_same(x->file, y->file) || x->qmode != y->qmode || x->queue_size != y->queue_size ||
        x->when_full != y->when_full || x->fsync_interval_ms != y->fsync_interval_ms ||
        x->has_warehouse != y->has_warehouse || x->has_end_user_from != y->has_end_user_from ||
        x->n_end_user_from != y->n_end_user_from)
        return false;
    for (size_t i = 0; i < x->n_end_user_from; i++)
        if (strcmp(x->end_user_from[i], y->end_user_from[i]) != 0)
            return false;
    if (!x->has_warehouse)
        return true;
    const audit_pg_config *p = &x->pg, *q = &y->pg;
    return str_same(p->conninfo, q->conninfo) && str_same(p->password, q->password) &&
           str_same(p->schema, q->schema) && str_same(p->table, q->table) && p->batch_size == q->batch_size &&
           p->flush_interval_ms == q->flush_interval_ms && str_same(p->spool_path, q->spool_path);
}

static bool valid_ident(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' || s[i] == '$' ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static char *lower_dup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    for (char *p = d; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

static int parse_warehouse(const json_doc *doc, const json_t *w, const char *base_dir, audit_settings *s,
                           audit_db_lookup lookup, void *lookup_arg, char *err, size_t errlen)
{
    static const char *const keys[] = {"database", "conninfo", "password_file", "password_env", "table",
                                       "batch_size", "flush_interval_ms", "spool_file", NULL};
    const char *F = "audit.warehouse";
    if (!json_is_object(w))
        return json_doc_error(doc, w, err, errlen, F, "must be an object");
    if (json_doc_check_keys(doc, w, F, keys, err, errlen))
        return -1;
    const char *database = NULL, *conninfo = NULL, *pwfile = NULL, *pwenv = NULL;
    const char *table = "governance.audit_events", *spool = NULL;
    long long batch = 500, flush = 1000;
    if (json_doc_get_string(doc, w, F, "database", false, &database, err, errlen) < 0 ||
        json_doc_get_string(doc, w, F, "conninfo", false, &conninfo, err, errlen) < 0 ||
        json_doc_get_string(doc, w, F, "password_file", false, &pwfile, err, errlen) < 0 ||
        json_doc_get_string(doc, w, F, "password_env", false, &pwenv, err, errlen) < 0 ||
        json_doc_get_string(doc, w, F, "table", false, &table, err, errlen) < 0 ||
        json_doc_get_string(doc, w, F, "spool_file", false, &spool, err, errlen) < 0 ||
        json_doc_get_int(doc, w, F, "batch_size", false, 1, 10000, &batch, err, errlen) < 0 ||
        json_doc_get_int(doc, w, F, "flush_interval_ms", false, 10, 3600000, &flush, err, errlen) < 0)
        return -1;
    if (!database == !conninfo)
        return json_doc_error(doc, w, err, errlen, F,
                              "give either \"database\" (one of the config's databases) or \"conninfo\"");
    if (database && (pwfile || pwenv))
        return json_doc_error(doc, json_object_get(w, pwfile ? "password_file" : "password_env"), err, errlen,
                              F, "the password comes with \"database\"; password_file and password_env go "
                                 "with \"conninfo\"");
    if (pwfile && pwenv)
        return json_doc_error(doc, w, err, errlen, F, "password_file and password_env exclude each other");
    if (database) {
        const char *ci = NULL, *pw = NULL;
        if (!lookup || !lookup(lookup_arg, database, &ci, &pw) || !ci)
            return json_doc_error(doc, json_object_get(w, "database"), err, errlen, "audit.warehouse.database",
                                  "'%s' is not one of the config's databases", database);
        s->pg.conninfo = strdup(ci);
        s->pg.password = pw ? strdup(pw) : NULL;
    } else {
        s->pg.conninfo = strdup(conninfo);
        if (pwfile) {
            char why[512], *p = path_resolve(base_dir, pwfile);
            s->pg.password = p ? secret_file_read(p, why, sizeof why) : NULL;
            free(p);
            if (!s->pg.password)
                return json_doc_error(doc, json_object_get(w, "password_file"), err, errlen,
                                      "audit.warehouse.password_file", "%s", why);
        } else if (pwenv) {
            const char *v = getenv(pwenv);
            if (!v)
                return json_doc_error(doc, json_object_get(w, "password_env"), err, errlen,
                                      "audit.warehouse.password_env", "environment variable %s is not set", pwenv);
            s->pg.password = strdup(v);
        }
    }
    const char *dot = strchr(table, '.');
    if (!dot || !valid_ident(table, (size_t)(dot - table)) || !valid_ident(dot + 1, strlen(dot + 1)))
        return json_doc_error(doc, json_object_get(w, "table"), err, errlen, "audit.warehouse.table",
                              "'%s' is not schema.table (letters, digits, _ and $; at most 63 characters each)",
                              table);
    s->pg.schema = lower_dup(table, (size_t)(dot - table));
    s->pg.table = lower_dup(dot + 1, strlen(dot + 1));
    s->pg.batch_size = (int)batch;
    s->pg.flush_interval_ms = (int)flush;
    s->pg.stop_timeout_ms = AUDIT_PG_STOP_MS;
    if (spool) {
        s->pg.spool_path = path_resolve(base_dir, spool);
    } else {
        /* beside the audit file: that directory is writable by definition */
        char *copy = strdup(s->file);
        s->pg.spool_path = copy ? path_resolve(dirname(copy), "audit-spool.jsonl") : NULL;
        free(copy);
    }
    if (!s->pg.conninfo || !s->pg.schema || !s->pg.table || !s->pg.spool_path) {
        snprintf(err, errlen, "audit.warehouse: out of memory");
        return -1;
    }
    if (strcmp(s->pg.spool_path, s->file) == 0)
        return json_doc_error(doc, json_object_get(w, "spool_file"), err, errlen, "audit.warehouse.spool_file",
                              "must not be the audit file itself");
    s->has_warehouse = true;
    return 0;
}

audit_settings *audit_settings_parse(const json_doc *doc, const json_t *audit, const char *base_dir,
                                     audit_db_lookup lookup, void *lookup_arg, char *err, size_t errlen)
{
    static const char *const keys[] = {"file", "query_text", "queue_size", "when_full", "fsync_interval_ms",
                                       "warehouse", "end_user_from", NULL};
    audit_settings *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "audit: out of memory");
        return NULL;
    }
    if (!audit)
        return s;   /* auditing off */
    const char *F = "audit";
    const char *file = NULL, *qt = "normalized", *wf = "block";
    long long qsize = 65536, fsync_ms = 1000;
    if (!json_is_object(audit)) {
        json_doc_error(doc, audit, err, errlen, F, "must be an object");
        goto fail;
    }
    if (json_doc_check_keys(doc, audit, F, keys, err, errlen) ||
        json_doc_get_string(doc, audit, F, "file", true, &file, err, errlen) < 0 ||
        json_doc_get_string(doc, audit, F, "query_text", false, &qt, err, errlen) < 0 ||
        json_doc_get_string(doc, audit, F, "when_full", false, &wf, err, errlen) < 0 ||
        json_doc_get_int(doc, audit, F, "queue_size", false, 16, 16777216, &qsize, err, errlen) < 0 ||
        json_doc_get_int(doc, audit, F, "fsync_interval_ms", false, 0, 3600000, &fsync_ms, err, errlen) < 0)
        goto fail;
    if (!*file) {
        json_doc_error(doc, json_object_get(audit, "file"), err, errlen, "audit.file", "must not be empty");
        goto fail;
    }
    if (strcmp(qt, "normalized") == 0)
        s->qmode = AUDIT_QUERY_NORMALIZED;
    else if (strcmp(qt, "full") == 0)
        s->qmode = AUDIT_QUERY_FULL;
    else if (strcmp(qt, "none") == 0)
        s->qmode = AUDIT_QUERY_NONE;
    else {
        json_doc_error(doc, json_object_get(audit, "query_text"), err, errlen, "audit.query_text",
                       "'%s' is not one of normalized, full, none", qt);
        goto fail;
    }
    if (strcmp(wf, "block") == 0)
        s->when_full = AUDIT_WHEN_FULL_BLOCK;
    else if (strcmp(wf, "deny") == 0)
        s->when_full = AUDIT_WHEN_FULL_DENY;
    else {
        json_doc_error(doc, json_object_get(audit, "when_full"), err, errlen, "audit.when_full",
                       "'%s' is not one of block, deny", wf);
        goto fail;
    }
    s->file = path_resolve(base_dir, file);
    if (!s->file) {
        snprintf(err, errlen, "audit: out of memory");
        goto fail;
    }
    s->queue_size = (size_t)qsize;
    s->fsync_interval_ms = (int)fsync_ms;
    json_t *w = json_object_get(audit, "warehouse");
    if (w && parse_warehouse(doc, w, base_dir, s, lookup, lookup_arg, err, errlen) < 0)
        goto fail;
    const char **pats = NULL;
    size_t npats = 0;
    int rp = json_doc_get_strings(doc, audit, F, "end_user_from", false, &pats, &npats, err, errlen);
    if (rp < 0)
        goto fail;
    if (rp == 0) {   /* given (1: absent) */
        s->has_end_user_from = true;
        s->end_user_from = calloc(npats ? npats : 1, sizeof *s->end_user_from);
        for (size_t i = 0; s->end_user_from && i < npats; i++)
            if (!(s->end_user_from[s->n_end_user_from++] = strdup(pats[i])))
                break;
        free(pats);
        if (!s->end_user_from || (npats && !s->end_user_from[npats - 1])) {
            snprintf(err, errlen, "audit: out of memory");
            goto fail;
        }
    }
    s->enabled = true;
    return s;
fail:
    audit_settings_free(s);
    return NULL;
}

int audit_settings_copy(audit_settings *d, const audit_settings *s)
{
    *d = *s;
    d->file = NULL;
    d->end_user_from = NULL;
    d->n_end_user_from = 0;
    memset(&d->pg, 0, sizeof d->pg);
    if (s->file && !(d->file = strdup(s->file)))
        return -1;
    if (s->has_end_user_from) {
        if (!(d->end_user_from = calloc(s->n_end_user_from ? s->n_end_user_from : 1, sizeof *d->end_user_from)))
            return -1;
        for (size_t i = 0; i < s->n_end_user_from; i++)
            if (!(d->end_user_from[d->n_end_user_from++] = strdup(s->end_user_from[i])))
                return -1;
    }
    if (s->has_warehouse && audit_pg_config_copy(&d->pg, &s->pg) < 0)
        return -1;
    return 0;
}

