/*
 * Persistent pages across a graceful restart of tmemd (--state-dir,
 * src/tmemd/keep.c): a named tenant's pages are back, byte for byte and
 * under the same pool ids, when it connects again to the restarted
 * daemon; a tenant without a name is told about in the log; a damaged
 * kept file is set aside, not loaded, and the daemon starts; and rounds of
 * SIGTERM at random moments of a put storm from several tenants lose no
 * acknowledged put (seeds printed).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tmem/store.h>

#include "../lib/tmemd_harness.h"
#include "../runner.h"
#include "test_daemon_util.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)

/* SIGTERM, wait, and the daemon's log (its stop lines) into log. */
static int stop_with_log(th_daemon *d, char *log, size_t n)
{
    kill(d->pid, SIGTERM);
    int st;
    ASSERT_EQ(waitpid(d->pid, &st, 0), d->pid);
    FILE *f = fopen(d->log, "r");
    size_t k = f ? fread(log, 1, n - 1, f) : 0;
    log[k] = 0;
    if (f)
        fclose(f);
    unlink(d->log);
    unlink(d->sock);
    rmdir(d->dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void start_kept(th_daemon *d, const char *state)
{
    const char *extra[] = {"--state-dir", state, NULL};
    th_start(d, extra);
}

TEST(tmemd_keep_named_tenant_across_restart)
{
    char state[] = "/tmp/tmem-keep-XXXXXX", log[16384], path[256];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    th_daemon d;
    start_kept(&d, state);
    tmem__conn *t = NULL, *anon = th_conn(&d);
    ASSERT_EQ(tmem__conn_open_named(d.sock, "keepme", &t), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, TMEM_POOL_FLAGS(0), NULL), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, PERS, NULL), 1);
    ASSERT_EQ(th_put_range(t, 1, 51, 400), 400);
    int ap = tmem__conn_pool_new(anon, NULL, PERS, NULL);
    ASSERT_EQ(th_put_range(anon, ap, 52, 10), 10);
    /* stopped with both tenants connected */
    ASSERT_EQ(stop_with_log(&d, log, sizeof log), 0);
    ASSERT_TRUE(strstr(log, "kept 400 persistent pages of 1 tenants") != NULL);
    ASSERT_TRUE(strstr(log, "not kept: 10 pages of tenants without a name") !=
                NULL);
    snprintf(path, sizeof path, "%s/0-keepme.tmem", state);
    struct stat sb;
    ASSERT_EQ(stat(path, &sb), 0);
    tmem__conn_close(t);
    tmem__conn_close(anon);
    /* started again: the file is taken in, the tenant finds its pages */
    start_kept(&d, state);
    ASSERT_EQ(tmem__conn_open_named(d.sock, "keepme", &t), 0);
    ASSERT_NE(stat(path, &sb), 0); /* served only once it was taken in */
    ASSERT_EQ(th_count_intact(t, 1, 51, 400), 400);
    /* taken over, and kept again by the next stop */
    ASSERT_EQ(stop_with_log(&d, log, sizeof log), 0);
    ASSERT_TRUE(strstr(log, "recovered 400 persistent pages of 1 tenants") !=
                NULL);
    ASSERT_TRUE(strstr(log, "kept 400 persistent pages of 1 tenants") != NULL);
    ASSERT_EQ(stat(path, &sb), 0);
    tmem__conn_close(t);
    snprintf(path, sizeof path, "rm -rf %s", state);
    ASSERT_EQ(system(path), 0);
}

TEST(tmemd_keep_damaged_file_set_aside)
{
    char state[] = "/tmp/tmem-keep-XXXXXX", log[16384], path[256],
        cmd[600];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    th_daemon d;
    start_kept(&d, state);
    tmem__conn *t = NULL;
    ASSERT_EQ(tmem__conn_open_named(d.sock, "dmg", &t), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, PERS, NULL), 0);
    ASSERT_EQ(th_put_range(t, 0, 53, 100), 100);
    ASSERT_EQ(stop_with_log(&d, log, sizeof log), 0);
    tmem__conn_close(t);
    snprintf(path, sizeof path, "%s/0-dmg.tmem", state);
    snprintf(cmd, sizeof cmd,
             "printf 'X' | dd of=%s bs=1 seek=300 conv=notrunc status=none",
             path);
    ASSERT_EQ(system(cmd), 0);
    start_kept(&d, state);
    ASSERT_EQ(tmem__conn_open_named(d.sock, "dmg", &t), 0);
    snprintf(cmd, sizeof cmd, "%s.refused", path);
    struct stat sb;
    ASSERT_EQ(stat(cmd, &sb), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, PERS, NULL), 0); /* a new one */
    ASSERT_EQ(th_count_intact(t, 0, 53, 100), 0);
    tmem__conn_close(t);
    ASSERT_EQ(stop_with_log(&d, log, sizeof log), 0);
    ASSERT_TRUE(strstr(log, "the file is damaged") != NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", state);
    ASSERT_EQ(system(cmd), 0);
}

