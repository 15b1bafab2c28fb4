/*
 * intercept: until the policy engine is wired in, every statement is allowed
 * as written. The relay already handles deny and replace (tests drive them).
 */
#include "proxy/intercept.h"

#include <stdlib.h>
#include <string.h>

void intercept_statement(struct session *s, char kind, const char *stmt_name, const char *sql,
                         intercept_result *out)
{
    (void)s;
    (void)kind;
    (void)stmt_name;
    (void)sql;
    memset(out, 0, sizeof *out);
    out->verdict = INTERCEPT_ALLOW;
}

void intercept_result_clear(intercept_result *r)
{
    free(r->text);
    free(r->message);
    free(r->detail);
    free(r->hint);
    memset(r, 0, sizeof *r);
}
