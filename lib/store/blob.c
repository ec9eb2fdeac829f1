/*
 * The blob layer (blob.h): fill detection, dedup, codecs and storage of
 * page contents in arenas.
 *
 * Owns the arena table (number -> arena and its ND dedup shards; number 0
 * is the common arena) and the put counters.  A dedup shard is chosen by
 * the top hash bits; its table holds 28-bit refs (handle + 1) of DATA
 * records, never of aliases.
 *
 * Values: a fill page is ((uint64_t)word << 32) | 1; a stored blob is
 * (arena << 36) | ((handle + 1) << 3) (low bit 0, never 0).
 *
 * Lifetime: a handle's ref counts the references held on it (a name, a
 * reader, an alias on its target); when it drops to 0 the handle is dead
 * for good (puts never revive it: they only take references while it is
 * nonzero), is removed from the index under the dedup lock, then freed.
 * A put compares candidates under the dedup lock, so a candidate cannot
 * be freed during the compare (it may be moved: reads are seqlock reads).
 *
 * Dedup trusts nothing a tenant says.  The index key is a keyed hash the
 * store computes of the bytes it stores (codec, then payload: LZ4 as the
 * tenant packed it, or what the store compressed), with a random secret
 * per arena (192 bytes from getrandom), so a tenant can neither predict
 * nor forge where its pages land; a candidate matches only with the same
 * codec and the same stored bytes (memcmp, no decoding under the lock:
 * equal stored bytes decode to equal pages, whatever they are).  And
 * whatever the hash, a lookup compares at most MAX_CMP candidates and
 * probes at most TMEM_DEDUP_MAX_PROBE slots: past either bound the page
 * is stored without entering the index (counted in dedup_unindexed), so
 * a put's time under the shard lock is bounded.
 * An alias handle's aux names its target, whose reference it holds.
 *
 * Memory: every structure here (the arena table, the per-arena state, the
 * dedup tables) and every arena's pages are charged to the store's
 * account (acct.h) before they are taken; a refused charge fails the put
 * with -ENOSPC before anything was written.
 *
 * Lock order: dedup shard -> arena (arena.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "common/mem.h"
#include "common/thread_slot.h"
#include "store/blob.h"
#include "store/codec.h"
#include "store/dedup.h"
#include "store/spin.h"

#define NC 4u          /* counter shards: threads putting at once */
#define ND 16u         /* dedup shards per arena */
#define APG 256u       /* arena table page */
#define NAPG 256u      /* arena table pages: 65,536 arenas */
#define HANDLE_BITS 33 /* handle + 1 in a blob value */
#define MAX_CMP 4u     /* candidates compared in full per lookup */
#define KEY_BYTES 192u /* an arena's hash secret (>= XXH3_SECRET_SIZE_MIN) */

struct put_counters {
    _Atomic uint64_t dedup_hits, compress_poor, fill_puts, alloc_failed,
        dedup_unindexed;
    _Atomic int64_t refs; /* references on DATA handles (names, readers;
                             an alias holds one on its target) */
} __attribute__((aligned(64)));

struct barena {
    tmem_arena *a;
    unsigned no;
    tmem_dedup d[ND];
    unsigned char key[KEY_BYTES]; /* the index hash's secret */
};

struct tmem_blobstore {
    tmem_acct *acct;
    /* Walkers of the whole table (stats, reclaim) hold it for reading; a
     * private arena is unlinked under it (write) before it is freed. */
    pthread_rwlock_t walk;
    atomic_int lock; /* the arena table's free numbers and pages */
    _Atomic(struct barena *) *pages[NAPG];
    unsigned next_no;   /* numbers handed out so far */
    unsigned *free_no;  /* closed numbers to reuse */
    unsigned nfree, free_cap;
    _Atomic uint64_t private_bytes; /* table pages, barenas */
    struct put_counters cnt[NC];
    uint32_t ref_max;
    /* With a maintenance thread (maint.c): compaction a free would run
     * inline is asked of it instead. */
    _Atomic(void (*)(void *)) kick;
    void *_Atomic kick_ctx;
    int force_hash;
    uint32_t forced_hash;
    char *arena_dir; /* private arenas as files here (tmem__blobstore_set_dir) */
};

static struct put_counters *counters(tmem_blobstore *bs)
{
    return &bs->cnt[tmem__thread_slot() % NC];
}

