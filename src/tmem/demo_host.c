/*
 * tmem demo: what it creates on the host and measures there: memory
 * cgroups (v1 or v2), a zram swap device, processes in cgroups, bytes a
 * process read from storage.  Everything made here is removed by the
 * caller's cleanup (cmd_demo.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/sysfile.h"
#include "common/zram.h"
#include "demo.h"

#define CG1 "/sys/fs/cgroup/memory"
#define CG2 "/sys/fs/cgroup"

int demo_cg_init(struct demo *d)
{
    struct stat st;

    if (stat(CG1 "/memory.limit_in_bytes", &st) == 0) {
        d->cgv = 1;
        snprintf(d->cgroot, sizeof d->cgroot, CG1 "/tmem-demo-%d",
                 (int)getpid());
    } else {
        char ctl[256] = "";
        if (tmem__read_text(CG2, "cgroup.controllers", ctl, sizeof ctl) < 0 ||
            !strstr(ctl, "memory")) {
            fprintf(stderr, "tmem demo: no memory cgroup controller "
                            "(neither v1 at " CG1 " nor v2 at " CG2 ")\n");
            return -1;
        }
        d->cgv = 2;
        tmem__write_text(CG2, "cgroup.subtree_control", "+memory");
        snprintf(d->cgroot, sizeof d->cgroot, CG2 "/tmem-demo-%d",
                 (int)getpid());
    }
    if (mkdir(d->cgroot, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "tmem demo: cannot create %s: %s\n", d->cgroot,
                strerror(errno));
        return -1;
    }
    if (d->cgv == 2)
        tmem__write_text(d->cgroot, "cgroup.subtree_control", "+memory");
    return 0;
}

int demo_cg_limit(const struct demo *d, const char *cg, unsigned mb)
{
    char v[32];

    if (mb == 0)
        snprintf(v, sizeof v, d->cgv == 1 ? "-1" : "max");
    else
        snprintf(v, sizeof v, "%llu", (unsigned long long)mb << 20);
    return tmem__write_text(cg,
                            d->cgv == 1 ? "memory.limit_in_bytes" : "memory.max",
                            v);
}

int demo_cg_make(struct demo *d, const char *name, unsigned limit_mb,
                 char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", d->cgroot, name);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "tmem demo: cannot create %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    if (demo_cg_limit(d, path, limit_mb) < 0) {
        fprintf(stderr, "tmem demo: cannot set the memory limit of %s\n",
                path);
        return -1;
    }
    return 0;
}

int demo_cg_join(const char *cg, pid_t pid)
{
    char v[24];
    snprintf(v, sizeof v, "%d", (int)pid);
    return tmem__write_text(cg, "cgroup.procs", v);
}

double demo_cg_mem(const struct demo *d, const char *cg)
{
    char buf[64];
    if (tmem__read_text(cg,
                        d->cgv == 1 ? "memory.usage_in_bytes"
                                    : "memory.current",
                        buf, sizeof buf) < 0)
        return 0;
    return strtod(buf, NULL);
}

uint64_t demo_cg_ooms(const struct demo *d, const char *cg)
{
    long long n = tmem__read_ll(cg,
                                d->cgv == 1 ? "memory.oom_control"
                                            : "memory.events",
                                "oom_kill");
    return n > 0 ? (uint64_t)n : 0;
}

/* Moves every process left in cg to its parent, then removes it. */
void demo_cg_remove(const char *cg)
{
    char parent[300], procs[8192];
    const char *slash = strrchr(cg, '/');

    if (!slash || access(cg, F_OK) != 0)
        return;
    snprintf(parent, sizeof parent, "%.*s", (int)(slash - cg), cg);
    for (int tries = 0; tries < 50 && rmdir(cg) < 0 && errno == EBUSY;
         tries++) {
        if (tmem__read_text(cg, "cgroup.procs", procs, sizeof procs) > 0) {
            char *save = NULL;
            for (char *p = strtok_r(procs, "\n", &save); p;
                 p = strtok_r(NULL, "\n", &save))
                tmem__write_text(parent, "cgroup.procs", p);
        }
        usleep(20000);
    }
}

int demo_zram_on(struct demo *d)
{
    int id = tmem__zram_swap_add(d->z.zram_mb, 100);

    if (id < 0) {
        fprintf(stderr, "tmem demo: %s: %s\n",
                id == -ENOENT ? "no zram (/sys/class/zram-control; modprobe zram)"
                              : "cannot make a zram swap device",
                id == -ENOEXEC ? "mkswap failed" : strerror(-id));
        return -1;
    }
    d->zram = id;
    return 0;
}

void demo_zram_off(struct demo *d)
{
    int rc = tmem__zram_swap_remove(d->zram);

    if (rc < 0)
        fprintf(stderr, "tmem demo: removing zram%d: %s\n", d->zram,
                strerror(-rc));
    d->zram = -1;
}

/* Field k (0-based) of the zram device's mm_stat, in bytes. */
static double zram_field(const struct demo *d, int k)
{
    char sys[64], buf[256];
    double v = 0;

    if (d->zram < 0)
        return 0;
    snprintf(sys, sizeof sys, "/sys/block/zram%d", d->zram);
    if (tmem__read_text(sys, "mm_stat", buf, sizeof buf) < 0)
        return 0;
    char *p = buf;
    for (int i = 0; i <= k; i++)
        v = strtod(p, &p);
    return v;
}

/* mem_used_total: the memory zram takes; orig_data_size: what it holds. */
double demo_zram_mem(const struct demo *d) { return zram_field(d, 2); }
double demo_zram_orig(const struct demo *d) { return zram_field(d, 0); }

uint64_t demo_proc_read_bytes(pid_t pid)
{
    char dir[32];
    long long v;

    snprintf(dir, sizeof dir, "/proc/%d", (int)pid);
    v = tmem__read_ll(dir, "io", "read_bytes:");
    return v > 0 ? (uint64_t)v : 0;
}

/* Writes back and drops a file's pages from the kernel's page cache, so
 * the next phase reads it from storage as the first did. */
void demo_drop_file_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

pid_t demo_spawn(const char *cg, char *const argv[], int *out_fd,
                 const char *log)
{
    int p[2] = {-1, -1};
    pid_t pid;

    if (out_fd && pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        if (out_fd) {
            close(p[0]);
            close(p[1]);
        }
        return -1;
    }
    if (pid == 0) {
        int lf = open(log ? log : "/dev/null",
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        setpgid(0, 0);
        if (cg && demo_cg_join(cg, getpid()) < 0)
            _exit(126);
        if (out_fd)
            dup2(p[1], 1);
        else if (lf >= 0)
            dup2(lf, 1);
        if (lf >= 0)
            dup2(lf, 2);
        execvp(argv[0], argv);
        fprintf(stderr, "tmem demo: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    if (out_fd) {
        close(p[1]);
        *out_fd = p[0];
        fcntl(p[0], F_SETFL, O_NONBLOCK);
    }
    return pid;
}

int demo_wait_exit(pid_t pid, unsigned wait_ms)
{
    int st;
    for (unsigned i = 0; i <= wait_ms / 10; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return -1;
        usleep(10000);
    }
    return -1;
}

/* Sends sig to the process group of pid, waits up to wait_ms, then
 * SIGKILL. */
void demo_stop(pid_t pid, int sig, unsigned wait_ms)
{
    if (pid <= 0)
        return;
    kill(-pid, sig);
    kill(pid, sig);
    if (demo_wait_exit(pid, wait_ms) == -1) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        demo_wait_exit(pid, 2000);
    }
}
