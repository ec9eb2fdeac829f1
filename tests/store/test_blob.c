/*
 * Blob layer tests: fill values, codecs, dedup (across codecs, under a
 * forced hash collision), raw storage, reference limits, counters, the
 * footprint on the project corpus against zram, churn, compaction and
 * concurrency.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "blob_testutil.h"
#include "common/mem.h"
#include "store/blob.h"
#include "store/dedup.h"

static tmem_blobstore *mk(void)
{
    tmem_blobstore *bs;
    ASSERT_EQ(tmem__blobstore_create(NULL, &bs), 0);
    return bs;
}

static tmem_blob put(tmem_blobstore *bs, const void *page, tmem_compress c,
                     unsigned *fl)
{
    tmem_blob b = 0;
    unsigned f = 0;
    ASSERT_EQ(tmem__blob_put(bs, BT_COMMON, page, c, &b, &f), 0);
    ASSERT_NE(b, 0);
    if (fl)
        *fl = f;
    return b;
}

static void expect(tmem_blobstore *bs, tmem_blob b, const void *want)
{
    unsigned char got[PG];
    ASSERT_EQ(tmem__blob_read(bs, b, got), 0);
    ASSERT_MEM_EQ(got, want, PG);
}

static void stats(tmem_blobstore *bs, tmem_blobstore_stats *st)
{
    tmem__blobstore_stats(bs, st);
}

TEST(blob_fill_zero_byte_word)
{
    tmem_blobstore *bs = mk();
    unsigned char pg[PG];
    uint32_t *w = (uint32_t *)pg;
    unsigned fl;
    tmem_blobstore_stats st0, st;
    stats(bs, &st0);

    memset(pg, 0, PG);
    tmem_blob z = put(bs, pg, TMEM_COMPRESS_LZ4, &fl);
    ASSERT_TRUE(TMEM_BLOB_IS_FILL(z));
    ASSERT_EQ(fl, TMEM_BLOB_PUT_FILL);
    expect(bs, z, pg);

    memset(pg, 0xAB, PG);
    tmem_blob ab = put(bs, pg, TMEM_COMPRESS_ZSTD, &fl);
    ASSERT_TRUE(TMEM_BLOB_IS_FILL(ab));
    ASSERT_U64_EQ(ab >> 32, 0xABABABABu);
    expect(bs, ab, pg);

    for (int i = 0; i < PG / 4; i++)
        w[i] = 0x01020304u;
    tmem_blob wd = put(bs, pg, TMEM_COMPRESS_NONE, &fl);
    ASSERT_TRUE(TMEM_BLOB_IS_FILL(wd));
    expect(bs, wd, pg);
    ASSERT_EQ(tmem__blob_size(bs, wd), 0);
    ASSERT_EQ(tmem__blob_ref(bs, wd), 0);
    tmem__blob_release(bs, wd);
    tmem__blob_release(bs, wd);

    /* one word off: not a fill page */
    w[PG / 4 - 1] = 0x01020305u;
    tmem_blob nf = put(bs, pg, TMEM_COMPRESS_LZ4, &fl);
    ASSERT_TRUE(!TMEM_BLOB_IS_FILL(nf));
    expect(bs, nf, pg);
    tmem__blob_release(bs, nf);

    stats(bs, &st);
    ASSERT_U64_EQ(st.fill_puts, 3);
    ASSERT_U64_EQ(st.data_bytes, 0);
    ASSERT_U64_EQ(st.blobs, 0);
    tmem__blobstore_destroy(bs);
}

TEST(blob_roundtrip_each_codec)
{
    tmem_blobstore *bs = mk();
    unsigned char pg[PG];
    tmem_compress cs[] = {TMEM_COMPRESS_NONE, TMEM_COMPRESS_LZ4,
                          TMEM_COMPRESS_ZSTD};
    for (int c = 0; c < 3; c++) {
        bt_text(pg, 100 + (uint64_t)c);
        unsigned fl;
        tmem_blob b = put(bs, pg, cs[c], &fl);
        ASSERT_EQ(fl, 0);
        expect(bs, b, pg);
        if (cs[c] == TMEM_COMPRESS_NONE) {
            ASSERT_EQ(tmem__blob_size(bs, b), PG);
            ASSERT_TRUE(tmem__blob_is_raw(bs, b));
        } else {
            ASSERT_LT(tmem__blob_size(bs, b), PG / 2);
            ASSERT_TRUE(!tmem__blob_is_raw(bs, b));
        }
        tmem__blob_release(bs, b);
    }
    tmem_blobstore_stats st;
    stats(bs, &st);
    ASSERT_U64_EQ(st.blobs, 0);
    ASSERT_U64_EQ(st.refs, 0);
    ASSERT_U64_EQ(st.data_bytes, 0);
    ASSERT_U64_EQ(st.compress_poor, 0);
    tmem__blobstore_destroy(bs);
}

