/*
 * Allocation wrappers for the whole library, with fault injection.
 *
 * Every allocation libtmem makes goes through tmem__malloc & co, so that a
 * test can make the Nth allocation fail (the allocation-failure sweeps of
 * tests/) and check that nothing leaks and nothing persistent is lost.
 * The library never aborts on OOM: callers handle NULL.
 */
#ifndef TMEM_COMMON_MEM_H
#define TMEM_COMMON_MEM_H

#include <stddef.h>
#include <stdint.h>

void *tmem__malloc(size_t n);
void *tmem__calloc(size_t n, size_t size);
void *tmem__realloc(void *p, size_t n);
/* posix_memalign-like; NULL on failure (or injected failure). */
void *tmem__aligned_alloc(size_t align, size_t n);
void tmem__free(void *p);
/* The bytes block p holds, header included (0 for NULL): what the store
 * counts as memory used. */
uint64_t tmem__held(const void *p);
/* From now on, allocate from the private heap (privheap.h), not malloc:
 * for libtmem inside a program whose heap tswap manages.  Blocks made
 * before are still freed by malloc. */
void tmem__mem_use_private(void);

/* Fault injection (thread-safe):
 * tmem__fault_arm(n): the n-th allocation from now (1 = the next one)
 * fails, and so does every one after it when sticky is nonzero; others
 * succeed.  tmem__fault_arm(0, 0) disarms. */
void tmem__fault_arm(long n, int sticky);
/* Returns how many allocations failed by injection since the last arm,
 * not counting optional ones. */
long tmem__fault_hits(void);
/* Marks this thread's allocations optional (on) or not: made ahead of
 * need, their failure is absorbed (the need, if it comes, allocates
 * again), so an injected failure of one is not a hit a caller reports. */
void tmem__fault_optional(int on);
/* Returns how many allocations were attempted since the last arm. */
long tmem__fault_seen(void);

#endif
