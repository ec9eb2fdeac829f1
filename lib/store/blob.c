/*
 * The blob layer (blob.h): fill detection, dedup, codecs and storage of
 * page contents.
 *
 * Owns NZ allocator shards (zalloc.h) and ND dedup shards (dedup.h).  A
 * thread stores its new blobs in "its" allocator shard (assigned round
 * robin on first use), so puts from different threads do not share a lock;
 * the dedup shard is chosen by the top hash bits.
 *
 * Values: a fill page is ((uint64_t)word << 32) | 1; a stored blob is
 * ((idx + 1) << 3) | (shard << 1) (low bit 0, never 0).  In the dedup
 * index the same blob is the 28-bit ref ((shard << 26) | idx) + 1.
 *
 * Lifetime: an entry's ref counts references; when it drops to 0 the entry
 * is dead for good (puts never revive it: they only take references while
 * it is nonzero), is removed from the index under the dedup lock, then its
 * storage is freed.  A put compares candidates under the dedup lock, so a
 * candidate's storage cannot be freed during the compare.
 *
 * Lock order: dedup shard -> zalloc move (read) -> zalloc lock.
 */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <string.h>

#include "common/mem.h"
#include "common/thread_slot.h"
#include "store/blob.h"
#include "store/codec.h"
#include "store/dedup.h"
#include "store/zalloc.h"

#define NZ 4u  /* allocator shards: threads storing at once */
#define ND 16u /* dedup shards */

struct put_counters {
    _Atomic uint64_t dedup_hits, compress_poor, fill_puts, alloc_failed;
    _Atomic uint64_t refs;
} __attribute__((aligned(64)));

struct tmem_blobstore {
    tmem_zpool z[NZ];
    tmem_dedup d[ND];
    struct put_counters cnt[NZ];
    uint32_t ref_max;
    int force_hash;
    uint32_t forced_hash;
};

static unsigned shard_self(void)
{
    return tmem__thread_slot() % NZ;
}

static void cnt_inc(_Atomic uint64_t *c, int64_t d)
{
    atomic_fetch_add_explicit(c, (uint64_t)d, memory_order_relaxed);
}

/* ---- values --------------------------------------------------------- */

static tmem_blob blob_of(unsigned shard, uint32_t idx)
{
    return ((uint64_t)(idx + 1) << 3) | ((uint64_t)shard << 1);
}

static unsigned blob_shard(tmem_blob b)
{
    return (unsigned)(b >> 1) & 3u;
}

static uint32_t blob_idx(tmem_blob b)
{
    return (uint32_t)(b >> 3) - 1;
}

static uint32_t ref_of(unsigned shard, uint32_t idx)
{
    return ((shard << 26) | idx) + 1;
}

static tmem_blob ref_blob(uint32_t ref)
{
    return blob_of((ref - 1) >> 26, (ref - 1) & ((1u << 26) - 1));
}

static tmem_zent *ent_of(tmem_blobstore *bs, tmem_blob b)
{
    return tmem__zalloc_ent(&bs->z[blob_shard(b)], blob_idx(b));
}

/* ---- create / destroy ----------------------------------------------- */

int tmem__blobstore_create(tmem_blobstore **out)
{
    tmem_blobstore *bs = tmem__aligned_alloc(64, sizeof *bs);
    if (!bs)
        return TMEM_ENOMEM;
    memset(bs, 0, sizeof *bs);
    bs->ref_max = UINT32_MAX - 1;
    for (unsigned i = 0; i < NZ; i++) {
        if (tmem__zalloc_init(&bs->z[i]) < 0) {
            while (i--)
                tmem__zalloc_fini(&bs->z[i]);
            tmem__free(bs);
            return TMEM_ENOMEM;
        }
    }
    *out = bs;
    return 0;
}

void tmem__blobstore_destroy(tmem_blobstore *bs)
{
    if (!bs)
        return;
    for (unsigned i = 0; i < NZ; i++)
        tmem__zalloc_fini(&bs->z[i]);
    for (unsigned i = 0; i < ND; i++)
        tmem__dedup_fini(&bs->d[i]);
    tmem__free(bs);
}

