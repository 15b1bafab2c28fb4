/*
 * cmd_policy_replay: `martgate policy replay --policy NEW AUDIT...`, which
 * decides every statement record of audit logs again under a proposed
 * policy, as the same principal (user, groups, impersonated role, database,
 * the recorded search_path and claims), and reports whose work the change
 * would break or open: decisions that change, by kind, dataset and user,
 * counted by record and by distinct fingerprint, and the records that
 * cannot be replayed, by reason (docs/policy.md, "Replaying the audit").
 * Records are read with `martgate audit`'s reader (cmd_audit_internal.h) and
 * decided with `policy explain`'s code path (policy_offline.h).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_cases.h"
#include "proxy/cmd_audit_internal.h"
#include "proxy/commands.h"
#include "proxy/policy_offline.h"
#include "proxy/replay_tally.h"

#define REPLAY_MAX_LINE (64u << 20)
#define REPLAY_MAX_LIST 256          /* groups or schemas taken from one record */
enum { REPLAY_OK = 0, REPLAY_CHANGES = 1, REPLAY_USAGE = 2, REPLAY_ERROR = 3 };

static const char replay_usage[] =
    "usage: martgate policy replay --policy NEW [--warehouse FILE.json] [--columns-from FILE.json] [--json]\n"
    "                              [--top N] AUDIT...\n"
    "Decides every statement record of the audit files (JSON lines, plain or gzip) again under the\n"
    "policy NEW, as the same principal, and reports the decisions that change. Exit 0 no decision\n"
    "changes, 1 some change, 2 a usage error, 3 an error.\n"
    "  --warehouse FILE    the warehouse's settings and functions, as `policy warehouse` wrote them\n"
    "  --columns-from FILE {\"schema.table\": [columns]}, for masks that need a table's columns\n"
    "  --json              the report as one JSON object\n"
    "  --top N             datasets per change and users per dataset shown (10; 0: all)\n";

typedef struct {
    const char *policy_path, *warehouse_path, *columns_path;
    bool json;
    int top;
    int first_file;
} replay_options;

typedef struct {
    const replay_options *o;
    policy_t *p;
    warehouse_facts *wh;
    json_doc *cols;
    replay_tally t;
    json_t *pending;    /* session -> array of the records of its current message */
    unsigned long long bad_lines;
} replay_run;

/* ---- loading ------------------------------------------------------------ */

static int load_inputs(replay_run *r)
{
    char err[2048];
    if (cmd_policy_load(r->o->policy_path, &r->p) != 0)
        return -1;
    if (r->o->columns_path) {
        r->cols = json_doc_load(r->o->columns_path, POLICY_CASES_MAX_BYTES, err, sizeof err);
        if (!r->cols || !json_is_object(json_doc_root(r->cols))) {
            fprintf(stderr, "error: %s%s\n", r->cols ? r->o->columns_path : err,
                    r->cols ? ": must be an object: \"schema.table\" -> [columns]" : "");
            return -1;
        }
    }
    if (r->o->warehouse_path) {
        json_doc *d = json_doc_load(r->o->warehouse_path, POLICY_CASES_MAX_BYTES, err, sizeof err);
        r->wh = d ? wh_from_json(json_doc_root(d), err, sizeof err) : NULL;
        json_doc_free(d);
        if (!r->wh) {
            fprintf(stderr, "error: %s: %s\n", r->o->warehouse_path, err);
            return -1;
        }
    }
    return 0;
}

/* ---- one message's records decided again -------------------------------- */

static const char *str_of(json_t *rec, const char *key)
{
    return json_string_value(json_object_get(rec, key));
}

/* The strings of array rec[key] into v (at most max); their count, or -1 when it is no array of strings. */
static long strings_of(json_t *rec, const char *key, const char **v, size_t max)
{
    json_t *a = json_object_get(rec, key);
    if (!json_is_array(a))
        return -1;
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(a, i, e) {
        if (!json_is_string(e) || n >= max)
            return -1;
        v[n++] = json_string_value(e);
    }
    return (long)n;
}

/* What one message was, and what NEW decides for it. */
typedef struct {
    const char *verdict, *rule;
    char reason[1024];
    const char *not_replayed;   /* set: the message cannot be replayed, and why */
    bool offline_unknown;       /* a new denial only for what the audit does not tell (claims, columns, settings) */
} replay_outcome;