static void cnt_inc(_Atomic uint64_t *c, int64_t d)
{
    atomic_fetch_add_explicit(c, (uint64_t)d, memory_order_relaxed);
}

static uint64_t held_of(void *p)
{
    return tmem__held(p);
}

/* Charges and counts a private structure of n bytes.  Returns 0 or
 * TMEM_ENOSPC. */
static int priv_take(tmem_blobstore *bs, uint64_t n)
{
    if (tmem__acct_charge(bs->acct, n) < 0)
        return TMEM_ENOSPC;
    atomic_fetch_add(&bs->private_bytes, n);
    return 0;
}

static void priv_give(tmem_blobstore *bs, uint64_t n)
{
    atomic_fetch_sub(&bs->private_bytes, n);
    tmem__acct_uncharge(bs->acct, n);
}

/* ---- values and the arena table ------------------------------------- */

static tmem_blob blob_of(unsigned no, uint32_t h)
{
    return (uint64_t)no << 36 | (uint64_t)(h + 1) << 3;
}

static unsigned blob_no(tmem_blob b)
{
    return (unsigned)(b >> 36);
}

static uint32_t blob_h(tmem_blob b)
{
    return (uint32_t)((b >> 3) & ((1ull << HANDLE_BITS) - 1)) - 1;
}

static struct barena *ba_of(tmem_blobstore *bs, unsigned no)
{
    _Atomic(struct barena *) *pg = bs->pages[no / APG];
    return pg ? atomic_load_explicit(&pg[no % APG], memory_order_acquire)
              : NULL;
}

static tmem_arena_handle *ent_of(tmem_blobstore *bs, tmem_blob b)
{
    return tmem__arena_ent(ba_of(bs, blob_no(b))->a, blob_h(b));
}

tmem_arena *tmem__blob_arena(tmem_blobstore *bs, int n)
{
    struct barena *ba = n >= 0 ? ba_of(bs, (unsigned)n) : NULL;
    return ba ? ba->a : NULL;
}

/* Makes the table page of arena number no exist. */
static int table_page_locked(tmem_blobstore *bs, unsigned no)
{
    if (bs->pages[no / APG])
        return 0;
    void *pg = tmem__calloc(APG, sizeof(struct barena *));
    if (!pg)
        return TMEM_ENOMEM;
    if (priv_take(bs, held_of(pg)) < 0) {
        tmem__free(pg);
        return TMEM_ENOSPC;
    }
    bs->pages[no / APG] = pg;
    return 0;
}

static int arena_err(int r)
{
    return r == -ENOMEM ? TMEM_ENOMEM : r == -ENOSPC ? TMEM_ENOSPC : r;
}

/* Fills key with random bytes.  Returns 0 or -1 (no entropy source). */
static int random_key(unsigned char *key)
{
    for (size_t got = 0; got < KEY_BYTES;) {
        ssize_t n = getrandom(key + got, KEY_BYTES - got, 0);
        if (n < 0 && errno != EINTR)
            return -1;
        got += n > 0 ? (size_t)n : 0;
    }
    return 0;
}

/* Creates arena number no (owner, flags) in the table. */
static int arena_add_locked(tmem_blobstore *bs, unsigned no, uint32_t owner,
                            unsigned flags)
{
    int r = table_page_locked(bs, no);
    if (r < 0)
        return r;
    struct barena *ba = tmem__aligned_alloc(64, sizeof *ba);
    if (!ba)
        return TMEM_ENOMEM;
    memset(ba, 0, sizeof *ba);
    ba->no = no;
    if (random_key(ba->key) < 0) {
        tmem__free(ba);
        return TMEM_ENOMEM;
    }
    for (unsigned i = 0; i < ND; i++)
        ba->d[i].acct = bs->acct;
    if ((r = priv_take(bs, held_of(ba))) < 0) {
        tmem__free(ba);
        return r;
    }
    r = tmem__arena_create_in(owner, flags, bs->acct,
                              (flags & TMEM_ARENA_F_NAMED) ? bs->arena_dir
                                                           : NULL,
                              &ba->a);
    if (r < 0) {
        priv_give(bs, held_of(ba));
        tmem__free(ba);
        return arena_err(r);
    }
    atomic_store_explicit(&bs->pages[no / APG][no % APG], ba,
                          memory_order_release);
    return 0;
}

