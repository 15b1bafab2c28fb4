/*
 * audit_internal: what audit.c and audit_settings.c share. Private.
 */
#ifndef MARTGATE_AUDIT_INTERNAL_H
#define MARTGATE_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/audit.h"
#include "proxy/audit_pg.h"

struct audit_settings {
    bool enabled;
    char *file;
    audit_query_mode qmode;
    size_t queue_size;
    audit_when_full when_full;
    int fsync_interval_ms;
    bool has_warehouse;
    audit_pg_config pg;
    char **end_user_from;       /* user patterns whose Metabase remark names the end user */
    size_t n_end_user_from;
    bool has_end_user_from;     /* false: the policy's impersonators */
};

#define AUDIT_PG_STOP_MS 5000

void audit_settings_clear(audit_settings *s);
/* A deep copy (the running log keeps its own). 0, or -1 out of memory. */
int audit_settings_copy(audit_settings *d, const audit_settings *s);

#endif
