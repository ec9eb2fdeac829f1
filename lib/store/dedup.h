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

typedef uint32_t (*tmem_dedup_hash_fn)(void *ctx, uint32_t ref);
/* Returns nonzero if ref is the page sought (and took a reference). */
typedef int (*tmem_dedup_match_fn)(void *ctx, uint32_t ref);

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
/* Calls match on each ref stored under hash h until it returns nonzero;
 * returns that ref, or 0. */
uint32_t tmem__dedup_find_locked(tmem_dedup *d, uint32_t h,
                                 tmem_dedup_match_fn match, void *ctx);
/* Adds ref under hash h.  Returns 0, -ENOMEM or -ENOSPC. */
int tmem__dedup_insert_locked(tmem_dedup *d, uint32_t h, uint32_t ref,
                              tmem_dedup_hash_fn hash, void *ctx);
/* Removes ref (stored under hash h). */
void tmem__dedup_remove_locked(tmem_dedup *d, uint32_t h, uint32_t ref,
                               tmem_dedup_hash_fn hash, void *ctx);
/* Frees the table and gives back its charge. */
void tmem__dedup_fini(tmem_dedup *d);

/* ---- test hooks of the blob layer (blob.c) ---------------------------- */

/* Makes every page hash to h (on != 0): dedup must still keep distinct
 * pages apart by comparing them in full. */
void tmem__blob_test_force_hash(tmem_blobstore *bs, int on, uint32_t h);
/* Lowers the reference count limit (default UINT32_MAX - 1). */
void tmem__blob_test_ref_max(tmem_blobstore *bs, uint32_t max);
/* Compacts every allocator shard (force: all partly used segments).
 * Returns segments freed, or -ENOMEM. */
int tmem__blobstore_compact(tmem_blobstore *bs, int force);

#endif
