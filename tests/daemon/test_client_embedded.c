/*
 * Unit tests of the tenant library on the embedded path (TMEM_EMBEDDED=1):
 * the raw ops and batches, every cleancache and frontswap semantic and
 * their counters.  The same semantics through tmemd: test_integ_*.c.
 */
#include <stdlib.h>
#include <string.h>

#include <tmem/client.h>

#include "../runner.h"

static tmem_conn *embedded(void)
{
    tmem_conn *c = NULL;
    setenv("TMEM_EMBEDDED", "1", 1);
    ASSERT_EQ(tmem_connect(NULL, &c), 0);
    ASSERT_TRUE(tmem_conn_is_embedded(c));
    return c;
}

static void fill(void *page, uint64_t seed)
{
    uint64_t *w = page;
    for (size_t i = 0; i < TMEM_PAGE_SIZE / 8; i++)
        w[i] = seed * 0x9e3779b97f4a7c15ull + i * (seed | 1);
}

static int page_is(const void *page, uint64_t seed)
{
    uint64_t want[TMEM_PAGE_SIZE / 8];
    fill(want, seed);
    return memcmp(page, want, TMEM_PAGE_SIZE) == 0;
}

TEST(client_embedded_forced)
{
    tmem_conn *c = embedded();
    ASSERT_GE(tmem_conn_client_id(c), 0);
    tmem_disconnect(c);
    tmem_disconnect(NULL);
}

TEST(client_embedded_fallback_no_daemon)
{
    tmem_conn *c = NULL;
    unsetenv("TMEM_EMBEDDED");
    ASSERT_EQ(tmem_connect("/nonexistent/tmem-test.sock", &c), 0);
    ASSERT_TRUE(tmem_conn_is_embedded(c));
    tmem_disconnect(c);
    setenv("TMEM_EMBEDDED", "0", 1);
    c = NULL;
    ASSERT_LT(tmem_connect("/nonexistent/tmem-test.sock", &c), 0);
    ASSERT_TRUE(c == NULL);
}

TEST(client_raw_ops_and_batch)
{
    tmem_conn *c = embedded();
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    tmem_oid oid = {{7, 0, 0}};
    int p =
        tmem_conn_pool_new(c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), NULL);
    ASSERT_GE(p, 0);
    fill(a, 1);
    ASSERT_EQ(tmem_conn_put(c, p, &oid, 3, a), 1);
    ASSERT_EQ(tmem_conn_get(c, p, &oid, 3, b), 1);
    ASSERT_MEM_EQ(a, b, TMEM_PAGE_SIZE);
    ASSERT_EQ(tmem_conn_get(c, p, &oid, 4, b), 0);
    ASSERT_EQ(tmem_conn_flush_page(c, p, &oid, 3), 1);
    ASSERT_EQ(tmem_conn_get(c, p, &oid, 3, b), 0);
    ASSERT_EQ(tmem_conn_put(c, 9, &oid, 3, a), TMEM_ENODEV);

    static uint8_t pages[8][TMEM_PAGE_SIZE], out[8][TMEM_PAGE_SIZE];
    tmem_op ops[17];
    for (int i = 0; i < 8; i++) {
        fill(pages[i], 100 + i);
        ops[i] = (tmem_op){.op = TMEM_PUT,
                           .pool = p,
                           .oid = oid,
                           .index = (uint32_t)i,
                           .page = pages[i]};
        ops[8 + i] = (tmem_op){.op = TMEM_GET,
                               .pool = p,
                               .oid = oid,
                               .index = (uint32_t)i,
                               .page = out[i]};
    }
    ops[16] = (tmem_op){.op = TMEM_FLUSH_OBJECT, .pool = p, .oid = oid};
    ASSERT_EQ(tmem_conn_batch(c, ops, 17), 0);
    for (int i = 0; i < 8; i++) {
        ASSERT_EQ(ops[i].result, 1);
        ASSERT_EQ(ops[8 + i].result, 1);
        ASSERT_TRUE(page_is(out[i], 100 + i));
    }
    ASSERT_EQ(ops[16].result, 8);
    ASSERT_EQ(tmem_conn_pool_destroy(c, p), 0);
    ASSERT_EQ(tmem_conn_pool_destroy(c, p), TMEM_ENODEV);
    tmem_disconnect(c);
}

