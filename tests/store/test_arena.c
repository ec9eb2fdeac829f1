/*
 * Arena tests (lib/store/arena.c, lib/common/arena_fmt.c): records and
 * handles, what a tenant's read-only view may and may not read (checks of
 * generation, checksum, kind; aliases), compaction a segment at a time
 * under concurrent readers, punching, and the memory figures.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../runner.h"
#include "common/arena_fmt.h"
#include "store/arena.h"
#include "store_testutil.h"

/* A payload that says which (key, version) it is. */
static uint32_t payload(unsigned char *p, uint32_t key, uint32_t ver)
{
    uint32_t len = 200 + (key * 37 + ver) % 1800;
    uint64_t s = (uint64_t)key << 32 | ver;
    for (uint32_t i = 0; i < len; i++)
        p[i] = (unsigned char)(tu_rand(&s) >> 24);
    return len;
}

static tmem_arena_name name_of(uint32_t key)
{
    return (tmem_arena_name){.owner = 7, .pool = 3, .index = key,
                             .oid = {key / 64, 1, 2}};
}

/* A tenant's view: the arena mapped read-only from its descriptor. */
struct view {
    const void *base;
    size_t len;
};

static struct view ro_view(tmem_arena *a)
{
    int fd = tmem__arena_fd_ro(a);
    ASSERT_GE(fd, 0);
    size_t len = tmem__arena_map_len(a);
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0);
    ASSERT_TRUE(p != MAP_FAILED);
    /* the descriptor gives no way to write */
    ASSERT_TRUE(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) ==
                MAP_FAILED);
    ASSERT_EQ(errno, EACCES);
    ASSERT_EQ(mprotect(p, 4096, PROT_READ | PROT_WRITE), -1);
    close(fd);
    return (struct view){p, len};
}

static int vread(struct view v, uint32_t h, uint32_t gen, tmem_arena_rec *r,
                 unsigned char *buf)
{
    return tmem__arena_read(v.base, v.len, h, gen, TMEM_ARENA_VERIFY, r, buf);
}

TEST(arena_record_names_and_checks)
{
    tmem_arena *a;
    ASSERT_EQ(tmem__arena_create(7, TMEM_ARENA_F_NAMED, NULL, &a), 0);
    struct view v = ro_view(a);
    unsigned char pg[4096], got[4096];
    uint32_t len = payload(pg, 5, 1), h, gen;
    tmem_arena_name nm = name_of(5);
    ASSERT_EQ(tmem__arena_put(a, &nm, pg, len, 1, 0xabcd, &h, &gen), 0);
    ASSERT_NE(h, 0);
    ASSERT_EQ(gen, 1);
    ASSERT_EQ(tmem__arena_gen(a, h), gen);
    tmem_arena_rec r;
    ASSERT_EQ(vread(v, h, gen, &r, got), 0);
    ASSERT_EQ(r.len, len);
    ASSERT_EQ(r.codec, 1);
    ASSERT_EQ(r.kind, TMEM_REC_DATA);
    ASSERT_EQ(r.owner, 7);
    ASSERT_EQ(r.pool, 3);
    ASSERT_EQ(r.index, 5);
    ASSERT_U64_EQ(r.oid[1], 1);
    ASSERT_EQ(r.hash, 0xabcd);
    ASSERT_GT(r.seq, 0);
    ASSERT_MEM_EQ(got, pg, len);
    /* a wrong generation or a handle never handed out: not there */
    ASSERT_EQ(vread(v, h, gen + 1, &r, got), -ENOENT);
    ASSERT_EQ(vread(v, h + 1, 1, &r, got), -ENOENT);
    ASSERT_EQ(vread(v, 0, 1, &r, got), -ENOENT);
    ASSERT_EQ(vread(v, 1u << 30, 1, &r, got), -ENOENT);

    /* an alias names a second key and reads as its target */
    uint32_t ha, ga;
    tmem_arena_name nm2 = name_of(6);
    ASSERT_EQ(tmem__arena_alias(a, &nm2, h, gen, &ha, &ga), 0);
    ASSERT_EQ(vread(v, ha, ga, &r, got), 0);
    ASSERT_EQ(r.handle, h);
    ASSERT_MEM_EQ(got, pg, len);
    /* the target's name dies, its data stays for the alias */
    tmem__arena_name_dead(a, h);
    ASSERT_EQ(vread(v, ha, ga, &r, got), 0);
    tmem__arena_free(a, ha);
    ASSERT_EQ(vread(v, ha, ga, &r, got), -ENOENT);
    tmem__arena_free(a, h);
    ASSERT_EQ(vread(v, h, gen, &r, got), -ENOENT);

    /* a freed handle comes back with the next generation */
    uint32_t h2, g2;
    ASSERT_EQ(tmem__arena_put(a, &nm, pg, len, 1, 1, &h2, &g2), 0);
    if (h2 == h)
        ASSERT_EQ(g2, gen + 1);
    ASSERT_EQ(vread(v, h, gen, &r, got), h2 == h ? -ENOENT : -ENOENT);
    tmem__arena_free(a, h2);
    munmap((void *)v.base, v.len);
    tmem__arena_destroy(a);
}

