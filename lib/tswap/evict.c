/*
 * The evictor: one thread that keeps resident pages at the target.
 *
 * Each interval it scans the regions' written bits (PAGEMAP_SCAN with
 * PM_SCAN_WP_MATCHING, which write-protects them again, asynchronously):
 * a written page gets its CLOCK reference bit and a working-set stamp; a
 * written page that kept a copy in the store and is not fresh (its first
 * scan after a page-in says nothing: MOVE maps pages writable) has a
 * stale copy, flushed now.  When resident pages pass the target (a fault
 * wakes it past the target plus a slack) it sweeps the CLOCK hand and
 * evicts victims TS_BATCH at a time down to the target minus a low mark,
 * on the CPU of the fault that woke it, while that faulting thread waits
 * (follow_faults; fault.c, throttle).
 *
 * An eviction batch, under t->lock: claim the victims (RESIDENT ->
 * EVICTING), MOVE them into empty staging slots (atomic: a write before
 * the move travels with the page, a write after faults and waits for the
 * page), then per page: all zeros -> NONE (nothing stored); unchanged
 * since it came in (its hash equals its copy's) -> STORED, the copy kept;
 * else into one store_batch.  A refused store moves the page back:
 * RESIDENT, counted by reason, never lost.  A victim MOVE refuses (shared
 * with a fork child: EBUSY) stays resident.
 */
#include "tswap/tswap_internal.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct victim {
    struct ts_region *r;
    uint64_t i;     /* page array index */
    uintptr_t addr; /* in the region */
    uint32_t v;     /* the word it was claimed from */
    int stg;        /* staging slot */
    bool moved;
};

static void bump(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

void tswap__kick(tmem_tswap *t)
{
    if (atomic_exchange(&t->kick, 1) == 0)
        tswap__futex_wake(&t->kick, 1);
}

/* ---- the written-bit scan ------------------------------------------------ */

static uint8_t stamp_now(tmem_tswap *t)
{
    return (uint8_t)(atomic_load(&t->interval) % 255 + 1);
}

/* Page i was written since the last scan (or came in since). */
static void page_written(tmem_tswap *t, struct ts_pages *pg, uint64_t i)
{
    _Atomic uint32_t *w = &pg->state[i];
    uint32_t v = atomic_load(w);
    atomic_store_explicit(&pg->stamp[i], stamp_now(t), memory_order_relaxed);
    if (PS_STATE(v) == PS_NONE) {
        /* Present but NONE: an MADV_FREE'd page written again. */
        if (tswap__claim(t, w, &v, PS_PAGING_IN))
            tswap__release(t, w, 0, PS_RESIDENT | PS_REF);
        return;
    }
    if (PS_STATE(v) != PS_RESIDENT)
        return;
    if (v & PS_FRESH) {
        tswap__flags(t, w, PS_RESIDENT, PS_REF, PS_FRESH);
    } else if (v & PS_COPY) {
        if (tswap__flags(t, w, PS_RESIDENT, PS_REF, PS_COPY)) {
            tswap__slot_release_locked(t, pg->slot[i]);
            bump(&t->c.stale_flushes, 1);
        }
    } else {
        tswap__flags(t, w, PS_RESIDENT, PS_REF, 0);
    }
}

static void scan_region(tmem_tswap *t, struct ts_region *r)
{
    struct page_region vec[128];
    uintptr_t start = r->start;
    while (start < r->end) {
        struct pm_scan_arg a = {
            .size = sizeof a,
            .flags = PM_SCAN_WP_MATCHING,
            .start = start,
            .end = r->end,
            .vec = (uintptr_t)vec,
            .vec_len = sizeof vec / sizeof vec[0],
            .category_mask = PAGE_IS_PRESENT | PAGE_IS_WRITTEN,
            .return_mask = PAGE_IS_PRESENT | PAGE_IS_WRITTEN};
        long n = ioctl(t->pagemap_fd, PAGEMAP_SCAN, &a);
        if (n < 0) /* the region is going away under us */
            return;
        for (long k = 0; k < n; k++)
            for (uintptr_t p = vec[k].start; p < vec[k].end; p += TS_PAGE)
                page_written(t, r->pg, r->first + ((p - r->start) >> TS_SHIFT));
        if (a.walk_end <= start)
            return;
        start = a.walk_end;
    }
}

void tswap__scan_locked(tmem_tswap *t)
{
    tswap__assert_locked(t);
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n; k++)
        scan_region(t, tb->r[k]);
    tswap__flush_commit_locked(t);
    atomic_store_explicit(&t->last_scan_ns, tswap__now_ns(),
                          memory_order_relaxed);
}

