/*
 * The monitor: one thread that reads the regions' userfaultfd.  It
 * follows the program's changes to region memory (cfg.events):
 *   REMOVE (MADV_DONTNEED / MADV_FREE): the pages become NONE, their
 *          slots are released;
 *   UNMAP  (munmap, mremap shrink, MAP_FIXED over): the range leaves its
 *          region (shrunk, split or dropped), its slots are released;
 *   REMAP  (mremap move): the pages' states and slots follow to the new
 *          address (a grown tail joins as NONE);
 *   FORK   the child's userfaultfd, handed to fork.c at once (the forking
 *          thread holds t->lock and waits for it).
 * In THREAD mode it also resolves every fault (the kernel's included) and
 * wakes the faulting thread.  In the storing process it watches its fork
 * children's sockets: page requests (fork.c serves them) and hang-ups.
 *
 * Invariants: the monitor never allocates from the program's heap or
 * takes a lock a program thread may hold while waiting for it (a program
 * thread blocked in munmap/madvise/mremap/fork waits until the monitor
 * reads its event); it reads every pending message before it waits for
 * t->lock, so a fork holding t->lock always gets its event read.
 * ev_busy is set from before any read (a read may release a program
 * thread) until every message read is handled, so a fault on memory an
 * mremap moved a moment ago waits for the region table instead of
 * missing it.
 */
#include "tswap/tswap_internal.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MQ_CAP 1024

static void bump(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void tswap__monitor_wake(tmem_tswap *t)
{
    uint64_t one = 1;
    ssize_t n = write(t->wake_fd, &one, sizeof one);
    (void)n;
}

/* ---- reading ------------------------------------------------------------- */

/* No message is waiting to be handled: faults that found no region may
 * stop waiting (they look again and fall through). */
static void events_idle(tmem_tswap *t)
{
    atomic_store(&t->ev_busy, 0);
    tswap__futex_wake(&t->ev_busy, 0x7fffffff);
}

/* Reads every pending message: FORK is handled at once (no lock), the
 * rest queue.  ev_busy is set before any read (a read releases the
 * thread that caused the event) and stays set while messages queue.
 * Returns how many were read. */
static size_t drain(tmem_tswap *t)
{
    size_t got = 0;
    atomic_store(&t->ev_busy, 1);
    while (t->mq_n < MQ_CAP) {
        struct uffd_msg m;
        /* A fork's parent handler waits while `reading`: a read that
         * took its event ends only once the descriptor is passed on. */
        atomic_store(&t->fk.reading, 1);
        ssize_t n = read(t->ufd, &m, sizeof m);
        if (n == (ssize_t)sizeof m && m.event == UFFD_EVENT_FORK)
            tswap__fork_event(t, (int)m.arg.fork.ufd);
        else if (n == (ssize_t)sizeof m)
            t->mq[t->mq_n++] = m;
        atomic_store(&t->fk.reading, 0);
        if (n != (ssize_t)sizeof m)
            break;
        got++;
    }
    if (t->mq_n == 0)
        events_idle(t);
    return got;
}

/* Takes t->lock without ever blocking on it while a message waits: a fork
 * holds the lock until its FORK event is read. */
void tswap__lock_evented(tmem_tswap *t)
{
    while (!tswap__trylock(t)) {
        struct pollfd p = {.fd = t->ufd, .events = POLLIN};
        if (poll(&p, 1, 1) > 0)
            drain(t);
    }
}

/* ---- events -------------------------------------------------------------- */

static void ev_remove(tmem_tswap *t, const struct uffd_msg *m)
{
    tswap__forget_range_locked(t, m->arg.remove.start, m->arg.remove.end);
    bump(&t->c.ev_remove);
}

static void ev_unmap(tmem_tswap *t, const struct uffd_msg *m)
{
    uintptr_t s = m->arg.remove.start, e = m->arg.remove.end;
    tswap__forget_range_locked(t, s, e);
    tswap__cut_locked(t, s, e, NULL);
    bump(&t->c.ev_unmap);
}

/* The first region start at or after a, or UINTPTR_MAX. */
static uintptr_t next_start(tmem_tswap *t, uintptr_t a)
{
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n; k++)
        if (tb->r[k]->start >= a)
            return tb->r[k]->start;
    return UINTPTR_MAX;
}

