/*
 * tmemfs's second-level page cache (fs_cache.h): reads look in a private
 * ephemeral tmem pool before the backing file and put what they read.
 *
 * Pages go to tmem in batches (one ring round trip per FUSE read, not
 * one per page); the pool, and invalidations, go through cleancache.
 *
 * Why pages are put back after a hit: a get from a private pool takes
 * the page out (SPEC), and FUSE never learns when the kernel drops the
 * copy it now holds, so a page not put back would be gone from both
 * levels at the kernel's next reclaim.  The cache is inclusive (the
 * kernel's copy and tmem's), which is what lets a squeezed tenant read
 * it again from tmem.  A shared pool would keep pages on a get, but the
 * daemon gives one only to a tenant an administrator authorised.
 *
 * Never stale: a page is put only under its node's lock, and only when
 * the generation and write count seen before reading it are still the
 * node's and the backing file's stamp did not move while it was read.
 * Invalidations take the same lock, so no put of old bytes lands after
 * the flush that should have removed it.  A read validates the stamp
 * (one fstat) before trusting any page.
 *
 * Settling: the kernel moves a file's mtime and ctime when a write
 * begins, not when it ends, so a read that overlaps an outside write may
 * see half of it under a stamp that then stays.  Pages are therefore put
 * only when the file's last change (its ctime) was at least settle_ms
 * before the read began, or when that change was our own write, which
 * had returned when its stamp was taken.
 */
#include "fs_cache.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs_node.h"

/* Inodes remembered; past that the least recently looked-at chains give
 * up an unpinned node (its pages are flushed). */
#define FS_NODES_MAX 65536
/* A write touching more pages than this starts a new generation rather
 * than flushing page by page. */
#define FS_WRITE_FLUSH_PAGES 8

struct fs_cache {
    tmem_cleancache *cc; /* the pool, invalidations */
    tmem_conn *conn;     /* page gets and puts, in batches */
    int pool;
    int64_t settle_ns;
    fs_table nodes;
    _Atomic uint64_t next_gen;
    _Atomic uint64_t gets, hits, puts, put_errors, stale, backing_bytes;
};

/* What a read saw when it validated: its pages belong to this. */
struct fs_snap {
    uint64_t gen, wseq;
    struct fs_stamp stamp;
    bool settled; /* the file's last change was settle_ms before */
};

int fs_cache_create(tmem_conn *conn, unsigned settle_ms, fs_cache **out)
{
    fs_cache *c = calloc(1, sizeof *c);
    if (!c)
        return TMEM_ENOMEM;
    c->settle_ns = (int64_t)settle_ms * 1000000;
    c->conn = conn;
    int rc = tmem_cleancache_create(conn, &c->cc);
    if (rc < 0)
        goto out_free;
    rc = fs_table_init(&c->nodes, FS_NODES_MAX);
    if (rc < 0) {
        rc = TMEM_ENOMEM;
        goto out_cc;
    }
    c->pool = rc = tmem_cleancache_init_fs(c->cc);
    if (rc < 0)
        goto out_table;
    c->next_gen = 1;
    *out = c;
    return 0;

out_table:
    fs_table_fini(&c->nodes);
out_cc:
    tmem_cleancache_destroy(c->cc);
out_free:
    free(c);
    return rc;
}

void fs_cache_destroy(fs_cache *c)
{
    if (!c)
        return;
    tmem_cleancache_invalidate_fs(c->cc, c->pool);
    fs_table_fini(&c->nodes);
    tmem_cleancache_destroy(c->cc);
    free(c);
}

static tmem_oid oid_of(const struct fs_node *n, uint64_t gen)
{
    return (tmem_oid){{(uint64_t)n->dev, (uint64_t)n->ino, gen}};
}

/* Starts a new generation of n with stamp s (NULL: none, so the next look
 * starts another), flushing the old one's pages (n's lock held). */
