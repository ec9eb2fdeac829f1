/*
 * Several tenant processes against one tmemd: private pools, a shared pool
 * joined after admin authorisation, a tenant killed with kill -9 while
 * another keeps reading its pages, a tenant running as nobody refused
 * control operations, rings crowded by more busy tenants than CPUs.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tmem/store.h>

#include "../lib/tmemd_harness.h"
#include "../runner.h"
#include "test_daemon_util.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define SHARED TMEM_POOL_FLAGS(TMEM_POOL_SHARED)

/* A tenant process: private persistent pool, n pages, read back twice. */
static int tenant(const th_daemon *d, uint32_t seed, unsigned n)
{
    tmem__conn *c;
    if (tmem__conn_open(d->sock, &c) < 0)
        return 10;
    int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
    if (p < 0 || th_put_range(c, p, seed, n) != (int)n)
        return 11;
    for (int round = 0; round < 2; round++)
        if (th_count_intact(c, p, seed, n) != (int)n)
            return 12;
    tmem__conn_close(c);
    return 0;
}

TEST(tmemd_many_tenants)
{
    th_daemon d;
    th_start(&d, NULL);
    ASSERT_EQ(th_tenants(&d, 4, tenant, 100, 300), 0);
    ASSERT_EQ(th_stop(&d), 0);
}

#define BT_N 64 /* pages per batch */

/* Runs one batch of op over pages base..base+BT_N-1 of oid {seed}; every
 * entry must succeed, and gets must read back th_fill's pattern. */
static int tenant_batch(tmem__conn *c, int pool, uint8_t op, uint32_t seed,
                        uint32_t base, unsigned char (*pages)[TMEM_PAGE_SIZE])
{
    tmem__op ops[BT_N];
    for (uint32_t i = 0; i < BT_N; i++) {
        if (op == TMEM_OP_PUT)
            th_fill(pages[i], seed, base + i);
        else
            memset(pages[i], 0xee, TMEM_PAGE_SIZE);
        ops[i] = (tmem__op){.op = op, .pool = pool, .oid = {{seed, 0, 0}},
                            .index = base + i, .page = pages[i]};
    }
    if (tmem__conn_batch(c, ops, BT_N) < 0)
        return -1;
    for (uint32_t i = 0; i < BT_N; i++)
        if (ops[i].result != 1 ||
            (op == TMEM_OP_GET && !th_check(pages[i], seed, base + i)))
            return -1;
    return 0;
}

/* Puts and reads back pages of oid {seed} in batches until run_ms have
 * passed (at least one batch of each).  Returns 0 or a failing step. */
static int run_batches(tmem__conn *c, int pool, uint32_t seed, unsigned run_ms)
{
    static unsigned char pages[BT_N][TMEM_PAGE_SIZE];
    uint64_t end = tmem__now_ns() + (uint64_t)run_ms * 1000000u;
    for (uint32_t base = 0; base == 0 || tmem__now_ns() < end; base += BT_N) {
        if (tenant_batch(c, pool, TMEM_OP_PUT, seed, base, pages) < 0)
            return 12;
        if (tenant_batch(c, pool, TMEM_OP_GET, seed, base, pages) < 0)
            return 13;
    }
    return 0;
}

/* A tenant process: its own pool, run_batches. */
static int batch_tenant(const th_daemon *d, uint32_t seed, unsigned run_ms)
{
    tmem__conn *c;
    if (tmem__conn_open(d->sock, &c) < 0)
        return 10;
    int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
    if (p < 0)
        return 11;
    int rc = run_batches(c, p, seed, run_ms);
    tmem__conn_close(c);
    return rc;
}

/* tmemd_rings_busy once it is 0, or its last value after a second. */
static long long rings_busy_settled(const th_daemon *d)
{
    long long busy = -1;
    for (int i = 0; i < 100 && busy != 0; i++) {
        busy = du_daemon_metric(d, "tmemd_rings_busy");
        if (busy != 0)
            usleep(10000);
    }
    return busy;
}

