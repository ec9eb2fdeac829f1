/*
 * Arenas (arena.h, docs/layout.md): a memfd of segments, records appended
 * at per-thread heads, handles naming where each record is.
 *
 * Invariants:
 *   - a DATA segment's `live` is the bytes (header and padding included) of
 *     the records whose handle points into it; `fill` is how far it was
 *     written; records are only appended while it is a head;
 *   - a segment that is not a head and whose live drops to 0 is punched
 *     and goes on the free list; a closed (FULL) one with live bytes is in
 *     the bucket of its fullness (live * NB / capacity), so compaction
 *     takes the emptiest without a scan; held_bytes counts the 4 KiB pages
 *     of every segment up to its fill, plus the header's;
 *   - a record's state and its handle entry change only with the
 *     segment's `writers` count raised and the segment not MOVING
 *     (writer_enter), and a compaction step sets MOVING and waits for the
 *     writers to leave: so a record is never changed while it is copied,
 *     and a moved record keeps every state written before;
 *   - handle h belongs to head shard (h / TMEM_ARENA_HPS) % NH, whose lock
 *     guards its free list and fresh handles.
 */
#include "store/arena.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/thread_slot.h"
#include "store/spin.h"

#define SEG TMEM_ARENA_SEG_SIZE
#define PAGE 4096u
#define NH 4u            /* put heads */
#define CH NH            /* the compaction head */
#define SI_PAGE 128u     /* seginfo entries per allocation */
#define GROW_MIN 16u     /* segments the file grows by at least */
#define NB 16u          /* fullness buckets of closed segments */
#define BCAP (SEG - TMEM_ARENA_SEG_HDR)
#define NOBUCKET 0xffu
#define HSLOT0 (TMEM_ARENA_SEG_HDR / sizeof(tmem_arena_handle))

enum seg_state {
    SEG_FREE = 0,
    SEG_HEAD,     /* DATA, being filled */
    SEG_FULL,     /* DATA, closed */
    SEG_MOVING,   /* DATA, a compaction step is moving its records */
    SEG_HANDLE,   /* handle entries */
    SEG_PUNCHING, /* being given back */
};

struct seginfo {
    _Atomic uint32_t live;    /* live record bytes */
    _Atomic uint32_t writers; /* threads changing its records' state */
    _Atomic uint32_t state;   /* enum seg_state (changed under a->lock) */
    uint32_t fill;            /* bytes written from the segment start */
    uint32_t next_free;       /* free list: next + 1 */
    uint32_t bprev, bnext;    /* its bucket's list: neighbours + 1 */
    _Atomic uint8_t bucket;   /* NOBUCKET, or live * NB / BCAP (FULL) */
    uint8_t head;             /* while SEG_HEAD: which head fills it */
};

/* Figures, one set per head, bumped by the threads of that head's slot:
 * deltas, summed by tmem__arena_stats (no shared line on the put path). */
struct counters {
    _Atomic int64_t data_bytes, fill_bytes, live_bytes, held_bytes;
    _Atomic int64_t records, raw_records, aliases;
} __attribute__((aligned(64)));

struct head {
    atomic_int lock;
    uint32_t seg;      /* DATA segment being filled, 0 = none */
    uint32_t hfree;    /* the shard's free handles: first + 1 */
    uint32_t hdir;     /* directory slot of its fresh handle segment */
    uint32_t hnext;    /* next fresh slot there (TMEM_ARENA_HPS: none) */
    uint32_t dir_next; /* the next directory slot this shard claims */
} __attribute__((aligned(64)));

struct tmem_arena {
    int fd;
    char *base;
    size_t map_len;
    tmem_arena_hdr *hdr;
    unsigned flags;
    uint32_t max_seg;
    atomic_int lock;
    uint32_t file_seg; /* segments the file is sized for */
    uint32_t nseg;     /* segment numbers used so far (0 is the header) */
    uint32_t free_seg; /* punched segments: first + 1 */
    uint32_t bhead[NB];    /* FULL segments by fullness: first + 1 */
    _Atomic uint32_t nsparse; /* FULL segments in buckets below the top */
    _Atomic bool compacting; /* between the high and low marks */
    _Atomic(struct seginfo *) *si;
    uint32_t si_pages;
    struct head heads[NH + 1];
    struct counters cnt[NH + 1];
    _Atomic uint64_t seq; /* named arenas only: one tenant's threads */
    _Atomic uint64_t private_bytes, segments, compactions, moved, punched;
};

