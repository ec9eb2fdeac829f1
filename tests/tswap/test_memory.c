/*
 * tswap's own memory: the handle, the page arrays, the region table and
 * the staging area all lie in libtmem's private heap range
 * (tmem__ph_range), which tmem run's heap scanner never adopts, so tswap
 * never manages its own memory; regions lie outside it.  (White-box: the
 * internal header names where each is.)
 */
#include "../runner.h"
#include "common/privheap.h"
#include "tswap/tswap_internal.h"
#include "tswap_testutil.h"

static bool in_heap(const void *p, size_t n)
{
    uintptr_t lo, hi;
    tmem__ph_range(&lo, &hi);
    return (uintptr_t)p >= lo && (uintptr_t)p + n <= hi;
}

TEST(tswap_own_memory_is_in_the_private_heap)
{
    tmem_conn *c = ts_embedded();
    tmem_tswap *t = ts_create(c, NULL);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, 64 * PG, (void **)&p), 0);
    ts_fill_n(p, 64, 71);
    ts_evict_to(t, 1);
    ASSERT_TRUE(in_heap(t, sizeof *t));
    ASSERT_TRUE(in_heap(t->stg.base, (size_t)TS_STG_SLOTS * PG));
    struct ts_table *tb = atomic_load(&t->table);
    ASSERT_TRUE(in_heap(tb, sizeof *tb));
    ASSERT_TRUE(in_heap(tb->r[0], sizeof *tb->r[0]));
    ASSERT_TRUE(in_heap(tb->r[0]->pg, tb->r[0]->pg->obj.bytes));
    ASSERT_TRUE(!in_heap(p, 64 * PG));
    ASSERT_GT(ts_stats(t).meta_bytes, (size_t)TS_STG_SLOTS * PG);
    /* The staging area cannot be adopted: it is tswap's. */
    ASSERT_LT(tmem_tswap_adopt(t, t->stg.base, PG), 0);
    ASSERT_EQ(ts_check_n(p, 64, 71), -1);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}
