/*
 * Conformance: the budget is a promise to the host.  used_bytes <= budget
 * after every operation, metadata included; a refused put gives back what
 * it took; a flush gives memory back; ephemeral pages make way and
 * persistent pages never do.  Checked after every step on each path, and
 * the pages one budget holds compared across the paths.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define PG TMEM_PAGE_SIZE
#define MIB (1u << 20)

/* Puts distinct pages (seed, from, from + 1, ...) into persistent pool p
 * until one is refused, checking the budget after each put and that the
 * refused one gave back what it took.  Returns the pages stored. */
static uint32_t fill_persistent(cf_env *e, cf_tenant *t, int p, uint32_t seed,
                                uint32_t from)
{
    unsigned char page[PG];
    tmem_oid o = cf_oid(seed);
    uint64_t before = cf_check_budget(e, "fill start", from);
    for (uint32_t i = from;; i++) {
        cf_page(page, seed, i);
        int r = cf_put(t, p, &o, i, page);
        uint64_t after = cf_check_budget(e, "persistent put", i);
        if (r != 1) {
            ASSERT_EQ(r, TMEM_ENOSPC);
            ASSERT_LE(after, before); /* it kept nothing */
            return i - from;
        }
        before = after;
    }
}

static void expect_range(cf_tenant *t, int p, uint32_t seed, uint32_t from,
                         uint32_t n)
{
    unsigned char page[PG];
    tmem_oid o = cf_oid(seed);
    for (uint32_t i = from; i < from + n; i++) {
        ASSERT_EQ(cf_get(t, p, &o, i, page), 1);
        ASSERT_TRUE(cf_page_is(page, seed, i));
    }
}

CF_CHECK(budget_persistent_fill_and_refusal, 2 * MIB)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    uint32_t n = fill_persistent(e, t, p, 1, 0);
    printf("  [%s] %u persistent pages in 2 MiB\n", cf_path_name(e), n);
    ASSERT_GE(n, 440); /* about a page and 2% each, all metadata in */
    expect_range(t, p, 1, 0, n);
    /* refused again and again: nothing creeps in */
    unsigned char page[PG];
    tmem_oid o = cf_oid(1);
    uint64_t used = cf_check_budget(e, "full", n);
    for (uint32_t k = 0; k < 20; k++) {
        cf_page(page, 1, n + 1 + k);
        ASSERT_EQ(cf_put(t, p, &o, n + 1 + k, page), TMEM_ENOSPC);
        ASSERT_LE(cf_check_budget(e, "refused put", k), used);
    }
    /* a put over a stored page: replaced, or refused and the old gone */
    cf_page(page, 2, 0);
    int r = cf_put(t, p, &o, 0, page);
    ASSERT_TRUE(r == 1 || r == TMEM_ENOSPC);
    ASSERT_EQ(cf_get(t, p, &o, 0, page), r == 1 ? 1 : 0);
    cf_check_budget(e, "put over a page", 0);
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_GE(st.reject_budget, 21);
    expect_range(t, p, 1, 1, n - 1);
}

CF_CHECK(budget_flush_gives_back, 2 * MIB)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    uint32_t n = fill_persistent(e, t, p, 1, 0);
    uint64_t full = cf_check_budget(e, "full", n);
    tmem_oid o = cf_oid(1);
    for (uint32_t i = 100; i < 116; i++)
        ASSERT_EQ(cf_flush(t, p, &o, i), 1);
    uint64_t after = cf_check_budget(e, "flushed", 16);
    ASSERT_LE(after + 8u * PG, full); /* not kept, not grown */
    uint32_t again = fill_persistent(e, t, p, 2, 0);
    printf("  [%s] flushed 16 pages, %u new ones fit\n", cf_path_name(e),
           again);
    ASSERT_GE(again, 13); /* all but the pages the flushed ones shared */
    ASSERT_LE(again, 17);
    expect_range(t, p, 1, 0, 100);
    expect_range(t, p, 1, 116, n - 116);
}

