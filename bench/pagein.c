/*
 * pagein: the page-in latency of a tswap region against the kernel's own
 * swap-in from zram, measured in the same run on the same pages
 * (bench/pagein.sh builds and runs it; docs/tswap.md quotes it).
 *
 * The pages are the corpus's (lib/common/corpus.h), the first --pages of
 * them.  Each measurement puts every page out, then touches them once each
 * in one random order (the same for all), timing each touch with
 * clock_gettime around the access, and checks every byte after:
 *   tswap, embedded store      TMEM_EMBEDDED=1, readahead off
 *   tswap, through tmemd       a tmemd of our own on a temporary socket
 *   kernel swap-in from zram   as root: a zram device of our own
 *       (hot_add, lz4), mkswap, swapon at the highest priority,
 *       vm.page-cluster 0 (no swap read-ahead), MADV_PAGEOUT, touch;
 *       then swapoff, hot_remove and page-cluster restored, whatever
 *       happened (the measurement runs in a child; the parent undoes).
 * Latencies are reported over the pages that are not all zeros (a zero
 * page needs no decompression on either side) and over all pages;
 * eviction throughput is tswap's put-out rate (pages per second of
 * synchronous passes).
 *
 * Usage: pagein [--corpus FILE] [--pages N] [--tmemd PATH]
 * Prints one JSON object.  Exit 1 when a page came back wrong or a
 * measurement could not run (the kernel's is "skipped" with a reason
 * instead when not root or without zram).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tmem/client.h>

#include "common/corpus.h"
#include "common/sysfile.h"
#include "tswap/tswap.h"

#define PAGE 4096
#define TARGET_RATIO 1.5

struct lat {
    double p50, p99, all_p50, all_p99; /* microseconds */
    double evict_pps;                  /* tswap only */
    double moved;                      /* share of page-ins moving a frame */
};

static const unsigned char *pages; /* the corpus pages used */
static size_t npages;
static size_t *order; /* the touch order */
static bool *nonzero; /* per page */

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double quantile_us(uint64_t *ns, size_t n, double q)
{
    if (!n)
        return 0;
    qsort(ns, n, sizeof ns[0], cmp_u64);
    return ns[(size_t)(q * (double)(n - 1) + 0.5)] / 1000.0;
}

/* Touches every page of region r in `order`, timing each; fills lat's
 * quantiles.  Returns the number of pages that came back wrong. */
static size_t touch_all(volatile const char *r, struct lat *l)
{
    uint64_t *all = calloc(npages, sizeof *all);
    uint64_t *nz = calloc(npages, sizeof *nz);
    size_t k = 0, wrong = 0;
    /* Every measurement touches from the same CPU (the others' threads
     * and daemon keep theirs): the figures compare paths, not CPUs. */
    cpu_set_t was, one;
    sched_getaffinity(0, sizeof was, &was);
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof one, &one);
    for (size_t j = 0; j < npages; j++) {
        size_t i = order[j];
        uint64_t a = now_ns();
        (void)r[i * PAGE];
        uint64_t d = now_ns() - a;
        all[j] = d;
        if (nonzero[i])
            nz[k++] = d;
    }
    sched_setaffinity(0, sizeof was, &was);
    for (size_t i = 0; i < npages; i++)
        wrong +=
            memcmp((const char *)r + i * PAGE, pages + i * PAGE, PAGE) != 0;
    l->p50 = quantile_us(nz, k, 0.50);
    l->p99 = quantile_us(nz, k, 0.99);
    l->all_p50 = quantile_us(all, npages, 0.50);
    l->all_p99 = quantile_us(all, npages, 0.99);
    free(all);
    free(nz);
    return wrong;
}

/* ---- tswap --------------------------------------------------------------- */

static int measure_tswap(tmem_conn *c, struct lat *l)
{
    tmem_tswap_config cfg;
    tmem_tswap *t;
    char *r;
    tmem_tswap_config_init(&cfg);
    cfg.readahead = 0; /* one page per fault, as page-cluster 0 */
    int rc = tmem_tswap_create(c, &cfg, &t);
    if (rc < 0) {
        fprintf(stderr, "pagein: tswap: %s\n", tmem_tswap_why(NULL));
        return rc;
    }
    rc = tmem_tswap_map(t, npages * PAGE, (void **)&r);
    if (rc < 0)
        goto out;
    memcpy(r, pages, npages * PAGE);
    /* Put out by synchronous passes and the evictor thread together:
     * the rate is what went out over the time it took. */
    tmem_tswap_stats s0, s1;
    tmem_tswap_stats_get(t, &s0);
    uint64_t a = now_ns();
    tmem_tswap_set_target(t, 1);
    for (int i = 0; i < 100 && s0.resident > 1; i++) {
        tmem_tswap_reclaim(t);
        tmem_tswap_stats_get(t, &s0);
    }
    l->evict_pps = (double)s0.evicted / ((now_ns() - a) / 1e9);
    tmem_tswap_set_target(t, 0);
    tmem_tswap_stats_get(t, &s0);
    rc = touch_all(r, l) ? -EIO : 0;
    tmem_tswap_stats_get(t, &s1);
    uint64_t ins = s1.faults_pagein - s0.faults_pagein;
    l->moved = ins ? (double)(s1.pagein_moves - s0.pagein_moves) / ins : 0;
out:
    tmem_tswap_destroy(t);
    return rc;
}

