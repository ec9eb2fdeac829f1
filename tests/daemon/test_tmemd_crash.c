/*
 * Persistent pages across a crash of tmemd (kill -9; --state-dir keeps
 * private arenas as files, src/tmemd/recover.c): rounds of kill -9 (and,
 * the same storm, of SIGTERM, and of an upgrade) at random moments of a
 * put storm from
 * several tenants lose no acknowledged put and return no half-written
 * page (seeds printed); a
 * tenant process that stays up through a crash reads every page back
 * through its same connection; a tenant that leaves takes its arena file
 * with it; a damaged arena file is set aside and the daemon starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#include <tmem/client.h>
#include <tmem/store.h>

#include "../lib/tmemd_harness.h"
#include "common/arena_fmt.h"
#include "../runner.h"
#include "test_daemon_util.h"
#include "test_keep_util.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define NT 4
#define BATCH 32

/* Page i of tenant k: every 5th repeats the one 4 before (the store keeps
 * one copy and an alias), every 7th is zero (same-filled). */
static void content(unsigned char *page, int k, uint32_t i)
{
    if (i % 7 == 3) {
        memset(page, 0, TMEM_PAGE_SIZE);
        return;
    }
    th_fill(page, 700 + (uint32_t)k, i % 5 == 4 ? i - 4 : i);
}

static bool content_ok(const unsigned char *page, int k, uint32_t i)
{
    unsigned char want[TMEM_PAGE_SIZE];
    content(want, k, i);
    return memcmp(page, want, TMEM_PAGE_SIZE) == 0;
}

struct storm {
    atomic_uint acked[NT]; /* pages 0..acked-1 of tenant k were put */
    atomic_int ready;
};

/* Tenant k (named: its process goes with the crash, a new one comes back
 * by name) puts page after page into two persistent pools, and an
 * ephemeral one (even k), or batches of 32 (odd k), until the daemon goes
 * away. */
static int stormer(const th_daemon *d, void *arg, int k)
{
    struct storm *b = arg;
    char name[16];
    snprintf(name, sizeof name, "crash%d", k);
    tmem__conn *c = NULL;
    if (tmem__conn_open_named(d->sock, name, &c) < 0)
        return 1;
    /* pool 0 ephemeral (lost in a crash, as it may be), 1 and 2
     * persistent */
    if (tmem__conn_pool_new(c, NULL, TMEM_POOL_FLAGS(0), NULL) != 0 ||
        tmem__conn_pool_new(c, NULL, PERS, NULL) != 1 ||
        tmem__conn_pool_new(c, NULL, PERS, NULL) != 2)
        return 2;
    static unsigned char pages[BATCH][TMEM_PAGE_SIZE];
    tmem_oid o = {{(uint64_t)k, 0, 0}};
    atomic_fetch_add(&b->ready, 1);
    for (uint32_t i = 0;; i++) {
        if (k & 1) { /* batches: a crash in the middle of one */
            tmem__op ops[BATCH];
            for (uint32_t j = 0; j < BATCH; j++) {
                content(pages[j], k, i + j);
                ops[j] = (tmem__op){.op = TMEM_OP_PUT,
                                    .pool = 1 + (int)((i + j) & 1),
                                    .oid = o, .index = i + j,
                                    .page = pages[j]};
            }
            if (tmem__conn_batch(c, ops, BATCH) < 0)
                return 0;
            for (uint32_t j = 0; j < BATCH; j++) {
                if (ops[j].result != 1)
                    return 0;
                atomic_store(&b->acked[k], i + j + 1);
            }
            i += BATCH - 1;
            continue;
        }
        content(pages[0], k, i);
        (void)tmem__conn_put(c, 0, &o, i, pages[0]);
        if (tmem__conn_put(c, 1 + (int)(i & 1), &o, i, pages[0]) != 1)
            return 0; /* gone: not acknowledged */
        atomic_store(&b->acked[k], i + 1);
    }
}

/* After the restart: every acknowledged page of tenant k is back, and
 * the first one not acknowledged is either absent or whole. */
