/*
 * tmemfs's cache (src/fs/fs_cache.c) without FUSE, on an embedded store:
 * bytes as the file has them, never past its end, never stale after a
 * writer inside or outside, hits once a page was read, and a reader
 * racing an outside writer that never sees an older version than the
 * last one written before its read began (which a cache that trusted
 * an unmoved stamp at once would: a write moves it when it begins).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/fs/fs_cache.h"
#include "../runner.h"
#include "fs_util.h"

struct cache_env {
    tmem_conn *conn;
    fs_cache *cache;
    fsu_mount dirs; /* only its backing dir is used */
};

static void env_up(struct cache_env *e, unsigned settle_ms)
{
    setenv("TMEM_EMBEDDED", "1", 1);
    setenv("TMEM_EMBEDDED_BUDGET_MIB", "64", 1);
    ASSERT_EQ(tmem_connect(NULL, &e->conn), 0);
    ASSERT_EQ(fs_cache_create(e->conn, settle_ms, &e->cache), 0);
    fsu_dirs(&e->dirs);
}

static void env_down(struct cache_env *e)
{
    fs_cache_destroy(e->cache);
    tmem_disconnect(e->conn);
    fsu_sh(NULL, 0, "rm -rf %s", e->dirs.dir);
}

/* Reads [off, off + n) through the cache and checks it against the
 * file's own bytes (want, size bytes). */
static void check_range(struct cache_env *e, fs_node *node, int fd,
                        const char *want, size_t size, off_t off, size_t n)
{
    char *buf = malloc(n + 1);
    ASSERT_TRUE(buf != NULL);
    ssize_t got = fs_cache_read(e->cache, node, fd, buf, n, off);
    size_t expect = (size_t)off >= size      ? 0
                    : n < size - (size_t)off ? n
                                             : size - (size_t)off;
    ASSERT_EQ(got, (ssize_t)expect);
    ASSERT_MEM_EQ(buf, want + off, expect);
    free(buf);
}

/* A fresh file f of size bytes (seed 1), opened with flags (*fd) and
 * pinned (*node), read whole through the cache once. */
static void open_read(struct cache_env *e, size_t size, int flags, int *fd,
                      fs_node **node, char *p, size_t cap)
{
    size_t n;
    bool keep;
    fsu_write_file(fsu_path(p, cap, e->dirs.backing, "f"), size, 1);
    *fd = open(p, flags);
    ASSERT_TRUE(*fd >= 0);
    ASSERT_EQ(fs_cache_open(e->cache, *fd, false, node, &keep), 0);
    char *want = fsu_read_file(p, &n);
    check_range(e, *node, *fd, want, n, 0, size);
    free(want);
}

static uint64_t stat_of(struct cache_env *e, int which)
{
    fs_cache_stats s;
    fs_cache_stats_get(e->cache, &s);
    return which == 0 ? s.hits : which == 1 ? s.gets : s.stale;
}

TEST(fs_cache_reads_the_file_and_hits_after)
{
    struct cache_env e;
    env_up(&e, 0);
    char p[256];
    size_t size = 5 * FS_PAGE + 123, n;
    fsu_write_file(fsu_path(p, sizeof p, e.dirs.backing, "f"), size, 1);
    char *want = fsu_read_file(p, &n);
    int fd = open(p, O_RDONLY);
    fs_node *node;
    bool keep;
    ASSERT_EQ(fs_cache_open(e.cache, fd, false, &node, &keep), 0);
    ASSERT_TRUE(!keep); /* never seen before */
    static const struct {
        off_t off;
        size_t n;
    } r[] = {{0, 4096},           {0, 5 * 4096 + 123}, {100, 9000},
             {4095, 2},           {5 * 4096, 4096},    {5 * 4096 + 122, 10},
             {5 * 4096 + 123, 1}, {1 << 20, 10},       {3, 1}};
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        check_range(&e, node, fd, want, size, r[i].off, r[i].n);
    uint64_t hits = stat_of(&e, 0);
    ASSERT_GT(hits, 5);
    check_range(&e, node, fd, want, size, 0, size);
    ASSERT_EQ(stat_of(&e, 0), hits + 6); /* every page: put back on a hit */
    fs_cache_close(e.cache, node);
    ASSERT_EQ(fs_cache_open(e.cache, fd, false, &node, &keep), 0);
    ASSERT_TRUE(keep); /* unchanged: the kernel's pages are good */
    fs_cache_close(e.cache, node);
    close(fd);
    free(want);
    env_down(&e);
}

/* Rewrites path with n bytes of seed without moving its mtime (the
 * ctime moves: the kernel sets it). */
static void rewrite_keep_mtime(const char *path, size_t n, uint32_t seed)
{
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    fsu_write_file(tmp, n, seed);
    size_t len;
    char *b = fsu_read_file(tmp, &len);
    int fd = open(path, O_WRONLY | O_TRUNC);
    ASSERT_EQ(write(fd, b, len), (ssize_t)len);
    struct timespec tv[2] = {st.st_atim, st.st_mtim};
    ASSERT_EQ(futimens(fd, tv), 0);
    close(fd);
    unlink(tmp);
    free(b);
}