TEST(arena_detects_corruption_and_dead_arena)
{
    tmem_arena *a;
    ASSERT_EQ(tmem__arena_create(1, TMEM_ARENA_F_NAMED, NULL, &a), 0);
    unsigned char pg[4096], got[4096];
    uint32_t len = payload(pg, 9, 9), h, gen;
    tmem_arena_name nm = name_of(9);
    ASSERT_EQ(tmem__arena_put(a, &nm, pg, len, 1, 9, &h, &gen), 0);
    /* flip one payload byte in the file: the checksum says so */
    const tmem_arena_handle *e =
        tmem__arena_handle_at(tmem__arena_base(a), tmem__arena_map_len(a), h);
    ASSERT_TRUE(e != NULL);
    uint64_t loc = atomic_load(&((tmem_arena_handle *)e)->loc);
    unsigned char *p = (unsigned char *)tmem__arena_base(a) +
                       ((size_t)TMEM_ALOC_SEG(loc) << TMEM_ARENA_SEG_SHIFT) +
                       TMEM_ALOC_OFF(loc) + TMEM_ARENA_REC_HDR + 17;
    *p ^= 0x40;
    tmem_arena_rec r;
    ASSERT_EQ(tmem__arena_read(tmem__arena_base(a), tmem__arena_map_len(a), h,
                               gen, TMEM_ARENA_VERIFY, &r, got),
              -EIO);
    *p ^= 0x40;
    ASSERT_EQ(tmem__arena_read(tmem__arena_base(a), tmem__arena_map_len(a), h,
                               gen, TMEM_ARENA_VERIFY, &r, got),
              0);
    /* a reader whose arena's owner is gone is told to ask the store */
    struct view v = ro_view(a);
    tmem__arena_free(a, h);
    tmem__arena_destroy(a);
    ASSERT_EQ(vread(v, h, gen, &r, got), -EAGAIN);
    munmap((void *)v.base, v.len);
}

TEST(arena_common_records_are_short_and_unverifiable)
{
    tmem_arena *a;
    ASSERT_EQ(tmem__arena_create(0, 0, NULL, &a), 0);
    unsigned char pg[4096], got[4096];
    uint32_t len = payload(pg, 3, 3), h, gen;
    tmem_arena_name nm = name_of(3);
    ASSERT_EQ(tmem__arena_put(a, &nm, pg, len, 2, 3, &h, &gen), 0);
    tmem_arena_stats st;
    tmem__arena_stats(a, &st);
    ASSERT_U64_EQ(st.data_bytes, len);
    tmem_arena_rec r;
    ASSERT_EQ(tmem__arena_read(tmem__arena_base(a), tmem__arena_map_len(a), h,
                               0, TMEM_ARENA_TRUST, &r, got),
              0);
    ASSERT_EQ(r.len, len);
    ASSERT_EQ(r.codec, 2);
    ASSERT_MEM_EQ(got, pg, len);
    /* no checksum or generation to check: a tenant never reads it */
    ASSERT_EQ(tmem__arena_read(tmem__arena_base(a), tmem__arena_map_len(a), h,
                               0, TMEM_ARENA_VERIFY, &r, got),
              -EAGAIN);
    tmem__arena_free(a, h);
    tmem__arena_destroy(a);
}

