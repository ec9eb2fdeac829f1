/*
 * frontswap on a tmem_conn: one persistent pool per swap type, pages named
 * by swap offset, after the Linux frontswap shim.
 *
 * Invariants:
 *   - bit `offset` of types[t].bitmap is set exactly when the store holds
 *     (t, offset) for us; curr is the number of set bits over all types,
 *     kept with atomic bit flips, so curr_pages is exact and a load or
 *     invalidate of an absent page needs no round trip.
 *   - offset -> (oid {offset >> SWIZ_BITS, 0, 0}, index offset & SWIZ_MASK):
 *     512 consecutive slots (2 MiB of swap) share one object, so a swap
 *     cluster is one object in the store and an area flush stays cheap.
 *   - a failed store leaves the bit clear: the store removed any older copy
 *     (duplicate-put coherence) and the caller keeps the page.
 * The caller serialises, per type, init / invalidate_area against the page
 * calls of that type (swapon/swapoff against swap I/O, as in the kernel);
 * `lock` serialises init, invalidate_area, shrink and destroy.
 */
#include <tmem/client.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "common/mem.h"

#define SWIZ_BITS 9
#define SWIZ_MASK ((1u << SWIZ_BITS) - 1)
#define FS_CHUNK 64     /* ops per batch call */
#define SHRINK_CHUNK 32 /* pages brought back per round trip */

struct fs_type {
    bool active;
    int pool;
    uint64_t npages;
    _Atomic uint64_t *bitmap;
};

struct tmem_frontswap {
    tmem_conn *conn;
    pthread_mutex_t lock;
    struct fs_type types[TMEM_FRONTSWAP_MAX_TYPES];
    _Atomic uint64_t curr;
    _Atomic uint64_t succ_stores, failed_stores, loads, failed_loads,
        invalidates, shrunk;
};

static void add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static void key_of(uint64_t offset, tmem_oid *oid, uint32_t *index)
{
    *oid = (tmem_oid){{offset >> SWIZ_BITS, 0, 0}};
    *index = (uint32_t)(offset & SWIZ_MASK);
}

static bool bit_test(const struct fs_type *t, uint64_t off)
{
    return atomic_load_explicit(&t->bitmap[off / 64], memory_order_acquire) &
           (1ull << (off % 64));
}

static void bit_set(tmem_frontswap *fs, struct fs_type *t, uint64_t off)
{
    uint64_t m = 1ull << (off % 64);
    if (!(atomic_fetch_or(&t->bitmap[off / 64], m) & m))
        add(&fs->curr, 1);
}

static bool bit_clear(tmem_frontswap *fs, struct fs_type *t, uint64_t off)
{
    uint64_t m = 1ull << (off % 64);
    if (!(atomic_fetch_and(&t->bitmap[off / 64], ~m) & m))
        return false;
    atomic_fetch_sub(&fs->curr, 1);
    return true;
}

/* The type's state, or NULL when type/offset are out of range. */
static struct fs_type *slot(tmem_frontswap *fs, unsigned type, uint64_t off)
{
    if (type >= TMEM_FRONTSWAP_MAX_TYPES || !fs->types[type].active ||
        off >= fs->types[type].npages)
        return NULL;
    return &fs->types[type];
}

int tmem_frontswap_create(tmem_conn *conn, tmem_frontswap **out)
{
    tmem_frontswap *fs = tmem__calloc(1, sizeof *fs);
    if (!fs)
        return TMEM_ENOMEM;
    if (pthread_mutex_init(&fs->lock, NULL) != 0) {
        tmem__free(fs);
        return TMEM_ENOMEM;
    }
    fs->conn = conn;
    *out = fs;
    return 0;
}

static uint64_t bitmap_count(const struct fs_type *t)
{
    uint64_t n = 0;
    for (uint64_t w = 0; w < (t->npages + 63) / 64; w++)
        n += (uint64_t)__builtin_popcountll(atomic_load(&t->bitmap[w]));
    return n;
}

static int area_drop_locked(tmem_frontswap *fs, struct fs_type *t)
{
    int rc = tmem_conn_pool_destroy(fs->conn, t->pool);
    uint64_t n = bitmap_count(t);
    atomic_fetch_sub(&fs->curr, n);
    add(&fs->invalidates, n);
    tmem__free((void *)t->bitmap);
    *t = (struct fs_type){.active = false, .pool = -1};
    return rc < 0 ? rc : 0;
}

