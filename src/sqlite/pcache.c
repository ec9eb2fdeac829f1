/*
 * The page cache of full mode (sqlite3_pcache_methods2): SQLite's own
 * LRU cache, except that a clean page it evicts goes to cleancache.
 *
 * A cache is one connection's: SQLite calls it from one thread at a time.
 * Pages are one allocation each: header, buffer (szPage), extra (szExtra).
 * An unpinned page is on the LRU list (lru.lnext newest) and, SQLite
 * guarantees, clean: its buffer holds what the file holds for its key as
 * of its tag's epoch.  A page is tagged (file, epoch) by the VFS when it
 * reads or writes the page's buffer (tsq_pcache_tag); only a tagged page
 * is put, and tsq_file_put refuses it when the file moved on since.
 *
 * Puts happen only where SQLite holds at least a SHARED lock on the
 * database (a fetch that needs room, an unpin over capacity), never in
 * xTruncate, xShrink or xDestroy: those may run while another process
 * changes the file, and what they drop is discarded.
 *
 * Capacity: SQLite's cache_size (xCachesize), scaled by the balloon's
 * target over all caches (tsq_caches), never below the pinned pages plus
 * a few.  The tag fields of a page are guarded by the registry's lock.
 */
#include "tsq.h"

#include <stdlib.h>
#include <string.h>

struct tsq_cache_totals tsq_caches;

struct tsq_page {
    sqlite3_pcache_page base; /* first: SQLite sees this */
    unsigned key;
    bool pinned;
    uint32_t seen;            /* balloon interval of the last reuse */
    struct tsq_page *hnext, *lprev, *lnext;
    struct tsq_file *file;    /* tag (registry lock) */
    uint64_t epoch;
};

struct tsq_cache {
    int szpage, szextra;
    bool purgeable;
    unsigned nmax;            /* SQLite's cache_size, pages */
    unsigned npage, npinned;
    unsigned nhash;
    struct tsq_page **hash;
    struct tsq_page lru;      /* sentinel of the unpinned pages */
};

#define HDR_SIZE ((sizeof(struct tsq_page) + 15) & ~(size_t)15)

static void total_add(_Atomic uint64_t *t, int64_t d)
{
    atomic_fetch_add_explicit(t, (uint64_t)d, memory_order_relaxed);
}

static unsigned capacity(const struct tsq_cache *c)
{
    if (!c->purgeable)
        return ~0u;
    uint64_t n = c->nmax, t = atomic_load(&tsq_caches.target),
             m = atomic_load(&tsq_caches.max);
    if (t && m && t < m)
        n = n * t / m;
    uint64_t floor = c->npinned + 8u < c->nmax ? c->npinned + 8u : c->nmax;
    return (unsigned)(n > floor ? n : floor);
}

static struct tsq_page **bucket(struct tsq_cache *c, unsigned key)
{
    return &c->hash[(key * 2654435761u) & (c->nhash - 1)];
}

static void hash_del(struct tsq_cache *c, struct tsq_page *p)
{
    struct tsq_page **pp = bucket(c, p->key);
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
}

static void hash_grow(struct tsq_cache *c)
{
    unsigned n = c->nhash ? c->nhash * 2 : 256;
    struct tsq_page **t = calloc(n, sizeof *t), **old = c->hash;
    unsigned oldn = c->nhash;
    if (!t)
        return;
    c->hash = t;
    c->nhash = n;
    for (unsigned i = 0; i < oldn; i++)
        for (struct tsq_page *p = old[i], *nx; p; p = nx) {
            nx = p->hnext;
            struct tsq_page **b = bucket(c, p->key);
            p->hnext = *b;
            *b = p;
        }
    free(old);
}

static void lru_del(struct tsq_page *p)
{
    p->lprev->lnext = p->lnext;
    p->lnext->lprev = p->lprev;
}

static void lru_push(struct tsq_cache *c, struct tsq_page *p)
{
    p->lnext = c->lru.lnext;
    p->lprev = &c->lru;
    c->lru.lnext->lprev = p;
    c->lru.lnext = p;
}

