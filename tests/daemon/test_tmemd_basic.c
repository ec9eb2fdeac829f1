/*
 * tmemd end to end with one well-behaved tenant: hello, pools, page
 * operations over the ring and over the socket, batches, stats, clean
 * shutdown (metrics: test_tmemd_metrics.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include <tmem/store.h>

#include "../lib/tmemd_harness.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define EPH TMEM_POOL_FLAGS(0)

static void page_ops(tmem__conn *c)
{
    unsigned char page[TMEM_PAGE_SIZE], back[TMEM_PAGE_SIZE];
    tmem_oid o = {{7, 8, 9}};
    int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
    int e = tmem__conn_pool_new(c, NULL, EPH, NULL);
    ASSERT_EQ(p, 0);
    ASSERT_EQ(e, 1);
    th_fill(page, 1, 3);
    ASSERT_EQ(tmem__conn_put(c, p, &o, 3, page), 1);
    ASSERT_EQ(tmem__conn_get(c, p, &o, 3, back), 1);
    ASSERT_MEM_EQ(page, back, TMEM_PAGE_SIZE);
    ASSERT_EQ(tmem__conn_get(c, p, &o, 3, back), 1); /* persistent: stays */
    ASSERT_EQ(tmem__conn_put(c, e, &o, 3, page), 1);
    ASSERT_EQ(tmem__conn_get(c, e, &o, 3, back), 1);
    ASSERT_EQ(tmem__conn_get(c, e, &o, 3, back), 0); /* exclusive */
    ASSERT_EQ(tmem__conn_get(c, p, &o, 4, back), 0);
    ASSERT_EQ(tmem__conn_flush_page(c, p, &o, 3), 1);
    ASSERT_EQ(tmem__conn_get(c, p, &o, 3, back), 0);
    ASSERT_EQ(th_put_range(c, p, 5, 10), 10);
    tmem_oid o5 = {{5, 0, 0}};
    ASSERT_EQ(tmem__conn_flush_object(c, p, &o5), 10);
    ASSERT_EQ(tmem__conn_get(c, 9, &o, 0, back), -ENODEV);
    ASSERT_EQ(tmem__conn_get(c, 99, &o, 0, back), -ENODEV);
    ASSERT_EQ(tmem__conn_pool_new(c, NULL, 0x100, NULL), -EPERM);
    ASSERT_EQ(tmem__conn_pool_destroy(c, e), 0);
    ASSERT_EQ(tmem__conn_get(c, e, &o, 3, back), -ENODEV);
}

TEST(tmemd_ring_ops)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem__conn *c = th_conn(&d);
    ASSERT_GE(tmem__conn_client_id(c), 0);
    page_ops(c);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
    ASSERT_TRUE(access(d.sock, F_OK) != 0); /* socket file removed */
}

TEST(tmemd_socket_ops)
{
    th_daemon d;
    th_start(&d, NULL);
    setenv("TMEM_RING", "0", 1);
    tmem__conn *c = th_conn(&d);
    page_ops(c);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
}

static void batch_roundtrip(tmem__conn *c, size_t n)
{
    int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
    ASSERT_GE(p, 0);
    unsigned char *buf = malloc(n * TMEM_PAGE_SIZE);
    tmem__op *ops = calloc(n, sizeof *ops);
    for (size_t i = 0; i < n; i++) {
        th_fill(buf + i * TMEM_PAGE_SIZE, 2, (uint32_t)i);
        ops[i] = (tmem__op){.op = TMEM_OP_PUT,
                            .pool = p,
                            .oid = {{2, 0, 0}},
                            .index = (uint32_t)i,
                            .page = buf + i * TMEM_PAGE_SIZE};
    }
    ASSERT_EQ(tmem__conn_batch(c, ops, n), 0);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(ops[i].result, 1);
    memset(buf, 0, n * TMEM_PAGE_SIZE);
    for (size_t i = 0; i < n; i++)
        ops[i].op = TMEM_OP_GET;
    ops[n - 1].pool = 77; /* one bad entry fails alone */
    ASSERT_EQ(tmem__conn_batch(c, ops, n), 0);
    for (size_t i = 0; i + 1 < n; i++) {
        ASSERT_EQ(ops[i].result, 1);
        ASSERT_TRUE(th_check(buf + i * TMEM_PAGE_SIZE, 2, (uint32_t)i));
    }
    ASSERT_EQ(ops[n - 1].result, -ENODEV);
    free(ops);
    free(buf);
}

