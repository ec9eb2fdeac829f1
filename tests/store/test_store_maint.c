/*
 * The store's maintenance thread (maint.c): eviction ahead of need to the
 * low watermark, compaction in the background, and the counts that say
 * which path did the work.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "store_testutil.h"

#define BUDGET (8u << 20)

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 2 s for ok(s); returns whether it came. */
static int wait_for(tmem_store *s, int (*ok)(const tmem_global_stats *))
{
    tmem_global_stats g;
    for (int i = 0; i < 200; i++) {
        tmem_store_stats(s, &g);
        if (ok(&g))
            return 1;
        sleep_ms(10);
    }
    return 0;
}

static int under_low(const tmem_global_stats *g)
{
    return g->used_bytes <= BUDGET - BUDGET / 128;
}

/* Ephemeral puts far past the budget: the thread evicts ahead of them and
 * takes the store down to the low watermark; every eviction is counted
 * once, inline or in the background; the budget is never passed. */
TEST(maint_evicts_ahead_to_low_watermark)
{
    tmem_store *s = tu_store(BUDGET, TMEM_COMPRESS_LZ4);
    ASSERT_EQ(tmem_store_start_maintenance(s), 0);
    ASSERT_EQ(tmem_store_start_maintenance(s), -EALREADY);
    tmem_client *c = tu_client(s);
    int pool = tmem_pool_new(c, NULL, EPH, NULL);
    ASSERT_GE(pool, 0);
    tmem_global_stats g;
    /* half-random pages: ~2 KiB each stored, 20 MB in all */
    for (uint32_t i = 0; i < 10000; i++) {
        ASSERT_EQ(tu_put(c, pool, i / 64, i % 64, (uint64_t)i * 5 + 4), 1);
        if (i % 1000 == 0) {
            tmem_store_stats(s, &g);
            ASSERT_LE(g.used_bytes, BUDGET);
        }
    }
    ASSERT_TRUE(wait_for(s, under_low));
    tmem_store_stats(s, &g);
    fprintf(stderr, "  evictions %llu: background %llu, inline %llu\n",
            (unsigned long long)g.evictions,
            (unsigned long long)g.evict_background,
            (unsigned long long)g.evict_inline);
    ASSERT_GT(g.evict_background, 0);
    ASSERT_U64_EQ(g.evictions, g.evict_background + g.evict_inline);
    ASSERT_GT(g.eph_pages, 1000); /* it evicts to a mark, not everything */
    /* the newest pages are the ones kept */
    tu_expect_page(c, pool, 9999 / 64, 9999 % 64, 9999ull * 5 + 4);
    tmem_store_destroy(s);
}

/* Without the thread every eviction is a put's own. */
TEST(maint_off_evicts_inline)
{
    tmem_store *s = tu_store(BUDGET, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int pool = tmem_pool_new(c, NULL, EPH, NULL);
    for (uint32_t i = 0; i < 10000; i++)
        ASSERT_EQ(tu_put(c, pool, i / 64, i % 64, (uint64_t)i * 5 + 4), 1);
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_GT(g.evict_inline, 0);
    ASSERT_U64_EQ(g.evict_background, 0);
    ASSERT_U64_EQ(g.evictions, g.evict_inline);
    tmem_store_destroy(s);
}

static int compacted(const tmem_global_stats *g)
{
    return g->compact_background > 0;
}

/* Persistent pages flushed in a scattered pattern leave their segments
 * sparse: the thread compacts them (frees no longer do), and every page
 * left reads back right. */
TEST(maint_compacts_in_background)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    ASSERT_EQ(tmem_store_start_maintenance(s), 0);
    tmem_client *c = tu_client(s);
    int pool = tmem_pool_new(c, NULL, PERS, NULL);
    ASSERT_GE(pool, 0);
    enum { N = 12000 };
    for (uint32_t i = 0; i < N; i++)
        ASSERT_EQ(tu_put(c, pool, 1, i, (uint64_t)i * 5 + 2), 1);
    tmem_global_stats before, g;
    tmem_store_stats(s, &before);
    tmem_oid o = tu_oid(1);
    for (uint32_t i = 0; i < N; i++)
        if (i % 4 != 0) /* one page in four stays: every segment sparse */
            ASSERT_EQ(tmem_page_flush(c, pool, &o, i), 1);
    ASSERT_TRUE(wait_for(s, compacted));
    tmem_store_stats(s, &g);
    fprintf(stderr, "  data %llu -> %llu bytes, %llu compaction steps\n",
            (unsigned long long)before.data_bytes,
            (unsigned long long)g.data_bytes,
            (unsigned long long)g.compact_background);
    for (uint32_t i = 0; i < N; i += 4)
        tu_expect_page(c, pool, 1, i, (uint64_t)i * 5 + 2);
    tmem_store_destroy(s);
}

