/*
 * frontswap on a tmem_conn: one persistent pool per swap type, pages named
 * by swap offset, after the Linux frontswap shim.
 *
 * Invariants:
 *   - the entry of (t, offset) is nonzero exactly when the store holds
 *     (t, offset) for us; curr is the number of nonzero entries over all
 *     types, kept with atomic exchanges, so curr_pages is exact and a load
 *     or invalidate of an absent page needs no round trip;
 *   - an entry also says where the page went when it was stored: a fill
 *     word (nothing stored), a (handle, gen) in the tenant's private arena
 *     (docs/layout.md), or only "stored"; so a load can be served from
 *     the tenant's own read-only view without the connection
 *     (tmem_frontswap_load_direct), and falls back to it otherwise;
 *   - entries live in chunks of 64 Ki offsets, made on first store into
 *     them (before the put, so a stored page always has its entry) and
 *     freed with the type;
 *   - offset -> (oid {offset >> SWIZ_BITS, 0, 0}, index offset & SWIZ_MASK):
 *     512 consecutive slots (2 MiB of swap) share one object, so a swap
 *     cluster is one object in the store and an area flush stays cheap;
 *   - a failed store leaves the entry clear: the store removed any older
 *     copy (duplicate-put coherence) and the caller keeps the page.
 * The caller serialises, per type, init / invalidate_area against the page
 * calls of that type (swapon/swapoff against swap I/O, as in the kernel);
 * `lock` serialises init, invalidate_area, shrink and destroy.
 */
#include <tmem/client.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "client/conn_direct.h"
#include "common/arena_fmt.h"
#include "common/mem.h"
#include "common/pack.h"

#define SWIZ_BITS 9
#define SWIZ_MASK ((1u << SWIZ_BITS) - 1)
#define FS_CHUNK 64     /* ops per batch call */
#define SHRINK_CHUNK 32 /* pages brought back per round trip */
#define ECHUNK_SHIFT 16 /* offsets per entry chunk: 64 Ki (512 KiB) */
#define ECHUNK (1ull << ECHUNK_SHIFT)

/* An entry: 0 (not stored), or E_STORED with
 *   E_FILL | word                    a same-filled page
 *   E_DIRECT | gen << 32 | handle    in the private arena (gen < 2^29)
 *   nothing else                     only the daemon can read it */
#define E_STORED (1ull << 63)
#define E_FILL (1ull << 62)
#define E_DIRECT (1ull << 61)
#define E_GEN_MAX (1u << 29)

typedef _Atomic uint64_t entry;

