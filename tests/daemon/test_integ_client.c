/*
 * Integration tests of the tenant library against a real tmemd on a
 * temporary socket (test_tmemd_harness): cleancache and frontswap through
 * the daemon, several tenant processes at once, a shared pool authorised
 * with the CLI, the embedded fallback and TMEM_EMBEDDED=1, a daemon that
 * goes away under a tenant.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tmem/client.h>

#include "../runner.h"
#include "test_keep_util.h"
#include "test_integ_common.h"
#include "../lib/tmemd_harness.h"

static tmem_conn *to_daemon(const th_daemon *d)
{
    tmem_conn *c = NULL;
    setenv("TMEM_EMBEDDED", "0", 1);
    ASSERT_EQ(tmem_connect(d->sock, &c), 0);
    ASSERT_TRUE(!tmem_conn_is_embedded(c));
    return c;
}

TEST(integ_cleancache_daemon)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem_conn *c = to_daemon(&d);
    tmem_cleancache *cc;
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    tmem_oid ino = {{11, 0, 0}}, other = {{12, 0, 0}};
    tmem_cleancache_stats st;

    ASSERT_EQ(tmem_cleancache_create(c, &cc), 0);
    int fs = tmem_cleancache_init_fs(cc);
    ASSERT_GE(fs, 0);
    for (uint32_t i = 0; i < 8; i++) {
        th_fill(a, 1, i);
        tmem_cleancache_put_page(cc, fs, &ino, i, a);
        tmem_cleancache_put_page(cc, fs, &other, i, a);
    }
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 3, b), 1);
    ASSERT_TRUE(th_check(b, 1, 3));
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 3, b), 0); /* exclusive */
    tmem_cleancache_invalidate_page(cc, fs, &ino, 4);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 4, b), 0);
    tmem_cleancache_invalidate_inode(cc, fs, &ino);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 5, b), 0);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &other, 5, b), 1);
    ASSERT_TRUE(th_check(b, 1, 5));
    tmem_cleancache_invalidate_fs(cc, fs);
    ASSERT_LT(tmem_cleancache_get_page(cc, fs, &other, 6, b), 0);
    tmem_cleancache_stats_get(cc, &st);
    ASSERT_U64_EQ(st.puts, 16);
    ASSERT_U64_EQ(st.put_errors, 0);
    ASSERT_U64_EQ(st.succ_gets, 2);
    ASSERT_U64_EQ(st.failed_gets, 4);
    ASSERT_U64_EQ(st.invalidates, 2);
    tmem_cleancache_destroy(cc);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}

struct order {
    int n;
    unsigned type[16];
    uint64_t off[16];
};

static int keep(void *arg, unsigned type, uint64_t offset, const void *page)
{
    struct order *o = arg;
    if (!th_check(page, type, (uint32_t)offset))
        return -1;
    o->type[o->n] = type;
    o->off[o->n++] = offset;
    return 0;
}

