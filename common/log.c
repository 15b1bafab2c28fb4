/*
 * log: formats "2026-11-25T12:00:00.123456Z LEVEL [prefix] message" lines and
 * writes each with a single write(2) so lines from threads never interleave.
 */
#include "common/log.h"
#include "common/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int current_level = LOG_INFO;   /* set by a reload, read by every thread */
static pthread_mutex_t rate_mu = PTHREAD_MUTEX_INITIALIZER;   /* every log_rate: rare, off the hot path */
static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

void log_set_level(log_level lvl) { atomic_store_explicit(&current_level, (int)lvl, memory_order_relaxed); }
log_level log_get_level(void) { return (log_level)atomic_load_explicit(&current_level, memory_order_relaxed); }

const char *log_level_name(log_level lvl)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    return (unsigned)lvl < 4 ? names[lvl] : "?";
}

int log_level_from_name(const char *name)
{
    static const char *const lower[] = {"debug", "info", "warning", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, lower[i]) == 0)
            return i;
    return -1;
}

void log_vmsg(log_level lvl, const char *prefix, const char *fmt, va_list ap)
{
    if ((int)lvl < atomic_load_explicit(&current_level, memory_order_relaxed))
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t off = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    off += (size_t)snprintf(line + off, sizeof line - off, ".%06ldZ %s ", (long)tv.tv_usec,
                            level_names[lvl]);
    if (prefix && *prefix && off < sizeof line)
        off += (size_t)snprintf(line + off, sizeof line - off, "%s ", prefix);
    if (off < sizeof line)
        off += (size_t)vsnprintf(line + off, sizeof line - off, fmt, ap);
    if (off >= sizeof line - 1)
        off = sizeof line - 2;
    /* one event, one line: fold any newline a message carries */
    for (size_t i = 0; i < off; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[off++] = '\n';
    ssize_t rc = write(STDERR_FILENO, line, off);
    (void)rc;
}

void log_msg(log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, NULL, fmt, ap);
    va_end(ap);
}

bool log_rate_ok(log_rate *r, unsigned long *suppressed)
{
    double now = clock_mono_s();
    pthread_mutex_lock(&rate_mu);
    bool ok = !(r->last != 0 && now - r->last < 1.0);
    if (!ok) {
        r->suppressed++;
    } else {
        *suppressed = r->suppressed;
        r->last = now;
        r->suppressed = 0;
    }
    pthread_mutex_unlock(&rate_mu);
    return ok;
}