static bool pure_role_change(const analysis *a)
{
    return a->n_roles == 1 && a->n_stmts == 1 && !a->n_relations && !a->n_functions && !a->n_flags &&
           !a->roles[0].via_function;
}

static bool names_unqualified(const analysis *a)
{
    for (size_t i = 0; i < a->n_relations; i++)
        if (a->relations[i].resolution == ANALYZE_RES_UNRESOLVED)
            return true;
    return false;
}

/* Did NEW deny only for what an offline replay does not know? */
static bool offline_unknown(const replay_run *r, decision *d, const char *reason)
{
    if (strstr(reason, "needs claim '") || strstr(reason, "column list is unknown"))
        return true;
    return !r->wh && d->deciding != DECIDE_NONE && d->deciding < d->n_items &&
           d->items[d->deciding].kind == DECIDE_ITEM_SETTING;
}

/* SET ROLE / RESET ROLE as the only statement: what the daemon does itself. */
static void decide_role_change(const replay_run *r, const decide_principal *login, const analysis *a,
                               replay_outcome *out)
{
    const analysis_role_change *rc = &a->roles[0];
    out->rule = NULL;
    if (rc->action == ANALYZE_ROLE_SET && rc->role) {
        const char *const *groups;
        size_t n;
        char why[600];
        int ok = decide_impersonation(r->p, login, rc->role, &groups, &n, why, sizeof why);
        out->verdict = ok > 0 ? "allow" : "deny";
        snprintf(out->reason, sizeof out->reason, "%s%s", ok > 0 ? "impersonation allowed: " : "", ok > 0 ? rc->role : why);
    } else if (rc->action == ANALYZE_ROLE_RESET) {
        out->verdict = "allow";
        snprintf(out->reason, sizeof out->reason, "impersonation ends");
    } else {
        out->verdict = "deny";
        snprintf(out->reason, sizeof out->reason, "only SET ROLE and RESET ROLE are impersonation");
    }
}

/* Decides sql for the principal of rec (the message's first record) under NEW. */
static void decide_message(const replay_run *r, json_t *rec, const char *sql, replay_outcome *out)
{
    const char *groups[REPLAY_MAX_LIST], *path[REPLAY_MAX_LIST];
    long ng = strings_of(rec, "groups", groups, REPLAY_MAX_LIST);
    long np = strings_of(rec, "search_path", path, REPLAY_MAX_LIST);
    json_t *claims = json_object_get(rec, "claims");
    const char *user = str_of(rec, "user"), *role = str_of(rec, "impersonated_role");
    if (!user) {
        out->not_replayed = "no user in the record";
        return;
    }
    decide_principal login = {user, groups, ng > 0 ? (size_t)ng : 0, json_is_object(claims) ? claims : NULL};
    decide_principal who = login;
    if (role) {
        /* the role's groups under NEW, as the daemon takes them at SET ROLE */
        const char *const *rg;
        size_t nrg;
        char why[600];
        if (decide_impersonation(r->p, &login, role, &rg, &nrg, why, sizeof why) <= 0) {
            out->verdict = "deny";
            snprintf(out->reason, sizeof out->reason, "impersonation of role %s is refused: %s", role, why);
            return;
        }
        who = (decide_principal){role, rg, nrg, NULL};
    }
    const char **start = NULL;
    size_t nstart = 0;
    analyze_context actx;
    if (policy_offline_context(r->p, &who, str_of(rec, "database"), np >= 0 ? path : NULL, np >= 0 ? (size_t)np : 0,
                               &start, &nstart, &actx) != 0) {
        out->not_replayed = "out of memory";
        return;
    }
    analysis *an = NULL;
    analyze_error aerr;
    decision d;
    decision_init(&d);
    char derr[512];
    if (policy_offline_decide(r->p, &who, &actx, r->wh, r->cols, sql, &an, &aerr, &d, derr, sizeof derr) != 0)
        out->not_replayed = "the recorded (normalized) text does not parse";
    else if (np < 0 && names_unqualified(an))
        out->not_replayed = "no search_path in the record (an older audit) and a table named without a schema";
    else if (pure_role_change(an))
        decide_role_change(r, &login, an, out);
    else {
        out->verdict = decide_verdict_name(d.verdict);
        out->rule = d.rule_id;
        snprintf(out->reason, sizeof out->reason, "%s", decision_reason(&d));
        out->offline_unknown = d.verdict == DECIDE_DENY && offline_unknown(r, &d, out->reason);
    }
    decision_free(&d);
    analysis_free(an);
    free(start);
}

