/*
 * The dedup index of the blob layer: one shard of an open-addressing hash
 * table (linear probing, backward-shift deletion) of 28-bit blob refs
 * (nonzero), keyed by the low 32 bits of the content hash.  A slot is 4
 * bytes (the ref and a 4-bit hash tag); the full hash of a ref is asked of
 * the blob layer through a callback, so nothing is stored twice.
 *
 * Every function but lock/unlock needs the shard's lock held.  Load is kept
 * between 1/8 and 3/4; a failed shrink is harmless.  The table's memory is
 * charged to the shard's account (acct.h, may be NULL): a grow the budget
 * refuses is skipped while the table is under 15/16 full (probing still
 * ends), and is -ENOSPC past that; a failed allocation is -ENOMEM.
 */
#ifndef TMEM_STORE_DEDUP_H
#define TMEM_STORE_DEDUP_H

#include <stdatomic.h>
#include <stdint.h>

#include "store/acct.h"
#include "store/blob.h"
#include "store/spin.h"

/* Slots a lookup probes at most (1 KiB of tags): past it the lookup
 * stops.  A random key at load 3/4 probes ~8.5 slots on a miss; runs this
 * long are rare in a large table (a few in 10^5 puts went unindexed at 64)
 * and are what a forged hash would build. */
#define TMEM_DEDUP_MAX_PROBE 256u

typedef uint32_t (*tmem_dedup_hash_fn)(void *ctx, uint32_t ref);
/* Returns 1 if ref is the page sought (and took a reference), 0 to go on,
 * -1 to stop the lookup. */
typedef int (*tmem_dedup_match_fn)(void *ctx, uint32_t ref);

/* Tables made or let go of outside the lock (tmem__dedup_prepare, then
 * tmem__dedup_spare_drop after the unlock): so the index never calls the
 * allocator under its spinlock but on a rare race. */
typedef struct tmem_dedup_spare {
    uint32_t *slot; /* a table of n slots, charged, for a resize */
    uint32_t n;
    uint32_t *old;  /* a table the index let go of, still charged */
} tmem_dedup_spare;

typedef struct tmem_dedup {
    atomic_int lock;
    uint32_t *slot; /* tagged ref or 0 (empty) */
    uint32_t n;     /* slots, when slot != NULL */
    uint32_t count;
    _Atomic uint64_t bytes; /* memory held by slot[] */
    tmem_acct *acct;        /* where bytes are charged */
} __attribute__((aligned(64))) tmem_dedup;

void tmem__dedup_lock(tmem_dedup *d);
void tmem__dedup_unlock(tmem_dedup *d);
/* Calls match on each ref stored under hash h (and tag-equal ones: match
 * checks the full hash) until it returns 1; returns that ref, or 0.  Sets
 * *stopped when match said -1 or TMEM_DEDUP_MAX_PROBE slots were probed:
 * the content may be there, and must not be inserted. */
uint32_t tmem__dedup_find_locked(tmem_dedup *d, uint32_t h,
                                 tmem_dedup_match_fn match, void *ctx,
                                 int *stopped);
/* Without the lock: makes in sp the table the next insert will resize to
 * (grown, or shrunk from 1/8 load), if any (sp->slot NULL otherwise, or
 * when malloc or the budget refused: the insert then tries itself). */
void tmem__dedup_prepare(tmem_dedup *d, tmem_dedup_spare *sp);
/* Without the lock: frees what sp still holds. */
void tmem__dedup_spare_drop(tmem_dedup *d, tmem_dedup_spare *sp);
/* Adds ref under hash h, resizing into sp's table when it fits (sp may be
 * NULL; the old table goes to sp->old).  Returns 0, -ENOMEM or -ENOSPC. */
int tmem__dedup_insert_locked(tmem_dedup *d, uint32_t h, uint32_t ref,
                              tmem_dedup_hash_fn hash, void *ctx,
                              tmem_dedup_spare *sp);
/* Removes ref (stored under hash h); nothing if it is not in the table.
 * A table left empty goes to sp->old (sp may be NULL: freed at once). */
void tmem__dedup_remove_locked(tmem_dedup *d, uint32_t h, uint32_t ref,
                               tmem_dedup_hash_fn hash, void *ctx,
                               tmem_dedup_spare *sp);
/* Frees the table and gives back its charge. */
void tmem__dedup_fini(tmem_dedup *d);

/* ---- test hooks of the blob layer (blob.c) ---------------------------- */

/* Makes every page hash to h (on != 0): dedup must still keep distinct
 * pages apart by comparing them in full, and bound the candidates. */
void tmem__blob_test_force_hash(tmem_blobstore *bs, int on, uint32_t h);
/* Lowers the reference count limit (default UINT32_MAX - 1). */
void tmem__blob_test_ref_max(tmem_blobstore *bs, uint32_t max);
/* Compacts every allocator shard (force: all partly used segments).
 * Returns segments freed, or -ENOMEM. */
int tmem__blobstore_compact(tmem_blobstore *bs, int force);

#endif
