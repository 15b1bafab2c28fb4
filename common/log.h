/*
 * log: one line per event on stderr, with a UTC timestamp and a level. Session
 * code prefixes its lines with session id, user and client address through
 * session_log() (proxy/session.h); this module only formats and writes.
 */
#ifndef MARTGATE_LOG_H
#define MARTGATE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARNING, LOG_ERROR } log_level;

void log_set_level(log_level lvl);
log_level log_get_level(void);
/* Returns -1 when the name is unknown. */
int log_level_from_name(const char *name);
/* "debug", "info", "warning", "error". */
const char *log_level_name(log_level lvl);

void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* At most one line a second for one kind of event (a flood must not flood
 * the log): true when this one may be logged, with *suppressed set to how
 * many were not since the last one logged. */
typedef struct {
    double last;
    unsigned long suppressed;
} log_rate;
bool log_rate_ok(log_rate *r, unsigned long *suppressed);
void log_vmsg(log_level lvl, const char *prefix, const char *fmt, va_list ap);

#endif