/* Dedup is of stored bytes (blob.c): pages of one codec share a copy,
 * the same page under two codecs is two copies, and a page stored raw
 * (codec none, or one that compressed badly) is one copy for every codec
 * that stored it raw. */
TEST(blob_dedup_within_a_codec)
{
    tmem_blobstore *bs = mk();
    unsigned char pg[PG], rnd[PG];
    bt_text(pg, 7);
    bt_random(rnd, 8);
    unsigned fl;
    tmem_blob a = put(bs, pg, TMEM_COMPRESS_LZ4, &fl);
    ASSERT_EQ(fl, 0);
    tmem_blob b = put(bs, pg, TMEM_COMPRESS_ZSTD, &fl);
    ASSERT_EQ(fl, 0);
    ASSERT_NE(a, b);
    tmem_blob a2 = put(bs, pg, TMEM_COMPRESS_LZ4, &fl);
    ASSERT_EQ(fl, TMEM_BLOB_PUT_DEDUP);
    ASSERT_U64_EQ(a2, a);
    tmem_blob b2 = put(bs, pg, TMEM_COMPRESS_ZSTD, &fl);
    ASSERT_EQ(fl, TMEM_BLOB_PUT_DEDUP);
    ASSERT_U64_EQ(b2, b);
    tmem_blob r1 = put(bs, rnd, TMEM_COMPRESS_LZ4, &fl);
    ASSERT_EQ(fl, TMEM_BLOB_PUT_RAW);
    tmem_blob r2 = put(bs, rnd, TMEM_COMPRESS_NONE, &fl);
    ASSERT_EQ(fl, TMEM_BLOB_PUT_DEDUP);
    ASSERT_U64_EQ(r2, r1);
    tmem_blobstore_stats st;
    stats(bs, &st);
    ASSERT_U64_EQ(st.blobs, 3);
    ASSERT_U64_EQ(st.refs, 6);
    ASSERT_U64_EQ(st.dedup_hits, 3);
    tmem_blob all[] = {a, b, a2, b2, r1, r2};
    for (int i = 0; i < 6; i++) {
        expect(bs, all[i], i < 4 ? pg : rnd);
        tmem__blob_release(bs, all[i]);
    }
    stats(bs, &st);
    ASSERT_U64_EQ(st.blobs, 0);
    /* content gone from the index too: a new put stores afresh */
    tmem_blob d = put(bs, pg, TMEM_COMPRESS_ZSTD, &fl);
    ASSERT_EQ(fl, 0);
    expect(bs, d, pg);
    tmem__blob_release(bs, d);
    tmem__blobstore_destroy(bs);
}

