/*
 * Model-based random test: long random sequences of operations from several
 * clients against the store and a trivial reference model.  After every
 * step every persistent page the model holds must read back byte-identical;
 * ephemeral reads may miss but must never return wrong data.  A small
 * budget keeps eviction busy.  TMEM_MODEL_STEPS overrides the length.
 */
#include <stdlib.h>

#include "store_testutil.h"

#define NCLIENTS 3
#define NOBJ 4
#define NIDX 24
#define NSEEDS 40 /* few contents: dedup happens */

enum { P_PERS, P_EPH, P_SHARED, NPOOLS };

struct model {
    /* seed + 1 of the page at [client][pool][obj][idx], 0 = absent.  The
     * shared pool is one space for all clients: kept at client 0. */
    uint32_t page[NCLIENTS][NPOOLS][NOBJ][NIDX];
};

static uint32_t *slot(struct model *m, int c, int p, int o, int i)
{
    return &m->page[p == P_SHARED ? 0 : c][p][o][i];
}

static void check_persistent(struct model *m, tmem_client **cl, int *pools)
{
    for (int c = 0; c < NCLIENTS; c++)
        for (int o = 0; o < NOBJ; o++)
            for (int i = 0; i < NIDX; i++) {
                uint32_t v = m->page[c][P_PERS][o][i];
                uint8_t got[TMEM_PAGE_SIZE];
                tmem_oid oid = tu_oid((uint64_t)o);
                int r = tmem_page_get(cl[c], pools[c * NPOOLS + P_PERS],
                                      &oid, (uint32_t)i, got);
                if (!v) {
                    ASSERT_EQ(r, 0);
                    continue;
                }
                uint8_t want[TMEM_PAGE_SIZE];
                tu_page(want, v - 1);
                ASSERT_EQ(r, 1);
                ASSERT_MEM_EQ(got, want, TMEM_PAGE_SIZE);
            }
}

/* One random operation; updates the model. */
static void step(struct model *m, tmem_store *s, tmem_client **cl,
                 int *pools, uint64_t *rng)
{
    int c = (int)(tu_rand(rng) % NCLIENTS);
    int p = (int)(tu_rand(rng) % NPOOLS);
    int o = (int)(tu_rand(rng) % NOBJ);
    int i = (int)(tu_rand(rng) % NIDX);
    int pool = pools[c * NPOOLS + p];
    tmem_oid oid = tu_oid((uint64_t)o);
    uint32_t *sl = slot(m, c, p, o, i);
    uint8_t page[TMEM_PAGE_SIZE], want[TMEM_PAGE_SIZE];
    int op = (int)(tu_rand(rng) % 100);

    if (op < 45) { /* put */
        uint64_t seed = tu_rand(rng) % NSEEDS;
        tu_page(page, seed);
        int r = tmem_page_put(cl[c], pool, &oid, (uint32_t)i, page);
        if (r == 1) {
            *sl = (uint32_t)seed + 1;
        } else {
            /* refused: the old page must be gone too */
            ASSERT_TRUE(r == TMEM_ENOSPC || r == TMEM_EFROZEN);
            *sl = 0;
            ASSERT_EQ(tmem_page_get(cl[c], pool, &oid, (uint32_t)i, page), 0);
        }
    } else if (op < 80) { /* get */
        int r = tmem_page_get(cl[c], pool, &oid, (uint32_t)i, page);
        ASSERT_TRUE(r == 0 || r == 1);
        if (r == 1) {
            ASSERT_NE(*sl, 0); /* nothing appears from nowhere */
            tu_page(want, *sl - 1);
            ASSERT_MEM_EQ(page, want, TMEM_PAGE_SIZE);
        } else if (p == P_PERS) {
            ASSERT_EQ(*sl, 0); /* persistent pages never vanish */
        }
        if (p == P_EPH || (r == 0 && p != P_PERS))
            *sl = 0; /* exclusive get, or evicted */
    } else if (op < 92) { /* flush page */
        int r = tmem_page_flush(cl[c], pool, &oid, (uint32_t)i);
        ASSERT_TRUE(r == 0 || r == 1);
        if (p == P_PERS)
            ASSERT_EQ(r, *sl != 0);
        *sl = 0;
    } else if (op < 97) { /* flush object */
        int r = tmem_object_flush(cl[c], pool, &oid);
        ASSERT_GE(r, 0);
        for (int k = 0; k < NIDX; k++)
            *slot(m, c, p, o, k) = 0;
    } else if (op < 99) { /* freeze / thaw another client briefly */
        int id = tmem_client_id(cl[c]);
        ASSERT_EQ(tmem_store_freeze(s, id, (tu_rand(rng) & 1) != 0), 0);
    } else {
        ASSERT_GE(tmem_store_flush_mib(s, 1), 0);
    }
}

TEST(store_model_random)
{
    const char *env = getenv("TMEM_MODEL_STEPS");
    long steps = env ? atol(env) : 6000;
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.budget_bytes = 600 * 1024; /* ~ a few hundred pages: evictions */
    tmem_store *s;
    ASSERT_EQ(tmem_store_create(&cfg, &s), 0);
    tmem_client *cl[NCLIENTS];
    int pools[NCLIENTS * NPOOLS];
    uint64_t uuid[2] = {42, 43};
    for (int c = 0; c < NCLIENTS; c++) {
        ASSERT_GE(tmem_client_create(s, &cl[c]), 0);
        ASSERT_EQ(tmem_store_auth(s, tmem_client_id(cl[c]), uuid, true), 0);
        pools[c * NPOOLS + P_PERS] = tmem_pool_new(cl[c], NULL, PERS, NULL);
        pools[c * NPOOLS + P_EPH] = tmem_pool_new(cl[c], NULL, EPH, NULL);
        uint32_t f = 0;
        pools[c * NPOOLS + P_SHARED] = tmem_pool_new(cl[c], uuid, SHARED, &f);
        ASSERT_EQ(f, SHARED);
        tmem_store_set_compress(s, tmem_client_id(cl[c]), (tmem_compress)c);
    }
    static struct model m;
    memset(&m, 0, sizeof m);
    uint64_t rng = 12345;
    for (long k = 0; k < steps; k++) {
        step(&m, s, cl, pools, &rng);
        check_persistent(&m, cl, pools);
    }
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_GT(g.evictions, 0);  /* the budget really was exercised */
    ASSERT_GT(g.dedup_hits, 0);
    ASSERT_GT(g.zero_pages + g.pers_pages + g.eph_pages, 0);
    tmem_store_destroy(s);
}
