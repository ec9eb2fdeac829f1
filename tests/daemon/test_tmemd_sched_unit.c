/*
 * Which ring a free worker serves (src/tmemd/workers.c), in-process and
 * deterministic, on rings whose headers live in this test's memory: the
 * ring with the least service for its weight goes first, and over many
 * picks each tenant gets service in proportion to its weight; a ring that
 * idled banks nothing; a stopping, claimed or workless ring is never
 * picked, a parked one only once its next entry is written; a ring is
 * its home worker's unless that worker is busy with another; rings passed
 * over are counted; time spent on a ring is charged as pages; a busy ring
 * turns idle after 2 ms without a batch.  (test_tmemd_sched.c runs the
 * workers through a real tmemd.)
 */
#include <stdatomic.h>
#include <stdlib.h>

#include <tmem/store.h>

#include "../../src/tmemd/workers.c" /* the unit, with its static parts */
#include "../runner.h"

/* The worker's other half (ring.c) is not part of this unit: these tests
 * pick and charge, they never start a worker. */
int tmemd_ring_serve(struct tmemd_session *s, uint32_t *pages)
{
    (void)s;
    *pages = 0;
    return TMEMD_RING_IDLE;
}

#define NR 4

struct rig {
    struct tmemd d;
    tmem_store *st;
    struct tmemd_session s[NR];
    tmem__ring_hdr h[NR];
    tmem_client *c[NR];
};

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof *r);
    ASSERT_EQ(tmem_store_create(NULL, &r->st), 0);
    tmemd_rings_init(&r->d);
    r->d.ncpu = 2;
    for (int k = 0; k < NR; k++) {
        ASSERT_GE(tmem_client_create(r->st, &r->c[k]), 0);
        r->s[k].d = &r->d;
        r->s[k].client = r->c[k];
        r->s[k].ring.hdr = &r->h[k];
        ASSERT_EQ(tmemd_rings_add(&r->d, &r->s[k]), 0);
        ASSERT_EQ(r->h[k].srv_sleeping, (uint32_t)TMEM_RING_W_SQ_SEQ);
    }
}

static void rig_end(struct rig *r)
{
    for (int k = 0; k < NR; k++)
        tmemd_rings_remove(&r->d, &r->s[k]);
    ASSERT_EQ(r->d.rings.n, 0);
    tmemd_rings_stop(&r->d);
    tmem_store_destroy(r->st);
}

/* Ring k announces a batch. */
static void batch(struct rig *r, int k)
{
    r->h[k].sq_seq = r->s[k].ring_last + 1;
}

/* Picks, serves (64 pages) and charges as a worker would; returns k. */
static int serve_one(struct rig *r)
{
    uint64_t wake = WAIT_NS;
    struct tmemd_session *s = tmemd_rings_pick_locked(&r->d, -1, 0, &wake);
    ASSERT_TRUE(s != NULL);
    s->ring_last = s->ring.hdr->sq_seq;
    tmemd_rings_charge_locked(s, 64, 0);
    return (int)(s - r->s);
}

TEST(sched_pick_least_served_by_weight)
{
    struct rig r;
    rig_init(&r);
    /* 1 and 2 have had the same pages, but 2 weighs 4: it has had a
     * quarter of the service for its weight; 3 is between */
    ASSERT_EQ(tmem_store_set_weight(r.st, tmem_client_id(r.c[2]), 4), 0);
    r.s[1].vtime = 10 * 1024 * 64;     /* 640 pages at weight 1 */
    r.s[2].vtime = 10 * 1024 * 64 / 4; /* 640 pages at weight 4 */
    r.s[3].vtime = 400 * 1024;         /* 400 pages at weight 1 */
    for (int k = 1; k < NR; k++)
        batch(&r, k);
    uint64_t waits0 = atomic_load(&r.d.sched_waits);
    uint64_t wake = WAIT_NS;
    struct tmemd_session *s = tmemd_rings_pick_locked(&r.d, -1, 0, &wake);
    ASSERT_TRUE(s == &r.s[2]);
    /* the two with work it passed over */
    ASSERT_EQ(atomic_load(&r.d.sched_waits) - waits0, 2);
    ASSERT_EQ(r.d.rings.vnow, 10 * 1024 * 64 / 4);
    /* while claimed it is never picked, even with work */
    s->ring_state = TMEMD_RING_CLAIMED;
    s = tmemd_rings_pick_locked(&r.d, -1, 0, &wake);
    ASSERT_TRUE(s == &r.s[3]);
    s->ring_last = r.h[3].sq_seq; /* 3 served */
    r.s[2].ring_state = TMEMD_RING_IDLE;
    r.s[2].ring_last = r.h[2].sq_seq;
    s = tmemd_rings_pick_locked(&r.d, -1, 0, &wake);
    ASSERT_TRUE(s == &r.s[1]);
    s->ring_last = r.h[1].sq_seq;
    /* nobody has work now */
    ASSERT_TRUE(tmemd_rings_pick_locked(&r.d, -1, 0, &wake) == NULL);
    rig_end(&r);
}

