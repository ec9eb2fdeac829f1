/*
 * Helpers for the store tests: page contents made from a seed (zero,
 * filled, text-like, random, duplicate families) and small wrappers.
 */
#ifndef TMEM_TEST_STORE_UTIL_H
#define TMEM_TEST_STORE_UTIL_H

#include <stdint.h>
#include <string.h>

#include <tmem/store.h>

#include "../runner.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define EPH TMEM_POOL_FLAGS(0)
#define SHARED TMEM_POOL_FLAGS(TMEM_POOL_SHARED)

static inline uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Fills a page from seed: seed % 5 picks the kind. */
static inline void tu_page(void *page, uint64_t seed)
{
    uint8_t *p = page;
    uint64_t r = seed * 2654435761u + 1;
    switch (seed % 5) {
    case 0:
        memset(p, 0, TMEM_PAGE_SIZE);
        break;
    case 1:
        memset(p, (int)(seed & 0xff) | 1, TMEM_PAGE_SIZE);
        break;
    case 2: /* text-like: compresses well */
        for (int i = 0; i < TMEM_PAGE_SIZE; i++)
            p[i] = "tmem transcendent memory "[(i + seed) % 25] ^
                   (uint8_t)((i / 512) == (int)(seed % 8));
        memcpy(p, &seed, sizeof seed);
        break;
    case 3: /* random: compresses badly */
        for (int i = 0; i < TMEM_PAGE_SIZE; i += 8) {
            uint64_t v = tu_rand(&r);
            memcpy(p + i, &v, 8);
        }
        break;
    default: /* half random, half zero */
        memset(p, 0, TMEM_PAGE_SIZE);
        for (int i = 0; i < TMEM_PAGE_SIZE / 2; i += 8) {
            uint64_t v = tu_rand(&r);
            memcpy(p + i, &v, 8);
        }
    }
}

static inline tmem_oid tu_oid(uint64_t a)
{
    tmem_oid o = {{a, a * 7 + 1, ~a}};
    return o;
}

static inline void tu_expect_page(tmem_client *c, int pool, uint64_t obj,
                                  uint32_t idx, uint64_t seed)
{
    uint8_t want[TMEM_PAGE_SIZE], got[TMEM_PAGE_SIZE];
    tmem_oid o = tu_oid(obj);
    tu_page(want, seed);
    memset(got, 0x5a, sizeof got);
    ASSERT_EQ(tmem_page_get(c, pool, &o, idx, got), 1);
    ASSERT_MEM_EQ(got, want, TMEM_PAGE_SIZE);
}

/* A store with this budget (0: none) and default codec for its clients. */
static inline tmem_store *tu_store(uint64_t budget, tmem_compress codec)
{
    tmem_store_config cfg;
    tmem_store *s = NULL;
    tmem_store_config_init(&cfg);
    cfg.budget_bytes = budget;
    cfg.compress = codec;
    ASSERT_EQ(tmem_store_create(&cfg, &s), 0);
    return s;
}

static inline tmem_client *tu_client(tmem_store *s)
{
    tmem_client *c = NULL;
    ASSERT_GE(tmem_client_create(s, &c), 0);
    return c;
}

static inline int tu_put(tmem_client *c, int pool, uint64_t obj,
                         uint32_t idx, uint64_t seed)
{
    uint8_t page[TMEM_PAGE_SIZE];
    tmem_oid o = tu_oid(obj);
    tu_page(page, seed);
    return tmem_page_put(c, pool, &o, idx, page);
}

#endif
