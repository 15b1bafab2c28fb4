/*
 * policy_offline: one SQL text decided for one principal without a session
 * (policy_offline.h), for `policy explain` and `policy replay`.
 */
#include "proxy/policy_offline.h"

#include <string.h>

#include "policy/policy_cases.h"
#include "policy/rewrite.h"

int policy_offline_context(const policy_t *p, const decide_principal *who, const char *database,
                           const char *const *path, size_t n, const char ***start, size_t *n_start,
                           analyze_context *actx)
{
    static const char *const empty_path[] = {""};
    *start = NULL;
    *n_start = 0;
    if (!path) {
        if (decide_search_path(p, who, start, n_start) < 0)
            return -1;
        path = *start;
        n = *n_start;
    }
    *actx = (analyze_context){.database = database, .search_path = path, .n_search_path = n};
    if (n == 0) {   /* an empty search_path, not PostgreSQL's default */
        actx->search_path = empty_path;
        actx->n_search_path = 1;
    }
    return 0;
}

int policy_offline_decide(const policy_t *p, const decide_principal *who, const analyze_context *actx,
                          const warehouse_facts *wh, const json_doc *cols, const char *sql, analysis **an,
                          analyze_error *aerr, decision *d, char *derr, size_t derrlen)
{
    *an = NULL;
    if (derrlen)
        derr[0] = 0;
    if (analyze_sql(sql, actx, an, aerr) != 0)
        return 1;
    rewrite_hash_key placeholder;   /* offline: never the deployment's key */
    rewrite_hash_key_placeholder(&placeholder);
    decide_request req = {.sql = sql, .facts = *an, .who = who, .warehouse = wh, .hash_key = &placeholder};
    if (cols) {
        req.columns = policy_cases_columns;
        req.columns_ctx = json_doc_root(cols);
    }
    decide(p, &req, d, derr, derrlen);
    return 0;
}