void tmem_frontswap_destroy(tmem_frontswap *fs)
{
    if (!fs)
        return;
    for (unsigned i = 0; i < TMEM_FRONTSWAP_MAX_TYPES; i++)
        if (fs->types[i].active)
            area_drop_locked(fs, &fs->types[i]);
    pthread_mutex_destroy(&fs->lock);
    tmem__free(fs);
}

int tmem_frontswap_init(tmem_frontswap *fs, unsigned type, uint64_t npages)
{
    struct fs_type *t;
    int rc;

    if (type >= TMEM_FRONTSWAP_MAX_TYPES || npages == 0 ||
        npages > TMEM_FRONTSWAP_MAX_PAGES)
        return TMEM_EINVAL;
    pthread_mutex_lock(&fs->lock);
    t = &fs->types[type];
    if (t->active)
        area_drop_locked(fs, t);
    _Atomic uint64_t *bm = tmem__calloc((npages + 63) / 64, sizeof *bm);
    rc = TMEM_ENOMEM;
    if (!bm)
        goto out_unlock;
    rc = tmem_conn_pool_new(fs->conn, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                            NULL);
    if (rc < 0) {
        tmem__free((void *)bm);
        goto out_unlock;
    }
    *t = (struct fs_type){
        .active = true, .pool = rc, .npages = npages, .bitmap = bm};
    rc = 0;
out_unlock:
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

/* Accounts for the result of a put of (t, off); returns store's result. */
static int store_done(tmem_frontswap *fs, struct fs_type *t, uint64_t off,
                      int rc)
{
    if (rc == 1) {
        bit_set(fs, t, off);
        add(&fs->succ_stores, 1);
        return 0;
    }
    bit_clear(fs, t, off); /* the store removed any older copy */
    add(&fs->failed_stores, 1);
    return rc < 0 ? rc : -EIO;
}

int tmem_frontswap_store(tmem_frontswap *fs, unsigned type, uint64_t offset,
                         const void *page)
{
    struct fs_type *t = slot(fs, type, offset);
    tmem_oid oid;
    uint32_t index;

    if (!t) {
        add(&fs->failed_stores, 1);
        return TMEM_EINVAL;
    }
    key_of(offset, &oid, &index);
    return store_done(fs, t, offset,
                      tmem_conn_put(fs->conn, t->pool, &oid, index, page));
}

int tmem_frontswap_load(tmem_frontswap *fs, unsigned type, uint64_t offset,
                        void *page)
{
    struct fs_type *t = slot(fs, type, offset);
    tmem_oid oid;
    uint32_t index;
    int rc = 0;

    if (!t) {
        add(&fs->failed_loads, 1);
        return TMEM_EINVAL;
    }
    if (bit_test(t, offset)) {
        key_of(offset, &oid, &index);
        rc = tmem_conn_get(fs->conn, t->pool, &oid, index, page);
    }
    add(rc == 1 ? &fs->loads : &fs->failed_loads, 1);
    return rc;
}

int tmem_frontswap_load_direct(tmem_frontswap *fs, unsigned type,
                               uint64_t offset, void *page)
{
    struct fs_type *t = slot(fs, type, offset);
    if (!t)
        return TMEM_EINVAL;
    if (!bit_test(t, offset))
        return 0;
    if (!tmem_conn_is_embedded(fs->conn))
        return TMEM_EAGAIN;
    tmem_oid oid;
    uint32_t index;
    key_of(offset, &oid, &index);
    int rc = tmem_conn_get(fs->conn, t->pool, &oid, index, page);
    add(rc == 1 ? &fs->loads : &fs->failed_loads, 1);
    return rc;
}

/* One batch of at most FS_CHUNK pages of type t (store when put). */
static int64_t batch_chunk(tmem_frontswap *fs, struct fs_type *t, bool put,
                           const uint64_t *offs, void *const *pages, size_t n,
                           int *results)
{
    tmem_op ops[FS_CHUNK];
    size_t map[FS_CHUNK], k = 0;
    int64_t good = 0;

    for (size_t i = 0; i < n; i++) {
        results[i] = 0;
        if (offs[i] >= t->npages) {
            results[i] = TMEM_EINVAL;
            continue;
        }
        if (!put && !bit_test(t, offs[i]))
            continue; /* not stored: a miss without a round trip */
        ops[k] = (tmem_op){
            .op = put ? TMEM_PUT : TMEM_GET, .pool = t->pool, .page = pages[i]};
        key_of(offs[i], &ops[k].oid, &ops[k].index);
        map[k++] = i;
    }
    int rc = k ? tmem_conn_batch(fs->conn, ops, k) : 0;
    for (size_t j = 0; j < k; j++)
        results[map[j]] = rc < 0 ? rc : ops[j].result;
    for (size_t i = 0; i < n; i++) {
        if (put && offs[i] < t->npages)
            results[i] = store_done(fs, t, offs[i], results[i]);
        else if (put)
            add(&fs->failed_stores, 1);
        else
            add(results[i] == 1 ? &fs->loads : &fs->failed_loads, 1);
        good += put ? results[i] == 0 : results[i] == 1;
    }
    return rc < 0 ? rc : good;
}

static int64_t batch(tmem_frontswap *fs, unsigned type, bool put,
                     const uint64_t *offs, void *const *pages, size_t n,
                     int *results)
{
    int64_t total = 0;
    if (type >= TMEM_FRONTSWAP_MAX_TYPES || !fs->types[type].active) {
        for (size_t i = 0; i < n; i++)
            results[i] = TMEM_EINVAL;
        add(put ? &fs->failed_stores : &fs->failed_loads, n);
        return TMEM_EINVAL;
    }
    for (size_t done = 0; done < n; done += FS_CHUNK) {
        size_t k = n - done < FS_CHUNK ? n - done : FS_CHUNK;
        int64_t rc = batch_chunk(fs, &fs->types[type], put, offs + done,
                                 pages + done, k, results + done);
        if (rc < 0) {
            for (size_t i = done + k; i < n; i++)
                results[i] = (int)rc;
            add(put ? &fs->failed_stores : &fs->failed_loads, n - done - k);
            return rc;
        }
        total += rc;
    }
    return total;
}

int64_t tmem_frontswap_store_batch(tmem_frontswap *fs, unsigned type,
                                   const uint64_t *offsets,
                                   const void *const *pages, size_t n,
                                   int *results)
{
    /* The pages are only read for a put. */
    return batch(fs, type, true, offsets, (void *const *)pages, n, results);
}

int64_t tmem_frontswap_load_batch(tmem_frontswap *fs, unsigned type,
                                  const uint64_t *offsets, void *const *pages,
                                  size_t n, int *results)
{
    return batch(fs, type, false, offsets, pages, n, results);
}

int tmem_frontswap_invalidate_page(tmem_frontswap *fs, unsigned type,
                                   uint64_t offset)
{
    struct fs_type *t = slot(fs, type, offset);
    tmem_oid oid;
    uint32_t index;

    if (!t)
        return TMEM_EINVAL;
    if (!bit_test(t, offset))
        return 0;
    key_of(offset, &oid, &index);
    int rc = tmem_conn_flush_page(fs->conn, t->pool, &oid, index);
    if (rc >= 0 && bit_clear(fs, t, offset))
        add(&fs->invalidates, 1);
    return rc;
}

int64_t tmem_frontswap_invalidate_batch(tmem_frontswap *fs, unsigned type,
                                        const uint64_t *offsets, size_t n,
                                        int *results)
{
    tmem_op ops[FS_CHUNK];
    size_t map[FS_CHUNK];
    int64_t removed = 0;
    if (type >= TMEM_FRONTSWAP_MAX_TYPES || !fs->types[type].active)
        return TMEM_EINVAL;
    struct fs_type *t = &fs->types[type];
    for (size_t done = 0; done < n;) {
        size_t k = 0, end = n - done < FS_CHUNK ? done + FS_CHUNK : n;
        for (size_t i = done; i < end; i++) {
            int r = offsets[i] >= t->npages ? TMEM_EINVAL : 0;
            if (results)
                results[i] = r;
            if (r < 0 || !bit_test(t, offsets[i]))
                continue;
            ops[k] = (tmem_op){.op = TMEM_FLUSH_PAGE, .pool = t->pool};
            key_of(offsets[i], &ops[k].oid, &ops[k].index);
            map[k++] = i;
        }
        int rc = k ? tmem_conn_batch(fs->conn, ops, k) : 0;
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < k; j++) {
            if (results)
                results[map[j]] = ops[j].result;
            if (ops[j].result >= 0 && bit_clear(fs, t, offsets[map[j]])) {
                add(&fs->invalidates, 1);
                removed++;
            }
        }
        done = end;
    }
    return removed;
}

