/* A bounded wait on a condition variable (condwait.h). */
#include <time.h>

#include "common/condwait.h"

int tmem__cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu, long ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the clock condvars wait on */
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec += ns % 1000000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(cv, mu, &ts);
}