/* Rings of tenants busy at once: while they outnumber half the CPUs,
 * tmemd runs their batches crowded (both ends sleep rather than spin,
 * the tenant hands each batch over whole), and every page still comes
 * back intact; one tenant alone is not crowded on 2 CPUs or more; the
 * busy count falls back to 0 once rings go idle (SRV_IDLE_NS), connected
 * or gone. */
TEST(tmemd_crowded_rings)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > 16)
        TEST_SKIP("more than 16 CPUs: too many tenants to crowd them");
    th_daemon d;
    th_start(&d, NULL);
    if (ncpu >= 2) {
        tmem__conn *c = th_conn(&d);
        int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
        ASSERT_TRUE(p >= 0);
        ASSERT_EQ(run_batches(c, p, 7, 100), 0);
        ASSERT_TRUE(du_daemon_metric(&d, "tmemd_ring_batches_total") >= 2);
        ASSERT_EQ(du_daemon_metric(&d, "tmemd_ring_batches_crowded_total"), 0);
        ASSERT_EQ(rings_busy_settled(&d), 0); /* idle, still connected */
        tmem__conn_close(c);
    }
    ASSERT_EQ(th_tenants(&d, (int)ncpu / 2 + 1, batch_tenant, 200, 600), 0);
    ASSERT_TRUE(du_daemon_metric(&d, "tmemd_ring_batches_crowded_total") > 0);
    ASSERT_EQ(rings_busy_settled(&d), 0);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_shared_pool)
{
    th_daemon d;
    th_start(&d, NULL);
    const uint64_t uuid[2] = {0x1234, 0x5678};
    tmem__conn *admin = th_conn(&d);
    tmem__conn *a = th_conn(&d), *b = th_conn(&d), *x = th_conn(&d);
    uint32_t fl = 0;
    /* not authorised: a private pool, SHARED cleared */
    int px = tmem__conn_pool_new(x, uuid, SHARED, &fl);
    ASSERT_GE(px, 0);
    ASSERT_EQ(fl & TMEM_POOL_SHARED, 0);
    ASSERT_EQ(tmem__conn_auth(admin, tmem__conn_client_id(a), uuid, true), 0);
    ASSERT_EQ(tmem__conn_auth(admin, tmem__conn_client_id(b), uuid, true), 0);
    int pa = tmem__conn_pool_new(a, uuid, SHARED, &fl);
    ASSERT_GE(pa, 0);
    ASSERT_TRUE(fl & TMEM_POOL_SHARED);
    int pb = tmem__conn_pool_new(b, uuid, SHARED, &fl);
    ASSERT_GE(pb, 0);
    ASSERT_TRUE(fl & TMEM_POOL_SHARED);
    ASSERT_EQ(th_put_range(a, pa, 9, 50), 50);
    /* shared ephemeral gets are not exclusive: b reads them, twice */
    ASSERT_EQ(th_count_intact(b, pb, 9, 50), 50);
    ASSERT_EQ(th_count_intact(b, pb, 9, 50), 50);
    ASSERT_EQ(th_count_intact(x, px, 9, 50), 0); /* x sees nothing */
    /* a leaves (disconnect): the pool lives on for b */
    tmem__conn_close(a);
    usleep(100000);
    ASSERT_GE(th_count_intact(b, pb, 9, 50), 0);
    ASSERT_EQ(th_put_range(b, pb, 10, 20), 20);
    ASSERT_EQ(th_count_intact(b, pb, 10, 20), 20);
    tmem__conn_close(b);
    tmem__conn_close(x);
    tmem__conn_close(admin);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_kill9_tenant)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem__conn *c = th_conn(&d);
    int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
    ASSERT_EQ(th_put_range(c, p, 42, 500), 500);
    pid_t victim = fork();
    if (victim == 0) {
        tmem__conn *v;
        if (tmem__conn_open(d.sock, &v) < 0)
            _exit(1);
        int vp = tmem__conn_pool_new(v, NULL, PERS, NULL);
        for (uint32_t s = 0;; s++)
            th_put_range(v, vp, 1000 + s % 7, 64);
    }
    usleep(200000); /* mid-traffic */
    ASSERT_EQ(kill(victim, SIGKILL), 0);
    for (int round = 0; round < 5; round++)
        ASSERT_EQ(th_count_intact(c, p, 42, 500), 500);
    ASSERT_EQ(th_wait(victim), 128 + SIGKILL);
    usleep(200000);
    ASSERT_TRUE(th_alive(&d));
    char *js = NULL;
    ASSERT_EQ(tmem__conn_stats_json(c, &js), 0);
    char *end = strchr(js, ']'); /* end of "connections": only us left */
    ASSERT_TRUE(end != NULL);
    *end = 0;
    int conns = 0;
    for (char *q = js; (q = strstr(q, "\"pid\":")); q++)
        conns++;
    ASSERT_EQ(conns, 1);
    free(js);
    ASSERT_EQ(th_count_intact(c, p, 42, 500), 500);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
}

