/*
 * Helpers shared by the blob-layer tests: page generators with a known
 * compressibility, the project corpus, and a monotonic clock.
 */
#ifndef TMEM_TEST_BLOB_UTIL_H
#define TMEM_TEST_BLOB_UTIL_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../runner.h"
#include "common/corpus.h"
#include "store/arena.h"
#include "store_testutil.h" /* tu_rand */

#define PG 4096

/* The name blob-layer tests store pages under, in the common arena. */
static const tmem_arena_name bt_nm = {0};
#define BT_COMMON 0, &bt_nm

/* Text-like page, different for each seed, compresses ~3-5x. */
static inline void bt_text(void *page, uint64_t seed)
{
    static const char *w[] = {"alpha ", "beta ", "gamma ", "delta ",
                              "pages ", "tmem ", "store ", "zram "};
    char *p = page;
    uint64_t s = seed;
    size_t n = 0;
    n += (size_t)snprintf(p, PG, "seed=%llu ", (unsigned long long)seed);
    while (n < PG) {
        const char *x = w[tu_rand(&s) % 8];
        size_t l = strlen(x);
        if (n + l > PG)
            l = PG - n;
        memcpy(p + n, x, l);
        n += l;
    }
}

/* Random page: does not compress. */
static inline void bt_random(void *page, uint64_t seed)
{
    uint64_t *q = page, s = seed;
    for (int i = 0; i < PG / 8; i++)
        q[i] = tu_rand(&s);
}

static inline double bt_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Loads the project corpus or skips the test. */
static inline unsigned char *bt_corpus(size_t *n)
{
    const char *path = tmem__corpus_default();
    void *pages = NULL;
    if (!path)
        TEST_SKIP("corpus not found");
    ASSERT_EQ(tmem__corpus_load(path, &pages, n), 0);
    return pages;
}

#define BT_SANITIZED TEST_SANITIZED

#endif
