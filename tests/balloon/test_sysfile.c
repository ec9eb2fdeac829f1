/*
 * lib/common/sysfile.c, the one writer and reader of control files
 * (cgroup, sysfs, Xen trees): replaces content, reads it back, finds
 * "key value" lines, reports every failure as -errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <common/size.h>
#include <common/sysfile.h>

#include "../runner.h"
#include "test_files.h"

static int slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return (int)n;
}

TEST(sysfile_write_replaces_and_reports)
{
    char dir[] = "/tmp/tmem-sysfile-XXXXXX", path[128], buf[64];
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/memory.max", dir);
    tf_put(dir, "memory.max", "a much longer old value\n");

    ASSERT_EQ(tmem__write_text(dir, "memory.max", "4096\n"), 0);
    ASSERT_EQ(slurp(path, buf, sizeof buf), 5);
    ASSERT_EQ(strcmp(buf, "4096\n"), 0); /* replaced, not overwritten */
    ASSERT_EQ(tmem__write_text(path, NULL, "max\n"), 0); /* whole path */
    ASSERT_EQ(slurp(path, buf, sizeof buf), 4);
    ASSERT_EQ(strcmp(buf, "max\n"), 0);

    /* a control file that does not exist is not created */
    ASSERT_EQ(tmem__write_text(dir, "memory.high", "1\n"), -ENOENT);
    snprintf(path, sizeof path, "%s/memory.high", dir);
    ASSERT_EQ(access(path, F_OK), -1);
    ASSERT_EQ(tmem__write_text(dir, NULL, "1\n"), -EISDIR);
    /* a file the kernel refuses the value of */
    ASSERT_EQ(tmem__write_text("/proc/self", "oom_score_adj", "5000\n"),
              -EINVAL);
    /* a path that does not fit */
    char *big = malloc(PATH_MAX + 16);
    ASSERT_TRUE(big != NULL);
    memset(big, 'a', PATH_MAX + 15);
    big[PATH_MAX + 15] = '\0';
    ASSERT_EQ(tmem__write_text(dir, big, "1\n"), -ENAMETOOLONG);
    free(big);

    snprintf(path, sizeof path, "%s/memory.max", dir);
    unlink(path);
    rmdir(dir);
}

TEST(sysfile_read_text_field_and_number)
{
    char dir[] = "/tmp/tmem-sysfile-XXXXXX", buf[16];
    uint64_t v = 7;
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    static const char *files[] = {"memory.stat", "memory.max", "memory.current",
                                  "empty"};
    static const char *texts[] = {"cache 4096\nrss 8192\nrss_huge 0\n"
                                  "total_swap 12288\n",
                                  "max\n", "123456\n", ""};
    char path[128];
    for (int i = 0; i < 4; i++)
        tf_put(dir, files[i], texts[i]);

    /* read whole, or cut to the buffer, always NUL-terminated */
    ASSERT_EQ(tmem__read_text(dir, "memory.current", buf, sizeof buf), 7);
    ASSERT_EQ(strcmp(buf, "123456\n"), 0);
    ASSERT_EQ(tmem__read_text(dir, "memory.stat", buf, sizeof buf), 15);
    ASSERT_EQ(strlen(buf), 15);
    ASSERT_EQ(tmem__read_text(dir, "absent", buf, sizeof buf), -ENOENT);

    /* a key matches a whole name at a line's start */
    const char *st = texts[0];
    ASSERT_EQ(tmem__text_field(st, "rss", &v), 1);
    ASSERT_EQ(v, 8192);
    ASSERT_EQ(tmem__text_field(st, "rss_huge", &v), 1);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(tmem__text_field(st, "swap", &v), 0); /* only total_swap */
    ASSERT_EQ(tmem__text_field(st, "cach", &v), 0);
    ASSERT_EQ(tmem__text_field("", "rss", &v), 0);

    /* numbers: first line or a key; -1 for absent, empty and "max" */
    ASSERT_EQ(tmem__read_ll(dir, "memory.current", NULL), 123456);
    ASSERT_EQ(tmem__read_ll(dir, "memory.stat", "total_swap"), 12288);
    ASSERT_EQ(tmem__read_ll(dir, "memory.stat", "pgfault"), -1);
    ASSERT_EQ(tmem__read_ll(dir, "memory.max", NULL), -1);
    ASSERT_EQ(tmem__read_ll(dir, "empty", NULL), -1);
    ASSERT_EQ(tmem__read_ll(dir, "absent", NULL), -1);

    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Sizes as the command lines take them (tmemd --budget, tmem run). */
TEST(parse_size_units_and_refusals)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } cases[] = {
        {"0", 0, 0},
        {"4096", 0, 4096},
        {"64K", 0, 64ull << 10},
        {"64k", 0, 64ull << 10},
        {"512M", 0, 512ull << 20},
        {"2GiB", 0, 2ull << 30},
        {"3GB", 0, 3ull << 30},
        {"1T", 0, 1ull << 40},
        {"16777215T", 0, 16777215ull << 40},
        {"16777216T", -ERANGE, 0},
        {"99999999999999999999", -ERANGE, 0},
        {"", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"+5", -EINVAL, 0},
        {" 5", -EINVAL, 0},
        {"5 ", -EINVAL, 0},
        {"64X", -EINVAL, 0},
        {"64Mb", -EINVAL, 0},
        {"64MiBx", -EINVAL, 0},
        {"M", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t v = 12345;
        int rc = tmem__parse_size(cases[i].s, &v);
        if (rc != cases[i].rc)
            fprintf(stderr, "  \"%s\": rc %d\n", cases[i].s, rc);
        ASSERT_EQ(rc, cases[i].rc);
        ASSERT_EQ(v, cases[i].rc ? 12345 : cases[i].v);
    }
    ASSERT_EQ(tmem__parse_size(NULL, &(uint64_t){0}), -EINVAL);
}