static void add(_Atomic uint64_t *c, int64_t d)
{
    atomic_fetch_add_explicit(c, (uint64_t)d, memory_order_relaxed);
}

static uint64_t ld(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* This thread's counters. */
static struct counters *cnt(tmem_arena *a)
{
    return &a->cnt[tmem__thread_slot() % NH];
}

static void cadd(_Atomic int64_t *c, int64_t d)
{
    atomic_fetch_add_explicit(c, d, memory_order_relaxed);
}

static int64_t csum_of(tmem_arena *a, size_t field)
{
    int64_t t = 0;
    for (unsigned i = 0; i <= NH; i++)
        t += atomic_load_explicit(
            (_Atomic int64_t *)((char *)&a->cnt[i] + field),
            memory_order_relaxed);
    return t;
}
#define CSUM(a, f) csum_of((a), offsetof(struct counters, f))

static uint64_t held_of(void *p)
{
    return tmem__held(p);
}

static uint64_t pages_of(uint32_t bytes)
{
    return ((uint64_t)bytes + PAGE - 1) / PAGE * PAGE;
}

static struct seginfo *si(tmem_arena *a, uint32_t s)
{
    struct seginfo *p =
        atomic_load_explicit(&a->si[s / SI_PAGE], memory_order_acquire);
    return &p[s % SI_PAGE];
}

static char *seg_at(tmem_arena *a, uint32_t s)
{
    return a->base + ((size_t)s << TMEM_ARENA_SEG_SHIFT);
}

static tmem_arena_rec *rec_at(tmem_arena *a, uint64_t loc)
{
    return (tmem_arena_rec *)(seg_at(a, TMEM_ALOC_SEG(loc)) +
                              TMEM_ALOC_OFF(loc));
}

static _Atomic uint32_t *dir(tmem_arena *a)
{
    return (_Atomic uint32_t *)(a->base + TMEM_ARENA_HDIR_OFF);
}

tmem_arena_handle *tmem__arena_ent(tmem_arena *a, uint32_t h)
{
    uint32_t s = atomic_load_explicit(&dir(a)[h / TMEM_ARENA_HPS],
                                      memory_order_acquire);
    return (tmem_arena_handle *)seg_at(a, s) + h % TMEM_ARENA_HPS;
}

const void *tmem__arena_base(const tmem_arena *a)
{
    return a->base;
}

size_t tmem__arena_map_len(const tmem_arena *a)
{
    return a->map_len;
}

bool tmem__arena_named(const tmem_arena *a)
{
    return (a->flags & TMEM_ARENA_F_NAMED) != 0;
}

/* ---- create / destroy -------------------------------------------------- */

/* The address space an arena reserves: the machine's RAM, rounded up to
 * a GiB (no arena can usefully hold more), at least 1 GiB. */
static size_t reserve_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t ram = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz
                                        : 1ull << 30;
    ram = (ram + (1ull << 30) - 1) & ~((1ull << 30) - 1);
    return ram < (1ull << 30) ? 1ull << 30 : (size_t)ram;
}

static int file_grow_locked(tmem_arena *a, uint32_t want)
{
    if (want <= a->file_seg)
        return 0;
    uint32_t n = a->file_seg + (a->file_seg / 8 > GROW_MIN ? a->file_seg / 8
                                                           : GROW_MIN);
    if (n < want)
        n = want;
    if (n > a->max_seg)
        n = a->max_seg;
    if (n < want || ftruncate(a->fd, (off_t)n << TMEM_ARENA_SEG_SHIFT) < 0)
        return -ENOMEM;
    a->file_seg = n;
    return 0;
}

/* Makes seginfo entries exist up to segment s. */
static int si_ensure_locked(tmem_arena *a, uint32_t s)
{
    uint32_t p = s / SI_PAGE;
    if (atomic_load_explicit(&a->si[p], memory_order_relaxed))
        return 0;
    struct seginfo *pg = tmem__calloc(SI_PAGE, sizeof *pg);
    if (!pg)
        return -ENOMEM;
    add(&a->private_bytes, (int64_t)held_of(pg));
    atomic_store_explicit(&a->si[p], pg, memory_order_release);
    return 0;
}

