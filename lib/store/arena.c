/*
 * Arenas (arena.h, docs/layout.md): a memfd of segments, records appended
 * at heads, handles naming where each record is.
 *
 * Invariants:
 *   - a DATA segment's `live` is the bytes (header and padding included) of
 *     the records whose handle points into it; `fill` is how far it was
 *     written; records are only appended while it is a head;
 *   - a segment that is not a head and whose live drops to 0 is punched
 *     and goes on the free list; a closed (FULL) one with live bytes is in
 *     the bucket of its fullness (live * NB / capacity), so compaction
 *     takes the emptiest without a scan;
 *   - the pages of a DATA segment (struct segpages): cnt[p] is the number
 *     of records whose bytes lie on 4 KiB page p; a page is *closed* once
 *     no append can reach it (below its head's fill page, or any written
 *     page of a closed segment); a closed page other than page 0 (the
 *     segment header) with cnt 0 is dead: it is in `pend` until it is
 *     punched, then in `punched`.  A page's count is raised before the
 *     fill passes it, and a page is marked dead only when its count reads
 *     0 after the fill was read, so a page an append is writing is never
 *     punched;
 *   - held_bytes counts, for every segment, its pages up to the fill less
 *     those punched, plus the header page and the handle directory; every
 *     such byte and every private structure is charged to the account
 *     before it is counted, and uncharged when it is no longer counted;
 *   - a record's state and its handle entry change only with the
 *     segment's `writers` count raised and the segment not MOVING
 *     (writer_enter), and a compaction step sets MOVING, waits for the
 *     writers to leave and walks the segment holding its pages lock: so a
 *     record is never changed while it is copied, a moved record keeps
 *     every state written before, and no page is punched under the walk;
 *   - handle h belongs to shard (h / TMEM_ARENA_HPS) % NH, whose lock
 *     guards its free list and fresh handles.
 */
#include "store/arena.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/thread_slot.h"
#include "store/spin.h"

#define SEG TMEM_ARENA_SEG_SIZE
#define PAGE 4096u
#define NPG (SEG / PAGE) /* pages of a segment: 64, one bit each */
#define NH 4u            /* put heads (by thread) and handle shards */
#define CH NH            /* the compaction head */
#define NOH 32u          /* owner heads (TMEM_ARENA_NM_OWNER) */
#define NHEADS (NH + 1 + NOH)
#define MIN_PEND 8u      /* dead pages a segment gathers before punching */
#define GAIN_MIN (3u * PAGE) /* what a compaction step must free */
#define SI_PAGE 128u     /* seginfo entries per allocation */
#define GROW_MIN 16u     /* segments the file grows by at least */
#define NB 16u          /* fullness buckets of closed segments */
#define BCAP (SEG - TMEM_ARENA_SEG_HDR)
#define NOBUCKET 0xffu
#define HSLOT0 (TMEM_ARENA_SEG_HDR / sizeof(tmem_arena_handle))
#define PICK_TRIES 8u    /* candidates looked at per bucket */

_Static_assert(NPG == 64, "a segment's pages fit one 64-bit set");

enum seg_state {
    SEG_FREE = 0,
    SEG_HEAD,     /* DATA, being filled */
    SEG_FULL,     /* DATA, closed */
    SEG_MOVING,   /* DATA, a compaction step is moving its records */
    SEG_HANDLE,   /* handle entries */
    SEG_PUNCHING, /* being given back */
};

/* The pages of a DATA segment (see the invariants). */
struct segpages {
    atomic_int lock;           /* pend -> punched, punching, walking */
    _Atomic uint64_t pend;     /* dead pages not punched yet */
    _Atomic uint64_t punched;  /* pages given back (written under lock) */
    _Atomic uint16_t cnt[NPG]; /* records on each page */
};

struct head;

struct seginfo {
    _Atomic uint32_t live;    /* live record bytes */
    _Atomic uint32_t writers; /* threads changing its records' state */
    _Atomic uint32_t state;   /* enum seg_state (changed under a->lock) */
    _Atomic uint32_t fill;    /* bytes written from the segment start */
    uint32_t next_free;       /* free list: next + 1 */
    uint32_t bprev, bnext;    /* its bucket's list: neighbours + 1 */
    _Atomic uint8_t bucket;   /* NOBUCKET, or live * NB / BCAP (FULL) */
    _Atomic(struct head *) hd;         /* while SEG_HEAD: who fills it */
    _Atomic(struct segpages *) pg;     /* DATA: made once per number */
};

/* Figures, one set per thread slot: deltas, summed by tmem__arena_stats
 * (no shared line on the put path). */
struct counters {
    _Atomic int64_t data_bytes, live_bytes, held_bytes, dheld_bytes;
    _Atomic int64_t records, raw_records, aliases, dead_pages;
} __attribute__((aligned(64)));

/* A head: the DATA segment records are appended to. */
struct head {
    atomic_int lock;
    uint32_t seg; /* 0 = none */
} __attribute__((aligned(64)));