/* ---- a tmemd of our own -------------------------------------------------- */

struct daemon {
    pid_t pid;
    char dir[64], sock[96];
};

static int daemon_start(struct daemon *d, const char *prog)
{
    snprintf(d->dir, sizeof d->dir, "/tmp/pagein-XXXXXX");
    if (!mkdtemp(d->dir))
        return -errno;
    snprintf(d->sock, sizeof d->sock, "%s/sock", d->dir);
    d->pid = fork();
    if (d->pid < 0)
        return -errno;
    if (d->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 2);
        execl(prog, prog, "--socket", d->sock, "--foreground", "--budget", "1G",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", d->sock);
        bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return 0;
        usleep(10000);
    }
    return -ETIMEDOUT;
}

static void daemon_stop(struct daemon *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        waitpid(d->pid, NULL, 0);
    }
    unlink(d->sock);
    rmdir(d->dir);
}

/* ---- the kernel's swap-in from zram -------------------------------------- */

struct zram {
    int id; /* /dev/zram<id>, -1 none */
    char page_cluster[16];
    bool swapped_on, cluster_set;
    char dev[32];
};

static int zram_attr(const struct zram *z, const char *attr, const char *v)
{
    char path[96];
    snprintf(path, sizeof path, "/sys/block/zram%d/%s", z->id, attr);
    return tmem__write_text(path, NULL, v);
}

/* Undoes whatever zram_setup did, in reverse. */
static void zram_teardown(struct zram *z)
{
    char cmd[96], id[16];
    if (z->swapped_on) {
        snprintf(cmd, sizeof cmd, "swapoff %s", z->dev);
        if (system(cmd) != 0)
            fprintf(stderr, "pagein: %s failed\n", cmd);
    }
    if (z->cluster_set)
        tmem__write_text("/proc/sys/vm/page-cluster", NULL, z->page_cluster);
    if (z->id >= 0) {
        zram_attr(z, "reset", "1");
        snprintf(id, sizeof id, "%d", z->id);
        tmem__write_text("/sys/class/zram-control/hot_remove", NULL, id);
    }
    z->swapped_on = z->cluster_set = false;
    z->id = -1;
}

/* A zram swap device of our own.  Returns NULL, or why it cannot be. */
static const char *zram_setup(struct zram *z)
{
    char buf[32], cmd[128];
    z->id = -1;
    if (geteuid() != 0)
        return "not root";
    if (tmem__read_text("/sys/class/zram-control/hot_add", NULL, buf,
                        sizeof buf) < 0)
        return "no zram (no /sys/class/zram-control)";
    z->id = atoi(buf);
    snprintf(z->dev, sizeof z->dev, "/dev/zram%d", z->id);
    snprintf(buf, sizeof buf, "%zu", (npages * PAGE / (1u << 20) + 4) << 20);
    if (zram_attr(z, "comp_algorithm", "lz4") < 0 ||
        zram_attr(z, "disksize", buf) < 0)
        return "cannot configure the zram device (lz4)";
    snprintf(cmd, sizeof cmd, "mkswap %s >/dev/null 2>&1 && swapon -p 32767 %s",
             z->dev, z->dev);
    if (system(cmd) != 0)
        return "mkswap/swapon failed";
    z->swapped_on = true;
    if (tmem__read_text("/proc/sys/vm/page-cluster", NULL, z->page_cluster,
                        sizeof z->page_cluster) < 0 ||
        tmem__write_text("/proc/sys/vm/page-cluster", NULL, "0") < 0)
        return "cannot set vm.page-cluster";
    z->cluster_set = true;
    return NULL;
}

/* In a child: pages out with MADV_PAGEOUT, touched back.  Writes its
 * struct lat to fd; exits 0, or 1 on a wrong page, 2 on a failure. */
