/*
 * The refault-aware working-set estimate (lib/balloon/workingset.c): the
 * memory.stat counters it reads, its arithmetic over fed samples (time and
 * counters given by the test), and the cgroup backend adding it to
 * committed on a prepared v1 tree.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "balloon/cgroup.h"
#include "balloon/workingset.h"
#include "../runner.h"
#include "test_files.h"

#define HL TMEM_BALLOON_WS_HALF_LIFE_MS
#define MIB (1024ull * 1024ull)

TEST(ws_parse_v1_prefers_hierarchical_totals)
{
    uint64_t f = 9, a = 9;
    const char *st = "rss 1\nworkingset_refault_anon 3\n"
                     "workingset_refault_file 4\n"
                     "total_rss 10\ntotal_workingset_refault_anon 30\n"
                     "total_workingset_refault_file 40\n";

    ASSERT_EQ(tmem_balloon_ws_parse(st, 1, &f, &a), 1);
    ASSERT_U64_EQ(f, 40);
    ASSERT_U64_EQ(a, 30);
    /* v2 has no total_ lines: its own fields are hierarchical */
    ASSERT_EQ(tmem_balloon_ws_parse(st, 2, &f, &a), 1);
    ASSERT_U64_EQ(f, 4);
    ASSERT_U64_EQ(a, 3);
    /* a v1 cgroup without the total_ lines */
    ASSERT_EQ(tmem_balloon_ws_parse("workingset_refault_file 7\n", 1, &f, &a),
              1);
    ASSERT_U64_EQ(f, 7);
    ASSERT_U64_EQ(a, 0);
}

TEST(ws_parse_old_kernel_and_absent)
{
    uint64_t f = 9, a = 9;
    /* before 5.9: one counter; workingset_activate is not a refault */
    const char *old = "anon 5\nworkingset_refault 12\nworkingset_activate 6\n";

    ASSERT_EQ(tmem_balloon_ws_parse(old, 2, &f, &a), 1);
    ASSERT_U64_EQ(f, 12);
    ASSERT_U64_EQ(a, 0);
    ASSERT_EQ(tmem_balloon_ws_parse("rss 1\ncache 2\n", 1, &f, &a), 0);
    ASSERT_U64_EQ(f, 0);
    ASSERT_U64_EQ(a, 0);
    /* a longer name that starts the same is another field */
    ASSERT_EQ(tmem_balloon_ws_parse("workingset_refaults 3\n", 2, &f, &a), 0);
}

static uint64_t feed(tmem_balloon_ws *w, uint64_t t, uint64_t file,
                     uint64_t anon, uint64_t drained, uint64_t anon_now,
                     uint64_t cap)
{
    tmem_balloon_ws_sample s = {t, file, anon, drained, anon_now, cap, 0};

    return tmem_balloon_ws_update(w, &s);
}

TEST(ws_first_sample_is_history_then_refaults_add)
{
    tmem_balloon_ws w;

    tmem_balloon_ws_reset(&w);
    /* counters from before the controller count for nothing */
    ASSERT_U64_EQ(feed(&w, 1000, 50000, 7000, 0, 100000, 100000), 0);
    ASSERT_U64_EQ(feed(&w, 1000, 51000, 7000, 0, 100000, 100000), 1000);
    /* same instant: no decay, more refaults add up, anon too */
    ASSERT_U64_EQ(feed(&w, 1000, 51500, 7200, 0, 100000, 100000), 1700);
}

TEST(ws_halves_every_half_life_and_reaches_zero)
{
    tmem_balloon_ws w;
    uint64_t v = 0;

    tmem_balloon_ws_reset(&w);
    feed(&w, 0, 0, 0, 0, 0, 1u << 20);
    ASSERT_U64_EQ(feed(&w, 0, 8192, 0, 0, 0, 1u << 20), 8192);
    ASSERT_U64_EQ(feed(&w, HL, 8192, 0, 0, 0, 1u << 20), 4096);
    ASSERT_U64_EQ(feed(&w, 3 * HL, 8192, 0, 0, 0, 1u << 20), 1024);
    /* refaults after decay add to what is left */
    ASSERT_U64_EQ(feed(&w, 4 * HL, 8192 + 100, 0, 0, 0, 1u << 20), 612);
    for (uint64_t t = 5; t < 40; t++)
        v = feed(&w, t * HL, 8292, 0, 0, 0, 1u << 20);
    ASSERT_U64_EQ(v, 0);
}

TEST(ws_nothing_refaults_nothing_added)
{
    tmem_balloon_ws w;

    /* a tenant that streams once: big counters elsewhere, never moving */
    tmem_balloon_ws_reset(&w);
    for (uint64_t t = 0; t < 60; t++)
        ASSERT_U64_EQ(feed(&w, t * 1000, 123456, 654, 0, 80000, 200000), 0);
}

