/*
 * Batch scheduling: which ring's batch the daemon runs when more want to
 * run than there are CPUs.
 *
 * Each ring has a thread of its own (session.c), but at most ncpu of them
 * run a batch at once: more would only time-slice the CPUs between them,
 * in the kernel's proportions, which know nothing of the tenants'
 * weights.  A batch takes a turn (tmemd_sched_enter) and gives it back
 * when done (tmemd_sched_leave).  When every turn is taken, the rings
 * wait, and a freed turn goes to the waiting ring whose tenant has had the
 * least service for its weight: each session's virtual time grows by the
 * pages of its batches x 1024 / its client's weight (start-time fair
 * queueing).  A ring that comes back after idling starts at the smallest
 * virtual time of those running or waiting, so idling banks nothing.
 *
 * Cost: uncrowded (fewer batches than CPUs, nobody waiting) a turn is
 * one compare-and-swap on a shared counter each way.  Crowded, a ring
 * that must wait sleeps on its condition variable and is woken by the
 * batch that ends (its tenant sleeps meanwhile too: it waits for its
 * results), and tmemd.sched_waits counts the waits.
 *
 * No lost turn: a waiter raises `waiting` before it looks at `running`,
 * and a leaver lowers `running` before it looks at `waiting` (both
 * sequentially consistent), so at least one of them sees the other.
 */
#include "common/condwait.h"
#include "tmemd.h"

#define VSCALE 1024u
#define WAIT_SLICE_NS 10000000L /* a waiter looks at its ring_stop this often */

void tmemd_sched_init(struct tmemd_sched *q, int limit)
{
    atomic_store(&q->running, 0);
    atomic_store(&q->waiting, 0);
    q->limit = limit > 0 ? limit : 1;
    q->waiters = NULL;
    q->vnow = 0;
    pthread_mutex_init(&q->mu, NULL);
}

/* Takes a turn if one is free.  Returns true if it did. */
static bool take_free(struct tmemd_sched *q)
{
    int r = atomic_load(&q->running);
    while (r < q->limit)
        if (atomic_compare_exchange_weak(&q->running, &r, r + 1))
            return true;
    return false;
}

/* The waiter with the smallest virtual time (q->mu), or NULL. */
static struct tmemd_session *first_waiter(struct tmemd_sched *q)
{
    struct tmemd_session *best = NULL;
    for (struct tmemd_session *w = q->waiters; w; w = w->sched_next)
        if (!best || w->vtime < best->vtime)
            best = w;
    return best;
}

static void unlink_waiter(struct tmemd_sched *q, struct tmemd_session *s)
{
    for (struct tmemd_session **p = &q->waiters; *p; p = &(*p)->sched_next)
        if (*p == s) {
            *p = s->sched_next;
            s->sched_next = NULL;
            atomic_fetch_sub(&q->waiting, 1);
            return;
        }
}

/* Hands free turns to waiters, the least served first (q->mu). */
static void grant_locked(struct tmemd_sched *q)
{
    struct tmemd_session *w;
    while ((w = first_waiter(q)) != NULL && take_free(q)) {
        unlink_waiter(q, w);
        if (w->vtime > q->vnow)
            q->vnow = w->vtime;
        w->granted = true;
        pthread_cond_signal(&w->sched_cv);
    }
}

bool tmemd_sched_enter(struct tmemd_sched *q, struct tmemd_session *s)
{
    if (atomic_load(&q->waiting) == 0 && take_free(q))
        return true;
    pthread_mutex_lock(&q->mu);
    if (s->vtime < q->vnow)
        s->vtime = q->vnow; /* idling banks nothing */
    atomic_fetch_add(&q->waiting, 1);
    s->sched_next = q->waiters;
    q->waiters = s;
    s->granted = false;
    grant_locked(q); /* a turn freed since: maybe ours, maybe a better one's */
    bool waited = false;
    while (!s->granted && !atomic_load(&s->ring_stop)) {
        waited = true;
        tmem__cond_wait_ns(&s->sched_cv, &q->mu, WAIT_SLICE_NS);
    }
    bool got = s->granted;
    if (!got)
        unlink_waiter(q, s); /* stopping: out of the queue */
    pthread_mutex_unlock(&q->mu);
    if (waited)
        atomic_fetch_add_explicit(&s->d->sched_waits, 1,
                                  memory_order_relaxed);
    return got;
}

void tmemd_sched_leave(struct tmemd_sched *q, struct tmemd_session *s,
                       uint32_t pages)
{
    uint32_t w = tmem_client_weight(s->client);
    s->vtime += (uint64_t)pages * VSCALE / (w ? w : 1);
    atomic_fetch_sub(&q->running, 1);
    if (atomic_load(&q->waiting) == 0)
        return;
    pthread_mutex_lock(&q->mu);
    grant_locked(q);
    pthread_mutex_unlock(&q->mu);
}
