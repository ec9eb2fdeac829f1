/*
 * The fault path: what makes a region page resident, in the faulting
 * thread's SIGBUS handler (SIGBUS mode), in the monitor thread (THREAD
 * mode), or for tmem_tswap_prefault; read-ahead; the program's own SIGBUS
 * handler behind ours; and the stop on a page that cannot come back.
 *
 * Invariants:
 *   - nothing here allocates, takes a lock a program thread could hold
 *     (tswap's own, malloc's, stdio's), or touches region memory: the
 *     calls made are atomics, futexes, userfaultfd ioctls, the direct
 *     frontswap load, and (when that cannot read a page) the frontswap
 *     load, whose connection mutex no program thread holds while touching
 *     region memory;
 *   - a page is changed only by its owner (tswap__claim); the region
 *     table and page arrays are read inside a reader section;
 *   - a page believed stored that cannot be loaded stops the process with
 *     a message naming its address (tswap__lost): never a zero or wrong
 *     page;
 *   - in a fork child (tswap__child_now) pages come from the parent's
 *     slots through the direct load only (or the parent, over a socket),
 *     with the child's own userfaultfd.
 */
#include "tswap/tswap_internal.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

_Atomic(tmem_tswap *) tswap__current;

static __thread bool in_monitor; /* THREAD mode: may not wait on events */

static const char zero_page[TS_PAGE] __attribute__((aligned(4096)));

/* ---- which process, which descriptor ------------------------------------- */

static bool early_child(tmem_tswap *t)
{
    return atomic_load_explicit(&t->fk.pending, memory_order_acquire) &&
           (pid_t)syscall(SYS_getpid) != t->pid;
}

/* True in a fork child (before or after its atfork handler ran). */
bool tswap__child_now(tmem_tswap *t)
{
    return t->is_child || early_child(t);
}

/* The userfaultfd this process resolves faults with: in a child whose
 * atfork handler has not run yet, its own, received from the parent. */
int tswap__ufd(tmem_tswap *t)
{
    return early_child(t) ? tswap__child_ufd_wait(t) : t->ufd;
}

void tswap__mark_monitor(void)
{
    in_monitor = true;
}

/* ---- stats helpers ------------------------------------------------------- */

