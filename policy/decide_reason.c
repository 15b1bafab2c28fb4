/*
 * decide_reason: the words of a decision. Items keep a reason code and
 * pointers; this turns them into the sentences clients, logs and the audit
 * trail show ("relation raw.leads is in dataset raw; rule ... gives ...").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/decide_internal.h"

/* ---- reasons -------------------------------------------------------- */

static const char *access_word(policy_access a)
{
    return a == ACCESS_WRITE ? "write" : a == ACCESS_READ ? "read" : "deny";
}

void decide_item_label(const decide_item *it, char *buf, size_t len)
{
    switch (it->kind) {
    case DECIDE_ITEM_RELATION:
        if (it->schema)
            snprintf(buf, len, "%s.%s", it->schema, it->name);
        else
            snprintf(buf, len, "%s", it->name);
        break;
    case DECIDE_ITEM_FUNCTION:
        if (it->schema)
            snprintf(buf, len, "%s.%s", it->schema, it->name);
        else
            snprintf(buf, len, "%s", it->name);
        break;
    default:
        snprintf(buf, len, "%s", it->name ? it->name : "?");
    }
}

static const char *kind_word(decide_item_kind k)
{
    switch (k) {
    case DECIDE_ITEM_STATEMENT: return "statement";
    case DECIDE_ITEM_RELATION: return "relation";
    case DECIDE_ITEM_SCHEMA: return "schema";
    case DECIDE_ITEM_FUNCTION: return "function";
    case DECIDE_ITEM_SETTING: return "setting";
    case DECIDE_ITEM_ROLE: return "role change";
    default: return "construct";
    }
}

static void in_dataset(const decide_item *it, char *buf, size_t len)
{
    if (it->dataset)
        snprintf(buf, len, " (dataset %s)", it->dataset);
    else
        buf[0] = 0;
}

