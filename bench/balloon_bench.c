/*
 * balloon_bench: a tenant workload that grows and shrinks, run in a real
 * memory cgroup three times in one run - without a controller, with
 * `tmem balloon run` (PSI guard on), and with the guard off - and the
 * tenant's peak and mean memory (memory.usage_in_bytes sampled every
 * 100 ms), runtime and OOM kills side by side.  Compiled and run by
 * bench/balloon.sh (needs root, a v1 or v2 memory controller and zram).
 *
 * The workload, per cycle (CYCLES times): stream a cold file of FILE_MB
 * once (page cache it never reads again: logs, a backup), allocate
 * ANON_MB of anonymous memory and work on it (PASSES read-modify-write
 * passes), free it, then idle CALM_MS holding BASE_MB.  Every cycle reads
 * a different file, so without a controller the cache piles up.
 *
 * Own zram swap device (hot_add, lz4, priority 100), removed at the end.
 * Usage: balloon_bench TMEM_BINARY [controller options...]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <common/sysfile.h>
#include <common/zram.h>

#define CYCLES 3
#define FILE_MB 300
#define ANON_MB 256
#define BASE_MB 32
#define PASSES 40
#define CALM_MS 2500
#define V1 "/sys/fs/cgroup/memory"
#define MIB (1ll << 20)

static char cg[256], files[CYCLES][128];
static const char *tmem;
static int version = 1;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the workload ---- */

static void stream(const char *path)
{
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY);

    while (fd >= 0 && read(fd, buf, sizeof buf) > 0)
        ;
    if (fd >= 0)
        close(fd);
}