static void bump(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void tswap__hist_add(tmem_tswap *t, uint64_t ns)
{
    int b = 0;
    if (ns >= 64) {
        int e = 63 - __builtin_clzll(ns);
        b = (e - 6) * 4 + (int)((ns >> (e - 2)) & 3);
    }
    if (b >= TMEM_TSWAP_HIST)
        b = TMEM_TSWAP_HIST - 1;
    bump(&t->c.hist[b]);
}

static uint8_t stamp_now(tmem_tswap *t)
{
    return (uint8_t)(atomic_load_explicit(&t->interval, memory_order_relaxed) %
                         255 +
                     1);
}

/* Wakes the evictor, on this CPU, when resident pages ran past the
 * target's slack. */
static void maybe_kick(tmem_tswap *t)
{
    if (tswap__over_slack(t)) {
        atomic_store_explicit(&t->kick_cpu, sched_getcpu(),
                              memory_order_relaxed);
        tswap__kick(t);
    }
}

/* maybe_kick, but not for a fault in SIGBUS mode: its thread puts pages
 * out itself once the page is in (throttle, below). */
static void maybe_kick_unless_throttled(tmem_tswap *t, int how)
{
    if ((how & TS_RES_FAULT) && t->cfg.fault_mode == TMEM_TSWAP_SIGBUS &&
        t->evictor_on)
        return;
    maybe_kick(t);
}

/* ---- the lost page ------------------------------------------------------- */

static char *hex(char *end, uint64_t v)
{
    *--end = '\0';
    do
        *--end = "0123456789abcdef"[v & 15];
    while (v >>= 4);
    return end;
}

static char *dec(char *end, uint64_t v)
{
    *--end = '\0';
    do
        *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

/* Stops the process: the page tswap stored at addr cannot be read back.
 * One line on stderr, then abort(): never a zero or wrong page. */
void tswap__lost(tmem_tswap *t, uintptr_t addr, uint32_t slot, int rc)
{
    (void)t;
    char hb[24], db[24];
    const char *why =
        rc == 0 ? "the store no longer holds it" : tmem_strerror(rc);
    const char *parts[] = {"tmem tswap: page at 0x",
                           hex(hb + sizeof hb, addr),
                           " is lost (frontswap slot ",
                           dec(db + sizeof db, slot),
                           "): ",
                           why,
                           rc == -EPIPE ? " (the process that stored it "
                                          "or its store is gone)"
                                        : "",
                           "; stopping\n"};
    tswap__write_err(parts, sizeof parts / sizeof parts[0]);
    abort();
}

/* Stops the process: tswap cannot go on without losing a page (what,
 * at addr, failed with err).  One line on stderr, then abort(). */
void tswap__die(const char *what, uintptr_t addr, int err)
{
    char hb[24], db[24];
    const char *parts[] = {"tmem tswap: ", what,
                           " 0x",          hex(hb + sizeof hb, addr),
                           ": errno ",     dec(db + sizeof db, (uint64_t)-err),
                           "; stopping\n"};
    tswap__write_err(parts, sizeof parts / sizeof parts[0]);
    abort();
}

/* ---- loading and placing ------------------------------------------------- */

/* Reads slot into buf: directly, else through the connection (or, in a
 * child, through the parent).  Returns 1, 0 (not stored) or an error. */
int tswap__load(tmem_tswap *t, uint32_t slot, void *buf, bool child)
{
    int rc = tmem_frontswap_load_direct(t->fs, 0, slot, buf);
    if (rc != TMEM_EAGAIN)
        return rc;
    if (!child)
        return tmem_frontswap_load(t->fs, 0, slot, buf);
    bump(&t->c.proxy_loads);
    return tswap__proxy_load(t, slot, buf);
}

/* An ioctl said EAGAIN: an event (fork, mremap, madvise) is pending on
 * the descriptor until the monitor reads it.  The monitor itself must
 * not wait for that; anyone else yields and retries. */
static bool retry_again(void)
{
    if (in_monitor)
        return false;
    sched_yield();
    return true;
}

/* Maps buf (frame f, or -1: a buffer to copy) at addr: moves the frame
 * in, or copies when MOVE refuses it.  Returns 0, -EEXIST (something is
 * mapped there), -ENOENT (the range is gone), or -EAGAIN (monitor only:
 * try again after reading events).  The frame is used up or given
 * back. */
static int place(tmem_tswap *t, uintptr_t addr, int f, const char *buf)
{
    int ufd = tswap__ufd(t), rc;
    bool move = f >= 0;
    for (int tries = 0;; tries++) {
        size_t moved;
        rc = move ? tswap__uffd_move(ufd, addr, (uintptr_t)buf, TS_PAGE, &moved)
                  : tswap__uffd_copy(ufd, addr, buf);
        if (rc == -EAGAIN && retry_again())
            continue;
        if (rc == 0 || rc == -EEXIST || rc == -ENOENT || rc == -EAGAIN)
            break;
        if (move) { /* MOVE refused the frame: copy from it instead */
            move = false;
            continue;
        }
        if (tries > 100)
            tswap__die("cannot map the page at", addr, rc);
    }
    if (f >= 0 && rc == 0 && move) {
        tswap__slot_emptied(t, f);
        bump(&t->c.pagein_moves);
    } else if (f >= 0)
        tswap__frame_put(t, f);
    return rc;
}

/* Maps a zero page at addr: a writable one for a write (one fault, not
 * two), the shared zero page for a read. */
static int fill_zero(tmem_tswap *t, uintptr_t addr, bool write)
{
    for (;;) {
        int ufd = tswap__ufd(t);
        int rc = write ? tswap__uffd_copy(ufd, addr, zero_page)
                       : tswap__uffd_zero(ufd, addr);
        if (rc == -EAGAIN && retry_again())
            continue;
        return rc;
    }
}

/* ---- the transitions ----------------------------------------------------- */

static int zero_in(tmem_tswap *t, struct ts_region *r, uintptr_t addr,
                   uint64_t i, uint32_t v, bool write, int how)
{
    _Atomic uint32_t *w = &r->pg->state[i];
    int rc = fill_zero(t, addr, write || (how & TS_RES_PREFAULT));
    if (rc < 0 && rc != -EEXIST) {
        tswap__release(t, w, PS_REF | PS_COPY | PS_FRESH, PS_STATE(v));
        return -EAGAIN;
    }
    tswap__release(t, w, 0, PS_RESIDENT | PS_REF);
    atomic_store_explicit(&r->pg->stamp[i], stamp_now(t), memory_order_relaxed);
    if (how & TS_RES_FAULT)
        bump(&t->c.faults_zero);
    maybe_kick_unless_throttled(t, how);
    return 0;
}

/* A resident page faulted: it is missing after all (discarded behind
 * our back, e.g. MADV_DONTNEED without events), so it is zeros now; or
 * another thread mapped it meanwhile (EEXIST).  Owned by the caller. */
static int refill(tmem_tswap *t, struct ts_region *r, uintptr_t addr,
                  uint64_t i, bool write)
{
    int rc = fill_zero(t, addr, write);
    tswap__release(t, &r->pg->state[i], PS_REF | PS_COPY | PS_FRESH,
                   PS_RESIDENT);
    return rc == -EAGAIN ? -EAGAIN : 0;
}

static void readahead(tmem_tswap *t, struct ts_region *r, uint64_t i,
                      bool child);

/* Loads the slot of the owned page i (claimed from v) into a frame (or a
 * buffer on the stack) and maps it at addr; a page that cannot be loaded
 * stops the process (tswap__lost).  Returns 0, or -EAGAIN when the region
 * went away: the page is then released as it was. */
static int load_place(tmem_tswap *t, struct ts_region *r, uintptr_t addr,
                      uint64_t i, uint32_t v, bool child)
{
    _Atomic uint32_t *w = &r->pg->state[i];
    uint32_t slot = r->pg->slot[i];
    char local[TS_PAGE] __attribute__((aligned(64)));
    int f = child ? -1 : tswap__frame_take(t);
    char *buf = f >= 0 ? tswap__stg_addr(t, f) : local;
    int rc = tswap__load(t, slot, buf, child);
    if (rc != 1) {
        if (f >= 0)
            tswap__frame_put(t, f);
        tswap__lost(t, addr, slot, rc);
    }
    rc = place(t, addr, f, buf);
    if (rc < 0 && rc != -EEXIST) {
        tswap__release(t, w, PS_REF | PS_COPY | PS_FRESH, PS_STATE(v));
        return -EAGAIN;
    }
    return 0;
}

/* Brings the owned page i (claimed from v: STORED, or RESIDENT|COPY in a
 * child) back from its slot. */
static int page_in(tmem_tswap *t, struct ts_region *r, uintptr_t addr,
                   uint64_t i, uint32_t v, bool child, int how)
{
    uint64_t t0 = tswap__now_ns();
    _Atomic uint32_t *w = &r->pg->state[i];
    if (load_place(t, r, addr, i, v, child) < 0)
        return -EAGAIN; /* the region went away: as it was */
    tswap__release(t, w, 0,
                   PS_RESIDENT | PS_REF | (child ? 0 : PS_COPY | PS_FRESH));
    atomic_store_explicit(&r->pg->stamp[i], stamp_now(t), memory_order_relaxed);
    if (how & TS_RES_FAULT) {
        bump(&t->c.faults_pagein);
        tswap__hist_add(t, tswap__now_ns() - t0);
        readahead(t, r, i, child);
    } else if (how & TS_RES_PREFAULT) {
        bump(&t->c.prefaults);
    }
    maybe_kick_unless_throttled(t, how);
    return 0;
}

/* Makes the region page at addr resident.  Call inside a reader section.
 * how: TS_RES_FAULT (a fault: counted, read-ahead), TS_RES_PREFAULT.
 * Returns 0, -ENOENT (not in a region) or -EAGAIN (the page could not be
 * mapped now: the region went away, or, in the monitor, an event is
 * pending). */
int tswap__resolve(tmem_tswap *t, uintptr_t addr, bool write, int how)
{
    addr &= ~(uintptr_t)(TS_PAGE - 1);
    bool child = tswap__child_now(t), waited = false;
    for (;;) {
        struct ts_region *r = tswap__lookup(t, addr);
        if (!r)
            return -ENOENT;
        uint64_t i;
        _Atomic uint32_t *w = tswap__state(r, addr, &i);
        uint32_t v = atomic_load(w);
        int rc = 1; /* 1: look again */
        switch (PS_STATE(v)) {
        case PS_NONE:
            if (tswap__claim(t, w, &v, PS_PAGING_IN))
                rc = zero_in(t, r, addr, i, v, write, how);
            break;
        case PS_STORED:
            if (tswap__claim(t, w, &v, PS_PAGING_IN))
                rc = page_in(t, r, addr, i, v, child, how);
            break;
        case PS_RESIDENT:
            if ((how & TS_RES_PREFAULT) && !(child && (v & PS_COPY)))
                return 0;
            if (!tswap__claim(t, w, &v, PS_PAGING_IN))
                break;
            rc = child && (v & PS_COPY) ? page_in(t, r, addr, i, v, child, how)
                                        : refill(t, r, addr, i, write);
            break;
        default:
            if (early_child(t)) {
                /* Copied mid-page-in from the parent, whose thread is not
                 * here: the slot still holds the page. */
                uint32_t nv = (v & ~(PS_MASK | PS_WAIT)) | PS_STORED;
                if (atomic_compare_exchange_strong(w, &v, nv))
                    atomic_fetch_add(&t->c.stored, 1);
                break;
            }
            tswap__wait(w, v);
            waited = true;
            break;
        }
        if (rc <= 0) {
            if (waited && (how & TS_RES_FAULT))
                bump(&t->c.faults_waited);
            return rc;
        }
    }
}

/* Brings the page at addr of r in if it is stored (or, in a child, if it
 * is resident with a copy: it may be missing there).  keep_copy: the
 * slot stays the page's copy; else it is released (caller holds
 * t->lock).  Returns 1 when a page came in, 0 otherwise. */
int tswap__bring_page(tmem_tswap *t, struct ts_region *r, uintptr_t addr,
                      bool keep_copy)
{
    bool child = tswap__child_now(t);
    uint64_t i;
    _Atomic uint32_t *w = tswap__state(r, addr, &i);
    uint32_t v;
    do {
        v = tswap__settle(w);
        if (PS_STATE(v) != PS_STORED &&
            !(child && PS_STATE(v) == PS_RESIDENT && (v & PS_COPY)))
            return 0;
    } while (!tswap__claim(t, w, &v, PS_PAGING_IN));
    uint32_t slot = r->pg->slot[i];
    if (load_place(t, r, addr, i, v, child) < 0)
        return 0;
    keep_copy = keep_copy && !child;
    tswap__release(t, w, 0, PS_RESIDENT | (keep_copy ? PS_COPY : 0));
    if (!keep_copy && !child)
        tswap__slot_release_locked(t, slot);
    return PS_STATE(v) == PS_STORED;
}

/* ---- read-ahead ---------------------------------------------------------- */

struct ra_page {
    uint64_t i;
    int f;
    int rc;
    uint32_t v;
};

/* Claims the stored pages of region pages p+1..p+n with a frame each. */
static size_t ra_claim(tmem_tswap *t, struct ts_region *r, uint64_t p,
                       uint64_t n, struct ra_page *out)
{
    size_t k = 0;
    for (uint64_t j = p + 1; j <= p + n; j++) {
        _Atomic uint32_t *w = &r->pg->state[r->first + j];
        uint32_t v = atomic_load(w);
        if (PS_STATE(v) != PS_STORED)
            continue;
        int f = tswap__frame_take(t);
        if (f < 0)
            break;
        if (!tswap__claim(t, w, &v, PS_PAGING_IN)) {
            tswap__frame_put(t, f);
            continue;
        }
        out[k++] = (struct ra_page){r->first + j, f, 0, v};
    }
    return k;
}

/* Loads the claimed pages: directly, then what that could not read in
 * one batch (or, in a child, one by one through the parent). */
static void ra_load(tmem_tswap *t, struct ts_region *r, struct ra_page *pp,
                    size_t k, bool child)
{
    uint64_t offs[64];
    void *bufs[64];
    int res[64], map[64], m = 0;
    for (size_t j = 0; j < k; j++) {
        char *buf = tswap__stg_addr(t, pp[j].f);
        uint32_t slot = r->pg->slot[pp[j].i];
        pp[j].rc = tmem_frontswap_load_direct(t->fs, 0, slot, buf);
        if (pp[j].rc == TMEM_EAGAIN && child) {
            pp[j].rc = tswap__proxy_load(t, slot, buf);
        } else if (pp[j].rc == TMEM_EAGAIN) {
            offs[m] = slot;
            bufs[m] = buf;
            map[m++] = (int)j;
        }
    }
    if (m &&
        tmem_frontswap_load_batch(t->fs, 0, offs, bufs, (size_t)m, res) >= 0)
        for (int j = 0; j < m; j++)
            pp[map[j]].rc = res[j];
}

/* Read-ahead starts at the RA_MIN_RUN-th fault in a row on consecutive
 * pages (a read-ahead's own pages count: the fault after them goes on).
 * Two in a row is what an object spanning two pages makes (redis's 4 KiB
 * values live in jemalloc's 5 KiB class) however randomly it is reached:
 * reading ahead there brought in pages nobody wanted and pushed out pages
 * that were (redis, random GETs: 1.07-1.81x the GETs without read-ahead,
 * docs/tswap.md). */
#define RA_MIN_RUN 3
static void readahead(tmem_tswap *t, struct ts_region *r, uint64_t i,
                      bool child)
{
    uint64_t p = i - r->first, npg = (r->end - r->start) >> TS_SHIFT;
    uint64_t expect = atomic_exchange(&r->ra_next, p + 1);
    uint32_t run = 1;
    if (expect == p)
        run = atomic_fetch_add(&r->ra_run, 1) + 1;
    else
        atomic_store(&r->ra_run, 1);
    unsigned ra = t->cfg.readahead;
    if (!ra || run < RA_MIN_RUN || child)
        return;
    struct ra_page pp[64];
    uint64_t n = p + ra < npg ? ra : npg - 1 - p;
    size_t k = ra_claim(t, r, p, n, pp);
    if (!k)
        return;
    ra_load(t, r, pp, k, child);
    uint64_t last = p;
    for (size_t j = 0; j < k; j++) {
        _Atomic uint32_t *w = &r->pg->state[pp[j].i];
        uintptr_t a = r->start + ((pp[j].i - r->first) << TS_SHIFT);
        if (pp[j].rc == 1 &&
            place(t, a, pp[j].f, tswap__stg_addr(t, pp[j].f)) == 0) {
            tswap__release(t, w, 0, PS_RESIDENT | PS_COPY | PS_FRESH);
            bump(&t->c.readahead);
            last = pp[j].i - r->first;
            continue;
        }
        if (pp[j].rc != 1) /* a real fault will judge it */
            tswap__frame_put(t, pp[j].f);
        tswap__release(t, w, PS_REF | PS_COPY | PS_FRESH, PS_STORED);
    }
    atomic_store(&r->ra_next, last + 1);
}

/* ---- the signal handler -------------------------------------------------- */

static struct sigaction next_sa[2];
static _Atomic int next_idx;
static _Atomic bool next_given;
static pthread_mutex_t next_lock = PTHREAD_MUTEX_INITIALIZER;

static void next_store(const struct sigaction *sa)
{
    int i = atomic_load(&next_idx) ^ 1;
    if (sa)
        next_sa[i] = *sa;
    else
        next_sa[i] = (struct sigaction){.sa_handler = SIG_DFL};
    atomic_store(&next_idx, i);
}

void tmem_tswap_set_next_sigbus(const struct sigaction *sa)
{
    pthread_mutex_lock(&next_lock);
    next_store(sa);
    atomic_store(&next_given, true);
    pthread_mutex_unlock(&next_lock);
}

/* Hands a SIGBUS that is not ours to the program's handler, or to the
 * default action: reset to it, and let the faulting instruction run
 * again (a synchronous fault then kills with the right address) or send
 * the signal again (one sent by kill()). */
static void chain(int sig, siginfo_t *si, void *uc)
{
    struct sigaction n = next_sa[atomic_load(&next_idx)];
    if (n.sa_flags & SA_SIGINFO) {
        n.sa_sigaction(sig, si, uc);
        return;
    }
    if (n.sa_handler != SIG_DFL && n.sa_handler != SIG_IGN) {
        n.sa_handler(sig);
        return;
    }
    if (n.sa_handler == SIG_IGN && si->si_code <= 0)
        return;
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGBUS, &dfl, NULL);
    if (si->si_code <= 0)
        raise(SIGBUS);
}

static bool fault_is_write(void *ucv)
{
#if defined(__x86_64__)
    const ucontext_t *uc = ucv;
    return (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
    (void)ucv;
    return true;
#endif
}

/* Waits while the monitor is handling events (an mremap may have moved a
 * region here a moment ago). */
static void wait_events(tmem_tswap *t)
{
    uint32_t b;
    while ((b = atomic_load(&t->ev_busy)) != 0)
        tswap__futex_wait(&t->ev_busy, b, 1000 * 1000);
}

/* A fault at addr that no region holds: a range registered with our
 * userfaultfd that tswap does not know (a region grown in place by
 * mremap) gets a zero page, which is what the kernel would give it.
 * Returns false when the range is not ours at all. */
bool tswap__fault_unknown(tmem_tswap *t, uintptr_t addr, bool write)
{
    int rc = fill_zero(t, addr & ~(uintptr_t)(TS_PAGE - 1), write);
    if (rc == 0 || rc == -EEXIST) {
        bump(&t->c.unknown_faults);
        return true;
    }
    return false;
}

/* A faulting thread that took resident pages past the target's slack
 * puts pages out itself (tswap__evict_direct: the kernel's direct
 * reclaim), outside every reader section and holding nothing.  When it
 * cannot (t->lock is held: by this thread, interrupted, or by another
 * that is evicting), it wakes the evictor on this CPU and waits for its
 * pass, at most THROTTLE_NS: either way no thread of the process runs
 * beside the eviction, so its MOVEs need no TLB flush on another CPU. */
#define THROTTLE_NS (20 * 1000 * 1000)
static void throttle(tmem_tswap *t)
{
    if (!t->evictor_on)
        return;
    /* The interval's scan of written bits, here for the same reason. */
    if (tswap__scan_due(t, 100) && tswap__trylock(t)) {
        if (tswap__scan_due(t, 100))
            tswap__scan_locked(t);
        tswap__unlock(t);
    }
    if (!tswap__over_slack(t) || tswap__evict_direct(t))
        return;
    uint32_t p = atomic_load(&t->passes);
    maybe_kick(t);
    uint64_t end = tswap__now_ns() + THROTTLE_NS;
    for (uint64_t now; atomic_load(&t->passes) == p &&
                       (now = tswap__now_ns()) < end && !atomic_load(&t->stop);)
        tswap__futex_wait(&t->passes, p, end - now);
}

static bool fault(tmem_tswap *t, uintptr_t addr, bool write)
{
    uint32_t idx;
    tswap__read_enter(t, &idx);
    int rc = tswap__resolve(t, addr, write, TS_RES_FAULT);
    tswap__read_leave(t, idx);
    if (rc != -ENOENT) {
        throttle(t);
        return true;
    }
    wait_events(t);
    tswap__read_enter(t, &idx);
    rc = tswap__resolve(t, addr, write, TS_RES_FAULT);
    tswap__read_leave(t, idx);
    return rc != -ENOENT || tswap__fault_unknown(t, addr, write);
}

/* Handlers between loading tswap__current and being done with it:
 * destroy waits for none after clearing it. */
static _Atomic int handlers_in;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    atomic_fetch_add(&handlers_in, 1);
    tmem_tswap *t = atomic_load(&tswap__current);
    bool ours = t && !t->detached && si->si_code > 0 &&
                fault(t, (uintptr_t)si->si_addr, fault_is_write(uc));
    atomic_fetch_sub(&handlers_in, 1);
    if (!ours)
        chain(sig, si, uc);
    errno = saved;
}

/* After tswap__current was cleared: waits until no handler can still be
 * using the tswap that was there. */
void tswap__handlers_drain(void)
{
    while (atomic_load(&handlers_in))
        sched_yield();
}

/* In a fork child: the parent's other threads' handlers are not here. */
void tswap__handlers_reset(void)
{
    atomic_store(&handlers_in, 0);
}

int tswap__sigbus_install(tmem_tswap *t)
{
    struct sigaction sa = {.sa_sigaction = on_sigbus,
                           .sa_flags = SA_SIGINFO | SA_RESTART};
    struct sigaction old;
    sigemptyset(&sa.sa_mask);
    pthread_mutex_lock(&next_lock);
    int rc = sigaction(SIGBUS, &sa, &old);
    if (rc == 0 && !atomic_load(&next_given) && old.sa_sigaction != on_sigbus)
        next_store(&old);
    pthread_mutex_unlock(&next_lock);
    if (rc < 0)
        tswap__say(t, "sigaction(SIGBUS): %s", strerror(errno));
    return rc < 0 ? -errno : 0;
}

/* Puts the program's handler back (destroy). */
void tswap__sigbus_restore(void)
{
    pthread_mutex_lock(&next_lock);
    struct sigaction n = next_sa[atomic_load(&next_idx)];
    sigaction(SIGBUS, &n, NULL);
    pthread_mutex_unlock(&next_lock);
}