TEST(tmemd_batch)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem__conn *c = th_conn(&d);
    batch_roundtrip(c, 1000); /* > ring entries: several round trips */
    tmem__conn_close(c);
    setenv("TMEM_RING", "0", 1);
    c = th_conn(&d);
    batch_roundtrip(c, 50);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
}

/* Ring gets come back packed (LZ4 as stored, raw, a fill word) and the
 * tenant decodes them: every kind, and zstd (decoded by the daemon). */
static void kinds_roundtrip(tmem__conn *c, int pool, uint32_t seed,
                            bool persist)
{
    enum { K = 6 };
    static unsigned char pages[K][TMEM_PAGE_SIZE], back[K][TMEM_PAGE_SIZE];
    memset(pages[0], 0, TMEM_PAGE_SIZE);    /* zero: fill 0 */
    memset(pages[1], 0x5a, TMEM_PAGE_SIZE); /* same-filled */
    th_fill(pages[2], seed, 1);             /* compressible */
    uint32_t x = seed | 1;                  /* incompressible: stored raw */
    for (size_t i = 0; i < TMEM_PAGE_SIZE; i++)
        pages[3][i] = (unsigned char)(x ^= x << 13, x ^= x >> 17, x ^= x << 5);
    memset(pages[4], 0, TMEM_PAGE_SIZE); /* almost zero: LZ4, tiny */
    pages[4][4000] = 1;
    memcpy(pages[5], pages[2], TMEM_PAGE_SIZE); /* a dedup hit */
    tmem__op ops[K];
    for (int i = 0; i < K; i++)
        ops[i] = (tmem__op){.op = TMEM_OP_PUT, .pool = pool,
                            .oid = {{seed, 0, 0}}, .index = (uint32_t)i,
                            .page = pages[i]};
    ASSERT_EQ(tmem__conn_batch(c, ops, K), 0);
    for (int i = 0; i < K; i++) {
        ASSERT_EQ(ops[i].result, 1);
        ops[i].op = TMEM_OP_GET;
        ops[i].page = back[i];
        memset(back[i], 0xee, TMEM_PAGE_SIZE);
    }
    ASSERT_EQ(tmem__conn_batch(c, ops, K), 0);
    for (int i = 0; i < K; i++) {
        ASSERT_EQ(ops[i].result, 1);
        ASSERT_MEM_EQ(back[i], pages[i], TMEM_PAGE_SIZE);
    }
    for (int i = 0; i < K; i++) { /* and one at a time */
        memset(back[i], 0xee, TMEM_PAGE_SIZE);
        int rc = tmem__conn_get(c, pool, &ops[i].oid, (uint32_t)i, back[i]);
        ASSERT_EQ(rc, persist ? 1 : 0); /* ephemeral: gone when read */
        if (persist)
            ASSERT_MEM_EQ(back[i], pages[i], TMEM_PAGE_SIZE);
    }
}

/* A batch whose first op is unknown (the tenant's per-kind timing must not
 * index with it): that entry fails alone, the next batches still work. */