static void arena_del(tmem_blobstore *bs, struct barena *ba)
{
    for (unsigned i = 0; i < ND; i++)
        tmem__dedup_fini(&ba->d[i]);
    tmem__arena_destroy(ba->a);
    priv_give(bs, held_of(ba));
    tmem__free(ba);
}

int tmem__blobstore_create(tmem_acct *acct, tmem_blobstore **out)
{
    tmem_blobstore *bs = tmem__aligned_alloc(64, sizeof *bs);
    if (!bs)
        return TMEM_ENOMEM;
    memset(bs, 0, sizeof *bs);
    bs->acct = acct;
    bs->ref_max = UINT32_MAX - 1;
    pthread_rwlock_init(&bs->walk, NULL);
    int r = priv_take(bs, held_of(bs));
    if (r == 0 && (r = arena_add_locked(bs, 0, 0, 0)) < 0)
        priv_give(bs, held_of(bs));
    if (r < 0) {
        if (bs->pages[0])
            priv_give(bs, held_of(bs->pages[0]));
        tmem__free(bs->pages[0]);
        pthread_rwlock_destroy(&bs->walk);
        tmem__free(bs);
        return r;
    }
    bs->next_no = 1;
    *out = bs;
    return 0;
}

int tmem__blobstore_set_dir(tmem_blobstore *bs, const char *dir)
{
    char *d = NULL;
    if (dir && !(d = tmem__malloc(strlen(dir) + 1)))
        return TMEM_ENOMEM;
    if (d)
        strcpy(d, dir);
    tmem__free(bs->arena_dir);
    bs->arena_dir = d;
    return 0;
}

void tmem__blobstore_destroy(tmem_blobstore *bs)
{
    if (!bs)
        return;
    for (unsigned p = 0; p < NAPG; p++) {
        for (unsigned i = 0; bs->pages[p] && i < APG; i++) {
            struct barena *ba = atomic_load(&bs->pages[p][i]);
            if (ba)
                arena_del(bs, ba);
        }
        if (bs->pages[p])
            priv_give(bs, held_of(bs->pages[p]));
        tmem__free(bs->pages[p]);
    }
    if (bs->free_no)
        priv_give(bs, held_of(bs->free_no));
    tmem__free(bs->free_no);
    priv_give(bs, held_of(bs));
    pthread_rwlock_destroy(&bs->walk);
    tmem__free(bs->arena_dir);
    tmem__free(bs);
}

int tmem__blob_arena_open(tmem_blobstore *bs, uint32_t owner)
{
    tmem__spin_lock(&bs->lock);
    unsigned no;
    if (bs->nfree) {
        no = bs->free_no[bs->nfree - 1];
    } else if (bs->next_no < NAPG * APG) {
        no = bs->next_no;
    } else {
        tmem__spin_unlock(&bs->lock);
        return TMEM_ENOMEM;
    }
    int r = arena_add_locked(bs, no, owner, TMEM_ARENA_F_NAMED);
    if (r == 0) {
        if (bs->nfree)
            bs->nfree--;
        else
            bs->next_no++;
    }
    tmem__spin_unlock(&bs->lock);
    return r < 0 ? r : (int)no;
}

/* Doubles the list of closed numbers; when that fails (memory or budget)
 * the number is simply not reused. */
static void free_list_grow_locked(tmem_blobstore *bs)
{
    unsigned cap = bs->free_cap ? bs->free_cap * 2 : 16;
    unsigned *f = tmem__calloc(cap, sizeof *f);
    if (!f)
        return;
    if (priv_take(bs, held_of(f)) < 0) {
        tmem__free(f);
        return;
    }
    if (bs->nfree)
        memcpy(f, bs->free_no, bs->nfree * sizeof *f);
    if (bs->free_no)
        priv_give(bs, held_of(bs->free_no));
    tmem__free(bs->free_no);
    bs->free_no = f;
    bs->free_cap = cap;
}

void tmem__blob_arena_close(tmem_blobstore *bs, int n)
{
    if (n <= 0)
        return;
    tmem__spin_lock(&bs->lock);
    struct barena *ba = ba_of(bs, (unsigned)n);
    if (bs->nfree == bs->free_cap)
        free_list_grow_locked(bs);
    if (bs->nfree < bs->free_cap) /* else the number is not reused */
        bs->free_no[bs->nfree++] = (unsigned)n;
    tmem__spin_unlock(&bs->lock);
    pthread_rwlock_wrlock(&bs->walk); /* no walker holds it any more */
    atomic_store(&bs->pages[n / APG][n % APG], NULL);
    pthread_rwlock_unlock(&bs->walk);
    if (ba)
        arena_del(bs, ba);
}

