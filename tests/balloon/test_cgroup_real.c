/*
 * The proof on a real machine (root): `tmem balloon run` over a real memory
 * cgroup with our own zram swap on, interval 1 s.
 *   (a) a tenant holding 300 MiB anon + 500 MiB page cache: within 30 s
 *       the limit comes down to committed + reserve (+ reserved_mb, 10% of
 *       the tenant at start), the page cache squeezed out, tenant alive,
 *       data intact;
 *   (b) it then allocates 400 MiB in one burst, faster than the
 *       controller's steps: pages go to swap, the PSI guard raises the
 *       target (a "psi" decision in the log), no OOM kill (oom_control
 *       oom_kill unchanged, under_oom 0), tenant alive;
 *   (c) calm again: self-shrink brings the swapped pages back (the
 *       cgroup's swap falls to near zero) without the tenant touching
 *       them; then all 700 MiB are checked intact (checking them in (b)
 *       would fault them back and prove nothing in (c)).
 * v2 runs the same wherever a v2 memory controller is mounted.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runner.h"
#include "test_cgroup_env.h"

#define MIB (1ll << 20)

struct real {
    int version;
    char cg[256], log[128], sock[128], file[128];
    const char *limit_file, *usage_file, *swap_key;
    pid_t ctl;
    struct tenant t;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long swap_bytes(struct real *r)
{
    if (r->version == 2)
        return tmem__read_ll(r->cg, "memory.swap.current", NULL);
    return tmem__read_ll(r->cg, "memory.stat", "total_swap");
}

static long long committed_bytes(struct real *r)
{
    long long k;

    if (r->version == 2)
        return tmem__read_ll(r->cg, "memory.stat", "anon") +
               tmem__read_ll(r->cg, "memory.stat", "kernel");
    k = tmem__read_ll(r->cg, "memory.kmem.usage_in_bytes", NULL);
    return tmem__read_ll(r->cg, "memory.stat", "total_rss") + (k > 0 ? k : 0);
}

static long long cache_bytes(struct real *r)
{
    return tmem__read_ll(r->cg, "memory.stat",
                       r->version == 2 ? "file" : "total_cache");
}

static long long oom_kills(struct real *r)
{
    return r->version == 2 ? tmem__read_ll(r->cg, "memory.events", "oom_kill")
                           : tmem__read_ll(r->cg, "memory.oom_control",
                                         "oom_kill");
}

static void start_controller(struct real *r)
{
    static const char *const extra[] = {
        "--set", "frontswap_hysteresis=2", "--set", "frontswap_inertia=1",
        "--shrink-budget-mb", "128", NULL};

    r->ctl = env_balloon_run(r->cg, r->log, r->sock, extra);
}

static bool log_has(struct real *r, const char *needle)
{
    char line[1024];
    bool found = false;
    FILE *f = fopen(r->log, "r");

    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void setup(struct real *r, int version)
{
    long long usage;

    memset(r, 0, sizeof *r);
    r->version = version;
    r->limit_file = version == 2 ? "memory.high" : "memory.limit_in_bytes";
    r->usage_file = version == 2 ? "memory.current" : "memory.usage_in_bytes";
    snprintf(r->log, sizeof r->log, "/tmp/tmem-real-v%d-%d.log", version,
             (int)getpid());
    snprintf(r->sock, sizeof r->sock, "/tmp/tmem-real-v%d-%d.sock", version,
             (int)getpid());
    snprintf(r->file, sizeof r->file, "/var/tmp/tmem-real-cache-%d",
             (int)getpid());
    ASSERT_GE(env_zram_swap(2048), 0);
    ASSERT_EQ(env_cold_file(r->file, 500), 0);
    ASSERT_EQ(env_cgroup(version, "tmem-test-real", r->cg, sizeof r->cg), 0);
    ASSERT_EQ(tenant_start(&r->t, r->cg), 0);
    ASSERT_EQ(tenant_cmd(&r->t, "anon 300", 60), 0);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "cache %s", r->file);
    ASSERT_EQ(tenant_cmd(&r->t, cmd, 60), 500);
    usage = tmem__read_ll(r->cg, r->usage_file, NULL);
    printf("  start: usage %lld MiB, cache %lld MiB, committed %lld MiB\n",
           usage / MIB, cache_bytes(r) / MIB, committed_bytes(r) / MIB);
    ASSERT_GE(usage, 750 * MIB);
}

/* (a): the limit comes down to committed + reserve, cache squeezed. */
static void phase_a(struct real *r, long long start_usage)
{
    long long reserved = start_usage / 10, limit = -1, goal = 0;
    double t0 = now_s(), t = 0;

    while ((t = now_s() - t0) < 30) {
        sleep(1);
        limit = tmem__read_ll(r->cg, r->limit_file, NULL);
        goal = committed_bytes(r) + reserved + 4 * MIB;
        if (limit > 0 && limit <= goal + goal / 10 &&
            cache_bytes(r) <= 120 * MIB)
            break;
    }
    printf("  (a) %.1f s: limit %lld MiB, goal %lld MiB, cache %lld MiB\n", t,
           limit / MIB, goal / MIB, cache_bytes(r) / MIB);
    ASSERT_LT(t, 30);
    ASSERT_TRUE(tenant_alive(&r->t));
    ASSERT_EQ(tenant_cmd(&r->t, "check", 60), 0);
}

