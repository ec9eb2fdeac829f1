/*
 * tmemfs mounted for real (FUSE, BUILD/tmem fs over a tmemd of the
 * test's own): real programs read through the mount (cat, cc, sqlite3)
 * and every byte is compared with the backing files; the kernel's copy
 * dropped, reads come back from tmem; writers outside the mount, and
 * truncates, renames and unlinks through it, are never read stale; bad
 * paths and a missing daemon are one-line errors; SIGTERM unmounts and
 * prints the counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../runner.h"
#include "fs_util.h"

/* tmem fs with a short settle time: the tests' files are fresh */
static const char *const quick[] = {"--settle-ms", "100", NULL};

struct fs_env {
    th_daemon d;
    fsu_mount m;
};

static void up(struct fs_env *e, const char *const *tmemd_extra)
{
    fsu_setup(&e->d, &e->m, tmemd_extra);
}

static void down(struct fs_env *e)
{
    fsu_teardown(&e->d, &e->m);
}

static const size_t sizes[] = {0,    1,         4095,         4096,
                               4097, 65536 + 7, (1 << 20) + 3};
#define NSIZES (sizeof sizes / sizeof *sizes)

static void make_files(const fsu_mount *m)
{
    char p[256], name[32];
    for (size_t i = 0; i < NSIZES; i++) {
        snprintf(name, sizeof name, "f%zu", i);
        fsu_write_file(fsu_path(p, sizeof p, m->backing, name), sizes[i],
                       (uint32_t)i + 1);
    }
}

/* cat of every file through the mount, compared with cmp. */
static void cat_all(const fsu_mount *m)
{
    for (size_t i = 0; i < NSIZES; i++) {
        char out[512];
        int rc = fsu_sh(out, sizeof out,
                        "cat %s/f%zu > %s/out && cmp %s/out %s/f%zu 2>&1",
                        m->mnt, i, m->dir, m->dir, m->backing, i);
        if (rc)
            printf("  f%zu (%zu bytes): %s\n", i, sizes[i], out);
        ASSERT_EQ(rc, 0);
    }
}

/* Mounts over the files of make_files and cats them all twice, the
 * kernel's copies dropped between when drop; the hits of the second
 * pass. */
static uint64_t cat_twice(struct fs_env *e, const char *const *extra, bool drop)
{
    up(e, NULL);
    make_files(&e->m);
    usleep(150 * 1000);
    fsu_mount_on(&e->m, &e->d, extra);
    cat_all(&e->m);
    ASSERT_GE(fsu_stat(&e->m, "puts"), 1 + 1 + 1 + 2 + 17 + 257);
    char p[256], name[32];
    for (size_t i = 0; drop && i < NSIZES; i++) {
        snprintf(name, sizeof name, "f%zu", i);
        fsu_drop(fsu_path(p, sizeof p, e->m.mnt, name));
    }
    uint64_t hits = fsu_stat(&e->m, "hits");
    cat_all(&e->m);
    return fsu_stat(&e->m, "hits") - hits;
}

TEST(fs_cat_reads_every_byte_then_from_tmem)
{
    struct fs_env e;
    /* the kernel's copies gone: the pages come from tmem */
    uint64_t got = cat_twice(&e, quick, true);
    printf("  %llu hits after the drop\n", (unsigned long long)got);
    ASSERT_GE(got, 1 + 1 + 1 + 2 + 17 + 257);
    /* and parallel readers */
    ASSERT_EQ(fsu_sh(NULL, 0,
                     "for i in 1 2 3 4; do (cat %s/f6 > %s/p$i) & "
                     "done; wait; for i in 1 2 3 4; do cmp %s/p$i "
                     "%s/f6 || exit 1; done",
                     e.m.mnt, e.m.dir, e.m.dir, e.m.backing),
              0);
    down(&e);
}

TEST(fs_direct_io_reads_hit_tmem)
{
    struct fs_env e;
    const char *const extra[] = {"--settle-ms", "100", "--direct-io", NULL};
    /* no kernel copy at all: every read is FUSE's */
    ASSERT_GE(cat_twice(&e, extra, false), 1 + 1 + 1 + 2 + 17 + 257);
    down(&e);
}

