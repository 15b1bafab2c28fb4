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

/*
 * What the sentences of one item draw on, worked out once by
 * decide_item_reason: the item, its rule, its label, its dataset (ds is the
 * " (dataset x)" suffix, dsn the bare name), the search_path note, the
 * subject the rule names and the user's name.
 */
typedef struct reason_ctx {
    const decide_item *it;
    const analysis *a;
    const policy_rule *r;
    const subj *s;
    bool have_subj;
    int why;
    const char *label;
    const char *ds;
    const char *dsn;
    const char *via;
    const char *subjd;
    const char *user;
} reason_ctx;

/* Describes what a read rule with a row filter or masks adds ("a row filter, 2 masked columns"). */
static void filtered_extra(const policy_rule *r, char *extra, size_t size)
{
    size_t nm = 0, nd = 0;
    for (size_t k = 0; k < r->n_columns; k++)
        r->columns[k].kind == MASK_DENY ? nd++ : nm++;
    if (r->has_row_filter)
        snprintf(extra, size, "a row filter");
    if (nm) {
        size_t o = strlen(extra);
        snprintf(extra + o, size - o, "%s%zu masked column%s", o ? ", " : "", nm, nm == 1 ? "" : "s");
    }
    if (nd) {
        size_t o = strlen(extra);
        snprintf(extra + o, size - o, "%s%zu hidden column%s", o ? ", " : "", nd, nd == 1 ? "" : "s");
    }
}

/* Words a relation that a rule reads, writes, filters or denies; false for any other reason. */
static bool reason_relation_rule(const reason_ctx *c, char *buf, size_t len)
{
    const policy_rule *r = c->r;
    switch (c->why) {
    case W_RULE_READ:
        snprintf(buf, len, "relation %s%s%s: rule '%s' gives %s %s on %s", c->label, c->ds, c->via, r->id,
                 c->subjd, access_word(r->access), r->objects_text);
        return true;
    case W_RULE_WRITE:
        snprintf(buf, len, "relation %s%s%s: rule '%s' gives %s write on %s", c->label, c->ds, c->via, r->id,
                 c->subjd, r->objects_text);
        return true;
    case W_RULE_READ_FILTERED: {
        char extra[200] = "";
        filtered_extra(r, extra, sizeof extra);
        snprintf(buf, len, "relation %s%s%s: rule '%s' gives %s read on %s with %s (rewritten)", c->label, c->ds,
                 c->via, r->id, c->subjd, r->objects_text, extra);
        return true;
    }
    case W_RULE_DENY:
        snprintf(buf, len, "relation %s%s%s: rule '%s' denies %s access to %s", c->label, c->ds, c->via, r->id,
                 c->subjd, r->objects_text);
        return true;
    default:
        return false;
    }
}

/* Words a relation no rule covers (default deny, writes, row locks); false for any other reason. */
static bool reason_relation_default(const reason_ctx *c, char *buf, size_t len)
{
    int why = c->why;
    switch (why) {
    case W_DEFAULT_READ:
    case W_DEFAULT_WRITE:
    case W_LOCKS_ROWS:
        break;
    default:
        return false;
    }
    const policy_rule *h = c->it->ref[1];
    char hint[600] = "";
    if (h && c->have_subj) {
        char hs[200];
        describe_subject(&h->subjects, c->s, hs, sizeof hs);
        if (why == W_DEFAULT_READ)
            snprintf(hint, sizeof hint, "; rule '%s' gives %s %s on %s only", h->id, hs, access_word(h->access),
                     h->objects_text);
        else
            snprintf(hint, sizeof hint, " (rule '%s' gives %s read only)", h->id, hs);
    }
    if (why == W_DEFAULT_READ && c->dsn)
        snprintf(buf, len, "no rule gives %s read on %s (dataset %s; default deny)%s%s", c->user, c->label, c->dsn,
                 c->via, hint);
    else if (why == W_DEFAULT_READ)
        snprintf(buf, len, "no rule gives %s read on %s (default deny)%s%s", c->user, c->label, c->via, hint);
    else if (why == W_LOCKS_ROWS)
        snprintf(buf, len, "SELECT ... FOR UPDATE/SHARE locks rows of %s%s: that needs a write rule, and no rule "
                 "gives %s write on it%s", c->label, c->ds, c->user, hint);
    else
        snprintf(buf, len, "no rule gives %s write on %s%s%s: writes need an explicit write rule%s", c->user,
                 c->label, c->ds, c->via, hint);
    return true;
}