/* ---- reading -------------------------------------------------------- */

/* Under the shard's rdlock: decompresses e into page. */
static int read_locked(const tmem_zent *e, void *page)
{
    char tmp[TMEM_PAGE_SIZE];
    uint64_t loc = atomic_load_explicit(&e->loc, memory_order_relaxed);
    const void *src = tmem__zalloc_map(e, tmp);
    return tmem__codec_decompress((tmem_compress)TMEM_ZA_CODEC(loc), src,
                                  TMEM_ZA_LEN(loc), page);
}

int tmem__blob_read(tmem_blobstore *bs, tmem_blob b, void *page)
{
    if (TMEM_BLOB_IS_FILL(b)) {
        tmem__fill_page(page, (uint32_t)(b >> 32));
        return 0;
    }
    tmem_zpool *z = &bs->z[blob_shard(b)];
    tmem__zalloc_rdlock(z);
    int r = read_locked(tmem__zalloc_ent(z, blob_idx(b)), page);
    tmem__zalloc_rdunlock(z);
    if (r == TMEM_ENOMEM)
        cnt_inc(&bs->cnt[shard_self()].alloc_failed, 1);
    return r == 0 || r == TMEM_ENOMEM ? r : -EIO;
}

int tmem__blob_read_packed(tmem_blobstore *bs, tmem_blob b, void *buf,
                           tmem_packed *pk)
{
    if (TMEM_BLOB_IS_FILL(b)) {
        *pk = (tmem_packed){.enc = TMEM_PACK_FILL, .fill = (uint32_t)(b >> 32)};
        return 0;
    }
    tmem_zpool *z = &bs->z[blob_shard(b)];
    tmem__zalloc_rdlock(z);
    const tmem_zent *e = tmem__zalloc_ent(z, blob_idx(b));
    uint64_t loc = atomic_load_explicit(&e->loc, memory_order_relaxed);
    tmem_compress c = (tmem_compress)TMEM_ZA_CODEC(loc);
    int r = 0;
    if (c == TMEM_COMPRESS_LZ4 || c == TMEM_COMPRESS_NONE) {
        /* map copies a straddling object into buf itself */
        const void *src = tmem__zalloc_map(e, buf);
        pk->len = TMEM_ZA_LEN(loc);
        if (src != buf)
            memcpy(buf, src, pk->len);
        pk->enc = c == TMEM_COMPRESS_LZ4 ? TMEM_PACK_LZ4 : TMEM_PACK_RAW;
    } else { /* zstd: the peer would need a context; decode here */
        r = read_locked(e, buf);
        *pk = (tmem_packed){.enc = TMEM_PACK_RAW, .len = TMEM_PAGE_SIZE};
    }
    tmem__zalloc_rdunlock(z);
    if (r == TMEM_ENOMEM)
        cnt_inc(&bs->cnt[shard_self()].alloc_failed, 1);
    return r == 0 || r == TMEM_ENOMEM ? r : -EIO;
}

/* ---- references ----------------------------------------------------- */

/* Takes a reference unless e is dead or full; returns 0 or -ENOSPC
 * (full) / -ENOENT (dead). */
static int ref_get(tmem_blobstore *bs, tmem_zent *e)
{
    uint32_t r = atomic_load_explicit(&e->ref, memory_order_relaxed);
    do {
        if (r == 0)
            return -ENOENT;
        if (r >= bs->ref_max)
            return TMEM_ENOSPC;
    } while (!atomic_compare_exchange_weak_explicit(
        &e->ref, &r, r + 1, memory_order_acquire, memory_order_relaxed));
    return 0;
}

int tmem__blob_ref(tmem_blobstore *bs, tmem_blob b)
{
    if (TMEM_BLOB_IS_FILL(b))
        return 0;
    int r = ref_get(bs, ent_of(bs, b));
    if (r == 0)
        cnt_inc(&bs->cnt[blob_shard(b)].refs, 1);
    return r == 0 ? 0 : TMEM_ENOSPC;
}

static uint32_t hash_cb(void *ctx, uint32_t ref)
{
    return ent_of(ctx, ref_blob(ref))->hash;
}