TEST(fs_cc_compiles_and_runs_through_the_mount)
{
    struct fs_env e;
    up(&e, NULL);
    char p[256], out[4096];
    FILE *f = fopen(fsu_path(p, sizeof p, e.m.backing, "k.h"), "w");
    fprintf(f, "#define K 6\nstatic inline int k(int x) { return x * K; }\n");
    fclose(f);
    f = fopen(fsu_path(p, sizeof p, e.m.backing, "main.c"), "w");
    fprintf(f, "#include <stdio.h>\n#include \"k.h\"\nint main(void) "
               "{ printf(\"%%d\\n\", k(7)); return 0; }\n");
    fclose(f);
    fsu_mount_on(&e.m, &e.d, quick);
    int rc = fsu_sh(out, sizeof out,
                    "cd %s && cc -O1 -o hello main.c 2>&1 "
                    "&& ./hello",
                    e.m.mnt);
    printf("  %s", out);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(out, "42\n");
    ASSERT_TRUE(fsu_same(fsu_path(p, sizeof p, e.m.mnt, "hello"),
                         fsu_path(out, sizeof out, e.m.backing, "hello")));
    /* the header changed from outside: the next build sees it */
    usleep(150 * 1000);
    f = fopen(fsu_path(p, sizeof p, e.m.backing, "k.h"), "w");
    fprintf(f, "#define K 7\nstatic inline int k(int x) { return x * K; }\n");
    fclose(f);
    ASSERT_EQ(fsu_sh(out, sizeof out,
                     "cd %s && cc -o hello main.c 2>&1 && "
                     "./hello",
                     e.m.mnt),
              0);
    ASSERT_STR_EQ(out, "49\n");
    down(&e);
}

TEST(fs_sqlite3_database_in_the_mount)
{
    struct fs_env e;
    up(&e, NULL);
    fsu_mount_on(&e.m, &e.d, quick);
    char out[4096];
    int rc = fsu_sh(out, sizeof out,
                    "sqlite3 %s/db.sqlite \"create table t(a integer primary "
                    "key, b text); with recursive c(i) as (select 1 union all "
                    "select i + 1 from c where i < 20000) insert into t "
                    "select i, hex(randomblob(40)) from c; update t set b = "
                    "'x' || b where a %% 7 = 0; delete from t where a %% 11 "
                    "= 0; pragma integrity_check; select count(*) from t;\" "
                    "2>&1",
                    e.m.mnt);
    printf("  %s", out);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(out, "ok\n18182\n");
    /* read back cold through the mount, and straight from the backing */
    char p[256];
    fsu_drop(fsu_path(p, sizeof p, e.m.mnt, "db.sqlite"));
    ASSERT_EQ(fsu_sh(out, sizeof out,
                     "sqlite3 %s/db.sqlite 'pragma "
                     "integrity_check; select sum(length(b)) from t;'",
                     e.m.mnt),
              0);
    char direct[4096];
    ASSERT_EQ(fsu_sh(direct, sizeof direct,
                     "sqlite3 %s/db.sqlite 'pragma "
                     "integrity_check; select sum(length(b)) from t;'",
                     e.m.backing),
              0);
    ASSERT_STR_EQ(out, direct);
    ASSERT_TRUE(
        fsu_same(p, fsu_path(out, sizeof out, e.m.backing, "db.sqlite")));
    down(&e);
}

/* Reads name through the mount (a fresh open, or fd held open) and
 * compares it with the backing file. */
static void check_same(const fsu_mount *m, const char *name, int held)
{
    char a[256], b[256];
    fsu_path(a, sizeof a, m->mnt, name);
    fsu_path(b, sizeof b, m->backing, name);
    size_t n;
    char *want = fsu_read_file(b, &n);
    if (held >= 0) {
        char *got = malloc(n + 4096);
        ssize_t r = pread(held, got, n + 4096, 0);
        ASSERT_EQ(r, (ssize_t)n);
        ASSERT_MEM_EQ(got, want, n);
        free(got);
    } else {
        ASSERT_TRUE(fsu_same(a, b));
    }
    free(want);
}

/* Rewrites the backing file: n bytes of seed; keep_mtime puts its old
 * mtime back (the ctime still moves). */
