/*
 * Unchanged pages: a page that came back and was not written keeps its
 * stored copy, so evicting it again stores nothing (frontswap's
 * succ_stores stays put) while a changed page is stored again; a page
 * written after its first scan has a stale copy, flushed at once; an
 * all-zero page is dropped, not stored.
 */
#include <string.h>

#include "../runner.h"
#include "tswap_testutil.h"

static uint64_t puts_of(tmem_tswap *t)
{
    tmem_frontswap_stats fs;
    tmem_frontswap_stats_get(tmem_tswap_frontswap(t), &fs);
    return fs.succ_stores;
}

TEST(tswap_unchanged_pages_are_not_stored_again)
{
    enum { N = 64, CHANGED = 10 };
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 31);
    /* The last page pinned: it is the one that stays each time, so every
     * other page was stored once after the first pass. */
    ASSERT_EQ(tmem_tswap_prefault(t, p + (N - 1) * PG, PG), 0);
    ts_evict_to(t, 1);
    uint64_t puts = puts_of(t);
    ASSERT_U64_EQ(puts, N - 1);
    /* Back in, read only: each keeps its copy. */
    tmem_tswap_set_target(t, 0);
    ASSERT_EQ(ts_check_n(p, N, 31), -1);
    ASSERT_GE(ts_stats(t).copies, N - 1);
    ts_evict_to(t, 1);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_U64_EQ(puts_of(t), puts); /* no new puts */
    ASSERT_EQ(s.clean_drops, N - 1);
    ASSERT_EQ(ts_check_n(p, N, 31), -1);
    /* Change some: exactly those are stored again. */
    tmem_tswap_set_target(t, 0);
    for (int i = 0; i < CHANGED; i++)
        p[i * 5 * PG + 100] ^= 0x5a;
    for (int i = 0; i < N; i++) /* the rest come back unchanged */
        (void)*(volatile char *)(p + i * PG);
    ts_evict_to(t, 1);
    ASSERT_U64_EQ(puts_of(t), puts + CHANGED);
    for (int i = 0; i < CHANGED; i++)
        p[i * 5 * PG + 100] ^= 0x5a;
    ASSERT_EQ(ts_check_n(p, N, 31), -1);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_stale_copy_flushed_at_second_scan)
{
    enum { N = 16 };
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    cfg.readahead = 0;
    cfg.interval_ms = 100000; /* scans come from reclaim alone */
    tmem_tswap *t = ts_create(c, &cfg);
    tmem_frontswap *fs = tmem_tswap_frontswap(t);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 4);
    ts_evict_to(t, 1);
    tmem_tswap_set_target(t, 0); /* reclaim now only scans */
    uint64_t held = tmem_frontswap_curr_pages(fs);
    ASSERT_TRUE(ts_check(p + 3 * PG, 4, 3)); /* in, with its copy */
    ASSERT_EQ(tmem_tswap_reclaim(t), 0);     /* first scan: fresh */
    ASSERT_EQ(ts_stats(t).stale_flushes, 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), held);
    p[3 * PG] ^= 1; /* written after it: the copy is stale */
    ASSERT_EQ(tmem_tswap_reclaim(t), 0);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.stale_flushes, 1);
    ASSERT_EQ(s.copies, 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), held - 1);
    p[3 * PG] ^= 1;
    ts_evict_to(t, 1);
    ASSERT_EQ(ts_check_n(p, N, 4), -1);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_zero_pages_are_dropped)
{
    enum { N = 32 };
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    for (int i = 0; i < N; i++) /* touched, written, zero again */
        p[i * PG + 9] = 1, p[i * PG + 9] = 0;
    ts_evict_to(t, 1);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_GE(s.zero_drops, N - 1);
    ASSERT_EQ(s.stores, 0);
    ASSERT_EQ(tmem_frontswap_curr_pages(tmem_tswap_frontswap(t)), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(p[i * PG + 9], 0);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}
