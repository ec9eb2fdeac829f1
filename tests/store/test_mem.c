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
