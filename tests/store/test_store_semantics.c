/*
 * Unit tests of the store's semantics (SPEC "The tmem ABI"): pool flags,
 * persistent vs ephemeral, exclusive gets, duplicate puts, shared pools and
 * authorisation, freeze, cap, flushes, and every refusal's code.
 */
#include "store_testutil.h"

TEST(store_create_destroy_null)
{
    tmem_store_destroy(NULL);
    tmem_client_destroy(NULL);
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *a = tu_client(s), *b = tu_client(s);
    ASSERT_EQ(tmem_client_id(a), 0);
    ASSERT_EQ(tmem_client_id(b), 1);
    tmem_client_destroy(a);
    tmem_client *c = tu_client(s);
    ASSERT_EQ(tmem_client_id(c), 2); /* ids never reused */
    int ids[4];
    ASSERT_EQ(tmem_store_list_clients(s, ids, 4), 2);
    ASSERT_EQ(ids[0], 1);
    ASSERT_EQ(ids[1], 2);
    tmem_store_destroy(s); /* destroys b and c too */
}

TEST(store_config_refused)
{
    tmem_store_config cfg;
    tmem_store *s = NULL;
    tmem_store_config_init(&cfg);
    cfg.compress = (tmem_compress)7;
    ASSERT_EQ(tmem_store_create(&cfg, &s), TMEM_EINVAL);
    tmem_compress cc;
    ASSERT_EQ(tmem_compress_parse("zstd", &cc), 0);
    ASSERT_EQ(cc, TMEM_COMPRESS_ZSTD);
    ASSERT_EQ(tmem_compress_parse("gzip", &cc), TMEM_EINVAL);
    ASSERT_STR_EQ(tmem_compress_name(TMEM_COMPRESS_LZ4), "lz4");
}

TEST(pool_flags_refused)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    uint64_t u[2] = {1, 2};
    ASSERT_EQ(tmem_pool_new(c, u, TMEM_POOL_FLAGS(TMEM_POOL_SHARED |
                                                  TMEM_POOL_PERSIST), NULL),
              TMEM_EPERM);
    ASSERT_EQ(tmem_pool_new(c, u, PERS | 0x100, NULL), TMEM_EPERM);
    ASSERT_EQ(tmem_pool_new(c, u, PERS | (1u << TMEM_POOL_PAGESIZE_SHIFT),
                            NULL), TMEM_EPERM);
    ASSERT_EQ(tmem_pool_new(c, u, TMEM_POOL_PERSIST, NULL), TMEM_EPERM);
    ASSERT_EQ(tmem_pool_new(c, u, TMEM_POOL_PERSIST | (2u << 24), NULL),
              TMEM_EPERM);
    uint32_t got = 0;
    ASSERT_EQ(tmem_pool_new(c, NULL, PERS, &got), 0);
    ASSERT_EQ(got, PERS);
    tmem_store_destroy(s);
}

TEST(pool_limit_and_bad_ids)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    for (int i = 0; i < TMEM_MAX_POOLS; i++)
        ASSERT_EQ(tmem_pool_new(c, NULL, i % 2 ? PERS : EPH, NULL), i);
    ASSERT_EQ(tmem_pool_new(c, NULL, PERS, NULL), TMEM_ENOSPC);
    ASSERT_EQ(tmem_pool_destroy(c, 5), 0);
    ASSERT_EQ(tmem_pool_destroy(c, 5), TMEM_ENODEV);
    ASSERT_EQ(tmem_pool_new(c, NULL, PERS, NULL), 5);
    uint8_t page[TMEM_PAGE_SIZE] = {0};
    tmem_oid o = tu_oid(1);
    ASSERT_EQ(tmem_page_put(c, -1, &o, 0, page), TMEM_ENODEV);
    ASSERT_EQ(tmem_page_put(c, 16, &o, 0, page), TMEM_ENODEV);
    ASSERT_EQ(tmem_page_get(c, 99, &o, 0, page), TMEM_ENODEV);
    ASSERT_EQ(tmem_page_flush(c, -7, &o, 0), TMEM_ENODEV);
    ASSERT_EQ(tmem_object_flush(c, 16, &o), TMEM_ENODEV);
    ASSERT_EQ(tmem_pool_destroy(c, 16), TMEM_ENODEV);
    ASSERT_EQ(tmem_page_put(c, 1, NULL, 0, page), TMEM_EINVAL);
    ASSERT_EQ(tmem_page_put(c, 1, &o, 0, NULL), TMEM_EINVAL);
    tmem_store_destroy(s);
}