/* Puts n records, frees all but every tenth, compacts: every survivor
 * reads back through a tenant's view, segments were punched, and the
 * memory held falls with the data. */
static void compact_case(unsigned flags)
{
    enum { N = 6000 };
    tmem_arena *a;
    ASSERT_EQ(tmem__arena_create(2, flags, NULL, &a), 0);
    struct view v = ro_view(a);
    static uint32_t h[N], gen[N];
    unsigned char pg[4096], got[4096];
    for (uint32_t k = 0; k < N; k++) {
        tmem_arena_name nm = name_of(k);
        uint32_t len = payload(pg, k, 0);
        ASSERT_EQ(tmem__arena_put(a, &nm, pg, len, 1, k, &h[k], &gen[k]), 0);
    }
    tmem_arena_stats full, st;
    tmem__arena_stats(a, &full);
    for (uint32_t k = 0; k < N; k++)
        if (k % 10)
            tmem__arena_free(a, h[k]);
    /* pages on which every record died went back before any compaction,
     * so the steps below walk segments with holes in them */
    tmem__arena_stats(a, &st);
    ASSERT_GT(st.pages_punched, 100);
    ASSERT_LT(st.held_bytes, full.held_bytes);
    int steps = 0, r;
    while ((r = tmem__arena_compact_step(a)) > 0)
        steps++;
    ASSERT_EQ(r, 0);
    ASSERT_GT(steps, 10);
    tmem__arena_stats(a, &st);
    ASSERT_GT(st.moved, 0);
    ASSERT_GT(st.punched, 10);
    ASSERT_LT(st.held_bytes, full.held_bytes / 5);
    for (uint32_t k = 0; k < N; k += 10) {
        tmem_arena_rec rec;
        uint32_t len = payload(pg, k, 0);
        int rc = (flags & TMEM_ARENA_F_NAMED)
                     ? vread(v, h[k], gen[k], &rec, got)
                     : tmem__arena_read(v.base, v.len, h[k], 0,
                                        TMEM_ARENA_TRUST, &rec, got);
        ASSERT_EQ(rc, 0);
        ASSERT_EQ(rec.len, len);
        ASSERT_MEM_EQ(got, pg, len);
    }
    for (uint32_t k = 0; k < N; k += 10)
        tmem__arena_free(a, h[k]);
    tmem__arena_stats(a, &st);
    ASSERT_U64_EQ(st.data_bytes, 0);
    ASSERT_U64_EQ(st.records, 0);
    /* header, handle pages, and heads started over: a few pages */
    ASSERT_LE(st.held_bytes, 4096u * 8 + N * 16u);
    munmap((void *)v.base, v.len);
    tmem__arena_destroy(a);
}

TEST(arena_compaction_named)
{
    compact_case(TMEM_ARENA_F_NAMED);
}

TEST(arena_compaction_common)
{
    compact_case(0);
}

/* Readers through a tenant's view while a writer replaces records and
 * compaction moves them: every read is the record asked for or -ENOENT
 * (replaced), never other bytes. */
struct churn {
    tmem_arena *a;
    struct view v;
    /* handle << 32 | gen << 16 | version: one word, so a reader sees a
     * record and its version together (both stay under 2^16 here) */
    _Atomic uint64_t slot[64];
    atomic_int stop;
    _Atomic uint64_t reads, misses;
};

static void *churn_reader(void *arg)
{
    struct churn *c = arg;
    unsigned char want[4096], got[4096];
    uint64_t s = 99;
    while (!atomic_load(&c->stop)) {
        unsigned i = (unsigned)(tu_rand(&s) % 64);
        uint64_t w = atomic_load(&c->slot[i]);
        tmem_arena_rec r;
        int rc = vread(c->v, (uint32_t)(w >> 32), (uint32_t)(w >> 16) & 0xffff,
                       &r, got);
        if (rc == -ENOENT) { /* replaced and freed under the reader */
            atomic_fetch_add(&c->misses, 1);
            continue;
        }
        ASSERT_EQ(rc, 0);
        ASSERT_EQ(r.index, i);
        uint32_t len = payload(want, i, (uint32_t)w & 0xffff);
        ASSERT_EQ(r.len, len);
        ASSERT_MEM_EQ(got, want, len);
        atomic_fetch_add(&c->reads, 1);
    }
    return NULL;
}

