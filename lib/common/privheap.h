/*
 * The private heap: memory for libtmem itself that is not the program's
 * heap.  Used (through mem.h, once tmem__mem_use_private() was called)
 * when libtmem runs inside a program whose heap tswap manages (tmem run):
 * the store and client must never touch memory that tswap may have put
 * out.  Thread-safe; nothing here calls the libc mmap wrapper or malloc.
 */
#ifndef TMEM_COMMON_PRIVHEAP_H
#define TMEM_COMMON_PRIVHEAP_H

#include <stddef.h>
#include <stdint.h>

void *tmem__ph_alloc(size_t n);
/* align: a power of two; NULL otherwise or when out of memory. */
void *tmem__ph_aligned(size_t align, size_t n);
void *tmem__ph_realloc(void *p, size_t n);
void tmem__ph_free(void *p); /* NULL is a no-op */
/* Bytes usable at p; bytes p holds with its header (for accounting). */
size_t tmem__ph_usable(const void *p);
size_t tmem__ph_held(const void *p);
/* True when p came from the private heap. */
int tmem__ph_owns(const void *p);
/* Bytes the private heap has mapped. */
uint64_t tmem__ph_mapped(void);
/* The address range all its blocks come from ([0, 0) before the first). */
void tmem__ph_range(uintptr_t *lo, uintptr_t *hi);

#endif
