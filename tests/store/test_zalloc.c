/*
 * zalloc tests: objects straddling segments, exact accounting, empty
 * segments freed at once, compaction moving data behind stable handles.
 */
#include <stdlib.h>

#include "blob_testutil.h"
#include "store/zalloc.h"

#define SEG TMEM_ZA_SEG_SIZE

static void obj_bytes(unsigned char *p, uint32_t len, uint32_t seed)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (unsigned char)(seed * 31 + i * 7);
}

static void expect_obj(tmem_zpool *z, uint32_t idx, uint32_t len, uint32_t seed)
{
    unsigned char want[PG], tmp[PG];
    obj_bytes(want, len, seed);
    tmem_zent *e = tmem__zalloc_ent(z, idx);
    uint64_t loc = atomic_load(&e->loc);
    ASSERT_EQ(TMEM_ZA_LEN(loc), len);
    tmem__zalloc_rdlock(z);
    const void *p = tmem__zalloc_map(e, tmp);
    ASSERT_MEM_EQ(p, want, len);
    tmem__zalloc_rdunlock(z);
}

static uint32_t len_of(uint32_t i)
{
    return 1 + (i * 2654435761u) % PG;
}

TEST(zalloc_straddle_and_accounting)
{
    tmem_zpool z;
    ASSERT_EQ(tmem__zalloc_init(&z), 0);
    enum { N = 300 };
    uint32_t idx[N];
    uint64_t sum = 0;
    unsigned char buf[PG];
    for (uint32_t i = 0; i < N; i++) {
        obj_bytes(buf, len_of(i), i);
        ASSERT_EQ(tmem__zalloc_store(&z, buf, len_of(i), i % 3, i, &idx[i]), 0);
        ASSERT_EQ(atomic_load(&tmem__zalloc_ent(&z, idx[i])->ref), 1);
        ASSERT_EQ(tmem__zalloc_ent(&z, idx[i])->hash, i);
        sum += len_of(i);
    }
    ASSERT_U64_EQ(atomic_load(&z.data_bytes), sum);
    ASSERT_U64_EQ(atomic_load(&z.objects), N);
    ASSERT_U64_EQ(atomic_load(&z.raw_objects), N / 3);
    /* segments are filled to the byte: waste is headers + the head tail */
    uint64_t segs = sum / (SEG - 32) + 1;
    ASSERT_LE(z.nseg, segs + 1);
    for (uint32_t i = 0; i < N; i++) {
        expect_obj(&z, idx[i], len_of(i), i);
        ASSERT_EQ(
            TMEM_ZA_CODEC(atomic_load(&tmem__zalloc_ent(&z, idx[i])->loc)),
            i % 3);
    }
    for (uint32_t i = 0; i < N; i++) {
        atomic_store(&tmem__zalloc_ent(&z, idx[i])->ref, 0);
        tmem__zalloc_free(&z, idx[i]);
    }
    ASSERT_U64_EQ(atomic_load(&z.data_bytes), 0);
    ASSERT_U64_EQ(atomic_load(&z.objects), 0);
    ASSERT_EQ(z.nseg, 1); /* only the head is left */
    /* handles are reused */
    uint32_t again;
    ASSERT_EQ(tmem__zalloc_store(&z, buf, 10, 1, 0, &again), 0);
    ASSERT_LT(again, N);
    tmem__zalloc_fini(&z);
}

TEST(zalloc_empty_segment_freed_at_once)
{
    tmem_zpool z;
    ASSERT_EQ(tmem__zalloc_init(&z), 0);
    unsigned char buf[PG];
    uint32_t idx[16];
    obj_bytes(buf, PG, 0);
    for (int i = 0; i < 16; i++) /* 4 full pages a segment: ~5 segments */
        ASSERT_EQ(tmem__zalloc_store(&z, buf, PG, 0, 0, &idx[i]), 0);
    uint32_t n = z.nseg;
    uint64_t meta = atomic_load(&z.meta_bytes);
    /* free the first 3 objects: the first segment holds only them (and a
     * part of the 4th), so it stays; free the 4th: it goes */
    for (int i = 0; i < 4; i++) {
        atomic_store(&tmem__zalloc_ent(&z, idx[i])->ref, 0);
        tmem__zalloc_free(&z, idx[i]);
    }
    ASSERT_EQ(z.nseg, n - 1);
    ASSERT_LT(atomic_load(&z.meta_bytes), meta);
    for (int i = 4; i < 16; i++)
        expect_obj(&z, idx[i], PG, 0);
    tmem__zalloc_fini(&z);
}

TEST(zalloc_compaction_moves_behind_handles)
{
    tmem_zpool z;
    ASSERT_EQ(tmem__zalloc_init(&z), 0);
    enum { N = 2000 };
    static uint32_t idx[N];
    unsigned char buf[PG];
    for (uint32_t i = 0; i < N; i++) {
        obj_bytes(buf, len_of(i) / 3 + 1, i);
        ASSERT_EQ(tmem__zalloc_store(&z, buf, len_of(i) / 3 + 1, 1, i, &idx[i]),
                  0);
    }
    /* free 3 of 4: automatic compaction keeps dead bytes near 1/4 */
    for (uint32_t i = 0; i < N; i++)
        if (i % 4) {
            atomic_store(&tmem__zalloc_ent(&z, idx[i])->ref, 0);
            tmem__zalloc_free(&z, idx[i]);
        }
    uint64_t data = atomic_load(&z.data_bytes);
    ASSERT_GT(atomic_load(&z.compactions), 0);
    ASSERT_GT(atomic_load(&z.moved), 0);
    ASSERT_LE(z.seg_bytes - data, z.seg_bytes / 4 + 4 * SEG);
    ASSERT_GE(tmem__zalloc_compact(&z, 1), 0);
    ASSERT_LE(z.seg_bytes - data, 2 * SEG);
    for (uint32_t i = 0; i < N; i += 4)
        expect_obj(&z, idx[i], len_of(i) / 3 + 1, i);
    tmem__zalloc_fini(&z);
}