static void outside_write(const fsu_mount *m, const char *name, size_t n,
                          uint32_t seed, bool keep_mtime)
{
    char p[256];
    struct stat st;
    fsu_path(p, sizeof p, m->backing, name);
    ASSERT_EQ(stat(p, &st), 0);
    fsu_write_file(p, n, seed);
    if (keep_mtime) {
        struct timespec tv[2] = {st.st_atim, st.st_mtim};
        ASSERT_EQ(utimensat(AT_FDCWD, p, tv, 0), 0);
    }
}

TEST(fs_outside_writers_are_never_read_stale)
{
    struct fs_env e;
    up(&e, NULL);
    char p[256];
    fsu_write_file(fsu_path(p, sizeof p, e.m.backing, "w"), 50000, 1);
    usleep(150 * 1000);
    fsu_mount_on(&e.m, &e.d, quick);
    int held = open(fsu_path(p, sizeof p, e.m.mnt, "w"), O_RDONLY);
    ASSERT_TRUE(held >= 0);
    static const struct {
        size_t n;
        bool keep_mtime;
    } w[] = {{50000, false}, {90000, false}, {7000, false}, {7000, true}};
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) {
        check_same(&e.m, "w", -1);
        fsu_drop(p); /* the next read comes to tmemfs (and finds tmem) */
        check_same(&e.m, "w", -1);
        outside_write(&e.m, "w", w[i].n, 10 + (uint32_t)i, w[i].keep_mtime);
        check_same(&e.m, "w", -1);
        if (!w[i].keep_mtime) /* mtime or size moved: seen while open */
            check_same(&e.m, "w", held);
        usleep(150 * 1000);
    }
    close(held);
    ASSERT_GT(fsu_stat(&e.m, "hits"), 0);
    ASSERT_GT(fsu_stat(&e.m, "invalidations"), 0);
    down(&e);
}

TEST(fs_truncate_rename_unlink_through_the_mount)
{
    struct fs_env e;
    up(&e, NULL);
    char p[256], q[256];
    fsu_write_file(fsu_path(p, sizeof p, e.m.backing, "a"), 40000, 1);
    fsu_write_file(fsu_path(p, sizeof p, e.m.backing, "b"), 30000, 2);
    usleep(150 * 1000);
    fsu_mount_on(&e.m, &e.d, quick);
    const char *mnt = e.m.mnt;
    check_same(&e.m, "a", -1);
    check_same(&e.m, "b", -1);
    ASSERT_EQ(truncate(fsu_path(p, sizeof p, mnt, "a"), 5000), 0);
    check_same(&e.m, "a", -1);
    ASSERT_EQ(truncate(p, 20000), 0); /* grown: zeros past 5000 */
    check_same(&e.m, "a", -1);
    /* a over b: b reads as a did */
    ASSERT_EQ(rename(p, fsu_path(q, sizeof q, mnt, "b")), 0);
    check_same(&e.m, "b", -1);
    fsu_drop(q);
    check_same(&e.m, "b", -1);
    /* unlinked, made again with other bytes */
    ASSERT_EQ(unlink(q), 0);
    ASSERT_EQ(access(q, F_OK), -1);
    fsu_write_file(q, 30000, 3);
    check_same(&e.m, "b", -1);
    fsu_drop(q);
    check_same(&e.m, "b", -1);
    /* written in place through the mount (dd, no truncate) */
    ASSERT_EQ(fsu_sh(NULL, 0,
                     "dd if=/dev/zero of=%s bs=1000 seek=3 count=9 "
                     "conv=notrunc status=none",
                     q),
              0);
    check_same(&e.m, "b", -1);
    fsu_drop(q);
    check_same(&e.m, "b", -1);
    /* directories, symlinks, chmod, utimens, statfs pass through */
    ASSERT_EQ(fsu_sh(NULL, 0,
                     "cd %s && mkdir -p d/e && ln -s ../b d/l && "
                     "chmod 600 b && touch -d 2001-01-01 b && rmdir d/e && "
                     "cmp d/l b && df . > /dev/null && ls -l d | grep -q "
                     "'l -> ../b'",
                     mnt),
              0);
    struct stat st;
    ASSERT_EQ(stat(fsu_path(p, sizeof p, e.m.backing, "b"), &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(st.st_mtim.tv_sec, 978307200);
    down(&e);
}