TEST(persistent_get_not_exclusive)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int p = tmem_pool_new(c, NULL, PERS, NULL);
    for (uint64_t seed = 0; seed < 10; seed++)
        ASSERT_EQ(tu_put(c, p, 3, (uint32_t)seed, seed), 1);
    for (int round = 0; round < 2; round++)
        for (uint64_t seed = 0; seed < 10; seed++)
            tu_expect_page(c, p, 3, (uint32_t)seed, seed);
    uint8_t page[TMEM_PAGE_SIZE];
    tmem_oid o = tu_oid(3);
    ASSERT_EQ(tmem_page_get(c, p, &o, 10, page), 0);
    tmem_oid other = tu_oid(4);
    ASSERT_EQ(tmem_page_get(c, p, &other, 0, page), 0);
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_U64_EQ(g.pers_pages, 10);
    ASSERT_U64_EQ(g.orig_bytes, 10 * TMEM_PAGE_SIZE);
    ASSERT_U64_EQ(g.zero_pages, 4); /* seeds 0,5 zero; 1,6 filled */
    tmem_store_destroy(s);
}

TEST(private_ephemeral_get_exclusive)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int p = tmem_pool_new(c, NULL, EPH, NULL);
    ASSERT_EQ(tu_put(c, p, 1, 0, 2), 1);
    tu_expect_page(c, p, 1, 0, 2);
    uint8_t page[TMEM_PAGE_SIZE];
    tmem_oid o = tu_oid(1);
    ASSERT_EQ(tmem_page_get(c, p, &o, 0, page), 0);
    tmem_client_stats cs;
    ASSERT_EQ(tmem_store_client_stats(s, tmem_client_id(c), &cs), 0);
    ASSERT_U64_EQ(cs.eph_pages, 0);
    ASSERT_U64_EQ(cs.gets_good_eph, 1);
    ASSERT_U64_EQ(cs.pools[0].objects, 0);
    tmem_store_destroy(s);
}

TEST(duplicate_put_replaces)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int p = tmem_pool_new(c, NULL, PERS, NULL);
    ASSERT_EQ(tu_put(c, p, 1, 7, 2), 1);
    ASSERT_EQ(tu_put(c, p, 1, 7, 3), 1);
    tu_expect_page(c, p, 1, 7, 3);
    tmem_client_stats cs;
    tmem_store_client_stats(s, tmem_client_id(c), &cs);
    ASSERT_U64_EQ(cs.pools[0].dup_puts_replaced, 1);
    ASSERT_U64_EQ(cs.pools[0].pages, 1);
    ASSERT_U64_EQ(cs.pers_pages, 1);
    tmem_store_destroy(s);
}