/* The reason a record of a message that changes is not counted as a change. */
static const char *unknown_reason(const replay_outcome *out)
{
    if (strstr(out->reason, "needs claim '"))
        return "a claim the new policy reads is not in the audit record";
    if (strstr(out->reason, "column list is unknown"))
        return "masked columns whose list is unknown (give --columns-from)";
    return "a setting decided without the warehouse's facts (give --warehouse)";
}

/* Replays one message (its records in statement order) and counts each record. */
static void replay_message(replay_run *r, json_t *recs)
{
    size_t n = json_array_size(recs);
    json_t *first = json_array_get(recs, 0);
    replay_outcome out = {0};
    char *sql = NULL;
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec) {
        json_t *q = json_object_get(rec, "query");
        if (!q)
            out.not_replayed = "no query text (query_text none)";
        else if (!json_is_string(q))
            out.not_replayed = "no query text (it did not parse when recorded)";
        else if (!str_of(rec, "decision"))
            out.not_replayed = "no decision in the record";
    }
    if (!out.not_replayed) {
        size_t len = 0;
        json_array_foreach(recs, i, rec)
            len += strlen(str_of(rec, "query")) + 2;
        if ((sql = malloc(len + 1))) {
            char *p = sql;
            json_array_foreach(recs, i, rec) {
                const char *q = str_of(rec, "query");
                size_t l = strlen(q);
                memcpy(p, q, l);
                p += l;
                if (i + 1 < n) {
                    memcpy(p, ";\n", 2);
                    p += 2;
                }
            }
            *p = 0;
            decide_message(r, first, sql, &out);
        } else {
            out.not_replayed = "out of memory";
        }
    }
    json_array_foreach(recs, i, rec) {
        if (out.not_replayed) {
            replay_tally_not_replayed(&r->t, out.not_replayed);
            continue;
        }
        const char *old = str_of(rec, "decision"), *old_rule = str_of(rec, "rule");
        const char *new_rule = out.rule;
        int k = replay_change_of(old, old_rule, out.verdict, new_rule);
        if (k >= 0 && out.offline_unknown) {
            replay_tally_not_replayed(&r->t, unknown_reason(&out));
            continue;
        }
        const char *sets[REPLAY_MAX_LIST];
        long ns = strings_of(rec, "datasets", sets, REPLAY_MAX_LIST);
        replay_record rr = {.user = str_of(rec, "user"), .fingerprint = str_of(rec, "fingerprint"),
                            .query = str_of(rec, "query"), .datasets = sets, .n_datasets = ns > 0 ? (size_t)ns : 0,
                            .old_decision = old, .old_rule = old_rule, .new_decision = out.verdict,
                            .new_rule = new_rule, .reason = out.reason};
        replay_tally_add(&r->t, k, &rr);
    }
    free(sql);
}

/* ---- reading ------------------------------------------------------------ */

static void flush_session(replay_run *r, const char *session)
{
    json_t *recs = json_object_get(r->pending, session);
    if (recs && json_array_size(recs))
        replay_message(r, recs);
    json_object_del(r->pending, session);
}

static void flush_all(replay_run *r)
{
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(r->pending, tmp, key, v)
        flush_session(r, key);
}

/* One line: statement records gather by session into messages (the
 * statements of one Query share its decision and are decided together). */
static void handle_line(replay_run *r, const line_reader *lr, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return;
    json_error_t jerr;
    json_t *rec = json_loadb(line, len, 0, &jerr);
    if (!json_is_object(rec)) {
        r->bad_lines++;
        fprintf(stderr, "martgate policy replay: %s:%llu: %s; skipped\n", lr->name, lr->lineno,
                rec ? "not a JSON object" : jerr.text);
        json_decref(rec);
        return;
    }
    const char *event = str_of(rec, "event");
    char sess[64];
    const char *sid = cmd_audit_session_text(rec, sess, sizeof sess);
    if (!sid)
        sid = "?";
    if (event && !strcmp(event, "session_end"))
        flush_session(r, sid);
    if (!event || strcmp(event, "statement") != 0) {
        json_decref(rec);
        return;
    }
    r->t.records++;
    json_int_t index = json_integer_value(json_object_get(rec, "statement_index"));
    if (index == 0)
        flush_session(r, sid);
    json_t *recs = json_object_get(r->pending, sid);
    if (!recs && json_object_set_new(r->pending, sid, json_array()) == 0)
        recs = json_object_get(r->pending, sid);
    if (!recs || json_array_append_new(recs, rec) != 0)
        replay_tally_not_replayed(&r->t, "out of memory");
}