TEST(blob_forced_hash_collision_keeps_pages_apart)
{
    tmem_blobstore *bs = mk();
    tmem__blob_test_force_hash(bs, 1, 0x12345678u);
    enum { N = 200, INDEXED = 5 };
    static unsigned char pg[N][PG];
    tmem_blob b[N];
    tmem_compress codec[N];
    for (int i = 0; i < N; i++) {
        unsigned fl;
        bt_text(pg[i], 1000 + (uint64_t)i);
        codec[i] = i % 2 ? TMEM_COMPRESS_LZ4 : TMEM_COMPRESS_ZSTD;
        b[i] = put(bs, pg[i], codec[i], &fl);
        ASSERT_EQ(fl, 0);
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < i; j++)
            ASSERT_NE(b[i], b[j]);
        expect(bs, b[i], pg[i]);
    }
    tmem_blobstore_stats st;
    stats(bs, &st);
    ASSERT_U64_EQ(st.dedup_unindexed, N - INDEXED);
    /* identical content is still found among colliding neighbours... */
    unsigned fl;
    tmem_blob again = put(bs, pg[2], codec[2], &fl);
    ASSERT_EQ(fl, TMEM_BLOB_PUT_DEDUP);
    ASSERT_U64_EQ(again, b[2]);
    tmem__blob_release(bs, again);
    /* ...but not past the bound: stored again, right, outside the index */
    again = put(bs, pg[N / 2], codec[N / 2], &fl);
    ASSERT_EQ(fl, 0);
    ASSERT_NE(again, b[N / 2]);
    expect(bs, again, pg[N / 2]);
    tmem__blob_release(bs, again);
    /* removal from the middle of a probe run keeps the rest findable */
    for (int i = 1; i < N; i += 2)
        tmem__blob_release(bs, b[i]);
    for (int i = 0; i < N; i += 2) {
        if (i < INDEXED) {
            again = put(bs, pg[i], codec[i], &fl);
            ASSERT_EQ(fl, TMEM_BLOB_PUT_DEDUP);
            ASSERT_U64_EQ(again, b[i]);
            tmem__blob_release(bs, again);
        }
        expect(bs, b[i], pg[i]);
        tmem__blob_release(bs, b[i]);
    }
    stats(bs, &st);
    ASSERT_U64_EQ(st.blobs, 0);
    tmem__blobstore_destroy(bs);
}

/* The cost of that flood is bounded: N distinct pages all hashing alike
 * put in at most 3x the time of the same pages hashed honestly (each put
 * compares <= 4 candidates; an unbounded run made it N^2/2 compares). */
TEST(blob_forced_hash_cost_bounded)
{
    enum { N = 6000 };
    static unsigned char pg[N][PG];
    static tmem_blob b[N];
    for (int i = 0; i < N; i++)
        bt_text(pg[i], 7000 + (uint64_t)i);
    double t[2];
    for (int forced = 0; forced < 2; forced++) {
        tmem_blobstore *bs = mk();
        tmem__blob_test_force_hash(bs, forced, 0x0badcafeu);
        double t0 = bt_now_us();
        for (int i = 0; i < N; i++) {
            unsigned fl;
            b[i] = put(bs, pg[i], TMEM_COMPRESS_LZ4, &fl);
        }
        t[forced] = (bt_now_us() - t0) / 1e6;
        for (int i = 0; i < N; i += 97)
            expect(bs, b[i], pg[i]);
        for (int i = 0; i < N; i++)
            tmem__blob_release(bs, b[i]);
        tmem__blobstore_destroy(bs);
    }
    fprintf(stderr, "  %d puts: honest %.1f ms, all one hash %.1f ms\n", N,
            t[0] * 1e3, t[1] * 1e3);
    ASSERT_LT((long)(t[1] * 1e6), (long)(3 * t[0] * 1e6) + 5000);
}

TEST(blob_random_page_stored_raw)
{
    tmem_blobstore *bs = mk();
    unsigned char pg[PG];
    bt_random(pg, 99);
    unsigned fl;
    tmem_blob a = put(bs, pg, TMEM_COMPRESS_LZ4, &fl);
    ASSERT_EQ(fl, TMEM_BLOB_PUT_RAW);
    ASSERT_TRUE(tmem__blob_is_raw(bs, a));
    ASSERT_EQ(tmem__blob_size(bs, a), PG);
    expect(bs, a, pg);
    bt_random(pg, 100);
    tmem_blob z = put(bs, pg, TMEM_COMPRESS_ZSTD, &fl);
    ASSERT_EQ(fl, TMEM_BLOB_PUT_RAW);
    expect(bs, z, pg);
    bt_random(pg, 101);
    tmem_blob n = put(bs, pg, TMEM_COMPRESS_NONE, &fl);
    ASSERT_EQ(fl, 0); /* not compressed by choice: not "poor" */
    ASSERT_TRUE(tmem__blob_is_raw(bs, n));
    tmem_blobstore_stats st;
    stats(bs, &st);
    ASSERT_U64_EQ(st.compress_poor, 2);
    ASSERT_U64_EQ(st.raw_blobs, 3);
    ASSERT_U64_EQ(st.data_bytes, 3 * PG);
    tmem__blob_release(bs, a);
    tmem__blob_release(bs, z);
    tmem__blob_release(bs, n);
    stats(bs, &st);
    ASSERT_U64_EQ(st.raw_blobs, 0);
    tmem__blobstore_destroy(bs);
}