/* ---- cleancache ---------------------------------------------------------- */

TEST(client_cleancache_private_exclusive)
{
    tmem_conn *c = embedded();
    tmem_cleancache *cc;
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    tmem_oid ino = {{42, 1, 2}};
    tmem_cleancache_stats st;

    ASSERT_EQ(tmem_cleancache_create(c, &cc), 0);
    int fs = tmem_cleancache_init_fs(cc);
    ASSERT_GE(fs, 0);
    fill(a, 5);
    tmem_cleancache_put_page(cc, fs, &ino, 10, a);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 10, b), 1);
    ASSERT_TRUE(page_is(b, 5));
    /* private ephemeral gets are exclusive */
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 10, b), 0);
    tmem_cleancache_stats_get(cc, &st);
    ASSERT_U64_EQ(st.succ_gets, 1);
    ASSERT_U64_EQ(st.failed_gets, 1);
    ASSERT_U64_EQ(st.puts, 1);
    ASSERT_U64_EQ(st.put_errors, 0);
    tmem_cleancache_destroy(cc);
    tmem_disconnect(c);
}

TEST(client_cleancache_invalidate)
{
    tmem_conn *c = embedded();
    tmem_cleancache *cc;
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    tmem_oid ino = {{1, 0, 0}}, other = {{2, 0, 0}};
    tmem_cleancache_stats st;

    ASSERT_EQ(tmem_cleancache_create(c, &cc), 0);
    int fs = tmem_cleancache_init_fs(cc);
    fill(a, 9);
    for (uint32_t i = 0; i < 4; i++) {
        tmem_cleancache_put_page(cc, fs, &ino, i, a);
        tmem_cleancache_put_page(cc, fs, &other, i, a);
    }
    tmem_cleancache_invalidate_page(cc, fs, &ino, 0);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 0, b), 0);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 1, b), 1);
    tmem_cleancache_invalidate_inode(cc, fs, &ino);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 2, b), 0);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &other, 2, b), 1);
    tmem_cleancache_invalidate_fs(cc, fs);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &other, 3, b), TMEM_ENODEV);
    /* a failed init's pool id: silent no-ops, put counted as an error */
    tmem_cleancache_put_page(cc, -1, &ino, 0, a);
    ASSERT_EQ(tmem_cleancache_get_page(cc, -1, &ino, 0, b), 0);
    tmem_cleancache_stats_get(cc, &st);
    ASSERT_U64_EQ(st.invalidates, 2);
    ASSERT_U64_EQ(st.puts, 9);
    ASSERT_U64_EQ(st.put_errors, 1);
    ASSERT_U64_EQ(st.succ_gets, 2);
    ASSERT_U64_EQ(st.failed_gets, 4);
    tmem_cleancache_destroy(cc);
    tmem_disconnect(c);
}

TEST(client_cleancache_shared_nonexclusive)
{
    tmem_conn *c = embedded();
    tmem_cleancache *cc;
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    uint64_t uuid[2] = {0x1234, 0x5678};
    tmem_oid ino = {{3, 0, 0}};
    bool shared = false;

    ASSERT_EQ(tmem_cleancache_create(c, &cc), 0);
    int fs = tmem_cleancache_init_shared_fs(cc, uuid, &shared);
    ASSERT_GE(fs, 0);
    ASSERT_TRUE(shared); /* embedded: the process authorises itself */
    fill(a, 77);
    tmem_cleancache_put_page(cc, fs, &ino, 0, a);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 0, b), 1);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &ino, 0, b), 1);
    ASSERT_TRUE(page_is(b, 77));
    tmem_cleancache_destroy(cc);
    tmem_disconnect(c);
}