int tmem_frontswap_invalidate_area(tmem_frontswap *fs, unsigned type)
{
    int rc;
    if (type >= TMEM_FRONTSWAP_MAX_TYPES)
        return TMEM_EINVAL;
    pthread_mutex_lock(&fs->lock);
    rc = fs->types[type].active ? area_drop_locked(fs, &fs->types[type])
                                : TMEM_ENODEV;
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

uint64_t tmem_frontswap_curr_pages(const tmem_frontswap *fs)
{
    return atomic_load(&((tmem_frontswap *)fs)->curr);
}

/* Collects up to max set offsets of t at or after *pos, in order. */
static size_t next_offsets(const struct fs_type *t, uint64_t *pos,
                           uint64_t *offs, size_t max)
{
    size_t n = 0;
    while (n < max && *pos < t->npages) {
        uint64_t w = atomic_load(&t->bitmap[*pos / 64]) >> (*pos % 64);
        if (!w) {
            *pos = (*pos / 64 + 1) * 64;
            continue;
        }
        *pos += (uint64_t)__builtin_ctzll(w);
        if (*pos >= t->npages)
            break;
        offs[n++] = (*pos)++;
    }
    return n;
}

/* Brings back pages of one chunk: gets them, hands them to cb in order,
 * flushes the accepted ones.  Returns pages brought back, sets *stop when
 * cb refused or an error occurred (*err). */
static int64_t shrink_chunk(tmem_frontswap *fs, unsigned type,
                            const uint64_t *offs, size_t n, uint8_t *buf,
                            tmem_frontswap_shrink_fn cb, void *arg, bool *stop,
                            int *err)
{
    struct fs_type *t = &fs->types[type];
    tmem_op ops[SHRINK_CHUNK];
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        ops[i] = (tmem_op){
            .op = TMEM_GET, .pool = t->pool, .page = buf + i * TMEM_PAGE_SIZE};
        key_of(offs[i], &ops[i].oid, &ops[i].index);
    }
    int rc = tmem_conn_batch(fs->conn, ops, n);
    if (rc < 0) {
        *err = rc;
        *stop = true;
        return 0;
    }
    for (size_t i = 0; i < n && !*stop; i++) {
        if (ops[i].result == 0) { /* lost (should not happen): forget */
            bit_clear(fs, t, offs[i]);
            continue;
        }
        if (ops[i].result < 0) {
            *err = ops[i].result;
            *stop = true;
        } else if (cb(arg, type, offs[i], ops[i].page) != 0) {
            *stop = true;
        } else {
            ops[k] = (tmem_op){.op = TMEM_FLUSH_PAGE,
                               .pool = t->pool,
                               .oid = ops[i].oid,
                               .index = ops[i].index};
            bit_clear(fs, t, offs[i]);
            k++;
        }
    }
    /* The caller has the accepted pages now: forget them in the store. */
    tmem_conn_batch(fs->conn, ops, k);
    add(&fs->invalidates, k);
    add(&fs->shrunk, k);
    return (int64_t)k;
}

