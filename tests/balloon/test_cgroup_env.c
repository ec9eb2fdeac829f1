/*
 * Fixtures for the real cgroup tests (see test_cgroup_env.h).  The
 * guardian is a process of its own session (the runner kills the test's
 * process group when a test ends): it collects "what to undo" lines over a
 * pipe and, when the pipe closes (the test process is gone), kills the
 * cgroups' processes, removes the cgroups, turns the zram swap off, resets
 * and removes the device, and removes temporary files, in reverse order.
 */
#include "test_cgroup_env.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <common/zram.h>

#include "../runner.h"

#define V1_ROOT "/sys/fs/cgroup/memory"
#define V2_ROOT "/sys/fs/cgroup/unified"

static int guard_fd = -1;

void env_guard_note(const char *kind, const char *what)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s %s\n", kind, what);

    if (guard_fd >= 0 && write(guard_fd, line, (size_t)n) != n)
        perror("guardian");
}

static void kill_cgroup(const char *dir)
{
    char path[512];

    for (int round = 0; round < 50; round++) {
        FILE *f;
        int pid, any = 0;

        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        f = fopen(path, "r");
        if (!f)
            return;
        while (fscanf(f, "%d", &pid) == 1) {
            kill(pid, SIGKILL);
            any = 1;
        }
        fclose(f);
        if (!any && rmdir(dir) == 0)
            return;
        usleep(100000);
    }
}

static void undo(char *line)
{
    char *arg = strchr(line, ' ');

    if (!arg)
        return;
    *arg++ = '\0';
    arg[strcspn(arg, "\n")] = '\0';
    if (strcmp(line, "cg") == 0) {
        kill_cgroup(arg);
    } else if (strcmp(line, "zram") == 0) {
        tmem__zram_swap_remove(atoi(arg));
    } else if (strcmp(line, "file") == 0) {
        unlink(arg);
    }
}

static void guardian(int fd)
{
    static char buf[1 << 14];
    char *lines[128];
    size_t len = 0, n = 0;
    ssize_t r;

    setsid();
    signal(SIGALRM, SIG_IGN);
    alarm(0);
    while ((r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    for (char *p = strtok(buf, "\n"); p && n < 128; p = strtok(NULL, "\n"))
        lines[n++] = p;
    while (n > 0) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", lines[--n]);
        undo(tmp);
    }
    _exit(0);
}

int env_guard_start(void)
{
    int p[2];
    pid_t pid;

    if (guard_fd >= 0)
        return 0;
    if (pipe(p) < 0)
        return -errno;
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        close(p[1]);
        guardian(p[0]);
    }
    close(p[0]);
    guard_fd = p[1];
    fcntl(guard_fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

int env_zram_swap(unsigned size_mb)
{
    char id[16];
    int rc;

    env_guard_start();
    rc = tmem__zram_swap_add(size_mb, 100);
    if (rc == -ENOENT)
        TEST_SKIP("no /sys/class/zram-control/hot_add (zram module)");
    if (rc == -ENOEXEC)
        TEST_SKIP("mkswap failed");
    if (rc < 0)
        return rc;
    snprintf(id, sizeof id, "%d", rc);
    env_guard_note("zram", id);
    return rc;
}

bool env_v2_memory(char *root, size_t cap)
{
    char buf[256] = "";
    FILE *f = fopen(V2_ROOT "/cgroup.controllers", "r");

    snprintf(root, cap, "%s", V2_ROOT);
    if (!f)
        return false;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    fclose(f);
    return strstr(buf, "memory") != NULL;
}

int env_cgroup(int version, const char *name, char *path, size_t cap)
{
    const char *root = version == 2 ? V2_ROOT : V1_ROOT;

    env_guard_start();
    snprintf(path, cap, "%s/%s", root, name);
    kill_cgroup(path); /* a leftover of a killed run */
    if (version == 2)
        tmem__write_text(root, "cgroup.subtree_control", "+memory");
    if (mkdir(path, 0755) < 0)
        return -errno;
    env_guard_note("cg", path);
    return 0;
}

int env_cold_file(const char *path, unsigned mb)
{
    static char chunk[1 << 20];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0)
        return -errno;
    env_guard_start();
    env_guard_note("file", path);
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)(i * 131 + (i >> 12));
    for (unsigned i = 0; i < mb; i++)
        if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) {
            close(fd);
            return -EIO;
        }
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return 0;
}

pid_t env_balloon_run(const char *cg, const char *log, const char *sock,
                      const char *const *extra)
{
    const char *b = getenv("BUILD");
    const char *args[32] = {NULL, "balloon", "run", "--cgroup", cg,
                            "--interval", "1", "--json", "--control", sock};
    char bin[256];
    size_t n = 10;
    pid_t pid;

    snprintf(bin, sizeof bin, "%s/tmem", b ? b : "build");
    ASSERT_EQ(access(bin, X_OK), 0);
    args[0] = bin;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        args[n++] = extra[i];
    env_guard_start();
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)args);
        _exit(127);
    }
    env_guard_note("file", sock); /* the runner kills our process group */
    return pid;
}

/* ---- the tenant -------------------------------------------------------- */

#define T_MAX_REGIONS 16

