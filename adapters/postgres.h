/*
 * adapters/postgres: the warehouse side of a session. libpq opens the
 * connection (TLS, SCRAM, multi-host failover are libpq's) without blocking
 * the event loop, by driving PQconnectPoll from libevent; once the warehouse
 * is ready, the caller relays protocol bytes on backend_fd()/backend_ssl()
 * itself. Also cancels running queries from a worker thread (PQcancel blocks).
 */
#ifndef MARTGATE_ADAPTERS_POSTGRES_H
#define MARTGATE_ADAPTERS_POSTGRES_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct backend backend;

/* Called once: ok = true when the warehouse session is ready for queries;
 * otherwise `error` is libpq's message (for the log, not for clients). */
typedef void (*backend_ready_cb)(backend *b, bool ok, const char *error, void *arg);

/* Starts connecting. conninfo is the configured libpq string; keys/values
 * (NULL-terminated, may be NULL) override or add libpq keywords, e.g.
 * application_name, options, client_encoding. Returns NULL with err filled
 * when the connection cannot even start. */
backend *backend_connect(struct event_base *base, const char *conninfo, const char *password,
                         const char *const *keys, const char *const *values,
                         backend_ready_cb cb, void *arg, char *err, size_t errlen);

/* The settings that change how the server tokenizes SQL, with the value
 * martgate's parser uses. Every warehouse session starts with them (as
 * startup options, which are also what RESET and DISCARD ALL restore) and
 * is verified (ParameterStatus, then pg_settings' setting and reset_val)
 * before the client's first statement; a session that differs is refused. */
typedef struct backend_parse_setting {
    const char *name, *value;
} backend_parse_setting;
#define BACKEND_N_PARSE_SETTINGS 3
extern const backend_parse_setting backend_parse_settings[BACKEND_N_PARSE_SETTINGS + 1];
/* The "options" a warehouse connection starts with: the conninfo's own
 * (may be NULL), then options (may be NULL), then "-c name=value" of each
 * parse setting libpq has no keyword for. -1 when it does not fit. */
int backend_parse_options(const char *conninfo, const char *options, char *buf, size_t len);
/* When martgate itself refused the session (its parse settings differ): a
 * one-line message for the client; NULL otherwise. */
const char *backend_refusal(const backend *b);

int backend_fd(const backend *b);
/* The TLS session libpq negotiated with the warehouse, or NULL. */
SSL *backend_ssl(const backend *b);
/* A ParameterStatus value the warehouse reported at login, or NULL. */
const char *backend_parameter(const backend *b, const char *name);
/* Once the login's values are passed on: keeps only those of names
 * (NULL-terminated); the others read NULL from then on. */
void backend_keep_parameters(backend *b, const char *const *names);
/* Names of the parameters PostgreSQL reports at login (GUC_REPORT). */
extern const char *const backend_reported_parameters[14];
/* The warehouse's backend process id, for logs. */
int backend_pid(const backend *b);

/* Asks the warehouse to cancel the running query; returns at once (a worker
 * thread does the blocking PQcancel). -1 when too many cancels are in flight. */
int backend_cancel(backend *b);

/* Waits up to `seconds` for cancel requests still being sent (at exit). */
void backend_cancel_drain(double seconds);

/* Closes the warehouse session (sends Terminate) and frees everything. */
void backend_free(backend *b);

#endif
