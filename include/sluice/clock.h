/*
 * clock.h - the absolute time ms milliseconds from now on a clock, as pthread_cond_timedwait
 * takes it (CLOCK_REALTIME for a default condition variable, CLOCK_MONOTONIC for one set so).
 */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <time.h>

static inline struct timespec sl_timespec_in(clockid_t clk, long ms)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

#endif
