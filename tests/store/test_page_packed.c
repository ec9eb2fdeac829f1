/*
 * Packed puts (tmem_page_put_packed, tmem__blob_put_packed): pages a
 * tenant packed itself (tmem__pack) are stored as given, deduplicate with
 * pages put raw, stay exact whatever hash the tenant claims, and bad
 * encodings are refused.
 */
#include <stdlib.h>

#include <lz4.h>

#include "common/pack.h"
#include "store/blob.h"
#include "store/codec.h"
#include "store/dedup.h"
#include "blob_testutil.h"

static tmem_store *mkstore(tmem_compress codec)
{
    return tu_store(0, codec);
}

static tmem_client *mkclient(tmem_store *s, int *pool)
{
    tmem_client *c = tu_client(s);
    *pool = tmem_pool_new(c, NULL, PERS, NULL);
    ASSERT_GE(*pool, 0);
    return c;
}

/* A text-like page, compressible, different for each seed. */
static void text_page(unsigned char *p, uint64_t seed)
{
    tu_page(p, seed * 5 + 2);
}

struct packed {
    tmem_packed pk;
    uint32_t hash;
    unsigned char data[TMEM_PAGE_SIZE];
};

static void pack(const void *page, struct packed *out)
{
    static _Alignas(8) unsigned char state[TMEM_PACK_STATE_SIZE];
    tmem__pack(page, state, out->data, &out->pk, &out->hash);
}

/* 64 bytes claimed to be LZ4 that do not decode, under hash. */
static struct packed junk_lz4(uint32_t hash)
{
    struct packed j = {.pk = {TMEM_PACK_LZ4, 64, 0}, .hash = hash};
    memset(j.data, 0xff, 64);
    return j;
}

static int put_packed(tmem_client *c, int pool, uint64_t obj, uint32_t idx,
                      const struct packed *p)
{
    tmem_oid oid = {{obj, 0, 0}};
    return tmem_page_put_packed(c, pool, &oid, idx, &p->pk, p->data, p->hash);
}

static void expect_page(tmem_client *c, int pool, uint64_t obj, uint32_t idx,
                        const void *want)
{
    tmem_oid oid = {{obj, 0, 0}};
    unsigned char got[TMEM_PAGE_SIZE];
    ASSERT_EQ(tmem_page_get(c, pool, &oid, idx, got), 1);
    ASSERT_MEM_EQ(got, want, TMEM_PAGE_SIZE);
}

static tmem_global_stats gstats(tmem_store *s)
{
    tmem_global_stats g;
    ASSERT_EQ(tmem_store_stats(s, &g), 0);
    return g;
}

TEST(packed_pack_picks_the_encoding)
{
    unsigned char page[TMEM_PAGE_SIZE], back[TMEM_PAGE_SIZE];
    struct packed p;
    memset(page, 0, sizeof page);
    pack(page, &p);
    ASSERT_EQ(p.pk.enc, TMEM_PACK_FILL);
    ASSERT_EQ(p.pk.len, 0);
    ASSERT_EQ(p.pk.fill, 0);
    text_page(page, 1);
    pack(page, &p);
    ASSERT_EQ(p.pk.enc, TMEM_PACK_LZ4);
    ASSERT_GT(p.pk.len, 0);
    ASSERT_LE(p.pk.len, TMEM_PACK_LZ4_MAX);
    ASSERT_EQ(p.hash, tmem__page_hash(page));
    ASSERT_EQ(tmem__unpack(&p.pk, p.data, back), 0);
    ASSERT_MEM_EQ(back, page, TMEM_PAGE_SIZE);
    /* the same bytes as the store's own LZ4: dedup compares bytes first */
    ASSERT_EQ(tmem__codec_compress(TMEM_COMPRESS_LZ4, page, back),
              (int)p.pk.len);
    ASSERT_MEM_EQ(back, p.data, p.pk.len);
    bt_random(page, 7);
    pack(page, &p);
    ASSERT_EQ(p.pk.enc, TMEM_PACK_RAW);
    ASSERT_EQ(p.pk.len, TMEM_PAGE_SIZE);
    ASSERT_MEM_EQ(p.data, page, TMEM_PAGE_SIZE);
}

/* LZ4HC (tmem__pack_level, what `tmem run` packs with): an LZ4 block the
 * store keeps as given and every reader decodes, smaller in sum than the
 * fast compressor's on real heap pages; bad levels are refused. */