static int map_file(tmem_arena *a)
{
    a->fd = memfd_create("tmem-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (a->fd < 0)
        return -errno;
    a->map_len = reserve_bytes();
    a->max_seg = (uint32_t)(a->map_len >> TMEM_ARENA_SEG_SHIFT);
    if (ftruncate(a->fd, SEG) < 0 ||
        fcntl(a->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0 ||
        fchmod(a->fd, 0400) < 0)
        return -errno;
    a->file_seg = 1;
    void *p = mmap(NULL, a->map_len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE, a->fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    a->base = p;
    return 0;
}

int tmem__arena_create(uint32_t owner, unsigned flags, tmem_arena **out)
{
    tmem_arena *a = tmem__aligned_alloc(64, sizeof *a);
    if (!a)
        return -ENOMEM;
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->flags = flags;
    int r = map_file(a);
    if (r == 0) {
        a->si_pages = (a->max_seg + SI_PAGE - 1) / SI_PAGE;
        a->si = tmem__calloc(a->si_pages, sizeof *a->si);
        r = a->si ? si_ensure_locked(a, 0) : -ENOMEM;
    }
    if (r < 0) {
        tmem__arena_destroy(a);
        return r;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    a->hdr = (tmem_arena_hdr *)a->base;
    *a->hdr = (tmem_arena_hdr){
        .magic = TMEM_ARENA_MAGIC, .version = TMEM_ARENA_VERSION,
        .seg_size = SEG, .hdir_off = TMEM_ARENA_HDIR_OFF, .owner = owner,
        .flags = flags,
        .created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec};
    atomic_store_explicit(&a->hdr->nseg, 1, memory_order_relaxed);
    atomic_store_explicit(&a->hdr->state, TMEM_ARENA_LIVE,
                          memory_order_release);
    a->nseg = 1;
    for (uint32_t i = 0; i <= NH; i++)
        a->heads[i] = (struct head){.hnext = TMEM_ARENA_HPS, .dir_next = i};
    cadd(&cnt(a)->held_bytes, PAGE);
    add(&a->private_bytes, (int64_t)(held_of(a) + held_of(a->si)));
    *out = a;
    return 0;
}

void tmem__arena_destroy(tmem_arena *a)
{
    if (!a)
        return;
    if (a->hdr)
        atomic_store_explicit(&a->hdr->state, TMEM_ARENA_DEAD,
                              memory_order_release);
    if (a->base)
        munmap(a->base, a->map_len);
    if (a->fd >= 0)
        close(a->fd);
    for (uint32_t i = 0; a->si && i < a->si_pages; i++)
        tmem__free(atomic_load(&a->si[i]));
    tmem__free((void *)a->si);
    tmem__free(a);
}

int tmem__arena_fd_ro(tmem_arena *a)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", a->fd);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* ---- segments ---------------------------------------------------------- */

/* Takes a segment for type (SEG_HEAD or SEG_HANDLE) and writes its header.
 * Returns 0 and sets *out, or -ENOMEM. */
static int seg_alloc_locked(tmem_arena *a, uint32_t type, uint32_t *out)
{
    uint32_t s;
    if (a->free_seg) {
        s = a->free_seg - 1;
        a->free_seg = si(a, s)->next_free;
    } else {
        if (a->nseg >= a->max_seg || file_grow_locked(a, a->nseg + 1) < 0 ||
            si_ensure_locked(a, a->nseg) < 0)
            return -ENOMEM;
        s = a->nseg++;
        atomic_store_explicit(&a->hdr->nseg, a->nseg, memory_order_release);
    }
    struct seginfo *g = si(a, s);
    tmem_arena_seg *h = (tmem_arena_seg *)seg_at(a, s);
    *h = (tmem_arena_seg){
        .magic = TMEM_ARENA_MAGIC,
        .type = type == SEG_HANDLE ? TMEM_ARENA_SEG_HANDLE
                                   : TMEM_ARENA_SEG_DATA,
        .seq = ld(&a->seq)};
    g->fill = TMEM_ARENA_SEG_HDR;
    atomic_store(&g->bucket, NOBUCKET);
    atomic_store(&g->live, 0);
    atomic_store(&g->state, type);
    cadd(&cnt(a)->held_bytes, PAGE);
    add(&a->segments, 1);
    if (type == SEG_HEAD)
        cadd(&cnt(a)->fill_bytes, TMEM_ARENA_SEG_HDR);
    *out = s;
    return 0;
}

/* Gives segment s back: punches it and puts it on the free list.  Called
 * with a->lock held; drops and retakes it around the system call. */
static void seg_free_locked(tmem_arena *a, uint32_t s)
{
    struct seginfo *g = si(a, s);
    atomic_store(&g->state, SEG_PUNCHING);
    tmem__spin_unlock(&a->lock);
    fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              (off_t)s << TMEM_ARENA_SEG_SHIFT, SEG);
    tmem__spin_lock(&a->lock);
    cadd(&cnt(a)->held_bytes, -(int64_t)pages_of(g->fill));
    cadd(&cnt(a)->fill_bytes, -(int64_t)g->fill);
    add(&a->segments, -1);
    add(&a->punched, 1);
    g->fill = 0;
    atomic_store(&g->state, SEG_FREE);
    g->next_free = a->free_seg;
    a->free_seg = s + 1;
}

static uint8_t bucket_of(uint32_t live)
{
    uint32_t b = live * NB / BCAP;
    return (uint8_t)(b < NB ? b : NB - 1);
}

static void bucket_out_locked(tmem_arena *a, uint32_t s)
{
    struct seginfo *g = si(a, s);
    uint8_t b = atomic_load(&g->bucket);
    if (b == NOBUCKET)
        return;
    if (g->bprev)
        si(a, g->bprev - 1)->bnext = g->bnext;
    else
        a->bhead[b] = g->bnext;
    if (g->bnext)
        si(a, g->bnext - 1)->bprev = g->bprev;
    if (b < NB - 1)
        atomic_fetch_sub(&a->nsparse, 1);
    atomic_store(&g->bucket, NOBUCKET);
}

/* Puts closed segment s in the bucket its live bytes say. */
static void bucket_in_locked(tmem_arena *a, uint32_t s)
{
    struct seginfo *g = si(a, s);
    bucket_out_locked(a, s);
    uint8_t b = bucket_of(atomic_load(&g->live));
    g->bprev = 0;
    g->bnext = a->bhead[b];
    if (a->bhead[b])
        si(a, a->bhead[b] - 1)->bprev = s + 1;
    a->bhead[b] = s + 1;
    if (b < NB - 1)
        atomic_fetch_add(&a->nsparse, 1);
    atomic_store(&g->bucket, b);
}

/* A closed segment: freed when empty, else filed by fullness. */
static void seg_closed_locked(tmem_arena *a, uint32_t s)
{
    if (atomic_load(&si(a, s)->live) == 0) {
        bucket_out_locked(a, s);
        seg_free_locked(a, s);
    } else {
        bucket_in_locked(a, s);
    }
}

/* A head whose records all died gives its written pages back and starts
 * over (so an emptied arena holds no data pages).  Needs the head's lock
 * and its segment's live at 0. */
static void head_reset_locked(tmem_arena *a, struct head *hd)
{
    struct seginfo *g = si(a, hd->seg);
    if (g->fill <= PAGE)
        return;
    fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              ((off_t)hd->seg << TMEM_ARENA_SEG_SHIFT) + PAGE, SEG - PAGE);
    cadd(&cnt(a)->held_bytes, -(int64_t)(pages_of(g->fill) - PAGE));
    cadd(&cnt(a)->fill_bytes, -(int64_t)(g->fill - TMEM_ARENA_SEG_HDR));
    g->fill = TMEM_ARENA_SEG_HDR;
}

/* Lowers segment s's live bytes; frees it when it was the last. */
static void seg_release(tmem_arena *a, uint32_t s, uint32_t size)
{
    struct seginfo *g = si(a, s);
    uint32_t left = atomic_fetch_sub(&g->live, size) - size;
    cadd(&cnt(a)->live_bytes, -(int64_t)size);
    if (left == 0 && atomic_load(&g->state) == SEG_HEAD) {
        struct head *hd = &a->heads[g->head];
        tmem__spin_lock(&hd->lock);
        if (hd->seg == s && atomic_load(&g->live) == 0)
            head_reset_locked(a, hd);
        tmem__spin_unlock(&hd->lock);
        return;
    }
    if (atomic_load(&g->state) != SEG_FULL ||
        (left && bucket_of(left) == atomic_load(&g->bucket)))
        return; /* still in its bucket: no lock */
    tmem__spin_lock(&a->lock);
    if (atomic_load(&g->state) == SEG_FULL)
        seg_closed_locked(a, s);
    tmem__spin_unlock(&a->lock);
}

/* The head's segment is full: close it (free or candidate) and open a new
 * one.  Needs the head's lock. */
static int head_renew_locked(tmem_arena *a, struct head *hd)
{
    uint32_t ns;
    tmem__spin_lock(&a->lock);
    int r = seg_alloc_locked(a, SEG_HEAD, &ns);
    if (r == 0 && hd->seg) {
        atomic_store(&si(a, hd->seg)->state, SEG_FULL);
        seg_closed_locked(a, hd->seg);
    }
    if (r == 0) {
        hd->seg = ns;
        si(a, ns)->head = (uint8_t)(hd - a->heads);
    }
    tmem__spin_unlock(&a->lock);
    return r;
}


/* ---- handles ----------------------------------------------------------- */

/* Claims a new HANDLE segment for the head's shard.  Needs its lock. */
static int handle_seg_locked(tmem_arena *a, struct head *hd)
{
    if (hd->dir_next >= TMEM_ARENA_HDIR_MAX)
        return -ENOMEM;
    uint32_t s;
    tmem__spin_lock(&a->lock);
    int r = seg_alloc_locked(a, SEG_HANDLE, &s);
    if (r == 0) {
        uint32_t d = hd->dir_next, before = atomic_load(&a->hdr->ndir);
        atomic_store_explicit(&dir(a)[d], s, memory_order_release);
        if (d + 1 > before) {
            uint64_t was = pages_of(TMEM_ARENA_HDIR_OFF + before * 4);
            uint64_t now = pages_of(TMEM_ARENA_HDIR_OFF + (d + 1) * 4);
            cadd(&cnt(a)->held_bytes, (int64_t)(now - was));
            atomic_store_explicit(&a->hdr->ndir, d + 1, memory_order_release);
        }
        hd->hdir = d;
        hd->hnext = HSLOT0;
        hd->dir_next += NH;
    }
    tmem__spin_unlock(&a->lock);
    return r;
}

/* Takes a handle of head hi's shard.  Needs its lock.  Returns 0 and sets
 * *h, *gen, or -ENOMEM. */
static int handle_alloc_locked(tmem_arena *a, struct head *hd, uint32_t *h,
                               uint32_t *gen)
{
    if (hd->hfree) {
        *h = hd->hfree - 1;
        tmem_arena_handle *e = tmem__arena_ent(a, *h);
        hd->hfree = (uint32_t)atomic_load_explicit(&e->loc,
                                                   memory_order_relaxed);
        *gen = atomic_load_explicit(&e->aux, memory_order_relaxed) + 1;
        return 0;
    }
    if (hd->hnext >= TMEM_ARENA_HPS && handle_seg_locked(a, hd) < 0)
        return -ENOMEM;
    uint32_t s = atomic_load(&dir(a)[hd->hdir]);
    struct seginfo *g = si(a, s);
    uint32_t end = (hd->hnext + 1) * (uint32_t)sizeof(tmem_arena_handle);
    if (pages_of(end) > pages_of(g->fill))
        cadd(&cnt(a)->held_bytes, (int64_t)(pages_of(end) - pages_of(g->fill)));
    g->fill = end;
    *h = hd->hdir * TMEM_ARENA_HPS + hd->hnext++;
    *gen = 1;
    return 0;
}

static struct head *shard_of(tmem_arena *a, uint32_t h)
{
    return &a->heads[(h / TMEM_ARENA_HPS) % NH];
}

/* ---- writers of record states (see the invariants) --------------------- */

/* Raises the writers count of the segment handle h's record is in, once
 * that segment is not being moved; returns the record's place. */
static uint64_t writer_enter(tmem_arena *a, tmem_arena_handle *e)
{
    for (;;) {
        uint64_t loc = atomic_load(&e->loc);
        struct seginfo *g = si(a, TMEM_ALOC_SEG(loc));
        atomic_fetch_add(&g->writers, 1);
        if (atomic_load(&g->state) != SEG_MOVING && atomic_load(&e->loc) == loc)
            return loc;
        atomic_fetch_sub(&g->writers, 1);
        while (atomic_load(&g->state) == SEG_MOVING)
            sched_yield();
    }
}

static void writer_leave(tmem_arena *a, uint64_t loc)
{
    atomic_fetch_sub(&si(a, TMEM_ALOC_SEG(loc))->writers, 1);
}

/* ---- appending --------------------------------------------------------- */

/* Appends a record (header r, payload r->len bytes) at head hd: writes the
 * bytes, the checksum, then the state.  Needs the head's lock.  Returns 0
 * and sets *loc, or -ENOMEM. */
static int append_locked(tmem_arena *a, struct head *hd, tmem_arena_rec *r,
                         const void *payload, uint64_t *loc)
{
    bool named = a->flags & TMEM_ARENA_F_NAMED;
    uint32_t size = tmem__arena_rec_size(named, r->len);
    if ((!hd->seg || si(a, hd->seg)->fill + size > SEG) &&
        head_renew_locked(a, hd) < 0)
        return -ENOMEM;
    struct seginfo *g = si(a, hd->seg);
    uint32_t off = g->fill;
    char *p = seg_at(a, hd->seg) + off;
    if (named) {
        uint32_t hl = TMEM_ARENA_REC_HDR;
        r->csum = tmem__arena_csum(r, payload);
        memcpy(p + 4, (char *)r + 4, hl - 4);
        memcpy(p + hl, payload, r->len);
        memset(p + hl + r->len, 0, size - hl - r->len);
        atomic_store_explicit(&((tmem_arena_rec *)p)->state, TMEM_REC_LIVE,
                              memory_order_release);
    } else {
        tmem_arena_srec sr = {
            r->handle, (uint16_t)(r->len | (unsigned)r->codec << 13 |
                                  (unsigned)(r->kind == TMEM_REC_ALIAS) << 15)};
        memcpy(p, &sr, sizeof sr);
        memcpy(p + sizeof sr, payload, r->len);
    }
    if (pages_of(off + size) > pages_of(off))
        cadd(&cnt(a)->held_bytes, (int64_t)(pages_of(off + size) - pages_of(off)));
    g->fill = off + size;
    atomic_fetch_add(&g->live, size);
    cadd(&cnt(a)->fill_bytes, size);
    cadd(&cnt(a)->live_bytes, size);
    *loc = TMEM_ALOC_MAKE(hd->seg, off, r->len, r->codec,
                          r->kind == TMEM_REC_ALIAS);
    return 0;
}

static void name_into(tmem_arena_rec *r, const tmem_arena_name *nm)
{
    r->owner = nm->owner;
    r->pool = nm->pool;
    r->index = nm->index;
    memcpy(r->oid, nm->oid, sizeof r->oid);
}

/* A new record r (name, payload) under a fresh handle of this thread's
 * head.  Returns 0 and sets *h, *gen, or -ENOMEM. */
static int add_record(tmem_arena *a, tmem_arena_rec *r, const void *payload,
                      uint32_t aux, uint32_t *h, uint32_t *gen)
{
    struct head *hd = &a->heads[tmem__thread_slot() % NH];
    uint64_t loc;
    tmem__spin_lock(&hd->lock);
    int rc = handle_alloc_locked(a, hd, h, gen);
    if (rc == 0) {
        r->handle = *h;
        r->gen = *gen;
        if (a->flags & TMEM_ARENA_F_NAMED)
            r->seq = atomic_fetch_add_explicit(&a->seq, 1,
                                               memory_order_relaxed) + 1;
        rc = append_locked(a, hd, r, payload, &loc);
        tmem_arena_handle *e = tmem__arena_ent(a, *h);
        if (rc < 0) { /* give the handle back, its gen unused */
            atomic_store(&e->aux, *gen - 1);
            atomic_store(&e->loc, TMEM_ALOC_FREE | hd->hfree);
            hd->hfree = *h + 1;
        } else {
            atomic_store_explicit(&e->aux, aux, memory_order_relaxed);
            atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
            atomic_store_explicit(&e->loc, loc, memory_order_release);
        }
    }
    tmem__spin_unlock(&hd->lock);
    return rc;
}

int tmem__arena_put(tmem_arena *a, const tmem_arena_name *nm,
                    const void *payload, uint32_t len, unsigned codec,
                    uint32_t hash, uint32_t *h, uint32_t *gen)
{
    tmem_arena_rec r = {.len = (uint16_t)len, .codec = (uint8_t)codec,
                        .kind = TMEM_REC_DATA, .hash = hash};
    if (len == 0 || len > 4096 || codec > 2)
        return -EINVAL;
    name_into(&r, nm);
    int rc = add_record(a, &r, payload, hash, h, gen);
    if (rc == 0) {
        cadd(&cnt(a)->data_bytes, len);
        cadd(&cnt(a)->records, 1);
        if (codec == 0)
            cadd(&cnt(a)->raw_records, 1);
    }
    return rc;
}

int tmem__arena_alias(tmem_arena *a, const tmem_arena_name *nm,
                      uint32_t target, uint32_t tgen, uint32_t *h,
                      uint32_t *gen)
{
    tmem_arena_rec r = {.kind = TMEM_REC_ALIAS, .hash = target, .tgen = tgen};
    name_into(&r, nm);
    int rc = add_record(a, &r, NULL, 0, h, gen);
    if (rc == 0)
        cadd(&cnt(a)->aliases, 1);
    return rc;
}

/* ---- state changes ----------------------------------------------------- */

uint32_t tmem__arena_gen(tmem_arena *a, uint32_t h)
{
    if (!(a->flags & TMEM_ARENA_F_NAMED))
        return 0; /* short records have no generation */
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&a->hdr->move_seq,
                                           memory_order_acquire);
        uint64_t loc = atomic_load_explicit(&tmem__arena_ent(a, h)->loc,
                                            memory_order_acquire);
        uint32_t gen = rec_at(a, loc)->gen;
        atomic_thread_fence(memory_order_acquire);
        if (!(s1 & 1) && atomic_load(&a->hdr->move_seq) == s1)
            return gen;
        sched_yield();
    }
}

