/*
 * tswap basics on the embedded store: a first touch is a zero page; the
 * resident target bounds what stays in RAM and the rest is stored and
 * comes back intact on a fault; read-ahead; adopting a mapping that holds
 * data; unmap frees slots; destroy leaves plain memory with every byte;
 * one tswap per process; the page-in histogram.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "../runner.h"
#include "tswap_testutil.h"

TEST(tswap_zero_first_touch)
{
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, 64 * PG, (void **)&p), 0);
    ASSERT_TRUE(tmem_tswap_owns(t, p) && tmem_tswap_owns(t, p + 64 * PG - 1));
    ASSERT_TRUE(!tmem_tswap_owns(t, p + 64 * PG));
    for (int i = 0; i < 32; i++) /* reads: the zero page */
        for (int j = 0; j < PG; j += 512)
            ASSERT_EQ(p[i * PG + j], 0);
    for (int i = 32; i < 64; i++) /* writes */
        p[i * PG + 7] = (char)i;
    for (int i = 0; i < 32; i++)
        p[i * PG] = 1;
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.faults_zero, 64);
    ASSERT_EQ(s.faults_pagein, 0);
    ASSERT_EQ(s.resident, 64);
    ASSERT_EQ(s.regions, 1);
    ASSERT_EQ(s.region_pages, 64);
    for (int i = 32; i < 64; i++)
        ASSERT_EQ(p[i * PG + 7], i);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

static void target_roundtrip(tmem_conn *c)
{
    enum { N = 512, T = 64 };
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 7);
    ts_evict_to(t, T);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_LE(s.resident, T);
    ASSERT_EQ(s.resident + s.stored, N);
    ASSERT_EQ(s.stores, s.stored);
    ASSERT_EQ(tmem_frontswap_curr_pages(tmem_tswap_frontswap(t)), s.stored);
    ASSERT_EQ(ts_check_n(p, N, 7), -1); /* faults bring them back */
    s = ts_stats(t);
    ASSERT_GE(s.faults_pagein + s.readahead, N - T);
    ASSERT_GT(tmem_tswap_pagein_us(&s, 0.5), 0);
    ASSERT_GE(tmem_tswap_pagein_us(&s, 0.99), tmem_tswap_pagein_us(&s, 0.5));
    /* Again, with the evictor holding the target by itself. */
    tmem_tswap_set_target(t, T);
    for (int round = 0; round < 3; round++)
        ASSERT_EQ(ts_check_n(p, N, 7), -1);
    tmem_tswap_destroy(t);
}

TEST(tswap_target_bounds_resident_embedded)
{
    tmem_conn *c = ts_embedded();
    target_roundtrip(c);
    tmem_disconnect(c);
}

TEST(tswap_target_bounds_resident_daemon)
{
    ts_on_daemon("256M", target_roundtrip);
}

/* n pages of region *p (seed) out, read-ahead 8, target 0 (no evictions
 * while reading back): the read-ahead tests' start. */
static tmem_tswap *ra_start(tmem_conn *c, size_t n, uint32_t seed, char **p)
{
    tmem_tswap_config cfg = ts_config(0, false);
    cfg.readahead = 8;
    tmem_tswap *t = ts_create(c, &cfg);
    ASSERT_EQ(tmem_tswap_map(t, n * PG, (void **)p), 0);
    ts_fill_n(*p, n, seed);
    ts_evict_to(t, 1);
    tmem_tswap_set_target(t, 0);
    return t;
}