TEST(client_cleancache_put_error_counted)
{
    /* A put the store refuses (here: no such pool) is not reported to the
     * caller, only counted. */
    tmem_conn *c = embedded();
    tmem_cleancache *cc;
    uint8_t a[TMEM_PAGE_SIZE] = {0};
    tmem_oid ino = {{3, 0, 0}};
    tmem_cleancache_stats st;
    ASSERT_EQ(tmem_cleancache_create(c, &cc), 0);
    tmem_cleancache_put_page(cc, 5, &ino, 0, a); /* no such pool */
    tmem_cleancache_stats_get(cc, &st);
    ASSERT_U64_EQ(st.puts, 1);
    ASSERT_U64_EQ(st.put_errors, 1);
    tmem_cleancache_destroy(cc);
    tmem_disconnect(c);
}

/* ---- frontswap ----------------------------------------------------------- */

TEST(client_frontswap_store_load_nonexclusive)
{
    tmem_conn *c = embedded();
    tmem_frontswap *fs;
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    tmem_frontswap_stats st;

    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 4096), 0);
    fill(a, 11);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 1000, a), 0);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 1000, b), 1);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 1000, b), 1); /* non-exclusive */
    ASSERT_TRUE(page_is(b, 11));
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 1001, b), 0);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 4096, b), TMEM_EINVAL);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 4096, a), TMEM_EINVAL);
    ASSERT_EQ(tmem_frontswap_store(fs, 1, 0, a), TMEM_EINVAL); /* no init */
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 1);
    /* overwrite keeps one page */
    fill(a, 12);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 1000, a), 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 1);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 1000, b), 1);
    ASSERT_TRUE(page_is(b, 12));
    ASSERT_EQ(tmem_frontswap_invalidate_page(fs, 0, 1000), 1);
    ASSERT_EQ(tmem_frontswap_invalidate_page(fs, 0, 1000), 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 0);
    tmem_frontswap_stats_get(fs, &st);
    ASSERT_U64_EQ(st.succ_stores, 2);
    ASSERT_U64_EQ(st.failed_stores, 2);
    ASSERT_U64_EQ(st.loads, 3);
    ASSERT_U64_EQ(st.failed_loads, 2);
    ASSERT_U64_EQ(st.invalidates, 1);
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
}

TEST(client_frontswap_curr_pages_and_area)
{
    tmem_conn *c = embedded();
    tmem_frontswap *fs;
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];

    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 10000), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 3, 10000), 0);
    for (uint64_t o = 0; o < 2000; o += 3) {
        fill(a, o);
        ASSERT_EQ(tmem_frontswap_store(fs, 0, o, a), 0);
        ASSERT_EQ(tmem_frontswap_store(fs, 3, o, a), 0);
    }
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 2 * 667);
    ASSERT_EQ(tmem_frontswap_invalidate_area(fs, 0), 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 667);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 3, b), TMEM_EINVAL); /* gone */
    ASSERT_EQ(tmem_frontswap_load(fs, 3, 3, b), 1);
    ASSERT_TRUE(page_is(b, 3));
    ASSERT_EQ(tmem_frontswap_invalidate_area(fs, 0), TMEM_ENODEV);
    /* re-init of a live type empties it */
    ASSERT_EQ(tmem_frontswap_init(fs, 3, 100), 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, TMEM_FRONTSWAP_MAX_TYPES, 1),
              TMEM_EINVAL);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 0), TMEM_EINVAL);
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
}

struct sink {
    int n, refuse_at;
    unsigned type[64];
    uint64_t off[64];
    int ok;
};

static int take(void *arg, unsigned type, uint64_t offset, const void *page)
{
    struct sink *s = arg;
    if (s->n == s->refuse_at)
        return -1;
    if (!page_is(page, type * 100000 + offset))
        s->ok = 0;
    s->type[s->n] = type;
    s->off[s->n++] = offset;
    return 0;
}

