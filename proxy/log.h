/*
 * log: one line per event on stderr, with a UTC timestamp and a level. Session
 * code prefixes its lines with session id, user and client address through
 * session_log() (proxy/session.h); this module only formats and writes.
 */
#ifndef MARTGATE_LOG_H
#define MARTGATE_LOG_H

#include <stdarg.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;

void log_set_level(log_level lvl);
log_level log_get_level(void);
/* Returns -1 when the name is unknown. */
int log_level_from_name(const char *name);

void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(log_level lvl, const char *prefix, const char *fmt, va_list ap);

#endif