void tmem__arena_name_dead(tmem_arena *a, uint32_t h)
{
    if (!(a->flags & TMEM_ARENA_F_NAMED))
        return; /* no names recorded */
    tmem_arena_handle *e = tmem__arena_ent(a, h);
    uint64_t loc = writer_enter(a, e);
    atomic_store_explicit(&rec_at(a, loc)->state, TMEM_REC_NAMEDEAD,
                          memory_order_release);
    writer_leave(a, loc);
}

void tmem__arena_free(tmem_arena *a, uint32_t h)
{
    tmem_arena_handle *e = tmem__arena_ent(a, h);
    struct head *hd = shard_of(a, h);
    bool named = a->flags & TMEM_ARENA_F_NAMED;
    uint64_t loc = writer_enter(a, e);
    tmem_arena_rec *r = rec_at(a, loc);
    uint32_t gen = named ? r->gen : 0;
    if (named)
        atomic_store_explicit(&r->state, TMEM_REC_FREE, memory_order_release);
    tmem__spin_lock(&hd->lock);
    atomic_store(&e->aux, gen);
    atomic_store(&e->loc, TMEM_ALOC_FREE | hd->hfree);
    hd->hfree = h + 1;
    tmem__spin_unlock(&hd->lock);
    writer_leave(a, loc);
    uint32_t len = TMEM_ALOC_LEN(loc);
    if (TMEM_ALOC_ALIAS(loc)) {
        cadd(&cnt(a)->aliases, -1);
    } else {
        cadd(&cnt(a)->data_bytes, -(int64_t)len);
        cadd(&cnt(a)->records, -1);
        if (TMEM_ALOC_CODEC(loc) == 0)
            cadd(&cnt(a)->raw_records, -1);
    }
    seg_release(a, TMEM_ALOC_SEG(loc), tmem__arena_rec_size(named, len));
}