struct fs_type {
    bool active;
    int pool;
    uint64_t npages;
    _Atomic(entry *) *chunks; /* npages / ECHUNK, made on demand */
    uint64_t nchunks;
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

/* The entry of off, or NULL when its chunk was never made. */
static entry *ent(const struct fs_type *t, uint64_t off)
{
    entry *c = atomic_load_explicit(&t->chunks[off >> ECHUNK_SHIFT],
                                    memory_order_acquire);
    return c ? &c[off & (ECHUNK - 1)] : NULL;
}

static uint64_t ent_get(const struct fs_type *t, uint64_t off)
{
    entry *e = ent(t, off);
    return e ? atomic_load_explicit(e, memory_order_acquire) : 0;
}

/* Makes the chunk of off exist.  Returns 0 or TMEM_ENOMEM. */
static int ent_ready(struct fs_type *t, uint64_t off)
{
    _Atomic(entry *) *slot = &t->chunks[off >> ECHUNK_SHIFT];
    if (atomic_load_explicit(slot, memory_order_acquire))
        return 0;
    entry *c = tmem__calloc(ECHUNK, sizeof *c);
    entry *none = NULL;
    if (!c)
        return TMEM_ENOMEM;
    if (!atomic_compare_exchange_strong(slot, &none, c))
        tmem__free(c); /* another thread made it */
    return 0;
}

static void ent_set(tmem_frontswap *fs, struct fs_type *t, uint64_t off,
                    uint64_t v)
{
    if (!atomic_exchange(ent(t, off), v))
        add(&fs->curr, 1);
}

static bool ent_clear(tmem_frontswap *fs, struct fs_type *t, uint64_t off)
{
    entry *e = ent(t, off);
    if (!e || !atomic_exchange(e, 0))
        return false;
    atomic_fetch_sub(&fs->curr, 1);
    return true;
}

/* The entry for a stored page, from where its put said it went. */
static uint64_t ent_of(const tmem__put_where *w)
{
    if (w->kind == TMEM__PUT_FILL)
        return E_STORED | E_FILL | w->handle;
    if (w->kind == TMEM__PUT_DIRECT && w->gen < E_GEN_MAX)
        return E_STORED | E_DIRECT | (uint64_t)w->gen << 32 | w->handle;
    return E_STORED;
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

static uint64_t entries_count(const struct fs_type *t)
{
    uint64_t n = 0;
    for (uint64_t c = 0; c < t->nchunks; c++) {
        entry *e = atomic_load(&t->chunks[c]);
        for (uint64_t i = 0; e && i < ECHUNK; i++)
            n += atomic_load_explicit(&e[i], memory_order_relaxed) != 0;
    }
    return n;
}

static void entries_free(struct fs_type *t)
{
    for (uint64_t c = 0; c < t->nchunks; c++)
        tmem__free(atomic_load(&t->chunks[c]));
    tmem__free((void *)t->chunks);
}

static int area_drop_locked(tmem_frontswap *fs, struct fs_type *t)
{
    int rc = tmem_conn_pool_destroy(fs->conn, t->pool);
    uint64_t n = entries_count(t);
    atomic_fetch_sub(&fs->curr, n);
    add(&fs->invalidates, n);
    entries_free(t);
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
    uint64_t nchunks = (npages + ECHUNK - 1) >> ECHUNK_SHIFT;
    _Atomic(entry *) *chunks = tmem__calloc(nchunks, sizeof *chunks);
    rc = TMEM_ENOMEM;
    if (!chunks)
        goto out_unlock;
    rc = tmem_conn_pool_new(fs->conn, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                            NULL);
    if (rc < 0) {
        tmem__free((void *)chunks);
        goto out_unlock;
    }
    *t = (struct fs_type){.active = true, .pool = rc, .npages = npages,
                          .chunks = chunks, .nchunks = nchunks};
    /* Our own view of the arena the pool's pages go to, for direct loads:
     * without it (an older daemon, no memory) loads ask the daemon. */
    const void *base;
    size_t len;
    (void)tmem__conn_arena_view(fs->conn, &base, &len);
    rc = 0;
out_unlock:
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

/* Accounts for the result of a put of (t, off); returns store's result. */
static int store_done(tmem_frontswap *fs, struct fs_type *t, uint64_t off,
                      int rc, const tmem__put_where *w)
{
    if (rc == 1) {
        ent_set(fs, t, off, ent_of(w));
        add(&fs->succ_stores, 1);
        return 0;
    }
    ent_clear(fs, t, off); /* the store removed any older copy */
    add(&fs->failed_stores, 1);
    return rc < 0 ? rc : -EIO;
}

int tmem_frontswap_store(tmem_frontswap *fs, unsigned type, uint64_t offset,
                         const void *page)
{
    int result;
    int64_t rc = tmem_frontswap_store_batch(fs, type, &offset, &page, 1,
                                            &result);
    return rc < 0 ? (int)rc : result;
}

/* Decodes a record read from the arena into page: LZ4 or raw. */
static int decode(const tmem_arena_rec *r, const void *src, void *page)
{
    tmem_packed pk = {.len = r->len};
    if (r->codec == 1)
        pk.enc = TMEM_PACK_LZ4;
    else if (r->codec == 0 && r->len == TMEM_PAGE_SIZE)
        pk.enc = TMEM_PACK_RAW;
    else
        return TMEM_EAGAIN; /* zstd: the daemon decodes it */
    return tmem__unpack(&pk, src, page) == 0 ? 0 : TMEM_EAGAIN;
}

/* A load without the connection, from entry e.  Returns 1 or EAGAIN. */
static int load_entry(tmem_frontswap *fs, uint64_t e, void *page)
{
    if (e & E_FILL) {
        tmem__fill_page(page, (uint32_t)e);
        return 1;
    }
    size_t len;
    const void *base = tmem__conn_arena_peek(fs->conn, &len);
    if (!(e & E_DIRECT) || !base)
        return TMEM_EAGAIN;
    tmem_arena_rec r;
    char buf[TMEM_PAGE_SIZE];
    uint32_t gen = (uint32_t)(e >> 32) & (E_GEN_MAX - 1);
    if (tmem__arena_read(base, len, (uint32_t)e, gen, TMEM_ARENA_VERIFY, &r,
                         buf) < 0 ||
        decode(&r, buf, page) < 0)
        return TMEM_EAGAIN;
    return 1;
}

int tmem_frontswap_load_direct(tmem_frontswap *fs, unsigned type,
                               uint64_t offset, void *page)
{
    struct fs_type *t = slot(fs, type, offset);
    if (!t || !page)
        return TMEM_EINVAL;
    uint64_t e = ent_get(t, offset);
    if (!e)
        return 0;
    int rc = load_entry(fs, e, page);
    if (rc == 1)
        add(&fs->loads, 1);
    return rc;
}

int tmem_frontswap_load(tmem_frontswap *fs, unsigned type, uint64_t offset,
                        void *page)
{
    struct fs_type *t = slot(fs, type, offset);
    tmem_oid oid;
    uint32_t index;
    int rc = 0;

    if (!t || !page) {
        add(&fs->failed_loads, 1);
        return TMEM_EINVAL;
    }
    uint64_t e = ent_get(t, offset);
    if (e && (rc = load_entry(fs, e, page)) == TMEM_EAGAIN) {
        key_of(offset, &oid, &index);
        rc = tmem_conn_get(fs->conn, t->pool, &oid, index, page);
    }
    add(rc == 1 ? &fs->loads : &fs->failed_loads, 1);
    return rc;
}

/* Which ops of a chunk go to the store: loads the entries or the arena
 * view cannot serve, and puts whose entry chunk exists (else ENOMEM). */
static size_t chunk_plan(tmem_frontswap *fs, struct fs_type *t, bool put,
                         const uint64_t *offs, void *const *pages, size_t n,
                         int *results, tmem_op *ops, size_t *map)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        results[i] = 0;
        if (offs[i] >= t->npages || !pages[i]) {
            results[i] = TMEM_EINVAL;
            continue;
        }
        if (put && ent_ready(t, offs[i]) < 0) {
            results[i] = TMEM_ENOMEM;
            continue;
        }
        uint64_t e = put ? 0 : ent_get(t, offs[i]);
        if (!put && (!e || (results[i] = load_entry(fs, e, pages[i])) == 1))
            continue; /* not stored, or read here: no round trip */
        ops[k] = (tmem_op){
            .op = put ? TMEM_PUT : TMEM_GET, .pool = t->pool, .page = pages[i]};
        key_of(offs[i], &ops[k].oid, &ops[k].index);
        map[k++] = i;
    }
    return k;
}

/* One batch of at most FS_CHUNK pages of type t (store when put). */
static int64_t batch_chunk(tmem_frontswap *fs, struct fs_type *t, bool put,
                           const uint64_t *offs, void *const *pages, size_t n,
                           int *results)
{
    tmem_op ops[FS_CHUNK];
    tmem__put_where w[FS_CHUNK], wi[FS_CHUNK];
    size_t map[FS_CHUNK];
    int64_t good = 0;

    size_t k = chunk_plan(fs, t, put, offs, pages, n, results, ops, map);
    int rc = k ? tmem__conn_batch_where(fs->conn, ops, put ? w : NULL, k) : 0;
    memset(wi, 0, sizeof wi);
    for (size_t j = 0; j < k; j++) {
        results[map[j]] = rc < 0 ? rc : ops[j].result;
        if (put)
            wi[map[j]] = w[j];
    }
    for (size_t i = 0; i < n; i++) {
        if (put && offs[i] < t->npages && pages[i] &&
            results[i] != TMEM_ENOMEM)
            results[i] = store_done(fs, t, offs[i], results[i], &wi[i]);
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
    if (!ent_get(t, offset))
        return 0;
    key_of(offset, &oid, &index);
    int rc = tmem_conn_flush_page(fs->conn, t->pool, &oid, index);
    if (rc >= 0 && ent_clear(fs, t, offset))
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
        size_t k = 0, end = n - done < FS_CHUNK ? n : done + FS_CHUNK;
        for (size_t i = done; i < end; i++) {
            int r = offsets[i] >= t->npages ? TMEM_EINVAL : 0;
            if (results)
                results[i] = r;
            if (r < 0 || !ent_get(t, offsets[i]))
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
            if (ops[j].result >= 0 && ent_clear(fs, t, offsets[map[j]])) {
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

/* Collects up to max stored offsets of t at or after *pos, in order. */
static size_t next_offsets(const struct fs_type *t, uint64_t *pos,
                           uint64_t *offs, size_t max)
{
    size_t n = 0;
    while (n < max && *pos < t->npages) {
        entry *c = atomic_load(&t->chunks[*pos >> ECHUNK_SHIFT]);
        if (!c) { /* a chunk never made holds nothing */
            *pos = ((*pos >> ECHUNK_SHIFT) + 1) << ECHUNK_SHIFT;
            continue;
        }
        if (atomic_load(&c[*pos & (ECHUNK - 1)]))
            offs[n++] = *pos;
        (*pos)++;
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
            ent_clear(fs, t, offs[i]);
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
            ent_clear(fs, t, offs[i]);
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
