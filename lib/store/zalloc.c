/*
 * zalloc: log-structured, handle-based storage for compressed pages
 * (zalloc.h has the design and the lock order).
 *
 * Invariants, under z->lock:
 *   - every segment is in segs[] at its own idx; seg->live is the number of
 *     bytes of live objects inside it; a segment other than the head with
 *     live == 0 is freed at once;
 *   - an object starts inside a segment (never at its very end) and, if it
 *     does not fit, continues at the start of seg->cont;
 *   - data_bytes = sum of live object lengths; meta_bytes = every byte the
 *     pool holds (segments, handle pages, directories, segs[]) minus them.
 * Memory is counted at malloc_usable_size + 8 (the chunk header).
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "store/zalloc.h"

#define SEG TMEM_ZA_SEG_SIZE
#define ENTS_PER_PAGE 256u
#define HDR sizeof(struct tmem_zseg)

struct tmem_zseg {
    struct tmem_zseg *cont; /* where an object straddling the end goes on */
    uint32_t idx;           /* position in segs[] */
    uint32_t live;          /* live bytes in this segment */
    uint32_t victim;        /* chosen by the running compaction */
    uint32_t pad;
};

struct tmem_zdir {
    uint32_t cap;           /* page slots */
    struct tmem_zdir *prev; /* older directories, freed at fini only */
    tmem_zent *pages[];
};

static uint64_t held(void *p)
{
    return p ? malloc_usable_size(p) + 8 : 0;
}

static void meta_add(tmem_zpool *z, int64_t d)
{
    atomic_fetch_add_explicit(&z->meta_bytes, (uint64_t)d,
                              memory_order_relaxed);
}

static struct tmem_zseg *seg_of(const char *p)
{
    return (struct tmem_zseg *)((uintptr_t)p & ~(uintptr_t)(SEG - 1));
}

int tmem__zalloc_init(tmem_zpool *z)
{
    memset(z, 0, sizeof *z);
    if (pthread_rwlock_init(&z->move, NULL) != 0)
        return -ENOMEM;
    return 0;
}

void tmem__zalloc_fini(tmem_zpool *z)
{
    for (uint32_t i = 0; i < z->nseg; i++)
        tmem__free(z->segs[i]);
    tmem__free(z->segs);
    struct tmem_zdir *d = atomic_load(&z->dir);
    if (d)
        for (uint32_t i = 0; i * ENTS_PER_PAGE < z->nent; i++)
            tmem__free(d->pages[i]);
    while (d) {
        struct tmem_zdir *prev = d->prev;
        tmem__free(d);
        d = prev;
    }
    pthread_rwlock_destroy(&z->move);
}

tmem_zent *tmem__zalloc_ent(tmem_zpool *z, uint32_t idx)
{
    struct tmem_zdir *d = atomic_load_explicit(&z->dir, memory_order_acquire);
    return &d->pages[idx / ENTS_PER_PAGE][idx % ENTS_PER_PAGE];
}

void tmem__zalloc_rdlock(tmem_zpool *z)
{
    pthread_rwlock_rdlock(&z->move);
}

void tmem__zalloc_rdunlock(tmem_zpool *z)
{
    pthread_rwlock_unlock(&z->move);
}

const void *tmem__zalloc_map(const tmem_zent *e, void *tmp)
{
    uint64_t loc = atomic_load_explicit(&e->loc, memory_order_relaxed);
    const char *p = TMEM_ZA_PTR(loc);
    uint32_t len = TMEM_ZA_LEN(loc);
    struct tmem_zseg *s = seg_of(p);
    size_t first = (size_t)((const char *)s + SEG - p);
    if (len <= first)
        return p;
    memcpy(tmp, p, first);
    memcpy((char *)tmp + first, (char *)s->cont + HDR, len - first);
    return tmp;
}

/* ---- segments ------------------------------------------------------- */

