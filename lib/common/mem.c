/*
 * Allocation wrappers with fault injection (see mem.h), over libc's
 * malloc or, once tmem__mem_use_private() was called, the private heap
 * (privheap.h).  A block is freed by the allocator that made it: the
 * private heap's blocks carry a header that says so.
 *
 * Owns three process-wide atomic counters: how many allocations were seen
 * since the last arm, which one must fail (0 = none) and whether failures
 * are sticky, and how many failed by injection.  Invariant: when disarmed
 * (target 0) every call is a plain libc call plus one relaxed atomic add.
 * The counters are atomics so that concurrent tests stay exact; tmem__free
 * never fails and is not counted.
 */
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/privheap.h"

static atomic_int use_private;

void tmem__mem_use_private(void)
{
    atomic_store(&use_private, 1);
}

static int priv(void)
{
    return atomic_load_explicit(&use_private, memory_order_relaxed);
}

/* A block of the private heap?  Only asked once it was ever used: its
 * header check reads before a block, which a sanitizer would refuse for
 * malloc's. */
static int ph_block(const void *p)
{
    return p && priv() && tmem__ph_owns(p);
}

static atomic_long fault_target; /* 1-based allocation index to fail */
static atomic_int fault_sticky;
static atomic_long fault_seen;
static atomic_long fault_hits;
static _Thread_local int fault_opt;

void tmem__fault_optional(int on)
{
    fault_opt = on;
}

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
        if (!fault_opt)
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
    if (fault_now())
        return NULL;
    return priv() ? tmem__ph_alloc(n) : malloc(n);
}

void *tmem__calloc(size_t n, size_t size)
{
    if (fault_now())
        return NULL;
    if (!priv())
        return calloc(n, size);
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = tmem__ph_alloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *tmem__realloc(void *p, size_t n)
{
    /* A failed realloc leaves p untouched, as realloc does. */
    if (fault_now())
        return NULL;
    if (ph_block(p))
        return tmem__ph_realloc(p, n);
    if (p || !priv())
        return realloc(p, n);
    return tmem__ph_alloc(n);
}

void *tmem__aligned_alloc(size_t align, size_t n)
{
    void *p = NULL;
    if (fault_now())
        return NULL;
    if (align < sizeof(void *))
        align = sizeof(void *);
    if (priv())
        return tmem__ph_aligned(align, n);
    return posix_memalign(&p, align, n) == 0 ? p : NULL;
}

uint64_t tmem__held(const void *p)
{
    if (!p)
        return 0;
    /* malloc's blocks: usable bytes plus its size word */
    return ph_block(p) ? tmem__ph_held(p) : malloc_usable_size((void *)p) + 8;
}

void tmem__free(void *p)
{
    if (ph_block(p))
        tmem__ph_free(p);
    else
        free(p);
}