TEST(frozen_put_fails_and_flushes_old)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int id = tmem_client_id(c);
    int p = tmem_pool_new(c, NULL, PERS, NULL);
    ASSERT_EQ(tu_put(c, p, 1, 0, 2), 1);
    ASSERT_EQ(tu_put(c, p, 1, 1, 3), 1);
    ASSERT_EQ(tmem_store_freeze(s, id, true), 0);
    ASSERT_EQ(tu_put(c, p, 1, 0, 4), TMEM_EFROZEN);
    uint8_t page[TMEM_PAGE_SIZE];
    tmem_oid o = tu_oid(1);
    ASSERT_EQ(tmem_page_get(c, p, &o, 0, page), 0); /* old data gone */
    tu_expect_page(c, p, 1, 1, 3);                   /* gets still work */
    tmem_client_stats cs;
    tmem_store_client_stats(s, id, &cs);
    ASSERT_TRUE(cs.frozen);
    ASSERT_U64_EQ(cs.puts_frozen, 1);
    ASSERT_U64_EQ(cs.pools[0].dup_puts_flushed, 1);
    ASSERT_EQ(tmem_store_freeze(s, TMEM_ALL_CLIENTS, false), 0);
    ASSERT_EQ(tu_put(c, p, 1, 0, 4), 1);
    ASSERT_EQ(tmem_store_freeze(s, 999, true), TMEM_ENODEV);
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_U64_EQ(g.reject_frozen, 1);
    tmem_store_destroy(s);
}

TEST(flush_page_and_object)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int p = tmem_pool_new(c, NULL, PERS, NULL);
    for (uint32_t i = 0; i < 20; i++)
        ASSERT_EQ(tu_put(c, p, 1, i, i + 2), 1);
    ASSERT_EQ(tu_put(c, p, 2, 0, 9), 1);
    tmem_oid o1 = tu_oid(1), o2 = tu_oid(2);
    ASSERT_EQ(tmem_page_flush(c, p, &o1, 3), 1);
    ASSERT_EQ(tmem_page_flush(c, p, &o1, 3), 0);
    ASSERT_EQ(tmem_object_flush(c, p, &o1), 19);
    ASSERT_EQ(tmem_object_flush(c, p, &o1), 0);
    tu_expect_page(c, p, 2, 0, 9);
    ASSERT_EQ(tmem_page_flush(c, p, &o2, 0), 1);
    tmem_client_stats cs;
    tmem_store_client_stats(s, tmem_client_id(c), &cs);
    ASSERT_U64_EQ(cs.pools[0].pages, 0);
    ASSERT_U64_EQ(cs.pools[0].objects, 0);
    ASSERT_U64_EQ(cs.pools[0].objects_max, 2);
    ASSERT_U64_EQ(cs.pools[0].pages_max, 21);
    ASSERT_U64_EQ(cs.pools[0].flushes, 3);
    ASSERT_U64_EQ(cs.pools[0].flushes_found, 2);
    ASSERT_U64_EQ(cs.pools[0].flush_objs, 2);
    ASSERT_U64_EQ(cs.pools[0].flush_objs_found, 1);
    ASSERT_U64_EQ(cs.pers_pages, 0);
    ASSERT_U64_EQ(cs.data_bytes, 0);
    tmem_store_destroy(s);
}

TEST(big_object_many_pages)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int p = tmem_pool_new(c, NULL, PERS, NULL);
    for (uint32_t i = 0; i < 5000; i++)
        ASSERT_EQ(tu_put(c, p, 1, i * 7919u, i), 1);
    for (uint32_t i = 0; i < 5000; i += 3) {
        tmem_oid o = tu_oid(1);
        ASSERT_EQ(tmem_page_flush(c, p, &o, i * 7919u), 1);
    }
    for (uint32_t i = 0; i < 5000; i++) {
        if (i % 3 == 0)
            continue;
        tu_expect_page(c, p, 1, i * 7919u, i);
    }
    tmem_store_destroy(s);
}

