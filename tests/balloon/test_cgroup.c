/*
 * The cgroup backend against prepared directory trees: parsing of v1 and
 * v2 files into controller inputs, target writing (the step rule, the
 * ceiling, restore at close), and the refusals (root, self, not memory).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "balloon/cgroup.h"
#include "../runner.h"
#include "test_files.h"

#define MIB (1024ull * 1024ull)
#define NONE 9223372036854771712ll /* v1's "no limit" */

static long long get_ll(const char *dir, const char *file)
{
    char path[PATH_MAX], buf[64] = "";
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    ASSERT_TRUE(fgets(buf, sizeof buf, f) != NULL);
    fclose(f);
    return atoll(buf);
}

static void fake_v1(const char *ten, const char *limit)
{
    char stat[512];

    tf_put(ten, "memory.limit_in_bytes", limit);
    snprintf(stat, sizeof stat, "%llu\n", 400 * MIB);
    tf_put(ten, "memory.usage_in_bytes", stat);
    snprintf(stat, sizeof stat,
             "cache 1\nrss 2\nswap 3\ntotal_cache %llu\ntotal_rss %llu\n"
             "total_swap %llu\n",
             150 * MIB, 200 * MIB, 40 * MIB);
    tf_put(ten, "memory.stat", stat);
    snprintf(stat, sizeof stat, "%llu\n", 8 * MIB);
    tf_put(ten, "memory.kmem.usage_in_bytes", stat);
}

static uint64_t reserve_pages(void)
{
    return 512 + 64 * (uint64_t)sysconf(_SC_NPROCESSORS_ONLN);
}

TEST(cgroup_v1_parse_limit_set)
{
    char tmp[PATH_MAX], ten[PATH_MAX], lim[32];
    tmem_balloon_backend be;
    tmem_balloon_input in;

    tf_cgroup_tree(tmp, ten);
    snprintf(lim, sizeof lim, "%llu\n", 512 * MIB);
    fake_v1(ten, lim);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    ASSERT_STR_EQ(be.name, "cgroup-v1");
    ASSERT_STR_EQ(be.pressure_path, "/proc/pressure/memory");
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.cur, 512 * 256);
    ASSERT_U64_EQ(in.committed, 200 * 256 + 8 * 256);
    ASSERT_U64_EQ(in.frontswap, 40 * 256);
    ASSERT_U64_EQ(in.max, 512 * 256);
    ASSERT_U64_EQ(in.reserve, reserve_pages());
    tmem_balloon_backend_close(&be);
    tf_rm_tree(tmp);
}

TEST(cgroup_v1_no_limit_uses_usage_and_peak)
{
    char tmp[PATH_MAX], ten[PATH_MAX], buf[32];
    tmem_balloon_backend be;
    tmem_balloon_input in;

    tf_cgroup_tree(tmp, ten);
    fake_v1(ten, "9223372036854771712\n");
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.cur, 400 * 256);
    ASSERT_U64_EQ(in.max, 400 * 256);
    snprintf(buf, sizeof buf, "%llu\n", 300 * MIB);
    tf_put(ten, "memory.usage_in_bytes", buf);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.cur, 300 * 256);
    ASSERT_U64_EQ(in.max, 400 * 256); /* the peak stays */
    tmem_balloon_backend_close(&be);
    tf_rm_tree(tmp);
}

TEST(cgroup_v1_apply_step_rule_ceiling_restore)
{
    char tmp[PATH_MAX], ten[PATH_MAX], lim[32];
    tmem_balloon_backend be;
    struct tmem_balloon_cgroup_info info;

    tf_cgroup_tree(tmp, ten);
    snprintf(lim, sizeof lim, "%llu\n", 512 * MIB);
    fake_v1(ten, lim);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    /* usage 400 MiB: step = max(32 MiB, 50 MiB) -> not below 350 MiB */
    ASSERT_EQ(be.apply_target(be.self, 100 * 256), 0);
    ASSERT_EQ(get_ll(ten, "memory.limit_in_bytes"), (long long)(350 * MIB));
    ASSERT_EQ(tmem_balloon_cgroup_info(&be, &info), 0);
    ASSERT_EQ(info.clamped, 1);
    ASSERT_U64_EQ(info.applied, 350 * 256);
    ASSERT_EQ(be.apply_target(be.self, 380 * 256), 0);
    ASSERT_EQ(get_ll(ten, "memory.limit_in_bytes"), (long long)(380 * MIB));
    /* never above the allowance at open */
    ASSERT_EQ(be.apply_target(be.self, 900 * 256), 0);
    ASSERT_EQ(get_ll(ten, "memory.limit_in_bytes"), (long long)(512 * MIB));
    ASSERT_EQ(be.apply_target(be.self, 360 * 256), 0);
    tmem_balloon_backend_close(&be); /* restores 512 MiB */
    ASSERT_EQ(get_ll(ten, "memory.limit_in_bytes"), (long long)(512 * MIB));
    tf_rm_tree(tmp);
}