static void work(void)
{
    size_t base_n = (size_t)BASE_MB << 20, n = (size_t)ANON_MB << 20;
    uint64_t *base = mmap(NULL, base_n, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t sum = 0;

    memset(base, 1, base_n);
    for (int c = 0; c < CYCLES; c++) {
        stream(files[c]);
        uint64_t *a = mmap(NULL, n, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (a == MAP_FAILED)
            _exit(2);
        for (int p = 0; p < PASSES; p++)
            for (size_t i = 0; i < n / 8; i += 8) {
                a[i] = a[i] * 31 + i + (uint64_t)p;
                sum += a[i];
            }
        munmap(a, n);
        usleep(CALM_MS * 1000);
    }
    _exit(sum == 42 ? 3 : 0);
}

/* ---- setup ---- */

static void make_files(void)
{
    static char chunk[1 << 20];

    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)(i * 7 + (i >> 10));
    for (int c = 0; c < CYCLES; c++) {
        snprintf(files[c], sizeof files[c], "/var/tmp/tmem-bench-%d-%d",
                 (int)getpid(), c);
        int fd = open(files[c], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        for (int m = 0; fd >= 0 && m < FILE_MB; m++)
            if (write(fd, chunk, sizeof chunk) < 0)
                break;
        if (fd >= 0) {
            fdatasync(fd);
            close(fd);
        }
    }
}

static void drop_files(void)
{
    for (int c = 0; c < CYCLES; c++) {
        int fd = open(files[c], O_RDONLY);
        if (fd >= 0) {
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
}

static void cg_remove(void)
{
    for (int i = 0; i < 50 && rmdir(cg) < 0 && errno == EBUSY; i++)
        usleep(100000);
}

/* ---- one mode ---- */

struct result {
    const char *name;
    double peak, mean, runtime, swap_peak;
    long long ooms;
    int exit_ok;
};

static pid_t start_controller(int no_psi, int argc, char **argv)
{
    char *args[64];
    int n = 0;
    pid_t pid;

    args[n++] = (char *)tmem;
    args[n++] = "balloon";
    args[n++] = "run";
    args[n++] = "--cgroup";
    args[n++] = cg;
    args[n++] = "--control";
    args[n++] = "/tmp/tmem-bench.sock";
    for (int i = 0; i < argc && n < 60; i++)
        args[n++] = argv[i];
    if (no_psi)
        args[n++] = "--no-psi";
    args[n] = NULL;
    pid = fork();
    if (pid == 0) {
        const char *dir = getenv("BALLOON_BENCH_LOGS");
        char log[512];
        snprintf(log, sizeof log, "%s/balloon-%s.log", dir ? dir : "/tmp",
                 no_psi ? "nopsi" : "psi");
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(tmem, args);
        _exit(127);
    }
    return pid;
}

static int run_mode(struct result *r, int ctl, int no_psi, int argc,
                    char **argv)
{
    char self[32];
    pid_t w, c = -1;
    int st = 0;
    long n = 0;
    double sum = 0, t0;

    const char *usage_f = version == 2 ? "memory.current"
                                       : "memory.usage_in_bytes";
    drop_files();
    if (mkdir(cg, 0755) < 0 && errno != EEXIST)
        return -1;
    if (ctl) {
        c = start_controller(no_psi, argc, argv);
        usleep(300000);
    }
    t0 = now_s();
    w = fork();
    if (w == 0) {
        snprintf(self, sizeof self, "%d", (int)getpid());
        if (tmem__write_text(cg, "cgroup.procs", self) < 0)
            _exit(4);
        work();
    }
    memset(r, 0, sizeof *r);
    while (waitpid(w, &st, WNOHANG) == 0) {
        double u = (double)tmem__read_ll(cg, usage_f, NULL) / MIB;
        double s = (double)(version == 2
                                ? tmem__read_ll(cg, "memory.swap.current", NULL)
                                : tmem__read_ll(cg, "memory.stat", "total_swap")) / MIB;
        sum += u;
        n++;
        if (u > r->peak)
            r->peak = u;
        if (s > r->swap_peak)
            r->swap_peak = s;
        usleep(100000);
    }
    r->runtime = now_s() - t0;
    r->mean = n ? sum / (double)n : 0;
    r->ooms = version == 2 ? tmem__read_ll(cg, "memory.events", "oom_kill")
                           : tmem__read_ll(cg, "memory.oom_control", "oom_kill");
    r->exit_ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (c > 0) {
        kill(c, SIGTERM);
        waitpid(c, NULL, 0);
    }
    cg_remove();
    return 0;
}

int main(int argc, char **argv)
{
    struct result res[3];
    const char *names[3] = {"no controller", "controller + PSI guard",
                            "controller, guard off"};
    int rc = 0;

    if (argc < 2 || geteuid() != 0) {
        fprintf(stderr, "usage (root): balloon_bench TMEM [options...]\n");
        return 2;
    }
    tmem = argv[1];
    if (access(V1 "/memory.limit_in_bytes", F_OK) == 0) {
        snprintf(cg, sizeof cg, V1 "/tmem-bench-%d", (int)getpid());
    } else {
        version = 2;
        snprintf(cg, sizeof cg, "/sys/fs/cgroup/tmem-bench-%d",
                 (int)getpid());
    }
    int zram = tmem__zram_swap_add(2048, 100);
    if (zram < 0) {
        fprintf(stderr, "balloon_bench: zram swap setup failed: %s\n",
                strerror(-zram));
        return 1;
    }
    make_files();
    for (int m = 0; m < 3; m++) {
        run_mode(&res[m], m > 0, m == 2, argc - 2, argv + 2);
        res[m].name = names[m];
    }
    for (int c = 0; c < CYCLES; c++)
        unlink(files[c]);
    tmem__zram_swap_remove(zram);
    printf("%-24s %9s %9s %9s %9s %5s %5s\n", "mode", "peak MiB",
           "mean MiB", "runtime s", "swap MiB", "OOMs", "exit");
    for (int m = 0; m < 3; m++)
        printf("%-24s %9.0f %9.0f %9.2f %9.0f %5lld %5s\n", res[m].name,
               res[m].peak, res[m].mean, res[m].runtime, res[m].swap_peak,
               res[m].ooms, res[m].exit_ok ? "ok" : "KILL");
    double saved = 1.0 - res[1].mean / res[0].mean;
    double slow = res[1].runtime / res[0].runtime - 1.0;
    printf("mean memory with the controller: %.0f%% lower (target >= 30%%)"
           " %s\n", saved * 100, saved >= 0.30 ? "MET" : "MISSED");
    printf("runtime with the controller: %+.1f%% (target within 10%%) %s\n",
           slow * 100, slow <= 0.10 ? "MET" : "MISSED");
    printf("OOM kills with the guard on: %lld (target 0) %s\n", res[1].ooms,
           res[1].ooms == 0 && res[1].exit_ok ? "MET" : "MISSED");
    if (saved < 0.30 || slow > 0.10 || res[1].ooms != 0 || !res[1].exit_ok)
        rc = 1;
    return rc;
}
