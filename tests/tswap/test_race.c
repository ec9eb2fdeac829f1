/*
 * tswap under concurrency: writers hammer pages while eviction runs
 * without pause (a tiny target, the evictor every millisecond and a
 * thread of synchronous passes) and no write is lost; many threads fault
 * the same page and different pages at once, with and without the
 * evictor moving pages under them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../runner.h"
#include "tswap_testutil.h"

#define WRITERS 4

struct hammer {
    char *base;
    size_t npages;
    int id;
    uint64_t *expect; /* per page: this thread's increments */
    atomic_bool *stop;
    tmem_tswap *t;
};

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *writer(void *arg)
{
    struct hammer *h = arg;
    uint64_t seed = 0x1234567 + (uint64_t)h->id * 7919;
    while (!atomic_load_explicit(h->stop, memory_order_relaxed)) {
        size_t i = rnd(&seed) % h->npages;
        /* Its own word of the page (no data race with the others), and
         * one word every writer adds to atomically. */
        volatile uint64_t *mine =
            (volatile uint64_t *)(h->base + i * PG) + 8 * h->id;
        *mine = *mine + 1;
        __atomic_fetch_add((uint64_t *)(h->base + i * PG + 256), 1,
                           __ATOMIC_RELAXED);
        h->expect[i]++;
    }
    return NULL;
}

static void *reclaimer(void *arg)
{
    struct hammer *h = arg;
    while (!atomic_load(h->stop))
        tmem_tswap_reclaim(h->t);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

TEST(tswap_no_write_lost_under_eviction)
{
    enum { N = 256 };
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(8, false);
    cfg.interval_ms = 1;

    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    for (size_t i = 0; i < N; i++) /* not all zero: pages get stored */
        p[i * PG + PG - 1] = 1;
    atomic_bool stop = false;
    struct hammer h[WRITERS + 1];
    pthread_t th[WRITERS + 1];
    for (int k = 0; k <= WRITERS; k++) {
        h[k] = (struct hammer){p, N, k, calloc(N, sizeof(uint64_t)), &stop, t};
        ASSERT_EQ(pthread_create(&th[k], NULL, k < WRITERS ? writer : reclaimer,
                                 &h[k]),
                  0);
    }
    sleep_ms(1500);
    atomic_store(&stop, true);
    for (int k = 0; k <= WRITERS; k++)
        pthread_join(th[k], NULL);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_GT(s.evicted, 1000);
    ASSERT_GT(s.faults_pagein, 1000);
    for (size_t i = 0; i < N; i++) {
        uint64_t sum = 0;
        for (int k = 0; k < WRITERS; k++) {
            uint64_t got = ((uint64_t *)(p + i * PG))[8 * k];
            ASSERT_U64_EQ(got, h[k].expect[i]);
            sum += h[k].expect[i];
        }
        ASSERT_U64_EQ(*(uint64_t *)(p + i * PG + 256), sum);
    }
    for (int k = 0; k <= WRITERS; k++)
        free(h[k].expect);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

struct reader {
    char *base;
    size_t npages;
    int id;
    pthread_barrier_t *bar;
    atomic_bool *stop;
    atomic_long *bad;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    uint64_t seed = 99 + (uint64_t)r->id;
    pthread_barrier_wait(r->bar);
    if (!ts_check(r->base, 21, 0)) /* everyone on page 0 at once */
        atomic_fetch_add(r->bad, 1);
    while (!atomic_load(r->stop)) {
        size_t i = rnd(&seed) % r->npages;
        if (!ts_check(r->base + i * PG, 21, i))
            atomic_fetch_add(r->bad, 1);
    }
    return NULL;
}

TEST(tswap_many_threads_fault_same_and_different_pages)
{
    enum { N = 512, R = 4 };
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    cfg.interval_ms = 2;
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 21);
    ts_evict_to(t, 1);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, R);
    atomic_bool stop = false;
    atomic_long bad = 0;
    struct reader rd[R];
    pthread_t th[R];
    /* Round one: nothing evicts while they fault; round two: the evictor
     * keeps 32 pages and moves pages out under the readers. */
    for (int round = 0; round < 2; round++) {
        tmem_tswap_set_target(t, round ? 32 : 0);
        atomic_store(&stop, false);
        for (int k = 0; k < R; k++) {
            rd[k] = (struct reader){p, N, k, &bar, &stop, &bad};
            ASSERT_EQ(pthread_create(&th[k], NULL, reader_main, &rd[k]), 0);
        }
        sleep_ms(round ? 1000 : 300);
        atomic_store(&stop, true);
        for (int k = 0; k < R; k++)
            pthread_join(th[k], NULL);
        ASSERT_EQ(atomic_load(&bad), 0);
    }
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_GT(s.faults_pagein, N);
    ASSERT_GT(s.evicted, N);
    ASSERT_EQ(ts_check_n(p, N, 21), -1);
    pthread_barrier_destroy(&bar);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}
