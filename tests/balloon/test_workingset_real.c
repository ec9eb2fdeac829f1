/*
 * Refault-aware targets on a real machine (root, ~35 s): two v1 memory
 * cgroups side by side, our own zram swap, `tmem balloon run` at 1 s with
 * default tunables on each.
 *   re-reader: 32 MiB of anon and a 200 MiB file set it reads again and
 *     again.  Without the refault estimate the target falls to the floor
 *     (~66 MiB) and every pass reads the set from disk; with it, the
 *     allowance stays above committed + 80% of the set and the set stays
 *     in the page cache.  Its controller runs with the PSI guard off: the
 *     guard also lifts a re-reader, but only after it stalled (the
 *     thrash-then-raise of issue 14), and here the estimate alone must
 *     hold the set.
 *   streamer: 32 MiB of anon and a 400 MiB file read once: squeezed as
 *     before (its page cache <= 120 MiB within 25 s) and nothing is added
 *     to its committed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "test_cgroup_env.h"

#define MIB (1ll << 20)
#define SET_FILES 4
#define SET_MB 50 /* each: 200 MiB in all */
#define STREAM_MB 400

struct side {
    char cg[256], log[128], sock[128];
    pid_t ctl;
};

static long long committed_bytes(const char *cg)
{
    long long k = tmem__read_ll(cg, "memory.kmem.usage_in_bytes", NULL);

    return tmem__read_ll(cg, "memory.stat", "total_rss") + (k > 0 ? k : 0);
}

static long long cache_bytes(const char *cg)
{
    return tmem__read_ll(cg, "memory.stat", "total_cache");
}

/* Pages refaulted (file + anon) so far. */
static long long refaulted(const char *cg)
{
    return tmem__read_ll(cg, "memory.stat", "total_workingset_refault_file") +
           tmem__read_ll(cg, "memory.stat", "total_workingset_refault_anon");
}

/* The re-reader: joins cg, holds 32 MiB of anon, reads the set forever. */
static void reread_main(const char *cg, char files[][128])
{
    static char buf[1 << 20];
    char self[32];
    size_t n = 32 * MIB;
    char *anon;

    snprintf(self, sizeof self, "%d", (int)getpid());
    if (tmem__write_text(cg, "cgroup.procs", self) < 0)
        _exit(3);
    alarm(0);
    anon = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                -1, 0);
    if (anon == MAP_FAILED)
        _exit(4);
    memset(anon, 7, n);
    for (;;) {
        for (int i = 0; i < SET_FILES; i++) {
            int fd = open(files[i], O_RDONLY | O_CLOEXEC);
            while (fd >= 0 && read(fd, buf, sizeof buf) > 0)
                ;
            if (fd >= 0)
                close(fd);
        }
        usleep(100000);
    }
}

static void side_init(struct side *s, const char *name)
{
    snprintf(s->log, sizeof s->log, "/tmp/tmemws-%s-%d.log", name,
             (int)getpid());
    snprintf(s->sock, sizeof s->sock, "/tmp/tmemws-%s-%d.sock", name,
             (int)getpid());
    ASSERT_EQ(env_cgroup(1, name, s->cg, sizeof s->cg), 0);
}

/* committed (pages) of the controller's last tick, or -1. */
static long long last_committed(const struct side *s)
{
    char line[1024];
    long long v = -1;
    FILE *f = fopen(s->log, "r");

    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"committed\":");
        if (strstr(line, "\"event\":\"tick\"") && p)
            v = atoll(p + 12);
    }
    if (f)
        fclose(f);
    return v;
}

static void stop(struct side *s)
{
    int st = 0;

    ASSERT_EQ(kill(s->ctl, SIGTERM), 0);
    ASSERT_EQ(waitpid(s->ctl, &st, 0), s->ctl);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (getenv("TMEMWS_KEEP") == NULL) unlink(s->log);
}