TEST(tswap_readahead_sequential)
{
    enum { N = 256 };
    tmem_conn *c = ts_embedded();
    char *p;
    tmem_tswap *t = ra_start(c, N, 3, &p);
    tmem_tswap_stats s0 = ts_stats(t);
    ASSERT_EQ(ts_check_n(p, N, 3), -1); /* in order: sequential */
    tmem_tswap_stats s = ts_stats(t);
    uint64_t faults = s.faults_pagein - s0.faults_pagein;
    ASSERT_GT(s.readahead, N / 2);
    ASSERT_EQ(faults + s.readahead, s0.stored);
    ASSERT_LT(faults, N / 4);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

/* Objects spanning two pages, reached at random (two faults in a row on
 * consecutive pages, then a jump): no read-ahead; a third fault in a row
 * starts it. */
TEST(tswap_readahead_not_for_page_pairs)
{
    enum { N = 256 };
    tmem_conn *c = ts_embedded();
    char *p;
    tmem_tswap *t = ra_start(c, N, 5, &p);
    tmem_tswap_stats s0 = ts_stats(t);
    volatile char sink = 0;
    for (int k = 0; k < 40; k++) { /* pairs at scattered places */
        int i = (k * 97 + 13) % (N - 1);
        sink += p[(size_t)i * PG];
        sink += p[(size_t)(i + 1) * PG];
    }
    (void)sink;
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.readahead - s0.readahead, 0);
    ASSERT_GT(s.faults_pagein - s0.faults_pagein, 40);
    /* three in a row: the third reads ahead */
    int base = 200;
    for (int i = 0; i < 3; i++)
        sink += p[(size_t)(base + i) * PG];
    ASSERT_GT(ts_stats(t).readahead, s.readahead);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_adopt_mapping_with_data)
{
    enum { N = 128 };
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p = mmap(NULL, N * PG, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    ts_fill_n(p, N / 2, 11); /* half resident, half never touched */
    ASSERT_EQ(tmem_tswap_adopt(t, p + 1, PG), -EINVAL);
    ASSERT_EQ(tmem_tswap_adopt(t, p, N * PG), 0);
    ASSERT_EQ(tmem_tswap_adopt(t, p, PG), -EEXIST);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.resident, N / 2);
    ts_evict_to(t, 1);
    ASSERT_EQ(ts_check_n(p, N / 2, 11), -1);
    for (int i = N / 2; i < N; i++)
        ASSERT_EQ(p[i * PG + 100], 0);
    /* Not anonymous private memory: refused. */
    char *sh = mmap(NULL, PG, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_EQ(tmem_tswap_adopt(t, sh, PG), -EINVAL);
    ASSERT_TRUE(strstr(tmem_tswap_why(t), "anonymous") != NULL);
    munmap(sh, PG);
    tmem_tswap_destroy(t);
    munmap(p, N * PG);
    tmem_disconnect(c);
}

TEST(tswap_unmap_frees_slots)
{
    enum { N = 128 };
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    tmem_frontswap *fs = tmem_tswap_frontswap(t);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 5);
    ts_evict_to(t, 1);
    ASSERT_GE(tmem_frontswap_curr_pages(fs), N - 1);
    ASSERT_EQ(tmem_tswap_unmap(t, p + PG, PG * 3), 0); /* a hole */
    ASSERT_TRUE(!tmem_tswap_owns(t, p + 2 * PG));
    ASSERT_TRUE(tmem_tswap_owns(t, p + 4 * PG));
    ASSERT_EQ(ts_stats(t).regions, 2);
    ASSERT_TRUE(ts_check(p, 5, 0));
    ASSERT_EQ(ts_check_n(p + 4 * PG, N - 4, 5) == -1 ? 0 : 1, 1);
    for (int i = 4; i < N; i++)
        ASSERT_TRUE(ts_check(p + i * PG, 5, (uint64_t)i));
    ASSERT_EQ(tmem_tswap_unmap(t, p + PG, PG), -EINVAL); /* not ours */
    ASSERT_EQ(tmem_tswap_unmap(t, p, PG), 0);
    ASSERT_EQ(tmem_tswap_unmap(t, p + 4 * PG, (N - 4) * PG), 0);
    ASSERT_EQ(tmem_frontswap_curr_pages(fs), 0);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.regions, 0);
    ASSERT_EQ(s.stored + s.resident + s.copies, 0);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_destroy_leaves_plain_memory)
{
    enum { N = 256 };
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, true);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N / 2, 9); /* the other half never touched */
    ts_evict_to(t, 1);
    ASSERT_GT(ts_stats(t).stored, N / 4);
    tmem_tswap_destroy(t);
    /* No tswap now: plain memory, every byte where it was. */
    ASSERT_EQ(ts_check_n(p, N / 2, 9), -1);
    for (int i = N / 2; i < N; i++)
        ASSERT_EQ(p[i * PG + 5], 0);
    ASSERT_EQ(munmap(p, N * PG), 0);
    /* A new one may be made after. */
    t = ts_create(c, &cfg);
    tmem_tswap *t2 = NULL;
    ASSERT_EQ(tmem_tswap_create(c, &cfg, &t2), -EBUSY);
    tmem_tswap_destroy(t);
    tmem_tswap_destroy(NULL);
    tmem_disconnect(c);
}