TEST(integ_frontswap_daemon)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem_conn *c = to_daemon(&d);
    tmem_frontswap *fs;
    enum { N = 300 };
    static uint8_t pages[N][TMEM_PAGE_SIZE], back[N][TMEM_PAGE_SIZE];
    uint64_t offs[N];
    const void *src[N];
    void *dst[N];
    int res[N];

    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 100000), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 1, 100000), 0);
    for (int i = 0; i < N; i++) {
        offs[i] = (uint64_t)i * 7 + 1000;
        th_fill(pages[i], 1, (uint32_t)offs[i]);
        src[i] = pages[i];
        dst[i] = back[i];
    }
    ASSERT_EQ(tmem_frontswap_store_batch(fs, 1, offs, src, N, res), N);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), N);
    ASSERT_EQ(tmem_frontswap_load_batch(fs, 1, offs, dst, N, res), N);
    for (int i = 0; i < N; i++)
        ASSERT_TRUE(th_check(back[i], 1, (uint32_t)offs[i]));
    /* single ops; non-exclusive load */
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    th_fill(a, 0, 5);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 5, a), 0);
    th_fill(a, 0, 99999);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 99999, a), 0);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 5, b), 1);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 5, b), 1);
    ASSERT_TRUE(th_check(b, 0, 5));
    ASSERT_EQ(tmem_frontswap_invalidate_page(fs, 1, 1000), 1);
    ASSERT_EQ(tmem_frontswap_load(fs, 1, 1000, b), 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), N + 1);
    /* shrink to N - 4: type 0 first (5, 99999), then type 1 ascending */
    struct order o = {0};
    ASSERT_EQ(tmem_frontswap_shrink(fs, N - 4, keep, &o), 5);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), N - 4);
    ASSERT_EQ(o.type[0], 0);
    ASSERT_U64_EQ(o.off[0], 5);
    ASSERT_U64_EQ(o.off[1], 99999);
    ASSERT_EQ(o.type[2], 1);
    ASSERT_U64_EQ(o.off[2], 1007);
    ASSERT_U64_EQ(o.off[4], 1021);
    ASSERT_EQ(tmem_frontswap_load(fs, 1, 1007, b), 0);
    ASSERT_EQ(tmem_frontswap_load(fs, 1, 1028, b), 1);
    ASSERT_EQ(tmem_frontswap_invalidate_area(fs, 1), 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 0);
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}

/* One tenant process: n frontswap pages of its own, checked back. */
static int tenant_child(const th_daemon *d, uint32_t seed, unsigned n)
{
    tmem_conn *c = NULL;
    tmem_frontswap *fs = NULL;
    tmem_cleancache *cc = NULL;
    uint8_t a[TMEM_PAGE_SIZE];
    setenv("TMEM_EMBEDDED", "0", 1);
    if (tmem_connect(d->sock, &c) || tmem_conn_is_embedded(c) ||
        tmem_frontswap_create(c, &fs) || tmem_frontswap_init(fs, 0, 4096) ||
        tmem_cleancache_create(c, &cc))
        return 10;
    int p = tmem_cleancache_init_fs(cc);
    tmem_oid ino = {{seed, 0, 0}};
    for (uint32_t i = 0; i < n; i++) {
        th_fill(a, seed, i);
        if (tmem_frontswap_store(fs, 0, i, a) != 0)
            return 11;
        tmem_cleancache_put_page(cc, p, &ino, i, a);
    }
    for (uint32_t i = 0; i < n; i++)
        if (tmem_frontswap_load(fs, 0, i, a) != 1 || !th_check(a, seed, i))
            return 12;
    if (tmem_frontswap_curr_pages(fs) != n)
        return 13;
    tmem_frontswap_destroy(fs);
    tmem_cleancache_destroy(cc);
    tmem_disconnect(c);
    return 0;
}

