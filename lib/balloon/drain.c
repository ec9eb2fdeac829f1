/*
 * Drain of the kernel's swap tier (SPEC "Beyond the original"): bring a
 * process's swapped pages back into memory before it faults on them.
 *
 * For each VMA that /proc/PID/smaps says has pages in swap, the swap bit
 * (62) of /proc/PID/pagemap gives the exact runs of swapped pages.  Those
 * runs go, up to IOV_MAX at a time, to process_madvise(pidfd, runs,
 * MADV_WILLNEED): the kernel starts reading them all into the swap cache
 * in one batch.  Then the same runs are read with process_vm_readv, which
 * maps each page back into the tenant (a swap-cache hit, no I/O) so that
 * its page table no longer points at swap: the next drain moves on to the
 * next pages, and the tenant takes no fault.  The read never writes to the
 * tenant: its data cannot change under it.
 *
 * Budget: at most `budget` pages are asked back per call (the last run is
 * cut).  Only anonymous private memory has swap entries in pagemap;
 * shared memory (shmem) in swap is left alone.  Needs CAP_SYS_NICE and
 * ptrace access to the process (root).
 */
#include "balloon/drain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/mem.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef MADV_WILLNEED
#define MADV_WILLNEED 3
#endif

#define DRAIN_PAGE 4096u
#define DRAIN_IOV 1024u          /* UIO_MAXIOV */
#define DRAIN_PM_CHUNK 4096u     /* pagemap entries read at once */
#define DRAIN_READ_BUF (1u << 20) /* bytes copied per process_vm_readv */
#define PM_SWAP (1ull << 62)

/* One process being drained. */
struct drain {
    pid_t pid;
    int pidfd, pagemap;
    uint64_t left;       /* budget left, UINT64_MAX = no bound */
    struct iovec iov[DRAIN_IOV];
    unsigned niov;
    char *buf;           /* DRAIN_READ_BUF scratch for the reads */
    struct tmem_balloon_drain_stats *st;
};

/* Reads runs back with process_vm_readv so they are mapped again. */
static void touch_runs(struct drain *d)
{
    for (unsigned i = 0; i < d->niov; i++) {
        char *p = d->iov[i].iov_base;
        size_t len = d->iov[i].iov_len;

        while (len > 0) {
            size_t n = len < DRAIN_READ_BUF ? len : DRAIN_READ_BUF;
            struct iovec l = {d->buf, n}, r = {p, n};

            if (process_vm_readv(d->pid, &l, 1, &r, 1, 0) <= 0)
                break; /* unmapped meanwhile: the tenant owns its memory */
            p += n;
            len -= n;
        }
    }
}

/* Sends the collected runs.  Returns 0 or -errno. */
static int flush(struct drain *d)
{
    long r;

    if (d->niov == 0)
        return 0;
    r = syscall(SYS_process_madvise, d->pidfd, d->iov, (size_t)d->niov,
                MADV_WILLNEED, 0u);
    d->st->madvise_calls++;
    if (r < 0 && errno != ENOMEM && errno != EFAULT)
        return -errno; /* ENOMEM/EFAULT: a range went away; go on */
    touch_runs(d);
    d->niov = 0;
    return 0;
}

/* Adds the run [addr, addr + pages) (cut to the budget).  Returns 0 or
 * -errno. */
static int add_run(struct drain *d, uint64_t addr, uint64_t pages)
{
    if (d->left != UINT64_MAX && pages > d->left)
        pages = d->left;
    if (pages == 0)
        return 0;
    d->iov[d->niov].iov_base = (void *)(uintptr_t)addr;
    d->iov[d->niov].iov_len = pages * DRAIN_PAGE;
    d->niov++;
    d->st->ranges++;
    d->st->pages += pages;
    if (d->left != UINT64_MAX)
        d->left -= pages;
    return d->niov == DRAIN_IOV ? flush(d) : 0;
}

/* Finds the swapped runs of [start, end) in pagemap.  Returns 0 or
 * -errno. */
static int scan_vma(struct drain *d, uint64_t start, uint64_t end)
{
    uint64_t pm[DRAIN_PM_CHUNK];
    uint64_t run = 0, run_start = 0;

    for (uint64_t a = start; a < end && d->left != 0;) {
        uint64_t n = (end - a) / DRAIN_PAGE;
        ssize_t got;

        if (n > DRAIN_PM_CHUNK)
            n = DRAIN_PM_CHUNK;
        got = pread(d->pagemap, pm, n * 8, (off_t)(a / DRAIN_PAGE * 8));
        if (got <= 0)
            return got < 0 ? -errno : 0;
        n = (uint64_t)got / 8;
        for (uint64_t i = 0; i < n; i++, a += DRAIN_PAGE) {
            if (pm[i] & PM_SWAP) {
                if (run++ == 0)
                    run_start = a;
                continue;
            }
            if (run) {
                int rc = add_run(d, run_start, run);
                if (rc < 0)
                    return rc;
                run = 0;
            }
        }
    }
    return run ? add_run(d, run_start, run) : 0;
}