/* Allocates a segment and makes it the head.  Returns 0 or -ENOMEM. */
static int seg_new_locked(tmem_zpool *z)
{
    if (z->nseg == z->segcap) {
        uint32_t cap = z->segcap ? z->segcap * 2 : 8;
        void *old = z->segs;
        uint64_t was = held(old);
        struct tmem_zseg **n = tmem__realloc(old, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        z->segs = n;
        z->segcap = cap;
        meta_add(z, (int64_t)(held(n) - was));
    }
    struct tmem_zseg *s = tmem__aligned_alloc(SEG, SEG);
    if (s && (uintptr_t)s >> 48) { /* a handle keeps 48 address bits */
        tmem__free(s);
        s = NULL;
    }
    if (!s)
        return -ENOMEM;
    memset(s, 0, HDR);
    s->idx = z->nseg;
    z->segs[z->nseg++] = s;
    if (z->head)
        z->head->cont = s;
    z->head = s;
    z->head_off = HDR;
    z->seg_bytes += held(s);
    meta_add(z, (int64_t)held(s));
    return 0;
}

static void seg_free_locked(tmem_zpool *z, struct tmem_zseg *s)
{
    struct tmem_zseg *last = z->segs[--z->nseg];
    z->segs[s->idx] = last;
    last->idx = s->idx;
    z->seg_bytes -= held(s);
    meta_add(z, -(int64_t)held(s));
    tmem__free(s);
    if (z->segcap > 64 && z->nseg < z->segcap / 4) {
        /* Shrink the list too (a failure just keeps the bigger one). */
        uint64_t was = held(z->segs);
        struct tmem_zseg **n =
            tmem__realloc(z->segs, z->segcap / 2 * sizeof *n);
        if (n) {
            z->segs = n;
            z->segcap /= 2;
            meta_add(z, (int64_t)held(n) - (int64_t)was);
        }
    }
}

/* Lowers the live count of segment s by n; frees it when empty. */
static void seg_put_locked(tmem_zpool *z, struct tmem_zseg *s, uint32_t n)
{
    s->live -= n;
    if (s->live == 0 && s != z->head)
        seg_free_locked(z, s);
}

/* Appends len bytes at the head; returns 0 and sets *out, or -ENOMEM
 * (then nothing changed). */
static int append_locked(tmem_zpool *z, const void *src, uint32_t len,
                         char **out)
{
    if (!z->head || z->head_off == SEG) {
        if (seg_new_locked(z) < 0)
            return -ENOMEM;
    }
    struct tmem_zseg *h = z->head;
    char *p = (char *)h + z->head_off;
    uint32_t first = SEG - z->head_off;
    if (first < len && seg_new_locked(z) < 0)
        return -ENOMEM;
    first = first < len ? first : len;
    memcpy(p, src, first);
    h->live += first;
    if (first < len) {
        memcpy((char *)z->head + HDR, (const char *)src + first, len - first);
        z->head->live += len - first;
        z->head_off = HDR + (len - first);
    } else {
        z->head_off += len;
    }
    *out = p;
    return 0;
}

/* Frees a former head whose objects all died while it was the head. */
static void retire_locked(tmem_zpool *z, struct tmem_zseg *old)
{
    if (old && old != z->head && old->live == 0)
        seg_free_locked(z, old);
}

/* append_locked, then retire the segments the head left behind. */
static int append_retire_locked(tmem_zpool *z, const void *src, uint32_t len,
                                char **out)
{
    struct tmem_zseg *old = z->head;
    int r = append_locked(z, src, len, out);
    if (r == 0 && old != z->head)
        retire_locked(z, old);
    return r;
}

/* Gives back the bytes of the object at p. */
static void release_locked(tmem_zpool *z, char *p, uint32_t len)
{
    struct tmem_zseg *s = seg_of(p);
    struct tmem_zseg *next = s->cont;
    uint32_t first = (uint32_t)((char *)s + SEG - p);
    if (first >= len) {
        seg_put_locked(z, s, len);
        return;
    }
    seg_put_locked(z, s, first);
    seg_put_locked(z, next, len - first);
}

/* ---- handles -------------------------------------------------------- */

/* Makes room for one more handle page in the directory. */
static int dir_grow_locked(tmem_zpool *z)
{
    struct tmem_zdir *d = atomic_load_explicit(&z->dir, memory_order_relaxed);
    uint32_t used = (z->nent + ENTS_PER_PAGE - 1) / ENTS_PER_PAGE;
    if (d && used < d->cap)
        return 0;
    uint32_t cap = d ? d->cap * 2 : 4;
    struct tmem_zdir *n = tmem__malloc(sizeof *n + cap * sizeof n->pages[0]);
    if (!n)
        return -ENOMEM;
    n->cap = cap;
    n->prev = d;
    if (d)
        memcpy(n->pages, d->pages, used * sizeof n->pages[0]);
    meta_add(z, (int64_t)held(n));
    atomic_store_explicit(&z->dir, n, memory_order_release);
    return 0;
}

/* Takes a free handle; returns 0 and sets *idx, or -ENOMEM. */
static int ent_alloc_locked(tmem_zpool *z, uint32_t *idx)
{
    if (z->free_head) {
        *idx = z->free_head - 1;
        tmem_zent *e = tmem__zalloc_ent(z, *idx);
        z->free_head =
            (uint32_t)atomic_load_explicit(&e->loc, memory_order_relaxed);
        return 0;
    }
    if (z->nent >= TMEM_ZA_MAX_ENTS)
        return -ENOMEM;
    if (z->nent % ENTS_PER_PAGE == 0) {
        if (dir_grow_locked(z) < 0)
            return -ENOMEM;
        tmem_zent *pg = tmem__calloc(ENTS_PER_PAGE, sizeof *pg);
        if (!pg)
            return -ENOMEM;
        struct tmem_zdir *d =
            atomic_load_explicit(&z->dir, memory_order_relaxed);
        d->pages[z->nent / ENTS_PER_PAGE] = pg;
        meta_add(z, (int64_t)held(pg));
    }
    *idx = z->nent++;
    return 0;
}

static void ent_free_locked(tmem_zpool *z, uint32_t idx)
{
    tmem_zent *e = tmem__zalloc_ent(z, idx);
    atomic_store_explicit(&e->loc, TMEM_ZA_FREE | z->free_head,
                          memory_order_relaxed);
    z->free_head = idx + 1;
}

static uint64_t make_loc(const char *p, uint32_t len, unsigned codec)
{
    return (uint64_t)(uintptr_t)p | (uint64_t)len << 48 |
           (uint64_t)(codec & 3) << 61;
}

int tmem__zalloc_store(tmem_zpool *z, const void *src, uint32_t len,
                       unsigned codec, uint32_t hash, uint32_t *idx)
{
    char *p;
    tmem__spin_lock(&z->lock);
    int r = ent_alloc_locked(z, idx);
    if (r == 0 && (r = append_retire_locked(z, src, len, &p)) < 0)
        ent_free_locked(z, *idx);
    if (r == 0) {
        tmem_zent *e = tmem__zalloc_ent(z, *idx);
        e->hash = hash;
        atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
        atomic_store_explicit(&e->loc, make_loc(p, len, codec),
                              memory_order_relaxed);
        atomic_fetch_add_explicit(&z->data_bytes, len, memory_order_relaxed);
        meta_add(z, -(int64_t)len);
        atomic_fetch_add_explicit(&z->objects, 1, memory_order_relaxed);
        if (codec == 0)
            atomic_fetch_add_explicit(&z->raw_objects, 1, memory_order_relaxed);
    }
    tmem__spin_unlock(&z->lock);
    return r;
}

/* Compaction pays when dead bytes pass a quarter of the segments (and a
 * few segments' worth), and since the last try freed too little. */
static int want_compact_locked(tmem_zpool *z)
{
    uint64_t data = atomic_load_explicit(&z->data_bytes, memory_order_relaxed);
    uint64_t waste = z->seg_bytes - data;
    return waste > 4 * SEG && waste > z->seg_bytes / 4 &&
           (waste > z->waste_floor || z->nseg < z->floor_nseg / 2);
}

void tmem__zalloc_free(tmem_zpool *z, uint32_t idx)
{
    tmem__spin_lock(&z->lock);
    tmem_zent *e = tmem__zalloc_ent(z, idx);
    uint64_t loc = atomic_load_explicit(&e->loc, memory_order_relaxed);
    uint32_t len = TMEM_ZA_LEN(loc);
    release_locked(z, TMEM_ZA_PTR(loc), len);
    ent_free_locked(z, idx);
    atomic_fetch_sub_explicit(&z->data_bytes, len, memory_order_relaxed);
    meta_add(z, (int64_t)len);
    atomic_fetch_sub_explicit(&z->objects, 1, memory_order_relaxed);
    if (TMEM_ZA_CODEC(loc) == 0)
        atomic_fetch_sub_explicit(&z->raw_objects, 1, memory_order_relaxed);
    int compact = want_compact_locked(z);
    tmem__spin_unlock(&z->lock);
    if (compact)
        tmem__zalloc_compact(z, 0);
}

/* ---- compaction ----------------------------------------------------- */

#define BUCKETS 16u

/* Greedy cleaning: the emptiest segments are victims, as many as it takes
 * to bring dead bytes down to 1/8 of the segments (so each compaction
 * frees at least 1/8 and moves as little as possible).  With force, every
 * partly used segment is.  Marks the victims; returns how many. */
static uint32_t pick_victims_locked(tmem_zpool *z, int force)
{
    const uint32_t cap = SEG - (uint32_t)HDR, step = cap / BUCKETS + 1;
    uint64_t free_in[BUCKETS] = {0};
    uint32_t limit = cap;
    if (!force) {
        for (uint32_t i = 0; i < z->nseg; i++)
            if (z->segs[i] != z->head)
                free_in[z->segs[i]->live / step] += cap - z->segs[i]->live;
        uint64_t data =
            atomic_load_explicit(&z->data_bytes, memory_order_relaxed);
        uint64_t waste = z->seg_bytes - data, freed = 0;
        for (limit = 0; limit < BUCKETS && waste - freed > z->seg_bytes / 8;)
            freed += free_in[limit++];
        limit *= step;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < z->nseg; i++) {
        struct tmem_zseg *s = z->segs[i];
        s->victim = s != z->head && s->live < limit;
        n += s->victim;
    }
    return n;
}

/* Moves entry e if it touches a victim; returns 0 or -ENOMEM. */
static int move_locked(tmem_zpool *z, tmem_zent *e, char *tmp)
{
    uint64_t loc = atomic_load_explicit(&e->loc, memory_order_relaxed);
    if (loc & TMEM_ZA_FREE)
        return 0;
    char *p = TMEM_ZA_PTR(loc), *np;
    uint32_t len = TMEM_ZA_LEN(loc);
    struct tmem_zseg *s = seg_of(p);
    int spans = (uint32_t)((char *)s + SEG - p) < len;
    if (!s->victim && !(spans && s->cont->victim))
        return 0;
    const void *src = tmem__zalloc_map(e, tmp);
    if (src != tmp) {
        memcpy(tmp, src, len);
    }
    if (append_retire_locked(z, tmp, len, &np) < 0)
        return -ENOMEM;
    release_locked(z, p, len);
    atomic_store_explicit(&e->loc, make_loc(np, len, TMEM_ZA_CODEC(loc)),
                          memory_order_relaxed);
    atomic_fetch_add_explicit(&z->moved, 1, memory_order_relaxed);
    return 0;
}

int tmem__zalloc_compact(tmem_zpool *z, int force)
{
    char tmp[4096];
    int r = 0;
    pthread_rwlock_wrlock(&z->move);
    tmem__spin_lock(&z->lock);
    uint32_t before = z->nseg;
    if (pick_victims_locked(z, force)) {
        /* A fresh head: victims' objects never land in a victim. */
        for (uint32_t i = 0; r == 0 && i < z->nent; i++)
            r = move_locked(z, tmem__zalloc_ent(z, i), tmp);
        for (uint32_t i = 0; i < z->nseg; i++)
            z->segs[i]->victim = 0;
        atomic_fetch_add_explicit(&z->compactions, 1, memory_order_relaxed);
    }
    uint64_t data = atomic_load_explicit(&z->data_bytes, memory_order_relaxed);
    uint64_t waste = z->seg_bytes - data;
    z->waste_floor = waste > z->seg_bytes / 4 ? waste + z->seg_bytes / 8 : 0;
    z->floor_nseg = z->nseg;
    int freed = z->nseg < before ? (int)(before - z->nseg) : 0;
    tmem__spin_unlock(&z->lock);
    pthread_rwlock_unlock(&z->move);
    return r < 0 ? r : freed;
}
