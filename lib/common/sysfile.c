#include "sysfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* dir/file (or dir) into path; -ENAMETOOLONG when it does not fit. */
static int path_of(char path[PATH_MAX], const char *dir, const char *file)
{
    int n = file ? snprintf(path, PATH_MAX, "%s/%s", dir, file)
                 : snprintf(path, PATH_MAX, "%s", dir);
    return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

int tmem__write_text(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX];
    int rc = path_of(path, dir, file);
    if (rc < 0)
        return rc;
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    rc = w < 0 ? -errno : (size_t)w != len ? -EIO : 0;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int tmem__read_text(const char *dir, const char *file, char *buf, size_t cap)
{
    char path[PATH_MAX];
    int rc = path_of(path, dir, file);
    if (rc < 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    if (n < 0)
        n = -errno;
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return (int)n;
}

int tmem__text_field(const char *text, const char *key, uint64_t *value)
{
    size_t k = strlen(key);

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, key, k) == 0 && p[k] == ' ') {
            *value = strtoull(p + k + 1, NULL, 10);
            return 1;
        }
    return 0;
}

long long tmem__read_ll(const char *dir, const char *file, const char *key)
{
    char buf[TMEM_SYSFILE_MAX];
    uint64_t v;

    if (tmem__read_text(dir, file, buf, sizeof buf) <= 0)
        return -1;
    if (key)
        return tmem__text_field(buf, key, &v) ? (long long)v : -1;
    return strncmp(buf, "max", 3) == 0 ? -1 : atoll(buf);
}
