/*
 * Conformance: the rules of SPEC.md "The tmem ABI" and the return codes
 * of docs/store.md and docs/client.md, each checked the same way on the
 * store, the embedded connection and tmemd (conf.h).
 */
#include <string.h>

#include "conf.h"

#define PG TMEM_PAGE_SIZE

/* Puts page (seed, index) under (oid a, index); asserts it was stored. */
static void put_ok(cf_tenant *t, int pool, uint64_t a, uint32_t index,
                   uint32_t seed)
{
    unsigned char page[PG];
    tmem_oid o = cf_oid(a);
    cf_page(page, seed, index);
    ASSERT_EQ(cf_put(t, pool, &o, index, page), 1);
}

/* Gets (oid a, index): 1 and page (seed, index), or 0 when want_found is
 * false. */
static void expect(cf_tenant *t, int pool, uint64_t a, uint32_t index,
                   uint32_t seed, bool want_found)
{
    unsigned char page[PG];
    tmem_oid o = cf_oid(a);
    memset(page, 0x5a, sizeof page);
    int r = cf_get(t, pool, &o, index, page);
    ASSERT_EQ(r, want_found ? 1 : 0);
    if (want_found)
        ASSERT_TRUE(cf_page_is(page, seed, index));
}

CF_CHECK(pool_flags_refused_eperm, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    const uint32_t bad[] = {
        TMEM_POOL_FLAGS(TMEM_POOL_PERSIST | TMEM_POOL_SHARED),
        TMEM_POOL_FLAGS(1u << 4),  /* 8 KiB pages */
        TMEM_POOL_FLAGS(1u << 8),  /* an unknown bit */
        TMEM_POOL_PERSIST,         /* no spec version */
        TMEM_POOL_PERSIST | (2u << TMEM_POOL_VERSION_SHIFT),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ(cf_pool_new(t, NULL, bad[i], NULL), TMEM_EPERM);
    uint32_t got = 0;
    ASSERT_EQ(cf_pool_new(t, NULL, CF_PERS, &got), 0);
    ASSERT_EQ(got, CF_PERS);
    ASSERT_EQ(cf_pool_new(t, NULL, CF_EPH, &got), 1);
    ASSERT_EQ(got, CF_EPH);
}

CF_CHECK(pool_limit_ids_and_enodev, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    unsigned char page[PG];
    tmem_oid o = cf_oid(1);
    cf_page(page, 1, 0);
    for (int i = 0; i < TMEM_MAX_POOLS; i++)
        ASSERT_EQ(cf_pool_new(t, NULL, i % 2 ? CF_PERS : CF_EPH, NULL), i);
    ASSERT_EQ(cf_pool_new(t, NULL, CF_PERS, NULL), TMEM_ENOSPC);
    ASSERT_EQ(cf_pool_destroy(t, 5), 0);
    ASSERT_EQ(cf_pool_destroy(t, 5), TMEM_ENODEV);
    ASSERT_EQ(cf_put(t, 5, &o, 0, page), TMEM_ENODEV);
    ASSERT_EQ(cf_pool_new(t, NULL, CF_PERS, NULL), 5);
    const int ids[] = {-1, 16, 99, INT32_MIN};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ASSERT_EQ(cf_put(t, ids[i], &o, 0, page), TMEM_ENODEV);
        ASSERT_EQ(cf_get(t, ids[i], &o, 0, page), TMEM_ENODEV);
        ASSERT_EQ(cf_flush(t, ids[i], &o, 0), TMEM_ENODEV);
        ASSERT_EQ(cf_flush_obj(t, ids[i], &o), TMEM_ENODEV);
        ASSERT_EQ(cf_pool_destroy(t, ids[i]), TMEM_ENODEV);
    }
}

CF_CHECK(persistent_put_get_not_exclusive, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    ASSERT_GE(p, 0);
    for (uint32_t i = 0; i < 40; i++)
        put_ok(t, p, 3, i, 7);
    for (int round = 0; round < 2; round++)
        for (uint32_t i = 0; i < 40; i++)
            expect(t, p, 3, i, 7, true);
    expect(t, p, 3, 40, 7, false); /* another index: a miss, 0 */
    expect(t, p, 4, 0, 7, false);  /* another object */
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_U64_EQ(st.pers_pages, 40);
}

