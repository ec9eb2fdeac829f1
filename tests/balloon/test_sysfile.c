/*
 * tmem__write_text, the one writer of control files (cgroup, sysfs, Xen
 * trees): replaces the content, reports every failure as -errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <common/sysfile.h>

#include "../runner.h"

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
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(write(fd, "a much longer old value\n", 24), 24);
    close(fd);

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