struct region {
    uint64_t *p;
    size_t pages;
};

static uint64_t pattern(size_t r, size_t page, size_t i)
{
    uint64_t x = (r + 1) * 0x9e3779b97f4a7c15ull ^
                 (page * 0xbf58476d1ce4e5b9ull) ^ (i * 0x94d049bb133111ebull);
    x ^= x >> 31;
    return x * 0xd6e8feb86659fd39ull;
}

/* First 1 KiB of each page patterned, the rest zero: ~4x in zram. */
static void fill(struct region *g, size_t r)
{
    for (size_t pg = 0; pg < g->pages; pg++)
        for (size_t i = 0; i < 128; i++)
            g->p[pg * 512 + i] = pattern(r, pg, i);
}

static long check(struct region *g, size_t n)
{
    long bad = 0;

    for (size_t r = 0; r < n; r++)
        for (size_t pg = 0; pg < g[r].pages; pg++) {
            const uint64_t *w = g[r].p + pg * 512;
            int ok = 1;
            for (size_t i = 0; i < 512 && ok; i++)
                ok = w[i] == (i < 128 ? pattern(r, pg, i) : 0);
            bad += !ok;
        }
    return bad;
}

static long read_file_mb(const char *path)
{
    static char buf[1 << 20];
    long total = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    close(fd);
    return total >> 20;
}

static long tenant_do(char *line, struct region *g, size_t *n)
{
    unsigned long mb;
    char path[256];

    if (sscanf(line, "anon %lu", &mb) == 1) {
        if (*n == T_MAX_REGIONS)
            return -1;
        g[*n].pages = mb * 256;
        g[*n].p = mmap(NULL, mb << 20, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (g[*n].p == MAP_FAILED)
            return -1;
        madvise(g[*n].p, mb << 20, MADV_NOHUGEPAGE);
        fill(&g[*n], *n);
        (*n)++;
        return 0;
    }
    if (sscanf(line, "cache %255s", path) == 1)
        return read_file_mb(path);
    if (strncmp(line, "check", 5) == 0)
        return check(g, *n);
    if (strncmp(line, "pageout", 7) == 0) {
        for (size_t r = 0; r < *n; r++)
            madvise(g[r].p, g[r].pages * 4096, MADV_PAGEOUT);
        return 0;
    }
    return -1;
}

static void tenant_main(int cmd, int reply, const char *cgdir)
{
    static struct region g[T_MAX_REGIONS];
    char line[512], out[32], self[32];
    size_t n = 0;
    FILE *in = fdopen(cmd, "r");

    if (cgdir) {
        snprintf(self, sizeof self, "%d", (int)getpid());
        if (tmem__write_text(cgdir, "cgroup.procs", self) < 0)
            _exit(3);
    }
    alarm(0);
    while (in && fgets(line, sizeof line, in)) {
        long r;
        if (strncmp(line, "quit", 4) == 0)
            break;
        r = tenant_do(line, g, &n);
        int k = snprintf(out, sizeof out, "%ld\n", r);
        if (write(reply, out, (size_t)k) != k)
            break;
    }
    _exit(0);
}

int tenant_start(struct tenant *t, const char *cgdir)
{
    int c[2], r[2];

    if (pipe(c) < 0 || pipe(r) < 0)
        return -errno;
    t->pid = fork();
    if (t->pid < 0)
        return -errno;
    if (t->pid == 0) {
        close(c[1]);
        close(r[0]);
        if (guard_fd >= 0)
            close(guard_fd);
        tenant_main(c[0], r[1], cgdir);
    }
    close(c[0]);
    close(r[1]);
    t->cmd = c[1];
    t->reply = r[0];
    return 0;
}

long tenant_cmd(struct tenant *t, const char *cmd, int timeout_s)
{
    char buf[64];
    size_t len = 0;
    struct pollfd p = {t->reply, POLLIN, 0};

    if (write(t->cmd, cmd, strlen(cmd)) < 0 || write(t->cmd, "\n", 1) < 0)
        return -1;
    while (len < sizeof buf - 1) {
        if (poll(&p, 1, timeout_s * 1000) <= 0)
            return -1;
        ssize_t n = read(t->reply, buf + len, 1);
        if (n <= 0)
            return -1;
        if (buf[len++] == '\n')
            break;
    }
    buf[len] = '\0';
    return atol(buf);
}

bool tenant_alive(struct tenant *t)
{
    int st = 0;
    pid_t r = t->pid > 0 ? waitpid(t->pid, &st, WNOHANG) : -1;

    if (r == 0)
        return true;
    if (r == t->pid && WIFSIGNALED(st))
        printf("  tenant %d killed by signal %d\n", (int)t->pid,
               WTERMSIG(st));
    else if (r == t->pid)
        printf("  tenant %d exited %d\n", (int)t->pid, WEXITSTATUS(st));
    t->pid = r == t->pid ? 0 : t->pid;
    return false;
}

void tenant_stop(struct tenant *t)
{
    if (t->pid <= 0)
        return;
    if (write(t->cmd, "quit\n", 5) < 0)
        kill(t->pid, SIGKILL);
    close(t->cmd);
    close(t->reply);
    waitpid(t->pid, NULL, 0);
    t->pid = 0;
}