int64_t tmem_frontswap_shrink(tmem_frontswap *fs, uint64_t target,
                              tmem_frontswap_shrink_fn cb, void *arg)
{
    uint64_t offs[SHRINK_CHUNK];
    int64_t back = 0;
    bool stop = false;
    int err = 0;
    uint8_t *buf = tmem__malloc((size_t)SHRINK_CHUNK * TMEM_PAGE_SIZE);

    if (!buf)
        return TMEM_ENOMEM;
    pthread_mutex_lock(&fs->lock);
    for (unsigned type = 0; type < TMEM_FRONTSWAP_MAX_TYPES && !stop; type++) {
        uint64_t pos = 0;
        while (!stop && fs->types[type].active) {
            uint64_t curr = tmem_frontswap_curr_pages(fs);
            if (curr <= target)
                goto out;
            size_t want =
                curr - target < SHRINK_CHUNK ? curr - target : SHRINK_CHUNK;
            size_t n = next_offsets(&fs->types[type], &pos, offs, want);
            if (n == 0)
                break;
            back += shrink_chunk(fs, type, offs, n, buf, cb, arg, &stop, &err);
        }
    }
out:
    pthread_mutex_unlock(&fs->lock);
    tmem__free(buf);
    return back == 0 && err < 0 ? err : back;
}

void tmem_frontswap_stats_get(const tmem_frontswap *fs,
                              tmem_frontswap_stats *out)
{
    tmem_frontswap *m = (tmem_frontswap *)fs; /* atomics load only */
    out->succ_stores = atomic_load(&m->succ_stores);
    out->failed_stores = atomic_load(&m->failed_stores);
    out->loads = atomic_load(&m->loads);
    out->failed_loads = atomic_load(&m->failed_loads);
    out->invalidates = atomic_load(&m->invalidates);
    out->shrunk = atomic_load(&m->shrunk);
}