TEST(ws_bounded_by_cap_and_anon)
{
    tmem_balloon_ws w;

    tmem_balloon_ws_reset(&w);
    feed(&w, 0, 0, 0, 0, 0, 0);
    /* a thrash re-reads many times its size: at most cap */
    ASSERT_U64_EQ(feed(&w, 1000, 900000, 0, 0, 5000, 20000), 20000);
    /* the bound is kept: the level does not remember beyond it */
    ASSERT_U64_EQ(feed(&w, 1000, 900000, 0, 0, 5000, 40000), 20000);
    /* anon refaults: at most the anonymous pages it still has */
    tmem_balloon_ws_reset(&w);
    feed(&w, 0, 0, 0, 0, 0, 0);
    ASSERT_U64_EQ(feed(&w, 1000, 0, 30000, 0, 6000, 100000), 6000);
    /* it freed them: the anon level goes with them */
    ASSERT_U64_EQ(feed(&w, 1000, 0, 30000, 0, 100, 100000), 100);
    /* both together, at most cap */
    ASSERT_U64_EQ(feed(&w, 1000, 700, 30050, 0, 100, 750), 750);
}

/* A burst of refaults (a thrash under too small an allowance refaults
 * the same pages over and over) grows the estimate by one step a
 * sample, file and anon scaled alike. */
TEST(ws_grows_a_step_per_sample)
{
    tmem_balloon_ws w;
    tmem_balloon_ws_sample s = {0, 0, 0, 0, 100000, 1000000, 8192};

    tmem_balloon_ws_reset(&w);
    ASSERT_U64_EQ(tmem_balloon_ws_update(&w, &s), 0);
    /* 100000 refaults (3/4 file) in one sample: 8192 */
    s.refault_file = 75000;
    s.refault_anon = 25000;
    ASSERT_U64_EQ(tmem_balloon_ws_update(&w, &s), 8192);
    ASSERT_U64_EQ((uint64_t)w.file, 6144);
    ASSERT_U64_EQ((uint64_t)w.anon, 2048);
    /* the thrash goes on: another step (same time: no decay) */
    s.refault_file = 150000;
    ASSERT_U64_EQ(tmem_balloon_ws_update(&w, &s), 16384);
    /* a few refaults pass whole */
    s.refault_file += 100;
    ASSERT_U64_EQ(tmem_balloon_ws_update(&w, &s), 16484);
    /* step 0: no limit, as before */
    s.step = 0;
    s.refault_file += 50000;
    ASSERT_U64_EQ(tmem_balloon_ws_update(&w, &s), 66484);
}

TEST(ws_own_drain_is_not_reuse_and_counters_may_restart)
{
    tmem_balloon_ws w;

    tmem_balloon_ws_reset(&w);
    feed(&w, 0, 100, 100, 0, 0, 0);
    /* 5000 anon refaults of which 4000 our own drain brought back */
    ASSERT_U64_EQ(feed(&w, 0, 100, 5100, 4000, 50000, 50000), 1000);
    /* drained more than refaulted: never below 0 */
    ASSERT_U64_EQ(feed(&w, 0, 100, 5200, 9000, 50000, 50000), 1000);
    /* a counter going backwards (cgroup recreated): a new base */
    ASSERT_U64_EQ(feed(&w, 0, 10, 5200, 9000, 50000, 50000), 1000);
    ASSERT_U64_EQ(feed(&w, 0, 60, 5200, 9000, 50000, 50000), 1050);
}

/* Writes the v1 tenant's memory.stat: 200 MiB rss, 40 MiB swap and the
 * given refault counters (pages). */
static void put_stat(const char *ten, uint64_t file, uint64_t anon)
{
    char st[512];

    snprintf(st, sizeof st,
             "cache 1\nrss 2\ntotal_cache %llu\ntotal_rss %llu\n"
             "total_swap %llu\ntotal_workingset_refault_anon %llu\n"
             "total_workingset_refault_file %llu\n",
             150 * MIB, 200 * MIB, 40 * MIB, (unsigned long long)anon,
             (unsigned long long)file);
    tf_put(ten, "memory.stat", st);
}

/* A v1 tenant with a 512 MiB limit, 400 MiB usage, 8 MiB kmem. */
static void fake_tenant(char *tmp, char *ten)
{
    char v[64];

    tf_cgroup_tree(tmp, ten);
    snprintf(v, sizeof v, "%llu\n", 512 * MIB);
    tf_put(ten, "memory.limit_in_bytes", v);
    snprintf(v, sizeof v, "%llu\n", 400 * MIB);
    tf_put(ten, "memory.usage_in_bytes", v);
    snprintf(v, sizeof v, "%llu\n", 8 * MIB);
    tf_put(ten, "memory.kmem.usage_in_bytes", v);
}