CF_CHECK(budget_ephemeral_makes_way_persistent_stays, 2 * MIB)
{
    cf_tenant *t = cf_tenant_new(e);
    int pp = cf_pool_new(t, NULL, CF_PERS, NULL);
    int pe = cf_pool_new(t, NULL, CF_EPH, NULL);
    unsigned char page[PG];
    tmem_oid op = cf_oid(1), oe = cf_oid(2);
    for (uint32_t i = 0; i < 100; i++) {
        cf_page(page, 1, i);
        ASSERT_EQ(cf_put(t, pp, &op, i, page), 1);
    }
    for (uint32_t i = 0; i < 1200; i++) {
        cf_page(page, 2, i);
        ASSERT_EQ(cf_put(t, pe, &oe, i, page), 1);
        cf_check_budget(e, "ephemeral put", i);
    }
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_GT(st.evictions, 0);
    ASSERT_U64_EQ(st.pers_pages, 100);
    ASSERT_U64_EQ(st.reject_budget, 0);
    expect_range(t, pp, 1, 0, 100);
    expect_range(t, pe, 2, 1199, 1); /* the newest is there */
    ASSERT_EQ(cf_get(t, pe, &oe, 0, page), 0); /* the oldest went */
    /* persistent puts past the budget: ephemeral pages go first */
    uint32_t n = fill_persistent(e, t, pp, 3, 0);
    ASSERT_GT(n, 300);
    cf_stats_get(e, &st);
    ASSERT_U64_EQ(st.eph_pages, 0);
    expect_range(t, pp, 1, 0, 100);
}

/* A random mix of every operation under a 1 MiB budget, the budget checked
 * after each; what the persistent pool holds is tracked and read back. */
CF_CHECK(budget_holds_through_mixed_operations, 1 * MIB)
{
    enum { KEYS = 400, STEPS = 2500 };
    static bool held[KEYS];
    cf_tenant *t = cf_tenant_new(e);
    int pp = cf_pool_new(t, NULL, CF_PERS, NULL);
    int pe = cf_pool_new(t, NULL, CF_EPH, NULL);
    unsigned char page[PG];
    uint64_t x = 88172645463325252ull;
    for (uint32_t step = 0; step < STEPS; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t k = (uint32_t)(x >> 20) % KEYS, op = (uint32_t)x % 8;
        tmem_oid o = cf_oid(k / 32);
        cf_page(page, op < 2 ? 7 : 8, k);
        if (op == 0) { /* persistent put: kept or refused (old gone) */
            held[k] = cf_put(t, pp, &o, k, page) == 1;
        } else if (op == 1) {
            ASSERT_EQ(cf_flush(t, pp, &o, k), held[k] ? 1 : 0);
            held[k] = false;
        } else if (op <= 5) {
            ASSERT_EQ(cf_put(t, pe, &o, k, page), 1);
        } else if (op == 6) {
            ASSERT_GE(cf_get(t, pe, &o, k, page), 0);
        } else {
            ASSERT_GE(cf_flush_obj(t, pe, &o), 0);
        }
        cf_check_budget(e, "mixed step", step);
    }
    for (uint32_t k = 0; k < KEYS; k++) {
        tmem_oid o = cf_oid(k / 32);
        ASSERT_EQ(cf_get(t, pp, &o, k, page), held[k] ? 1 : 0);
        if (held[k])
            ASSERT_TRUE(cf_page_is(page, 7, k));
    }
}

CF_CHECK(budget_pools_refused_not_exceeded, 1 * MIB)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    fill_persistent(e, t, p, 1, 0);
    int made = 0, r;
    while ((r = cf_pool_new(t, NULL, CF_EPH, NULL)) >= 0) {
        made++;
        cf_check_budget(e, "pool made", (uint64_t)made);
    }
    ASSERT_EQ(r, TMEM_ENOSPC); /* 16 pools, or no room for another */
    cf_check_budget(e, "pool refused", (uint64_t)made);
}

