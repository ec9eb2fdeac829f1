/*
 * Allocation wrappers (fault injection) and the corpus loader.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <zstd.h>

#include "blob_testutil.h"
#include "common/mem.h"
#include "common/privheap.h"
#include "store_testutil.h"

TEST(mem_fault_nth_only)
{
    tmem__fault_arm(3, 0);
    void *a = tmem__malloc(10), *b = tmem__calloc(2, 8);
    void *c = tmem__malloc(10), *d = tmem__aligned_alloc(64, 100);
    ASSERT_TRUE(a && b && !c && d);
    ASSERT_EQ((uintptr_t)d % 64, 0);
    ASSERT_EQ(tmem__fault_hits(), 1);
    ASSERT_EQ(tmem__fault_seen(), 4);
    tmem__fault_arm(0, 0);
    tmem__free(a);
    tmem__free(b);
    tmem__free(d);
    tmem__free(NULL);
}

TEST(mem_fault_sticky_and_realloc)
{
    void *p = tmem__malloc(16);
    memset(p, 5, 16);
    tmem__fault_arm(2, 1);
    void *a = tmem__malloc(1);
    ASSERT_TRUE(a != NULL);
    ASSERT_TRUE(tmem__realloc(p, 1 << 20) == NULL); /* p left intact */
    ASSERT_TRUE(tmem__calloc(1, 1) == NULL);
    ASSERT_TRUE(tmem__aligned_alloc(4096, 4096) == NULL);
    ASSERT_EQ(tmem__fault_hits(), 3);
    tmem__fault_arm(0, 0);
    ASSERT_EQ(((unsigned char *)p)[15], 5);
    void *q = tmem__realloc(p, 1 << 20);
    ASSERT_TRUE(q != NULL);
    tmem__free(q);
    tmem__free(a);
}

static void *alloc_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5000; i++)
        tmem__free(tmem__malloc(32));
    return NULL;
}

TEST(mem_fault_counts_exact_across_threads)
{
    pthread_t t[4];
    tmem__fault_arm(7000, 0);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, alloc_many, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ASSERT_EQ(tmem__fault_hits(), 1);
    ASSERT_EQ(tmem__fault_seen(), 20000);
    tmem__fault_arm(0, 0);
}

/* ---- corpus loader ---------------------------------------------------- */

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* zstd stream without a content size in the frame header. */
static void write_zst(const char *path, const void *p, size_t n)
{
    ZSTD_CStream *cs = ZSTD_createCStream();
    size_t cap = ZSTD_compressBound(n) + 64;
    char *out = malloc(cap);
    ZSTD_initCStream(cs, 3);
    ZSTD_inBuffer ib = {p, n, 0};
    ZSTD_outBuffer ob = {out, cap, 0};
    while (ib.pos < ib.size)
        ASSERT_TRUE(!ZSTD_isError(ZSTD_compressStream(cs, &ob, &ib)));
    ASSERT_EQ(ZSTD_endStream(cs, &ob), 0);
    ASSERT_EQ(ZSTD_getFrameContentSize(out, ob.pos), ZSTD_CONTENTSIZE_UNKNOWN);
    write_file(path, out, ob.pos);
    ZSTD_freeCStream(cs);
    free(out);
}

TEST(corpus_raw_and_zst)
{
    enum { N = 300 };
    unsigned char *want = malloc(N * PG);
    for (int i = 0; i < N; i++)
        bt_text(want + (size_t)i * PG, (uint64_t)i);
    char raw[] = "/tmp/tmem-corpus-XXXXXX";
    int fd = mkstemp(raw);
    close(fd);
    char zst[64];
    snprintf(zst, sizeof zst, "%s.zst", raw);
    write_file(raw, want, N * PG);
    write_zst(zst, want, N * PG);
    const char *paths[] = {raw, zst};
    for (int k = 0; k < 2; k++) {
        void *pages;
        size_t n;
        ASSERT_EQ(tmem__corpus_load(paths[k], &pages, &n), 0);
        ASSERT_EQ(n, N);
        ASSERT_MEM_EQ(pages, want, (size_t)N * PG);
        tmem__corpus_free(pages, n);
    }
    /* not whole pages: refused, raw or compressed */
    write_file(raw, want, N * PG - 100);
    write_zst(zst, want, N * PG - 100);
    for (int k = 0; k < 2; k++) {
        void *pages;
        size_t n;
        ASSERT_EQ(tmem__corpus_load(paths[k], &pages, &n), -EINVAL);
    }
    /* truncated zstd */
    write_zst(zst, want, N * PG);
    ASSERT_EQ(truncate(zst, 200), 0);
    {
        void *pg;
        size_t np;
        ASSERT_EQ(tmem__corpus_load(zst, &pg, &np), -EINVAL);
    }
    /* corrupt zstd */
    unsigned char bad[64] = {0x28, 0xB5, 0x2F, 0xFD, 0xff, 0xff, 0xff};
    write_file(zst, bad, sizeof bad);
    void *pages;
    size_t n;
    ASSERT_EQ(tmem__corpus_load(zst, &pages, &n), -EINVAL);
    /* empty */
    write_file(raw, want, 0);
    ASSERT_EQ(tmem__corpus_load(raw, &pages, &n), 0);
    ASSERT_EQ(n, 0);
    unlink(raw);
    unlink(zst);
    ASSERT_EQ(tmem__corpus_load(raw, &pages, &n), -ENOENT);
    free(want);
}