static int nobody_tenant(const th_daemon *d, uid_t uid, gid_t gid)
{
    if (setgid(gid) < 0 || setuid(uid) < 0)
        return 20;
    tmem__conn *c;
    if (tmem__conn_open(d->sock, &c) < 0)
        return 21;
    int id = tmem__conn_client_id(c);
    char *t = NULL;
    const uint64_t uuid[2] = {1, 2};
    if (tmem__conn_stats_json(c, &t) != -EPERM ||
        tmem__conn_prometheus(c, &t) != -EPERM ||
        tmem__conn_set_weight(c, id, 5) != -EPERM ||
        tmem__conn_set_cap(c, id, 5) != -EPERM ||
        tmem__conn_set_compress(c, id, 0) != -EPERM ||
        tmem__conn_freeze(c, TMEM_ALL_CLIENTS, true) != -EPERM ||
        tmem__conn_flush_mib(c, 10) != -EPERM ||
        tmem__conn_freeable_mib(c) != -EPERM ||
        tmem__conn_auth(c, id, uuid, true) != -EPERM ||
        tmem__conn_destroy_client(c, 0) != -EPERM)
        return 22;
    int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
    if (p < 0 || th_put_range(c, p, 77, 40) != 40 ||
        th_count_intact(c, p, 77, 40) != 40)
        return 23;
    tmem__conn_close(c);
    return 0;
}

TEST(tmemd_nobody_refused_admin)
{
    if (geteuid() != 0)
        TEST_SKIP("needs root to become nobody");
    struct passwd *pw = getpwnam("nobody");
    ASSERT_TRUE(pw != NULL);
    th_daemon d;
    th_start(&d, NULL);
    tmem__conn *admin = th_conn(&d);
    pid_t k = fork();
    if (k == 0)
        _exit(nobody_tenant(&d, pw->pw_uid, pw->pw_gid));
    ASSERT_EQ(th_wait(k), 0);
    /* the daemon logged the refusals, and root is still admin */
    ASSERT_GE(tmem__conn_freeable_mib(admin), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -q 'refused: not admin' %s", d.log);
    ASSERT_EQ(system(cmd), 0);
    tmem__conn_close(admin);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_admin_destroy_client)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem__conn *admin = th_conn(&d), *v = th_conn(&d);
    int p = tmem__conn_pool_new(v, NULL, PERS, NULL);
    ASSERT_EQ(th_put_range(v, p, 5, 10), 10);
    ASSERT_EQ(tmem__conn_destroy_client(admin, tmem__conn_client_id(v)), 0);
    ASSERT_EQ(th_count_intact(v, p, 5, 10), 0);
    unsigned char page[TMEM_PAGE_SIZE] = {1};
    tmem_oid o = {{5, 0, 0}};
    ASSERT_EQ(tmem__conn_put(v, p, &o, 0, page), -ENODEV);
    tmem__conn_close(v);
    tmem__conn_close(admin);
    ASSERT_EQ(th_stop(&d), 0);
}
