/*
 * balloon_refault: runs one workload once in a fresh memory cgroup, with
 * or without `tmem balloon run`, and prints one line of what it cost:
 *
 *   NAME peak_MiB mean_MiB runtime_s read_MiB swap_MiB ooms refault_MiB exit
 *
 * peak and mean of the cgroup's usage (sampled every 100 ms), wall time,
 * bytes the workload read from storage (read_bytes of /proc/self/io: the
 * kernel adds a child's I/O to its parent's when the parent reaps it,
 * plus the growth of -p PID's read_bytes, e.g. a file server's), the
 * cgroup's peak swap, OOM kills, the pages it refaulted (file + anon, in
 * MiB), and the workload's exit ("ok" or what ended it).  Compiled and
 * run by bench/balloon_refault.sh (root, a v1 or v2 memory controller).
 *
 * Before the run the page cache of every file under -d DIR is dropped
 * (fsync + POSIX_FADV_DONTNEED, which leaves no shadow entries), so the
 * workload's first reads come from storage in every way.
 *
 * Usage: balloon_refault -n NAME -d DIR [-t TMEM [-s NAME=VALUE]...]
 *                        [-p PID] [-l LOGDIR] -- COMMAND [ARG]...
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <common/sysfile.h>

#define V1 "/sys/fs/cgroup/memory"
#define MIB (1024.0 * 1024.0)
#define MAX_SETS 16

struct opts {
    const char *name, *dir, *tmem, *logdir;
    const char *sets[MAX_SETS];
    int nsets;
    pid_t io_pid;
    char **cmd;
};

struct result {
    double peak, mean, runtime, read, swap, refault;
    long long ooms;
    int status;
};

static char cg[256], sock[128];
static int version = 1;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int drop_one(const char *path, const struct stat *st, int type,
                    struct FTW *ftw)
{
    int fd;

    (void)st;
    (void)ftw;
    if (type != FTW_F)
        return 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    return 0;
}

/* read_bytes of /proc/PID/io (0 = ourselves), or 0. */
static long long read_bytes(pid_t pid)
{
    char dir[64];
    long long v;

    if (pid > 0)
        snprintf(dir, sizeof dir, "/proc/%d", (int)pid);
    else
        snprintf(dir, sizeof dir, "/proc/self");
    v = tmem__read_ll(dir, "io", "read_bytes:");
    return v > 0 ? v : 0;
}

static long long stat_field(const char *key)
{
    char total[64];
    long long v;

    snprintf(total, sizeof total, "total_%s", key);
    v = version == 1 ? tmem__read_ll(cg, "memory.stat", total) : -1;
    if (v < 0)
        v = tmem__read_ll(cg, "memory.stat", key);
    return v > 0 ? v : 0;
}

static long long swap_now(void)
{
    if (version == 2)
        return tmem__read_ll(cg, "memory.swap.current", NULL);
    return stat_field("swap");
}

static pid_t start_controller(const struct opts *o)
{
    char *args[16 + 2 * MAX_SETS];
    char log[512];
    int n = 0;
    pid_t pid;

    args[n++] = (char *)o->tmem;
    args[n++] = "balloon";
    args[n++] = "run";
    args[n++] = "--cgroup";
    args[n++] = cg;
    args[n++] = "--interval";
    args[n++] = "1";
    args[n++] = "--json";
    args[n++] = "--control";
    args[n++] = sock;
    for (int i = 0; i < o->nsets; i++) {
        args[n++] = "--set";
        args[n++] = (char *)o->sets[i];
    }
    args[n] = NULL;
    snprintf(log, sizeof log, "%s/balloon-refault-%s.log",
             o->logdir ? o->logdir : "/tmp", o->name);
    pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(o->tmem, args);
        _exit(127);
    }
    return pid;
}

static pid_t start_workload(const struct opts *o)
{
    pid_t pid = fork();
    char self[32];

    if (pid == 0) {
        snprintf(self, sizeof self, "%d", (int)getpid());
        if (tmem__write_text(cg, "cgroup.procs", self) < 0)
            _exit(126);
        execvp(o->cmd[0], o->cmd);
        _exit(127);
    }
    return pid;
}

/* Samples the cgroup until the workload ends; with trace, one line per
 * sample: seconds, usage, anon, kernel, allowance, refaulted and
 * swapped MiB. */
static void watch(pid_t w, struct result *r, FILE *trace)
{
    const char *usage_f = version == 2 ? "memory.current"
                                       : "memory.usage_in_bytes";
    const char *limit_f = version == 2 ? "memory.high"
                                       : "memory.limit_in_bytes";
    double sum = 0, t0 = now_s();
    long n = 0;

    while (waitpid(w, &r->status, WNOHANG) == 0) {
        double u = (double)tmem__read_ll(cg, usage_f, NULL) / MIB;
        double s = (double)swap_now() / MIB;

        if (trace)
            fprintf(trace, "%.1f %.1f %.1f %.1f %.1f %.1f %.1f\n",
                    now_s() - t0, u,
                    (double)stat_field(version == 2 ? "anon" : "rss") / MIB,
                    (double)tmem__read_ll(cg, version == 2
                                                  ? "memory.stat"
                                                  : "memory.kmem.usage_in_bytes",
                                          version == 2 ? "kernel" : NULL) /
                        MIB,
                    (double)tmem__read_ll(cg, limit_f, NULL) / MIB,
                    (double)(stat_field("workingset_refault_file") +
                             stat_field("workingset_refault_anon")) *
                        4096 / MIB,
                    s);

        sum += u;
        n++;
        if (u > r->peak)
            r->peak = u;
        if (s > r->swap)
            r->swap = s;
        usleep(100000);
    }
    r->mean = n ? sum / (double)n : 0;
}