TEST(shared_pool_auth_and_leave)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *a = tu_client(s), *b = tu_client(s), *x = tu_client(s);
    uint64_t u[2] = {0x1111, 0x2222};
    ASSERT_EQ(tmem_store_auth(s, tmem_client_id(a), u, true), 0);
    ASSERT_EQ(tmem_store_auth(s, tmem_client_id(b), u, true), 0);
    ASSERT_EQ(tmem_store_auth(s, 77, u, true), TMEM_ENODEV);
    ASSERT_EQ(tmem_store_auth(s, 0, NULL, true), TMEM_EINVAL);
    uint32_t fa = 0, fb = 0, fx = 0;
    int pa = tmem_pool_new(a, u, SHARED, &fa);
    int pb = tmem_pool_new(b, NULL, EPH, NULL);
    pb = tmem_pool_new(b, u, SHARED, &fb); /* slot 1 in b */
    int px = tmem_pool_new(x, u, SHARED, &fx);
    ASSERT_EQ(fa, SHARED);
    ASSERT_EQ(fb, SHARED);
    ASSERT_EQ(fx, EPH); /* not authorised: private, and told so */
    ASSERT_EQ(pb, 1);
    ASSERT_EQ(tu_put(a, pa, 1, 0, 2), 1);
    ASSERT_EQ(tu_put(b, pb, 2, 0, 3), 1);
    ASSERT_EQ(tu_put(a, pa, 3, 0, 2), 1); /* object 3: A's page ... */
    ASSERT_EQ(tu_put(b, pb, 3, 1, 4), 1); /* ... but B put last */
    /* shared gets are not exclusive, and B sees A's page */
    tu_expect_page(b, pb, 1, 0, 2);
    tu_expect_page(b, pb, 1, 0, 2);
    tu_expect_page(a, pa, 2, 0, 3);
    uint8_t page[TMEM_PAGE_SIZE];
    tmem_oid o1 = tu_oid(1);
    ASSERT_EQ(tmem_page_get(x, px, &o1, 0, page), 0); /* X is elsewhere */
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_EQ(g.shared_pools, 1);
    /* A leaves: what A put last goes, B's object stays, pool lives. */
    ASSERT_EQ(tmem_pool_destroy(a, pa), 0);
    ASSERT_EQ(tmem_page_get(b, pb, &o1, 0, page), 0);
    tu_expect_page(b, pb, 2, 0, 3);
    tu_expect_page(b, pb, 3, 1, 4); /* B's object stays, with B's page */
    tmem_oid o3 = tu_oid(3);
    ASSERT_EQ(tmem_page_get(b, pb, &o3, 0, page), 0); /* A's page went */
    tmem_client_stats cs;
    tmem_store_client_stats(s, tmem_client_id(b), &cs);
    ASSERT_EQ(cs.pools[1].sharers, 1);
    /* A de-authorised cannot rejoin */
    ASSERT_EQ(tmem_store_auth(s, tmem_client_id(a), u, false), 0);
    ASSERT_EQ(tmem_pool_new(a, u, SHARED, &fa), 0);
    ASSERT_EQ(fa, EPH);
    tmem_client_destroy(b);
    tmem_store_stats(s, &g);
    ASSERT_EQ(g.shared_pools, 0);
    ASSERT_U64_EQ(g.eph_pages, 0);
    tmem_store_destroy(s);
}

TEST(cap_persistent_refused_ephemeral_evicts_own)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int id = tmem_client_id(c);
    int pp = tmem_pool_new(c, NULL, PERS, NULL);
    int pe = tmem_pool_new(c, NULL, EPH, NULL);
    ASSERT_EQ(tmem_store_set_cap(s, id, 4), 0);
    ASSERT_EQ(tmem_store_set_cap(s, 999, 4), TMEM_ENODEV);
    for (uint32_t i = 0; i < 2; i++)
        ASSERT_EQ(tu_put(c, pp, 1, i, i + 2), 1);
    for (uint32_t i = 0; i < 5; i++)
        ASSERT_EQ(tu_put(c, pe, 1, i, i + 2), 1);
    tmem_client_stats cs;
    tmem_store_client_stats(s, id, &cs);
    ASSERT_U64_EQ(cs.pers_pages + cs.eph_pages, 4);
    ASSERT_U64_EQ(cs.eph_pages, 2);
    /* the oldest ephemeral pages went: 3 and 4 remain */
    uint8_t page[TMEM_PAGE_SIZE];
    tmem_oid o = tu_oid(1);
    ASSERT_EQ(tmem_page_get(c, pe, &o, 0, page), 0);
    tu_expect_page(c, pe, 1, 4, 6);
    /* persistent puts push the own ephemeral pages out, then fail */
    ASSERT_EQ(tu_put(c, pp, 1, 2, 4), 1);
    ASSERT_EQ(tu_put(c, pp, 1, 3, 4), 1);
    ASSERT_EQ(tu_put(c, pp, 1, 4, 4), TMEM_ENOSPC);
    tu_expect_page(c, pp, 1, 0, 2); /* nothing persistent lost */
    tmem_store_client_stats(s, id, &cs);
    ASSERT_U64_EQ(cs.eph_pages, 0);
    ASSERT_U64_EQ(cs.pers_pages, 4);
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_GE(g.reject_cap, 1);
    tmem_store_destroy(s);
}