TEST(client_frontswap_shrink_order_and_target)
{
    tmem_conn *c = embedded();
    tmem_frontswap *fs;
    uint8_t a[TMEM_PAGE_SIZE];
    static const uint64_t offs[] = {900, 5, 64, 63, 700, 2};
    struct sink s = {.refuse_at = -1, .ok = 1};

    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 2, 1000), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 1, 1000), 0);
    for (unsigned t = 1; t <= 2; t++)
        for (size_t i = 0; i < 6; i++) {
            fill(a, t * 100000 + offs[i]);
            ASSERT_EQ(tmem_frontswap_store(fs, t, offs[i], a), 0);
        }
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 12);
    ASSERT_EQ(tmem_frontswap_shrink(fs, 4, take, &s), 8);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 4);
    ASSERT_TRUE(s.ok);
    static const uint64_t want[] = {2, 5, 63, 64, 700, 900, 2, 5};
    for (int i = 0; i < 8; i++) {
        ASSERT_EQ(s.type[i], i < 6 ? 1 : 2);
        ASSERT_U64_EQ(s.off[i], want[i]);
    }
    /* brought-back pages are gone from the store */
    ASSERT_EQ(tmem_frontswap_load(fs, 1, 900, a), 0);
    ASSERT_EQ(tmem_frontswap_load(fs, 2, 63, a), 1);
    /* a refusing callback stops: that page stays */
    struct sink r = {.refuse_at = 1, .ok = 1};
    ASSERT_EQ(tmem_frontswap_shrink(fs, 0, take, &r), 1);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 3);
    ASSERT_U64_EQ(r.off[0], 63);
    ASSERT_EQ(tmem_frontswap_load(fs, 2, 64, a), 1);
    ASSERT_TRUE(page_is(a, 200064));
    /* target above curr: nothing to do */
    ASSERT_EQ(tmem_frontswap_shrink(fs, 10, take, &r), 0);
    tmem_frontswap_stats_get(fs, &(tmem_frontswap_stats){0});
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
}

TEST(client_frontswap_batch)
{
    tmem_conn *c = embedded();
    tmem_frontswap *fs;
    enum { N = 200 };
    static uint8_t pages[N][TMEM_PAGE_SIZE], back[N][TMEM_PAGE_SIZE];
    uint64_t offs[N];
    const void *src[N];
    void *dst[N];
    int res[N];

    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 1000), 0);
    for (int i = 0; i < N; i++) {
        offs[i] = (uint64_t)i * 5;
        fill(pages[i], offs[i]);
        src[i] = pages[i];
        dst[i] = back[i];
    }
    offs[N - 1] = 5000; /* out of range: refused, the rest goes through */
    ASSERT_EQ(tmem_frontswap_store_batch(fs, 0, offs, src, N, res), N - 1);
    ASSERT_EQ(res[0], 0);
    ASSERT_EQ(res[N - 1], TMEM_EINVAL);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), N - 1);
    offs[N - 1] = 999; /* in range, never stored */
    ASSERT_EQ(tmem_frontswap_load_batch(fs, 0, offs, dst, N, res), N - 1);
    ASSERT_EQ(res[N - 1], 0);
    for (int i = 0; i < N - 1; i++) {
        ASSERT_EQ(res[i], 1);
        ASSERT_TRUE(page_is(back[i], offs[i]));
    }
    tmem_frontswap_stats st;
    tmem_frontswap_stats_get(fs, &st);
    ASSERT_U64_EQ(st.succ_stores, N - 1);
    ASSERT_U64_EQ(st.failed_stores, 1);
    ASSERT_U64_EQ(st.loads, N - 1);
    ASSERT_U64_EQ(st.failed_loads, 1);
    ASSERT_EQ(tmem_frontswap_store_batch(fs, 7, offs, src, 3, res),
              TMEM_EINVAL);
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
}