TEST(sched_service_in_proportion_to_weight)
{
    struct rig r;
    rig_init(&r);
    ASSERT_EQ(tmem_store_set_weight(r.st, tmem_client_id(r.c[0]), 4), 0);
    int got[NR] = {0};
    /* every ring always has a batch waiting */
    for (int n = 0; n < 700; n++) {
        for (int k = 0; k < NR; k++)
            batch(&r, k);
        got[serve_one(&r)]++;
    }
    fprintf(stderr, "  picks: weight 4: %d; weight 1: %d %d %d\n", got[0],
            got[1], got[2], got[3]);
    /* 4 : 1 : 1 : 1 of 700 is 400 : 100 : 100 : 100 */
    ASSERT_TRUE(got[0] >= 398 && got[0] <= 402);
    for (int k = 1; k < NR; k++)
        ASSERT_TRUE(got[k] >= 99 && got[k] <= 101);
    rig_end(&r);
}

TEST(sched_idling_banks_nothing)
{
    struct rig r;
    rig_init(&r);
    /* 0 and 1 take turns for a while; 2 idles */
    for (int n = 0; n < 100; n++) {
        batch(&r, 0);
        batch(&r, 1);
        serve_one(&r);
    }
    uint64_t vnow = r.d.rings.vnow;
    ASSERT_GT(vnow, 0);
    ASSERT_EQ(r.s[2].vtime, 0);
    /* back with work: it starts at the last pick's virtual time, so it
     * gets its share from now on, not 100 turns in a row */
    int got2 = 0;
    for (int n = 0; n < 30; n++) {
        for (int k = 0; k < 3; k++)
            batch(&r, k);
        got2 += serve_one(&r) == 2;
    }
    ASSERT_TRUE(got2 >= 9 && got2 <= 11);
    ASSERT_GE(r.s[2].vtime, vnow);
    rig_end(&r);
}

TEST(sched_stopping_and_parked_rings)
{
    struct rig r;
    rig_init(&r);
    uint64_t wake = WAIT_NS;
    /* a stopping ring with work is never picked */
    batch(&r, 0);
    atomic_store(&r.s[0].ring_stop, 1);
    ASSERT_TRUE(tmemd_rings_pick_locked(&r.d, -1, 0, &wake) == NULL);
    atomic_store(&r.s[0].ring_stop, 0);
    r.s[0].ring_last = r.h[0].sq_seq;
    /* a parked batch waits for sq_ready to move past what was seen,
     * whatever sq_seq does */
    r.s[1].ring_state = TMEMD_RING_PARKED;
    r.s[1].bt = (struct tmemd_batch){.on = true, .count = 8, .seen = 3};
    r.h[1].sq_ready = 3;
    r.h[1].sq_seq = 77;
    ASSERT_TRUE(tmemd_rings_pick_locked(&r.d, -1, 0, &wake) == NULL);
    r.h[1].sq_ready = 4;
    ASSERT_TRUE(tmemd_rings_pick_locked(&r.d, -1, 0, &wake) == &r.s[1]);
    /* what a sleeping worker waits on: ctl, then each ring's word */
    struct futex_waitv wv[WATCH_MAX + 1];
    unsigned rot = 0;
    wake = WAIT_NS;
    ASSERT_EQ(watch_locked(&r.d.rings, -1, wv, &rot, &wake), 1 + NR);
    ASSERT_EQ(wv[0].uaddr, (uintptr_t)&r.d.rings.ctl);
    int parked = 0;
    for (unsigned i = 1; i <= NR; i++)
        if (wv[i].uaddr == (uintptr_t)&r.h[1].sq_ready) {
            parked++;
            ASSERT_EQ(wv[i].val, 3);
        }
    ASSERT_EQ(parked, 1);
    ASSERT_EQ(wake, WAIT_NS); /* all fit: no polling */
    r.s[1].ring_state = TMEMD_RING_IDLE;
    rig_end(&r);
}