TEST(integ_several_tenants)
{
    th_daemon d;
    th_start(&d, NULL);
    ASSERT_EQ(th_tenants(&d, 4, tenant_child, 100, 400), 0);
    ASSERT_TRUE(th_alive(&d));
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_shared_pool_auth_via_cli)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem_conn *a = to_daemon(&d), *b = to_daemon(&d), *x = to_daemon(&d);
    tmem_cleancache *ca, *cb, *cx;
    const char *uuid_s = "01234567-89ab-cdef-0011-223344556677";
    uint64_t uuid[2] = {0x0123456789abcdefull, 0x0011223344556677ull};
    char id[16], out[256];
    bool shared = false;
    uint8_t pg[TMEM_PAGE_SIZE], back[TMEM_PAGE_SIZE];
    tmem_oid ino = {{1, 2, 3}};

    ASSERT_EQ(tmem_cleancache_create(a, &ca), 0);
    ASSERT_EQ(tmem_cleancache_create(b, &cb), 0);
    ASSERT_EQ(tmem_cleancache_create(x, &cx), 0);
    for (tmem_conn **c = (tmem_conn *[]){a, b, NULL}; *c; c++) {
        snprintf(id, sizeof id, "%d", tmem_conn_client_id(*c));
        ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "auth", id, uuid_s,
                            "on", NULL),
                  0);
    }
    int pa = tmem_cleancache_init_shared_fs(ca, uuid, &shared);
    ASSERT_GE(pa, 0);
    ASSERT_TRUE(shared);
    int pb = tmem_cleancache_init_shared_fs(cb, uuid, &shared);
    ASSERT_GE(pb, 0);
    ASSERT_TRUE(shared);
    /* x was not authorised: it gets a private pool instead */
    int px = tmem_cleancache_init_shared_fs(cx, uuid, &shared);
    ASSERT_GE(px, 0);
    ASSERT_TRUE(!shared);
    th_fill(pg, 9, 9);
    tmem_cleancache_put_page(ca, pa, &ino, 9, pg);
    ASSERT_EQ(tmem_cleancache_get_page(cb, pb, &ino, 9, back), 1);
    ASSERT_TRUE(th_check(back, 9, 9));
    ASSERT_EQ(tmem_cleancache_get_page(cb, pb, &ino, 9, back), 1); /* shared */
    ASSERT_EQ(tmem_cleancache_get_page(cx, px, &ino, 9, back), 0);
    /* a leaves; the pool lives on for b */
    tmem_cleancache_invalidate_fs(ca, pa);
    tmem_cleancache_put_page(cb, pb, &ino, 10, pg);
    ASSERT_EQ(tmem_cleancache_get_page(cb, pb, &ino, 10, back), 1);
    tmem_cleancache_destroy(ca);
    tmem_cleancache_destroy(cb);
    tmem_cleancache_destroy(cx);
    tmem_disconnect(a);
    tmem_disconnect(b);
    tmem_disconnect(x);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_fallback_embedded)
{
    tmem_conn *c = NULL;
    unsetenv("TMEM_EMBEDDED");
    setenv("TMEM_SOCKET", "/tmp/tmem-no-such-dir/sock", 1);
    ASSERT_EQ(tmem_connect(NULL, &c), 0);
    ASSERT_TRUE(tmem_conn_is_embedded(c));
    tmem_frontswap *fs;
    uint8_t a[TMEM_PAGE_SIZE];
    th_fill(a, 1, 1);
    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 16), 0);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 1, a), 0);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 1, a), 1);
    ASSERT_TRUE(th_check(a, 1, 1));
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);

    /* a daemon that answers is used; TMEM_EMBEDDED=1 overrides it */
    th_daemon d;
    th_start(&d, NULL);
    setenv("TMEM_SOCKET", d.sock, 1);
    ASSERT_EQ(tmem_connect(NULL, &c), 0);
    ASSERT_TRUE(!tmem_conn_is_embedded(c));
    tmem_disconnect(c);
    setenv("TMEM_EMBEDDED", "1", 1);
    ASSERT_EQ(tmem_connect(NULL, &c), 0);
    ASSERT_TRUE(tmem_conn_is_embedded(c));
    tmem_disconnect(c);
    unsetenv("TMEM_EMBEDDED");
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_daemon_gone_store_refused)
{
    th_daemon d;
    th_start(&d, NULL);
    setenv("TMEM_RECONNECT_MS", "500", 1); /* how long a get waits for it */
    tmem_conn *c = to_daemon(&d);
    unsetenv("TMEM_RECONNECT_MS");
    tmem_frontswap *fs;
    uint8_t a[TMEM_PAGE_SIZE];
    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 64), 0);
    th_fill(a, 3, 3);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 3, a), 0);
    kill(d.pid, SIGKILL);
    waitpid(d.pid, NULL, 0);
    signal(SIGPIPE, SIG_IGN);
    /* the caller is told to keep the page */
    ASSERT_LT(tmem_frontswap_store(fs, 0, 4, a), 0);
    /* a page stored before is still read from the tenant's own view of
     * its arena, which outlives the daemon; an absent one is a miss, and
     * one only the daemon could read fails */
    uint8_t b[TMEM_PAGE_SIZE];
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 3, b), 1);
    ASSERT_MEM_EQ(a, b, TMEM_PAGE_SIZE);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 4, b), 0);
    /* a get through the daemon waits for it to come back, a bounded
     * time (TMEM_RECONNECT_MS), then fails */
    uint64_t t0 = tmem__now_ns();
    ASSERT_LT(tmem_conn_get(c, 0, &(tmem_oid){{0, 0, 0}}, 3, b), 0);
    uint64_t waited = tmem__now_ns() - t0;
    ASSERT_GE(waited, 400000000ull);
    ASSERT_LT(waited, 5000000000ull);
    tmem_frontswap_stats st;
    tmem_frontswap_stats_get(fs, &st);
    ASSERT_U64_EQ(st.failed_stores, 1);
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
}

