/*
 * Persistent pages across a graceful restart of tmemd (--state-dir,
 * src/tmemd/keep.c): a named tenant's pages are back, byte for byte and
 * under the same pool ids, when it connects again to the restarted
 * daemon; an unnamed tenant's only to its own connection coming back (its
 * resume token), not to a new one; a damaged
 * kept file is set aside, not loaded, and the daemon starts (rounds of
 * SIGTERM at random moments of a put storm: test_tmemd_crash.c).
 */
#include <dirent.h>
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

#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <tmem/client.h>
#include <tmem/store.h>

#include "../lib/tmemd_harness.h"
#include "../runner.h"
#include "test_daemon_util.h"
#include "test_keep_util.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)

TEST(tmemd_keep_named_tenant_across_restart)
{
    char state[] = "/tmp/tmem-keep-XXXXXX", log[16384];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    th_daemon d;
    ku_start_kept(&d, state);
    tmem__conn *t = NULL, *anon = th_conn(&d);
    ASSERT_EQ(tmem__conn_open_named(d.sock, "keepme", &t), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, TMEM_POOL_FLAGS(0), NULL), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, PERS, NULL), 1);
    ASSERT_EQ(th_put_range(t, 1, 51, 400), 400);
    int ap = tmem__conn_pool_new(anon, NULL, PERS, NULL);
    ASSERT_EQ(th_put_range(anon, ap, 52, 10), 10);
    /* stopped with both tenants connected: both kept, the unnamed one
     * for its connection (its resume token) */
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ASSERT_TRUE(strstr(log, "kept 410 persistent pages of 2 tenants") != NULL);
    ASSERT_TRUE(strstr(log, "10 of them of tenants without a name") != NULL);
    ASSERT_TRUE(ku_dir_has(state, "0-keepme@", "", NULL, 0));
    ASSERT_TRUE(ku_dir_has(state, "0-@", "", NULL, 0));
    tmem__conn_close(t);
    /* started again on the same socket: the files are taken in */
    ku_restart_same(&d, state);
    /* the named tenant, as a new process: by its name */
    ASSERT_EQ(tmem__conn_open_named(d.sock, "keepme", &t), 0);
    ASSERT_TRUE(!ku_dir_has(state, "0-keepme@", "", NULL, 0));
    ASSERT_EQ(th_count_intact(t, 1, 51, 400), 400);
    /* a new unnamed tenant gets nothing of the other's */
    tmem__conn *other = th_conn(&d);
    ASSERT_EQ(tmem__conn_pool_new(other, NULL, PERS, NULL), 0);
    ASSERT_EQ(th_count_intact(other, 0, 52, 10), 0);
    tmem__conn_close(other);
    /* the unnamed tenant's own connection, reconnecting by itself, does */
    ASSERT_EQ(th_count_intact(anon, ap, 52, 10), 10);
    /* both taken over, and kept again by the next stop */
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ASSERT_TRUE(strstr(log, "recovered 410 persistent pages of 2 tenants") !=
                NULL);
    ASSERT_TRUE(strstr(log, "kept 410 persistent pages of 2 tenants") != NULL);
    tmem__conn_close(t);
    tmem__conn_close(anon);
    ku_rm_rf(state);
}

/* A tmemd keeping pages in state, tenant name putting n pages (seed)
 * into its pool 0, and the stop that keeps them. */
static void kept_run(th_daemon *d, const char *state, const char *name,
                     uint32_t seed, uint32_t n)
{
    char log[16384];
    ku_start_kept(d, state);
    tmem__conn *t = NULL;
    ASSERT_EQ(tmem__conn_open_named(d->sock, name, &t), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, PERS, NULL), 0);
    ASSERT_EQ(th_put_range(t, 0, seed, n), (int)n);
    ASSERT_EQ(ku_stop_with_log(d, log, sizeof log, SIGTERM), 0);
    tmem__conn_close(t);
}