void tmem__blob_release(tmem_blobstore *bs, tmem_blob b)
{
    if (TMEM_BLOB_IS_FILL(b) || !b)
        return;
    unsigned s = blob_shard(b);
    tmem_zent *e = ent_of(bs, b);
    cnt_inc(&bs->cnt[s].refs, -1);
    if (atomic_fetch_sub_explicit(&e->ref, 1, memory_order_acq_rel) != 1)
        return;
    tmem_dedup *d = &bs->d[e->hash >> 28];
    tmem__dedup_lock(d);
    tmem__dedup_remove_locked(d, e->hash, ref_of(s, blob_idx(b)), hash_cb, bs);
    tmem__dedup_unlock(d);
    tmem__zalloc_free(&bs->z[s], blob_idx(b));
}

/* ---- put ------------------------------------------------------------ */

/* What a put stores: a raw page (compressed here with codec unless poor
 * says that was tried already), or LZ4 bytes packed by the caller
 * (page == NULL), with the hash of the page they decode to. */
struct put_in {
    const void *page;
    tmem_compress codec;
    bool poor;
    const void *z;
    uint32_t zlen;
    uint32_t hash;
};

struct match_ctx {
    tmem_blobstore *bs;
    const struct put_in *in;
    const void *raw; /* the new page decoded: in->page, or dec once filled */
    char *dec;       /* TMEM_PAGE_SIZE of the caller's, for packed input */
    int err; /* TMEM_ENOMEM: a zstd context was missing; -EINVAL: the
                packed input does not decode; either stops the search */
};

/* Packed input: true when candidate e holds the very same LZ4 bytes. */
static bool same_bytes(const tmem_zent *e, const struct put_in *in)
{
    char tmp[TMEM_PAGE_SIZE];
    uint64_t loc = atomic_load_explicit(&e->loc, memory_order_relaxed);
    if (TMEM_ZA_CODEC(loc) != TMEM_COMPRESS_LZ4 ||
        TMEM_ZA_LEN(loc) != in->zlen)
        return false;
    return memcmp(tmem__zalloc_map(e, tmp), in->z, in->zlen) == 0;
}

/* Full compare of a candidate against the new page; takes a reference
 * when they are equal.  Called under the dedup lock.  Packed input is
 * compared as bytes first; only when those differ are both decoded (so a
 * hash that lies costs a decode, and equal never means unequal pages).
 * Returns nonzero to end the search (a match, or an error in m->err). */
static int match_cb(void *ctx, uint32_t ref)
{
    struct match_ctx *m = ctx;
    tmem_blob b = ref_blob(ref);
    tmem_zpool *z = &m->bs->z[blob_shard(b)];
    tmem_zent *e = tmem__zalloc_ent(z, blob_idx(b));
    char page[TMEM_PAGE_SIZE];
    if (e->hash != m->in->hash ||
        atomic_load_explicit(&e->ref, memory_order_relaxed) == 0)
        return 0;
    tmem__zalloc_rdlock(z);
    int r = 0, same = m->in->z && same_bytes(e, m->in);
    if (!same && !m->raw) {
        tmem_packed pk = {TMEM_PACK_LZ4, m->in->zlen, 0};
        if (tmem__unpack(&pk, m->in->z, m->dec) < 0)
            r = -EINVAL;
        else
            m->raw = m->dec;
    }
    if (!same && r == 0) {
        r = read_locked(e, page);
        same = r == 0 && memcmp(page, m->raw, TMEM_PAGE_SIZE) == 0;
    }
    tmem__zalloc_rdunlock(z);
    if (r == TMEM_ENOMEM || r == -EINVAL) {
        m->err = r;
        return 1;
    }
    return same && ref_get(m->bs, e) == 0;
}

/* Accounts a dedup hit on ref (whose reference the match took). */
static void found(tmem_blobstore *bs, unsigned s, uint32_t ref, tmem_blob *out,
                  unsigned *fl)
{
    cnt_inc(&bs->cnt[s].dedup_hits, 1);
    cnt_inc(&bs->cnt[(ref - 1) >> 26].refs, 1);
    *out = ref_blob(ref);
    *fl = TMEM_BLOB_PUT_DEDUP;
}

