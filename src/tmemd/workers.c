/*
 * The ring workers: at most one thread per CPU serves every tenant's ring,
 * however many tenants there are.
 *
 * A ring is in the workers' set from its setup to its session's end, in
 * one of three states: IDLE (its next batch is awaited: sq_seq), PARKED
 * (a batch began whose next entry is not written yet: sq_ready) or
 * CLAIMED (a worker is serving it; ring.c).  A worker with nothing to do
 * sleeps on the awaited words of up to 127 rings at once (futex_waitv,
 * Linux >= 5.16) and on the set's own word `ctl`, which is bumped when a
 * ring comes or goes.  Before it sleeps it announces each of those words
 * in its ring's srv_sleeping, so the tenant's next post FUTEX_WAKEs one
 * sleeping worker.  A ring a worker just served stays unannounced while
 * that worker is awake (it looks at the ring again itself: a tenant's
 * wake then would only rouse a second worker, on the CPU the tenant
 * needs); a worker that takes another ring announces the rest first, and
 * wakes a sleeper through ctl when one of them has work already.
 *
 * Affinity: a ring's home is the worker that served it last; a worker
 * takes and sleeps on its home rings and on those whose home worker is
 * serving another ring, so a tenant's wake goes to the worker whose CPU
 * has its ring warm.  A ring whose home worker is awake but not serving
 * is left to it; a sleeper that left such rings out looks again within a
 * millisecond (the home worker may go on to serve another ring), so a
 * ring waits at most that, or one batch of another ring.  A worker about
 * to serve a ring hands one of its other busy home rings to a sleeping
 * worker with two fewer, so two busy tenants do not take turns on one
 * worker while another sleeps.  Rings past 127 per worker are likewise
 * looked at every millisecond.
 *
 * Fairness (start-time fair queueing): when a worker is free it takes, of
 * the rings with work, the one whose tenant has had the least service for
 * its weight.  A ring's virtual time grows, for each time it was served,
 * by what it cost — its pages, or the worker's time in 2 us units when
 * that is more (so spinning on a slow or hostile tenant is paid for) —
 * x 1024 / its client's weight.  A ring that comes back after idling
 * starts at the virtual time of the last pick, so idling banks nothing.
 * tmemd_sched_waits_total counts the rings with work passed over for one
 * with less.
 *
 * Invariants: the set, each ring's state, vtime and busy flag change only
 * under rings.mu, except the claimed ring's batch fields (ring.c), which
 * its worker publishes by taking rings.mu again.  A session's ring leaves
 * the set (tmemd_rings_remove) only once no worker holds it, and before
 * its memory is unmapped; a sleeping worker that still waits on its word
 * is woken through ctl.
 */
#include "tmemd.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WATCH_MAX 127             /* rings one sleeping worker waits on */
#define WAIT_NS 100000000ull      /* a sleeping worker looks again this often */
#define OVERFLOW_NS 1000000ull    /* ... or this often, past WATCH_MAX */
#define IDLE_NS 2000000ull        /* busy until this long without a batch */
#define VSCALE 1024u
#define PAGE_NS 2000u             /* a page's worth of a worker's time */
#define WORKERS_MAX 64

static uint32_t load(const uint32_t *w)
{
    return atomic_load_explicit((_Atomic uint32_t *)w, memory_order_acquire);
}

/* The word an unclaimed ring waits on, and the value it waits past. */
static uint32_t *awaited(struct tmemd_session *s, uint32_t *val)
{
    tmem__ring_hdr *h = s->ring.hdr;
    if (s->ring_state == TMEMD_RING_PARKED) {
        *val = s->bt.seen;
        return &h->sq_ready;
    }
    *val = s->ring_last;
    return &h->sq_seq;
}

/* Tells the tenant which word to wake a sleeping worker on (seq_cst:
 * pairs with tmem__ring_post, so whoever looks at the word after this
 * sees its post), once per time the ring is left unclaimed (rings.mu). */
static void announce(struct tmemd_session *s)
{
    if (s->ring_announced)
        return;
    atomic_store((_Atomic uint32_t *)&s->ring.hdr->srv_sleeping,
                 s->ring_state == TMEMD_RING_PARKED ? TMEM_RING_W_SQ_READY
                                                     : TMEM_RING_W_SQ_SEQ);
    s->ring_announced = true;
}