TEST(tmemd_keep_damaged_file_set_aside)
{
    char state[] = "/tmp/tmem-keep-XXXXXX", log[16384], path[256],
        cmd[600];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    th_daemon d;
    kept_run(&d, state, "dmg", 53, 100);
    tmem__conn *t = NULL;
    ASSERT_TRUE(ku_dir_has(state, "0-dmg@", "", path, sizeof path));
    snprintf(cmd, sizeof cmd,
             "printf 'X' | dd of=%s bs=1 seek=300 conv=notrunc status=none",
             path);
    ASSERT_EQ(system(cmd), 0);
    /* files there that are not kept pages by their names: left alone */
    snprintf(cmd, sizeof cmd,
             "cd %s && touch notes.txt x-@00.tmem 0-ok@short.tmem "
             "'0-bad name@00000000000000000000000000000001.tmem'",
             state);
    ASSERT_EQ(system(cmd), 0);
    ku_start_kept(&d, state);
    ASSERT_EQ(tmem__conn_open_named(d.sock, "dmg", &t), 0);
    ASSERT_TRUE(ku_dir_has(state, "x-@00.tmem", "", NULL, 0));
    ASSERT_TRUE(ku_dir_has(state, "0-ok@short.tmem", "", NULL, 0));
    ASSERT_TRUE(ku_dir_has(state, "0-bad name@", "", NULL, 0));
    ASSERT_TRUE(!ku_dir_has(state, "0-ok@short.tmem.refused", "", NULL, 0));
    snprintf(cmd, sizeof cmd, "%s.refused", path);
    struct stat sb;
    ASSERT_EQ(stat(cmd, &sb), 0);
    ASSERT_EQ(tmem__conn_pool_new(t, NULL, PERS, NULL), 0); /* a new one */
    ASSERT_EQ(th_count_intact(t, 0, 53, 100), 0);
    tmem__conn_close(t);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ASSERT_TRUE(strstr(log, "the file is damaged") != NULL);
    ku_rm_rf(state);
}

static int count_back(tmem_conn *c, int pool, uint32_t seed, uint32_t n)
{
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{seed, 0, 0}};
    int good = 0;
    for (uint32_t i = 0; i < n; i++)
        good += tmem_conn_get(c, pool, &o, i, page) == 1 &&
                th_check(page, seed, i);
    return good;
}

/* A tenant process that stays up, using only the public API, through a
 * restart (its gets wait for the daemon to come back) and a second one
 * (its put while the daemon is away fails at once, its page its own). */
TEST(tmemd_keep_tenant_carries_on_through_restarts)
{
    char state[] = "/tmp/tmem-keep-XXXXXX", log[16384];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    th_daemon d;
    ku_start_kept(&d, state);
    setenv("TMEM_NAME", "carry", 1);
    tmem_conn *c = NULL;
    ASSERT_EQ(tmem_connect(d.sock, &c), 0);
    unsetenv("TMEM_NAME");
    ASSERT_TRUE(!tmem_conn_is_embedded(c));
    int pool = tmem_conn_pool_new(c, NULL, PERS, NULL);
    ASSERT_GE(pool, 0);
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{61, 0, 0}};
    for (uint32_t i = 0; i < 300; i++) {
        th_fill(page, 61, i);
        ASSERT_EQ(tmem_conn_put(c, pool, &o, i, page), 1);
    }
    /* stopped; started again 300 ms later while the tenant reads */
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    pthread_t t = ku_restart_later(&d, state, 300);
    uint64_t t0 = tmem__now_ns();
    ASSERT_EQ(count_back(c, pool, 61, 300), 300);
    uint64_t waited = tmem__now_ns() - t0;
    pthread_join(t, NULL);
    fprintf(stderr, "  300 pages back through the same connection, the "
            "first get waited %.0f ms for the daemon\n", (double)waited / 1e6);
    ASSERT_GE(waited, 200000000ull);
    th_fill(page, 61, 300);
    ASSERT_EQ(tmem_conn_put(c, pool, &o, 300, page), 1);
    /* stopped again: a put fails at once (the caller keeps its page) */
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    t0 = tmem__now_ns();
    th_fill(page, 61, 301);
    ASSERT_LT(tmem_conn_put(c, pool, &o, 301, page), 0);
    ASSERT_LT(tmem__now_ns() - t0, 1000000000ull);
    /* back: everything acknowledged is there */
    ku_restart_same(&d, state);
    ASSERT_EQ(count_back(c, pool, 61, 301), 301);
    ASSERT_EQ(tmem_conn_get(c, pool, &o, 301, page), 0);
    tmem_disconnect(c);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ku_rm_rf(state);
}