void tmem__blob_owner_gone(tmem_blobstore *bs, uint32_t owner)
{
    tmem__arena_owner_gone(ba_of(bs, 0)->a, owner);
}

/* ---- reading -------------------------------------------------------- */

/* Copies b's DATA record (an alias is followed) into *r and buf. */
static int copy_rec(tmem_blobstore *bs, tmem_blob b, tmem_arena_rec *r,
                    void *buf)
{
    return tmem__arena_read_stable(ba_of(bs, blob_no(b))->a, blob_h(b), r,
                                   buf);
}

static int read_err(tmem_blobstore *bs, int r)
{
    if (r == TMEM_ENOMEM)
        cnt_inc(&counters(bs)->alloc_failed, 1);
    return r == 0 || r == TMEM_ENOMEM ? r : -EIO;
}

int tmem__blob_read(tmem_blobstore *bs, tmem_blob b, void *page)
{
    if (TMEM_BLOB_IS_FILL(b)) {
        tmem__fill_page(page, (uint32_t)(b >> 32));
        return 0;
    }
    tmem_arena_rec r;
    char buf[TMEM_PAGE_SIZE];
    int rc = copy_rec(bs, b, &r, buf);
    if (rc == 0)
        rc = tmem__codec_decompress((tmem_compress)r.codec, buf, r.len, page);
    return read_err(bs, rc);
}

int tmem__blob_read_packed(tmem_blobstore *bs, tmem_blob b, void *buf,
                           tmem_packed *pk)
{
    if (TMEM_BLOB_IS_FILL(b)) {
        *pk = (tmem_packed){.enc = TMEM_PACK_FILL, .fill = (uint32_t)(b >> 32)};
        return 0;
    }
    tmem_arena_rec r;
    char tmp[TMEM_PAGE_SIZE];
    int rc = copy_rec(bs, b, &r, buf);
    if (rc == 0 && r.codec == TMEM_COMPRESS_ZSTD) {
        /* the peer would need a context: decode here, send raw */
        memcpy(tmp, buf, r.len);
        rc = tmem__codec_decompress(TMEM_COMPRESS_ZSTD, tmp, r.len, buf);
        *pk = (tmem_packed){.enc = TMEM_PACK_RAW, .len = TMEM_PAGE_SIZE};
    } else if (rc == 0) {
        *pk = (tmem_packed){
            .enc = r.codec == TMEM_COMPRESS_LZ4 ? TMEM_PACK_LZ4 : TMEM_PACK_RAW,
            .len = r.len};
    }
    return read_err(bs, rc);
}

/* ---- references ----------------------------------------------------- */

/* Takes a reference unless e is dead or full; returns 0 or -ENOSPC
 * (full) / -ENOENT (dead). */
static int ref_get(tmem_blobstore *bs, tmem_arena_handle *e)
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

static void refs_add(tmem_blobstore *bs, int64_t d)
{
    atomic_fetch_add_explicit(&counters(bs)->refs, d, memory_order_relaxed);
}

int tmem__blob_ref(tmem_blobstore *bs, tmem_blob b)
{
    if (TMEM_BLOB_IS_FILL(b))
        return 0;
    tmem_arena_handle *e = ent_of(bs, b);
    if (ref_get(bs, e) != 0)
        return TMEM_ENOSPC;
    if (!TMEM_ALOC_ALIAS(atomic_load(&e->loc)))
        refs_add(bs, 1);
    return 0;
}

static uint32_t hash_cb(void *ctx, uint32_t ref)
{
    struct barena *ba = ctx;
    return atomic_load_explicit(&tmem__arena_ent(ba->a, ref - 1)->aux,
                                memory_order_relaxed);
}