/* Moves the states of [from, from + len) into npg (index 0 = from): each
 * page is claimed first (a fault in flight finishes before), its state,
 * slot, hash and stamp copied, and the old word left NONE (a thread
 * still waiting on it looks again and finds the new region). */
static void move_states(tmem_tswap *t, uintptr_t from, uintptr_t len,
                        struct ts_pages *npg)
{
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n; k++) {
        struct ts_region *r = tb->r[k];
        uintptr_t a = from > r->start ? from : r->start;
        uintptr_t b = from + len < r->end ? from + len : r->end;
        for (uintptr_t p = a; p < b; p += TS_PAGE) {
            uint64_t i = r->first + ((p - r->start) >> TS_SHIFT);
            uint64_t j = (p - from) >> TS_SHIFT;
            _Atomic uint32_t *w = &r->pg->state[i];
            uint32_t v;
            do
                v = tswap__settle(w);
            while (!tswap__claim(t, w, &v, PS_PAGING_IN));
            atomic_store(&npg->state[j], v & ~PS_WAIT);
            tswap__account(t, v, +1);
            npg->slot[j] = r->pg->slot[i];
            npg->hash[j] = r->pg->hash[i];
            atomic_store(&npg->stamp[j], atomic_load(&r->pg->stamp[i]));
            tswap__release(t, w, 0, PS_NONE);
        }
    }
}

/* A fresh region of NONE pages over [s, e), or NULL. */
static struct ts_region *fresh_region(tmem_tswap *t, uintptr_t s, uintptr_t e)
{
    struct ts_pages *pg = tswap__pages_new(t, (e - s) >> TS_SHIFT);
    struct ts_region *r = pg ? tswap__region_new(t, s, e, pg, 0) : NULL;
    if (!r && pg)
        tswap__free(t, pg);
    return r;
}

static void ev_remap(tmem_tswap *t, const struct uffd_msg *m)
{
    uintptr_t from = m->arg.remap.from, to = m->arg.remap.to;
    uintptr_t len = m->arg.remap.len, vend = to + len, oend;
    bool anon, still;
    if (tswap__vma_end(t, to, &vend, &anon) < 0 || vend < to + len)
        vend = to + len;
    if (vend > next_start(t, to + len))
        vend = next_start(t, to + len); /* merged with a region of ours */
    /* Without the new region the moved pages' slots would be forgotten
     * and their next faults given zero pages: stop instead.  It covers
     * at least the moved pages: whatever the table held there is stale
     * (the range was free before the move) and is cut out below. */
    struct ts_region *nr = fresh_region(t, to, vend);
    if (!nr)
        tswap__die("no memory to follow an mremap to", to, -ENOMEM);
    move_states(t, from, len, nr->pg);
    if (tswap__cut_locked(t, to, vend, NULL) < 0)
        tswap__die("no memory to follow an mremap to", to, -ENOMEM);
    /* MREMAP_DONTUNMAP leaves the old range mapped, empty. */
    still = tswap__vma_end(t, from, &oend, &anon) == 0;
    if (tswap__cut_locked(t, from, from + len, nr) < 0)
        tswap__die("no memory to follow an mremap to", to, -ENOMEM);
    if (still) { /* a fault there without a region is a zero page: fine */
        struct ts_region *old = fresh_region(t, from, from + len);
        if (old && tswap__table_swap_locked(t, NULL, 0, &old, 1) < 0)
            tswap__free(t, old);
    }
    bump(&t->c.ev_remap);
}

static const struct {
    uint8_t event;
    void (*fn)(tmem_tswap *, const struct uffd_msg *);
} ev_table[] = {
    {UFFD_EVENT_REMOVE, ev_remove},
    {UFFD_EVENT_UNMAP, ev_unmap},
    {UFFD_EVENT_REMAP, ev_remap},
};

static void handle_event(tmem_tswap *t, const struct uffd_msg *m)
{
    for (size_t i = 0; i < sizeof ev_table / sizeof ev_table[0]; i++)
        if (ev_table[i].event == m->event) {
            ev_table[i].fn(t, m);
            return;
        }
}

/* ---- faults (THREAD mode) ------------------------------------------------ */

/* Resolves a fault and wakes its thread.  Returns false to retry later
 * (an event is pending: read it first). */
