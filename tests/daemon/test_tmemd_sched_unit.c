/*
 * The daemon's batch turns (src/tmemd/sched.c), in-process and
 * deterministic: with one turn, the turn freed goes to the waiting ring
 * with the least service for its weight; a ring that idled banks
 * nothing; a stopping ring leaves the queue; uncrowded turns never wait.  (test_tmemd_sched.c runs it through a real tmemd.)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include <tmem/store.h>

#include "../../src/tmemd/sched.c" /* the unit, with its static parts */
#include "../runner.h"

struct rig {
    struct tmemd d;
    tmem_store *st;
    struct tmemd_session s[4];
    tmem_client *c[4];
};

static void rig_init(struct rig *r, int limit)
{
    memset(r, 0, sizeof *r);
    ASSERT_EQ(tmem_store_create(NULL, &r->st), 0);
    tmemd_sched_init(&r->d.sched, limit);
    for (int k = 0; k < 4; k++) {
        ASSERT_GE(tmem_client_create(r->st, &r->c[k]), 0);
        r->s[k].d = &r->d;
        r->s[k].client = r->c[k];
        pthread_cond_init(&r->s[k].sched_cv, NULL);
    }
}

static void rig_end(struct rig *r)
{
    for (int k = 0; k < 4; k++)
        pthread_cond_destroy(&r->s[k].sched_cv);
    tmem_store_destroy(r->st);
}

struct waiter {
    struct rig *r;
    int k;
    atomic_int *order; /* where the next grant writes its k */
    atomic_int *pos;
    bool got;
};

static void *wait_turn(void *arg)
{
    struct waiter *w = arg;
    w->got = tmemd_sched_enter(&w->r->d.sched, &w->r->s[w->k]);
    if (w->got) {
        int p = atomic_fetch_add(w->pos, 1);
        atomic_store(&w->order[p], w->k);
        tmemd_sched_leave(&w->r->d.sched, &w->r->s[w->k], 64);
    }
    return NULL;
}

/* Waits until n rings are queued. */
static void queued(struct rig *r, int n)
{
    for (int t = 0; t < 2000 && atomic_load(&r->d.sched.waiting) < n; t++)
        usleep(1000);
    ASSERT_EQ(atomic_load(&r->d.sched.waiting), n);
}

TEST(sched_turn_goes_to_least_served_by_weight)
{
    struct rig r;
    rig_init(&r, 1);
    /* ring 0 holds the only turn */
    ASSERT_TRUE(tmemd_sched_enter(&r.d.sched, &r.s[0]));
    ASSERT_EQ(atomic_load(&r.d.sched.running), 1);
    /* 1 and 2 have had the same pages, but 2 weighs 4: it has had a
     * quarter of the service for its weight; 3 is between.  They queue
     * as 1, 2, 3: neither first-come nor last-come order is 2, 3, 1 */
    ASSERT_EQ(tmem_store_set_weight(r.st, tmem_client_id(r.c[2]), 4), 0);
    r.s[1].vtime = 10 * 1024 * 64;     /* 640 pages at weight 1 */
    r.s[2].vtime = 10 * 1024 * 64 / 4; /* 640 pages at weight 4 */
    r.s[3].vtime = 400 * 1024;         /* 400 pages at weight 1 */
    r.d.sched.vnow = 100;
    atomic_int order[3] = {-1, -1, -1}, pos = 0;
    struct waiter w[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct waiter){&r, 1 + i, order, &pos, false};
        ASSERT_EQ(pthread_create(&t[i], NULL, wait_turn, &w[i]), 0);
        queued(&r, i + 1);
    }
    tmemd_sched_leave(&r.d.sched, &r.s[0], 64);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    /* 2 (160 Ki), then 3 (400 Ki), then 1 (640 Ki) */
    ASSERT_EQ(atomic_load(&order[0]), 2);
    ASSERT_EQ(atomic_load(&order[1]), 3);
    ASSERT_EQ(atomic_load(&order[2]), 1);
    ASSERT_EQ(atomic_load(&r.d.sched.running), 0);
    ASSERT_EQ(atomic_load(&r.d.sched.waiting), 0);
    ASSERT_EQ(atomic_load(&r.d.sched_waits), 3);
    /* a batch of 64 pages costs 64 x 1024 / weight */
    ASSERT_EQ(r.s[2].vtime, 10 * 1024 * 64 / 4 + 64 * 1024 / 4);
    rig_end(&r);
}

TEST(sched_stopping_ring_leaves_the_queue)
{
    struct rig r;
    rig_init(&r, 1);
    ASSERT_TRUE(tmemd_sched_enter(&r.d.sched, &r.s[0]));
    atomic_int order[1] = {-1}, pos = 0;
    struct waiter w = {&r, 1, order, &pos, true};
    r.d.sched.vnow = 500;
    r.s[1].vtime = 0; /* it idled while others were served */
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, wait_turn, &w), 0);
    queued(&r, 1);
    pthread_mutex_lock(&r.d.sched.mu);
    ASSERT_EQ(r.s[1].vtime, 500); /* idling banked nothing */
    pthread_mutex_unlock(&r.d.sched.mu);
    atomic_store(&r.s[1].ring_stop, 1);
    pthread_join(t, NULL); /* within a wait slice (10 ms) */
    ASSERT_TRUE(!w.got);
    ASSERT_EQ(atomic_load(&r.d.sched.waiting), 0);
    tmemd_sched_leave(&r.d.sched, &r.s[0], 1);
    ASSERT_EQ(atomic_load(&r.d.sched.running), 0);
    rig_end(&r);
}

TEST(sched_uncrowded_turns_take_no_wait)
{
    struct rig r;
    rig_init(&r, 2);
    ASSERT_TRUE(tmemd_sched_enter(&r.d.sched, &r.s[0]));
    ASSERT_TRUE(tmemd_sched_enter(&r.d.sched, &r.s[1]));
    ASSERT_EQ(atomic_load(&r.d.sched.running), 2);
    tmemd_sched_leave(&r.d.sched, &r.s[0], 8);
    ASSERT_TRUE(tmemd_sched_enter(&r.d.sched, &r.s[2]));
    tmemd_sched_leave(&r.d.sched, &r.s[1], 8);
    tmemd_sched_leave(&r.d.sched, &r.s[2], 8);
    ASSERT_EQ(atomic_load(&r.d.sched.running), 0);
    ASSERT_EQ(atomic_load(&r.d.sched_waits), 0);
    rig_end(&r);
}