/* TMEM_RECONNECT_MS=0: the connection is never made again; with the
 * daemon gone a get fails at once, and it keeps failing when a daemon
 * is back on the socket (nothing is read from another connection). */
TEST(integ_reconnect_off_fails_at_once)
{
    char state[] = "/tmp/tmem-reco-XXXXXX", log[8192];
    ASSERT_TRUE(mkdtemp(state) != NULL);
    th_daemon d;
    ku_start_kept(&d, state);
    setenv("TMEM_RECONNECT_MS", "0", 1);
    tmem_conn *c = to_daemon(&d);
    unsetenv("TMEM_RECONNECT_MS");
    int pool = tmem_conn_pool_new(c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                                  NULL);
    ASSERT_GE(pool, 0);
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    tmem_oid o = {{5, 0, 0}};
    th_fill(a, 5, 0);
    ASSERT_EQ(tmem_conn_put(c, pool, &o, 0, a), 1);
    signal(SIGPIPE, SIG_IGN);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGKILL), -1);
    /* no wait for the daemon to come back (10 s by default): only the
     * ring's sleep slice (200 ms) before it sees the daemon gone */
    uint64_t t0 = tmem__now_ns();
    ASSERT_LT(tmem_conn_get(c, pool, &o, 0, b), 0);
    ASSERT_LT(tmem__now_ns() - t0, 1000000000ull);
    ku_restart_same(&d, state); /* its page is recovered, for its token */
    ASSERT_LT(tmem_conn_get(c, pool, &o, 0, b), 0);
    ASSERT_LT(tmem_conn_put(c, pool, &o, 1, a), 0);
    tmem_disconnect(c);
    ASSERT_EQ(ku_stop_with_log(&d, log, sizeof log, SIGTERM), 0);
    ku_rm_rf(state);
}

struct thr {
    tmem_frontswap *fs;
    unsigned id;
    int bad;
};

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    uint8_t a[TMEM_PAGE_SIZE];
    for (uint32_t i = 0; i < 200; i++) {
        uint64_t off = i * 3 + t->id;
        th_fill(a, 7, (uint32_t)off);
        if (tmem_frontswap_store(t->fs, 0, off, a) != 0)
            t->bad++;
        if (tmem_frontswap_load(t->fs, 0, off, a) != 1 ||
            !th_check(a, 7, (uint32_t)off))
            t->bad++;
    }
    return NULL;
}

TEST(integ_threads_share_conn)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem_conn *c = to_daemon(&d);
    tmem_frontswap *fs;
    pthread_t tid[3];
    struct thr t[3];
    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 1000), 0);
    for (unsigned i = 0; i < 3; i++) {
        t[i] = (struct thr){fs, i, 0};
        ASSERT_EQ(pthread_create(&tid[i], NULL, thr_main, &t[i]), 0);
    }
    for (unsigned i = 0; i < 3; i++) {
        pthread_join(tid[i], NULL);
        ASSERT_EQ(t[i].bad, 0);
    }
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 600);
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}
