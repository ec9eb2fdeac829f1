/*
 * The staging area and its recycled frames.
 *
 * Staging is TS_STG_SLOTS pages of the private heap registered MISSING
 * with a second userfaultfd that has no event features, so the evictor's
 * own MADV_DONTNEED there never waits for the monitor.  Every slot is in
 * exactly one of four conditions:
 *   empty   missing; its bit is set in stg.empty; a MOVE destination;
 *   staged  the evictor moved a page there (neither bit: the evictor's);
 *   frame   present, free; its bit is set in stg.frames (a stored page's
 *           frame kept for the next page-in: decode into it, MOVE it in);
 *   taken   a page-in took the frame (neither bit) and either moves it
 *           into a region (the slot becomes empty) or gives it back.
 * A missing slot is never touched (no SIGBUS feature there: a touch would
 * wait forever).  The bitmaps are lock-free so that a signal handler can
 * take a frame.  Staging is MADV_DONTFORK: a child has none, and the
 * parent's frames are never shared with a child (MOVE refuses shared
 * pages).
 *
 * Frames come from evictions only: in a steady state each page-in is
 * followed by an eviction, which leaves a frame.  (Filling empty slots
 * with zeroed pages from the evictor when page-ins outrun evictions was
 * measured: every page-in then moved a frame, but the evictor running on
 * the other CPU turned each MOVE's TLB flush into an IPI and doubled the
 * page-in p99, for no p50 gain above the noise.)
 */
#include "tswap/tswap_internal.h"

#include "common/privheap.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STG_BYTES ((size_t)TS_STG_SLOTS * TS_PAGE)

static int sys_madvise(void *p, size_t len, int advice)
{
    return syscall(SYS_madvise, p, len, advice) == 0 ? 0 : -errno;
}

int tswap__staging_init(tmem_tswap *t)
{
    char *base = tmem__ph_aligned(TS_PAGE, STG_BYTES);
    if (!base)
        return -ENOMEM;
    atomic_fetch_add(&t->c.meta_bytes, tmem__ph_held(base));
    sys_madvise(base, STG_BYTES, MADV_NOHUGEPAGE);
    int rc = sys_madvise(base, STG_BYTES, MADV_DONTFORK);
    if (rc == 0)
        rc = tswap__uffd_register(t->sfd, (uintptr_t)base, STG_BYTES, false);
    t->stg.base = base; /* fini undoes what was done */
    if (rc < 0) {
        tswap__say(t, "staging area: %s", strerror(-rc));
        tswap__staging_fini(t);
        return rc;
    }
    for (int i = 0; i < TS_STG_WORDS; i++) {
        atomic_store(&t->stg.frames[i], 0);
        atomic_store(&t->stg.empty[i], ~0ull);
    }
    atomic_store(&t->stg.nframes, 0);
    return 0;
}

/* Gives the staging area back to the private heap as it found it:
 * unregistered (the heap reuses it: a missing page of a registered range
 * would wait forever), empty, inherited by forks again. */
void tswap__staging_fini(tmem_tswap *t)
{
    char *base = t->stg.base;
    if (!base)
        return;
    if (t->sfd >= 0)
        tswap__uffd_unregister(t->sfd, (uintptr_t)base, STG_BYTES);
    sys_madvise(base, STG_BYTES, MADV_DONTNEED);
    sys_madvise(base, STG_BYTES, MADV_DOFORK);
    atomic_fetch_sub(&t->c.meta_bytes, tmem__ph_held(base));
    tmem__ph_free(base);
    t->stg.base = NULL;
}

/* Takes a free frame.  Returns its slot, or -1 when none is free (or in
 * a child, which has no staging).  Async-signal-safe. */
int tswap__frame_take(tmem_tswap *t)
{
    if (!t->stg.base ||
        atomic_load_explicit(&t->stg.nframes, memory_order_relaxed) == 0)
        return -1;
    uint32_t h =
        atomic_fetch_add_explicit(&t->stg.hint, 1, memory_order_relaxed);
    for (int k = 0; k < TS_STG_WORDS; k++) {
        _Atomic uint64_t *w = &t->stg.frames[(h + (uint32_t)k) % TS_STG_WORDS];
        uint64_t v = atomic_load(w);
        while (v) {
            uint64_t bit = v & -v;
            uint64_t was = atomic_fetch_and(w, ~bit);
            if (was & bit) {
                atomic_fetch_sub(&t->stg.nframes, 1);
                return (int)((w - t->stg.frames) * 64 + __builtin_ctzll(bit));
            }
            v = was & ~bit;
        }
    }
    return -1;
}

/* Gives a taken frame back (still present). */
void tswap__frame_put(tmem_tswap *t, int slot)
{
    atomic_fetch_or(&t->stg.frames[slot / 64], 1ull << (slot % 64));
    atomic_fetch_add(&t->stg.nframes, 1);
}

/* A taken frame was moved into a region: its slot is missing again. */
void tswap__slot_emptied(tmem_tswap *t, int slot)
{
    atomic_fetch_or(&t->stg.empty[slot / 64], 1ull << (slot % 64));
}

/* Claims up to n empty slots for an eviction, lowest first (so a run of
 * victims lands in a run of slots: one MOVE).  Caller holds t->lock.
 * Returns how many. */
size_t tswap__empty_claim(tmem_tswap *t, int *out, size_t n)
{
    size_t k = 0;
    for (int i = 0; i < TS_STG_WORDS && k < n; i++) {
        uint64_t v = atomic_load(&t->stg.empty[i]), take = 0;
        while (v && k < n) {
            uint64_t bit = v & -v;
            take |= bit;
            out[k++] = i * 64 + __builtin_ctzll(bit);
            v &= ~bit;
        }
        /* Only t->lock's holder clears empty bits: what we saw stays. */
        atomic_fetch_and(&t->stg.empty[i], ~take);
    }
    return k;
}

/* A staged slot is done with.  how: TS_STG_GONE (its page was moved
 * back: the slot is missing), TS_STG_KEEP (present: keep it as a frame
 * while there are fewer than the cap), TS_STG_DROP (present: give its
 * memory back). */
void tswap__staged_done(tmem_tswap *t, int slot, int how)
{
    if (how == TS_STG_KEEP && atomic_load(&t->stg.nframes) < TS_FRAMES_CAP) {
        tswap__frame_put(t, slot);
        return;
    }
    if (how != TS_STG_GONE)
        sys_madvise(tswap__stg_addr(t, slot), TS_PAGE, MADV_DONTNEED);
    tswap__slot_emptied(t, slot);
}
