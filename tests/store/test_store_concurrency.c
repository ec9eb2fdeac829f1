/*
 * Concurrency: many threads put/get/flush at once, on private persistent
 * pools (verified exactly), a shared ephemeral pool and private ephemeral
 * pools under a budget (eviction running all the time), while an admin
 * thread reads stats, freezes and thaws, changes weights and flushes.
 * Run it under ThreadSanitizer: make SANITIZE=thread check-store.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "store_testutil.h"

#define NTHREADS 4
#define OPS_PER_THREAD 4000

struct ctx {
    tmem_store *s;
    tmem_client *c;
    int pers, eph, shared;
    int t;
    atomic_int *errors;
};

static void *worker(void *arg)
{
    struct ctx *x = arg;
    uint64_t rng = 1000 + x->t;
    uint8_t page[TMEM_PAGE_SIZE], want[TMEM_PAGE_SIZE];
    uint32_t have[64] = {0}; /* seed+1 per persistent index */
    for (int k = 0; k < OPS_PER_THREAD; k++) {
        uint32_t i = (uint32_t)(tu_rand(&rng) % 64);
        uint64_t seed = tu_rand(&rng) % 30;
        tmem_oid o = tu_oid((uint64_t)x->t);
        int op = (int)(tu_rand(&rng) % 10);
        if (op < 3) {
            tu_page(page, seed);
            int r = tmem_page_put(x->c, x->pers, &o, i, page);
            have[i] = r == 1 ? (uint32_t)seed + 1 : 0;
            if (r != 1 && r != TMEM_EFROZEN)
                atomic_fetch_add(x->errors, 1);
        } else if (op < 6) {
            int r = tmem_page_get(x->c, x->pers, &o, i, page);
            if (r != (have[i] != 0))
                atomic_fetch_add(x->errors, 1);
            if (r == 1) {
                tu_page(want, have[i] - 1);
                if (memcmp(page, want, TMEM_PAGE_SIZE))
                    atomic_fetch_add(x->errors, 1);
            }
        } else if (op < 8) {
            tu_page(page, seed);
            int pool = op == 6 ? x->eph : x->shared;
            tmem_oid so = tu_oid(seed % 4);
            tmem_page_put(x->c, pool, &so, (uint32_t)seed, page);
        } else {
            int pool = op == 8 ? x->eph : x->shared;
            tmem_oid so = tu_oid(seed % 4);
            int r = tmem_page_get(x->c, pool, &so, (uint32_t)seed, page);
            if (r == 1) {
                tu_page(want, seed);
                if (memcmp(page, want, TMEM_PAGE_SIZE))
                    atomic_fetch_add(x->errors, 1);
            }
        }
    }
    return NULL;
}

static atomic_int stop;

static void *admin(void *arg)
{
    struct ctx *x = arg; /* x[0..NTHREADS-1] */
    char buf[8192];
    int k = 0;
    while (!atomic_load(&stop)) {
        int id = tmem_client_id(x[k % NTHREADS].c);
        tmem_store_stats_json(x->s, buf, sizeof buf);
        tmem_store_freeze(x->s, id, true);
        tmem_store_freeze(x->s, id, false);
        tmem_store_set_weight(x->s, id, 1 + k % 3);
        tmem_store_flush_mib(x->s, 1);
        tmem_client_stats cs;
        tmem_store_client_stats(x->s, id, &cs);
        k++;
    }
    return NULL;
}

TEST(store_concurrent_clients)
{
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.budget_bytes = 3u << 20;
    tmem_store *s;
    ASSERT_EQ(tmem_store_create(&cfg, &s), 0);
    atomic_int errors = 0;
    struct ctx x[NTHREADS];
    uint64_t uuid[2] = {5, 6};
    for (int t = 0; t < NTHREADS; t++) {
        x[t] = (struct ctx){.s = s, .t = t, .errors = &errors};
        ASSERT_GE(tmem_client_create(s, &x[t].c), 0);
        tmem_store_auth(s, tmem_client_id(x[t].c), uuid, true);
        x[t].pers = tmem_pool_new(x[t].c, NULL, PERS, NULL);
        x[t].eph = tmem_pool_new(x[t].c, NULL, EPH, NULL);
        x[t].shared = tmem_pool_new(x[t].c, uuid, SHARED, NULL);
    }
    pthread_t th[NTHREADS], adm;
    atomic_store(&stop, 0);
    for (int t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, worker, &x[t]);
    pthread_create(&adm, NULL, admin, x);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    atomic_store(&stop, 1);
    pthread_join(adm, NULL);
    ASSERT_EQ(atomic_load(&errors), 0);
    /* a client leaves while others stay: their pages intact */
    tmem_client_destroy(x[0].c);
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_EQ(g.clients, NTHREADS - 1);
    tmem_store_destroy(s);
}

/* Two threads, one client, one persistent object (frontswap's shape). */
struct one {
    tmem_client *c;
    int pool, t;
    atomic_int *errors;
};

static void *same_object(void *arg)
{
    struct one *x = arg;
    uint8_t page[TMEM_PAGE_SIZE], got[TMEM_PAGE_SIZE];
    tmem_oid o = tu_oid(1);
    for (uint32_t i = 0; i < 3000; i++) {
        uint32_t idx = i * 2 + (uint32_t)x->t;
        tu_page(page, idx);
        if (tmem_page_put(x->c, x->pool, &o, idx, page) != 1 ||
            tmem_page_get(x->c, x->pool, &o, idx, got) != 1 ||
            memcmp(page, got, TMEM_PAGE_SIZE))
            atomic_fetch_add(x->errors, 1);
    }
    return NULL;
}

TEST(store_concurrent_same_object)
{
    tmem_store *s;
    tmem_client *c;
    ASSERT_EQ(tmem_store_create(NULL, &s), 0);
    ASSERT_GE(tmem_client_create(s, &c), 0);
    int pool = tmem_pool_new(c, NULL, PERS, NULL);
    atomic_int errors = 0;
    struct one x[2] = {{c, pool, 0, &errors}, {c, pool, 1, &errors}};
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        pthread_create(&th[t], NULL, same_object, &x[t]);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    ASSERT_EQ(atomic_load(&errors), 0);
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    ASSERT_U64_EQ(g.pers_pages, 6000);
    tmem_store_destroy(s);
}