static uint32_t check_tenant(const th_daemon *d, const struct storm *b, int k)
{
    char name[16];
    snprintf(name, sizeof name, "crash%d", k);
    tmem__conn *c = NULL;
    ASSERT_EQ(tmem__conn_open_named(d->sock, name, &c), 0);
    uint32_t n = atomic_load(&b->acked[k]);
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{(uint64_t)k, 0, 0}};
    for (uint32_t i = 0; i < n; i++) {
        ASSERT_EQ(tmem__conn_get(c, 1 + (int)(i & 1), &o, i, page), 1);
        ASSERT_TRUE(content_ok(page, k, i));
    }
    int r = tmem__conn_get(c, 1 + (int)(n & 1), &o, n, page);
    ASSERT_TRUE(r == 0 || (r == 1 && content_ok(page, k, n)));
    tmem__conn_close(c);
    return n;
}

/* Starts tmemd keeping pages in state, from the binary in dir bin (NULL:
 * $BUILD's, as always). */
static void start_from(th_daemon *d, const char *state, const char *bin)
{
    const char *b = getenv("BUILD");
    char *old = b ? strdup(b) : NULL;
    if (bin)
        setenv("BUILD", bin, 1);
    ku_start_kept(d, state);
    if (old)
        setenv("BUILD", old, 1);
    else
        unsetenv("BUILD");
    free(old);
}

/* Rounds of sig (SIGKILL: a crash; SIGTERM: a stop) at a random moment
 * of the put storm, the daemon started again (from the binary in dir bin:
 * an upgrade, when not NULL), every tenant back. */
static void storm_rounds(int sig, int rounds, const char *bin)
{
    char state[] = "/tmp/tmem-crash-XXXXXX", log[16384], cmd[300];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    struct storm *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(b != MAP_FAILED);
    uint32_t seed = (uint32_t)getpid();
    const char *env = getenv("TMEM_TEST_SEED");
    if (env)
        seed = (uint32_t)strtoul(env, NULL, 0);
    fprintf(stderr, "  seed %u (TMEM_TEST_SEED)\n", seed);
    char arenas[600];
    snprintf(arenas, sizeof arenas, "%s/arenas", state);
    for (int round = 0; round < rounds; round++) {
        memset(b, 0, sizeof *b);
        th_daemon d;
        ku_start_kept(&d, state);
        pid_t kid[NT];
        ASSERT_EQ(du_fork_tenants(&d, NT, stormer, b, kid, &b->ready, 1000),
                  NT);
        seed = seed * 1103515245u + 12345u;
        usleep(10000 + (seed >> 8) % 250000); /* 10-260 ms of puts */
        ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, sig),
                  sig == SIGKILL ? -1 : 0);
        for (int k = 0; k < NT; k++)
            ASSERT_EQ(th_wait(kid[k]), 0);
        /* a crash leaves the arena files; a stop, state files */
        ASSERT_EQ(ku_dir_has(arenas, "arena-", ".tma", NULL, 0),
                  sig == SIGKILL);
        ASSERT_EQ(ku_dir_has(state, "0-crash", ".tmem", NULL, 0),
                  sig != SIGKILL);
        start_from(&d, state, bin);
        uint64_t total = 0;
        for (int k = 0; k < NT; k++)
            total += check_tenant(&d, b, k);
        fprintf(stderr, "  round %d: %llu acknowledged puts, all back\n",
                round, (unsigned long long)total);
        ASSERT_GT(total, 0);
        ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
        ASSERT_TRUE(strstr(log, sig == SIGKILL ? "recovered after a crash"
                                               : "recovered ") != NULL);
        ASSERT_TRUE(strstr(log, "not taken in") == NULL);
        ASSERT_TRUE(strstr(log, "refused") == NULL);
        /* the clean stop kept them in state files, and its arena files
         * went with the store: the next round starts clean */
        ASSERT_TRUE(!ku_dir_has(arenas, "arena-", ".tma", NULL, 0));
        snprintf(cmd, sizeof cmd, "rm -f %s/*.tmem", state);
        ASSERT_EQ(system(cmd), 0);
    }
    munmap(b, sizeof *b);
    ku_rm_rf(state);
}

TEST(tmemd_crash_kill9_during_put_storm)
{
    storm_rounds(SIGKILL, 5, NULL);
}

