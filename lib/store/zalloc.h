/*
 * zalloc: the allocator for compressed page data (one instance per
 * allocator shard of the blob layer).
 *
 * Log-structured, handle-based (like zsmalloc, so data can move): each
 * object gets an entry in a handle table and its bytes are appended to the
 * pool's head segment (16 KiB, aligned); an object may straddle two
 * segments, so no tail is wasted when a segment fills.  Freeing lowers the
 * live count of the segments an object touches; an empty segment is freed
 * at once, and when too many bytes are dead the pool compacts: the live
 * objects of half-empty segments move to the head and the entries follow.
 *
 * Locks (order: move -> lock):
 *   move  rwlock: held for reading from map to unmap (tmem__zalloc_rdlock)
 *         and for writing by compaction, so data never moves under a reader.
 *   lock  spinlock: the log, the segments, the handle table, the free list.
 * Entries never move (the handle table is paged; its directory is replaced,
 * never freed, when it grows), so tmem__zalloc_ent needs no lock.
 */
#ifndef TMEM_STORE_ZALLOC_H
#define TMEM_STORE_ZALLOC_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#define TMEM_ZA_SEG_SIZE 16384u
/* Handles per pool: 64 Mi (the dedup index keeps 26 bits of index). */
#define TMEM_ZA_MAX_ENTS ((1u << 26) - 2)

/* One handle: 16 bytes.  ref and hash belong to the blob layer. */
typedef struct tmem_zent {
    _Atomic uint32_t ref; /* references; 0 = free or being freed */
    uint32_t hash;        /* low 32 bits of the content hash */
    _Atomic uint64_t loc; /* address | len << 48 | codec << 61, or
                             TMEM_ZA_FREE | next free index + 1 */
} tmem_zent;

#define TMEM_ZA_FREE (1ull << 63)
#define TMEM_ZA_PTR(loc) ((char *)(uintptr_t)((loc) & ((1ull << 48) - 1)))
#define TMEM_ZA_LEN(loc) ((uint32_t)((loc) >> 48) & 0x1fffu)
#define TMEM_ZA_CODEC(loc) ((unsigned)((loc) >> 61) & 3u)

struct tmem_zseg;
struct tmem_zdir;

typedef struct tmem_zpool {
    pthread_rwlock_t move;
    atomic_int lock;
    struct tmem_zseg *head;  /* segment being filled (or NULL) */
    uint32_t head_off;       /* next free byte in head */
    struct tmem_zseg **segs; /* every segment, for compaction */
    uint32_t nseg, segcap;
    _Atomic(struct tmem_zdir *) dir;
    uint32_t nent;        /* entries ever handed out */
    uint32_t free_head;   /* first free entry + 1, 0 = none */
    uint64_t seg_bytes;   /* bytes held by segments */
    uint64_t waste_floor; /* no compaction below this waste... */
    uint32_t floor_nseg;  /* ...unless the pool halved since */
    /* Read without the lock by tmem__zalloc_stats. */
    _Atomic uint64_t data_bytes; /* live object bytes */
    _Atomic uint64_t meta_bytes; /* segments - data + tables */
    _Atomic uint64_t objects, raw_objects, compactions, moved;
} __attribute__((aligned(64))) tmem_zpool;

/* Short critical sections only: a contended futex costs ~100 us on this
 * kind of machine (PERF.md), spinning a few hundred cycles does not. */
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

int tmem__zalloc_init(tmem_zpool *z);
/* Frees every segment and table, whatever is still stored. */
void tmem__zalloc_fini(tmem_zpool *z);

/* Stores len bytes (1..4096) from src with the given codec tag and hash:
 * the new entry has ref = 1.  Returns 0 and sets *idx, or -ENOMEM. */
int tmem__zalloc_store(tmem_zpool *z, const void *src, uint32_t len,
                       unsigned codec, uint32_t hash, uint32_t *idx);
/* Frees entry idx and its bytes (its ref must be 0); may compact. */
void tmem__zalloc_free(tmem_zpool *z, uint32_t idx);
/* Returns entry idx (< entries handed out), lock-free. */
tmem_zent *tmem__zalloc_ent(tmem_zpool *z, uint32_t idx);

/* Reader side: data stays put between rdlock and rdunlock. */
void tmem__zalloc_rdlock(tmem_zpool *z);
void tmem__zalloc_rdunlock(tmem_zpool *z);
/* Under rdlock: returns the object's bytes contiguously, in place or
 * copied into tmp[4096] when it straddles two segments. */
const void *tmem__zalloc_map(const tmem_zent *e, void *tmp);

/* Moves the live objects of segments less than half full to the head and
 * frees those segments (all partly used segments when force).  Returns the
 * number of segments freed, or -ENOMEM if it had to stop early. */
int tmem__zalloc_compact(tmem_zpool *z, int force);

#endif