static void set_pinned(struct tsq_cache *c, struct tsq_page *p, bool on)
{
    if (p->pinned == on)
        return;
    p->pinned = on;
    c->npinned += on ? 1 : -1;
    total_add(&tsq_caches.pinned, on ? 1 : -1);
    if (on)
        lru_del(p);
    else
        lru_push(c, p);
}

/* The page's tag, taken off it. */
static struct tsq_file *untag(struct tsq_page *p, uint64_t *epoch)
{
    tsq_pgreg_lock();
    struct tsq_file *f = p->file;
    *epoch = p->epoch;
    p->file = NULL;
    tsq_pgreg_unlock();
    return f;
}

/* Takes p out of the cache (hash, LRU, pinned count); put: a clean page
 * leaving by eviction goes to cleancache when tagged. */
static void unlink_page(struct tsq_cache *c, struct tsq_page *p, bool put)
{
    uint64_t epoch;
    struct tsq_file *f = untag(p, &epoch);
    if (put && f)
        tsq_file_put(f, epoch, p->key, p->base.pBuf);
    if (p->pinned) {
        c->npinned--;
        total_add(&tsq_caches.pinned, -1);
    } else {
        lru_del(p);
    }
    hash_del(c, p);
    c->npage--;
    total_add(&tsq_caches.pages, -1);
}

static void free_page(struct tsq_cache *c, struct tsq_page *p, bool put)
{
    unlink_page(c, p, put);
    tsq_pgreg_del(p->base.pBuf);
    free(p);
}

/* Evicts the oldest unpinned pages while over capacity. */
static void shrink_to_cap(struct tsq_cache *c)
{
    unsigned cap = capacity(c);
    while (c->npage > cap && c->lru.lprev != &c->lru)
        free_page(c, c->lru.lprev, true);
}

static int x_init(void *arg)
{
    (void)arg;
    return SQLITE_OK;
}

static void x_shutdown(void *arg)
{
    (void)arg;
}

static sqlite3_pcache *x_create(int szpage, int szextra, int purgeable)
{
    struct tsq_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->szpage = szpage;
    c->szextra = szextra;
    c->purgeable = purgeable != 0;
    c->lru.lnext = c->lru.lprev = &c->lru;
    hash_grow(c);
    if (!c->hash) {
        free(c);
        return NULL;
    }
    return (sqlite3_pcache *)c;
}

static void x_cachesize(sqlite3_pcache *pc, int n)
{
    struct tsq_cache *c = (struct tsq_cache *)pc;
    unsigned nmax = n > 0 ? (unsigned)n : 0;
    if (c->purgeable)
        total_add(&tsq_caches.max, (int64_t)nmax - (int64_t)c->nmax);
    c->nmax = nmax; /* evictions come at the next fetch or unpin */
}

static int x_pagecount(sqlite3_pcache *pc)
{
    return (int)((struct tsq_cache *)pc)->npage;
}

static void note_reuse(struct tsq_page *p)
{
    uint32_t e = atomic_load_explicit(&tsq_caches.epoch, memory_order_relaxed);
    if (p->seen != e) {
        p->seen = e;
        total_add(&tsq_caches.reused, 1);
    }
}

/* A page for key: the oldest unpinned one recycled when at capacity,
 * else a new one (createFlag 2 even over capacity). */
static struct tsq_page *make_page(struct tsq_cache *c, unsigned key, int create)
{
    struct tsq_page *p = NULL;
    shrink_to_cap(c);
    if (c->npage >= capacity(c)) {
        if (c->lru.lprev != &c->lru) {
            p = c->lru.lprev;
            unlink_page(c, p, true);
        } else if (create == 1) {
            return NULL;
        }
    }
    if (!p) {
        p = malloc(HDR_SIZE + (size_t)c->szpage + (size_t)c->szextra);
        if (!p)
            return NULL;
        memset(p, 0, sizeof *p);
        p->base.pBuf = (char *)p + HDR_SIZE;
        p->base.pExtra = (char *)p->base.pBuf + c->szpage;
        tsq_pgreg_add(p->base.pBuf, p);
    }
    memset(p->base.pExtra, 0, (size_t)c->szextra);
    p->key = key;
    p->pinned = true;
    p->seen = atomic_load(&tsq_caches.epoch);
    if (c->npage >= c->nhash)
        hash_grow(c);
    struct tsq_page **b = bucket(c, key);
    p->hnext = *b;
    *b = p;
    c->npage++;
    c->npinned++;
    total_add(&tsq_caches.pages, 1);
    total_add(&tsq_caches.pinned, 1);
    return p;
}

