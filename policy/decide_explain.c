/*
 * decide_explain: EXPLAIN of a statement that a row filter, column mask or
 * catalog filter rewrites. The plan of a rewritten statement shows what the
 * rewrite hides: EXPLAIN ANALYZE counts the hidden rows ("Rows Removed by
 * Filter"), plain EXPLAIN's estimates tell which hidden values exist and how
 * common they are, and VERBOSE (or a plan that shows an expression of the
 * substituted subquery) prints the rewritten text, the hash mask's key
 * included. Such an EXPLAIN is denied; defaults.explain_filtered "plan"
 * allows plain EXPLAIN (no ANALYZE, no VERBOSE) of statements without a hash
 * mask. EXPLAIN EXECUTE asks the session what the prepared statement was
 * forwarded as (decide_request.prepared_rewrite).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/decide_internal.h"

static bool rule_hashes(const policy_rule *r)
{
    for (size_t k = 0; r && k < r->n_columns; k++)
        if (r->columns[k].kind == MASK_HASH)
            return true;
    return false;
}

int decide_explain_denial(const policy_t *p, const decide_request *req, const decision *out, size_t stmt,
                          char **note)
{
    const analysis *a = req->facts;
    const analysis_stmt *st = &a->stmts[stmt];
    *note = NULL;
    if (!st->tag || strcmp(st->tag, "EXPLAIN") != 0)
        return 0;
    char what[300] = "";
    bool rewritten = false, keyed = false;
    for (size_t i = 0; i < out->n_items; i++) {
        const decide_item *it = &out->items[i];
        if (it->kind != DECIDE_ITEM_RELATION || it->stmt_index != stmt || it->verdict != DECIDE_REWRITE)
            continue;
        if (!rewritten)
            snprintf(what, sizeof what, "relation %s.%s", it->schema ? it->schema : "?", it->name ? it->name : "?");
        rewritten = true;
        if (it->why == W_RULE_READ_FILTERED && rule_hashes(it->ref[0])) {
            keyed = true;
            snprintf(what, sizeof what, "relation %s.%s", it->schema ? it->schema : "?", it->name ? it->name : "?");
        }
    }
    if (st->execute_name) {
        unsigned bits = req->prepared_rewrite ? req->prepared_rewrite(req->prepared_ctx, st->execute_name)
                                              : DECIDE_PREPARED_REWRITTEN | DECIDE_PREPARED_KEYED;
        if (bits & DECIDE_PREPARED_REWRITTEN) {
            if (!rewritten || ((bits & DECIDE_PREPARED_KEYED) && !keyed))
                snprintf(what, sizeof what, "prepared statement %s", st->execute_name);
            rewritten = true;
            keyed = keyed || (bits & DECIDE_PREPARED_KEYED);
        }
    }
    if (!rewritten)
        return 0;
    char buf[1024];
    if (!p->explain_plan)
        snprintf(buf, sizeof buf,
                 "EXPLAIN of a statement that a row filter, column mask or catalog filter rewrites (%s) would show "
                 "the hidden rows' counts, the distribution of hidden values or the rewritten text; set "
                 "defaults.explain_filtered: \"plan\" in the policy to allow plain EXPLAIN (without ANALYZE or "
                 "VERBOSE)", what);
    else if (st->explain_analyze || st->explain_verbose)
        snprintf(buf, sizeof buf,
                 "EXPLAIN %s of a statement that a row filter, column mask or catalog filter rewrites (%s) would "
                 "show the hidden rows' counts or the rewritten text; defaults.explain_filtered \"plan\" allows "
                 "plain EXPLAIN only: drop ANALYZE and VERBOSE",
                 st->explain_analyze && st->explain_verbose ? "ANALYZE VERBOSE"
                 : st->explain_analyze                      ? "ANALYZE"
                                                            : "VERBOSE",
                 what);
    else if (keyed)
        snprintf(buf, sizeof buf,
                 "EXPLAIN of a statement with a hash-masked column (%s) may print the mask's expression, and with "
                 "it the mask's key, in the plan: denied even with defaults.explain_filtered \"plan\"", what);
    else
        return 0;
    *note = strdup(buf);
    return *note ? 1 : -1;
}
