/*
 * Conformance: weighted shares of ephemeral space.  Two tenants at
 * weights 1:3 put ephemeral pages into an 8 MiB store well past what it
 * holds; the store evicts from the tenant furthest over its share.
 * Whether one thread drives both tenants or each has its own, and
 * whichever path they take, the light tenant ends with a quarter of the
 * pages, nearly the whole budget holds pages, and used_bytes never passes
 * the budget.
 */
#include <pthread.h>
#include <stdio.h>

#include "conf.h"

#define PG TMEM_PAGE_SIZE
#define MIB (1u << 20)
#define SHARE_BUDGET (8u * MIB)
#define PUTS 3000 /* per tenant: the store holds ~1950 pages */
#define CHECK_EVERY 128

struct share_run {
    cf_env *e;
    cf_tenant *t[2];
    int pool[2];
    uint64_t eph[2];
};

/* Tenant k's i-th put; returns its result. */
static int share_put(struct share_run *r, int k, uint32_t i)
{
    unsigned char page[PG];
    tmem_oid o = cf_oid(100 + (uint64_t)k * 1000 + i / 512);
    cf_page(page, 100 + (uint32_t)k, i);
    return cf_put(r->t[k], r->pool[k], &o, i % 512, page);
}

static void share_setup(cf_env *e, struct share_run *r)
{
    cf_need_tenants(e, 2, "weighted shares between tenants");
    cf_need_admin(e, "set weight");
    r->e = e;
    for (int k = 0; k < 2; k++) {
        r->t[k] = cf_tenant_new(e);
        r->pool[k] = cf_pool_new(r->t[k], NULL, CF_EPH, NULL);
        ASSERT_GE(r->pool[k], 0);
        ASSERT_EQ(cf_set_weight(e, cf_id(r->t[k]), k ? 3 : 1), 0);
    }
}

/* The shares at the end: a quarter for the light tenant, and pages for
 * nearly all of the budget (each stored page costs its 4 KiB, a few
 * bytes of record and its index entry). */
static void share_check(struct share_run *r)
{
    cf_check_budget(r->e, "end", 0);
    for (int k = 0; k < 2; k++)
        r->eph[k] = cf_client_eph(r->e, cf_id(r->t[k]));
    uint64_t all = r->eph[0] + r->eph[1];
    double share = (double)r->eph[0] / (double)all;
    printf("  [%s] resident %llu (%llu + %llu), light share %.3f\n",
           cf_path_name(r->e), (unsigned long long)all,
           (unsigned long long)r->eph[0], (unsigned long long)r->eph[1],
           share);
    ASSERT_GE(all * PG, SHARE_BUDGET / 100 * 93);
    ASSERT_GE(share, 0.235);
    ASSERT_LE(share, 0.265);
}

static void shares_one_thread(cf_env *e, struct share_run *r)
{
    share_setup(e, r);
    for (uint32_t i = 0; i < PUTS; i++) {
        for (int k = 0; k < 2; k++)
            ASSERT_EQ(share_put(r, k, i), 1);
        if (i % CHECK_EVERY == 0)
            cf_check_budget(e, "one-thread put", i);
    }
    share_check(r);
}

struct share_thread {
    struct share_run *r;
    int k, bad;
};

static void *share_main(void *arg)
{
    struct share_thread *s = arg;
    for (uint32_t i = 0; i < PUTS; i++)
        s->bad += share_put(s->r, s->k, i) != 1;
    return NULL;
}

static void shares_threads(cf_env *e, struct share_run *r)
{
    share_setup(e, r);
    pthread_t th[2];
    struct share_thread s[2];
    for (int k = 0; k < 2; k++) {
        s[k] = (struct share_thread){r, k, 0};
        ASSERT_EQ(pthread_create(&th[k], NULL, share_main, &s[k]), 0);
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(th[k], NULL);
        ASSERT_EQ(s[k].bad, 0);
    }
    share_check(r);
}

static struct share_run last;

CF_CHECK(shares_weighted_one_thread, SHARE_BUDGET)
{
    shares_one_thread(e, &last);
}

CF_CHECK(shares_weighted_thread_per_tenant, SHARE_BUDGET)
{
    shares_threads(e, &last);
}

/* ---- one thread or two, store or daemon: the same shares ---------------- */

static void one_run(cf_env *e)
{
    shares_one_thread(e, &last);
}

static void threads_run(cf_env *e)
{
    shares_threads(e, &last);
}

TEST(shares_paths_and_threads_agree)
{
    uint64_t all[4];
    void (*runs[4])(cf_env *) = {one_run, threads_run, one_run, threads_run};
    for (int i = 0; i < 4; i++) {
        cf_run(i < 2 ? CF_STORE : CF_TMEMD, SHARE_BUDGET, runs[i]);
        all[i] = last.eph[0] + last.eph[1];
    }
    for (int i = 1; i < 4; i++) { /* within 1% of each other */
        ASSERT_LE(all[i] * 100, all[0] * 101);
        ASSERT_GE(all[i] * 101, all[0] * 100);
    }
}
