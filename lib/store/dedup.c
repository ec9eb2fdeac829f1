/*
 * Dedup index shard (dedup.h).  Owns slot[]: n slots (n >= 64, grown by
 * 1.5x so the load stays between 1/2 and 3/4 while growing), each 0
 * (empty) or a 28-bit ref with 4 more hash bits on top as a tag, so most
 * probes that cannot match never touch the blob's entry.  Home slot: the
 * hash's low 24 bits scaled to n (fastrange); linear probing from there.
 * Invariant: every ref is reachable from its home slot without crossing an
 * empty slot (backward-shift deletion, no tombstones).  A shard left empty
 * frees its table (slot NULL), so it holds no memory.
 */
#include <errno.h>

#include "common/mem.h"
#include "store/dedup.h"

#define MIN_SLOTS 64u
#define REF_MASK ((1u << 28) - 1)

static uint32_t home(uint32_t h, uint32_t n)
{
    return (uint32_t)(((uint64_t)(h << 8) * n) >> 32);
}

static uint32_t tag(uint32_t h)
{
    return ((h >> 24) & 0xfu) << 28;
}

static uint32_t next(uint32_t i, uint32_t n)
{
    return i + 1 == n ? 0 : i + 1;
}

void tmem__dedup_lock(tmem_dedup *d)
{
    tmem__spin_lock(&d->lock);
}

void tmem__dedup_unlock(tmem_dedup *d)
{
    tmem__spin_unlock(&d->lock);
}

uint32_t tmem__dedup_find_locked(tmem_dedup *d, uint32_t h,
                                 tmem_dedup_match_fn match, void *ctx)
{
    if (!d->slot)
        return 0;
    uint32_t t = tag(h);
    for (uint32_t i = home(h, d->n); d->slot[i]; i = next(i, d->n))
        if ((d->slot[i] & ~REF_MASK) == t && match(ctx, d->slot[i] & REF_MASK))
            return d->slot[i] & REF_MASK;
    return 0;
}

static void place(uint32_t *slot, uint32_t n, uint32_t h, uint32_t v)
{
    uint32_t i = home(h, n);
    while (slot[i])
        i = next(i, n);
    slot[i] = v;
}

/* Rebuilds the table with n slots, the new one charged while both exist.
 * Returns 0, -ENOMEM or -ENOSPC (the table is unchanged). */
static int resize_locked(tmem_dedup *d, uint32_t n, tmem_dedup_hash_fn hash,
                         void *ctx)
{
    uint32_t *s = tmem__calloc(n, sizeof *s);
    if (!s)
        return -ENOMEM;
    uint64_t held = tmem__held(s);
    if (tmem__acct_charge(d->acct, held) < 0) {
        tmem__free(s);
        return -ENOSPC;
    }
    for (uint32_t i = 0; d->slot && i < d->n; i++)
        if (d->slot[i])
            place(s, n, hash(ctx, d->slot[i] & REF_MASK), d->slot[i]);
    tmem__acct_uncharge(d->acct, atomic_load(&d->bytes));
    tmem__free(d->slot);
    d->slot = s;
    d->n = n;
    atomic_store_explicit(&d->bytes, held, memory_order_relaxed);
    return 0;
}

int tmem__dedup_insert_locked(tmem_dedup *d, uint32_t h, uint32_t ref,
                              tmem_dedup_hash_fn hash, void *ctx)
{
    uint32_t n = d->slot ? d->n : 0;
    if ((uint64_t)(d->count + 1) * 4 > (uint64_t)n * 3) {
        uint32_t grown = n ? n + n / 2 : MIN_SLOTS;
        int r = grown < n ? -ENOMEM : resize_locked(d, grown, hash, ctx);
        /* over budget: a fuller table still probes to an empty slot */
        if (r == -ENOSPC && (uint64_t)(d->count + 1) * 16 <= (uint64_t)n * 15)
            r = 0;
        if (r < 0)
            return r;
    }
    place(d->slot, d->n, h, ref | tag(h));
    d->count++;
    return 0;
}

/* Distance from slot a forward to slot b. */
static uint32_t dist(uint32_t a, uint32_t b, uint32_t n)
{
    return b >= a ? b - a : b + n - a;
}

void tmem__dedup_remove_locked(tmem_dedup *d, uint32_t h, uint32_t ref,
                               tmem_dedup_hash_fn hash, void *ctx)
{
    uint32_t n = d->n, i = home(h, n);
    while ((d->slot[i] & REF_MASK) != ref)
        i = next(i, n);
    /* Backward shift: pull a later entry of the run into the hole unless
     * its home lies after the hole. */
    for (uint32_t j = next(i, n); d->slot[j]; j = next(j, n)) {
        uint32_t hj = home(hash(ctx, d->slot[j] & REF_MASK), n);
        if (dist(hj, j, n) >= dist(i, j, n)) {
            d->slot[i] = d->slot[j];
            i = j;
        }
    }
    d->slot[i] = 0;
    d->count--;
    if (d->count == 0) { /* an empty shard holds nothing */
        tmem__dedup_fini(d);
        return;
    }
    if (n > MIN_SLOTS && (uint64_t)d->count * 8 < n)
        resize_locked(d, n / 2 > MIN_SLOTS ? n / 2 : MIN_SLOTS, hash, ctx);
}

void tmem__dedup_fini(tmem_dedup *d)
{
    tmem__free(d->slot);
    d->slot = NULL;
    tmem__acct_uncharge(d->acct, atomic_exchange(&d->bytes, 0));
}