CF_CHECK(ephemeral_private_get_exclusive, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_EPH, NULL);
    for (uint32_t i = 0; i < 20; i++)
        put_ok(t, p, 9, i, 11);
    for (uint32_t i = 0; i < 20; i++) {
        expect(t, p, 9, i, 11, true);
        expect(t, p, 9, i, 11, false); /* the get took it */
    }
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_U64_EQ(st.eph_pages, 0);
}

CF_CHECK(duplicate_put_replaces, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int pp = cf_pool_new(t, NULL, CF_PERS, NULL);
    int pe = cf_pool_new(t, NULL, CF_EPH, NULL);
    unsigned char page[PG];
    tmem_oid o = cf_oid(2);
    for (int k = 0; k < 2; k++) {
        int p = k ? pe : pp;
        put_ok(t, p, 2, 0, 100);
        cf_page(page, 200, 0);
        ASSERT_EQ(cf_put(t, p, &o, 0, page), 1);
        ASSERT_EQ(cf_get(t, p, &o, 0, page), 1);
        ASSERT_TRUE(cf_page_is(page, 200, 0)); /* never the old data */
    }
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_U64_EQ(st.pers_pages, 1);
}

CF_CHECK(flush_page_and_object_counts, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    tmem_oid o = cf_oid(5), none = cf_oid(6);
    for (uint32_t i = 0; i < 10; i++)
        put_ok(t, p, 5, i, 1);
    ASSERT_EQ(cf_flush(t, p, &o, 3), 1);
    ASSERT_EQ(cf_flush(t, p, &o, 3), 0);
    expect(t, p, 5, 3, 1, false);
    ASSERT_EQ(cf_flush_obj(t, p, &o), 9);
    ASSERT_EQ(cf_flush_obj(t, p, &o), 0);
    ASSERT_EQ(cf_flush_obj(t, p, &none), 0);
    for (uint32_t i = 0; i < 10; i++)
        expect(t, p, 5, i, 1, false);
}

CF_CHECK(destroy_pool_drops_pages, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    for (uint32_t i = 0; i < 30; i++)
        put_ok(t, p, 1, i, 2);
    ASSERT_EQ(cf_pool_destroy(t, p), 0);
    unsigned char page[PG];
    tmem_oid o = cf_oid(1);
    ASSERT_EQ(cf_get(t, p, &o, 0, page), TMEM_ENODEV);
    ASSERT_EQ(cf_pool_new(t, NULL, CF_PERS, NULL), p); /* the id again */
    expect(t, p, 1, 0, 2, false);
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_U64_EQ(st.pers_pages, 0);
    ASSERT_U64_EQ(st.data, 0);
}

CF_CHECK(zero_and_same_filled_store_no_data, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int pp = cf_pool_new(t, NULL, CF_PERS, NULL);
    int pe = cf_pool_new(t, NULL, CF_EPH, NULL);
    unsigned char page[PG], got[PG];
    cf_stats a, b;
    cf_stats_get(e, &a);
    for (uint32_t i = 0; i < 64; i++) {
        uint32_t w = i % 2 ? 0 : 0xab12cd34u * (i + 1);
        for (size_t k = 0; k < PG; k += 4)
            memcpy(page + k, &w, 4);
        tmem_oid o = cf_oid(i);
        ASSERT_EQ(cf_put(t, pp, &o, i, page), 1);
        ASSERT_EQ(cf_put(t, pe, &o, i, page), 1);
        memset(got, 0x11, sizeof got);
        ASSERT_EQ(cf_get(t, pp, &o, i, got), 1);
        ASSERT_MEM_EQ(got, page, PG);
        memset(got, 0x11, sizeof got);
        ASSERT_EQ(cf_get(t, pe, &o, i, got), 1);
        ASSERT_MEM_EQ(got, page, PG);
    }
    cf_stats_get(e, &b);
    ASSERT_U64_EQ(b.data, a.data); /* no page data at all */
    ASSERT_U64_EQ(b.pers_pages, 64);
    ASSERT_LT(b.used - a.used, 64u * 256); /* an index entry each */
}

