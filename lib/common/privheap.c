/*
 * The private heap (privheap.h): libtmem's own memory when it runs inside
 * a tswap tenant (tmem run), kept out of the program's heap, which tswap
 * pages out: the store and the client must never fault on memory that
 * their own fault path would have to bring back.
 *
 * Size classes of 16 B to 32 KiB carved from 256 KiB slabs; anything
 * larger takes whole 64 KiB granules.  Every block starts with a 16-byte
 * header (magic and class, usable bytes), so free and usable_size need no
 * lookup and a pointer from another allocator is told apart
 * (tmem__ph_owns).  Slabs and large blocks are carved from one address
 * range reserved with the mmap system call itself (not the libc wrapper,
 * which an LD_PRELOAD may wrap), so one range says what is ours
 * (tmem__ph_range: tmem run's heap scanner keeps out of it).
 *
 * Locks: one spinlock per class (free list, the class's current slab) and
 * one for the range (bump pointer, large free lists).  Blocks of a class
 * never go back to the kernel (as a small malloc's); a large block's
 * pages do when it is freed (MADV_DONTNEED), its granules are reused for
 * a block of the same size.
 */
#include "privheap.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HDR 16u
#define SLAB (256u << 10)
#define MAGIC 0x7ea5c0de00000000ull
#define MAGIC_MASK 0xffffffff00000000ull
#define K_LARGE 0xffffu   /* class field of a block with its own mapping */
#define K_ALIGNED 0xfffeu /* an aligned block: usable holds the offset */

static const uint32_t class_size[] = {
    16,   32,   48,   64,   96,    128,   192,   256,   384,   512,  768,
    1024, 1536, 2048, 3072, 4096,  6144,  8192,  12288, 16384, 24576, 32768,
};
#define NCLASS (sizeof class_size / sizeof class_size[0])

struct block_hdr {
    uint64_t tag;    /* MAGIC | class (or K_LARGE / K_ALIGNED) */
    uint64_t usable; /* bytes after the header; K_ALIGNED: offset back */
};

struct pclass {
    atomic_int lock;
    void *free;           /* free blocks, linked through their payload */
    char *bump, *end;     /* the rest of the current slab */
} __attribute__((aligned(64)));

static struct pclass classes[NCLASS];
static _Atomic uint64_t mapped_bytes;

#define GRANULE (64u << 10)
#define NLARGE 1024u /* free lists of large blocks up to 64 MiB */
static struct {
    atomic_int lock;
    _Atomic uintptr_t lo, hi; /* the reservation */
    uintptr_t bump;
    void *large_free[NLARGE + 1]; /* by granules; [0]: bigger ones */
} range;

static void lock(atomic_int *l)
{
    for (unsigned i = 0; atomic_exchange_explicit(l, 1, memory_order_acquire);
         i++)
        while (atomic_load_explicit(l, memory_order_relaxed))
            if (++i > 100)
                sched_yield();
}

static void unlock(atomic_int *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

/* Reserves the range on first use: the machine's RAM in address space,
 * nothing committed. */
static int reserve_locked(void)
{
    if (atomic_load(&range.lo))
        return 0;
    long pages = sysconf(_SC_PHYS_PAGES);
    uint64_t len = pages > 0 ? (uint64_t)pages * 4096 : 1ull << 34;
    len = (len + GRANULE - 1) & ~(uint64_t)(GRANULE - 1);
    long p = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p < 0 && p > -4096)
        return -ENOMEM;
    range.bump = (uintptr_t)p;
    atomic_store(&range.hi, (uintptr_t)p + len);
    atomic_store(&range.lo, (uintptr_t)p);
    return 0;
}

/* n bytes (a multiple of GRANULE) of the range, or NULL. */
static void *raw_map(size_t n)
{
    size_t g = n / GRANULE;
    void *p = NULL;
    lock(&range.lock);
    if (g <= NLARGE && range.large_free[g]) {
        p = range.large_free[g];
        memcpy(&range.large_free[g], p, sizeof p);
    } else if (reserve_locked() == 0 && atomic_load(&range.hi) - range.bump >= n) {
        p = (void *)range.bump;
        range.bump += n;
    }
    unlock(&range.lock);
    if (p)
        atomic_fetch_add(&mapped_bytes, n);
    return p;
}

