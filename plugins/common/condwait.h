/*
 * condwait.h - (plugins/common) a condition wait with a timeout in milliseconds, for the plugins'
 * worker pools that wake now and then to look at a stop flag the host gives no signal for.
 */
#ifndef SLUICE_PLUGINS_CONDWAIT_H
#define SLUICE_PLUGINS_CONDWAIT_H

#include <pthread.h>
#include <time.h>
#include "sluice/clock.h"

/* pthread_cond_timedwait on cv (mu held) for at most ms milliseconds. */
static inline void sl_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long ms)
{
    struct timespec ts = sl_timespec_in(CLOCK_REALTIME, ms);
    pthread_cond_timedwait(cv, mu, &ts);
}

#endif