/* Walks smaps: scans each VMA whose Swap: is not 0.  Returns 0 or
 * -errno. */
static int walk_smaps(struct drain *d, FILE *f)
{
    char line[512];
    uint64_t start = 0, end = 0;
    int rc = 0;

    while (rc == 0 && d->left != 0 && fgets(line, sizeof line, f)) {
        unsigned long long s, e, kb;
        char c;

        if (sscanf(line, "%llx-%llx %c", &s, &e, &c) == 3) {
            start = s;
            end = e;
        } else if (sscanf(line, "Swap: %llu kB", &kb) == 1 && kb > 0) {
            rc = scan_vma(d, start, end);
        }
    }
    return rc;
}

/* Opens the process's pidfd and pagemap.  Returns 0 or -errno. */
static int drain_open(struct drain *d, pid_t pid, FILE **smaps)
{
    char path[64];

    d->pid = pid;
    d->pidfd = (int)syscall(SYS_pidfd_open, pid, 0u);
    if (d->pidfd < 0)
        return -errno;
    snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
    d->pagemap = open(path, O_RDONLY | O_CLOEXEC);
    if (d->pagemap < 0)
        return -errno;
    snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
    *smaps = fopen(path, "re");
    return *smaps ? 0 : -errno;
}

int64_t tmem_balloon_drain_pid(pid_t pid, uint64_t budget,
                               struct tmem_balloon_drain_stats *st)
{
    struct tmem_balloon_drain_stats dummy = {0};
    struct drain *d;
    FILE *smaps = NULL;
    uint64_t before;
    int rc;

    if (!st)
        st = &dummy;
    d = tmem__calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->pidfd = d->pagemap = -1;
    d->left = budget ? budget : UINT64_MAX;
    d->st = st;
    before = st->pages;
    d->buf = tmem__malloc(DRAIN_READ_BUF);
    rc = d->buf ? drain_open(d, pid, &smaps) : -ENOMEM;
    if (rc == 0)
        rc = walk_smaps(d, smaps);
    if (rc == 0)
        rc = flush(d);
    st->procs++;
    if (smaps)
        fclose(smaps);
    if (d->pagemap >= 0)
        close(d->pagemap);
    if (d->pidfd >= 0)
        close(d->pidfd);
    tmem__free(d->buf);
    tmem__free(d);
    return rc < 0 ? rc : (int64_t)(st->pages - before);
}

int tmem__balloon_cgroup_each_pid(const char *dir,
                                  int (*fn)(pid_t pid, void *arg), void *arg)
{
    char path[PATH_MAX];
    FILE *f;
    DIR *dd;
    struct dirent *e;
    int pid, rc = 0;

    if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= PATH_MAX)
        return -ENAMETOOLONG;
    f = fopen(path, "re");
    if (!f)
        return -errno;
    while (rc == 0 && fscanf(f, "%d", &pid) == 1)
        rc = fn((pid_t)pid, arg);
    fclose(f);
    dd = opendir(dir);
    if (!dd)
        return rc;
    while (rc == 0 && (e = readdir(dd)) != NULL) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= PATH_MAX)
            continue;
        rc = tmem__balloon_cgroup_each_pid(path, fn, arg);
        if (rc == -ENOENT) /* a child cgroup went away */
            rc = 0;
    }
    closedir(dd);
    return rc;
}

struct drain_walk {
    uint64_t budget, done;
    struct tmem_balloon_drain_stats *st;
};

static int drain_one(pid_t pid, void *arg)
{
    struct drain_walk *w = arg;
    uint64_t left = w->budget ? w->budget - w->done : 0;
    int64_t n = tmem_balloon_drain_pid(pid, left, w->st);

    if (n < 0) {
        w->st->failed++;
        return 0;
    }
    w->done += (uint64_t)n;
    return w->budget && w->done >= w->budget ? 1 : 0;
}

int64_t tmem_balloon_drain_cgroup(const char *dir, uint64_t budget,
                                  struct tmem_balloon_drain_stats *st)
{
    struct tmem_balloon_drain_stats dummy = {0};
    struct drain_walk w = {budget, 0, st ? st : &dummy};
    int rc = tmem__balloon_cgroup_each_pid(dir, drain_one, &w);

    return rc < 0 ? rc : (int64_t)w.done;
}

int64_t tmem_balloon_swapped_pages(pid_t pid)
{
    char path[64], line[256];
    unsigned long long kb;
    int64_t r = -EINVAL;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? -ESRCH : -errno;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSwap: %llu kB", &kb) == 1) {
            r = (int64_t)(kb / 4);
            break;
        }
    fclose(f);
    return r;
}