/* Frees handle h of ba, whose last reference just went. */
static void handle_dead(tmem_blobstore *bs, struct barena *ba, uint32_t h)
{
    tmem_arena_handle *e = tmem__arena_ent(ba->a, h);
    uint64_t loc = atomic_load(&e->loc);
    uint32_t aux = atomic_load(&e->aux);
    if (!TMEM_ALOC_ALIAS(loc)) {
        tmem_dedup *d = &ba->d[aux >> 28];
        tmem_dedup_spare sp = {0};
        tmem__dedup_lock(d);
        tmem__dedup_remove_locked(d, aux, h + 1, hash_cb, ba, &sp);
        tmem__dedup_unlock(d);
        tmem__dedup_spare_drop(d, &sp);
    }
    tmem__arena_free(ba->a, h);
    if (TMEM_ALOC_ALIAS(loc))
        tmem__blob_release(bs, blob_of(ba->no, aux));
    if (tmem__arena_wants_compaction(ba->a)) {
        void (*k)(void *) = atomic_load(&bs->kick);
        if (k)
            k(atomic_load(&bs->kick_ctx));
        else
            tmem__arena_compact_step(ba->a);
    }
}

void tmem__blob_release(tmem_blobstore *bs, tmem_blob b)
{
    if (TMEM_BLOB_IS_FILL(b) || !b)
        return;
    struct barena *ba = ba_of(bs, blob_no(b));
    tmem_arena_handle *e = tmem__arena_ent(ba->a, blob_h(b));
    if (!TMEM_ALOC_ALIAS(atomic_load(&e->loc)))
        refs_add(bs, -1);
    if (atomic_fetch_sub_explicit(&e->ref, 1, memory_order_acq_rel) == 1)
        handle_dead(bs, ba, blob_h(b));
}

void tmem__blob_drop(tmem_blobstore *bs, tmem_blob b)
{
    if (TMEM_BLOB_IS_FILL(b) || !b)
        return;
    struct barena *ba = ba_of(bs, blob_no(b));
    if (tmem__arena_named(ba->a))
        tmem__arena_name_dead(ba->a, blob_h(b));
    tmem__blob_release(bs, b);
}

/* ---- put ------------------------------------------------------------ */

/* What a put stores: the codec and bytes of the record's payload (LZ4 as
 * the tenant packed it, what the store compressed, or the raw page), and
 * the index hash of those. */
struct put_in {
    unsigned codec;
    const void *src;
    uint32_t len;
    uint32_t hash;
};

struct match_ctx {
    tmem_blobstore *bs;
    struct barena *ba;
    const struct put_in *in;
    unsigned compared; /* candidates compared so far */
};

/* The index hash of a payload in ba: keyed with the arena's secret, the
 * codec mixed in (equal bytes of two codecs are two pages). */
static uint32_t index_hash(const struct barena *ba, unsigned codec,
                           const void *src, uint32_t len)
{
    uint64_t h = XXH3_64bits_withSecret(src, len, ba->key, KEY_BYTES);
    return (uint32_t)(h ^ (h >> 32)) ^ (codec * 0x9e3779b9u);
}

/* Compares a candidate's stored bytes with the new payload; takes a
 * reference when they are equal.  Called under the dedup lock.  Returns 1
 * (a match), 0 (go on) or -1 (MAX_CMP compared: stop, unindexed). */
static int match_cb(void *ctx, uint32_t ref)
{
    struct match_ctx *m = ctx;
    tmem_arena_handle *e = tmem__arena_ent(m->ba->a, ref - 1);
    if (atomic_load_explicit(&e->aux, memory_order_relaxed) != m->in->hash ||
        atomic_load_explicit(&e->ref, memory_order_relaxed) == 0)
        return 0;
    if (m->compared++ == MAX_CMP)
        return -1;
    tmem_arena_rec r;
    char buf[TMEM_PAGE_SIZE];
    if (tmem__arena_read_stable(m->ba->a, ref - 1, &r, buf) < 0)
        return 0; /* freed under us: not a candidate */
    bool same = r.codec == m->in->codec && r.len == m->in->len &&
                memcmp(buf, m->in->src, r.len) == 0;
    return same && ref_get(m->bs, e) == 0;
}

/* Looks up m's payload in its shard d (locked).  Returns the matching ref
 * (its reference taken), or 0; *unindexed says a bound stopped the look. */
static uint32_t lookup_locked(tmem_dedup *d, struct match_ctx *m,
                              bool *unindexed)
{
    m->compared = 0;
    int stopped = 0;
    uint32_t ref =
        tmem__dedup_find_locked(d, m->in->hash, match_cb, m, &stopped);
    *unindexed = stopped != 0;
    return ref;
}

/* A dedup hit on target (whose reference the match took): in a named
 * arena the new name gets an alias record holding that reference. */