/* ---- compaction -------------------------------------------------------- */

/* Hysteresis (as zswap's writeback): compaction starts when dead bytes
 * pass a quarter of what data segments hold (and four segments), and goes
 * on, a step per call, until they are under an eighth (or two segments). */
bool tmem__arena_wants_compaction(tmem_arena *a)
{
    if (!atomic_load_explicit(&a->nsparse, memory_order_relaxed))
        return false;
    int64_t fill = CSUM(a, fill_bytes), live = CSUM(a, live_bytes);
    int64_t dead = fill > live ? fill - live : 0;
    if (atomic_load_explicit(&a->compacting, memory_order_relaxed)) {
        if (dead >= fill / 8 && dead > 2ll * SEG)
            return true;
        atomic_store_explicit(&a->compacting, false, memory_order_relaxed);
        return false;
    }
    if (dead <= fill / 4 || dead <= 4ll * SEG)
        return false;
    atomic_store_explicit(&a->compacting, true, memory_order_relaxed);
    return true;
}

/* Takes the emptiest closed segment that is not full, marked MOVING;
 * 0 if none. */
static uint32_t pick_victim(tmem_arena *a)
{
    uint32_t s = 0;
    tmem__spin_lock(&a->lock);
    for (unsigned b = 0; b < NB - 1 && !s; b++) {
        if (!a->bhead[b])
            continue;
        s = a->bhead[b] - 1;
        bucket_out_locked(a, s);
        atomic_store(&si(a, s)->state, SEG_MOVING);
    }
    tmem__spin_unlock(&a->lock);
    return s;
}