/* Words a system catalog relation; false for any other reason. */
static bool reason_catalog(const reason_ctx *c, char *buf, size_t len)
{
    const char *label = c->label, *user = c->user;
    switch (c->why) {
    case W_CATALOG:
        snprintf(buf, len, "relation %s is a system catalog: readable by everyone", label);
        return true;
    case W_CATALOG_FULL:
        snprintf(buf, len, "relation %s is a system catalog: readable, and the policy gives %s full catalog "
                 "visibility", label, user);
        return true;
    case W_CATALOG_FILTERED:
        snprintf(buf, len, "relation %s is a system catalog: its rows are filtered to the schemas and tables %s may "
                 "read (rewritten)", label, user);
        return true;
    case W_CATALOG_WRITE:
        snprintf(buf, len, "relation %s is a system catalog: never written through martgate", label);
        return true;
    case W_CATALOG_UNCLASSIFIED:
        snprintf(buf, len, "relation %s is a catalog relation martgate has not classified (new in this PostgreSQL "
                 "version?): it is denied until it is classified as filtered, safe or restricted "
                 "(policy/catalog_classes.c; `martgate policy catalog` lists the classes)", label);
        return true;
    case W_CATALOG_NOT_FILTERABLE:
        snprintf(buf, len, "relation %s is a system catalog whose rows must be filtered for %s, which martgate can "
                 "only do for a table in FROM (not COPY, TABLESAMPLE...)", label, user);
        return true;
    default:
        return false;
    }
}

/* Words where a relation's name resolves to, or why it does not; false for any other reason. */
static bool reason_relation_place(const reason_ctx *c, char *buf, size_t len)
{
    const char *label = c->label;
    switch (c->why) {
    case W_TEMP:
        snprintf(buf, len, "relation %s is in the session's own temporary schema", label);
        return true;
    case W_TEMP_WRITER:
        snprintf(buf, len, "relation %s is in the session's own temporary schema, which a principal with a write "
                 "rule may write (defaults.temp_tables)", label);
        return true;
    case W_RESERVED_SCHEMA:
        snprintf(buf, len, "relation %s is in a reserved system schema", label);
        return true;
    case W_NOT_FOUND:
        snprintf(buf, len, "relation %s is in none of the schemas of the search_path", label);
        return true;
    case W_OTHER_DB:
        snprintf(buf, len, "relation %s names another database", label);
        return true;
    case W_UNRESOLVED:
        snprintf(buf, len, "relation %s cannot be resolved to a schema: qualify it", label);
        return true;
    default:
        return false;
    }
}

/* Words why a relation's row filter, masks or catalog filter cannot be applied; false otherwise. */
static bool reason_rewrite(const reason_ctx *c, char *buf, size_t len)
{
    const decide_item *it = c->it;
    const policy_rule *r = c->r;
    const char *label = c->label;
    switch (c->why) {
    case W_AMBIGUOUS_REWRITE:
        snprintf(buf, len, "relation %s needs a row filter, mask or catalog filter, and the search_path leaves it "
                 "ambiguous which table it is: qualify it (schema.table)", label);
        return true;
    case W_NOT_SUBSTITUTABLE:
        snprintf(buf, len, "relation %s has a row filter or masks (rule '%s'), which martgate can only apply to a "
                 "table in FROM without TABLESAMPLE: read it with SELECT ... FROM", label, r ? r->id : "?");
        return true;
    case W_COLUMNS_UNKNOWN:
        snprintf(buf, len, "relation %s has masked columns (rule '%s') but its column list is unknown", label,
                 r ? r->id : "?");
        return true;
    case W_BIND_FAILED:
        snprintf(buf, len, "relation %s: rule '%s' needs claim '%s', which %s's token does not carry (or not as a "
                 "string, number, boolean or array of those)", label, r ? r->id : "?", it->note ? it->note : "?",
                 c->user);
        return true;
    case W_REWRITE_FAILED:
        snprintf(buf, len, "%s %s cannot be rewritten: %s", kind_word(it->kind), label, it->note ? it->note : "?");
        return true;
    default:
        return false;
    }
}

/* Words a schema that DDL touches; false for any other reason. */
static bool reason_schema(const reason_ctx *c, char *buf, size_t len)
{
    const policy_rule *r = c->r;
    switch (c->why) {
    case W_SCHEMA_WRITE_RULE:
        snprintf(buf, len, "schema %s: rule '%s' gives %s write on %s", c->label, r->id, c->subjd, r->objects_text);
        return true;
    case W_SCHEMA_DENY_RULE:
        snprintf(buf, len, "schema %s: rule '%s' denies %s access to %s", c->label, r->id, c->subjd,
                 r->objects_text);
        return true;
    case W_SCHEMA_DEFAULT:
        snprintf(buf, len, "no rule gives %s write on the whole schema %s (DDL on a schema needs one)", c->user,
                 c->label);
        return true;
    default:
        return false;
    }
}

