/*
 * Arenas: where the store keeps page data (docs/layout.md).  An arena is a
 * memfd of 64 KiB segments, mapped once; records (common/arena_fmt.h) are
 * appended to per-thread head segments and found through handles, so a
 * compaction step can move one segment's records and repoint their
 * handles while readers go on without locks.
 *
 * What this layer owns: the file and its mapping, segments (allocation,
 * live bytes, punching), handles (allocation, generations, the free
 * lists), appends, state changes of records, compaction one segment at a
 * time, and the arena's memory figures.  Reference counts live in the
 * handle entries but are the blob layer's business (blob.c).
 *
 * Locks (order: head -> arena):
 *   head[i].lock  spinlock: that head's segment fill and its shard of the
 *                 handle space (free list, fresh handles).
 *   arena.lock    spinlock: segment allocation and freeing, the file size,
 *                 the handle directory, compaction candidates.
 * Readers take none (tmem__arena_read, a seqlock on move_seq).
 */
#ifndef TMEM_STORE_ARENA_H
#define TMEM_STORE_ARENA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena_fmt.h"

typedef struct tmem_arena tmem_arena;

/* What a record is named. */
typedef struct tmem_arena_name {
    uint32_t owner, pool, index;
    uint64_t oid[3];
} tmem_arena_name;

typedef struct tmem_arena_stats {
    uint64_t data_bytes;  /* live payload bytes */
    uint64_t held_bytes;  /* file pages written and not punched */
    uint64_t meta_bytes;  /* held - data + the arena's private memory */
    uint64_t records;     /* live DATA records */
    uint64_t raw_records; /* ... stored uncompressed */
    uint64_t aliases;     /* live ALIAS records */
    uint64_t segments;    /* DATA and HANDLE segments held */
    uint64_t compactions; /* compaction steps run */
    uint64_t moved;       /* records moved by them */
    uint64_t punched;     /* segments given back */
} tmem_arena_stats;

/* Creates an arena owned by identity `owner` (flags TMEM_ARENA_F_*).
 * Returns 0 and sets *out, or -ENOMEM / -errno of memfd_create. */
int tmem__arena_create(uint32_t owner, unsigned flags, tmem_arena **out);
/* Marks the arena dead (tenants reading it fall back to the store), unmaps
 * and closes it.  NULL is a no-op. */
void tmem__arena_destroy(tmem_arena *a);

/* The mapping, for readers (tmem__arena_read). */
const void *tmem__arena_base(const tmem_arena *a);
size_t tmem__arena_map_len(const tmem_arena *a);
/* A new read-only descriptor of the arena file, for its tenant.  Returns
 * the descriptor or -errno. */
int tmem__arena_fd_ro(tmem_arena *a);
bool tmem__arena_named(const tmem_arena *a);

/* Appends a DATA record (payload len bytes, 1..4096) named nm.  Returns 0
 * and sets *h and *gen (the handle has ref 1, aux = hash), or -ENOMEM. */
int tmem__arena_put(tmem_arena *a, const tmem_arena_name *nm,
                    const void *payload, uint32_t len, unsigned codec,
                    uint32_t hash, uint32_t *h, uint32_t *gen);
/* Appends an ALIAS record named nm for target (gen tgen), whose reference
 * the caller holds for it.  Returns 0 and sets *h, *gen (ref 1), or
 * -ENOMEM. */
int tmem__arena_alias(tmem_arena *a, const tmem_arena_name *nm,
                      uint32_t target, uint32_t tgen, uint32_t *h,
                      uint32_t *gen);
/* Handle entry h (a handle this arena handed out). */
tmem_arena_handle *tmem__arena_ent(tmem_arena *a, uint32_t h);
/* The generation of live handle h (read from its record). */
uint32_t tmem__arena_gen(tmem_arena *a, uint32_t h);
/* Marks record h's name dead while its data stays (NAMEDEAD). */
void tmem__arena_name_dead(tmem_arena *a, uint32_t h);
/* Frees record h (state FREE), its bytes and its handle (gen goes up on
 * reuse).  The caller holds the last reference. */
void tmem__arena_free(tmem_arena *a, uint32_t h);

/* One compaction step: moves the live records of the sparsest candidate
 * segment and punches it.  Returns 1 if a segment was freed, 0 if none
 * was worth it, -ENOMEM if it had to stop. */
int tmem__arena_compact_step(tmem_arena *a);
/* True when dead bytes pass a quarter of the data segments held. */
bool tmem__arena_wants_compaction(tmem_arena *a);

void tmem__arena_stats(tmem_arena *a, tmem_arena_stats *out);

#endif