TEST(tmemd_keep_sigterm_during_put_storm)
{
    storm_rounds(SIGTERM, 4, NULL);
}

/* A binary upgrade: stopped in the storm, started again from another
 * binary (a copy here, as a package upgrade puts one in place). */
TEST(tmemd_keep_binary_upgrade_during_put_storm)
{
    char bin[] = "/tmp/tmem-up-XXXXXX", cmd[600];
    ASSERT_TRUE(mkdtemp(bin) != NULL);
    const char *b = getenv("BUILD");
    snprintf(cmd, sizeof cmd, "cp %s/tmemd %s/tmemd", b && *b ? b : "build",
             bin);
    ASSERT_EQ(system(cmd), 0);
    storm_rounds(SIGTERM, 2, bin);
    snprintf(cmd, sizeof cmd, "rm -rf %s", bin);
    ASSERT_EQ(system(cmd), 0);
}

/* A tenant process without a name that stays up, using only the public
 * API, through a crash: its gets wait for the daemon to come back, its
 * connection finds its pages by its resume token, in the same pool. */
TEST(tmemd_crash_tenant_carries_on)
{
    char state[] = "/tmp/tmem-crash-XXXXXX", log[16384];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    th_daemon d;
    ku_start_kept(&d, state);
    tmem_conn *c = NULL;
    ASSERT_EQ(tmem_connect(d.sock, &c), 0);
    ASSERT_TRUE(!tmem_conn_is_embedded(c));
    int pool = tmem_conn_pool_new(c, NULL, PERS, NULL);
    ASSERT_GE(pool, 0);
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{81, 0, 0}};
    for (uint32_t i = 0; i < 500; i++) {
        th_fill(page, 81, i);
        ASSERT_EQ(tmem_conn_put(c, pool, &o, i, page), 1);
    }
    ASSERT_EQ(tmem_conn_flush_page(c, pool, &o, 7), 1);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGKILL), -1);
    pthread_t t = ku_restart_later(&d, state, 200);
    int good = 0;
    for (uint32_t i = 0; i < 500; i++) {
        int r = tmem_conn_get(c, pool, &o, i, page);
        if (i == 7)
            ASSERT_EQ(r, 0); /* flushed before the crash: stays gone */
        else
            good += r == 1 && th_check(page, 81, i);
    }
    pthread_join(t, NULL);
    ASSERT_EQ(good, 499);
    /* and it goes on */
    th_fill(page, 81, 500);
    ASSERT_EQ(tmem_conn_put(c, pool, &o, 500, page), 1);
    tmem_disconnect(c);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ASSERT_TRUE(strstr(log, "recovered after a crash: 499 persistent pages "
                            "of 1 tenants") != NULL);
    ku_rm_rf(state);
}

/* A tenant named name with n pages (seed) in its persistent pool 0. */
static tmem__conn *named_with_pages(const th_daemon *d, const char *name,
                                    uint32_t seed, uint32_t n)
{
    tmem__conn *t = NULL;
    ASSERT_EQ(tmem__conn_open_named(d->sock, name, &t), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, PERS, NULL), 0);
    ASSERT_EQ(th_put_range(t, 0, seed, n), n);
    return t;
}

/* A tmemd keeping pages in state, tenant name with n pages (seed), and
 * a crash (kill -9) under it: what the next start must recover. */
static void crashed_with(th_daemon *d, const char *state, const char *name,
                         uint32_t seed, uint32_t n)
{
    char log[16384];
    ku_start_kept(d, state);
    tmem__conn *t = named_with_pages(d, name, seed, n);
    ASSERT_EQ(ku_stop_with_log(d, log, sizeof log, SIGKILL), -1);
    tmem__conn_close(t);
}

/* A tenant that leaves takes its arena file with it; one whose arena
 * file is damaged has it set aside at the next start, which goes on. */
