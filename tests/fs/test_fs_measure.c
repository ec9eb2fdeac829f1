/*
 * Read throughput of a file set, in one run: through tmemfs with the
 * kernel's copy dropped but the pages in tmem, against the backing files
 * read cold (from the disk) and warm, and tmemfs with the kernel's cache
 * warm.  Printed for docs/tmemfs.md; asserted only that every byte is
 * right and that the cold-kernel pass came from tmem.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../runner.h"
#include "fs_util.h"

#define NFILES 16
#define FILE_MB 4

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Reads every file of dir (128 KiB reads), the kernel's copy of each
 * dropped first when cold; MB/s.  sum: a checksum of the bytes. */
static double read_set(const char *dir, bool cold, uint64_t *sum)
{
    static char buf[128 << 10];
    char p[256], name[32];
    size_t total = 0;
    *sum = 0;
    if (cold) {
        for (int i = 0; i < NFILES; i++) {
            snprintf(name, sizeof name, "s%d", i);
            fsu_drop(fsu_path(p, sizeof p, dir, name));
        }
    }
    double t0 = now_s();
    for (int i = 0; i < NFILES; i++) {
        snprintf(name, sizeof name, "s%d", i);
        int fd = open(fsu_path(p, sizeof p, dir, name), O_RDONLY);
        ASSERT_TRUE(fd >= 0);
        for (ssize_t r; (r = read(fd, buf, sizeof buf)) > 0;) {
            total += (size_t)r;
            for (ssize_t k = 0; k < r; k += 512)
                *sum = *sum * 31 + (unsigned char)buf[k];
        }
        close(fd);
    }
    double dt = now_s() - t0;
    ASSERT_EQ(total, (size_t)NFILES * FILE_MB << 20);
    return (double)total / (1 << 20) / dt;
}

TEST(fs_measure_read_throughput)
{
    th_daemon d;
    fsu_mount m;
    const char *const budget[] = {"--budget", "1G", NULL};
    const char *const quick[] = {"--settle-ms", "100", NULL};
    fsu_setup(&d, &m, budget);
    char p[256], name[32];
    for (int i = 0; i < NFILES; i++) {
        snprintf(name, sizeof name, "s%d", i);
        fsu_write_file(fsu_path(p, sizeof p, m.backing, name),
                       (size_t)FILE_MB << 20, 100 + (uint32_t)i);
    }
    sync(); /* clean pages: DONTNEED drops them */
    usleep(150 * 1000);
    fsu_mount_on(&m, &d, quick);
    uint64_t want, got;
    double disk = read_set(m.backing, true, &want);
    double first = read_set(m.mnt, true, &got); /* backing cold too */
    ASSERT_EQ(got, want);
    read_set(m.backing, true, &got); /* the backing's copy dropped */
    uint64_t hits = fsu_stat(&m, "hits");
    double tmem = read_set(m.mnt, true, &got);
    ASSERT_EQ(got, want);
    uint64_t tmem_hits = fsu_stat(&m, "hits") - hits;
    double warm = read_set(m.mnt, false, &got);
    ASSERT_EQ(got, want);
    double backing_warm = read_set(m.backing, false, &got);
    printf("  %d x %d MiB, MB/s: backing cold %.0f, tmemfs first read "
           "(disk) %.0f, tmemfs kernel-cold tmem-warm %.0f (%llu hits), "
           "tmemfs kernel-warm %.0f, backing warm %.0f\n",
           NFILES, FILE_MB, disk, first, tmem, (unsigned long long)tmem_hits,
           warm, backing_warm);
    ASSERT_GE(tmem_hits, (uint64_t)NFILES * FILE_MB * 256 * 9 / 10);
    fsu_teardown(&d, &m);
}
