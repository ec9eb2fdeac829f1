/*
 * fork(): the child sees the memory as it was at the fork, stored pages
 * included, while the parent keeps changing and evicting; slots the child
 * may read are kept (a page stored again gets a new slot) and freed once
 * the child exits; a grandchild (a fork of the child) sees the same.
 * Through the embedded store and through tmemd (with a zstd client there,
 * whose pages the child cannot read directly: the parent serves them).
 */
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "tswap_testutil.h"

enum { N = 256 };

static bool sparse; /* pages that compress: a zstd client stores zstd */

static void fill(char *p, size_t n, uint32_t seed)
{
    ts_fill_n(p, n, seed);
    for (size_t i = 0; sparse && i < n; i++)
        memset(p + i * PG + 512, 0, PG - 512);
}

static long check(const char *p, size_t n, uint32_t seed)
{
    char want[PG];
    for (size_t i = 0; i < n; i++) {
        ts_fill(want, seed, i);
        if (sparse)
            memset(want + 512, 0, PG - 512);
        if (memcmp(p + i * PG, want, PG) != 0)
            return (long)i;
    }
    return -1;
}

/* The child's (and grandchild's) side: every page as at the fork. */
static int child_checks(tmem_tswap *t, char *p, int go, bool grandchild,
                        bool proxied)
{
    char b;
    if (read(go, &b, 1) != 1)
        return 10;
    if (grandchild) {
        pid_t g = tmem_tswap_fork(t);
        if (g < 0)
            return 11;
        if (g == 0)
            _exit(check(p, N, 1) == -1 ? 0 : 12);
        int st;
        if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 13;
    }
    if (check(p, N, 1) != -1)
        return 14;
    /* Read through the parent, or directly: never both ways by chance. */
    if (proxied != (ts_stats(t).proxy_loads > 0))
        return 16;
    fill(p, 8, 3); /* the child's own writes stay its own */
    return check(p, 8, 3) == -1 ? 0 : 15;
}

static void wait_until_no_kids(tmem_tswap *t)
{
    for (int i = 0; i < 500 && ts_stats(t).fork_live; i++)
        poll(NULL, 0, 10);
    ASSERT_EQ(ts_stats(t).fork_live, 0);
}

static void fork_snapshot(tmem_conn *c, bool grandchild, bool proxied)
{
    tmem_tswap_config cfg = ts_config(0, true);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    int go[2];
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    sparse = proxied;
    fill(p, N, 1);
    ts_evict_to(t, 16);
    ASSERT_EQ(pipe(go), 0);
    fflush(stdout);
    pid_t kid = tmem_tswap_fork(t);
    ASSERT_GE(kid, 0);
    if (kid == 0)
        _exit(child_checks(t, p, go[0], grandchild, proxied));
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.fork_children, 1);
    ASSERT_EQ(s.fork_live, 1);
    /* The parent moves on: every page rewritten and put out again. */
    fill(p, N, 2);
    ts_evict_to(t, 16);
    s = ts_stats(t);
    ASSERT_GT(s.deferred_slots, N / 2); /* the child may read the old */
    ASSERT_EQ(write(go[1], "g", 1), 1);
    int st;
    ASSERT_EQ(waitpid(kid, &st, 0), kid);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    wait_until_no_kids(t);
    s = ts_stats(t);
    ASSERT_EQ(s.deferred_slots, 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(tmem_tswap_frontswap(t)),
                  s.stored + s.copies);
    ASSERT_EQ(check(p, N, 2), -1);
    close(go[0]), close(go[1]);
    tmem_tswap_destroy(t);
}

TEST(tswap_fork_child_sees_the_fork_time_memory_embedded)
{
    tmem_conn *c = ts_embedded();
    fork_snapshot(c, true, false);
    tmem_disconnect(c);
}

static void fork_snapshot_daemon(tmem_conn *c)
{
    fork_snapshot(c, false, false);
}

TEST(tswap_fork_child_sees_the_fork_time_memory_daemon)
{
    ts_on_daemon("256M", fork_snapshot_daemon);
}

TEST(tswap_fork_child_served_by_parent_when_direct_load_cannot)
{
    ts_daemon d;
    char args[64];
    ts_daemon_start(&d, "256M");
    tmem_conn *c = ts_daemon_conn(&d);
    /* A zstd client: its pages come back through the daemon only. */
    snprintf(args, sizeof args, "set %d compress zstd", tmem_conn_client_id(c));
    ASSERT_EQ(ts_cli(&d, args), 0);
    fork_snapshot(c, true, true);
    tmem_disconnect(c);
    ts_daemon_stop(&d);
}

TEST(tswap_fork_after_exit_frees_deferred_slots_exec)
{
    /* A child that execs drops its socket: its slots are freed at once,
     * without waiting for it to exit. */
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, true);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, 64 * PG, (void **)&p), 0);
    ts_fill_n(p, 64, 5);
    ts_evict_to(t, 1);
    int hold[2];
    ASSERT_EQ(pipe(hold), 0);
    fflush(stdout);
    pid_t kid = tmem_tswap_fork(t);
    ASSERT_GE(kid, 0);
    if (kid == 0) { /* exec a program that waits for the pipe to close */
        dup2(hold[0], 0);
        close(hold[1]);
        execl("/bin/sh", "sh", "-c", "read x", (char *)NULL);
        _exit(127);
    }
    close(hold[0]);
    ts_fill_n(p, 64, 6);
    ts_evict_to(t, 1);
    wait_until_no_kids(t); /* exec'd: gone as far as slots go */
    ASSERT_EQ(ts_stats(t).deferred_slots, 0);
    close(hold[1]);
    int st;
    ASSERT_EQ(waitpid(kid, &st, 0), kid);
    ASSERT_EQ(ts_check_n(p, 64, 6), -1);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_fork_thread_mode_materializes)
{
    /* THREAD mode takes no fork events: a fork brings every page in
     * first, and the child has plain memory with all of it. */
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, true);
    cfg.fault_mode = TMEM_TSWAP_THREAD;
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, 64 * PG, (void **)&p), 0);
    ts_fill_n(p, 64, 8);
    ts_evict_to(t, 1);
    tmem_tswap_set_target(t, 0);
    fflush(stdout);
    pid_t kid = tmem_tswap_fork(t);
    ASSERT_GE(kid, 0);
    if (kid == 0)
        _exit(ts_check_n(p, 64, 8) == -1 ? 0 : 1);
    int st;
    ASSERT_EQ(waitpid(kid, &st, 0), kid);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.fork_materialized, 1);
    ASSERT_EQ(s.fork_children, 0);
    ASSERT_EQ(s.stored, 0);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}
