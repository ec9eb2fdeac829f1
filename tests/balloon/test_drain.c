/*
 * The swap-tier drain for real: a tenant's pages are pushed to our own
 * zram swap with MADV_PAGEOUT, then brought back with process_madvise
 * (MADV_WILLNEED) + a read; swap use must fall, within the budget, and the
 * tenant's data must be intact.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "balloon/drain.h"
#include "test_cgroup_env.h"

static void need_root(void)
{
    if (geteuid() != 0)
        TEST_SKIP("needs root (swapon, process_madvise)");
}

TEST(drain_pid_budget_then_all)
{
    struct tenant t;
    struct tmem_balloon_drain_stats st = {0};
    int64_t before, after, n;

    need_root();
    ASSERT_GE(env_zram_swap(256), 0);
    ASSERT_EQ(tenant_start(&t, NULL), 0);
    ASSERT_EQ(tenant_cmd(&t, "anon 64", 30), 0);
    /* MADV_PAGEOUT is best effort (pages under isolation are skipped) */
    for (int i = 0; i < 5 && tmem_balloon_swapped_pages(t.pid) < 64 * 230;
         i++)
        ASSERT_EQ(tenant_cmd(&t, "pageout", 30), 0);
    before = tmem_balloon_swapped_pages(t.pid);
    ASSERT_GE(before, 64 * 256 / 2);
    n = tmem_balloon_drain_pid(t.pid, 1000, &st);
    ASSERT_EQ(n, 1000);
    after = tmem_balloon_swapped_pages(t.pid);
    ASSERT_LE(after, before - 1000);
    ASSERT_GE(after, before - 1000 - 64); /* the budget held */
    n = tmem_balloon_drain_pid(t.pid, 0, &st);
    ASSERT_GE(n, after - 16);
    ASSERT_LE(tmem_balloon_swapped_pages(t.pid), 16);
    ASSERT_GE(st.madvise_calls, 2);
    ASSERT_EQ(tenant_cmd(&t, "check", 60), 0);
    tenant_stop(&t);
}

TEST(drain_cgroup_v1_swap_counter_falls)
{
    char cg[256];
    struct tenant t;
    long long swap;
    int64_t n;

    need_root();
    if (tmem__read_ll("/sys/fs/cgroup/memory", "memory.stat", "total_swap") < 0)
        TEST_SKIP("no cgroup v1 memory controller with swap accounting");
    ASSERT_GE(env_zram_swap(256), 0);
    ASSERT_EQ(env_cgroup(1, "tmem-test-drain", cg, sizeof cg), 0);
    ASSERT_EQ(tenant_start(&t, cg), 0);
    ASSERT_EQ(tenant_cmd(&t, "anon 48", 30), 0);
    for (int i = 0; i < 5 && tmem__read_ll(cg, "memory.stat", "total_swap") <
                                 (44ll << 20); i++)
        ASSERT_EQ(tenant_cmd(&t, "pageout", 30), 0);
    swap = tmem__read_ll(cg, "memory.stat", "total_swap");
    ASSERT_GE(swap, 24ll << 20);
    n = tmem_balloon_drain_cgroup(cg, 0, NULL);
    /* nearly every swapped page is one the drain brought back; a few the
     * kernel brings in itself meanwhile (its swap readahead of slots next
     * to one the drain touched: measured 85 of 12,061 once) */
    ASSERT_GE(n, swap / 4096 - swap / 4096 / 50 - 16);
    swap = tmem__read_ll(cg, "memory.stat", "total_swap");
    ASSERT_LE(swap, 1ll << 20);
    ASSERT_EQ(tenant_cmd(&t, "check", 60), 0);
    tenant_stop(&t);
}

TEST(drain_gone_process_is_esrch)
{
    pid_t pid = fork();

    if (pid == 0)
        _exit(0);
    ASSERT_GT(pid, 0);
    while (waitpid(pid, NULL, 0) < 0)
        ;
    ASSERT_EQ(tmem_balloon_drain_pid(pid, 0, NULL), -ESRCH);
    ASSERT_EQ(tmem_balloon_swapped_pages(pid), -ESRCH);
}
