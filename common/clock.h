/*
 * clock: the few time helpers the threads of martgate share: monotonic time
 * for durations and timeouts, and the CLOCK_REALTIME deadlines that
 * pthread_cond_timedwait takes.
 */
#ifndef MARTGATE_CLOCK_H
#define MARTGATE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline double clock_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* An absolute CLOCK_REALTIME deadline ms from now (negative: now). */
static inline struct timespec clock_deadline_in(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

#endif