TEST(tmemd_crash_files_of_leaving_and_damaged_tenants)
{
    char state[] = "/tmp/tmem-crash-XXXXXX", log[16384];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    char arenas[600], path[700];
    snprintf(arenas, sizeof arenas, "%s/arenas", state);
    th_daemon d;
    ku_start_kept(&d, state);
    tmem__conn *t = named_with_pages(&d, "leaver", 91, 50);
    ASSERT_TRUE(ku_dir_has(arenas, "arena-", ".tma", NULL, 0));
    tmem__conn_close(t);
    for (int i = 0; i < 200 && ku_dir_has(arenas, "arena-", ".tma", NULL, 0);
         i++)
        usleep(10000);
    ASSERT_TRUE(!ku_dir_has(arenas, "arena-", ".tma", NULL, 0));
    /* a tenant whose file will be damaged */
    t = named_with_pages(&d, "dmg", 92, 50);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGKILL), -1);
    tmem__conn_close(t);
    ASSERT_TRUE(ku_dir_has(arenas, "arena-", ".tma", path, sizeof path));
    int fd = open(path, O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "XXXX", 4, 0), 4); /* its magic */
    close(fd);
    ku_start_kept(&d, state);
    ASSERT_EQ(tmem__conn_open_named(d.sock, "dmg", &t), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, PERS, NULL), 0);
    ASSERT_EQ(th_count_intact(t, 0, 92, 50), 0);
    tmem__conn_close(t);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ASSERT_TRUE(strstr(log, "not a file of this tmemd") != NULL);
    ASSERT_TRUE(ku_dir_has(arenas, "arena-", ".tma.refused", NULL, 0));
    ku_rm_rf(state);
}

/* A tenant that puts 200 pages and waits to be killed with the daemon. */
static int putter(const th_daemon *d, void *arg, int k)
{
    (void)k;
    tmem__conn *c = NULL;
    if (tmem__conn_open_named(d->sock, "twice", &c) < 0 ||
        tmem__conn_pool_new(c, NULL, PERS, NULL) != 0 ||
        th_put_range(c, 0, 93, 200) != 200)
        return 1;
    atomic_fetch_add((_Atomic int *)arg, 1);
    pause();
    return 0;
}

/* Two crashes before the tenant comes back (the second one hits the
 * client the first recovery made), and a crash between a recovery and
 * the removal of the file it read (two files of one tenant): its pages
 * once, whole; no file refused. */
TEST(tmemd_crash_twice_and_duplicate_files)
{
    char state[] = "/tmp/tmem-crash-XXXXXX", log[16384], cmd[1400];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    char arenas[600], path[700];
    snprintf(arenas, sizeof arenas, "%s/arenas", state);
    _Atomic int *ready = mmap(NULL, sizeof *ready, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(ready != MAP_FAILED);
    th_daemon d;
    ku_start_kept(&d, state);
    pid_t kid;
    ASSERT_EQ(du_fork_tenants(&d, 1, putter, (void *)ready, &kid, ready,
                              3000),
              1);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGKILL), -1);
    kill(kid, SIGKILL);
    th_wait(kid);
    ku_start_kept(&d, state);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGKILL), -1);
    ASSERT_TRUE(strstr(log, "recovered after a crash: 200 persistent pages") !=
                NULL);
    /* the file the second crash left, twice */
    ASSERT_TRUE(ku_dir_has(arenas, "arena-", ".tma", path, sizeof path));
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/arena-0000000000000000.tma'", path,
             arenas);
    ASSERT_EQ(system(cmd), 0);
    ku_start_kept(&d, state);
    tmem__conn *t = NULL;
    ASSERT_EQ(tmem__conn_open_named(d.sock, "twice", &t), 0);
    ASSERT_EQ(th_count_intact(t, 0, 93, 200), 200);
    tmem__conn_close(t);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ASSERT_TRUE(strstr(log, "recovered after a crash: 200 persistent pages "
                            "of 1 tenants") != NULL);
    ASSERT_TRUE(!ku_dir_has(arenas, "arena-", ".refused", NULL, 0));
    munmap((void *)ready, sizeof *ready);
    ku_rm_rf(state);
}