void decide_item_reason(const decision *d, size_t i, char *buf, size_t len)
{
    const decide_item *it = &d->items[i];
    const policy_t *p = d->policy;
    const decide_principal *who = d->who;
    const analysis *a = d->facts;
    char label[400], subjd[200] = "", ds[200];
    decide_item_label(it, label, sizeof label);
    in_dataset(it, ds, sizeof ds);
    const char *dsn = it->dataset;
    if (!dsn && it->kind == DECIDE_ITEM_RELATION && it->schema && p) {
        dsn = dataset_of(p, norm_schema(it->schema), it->name);
        if (dsn)
            snprintf(ds, sizeof ds, " (dataset %s)", dsn);
    }
    const policy_rule *r = it->ref[0];
    subj s;
    bool have_subj = p && who && subj_init(&s, p, who) == 0;
    const char *user = who && who->user ? who->user : "this user";
    int why = it->why;
    switch (why) {
    case W_RULE_READ:
    case W_RULE_WRITE:
    case W_RULE_DENY:
    case W_RULE_READ_FILTERED:
    case W_SCHEMA_WRITE_RULE:
    case W_SCHEMA_DENY_RULE:
        if (r && have_subj)
            describe_subject(&r->subjects, &s, subjd, sizeof subjd);
        break;
    default:
        break;
    }
    const char *via = it->note && strcmp(it->note, "search_path") == 0 && it->kind == DECIDE_ITEM_RELATION
                          ? " (an unqualified name that the search_path may resolve there)" : "";
    switch (why) {
    case W_RULE_READ:
        snprintf(buf, len, "relation %s%s%s: rule '%s' gives %s %s on %s", label, ds, via, r->id, subjd,
                 access_word(r->access), r->objects_text);
        break;
    case W_RULE_WRITE:
        snprintf(buf, len, "relation %s%s%s: rule '%s' gives %s write on %s", label, ds, via, r->id, subjd,
                 r->objects_text);
        break;
    case W_RULE_READ_FILTERED: {
        size_t nm = 0, nd = 0;
        for (size_t k = 0; k < r->n_columns; k++)
            r->columns[k].kind == MASK_DENY ? nd++ : nm++;
        char extra[200] = "";
        if (r->has_row_filter)
            snprintf(extra, sizeof extra, "a row filter");
        if (nm) {
            size_t o = strlen(extra);
            snprintf(extra + o, sizeof extra - o, "%s%zu masked column%s", o ? ", " : "", nm, nm == 1 ? "" : "s");
        }
        if (nd) {
            size_t o = strlen(extra);
            snprintf(extra + o, sizeof extra - o, "%s%zu hidden column%s", o ? ", " : "", nd, nd == 1 ? "" : "s");
        }
        snprintf(buf, len, "relation %s%s%s: rule '%s' gives %s read on %s with %s (rewritten)", label, ds, via,
                 r->id, subjd, r->objects_text, extra);
        break;
    }
    case W_RULE_DENY:
        snprintf(buf, len, "relation %s%s%s: rule '%s' denies %s access to %s", label, ds, via, r->id, subjd,
                 r->objects_text);
        break;
    case W_DEFAULT_READ:
    case W_DEFAULT_WRITE:
    case W_LOCKS_ROWS: {
        const policy_rule *h = it->ref[1];
        char hint[600] = "";
        if (h && have_subj) {
            char hs[200];
            describe_subject(&h->subjects, &s, hs, sizeof hs);
            if (why == W_DEFAULT_READ)
                snprintf(hint, sizeof hint, "; rule '%s' gives %s %s on %s only", h->id, hs, access_word(h->access),
                         h->objects_text);
            else
                snprintf(hint, sizeof hint, " (rule '%s' gives %s read only)", h->id, hs);
        }
        if (why == W_DEFAULT_READ && dsn)
            snprintf(buf, len, "no rule gives %s read on %s (dataset %s; default deny)%s%s", user, label, dsn, via, hint);
        else if (why == W_DEFAULT_READ)
            snprintf(buf, len, "no rule gives %s read on %s (default deny)%s%s", user, label, via, hint);
        else if (why == W_LOCKS_ROWS)
            snprintf(buf, len, "SELECT ... FOR UPDATE/SHARE locks rows of %s%s: that needs a write rule, and no rule "
                     "gives %s write on it%s", label, ds, user, hint);
        else
            snprintf(buf, len, "no rule gives %s write on %s%s%s: writes need an explicit write rule%s", user, label,
                     ds, via, hint);
        break;
    }
    case W_CATALOG:
        snprintf(buf, len, "relation %s is a system catalog: readable by everyone", label);
        break;
    case W_CATALOG_FULL:
        snprintf(buf, len, "relation %s is a system catalog: readable, and the policy gives %s full catalog "
                 "visibility", label, user);
        break;
    case W_CATALOG_FILTERED:
        snprintf(buf, len, "relation %s is a system catalog: its rows are filtered to the schemas and tables %s may "
                 "read (rewritten)", label, user);
        break;
    case W_CATALOG_WRITE:
        snprintf(buf, len, "relation %s is a system catalog: never written through martgate", label);
        break;
    case W_CATALOG_NOT_FILTERABLE:
        snprintf(buf, len, "relation %s is a system catalog whose rows must be filtered for %s, which martgate can "
                 "only do for a table in FROM (not COPY, TABLESAMPLE...)", label, user);
        break;
    case W_TEMP:
        snprintf(buf, len, "relation %s is in the session's own temporary schema", label);
        break;
    case W_RESERVED_SCHEMA:
        snprintf(buf, len, "relation %s is in a reserved system schema", label);
        break;
    case W_NOT_FOUND:
        snprintf(buf, len, "relation %s is in none of the schemas of the search_path", label);
        break;
    case W_OTHER_DB:
        snprintf(buf, len, "relation %s names another database", label);
        break;
    case W_UNRESOLVED:
        snprintf(buf, len, "relation %s cannot be resolved to a schema: qualify it", label);
        break;
    case W_AMBIGUOUS_REWRITE:
        snprintf(buf, len, "relation %s needs a row filter, mask or catalog filter, and the search_path leaves it "
                 "ambiguous which table it is: qualify it (schema.table)", label);
        break;
    case W_NOT_SUBSTITUTABLE:
        snprintf(buf, len, "relation %s has a row filter or masks (rule '%s'), which martgate can only apply to a "
                 "table in FROM without TABLESAMPLE: read it with SELECT ... FROM", label, r ? r->id : "?");
        break;
    case W_COLUMNS_UNKNOWN:
        snprintf(buf, len, "relation %s has masked columns (rule '%s') but its column list is unknown", label,
                 r ? r->id : "?");
        break;
    case W_BIND_FAILED:
        snprintf(buf, len, "relation %s: rule '%s' needs claim '%s', which %s's token does not carry (or not as a "
                 "string, number, boolean or array of those)", label, r ? r->id : "?", it->note ? it->note : "?",
                 user);
        break;
    case W_REWRITE_FAILED:
        snprintf(buf, len, "%s %s cannot be rewritten: %s", kind_word(it->kind), label, it->note ? it->note : "?");
        break;
    case W_SCHEMA_WRITE_RULE:
        snprintf(buf, len, "schema %s: rule '%s' gives %s write on %s", label, r->id, subjd, r->objects_text);
        break;
    case W_SCHEMA_DENY_RULE:
        snprintf(buf, len, "schema %s: rule '%s' denies %s access to %s", label, r->id, subjd, r->objects_text);
        break;
    case W_SCHEMA_DEFAULT:
        snprintf(buf, len, "no rule gives %s write on the whole schema %s (DDL on a schema needs one)", user, label);
        break;
    case W_FN_OK:
        snprintf(buf, len, "function %s is not denied", label);
        break;
    case W_FN_BUILTIN: {
        const policy_fnpat *fp = it->ref[0];
        snprintf(buf, len, "function %s is denied (built-in list, '%s'): it %s", label, fp->text, fp->reason);
        break;
    }
    case W_FN_POLICY: {
        const policy_fnpat *fp = it->ref[0];
        snprintf(buf, len, "function %s is denied by the policy's functions.deny ('%s')", label, fp->text);
        break;
    }
    case W_FN_SCHEMA:
        snprintf(buf, len, "function %s is in schema %s, which no rule lets %s read", label, it->schema, user);
        break;
    case W_SET_OK:
        snprintf(buf, len, "setting %s may be changed", label);
        break;
    case W_SET_POLICY:
        snprintf(buf, len, "setting %s is denied by the policy's settings.deny ('%s')", label,
                 ((const policy_setpat *)it->ref[0])->text);
        break;
    case W_SET_BUILTIN:
        snprintf(buf, len, "setting %s cannot be changed through martgate", label);
        break;
    case W_SET_VALUE:
        snprintf(buf, len, "setting %s may only be %s through martgate (the SQL martgate checks must read the same "
                 "as the server does)", label, strcmp(it->name, "client_encoding") == 0 ? "UTF8" : "on");
        break;
    case W_SP_OK:
        snprintf(buf, len, "search_path names only schemas %s may read", user);
        break;
    case W_SP_RESET:
        snprintf(buf, len, "search_path goes back to the session's starting search_path");
        break;
    case W_SP_UNREADABLE:
        snprintf(buf, len, "search_path names schema %s, which no rule lets %s read", (const char *)it->ref[0], user);
        break;
    case W_SP_USER:
        snprintf(buf, len, "search_path names \"$user\", which the server reads as the warehouse login's schema, not "
                 "%s's: name the schemas", user);
        break;
    case W_SP_NOT_CONSTANT:
        snprintf(buf, len, "setting %s is changed to a value martgate cannot read", label);
        break;
    case W_ROLE:
        snprintf(buf, len, "%s changes (SET ROLE, SET SESSION AUTHORIZATION) are not allowed through martgate",
                 label);
        break;
    case W_ROLE_DISCARD:
        snprintf(buf, len, "DISCARD ALL resets the session's %s; the session re-applies what martgate set", label);
        break;
    case W_STMT_UNSUPPORTED:
        snprintf(buf, len, "unsupported statement (%s)", label);
        break;
    case W_STMT_DDL_INCOMPLETE:
        snprintf(buf, len, "%s touches objects martgate does not model (roles, functions, types...): denied", label);
        break;
    case W_STMT_UTILITY:
        snprintf(buf, len, "statement %s is not allowed through martgate", label);
        break;
    case W_STMT_EXECUTE:
        snprintf(buf, len, "EXECUTE %s: martgate has not seen this prepared statement allowed in this session",
                 a && it->index < a->n_stmts && a->stmts[it->index].execute_name ? a->stmts[it->index].execute_name
                                                                                 : "?");
        break;
    case W_FLAG: {
        const analysis_flag *f = it->ref[0];
        snprintf(buf, len, "%s%s%s%s", f->reason ? f->reason : label, f->detail ? " (" : "",
                 f->detail ? f->detail : "", f->detail ? ")" : "");
        break;
    }
    default:
        snprintf(buf, len, "%s %s", kind_word(it->kind), label);
    }
    if (have_subj)
        subj_free(&s);
}

const char *decision_reason(decision *d)
{
    if (d->reason_done)
        return d->reason;
    d->reason_done = true;
    if (d->deciding != DECIDE_NONE) {
        decide_item_reason(d, d->deciding, d->reason, sizeof d->reason);
    } else if (d->verdict == DECIDE_ALLOW) {
        snprintf(d->reason, sizeof d->reason, "nothing in the statement needs a rule");
    } else {
        snprintf(d->reason, sizeof d->reason, "denied");
    }
    return d->reason;
}

