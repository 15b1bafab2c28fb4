/*
 * admin_console: the PgBouncer habit. A pseudo-database (admin.database,
 * "martgate" by default) that members of admin.groups reach with psql or any
 * client speaking the simple query protocol; martgate answers it itself, in
 * ordinary row sets: SHOW SESSIONS, SHOW STATS, SHOW DATABASES, SHOW POLICY,
 * SHOW CONFIG (secrets never shown), RELOAD, KILL SESSION id, SHOW HELP.
 * Every command, and every login to it, is an audit record naming the
 * operator. Everyone else is told the database does not exist (3D000).
 */
#ifndef MARTGATE_ADMIN_CONSOLE_H
#define MARTGATE_ADMIN_CONSOLE_H

#include <stdbool.h>

struct session;

/* Is this login for the admin console (its database is admin.database)? */
bool admin_console_database(const struct session *s);
/* May the logged-in principal (JWT groups) use it? */
bool admin_console_allowed(const struct session *s);
/* The login succeeded: answers it (AuthenticationOk, parameters,
 * ReadyForQuery) and enters SS_ADMIN. */
void admin_console_start(struct session *s);
/* Client bytes for a session in SS_ADMIN. */
void admin_console_readable(struct session *s);

#endif