static int found(tmem_blobstore *bs, struct barena *ba,
                 const tmem_arena_name *nm, uint32_t target, tmem_blob *out,
                 unsigned *fl)
{
    uint32_t h = target, gen;
    if (tmem__arena_named(ba->a)) {
        uint32_t tgen = tmem__arena_gen(ba->a, target);
        int r = tmem__arena_alias(ba->a, nm, target, tgen, &h, &gen);
        if (r < 0) {
            tmem__blob_release(bs, blob_of(ba->no, target));
            return arena_err(r);
        }
    }
    cnt_inc(&counters(bs)->dedup_hits, 1);
    refs_add(bs, 1); /* the one the match took */
    *out = blob_of(ba->no, h);
    *fl = TMEM_BLOB_PUT_DEDUP;
    return 0;
}

/* Stores a payload not found in the index, then enters it there unless
 * a thread putting the same bytes since our look got in first (dedup stays
 * exact) or a bound says the run is full. */
static int store_new(tmem_blobstore *bs, struct match_ctx *m,
                     const tmem_arena_name *nm, tmem_blob *out, unsigned *fl)
{
    const struct put_in *in = m->in;
    struct barena *ba = m->ba;
    uint32_t h, gen;
    int r = tmem__arena_put(ba->a, nm, in->src, in->len, in->codec, in->hash,
                            &h, &gen);
    if (r < 0)
        return arena_err(r);
    tmem_dedup *d = &ba->d[in->hash >> 28];
    bool unindexed;
    tmem_dedup_spare sp;
    tmem__dedup_prepare(d, &sp);
    tmem__dedup_lock(d);
    uint32_t ref = lookup_locked(d, m, &unindexed);
    if (!ref && !unindexed)
        r = tmem__dedup_insert_locked(d, in->hash, h + 1, hash_cb, ba, &sp);
    tmem__dedup_unlock(d);
    tmem__dedup_spare_drop(d, &sp);
    if (r < 0 || ref) { /* ours is not needed, or could not be indexed */
        atomic_store(&tmem__arena_ent(ba->a, h)->ref, 0);
        tmem__arena_free(ba->a, h);
    }
    if (r < 0)
        return arena_err(r);
    if (ref)
        return found(bs, ba, nm, ref - 1, out, fl);
    if (unindexed) /* kept outside the index: its removal finds nothing */
        cnt_inc(&counters(bs)->dedup_unindexed, 1);
    refs_add(bs, 1);
    *out = blob_of(ba->no, h);
    return 0;
}

/* Looks for the payload in arena n's index, else stores it.  Returns 0,
 * TMEM_ENOMEM or TMEM_ENOSPC. */
static int put_content(tmem_blobstore *bs, int n, const tmem_arena_name *nm,
                       struct put_in *in, tmem_blob *out, unsigned *fl)
{
    struct barena *ba = ba_of(bs, (unsigned)n);
    if (!ba)
        return -EINVAL;
    in->hash = bs->force_hash ? bs->forced_hash
                              : index_hash(ba, in->codec, in->src, in->len);
    struct match_ctx m = {bs, ba, in, 0};
    tmem_dedup *d = &ba->d[in->hash >> 28];
    bool unindexed;
    tmem__dedup_lock(d);
    uint32_t ref = lookup_locked(d, &m, &unindexed);
    tmem__dedup_unlock(d);
    int r = ref ? found(bs, ba, nm, ref - 1, out, fl)
                : store_new(bs, &m, nm, out, fl);
    if (r == TMEM_ENOMEM)
        cnt_inc(&counters(bs)->alloc_failed, 1);
    return r;
}

/* Compresses a raw page with codec (unless poor says that was tried) and
 * stores the result, or the page itself when it compresses badly. */
static int put_raw(tmem_blobstore *bs, int n, const tmem_arena_name *nm,
                   const void *page, tmem_compress codec, bool poor,
                   tmem_blob *out, unsigned *fl)
{
    char buf[TMEM_CODEC_MAX_OUT];
    int z = poor ? 0 : tmem__codec_compress(codec, page, buf);
    if (z < 0) {
        if (z == TMEM_ENOMEM)
            cnt_inc(&counters(bs)->alloc_failed, 1);
        return z;
    }
    struct put_in in = {.codec = z > 0 ? (unsigned)codec : 0,
                        .src = z > 0 ? (const void *)buf : page,
                        .len = z > 0 ? (uint32_t)z : TMEM_PAGE_SIZE};
    if (z == 0 && codec != TMEM_COMPRESS_NONE) {
        cnt_inc(&counters(bs)->compress_poor, 1);
        *fl |= TMEM_BLOB_PUT_RAW;
    }
    return put_content(bs, n, nm, &in, out, fl);
}

