/*
 * Codec tests: round trips, the raw threshold, corrupt input, per-thread
 * zstd contexts (created lazily, freed at thread exit, -ENOMEM when they
 * cannot be allocated).
 */
#include <errno.h>
#include <pthread.h>

#include "blob_testutil.h"
#include "common/mem.h"
#include "store/codec.h"

TEST(codec_roundtrip)
{
    unsigned char pg[PG], out[PG], c[TMEM_CODEC_MAX_OUT];
    bt_text(pg, 3);
    for (int k = TMEM_COMPRESS_LZ4; k <= TMEM_COMPRESS_ZSTD; k++) {
        int n = tmem__codec_compress((tmem_compress)k, pg, c);
        ASSERT_GT(n, 0);
        ASSERT_LT(n, PG / 2);
        memset(out, 0, PG);
        ASSERT_EQ(tmem__codec_decompress((tmem_compress)k, c, (size_t)n, out),
                  0);
        ASSERT_MEM_EQ(out, pg, PG);
    }
    ASSERT_EQ(tmem__codec_compress(TMEM_COMPRESS_NONE, pg, c), 0);
    ASSERT_EQ(tmem__codec_decompress(TMEM_COMPRESS_NONE, pg, PG, out), 0);
    ASSERT_MEM_EQ(out, pg, PG);
}

TEST(codec_incompressible_returns_zero)
{
    unsigned char pg[PG], c[TMEM_CODEC_MAX_OUT];
    bt_random(pg, 1);
    ASSERT_EQ(tmem__codec_compress(TMEM_COMPRESS_LZ4, pg, c), 0);
    ASSERT_EQ(tmem__codec_compress(TMEM_COMPRESS_ZSTD, pg, c), 0);
    /* half random, half zero: ~2 KiB compressed, still under 3/4 */
    memset(pg + PG / 2, 0, PG / 2);
    ASSERT_GT(tmem__codec_compress(TMEM_COMPRESS_LZ4, pg, c), 0);
}

TEST(codec_corrupt_input_is_eio)
{
    unsigned char pg[PG], out[PG], c[PG];
    bt_text(pg, 9);
    for (int k = TMEM_COMPRESS_LZ4; k <= TMEM_COMPRESS_ZSTD; k++) {
        int n = tmem__codec_compress((tmem_compress)k, pg, c);
        ASSERT_GT(n, 10);
        /* truncated */
        ASSERT_EQ(
            tmem__codec_decompress((tmem_compress)k, c, (size_t)n / 2, out),
            -EIO);
        /* garbage */
        bt_random(c, 5);
        ASSERT_EQ(tmem__codec_decompress((tmem_compress)k, c, (size_t)n, out),
                  -EIO);
    }
    ASSERT_EQ(tmem__codec_decompress(TMEM_COMPRESS_NONE, pg, 100, out), -EIO);
    ASSERT_EQ(tmem__codec_decompress((tmem_compress)7, pg, 100, out), -EINVAL);
}

static void *zstd_once(void *arg)
{
    unsigned char pg[PG], out[PG], c[TMEM_CODEC_MAX_OUT];
    bt_text(pg, (uint64_t)(uintptr_t)arg);
    int n = tmem__codec_compress(TMEM_COMPRESS_ZSTD, pg, c);
    if (n <= 0 ||
        tmem__codec_decompress(TMEM_COMPRESS_ZSTD, c, (size_t)n, out) != 0 ||
        memcmp(pg, out, PG) != 0)
        return (void *)1;
    return NULL;
}

/* Contexts die with their threads (LeakSanitizer checks at exit). */
TEST(codec_zstd_per_thread_contexts)
{
    for (int i = 0; i < 16; i++) {
        pthread_t t;
        void *r;
        ASSERT_EQ(pthread_create(&t, NULL, zstd_once, (void *)(uintptr_t)i), 0);
        ASSERT_EQ(pthread_join(t, &r), 0);
        ASSERT_TRUE(r == NULL);
    }
}

static void *zstd_oom(void *arg)
{
    unsigned char pg[PG], out[PG], c[TMEM_CODEC_MAX_OUT];
    (void)arg;
    bt_text(pg, 1);
    tmem__fault_arm(1, 1);
    int a = tmem__codec_compress(TMEM_COMPRESS_ZSTD, pg, c);
    int b = tmem__codec_decompress(TMEM_COMPRESS_ZSTD, c, 10, out);
    tmem__fault_arm(0, 0);
    if (a != TMEM_ENOMEM || b != TMEM_ENOMEM)
        return (void *)1;
    return zstd_once((void *)1);
}

TEST(codec_zstd_context_oom)
{
    pthread_t t;
    void *r;
    ASSERT_EQ(pthread_create(&t, NULL, zstd_oom, NULL), 0);
    ASSERT_EQ(pthread_join(t, &r), 0);
    ASSERT_TRUE(r == NULL);
}