CF_CHECK(dedup_lifetime_within_tenant, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    unsigned char page[PG];
    tmem_oid a = cf_oid(1), b = cf_oid(2);
    cf_stats s0, s1;
    put_ok(t, p, 9, 0, 1); /* opens the arena: not measured */
    cf_stats_get(e, &s0);
    cf_page(page, 77, 0);
    ASSERT_EQ(cf_put(t, p, &a, 0, page), 1);
    ASSERT_EQ(cf_put(t, p, &b, 0, page), 1);
    cf_stats_get(e, &s1);
    ASSERT_LE(s1.data - s0.data, PG); /* one stored copy for two names */
    ASSERT_EQ(cf_flush(t, p, &a, 0), 1);
    expect(t, p, 2, 0, 77, true); /* the other name keeps the data */
    ASSERT_EQ(cf_flush(t, p, &b, 0), 1);
    expect(t, p, 2, 0, 77, false);
    cf_stats_get(e, &s1);
    ASSERT_U64_EQ(s1.data, s0.data);
}

CF_CHECK(dedup_lifetime_across_tenants, 0)
{
    cf_need_tenants(e, 2, "dedup across tenants");
    cf_tenant *t1 = cf_tenant_new(e), *t2 = cf_tenant_new(e);
    int p1 = cf_pool_new(t1, NULL, CF_EPH, NULL);
    int p2 = cf_pool_new(t2, NULL, CF_EPH, NULL);
    cf_stats s0, s1;
    cf_stats_get(e, &s0);
    put_ok(t1, p1, 4, 0, 55);
    put_ok(t2, p2, 4, 0, 55);
    cf_stats_get(e, &s1);
    ASSERT_LE(s1.data - s0.data, PG); /* stored once for both */
    expect(t1, p1, 4, 0, 55, true);  /* t1's exclusive get */
    expect(t1, p1, 4, 0, 55, false);
    expect(t2, p2, 4, 0, 55, true); /* t2's copy lives on */
    cf_stats_get(e, &s1);
    ASSERT_U64_EQ(s1.data, s0.data);
}

CF_CHECK(frozen_client_efrozen_and_old_removed, 0)
{
    cf_need_admin(e, "freeze");
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    unsigned char page[PG];
    tmem_oid o = cf_oid(1);
    put_ok(t, p, 1, 0, 1);
    put_ok(t, p, 1, 1, 1);
    ASSERT_EQ(cf_freeze(e, cf_id(t), true), 0);
    cf_page(page, 2, 0);
    ASSERT_EQ(cf_put(t, p, &o, 0, page), TMEM_EFROZEN);
    expect(t, p, 1, 0, 1, false); /* failed AND flushed the old page */
    expect(t, p, 1, 1, 1, true);  /* gets still work */
    ASSERT_EQ(cf_freeze(e, TMEM_ALL_CLIENTS, false), 0);
    put_ok(t, p, 1, 0, 2);
    ASSERT_EQ(cf_freeze(e, TMEM_ALL_CLIENTS, true), 0);
    ASSERT_EQ(cf_put(t, p, &o, 5, page), TMEM_EFROZEN);
    ASSERT_EQ(cf_freeze(e, 12345, true), TMEM_ENODEV);
}

CF_CHECK(shared_pool_authorisation_and_leave, 0)
{
    cf_need_tenants(e, 2, "shared pools between tenants");
    cf_need_admin(e, "shared-pool authorisation");
    cf_tenant *t1 = cf_tenant_new(e), *t2 = cf_tenant_new(e);
    const uint64_t u[2] = {0x1234, 0x5678};
    uint32_t got = 0;
    /* not authorised: a private pool, and the reply says so */
    int q = cf_pool_new(t1, u, CF_SHARED, &got);
    ASSERT_GE(q, 0);
    ASSERT_EQ(got & TMEM_POOL_SHARED, 0);
    ASSERT_EQ(cf_pool_destroy(t1, q), 0);
    ASSERT_EQ(cf_auth(e, cf_id(t1), u, true), 0);
    ASSERT_EQ(cf_auth(e, cf_id(t2), u, true), 0);
    int p1 = cf_pool_new(t1, u, CF_SHARED, &got);
    ASSERT_TRUE(got & TMEM_POOL_SHARED);
    int p2 = cf_pool_new(t2, u, CF_SHARED, &got);
    ASSERT_TRUE(got & TMEM_POOL_SHARED);
    put_ok(t1, p1, 10, 0, 3);
    expect(t2, p2, 10, 0, 3, true); /* shared gets are not exclusive */
    expect(t2, p2, 10, 0, 3, true);
    expect(t1, p1, 10, 0, 3, true);
    put_ok(t2, p2, 20, 0, 4);
    /* t1 leaves: what it put last goes, the pool lives for t2 */
    ASSERT_EQ(cf_pool_destroy(t1, p1), 0);
    expect(t2, p2, 10, 0, 3, false);
    expect(t2, p2, 20, 0, 4, true);
    ASSERT_EQ(cf_auth(e, 9999, u, true), TMEM_ENODEV);
}