/* A tenant with no allowance at open that has held less than 16 MiB
 * beyond its reserve (an empty cgroup, a job just starting) is not worth
 * ballooning yet: a target leaves it unlimited instead of pinning it at
 * the little it has held; from then on the step rule applies. */
TEST(cgroup_v1_empty_unlimited_tenant_is_left_to_grow)
{
    char tmp[PATH_MAX], ten[PATH_MAX], buf[32];
    tmem_balloon_backend be;
    tmem_balloon_input in;
    struct tmem_balloon_cgroup_info info;

    tf_cgroup_tree(tmp, ten);
    fake_v1(ten, "9223372036854771712\n");
    tf_put(ten, "memory.usage_in_bytes", "0\n");
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.cur, 0);
    ASSERT_U64_EQ(in.used, 0);
    /* the controller's first target for it: 3.5 MiB; not written */
    tf_put(ten, "memory.limit_in_bytes", "12345\n");
    ASSERT_EQ(be.apply_target(be.self, 896), 0);
    ASSERT_EQ(get_ll(ten, "memory.limit_in_bytes"), NONE);
    ASSERT_EQ(tmem_balloon_cgroup_info(&be, &info), 0);
    ASSERT_U64_EQ(info.applied, 0);
    ASSERT_U64_EQ(info.clamped, 0);
    /* 10 MiB held: still below reserve + 16 MiB */
    snprintf(buf, sizeof buf, "%llu\n", 10 * MIB);
    tf_put(ten, "memory.usage_in_bytes", buf);
    ASSERT_EQ(be.apply_target(be.self, 5 * 256), 0);
    ASSERT_EQ(get_ll(ten, "memory.limit_in_bytes"), NONE);
    /* 60 MiB held: ballooned, one step (32 MiB) at most below usage */
    snprintf(buf, sizeof buf, "%llu\n", 60 * MIB);
    tf_put(ten, "memory.usage_in_bytes", buf);
    ASSERT_EQ(be.apply_target(be.self, 5 * 256), 0);
    ASSERT_EQ(get_ll(ten, "memory.limit_in_bytes"), (long long)(28 * MIB));
    /* and it stays ballooned when its usage falls again: the peak counts */
    snprintf(buf, sizeof buf, "%llu\n", 4 * MIB);
    tf_put(ten, "memory.usage_in_bytes", buf);
    ASSERT_EQ(be.apply_target(be.self, 20 * 256), 0);
    ASSERT_EQ(get_ll(ten, "memory.limit_in_bytes"), (long long)(20 * MIB));
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.cur, 20 * 256);
    ASSERT_U64_EQ(in.used, 4 * 256);
    ASSERT_U64_EQ(in.max, 60 * 256);
    tmem_balloon_backend_close(&be);
    ASSERT_EQ(get_ll(ten, "memory.limit_in_bytes"), NONE);
    tf_rm_tree(tmp);
}

TEST(cgroup_v1_swap_from_memsw_when_no_stat_field)
{
    char tmp[PATH_MAX], ten[PATH_MAX], buf[64];
    tmem_balloon_backend be;
    tmem_balloon_input in;

    tf_cgroup_tree(tmp, ten);
    fake_v1(ten, "9223372036854771712\n");
    tf_put(ten, "memory.stat", "cache 0\nrss 104857600\n");
    snprintf(buf, sizeof buf, "%llu\n", 430 * MIB);
    tf_put(ten, "memory.memsw.usage_in_bytes", buf);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.committed, 100 * 256 + 8 * 256);
    ASSERT_U64_EQ(in.frontswap, 30 * 256);
    tmem_balloon_backend_close(&be);
    tf_rm_tree(tmp);
}

TEST(cgroup_v2_parse_and_apply)
{
    char tmp[PATH_MAX], ten[PATH_MAX], buf[256], pp[PATH_MAX + 32];
    tmem_balloon_backend be;
    tmem_balloon_input in;

    tf_cgroup_tree(tmp, ten);
    tf_put(ten, "memory.high", "max\n");
    snprintf(buf, sizeof buf, "%llu\n", 600 * MIB);
    tf_put(ten, "memory.current", buf);
    snprintf(buf, sizeof buf,
             "anon %llu\nfile %llu\nkernel %llu\nslab_reclaimable %llu\n",
             250 * MIB, 300 * MIB, 20 * MIB, 12 * MIB);
    tf_put(ten, "memory.stat", buf);
    snprintf(buf, sizeof buf, "%llu\n", 16 * MIB);
    tf_put(ten, "memory.swap.current", buf);
    tf_put(ten, "memory.pressure", "some avg10=0.00\n");
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    ASSERT_STR_EQ(be.name, "cgroup-v2");
    snprintf(pp, sizeof pp, "%s/memory.pressure", ten);
    ASSERT_STR_EQ(be.pressure_path, pp);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.cur, 600 * 256);
    ASSERT_U64_EQ(in.committed, 250 * 256 + 8 * 256);
    ASSERT_U64_EQ(in.frontswap, 16 * 256);
    ASSERT_EQ(be.apply_target(be.self, 560 * 256), 0);
    ASSERT_EQ(get_ll(ten, "memory.high"), (long long)(560 * MIB));
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.cur, 560 * 256);
    tmem_balloon_backend_close(&be);
    snprintf(buf, sizeof buf, "%.200s/memory.high", ten);
    FILE *f = fopen(buf, "r");
    ASSERT_TRUE(f && fgets(buf, sizeof buf, f));
    fclose(f);
    ASSERT_STR_EQ(buf, "max\n"); /* restored */
    tf_rm_tree(tmp);
}

