#include "sysfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int tmem__write_text(const char *dir, const char *file, const char *text)
{
    char path[PATH_MAX];
    int n = file ? snprintf(path, sizeof path, "%s/%s", dir, file)
                 : snprintf(path, sizeof path, "%s", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int rc = w < 0 ? -errno : (size_t)w != len ? -EIO : 0;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}