TEST(client_frontswap_failed_store_caller_keeps)
{
    /* A budget of 1 MiB: persistent puts past it fail, and the caller is
     * told so for every page it must keep; curr_pages counts only the
     * accepted ones and each of them reads back. */
    setenv("TMEM_EMBEDDED_BUDGET_MIB", "1", 1);
    tmem_conn *c = embedded();
    tmem_frontswap *fs;
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    uint64_t ok = 0, failed = 0;
    static int accepted[4096];

    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 4096), 0);
    for (uint64_t o = 0; o < 4096; o++) {
        /* random-ish data that compresses badly */
        uint64_t x = o * 0x2545f4914f6cdd1dull + 1;
        for (size_t i = 0; i < TMEM_PAGE_SIZE / 8; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ((uint64_t *)a)[i] = x;
        }
        int rc = tmem_frontswap_store(fs, 0, o, a);
        ASSERT_TRUE(rc == 0 || rc < 0);
        accepted[o] = rc == 0;
        rc == 0 ? ok++ : failed++;
    }
    ASSERT_GT(failed, 0);
    ASSERT_GT(ok, 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), ok);
    for (uint64_t o = 0; o < 4096; o++)
        ASSERT_EQ(tmem_frontswap_load(fs, 0, o, b), accepted[o] ? 1 : 0);
    tmem_frontswap_stats st;
    tmem_frontswap_stats_get(fs, &st);
    ASSERT_U64_EQ(st.failed_stores, failed);
    ASSERT_U64_EQ(st.succ_stores, ok);
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
}

/* ---- threads and allocation failures ------------------------------------ */

#include <pthread.h>

#include "common/mem.h"

struct fs_worker {
    tmem_frontswap *fs;
    unsigned id;
    int bad;
};

static void *fs_thread(void *arg)
{
    struct fs_worker *w = arg;
    uint8_t a[TMEM_PAGE_SIZE];
    for (uint64_t i = 0; i < 500; i++) {
        uint64_t off = i * 4 + w->id; /* disjoint offsets per thread */
        fill(a, off);
        if (tmem_frontswap_store(w->fs, 0, off, a) != 0)
            w->bad++;
        if (i % 5 == 0 && tmem_frontswap_invalidate_page(w->fs, 0, off) != 1)
            w->bad++;
    }
    return NULL;
}

TEST(client_frontswap_threads_curr_exact)
{
    tmem_conn *c = embedded();
    tmem_frontswap *fs;
    pthread_t t[4];
    struct fs_worker w[4];
    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 2000), 0);
    for (unsigned i = 0; i < 4; i++) {
        w[i] = (struct fs_worker){fs, i, 0};
        ASSERT_EQ(pthread_create(&t[i], NULL, fs_thread, &w[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(w[i].bad, 0);
    }
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 4 * 400);
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
}

/* Fails the Nth allocation for N = 1, 2, ... until setup succeeds: every
 * failure is a clean error (ASan reports any leak at exit). */
TEST(client_allocfail_sweep)
{
    setenv("TMEM_EMBEDDED", "1", 1);
    for (long n = 1; n < 1000; n++) {
        tmem_conn *c = NULL;
        tmem_frontswap *fs = NULL;
        tmem_cleancache *cc = NULL;
        uint8_t a[TMEM_PAGE_SIZE];
        tmem__fault_arm(n, 0);
        int rc = tmem_connect(NULL, &c);
        if (rc == 0)
            rc = tmem_frontswap_create(c, &fs);
        if (rc == 0)
            rc = tmem_frontswap_init(fs, 0, 64);
        if (rc == 0)
            rc = tmem_cleancache_create(c, &cc);
        fill(a, 3);
        if (rc == 0)
            rc = tmem_frontswap_store(fs, 0, 1, a);
        long hits = tmem__fault_hits();
        tmem__fault_arm(0, 0);
        if (rc == 0) {
            ASSERT_EQ(tmem_frontswap_load(fs, 0, 1, a), 1);
            ASSERT_TRUE(page_is(a, 3));
        } else {
            ASSERT_GT(hits, 0);
            ASSERT_LT(rc, 0);
        }
        tmem_cleancache_destroy(cc);
        tmem_frontswap_destroy(fs);
        tmem_disconnect(c);
        if (rc == 0 && hits == 0) { /* got past every allocation */
            ASSERT_GT(n, 5);        /* connect, store, front ends allocate */
            return;
        }
    }
    ASSERT_TRUE(!"sweep did not finish");
}
