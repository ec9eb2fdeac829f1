/*
 * A bounded wait on a condition variable: for threads that sleep until
 * kicked but look again every so often (the store's maintenance thread,
 * tmemd's waiting rings).
 */
#ifndef TMEM_COMMON_CONDWAIT_H
#define TMEM_COMMON_CONDWAIT_H

#include <pthread.h>

/* pthread_cond_timedwait on cv (mu held) for at most ns nanoseconds from
 * now.  Returns its result: 0, ETIMEDOUT, or another error. */
int tmem__cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu, long ns);

#endif