TEST(packed_hc_levels_store_smaller_and_read_back)
{
    size_t loaded;
    unsigned char *pages = bt_corpus(&loaded);
    size_t n = loaded > 512 ? 512 : loaded;
    void *hc = malloc(tmem__pack_hc_size());
    ASSERT_TRUE(hc != NULL);
    static _Alignas(8) unsigned char state[TMEM_PACK_STATE_SIZE];
    tmem_store *s = mkstore(TMEM_COMPRESS_LZ4);
    int pool;
    tmem_client *c = mkclient(s, &pool);
    uint64_t fast = 0, slow = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *page = pages + i * TMEM_PAGE_SIZE;
        struct packed f, h;
        tmem__pack(page, state, f.data, &f.pk, &f.hash);
        tmem__pack_level(page, state, hc, 3, h.data, &h.pk, &h.hash);
        ASSERT_EQ(h.hash, f.hash);
        ASSERT_EQ(h.pk.enc == TMEM_PACK_FILL, f.pk.enc == TMEM_PACK_FILL);
        fast += f.pk.len;
        slow += h.pk.len;
        /* level 0 is the fast compressor's bytes exactly */
        struct packed z;
        tmem__pack_level(page, state, hc, 0, z.data, &z.pk, &z.hash);
        ASSERT_EQ(z.pk.len, f.pk.len);
        ASSERT_MEM_EQ(z.data, f.data, f.pk.len);
        ASSERT_EQ(put_packed(c, pool, 3, (uint32_t)i, &h), 1);
    }
    for (size_t i = 0; i < n; i++)
        expect_page(c, pool, 3, (uint32_t)i, pages + i * TMEM_PAGE_SIZE);
    ASSERT_LT(slow, fast - fast / 20); /* at least 5 % fewer bytes */
    int lv = -1;
    ASSERT_EQ(tmem__pack_level_parse("12", &lv), 0);
    ASSERT_EQ(lv, 12);
    ASSERT_EQ(tmem__pack_level_parse("0", &lv), 0);
    ASSERT_EQ(lv, 0);
    const char *bad[] = {"13", "-1", "", "3x", "x", "99999999999999999999"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        ASSERT_EQ(tmem__pack_level_parse(bad[k], &lv), -EINVAL);
    ASSERT_EQ(tmem__pack_level_parse(NULL, &lv), -EINVAL);
    free(hc);
    tmem__corpus_free(pages, loaded);
    tmem_store_destroy(s);
}

TEST(packed_roundtrip_and_dedup_with_raw_puts)
{
    tmem_store *s = mkstore(TMEM_COMPRESS_LZ4);
    int pa, pb;
    tmem_client *a = mkclient(s, &pa), *b = mkclient(s, &pb);
    unsigned char page[3][TMEM_PAGE_SIZE];
    struct packed p[3];
    text_page(page[0], 1);
    memset(page[1], 0x77, TMEM_PAGE_SIZE);
    bt_random(page[2], 3);
    for (int k = 0; k < 3; k++) {
        pack(page[k], &p[k]);
        ASSERT_EQ(put_packed(a, pa, 1, (uint32_t)k, &p[k]), 1);
        expect_page(a, pa, 1, (uint32_t)k, page[k]);
    }
    tmem_global_stats g0 = gstats(s);
    ASSERT_EQ(g0.compress_poor, 1); /* the random page: stored raw */
    /* the same pages put raw into another persistent pool of the same
     * tenant share the stored copies (its private arena) */
    int pa2 = tmem_pool_new(a, NULL, PERS, NULL);
    ASSERT_GE(pa2, 0);
    tmem_oid oid = {{9, 0, 0}};
    ASSERT_EQ(tmem_page_put(a, pa2, &oid, 0, page[0]), 1);
    ASSERT_EQ(tmem_page_put(a, pa2, &oid, 2, page[2]), 1);
    tmem_global_stats g1 = gstats(s);
    ASSERT_EQ(g1.dedup_hits, g0.dedup_hits + 2);
    ASSERT_EQ(g1.data_bytes, g0.data_bytes);
    /* another tenant's persistent pages never share them */
    ASSERT_EQ(tmem_page_put(b, pb, &oid, 0, page[0]), 1);
    ASSERT_EQ(gstats(s).dedup_hits, g1.dedup_hits);
    ASSERT_GT(gstats(s).data_bytes, g1.data_bytes);
    /* and the other way round: raw first, then packed */
    text_page(page[0], 2);
    ASSERT_EQ(tmem_page_put(a, pa2, &oid, 5, page[0]), 1);
    pack(page[0], &p[0]);
    ASSERT_EQ(put_packed(a, pa, 2, 0, &p[0]), 1);
    ASSERT_EQ(gstats(s).dedup_hits, g1.dedup_hits + 1);
    expect_page(a, pa, 2, 0, page[0]);
    expect_page(a, pa2, 9, 5, page[0]);
    tmem_store_destroy(s);
}

