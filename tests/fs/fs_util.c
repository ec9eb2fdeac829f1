/*
 * The tmemfs suite's helpers (fs_util.h).  A mount left by a test that
 * died is undone by tmem fs itself (it gets SIGTERM with the test, and
 * unmounts); one left by a tmem fs that was killed outright is detached
 * at the next mount of the suite.
 */
#include "fs_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../runner.h"

#define FSU_PREFIX "/tmp/tmemfs-test-"

const char *fsu_tmem(void)
{
    static char prog[256];
    const char *b = getenv("BUILD");
    snprintf(prog, sizeof prog, "%s/tmem", b && *b ? b : "build");
    return prog;
}

void fsu_need_fuse(void)
{
    if (access("/dev/fuse", R_OK | W_OK) != 0)
        TEST_SKIP("/dev/fuse is absent or not usable: no FUSE here");
}

/* Detaches tmemfs mounts a killed tmem fs left under the suite's prefix. */
static void sweep_stale(void)
{
    FILE *f = fopen("/proc/mounts", "r");
    char src[256], dst[256], type[64];
    while (f && fscanf(f, "%255s %255s %63s %*[^\n]", src, dst, type) == 3)
        if (!strncmp(dst, FSU_PREFIX, strlen(FSU_PREFIX)) &&
            !strcmp(type, "fuse.tmemfs"))
            umount2(dst, MNT_DETACH);
    if (f)
        fclose(f);
}

void fsu_dirs(fsu_mount *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->dir, sizeof m->dir, FSU_PREFIX "XXXXXX");
    ASSERT_TRUE(mkdtemp(m->dir) != NULL);
    chmod(m->dir, 0755);
    snprintf(m->backing, sizeof m->backing, "%s/b", m->dir);
    snprintf(m->mnt, sizeof m->mnt, "%s/m", m->dir);
    snprintf(m->log, sizeof m->log, "%s/log", m->dir);
    ASSERT_EQ(mkdir(m->backing, 0755), 0);
    ASSERT_EQ(mkdir(m->mnt, 0755), 0);
}

void fsu_setup(th_daemon *d, fsu_mount *m, const char *const *tmemd_extra)
{
    fsu_need_fuse();
    th_start(d, tmemd_extra);
    fsu_dirs(m);
}

void fsu_teardown(th_daemon *d, fsu_mount *m)
{
    if (fsu_mounted(m->mnt))
        ASSERT_EQ(fsu_unmount(m), 0);
    fsu_sh(NULL, 0, "rm -rf %s", m->dir);
    th_stop(d);
}

bool fsu_mounted(const char *path)
{
    FILE *f = fopen("/proc/mounts", "r");
    char src[256], dst[256], type[64];
    bool yes = false;
    while (f && fscanf(f, "%255s %255s %63s %*[^\n]", src, dst, type) == 3)
        yes |= !strcmp(dst, path) && !strcmp(type, "fuse.tmemfs");
    if (f)
        fclose(f);
    return yes;
}

static void exec_fs(const fsu_mount *m, const th_daemon *d,
                    const char *const *extra)
{
    const char *argv[24] = {fsu_tmem(), "fs", "-f"};
    int n = 3;
    if (d) {
        argv[n++] = "--socket";
        argv[n++] = d->sock;
    } else {
        argv[n++] = "--embedded";
    }
    for (int i = 0; extra && extra[i] && n < 20; i++)
        argv[n++] = extra[i];
    argv[n++] = m->backing;
    argv[n++] = m->mnt;
    argv[n] = NULL;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = open(m->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0)
        dup2(fd, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

void fsu_mount_on(fsu_mount *m, const th_daemon *d, const char *const *extra)
{
    sweep_stale();
    fflush(stdout);
    m->pid = fork();
    ASSERT_TRUE(m->pid >= 0);
    if (m->pid == 0)
        exec_fs(m, d, extra);
    for (int i = 0; i < 1000; i++) {
        if (fsu_mounted(m->mnt))
            return;
        int st;
        if (waitpid(m->pid, &st, WNOHANG) == m->pid)
            break;
        usleep(10000);
    }
    char log[1024] = "";
    FILE *f = fopen(m->log, "r");
    size_t k = f ? fread(log, 1, sizeof log - 1, f) : 0;
    log[k] = 0;
    if (f)
        fclose(f);
    tmem_test_fail(__FILE__, __LINE__, "tmem fs did not mount: %s", log);
}

int fsu_unmount(fsu_mount *m)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "fusermount3 -u %s 2>/dev/null", m->mnt);
    if (system(cmd) != 0)
        kill(m->pid, SIGTERM);
    int rc = th_wait(m->pid);
    ASSERT_TRUE(!fsu_mounted(m->mnt));
    return rc;
}

uint64_t fsu_stat(const fsu_mount *m, const char *name)
{
    char buf[1024];
    ssize_t n = getxattr(m->mnt, "user.tmemfs.stats", buf, sizeof buf - 1);
    ASSERT_GT(n, 0);
    buf[n] = 0;
    size_t len = strlen(name);
    for (char *p = buf; *p;) {
        if (!strncmp(p, name, len) && p[len] == ' ')
            return strtoull(p + len + 1, NULL, 10);
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    tmem_test_fail(__FILE__, __LINE__, "no counter %s in %s", name, buf);
}

const char *fsu_path(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

void fsu_write_file(const char *path, size_t n, uint32_t seed)
{
    char *b = malloc(n ? n : 1);
    ASSERT_TRUE(b != NULL);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* half text-like, half noise: pages that compress somewhat */
        b[i] = (i / 512) % 2 ? (char)x : (char)('a' + x % 26);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(write(fd, b, n), (ssize_t)n);
    close(fd);
    free(b);
}

char *fsu_read_file(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(fstat(fd, &st), 0);
    char *b = malloc((size_t)st.st_size + 1);
    ASSERT_TRUE(b != NULL);
    size_t got = 0;
    for (ssize_t r; (r = read(fd, b + got, (size_t)st.st_size + 1 - got)) > 0;)
        got += (size_t)r;
    close(fd);
    b[got < (size_t)st.st_size ? got : (size_t)st.st_size] = 0;
    *n = got;
    return b;
}

bool fsu_same(const char *a, const char *b)
{
    size_t na, nb;
    char *x = fsu_read_file(a, &na), *y = fsu_read_file(b, &nb);
    bool same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

void fsu_drop(const char *path)
{
    int fd = open(path, O_RDONLY);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
}

int fsu_sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    ASSERT_TRUE(p != NULL);
    char sink[4096];
    size_t k = 0;
    for (size_t r; (r = fread(out ? out + k : sink, 1,
                              out ? cap - 1 - k : sizeof sink, p)) > 0;)
        k += out ? r : 0;
    if (out)
        out[k] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
