/*
 * Allocation wrappers with fault injection (see mem.h).
 *
 * Owns three process-wide atomic counters: how many allocations were seen
 * since the last arm, which one must fail (0 = none) and whether failures
 * are sticky, and how many failed by injection.  Invariant: when disarmed
 * (target 0) every call is a plain libc call plus one relaxed atomic add.
 * The counters are atomics so that concurrent tests stay exact; tmem__free
 * never fails and is not counted.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "common/mem.h"

static atomic_long fault_target; /* 1-based allocation index to fail */
static atomic_int fault_sticky;
static atomic_long fault_seen;
static atomic_long fault_hits;

/* Returns nonzero if this allocation must fail by injection. */
static int fault_now(void)
{
    long target = atomic_load_explicit(&fault_target, memory_order_relaxed);
    if (target <= 0)
        return 0;
    long n = atomic_fetch_add(&fault_seen, 1) + 1;
    if (n == target ||
        (n > target &&
         atomic_load_explicit(&fault_sticky, memory_order_relaxed))) {
        atomic_fetch_add(&fault_hits, 1);
        return 1;
    }
    return 0;
}

void tmem__fault_arm(long n, int sticky)
{
    atomic_store(&fault_target, 0);
    atomic_store(&fault_seen, 0);
    atomic_store(&fault_hits, 0);
    atomic_store(&fault_sticky, sticky != 0);
    atomic_store(&fault_target, n > 0 ? n : 0);
}

long tmem__fault_hits(void)
{
    return atomic_load(&fault_hits);
}

long tmem__fault_seen(void)
{
    return atomic_load(&fault_seen);
}

void *tmem__malloc(size_t n)
{
    return fault_now() ? NULL : malloc(n);
}

void *tmem__calloc(size_t n, size_t size)
{
    return fault_now() ? NULL : calloc(n, size);
}

void *tmem__realloc(void *p, size_t n)
{
    /* A failed realloc leaves p untouched, as realloc does. */
    return fault_now() ? NULL : realloc(p, n);
}

void *tmem__aligned_alloc(size_t align, size_t n)
{
    void *p = NULL;
    if (fault_now())
        return NULL;
    if (align < sizeof(void *))
        align = sizeof(void *);
    return posix_memalign(&p, align, n) == 0 ? p : NULL;
}

void tmem__free(void *p)
{
    free(p);
}