/* A shard of the handle space. */
struct hshard {
    atomic_int lock;
    uint32_t hfree;    /* free handles: first + 1 */
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
    tmem_acct *acct;
    atomic_int lock;
    uint32_t file_seg; /* segments the file is sized for (a->lock) */
    _Atomic uint32_t file_seg_ready; /* ... as spares_fill left it */
    uint32_t nseg;     /* segment numbers used so far (0 is the header) */
    uint32_t free_seg; /* punched segments: first + 1 */
    uint32_t bhead[NB];    /* FULL segments by fullness: first + 1 */
    _Atomic uint32_t nsparse; /* FULL segments in buckets below the top */
    _Atomic bool compacting; /* between the high and low marks */
    _Atomic(struct seginfo *) *si;
    uint32_t si_pages;
    struct head heads[NHEADS];
    struct hshard shards[NH];
    struct counters cnt[NH];
    _Atomic uint64_t seq; /* named arenas only: one tenant's threads */
    _Atomic uint64_t private_bytes, segments, compactions, moved, punched;
    _Atomic uint64_t pages_punched;
    /* What opening a segment may need, made before any spinlock is taken
     * (spares_fill): a page of seginfo entries, a segment's page state,
     * and file room.  prep serialises their making; prep_misses counts
     * the times a segment was opened with a spare missing (two threads
     * opening segments at once), which then allocates under the lock. */
    pthread_mutex_t prep;
    _Atomic(struct seginfo *) spare_si;
    _Atomic(struct segpages *) spare_pg[2]; /* a compaction step may
                                               open two segments */
    _Atomic uint64_t prep_misses;
    char *path; /* a file arena's name: removed when it is destroyed */
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
    for (unsigned i = 0; i < NH; i++)
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

/* The set of pages [0, n). */
static uint64_t first_pages(uint32_t n)
{
    return n >= 64 ? ~0ull : (1ull << n) - 1;
}

static struct seginfo *si(tmem_arena *a, uint32_t s)
{
    struct seginfo *p =
        atomic_load_explicit(&a->si[s / SI_PAGE], memory_order_acquire);
    return &p[s % SI_PAGE];
}

static uint32_t fill_of(struct seginfo *g)
{
    return atomic_load_explicit(&g->fill, memory_order_acquire);
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

bool tmem__arena_is_file(const tmem_arena *a)
{
    return a->flags & TMEM_ARENA_F_FILE;
}

bool tmem__arena_named(const tmem_arena *a)
{
    return (a->flags & TMEM_ARENA_F_NAMED) != 0;
}

/* ---- memory: charged before it is counted ------------------------------- */

/* Charges n bytes to the account.  Returns 0 or -ENOSPC. */
static int charge(tmem_arena *a, uint64_t n)
{
    return tmem__acct_charge(a->acct, n) < 0 ? -ENOSPC : 0;
}

/* Charges and counts a private structure of n bytes. */
static int priv_take(tmem_arena *a, uint64_t n)
{
    if (charge(a, n) < 0)
        return -ENOSPC;
    add(&a->private_bytes, (int64_t)n);
    return 0;
}

/* A zeroed private structure of n x size bytes, charged and counted.
 * NULL when malloc fails (*err = -ENOMEM) or the budget refuses
 * (-ENOSPC). */
static void *priv_calloc(tmem_arena *a, size_t n, size_t size, int *err)
{
    void *p = tmem__calloc(n, size);
    *err = p ? 0 : -ENOMEM;
    if (p && priv_take(a, held_of(p)) < 0) {
        tmem__free(p);
        p = NULL;
        *err = -ENOSPC;
    }
    return p;
}

/* Counts held file pages (already charged); data: of a DATA segment. */
static void held_count(tmem_arena *a, int64_t n, bool data)
{
    cadd(&cnt(a)->held_bytes, n);
    if (data)
        cadd(&cnt(a)->dheld_bytes, n);
}

static void held_give(tmem_arena *a, uint64_t n, bool data)
{
    held_count(a, -(int64_t)n, data);
    tmem__acct_uncharge(a->acct, n);
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

/* Raises file_seg_ready to n (never lowers it). */
static void ready_max(tmem_arena *a, uint32_t n)
{
    uint32_t was = atomic_load(&a->file_seg_ready);
    while (was < n &&
           !atomic_compare_exchange_weak(&a->file_seg_ready, &was, n))
        ;
}

static int file_grow_locked(tmem_arena *a, uint32_t want)
{
    uint32_t ready = atomic_load(&a->file_seg_ready);
    if (ready > a->file_seg)
        a->file_seg = ready; /* spares_fill grew it, outside the lock */
    if (want <= a->file_seg)
        return 0;
    add(&a->prep_misses, 1);
    uint32_t n = a->file_seg + (a->file_seg / 8 > GROW_MIN ? a->file_seg / 8
                                                           : GROW_MIN);
    if (n < want)
        n = want;
    if (n > a->max_seg)
        n = a->max_seg;
    if (n < want || ftruncate(a->fd, (off_t)n << TMEM_ARENA_SEG_SHIFT) < 0)
        return -ENOMEM;
    a->file_seg = n;
    ready_max(a, n);
    return 0;
}

/* Makes spares ready for the next segment to open (the fast path is three
 * loads): called before any spinlock of an append or a compaction step,
 * so opening a segment under the locks takes memory it already has
 * instead of calling malloc or ftruncate there.  A spare it cannot make
 * (budget, memory) is left for the slow path under the lock, which then
 * fails as it always did. */
static void spares_fill(tmem_arena *a)
{
    uint32_t next = atomic_load_explicit(&a->hdr->nseg, memory_order_relaxed);
    uint32_t p = next / SI_PAGE;
    bool si_ok = p >= a->si_pages || atomic_load(&a->si[p]) ||
                 atomic_load(&a->spare_si);
    if (si_ok && atomic_load(&a->spare_pg[0]) && atomic_load(&a->spare_pg[1]) &&
        atomic_load_explicit(&a->file_seg_ready, memory_order_relaxed) >
            next + 1)
        return;
    pthread_mutex_lock(&a->prep);
    tmem__fault_optional(1);
    int err; /* a spare not made is left to the slow path */
    for (int k = 0; k < 2; k++)
        if (!atomic_load(&a->spare_pg[k]))
            atomic_store(&a->spare_pg[k],
                         priv_calloc(a, 1, sizeof(struct segpages), &err));
    if (p < a->si_pages && !atomic_load(&a->si[p]) &&
        !atomic_load(&a->spare_si))
        atomic_store(&a->spare_si,
                     priv_calloc(a, SI_PAGE, sizeof(struct seginfo), &err));
    uint32_t have = atomic_load(&a->file_seg_ready);
    if (have <= next + 1 && have < a->max_seg) {
        uint32_t n = have + (have / 8 > GROW_MIN ? have / 8 : GROW_MIN);
        if (n < next + 2)
            n = next + 2;
        if (n > a->max_seg)
            n = a->max_seg;
        /* the file never shrinks (F_SEAL_SHRINK): a smaller size than an
         * inline grow made is refused, harmlessly */
        if (ftruncate(a->fd, (off_t)n << TMEM_ARENA_SEG_SHIFT) == 0)
            ready_max(a, n);
    }
    tmem__fault_optional(0);
    pthread_mutex_unlock(&a->prep);
}

/* Makes seginfo entries exist up to segment s.  Returns 0, -ENOMEM or
 * -ENOSPC. */
static int si_ensure_locked(tmem_arena *a, uint32_t s)
{
    uint32_t p = s / SI_PAGE;
    if (atomic_load_explicit(&a->si[p], memory_order_relaxed))
        return 0;
    struct seginfo *pg = atomic_exchange(&a->spare_si, NULL);
    int err;
    if (!pg) {
        add(&a->prep_misses, 1);
        if (!(pg = priv_calloc(a, SI_PAGE, sizeof *pg, &err)))
            return err;
    }
    atomic_store_explicit(&a->si[p], pg, memory_order_release);
    return 0;
}

/* Gives segment g its page state, once.  Returns 0, -ENOMEM or -ENOSPC. */
static int pages_make(tmem_arena *a, struct seginfo *g)
{
    if (atomic_load_explicit(&g->pg, memory_order_relaxed))
        return 0;
    struct segpages *pg = atomic_exchange(&a->spare_pg[0], NULL);
    if (!pg)
        pg = atomic_exchange(&a->spare_pg[1], NULL);
    int err;
    if (!pg) {
        add(&a->prep_misses, 1);
        if (!(pg = priv_calloc(a, 1, sizeof *pg, &err)))
            return err;
    }
    atomic_store_explicit(&g->pg, pg, memory_order_release);
    return 0;
}

/* A new file dir/arena-RANDOM.tma, readable and writable by the daemon
 * alone (its tenant gets a read-only descriptor, never the path). */
static int open_named(tmem_arena *a, const char *dir)
{
    size_t cap = strlen(dir) + 32;
    if (!(a->path = tmem__malloc(cap)))
        return -ENOMEM;
    errno = EEXIST;
    for (int tries = 0; tries < 8; tries++) {
        uint64_t r;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
            errno = EIO;
            break;
        }
        snprintf(a->path, cap, "%s/arena-%016llx.tma", dir,
                 (unsigned long long)r);
        a->fd = open(a->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (a->fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    int e = -errno;
    tmem__free(a->path);
    a->path = NULL;
    return e;
}

static int map_file(tmem_arena *a, const char *dir)
{
    if (dir) {
        int r = open_named(a, dir);
        if (r < 0)
            return r;
    } else {
        a->fd = memfd_create("tmem-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (a->fd < 0)
            return -errno;
    }
    a->map_len = reserve_bytes();
    a->max_seg = (uint32_t)(a->map_len >> TMEM_ARENA_SEG_SHIFT);
    /* a memfd is sealed against shrinking (a tenant's mapping must never
     * fault past the end); a named file has no seals, and only the daemon
     * can open it for writing */
    if (ftruncate(a->fd, SEG) < 0 ||
        (!dir && (fcntl(a->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0 ||
                  fchmod(a->fd, 0400) < 0)))
        return -errno;
    a->file_seg = 1;
    atomic_store(&a->file_seg_ready, 1);
    void *p = mmap(NULL, a->map_len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE, a->fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    a->base = p;
    return 0;
}

/* The file, the seginfo table and the header page: each charged. */
static int arena_setup(tmem_arena *a, const char *dir)
{
    int r = map_file(a, dir);
    if (r < 0)
        return r;
    a->si_pages = (a->max_seg + SI_PAGE - 1) / SI_PAGE;
    void *t = priv_calloc(a, a->si_pages, sizeof *a->si, &r);
    if (!t)
        return r;
    a->si = t;
    /* the header page, and a file arena's pool table page */
    uint64_t hp = dir ? 2 * PAGE : PAGE;
    if ((r = si_ensure_locked(a, 0)) < 0 || (r = charge(a, hp)) < 0)
        return r;
    held_count(a, (int64_t)hp, false);
    atomic_store(&a->prep_misses, 0); /* no lock is held here */
    return 0;
}

static void hdr_init(tmem_arena *a, uint32_t owner, unsigned flags)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    a->hdr = (tmem_arena_hdr *)a->base;
    *a->hdr = (tmem_arena_hdr){
        .magic = TMEM_ARENA_MAGIC, .version = TMEM_ARENA_VERSION,
        .seg_size = SEG, .hdir_off = TMEM_ARENA_HDIR_OFF, .owner = owner,
        .flags = flags,
        .created_ns =
            (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec};
    atomic_store_explicit(&a->hdr->nseg, 1, memory_order_relaxed);
    atomic_store_explicit(&a->hdr->state, TMEM_ARENA_LIVE,
                          memory_order_release);
}

int tmem__arena_create(uint32_t owner, unsigned flags, tmem_acct *acct,
                       tmem_arena **out)
{
    return tmem__arena_create_in(owner, flags, acct, NULL, out);
}

int tmem__arena_create_in(uint32_t owner, unsigned flags, tmem_acct *acct,
                          const char *dir, tmem_arena **out)
{
    if (dir && !(flags & TMEM_ARENA_F_NAMED))
        return -EINVAL; /* only private arenas outlive the daemon */
    if (dir)
        flags |= TMEM_ARENA_F_FILE;
    tmem_arena *a = tmem__aligned_alloc(64, sizeof *a);
    if (!a)
        return -ENOMEM;
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->flags = flags;
    a->acct = acct;
    pthread_mutex_init(&a->prep, NULL);
    if (priv_take(a, held_of(a)) < 0) {
        tmem__free(a);
        return -ENOSPC;
    }
    int r = arena_setup(a, dir);
    if (r < 0) {
        tmem__arena_destroy(a);
        return r;
    }
    hdr_init(a, owner, flags);
    a->nseg = 1;
    for (uint32_t i = 0; i < NH; i++)
        a->shards[i] =
            (struct hshard){.hnext = TMEM_ARENA_HPS, .dir_next = i};
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
    if (a->path)
        unlink(a->path); /* nothing in it is wanted any more */
    tmem__free(a->path);
    if (a->base)
        munmap(a->base, a->map_len);
    if (a->fd >= 0)
        close(a->fd);
    for (uint32_t i = 0; a->si && i < a->si_pages; i++) {
        struct seginfo *p = atomic_load(&a->si[i]);
        for (uint32_t k = 0; p && k < SI_PAGE; k++)
            tmem__free(atomic_load(&p[k].pg));
        tmem__free(p);
    }
    tmem__free((void *)a->si);
    tmem__free(atomic_load(&a->spare_si));
    tmem__free(atomic_load(&a->spare_pg[0]));
    tmem__free(atomic_load(&a->spare_pg[1]));
    pthread_mutex_destroy(&a->prep);
    tmem__acct_uncharge(a->acct, (uint64_t)CSUM(a, held_bytes) +
                                     ld(&a->private_bytes));
    tmem__free(a);
}

/* ---- the owner's words, and the pool table ------------------------------- */

void tmem__arena_set_tag(tmem_arena *a, const void *tag, uint32_t len)
{
    if (len > TMEM_ARENA_TAG_MAX)
        len = TMEM_ARENA_TAG_MAX;
    atomic_store_explicit(&a->hdr->tag_len, 0, memory_order_release);
    memcpy(a->base + TMEM_ARENA_TAG_OFF, tag, len);
    atomic_store_explicit(&a->hdr->tag_len, len, memory_order_release);
}

static tmem_arena_pool *pool_ent(tmem_arena *a, unsigned id)
{
    return (tmem_arena_pool *)(a->base + TMEM_ARENA_POOLS_OFF) + id;
}

uint32_t tmem__arena_pool_open(tmem_arena *a, unsigned id, uint32_t flags,
                               const uint64_t uuid[2])
{
    /* under the owner's client lock: one writer */
    uint32_t inst = ++a->hdr->pool_inst & 0xffffffu;
    if (!inst)
        inst = a->hdr->pool_inst = 1;
    if ((a->flags & TMEM_ARENA_F_FILE) && id < TMEM_ARENA_POOLS_MAX) {
        tmem_arena_pool *e = pool_ent(a, id);
        atomic_store_explicit(&e->inst, 0, memory_order_release);
        e->flags = flags;
        memcpy(e->uuid, uuid, sizeof e->uuid);
        atomic_store_explicit(&e->inst, inst, memory_order_release);
    }
    return inst;
}

void tmem__arena_pool_close(tmem_arena *a, unsigned id)
{
    if ((a->flags & TMEM_ARENA_F_FILE) && id < TMEM_ARENA_POOLS_MAX)
        atomic_store_explicit(&pool_ent(a, id)->inst, 0,
                              memory_order_release);
}

void tmem__arena_doom(tmem_arena *a)
{
    atomic_store_explicit(&a->hdr->state, TMEM_ARENA_DEAD,
                          memory_order_release);
}

int tmem__arena_fd_ro(tmem_arena *a)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", a->fd);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* ---- the pages of a DATA segment ---------------------------------------- */

/* Pages [first, last] of the record at off, size bytes. */
static void page_span(uint32_t off, uint32_t size, uint32_t *first,
                      uint32_t *last)
{
    *first = off / PAGE;
    *last = (off + size - 1) / PAGE;
}

/* A new record at off: its pages count it (before the fill passes them). */
static void pages_hold(struct segpages *pg, uint32_t off, uint32_t size)
{
    uint32_t p, q;
    page_span(off, size, &p, &q);
    for (; p <= q; p++)
        atomic_fetch_add_explicit(&pg->cnt[p], 1, memory_order_relaxed);
}

/* The closed pages of segment g (see the invariants). */
static uint64_t closed_pages(struct seginfo *g)
{
    uint32_t fill = fill_of(g);
    if (atomic_load(&g->state) == SEG_HEAD)
        return first_pages(fill / PAGE);
    return first_pages((uint32_t)(pages_of(fill) / PAGE));
}

/* Gives back the dead pages of a segment, in runs.  Needs pg->lock.
 * Returns the pages punched. */
static uint64_t punch_dead_locked(tmem_arena *a, uint32_t s,
                                  struct segpages *pg)
{
    uint64_t bits = atomic_exchange(&pg->pend, 0);
    for (uint64_t rest = bits; rest;) {
        unsigned p = (unsigned)__builtin_ctzll(rest);
        unsigned q = p;
        while (q < NPG && (rest >> q & 1))
            q++;
        fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  ((off_t)s << TMEM_ARENA_SEG_SHIFT) + (off_t)p * PAGE,
                  (off_t)(q - p) * PAGE);
        rest &= ~(first_pages(q) & ~first_pages(p));
    }
    if (!bits)
        return 0;
    atomic_fetch_or(&pg->punched, bits);
    uint64_t n = (uint64_t)__builtin_popcountll(bits);
    cadd(&cnt(a)->dead_pages, -(int64_t)n);
    held_give(a, n * PAGE, true);
    add(&a->pages_punched, (int64_t)n);
    return n;
}

static uint64_t punch_dead(tmem_arena *a, uint32_t s)
{
    struct segpages *pg = atomic_load_explicit(&si(a, s)->pg,
                                               memory_order_acquire);
    if (!pg || !atomic_load(&pg->pend))
        return 0;
    tmem__spin_lock(&pg->lock);
    uint64_t n = punch_dead_locked(a, s, pg);
    tmem__spin_unlock(&pg->lock);
    return n;
}

/* Marks pages of segment g dead (those still with no record). */
static uint64_t pages_mark_dead(tmem_arena *a, struct seginfo *g,
                                uint64_t pages)
{
    struct segpages *pg = atomic_load(&g->pg);
    pages &= closed_pages(g) & ~1ull;
    for (uint64_t rest = pages; rest; rest &= rest - 1) {
        unsigned p = (unsigned)__builtin_ctzll(rest);
        if (atomic_load(&pg->cnt[p]) != 0)
            pages &= ~(1ull << p); /* an append reached it first */
    }
    if (!pages)
        return atomic_load(&pg->pend);
    uint64_t was = atomic_fetch_or(&pg->pend, pages);
    cadd(&cnt(a)->dead_pages, __builtin_popcountll(pages & ~was));
    return was | pages;
}

/* The record at off (size bytes) of segment s is gone: its pages drop it;
 * pages left with none are dead, and given back once the segment has
 * MIN_PEND of them (may_punch). */
static void pages_drop(tmem_arena *a, uint32_t s, uint32_t off,
                       uint32_t size, bool may_punch)
{
    struct seginfo *g = si(a, s);
    struct segpages *pg = atomic_load(&g->pg);
    uint64_t empty = 0;
    uint32_t p, q;
    page_span(off, size, &p, &q);
    for (; p <= q; p++)
        if (atomic_fetch_sub_explicit(&pg->cnt[p], 1,
                                      memory_order_acq_rel) == 1)
            empty |= 1ull << p;
    if (!empty)
        return;
    uint64_t pend = pages_mark_dead(a, g, empty);
    if (may_punch && (unsigned)__builtin_popcountll(pend) >= MIN_PEND)
        punch_dead(a, s);
}

uint64_t tmem__arena_trim(tmem_arena *a)
{
    if (CSUM(a, dead_pages) <= 0)
        return 0;
    uint32_t n = atomic_load(&a->hdr->nseg);
    uint64_t total = 0;
    for (uint32_t s = 1; s < n; s++)
        total += punch_dead(a, s);
    return total;
}

uint64_t tmem__arena_dead_pages(tmem_arena *a)
{
    int64_t n = CSUM(a, dead_pages);
    return n > 0 ? (uint64_t)n : 0;
}

/* Held pages of a DATA segment (a hint unless pg->lock is held). */
static uint32_t seg_held_pages(struct seginfo *g)
{
    uint32_t np = (uint32_t)(pages_of(fill_of(g)) / PAGE);
    struct segpages *pg = atomic_load(&g->pg);
    uint64_t gone = pg ? atomic_load(&pg->punched) & first_pages(np) : 0;
    return np - (uint32_t)__builtin_popcountll(gone);
}

/* ---- segments ---------------------------------------------------------- */

/* Takes a segment for type (SEG_HEAD or SEG_HANDLE) and writes its header;
 * its first page is counted held (the caller charged it).  Needs a->lock.
 * Returns 0 and sets *out, or -ENOMEM / -ENOSPC (nothing taken). */
static int seg_alloc_locked(tmem_arena *a, uint32_t type, uint32_t *out)
{
    uint32_t s = a->free_seg ? a->free_seg - 1 : a->nseg;
    int r;
    if (!a->free_seg) {
        if (a->nseg >= a->max_seg || file_grow_locked(a, a->nseg + 1) < 0)
            return -ENOMEM;
        if ((r = si_ensure_locked(a, s)) < 0)
            return r;
    }
    struct seginfo *g = si(a, s);
    if (type == SEG_HEAD && (r = pages_make(a, g)) < 0)
        return r;
    if (a->free_seg) {
        a->free_seg = g->next_free;
    } else {
        a->nseg++;
        atomic_store_explicit(&a->hdr->nseg, a->nseg, memory_order_release);
    }
    tmem_arena_seg *h = (tmem_arena_seg *)seg_at(a, s);
    *h = (tmem_arena_seg){
        .magic = TMEM_ARENA_MAGIC,
        .type = type == SEG_HANDLE ? TMEM_ARENA_SEG_HANDLE
                                   : TMEM_ARENA_SEG_DATA,
        .seq = ld(&a->seq)};
    atomic_store(&g->fill, TMEM_ARENA_SEG_HDR);
    atomic_store(&g->bucket, NOBUCKET);
    atomic_store(&g->live, 0);
    atomic_store(&g->state, type);
    held_count(a, PAGE, type == SEG_HEAD);
    add(&a->segments, 1);
    *out = s;
    return 0;
}

/* Gives segment s back: punches it and puts it on the free list.  Called
 * with a->lock held; drops and retakes it around the system call. */
static void seg_free_locked(tmem_arena *a, uint32_t s)
{
    struct seginfo *g = si(a, s);
    struct segpages *pg = atomic_load(&g->pg);
    atomic_store(&g->state, SEG_PUNCHING);
    tmem__spin_lock(&pg->lock);
    uint32_t held = seg_held_pages(g);
    uint64_t pend = atomic_exchange(&pg->pend, 0);
    atomic_store(&pg->punched, 0);
    tmem__spin_unlock(&pg->lock);
    cadd(&cnt(a)->dead_pages, -__builtin_popcountll(pend));
    tmem__spin_unlock(&a->lock);
    fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              (off_t)s << TMEM_ARENA_SEG_SHIFT, SEG);
    tmem__spin_lock(&a->lock);
    held_give(a, (uint64_t)held * PAGE, true);
    add(&a->segments, -1);
    add(&a->punched, 1);
    atomic_store(&g->fill, 0);
    atomic_store(&g->hd, NULL);
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
    struct segpages *pg = atomic_load(&g->pg);
    if (fill_of(g) <= PAGE)
        return;
    tmem__spin_lock(&pg->lock);
    uint32_t held = seg_held_pages(g);
    uint64_t pend = atomic_exchange(&pg->pend, 0);
    fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              ((off_t)hd->seg << TMEM_ARENA_SEG_SHIFT) + PAGE, SEG - PAGE);
    atomic_store(&pg->punched, 0);
    atomic_store_explicit(&g->fill, TMEM_ARENA_SEG_HDR, memory_order_release);
    tmem__spin_unlock(&pg->lock);
    cadd(&cnt(a)->dead_pages, -__builtin_popcountll(pend));
    held_give(a, (uint64_t)(held - 1) * PAGE, true); /* page 0 stays */
}

/* Lowers segment s's live bytes; frees it when it was the last. */
static void seg_release(tmem_arena *a, uint32_t s, uint32_t size)
{
    struct seginfo *g = si(a, s);
    uint32_t left = atomic_fetch_sub(&g->live, size) - size;
    cadd(&cnt(a)->live_bytes, -(int64_t)size);
    if (left == 0 && atomic_load(&g->state) == SEG_HEAD) {
        struct head *hd = atomic_load(&g->hd);
        if (!hd)
            return;
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

/* Closes the head's segment: freed when empty, else a compaction
 * candidate.  Needs the head's lock and a->lock. */
static void head_close_locked(tmem_arena *a, struct head *hd)
{
    struct seginfo *old = si(a, hd->seg);
    uint32_t fill = fill_of(old);
    atomic_store(&old->state, SEG_FULL);
    /* its last page is closed now: dead if nothing lies on it */
    if (fill % PAGE && fill / PAGE > 0)
        pages_mark_dead(a, old, 1ull << (fill / PAGE));
    seg_closed_locked(a, hd->seg);
    hd->seg = 0;
}

/* The head's segment is full: close it and open a new one.  Needs the
 * head's lock; the new segment's header page was charged.  Returns 0,
 * -ENOMEM or -ENOSPC. */
static int head_renew_locked(tmem_arena *a, struct head *hd)
{
    uint32_t ns;
    tmem__spin_lock(&a->lock);
    int r = seg_alloc_locked(a, SEG_HEAD, &ns);
    if (r == 0 && hd->seg)
        head_close_locked(a, hd);
    if (r == 0) {
        hd->seg = ns;
        atomic_store(&si(a, ns)->hd, hd);
    }
    tmem__spin_unlock(&a->lock);
    return r;
}

void tmem__arena_owner_gone(tmem_arena *a, uint32_t owner)
{
    for (unsigned k = 0; k < 2; k++) {
        struct head *hd = &a->heads[NH + 1 + (owner * 2u + k) % NOH];
        tmem__spin_lock(&hd->lock);
        tmem__spin_lock(&a->lock);
        if (hd->seg)
            head_close_locked(a, hd);
        tmem__spin_unlock(&a->lock);
        tmem__spin_unlock(&hd->lock);
    }
}

/* Bytes of file pages an append of size bytes at hd counts. */
static uint64_t append_need_locked(tmem_arena *a, struct head *hd,
                                   uint32_t size)
{
    if (hd->seg) {
        uint32_t fill = fill_of(si(a, hd->seg));
        if (fill + size <= SEG)
            return pages_of(fill + size) - pages_of(fill);
    }
    return pages_of(TMEM_ARENA_SEG_HDR + size); /* a new segment */
}

/* ---- handles ----------------------------------------------------------- */

/* Bytes of file pages the next handle of shard hs counts. */
static uint64_t handle_need_locked(tmem_arena *a, struct hshard *hs)
{
    if (hs->hfree)
        return 0;
    if (hs->hnext < TMEM_ARENA_HPS) {
        struct seginfo *g = si(a, atomic_load(&dir(a)[hs->hdir]));
        uint32_t end = (hs->hnext + 1) * (uint32_t)sizeof(tmem_arena_handle);
        uint64_t f = pages_of(fill_of(g));
        return pages_of(end) > f ? pages_of(end) - f : 0;
    }
    /* a new handle segment: its first page, and the directory may grow */
    uint32_t d = hs->dir_next, before = atomic_load(&a->hdr->ndir);
    uint64_t grow = d + 1 > before
                        ? pages_of(TMEM_ARENA_HDIR_OFF + (d + 1) * 4) -
                              pages_of(TMEM_ARENA_HDIR_OFF + before * 4)
                        : 0;
    return PAGE + grow;
}

/* Claims a new HANDLE segment for shard hs.  Needs its lock.  Adds the
 * bytes it counted to *counted. */
static int handle_seg_locked(tmem_arena *a, struct hshard *hs,
                             uint64_t *counted)
{
    if (hs->dir_next >= TMEM_ARENA_HDIR_MAX)
        return -ENOMEM;
    uint32_t s;
    tmem__spin_lock(&a->lock);
    int r = seg_alloc_locked(a, SEG_HANDLE, &s);
    if (r == 0) {
        *counted += PAGE;
        uint32_t d = hs->dir_next, before = atomic_load(&a->hdr->ndir);
        atomic_store_explicit(&dir(a)[d], s, memory_order_release);
        if (d + 1 > before) {
            uint64_t was = pages_of(TMEM_ARENA_HDIR_OFF + before * 4);
            uint64_t now = pages_of(TMEM_ARENA_HDIR_OFF + (d + 1) * 4);
            held_count(a, (int64_t)(now - was), false);
            *counted += now - was;
            atomic_store_explicit(&a->hdr->ndir, d + 1, memory_order_release);
        }
        hs->hdir = d;
        hs->hnext = HSLOT0;
        hs->dir_next += NH;
    }
    tmem__spin_unlock(&a->lock);
    return r;
}

/* Takes a handle of shard hs.  Needs its lock.  Returns 0 and sets *h,
 * *gen, adding the bytes it counted to *counted; or -ENOMEM / -ENOSPC. */
static int handle_alloc_locked(tmem_arena *a, struct hshard *hs, uint32_t *h,
                               uint32_t *gen, uint64_t *counted)
{
    if (hs->hfree) {
        *h = hs->hfree - 1;
        tmem_arena_handle *e = tmem__arena_ent(a, *h);
        hs->hfree = (uint32_t)atomic_load_explicit(&e->loc,
                                                   memory_order_relaxed);
        *gen = atomic_load_explicit(&e->aux, memory_order_relaxed) + 1;
        return 0;
    }
    int r;
    if (hs->hnext >= TMEM_ARENA_HPS && (r = handle_seg_locked(a, hs,
                                                             counted)) < 0)
        return r;
    uint32_t s = atomic_load(&dir(a)[hs->hdir]);
    struct seginfo *g = si(a, s);
    uint32_t end = (hs->hnext + 1) * (uint32_t)sizeof(tmem_arena_handle);
    uint64_t f = pages_of(fill_of(g));
    if (pages_of(end) > f) {
        held_count(a, (int64_t)(pages_of(end) - f), false);
        *counted += pages_of(end) - f;
    }
    atomic_store(&g->fill, end);
    *h = hs->hdir * TMEM_ARENA_HPS + hs->hnext++;
    *gen = 1;
    return 0;
}

/* Puts handle h (generation gen, just used or never) on shard hs's free
 * list.  Needs its lock. */
static void handle_put_locked(tmem_arena *a, struct hshard *hs, uint32_t h,
                              uint32_t gen)
{
    tmem_arena_handle *e = tmem__arena_ent(a, h);
    atomic_store(&e->aux, gen);
    atomic_store(&e->loc, TMEM_ALOC_FREE | hs->hfree);
    hs->hfree = h + 1;
}

static struct hshard *shard_of(tmem_arena *a, uint32_t h)
{
    return &a->shards[(h / TMEM_ARENA_HPS) % NH];
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

/* Writes record r (header, payload r->len bytes, size bytes in all) at p:
 * the bytes, the checksum, then the state. */
static void rec_write(tmem_arena *a, char *p, tmem_arena_rec *r,
                      const void *payload, uint32_t size)
{
    if (a->flags & TMEM_ARENA_F_NAMED) {
        uint32_t hl = TMEM_ARENA_REC_HDR;
        r->csum = tmem__arena_csum(r, payload);
        memcpy(p + 4, (char *)r + 4, hl - 4);
        if (r->len) /* an alias has no payload */
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
}

/* Appends a record (header r, payload r->len bytes) at head hd.  Needs the
 * head's lock; the pages were charged.  Returns 0 and sets *loc, adding
 * the bytes it counted to *counted; or -ENOMEM / -ENOSPC. */
static int append_locked(tmem_arena *a, struct head *hd, tmem_arena_rec *r,
                         const void *payload, uint64_t *loc,
                         uint64_t *counted)
{
    uint32_t size = tmem__arena_rec_size(tmem__arena_named(a), r->len);
    if (!hd->seg || fill_of(si(a, hd->seg)) + size > SEG) {
        int rc = head_renew_locked(a, hd);
        if (rc < 0)
            return rc;
        *counted += PAGE;
    }
    struct seginfo *g = si(a, hd->seg);
    uint32_t off = fill_of(g);
    rec_write(a, seg_at(a, hd->seg) + off, r, payload, size);
    pages_hold(atomic_load(&g->pg), off, size);
    uint64_t grow = pages_of(off + size) - pages_of(off);
    held_count(a, (int64_t)grow, true);
    *counted += grow;
    atomic_store_explicit(&g->fill, off + size, memory_order_release);
    atomic_fetch_add(&g->live, size);
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

/* The head a record named nm goes to. */
static struct head *head_for(tmem_arena *a, const tmem_arena_name *nm)
{
    unsigned slot = tmem__thread_slot();
    if (nm->flags & TMEM_ARENA_NM_OWNER)
        return &a->heads[NH + 1 + (nm->owner * 2u + (slot & 1u)) % NOH];
    return &a->heads[slot % NH];
}

/* A new record r (name, payload) under a fresh handle of this thread's
 * shard: the pages it needs are charged first, so a refusal leaves the
 * arena as it was.  Returns 0 and sets *h, *gen, or -ENOSPC / -ENOMEM. */
static int add_record(tmem_arena *a, const tmem_arena_name *nm,
                      tmem_arena_rec *r, const void *payload, uint32_t aux,
                      uint32_t *h, uint32_t *gen)
{
    struct head *hd = head_for(a, nm);
    struct hshard *hs = &a->shards[tmem__thread_slot() % NH];
    uint32_t size = tmem__arena_rec_size(tmem__arena_named(a), r->len);
    uint64_t loc, counted = 0;
    spares_fill(a);
    tmem__spin_lock(&hd->lock);
    tmem__spin_lock(&hs->lock);
    uint64_t need = handle_need_locked(a, hs) + append_need_locked(a, hd, size);
    int rc = charge(a, need);
    if (rc < 0)
        need = 0;
    if (rc == 0)
        rc = handle_alloc_locked(a, hs, h, gen, &counted);
    if (rc == 0) {
        r->handle = *h;
        r->gen = *gen;
        if (a->flags & TMEM_ARENA_F_NAMED)
            r->seq = atomic_fetch_add_explicit(&a->seq, 1,
                                               memory_order_relaxed) + 1;
        rc = append_locked(a, hd, r, payload, &loc, &counted);
        tmem_arena_handle *e = tmem__arena_ent(a, *h);
        if (rc < 0) { /* give the handle back, its gen unused */
            handle_put_locked(a, hs, *h, *gen - 1);
        } else {
            atomic_store_explicit(&e->aux, aux, memory_order_relaxed);
            atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
            atomic_store_explicit(&e->loc, loc, memory_order_release);
        }
    }
    if (need > counted) /* a directory page another shard counted, or a
                           failure: the rest goes back */
        tmem__acct_uncharge(a->acct, need - counted);
    tmem__spin_unlock(&hs->lock);
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
    int rc = add_record(a, nm, &r, payload, hash, h, gen);
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
    /* aux names the target: its size, and the reference given back when
     * the alias goes (blob.c) */
    int rc = add_record(a, nm, &r, NULL, target, h, gen);
    if (rc == 0)
        cadd(&cnt(a)->aliases, 1);
    return rc;
}

/* ---- reading, for the store itself -------------------------------------- */

int tmem__arena_read_stable(tmem_arena *a, uint32_t h, tmem_arena_rec *r,
                            void *payload)
{
    int rc = tmem__arena_read(a->base, a->map_len, h, 0, TMEM_ARENA_TRUST, r,
                              payload);
    if (rc != -EAGAIN)
        return rc;
    /* Compaction steps kept moving records under the lock-free read (each
     * step, anywhere in the arena, sends every reader round again): hold
     * the compaction head's lock, which every step holds while it moves,
     * so none runs during this copy. */
    struct head *hd = &a->heads[CH];
    tmem__spin_lock(&hd->lock);
    rc = tmem__arena_read(a->base, a->map_len, h, 0, TMEM_ARENA_TRUST, r,
                          payload);
    tmem__spin_unlock(&hd->lock);
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
    struct hshard *hs = shard_of(a, h);
    bool named = a->flags & TMEM_ARENA_F_NAMED;
    uint64_t loc = writer_enter(a, e);
    tmem_arena_rec *r = rec_at(a, loc);
    uint32_t gen = named ? r->gen : 0;
    if (named)
        atomic_store_explicit(&r->state, TMEM_REC_FREE, memory_order_release);
    tmem__spin_lock(&hs->lock);
    handle_put_locked(a, hs, h, gen);
    tmem__spin_unlock(&hs->lock);
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
    uint32_t s = TMEM_ALOC_SEG(loc), size = tmem__arena_rec_size(named, len);
    pages_drop(a, s, TMEM_ALOC_OFF(loc), size, true);
    seg_release(a, s, size);
}

/* ---- compaction -------------------------------------------------------- */

/* Hysteresis (as zswap's writeback): compaction starts when dead bytes held
 * pass a quarter of what data segments hold (and four segments), and goes
 * on, a step per call, until they are under an eighth (or two segments). */
bool tmem__arena_wants_compaction(tmem_arena *a)
{
    if (!atomic_load_explicit(&a->nsparse, memory_order_relaxed))
        return false;
    int64_t held = CSUM(a, dheld_bytes), live = CSUM(a, live_bytes);
    int64_t dead = held > live ? held - live : 0;
    if (atomic_load_explicit(&a->compacting, memory_order_relaxed)) {
        if (dead >= held / 8 && dead > 2ll * SEG)
            return true;
        atomic_store_explicit(&a->compacting, false, memory_order_relaxed);
        return false;
    }
    if (dead <= held / 4 || dead <= 4ll * SEG)
        return false;
    atomic_store_explicit(&a->compacting, true, memory_order_relaxed);
    return true;
}

/* Takes the emptiest closed segment whose move frees GAIN_MIN bytes at
 * least, marked MOVING; 0 if none. */
static uint32_t pick_victim(tmem_arena *a)
{
    uint32_t s = 0;
    tmem__spin_lock(&a->lock);
    for (unsigned b = 0; b < NB - 1 && !s; b++) {
        uint32_t c = a->bhead[b];
        for (unsigned k = 0; c && k < PICK_TRIES;
             k++, c = si(a, c - 1)->bnext) {
            struct seginfo *g = si(a, c - 1);
            uint64_t held = (uint64_t)seg_held_pages(g) * PAGE;
            if (held >= atomic_load(&g->live) + GAIN_MIN) {
                s = c - 1;
                break;
            }
        }
    }
    if (s) {
        bucket_out_locked(a, s);
        atomic_store(&si(a, s)->state, SEG_MOVING);
    }
    tmem__spin_unlock(&a->lock);
    return s;
}

/* True when a live record starts at off of segment s: its handle (read
 * from the bytes there, bounds checked) points at it. */
static bool live_at(tmem_arena *a, uint32_t s, uint32_t off)
{
    const char *p = seg_at(a, s) + off;
    uint32_t h;
    memcpy(&h, p + (tmem__arena_named(a) ? offsetof(tmem_arena_rec, handle)
                                         : 0),
           sizeof h);
    const tmem_arena_handle *e =
        tmem__arena_handle_at(a->base, a->map_len, h);
    if (!e)
        return false;
    uint64_t loc = atomic_load((_Atomic uint64_t *)&e->loc);
    return TMEM_ALOC_LIVE(loc) && TMEM_ALOC_SEG(loc) == s &&
           TMEM_ALOC_OFF(loc) == off;
}

/* The first live record of segment s at or after off, skipping punched
 * pages (which hold none): the walk resumes there after bytes whose
 * record boundaries it cannot trust.  Returns its offset, or fill. */
static uint32_t next_live(tmem_arena *a, uint32_t s, uint32_t off,
                          uint32_t fill, uint64_t punched)
{
    bool named = tmem__arena_named(a);
    uint32_t step = named ? 8u : 1u;
    uint32_t hl = named ? TMEM_ARENA_REC_HDR : TMEM_ARENA_SREC_HDR;
    while (off + hl <= fill) {
        if (punched >> (off / PAGE) & 1) {
            off = (off / PAGE + 1) * PAGE;
            continue;
        }
        if (live_at(a, s, off))
            return off;
        off += step;
    }
    return fill;
}

/* Moves the record at off of victim s (handle h, size bytes) to the
 * compaction head if it is live.  Needs the head's lock and the victim's
 * pages lock.  Returns 1 moved, 0 dead, -ENOMEM / -ENOSPC. */
static int move_record_locked(tmem_arena *a, uint32_t s, struct segpages *vp,
                              uint32_t off, uint32_t size)
{
    if (!live_at(a, s, off))
        return 0;
    const tmem_arena_rec *r = (const tmem_arena_rec *)(seg_at(a, s) + off);
    uint32_t h;
    memcpy(&h, (const char *)r + (tmem__arena_named(a)
                                      ? offsetof(tmem_arena_rec, handle)
                                      : 0),
           sizeof h);
    tmem_arena_handle *e = tmem__arena_ent(a, h);
    uint64_t loc = atomic_load(&e->loc);
    struct head *hd = &a->heads[CH];
    uint64_t need = append_need_locked(a, hd, size), counted = 0;
    if (charge(a, need) < 0) { /* give back what moving freed, retry */
        punch_dead_locked(a, s, vp);
        if (charge(a, need) < 0)
            return -ENOSPC;
    }
    int rc = 0;
    if (!hd->seg || fill_of(si(a, hd->seg)) + size > SEG) {
        rc = head_renew_locked(a, hd);
        counted = rc == 0 ? PAGE : 0;
    }
    if (rc == 0) {
        struct seginfo *g = si(a, hd->seg);
        uint32_t to = fill_of(g);
        memcpy(seg_at(a, hd->seg) + to, r, size);
        pages_hold(atomic_load(&g->pg), to, size);
        uint64_t grow = pages_of(to + size) - pages_of(to);
        held_count(a, (int64_t)grow, true);
        counted += grow;
        atomic_store_explicit(&g->fill, to + size, memory_order_release);
        atomic_fetch_add(&g->live, size);
        atomic_store_explicit(
            &e->loc,
            TMEM_ALOC_MAKE(hd->seg, to, TMEM_ALOC_LEN(loc),
                           TMEM_ALOC_CODEC(loc), TMEM_ALOC_ALIAS(loc)),
            memory_order_release);
        atomic_fetch_sub(&si(a, s)->live, size);
        pages_drop(a, s, off, size, false);
        add(&a->moved, 1);
    }
    tmem__acct_uncharge(a->acct, need - counted);
    return rc < 0 ? rc : 1;
}

/* Walks victim s (MOVING, its pages lock held) and moves its live
 * records.  A dead record's header is trusted for its size only in pages
 * not given back; past a punched page the walk looks for the next live
 * record instead.  Returns 0 or the error that stopped it. */
static int compact_walk_locked(tmem_arena *a, uint32_t s, struct segpages *vp)
{
    bool named = tmem__arena_named(a);
    uint32_t hl = named ? TMEM_ARENA_REC_HDR : TMEM_ARENA_SREC_HDR;
    uint32_t fill = fill_of(si(a, s)), off = TMEM_ARENA_SEG_HDR;
    uint64_t punched = atomic_load(&vp->punched);
    while (off + hl <= fill) {
        if ((punched >> (off / PAGE) & 1) ||
            (punched >> ((off + hl - 1) / PAGE) & 1)) {
            off = next_live(a, s, off, fill, punched);
            continue;
        }
        const char *p = seg_at(a, s) + off;
        uint32_t len;
        if (named) {
            uint16_t l;
            memcpy(&l, p + offsetof(tmem_arena_rec, len), sizeof l);
            len = l;
        } else {
            tmem_arena_srec sr;
            memcpy(&sr, p, sizeof sr);
            len = sr.lck & 0x1fffu;
        }
        uint32_t size = tmem__arena_rec_size(named, len);
        if (len > 4096u || off + size > fill) { /* not a header */
            off = next_live(a, s, off + (named ? 8 : 1), fill, punched);
            continue;
        }
        int r = move_record_locked(a, s, vp, off, size);
        if (r < 0)
            return r;
        off += size;
    }
    return 0;
}

int tmem__arena_compact_step(tmem_arena *a)
{
    spares_fill(a);
    uint32_t s = pick_victim(a);
    if (!s)
        return 0;
    struct seginfo *g = si(a, s);
    struct segpages *vp = atomic_load(&g->pg);
    while (atomic_load(&g->writers))
        sched_yield(); /* a writer that got in before MOVING */
    struct head *hd = &a->heads[CH];
    tmem__spin_lock(&hd->lock);
    tmem__spin_lock(&vp->lock);
    atomic_fetch_add_explicit(&a->hdr->move_seq, 1, memory_order_acq_rel);
    int r = compact_walk_locked(a, s, vp);
    atomic_fetch_add_explicit(&a->hdr->move_seq, 1, memory_order_release);
    tmem__spin_unlock(&vp->lock);
    tmem__spin_unlock(&hd->lock);
    add(&a->compactions, 1);
    tmem__spin_lock(&a->lock);
    atomic_store(&g->state, SEG_FULL);
    seg_closed_locked(a, s);
    tmem__spin_unlock(&a->lock);
    return r < 0 ? r : 1;
}

/* ---- figures ------------------------------------------------------------ */

void tmem__arena_stats(tmem_arena *a, tmem_arena_stats *out)
{
    out->data_bytes = (uint64_t)CSUM(a, data_bytes);
    out->held_bytes = (uint64_t)CSUM(a, held_bytes);
    uint64_t priv = ld(&a->private_bytes);
    out->meta_bytes = out->held_bytes + priv - out->data_bytes;
    out->charged = out->held_bytes + priv;
    out->records = (uint64_t)CSUM(a, records);
    out->raw_records = (uint64_t)CSUM(a, raw_records);
    out->aliases = (uint64_t)CSUM(a, aliases);
    out->segments = ld(&a->segments);
    out->compactions = ld(&a->compactions);
    out->moved = ld(&a->moved);
    out->punched = ld(&a->punched);
    out->pages_punched = ld(&a->pages_punched);
    out->pages_dead = tmem__arena_dead_pages(a);
    out->prep_misses = ld(&a->prep_misses);
}