/* Words a function call: allowed, or which deny list or schema stops it; false otherwise. */
static bool reason_function(const reason_ctx *c, char *buf, size_t len)
{
    const decide_item *it = c->it;
    const char *label = c->label;
    switch (c->why) {
    case W_FN_OK:
        snprintf(buf, len, "function %s is not denied", label);
        return true;
    case W_FN_BUILTIN: {
        const policy_fnpat *fp = it->ref[0];
        snprintf(buf, len, "function %s is denied (built-in list, '%s'): it %s", label, fp->text, fp->reason);
        return true;
    }
    case W_FN_POLICY: {
        const policy_fnpat *fp = it->ref[0];
        snprintf(buf, len, "function %s is denied by the policy's functions.deny ('%s')", label, fp->text);
        return true;
    }
    case W_FN_SCHEMA:
        snprintf(buf, len, "function %s is in schema %s, which no rule lets %s read", label, it->schema, c->user);
        return true;
    case W_FN_ADMIN:
        snprintf(buf, len, "function %s is one the warehouse does not let PUBLIC execute (an administrative "
                 "function): denied unless the policy's functions.allow names it", label);
        return true;
    default:
        return false;
    }
}

/* Words a SET of a setting other than search_path; false for any other reason. */
static bool reason_setting(const reason_ctx *c, char *buf, size_t len)
{
    const decide_item *it = c->it;
    const char *label = c->label;
    switch (c->why) {
    case W_SET_OK:
        snprintf(buf, len, "setting %s may be changed", label);
        return true;
    case W_SET_POLICY:
        snprintf(buf, len, "setting %s is denied by the policy's settings.deny ('%s')", label,
                 ((const policy_setpat *)it->ref[0])->text);
        return true;
    case W_SET_BUILTIN:
        snprintf(buf, len, "setting %s cannot be changed through martgate", label);
        return true;
    case W_SET_VALUE:
        snprintf(buf, len, "setting %s may only be %s through martgate (the SQL martgate checks must read the same "
                 "as the server does)", label, (const char *)it->ref[1]);
        return true;
    case W_SET_MESSAGES:
        snprintf(buf, len, "setting %s may only be notice, warning or error through martgate: LOG and DEBUG levels "
                 "would send the warehouse's own log lines (the statements as it ran them, rewritten) to the client",
                 label);
        return true;
    case W_SET_PARSE_RESET:
        snprintf(buf, len, "setting %s goes back to %s, the value every martgate session starts with (verified at "
                 "login)", label, (const char *)it->ref[1]);
        return true;
    case W_SET_ALLOWED:
        snprintf(buf, len, "setting %s may be changed: the policy's settings.allow names it ('%s')", label,
                 ((const policy_setpat *)it->ref[0])->text);
        return true;
    case W_SET_NO_FACTS:
        snprintf(buf, len, "setting %s: martgate has not read the warehouse's settings (pg_settings), so it cannot "
                 "tell what %s is; denied", label, label);
        return true;
    case W_SET_UNKNOWN:
        snprintf(buf, len, "setting %s is not a setting the warehouse knows (pg_settings): denied unless the "
                 "policy's settings.allow names it", label);
        return true;
    case W_SET_CONTEXT:
        snprintf(buf, len, "setting %s has context '%s' on the warehouse; only 'user' settings may be changed "
                 "through martgate, unless the policy's settings.allow names it", label, (const char *)it->ref[1]);
        return true;
    case W_SET_CATEGORY:
        snprintf(buf, len, "setting %s is in the warehouse's category '%s': changing it can switch off logging, "
                 "monitoring or integrity; denied unless the policy's settings.allow names it", label,
                 (const char *)it->ref[1]);
        return true;
    default:
        return false;
    }
}