static int zram_child(int fd)
{
    struct lat l = {0};
    char *r = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return 2;
    madvise(r, npages * PAGE, MADV_NOHUGEPAGE);
    memcpy(r, pages, npages * PAGE);
    if (madvise(r, npages * PAGE, MADV_PAGEOUT) < 0)
        return 2;
    unsigned char *in = malloc(npages);
    size_t still = 0;
    if (in && mincore(r, npages * PAGE, in) == 0)
        for (size_t i = 0; i < npages; i++)
            still += in[i] & 1;
    free(in);
    if (still > npages / 100) {
        fprintf(stderr, "pagein: %zu pages stayed in after PAGEOUT\n", still);
        return 2;
    }
    size_t wrong = touch_all(r, &l);
    if (write(fd, &l, sizeof l) != (ssize_t)sizeof l)
        return 2;
    return wrong ? 1 : 0;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Returns NULL with *l filled, or why there is no kernel figure; *err
 * set on a real failure (a wrong page). */
static const char *measure_zram(struct lat *l, int *err)
{
    struct zram z;
    int p[2];
    const char *why = zram_setup(&z);
    if (why || pipe(p) < 0) {
        zram_teardown(&z);
        return why ? why : "pipe failed";
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fflush(stdout);
    pid_t kid = fork();
    if (kid == 0)
        _exit(zram_child(p[1]));
    close(p[1]);
    int st = -1;
    while (kid > 0 && waitpid(kid, &st, 0) < 0 && errno == EINTR)
        if (interrupted)
            kill(kid, SIGKILL);
    bool got = read(p[0], l, sizeof *l) == (ssize_t)sizeof *l;
    close(p[0]);
    zram_teardown(&z);
    if (interrupted)
        exit(130);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
        *err = 1;
    return got && WIFEXITED(st) && WEXITSTATUS(st) <= 1 ? NULL
                                                        : "measurement failed";
}

/* ---- main ---------------------------------------------------------------- */

static void shuffle(uint64_t seed)
{
    for (size_t i = 0; i < npages; i++)
        order[i] = i;
    for (size_t i = npages - 1; i > 0; i--) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        size_t j = seed % (i + 1), x = order[i];
        order[i] = order[j], order[j] = x;
    }
}

static bool all_zero(const unsigned char *p)
{
    for (size_t i = 0; i < PAGE; i++)
        if (p[i])
            return false;
    return true;
}

static void print_lat(const char *name, const struct lat *l, bool tswap)
{
    printf("\"%s\":{\"p50_us\":%.2f,\"p99_us\":%.2f,\"all_p50_us\":%.2f,"
           "\"all_p99_us\":%.2f",
           name, l->p50, l->p99, l->all_p50, l->all_p99);
    if (tswap)
        printf(",\"evict_pages_per_s\":%.0f,\"frames_moved_share\":%.2f",
               l->evict_pps, l->moved);
    printf("},");
}

int main(int argc, char **argv)
{
    const char *corpus = NULL, *tmemd = "build/tmemd";
    size_t want = 4096, n = 0;
    void *all = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--corpus"))
            corpus = argv[i + 1];
        else if (!strcmp(argv[i], "--pages"))
            want = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--tmemd"))
            tmemd = argv[i + 1];
    }
    if (!corpus)
        corpus = tmem__corpus_default();
    if (!corpus || tmem__corpus_load(corpus, &all, &n) < 0 || n == 0) {
        fprintf(stderr, "pagein: cannot read the corpus\n");
        return 1;
    }
    pages = all;
    npages = n < want ? n : want;
    order = calloc(npages, sizeof *order);
    nonzero = calloc(npages, sizeof *nonzero);
    size_t nz = 0;
    for (size_t i = 0; i < npages; i++)
        nz += nonzero[i] = !all_zero(pages + i * PAGE);
    shuffle(0x9e3779b97f4a7c15ull);

    struct lat kz = {0}, emb = {0}, dmn = {0};
    int err = 0;
    const char *kwhy = measure_zram(&kz, &err);

    setenv("TMEM_EMBEDDED", "1", 1);
    tmem_conn *c = NULL;
    if (tmem_connect(NULL, &c) < 0 || measure_tswap(c, &emb) < 0)
        err = 1;
    tmem_disconnect(c);

    struct daemon d = {0};
    setenv("TMEM_EMBEDDED", "0", 1);
    c = NULL;
    if (daemon_start(&d, tmemd) < 0 || tmem_connect(d.sock, &c) < 0 ||
        measure_tswap(c, &dmn) < 0)
        err = 1;
    tmem_disconnect(c);
    daemon_stop(&d);

    printf("{\"pages\":%zu,\"nonzero_pages\":%zu,", npages, nz);
    print_lat("tswap_embedded", &emb, true);
    print_lat("tswap_tmemd", &dmn, true);
    if (kwhy) {
        printf("\"kernel_zram\":{\"skipped\":\"%s\"}}\n", kwhy);
    } else {
        print_lat("kernel_zram", &kz, false);
        printf("\"ratio_p50_embedded\":%.2f,\"ratio_p50_tmemd\":%.2f,"
               "\"ratio_p99_embedded\":%.2f,\"ratio_p99_tmemd\":%.2f,"
               "\"target_ratio\":%.1f}\n",
               emb.p50 / kz.p50, dmn.p50 / kz.p50, emb.p99 / kz.p99,
               dmn.p99 / kz.p99, TARGET_RATIO);
    }
    tmem__corpus_free(all, n);
    return err;
}
