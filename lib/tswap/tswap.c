/*
 * tswap's API: create and destroy, regions in and out (map, adopt,
 * unmap), the target, synchronous passes (reclaim, shrink), and the pins
 * system-call wrappers take (prefault, unpin).
 *
 * Invariants: a region is registered with the userfaultfd before it is
 * published and unpublished before it is unregistered or unmapped; a
 * region's memory is never unmapped while t->lock is held (with events,
 * munmap waits for the monitor, which may need the lock).  One tmem_tswap
 * per process: tswap__current, which the SIGBUS handler reads.
 */
#include "tswap/tswap_internal.h"

#include "common/privheap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static uintptr_t page_down(uintptr_t a)
{
    return a & ~(uintptr_t)(TS_PAGE - 1);
}

static uintptr_t page_up(uintptr_t a)
{
    return (a + TS_PAGE - 1) & ~(uintptr_t)(TS_PAGE - 1);
}

/* Blocks every signal a program may send or handle (tswap's threads must
 * never run a program's handler: it could touch region memory while the
 * thread holds a page).  Faults stay deliverable. */
int tswap__block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGFPE);
    return pthread_sigmask(SIG_BLOCK, &all, old);
}

void tmem_tswap_config_init(tmem_tswap_config *c)
{
    *c = (tmem_tswap_config){.target_pages = 0,
                             .readahead = 8,
                             .fault_mode = TMEM_TSWAP_SIGBUS,
                             .events = false,
                             .interval_ms = 100,
                             .max_stored = 1ull << 26};
}

static int check_config(tmem_tswap_config *c)
{
    if (c->fault_mode != TMEM_TSWAP_SIGBUS &&
        c->fault_mode != TMEM_TSWAP_THREAD)
        return -EINVAL;
    if (c->readahead > 64)
        c->readahead = 64;
    if (c->interval_ms == 0)
        c->interval_ms = 100;
    if (c->max_stored == 0 || c->max_stored > (1ull << 32))
        return -EINVAL;
    return 0;
}

/* ---- create / destroy ---------------------------------------------------- */