TEST(ws_cgroup_backend_adds_reuse_to_committed)
{
    char tmp[PATH_MAX], ten[PATH_MAX];
    tmem_balloon_backend be;
    tmem_balloon_input in;
    struct tmem_balloon_cgroup_info info;
    const uint64_t base = 200 * 256 + 8 * 256;

    fake_tenant(tmp, ten);
    put_stat(ten, 1000000, 2000);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.committed, base); /* history: nothing added */
    /* 50 MiB of files and 10 MiB of anon came back since */
    put_stat(ten, 1000000 + 50 * 256, 2000 + 10 * 256);
    ASSERT_EQ(be.read(be.self, &in), 0);
    /* a read takes well under a second: decay below 0.5% */
    ASSERT_GE(in.committed, base + 60 * 256 - 60 * 256 / 200);
    ASSERT_LE(in.committed, base + 60 * 256);
    ASSERT_EQ(tmem_balloon_cgroup_info(&be, &info), 0);
    ASSERT_U64_EQ(info.workingset, in.committed - base);
    /* the rest of the inputs as before */
    ASSERT_U64_EQ(in.cur, 512 * 256);
    ASSERT_U64_EQ(in.frontswap, 40 * 256);
    /* a thrash of 4 GiB adds one step a read, cur / 8 = 64 MiB ... */
    put_stat(ten, 1000000 + 50 * 256 + 4096 * 256, 2000 + 10 * 256);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_GE(in.committed, base + 124 * 256 - 124 * 256 / 200);
    ASSERT_LE(in.committed, base + 124 * 256);
    /* ... and is bounded by the tenant's size (cur) */
    for (int i = 2; i < 10; i++) {
        put_stat(ten, 1000000 + 50 * 256 + i * 4096 * 256, 2000 + 10 * 256);
        ASSERT_EQ(be.read(be.self, &in), 0);
    }
    ASSERT_U64_EQ(in.committed, base + 512 * 256);
    tmem_balloon_backend_close(&be);
    tf_rm_tree(tmp);
}

/* A v1 tenant's stat: 20 MiB rss, active_file, no refaults. */
static void put_active(const char *ten, unsigned active_mib)
{
    char st[512];

    snprintf(st, sizeof st,
             "total_cache %llu\ntotal_rss %llu\ntotal_swap 0\n"
             "total_active_file %llu\ntotal_workingset_refault_anon 0\n"
             "total_workingset_refault_file 0\n",
             100 * MIB, 20 * MIB, active_mib * MIB);
    tf_put(ten, "memory.stat", st);
}

static void put_usage(const char *ten, unsigned mib)
{
    char v[32];

    snprintf(v, sizeof v, "%llu\n", mib * MIB);
    tf_put(ten, "memory.usage_in_bytes", v);
}

/* When ballooning starts on a tenant that ran unlimited (it has held
 * reserve + 16 MiB), the estimate starts from the kernel's active file
 * list, once; a tenant with an allowance at open is never seeded. */
TEST(ws_seeded_from_active_file_when_ballooning_starts)
{
    char tmp[PATH_MAX], ten[PATH_MAX];
    tmem_balloon_backend be;
    tmem_balloon_input in;
    const uint64_t base = 20 * 256 + 8 * 256;

    fake_tenant(tmp, ten);
    tf_put(ten, "memory.limit_in_bytes", "9223372036854771712\n");
    put_usage(ten, 4);
    put_active(ten, 3);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.committed, base); /* too small to balloon: no seed */
    put_usage(ten, 100);
    put_active(ten, 60);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_GE(in.committed, base + 60 * 256 - 60 * 256 / 200);
    ASSERT_LE(in.committed, base + 60 * 256);
    /* once: a larger active list later adds nothing by itself */
    put_active(ten, 90);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_LE(in.committed, base + 60 * 256);
    tmem_balloon_backend_close(&be);
    tf_rm_tree(tmp);

    /* an allowance at open: ballooned from the start, never seeded */
    fake_tenant(tmp, ten);
    put_usage(ten, 100);
    put_active(ten, 60);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.committed, base);
    tmem_balloon_backend_close(&be);
    tf_rm_tree(tmp);

    /* the seed only raises */
    tmem_balloon_ws w;
    tmem_balloon_ws_reset(&w);
    tmem_balloon_ws_seed(&w, 500);
    tmem_balloon_ws_seed(&w, 200);
    ASSERT_U64_EQ((uint64_t)w.file, 500);
}