TEST(fs_cache_outside_writers_are_seen)
{
    struct cache_env e;
    env_up(&e, 0);
    char p[256], *want;
    size_t size = 3 * FS_PAGE, n;
    int fd;
    fs_node *node;
    bool keep;
    open_read(&e, size, O_RDONLY, &fd, &node, p, sizeof p);
    /* same size, mtime restored: only the ctime tells */
    rewrite_keep_mtime(p, size, 2);
    want = fsu_read_file(p, &n);
    check_range(&e, node, fd, want, n, 0, size);
    free(want);
    /* longer, then shorter (its last page partial) */
    static const size_t sizes[] = {7 * FS_PAGE + 5, FS_PAGE + 77, 0, 100};
    for (size_t i = 0; i < 4; i++) {
        fsu_write_file(p, sizes[i], 3 + (uint32_t)i);
        want = fsu_read_file(p, &n);
        ASSERT_EQ(n, sizes[i]);
        check_range(&e, node, fd, want, n, 0, 8 * FS_PAGE);
        check_range(&e, node, fd, want, n, 0, 8 * FS_PAGE);
        free(want);
    }
    fs_cache_close(e.cache, node);
    ASSERT_EQ(fs_cache_open(e.cache, fd, false, &node, &keep), 0);
    ASSERT_TRUE(keep);
    fs_cache_close(e.cache, node);
    rewrite_keep_mtime(p, 100, 9);
    ASSERT_EQ(fs_cache_open(e.cache, fd, false, &node, &keep), 0);
    ASSERT_TRUE(!keep); /* changed since last seen: the kernel drops its copy */
    fs_cache_close(e.cache, node);
    close(fd);
    env_down(&e);
}

TEST(fs_cache_writes_and_truncates_invalidate)
{
    struct cache_env e;
    env_up(&e, 0);
    char p[256], *want;
    size_t size = 20 * FS_PAGE + 9, n;
    int fd;
    fs_node *node;
    open_read(&e, size, O_RDWR, &fd, &node, p, sizeof p);
    /* a small write (page by page) and a large one (a new generation) */
    const struct {
        off_t off;
        size_t n;
    } w[] = {{4000, 200}, {FS_PAGE, 12 * FS_PAGE}, {(off_t)size, 5000}};
    char buf[12 * FS_PAGE];
    for (size_t i = 0; i < 3; i++) {
        memset(buf, 'A' + (int)i, w[i].n);
        ASSERT_EQ(pwrite(fd, buf, w[i].n, w[i].off), (ssize_t)w[i].n);
        fs_cache_wrote(e.cache, node, fd, w[i].off, w[i].n);
        want = fsu_read_file(p, &n);
        check_range(&e, node, fd, want, n, 0, n + 10);
        free(want);
    }
    /* truncated down, then grown by a write: the gap reads as zeros */
    ASSERT_EQ(ftruncate(fd, 100), 0);
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    fs_cache_invalidate(e.cache, st.st_dev, st.st_ino, &st);
    ASSERT_EQ(pwrite(fd, "z", 1, 3 * FS_PAGE), 1);
    fs_cache_wrote(e.cache, node, fd, 3 * FS_PAGE, 1);
    want = fsu_read_file(p, &n);
    ASSERT_EQ(n, 3 * FS_PAGE + 1);
    check_range(&e, node, fd, want, n, 0, n);
    ASSERT_EQ(want[200], 0);
    free(want);
    fs_cache_close(e.cache, node);
    /* a removed inode: its node goes once unpinned */
    fs_cache_invalidate(e.cache, st.st_dev, st.st_ino, NULL);
    fs_cache_stats s;
    fs_cache_stats_get(e.cache, &s);
    ASSERT_EQ(s.nodes, 0);
    close(fd);
    env_down(&e);
}

/* An outside writer rewrites the file whole, each version's every byte
 * its number, and publishes the number once written; readers check each
 * read against the version published before it began. */
struct race {
    const char *path;
    _Atomic int done, stop;
    size_t size;
};

static void *writer(void *arg)
{
    struct race *r = arg;
    char *b = malloc(r->size);
    for (int v = 1; v < 120 && !r->stop; v++) {
        memset(b, v, r->size);
        int fd = open(r->path, O_WRONLY);
        if (fd < 0 || pwrite(fd, b, r->size, 0) != (ssize_t)r->size)
            abort();
        close(fd);
        atomic_store(&r->done, v);
        usleep(500);
    }
    free(b);
    r->stop = 1;
    return NULL;
}

TEST(fs_cache_never_stale_under_an_outside_writer)
{
    struct cache_env e;
    env_up(&e, 50);
    char p[256];
    struct race r = {.path = fsu_path(p, sizeof p, e.dirs.backing, "f"),
                     .size = 16 * FS_PAGE};
    fsu_write_file(p, r.size, 1);
    int fd = open(p, O_RDONLY);
    fs_node *node;
    bool keep;
    ASSERT_EQ(fs_cache_open(e.cache, fd, false, &node, &keep), 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, writer, &r), 0);
    char *buf = malloc(r.size);
    long reads = 0, bad = 0;
    while (!r.stop) {
        int before = atomic_load(&r.done);
        ssize_t got = fs_cache_read(e.cache, node, fd, buf, r.size, 0);
        ASSERT_EQ(got, (ssize_t)r.size);
        for (size_t i = 0; i < r.size; i += FS_PAGE)
            bad += before && (unsigned char)buf[i] < before;
        reads++;
    }
    pthread_join(t, NULL);
    /* settled: the last version is kept, and hits */
    usleep(60 * 1000);
    for (int k = 0; k < 2; k++)
        ASSERT_EQ(fs_cache_read(e.cache, node, fd, buf, r.size, 0),
                  (ssize_t)r.size);
    ASSERT_EQ((unsigned char)buf[0], atomic_load(&r.done));
    printf("  %ld reads, %llu hits, %llu stale reads not put, %ld stale "
           "pages seen\n",
           reads, (unsigned long long)stat_of(&e, 0),
           (unsigned long long)stat_of(&e, 2), bad);
    ASSERT_EQ(bad, 0);
    ASSERT_GT(stat_of(&e, 0), 0);
    free(buf);
    fs_cache_close(e.cache, node);
    close(fd);
    env_down(&e);
}