CF_CHECK(budget_used_returns_when_emptied, 2 * MIB)
{
    cf_tenant *t = cf_tenant_new(e);
    uint64_t empty = cf_check_budget(e, "empty", 0);
    int pp = cf_pool_new(t, NULL, CF_PERS, NULL);
    int pe = cf_pool_new(t, NULL, CF_EPH, NULL);
    unsigned char page[PG];
    for (uint32_t i = 0; i < 300; i++) {
        tmem_oid o = cf_oid(i % 7);
        cf_page(page, 1, i);
        ASSERT_EQ(cf_put(t, pp, &o, i, page), 1);
        ASSERT_EQ(cf_put(t, pe, &o, i, page), 1);
    }
    ASSERT_EQ(cf_pool_destroy(t, pe), 0);
    ASSERT_EQ(cf_pool_destroy(t, pp), 0);
    uint64_t after = cf_check_budget(e, "emptied", 0);
    /* what stays: the private arena's header and handle pages */
    ASSERT_LE(after, empty + 64 * 1024);
}

/* One tenant's life: pools of both kinds, shared contents, flushes; then
 * it goes (its client destroyed). */
static void tenant_life(cf_env *e)
{
    cf_tenant *t = cf_tenant_new(e);
    int pp = cf_pool_new(t, NULL, CF_PERS, NULL);
    int pe = cf_pool_new(t, NULL, CF_EPH, NULL);
    unsigned char page[PG];
    for (uint32_t i = 0; i < 1500; i++) {
        tmem_oid o = cf_oid(i % 5);
        cf_page(page, 1, i % 300); /* dedup: names share pages */
        ASSERT_EQ(cf_put(t, i % 3 ? pe : pp, &o, i, page), 1);
        if (i % 7 == 0)
            cf_flush(t, pp, &o, i - 7);
    }
    cf_tenant_close(t);
}

/* used_bytes once a tenant is gone: tmemd frees its client when the
 * session ends, so read until the figure stays put. */
static uint64_t settled(cf_env *e)
{
    uint64_t used = cf_check_budget(e, "tenant gone", 0), prev = used + 1;
    for (int tries = 0; cf_path_of(e) == CF_TMEMD && used != prev &&
                        tries < 100; tries++) {
        usleep(20000);
        prev = used;
        used = cf_check_budget(e, "tenant gone", (uint64_t)tries);
    }
    return used;
}

#define LIVES 6

/* Every byte charged is given back when it is freed.  A tenant's life
 * leaves behind only what is kept for reuse (handle slots, per thread
 * shard), so after a few identical lives the figure stops moving, a few
 * pages above where it started, however many more lives follow. */
CF_CHECK(budget_account_returns_when_tenant_gone, 4 * MIB)
{
    cf_need_tenants(e, 2, "a tenant that outlives the other");
    cf_tenant *keep = cf_tenant_new(e); /* the store stays */
    uint64_t before = cf_check_budget(e, "before", 0), after[LIVES];
    for (int k = 0; k < LIVES; k++) {
        tenant_life(e);
        after[k] = settled(e);
        ASSERT_LE(after[k], before + 16 * PG);
    }
    printf("  [%s] used %llu before, after each life:", cf_path_name(e),
           (unsigned long long)before);
    for (int k = 0; k < LIVES; k++)
        printf(" %llu", (unsigned long long)after[k]);
    printf("\n");
    ASSERT_U64_EQ(after[LIVES - 1], after[LIVES - 2]);
    (void)keep;
}

/* ---- several threads at once --------------------------------------------- */

#define CT_THREADS 3
#define CT_KEYS 160
#define CT_STEPS 1500

struct ct {
    cf_tenant *t;
    int pp, pe;
    uint32_t seed;
    int bad;
    bool held[CT_KEYS];
    atomic_int *running;
};

/* One thread's mix: persistent puts and flushes it keeps track of,
 * ephemeral puts, gets and object flushes. */