/* Compresses (unless packed already) and stores a page not found in the
 * index. */
static int store_new(tmem_blobstore *bs, struct match_ctx *m, tmem_blob *out,
                     unsigned *fl)
{
    const struct put_in *in = m->in;
    char buf[TMEM_CODEC_MAX_OUT];
    unsigned s = shard_self(), codec = TMEM_COMPRESS_LZ4;
    const void *src = in->z;
    uint32_t len = in->zlen;
    if (in->page) {
        int n = in->poor ? 0 : tmem__codec_compress(in->codec, in->page, buf);
        if (n < 0)
            return n;
        src = n > 0 ? buf : in->page;
        len = n > 0 ? (uint32_t)n : TMEM_PAGE_SIZE;
        codec = n > 0 ? (unsigned)in->codec : 0;
        if (n == 0 && in->codec != TMEM_COMPRESS_NONE) {
            cnt_inc(&bs->cnt[s].compress_poor, 1);
            *fl |= TMEM_BLOB_PUT_RAW;
        }
    }
    uint32_t idx, h = in->hash;
    if (tmem__zalloc_store(&bs->z[s], src, len, codec, h, &idx) < 0)
        return TMEM_ENOMEM;
    /* Look again under the lock: a thread putting the same page since our
     * first look must not leave two copies (dedup stays exact). */
    tmem_dedup *d = &bs->d[h >> 28];
    tmem__dedup_lock(d);
    m->err = 0;
    uint32_t ref = tmem__dedup_find_locked(d, h, match_cb, m);
    int r = 0;
    if (!ref || m->err)
        r = tmem__dedup_insert_locked(d, h, ref_of(s, idx), hash_cb, bs);
    tmem__dedup_unlock(d);
    if (r < 0 || (ref && !m->err)) {
        atomic_store(&tmem__zalloc_ent(&bs->z[s], idx)->ref, 0);
        tmem__zalloc_free(&bs->z[s], idx);
    }
    if (r < 0)
        return TMEM_ENOMEM;
    if (ref && !m->err) {
        found(bs, s, ref, out, fl);
        return 0;
    }
    cnt_inc(&bs->cnt[s].refs, 1);
    *out = blob_of(s, idx);
    return 0;
}

/* Looks for the content in the index, else stores it.  Returns 0,
 * TMEM_ENOMEM, or -EINVAL (packed input that does not decode, found while
 * comparing with a candidate). */
static int put_content(tmem_blobstore *bs, struct put_in *in,
                       tmem_blob *out, unsigned *fl)
{
    unsigned s = shard_self();
    char dec[TMEM_PAGE_SIZE];
    if (bs->force_hash)
        in->hash = bs->forced_hash;
    struct match_ctx m = {bs, in, in->page, dec, 0};
    tmem_dedup *d = &bs->d[in->hash >> 28];
    tmem__dedup_lock(d);
    uint32_t ref = tmem__dedup_find_locked(d, in->hash, match_cb, &m);
    tmem__dedup_unlock(d);
    int r = m.err;
    if (r == 0 && ref) {
        found(bs, s, ref, out, fl);
        return 0;
    }
    if (r == 0)
        r = store_new(bs, &m, out, fl);
    if (r == TMEM_ENOMEM)
        cnt_inc(&bs->cnt[s].alloc_failed, 1);
    return r;
}

/* A fill value for word w. */
static tmem_blob fill_blob(tmem_blobstore *bs, uint32_t w, unsigned *fl)
{
    cnt_inc(&bs->cnt[shard_self()].fill_puts, 1);
    *fl = TMEM_BLOB_PUT_FILL;
    return (uint64_t)w << 32 | TMEM_BLOB_FILL_TAG;
}

int tmem__blob_put(tmem_blobstore *bs, const void *page, tmem_compress codec,
                   tmem_blob *out, unsigned *flags)
{
    unsigned fl = 0;
    uint32_t word;
    int r = 0;
    if (tmem__fill_word(page, &word)) {
        *out = fill_blob(bs, word, &fl);
    } else {
        struct put_in in = {.page = page, .codec = codec,
                            .hash = tmem__page_hash(page)};
        r = put_content(bs, &in, out, &fl);
    }
    if (flags && r == 0)
        *flags = fl;
    return r;
}