#define NT 3

struct storm {
    atomic_uint acked[NT]; /* pages 0..acked-1 of tenant k were put */
    atomic_int ready;
};

/* Tenant k puts page after page until the daemon goes away. */
static int stormer(const th_daemon *d, void *arg, int k)
{
    struct storm *b = arg;
    char name[16];
    snprintf(name, sizeof name, "storm%d", k);
    tmem__conn *c = NULL;
    if (tmem__conn_open_named(d->sock, name, &c) < 0)
        return 1;
    if (tmem__conn_pool_new(c, NULL, PERS, NULL) != 0)
        return 2;
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{(uint64_t)k, 0, 0}};
    atomic_fetch_add(&b->ready, 1);
    for (uint32_t i = 0;; i++) {
        th_fill(page, 600 + (uint32_t)k, i);
        if (tmem__conn_put(c, 0, &o, i, page) != 1)
            return 0; /* frozen or gone: not acknowledged */
        atomic_store(&b->acked[k], i + 1);
    }
}

TEST(tmemd_keep_sigterm_during_put_storm)
{
    char state[] = "/tmp/tmem-keep-XXXXXX", log[16384], cmd[300];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    struct storm *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(b != MAP_FAILED);
    uint32_t seed = (uint32_t)getpid();
    const char *env = getenv("TMEM_TEST_SEED");
    if (env)
        seed = (uint32_t)strtoul(env, NULL, 0);
    fprintf(stderr, "  seed %u (TMEM_TEST_SEED)\n", seed);
    for (int round = 0; round < 4; round++) {
        memset(b, 0, sizeof *b);
        th_daemon d;
        start_kept(&d, state);
        pid_t kid[NT];
        ASSERT_EQ(du_fork_tenants(&d, NT, stormer, b, kid, &b->ready, 1000),
                  NT);
        seed = seed * 1103515245u + 12345u;
        usleep(20000 + (seed >> 8) % 200000); /* 20-220 ms of puts */
        ASSERT_EQ(stop_with_log(&d, log, sizeof log), 0);
        for (int k = 0; k < NT; k++)
            ASSERT_EQ(th_wait(kid[k]), 0);
        start_kept(&d, state);
        uint64_t total = 0;
        for (int k = 0; k < NT; k++) {
            char name[16];
            snprintf(name, sizeof name, "storm%d", k);
            tmem__conn *c = NULL;
            ASSERT_EQ(tmem__conn_open_named(d.sock, name, &c), 0);
            uint32_t n = atomic_load(&b->acked[k]);
            unsigned char page[TMEM_PAGE_SIZE];
            tmem_oid o = {{(uint64_t)k, 0, 0}};
            for (uint32_t i = 0; i < n; i++) {
                ASSERT_EQ(tmem__conn_get(c, 0, &o, i, page), 1);
                ASSERT_TRUE(th_check(page, 600 + (uint32_t)k, i));
            }
            total += n;
            tmem__conn_close(c);
        }
        fprintf(stderr, "  round %d: %llu acknowledged puts, all back\n",
                round, (unsigned long long)total);
        ASSERT_GT(total, 0);
        /* the next round starts from a clean directory */
        ASSERT_EQ(stop_with_log(&d, log, sizeof log), 0);
        snprintf(cmd, sizeof cmd, "rm -f %s/*.tmem", state);
        ASSERT_EQ(system(cmd), 0);
    }
    munmap(b, sizeof *b);
    snprintf(cmd, sizeof cmd, "rm -rf %s", state);
    ASSERT_EQ(system(cmd), 0);
}
