/*
 * Conformance: arguments the headers do not allow.  client.h promises the
 * codes of <tmem/store.h> on every path, so a NULL page or object id is
 * -EINVAL everywhere, before the pool is even looked at, and changes
 * nothing: no page stored under a zero object id, no crash in the tenant,
 * the connection usable after.
 */
#include <stdlib.h>
#include <string.h>

#include "conf.h"

#define PG TMEM_PAGE_SIZE

CF_CHECK(null_page_einval_nothing_stored, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    tmem_oid o = cf_oid(1);
    unsigned char page[PG];
    ASSERT_EQ(cf_put(t, p, &o, 0, NULL), TMEM_EINVAL);
    ASSERT_EQ(cf_get(t, p, &o, 0, NULL), TMEM_EINVAL);
    cf_page(page, 1, 0);
    ASSERT_EQ(cf_put(t, p, &o, 0, page), 1);
    ASSERT_EQ(cf_get(t, p, &o, 0, NULL), TMEM_EINVAL); /* found, no room */
    ASSERT_EQ(cf_put(t, p, &o, 0, NULL), TMEM_EINVAL);
    memset(page, 0, sizeof page);
    ASSERT_EQ(cf_get(t, p, &o, 0, page), 1); /* untouched */
    ASSERT_TRUE(cf_page_is(page, 1, 0));
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_U64_EQ(st.pers_pages, 1);
}

CF_CHECK(null_oid_einval_nothing_stored, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    tmem_oid zero = {{0, 0, 0}};
    unsigned char page[PG];
    cf_page(page, 3, 0);
    ASSERT_EQ(cf_put(t, p, NULL, 0, page), TMEM_EINVAL);
    ASSERT_EQ(cf_get(t, p, NULL, 0, page), TMEM_EINVAL);
    ASSERT_EQ(cf_flush(t, p, NULL, 0), TMEM_EINVAL);
    ASSERT_EQ(cf_flush_obj(t, p, NULL), TMEM_EINVAL);
    ASSERT_EQ(cf_get(t, p, &zero, 0, page), 0); /* not under {0,0,0} */
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_U64_EQ(st.pers_pages, 0);
    ASSERT_EQ(cf_put(t, p, &zero, 0, page), 1); /* a zero oid is fine */
}

CF_CHECK(bad_arguments_before_bad_pool, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    tmem_oid o = cf_oid(1);
    unsigned char page[PG];
    cf_page(page, 1, 0);
    /* no pool at all yet: a malformed call is still EINVAL */
    ASSERT_EQ(cf_put(t, 3, &o, 0, NULL), TMEM_EINVAL);
    ASSERT_EQ(cf_put(t, 3, NULL, 0, page), TMEM_EINVAL);
    ASSERT_EQ(cf_get(t, -1, &o, 0, NULL), TMEM_EINVAL);
    ASSERT_EQ(cf_flush(t, 99, NULL, 0), TMEM_EINVAL);
    ASSERT_EQ(cf_flush_obj(t, 99, NULL), TMEM_EINVAL);
    /* well-formed, no such pool */
    ASSERT_EQ(cf_put(t, 3, &o, 0, page), TMEM_ENODEV);
    ASSERT_EQ(cf_get(t, -1, &o, 0, page), TMEM_ENODEV);
}

CF_CHECK(connection_usable_after_bad_calls, 0)
{
    cf_tenant *t = cf_tenant_new(e);
    int pe = cf_pool_new(t, NULL, CF_EPH, NULL);
    unsigned char page[PG];
    cf_page(page, 9, 9);
    for (uint32_t i = 0; i < 50; i++) {
        tmem_oid o = cf_oid(i);
        ASSERT_EQ(cf_put(t, pe, &o, i, i % 3 ? NULL : page),
                  i % 3 ? TMEM_EINVAL : 1);
        ASSERT_EQ(cf_get(t, pe, i % 2 ? NULL : &o, i, page),
                  i % 2 ? TMEM_EINVAL : i % 3 ? 0 : 1);
    }
    cf_page(page, 4, 4);
    tmem_oid o = cf_oid(4);
    ASSERT_EQ(cf_put(t, pe, &o, 4, page), 1);
    ASSERT_EQ(cf_get(t, pe, &o, 4, page), 1);
    ASSERT_TRUE(cf_page_is(page, 4, 4));
}

/* The same through the daemon's socket data path (TMEM_RING=0): a NULL
 * page to get into must not leave the reply's page unread on the stream. */
CF_CHECK(bad_calls_over_the_socket_data_path, 0)
{
    cf_need_daemon(e, "TMEM_RING=0");
    setenv("TMEM_RING", "0", 1);
    cf_tenant *t = cf_tenant_new(e);
    unsetenv("TMEM_RING");
    int p = cf_pool_new(t, NULL, CF_PERS, NULL);
    unsigned char page[PG];
    tmem_oid o = cf_oid(2);
    cf_page(page, 2, 0);
    ASSERT_EQ(cf_put(t, p, &o, 0, page), 1);
    ASSERT_EQ(cf_get(t, p, &o, 0, NULL), TMEM_EINVAL);
    ASSERT_EQ(cf_put(t, p, NULL, 0, page), TMEM_EINVAL);
    tmem_op ops[] = {
        {.op = TMEM_GET, .pool = p, .oid = o, .index = 0},
        {.op = 42, .pool = p, .oid = o, .page = page},
        {.op = TMEM_GET, .pool = p, .oid = o, .index = 0, .page = page},
    };
    memset(page, 0, sizeof page);
    ASSERT_EQ(tmem_conn_batch(cf_conn(t), ops, 3), 0);
    ASSERT_EQ(ops[0].result, TMEM_EINVAL);
    ASSERT_EQ(ops[1].result, TMEM_EINVAL);
    ASSERT_EQ(ops[2].result, 1);
    ASSERT_TRUE(cf_page_is(page, 2, 0));
    ASSERT_EQ(cf_get(t, p, &o, 0, page), 1); /* the stream is in step */
}