/* A worker takes s: its tenant need not wake anyone (rings.mu). */
static void claim(struct tmemd_session *s)
{
    s->ring_state = TMEMD_RING_CLAIMED;
    atomic_store((_Atomic uint32_t *)&s->ring.hdr->srv_sleeping, 0);
    s->ring_announced = false;
}

bool tmemd_ring_has_work(struct tmemd_session *s)
{
    if (atomic_load(&s->ring_stop))
        return false;
    uint32_t val, *w = awaited(s, &val);
    return load(w) != val;
}

/* Whether worker me may serve s: its home ring, or one whose home worker
 * is busy with another (me -1: any worker). */
static bool mine(const struct tmemd_rings *q, const struct tmemd_session *s,
                 int me)
{
    return me < 0 || s->ring_home == me || s->ring_home >= q->nworkers ||
           q->w[s->ring_home].serving;
}

struct tmemd_session *tmemd_rings_pick_locked(struct tmemd *d, int me,
                                              uint64_t now,
                                              uint64_t *wake_in)
{
    struct tmemd_rings *q = &d->rings;
    struct tmemd_session *best = NULL;
    uint64_t best_v = 0, with_work = 0;
    for (int k = 0; k < q->n; k++) {
        struct tmemd_session *s = q->r[k];
        if (s->ring_state == TMEMD_RING_CLAIMED)
            continue;
        if (!tmemd_ring_has_work(s)) {
            if (s->ring_busy && s->ring_state == TMEMD_RING_IDLE) {
                uint64_t quiet = now > s->ring_idle_from
                                     ? now - s->ring_idle_from
                                     : 0;
                if (quiet >= IDLE_NS) {
                    s->ring_busy = false;
                    atomic_fetch_sub(&d->rings_busy, 1);
                } else if (IDLE_NS - quiet < *wake_in) {
                    *wake_in = IDLE_NS - quiet;
                }
            }
            continue;
        }
        with_work++;
        if (!mine(q, s, me))
            continue; /* its home worker is awake or woken for it */
        uint64_t v = s->vtime > q->vnow ? s->vtime : q->vnow;
        if (!best || v < best_v) {
            best = s;
            best_v = v;
        }
    }
    if (best) {
        best->vtime = best_v; /* idling banks nothing */
        q->vnow = best_v;
        if (with_work > 1)
            atomic_fetch_add_explicit(&d->sched_waits, with_work - 1,
                                      memory_order_relaxed);
    }
    return best;
}

void tmemd_rings_charge_locked(struct tmemd_session *s, uint32_t pages,
                               uint64_t ns)
{
    uint64_t units = pages;
    if (ns / PAGE_NS > units)
        units = ns / PAGE_NS;
    uint32_t w = tmem_client_weight(s->client);
    s->vtime += units * VSCALE / (w ? w : 1);
}

/* Announces every unclaimed ring but s; returns whether one of worker
 * me's home rings has work (now another worker's to take). */
static bool announce_others_locked(struct tmemd_rings *q,
                                   struct tmemd_session *s, int me)
{
    bool work = false;
    for (int k = 0; k < q->n; k++) {
        struct tmemd_session *o = q->r[k];
        if (o == s || o->ring_state == TMEMD_RING_CLAIMED)
            continue;
        announce(o);
        work = work || (o->ring_home == me && tmemd_ring_has_work(o));
    }
    return work;
}

/* Worker me, about to serve s, hands one of its other busy home rings
 * to a sleeping worker with fewer busy home rings by two or more (the
 * sleeper must then be woken: returns true).  Without it two busy rings
 * at home on one worker took turns on it while another slept. */
static bool rebalance_locked(struct tmemd_rings *q, struct tmemd_session *s,
                             int me)
{
    int busy[WORKERS_MAX] = {0}, to = -1;
    struct tmemd_session *give = NULL;
    for (int k = 0; k < q->n; k++) {
        struct tmemd_session *o = q->r[k];
        /* a claimed ring is busy (and its flag its worker's to write) */
        bool claimed = o->ring_state == TMEMD_RING_CLAIMED;
        if (o->ring_home < 0 || o->ring_home >= q->nworkers ||
            !(claimed || o->ring_busy))
            continue;
        busy[o->ring_home]++;
        if (o->ring_home == me && o != s && !claimed)
            give = o;
    }
    if (!give)
        return false;
    for (int k = 0; k < q->nworkers; k++)
        if (k != me && q->w[k].sleeping && (to < 0 || busy[k] < busy[to]))
            to = k;
    if (to < 0 || busy[me] < busy[to] + 2)
        return false;
    give->ring_home = to;
    return true;
}