/* ---- victims ------------------------------------------------------------- */

/* Sweeps the CLOCK hand for up to want victims: a resident, unpinned page
 * with its reference bit set loses it; one without is claimed. */
static size_t pick_locked(tmem_tswap *t, struct victim *out, size_t want)
{
    struct ts_table *tb = atomic_load(&t->table);
    size_t n = 0;
    if (!tb || tb->n == 0)
        return 0;
    for (uint64_t steps = 2 * tb->pages + 2 * tb->n + 2; steps && n < want;
         steps--) {
        if (t->hand_reg >= tb->n)
            t->hand_reg = 0, t->hand_pg = 0;
        struct ts_region *r = tb->r[t->hand_reg];
        if (t->hand_pg >= (r->end - r->start) >> TS_SHIFT) {
            t->hand_reg++, t->hand_pg = 0;
            continue;
        }
        uint64_t i = r->first + t->hand_pg;
        uintptr_t addr = r->start + (t->hand_pg++ << TS_SHIFT);
        _Atomic uint32_t *w = &r->pg->state[i];
        uint32_t v = atomic_load(w);
        if (PS_STATE(v) != PS_RESIDENT || PS_PINS(v))
            continue;
        if (v & PS_REF) {
            tswap__flags(t, w, PS_RESIDENT, 0, PS_REF);
            continue;
        }
        if (tswap__claim(t, w, &v, PS_EVICTING))
            out[n++] = (struct victim){r, i, addr, v, -1, false};
    }
    return n;
}

/* ---- moving out ---------------------------------------------------------- */

static int sys_madvise(uintptr_t p, size_t len, int advice)
{
    return syscall(SYS_madvise, p, len, advice) == 0 ? 0 : -errno;
}

/* A victim that will not move: back to RESIDENT, referenced (so the
 * hand passes it by once), or NONE when its page is gone. */
static void victim_keep(tmem_tswap *t, struct victim *x, bool gone)
{
    _Atomic uint32_t *w = &x->r->pg->state[x->i];
    if (gone && (x->v & PS_COPY))
        tswap__slot_release_locked(t, x->r->pg->slot[x->i]);
    if (gone)
        tswap__release(t, w, 0, PS_NONE);
    else
        tswap__release(t, w, PS_COPY | PS_FRESH, PS_RESIDENT | PS_REF);
    tswap__staged_done(t, x->stg, TS_STG_GONE);
}

/* One victim's MOVE failed with rc.  EBUSY: the page is shared (a fork,
 * or a pin for I/O); with no child alive, a write fault in the kernel
 * (MADV_POPULATE_WRITE, which changes no byte) makes it ours again.
 * ENOENT: the page is gone (discarded without an event).  Returns true
 * when it moved after all. */
static bool victim_failed(tmem_tswap *t, struct victim *x, int rc)
{
    size_t moved;
    if (rc == -EBUSY && atomic_load(&t->fk.nkids) == 0 &&
        sys_madvise(x->addr, TS_PAGE, MADV_POPULATE_WRITE) == 0 &&
        tswap__uffd_move(t->sfd, (uintptr_t)tswap__stg_addr(t, x->stg), x->addr,
                         TS_PAGE, &moved) == 0)
        return true;
    if (rc == -EBUSY)
        bump(&t->c.evict_busy, 1);
    victim_keep(t, x, rc == -ENOENT);
    return false;
}

/* MOVEs victims [i, j) (consecutive pages into consecutive slots). */
static void move_run(tmem_tswap *t, struct victim *x, size_t i, size_t j)
{
    while (i < j) {
        size_t moved = 0;
        int rc =
            tswap__uffd_move(t->sfd, (uintptr_t)tswap__stg_addr(t, x[i].stg),
                             x[i].addr, (j - i) * TS_PAGE, &moved);
        for (size_t k = 0; k < moved / TS_PAGE; k++)
            x[i + k].moved = true;
        i += moved / TS_PAGE;
        if (rc == 0)
            return;
        if (rc == -EAGAIN)
            continue;
        x[i].moved = victim_failed(t, &x[i], rc);
        i++;
    }
}