/* (b): a burst past the limit: swap, a stall, a higher allowance, no OOM
 * kill. */
static void phase_b(struct real *r, long long *peak_swap)
{
    long long kills = oom_kills(r), limit0 = tmem__read_ll(r->cg, r->limit_file,
                                                         NULL);
    double t0 = now_s();

    ASSERT_EQ(tenant_cmd(&r->t, "anon 400", 90), 0);
    printf("  (b) burst of 400 MiB in %.2f s at limit %lld MiB\n",
           now_s() - t0, limit0 / MIB);
    *peak_swap = swap_bytes(r);
    for (int i = 0; i < 4 && !log_has(r, "\"event\":\"psi\""); i++) {
        sleep(1);
        long long s = swap_bytes(r);
        if (s > *peak_swap)
            *peak_swap = s;
    }
    printf("  (b) swap %lld MiB, limit now %lld MiB, oom_kill %lld -> %lld\n",
           *peak_swap / MIB, tmem__read_ll(r->cg, r->limit_file, NULL) / MIB,
           kills, oom_kills(r));
    ASSERT_GT(*peak_swap, 0);
    /* the stall was seen; the guard raised the allowance, or a tick had
     * already raised it (goal = committed + swap) so that the tenant had
     * room when the stall came and the guard let it be (psi.c) */
    ASSERT_TRUE(log_has(r, "\"event\":\"psi\""));
    ASSERT_GT(tmem__read_ll(r->cg, r->limit_file, NULL), limit0);
    ASSERT_EQ(oom_kills(r), kills);
    if (r->version == 1)
        ASSERT_EQ(tmem__read_ll(r->cg, "memory.oom_control", "under_oom"), 0);
    ASSERT_TRUE(tenant_alive(&r->t));
}

/* (c): self-shrink brings the swap back; then all data checked. */
static void phase_c(struct real *r, long long peak_swap)
{
    long long s = swap_bytes(r);
    double t0 = now_s(), t = 0;

    while ((t = now_s() - t0) < 45 && s > 2 * MIB + peak_swap / 50) {
        sleep(1);
        s = swap_bytes(r);
    }
    printf("  (c) %.1f s: swap %lld MiB (peak %lld MiB)\n", t, s / MIB,
           peak_swap / MIB);
    ASSERT_LE(s, 2 * MIB + peak_swap / 50);
    ASSERT_TRUE(log_has(r, "shrink"));
    ASSERT_TRUE(tenant_alive(&r->t));
    ASSERT_EQ(tenant_cmd(&r->t, "check", 90), 0);
}

static void stop_controller(struct real *r)
{
    int st = 0;

    ASSERT_EQ(kill(r->ctl, SIGTERM), 0);
    ASSERT_EQ(waitpid(r->ctl, &st, 0), r->ctl);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT_TRUE(access(r->sock, F_OK) != 0); /* socket removed */
    ASSERT_EQ(tmem__read_ll(r->cg, r->limit_file, NULL) >= (1ll << 40) ||
                  tmem__read_ll(r->cg, r->limit_file, NULL) == -1,
              1); /* restored: no limit */
}

static void real_run(int version)
{
    struct real r;
    long long start, peak_swap = 0;

    setup(&r, version);
    start = tmem__read_ll(r.cg, r.usage_file, NULL);
    start_controller(&r);
    phase_a(&r, start);
    phase_b(&r, &peak_swap);
    phase_c(&r, peak_swap);
    stop_controller(&r);
    tenant_stop(&r.t);
    unlink(r.log);
}

TEST(cgroup_real_v1_squeeze_burst_shrink)
{
    if (geteuid() != 0)
        TEST_SKIP("needs root");
    if (tmem__read_ll("/sys/fs/cgroup/memory", "memory.stat", "total_swap") < 0)
        TEST_SKIP("no cgroup v1 memory controller with swap accounting at "
                  "/sys/fs/cgroup/memory");
    real_run(1);
}

TEST(cgroup_real_v2_squeeze_burst_shrink)
{
    char root[256];

    if (geteuid() != 0)
        TEST_SKIP("needs root");
    if (!env_v2_memory(root, sizeof root))
        TEST_SKIP("no v2 memory controller: /sys/fs/cgroup/unified/"
                  "cgroup.controllers lacks memory (bound to v1 here)");
    real_run(2);
}