/* A datagram socket at path for systemd's messages ($NOTIFY_SOCKET). */
static int notify_socket(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    ASSERT_LT(strlen(path), sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {10, 0};
    ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    return fd;
}

/* Under systemd (Type=notify): READY=1 once tmemd serves, which after a
 * crash is once the pages are recovered; STOPPING=1 at a stop. */
TEST(tmemd_crash_ready_to_systemd_after_recovery)
{
    char state[] = "/tmp/tmem-crash-XXXXXX", log[16384], msg[256];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    char npath[400];
    snprintf(npath, sizeof npath, "%s/notify", state);
    th_daemon d;
    crashed_with(&d, state, "ready", 94, 100);
    int nfd = notify_socket(npath);
    setenv("NOTIFY_SOCKET", npath, 1);
    th_start(&d, (const char *const[]){"--state-dir", state, NULL});
    unsetenv("NOTIFY_SOCKET");
    ssize_t n = recv(nfd, msg, sizeof msg - 1, 0);
    ASSERT_GT(n, 0);
    msg[n] = 0;
    ASSERT_EQ(strncmp(msg, "READY=1", 7), 0);
    /* by then the crash's pages were taken in */
    ASSERT_GT(th_log(&d, log, sizeof log), 0);
    ASSERT_TRUE(strstr(log, "recovered after a crash: 100 persistent pages") !=
                NULL);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    n = recv(nfd, msg, sizeof msg - 1, 0);
    ASSERT_GT(n, 0);
    msg[n] = 0;
    ASSERT_STR_EQ(msg, "STOPPING=1");
    close(nfd);
    ku_rm_rf(state);
}

/* A start that fails (its metrics server cannot start) after a crash
 * takes nothing of the state directory: the next start recovers all. */
TEST(tmemd_crash_failed_start_keeps_the_files)
{
    char state[] = "/tmp/tmem-crash-XXXXXX", log[16384], cmd[900];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    th_daemon d;
    crashed_with(&d, state, "kept", 95, 60);
    tmem__conn *t = NULL;
    const char *b = getenv("BUILD");
    snprintf(cmd, sizeof cmd,
             "%s/tmemd --socket %s/s --foreground --state-dir %s "
             "--metrics nope 2>/dev/null",
             b && *b ? b : "build", state, state);
    ASSERT_EQ(WEXITSTATUS(system(cmd)), 1);
    char arenas[600];
    snprintf(arenas, sizeof arenas, "%s/arenas", state);
    ASSERT_TRUE(ku_dir_has(arenas, "arena-", ".tma", NULL, 0));
    ku_start_kept(&d, state);
    ASSERT_EQ(tmem__conn_open_named(d.sock, "kept", &t), 0);
    ASSERT_EQ(th_count_intact(t, 0, 95, 60), 60);
    tmem__conn_close(t);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ku_rm_rf(state);
}

/* An arena file whose tag was never written (a crash in the middle of a
 * recovery, before the new client was handed its tenant's name) names no
 * tenant: removed at the next start, not refused, nothing kept from it;
 * and a $NOTIFY_SOCKET tmemd cannot address is ignored. */
TEST(tmemd_crash_untagged_file_and_odd_notify_socket)
{
    char state[] = "/tmp/tmem-crash-XXXXXX", log[16384], path[700];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    char arenas[600];
    snprintf(arenas, sizeof arenas, "%s/arenas", state);
    th_daemon d;
    crashed_with(&d, state, "untagged", 96, 40);
    tmem__conn *t = NULL;
    ASSERT_TRUE(ku_dir_has(arenas, "arena-", ".tma", path, sizeof path));
    int fd = open(path, O_WRONLY);
    ASSERT_GE(fd, 0);
    uint32_t zero = 0;
    ASSERT_EQ(pwrite(fd, &zero, sizeof zero, offsetof(tmem_arena_hdr, tag_len)),
              (ssize_t)sizeof zero);
    close(fd);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    ku_start_kept(&d, state);
    unsetenv("NOTIFY_SOCKET");
    ASSERT_TRUE(access(path, F_OK) != 0); /* removed */
    ASSERT_EQ(tmem__conn_open_named(d.sock, "untagged", &t), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, PERS, NULL), 0);
    ASSERT_EQ(th_count_intact(t, 0, 96, 40), 0);
    tmem__conn_close(t);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ASSERT_TRUE(strstr(log, "recovered after a crash") == NULL);
    ASSERT_TRUE(strstr(log, "cannot tell systemd") == NULL);
    ASSERT_TRUE(!ku_dir_has(arenas, "arena-", ".refused", NULL, 0));
    ku_rm_rf(state);
}