/* Moves the record at off of victim s if its handle still points there.
 * Needs the compaction head's lock.  Returns its size, or 0 at the end of
 * the records, or -ENOMEM. */
static int move_record_locked(tmem_arena *a, uint32_t s, uint32_t off)
{
    const char *r = seg_at(a, s) + off;
    bool named = a->flags & TMEM_ARENA_F_NAMED;
    if (off + (named ? TMEM_ARENA_REC_HDR : TMEM_ARENA_SREC_HDR) >
        si(a, s)->fill)
        return 0;
    uint32_t handle, len;
    if (named) {
        const tmem_arena_rec *fr = (const tmem_arena_rec *)r;
        handle = fr->handle;
        len = fr->len;
    } else {
        tmem_arena_srec sr;
        memcpy(&sr, r, sizeof sr);
        handle = sr.handle;
        len = sr.lck & 0x1fffu;
    }
    uint32_t size = tmem__arena_rec_size(named, len);
    tmem_arena_handle *e = tmem__arena_ent(a, handle);
    uint64_t loc = atomic_load(&e->loc);
    if (!TMEM_ALOC_LIVE(loc) || TMEM_ALOC_SEG(loc) != s ||
        TMEM_ALOC_OFF(loc) != off)
        return (int)size; /* dead bytes */
    struct head *hd = &a->heads[CH];
    if ((!hd->seg || si(a, hd->seg)->fill + size > SEG) &&
        head_renew_locked(a, hd) < 0)
        return -ENOMEM;
    struct seginfo *g = si(a, hd->seg);
    char *p = seg_at(a, hd->seg) + g->fill;
    memcpy(p, r, size);
    if (pages_of(g->fill + size) > pages_of(g->fill))
        cadd(&cnt(a)->held_bytes,
            (int64_t)(pages_of(g->fill + size) - pages_of(g->fill)));
    uint64_t nl = TMEM_ALOC_MAKE(hd->seg, g->fill, TMEM_ALOC_LEN(loc),
                                 TMEM_ALOC_CODEC(loc), TMEM_ALOC_ALIAS(loc));
    g->fill += size;
    atomic_fetch_add(&g->live, size);
    cadd(&cnt(a)->fill_bytes, size);
    atomic_fetch_sub(&si(a, s)->live, size);
    atomic_store_explicit(&e->loc, nl, memory_order_release);
    add(&a->moved, 1);
    return (int)size;
}