TEST(tmemd_ring_batch_bad_first_op)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem__conn *c = th_conn(&d);
    int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
    ASSERT_GE(p, 0);
    unsigned char page[TMEM_PAGE_SIZE];
    th_fill(page, 4, 0);
    for (int bad = 0; bad < 2; bad++) {
        tmem__op ops[2] = {
            {.op = bad ? 99 : 0, .pool = p, .oid = {{4, 0, 0}}, .page = page},
            {.op = TMEM_OP_PUT, .pool = p, .oid = {{4, 0, 0}}, .page = page}};
        ASSERT_EQ(tmem__conn_batch(c, ops, 2), 0);
        ASSERT_EQ(ops[0].result, -EINVAL);
        ASSERT_EQ(ops[1].result, 1);
    }
    unsigned char back[TMEM_PAGE_SIZE];
    tmem_oid o = {{4, 0, 0}};
    ASSERT_EQ(tmem__conn_get(c, p, &o, 0, back), 1);
    ASSERT_TRUE(th_check(back, 4, 0));
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_ring_get_packed_kinds)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem__conn *c = th_conn(&d);
    int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
    int e = tmem__conn_pool_new(c, NULL, EPH, NULL);
    ASSERT_GE(p, 0);
    ASSERT_GE(e, 0);
    kinds_roundtrip(c, p, 11, true);
    kinds_roundtrip(c, e, 12, false);
    /* zstd pages: the daemon decodes them and sends them raw */
    ASSERT_EQ(tmem__conn_set_compress(c, tmem__conn_client_id(c),
                                      TMEM_COMPRESS_ZSTD),
              0);
    kinds_roundtrip(c, p, 13, true);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_stats_and_admin)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem__conn *c = th_conn(&d);
    int id = tmem__conn_client_id(c);
    ASSERT_EQ(th_put_range(c, tmem__conn_pool_new(c, NULL, EPH, NULL), 3, 20),
              20);
    char *js = NULL;
    ASSERT_EQ(tmem__conn_stats_json(c, &js), 0);
    ASSERT_TRUE(strncmp(js, "{\"connections\":[{\"client\":", 26) == 0);
    char pid[32];
    snprintf(pid, sizeof pid, "\"pid\":%d", (int)getpid());
    ASSERT_TRUE(strstr(js, pid) != NULL);
    free(js);
    char *pr = NULL;
    ASSERT_EQ(tmem__conn_prometheus(c, &pr), 0);
    ASSERT_TRUE(strstr(pr, "tmem_op_latency_us_bucket{op=\"put\"") != NULL);
    ASSERT_TRUE(strstr(pr, "tmem_client_eph_pages{client=") != NULL);
    free(pr);
    ASSERT_EQ(tmem__conn_set_weight(c, id, 3), 0);
    ASSERT_EQ(tmem__conn_set_cap(c, id, 1000), 0);
    ASSERT_EQ(tmem__conn_set_compress(c, id, 2), 0);
    ASSERT_EQ(tmem__conn_set_compress(c, id, 9), -EINVAL);
    ASSERT_EQ(tmem__conn_set_weight(c, 12345, 3), -ENODEV);
    ASSERT_EQ(tmem__conn_freeze(c, TMEM_ALL_CLIENTS, true), 0);
    unsigned char page[TMEM_PAGE_SIZE];
    th_fill(page, 1, 1);
    tmem_oid o = {{1, 1, 1}};
    ASSERT_EQ(tmem__conn_put(c, 0, &o, 1, page), TMEM_EFROZEN);
    ASSERT_EQ(tmem__conn_freeze(c, id, false), 0);
    ASSERT_EQ(tmem__conn_put(c, 0, &o, 1, page), 1);
    ASSERT_GE(tmem__conn_freeable_mib(c), 0);
    ASSERT_GE(tmem__conn_flush_mib(c, 1), 1);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_bad_options)
{
    const char *b = getenv("BUILD");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/tmemd --budget 12Q --foreground 2>/dev/null",
             b && *b ? b : "build");
    int st = system(cmd);
    ASSERT_EQ(WEXITSTATUS(st), 2);
}

TEST(tmemd_refuses_live_socket)
{
    th_daemon d;
    th_start(&d, NULL);
    const char *b = getenv("BUILD");
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "TMEM_SOCKET=%s %s/tmemd --foreground "
             "2>/dev/null",
             d.sock, b && *b ? b : "build");
    int st = system(cmd); /* the default path comes from TMEM_SOCKET */
    ASSERT_EQ(WEXITSTATUS(st), 1);
    tmem__conn *c = th_conn(&d); /* the first daemon still serves */
    ASSERT_GE(tmem__conn_client_id(c), 0);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
}