static void new_gen_locked(fs_cache *c, struct fs_node *n,
                           const struct fs_stamp *s)
{
    uint64_t old = n->gen;
    n->gen = atomic_fetch_add(&c->next_gen, 1);
    n->rec = s ? *s : (struct fs_stamp){.size = -1};
    n->ours = false;
    if (old) {
        tmem_oid o = oid_of(n, old);
        tmem_cleancache_invalidate_inode(c->cc, c->pool, &o);
    }
}

/* Flushes the pages of a node unlinked from the table, and frees it. */
static void drop_node(fs_cache *c, struct fs_node *n)
{
    if (n && n->gen) {
        tmem_oid o = oid_of(n, n->gen);
        tmem_cleancache_invalidate_inode(c->cc, c->pool, &o);
    }
    fs_node_free(n);
}

static void unpin(fs_cache *c, struct fs_node *n)
{
    if (fs_table_unpin(&c->nodes, n))
        drop_node(c, n);
}

/* Whether st's last change is settle_ns old (st taken just now). */
static bool settled(const fs_cache *c, const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age = (int64_t)(now.tv_sec - st->st_ctim.tv_sec) * 1000000000 +
                  (now.tv_nsec - st->st_ctim.tv_nsec);
    return age >= c->settle_ns;
}

/* Compares n's stamp with the file's (st): a change starts a new
 * generation.  Returns what the caller's pages belong to. */
static struct fs_snap validate(fs_cache *c, struct fs_node *n,
                               const struct stat *st, bool *same)
{
    struct fs_stamp now = fs_stamp_of(st);
    bool old_enough = settled(c, st);
    pthread_mutex_lock(&n->lock);
    *same = n->gen && fs_stamp_eq(&n->rec, &now);
    if (!*same)
        new_gen_locked(c, n, &now);
    struct fs_snap s = {n->gen, n->wseq, now, old_enough};
    pthread_mutex_unlock(&n->lock);
    return s;
}

int fs_cache_open(fs_cache *c, int fd, bool trunc, fs_node **out, bool *keep)
{
    struct stat st;
    struct fs_node *ev;
    bool made;
    if (fstat(fd, &st) < 0)
        return -errno;
    struct fs_node *n =
        fs_table_pin(&c->nodes, st.st_dev, st.st_ino, true, &made, &ev);
    drop_node(c, ev);
    if (!n)
        return -ENOMEM;
    bool same; /* an O_TRUNC that changed the file shows in its stamp */
    validate(c, n, &st, &same);
    *keep = same && !trunc;
    *out = n;
    return 0;
}

void fs_cache_close(fs_cache *c, fs_node *n)
{
    if (n)
        unpin(c, n);
}

/* pread until len bytes or the end of the file: the bytes read, or
 * -errno. */