CF_CHECK(shared_pool_gets_not_exclusive, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    const uint64_t u[2] = {7, 7};
    uint32_t got = 0;
    if (cf_path_of(e) != CF_EMBEDDED) /* embedded: its own administrator */
        ASSERT_EQ(cf_auth(e, cf_id(t), u, true), 0);
    int p = cf_pool_new(t, u, CF_SHARED, &got);
    ASSERT_GE(p, 0);
    ASSERT_TRUE(got & TMEM_POOL_SHARED);
    put_ok(t, p, 1, 0, 8);
    expect(t, p, 1, 0, 8, true);
    expect(t, p, 1, 0, 8, true);
}

CF_CHECK(killed_client_enodev, 0)
{
    cf_need_admin(e, "destroy client");
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    put_ok(t, p, 1, 0, 1);
    ASSERT_EQ(cf_kill(e, cf_id(t)), 0);
    unsigned char page[PG];
    tmem_oid o = cf_oid(1);
    cf_page(page, 1, 0);
    ASSERT_EQ(cf_put(t, p, &o, 1, page), TMEM_ENODEV);
    ASSERT_EQ(cf_get(t, p, &o, 0, page), TMEM_ENODEV);
    ASSERT_EQ(cf_flush(t, p, &o, 0), TMEM_ENODEV);
    ASSERT_EQ(cf_pool_new(t, NULL, CF_PERS, NULL), TMEM_ENODEV);
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_U64_EQ(st.pers_pages, 0);
}

CF_CHECK(cap_refuses_persistent_evicts_own_ephemeral, 0)
{
    cf_need_admin(e, "set cap");
    cf_tenant *t = cf_tenant_new(e);
    int pe = cf_pool_new(t, NULL, CF_EPH, NULL);
    int pp = cf_pool_new(t, NULL, CF_PERS, NULL);
    ASSERT_EQ(cf_set_cap(e, cf_id(t), 16), 0);
    for (uint32_t i = 0; i < 32; i++)
        put_ok(t, pe, 1, i, 1); /* its own oldest make room */
    ASSERT_EQ(cf_client_eph(e, cf_id(t)), 16);
    expect(t, pe, 1, 31, 1, true);
    expect(t, pe, 1, 0, 1, false);
    unsigned char page[PG];
    tmem_oid o = cf_oid(2);
    int stored = 0, r = 1;
    for (uint32_t i = 0; i < 40 && r == 1; i++) {
        cf_page(page, 2, i);
        r = cf_put(t, pp, &o, i, page);
        stored += r == 1;
    }
    ASSERT_EQ(r, TMEM_ENOSPC);
    ASSERT_EQ(stored, 16); /* ephemeral pages made way, then no more */
    ASSERT_EQ(cf_client_eph(e, cf_id(t)), 0);
}