struct churn {
    tmem_store *s;
    int seed;
};

static void *churner(void *arg)
{
    struct churn *ch = arg;
    tmem_client *c = tu_client(ch->s);
    int pe = tmem_pool_new(c, NULL, EPH, NULL);
    int pp = tmem_pool_new(c, NULL, PERS, NULL);
    uint8_t got[TMEM_PAGE_SIZE], want[TMEM_PAGE_SIZE];
    for (uint32_t i = 0; i < 6000; i++) {
        uint64_t seed = ((uint64_t)ch->seed << 32 | i) * 5 + 4;
        tmem_oid o = tu_oid(i % 97);
        tu_put(c, pe, i % 97, i, seed);
        if (tu_put(c, pp, i % 97, i % 500, seed) == 1) {
            tu_page(want, seed);
            if (tmem_page_get(c, pp, &o, i % 500, got) != 1 ||
                memcmp(got, want, sizeof got) != 0)
                return (void *)1;
        }
        if (i % 3 == 0)
            tmem_page_flush(c, pp, &o, (i / 3) % 500);
    }
    return NULL;
}

/* Two tenants churning (puts over the budget, flushes) while the thread
 * evicts and compacts: every persistent page read back is right, the
 * budget holds. */
TEST(maint_concurrent_churn)
{
    tmem_store *s = tu_store(BUDGET / 2, TMEM_COMPRESS_LZ4);
    ASSERT_EQ(tmem_store_start_maintenance(s), 0);
    pthread_t t[2];
    struct churn ch[2] = {{s, 1}, {s, 2}};
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, churner, &ch[i]), 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        ASSERT_TRUE(r == NULL);
    }
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_LE(g.used_bytes, BUDGET / 2);
    tmem_store_destroy(s);
}

/* Memory held for a client outside the store (tmemd's ring) is charged
 * to the budget: room is made for it, it shows in used_bytes and the
 * client's figures, a refusal charges nothing, and it goes back when
 * given back or when the client is destroyed. */
TEST(client_charge_outside_bytes)
{
    tmem_store *s = tu_store(BUDGET, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s), *d = tu_client(s);
    int pool = tmem_pool_new(d, NULL, EPH, NULL);
    for (uint32_t i = 0; i < 6000; i++) /* the budget full of d's pages */
        ASSERT_EQ(tu_put(d, pool, i / 64, i % 64, (uint64_t)i * 5 + 4), 1);
    tmem_global_stats g0, g;
    tmem_store_stats(s, &g0);
    ASSERT_EQ(tmem_client_charge(c, 1 << 20), 0); /* evicts d's to fit */
    tmem_store_stats(s, &g);
    ASSERT_LE(g.used_bytes, BUDGET);
    ASSERT_GT(g.evictions, g0.evictions);
    tmem_client_stats cs;
    ASSERT_EQ(tmem_store_client_stats(s, tmem_client_id(c), &cs), 0);
    ASSERT_U64_EQ(cs.extra_bytes, 1 << 20);
    ASSERT_EQ(tmem_client_charge(c, (int64_t)BUDGET * 2), TMEM_ENOSPC);
    ASSERT_EQ(tmem_client_charge(c, -(2 << 20)), TMEM_EINVAL);
    ASSERT_EQ(tmem_client_charge(c, -(512 << 10)), 0);
    ASSERT_EQ(tmem_store_client_stats(s, tmem_client_id(c), &cs), 0);
    ASSERT_U64_EQ(cs.extra_bytes, 512 << 10);
    tmem_store_stats(s, &g0);
    tmem_client_destroy(c);
    tmem_store_stats(s, &g);
    ASSERT_LE(g.used_bytes + (512 << 10), g0.used_bytes);
    tmem_store_destroy(s);
}