static bool handle_fault(tmem_tswap *t, const struct uffd_msg *m)
{
    uintptr_t a =
        (uintptr_t)m->arg.pagefault.address & ~(uintptr_t)(TS_PAGE - 1);
    bool write = m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE;
    uint32_t idx;
    tswap__read_enter(t, &idx);
    int rc = tswap__resolve(t, a, write, TS_RES_FAULT);
    tswap__read_leave(t, idx);
    if (rc == -EAGAIN)
        return false;
    if (rc == -ENOENT)
        tswap__fault_unknown(t, a, write);
    tswap__uffd_wake(t->ufd, a, TS_PAGE);
    bump(&t->c.faults_kernel);
    return true;
}

/* Handles the queue: events first, in order (a fault read before an
 * event still waits in the kernel: both orders are ones the program could
 * have seen), then faults; faults that must wait stay queued. */
static void handle_queue(tmem_tswap *t)
{
    bool events = false;
    for (uint32_t i = 0; i < t->mq_n && !events; i++)
        events = t->mq[i].event != UFFD_EVENT_PAGEFAULT;
    if (events) {
        tswap__lock_evented(t);
        for (uint32_t i = 0; i < t->mq_n; i++)
            if (t->mq[i].event != UFFD_EVENT_PAGEFAULT)
                handle_event(t, &t->mq[i]);
        tswap__reap_locked(t);
        tswap__unlock(t);
    }
    uint32_t keep = 0;
    for (uint32_t i = 0; i < t->mq_n; i++)
        if (t->mq[i].event == UFFD_EVENT_PAGEFAULT &&
            !handle_fault(t, &t->mq[i]))
            t->mq[keep++] = t->mq[i];
    t->mq_n = keep;
}

static void handle_ufd(tmem_tswap *t)
{
    drain(t);
    handle_queue(t);
    if (t->mq_n == 0)
        events_idle(t);
}

/* ---- the loop ------------------------------------------------------------ */

/* Serves the children's sockets that poll reported; forgets the ones
 * that hung up. */
static void handle_kids(tmem_tswap *t, const struct pollfd *p, int n)
{
    for (int k = 0; k < n; k++) {
        if (!p[k].revents || tswap__proxy_serve(t, p[k].fd))
            continue;
        tswap__lock_evented(t);
        for (int j = 0; j < atomic_load(&t->fk.nkids); j++)
            if (t->fk.kids[j].sock == p[k].fd)
                tswap__kid_event_locked(t, j, true);
        tswap__unlock(t);
    }
}

static void *monitor_main(void *arg)
{
    tmem_tswap *t = arg;
    struct pollfd p[2 + TS_MAX_KIDS];
    tswap__mark_monitor();
    while (!atomic_load(&t->mon_stop)) {
        int nk = atomic_load(&t->fk.nkids), n = 0;
        p[n++] = (struct pollfd){.fd = t->wake_fd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = t->ufd, .events = POLLIN};
        for (int k = 0; k < nk; k++)
            p[n++] =
                (struct pollfd){.fd = t->fk.kids[k].sock, .events = POLLIN};
        if (poll(p, (nfds_t)n, t->mq_n ? 1 : -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(t->wake_fd, &v, sizeof v);
            (void)r;
        }
        if ((p[1].revents & POLLIN) || t->mq_n)
            handle_ufd(t);
        handle_kids(t, p + 2, n - 2);
    }
    return NULL;
}

int tswap__monitor_start(tmem_tswap *t)
{
    if (!t->mq)
        t->mq = tswap__alloc(t, MQ_CAP * sizeof *t->mq);
    if (!t->mq)
        return -ENOMEM;
    t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->wake_fd < 0)
        return -errno;
    atomic_store(&t->mon_stop, 0);
    sigset_t old;
    tswap__block_signals(&old);
    int rc = pthread_create(&t->monitor, NULL, monitor_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        close(t->wake_fd);
        t->wake_fd = -1;
        tswap__say(t, "monitor thread: %s", strerror(rc));
        return -rc;
    }
    t->monitor_on = true;
    return 0;
}

void tswap__monitor_stop(tmem_tswap *t)
{
    if (!t->monitor_on)
        return;
    atomic_store(&t->mon_stop, 1);
    tswap__monitor_wake(t);
    pthread_join(t->monitor, NULL);
    t->monitor_on = false;
    close(t->wake_fd);
    t->wake_fd = -1;
}
