/*
 * session_internal: what proxy/session.c (a session's life, its state
 * machine and events) and proxy/session_login.c (the login's states) share.
 * Nothing else includes it.
 */
#ifndef MARTGATE_SESSION_INTERNAL_H
#define MARTGATE_SESSION_INTERNAL_H

#include "proxy/conn.h"
#include "proxy/metrics.h"
#include "proxy/session.h"

/* A FATAL error to the client, then the session closes. */
void session_fatal(session *s, const char *sqlstate, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A login refused: its audit record and the metric of its reason. */
void session_login_failed(session *s, metrics_login reason, const char *why);
/* PROXY_HEADER, STARTUP and AUTH: what the client sent so far (session_login.c). */
void session_read_proxy_header(session *s);
void session_read_startup(session *s);
void session_read_password(session *s);
/* The warehouse connection's events (session.c). */
void session_on_server_io(conn *c, conn_event what, void *arg);

#endif