TEST(blob_ref_overflow_stores_copy)
{
    tmem_blobstore *bs = mk();
    tmem__blob_test_ref_max(bs, 3);
    unsigned char pg[PG];
    bt_text(pg, 5);
    unsigned fl;
    tmem_blob a = put(bs, pg, TMEM_COMPRESS_LZ4, &fl);
    ASSERT_EQ(tmem__blob_ref(bs, a), 0);
    ASSERT_EQ(tmem__blob_ref(bs, a), 0);
    ASSERT_EQ(tmem__blob_ref(bs, a), TMEM_ENOSPC);
    tmem_blob b = put(bs, pg, TMEM_COMPRESS_LZ4, &fl);
    ASSERT_EQ(fl, 0); /* a separate copy */
    ASSERT_NE(a, b);
    tmem_blob c = put(bs, pg, TMEM_COMPRESS_LZ4, &fl);
    ASSERT_EQ(fl, TMEM_BLOB_PUT_DEDUP); /* found the copy */
    ASSERT_U64_EQ(c, b);
    tmem_blobstore_stats st;
    stats(bs, &st);
    ASSERT_U64_EQ(st.blobs, 2);
    ASSERT_U64_EQ(st.refs, 5);
    for (int i = 0; i < 3; i++)
        tmem__blob_release(bs, a);
    expect(bs, b, pg);
    tmem__blob_release(bs, b);
    tmem__blob_release(bs, c);
    stats(bs, &st);
    ASSERT_U64_EQ(st.blobs, 0);
    ASSERT_U64_EQ(st.refs, 0);
    ASSERT_U64_EQ(st.data_bytes, 0);
    tmem__blobstore_destroy(bs);
}

TEST(blob_stats_counters)
{
    tmem_blobstore *bs = mk();
    unsigned char pg[PG];
    tmem_blob b[10];
    for (int i = 0; i < 10; i++) {
        bt_text(pg, (uint64_t)i % 5);
        b[i] = put(bs, pg, TMEM_COMPRESS_LZ4, NULL);
    }
    tmem_blobstore_stats st;
    stats(bs, &st);
    ASSERT_U64_EQ(st.blobs, 5);
    ASSERT_U64_EQ(st.refs, 10);
    ASSERT_U64_EQ(st.dedup_hits, 5);
    ASSERT_U64_EQ(st.fill_puts, 0);
    ASSERT_U64_EQ(st.alloc_failed, 0);
    uint64_t sum = 0;
    for (int i = 0; i < 5; i++)
        sum += tmem__blob_size(bs, b[i]);
    ASSERT_U64_EQ(st.data_bytes, sum);
    ASSERT_GT(st.meta_bytes, 0);
    for (int i = 0; i < 10; i++)
        tmem__blob_release(bs, b[i]);
    stats(bs, &st);
    ASSERT_U64_EQ(st.blobs, 0);
    ASSERT_U64_EQ(st.refs, 0);
    tmem__blobstore_destroy(bs);
}

/* The footprint target: the store's used_bytes must stay <= zram's
 * mem_used_total (~8.83 MB measured on this corpus; PERF.md ratio 3.8).
 * The store core adds its page maps (~9-20 bytes a page: <= 164 KB for
 * 8192 pages), so the blob layer gets at most 8.83 MB - 164 KB = 8.666 MB
 * with its data.  We require <= 8,640,000 (26 KB of margin): the LZ4
 * total is 8,383,083, so handles (16 B a blob), record headers (6 B: the
 * back-pointer that lets compaction work a segment at a time, and the
 * length), segment tails, the dedup index and the arena header must stay
 * under ~257 KB, 3.1% (the layout before arenas, whose objects straddled
 * segments and had no header, took ~215 KB). */
#define CORPUS_BLOB_BOUND 8640000u