TEST(packed_bad_encodings_refused)
{
    tmem_store *s = mkstore(TMEM_COMPRESS_LZ4);
    int pool;
    tmem_client *c = mkclient(s, &pool);
    unsigned char page[TMEM_PAGE_SIZE];
    struct packed p;
    text_page(page, 4);
    pack(page, &p);
    ASSERT_EQ(put_packed(c, pool, 1, 0, &p), 1);
    struct {
        uint32_t enc, len;
    } bad[] = {
        {7, 100},                               /* unknown encoding */
        {TMEM_PACK_RAW, 100},                   /* raw, not a page */
        {TMEM_PACK_FILL, 4},                    /* fill carries no bytes */
        {TMEM_PACK_LZ4, 0},                     /* empty LZ4 */
        {TMEM_PACK_LZ4, TMEM_PACK_LZ4_MAX + 1}, /* past the raw bound */
        {TMEM_PACK_LZ4, UINT32_MAX},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct packed q = p;
        q.pk.enc = bad[k].enc;
        q.pk.len = bad[k].len;
        ASSERT_EQ(put_packed(c, pool, 1, 0, &q), TMEM_EINVAL);
        /* a failed put leaves nothing readable under that name */
        tmem_oid oid = {{1, 0, 0}};
        unsigned char got[TMEM_PAGE_SIZE];
        ASSERT_EQ(tmem_page_get(c, pool, &oid, 0, got), 0);
        ASSERT_EQ(put_packed(c, pool, 1, 0, &p), 1);
    }
    ASSERT_EQ(tmem_page_put_packed(c, pool, &(tmem_oid){{1, 0, 0}}, 0, NULL,
                                   p.data, 0),
              TMEM_EINVAL);
    tmem_store_destroy(s);
}

/* A tenant that claims another page's hash gets no one's page: the store
 * ignores the claim and indexes what it stores by its own keyed hash. */
TEST(packed_lying_hash_stays_exact)
{
    tmem_store *s = mkstore(TMEM_COMPRESS_LZ4);
    int pa, pb;
    tmem_client *a = mkclient(s, &pa), *b = mkclient(s, &pb);
    unsigned char victim[TMEM_PAGE_SIZE], mine[TMEM_PAGE_SIZE];
    text_page(victim, 10);
    text_page(mine, 11);
    tmem_oid oid = {{1, 0, 0}};
    ASSERT_EQ(tmem_page_put(b, pb, &oid, 0, victim), 1);
    struct packed p;
    pack(mine, &p);
    p.hash = tmem__page_hash(victim); /* the lie */
    tmem_global_stats g0 = gstats(s);
    ASSERT_EQ(put_packed(a, pa, 1, 0, &p), 1);
    ASSERT_EQ(gstats(s).dedup_hits, g0.dedup_hits);
    expect_page(a, pa, 1, 0, mine);
    expect_page(b, pb, 1, 0, victim);
    /* the victim's later puts of its own page still find its own copy
     * (or the liar's, which only ever holds "mine") and read back right */
    ASSERT_EQ(tmem_page_put(b, pb, &oid, 1, victim), 1);
    ASSERT_EQ(gstats(s).dedup_hits, g0.dedup_hits + 1);
    expect_page(b, pb, 1, 1, victim);
    /* LZ4 bytes that do not decode, claiming the victim's hash: the claim
     * is ignored, they dedup with nothing of the victim's, and only their
     * own reader gets an error */
    struct packed junk = junk_lz4(p.hash);
    g0 = gstats(s);
    ASSERT_EQ(put_packed(a, pa, 2, 0, &junk), 1);
    ASSERT_EQ(gstats(s).dedup_hits, g0.dedup_hits);
    unsigned char got[TMEM_PAGE_SIZE];
    ASSERT_EQ(tmem_page_get(a, pa, &(tmem_oid){{2, 0, 0}}, 0, got), -EIO);
    expect_page(b, pb, 1, 0, victim);
    expect_page(b, pb, 1, 1, victim);
    tmem_store_destroy(s);
}

/* LZ4 bytes that do not decode, under a fresh hash: stored as given, and
 * only the tenant that put them gets an error reading them back. */
