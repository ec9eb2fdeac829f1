/*
 * The store's spinlock, for short critical sections only: a contended
 * futex costs ~100 us on this kind of machine (shared/PERF.md), spinning
 * a few hundred cycles does not.  Past 200 rounds it yields the CPU, so a
 * holder that was preempted gets it back.
 */
#ifndef TMEM_STORE_SPIN_H
#define TMEM_STORE_SPIN_H

#include <sched.h>
#include <stdatomic.h>

static inline void tmem__spin_lock(atomic_int *l)
{
    for (unsigned i = 0;; i++) {
        if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(l, memory_order_relaxed)) {
            if (++i > 200)
                sched_yield();
#if defined(__x86_64__) || defined(__i386__)
            else
                __builtin_ia32_pause();
#endif
        }
    }
}

static inline void tmem__spin_unlock(atomic_int *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

#endif