static int run(const struct opts *o, struct result *r)
{
    long long io0, iop0;
    pid_t w, c = -1;
    double t0;

    /* TMEM_REFAULT_CEILING_MB: a ceiling for the container, as an
     * administrator sets one (the same in every way): the controller then
     * starts from it and comes down instead of starting from the empty
     * tenant's usage (docs/balloon.md, "Refault-aware committed"). */
    const char *ceil_mb = getenv("TMEM_REFAULT_CEILING_MB");
    char ceiling[32] = "";
    if (ceil_mb && *ceil_mb) {
        char *end;
        unsigned long long mb = strtoull(ceil_mb, &end, 10);
        if (*end || mb == 0 || mb > (1ull << 30)) {
            fprintf(stderr, "balloon_refault: TMEM_REFAULT_CEILING_MB=%s: "
                            "give a whole number of MiB, 1..%llu\n",
                    ceil_mb, 1ull << 30);
            return -1;
        }
        snprintf(ceiling, sizeof ceiling, "%llu", mb << 20);
    }
    /* TMEM_REFAULT_TRACE=1: LOGDIR/balloon-refault-NAME.trace */
    FILE *trace = NULL;
    const char *tr = getenv("TMEM_REFAULT_TRACE");
    if (tr && strcmp(tr, "1") == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/balloon-refault-%s.trace",
                 o->logdir ? o->logdir : "/tmp", o->name);
        trace = fopen(path, "we");
        if (!trace) {
            perror(path);
            return -1;
        }
        fprintf(trace, "t usage_MiB rss_MiB kernel_MiB limit_MiB "
                       "refault_MiB swap_MiB\n");
    }
    nftw(o->dir, drop_one, 32, FTW_PHYS);
    if (mkdir(cg, 0755) < 0 && errno != EEXIST) {
        perror(cg);
        return -1;
    }
    if (ceiling[0] &&
        tmem__write_text(cg,
                         version == 1 ? "memory.limit_in_bytes" : "memory.max",
                         ceiling) < 0) {
        fprintf(stderr, "balloon_refault: cannot set %s's limit\n", cg);
        return -1;
    }
    if (o->tmem) {
        c = start_controller(o);
        usleep(300000);
    }
    io0 = read_bytes(0);
    iop0 = o->io_pid ? read_bytes(o->io_pid) : 0;
    t0 = now_s();
    w = start_workload(o);
    if (w < 0)
        return -1;
    watch(w, r, trace);
    if (trace)
        fclose(trace);
    r->runtime = now_s() - t0;
    r->read = (double)(read_bytes(0) - io0) / MIB;
    if (o->io_pid)
        r->read += (double)(read_bytes(o->io_pid) - iop0) / MIB;
    r->ooms = version == 2 ? tmem__read_ll(cg, "memory.events", "oom_kill")
                           : tmem__read_ll(cg, "memory.oom_control", "oom_kill");
    r->refault = (double)(stat_field("workingset_refault_file") +
                          stat_field("workingset_refault_anon")) * 4096 / MIB;
    if (c > 0) {
        kill(c, SIGTERM);
        waitpid(c, NULL, 0);
    }
    for (int i = 0; i < 50 && rmdir(cg) < 0 && errno == EBUSY; i++)
        usleep(100000);
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    int ch;

    memset(o, 0, sizeof *o);
    while ((ch = getopt(argc, argv, "n:d:t:s:p:l:")) != -1) {
        switch (ch) {
        case 'n': o->name = optarg; break;
        case 'd': o->dir = optarg; break;
        case 't': o->tmem = optarg; break;
        case 'p': o->io_pid = (pid_t)atoi(optarg); break;
        case 'l': o->logdir = optarg; break;
        case 's':
            if (o->nsets == MAX_SETS)
                return -1;
            o->sets[o->nsets++] = optarg;
            break;
        default: return -1;
        }
    }
    if (!o->name || !o->dir || optind >= argc)
        return -1;
    o->cmd = argv + optind;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct result r = {0};
    char how[32] = "ok";

    if (parse(argc, argv, &o) < 0 || geteuid() != 0) {
        fprintf(stderr, "usage (root): balloon_refault -n NAME -d DIR "
                        "[-t TMEM [-s NAME=VALUE]...] [-p PID] [-l LOGDIR] "
                        "-- COMMAND [ARG]...\n");
        return 2;
    }
    if (access(V1 "/memory.limit_in_bytes", F_OK) == 0) {
        snprintf(cg, sizeof cg, V1 "/tmemws-bench-%d", (int)getpid());
    } else {
        version = 2;
        snprintf(cg, sizeof cg, "/sys/fs/cgroup/tmemws-bench-%d",
                 (int)getpid());
    }
    snprintf(sock, sizeof sock, "/tmp/tmemws-bench-%d.sock", (int)getpid());
    if (run(&o, &r) < 0)
        return 1;
    if (WIFSIGNALED(r.status))
        snprintf(how, sizeof how, "signal-%d", WTERMSIG(r.status));
    else if (WEXITSTATUS(r.status) != 0)
        snprintf(how, sizeof how, "exit-%d", WEXITSTATUS(r.status));
    printf("%s %.1f %.1f %.2f %.1f %.1f %lld %.1f %s\n", o.name, r.peak,
           r.mean, r.runtime, r.read, r.swap, r.ooms, r.refault, how);
    return 0;
}