TEST(cgroup_v2_kernel_parts_without_kernel_field)
{
    char tmp[PATH_MAX], ten[PATH_MAX], buf[256];
    tmem_balloon_backend be;
    tmem_balloon_input in;

    tf_cgroup_tree(tmp, ten);
    tf_put(ten, "memory.high", "max\n");
    tf_put(ten, "memory.current", "104857600\n");
    snprintf(buf, sizeof buf,
             "anon %llu\nkernel_stack %llu\npagetables %llu\n"
             "percpu %llu\nslab_unreclaimable %llu\nslab_reclaimable 999\n",
             10 * MIB, 1 * MIB, 2 * MIB, 1 * MIB, 4 * MIB);
    tf_put(ten, "memory.stat", buf);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.committed, 18 * 256);
    ASSERT_U64_EQ(in.frontswap, 0); /* VmSwap of pid 1 (not in swap) */
    tmem_balloon_backend_close(&be);
    tf_rm_tree(tmp);
}

TEST(cgroup_refuses_root_of_hierarchy)
{
    char tmp[PATH_MAX], root[PATH_MAX + 16], err[512] = "";
    tmem_balloon_backend be;

    tf_cgroup_tree(tmp, root);
    snprintf(root, sizeof root, "%s/parent", tmp);
    fake_v1(root, "9223372036854771712\n");
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, root, err, sizeof err), -EPERM);
    ASSERT_TRUE(strstr(err, "root cgroup") != NULL);
    ASSERT_TRUE(be.self == NULL);
    tf_rm_tree(tmp);
    /* the real one too */
    if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0)
        ASSERT_EQ(tmem_balloon_cgroup_open(&be, "/sys/fs/cgroup/memory",
                                           err, sizeof err), -EPERM);
}

TEST(cgroup_refuses_self_here_and_below)
{
    char tmp[PATH_MAX], ten[PATH_MAX], sub[PATH_MAX + 8], me[32];
    char err[512] = "";
    tmem_balloon_backend be;

    tf_cgroup_tree(tmp, ten);
    fake_v1(ten, "9223372036854771712\n");
    snprintf(me, sizeof me, "1\n%d\n", (int)getpid());
    tf_put(ten, "cgroup.procs", me);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, err, sizeof err), -EPERM);
    ASSERT_TRUE(strstr(err, "holds this process") != NULL);
    tf_put(ten, "cgroup.procs", "1\n");
    snprintf(sub, sizeof sub, "%s/sub", ten);
    ASSERT_EQ(mkdir(sub, 0755), 0);
    tf_put(sub, "cgroup.procs", me);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, err, sizeof err), -EPERM);
    tf_put(sub, "cgroup.procs", "");
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, err, sizeof err), 0);
    tmem_balloon_backend_close(&be);
    tf_rm_tree(tmp);
}

TEST(cgroup_refuses_non_memory_dir_and_bad_stat)
{
    char tmp[PATH_MAX], ten[PATH_MAX], err[512] = "";
    tmem_balloon_backend be;
    tmem_balloon_input in;

    tf_cgroup_tree(tmp, ten);
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, err, sizeof err), -ENOENT);
    ASSERT_TRUE(strstr(err, "not a memory cgroup") != NULL);
    fake_v1(ten, "9223372036854771712\n");
    tf_put(ten, "memory.stat", "cache 5\n");
    ASSERT_EQ(tmem_balloon_cgroup_open(&be, ten, err, sizeof err), 0);
    ASSERT_EQ(be.read(be.self, &in), -EINVAL);
    ASSERT_TRUE(strstr(tmem_balloon_backend_why(&be), "no rss") != NULL);
    tf_put(ten, "memory.usage_in_bytes", "lots\n");
    ASSERT_EQ(be.read(be.self, &in), -EINVAL);
    tmem_balloon_backend_close(&be);
    tf_rm_tree(tmp);
}