TEST(budget_evicts_oldest_never_persistent)
{
    /* budget fits a few hundred random pages */
    tmem_store *s = tu_store(1u << 20, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int pp = tmem_pool_new(c, NULL, PERS, NULL);
    int pe = tmem_pool_new(c, NULL, EPH, NULL);
    int stored = 0;
    for (uint32_t i = 0; i < 100; i++)
        stored += tu_put(c, pp, 1, i, 5 * i + 3) == 1; /* random pages */
    ASSERT_EQ(stored, 100);
    for (uint32_t i = 0; i < 400; i++)
        ASSERT_EQ(tu_put(c, pe, 2, i, 5 * i + 3), 1);
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_LE(g.used_bytes, 1u << 20);
    ASSERT_GT(g.evictions, 0);
    ASSERT_U64_EQ(g.pers_pages, 100);
    /* the newest ephemeral page is there, the oldest is not */
    tu_expect_page(c, pe, 2, 399, 5 * 399 + 3);
    uint8_t page[TMEM_PAGE_SIZE];
    tmem_oid o = tu_oid(2);
    ASSERT_EQ(tmem_page_get(c, pe, &o, 0, page), 0);
    for (uint32_t i = 0; i < 100; i++)
        tu_expect_page(c, pp, 1, i, 5 * i + 3);
    /* persistent puts past the budget fail once nothing is evictable */
    int r = 1;
    for (uint32_t i = 100; i < 1000 && r == 1; i++)
        r = tu_put(c, pp, 1, i, 5 * i + 3);
    ASSERT_EQ(r, TMEM_ENOSPC);
    tmem_store_stats(s, &g);
    ASSERT_U64_EQ(g.eph_pages, 0);
    ASSERT_GE(g.reject_budget, 1);
    for (uint32_t i = 0; i < 100; i++)
        tu_expect_page(c, pp, 1, i, 5 * i + 3);
    tmem_store_destroy(s);
}

/* The victim is the client furthest over its weighted share. */
TEST(eviction_fairness_by_weight)
{
    tmem_store *s = tu_store(2u << 20, TMEM_COMPRESS_LZ4);
    tmem_client *a = tu_client(s), *b = tu_client(s);
    int pa = tmem_pool_new(a, NULL, EPH, NULL);
    int pb = tmem_pool_new(b, NULL, EPH, NULL);
    ASSERT_EQ(tmem_store_set_weight(s, tmem_client_id(b), 3), 0);
    ASSERT_EQ(tmem_store_set_weight(s, 42, 3), TMEM_ENODEV);
    /* A fills the store alone, then both put at the same rate */
    for (uint32_t i = 0; i < 1000; i++)
        ASSERT_EQ(tu_put(a, pa, 1, i, 5 * i + 3), 1);
    for (uint32_t i = 0; i < 3000; i++) {
        ASSERT_EQ(tu_put(a, pa, 1, 1000 + i, 5 * i + 3), 1);
        ASSERT_EQ(tu_put(b, pb, 1, i, 5 * i + 3), 1);
    }
    tmem_client_stats ca, cb;
    tmem_store_client_stats(s, tmem_client_id(a), &ca);
    tmem_store_client_stats(s, tmem_client_id(b), &cb);
    /* B (weight 3) ends with about 3x A's pages */
    ASSERT_GT(cb.eph_pages, 2 * ca.eph_pages);
    ASSERT_LT(cb.eph_pages, 4 * ca.eph_pages);
    ASSERT_GT(ca.evicted, cb.evicted);
    tmem_store_destroy(s);
}

/* Ephemeral pages dedup across clients (the common arena), persistent
 * pages within their tenant (its private arena: docs/layout.md), and zero
 * pages store nothing. */
TEST(dedup_across_clients_and_zero_pages)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *a = tu_client(s), *b = tu_client(s), *c = tu_client(s);
    int pa = tmem_pool_new(a, NULL, PERS, NULL);
    int pb = tmem_pool_new(b, NULL, EPH, NULL);
    int pc = tmem_pool_new(c, NULL, EPH, NULL);
    ASSERT_EQ(tmem_store_set_compress(s, tmem_client_id(b),
                                      TMEM_COMPRESS_ZSTD), 0);
    ASSERT_EQ(tmem_store_set_compress(s, tmem_client_id(b),
                                      (tmem_compress)9), TMEM_EINVAL);
    for (uint32_t i = 0; i < 50; i++) {
        ASSERT_EQ(tu_put(a, pa, 1, i, 2), 1); /* same text page */
        ASSERT_EQ(tu_put(b, pb, 1, i, 2), 1);
        ASSERT_EQ(tu_put(c, pc, 1, i, 2), 1);
        ASSERT_EQ(tu_put(a, pa, 2, i, 0), 1); /* zero page */
    }
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    /* a's own, b's (zstd) and c's (lz4): dedup is of stored bytes */
    ASSERT_U64_EQ(g.unique_blobs, 3);
    ASSERT_U64_EQ(g.dedup_pages, 147);
    ASSERT_U64_EQ(g.zero_pages, 50);
    ASSERT_LT(g.data_bytes, 2 * TMEM_PAGE_SIZE);
    tu_expect_page(b, pb, 1, 7, 2);
    tu_expect_page(c, pc, 1, 7, 2);
    tu_expect_page(a, pa, 1, 7, 2);
    tu_expect_page(a, pa, 2, 7, 0);
    tmem_store_destroy(s);
}