TEST(corpus_default_prefers_env)
{
    char raw[] = "/tmp/tmem-corpus-XXXXXX";
    int fd = mkstemp(raw);
    close(fd);
    setenv("TMEM_CORPUS", raw, 1);
    ASSERT_STR_EQ(tmem__corpus_default(), raw);
    unlink(raw);
    const char *d = tmem__corpus_default(); /* env file gone: fall back */
    ASSERT_TRUE(d == NULL || strstr(d, "pages-a.bin.zst") != NULL);
}

TEST(corpus_project_file)
{
    size_t n;
    unsigned char *p = bt_corpus(&n);
    ASSERT_EQ(n, 8192);
    size_t zero = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < PG && p[i * PG + j] == 0)
            j++;
        zero += j == PG;
    }
    fprintf(stderr, "  %zu pages, %zu zero\n", n, zero);
    ASSERT_GT(zero, n / 6);
    tmem__corpus_free(p, n);
}

/* The private heap: libtmem's memory inside a tswap tenant (tmem run). */
TEST(mem_private_heap_blocks)
{
    tmem__mem_use_private();
    uint64_t before = tmem__ph_mapped();
    void *small[200];
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)(i * 97 % 40000) + 1;
        small[i] = tmem__malloc(n);
        ASSERT_TRUE(small[i] != NULL);
        ASSERT_EQ((uintptr_t)small[i] % 16, 0);
        ASSERT_TRUE(tmem__ph_owns(small[i]));
        ASSERT_GE(tmem__ph_usable(small[i]), n);
        ASSERT_GE(tmem__held(small[i]), n + 16);
        memset(small[i], i, n);
    }
    ASSERT_GT(tmem__ph_mapped(), before);
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)(i * 97 % 40000) + 1;
        unsigned char *p = small[i];
        ASSERT_EQ(p[0], (unsigned char)i);
        ASSERT_EQ(p[n - 1], (unsigned char)i);
    }
    /* realloc keeps the bytes; aligned blocks are aligned and freeable */
    void *r = tmem__realloc(small[5], 100000);
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(((unsigned char *)r)[0], 5);
    small[5] = r;
    void *a = tmem__aligned_alloc(16384, 16384);
    ASSERT_EQ((uintptr_t)a % 16384, 0);
    ASSERT_GE(tmem__ph_usable(a), 16384u);
    memset(a, 1, 16384);
    tmem__free(a);
    void *z = tmem__calloc(1000, 8);
    for (int i = 0; i < 8000; i++)
        ASSERT_EQ(((unsigned char *)z)[i], 0);
    tmem__free(z);
    for (int i = 0; i < 200; i++)
        tmem__free(small[i]);
    /* freed blocks come back */
    uint64_t mapped = tmem__ph_mapped();
    for (int round = 0; round < 50; round++)
        for (int i = 0; i < 200; i++)
            tmem__free(tmem__malloc((size_t)(i * 97 % 4000) + 1));
    ASSERT_LE(tmem__ph_mapped(), mapped + (256u << 10) * 4);
}

static void *ph_churn(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    void *keep[64] = {0};
    for (int i = 0; i < 20000; i++) {
        int k = (int)((i * 31 + id) % 64);
        tmem__free(keep[k]);
        size_t n = (size_t)((i * 13 + id * 7) % 3000) + 1;
        keep[k] = tmem__malloc(n);
        if (!keep[k])
            return (void *)1;
        memset(keep[k], (int)id, n);
        if (((unsigned char *)keep[k])[n - 1] != (unsigned char)id)
            return (void *)1;
    }
    for (int k = 0; k < 64; k++)
        tmem__free(keep[k]);
    return NULL;
}

TEST(mem_private_heap_threads)
{
    tmem__mem_use_private();
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, ph_churn, (void *)i), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        ASSERT_EQ(pthread_join(t[i], &r), 0);
        ASSERT_TRUE(r == NULL);
    }
}

/* The whole store on the private heap: what tmem run's embedded store
 * does. */
TEST(mem_private_heap_store)
{
    tmem__mem_use_private();
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int p = tmem_pool_new(c, NULL, PERS, NULL);
    for (uint32_t i = 0; i < 500; i++)
        ASSERT_EQ(tu_put(c, p, 1, i, i * 3), 1);
    for (uint32_t i = 0; i < 500; i += 7)
        tu_expect_page(c, p, 1, i, i * 3);
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_GT(g.meta_bytes, 0);
    tmem_store_destroy(s);
}