int tmem__arena_compact_step(tmem_arena *a)
{
    uint32_t s = pick_victim(a);
    if (!s)
        return 0;
    struct seginfo *g = si(a, s);
    while (atomic_load(&g->writers))
        sched_yield(); /* a writer that got in before MOVING */
    atomic_fetch_add_explicit(&a->hdr->move_seq, 1, memory_order_acq_rel);
    struct head *hd = &a->heads[CH];
    int r = 0;
    tmem__spin_lock(&hd->lock);
    for (uint32_t off = TMEM_ARENA_SEG_HDR; r >= 0 && off < SEG;) {
        r = move_record_locked(a, s, off);
        if (r == 0)
            break;
        off += r > 0 ? (uint32_t)r : 0;
    }
    tmem__spin_unlock(&hd->lock);
    atomic_fetch_add_explicit(&a->hdr->move_seq, 1, memory_order_release);
    add(&a->compactions, 1);
    tmem__spin_lock(&a->lock);
    atomic_store(&g->state, SEG_FULL);
    seg_closed_locked(a, s);
    tmem__spin_unlock(&a->lock);
    return r < 0 ? -ENOMEM : 1;
}

/* ---- figures ------------------------------------------------------------ */

void tmem__arena_stats(tmem_arena *a, tmem_arena_stats *out)
{
    out->data_bytes = (uint64_t)CSUM(a, data_bytes);
    out->held_bytes = (uint64_t)CSUM(a, held_bytes);
    uint64_t priv = ld(&a->private_bytes);
    out->meta_bytes = out->held_bytes + priv - out->data_bytes;
    out->records = (uint64_t)CSUM(a, records);
    out->raw_records = (uint64_t)CSUM(a, raw_records);
    out->aliases = (uint64_t)CSUM(a, aliases);
    out->segments = ld(&a->segments);
    out->compactions = ld(&a->compactions);
    out->moved = ld(&a->moved);
    out->punched = ld(&a->punched);
}