/* frontswap through a restart: pages stored before it load right after
 * it (through the daemon: the tenant's view of the old arena is retired,
 * and not mapped again when another swap type starts), and stores go on. */
TEST(tmemd_keep_frontswap_through_restart)
{
    char state[] = "/tmp/tmem-keep-XXXXXX", log[16384];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    th_daemon d;
    ku_start_kept(&d, state);
    tmem_conn *c = NULL;
    ASSERT_EQ(tmem_connect(d.sock, &c), 0);
    tmem_frontswap *fs = NULL;
    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 512), 0);
    unsigned char page[TMEM_PAGE_SIZE], got[TMEM_PAGE_SIZE];
    for (uint64_t i = 0; i < 256; i++) {
        th_fill(page, 81, (uint32_t)i);
        ASSERT_EQ(tmem_frontswap_store(fs, 0, i, page), 0);
    }
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ku_restart_same(&d, state);
    for (uint64_t i = 0; i < 256; i++) {
        ASSERT_EQ(tmem_frontswap_load(fs, 0, i, got), 1);
        ASSERT_TRUE(th_check(got, 81, (uint32_t)i));
    }
    /* another type starts: still no view of the new arena, and the first
     * type's pages still load right */
    ASSERT_EQ(tmem_frontswap_init(fs, 1, 64), 0);
    th_fill(page, 82, 0);
    ASSERT_EQ(tmem_frontswap_store(fs, 1, 0, page), 0);
    ASSERT_EQ(tmem_frontswap_load(fs, 1, 0, got), 1);
    ASSERT_TRUE(th_check(got, 82, 0));
    for (uint64_t i = 0; i < 256; i += 17) {
        ASSERT_EQ(tmem_frontswap_load(fs, 0, i, got), 1);
        ASSERT_TRUE(th_check(got, 81, (uint32_t)i));
    }
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ku_rm_rf(state);
}

/* A raw HELLO (as the uid this process has) claiming token: the status;
 * the socket is closed after. */
static int hello_with_token(const th_daemon *d, const uint64_t token[2])
{
    int fd = th_raw(d);
    int rc = th_raw_hello_token(fd, token);
    close(fd);
    return rc;
}

struct claim {
    const th_daemon *d;
    const uint64_t *token;
};

static int claim_main(void *arg)
{
    struct claim *c = arg;
    return hello_with_token(c->d, c->token) >= 0 ? 0 : 4;
}

/* Nobody else takes a kept tenant's client: not another uid with its
 * token, not its uid with another token; its own connection still does. */
TEST(tmemd_keep_token_claimed_by_its_tenant_only)
{
    char state[] = "/tmp/tmem-keep-XXXXXX", log[16384], path[600];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    chmod(state, 0755);
    th_daemon d;
    ku_start_kept(&d, state);
    tmem__conn *c = th_conn(&d); /* no name: its token only */
    ASSERT_EQ(tmem__conn_pool_new(c, NULL, PERS, NULL), 0);
    ASSERT_EQ(th_put_range(c, 0, 91, 50), 50);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ASSERT_TRUE(ku_dir_has(state, "0-@", "", path, sizeof path));
    uint64_t token[2];
    const char *at = strchr(strrchr(path, '/'), '@') + 1;
    char hex[17] = {0};
    memcpy(hex, at, 16);
    token[0] = strtoull(hex, NULL, 16);
    memcpy(hex, at + 16, 16);
    token[1] = strtoull(hex, NULL, 16);
    ku_restart_same(&d, state);
    /* another uid with the right token */
    struct claim cl = {&d, token};
    ASSERT_EQ(du_as_nobody(claim_main, &cl), 0);
    /* its uid with a wrong token */
    uint64_t wrong[2] = {token[0] ^ 1, token[1]};
    ASSERT_GE(hello_with_token(&d, wrong), 0);
    /* its own connection: every page */
    ASSERT_EQ(th_count_intact(c, 0, 91, 50), 50);
    tmem__conn_close(c);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ku_rm_rf(state);
}