TEST(packed_corrupt_data_fails_only_its_reader)
{
    tmem_store *s = mkstore(TMEM_COMPRESS_LZ4);
    int pa, pb;
    tmem_client *a = mkclient(s, &pa), *b = mkclient(s, &pb);
    struct packed junk = junk_lz4(12345);
    ASSERT_EQ(put_packed(a, pa, 1, 0, &junk), 1);
    tmem_oid oid = {{1, 0, 0}};
    unsigned char got[TMEM_PAGE_SIZE];
    ASSERT_EQ(tmem_page_get(a, pa, &oid, 0, got), -EIO);
    tmem_packed pk;
    ASSERT_EQ(tmem_page_get_packed(a, pa, &oid, 0, got, &pk), 1);
    ASSERT_EQ(pk.enc, TMEM_PACK_LZ4);
    ASSERT_EQ(tmem__unpack(&pk, got, got), -EIO);
    /* another client's pages are unaffected */
    unsigned char page[TMEM_PAGE_SIZE];
    text_page(page, 20);
    ASSERT_EQ(tmem_page_put(b, pb, &oid, 0, page), 1);
    expect_page(b, pb, 1, 0, page);
    tmem_store_destroy(s);
}

/* A client set to zstd or none: LZ4 from the tenant is decoded and stored
 * with the client's codec; undecodable data is refused then. */
TEST(packed_other_codecs_recode)
{
    tmem_compress codecs[] = {TMEM_COMPRESS_ZSTD, TMEM_COMPRESS_NONE};
    for (int k = 0; k < 2; k++) {
        tmem_store *s = mkstore(codecs[k]);
        int pool;
        tmem_client *c = mkclient(s, &pool);
        unsigned char page[TMEM_PAGE_SIZE];
        struct packed p;
        text_page(page, 30);
        pack(page, &p);
        ASSERT_EQ(p.pk.enc, TMEM_PACK_LZ4);
        ASSERT_EQ(put_packed(c, pool, 1, 0, &p), 1);
        expect_page(c, pool, 1, 0, page);
        tmem_packed pk;
        unsigned char buf[TMEM_PAGE_SIZE];
        tmem_oid oid = {{1, 0, 0}};
        ASSERT_EQ(tmem_page_get_packed(c, pool, &oid, 0, buf, &pk), 1);
        ASSERT_EQ(pk.enc, TMEM_PACK_RAW); /* zstd decoded, none raw */
        tmem_global_stats g = gstats(s);
        if (codecs[k] == TMEM_COMPRESS_ZSTD)
            ASSERT_LT(g.data_bytes, TMEM_PAGE_SIZE / 2);
        else
            ASSERT_EQ(g.data_bytes, TMEM_PAGE_SIZE);
        struct packed junk = junk_lz4(1);
        ASSERT_EQ(put_packed(c, pool, 2, 0, &junk), TMEM_EINVAL);
        tmem_store_destroy(s);
    }
}

/* Blob layer: under a forced hash collision, packed pages with equal hash
 * but different content stay apart, equal ones share one copy. */
TEST(packed_blob_forced_collision)
{
    tmem_blobstore *bs;
    ASSERT_EQ(tmem__blobstore_create(NULL, &bs), 0);
    tmem__blob_test_force_hash(bs, 1, 0xabcdef);
    unsigned char page[2][TMEM_PAGE_SIZE], got[TMEM_PAGE_SIZE];
    struct packed p[2];
    tmem_blob b[3];
    unsigned fl;
    for (int k = 0; k < 2; k++) {
        text_page(page[k], 40 + (uint64_t)k);
        pack(page[k], &p[k]);
        ASSERT_EQ(tmem__blob_put_packed(bs, BT_COMMON, &p[k].pk, p[k].data,
                                        TMEM_COMPRESS_LZ4, &b[k], &fl),
                  0);
        ASSERT_EQ(fl, 0);
    }
    ASSERT_NE(b[0], b[1]);
    ASSERT_EQ(tmem__blob_put(bs, BT_COMMON, page[1], TMEM_COMPRESS_LZ4, &b[2], &fl), 0);
    ASSERT_EQ(fl, TMEM_BLOB_PUT_DEDUP);
    ASSERT_EQ(b[2], b[1]);
    for (int k = 0; k < 2; k++) {
        ASSERT_EQ(tmem__blob_read(bs, b[k], got), 0);
        ASSERT_MEM_EQ(got, page[k], TMEM_PAGE_SIZE);
    }
    for (int k = 0; k < 3; k++)
        tmem__blob_release(bs, b[k]);
    tmem__blobstore_destroy(bs);
}