static void move_out(tmem_tswap *t, struct victim *x, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && x[j].r == x[i].r &&
               x[j].addr == x[j - 1].addr + TS_PAGE &&
               x[j].stg == x[j - 1].stg + 1)
            j++;
        move_run(t, x, i, j);
        i = j;
    }
}

/* ---- storing ------------------------------------------------------------- */

static bool all_zero(const void *p)
{
    const uint64_t *w = p;
    for (size_t i = 0; i < TS_PAGE / 8; i += 8) {
        uint64_t acc = w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] |
                       w[i + 5] | w[i + 6] | w[i + 7];
        if (acc)
            return false;
    }
    return true;
}

static void refusal(tmem_tswap *t, int rc)
{
    bump(&t->c.refused, 1);
    if (rc == TMEM_ENOSPC)
        bump(&t->c.refused_nospace, 1);
    else if (rc == TMEM_ENODEV)
        bump(&t->c.refused_gone, 1);
    else if (rc == -EPIPE || rc == -EPROTO || rc == -ECONNRESET ||
             rc == -ENOTCONN)
        bump(&t->c.refused_transport, 1);
    else
        bump(&t->c.refused_other, 1);
}

/* The store refused x's page (rc): move it back from staging. */
static void put_back(tmem_tswap *t, struct victim *x, int rc)
{
    _Atomic uint32_t *w = &x->r->pg->state[x->i];
    char *src = tswap__stg_addr(t, x->stg);
    size_t moved;
    int mv;
    refusal(t, rc);
    while ((mv = tswap__uffd_move(t->ufd, x->addr, (uintptr_t)src, TS_PAGE,
                                  &moved)) == -EAGAIN)
        sched_yield();
    if (mv == 0) {
        tswap__release(t, w, PS_FRESH, PS_RESIDENT | PS_REF);
        tswap__staged_done(t, x->stg, TS_STG_GONE);
        return;
    }
    if (mv != -ENOENT) /* the region is there but will not take it */
        tswap__die("cannot put back a refused page at", x->addr, mv);
    tswap__release(t, w, 0, PS_NONE); /* its region went away */
    tswap__staged_done(t, x->stg, TS_STG_DROP);
}

struct pending {
    uint64_t off[TS_BATCH];
    const void *page[TS_BATCH];
    uint64_t hash[TS_BATCH];
    struct victim *x[TS_BATCH];
    size_t n;
};

/* Decides what happens to one moved page; queues it in p to be stored.
 * Returns 1 when the page is out now (dropped), 0 when queued or kept. */
static int sort_page(tmem_tswap *t, struct victim *x, struct pending *p)
{
    struct ts_pages *pg = x->r->pg;
    _Atomic uint32_t *w = &pg->state[x->i];
    const char *data = tswap__stg_addr(t, x->stg);
    if (all_zero(data)) {
        if (x->v & PS_COPY)
            tswap__slot_release_locked(t, pg->slot[x->i]);
        tswap__release(t, w, 0, PS_NONE);
        tswap__staged_done(t, x->stg, TS_STG_DROP);
        bump(&t->c.zero_drops, 1);
        return 1;
    }
    uint64_t h = XXH3_64bits(data, TS_PAGE);
    if ((x->v & PS_COPY) && h == pg->hash[x->i]) {
        tswap__release(t, w, 0, PS_STORED);
        tswap__staged_done(t, x->stg, TS_STG_KEEP);
        bump(&t->c.clean_drops, 1);
        return 1;
    }
    int64_t s;
    if ((x->v & PS_COPY) && !tswap__slot_shared_locked(t, pg->slot[x->i])) {
        s = pg->slot[x->i]; /* stored over: the old copy goes */
    } else {
        if (x->v & PS_COPY)
            tswap__slot_release_locked(t, pg->slot[x->i]);
        s = tswap__slot_alloc_locked(t);
    }
    if (s < 0) {
        put_back(t, x, (int)s);
        return 0;
    }
    p->off[p->n] = (uint64_t)s;
    p->page[p->n] = data;
    p->hash[p->n] = h;
    p->x[p->n++] = x;
    return 0;
}