TEST(blob_corpus_footprint_under_zram)
{
    size_t n;
    unsigned char *pages = bt_corpus(&n);
    tmem_blobstore *bs = mk();
    tmem_blob *b = calloc(n, sizeof *b);
    for (size_t i = 0; i < n; i++)
        b[i] = put(bs, pages + i * PG, TMEM_COMPRESS_LZ4, NULL);
    tmem_blobstore_stats st;
    stats(bs, &st);
    uint64_t total = st.data_bytes + st.meta_bytes;
    fprintf(stderr,
            "  corpus: %zu pages, %" PRIu64 " blobs, fill %" PRIu64
            ", dedup %" PRIu64 ", raw %" PRIu64 "\n"
            "  data %" PRIu64 " + meta %" PRIu64 " = %" PRIu64
            " bytes (%.2f bytes meta/blob; orig/used %.2f; zram ~8830000)\n",
            n, st.blobs, st.fill_puts, st.dedup_hits, st.raw_blobs,
            st.data_bytes, st.meta_bytes, total,
            (double)st.meta_bytes / (double)(st.blobs ? st.blobs : 1),
            (double)n * PG / (double)total);
    ASSERT_LE(total, CORPUS_BLOB_BOUND);
    for (size_t i = 0; i < n; i += 97)
        expect(bs, b[i], pages + i * PG);
    for (size_t i = 0; i < n; i++)
        tmem__blob_release(bs, b[i]);
    stats(bs, &st);
    ASSERT_U64_EQ(st.data_bytes, 0);
    ASSERT_U64_EQ(st.blobs, 0);
    free(b);
    tmem__blobstore_destroy(bs);
    tmem__corpus_free(pages, n);
}

/* Random order over 0..n-1. */
static void shuffle(uint32_t *ix, uint32_t n, uint64_t seed)
{
    for (uint32_t i = 0; i < n; i++)
        ix[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)(tu_rand(&seed) % i), t = ix[i - 1];
        ix[i - 1] = ix[j];
        ix[j] = t;
    }
}

/* After releasing 90% of the blobs in random order, the footprint follows
 * the live data: segments are compacted (waste <= ~1/4 of segments), the
 * dedup index shrinks; what stays is the handle table (16 bytes per blob
 * ever live at once, as a zsmalloc handle cache would). */
TEST(blob_churn_footprint_shrinks)
{
    enum { N = 20000 };
    tmem_blobstore *bs = mk();
    tmem_blob *b = calloc(N, sizeof *b);
    uint32_t *ix = malloc(N * sizeof *ix);
    unsigned char pg[PG];
    for (uint32_t i = 0; i < N; i++) {
        bt_text(pg, 50000 + i);
        b[i] = put(bs, pg, TMEM_COMPRESS_LZ4, NULL);
    }
    tmem_blobstore_stats full, st;
    stats(bs, &full);
    shuffle(ix, N, 42);
    for (uint32_t k = 0; k < N - N / 10; k++) {
        tmem__blob_release(bs, b[ix[k]]);
        b[ix[k]] = 0;
    }
    stats(bs, &st);
    uint64_t live = 0;
    for (uint32_t i = 0; i < N; i++)
        live += tmem__blob_size(bs, b[i]);
    fprintf(stderr,
            "  full: data %" PRIu64 " meta %" PRIu64
            "; after 90%% freed: data %" PRIu64 " meta %" PRIu64 "\n",
            full.data_bytes, full.meta_bytes, st.data_bytes, st.meta_bytes);
    ASSERT_U64_EQ(st.data_bytes, live);
    ASSERT_U64_EQ(st.blobs, N / 10);
    /* compaction keeps dead bytes under a quarter of what segments hold,
     * so a third of the live bytes and their record headers */
    uint64_t hdr = TMEM_ARENA_SREC_HDR * (uint64_t)(N / 10);
    uint64_t bound = live + hdr + (live + hdr) / 3 + 16u * N + 64 * 1024;
    ASSERT_LE(st.data_bytes + st.meta_bytes, bound);
    for (uint32_t i = 0; i < N; i++)
        if (b[i]) {
            bt_text(pg, 50000 + i);
            expect(bs, b[i], pg);
        }
    /* A forced compaction leaves at most two partly used segments (the
     * put head and the compaction head): what remains is the handle table
     * (16 B per blob ever live at once), the record headers, the dedup
     * index (load >= 1/8: <= 32 B per live blob + 4 KB of minimum tables)
     * and the segment list. */
    ASSERT_GE(tmem__blobstore_compact(bs, 1), 0);
    stats(bs, &st);
    fprintf(stderr,
            "  after forced compaction: data %" PRIu64 " meta %" PRIu64 "\n",
            st.data_bytes, st.meta_bytes);
    ASSERT_LE(st.meta_bytes, 16u * N + 4096 + 40u * (N / 10) +
                                 TMEM_ARENA_SREC_HDR * (N / 10) +
                                 2 * TMEM_ARENA_SEG_SIZE + 16 * 1024);
    for (uint32_t i = 0; i < N; i++)
        if (b[i]) {
            bt_text(pg, 50000 + i);
            expect(bs, b[i], pg);
            tmem__blob_release(bs, b[i]);
        }
    stats(bs, &st);
    ASSERT_U64_EQ(st.data_bytes, 0);
    ASSERT_U64_EQ(st.refs, 0);
    free(ix);
    free(b);
    tmem__blobstore_destroy(bs);
}