static void wake_one(struct tmemd_rings *q)
{
    atomic_fetch_add(&q->ctl, 1);
    syscall(SYS_futex, &q->ctl, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void wake_all(struct tmemd_rings *q)
{
    atomic_fetch_add(&q->ctl, 1);
    syscall(SYS_futex, &q->ctl, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Fills wv with ctl and the awaited words of worker me's unclaimed rings
 * (its home rings and those whose home worker is serving another; from a
 * rotating start, so that past WATCH_MAX each gets its turn).  Returns
 * the count; lowers *wake_in when some rings are left out. */
static unsigned watch_locked(struct tmemd_rings *q, int me,
                             struct futex_waitv *wv, unsigned *rot,
                             uint64_t *wake_in)
{
    unsigned nw = 0, n = (unsigned)q->n;
    wv[nw++] = (struct futex_waitv){.val = atomic_load(&q->ctl),
                                    .uaddr = (uintptr_t)&q->ctl,
                                    .flags = FUTEX_32};
    for (unsigned k = 0; k < n; k++) {
        struct tmemd_session *s = q->r[(k + *rot) % n];
        if (s->ring_state == TMEMD_RING_CLAIMED)
            continue;
        if (!mine(q, s, me)) {
            /* its home worker is awake: it may go on to serve another
             * ring for a while, and nobody would wake for this one; look
             * again within a millisecond (a sleeping home worker watches
             * it itself) */
            if (!q->w[s->ring_home].sleeping && *wake_in > OVERFLOW_NS)
                *wake_in = OVERFLOW_NS;
            continue;
        }
        if (nw == WATCH_MAX + 1) {
            if (*wake_in > OVERFLOW_NS)
                *wake_in = OVERFLOW_NS;
            break;
        }
        announce(s);
        uint32_t val, *w = awaited(s, &val);
        wv[nw++] = (struct futex_waitv){
            .val = val, .uaddr = (uintptr_t)w, .flags = FUTEX_32};
    }
    (*rot)++;
    return nw;
}

/* Sleeps until a watched word moves or wake_in passes.  A word that moved
 * already, or memory unmapped since (its ring left: ctl moved too),
 * returns at once. */
static void sleep_on(struct tmemd_rings *q, struct futex_waitv *wv,
                     unsigned nw, uint64_t wake_in)
{
    struct timespec ts;
    if (!q->no_waitv) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + wake_in;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        if (syscall(SYS_futex_waitv, wv, nw, 0, &ts, CLOCK_MONOTONIC) >= 0 ||
            errno != ENOSYS)
            return;
        q->no_waitv = true; /* an old kernel: poll each millisecond */
    }
    if (wake_in > OVERFLOW_NS)
        wake_in = OVERFLOW_NS;
    ts = (struct timespec){0, (long)wake_in};
    syscall(SYS_futex, &q->ctl, FUTEX_WAIT, (uint32_t)wv[0].val, &ts, NULL,
            0);
}

static void *worker_main(void *arg)
{
    struct tmemd_worker *me = arg;
    struct tmemd *d = me->d;
    struct tmemd_rings *q = &d->rings;
    struct futex_waitv wv[WATCH_MAX + 1];
    unsigned rot = 0;
    pthread_mutex_lock(&q->mu);
    while (!atomic_load(&q->stop)) {
        uint64_t now = tmem__now_ns(), wake_in = WAIT_NS;
        struct tmemd_session *s =
            tmemd_rings_pick_locked(d, me->id, now, &wake_in);
        if (!s) {
            unsigned nw = watch_locked(q, me->id, wv, &rot, &wake_in);
            me->sleeping = true;
            pthread_mutex_unlock(&q->mu);
            sleep_on(q, wv, nw, wake_in);
            pthread_mutex_lock(&q->mu);
            me->sleeping = false;
            continue;
        }
        claim(s);
        me->serving = true;
        /* the rings this worker left unannounced (it looked at them
         * itself) are a sleeper's to watch while it serves s; a home ring
         * of its with work already wakes a sleeper to take it */
        bool moved = rebalance_locked(q, s, me->id);
        bool others = announce_others_locked(q, s, me->id);
        pthread_mutex_unlock(&q->mu);
        /* wakes after the unlock: a woken thread may take this CPU at
         * once, and must not find rings.mu held by a thread it preempted */
        if (moved)
            wake_all(q);
        else if (others)
            wake_one(q);
        uint32_t pages;
        int st = tmemd_ring_serve(s, &pages);
        uint64_t ns = tmem__now_ns() - now;
        pthread_mutex_lock(&q->mu);
        me->serving = false;
        tmemd_rings_charge_locked(s, pages, ns);
        /* unannounced: its tenant's next post wakes nobody while this
         * worker is awake and looks at it anyway; and the worker that
         * served it last becomes its home (the tenant's wakes go where
         * its ring's memory is warm) */
        s->ring_state = st;
        s->ring_home = me->id;
        if (atomic_load(&s->ring_stop))
            pthread_cond_broadcast(&q->given_back);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

void tmemd_rings_init(struct tmemd *d)
{
    struct tmemd_rings *q = &d->rings;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->given_back, NULL);
    q->r = NULL;
    q->n = q->cap = 0;
    q->vnow = 0;
    q->nworkers = 0;
    q->next_home = 0;
    q->w = NULL;
    q->no_waitv = false;
    atomic_store(&q->ctl, 0);
    atomic_store(&q->stop, 0);
}

int tmemd_rings_start(struct tmemd *d, int workers)
{
    struct tmemd_rings *q = &d->rings;
    if (workers < 1)
        workers = 1;
    if (workers > WORKERS_MAX)
        workers = WORKERS_MAX;
    q->w = calloc((size_t)workers, sizeof *q->w);
    if (!q->w)
        return -ENOMEM;
    pthread_mutex_lock(&q->mu); /* nworkers is read under it */
    for (int k = 0; k < workers; k++) {
        struct tmemd_worker *w = &q->w[k];
        *w = (struct tmemd_worker){.d = d, .id = k};
        int e = pthread_create(&w->thr, NULL, worker_main, w);
        if (e) {
            if (q->nworkers)
                break; /* fewer workers: still one per CPU at most */
            pthread_mutex_unlock(&q->mu);
            free(q->w);
            q->w = NULL;
            return -e;
        }
        pthread_setname_np(w->thr, "tmemd-ring");
        q->nworkers++;
    }
    pthread_mutex_unlock(&q->mu);
    return q->nworkers;
}

void tmemd_rings_stop(struct tmemd *d)
{
    struct tmemd_rings *q = &d->rings;
    atomic_store(&q->stop, 1);
    wake_all(q);
    for (int k = 0; k < q->nworkers; k++)
        pthread_join(q->w[k].thr, NULL);
    free(q->w);
    free(q->r);
    q->w = NULL;
    q->r = NULL;
    q->nworkers = q->n = q->cap = 0;
}

int tmemd_rings_add(struct tmemd *d, struct tmemd_session *s)
{
    struct tmemd_rings *q = &d->rings;
    pthread_mutex_lock(&q->mu);
    if (q->n == q->cap) {
        int cap = q->cap ? 2 * q->cap : 16;
        struct tmemd_session **r = realloc(q->r, (size_t)cap * sizeof *r);
        if (!r) {
            pthread_mutex_unlock(&q->mu);
            return -ENOMEM;
        }
        q->r = r;
        q->cap = cap;
    }
    s->ring_state = TMEMD_RING_IDLE;
    s->ring_busy = false;
    s->vtime = q->vnow;
    s->ring_announced = false;
    s->ring_home = q->nworkers ? (int)(q->next_home++ % (unsigned)q->nworkers)
                               : 0;
    announce(s);
    q->r[q->n++] = s;
    pthread_mutex_unlock(&q->mu);
    wake_all(q); /* its first batch may be there already */
    return 0;
}

void tmemd_rings_remove(struct tmemd *d, struct tmemd_session *s)
{
    struct tmemd_rings *q = &d->rings;
    atomic_store(&s->ring_stop, 1);
    pthread_mutex_lock(&q->mu);
    while (s->ring_state == TMEMD_RING_CLAIMED)
        pthread_cond_wait(&q->given_back, &q->mu);
    for (int k = 0; k < q->n; k++)
        if (q->r[k] == s) {
            q->r[k] = q->r[--q->n];
            break;
        }
    if (s->ring_busy) {
        s->ring_busy = false;
        atomic_fetch_sub(&d->rings_busy, 1);
    }
    pthread_mutex_unlock(&q->mu);
    wake_all(q); /* sleepers drop its words before they are unmapped */
}