int tmem__blob_put_packed(tmem_blobstore *bs, const tmem_packed *pk,
                          const void *data, uint32_t hash, tmem_compress codec,
                          tmem_blob *out, unsigned *flags)
{
    char page[TMEM_PAGE_SIZE];
    unsigned fl = 0;
    int r;
    switch (pk->enc) {
    case TMEM_PACK_FILL:
        if (pk->len != 0)
            return -EINVAL;
        *out = fill_blob(bs, pk->fill, &fl);
        r = 0;
        break;
    case TMEM_PACK_RAW: {
        if (pk->len != TMEM_PAGE_SIZE)
            return -EINVAL;
        /* LZ4 was tried with our bound: do not try it again */
        struct put_in in = {.page = data, .codec = codec,
                            .poor = codec == TMEM_COMPRESS_LZ4,
                            .hash = tmem__page_hash(data)};
        r = put_content(bs, &in, out, &fl);
        break;
    }
    case TMEM_PACK_LZ4: {
        if (pk->len == 0 || pk->len > TMEM_CODEC_MAX_OUT)
            return -EINVAL;
        if (codec == TMEM_COMPRESS_LZ4) {
            struct put_in in = {.z = data, .zlen = pk->len, .hash = hash};
            r = put_content(bs, &in, out, &fl);
            break;
        }
        /* another codec for this client: decode, then as a raw page */
        if (tmem__unpack(pk, data, page) < 0)
            return -EINVAL;
        return tmem__blob_put(bs, page, codec, out, flags);
    }
    default:
        return -EINVAL;
    }
    if (flags && r == 0)
        *flags = fl;
    return r;
}

/* ---- queries -------------------------------------------------------- */

uint32_t tmem__blob_size(tmem_blobstore *bs, tmem_blob b)
{
    if (TMEM_BLOB_IS_FILL(b) || !b)
        return 0;
    return TMEM_ZA_LEN(
        atomic_load_explicit(&ent_of(bs, b)->loc, memory_order_relaxed));
}

int tmem__blob_is_raw(tmem_blobstore *bs, tmem_blob b)
{
    if (TMEM_BLOB_IS_FILL(b) || !b)
        return 0;
    return TMEM_ZA_CODEC(atomic_load_explicit(&ent_of(bs, b)->loc,
                                              memory_order_relaxed)) == 0;
}

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void tmem__blobstore_stats(tmem_blobstore *bs, tmem_blobstore_stats *out)
{
    memset(out, 0, sizeof *out);
    out->meta_bytes = malloc_usable_size(bs) + 8;
    for (unsigned i = 0; i < NZ; i++) {
        tmem_zpool *z = &bs->z[i];
        struct put_counters *c = &bs->cnt[i];
        out->data_bytes += LD(z->data_bytes);
        out->meta_bytes += LD(z->meta_bytes);
        out->blobs += LD(z->objects);
        out->raw_blobs += LD(z->raw_objects);
        out->refs += LD(c->refs);
        out->dedup_hits += LD(c->dedup_hits);
        out->compress_poor += LD(c->compress_poor);
        out->fill_puts += LD(c->fill_puts);
        out->alloc_failed += LD(c->alloc_failed);
    }
    for (unsigned i = 0; i < ND; i++)
        out->meta_bytes += LD(bs->d[i].bytes);
}

/* ---- test hooks ----------------------------------------------------- */

void tmem__blob_test_force_hash(tmem_blobstore *bs, int on, uint32_t h)
{
    bs->force_hash = on;
    bs->forced_hash = h;
}

void tmem__blob_test_ref_max(tmem_blobstore *bs, uint32_t max)
{
    bs->ref_max = max;
}

int tmem__blobstore_compact(tmem_blobstore *bs, int force)
{
    int total = 0;
    for (unsigned i = 0; i < NZ; i++) {
        int r = tmem__zalloc_compact(&bs->z[i], force);
        if (r < 0)
            return r;
        total += r;
    }
    return total;
}