static int read_file(replay_run *r, const char *path)
{
    line_reader lr;
    char why[512], *line;
    size_t len;
    if (cmd_audit_reader_open(&lr, path, why, sizeof why) != 0) {
        fprintf(stderr, "martgate policy replay: %s\n", why);
        return -1;
    }
    int rc;
    while ((rc = cmd_audit_reader_next(&lr, REPLAY_MAX_LINE, &line, &len, why, sizeof why)) == 1)
        handle_line(r, &lr, line, len);
    if (rc < 0)
        fprintf(stderr, "martgate policy replay: %s\n", why);
    cmd_audit_reader_close(&lr);
    flush_all(r);   /* a file ends the messages it holds (files are separate logs or rotations) */
    return rc < 0 ? -1 : 0;
}

/* ---- options and main --------------------------------------------------- */

static int parse_options(int argc, char **argv, replay_options *o)
{
    *o = (replay_options){.top = 10};
    int i = 2;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char **target = !strcmp(a, "--policy")         ? &o->policy_path
                            : !strcmp(a, "--warehouse")      ? &o->warehouse_path
                            : !strcmp(a, "--columns-from")   ? &o->columns_path
                                                             : NULL;
        if (target || !strcmp(a, "--top")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "martgate policy replay: %s needs a value\n%s", a, replay_usage);
                return REPLAY_USAGE;
            }
            if (target) {
                *target = argv[++i];
                continue;
            }
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 0 || v > 1000000) {
                fprintf(stderr, "martgate policy replay: --top: a number from 0, not '%s'\n", argv[i]);
                return REPLAY_USAGE;
            }
            o->top = (int)v;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "martgate policy replay: unknown option '%s'\n%s", a, replay_usage);
            return REPLAY_USAGE;
        } else {
            break;
        }
    }
    o->first_file = i;
    if (!o->policy_path || i >= argc) {
        fprintf(stderr, "martgate policy replay: --policy NEW and at least one AUDIT file are required\n%s",
                replay_usage);
        return REPLAY_USAGE;
    }
    for (int k = i; k < argc; k++)
        if (argv[k][0] == '-' && argv[k][1] && k > i) {
            fprintf(stderr, "martgate policy replay: options go before the AUDIT files ('%s')\n", argv[k]);
            return REPLAY_USAGE;
        }
    return REPLAY_OK;
}

int cmd_policy_replay(int argc, char **argv)
{
    replay_options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != REPLAY_OK)
        return rc;
    replay_run r = {.o = &o, .pending = json_object()};
    if (!r.pending || replay_tally_init(&r.t) != 0) {
        json_decref(r.pending);
        fprintf(stderr, "martgate policy replay: out of memory\n");
        return REPLAY_ERROR;
    }
    rc = load_inputs(&r) == 0 ? REPLAY_OK : REPLAY_ERROR;
    for (int i = o.first_file; rc == REPLAY_OK && i < argc; i++)
        if (read_file(&r, argv[i]) != 0)
            rc = REPLAY_ERROR;
    if (rc == REPLAY_OK) {
        if (o.json) {
            json_t *j = replay_tally_json(&r.t, o.top);
            if (!j || json_dumpf(j, stdout, JSON_INDENT(1)) != 0) {
                fprintf(stderr, "martgate policy replay: cannot write the report\n");
                rc = REPLAY_ERROR;
            } else {
                fputc('\n', stdout);
            }
            json_decref(j);
        } else {
            replay_tally_print(&r.t, o.top, stdout);
        }
        if (r.bad_lines)
            fprintf(stderr, "martgate policy replay: %llu bad lines skipped\n", r.bad_lines);
        if (rc == REPLAY_OK && replay_tally_changed(&r.t))
            rc = REPLAY_CHANGES;
    }
    json_decref(r.pending);
    replay_tally_free(&r.t);
    json_doc_free(r.cols);
    wh_free(r.wh);
    policy_unref(r.p);
    return rc;
}