TEST(sched_time_is_charged_as_pages)
{
    struct rig r;
    rig_init(&r);
    ASSERT_EQ(tmem_store_set_weight(r.st, tmem_client_id(r.c[1]), 2), 0);
    /* 64 pages in 20 us: charged as pages */
    tmemd_rings_charge_locked(&r.s[0], 64, 20000);
    ASSERT_EQ(r.s[0].vtime, 64 * VSCALE);
    /* no page in 100 us (spinning on a tenant that writes nothing): 50
     * pages' worth, at its weight */
    tmemd_rings_charge_locked(&r.s[1], 0, 100000);
    ASSERT_EQ(r.s[1].vtime, 50 * VSCALE / 2);
    rig_end(&r);
}

TEST(sched_busy_ring_turns_idle)
{
    struct rig r;
    rig_init(&r);
    uint64_t now = 100000000000ull, wake = WAIT_NS;
    atomic_store(&r.d.rings_busy, 2);
    r.s[0].ring_busy = true;
    r.s[0].ring_idle_from = now - 3000000; /* 3 ms without a batch */
    r.s[1].ring_busy = true;
    r.s[1].ring_idle_from = now - 500000; /* 0.5 ms */
    ASSERT_TRUE(tmemd_rings_pick_locked(&r.d, -1, now, &wake) == NULL);
    ASSERT_TRUE(!r.s[0].ring_busy);
    ASSERT_TRUE(r.s[1].ring_busy);
    ASSERT_EQ(atomic_load(&r.d.rings_busy), 1);
    ASSERT_EQ(wake, 1500000); /* when 1 turns idle */
    rig_end(&r);
    ASSERT_EQ(atomic_load(&r.d.rings_busy), 0);
}

TEST(sched_home_worker_first)
{
    struct rig r;
    rig_init(&r);
    /* two workers (not started: picking only), ring 0 at home on 1 */
    struct tmemd_worker w[2] = {{.id = 0}, {.id = 1}};
    r.d.rings.w = w;
    r.d.rings.nworkers = 2;
    for (int k = 0; k < NR; k++)
        r.s[k].ring_home = 1;
    batch(&r, 0);
    uint64_t wake = WAIT_NS;
    /* worker 1 is awake: the ring is its to take, not 0's */
    ASSERT_TRUE(tmemd_rings_pick_locked(&r.d, 0, 0, &wake) == NULL);
    ASSERT_TRUE(tmemd_rings_pick_locked(&r.d, 1, 0, &wake) == &r.s[0]);
    /* nor does 0 sleep on its word: while 1 sleeps on it, 0 sleeps its
     * full time; while 1 is awake (it may go on to serve another), 0
     * looks again within a millisecond */
    struct futex_waitv wv[WATCH_MAX + 1];
    unsigned rot = 0;
    w[1].sleeping = true;
    wake = WAIT_NS;
    ASSERT_EQ(watch_locked(&r.d.rings, 0, wv, &rot, &wake), 1);
    ASSERT_EQ(wake, WAIT_NS);
    w[1].sleeping = false;
    ASSERT_EQ(watch_locked(&r.d.rings, 0, wv, &rot, &wake), 1);
    ASSERT_EQ(wake, OVERFLOW_NS);
    ASSERT_EQ(watch_locked(&r.d.rings, 1, wv, &rot, &wake), 1 + NR);
    /* worker 1 serving another: 0 takes it, and watches it */
    w[1].serving = true;
    ASSERT_TRUE(tmemd_rings_pick_locked(&r.d, 0, 0, &wake) == &r.s[0]);
    ASSERT_EQ(watch_locked(&r.d.rings, 0, wv, &rot, &wake), 1 + NR);
    r.d.rings.w = NULL;
    r.d.rings.nworkers = 0;
    rig_end(&r);
}
