/*
 * Dedup index shard (dedup.h).  Owns slot[]: n slots (n >= 64, grown by
 * 1.5x so the load stays between 1/2 and 3/4 while growing), each 0
 * (empty) or a 28-bit ref with 4 more hash bits on top as a tag, so most
 * probes that cannot match never touch the blob's entry.  Home slot: the
 * hash's low 24 bits scaled to n (fastrange); linear probing from there.
 * Invariant: every ref is reachable from its home slot without crossing an
 * empty slot (backward-shift deletion, no tombstones).  A lookup probes at
 * most TMEM_DEDUP_MAX_PROBE slots; a ref a bound kept out of the table is
 * simply not found by a remove.  A shard left empty
 * frees its table (slot NULL), so it holds no memory.
 */
#include <errno.h>
#include <stdbool.h>

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
                                 tmem_dedup_match_fn match, void *ctx,
                                 int *stopped)
{
    *stopped = 0;
    if (!d->slot)
        return 0;
    uint32_t t = tag(h), probed = 0;
    for (uint32_t i = home(h, d->n); d->slot[i]; i = next(i, d->n)) {
        if (++probed > TMEM_DEDUP_MAX_PROBE) {
            *stopped = 1;
            return 0;
        }
        if ((d->slot[i] & ~REF_MASK) != t)
            continue;
        int m = match(ctx, d->slot[i] & REF_MASK);
        if (m > 0)
            return d->slot[i] & REF_MASK;
        if (m < 0) {
            *stopped = 1;
            return 0;
        }
    }
    return 0;
}

static void place(uint32_t *slot, uint32_t n, uint32_t h, uint32_t v)
{
    uint32_t i = home(h, n);
    while (slot[i])
        i = next(i, n);
    slot[i] = v;
}

static uint32_t slots(const tmem_dedup *d)
{
    return d->slot ? d->n : 0;
}

/* True when one more entry would pass 3/4 load: the table must grow. */
static bool full(const tmem_dedup *d)
{
    return (uint64_t)(d->count + 1) * 4 > (uint64_t)slots(d) * 3;
}

/* The size a table of n slots grows to, or 0 past 2^32. */
static uint32_t grown_size(uint32_t n)
{
    uint32_t g = n ? n + n / 2 : MIN_SLOTS;
    return g < n ? 0 : g;
}

/* A zeroed table of n slots, charged.  NULL when malloc or the budget
 * refuses (*err: -ENOMEM or -ENOSPC). */
static uint32_t *table_new(tmem_dedup *d, uint32_t n, int *err)
{
    uint32_t *s = tmem__calloc(n, sizeof *s);
    if (!s) {
        *err = -ENOMEM;
        return NULL;
    }
    if (tmem__acct_charge(d->acct, tmem__held(s)) < 0) {
        tmem__free(s);
        *err = -ENOSPC;
        return NULL;
    }
    return s;
}

/* The size a table at 1/8 load shrinks to, or 0. */
static uint32_t shrink_to(const tmem_dedup *d)
{
    if (!d->slot || d->n <= MIN_SLOTS || (uint64_t)d->count * 8 >= d->n)
        return 0;
    return d->n / 2 > MIN_SLOTS ? d->n / 2 : MIN_SLOTS;
}

void tmem__dedup_prepare(tmem_dedup *d, tmem_dedup_spare *sp)
{
    sp->slot = sp->old = NULL;
    tmem__dedup_lock(d);
    uint32_t n = full(d) ? grown_size(slots(d)) : shrink_to(d);
    tmem__dedup_unlock(d);
    int err;
    tmem__fault_optional(1); /* ahead of need: the insert tries again */
    if (n && (sp->slot = table_new(d, n, &err)) != NULL)
        sp->n = n;
    tmem__fault_optional(0);
}

void tmem__dedup_spare_drop(tmem_dedup *d, tmem_dedup_spare *sp)
{
    for (int k = 0; k < 2; k++) {
        uint32_t **t = k ? &sp->old : &sp->slot;
        if (!*t)
            continue;
        tmem__acct_uncharge(d->acct, tmem__held(*t));
        tmem__free(*t);
        *t = NULL;
    }
}

/* Lets go of table t (charged): into sp->old to be freed after the lock
 * is dropped, or at once without sp. */
static void table_old(tmem_dedup *d, uint32_t *t, uint64_t held,
                      tmem_dedup_spare *sp)
{
    if (sp && !sp->old) {
        sp->old = t;
        return;
    }
    tmem__acct_uncharge(d->acct, held);
    tmem__free(t);
}

/* Rebuilds the table with n slots (into spare when it has that size),
 * the new one charged while both exist.  Returns 0, -ENOMEM or -ENOSPC
 * (the table is unchanged). */
static int resize_locked(tmem_dedup *d, uint32_t n, tmem_dedup_hash_fn hash,
                         void *ctx, tmem_dedup_spare *sp)
{
    uint32_t *s;
    int err;
    if (sp && sp->slot && sp->n == n) {
        s = sp->slot;
        sp->slot = NULL;
    } else if (!(s = table_new(d, n, &err))) {
        return err;
    }
    uint64_t held = tmem__held(s);
    for (uint32_t i = 0; d->slot && i < d->n; i++)
        if (d->slot[i])
            place(s, n, hash(ctx, d->slot[i] & REF_MASK), d->slot[i]);
    if (d->slot)
        table_old(d, d->slot, atomic_load(&d->bytes), sp);
    d->slot = s;
    d->n = n;
    atomic_store_explicit(&d->bytes, held, memory_order_relaxed);
    return 0;
}

int tmem__dedup_insert_locked(tmem_dedup *d, uint32_t h, uint32_t ref,
                              tmem_dedup_hash_fn hash, void *ctx,
                              tmem_dedup_spare *sp)
{
    uint32_t n = slots(d);
    if (full(d)) {
        uint32_t grown = grown_size(n);
        int r = !grown ? -ENOMEM : resize_locked(d, grown, hash, ctx, sp);
        /* over budget: a fuller table still probes to an empty slot */
        if (r == -ENOSPC && (uint64_t)(d->count + 1) * 16 <= (uint64_t)n * 15)
            r = 0;
        if (r < 0)
            return r;
    } else if (sp && sp->slot && sp->n == shrink_to(d)) {
        resize_locked(d, sp->n, hash, ctx, sp); /* cannot fail: no malloc */
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
                               tmem_dedup_hash_fn hash, void *ctx,
                               tmem_dedup_spare *sp)
{
    if (!d->slot)
        return;
    uint32_t n = d->n, i = home(h, n);
    while ((d->slot[i] & REF_MASK) != ref) {
        if (!d->slot[i])
            return; /* never indexed (a lookup bound stopped its insert) */
        i = next(i, n);
    }
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
        if (sp && !sp->old) { /* freed once the lock is dropped */
            sp->old = d->slot;
            d->slot = NULL;
            atomic_store(&d->bytes, 0);
        } else {
            tmem__dedup_fini(d);
        }
        return;
    }
    /* Shrinking is left to the next insert's prepare: no allocation
     * under the lock here.  (A table at 1/8 load wastes its slots until
     * then, or until it empties and is freed above.) */
}

void tmem__dedup_fini(tmem_dedup *d)
{
    tmem__free(d->slot);
    d->slot = NULL;
    tmem__acct_uncharge(d->acct, atomic_exchange(&d->bytes, 0));
}