static ssize_t pread_full(int fd, char *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return got ? (ssize_t)got : -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* One read's pages: np whole pages from page first, in buf. */
struct fs_span {
    uint64_t first;
    size_t np;
    char *buf;
    bool *hit;
    tmem_op *ops;
    off_t end; /* the file's size when validated */
};

/* Runs one operation (TMEM_GET or TMEM_PUT) on every page of sp, in one
 * batch: a ring round trip for them all, where cleancache's page calls
 * would take one each.  Returns 0 or a transport error (no page then). */
static int span_batch(fs_cache *c, const struct fs_node *n, uint64_t gen,
                      struct fs_span *sp, uint8_t op)
{
    tmem_oid o = oid_of(n, gen);
    for (size_t i = 0; i < sp->np; i++)
        sp->ops[i] = (tmem_op){.op = op,
                               .pool = c->pool,
                               .oid = o,
                               .index = (uint32_t)(sp->first + i),
                               .page = sp->buf + i * FS_PAGE};
    return tmem_conn_batch(c->conn, sp->ops, sp->np);
}

/* Gets each page of sp from tmem. */
static void span_get(fs_cache *c, const struct fs_node *n,
                     const struct fs_snap *s, struct fs_span *sp)
{
    int rc = span_batch(c, n, s->gen, sp, TMEM_GET);
    size_t hits = 0;
    for (size_t i = 0; i < sp->np; i++)
        hits += sp->hit[i] = rc == 0 && sp->ops[i].result == 1;
    atomic_fetch_add(&c->gets, sp->np);
    atomic_fetch_add(&c->hits, hits);
}

/* Reads each run of missed pages from fd, the last page zero-padded past
 * the end.  Returns the bytes of sp that are good from its start (short
 * when the file shrank meanwhile), or -errno. */
static ssize_t span_fill(fs_cache *c, int fd, struct fs_span *sp)
{
    size_t i = 0;
    while (i < sp->np) {
        if (sp->hit[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < sp->np && !sp->hit[j])
            j++;
        off_t from = (off_t)((sp->first + i) * FS_PAGE);
        off_t to = (off_t)((sp->first + j) * FS_PAGE);
        size_t want = (size_t)((to < sp->end ? to : sp->end) - from);
        char *dst = sp->buf + i * FS_PAGE;
        ssize_t got = pread_full(fd, dst, want, from);
        if (got < 0)
            return got;
        atomic_fetch_add(&c->backing_bytes, (uint64_t)got);
        memset(dst + got, 0, (j - i) * FS_PAGE - (size_t)got);
        if ((size_t)got < want)
            return (ssize_t)(i * FS_PAGE + (size_t)got);
        i = j;
    }
    return (ssize_t)(sp->np * FS_PAGE);
}

/* Puts every page of sp, unless the file moved since s was taken. */
static void span_put(fs_cache *c, struct fs_node *n, int fd,
                     const struct fs_snap *s, struct fs_span *sp)
{
    struct stat st;
    struct fs_stamp now = {.size = -1};
    if (fstat(fd, &st) == 0)
        now = fs_stamp_of(&st);
    pthread_mutex_lock(&n->lock);
    if (n->gen == s->gen && n->wseq == s->wseq &&
        fs_stamp_eq(&now, &s->stamp) && (s->settled || n->ours)) {
        int rc = span_batch(c, n, s->gen, sp, TMEM_PUT);
        size_t refused = 0;
        for (size_t i = 0; i < sp->np; i++)
            refused += rc < 0 || sp->ops[i].result != 1;
        atomic_fetch_add(&c->puts, sp->np);
        atomic_fetch_add(&c->put_errors, refused);
    } else {
        atomic_fetch_add(&c->stale, 1);
    }
    pthread_mutex_unlock(&n->lock);
}

/* The cached read of [off, off + size) (already within the file). */
static ssize_t read_cached(fs_cache *c, fs_node *n, int fd, char *buf,
                           size_t size, off_t off, const struct fs_snap *s)
{
    struct fs_span sp = {.first = (uint64_t)off / FS_PAGE,
                         .end = s->stamp.size};
    sp.np = (size_t)(((uint64_t)off + size - 1) / FS_PAGE - sp.first + 1);
    sp.buf = malloc(sp.np * (FS_PAGE + sizeof(tmem_op) + 1));
    if (!sp.buf)
        return pread_full(fd, buf, size, off);
    sp.ops = (tmem_op *)(sp.buf + sp.np * FS_PAGE);
    sp.hit = (bool *)(sp.ops + sp.np);
    span_get(c, n, s, &sp);
    ssize_t good = span_fill(c, fd, &sp);
    size_t skip = (size_t)((uint64_t)off - sp.first * FS_PAGE);
    if (good == (ssize_t)(sp.np * FS_PAGE))
        span_put(c, n, fd, s, &sp);
    else
        atomic_fetch_add(&c->stale, 1);
    ssize_t ret = good < 0                ? good
                  : good <= (ssize_t)skip ? 0
                                          : (ssize_t)((size_t)good - skip);
    if (ret > (ssize_t)size)
        ret = (ssize_t)size;
    if (ret > 0)
        memcpy(buf, sp.buf + skip, (size_t)ret);
    free(sp.buf);
    return ret;
}

ssize_t fs_cache_read(fs_cache *c, fs_node *n, int fd, char *buf, size_t size,
                      off_t off)
{
    struct stat st;
    bool same;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || !n)
        return pread_full(fd, buf, size, off);
    struct fs_snap s = validate(c, n, &st, &same);
    if (off < 0)
        return -EINVAL;
    if (off >= st.st_size || size == 0)
        return 0;
    if ((uint64_t)size > (uint64_t)(st.st_size - off))
        size = (size_t)(st.st_size - off);
    /* page numbers are 32 bits: past 16 TiB the file is read directly */
    if (((uint64_t)off + size - 1) / FS_PAGE > UINT32_MAX)
        return pread_full(fd, buf, size, off);
    return read_cached(c, n, fd, buf, size, off, &s);
}

void fs_cache_wrote(fs_cache *c, fs_node *n, int fd, off_t off, size_t len)
{
    struct stat st;
    bool have = fstat(fd, &st) == 0;
    struct fs_stamp now = have ? fs_stamp_of(&st) : (struct fs_stamp){0};
    uint64_t first = (uint64_t)off / FS_PAGE;
    uint64_t last = len ? ((uint64_t)off + len - 1) / FS_PAGE : first;
    pthread_mutex_lock(&n->lock);
    n->wseq++;
    if (!have || last - first >= FS_WRITE_FLUSH_PAGES || last > UINT32_MAX) {
        new_gen_locked(c, n, have ? &now : NULL);
    } else {
        tmem_oid o = oid_of(n, n->gen);
        for (uint64_t i = first; len && i <= last; i++)
            tmem_cleancache_invalidate_page(c->cc, c->pool, &o, (uint32_t)i);
        n->rec = now;
    }
    n->ours = have; /* the write had returned when st was taken */
    pthread_mutex_unlock(&n->lock);
}

void fs_cache_invalidate(fs_cache *c, dev_t dev, ino_t ino,
                         const struct stat *now)
{
    struct fs_node *ev;
    bool made;
    struct fs_node *n = fs_table_pin(&c->nodes, dev, ino, false, &made, &ev);
    if (!n)
        return; /* never read through the mount: nothing cached */
    struct fs_stamp s = now ? fs_stamp_of(now) : (struct fs_stamp){0};
    pthread_mutex_lock(&n->lock);
    n->wseq++;
    new_gen_locked(c, n, now ? &s : NULL);
    n->ours = now != NULL; /* the caller's change is done */
    pthread_mutex_unlock(&n->lock);
    if (!now)
        fs_table_mark_gone(&c->nodes, n);
    unpin(c, n);
}

void fs_cache_stats_get(fs_cache *c, fs_cache_stats *out)
{
    tmem_cleancache_stats cs;
    tmem_cleancache_stats_get(c->cc, &cs);
    *out = (fs_cache_stats){
        .gets = atomic_load(&c->gets),
        .hits = atomic_load(&c->hits),
        .puts = atomic_load(&c->puts),
        .put_errors = atomic_load(&c->put_errors),
        .invalidations = cs.invalidates,
        .stale = atomic_load(&c->stale),
        .backing_bytes = atomic_load(&c->backing_bytes),
        .nodes = fs_table_count(&c->nodes),
    };
}

int fs_cache_stats_format(fs_cache *c, char *buf, size_t cap)
{
    fs_cache_stats s;
    fs_cache_stats_get(c, &s);
    return snprintf(
        buf, cap,
        "gets %llu\nhits %llu\nputs %llu\nput_errors %llu\n"
        "invalidations %llu\nstale %llu\nbacking_bytes %llu\n"
        "nodes %llu\n",
        (unsigned long long)s.gets, (unsigned long long)s.hits,
        (unsigned long long)s.puts, (unsigned long long)s.put_errors,
        (unsigned long long)s.invalidations, (unsigned long long)s.stale,
        (unsigned long long)s.backing_bytes, (unsigned long long)s.nodes);
}