TEST(arena_readers_during_churn_and_compaction)
{
    static struct churn c;
    ASSERT_EQ(tmem__arena_create(3, TMEM_ARENA_F_NAMED, NULL, &c.a), 0);
    c.v = ro_view(c.a);
    unsigned char pg[4096];
    for (uint32_t i = 0; i < 64; i++) {
        uint32_t h, g;
        tmem_arena_name nm = name_of(i);
        ASSERT_EQ(tmem__arena_put(c.a, &nm, pg, payload(pg, i, 0), 1, i, &h,
                                  &g),
                  0);
        atomic_store(&c.slot[i], (uint64_t)h << 32 | (uint64_t)g << 16);
    }
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, churn_reader, &c), 0);
    uint64_t s = 5;
    for (int round = 0; round < 40000; round++) {
        uint32_t i = (uint32_t)(tu_rand(&s) % 64), h, g;
        uint32_t ver = ((uint32_t)atomic_load(&c.slot[i]) & 0xffff) + 1;
        tmem_arena_name nm = name_of(i);
        ASSERT_EQ(tmem__arena_put(c.a, &nm, pg, payload(pg, i, ver), 1, i, &h,
                                  &g),
                  0);
        ASSERT_LT(g, 1u << 16);
        uint64_t old = atomic_exchange(
            &c.slot[i], (uint64_t)h << 32 | (uint64_t)g << 16 | ver);
        tmem__arena_free(c.a, (uint32_t)(old >> 32));
        if (round % 50 == 0) /* whatever the marks say: move records */
            ASSERT_GE(tmem__arena_compact_step(c.a), 0);
    }
    atomic_store(&c.stop, 1);
    pthread_join(t, NULL);
    tmem_arena_stats st;
    tmem__arena_stats(c.a, &st);
    fprintf(stderr, "  reads %llu, replaced under the reader %llu, moved %llu\n",
            (unsigned long long)atomic_load(&c.reads),
            (unsigned long long)atomic_load(&c.misses),
            (unsigned long long)st.moved);
    ASSERT_GT(atomic_load(&c.reads), 1000);
    ASSERT_GT(st.moved, 0);
    munmap((void *)c.v.base, c.v.len);
    tmem__arena_destroy(c.a);
}

/* Opening segments takes nothing under the arena's spinlocks: the seginfo
 * page, the segment's page state and the file room were made ahead
 * (spares_fill), so one thread filling many segments and compacting them
 * never allocates or grows the file under a lock (prep_misses 0). */
TEST(arena_segments_open_from_spares)
{
    enum { N = 8000 };
    tmem_arena *a;
    ASSERT_EQ(tmem__arena_create(4, TMEM_ARENA_F_NAMED, NULL, &a), 0);
    static uint32_t h[N], gen[N];
    unsigned char pg[4096];
    for (uint32_t k = 0; k < N; k++) {
        tmem_arena_name nm = name_of(k);
        uint32_t len = payload(pg, k, 0);
        ASSERT_EQ(tmem__arena_put(a, &nm, pg, len, 1, k, &h[k], &gen[k]), 0);
    }
    tmem_arena_stats st;
    tmem__arena_stats(a, &st);
    ASSERT_GT(st.segments, 20);
    for (uint32_t k = 0; k < N; k++)
        if (k % 3)
            tmem__arena_free(a, h[k]);
    while (tmem__arena_compact_step(a) > 0)
        ;
    tmem__arena_stats(a, &st);
    fprintf(stderr, "  %llu segments, %llu compactions, prep misses %llu\n",
            (unsigned long long)st.segments,
            (unsigned long long)st.compactions,
            (unsigned long long)st.prep_misses);
    ASSERT_GT(st.compactions, 0);
    ASSERT_U64_EQ(st.prep_misses, 0);
    tmem__arena_destroy(a);
}