static void *ct_main(void *arg)
{
    struct ct *c = arg;
    unsigned char page[PG];
    uint64_t x = 0x9e3779b97f4a7c15ull * (c->seed + 1);
    for (uint32_t step = 0; step < CT_STEPS; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t k = (uint32_t)(x >> 24) % CT_KEYS, op = (uint32_t)x % 6;
        tmem_oid o = cf_oid(c->seed * 100 + k / 16);
        cf_page(page, c->seed, k);
        if (op == 0) {
            c->held[k] = cf_put(c->t, c->pp, &o, k, page) == 1;
        } else if (op == 1) {
            c->bad += cf_flush(c->t, c->pp, &o, k) != (c->held[k] ? 1 : 0);
            c->held[k] = false;
        } else if (op <= 3) {
            c->bad += cf_put(c->t, c->pe, &o, k, page) != 1;
        } else if (op == 4) {
            c->bad += cf_get(c->t, c->pe, &o, k, page) < 0;
        } else {
            c->bad += cf_flush_obj(c->t, c->pe, &o) < 0;
        }
    }
    atomic_fetch_sub(c->running, 1);
    return NULL;
}

static void ct_verify(struct ct *c)
{
    unsigned char page[PG];
    ASSERT_EQ(c->bad, 0);
    for (uint32_t k = 0; k < CT_KEYS; k++) {
        tmem_oid o = cf_oid(c->seed * 100 + k / 16);
        ASSERT_EQ(cf_get(c->t, c->pp, &o, k, page), c->held[k] ? 1 : 0);
        if (c->held[k])
            ASSERT_TRUE(cf_page_is(page, c->seed, k));
    }
}

/* Threads putting, getting and flushing at once (a tenant each; on the
 * embedded connection, all on its one tenant, which is thread-safe)
 * while the figures are read: used_bytes never passes the budget. */
CF_CHECK(budget_holds_with_concurrent_tenants, 2 * MIB)
{
    static struct ct c[CT_THREADS];
    atomic_int running = CT_THREADS;
    pthread_t th[CT_THREADS];
    for (int i = 0; i < CT_THREADS; i++) {
        c[i] = (struct ct){.seed = (uint32_t)i + 1, .running = &running};
        c[i].t = cf_path_of(e) == CF_EMBEDDED && i ? c[0].t : cf_tenant_new(e);
        c[i].pp = cf_pool_new(c[i].t, NULL, CF_PERS, NULL);
        c[i].pe = cf_pool_new(c[i].t, NULL, CF_EPH, NULL);
        ASSERT_GE(c[i].pe, 0);
    }
    for (int i = 0; i < CT_THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, ct_main, &c[i]), 0);
    uint64_t samples = 0;
    while (atomic_load(&running) > 0)
        cf_check_budget(e, "sample while threads run", samples++);
    for (int i = 0; i < CT_THREADS; i++)
        pthread_join(th[i], NULL);
    cf_check_budget(e, "after the threads", samples);
    for (int i = 0; i < CT_THREADS; i++)
        ct_verify(&c[i]);
    printf("  [%s] %llu samples of used_bytes\n", cf_path_name(e),
           (unsigned long long)samples);
}

/* ---- the same budget holds the same pages on every path ------------------ */

static uint32_t fill_result;

static void fill_run(cf_env *e)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    fill_result = fill_persistent(e, t, p, 5, 0);
}

TEST(budget_paths_agree)
{
    uint32_t n[3];
    for (int p = CF_STORE; p <= CF_TMEMD; p++) {
        cf_run((enum cf_path)p, 4 * MIB, fill_run);
        n[p] = fill_result;
    }
    printf("  4 MiB holds %u (store), %u (embedded), %u (tmemd) pages\n",
           n[0], n[1], n[2]);
    for (int p = 1; p < 3; p++) {
        ASSERT_LE(n[p], n[0] + 2);
        ASSERT_GE(n[p] + 2, n[0]);
    }
}
