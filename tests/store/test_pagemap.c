/*
 * The page map against a plain array: random inserts, replaces, deletes
 * and filters over sparse and dense index patterns, with allocation
 * failures injected; the map must always equal the reference, and its
 * metadata must go back to zero when emptied.
 */
#include "common/mem.h"
#include "store/store_internal.h"
#include "store_testutil.h"

#define SPAN 5000

static uint64_t ref[SPAN];

static void check_all(pagemap *m, const uint32_t *idx)
{
    uint32_t count = 0;
    for (uint32_t k = 0; k < SPAN; k++) {
        uint64_t *v = tmem__map_find(m, idx[k]);
        if (ref[k]) {
            ASSERT_TRUE(v != NULL);
            ASSERT_U64_EQ(*v, ref[k]);
            count++;
        } else {
            ASSERT_TRUE(v == NULL);
        }
    }
    ASSERT_EQ(m->count, count);
}

static bool drop_odd(uint64_t val, uint32_t index, void *arg)
{
    (void)index;
    (void)arg;
    return val & 1;
}

static void run(const uint32_t *idx, uint64_t seed)
{
    tmem_store *s;
    ASSERT_EQ(tmem_store_create(NULL, &s), 0);
    uint64_t meta0 = atomic_load(&s->meta_bytes);
    pagemap m;
    memset(&m, 0, sizeof m);
    memset(ref, 0, sizeof ref);
    uint64_t rng = seed;
    for (int step = 0; step < 40000; step++) {
        uint32_t k = (uint32_t)(tu_rand(&rng) % SPAN);
        int op = (int)(tu_rand(&rng) % 10);
        if (op < 6) {
            uint64_t val = (tu_rand(&rng) | 2) & ~(uint64_t)0 >> 1;
            uint64_t old = 7;
            int fail = tu_rand(&rng) % 50 == 0;
            if (fail)
                tmem__fault_arm(1, 0);
            int r = tmem__map_set(s, &m, idx[k], val, &old);
            tmem__fault_arm(0, 0);
            if (r == 0) {
                ASSERT_U64_EQ(old, ref[k]);
                ref[k] = val;
            } else {
                ASSERT_EQ(r, TMEM_ENOMEM);
                ASSERT_TRUE(fail);
            }
        } else if (op < 9) {
            ASSERT_U64_EQ(tmem__map_del(s, &m, idx[k]), ref[k]);
            ref[k] = 0;
        } else if (step % 97 == 0) {
            uint64_t want = 0;
            for (uint32_t j = 0; j < SPAN; j++)
                if (ref[j] & 1) {
                    want++;
                    ref[j] = 0;
                }
            ASSERT_U64_EQ(tmem__map_filter(s, &m, drop_odd, NULL), want);
        }
        if (step % 1000 == 0)
            check_all(&m, idx);
    }
    check_all(&m, idx);
    for (uint32_t k = 0; k < SPAN; k++)
        tmem__map_del(s, &m, idx[k]);
    ASSERT_EQ(m.count, 0);
    ASSERT_EQ(m.nchunks, 0);
    ASSERT_U64_EQ(atomic_load(&s->meta_bytes), meta0);
    tmem_store_destroy(s);
}

TEST(pagemap_dense_random)
{
    static uint32_t idx[SPAN];
    for (uint32_t k = 0; k < SPAN; k++)
        idx[k] = k + 100;
    run(idx, 1);
}

TEST(pagemap_sparse_random)
{
    static uint32_t idx[SPAN];
    for (uint32_t k = 0; k < SPAN; k++)
        idx[k] = k * 2654435761u; /* distinct: odd multiplier */
    run(idx, 2);
}

TEST(pagemap_dense_costs_under_9_bytes_a_page)
{
    tmem_store *s;
    ASSERT_EQ(tmem_store_create(NULL, &s), 0);
    uint64_t meta0 = atomic_load(&s->meta_bytes);
    pagemap m;
    memset(&m, 0, sizeof m);
    uint64_t old;
    for (uint32_t i = 0; i < 65536; i++)
        ASSERT_EQ(tmem__map_set(s, &m, i, 2 * i + 2, &old), 0);
    uint64_t per_page = (atomic_load(&s->meta_bytes) - meta0) / 65536;
    ASSERT_LE(per_page, 9);
    tmem__map_free(s, &m);
    ASSERT_U64_EQ(atomic_load(&s->meta_bytes), meta0);
    tmem_store_destroy(s);
}