TEST(codecs_round_trip)
{
    static const tmem_compress cc[] = {TMEM_COMPRESS_NONE, TMEM_COMPRESS_LZ4,
                                       TMEM_COMPRESS_ZSTD};
    for (int k = 0; k < 3; k++) {
        tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
        tmem_client *c = tu_client(s);
        ASSERT_EQ(tmem_store_set_compress(s, tmem_client_id(c), cc[k]), 0);
        int p = tmem_pool_new(c, NULL, PERS, NULL);
        for (uint32_t i = 0; i < 40; i++)
            ASSERT_EQ(tu_put(c, p, 1, i, i * 13 + k), 1);
        for (uint32_t i = 0; i < 40; i++)
            tu_expect_page(c, p, 1, i, i * 13 + k);
        tmem_store_destroy(s);
    }
}

TEST(kill_client_by_admin)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *a = tu_client(s), *b = tu_client(s);
    int pa = tmem_pool_new(a, NULL, PERS, NULL);
    int pb = tmem_pool_new(b, NULL, PERS, NULL);
    ASSERT_EQ(tu_put(a, pa, 1, 0, 2), 1);
    ASSERT_EQ(tu_put(b, pb, 1, 0, 2), 1);
    ASSERT_EQ(tmem_store_client_kill(s, tmem_client_id(a)), 0);
    ASSERT_EQ(tmem_store_client_kill(s, 55), TMEM_ENODEV);
    uint8_t page[TMEM_PAGE_SIZE];
    tmem_oid o = tu_oid(1);
    ASSERT_EQ(tmem_page_get(a, pa, &o, 0, page), TMEM_ENODEV);
    ASSERT_EQ(tmem_pool_new(a, NULL, PERS, NULL), TMEM_ENODEV);
    tu_expect_page(b, pb, 1, 0, 2); /* the other tenant is untouched */
    tmem_client_stats cs;
    ASSERT_EQ(tmem_store_client_stats(s, tmem_client_id(a), &cs), 0);
    ASSERT_TRUE(cs.dead);
    ASSERT_EQ(cs.npools, 0);
    tmem_client_destroy(a);
    ASSERT_EQ(tmem_store_client_stats(s, 0, &cs), TMEM_ENODEV);
    tmem_store_destroy(s);
}