/* Stores the queued pages in one batch.  Returns how many went out. */
static size_t store_pending(tmem_tswap *t, struct pending *p)
{
    int res[TS_BATCH];
    size_t out = 0;
    if (!p->n)
        return 0;
    tmem_frontswap_store_batch(t->fs, 0, p->off, p->page, p->n, res);
    for (size_t k = 0; k < p->n; k++) {
        struct victim *x = p->x[k];
        if (res[k] != 0) {
            tswap__slot_forget_locked(t, (uint32_t)p->off[k]);
            put_back(t, x, res[k]);
            continue;
        }
        x->r->pg->slot[x->i] = (uint32_t)p->off[k];
        x->r->pg->hash[x->i] = p->hash[k];
        tswap__slot_stored_locked(t, (uint32_t)p->off[k]);
        tswap__release(t, &x->r->pg->state[x->i], 0, PS_STORED);
        tswap__staged_done(t, x->stg, TS_STG_KEEP);
        out++;
    }
    bump(&t->c.stores, out);
    return out;
}

/* Evicts the claimed victims.  Returns the pages put out. */
static size_t evict_batch_locked(tmem_tswap *t, struct victim *x, size_t n)
{
    int stg[TS_BATCH];
    size_t k = tswap__empty_claim(t, stg, n), out = 0;
    for (size_t i = k; i < n; i++) { /* no room in staging (cannot be) */
        tswap__release(t, &x[i].r->pg->state[x[i].i], PS_COPY | PS_FRESH,
                       PS_RESIDENT | PS_REF);
    }
    for (size_t i = 0; i < k; i++)
        x[i].stg = stg[i];
    move_out(t, x, k);
    struct pending p = {.n = 0};
    for (size_t i = 0; i < k; i++)
        if (x[i].moved)
            out += (size_t)sort_page(t, &x[i], &p);
    out += store_pending(t, &p);
    tswap__flush_commit_locked(t);
    bump(&t->c.evicted, out);
    return out;
}

/* ---- passes -------------------------------------------------------------- */

/* Puts out batches while resident pages are over the target minus a low
 * mark, taking t->lock for each batch (or only if it is free, when
 * direct).  Returns the pages put out, or -1 when direct and the lock was
 * taken. */
static int64_t evict_down(tmem_tswap *t, bool direct)
{
    struct victim x[TS_BATCH];
    int64_t total = 0;
    while (!atomic_load(&t->stop)) {
        if (!direct)
            tswap__lock(t);
        else if (!tswap__trylock(t))
            return total ? total : -1;
        /* Under the lock: a concurrent pass has put its batch out. */
        uint64_t tg = atomic_load(&t->target), goal = tg - tg / 64;
        int64_t res = atomic_load(&t->c.resident);
        uint64_t want =
            tg && res > 0 && (uint64_t)res > goal ? (uint64_t)res - goal : 0;
        size_t n =
            want ? pick_locked(t, x, want < TS_BATCH ? want : TS_BATCH) : 0;
        size_t out = n ? evict_batch_locked(t, x, n) : 0;
        tswap__reap_locked(t);
        tswap__unlock(t);
        total += (int64_t)out;
        if (!out) /* done, or nothing would go: pinned, shared, refused */
            break;
    }
    return total;
}

/* Evicts down to the target minus a low mark, a batch per lock hold.
 * scan: scan written bits first.  Returns the pages put out. */
int64_t tswap__evict_pass(tmem_tswap *t, bool scan)
{
    if (scan) {
        tswap__lock(t);
        tswap__scan_locked(t);
        tswap__unlock(t);
    }
    return evict_down(t, false);
}

/* The faulting thread puts pages out itself (fault.c, throttle), the way
 * the kernel's direct reclaim does: no other thread runs beside it, so a
 * victim's MOVE flushes this CPU's TLB alone, where the evictor thread
 * running on another CPU made every MOVE an IPI to the faulting thread's
 * (measured: a third of redis's CPU under random GETs).  Only when t->lock
 * is free: a thread interrupted while holding it, or another thread
 * evicting, makes it return false (the caller then waits for the
 * evictor). */