CF_CHECK(batch_results_per_operation, 0)
{
    cf_need_conn(e, "tmem_conn_batch");
    cf_tenant *t = cf_tenant_new(e);
    tmem_conn *c = cf_conn(t);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    unsigned char a[PG], b[PG];
    cf_page(a, 1, 0);
    tmem_op ops[] = {
        {.op = TMEM_PUT, .pool = p, .oid = cf_oid(1), .index = 0, .page = a},
        {.op = TMEM_PUT, .pool = p, .oid = cf_oid(1), .index = 1},
        {.op = TMEM_GET, .pool = p, .oid = cf_oid(1), .index = 0, .page = b},
        {.op = TMEM_GET, .pool = p, .oid = cf_oid(1), .index = 0},
        {.op = 99, .pool = p, .oid = cf_oid(1), .page = b},
        {.op = TMEM_GET, .pool = 77, .oid = cf_oid(1), .page = b},
        {.op = TMEM_FLUSH_PAGE, .pool = p, .oid = cf_oid(1), .index = 0},
        {.op = TMEM_FLUSH_OBJECT, .pool = p, .oid = cf_oid(1)},
    };
    const int want[] = {1, TMEM_EINVAL, 1, TMEM_EINVAL, TMEM_EINVAL,
                        TMEM_ENODEV, 1, 0};
    ASSERT_EQ(tmem_conn_batch(c, ops, sizeof ops / sizeof ops[0]), 0);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        ASSERT_EQ(ops[i].result, want[i]);
    ASSERT_TRUE(cf_page_is(b, 1, 0));
}

CF_CHECK(cleancache_exclusive_and_counted, 0)
{
    cf_need_conn(e, "cleancache");
    cf_tenant *t = cf_tenant_new(e);
    tmem_cleancache *cc;
    ASSERT_EQ(tmem_cleancache_create(cf_conn(t), &cc), 0);
    int fs = tmem_cleancache_init_fs(cc);
    ASSERT_GE(fs, 0);
    unsigned char page[PG];
    tmem_oid key = cf_oid(42);
    for (uint32_t i = 0; i < 8; i++) {
        cf_page(page, 42, i);
        tmem_cleancache_put_page(cc, fs, &key, i, page);
    }
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &key, 0, page), 1);
    ASSERT_TRUE(cf_page_is(page, 42, 0));
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &key, 0, page), 0);
    tmem_cleancache_invalidate_page(cc, fs, &key, 1);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &key, 1, page), 0);
    tmem_cleancache_invalidate_inode(cc, fs, &key);
    ASSERT_EQ(tmem_cleancache_get_page(cc, fs, &key, 2, page), 0);
    tmem_cleancache_put_page(cc, fs, &key, 3, NULL); /* refused, counted */
    tmem_cleancache_stats st;
    tmem_cleancache_stats_get(cc, &st);
    ASSERT_U64_EQ(st.succ_gets, 1);
    ASSERT_U64_EQ(st.failed_gets, 3);
    ASSERT_U64_EQ(st.puts, 9);
    ASSERT_U64_EQ(st.put_errors, 1);
    ASSERT_U64_EQ(st.invalidates, 2);
    tmem_cleancache_invalidate_fs(cc, fs);
    tmem_cleancache_destroy(cc);
}

CF_CHECK(frontswap_store_load_invalidate, 0)
{
    cf_need_conn(e, "frontswap");
    cf_tenant *t = cf_tenant_new(e);
    tmem_frontswap *fs;
    ASSERT_EQ(tmem_frontswap_create(cf_conn(t), &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 1024), 0);
    unsigned char page[PG];
    for (uint64_t off = 0; off < 100; off++) {
        cf_page(page, 5, (uint32_t)off);
        ASSERT_EQ(tmem_frontswap_store(fs, 0, off, page), 0);
    }
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 100);
    for (int round = 0; round < 2; round++) { /* loads are not exclusive */
        ASSERT_EQ(tmem_frontswap_load(fs, 0, 7, page), 1);
        ASSERT_TRUE(cf_page_is(page, 5, 7));
    }
    ASSERT_EQ(tmem_frontswap_invalidate_page(fs, 0, 7), 1);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 7, page), 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 99);
    /* arguments the headers do not allow: refused, nothing changes */
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 8, NULL), TMEM_EINVAL);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 8, NULL), TMEM_EINVAL);
    ASSERT_EQ(tmem_frontswap_load_direct(fs, 0, 8, NULL), TMEM_EINVAL);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 1024, page), TMEM_EINVAL);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 99);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 8, page), 1);
    ASSERT_TRUE(cf_page_is(page, 5, 8));
    ASSERT_EQ(tmem_frontswap_invalidate_area(fs, 0), 0);
    ASSERT_U64_EQ(tmem_frontswap_curr_pages(fs), 0);
    tmem_frontswap_destroy(fs);
}