/* Words a change of search_path; false for any other reason. */
static bool reason_search_path(const reason_ctx *c, char *buf, size_t len)
{
    const char *user = c->user;
    switch (c->why) {
    case W_SP_OK:
        snprintf(buf, len, "search_path names only schemas %s may read", user);
        return true;
    case W_SP_RESET:
        snprintf(buf, len, "search_path goes back to the session's starting search_path");
        return true;
    case W_SP_UNREADABLE:
        snprintf(buf, len, "search_path names schema %s, which no rule lets %s read", (const char *)c->it->ref[0],
                 user);
        return true;
    case W_SP_USER:
        snprintf(buf, len, "search_path names \"$user\", which the server reads as the warehouse login's schema, not "
                 "%s's: name the schemas", user);
        return true;
    case W_SP_NOT_CONSTANT:
        snprintf(buf, len, "setting %s is changed to a value martgate cannot read", c->label);
        return true;
    default:
        return false;
    }
}

/* Words a role change, a whole statement or a flagged construct; false for any other reason. */
static bool reason_statement(const reason_ctx *c, char *buf, size_t len)
{
    const decide_item *it = c->it;
    const analysis *a = c->a;
    const char *label = c->label;
    switch (c->why) {
    case W_ROLE:
        snprintf(buf, len, "%s changes (SET ROLE, SET SESSION AUTHORIZATION) are not allowed through martgate",
                 label);
        return true;
    case W_ROLE_DISCARD:
        snprintf(buf, len, "DISCARD ALL resets the session's %s; the session re-applies what martgate set", label);
        return true;
    case W_STMT_UNSUPPORTED:
        snprintf(buf, len, "unsupported statement (%s)", label);
        return true;
    case W_STMT_DDL_INCOMPLETE:
        snprintf(buf, len, "%s touches objects martgate does not model (roles, functions, types...): denied", label);
        return true;
    case W_STMT_INCOMPLETE:
        snprintf(buf, len, "%s names no table, so it acts on every table of the database (and its output names them): "
                 "denied unless %s may write every dataset; name the tables", label, c->user);
        return true;
    case W_STMT_UTILITY:
        snprintf(buf, len, "statement %s is not allowed through martgate", label);
        return true;
    case W_STMT_EXECUTE:
        snprintf(buf, len, "EXECUTE %s: martgate has not seen this prepared statement allowed in this session",
                 a && it->index < a->n_stmts && a->stmts[it->index].execute_name ? a->stmts[it->index].execute_name
                                                                                 : "?");
        return true;
    case W_EXPLAIN_REWRITTEN:
        snprintf(buf, len, "%s", it->note ? it->note : "EXPLAIN of a rewritten statement");
        return true;
    case W_FLAG: {
        const analysis_flag *f = it->ref[0];
        snprintf(buf, len, "%s%s%s%s", f->reason ? f->reason : label, f->detail ? " (" : "",
                 f->detail ? f->detail : "", f->detail ? ")" : "");
        return true;
    }
    default:
        return false;
    }
}

/* Whether the reason names the rule's subjects ("role analyst"), which then need describing. */
static bool reason_names_subject(int why)
{
    switch (why) {
    case W_RULE_READ:
    case W_RULE_WRITE:
    case W_RULE_DENY:
    case W_RULE_READ_FILTERED:
    case W_SCHEMA_WRITE_RULE:
    case W_SCHEMA_DENY_RULE:
        return true;
    default:
        return false;
    }
}

/* Words item i of decision d: the context every helper needs, then the helper for its reason. */
void decide_item_reason(const decision *d, size_t i, char *buf, size_t len)
{
    const decide_item *it = &d->items[i];
    const policy_t *p = d->policy;
    const decide_principal *who = d->who;
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
    if (reason_names_subject(why) && r && have_subj)
        describe_subject(&r->subjects, &s, subjd, sizeof subjd);
    const char *via = it->note && strcmp(it->note, "search_path") == 0 && it->kind == DECIDE_ITEM_RELATION
                          ? " (an unqualified name that the search_path may resolve there)" : "";
    reason_ctx c = {
        .it = it, .a = d->facts, .r = r, .s = &s, .have_subj = have_subj, .why = why,
        .label = label, .ds = ds, .dsn = dsn, .via = via, .subjd = subjd, .user = user,
    };
    /* Each helper words the reasons of one kind of item; a reason none of them knows gets its kind and label. */
    if (!reason_relation_rule(&c, buf, len) && !reason_relation_default(&c, buf, len) &&
        !reason_catalog(&c, buf, len) && !reason_relation_place(&c, buf, len) && !reason_rewrite(&c, buf, len) &&
        !reason_schema(&c, buf, len) && !reason_function(&c, buf, len) && !reason_setting(&c, buf, len) &&
        !reason_search_path(&c, buf, len) && !reason_statement(&c, buf, len))
        snprintf(buf, len, "%s %s", kind_word(it->kind), label);
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