/* ---- allocation failures -------------------------------------------- */

/* Sweeps one put after `base` stored pages: fail the nth allocation (and
 * all later ones when sticky) until the put succeeds. */
static void sweep(uint32_t base, tmem_compress c, int sticky)
{
    unsigned char pg[PG];
    for (long n = 1; n < 1000; n++) {
        tmem_blobstore *bs = mk();
        tmem_blob *b = calloc(base + 1, sizeof *b);
        for (uint32_t i = 0; i < base; i++) {
            bt_text(pg, i);
            b[i] = put(bs, pg, c, NULL);
        }
        tmem_blobstore_stats st0, st;
        stats(bs, &st0);
        bt_text(pg, 777777);
        tmem_blob nb = 0;
        tmem__fault_arm(n, sticky);
        int r = tmem__blob_put(bs, BT_COMMON, pg, c, &nb, NULL);
        long hits = tmem__fault_hits(), seen = tmem__fault_seen();
        tmem__fault_arm(0, 0);
        stats(bs, &st);
        if (r == 0) {
            ASSERT_EQ(hits, 0);
            expect(bs, nb, pg);
            tmem__blob_release(bs, nb);
        } else {
            ASSERT_EQ(r, TMEM_ENOMEM);
            ASSERT_GE(hits, 1);
            ASSERT_U64_EQ(st.blobs, st0.blobs);
            ASSERT_U64_EQ(st.refs, st0.refs);
            ASSERT_U64_EQ(st.data_bytes, st0.data_bytes);
            ASSERT_U64_EQ(st.alloc_failed, 1);
        }
        for (uint32_t i = 0; i < base; i++) {
            bt_text(pg, i);
            expect(bs, b[i], pg);
            tmem__blob_release(bs, b[i]);
        }
        stats(bs, &st);
        ASSERT_U64_EQ(st.blobs, 0);
        ASSERT_U64_EQ(st.refs, 0);
        ASSERT_U64_EQ(st.data_bytes, 0);
        free(b);
        tmem__blobstore_destroy(bs);
        /* a success past an injected failure: one made ahead of need (an
         * arena's spare) was absorbed; go on with the next */
        if (r == 0 && !(seen >= n && !sticky))
            return;
    }
    ASSERT_TRUE(!"put never succeeded");
}

/* Each size hits a different first allocation: empty store (directory,
 * handle page, segment list, segment, index), a full handle page, a full
 * segment, a growing index. */
TEST(blob_allocfail_sweep)
{
    static const uint32_t bases[] = {0, 1, 48, 256, 300};
    for (int sticky = 0; sticky <= 1; sticky++)
        for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
            sweep(bases[i], TMEM_COMPRESS_LZ4, sticky);
            sweep(bases[i], TMEM_COMPRESS_NONE, sticky);
        }
}

/* In a fresh thread, the zstd context is allocated on first use. */
static void *zstd_sweep_thread(void *arg)
{
    (void)arg;
    sweep(0, TMEM_COMPRESS_ZSTD, 0);
    sweep(47, TMEM_COMPRESS_ZSTD, 1);
    return NULL;
}

TEST(blob_allocfail_sweep_zstd)
{
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, zstd_sweep_thread, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
}
