/*
 * Model-based random test: long random sequences of operations from several
 * clients against the store and a trivial reference model.  After every
 * step every persistent page the model holds must read back byte-identical;
 * ephemeral reads may miss but must never return wrong data.  A small
 * budget keeps eviction busy.  Puts are raw or packed (as tmemd's
 * tenants send them, with a hash the store must not trust); pools are
 * destroyed and made again; after every step the accounting holds
 * (used_bytes <= budget, pers_pages = the model's persistent pages).
 * TMEM_MODEL_STEPS overrides the length, TMEM_MODEL_SEED the seed (else
 * one from the clock), which is printed first: a failure's seed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/pack.h"
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

/* Returns the persistent pages the model holds (all checked). */
static uint64_t check_persistent(struct model *m, tmem_client **cl,
                                 int *pools, tmem_store *s)
{
    uint64_t pers = 0;
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
                pers++;
                uint8_t want[TMEM_PAGE_SIZE];
                tu_page(want, v - 1);
                ASSERT_EQ(r, 1);
                ASSERT_MEM_EQ(got, want, TMEM_PAGE_SIZE);
            }
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_LE(g.used_bytes, g.budget_bytes);
    ASSERT_U64_EQ(g.pers_pages, pers);
    return pers;
}

/* A put, raw or packed (the hash a lie half the time: never trusted). */
static int model_put(tmem_client *c, int pool, const tmem_oid *oid,
                     uint32_t idx, const uint8_t *page, uint64_t *rng)
{
    if (tu_rand(rng) & 1)
        return tmem_page_put(c, pool, oid, idx, page);
    static _Alignas(8) unsigned char state[TMEM_PACK_STATE_SIZE];
    unsigned char data[TMEM_PAGE_SIZE];
    tmem_packed pk;
    uint32_t hash;
    tmem__pack(page, state, data, &pk, &hash);
    if (tu_rand(rng) & 1)
        hash = 0x5eed; /* the same claim for every page */
    return tmem_page_put_packed(c, pool, oid, idx, &pk, data, hash);
}

/* One random operation; updates the model. */
static void step(struct model *m, tmem_store *s, tmem_client **cl,
                 int *pools, uint64_t *rng, uint64_t uuid[2])
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
        int r = model_put(cl[c], pool, &oid, (uint32_t)i, page, rng);
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
    } else if (op < 98) { /* freeze / thaw another client briefly */
        int id = tmem_client_id(cl[c]);
        ASSERT_EQ(tmem_store_freeze(s, id, (tu_rand(rng) & 1) != 0), 0);
    } else if (op < 99) { /* destroy the pool and make it again */
        ASSERT_EQ(tmem_pool_destroy(cl[c], pool), 0);
        uint32_t f = 0;
        int np = p == P_SHARED ? tmem_pool_new(cl[c], uuid, SHARED, &f)
                 : tmem_pool_new(cl[c], NULL, p == P_PERS ? PERS : EPH, &f);
        ASSERT_GE(np, 0);
        pools[c * NPOOLS + p] = np;
        if (p != P_SHARED) /* other sharers keep the shared pool's pages */
            for (int ob = 0; ob < NOBJ; ob++)
                for (int k = 0; k < NIDX; k++)
                    *slot(m, c, p, ob, k) = 0;
    } else {
        ASSERT_GE(tmem_store_flush_mib(s, 1), 0);
    }
}

static void model_run(int maintain)
{
    const char *env = getenv("TMEM_MODEL_STEPS");
    const char *senv = getenv("TMEM_MODEL_SEED");
    long steps = env ? atol(env) : 6000;
    uint64_t rng = senv ? strtoull(senv, NULL, 0) : (uint64_t)time(NULL);
    fprintf(stderr, "  TMEM_MODEL_SEED=%llu%s\n", (unsigned long long)rng,
            maintain ? " (maintenance thread on)" : "");
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.budget_bytes = 600 * 1024; /* ~ a few hundred pages: evictions */
    tmem_store *s;
    ASSERT_EQ(tmem_store_create(&cfg, &s), 0);
    if (maintain)
        ASSERT_EQ(tmem_store_start_maintenance(s), 0);
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
    uint64_t most = 0; /* persistent pages held at once, at most */
    for (long k = 0; k < steps; k++) {
        step(&m, s, cl, pools, &rng, uuid);
        uint64_t pers = check_persistent(&m, cl, pools, s);
        most = pers > most ? pers : most;
    }
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_GT(g.evictions, 0);  /* the budget really was exercised */
    ASSERT_GT(g.dedup_hits, 0);
    ASSERT_GT(most, 10); /* the persistent pools were really used */
    tmem_store_destroy(s);
}

TEST(store_model_random)
{
    model_run(0);
}

TEST(store_model_random_maintained)
{
    model_run(1);
}