TEST(workingset_real_v1_reread_kept_stream_squeezed)
{
    static char files[SET_FILES + 1][128];
    static const char *const no_psi[] = {"--no-psi", NULL};
    struct side rr, sm;
    struct tenant t;
    char cmd[160];
    pid_t reader;
    int kept = 0;

    if (geteuid() != 0)
        TEST_SKIP("needs root");
    if (tmem__read_ll("/sys/fs/cgroup/memory", "memory.stat",
                      "total_workingset_refault_file") < 0)
        TEST_SKIP("no cgroup v1 memory controller with refault counters at "
                  "/sys/fs/cgroup/memory");
    ASSERT_GE(env_zram_swap(1024), 0);
    for (int i = 0; i <= SET_FILES; i++) {
        snprintf(files[i], sizeof files[i], "/var/tmp/tmemws-set-%d-%d",
                 (int)getpid(), i);
        ASSERT_EQ(env_cold_file(files[i], i < SET_FILES ? SET_MB : STREAM_MB),
                  0);
    }
    side_init(&rr, "tmemws-reread");
    side_init(&sm, "tmemws-stream");
    reader = fork();
    ASSERT_GE(reader, 0);
    if (reader == 0)
        reread_main(rr.cg, files);
    ASSERT_EQ(tenant_start(&t, sm.cg), 0);
    ASSERT_EQ(tenant_cmd(&t, "anon 32", 60), 0);
    snprintf(cmd, sizeof cmd, "cache %s", files[SET_FILES]);
    ASSERT_EQ(tenant_cmd(&t, cmd, 60), STREAM_MB);
    for (int i = 0; i < 100 && cache_bytes(rr.cg) < 195 * MIB; i++)
        usleep(100000);
    printf("  start: re-reader cache %lld MiB, streamer cache %lld MiB\n",
           cache_bytes(rr.cg) / MIB, cache_bytes(sm.cg) / MIB);
    ASSERT_GE(cache_bytes(rr.cg), 195 * MIB);
    rr.ctl = env_balloon_run(rr.cg, rr.log, rr.sock, no_psi);
    sm.ctl = env_balloon_run(sm.cg, sm.log, sm.sock, NULL);

    long long rf0 = 0;
    for (int s = 1; s <= 25; s++) {
        if (s == 20)
            rf0 = refaulted(rr.cg);
        sleep(1);
        long long lim = tmem__read_ll(rr.cg, "memory.limit_in_bytes", NULL);
        long long need = committed_bytes(rr.cg) + SET_FILES * SET_MB * MIB * 8 / 10;
        if (s > 20) {
            printf("  %d s: re-reader limit %lld MiB (committed + 80%% of "
                   "the set: %lld MiB), cache %lld MiB; streamer limit %lld "
                   "MiB, cache %lld MiB\n", s, lim / MIB, need / MIB,
                   cache_bytes(rr.cg) / MIB,
                   tmem__read_ll(sm.cg, "memory.limit_in_bytes", NULL) / MIB,
                   cache_bytes(sm.cg) / MIB);
            kept += lim >= need && cache_bytes(rr.cg) >= 160 * MIB;
        }
    }
    printf("  re-reader: %lld MiB refaulted in the last 5 s\n",
           (refaulted(rr.cg) - rf0) * 4096 / MIB);
    /* the re-read set kept in every one of the last 5 seconds */
    ASSERT_EQ(kept, 5);
    /* the streamer squeezed as before, nothing added for it */
    ASSERT_LE(cache_bytes(sm.cg), 120 * MIB);
    ASSERT_GE(last_committed(&sm), 0);
    ASSERT_LE(last_committed(&sm) * 4096, committed_bytes(sm.cg) + 16 * MIB);
    ASSERT_TRUE(tenant_alive(&t));
    ASSERT_EQ(kill(reader, 0), 0); /* alive */
    stop(&rr);
    stop(&sm);
    kill(reader, SIGKILL);
    waitpid(reader, NULL, 0);
    tenant_stop(&t);
}
