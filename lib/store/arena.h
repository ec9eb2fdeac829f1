/*
 * Arenas: where the store keeps page data (docs/layout.md).  An arena is a
 * memfd of 256 KiB segments, mapped once; records (common/arena_fmt.h) are
 * appended to per-thread head segments and found through handles, so a
 * compaction step can move one segment's records and repoint their
 * handles while readers go on without locks.
 *
 * What this layer owns: the file and its mapping, segments (allocation,
 * live bytes, punching), the pages of a data segment (how many records
 * lie on each, which are dead and which were given back), handles
 * (allocation, generations, the free lists), appends, state changes of
 * records, compaction one segment at a time, and the arena's memory
 * figures.  Reference counts live in the handle entries but are the blob
 * layer's business (blob.c).
 *
 * Memory: every file page written and every private structure is charged
 * to the account given at creation (acct.h) before it is taken, and the
 * charge is refused rather than exceeded: an append that does not fit
 * fails with -ENOSPC having written nothing.  A 4 KiB page on which every
 * record died is given back (punched) once its segment has gathered a few
 * such pages, or at once by tmem__arena_trim; readers of a punched page
 * see zeros, which no check accepts.
 *
 * Heads: records are appended at a head chosen by the thread (private
 * arenas), or, for a name with TMEM_ARENA_NM_OWNER, by its owner (the
 * common arena): each tenant's pages then fill segments of their own, in
 * the order it put them, so evicting its oldest pages empties whole pages
 * instead of leaving holes between other tenants' pages.
 *
 * Locks (order: head -> handle shard -> arena -> segment pages):
 *   head.lock     spinlock: that head's segment fill.
 *   shard.lock    spinlock: one shard of the handle space (free list,
 *                 fresh handles); handle h is in shard (h / HPS) % NH.
 *   arena.lock    spinlock: segment allocation and freeing, the file size,
 *                 the handle directory, compaction candidates.
 *   pages.lock    spinlock of one data segment: its dead and punched page
 *                 sets, and the punching of its pages; a compaction step
 *                 holds it while it walks the segment.
 * One exception to the order: a compaction step holds its victim's pages
 * lock (after the compaction head's lock) and may then take the arena
 * lock; the arena lock is never held while waiting for a MOVING segment's
 * pages lock (it takes only a segment's it is freeing, never MOVING).
 * Readers take none (tmem__arena_read, a seqlock on move_seq).
 */
#ifndef TMEM_STORE_ARENA_H
#define TMEM_STORE_ARENA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena_fmt.h"
#include "store/acct.h"

typedef struct tmem_arena tmem_arena;

/* What a record is named; flags TMEM_ARENA_NM_*. */
typedef struct tmem_arena_name {
    uint32_t owner, pool, index;
    uint32_t flags;
    uint64_t oid[3];
} tmem_arena_name;

/* Append at the owner's head rather than the thread's (common arena). */
#define TMEM_ARENA_NM_OWNER 1u

typedef struct tmem_arena_stats {
    uint64_t data_bytes;  /* live payload bytes */
    uint64_t held_bytes;  /* file pages written and not punched */
    uint64_t meta_bytes;  /* held - data + the arena's private memory */
    uint64_t charged;     /* held + private: what the account holds for it */
    uint64_t records;     /* live DATA records */
    uint64_t raw_records; /* ... stored uncompressed */
    uint64_t aliases;     /* live ALIAS records */
    uint64_t segments;    /* DATA and HANDLE segments held */
    uint64_t compactions; /* compaction steps run */
    uint64_t moved;       /* records moved by them */
    uint64_t punched;     /* segments given back */
    uint64_t pages_punched; /* single dead pages given back */
    uint64_t prep_misses;   /* segments opened with an allocation or a
                               file grow under the arena lock (spares
                               ran out: threads opening segments at once) */
    uint64_t pages_dead;  /* dead pages not given back yet */
} tmem_arena_stats;

/* Creates an arena owned by identity `owner` (flags TMEM_ARENA_F_*),
 * charging its memory to acct (may be NULL).  Returns 0 and sets *out, or
 * -ENOSPC (acct refused), -ENOMEM / -errno of memfd_create. */
int tmem__arena_create(uint32_t owner, unsigned flags, tmem_acct *acct,
                       tmem_arena **out);
