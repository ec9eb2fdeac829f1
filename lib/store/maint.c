/*
 * The store's maintenance thread (tmem_store_start_maintenance): eviction
 * ahead of need and compaction, in the background, a step at a time.
 *
 * Without it a put that finds the budget full evicts inline (evict.c) and
 * a free that leaves an arena sparse compacts a segment inline (blob.c):
 * one tenant's churn becomes the latency of whoever put or freed next.
 * With it, a put over the high watermark (budget - budget/256) wakes the
 * thread (tmem__maint_note: one atomic load in the common case), which
 * evicts one page at a time, taking evict_lock per page so an inline
 * evictor is never held up long, until the store is under the low
 * watermark (budget - budget/128); frees hand compaction to it through the
 * blob layer's kick; and it checks both every TICK_MS anyway.  Between two
 * steps it lets go of every lock.  A put that still finds the budget full
 * evicts inline as before: that is counted (evict_inline), and a budget
 * that is hit often says the thread cannot keep up.
 */
#include <errno.h>

#include "common/condwait.h"
#include "store_internal.h"

#define TICK_MS 50

static uint64_t high_mark(uint64_t budget)
{
    return budget - budget / 256;
}

static uint64_t low_mark(uint64_t budget)
{
    return budget - budget / 128;
}

static void kick(void *ctx)
{
    tmem_store *s = ctx;
    if (!s)
        return;
    if (atomic_exchange_explicit(&s->maint.kicked, 1, memory_order_acq_rel))
        return; /* already asked */
    pthread_mutex_lock(&s->maint.mu);
    pthread_cond_signal(&s->maint.cv);
    pthread_mutex_unlock(&s->maint.mu);
}

void tmem__maint_note(tmem_store *s)
{
    if (!atomic_load_explicit(&s->maint.running, memory_order_acquire))
        return;
    uint64_t budget = tmem__acct_limit(&s->acct);
    if (budget && tmem__acct_used(&s->acct) > high_mark(budget) &&
        !atomic_load_explicit(&s->maint.kicked, memory_order_relaxed))
        kick(s);
}

/* Evicts down to the low watermark.  Returns the pages evicted. */
static uint64_t evict_ahead(tmem_store *s)
{
    uint64_t n = 0;
    for (;;) {
        uint64_t budget = tmem__acct_limit(&s->acct);
        if (!budget || tmem__acct_used(&s->acct) <= low_mark(budget) ||
            atomic_load(&s->maint.stop))
            break;
        pthread_mutex_lock(&s->evict_lock);
        int r = tmem__evict_one(s, NULL);
        pthread_mutex_unlock(&s->evict_lock);
        if (r != 1)
            break; /* nothing ephemeral left: persistent pages stay */
        cnt_add(&s->st.evict_background, 1);
        n++;
    }
    return n;
}

static void *maint_main(void *arg)
{
    tmem_store *s = arg;
    store_maint *m = &s->maint;
    while (!atomic_load(&m->stop)) {
        pthread_mutex_lock(&m->mu);
        if (!atomic_load(&m->kicked) && !atomic_load(&m->stop))
            tmem__cond_wait_ns(&m->cv, &m->mu, TICK_MS * 1000000L);
        atomic_store(&m->kicked, 0);
        pthread_mutex_unlock(&m->mu);
        /* a segment at a time, watching the budget between steps */
        for (;;) {
            evict_ahead(s);
            if (atomic_load(&m->stop) || !tmem__blob_compact_one_step(s->blobs))
                break;
            cnt_add(&s->st.compact_background, 1);
        }
    }
    return NULL;
}

int tmem_store_start_maintenance(tmem_store *s)
{
    if (!s)
        return -EINVAL;
    if (atomic_load(&s->maint.running))
        return -EALREADY;
    store_maint *m = &s->maint;
    atomic_store(&m->stop, 0);
    atomic_store(&m->kicked, 0);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    int e = pthread_create(&m->thr, NULL, maint_main, s);
    if (e) {
        pthread_cond_destroy(&m->cv);
        pthread_mutex_destroy(&m->mu);
        return -e;
    }
    tmem__blob_set_background(s->blobs, kick, s);
    atomic_store_explicit(&m->running, true, memory_order_release);
    return 0;
}

void tmem__maint_stop(tmem_store *s)
{
    store_maint *m = &s->maint;
    if (!atomic_load(&m->running))
        return;
    atomic_store(&m->running, false);
    tmem__blob_set_background(s->blobs, NULL, NULL);
    pthread_mutex_lock(&m->mu);
    atomic_store(&m->stop, 1);
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thr, NULL);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
}
