/*
 * Slots: tswap's frontswap offsets (type 0).  A stored page, and the copy
 * a resident page keeps (COPY), each hold one slot.
 *
 * Invariants (all under t->lock; the fault path only reads a page's slot
 * number while it owns the page):
 *   - a slot is in exactly one place: held by a page, in flushq (to be
 *     invalidated in the store), in free (invalidated: reusable), or in
 *     deferred (kept for fork children);
 *   - a slot goes to free only after the store forgot it, so a reused
 *     slot never meets a late invalidate of its previous page;
 *   - fork: a child reads the slots its memory referred to at the fork.
 *     epoch[s] is the number of forks when s was last stored; the child of
 *     fork number f may read s when epoch[s] < f.  So while a child newer
 *     than epoch[s] lives, s is neither freed nor stored over: it waits in
 *     deferred, and a changed page gets a new slot.
 */
#include "tswap/tswap_internal.h"

#include <errno.h>
#include <string.h>

#define SLOT_U32(v) ((uint32_t *)(v)->p)

int tswap__slots_init(tmem_tswap *t)
{
    struct ts_slots *s = &t->slots;
    s->max = t->cfg.max_stored;
    s->free.esize = s->epoch.esize = sizeof(uint32_t);
    s->flushq.esize = sizeof(uint64_t); /* as invalidate_batch takes them */
    s->deferred.esize = sizeof(struct ts_deferred);
    int rc = tmem_frontswap_init(t->fs, 0, s->max);
    if (rc < 0)
        tswap__say(t, "frontswap type 0 (%llu pages): %s",
                   (unsigned long long)s->max, tmem_strerror(rc));
    return rc;
}

void tswap__slots_fini(tmem_tswap *t)
{
    struct ts_slots *s = &t->slots;
    tswap__vec_free(t, &s->free);
    tswap__vec_free(t, &s->flushq);
    tswap__vec_free(t, &s->epoch);
    tswap__vec_free(t, &s->deferred);
}

/* A slot for a page about to be stored.  Returns it, or -ENOSPC when
 * every offset is in use, -ENOMEM. */
int64_t tswap__slot_alloc_locked(tmem_tswap *t)
{
    struct ts_slots *s = &t->slots;
    tswap__assert_locked(t);
    if (s->free.len)
        return SLOT_U32(&s->free)[--s->free.len];
    if (s->fresh >= s->max)
        return -ENOSPC;
    if (tswap__vec_reserve(t, &s->epoch, s->fresh + 1) < 0)
        return -ENOMEM;
    SLOT_U32(&s->epoch)[s->fresh] = 0;
    return (int64_t)s->fresh++;
}

/* True when a live fork child may read slot (so it must stay as is). */
bool tswap__slot_shared_locked(tmem_tswap *t, uint32_t slot)
{
    tswap__assert_locked(t);
    return t->slots.newest_live > SLOT_U32(&t->slots.epoch)[slot];
}

/* The store accepted a page into slot. */
void tswap__slot_stored_locked(tmem_tswap *t, uint32_t slot)
{
    tswap__assert_locked(t);
    SLOT_U32(&t->slots.epoch)[slot] = t->slots.fork_epoch;
}

/* A page lets go of slot: to be invalidated, or kept for children. */
void tswap__slot_release_locked(tmem_tswap *t, uint32_t slot)
{
    struct ts_slots *s = &t->slots;
    tswap__assert_locked(t);
    if (t->is_child)
        return; /* the parent's slots: only it frees them */
    if (tswap__slot_shared_locked(t, slot)) {
        struct ts_deferred d = {slot, SLOT_U32(&s->epoch)[slot]};
        if (tswap__vec_push(t, &s->deferred, &d) == 0)
            return;
    } else {
        uint64_t off = slot;
        if (tswap__vec_push(t, &s->flushq, &off) == 0)
            return;
    }
    /* No memory for the queue: forget it now, and never reuse the
     * number (it leaks one offset, never a page). */
    tmem_frontswap_invalidate_page(t->fs, 0, slot);
}

/* The store already forgot slot (a refused store): reusable at once. */
void tswap__slot_forget_locked(tmem_tswap *t, uint32_t slot)
{
    tswap__assert_locked(t);
    if (tswap__vec_push(t, &t->slots.free, &slot) < 0)
        return; /* leaks the number only */
}

/* Invalidates the queued slots in batches and makes them reusable. */
void tswap__flush_commit_locked(tmem_tswap *t)
{
    struct ts_slots *s = &t->slots;
    tswap__assert_locked(t);
    if (s->flushq.len == 0)
        return;
    /* Exactly 64 offsets per call, the tail padded with offsets past the
     * type (ignored): tmem_frontswap_invalidate_batch mis-splits other
     * counts (it overruns its 64-entry chunk; reported). */
    size_t n = s->flushq.len, padded = (n + 63) & ~(size_t)63;
    if (tswap__vec_reserve(t, &s->flushq, padded) < 0) {
        for (size_t i = 0; i < n; i++)
            tmem_frontswap_invalidate_page(t->fs, 0,
                                           ((uint64_t *)s->flushq.p)[i]);
    } else {
        uint64_t *offs = s->flushq.p;
        for (size_t i = n; i < padded; i++)
            offs[i] = UINT64_MAX;
        for (size_t i = 0; i < padded; i += 64)
            tmem_frontswap_invalidate_batch(t->fs, 0, offs + i, 64, NULL);
    }
    uint64_t *offs = s->flushq.p;
    /* A failed invalidate (daemon gone) leaves nothing a later store
     * would meet: the next put of the offset replaces it anyway. */
    if (tswap__vec_reserve(t, &s->free, s->free.len + s->flushq.len) == 0)
        for (size_t i = 0; i < s->flushq.len; i++)
            SLOT_U32(&s->free)[s->free.len++] = (uint32_t)offs[i];
    s->flushq.len = 0;
}

/* Children came or went: recompute the newest live child and release the
 * deferred slots no live child can read any more. */
void tswap__kids_changed_locked(tmem_tswap *t)
{
    struct ts_slots *s = &t->slots;
    tswap__assert_locked(t);
    uint32_t newest = t->fk.untracked ? UINT32_MAX : 0;
    for (int k = 0; k < atomic_load(&t->fk.nkids); k++)
        if (t->fk.kids[k].epoch > newest)
            newest = t->fk.kids[k].epoch;
    s->newest_live = newest;
    struct ts_deferred *d = s->deferred.p;
    size_t keep = 0;
    for (size_t i = 0; i < s->deferred.len; i++) {
        if (d[i].epoch < newest)
            d[keep++] = d[i];
        else
            tswap__slot_release_locked(t, d[i].slot);
    }
    s->deferred.len = keep;
    tswap__flush_commit_locked(t);
}