static int open_uffds(tmem_tswap *t)
{
    bool sigbus = t->cfg.fault_mode == TMEM_TSWAP_SIGBUS;
    uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_MOVE, got = 0;
    if (sigbus)
        want |= UFFD_FEATURE_SIGBUS;
    if (t->cfg.events)
        want |= UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP |
                UFFD_FEATURE_EVENT_REMAP;
    /* Fork hand-off needs a child that can wait for its descriptor: in
     * THREAD mode its first fault would wait in the kernel for a reader
     * that does not exist yet, so THREAD mode forks materialize. */
    if (t->cfg.events && sigbus)
        want |= UFFD_FEATURE_EVENT_FORK;
    /* A user-mode-only descriptor serves SIGBUS mode fully (the kernel's
     * own faults fail with EFAULT either way); THREAD mode needs more. */
    t->ufd = tswap__uffd_open(t, want, sigbus, &got);
    if (t->ufd < 0)
        return t->ufd;
    t->features = got;
    t->handoff = (got & UFFD_FEATURE_EVENT_FORK) != 0;
    t->sfd = tswap__uffd_open(t, UFFD_FEATURE_MOVE, true, &got);
    if (t->sfd < 0)
        return t->sfd;
    t->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (t->pagemap_fd < 0) {
        tswap__say(t, "/proc/self/pagemap: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

static tmem_tswap *alloc_tswap(const tmem_tswap_config *cfg)
{
    tmem_tswap *t = tswap__alloc(NULL, sizeof *t);
    if (!t)
        return NULL;
    atomic_store(&t->c.meta_bytes, page_up(sizeof *t));
    t->cfg = *cfg;
    t->ufd = t->sfd = t->pagemap_fd = t->wake_fd = -1;
    t->pid = (pid_t)syscall(SYS_getpid);
    atomic_store(&t->target, cfg->target_pages);
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        tswap__free(NULL, t);
        return NULL;
    }
    return t;
}

static void close_fds(tmem_tswap *t)
{
    int *fds[] = {&t->ufd, &t->sfd, &t->pagemap_fd, &t->fk.proxy_sock};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    for (int k = 0; k < atomic_load(&t->fk.nkids); k++)
        close(t->fk.kids[k].sock);
    atomic_store(&t->fk.nkids, 0);
}

static void free_tswap(tmem_tswap *t)
{
    tswap__staging_fini(t);
    tswap__slots_fini(t);
    tswap__free(t, t->mon_buf);
    tswap__free(t, t->mq);
    pthread_mutex_destroy(&t->lock);
    tswap__free(NULL, t);
}

static int start(tmem_tswap *t)
{
    int rc = tswap__fork_setup(t);
    if (rc == 0 && t->cfg.fault_mode == TMEM_TSWAP_SIGBUS)
        rc = tswap__sigbus_install(t);
    if (rc < 0)
        return rc;
    atomic_store(&tswap__current, t);
    rc = tswap__evictor_start(t);
    if (rc == 0 && (t->cfg.events || t->cfg.fault_mode == TMEM_TSWAP_THREAD))
        rc = tswap__monitor_start(t);
    return rc;
}

static void stop(tmem_tswap *t)
{
    tswap__evictor_stop(t);
    tswap__monitor_stop(t);
    if (atomic_load(&tswap__current) == t) {
        atomic_store(&tswap__current, NULL);
        tswap__handlers_drain();
        if (t->cfg.fault_mode == TMEM_TSWAP_SIGBUS)
            tswap__sigbus_restore();
    }
}

int tmem_tswap_create(tmem_conn *conn, const tmem_tswap_config *cfg,
                      tmem_tswap **out)
{
    tmem_tswap_config c;
    if (cfg)
        c = *cfg;
    else
        tmem_tswap_config_init(&c);
    if (!conn || !out || check_config(&c) < 0)
        return -EINVAL;
    if (atomic_load(&tswap__current))
        return -EBUSY;
    tmem_tswap *t = alloc_tswap(&c);
    if (!t)
        return -ENOMEM;
    t->conn = conn;
    int rc = open_uffds(t);
    if (rc < 0)
        goto out_fail;
    rc = tmem_frontswap_create(conn, &t->fs);
    if (rc == 0)
        rc = tswap__slots_init(t);
    if (rc == 0)
        rc = tswap__staging_init(t);
    if (rc < 0)
        goto out_fail;
    t->mon_buf = tswap__alloc(t, TS_PAGE);
    rc = t->mon_buf ? start(t) : -ENOMEM;
    if (rc < 0)
        goto out_stop;
    *out = t;
    return 0;

out_stop:
    stop(t);
out_fail:
    /* Keep the reason for the caller: the handle is gone after this. */
    memcpy(tswap__last_why, t->why, sizeof tswap__last_why);
    tmem_frontswap_destroy(t->fs);
    close_fds(t);
    free_tswap(t);
    return rc;
}

/* Brings every stored page back, then unregisters and forgets every
 * region: they stay as plain memory. */
static void release_regions(tmem_tswap *t)
{
    tswap__lock(t);
    tswap__bring_in_locked(t, 0, 0, true);
    struct ts_table *tb = atomic_load(&t->table);
    uint32_t n = tb ? tb->n : 0;
    for (uint32_t k = 0; k < n; k++)
        tswap__uffd_unregister(t->ufd, tb->r[k]->start,
                               tb->r[k]->end - tb->r[k]->start);
    if (n)
        tswap__table_swap_locked(t, tb->r, n, NULL, 0);
    tswap__unlock(t);
}

void tmem_tswap_destroy(tmem_tswap *t)
{
    if (!t)
        return;
    tswap__evictor_stop(t);
    if (!t->detached)
        release_regions(t);
    stop(t);
    /* A child's slots and frontswap are its parent's: not ours to free. */
    if (!t->is_child && !t->detached)
        tmem_frontswap_destroy(t->fs);
    close_fds(t);
    tswap__reap_all(t);
    free_tswap(t);
}

/* ---- regions ------------------------------------------------------------- */

static int sys_madvise(uintptr_t p, size_t len, int advice)
{
    return syscall(SYS_madvise, p, len, advice) == 0 ? 0 : -errno;
}

/* Marks the pages of r that are present RESIDENT (an adopted mapping). */
static void mark_present(tmem_tswap *t, struct ts_region *r)
{
    struct page_region vec[128];
    uintptr_t s = r->start;
    while (s < r->end) {
        struct pm_scan_arg a = {.size = sizeof a,
                                .start = s,
                                .end = r->end,
                                .vec = (uintptr_t)vec,
                                .vec_len = 128,
                                .category_mask = PAGE_IS_PRESENT,
                                .return_mask = PAGE_IS_PRESENT};
        long n = ioctl(t->pagemap_fd, PAGEMAP_SCAN, &a);
        if (n < 0)
            return;
        for (long k = 0; k < n; k++)
            for (uintptr_t p = vec[k].start; p < vec[k].end; p += TS_PAGE) {
                uint64_t i = (p - r->start) >> TS_SHIFT;
                atomic_store(&r->pg->state[i], PS_RESIDENT | PS_REF);
                atomic_fetch_add(&t->c.resident, 1);
            }
        if (a.walk_end <= s)
            return;
        s = a.walk_end;
    }
}

/* True when some page of [s, e) lies in a VMA registered with a
 * userfaultfd for write-protection (ours are): a mapping mremap just moved
 * keeps its registration, and must wait for the REMAP event, which brings
 * its pages' states along; adopting it afresh would forget them. */
static bool uffd_registered(tmem_tswap *t, uintptr_t s, uintptr_t e)
{
    struct page_region one;
    struct pm_scan_arg a = {.size = sizeof a,
                            .start = s,
                            .end = e,
                            .vec = (uintptr_t)&one,
                            .vec_len = 1,
                            .max_pages = 1,
                            .category_mask = PAGE_IS_WPALLOWED,
                            .return_mask = PAGE_IS_WPALLOWED};
    return ioctl(t->pagemap_fd, PAGEMAP_SCAN, &a) > 0;
}

static bool overlaps_locked(tmem_tswap *t, uintptr_t s, uintptr_t e)
{
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n; k++)
        if (tb->r[k]->start < e && s < tb->r[k]->end)
            return true;
    return false;
}

/* Registers [s, e) and publishes it as a region. */
static int add_region(tmem_tswap *t, uintptr_t s, uintptr_t e, bool adopt)
{
    struct ts_pages *pg = tswap__pages_new(t, (e - s) >> TS_SHIFT);
    struct ts_region *r = pg ? tswap__region_new(t, s, e, pg, 0) : NULL;
    int rc = -ENOMEM;
    if (!r)
        goto out_free;
    sys_madvise(s, e - s, MADV_NOHUGEPAGE); /* a huge page cannot move */
    tswap__lock(t);
    rc = overlaps_locked(t, s, e) || (adopt && uffd_registered(t, s, e))
             ? -EEXIST
             : 0;
    if (rc == 0)
        rc = tswap__uffd_register(t->ufd, s, e - s, true);
    if (rc == 0 && adopt)
        mark_present(t, r);
    if (rc == 0 && (rc = tswap__table_swap_locked(t, NULL, 0, &r, 1)) < 0)
        tswap__uffd_unregister(t->ufd, s, e - s);
    tswap__unlock(t);
    if (rc == 0)
        return 0;
    tswap__say(t, "region %#lx+%#lx: %s", (unsigned long)s,
               (unsigned long)(e - s), strerror(-rc));
out_free:
    if (r)
        tswap__free(t, r);
    if (pg)
        tswap__free(t, pg);
    return rc;
}

int tmem_tswap_map(tmem_tswap *t, size_t len, void **out)
{
    size_t n = page_up(len);
    if (!t || !out || n == 0 || t->detached)
        return -EINVAL;
    void *p = tswap__mmap(n, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    if (!p)
        return -ENOMEM;
    int rc = add_region(t, (uintptr_t)p, (uintptr_t)p + n, false);
    if (rc < 0) {
        tswap__munmap(p, n);
        return rc;
    }
    *out = p;
    return 0;
}

/* True when every page of [s, e) is private anonymous read-write. */
static bool anon_rw(tmem_tswap *t, uintptr_t s, uintptr_t e)
{
    while (s < e) {
        uintptr_t end;
        bool ok;
        if (tswap__vma_end(t, s, &end, &ok) < 0 || !ok)
            return false;
        s = end;
    }
    return true;
}

int tmem_tswap_adopt(tmem_tswap *t, void *addr, size_t len)
{
    uintptr_t s = (uintptr_t)addr, e = s + len;
    if (!t || t->detached || len == 0 || s != page_down(s) || e != page_down(e))
        return -EINVAL;
    if (!anon_rw(t, s, e)) {
        tswap__say(t,
                   "adopt %p+%#zx: not private anonymous read-write "
                   "memory",
                   addr, len);
        return -EINVAL;
    }
    uintptr_t lo, hi;
    tmem__ph_range(&lo, &hi);
    if (s < hi && lo < e) {
        tswap__say(t,
                   "adopt %p+%#zx: libtmem's own memory (the private "
                   "heap, tswap's staging and metadata)",
                   addr, len);
        return -EINVAL;
    }
    return add_region(t, s, e, true);
}

int tmem_tswap_adopt_tail(tmem_tswap *t, void *addr, size_t len)
{
    uintptr_t s = (uintptr_t)addr, e = s + len;
    if (!t || t->detached || len == 0 || s != page_down(s) ||
        e != page_down(e) || !tmem_tswap_owns(t, (void *)(s - TS_PAGE)) ||
        !anon_rw(t, s, e))
        return -EINVAL;
    /* a tail that joined a region's mapping: registered with it, never
     * a region of its own, every page new */
    return add_region(t, s, e, true);
}

/* True when regions cover every page of [s, e). */
static bool covered_locked(tmem_tswap *t, uintptr_t s, uintptr_t e)
{
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n && s < e; k++)
        if (tb->r[k]->start <= s && s < tb->r[k]->end)
            s = tb->r[k]->end;
    return s >= e;
}

int tmem_tswap_unmap(tmem_tswap *t, void *addr, size_t len)
{
    uintptr_t s = (uintptr_t)addr, e = page_up(s + len);
    if (!t || t->detached || len == 0 || s != page_down(s))
        return -EINVAL;
    tswap__lock(t);
    if (!covered_locked(t, s, e)) {
        tswap__unlock(t);
        return -EINVAL;
    }
    tswap__forget_range_locked(t, s, e);
    tswap__cut_locked(t, s, e, NULL);
    tswap__unlock(t);
    /* Unpublished first: with events, the monitor finds nothing to do. */
    return tswap__munmap(addr, e - s);
}

/* ---- target and passes --------------------------------------------------- */

int tmem_tswap_set_target(tmem_tswap *t, uint64_t pages)
{
    if (!t)
        return -EINVAL;
    atomic_store(&t->target, pages);
    tswap__kick(t);
    return 0;
}

int64_t tmem_tswap_reclaim(tmem_tswap *t)
{
    if (!t || t->detached)
        return -EINVAL;
    if (t->is_child)
        return 0; /* a child does not store: its slots are its parent's */
    return tswap__evict_pass(t, true);
}

int64_t tmem_tswap_shrink(tmem_tswap *t, uint64_t stored_target,
                          uint64_t budget)
{
    if (!t || t->detached)
        return -EINVAL;
    tswap__lock(t);
    int64_t n = tswap__bring_in_locked(t, stored_target, budget, true);
    int64_t res = atomic_load(&t->c.resident);
    uint64_t tg = atomic_load(&t->target);
    if (tg && res > 0 && (uint64_t)res > tg)
        atomic_store(&t->target, (uint64_t)res); /* or they would go again */
    tswap__unlock(t);
    return n;
}

/* ---- pins ---------------------------------------------------------------- */

/* Adds d (+1/-1) to the pin count of page p; false when it cannot. */
static bool pin(tmem_tswap *t, uintptr_t p, int d)
{
    struct ts_region *r = tswap__lookup(t, p);
    if (!r)
        return true; /* not ours: nothing to hold */
    uint64_t i;
    _Atomic uint32_t *w = tswap__state(r, p, &i);
    uint32_t v = atomic_load(w);
    do {
        if ((d > 0 && PS_PINS(v) == 0xffff) || (d < 0 && PS_PINS(v) == 0))
            return false;
    } while (!atomic_compare_exchange_weak(
        w, &v, d > 0 ? v + PS_PIN_ONE : v - PS_PIN_ONE));
    atomic_fetch_add(&t->c.pins, (uint64_t)(int64_t)d);
    return true;
}

int tmem_tswap_prefault(tmem_tswap *t, const void *addr, size_t len)
{
    uintptr_t s = page_down((uintptr_t)addr);
    uintptr_t e = page_up((uintptr_t)addr + len);
    uint32_t idx;
    int rc = 0;
    if (!t || t->detached)
        return -EINVAL;
    tswap__read_enter(t, &idx);
    for (uintptr_t p = s; p < e; p += TS_PAGE) {
        if (!pin(t, p, +1)) {
            rc = -EBUSY;
            for (uintptr_t q = s; q < p; q += TS_PAGE)
                pin(t, q, -1);
            break;
        }
        tswap__resolve(t, p, true, TS_RES_PREFAULT);
    }
    tswap__read_leave(t, idx);
    return rc;
}

void tmem_tswap_unpin(tmem_tswap *t, const void *addr, size_t len)
{
    uintptr_t s = page_down((uintptr_t)addr);
    uintptr_t e = page_up((uintptr_t)addr + len);
    uint32_t idx;
    if (!t || t->detached)
        return;
    tswap__read_enter(t, &idx);
    for (uintptr_t p = s; p < e; p += TS_PAGE)
        pin(t, p, -1);
    tswap__read_leave(t, idx);
}

bool tmem_tswap_owns(const tmem_tswap *ct, const void *addr)
{
    tmem_tswap *t = (tmem_tswap *)ct; /* a reader section only */
    uint32_t idx;
    if (!t)
        return false;
    tswap__read_enter(t, &idx);
    bool own = tswap__lookup(t, (uintptr_t)addr) != NULL;
    tswap__read_leave(t, idx);
    return own;
}

/* ---- bringing pages in --------------------------------------------------- */

static uint64_t held(tmem_tswap *t)
{
    int64_t s = atomic_load(&t->c.stored), c = atomic_load(&t->c.copies);
    return (uint64_t)(s > 0 ? s : 0) + (uint64_t)(c > 0 ? c : 0);
}

/* Drops the copies resident pages keep, while more than target pages
 * are held in the store. */
static void drop_copies_locked(tmem_tswap *t, uint64_t target)
{
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n && held(t) > target; k++) {
        struct ts_region *r = tb->r[k];
        uint64_t n = (r->end - r->start) >> TS_SHIFT;
        for (uint64_t i = r->first; i < r->first + n && held(t) > target; i++)
            if ((atomic_load(&r->pg->state[i]) & PS_COPY) &&
                tswap__flags(t, &r->pg->state[i], PS_RESIDENT, 0, PS_COPY))
                tswap__slot_release_locked(t, r->pg->slot[i]);
    }
}

/* Brings stored pages in while more than stored_target are held (or all
 * of them when drop is false: they keep their copies then), at most
 * budget (0: no bound).  Returns the pages brought in. */
int64_t tswap__bring_in_locked(tmem_tswap *t, uint64_t stored_target,
                               uint64_t budget, bool drop)
{
    int64_t n = 0;
    tswap__assert_locked(t);
    if (drop)
        drop_copies_locked(t, stored_target);
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n; k++) {
        struct ts_region *r = tb->r[k];
        for (uintptr_t p = r->start; p < r->end; p += TS_PAGE) {
            if ((drop && held(t) <= stored_target) ||
                (budget && (uint64_t)n >= budget))
                goto out;
            int rc = tswap__bring_page(t, r, p, !drop);
            n += rc > 0;
        }
    }
out:
    tswap__flush_commit_locked(t);
    return n;
}