bool tswap__evict_direct(tmem_tswap *t)
{
    int64_t n = evict_down(t, true);
    if (n > 0)
        atomic_fetch_add(&t->c.direct_evictions, (uint64_t)n);
    return n >= 0;
}

/* Runs the evictor on the CPU of the fault that last woke it: its work is
 * then the faulting thread's own (as the kernel's direct reclaim is), not
 * a second CPU's, and while that thread waits for it (fault.c, throttle)
 * no other CPU runs this process, so each victim's MOVE flushes the TLB
 * here alone instead of interrupting the other CPU (an IPI a page).  Only
 * a change of CPU costs a system call. */
static void follow_faults(tmem_tswap *t)
{
    int cpu = atomic_load_explicit(&t->kick_cpu, memory_order_relaxed);
    if (cpu < 0 || cpu == t->evict_cpu || cpu >= CPU_SETSIZE)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) == 0)
        t->evict_cpu = cpu;
}

bool tswap__over_slack(tmem_tswap *t)
{
    uint64_t tg = atomic_load_explicit(&t->target, memory_order_relaxed);
    int64_t res = atomic_load_explicit(&t->c.resident, memory_order_relaxed);
    return tg && res > 0 && (uint64_t)res > tg + tg / 16 + 4;
}

bool tswap__scan_due(tmem_tswap *t, unsigned percent)
{
    uint64_t last = atomic_load_explicit(&t->last_scan_ns, memory_order_relaxed);
    return tswap__now_ns() - last >=
           (uint64_t)t->cfg.interval_ms * 10000u * percent;
}

/* Each interval: a tick (the working-set stamps move on), a scan of the
 * written bits unless a faulting thread did one within the interval, and
 * a pass down to the target.  In SIGBUS mode faulting threads evict for
 * themselves (direct), so a tick with no kick evicts only past the
 * target's slack (what prefaults and set_target brought in), never beside
 * a thread that is faulting and evicting. */
static void *evictor_main(void *arg)
{
    tmem_tswap *t = arg;
    uint64_t period = (uint64_t)t->cfg.interval_ms * 1000000u;
    uint64_t next = tswap__now_ns() + period;
    bool direct = t->cfg.fault_mode == TMEM_TSWAP_SIGBUS;
    while (!atomic_load(&t->stop)) {
        uint64_t now = tswap__now_ns();
        if (now < next && !atomic_load(&t->kick))
            tswap__futex_wait(&t->kick, 0, next - now);
        bool kicked = atomic_exchange(&t->kick, 0) != 0;
        if (atomic_load(&t->stop))
            break;
        bool tick = tswap__now_ns() >= next;
        if (tick) {
            atomic_fetch_add(&t->interval, 1);
            next = tswap__now_ns() + period;
        }
        follow_faults(t);
        if (tick && tswap__scan_due(t, 50)) { /* none this interval */
            tswap__lock(t);
            tswap__scan_locked(t);
            tswap__unlock(t);
        }
        if (kicked || !direct || tswap__over_slack(t))
            evict_down(t, false);
        tswap__lock(t);
        tswap__reap_locked(t);
        tswap__unlock(t);
        atomic_fetch_add(&t->passes, 1);
        tswap__futex_wake(&t->passes, INT32_MAX);
    }
    atomic_fetch_add(&t->passes, 1);
    tswap__futex_wake(&t->passes, INT32_MAX);
    return NULL;
}

int tswap__evictor_start(tmem_tswap *t)
{
    sigset_t old;
    t->evict_cpu = -1;
    atomic_store(&t->kick_cpu, -1);
    tswap__block_signals(&old);
    int rc = pthread_create(&t->evictor, NULL, evictor_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        tswap__say(t, "evictor thread: %s", strerror(rc));
        return -rc;
    }
    t->evictor_on = true;
    return 0;
}

void tswap__evictor_stop(tmem_tswap *t)
{
    if (!t->evictor_on)
        return;
    atomic_store(&t->stop, 1);
    atomic_store(&t->kick, 1);
    tswap__futex_wake(&t->kick, 1);
    pthread_join(t->evictor, NULL);
    t->evictor_on = false;
}