static void raw_unmap(void *p, size_t n)
{
    size_t g = n / GRANULE;
    madvise(p, n, MADV_DONTNEED);
    atomic_fetch_sub(&mapped_bytes, n);
    if (g > NLARGE)
        return; /* address space only: not reused */
    lock(&range.lock);
    memcpy(p, &range.large_free[g], sizeof p);
    range.large_free[g] = p;
    unlock(&range.lock);
}

void tmem__ph_range(uintptr_t *lo, uintptr_t *hi)
{
    *lo = atomic_load(&range.lo);
    *hi = atomic_load(&range.hi);
}

static unsigned class_of(size_t n)
{
    for (unsigned k = 0; k < NCLASS; k++)
        if (n <= class_size[k])
            return k;
    return NCLASS;
}

static void *class_alloc(unsigned k)
{
    struct pclass *c = &classes[k];
    size_t step = HDR + class_size[k];
    struct block_hdr *h = NULL;
    lock(&c->lock);
    if (c->free) {
        h = (struct block_hdr *)((char *)c->free - HDR);
        memcpy(&c->free, c->free, sizeof c->free);
    } else {
        if (!c->bump || (size_t)(c->end - c->bump) < step) {
            char *s = raw_map(SLAB);
            if (s) {
                c->bump = s;
                c->end = s + SLAB;
            }
        }
        if (c->bump && (size_t)(c->end - c->bump) >= step) {
            h = (struct block_hdr *)c->bump;
            c->bump += step;
        }
    }
    unlock(&c->lock);
    if (!h)
        return NULL;
    h->tag = MAGIC | k;
    h->usable = class_size[k];
    return (char *)h + HDR;
}

static void *large_alloc(size_t n)
{
    size_t len = (n + HDR + GRANULE - 1) & ~(size_t)(GRANULE - 1);
    if (len < n)
        return NULL;
    struct block_hdr *h = raw_map(len);
    if (!h)
        return NULL;
    h->tag = MAGIC | K_LARGE;
    h->usable = len - HDR;
    return (char *)h + HDR;
}

static struct block_hdr *hdr_of(const void *p)
{
    return (struct block_hdr *)((char *)p - HDR);
}

int tmem__ph_owns(const void *p)
{
    return p && (hdr_of(p)->tag & MAGIC_MASK) == MAGIC;
}

/* The block an aligned pointer was carved from. */
static void *base_of(void *p)
{
    struct block_hdr *h = hdr_of(p);
    if ((h->tag & 0xffff) == K_ALIGNED)
        return (char *)p - h->usable;
    return p;
}

void *tmem__ph_alloc(size_t n)
{
    unsigned k = class_of(n ? n : 1);
    return k < NCLASS ? class_alloc(k) : large_alloc(n);
}

void *tmem__ph_aligned(size_t align, size_t n)
{
    if (align <= HDR)
        return tmem__ph_alloc(n);
    if (align & (align - 1))
        return NULL;
    size_t want = n + align + HDR;
    if (want < n)
        return NULL;
    char *base = tmem__ph_alloc(want);
    if (!base)
        return NULL;
    uintptr_t a = ((uintptr_t)base + HDR + align - 1) & ~(uintptr_t)(align - 1);
    struct block_hdr *h = hdr_of((void *)a);
    h->tag = MAGIC | K_ALIGNED;
    h->usable = a - (uintptr_t)base;
    return (void *)a;
}

size_t tmem__ph_usable(const void *p)
{
    void *b = base_of((void *)p);
    return hdr_of(b)->usable - ((const char *)p - (const char *)b);
}

size_t tmem__ph_held(const void *p)
{
    return hdr_of(base_of((void *)p))->usable + HDR;
}

void tmem__ph_free(void *p)
{
    if (!p)
        return;
    p = base_of(p);
    struct block_hdr *h = hdr_of(p);
    unsigned k = (unsigned)(h->tag & 0xffff);
    if (k == K_LARGE) {
        raw_unmap(h, h->usable + HDR);
        return;
    }
    struct pclass *c = &classes[k];
    lock(&c->lock);
    memcpy(p, &c->free, sizeof c->free);
    c->free = p;
    unlock(&c->lock);
}

void *tmem__ph_realloc(void *p, size_t n)
{
    if (!p)
        return tmem__ph_alloc(n);
    size_t have = tmem__ph_usable(p);
    if (n <= have && base_of(p) == p)
        return p;
    void *q = tmem__ph_alloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, have < n ? have : n);
    tmem__ph_free(p);
    return q;
}

uint64_t tmem__ph_mapped(void)
{
    return atomic_load(&mapped_bytes);
}