/* A fill value for word w. */
static tmem_blob fill_blob(tmem_blobstore *bs, uint32_t w, unsigned *fl)
{
    cnt_inc(&counters(bs)->fill_puts, 1);
    *fl = TMEM_BLOB_PUT_FILL;
    return (uint64_t)w << 32 | TMEM_BLOB_FILL_TAG;
}

/* Whether arena n keeps a record of every name, same-filled pages too: a
 * file arena, whose pages a restart after a crash recovers from the
 * records alone (a fill word kept only in the index would be lost). */
static bool records_fills(tmem_blobstore *bs, int n)
{
    return n > 0 && tmem__arena_is_file(ba_of(bs, (unsigned)n)->a);
}

int tmem__blob_put(tmem_blobstore *bs, int n, const tmem_arena_name *nm,
                   const void *page, tmem_compress codec, tmem_blob *out,
                   unsigned *flags)
{
    unsigned fl = 0;
    uint32_t word;
    int r = 0;
    if (tmem__fill_word(page, &word) && records_fills(bs, n))
        r = put_raw(bs, n, nm, page, TMEM_COMPRESS_LZ4, false, out, &fl);
    else if (tmem__fill_word(page, &word))
        *out = fill_blob(bs, word, &fl);
    else
        r = put_raw(bs, n, nm, page, codec, false, out, &fl);
    if (flags && r == 0)
        *flags = fl;
    return r;
}

int tmem__blob_put_packed(tmem_blobstore *bs, int n, const tmem_arena_name *nm,
                          const tmem_packed *pk, const void *data,
                          tmem_compress codec, tmem_blob *out, unsigned *flags)
{
    char page[TMEM_PAGE_SIZE];
    unsigned fl = 0;
    int r;
    switch (pk->enc) {
    case TMEM_PACK_FILL:
        if (pk->len != 0)
            return -EINVAL;
        if (records_fills(bs, n)) { /* its LZ4 form: ~20 bytes */
            tmem__fill_page(page, pk->fill);
            return tmem__blob_put(bs, n, nm, page, codec, out, flags);
        }
        *out = fill_blob(bs, pk->fill, &fl);
        r = 0;
        break;
    case TMEM_PACK_RAW:
        if (pk->len != TMEM_PAGE_SIZE)
            return -EINVAL;
        /* LZ4 was tried with our bound: do not try it again */
        r = put_raw(bs, n, nm, data, codec, codec == TMEM_COMPRESS_LZ4, out,
                    &fl);
        break;
    case TMEM_PACK_LZ4: {
        if (pk->len == 0 || pk->len > TMEM_CODEC_MAX_OUT)
            return -EINVAL;
        if (codec == TMEM_COMPRESS_LZ4) {
            struct put_in in = {.codec = TMEM_COMPRESS_LZ4, .src = data,
                                .len = pk->len};
            r = put_content(bs, n, nm, &in, out, &fl);
            break;
        }
        /* another codec for this client: decode, then as a raw page */
        if (tmem__unpack(pk, data, page) < 0)
            return -EINVAL;
        return tmem__blob_put(bs, n, nm, page, codec, out, flags);
    }
    default:
        return -EINVAL;
    }
    if (flags && r == 0)
        *flags = fl;
    return r;
}

/* ---- queries -------------------------------------------------------- */

/* The place of b's data (an alias's target's). */
static uint64_t data_loc(tmem_blobstore *bs, tmem_blob b)
{
    struct barena *ba = ba_of(bs, blob_no(b));
    tmem_arena_handle *e = tmem__arena_ent(ba->a, blob_h(b));
    uint64_t loc = atomic_load_explicit(&e->loc, memory_order_acquire);
    if (TMEM_ALOC_ALIAS(loc))
        loc = atomic_load_explicit(
            &tmem__arena_ent(ba->a, atomic_load(&e->aux))->loc,
            memory_order_acquire);
    return loc;
}

