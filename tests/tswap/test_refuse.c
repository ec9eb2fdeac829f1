/*
 * Refusals never lose a page: with a store too small for what is put out
 * (the embedded store with TMEM_EMBEDDED_BUDGET_MIB=1, a tmemd with a
 * 1 MiB budget) the refused pages go back in, resident, counted by
 * reason, and every byte reads as written.
 */
#include <stdlib.h>

#include "../runner.h"
#include "tswap_testutil.h"

static void refused_roundtrip(tmem_conn *c)
{
    enum { N = 1024 }; /* 4 MiB of pages that do not compress */
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 17);
    tmem_tswap_set_target(t, 16);
    for (int i = 0; i < 4; i++)
        ASSERT_GE(tmem_tswap_reclaim(t), 0);
    /* No target: the evictor thread starts no batch after this pass, and
     * no page is half way out when the figures are read. */
    tmem_tswap_set_target(t, 0);
    ASSERT_GE(tmem_tswap_reclaim(t), 0);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_GT(s.refused, 0);
    ASSERT_EQ(s.refused, s.refused_nospace);
    ASSERT_GT(s.stored, 0);              /* some went out ... */
    ASSERT_LT(s.stored, N / 2);          /* ... most could not */
    ASSERT_EQ(s.resident + s.stored, N); /* none lost */
    ASSERT_EQ(ts_check_n(p, N, 17), -1);
    tmem_tswap_destroy(t);
}

TEST(tswap_refused_stores_keep_pages_embedded)
{
    setenv("TMEM_EMBEDDED_BUDGET_MIB", "1", 1);
    tmem_conn *c = ts_embedded();
    refused_roundtrip(c);
    tmem_disconnect(c);
}

TEST(tswap_refused_stores_keep_pages_daemon)
{
    ts_on_daemon("1M", refused_roundtrip);
}
