/*
 * Events (cfg.events): the program's own madvise, munmap and mremap on
 * region memory.  MADV_DONTNEED makes pages read as zeros and frees their
 * slots; munmap of part of a region frees that part's slots and splits
 * it; mremap moving a region (and growing it) carries its stored pages
 * along, and shrinking it frees the tail's slots.
 */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../runner.h"
#include "tswap_testutil.h"

static tmem_tswap *events_tswap(tmem_conn *c)
{
    tmem_tswap_config cfg = ts_config(0, true);
    return ts_create(c, &cfg);
}

/* The monitor handles an event after the call that caused it returned:
 * waits until it counted n of them (field f of the stats). */
#define WAIT_EVENTS(t, f, n)                                                   \
    do {                                                                       \
        for (int w_ = 0; w_ < 1000 && ts_stats(t).f < (n); w_++)               \
            usleep(1000);                                                      \
        ASSERT_EQ(ts_stats(t).f, (n));                                         \
    } while (0)

static uint64_t held(tmem_tswap *t)
{
    return tmem_frontswap_curr_pages(tmem_tswap_frontswap(t));
}

TEST(tswap_events_dontneed_discards_and_frees)
{
    enum { N = 64 };
    tmem_conn *c = ts_embedded();
    tmem_tswap *t = events_tswap(c);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 12);
    ASSERT_EQ(tmem_tswap_prefault(t, p + 40 * PG, PG), 0); /* resident */
    ts_evict_to(t, 1);
    tmem_tswap_unpin(t, p + 40 * PG, PG);
    tmem_tswap_set_target(t, 0);
    ASSERT_U64_EQ(held(t), N - 1);
    ASSERT_EQ(madvise(p, 32 * PG, MADV_DONTNEED), 0);
    WAIT_EVENTS(t, ev_remove, 1);
    ASSERT_U64_EQ(held(t), N - 1 - 32);
    ASSERT_EQ(madvise(p + 40 * PG, PG, MADV_DONTNEED), 0); /* a resident */
    WAIT_EVENTS(t, ev_remove, 2);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.stored, N - 1 - 32);
    for (int i = 0; i < N; i++) {
        bool gone = i < 32 || i == 40;
        if (gone)
            for (int j = 0; j < PG; j += 256)
                ASSERT_EQ(p[i * PG + j], 0);
        else
            ASSERT_TRUE(ts_check(p + i * PG, 12, (uint64_t)i));
    }
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_events_munmap_part_frees_its_slots)
{
    enum { N = 64 };
    tmem_conn *c = ts_embedded();
    tmem_tswap *t = events_tswap(c);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 13);
    ASSERT_EQ(tmem_tswap_prefault(t, p, PG), 0); /* page 0 stays */
    ts_evict_to(t, 1);
    tmem_tswap_unpin(t, p, PG);
    tmem_tswap_set_target(t, 0);
    ASSERT_U64_EQ(held(t), N - 1);
    ASSERT_EQ(munmap(p + 16 * PG, 16 * PG), 0);
    WAIT_EVENTS(t, ev_unmap, 1);
    ASSERT_U64_EQ(held(t), N - 1 - 16);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.regions, 2);
    ASSERT_EQ(s.region_pages, N - 16);
    ASSERT_TRUE(!tmem_tswap_owns(t, p + 20 * PG));
    ASSERT_TRUE(tmem_tswap_owns(t, p + 40 * PG));
    ASSERT_EQ(ts_check_n(p, 16, 13), -1);
    for (int i = 32; i < N; i++)
        ASSERT_TRUE(ts_check(p + i * PG, 13, (uint64_t)i));
    /* Both pieces at once would also unmap whatever the kernel put in
     * the hole since: one each. */
    ASSERT_EQ(munmap(p, 16 * PG), 0);
    ASSERT_EQ(munmap(p + 32 * PG, (N - 32) * PG), 0);
    WAIT_EVENTS(t, ev_unmap, 3);
    ASSERT_U64_EQ(held(t), 0);
    s = ts_stats(t);
    ASSERT_EQ(s.regions, 0);
    ASSERT_EQ(s.resident + s.stored + s.copies, 0);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_events_mremap_moves_grows_and_shrinks)
{
    enum { N = 64 };
    tmem_conn *c = ts_embedded();
    tmem_tswap *t = events_tswap(c);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 14);
    ts_evict_to(t, 1);
    tmem_tswap_set_target(t, 0);
    /* Moved (to a spot kept free for it) and grown to twice the size. */
    char *spot =
        mmap(NULL, 2 * N * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(spot != MAP_FAILED);
    char *q =
        mremap(p, N * PG, 2 * N * PG, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
    ASSERT_TRUE(q == spot);
    WAIT_EVENTS(t, ev_remap, 1);
    WAIT_EVENTS(t, ev_unmap, 1); /* the old range, after the REMAP */
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.regions, 1);
    ASSERT_EQ(s.region_pages, 2 * N);
    ASSERT_TRUE(tmem_tswap_owns(t, q + (2 * N - 1) * PG));
    ASSERT_TRUE(!tmem_tswap_owns(t, p));
    ASSERT_EQ(ts_check_n(q, N, 14), -1); /* stored pages came along */
    for (int i = N; i < 2 * N; i++)
        ASSERT_EQ(q[i * PG + 1], 0);
    ASSERT_EQ(s.unknown_faults, 0);
    /* Shrunk in place: the tail's slots go. */
    ts_evict_to(t, 1);
    tmem_tswap_set_target(t, 0);
    uint64_t before = held(t);
    uint64_t unmaps = ts_stats(t).ev_unmap;
    ASSERT_TRUE(mremap(q, 2 * N * PG, N / 2 * PG, 0) == q);
    WAIT_EVENTS(t, ev_unmap, unmaps + 1);
    ASSERT_LE(held(t), before - N / 2 + 1);
    ASSERT_EQ(ts_stats(t).region_pages, N / 2);
    ASSERT_EQ(ts_check_n(q, N / 2, 14), -1);
    ASSERT_EQ(munmap(q, N / 2 * PG), 0);
    WAIT_EVENTS(t, ev_unmap, unmaps + 2);
    ASSERT_U64_EQ(held(t), 0);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_events_touch_right_after_mremap)
{
    /* mremap returns once the monitor read the event, maybe before it
     * moved the region: a fault there waits for it, never zero-fills. */
    enum { N = 32, MOVES = 100 };
    tmem_conn *c = ts_embedded();
    tmem_tswap *t = events_tswap(c);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 15);
    for (int m = 0; m < MOVES; m++) {
        ts_evict_to(t, 1);
        tmem_tswap_set_target(t, 0);
        /* A spot the kernel picks (never MAP_FIXED over a range given
         * back: tswap's own memory may live there by now). */
        char *spot =
            mmap(NULL, N * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ASSERT_TRUE(spot != MAP_FAILED);
        char *q =
            mremap(p, N * PG, N * PG, MREMAP_MAYMOVE | MREMAP_FIXED, spot);
        ASSERT_TRUE(q == spot);
        int i = (m * 7) % N;
        ASSERT_TRUE(ts_check(q + i * PG, 15, (uint64_t)i));
        p = q;
    }
    WAIT_EVENTS(t, ev_remap, MOVES);
    ASSERT_EQ(ts_stats(t).unknown_faults, 0);
    ASSERT_EQ(ts_check_n(p, N, 15), -1);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}
