/*
 * adapters/metabase: reading Metabase's query remark.
 */
#include "adapters/metabase.h"

#include <stdio.h>
#include <string.h>

int metabase_end_user(const char *sql, char *out, size_t outlen)
{
    static const char prefix[] = "-- Metabase::";
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
        sql++;
    if (strncmp(sql, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *eol = strchr(sql, '\n');
    const char *id = strstr(sql, "userID:");
    if (!id || (eol && id > eol))
        return -1;
    id += 7;
    while (*id == ' ')
        id++;
    size_t n = 0;
    while (id[n] >= '0' && id[n] <= '9' && n < 20)
        n++;
    if (n == 0)
        return -1;
    snprintf(out, outlen, "metabase:%.*s", (int)n, id);
    return 0;
}
