/*
 * tmem fs when things are wrong: a backing directory that is absent, a
 * file, or not readable by the user; a mount point that is absent or
 * inside the backing directory; no daemon -- each one line and a
 * non-zero exit, nothing mounted.  A full or refusing store means misses,
 * never wrong bytes.  SIGTERM unmounts and prints the counters.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "fs_util.h"

/* Runs tmem fs with args (background: it must fail before detaching);
 * checks the exit status and that stderr has want. */
static void expect_error(const fsu_mount *m, int status, const char *want,
                         const char *args)
{
    char out[2048];
    int rc = fsu_sh(out, sizeof out, "%s fs %s 2>&1", fsu_tmem(), args);
    char *nl = strchr(out, '\n');
    bool one_line = nl && !nl[1];
    if (rc != status || !strstr(out, want) || (status == 1 && !one_line))
        printf("  tmem fs %s: exit %d: %s", args, rc, out);
    ASSERT_EQ(rc, status);
    ASSERT_TRUE(strstr(out, want) != NULL);
    ASSERT_TRUE(status != 1 || one_line); /* usage errors add the usage */
    ASSERT_TRUE(!fsu_mounted(m->mnt));
}

TEST(fs_bad_paths_and_no_daemon_are_one_line_errors)
{
    th_daemon d;
    fsu_mount m;
    fsu_setup(&d, &m, NULL);
    char args[1024], file[256];
    fsu_write_file(fsu_path(file, sizeof file, m.backing, "x"), 10, 1);
    snprintf(args, sizeof args, "--socket %s %s/none %s", d.sock, m.dir, m.mnt);
    expect_error(&m, 1, "No such file or directory", args);
    snprintf(args, sizeof args, "--socket %s %s %s", d.sock, file, m.mnt);
    expect_error(&m, 1, "not a directory", args);
    snprintf(args, sizeof args, "--socket %s %s %s/none", d.sock, m.backing,
             m.dir);
    expect_error(&m, 1, "mount point", args);
    snprintf(args, sizeof args, "--socket %s %s %s", d.sock, m.backing, file);
    expect_error(&m, 1, "not a directory", args);
    snprintf(args, sizeof args, "--socket %s %s %s", d.sock, m.dir, m.mnt);
    expect_error(&m, 1, "inside the backing directory", args);
    snprintf(args, sizeof args, "--socket %s/nosock %s %s", m.dir, m.backing,
             m.mnt);
    expect_error(&m, 1, "cannot reach tmemd", args);
    snprintf(args, sizeof args, "-f --socket %s/nosock %s %s", m.dir, m.backing,
             m.mnt);
    expect_error(&m, 1, "cannot reach tmemd", args);
    snprintf(args, sizeof args, "--socket %s %s", d.sock, m.backing);
    expect_error(&m, 2, "give BACKING_DIR and MOUNTPOINT", args);
    /* a directory the user may not read (tmem fs as nobody: root only) */
    char out[2048];
    if (geteuid() == 0) {
        ASSERT_EQ(chmod(m.backing, 0700), 0);
        snprintf(args, sizeof args, "--socket %s %s %s", d.sock, m.backing,
                 m.mnt);
        int rc = fsu_sh(out, sizeof out,
                        "setpriv --reuid=65534 --regid=65534 "
                        "--clear-groups %s fs %s 2>&1",
                        fsu_tmem(), args);
        printf("  as nobody: %s", out);
        ASSERT_EQ(rc, 1);
        ASSERT_TRUE(strstr(out, "Permission denied") != NULL);
    }
    /* its own --help, the same as tmem help fs, with no daemon */
    char out2[4096];
    ASSERT_EQ(fsu_sh(out, sizeof out, "%s --socket /nonexistent fs --help",
                     fsu_tmem()),
              0);
    ASSERT_EQ(fsu_sh(out2, sizeof out2, "%s help fs", fsu_tmem()), 0);
    ASSERT_EQ(strncmp(out, "usage: tmem fs", 14), 0);
    ASSERT_STR_EQ(out, out2);
    fsu_teardown(&d, &m);
}

/* Reads the big file through the mount twice, its kernel copy dropped
 * between: both times every byte right. */
static void read_twice(const fsu_mount *m)
{
    char a[256], b[256];
    for (int k = 0; k < 2; k++) {
        fsu_drop(fsu_path(a, sizeof a, m->mnt, "big"));
        ASSERT_TRUE(fsu_same(a, fsu_path(b, sizeof b, m->backing, "big")));
    }
}

TEST(fs_full_or_refusing_store_means_misses_not_wrong_bytes)
{
    th_daemon d;
    fsu_mount m;
    const char *const small[] = {"--budget", "4M", NULL};
    const char *const quick[] = {"--settle-ms", "100", NULL};
    fsu_setup(&d, &m, small);
    char p[256];
    fsu_write_file(fsu_path(p, sizeof p, m.backing, "big"), 32 << 20, 5);
    usleep(150 * 1000);
    fsu_mount_on(&m, &d, quick);
    read_twice(&m);
    uint64_t gets = fsu_stat(&m, "gets"), hits = fsu_stat(&m, "hits");
    printf("  4 MiB budget, 32 MiB file read twice: %llu gets, %llu hits, "
           "%llu put_errors\n",
           (unsigned long long)gets, (unsigned long long)hits,
           (unsigned long long)fsu_stat(&m, "put_errors"));
    ASSERT_LT(hits, 8192); /* most of it could not stay */
    /* a frozen client: every put refused, counted, reads still right */
    char out[1024];
    ASSERT_EQ(fsu_sh(out, sizeof out, "%s --socket %s freeze all 2>&1",
                     fsu_tmem(), d.sock),
              0);
    uint64_t errs = fsu_stat(&m, "put_errors");
    read_twice(&m);
    ASSERT_GT(fsu_stat(&m, "put_errors"), errs);
    fsu_teardown(&d, &m);
}

TEST(fs_sigterm_unmounts_and_prints_the_counters)
{
    th_daemon d;
    fsu_mount m;
    fsu_setup(&d, &m, NULL);
    char p[256], q[256];
    fsu_write_file(fsu_path(p, sizeof p, m.backing, "f"), 100000, 1);
    fsu_mount_on(&m, &d, NULL);
    ASSERT_TRUE(fsu_same(fsu_path(q, sizeof q, m.mnt, "f"), p));
    kill(m.pid, SIGTERM);
    ASSERT_EQ(th_wait(m.pid), 0);
    ASSERT_TRUE(!fsu_mounted(m.mnt));
    size_t n;
    char *log = fsu_read_file(m.log, &n);
    printf("  %s", log);
    ASSERT_TRUE(strstr(log, "unmounted: gets 25 hits 0 puts") != NULL);
    ASSERT_TRUE(strstr(log, "invalidations") != NULL);
    free(log);
    /* in the background: the command returns once mounted */
    char out[1024];
    ASSERT_EQ(fsu_sh(out, sizeof out, "%s fs --socket %s %s %s 2>&1",
                     fsu_tmem(), d.sock, m.backing, m.mnt),
              0);
    ASSERT_TRUE(fsu_mounted(m.mnt));
    ASSERT_TRUE(fsu_same(q, p));
    ASSERT_EQ(fsu_sh(NULL, 0, "fusermount3 -u %s", m.mnt), 0);
    ASSERT_TRUE(!fsu_mounted(m.mnt));
    fsu_teardown(&d, &m);
}