TEST(flush_mib_and_freeable)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int pe = tmem_pool_new(c, NULL, EPH, NULL);
    int pp = tmem_pool_new(c, NULL, PERS, NULL);
    for (uint32_t i = 0; i < 1024; i++)
        ASSERT_EQ(tu_put(c, pe, 1, i, 5 * i + 3), 1); /* 4 MiB random */
    ASSERT_EQ(tu_put(c, pp, 1, 0, 3), 1);
    uint64_t f = tmem_store_freeable_mib(s);
    ASSERT_GE(f, 3);
    ASSERT_LE(f, 5);
    int64_t n = tmem_store_flush_mib(s, 1);
    ASSERT_GE(n, 200);
    ASSERT_LE(n, 300);
    ASSERT_EQ(tmem_store_flush_mib(s, 1000), 1024 - n);
    ASSERT_EQ(tmem_store_freeable_mib(s), 0);
    tu_expect_page(c, pp, 1, 0, 3);
    tmem_store_destroy(s);
}

TEST(used_bytes_returns_when_emptied)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_global_stats g0, g;
    tmem_client *c = tu_client(s);
    int p = tmem_pool_new(c, NULL, PERS, NULL);
    tmem_store_stats(s, &g0);
    for (uint32_t i = 0; i < 2000; i++)
        ASSERT_EQ(tu_put(c, p, i % 17, i, i), 1);
    tmem_store_stats(s, &g);
    ASSERT_GT(g.used_bytes, g0.used_bytes + 2000 * 100);
    for (uint64_t o = 0; o < 17; o++) {
        tmem_oid oid = tu_oid(o);
        ASSERT_GE(tmem_object_flush(c, p, &oid), 1);
    }
    tmem_store_stats(s, &g);
    ASSERT_U64_EQ(g.pers_pages, 0);
    ASSERT_U64_EQ(g.data_bytes, 0);
    /* metadata falls back to within a few KiB of the empty store */
    ASSERT_LE(g.used_bytes, g0.used_bytes + 64 * 1024);
    tmem_store_destroy(s);
}

TEST(stats_json_snprintf_contract)
{
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(s);
    int p = tmem_pool_new(c, NULL, PERS, NULL);
    ASSERT_EQ(tu_put(c, p, 1, 0, 2), 1);
    int need = tmem_store_stats_json(s, NULL, 0);
    ASSERT_GT(need, 100);
    char small[16];
    ASSERT_EQ(tmem_store_stats_json(s, small, sizeof small), need);
    ASSERT_EQ((int)strlen(small), 15);
    char *buf = malloc(need + 1);
    ASSERT_EQ(tmem_store_stats_json(s, buf, need + 1), need);
    ASSERT_EQ((int)strlen(buf), need);
    ASSERT_TRUE(strstr(buf, "\"pers_pages\":1,") != NULL);
    ASSERT_TRUE(strstr(buf, "\"client_id\":0,") != NULL);
    ASSERT_TRUE(strstr(buf, "\"puts_good\":1,") != NULL);
    int depth = 0;
    for (char *q = buf; *q; q++) {
        depth += (*q == '{' || *q == '[') - (*q == '}' || *q == ']');
        ASSERT_GE(depth, 0);
    }
    ASSERT_EQ(depth, 0);
    free(buf);
    tmem_store_destroy(s);
}