/* As tmem__arena_create, for a private arena (TMEM_ARENA_F_NAMED) that
 * outlives the daemon when dir is not NULL: a new file dir/arena-*.tma
 * (mode 0600) instead of a memfd, flagged TMEM_ARENA_F_FILE, with its
 * pool table (one more page charged); destroying the arena removes the
 * file.  -EINVAL for a dir with an arena that is not named. */
int tmem__arena_create_in(uint32_t owner, unsigned flags, tmem_acct *acct,
                          const char *dir, tmem_arena **out);
/* Writes the owner's tag (at most TMEM_ARENA_TAG_MAX bytes; more are cut)
 * into the header: what recovery gives back to say whose pages they
 * are. */
void tmem__arena_set_tag(tmem_arena *a, const void *tag, uint32_t len);
/* A private pool id opens in the arena: returns its instance number,
 * which the pool's records carry (TMEM_ARENA_POOL_ID / _INST), and, in a
 * file arena, enters it in the pool table.  The caller serialises (the
 * owner's client lock). */
uint32_t tmem__arena_pool_open(tmem_arena *a, unsigned id, uint32_t flags,
                               const uint64_t uuid[2]);
/* Pool id is being destroyed: its entry goes first, so its records name
 * no pool for recovery from now on. */
void tmem__arena_pool_close(tmem_arena *a, unsigned id);
/* Marks the arena dead before its owner's pages are freed (a client
 * going away): tenants reading it fall back to the store, and recovery
 * after a crash in the middle skips it. */
void tmem__arena_doom(tmem_arena *a);
/* Marks the arena dead (tenants reading it fall back to the store), unmaps
 * and closes it, and gives back everything it charged.  NULL is a no-op. */
void tmem__arena_destroy(tmem_arena *a);

/* The mapping, for readers (tmem__arena_read). */
const void *tmem__arena_base(const tmem_arena *a);
size_t tmem__arena_map_len(const tmem_arena *a);
/* A new read-only descriptor of the arena file, for its tenant.  Returns
 * the descriptor or -errno. */
int tmem__arena_fd_ro(tmem_arena *a);
bool tmem__arena_named(const tmem_arena *a);
/* Whether it is a file that outlives the daemon (tmem__arena_create_in). */
bool tmem__arena_is_file(const tmem_arena *a);

/* Appends a DATA record (payload len bytes, 1..4096) named nm.  Returns 0
 * and sets *h and *gen (the handle has ref 1, aux = hash), or -ENOSPC
 * (the account refused the pages it needs: nothing was written), or
 * -ENOMEM. */
int tmem__arena_put(tmem_arena *a, const tmem_arena_name *nm,
                    const void *payload, uint32_t len, unsigned codec,
                    uint32_t hash, uint32_t *h, uint32_t *gen);
/* Appends an ALIAS record named nm for target (gen tgen), whose reference
 * the caller holds for it.  Returns 0 and sets *h, *gen (ref 1, aux =
 * target), or
 * -ENOSPC / -ENOMEM as tmem__arena_put. */
int tmem__arena_alias(tmem_arena *a, const tmem_arena_name *nm,
                      uint32_t target, uint32_t tgen, uint32_t *h,
                      uint32_t *gen);
/* Reads record h (TMEM_ARENA_TRUST) as tmem__arena_read does, and when
 * compaction steps keep moving records under the lock-free read
 * (-EAGAIN), again with compaction held off: never -EAGAIN.  For the
 * store's own reads; a tenant's reader falls back to asking the daemon. */
int tmem__arena_read_stable(tmem_arena *a, uint32_t h, tmem_arena_rec *r,
                            void *payload);
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
 * segment whose move frees at least three pages, and punches it.  Returns
 * 1 if a segment was freed, 0 if none was worth it, -ENOMEM / -ENOSPC if
 * it had to stop (what was moved stays moved). */
int tmem__arena_compact_step(tmem_arena *a);
/* True when dead bytes held pass a quarter of the data segments held. */
bool tmem__arena_wants_compaction(tmem_arena *a);
/* The client `owner` is gone: its owner heads close their segments (an
 * empty one is given back whole; one another owner shares the head with
 * becomes a closed segment like any other). */
void tmem__arena_owner_gone(tmem_arena *a, uint32_t owner);
/* Gives back every dead page not given back yet.  Returns the pages. */
uint64_t tmem__arena_trim(tmem_arena *a);
/* Dead pages waiting to be given back (a hint: no lock). */
uint64_t tmem__arena_dead_pages(tmem_arena *a);

void tmem__arena_stats(tmem_arena *a, tmem_arena_stats *out);

#endif