static sqlite3_pcache_page *x_fetch(sqlite3_pcache *pc, unsigned key,
                                    int create)
{
    struct tsq_cache *c = (struct tsq_cache *)pc;
    struct tsq_page *p = *bucket(c, key);
    while (p && p->key != key)
        p = p->hnext;
    if (p) {
        set_pinned(c, p, true);
        note_reuse(p);
        return &p->base;
    }
    if (create == 0)
        return NULL;
    p = make_page(c, key, create);
    return p ? &p->base : NULL;
}

static void x_unpin(sqlite3_pcache *pc, sqlite3_pcache_page *pg, int discard)
{
    struct tsq_cache *c = (struct tsq_cache *)pc;
    struct tsq_page *p = (struct tsq_page *)pg;
    if (discard) {
        free_page(c, p, false);
        return;
    }
    set_pinned(c, p, false);
    shrink_to_cap(c);
}

static void x_rekey(sqlite3_pcache *pc, sqlite3_pcache_page *pg,
                    unsigned oldkey, unsigned newkey)
{
    struct tsq_cache *c = (struct tsq_cache *)pc;
    struct tsq_page *p = (struct tsq_page *)pg, *q = *bucket(c, newkey);
    (void)oldkey;
    while (q && q->key != newkey)
        q = q->hnext;
    if (q)
        free_page(c, q, false);
    uint64_t epoch;
    untag(p, &epoch); /* its content is another page's now */
    hash_del(c, p);
    p->key = newkey;
    struct tsq_page **b = bucket(c, newkey);
    p->hnext = *b;
    *b = p;
}

static void x_truncate(sqlite3_pcache *pc, unsigned limit)
{
    struct tsq_cache *c = (struct tsq_cache *)pc;
    for (unsigned i = 0; i < c->nhash; i++)
        for (struct tsq_page *p = c->hash[i], *nx; p; p = nx) {
            nx = p->hnext;
            if (p->key >= limit)
                free_page(c, p, false);
        }
}

static void x_destroy(sqlite3_pcache *pc)
{
    struct tsq_cache *c = (struct tsq_cache *)pc;
    x_truncate(pc, 0);
    if (c->purgeable)
        total_add(&tsq_caches.max, -(int64_t)c->nmax);
    free(c->hash);
    free(c);
}

static void x_shrink(sqlite3_pcache *pc)
{
    struct tsq_cache *c = (struct tsq_cache *)pc;
    while (c->lru.lprev != &c->lru)
        free_page(c, c->lru.lprev, false);
}

static const sqlite3_pcache_methods2 methods = {
    .iVersion = 1,
    .xInit = x_init,
    .xShutdown = x_shutdown,
    .xCreate = x_create,
    .xCachesize = x_cachesize,
    .xPagecount = x_pagecount,
    .xFetch = x_fetch,
    .xUnpin = x_unpin,
    .xRekey = x_rekey,
    .xTruncate = x_truncate,
    .xDestroy = x_destroy,
    .xShrink = x_shrink,
};

const sqlite3_pcache_methods2 *tsq_pcache_methods(void)
{
    return &methods;
}

void tsq_pcache_tag(void *buf, struct tsq_file *f, uint64_t epoch,
                    uint32_t pgno)
{
    tsq_pgreg_lock();
    struct tsq_page *p = tsq_pgreg_find_locked(buf);
    if (p && p->key == pgno) {
        p->file = f;
        p->epoch = epoch;
    }
    tsq_pgreg_unlock();
}