uint32_t tmem__blob_size(tmem_blobstore *bs, tmem_blob b)
{
    if (TMEM_BLOB_IS_FILL(b) || !b)
        return 0;
    return TMEM_ALOC_LEN(data_loc(bs, b));
}

int tmem__blob_is_raw(tmem_blobstore *bs, tmem_blob b)
{
    if (TMEM_BLOB_IS_FILL(b) || !b)
        return 0;
    return TMEM_ALOC_CODEC(data_loc(bs, b)) == 0;
}

int tmem__blob_where(tmem_blobstore *bs, tmem_blob b, uint32_t *handle,
                     uint32_t *gen)
{
    if (TMEM_BLOB_IS_FILL(b) || !b)
        return 0;
    *handle = blob_h(b);
    *gen = tmem__arena_gen(ba_of(bs, blob_no(b))->a, blob_h(b));
    return 1;
}

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void tmem__blobstore_stats(tmem_blobstore *bs, tmem_blobstore_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&bs->walk);
    out->meta_bytes = LD(bs->private_bytes);
    int64_t refs = 0;
    for (unsigned i = 0; i < NC; i++) {
        struct put_counters *c = &bs->cnt[i];
        refs += LD(c->refs);
        out->dedup_hits += LD(c->dedup_hits);
        out->compress_poor += LD(c->compress_poor);
        out->fill_puts += LD(c->fill_puts);
        out->alloc_failed += LD(c->alloc_failed);
        out->dedup_unindexed += LD(c->dedup_unindexed);
    }
    out->refs = refs > 0 ? (uint64_t)refs : 0;
    for (unsigned p = 0; p < NAPG; p++) {
        for (unsigned i = 0; bs->pages[p] && i < APG; i++) {
            struct barena *ba = ba_of(bs, p * APG + i);
            if (!ba)
                continue;
            tmem_arena_stats as;
            tmem__arena_stats(ba->a, &as);
            out->data_bytes += as.data_bytes;
            out->meta_bytes += as.meta_bytes;
            out->blobs += as.records;
            out->raw_blobs += as.raw_records;
            out->aliases += as.aliases;
            out->compactions += as.compactions;
            out->moved += as.moved;
            out->pages_punched += as.pages_punched;
            out->pages_dead += as.pages_dead;
            out->arenas += ba->no != 0;
            for (unsigned k = 0; k < ND; k++)
                out->meta_bytes += LD(ba->d[k].bytes);
        }
    }
    pthread_rwlock_unlock(&bs->walk);
}

/* Calls fn on every arena until it returns nonzero; returns that. */
static int each_arena(tmem_blobstore *bs, int (*fn)(tmem_arena *a))
{
    int r = 0;
    pthread_rwlock_rdlock(&bs->walk);
    for (unsigned p = 0; p < NAPG && !r; p++) {
        for (unsigned i = 0; bs->pages[p] && i < APG && !r; i++) {
            struct barena *ba = ba_of(bs, p * APG + i);
            if (ba)
                r = fn(ba->a);
        }
    }
    pthread_rwlock_unlock(&bs->walk);
    return r;
}

static int trim_one(tmem_arena *a)
{
    return tmem__arena_trim(a) > 0;
}

static int compact_one(tmem_arena *a)
{
    return tmem__arena_compact_step(a) > 0;
}

int tmem__blob_reclaim(tmem_blobstore *bs)
{
    return each_arena(bs, trim_one) || each_arena(bs, compact_one);
}

void tmem__blob_set_background(tmem_blobstore *bs, void (*kick)(void *ctx),
                               void *ctx)
{
    atomic_store(&bs->kick_ctx, ctx);
    atomic_store(&bs->kick, kick);
}

static int compact_wanted(tmem_arena *a)
{
    return tmem__arena_wants_compaction(a) && tmem__arena_compact_step(a) > 0;
}

int tmem__blob_compact_one_step(tmem_blobstore *bs)
{
    return each_arena(bs, compact_wanted);
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
    pthread_rwlock_rdlock(&bs->walk);
    for (unsigned p = 0; p < NAPG; p++) {
        for (unsigned i = 0; bs->pages[p] && i < APG; i++) {
            struct barena *ba = ba_of(bs, p * APG + i);
            int r;
            while (ba && (force || tmem__arena_wants_compaction(ba->a)) &&
                   (r = tmem__arena_compact_step(ba->a)) > 0)
                total += r;
        }
    }
    pthread_rwlock_unlock(&bs->walk);
    return total;
}
