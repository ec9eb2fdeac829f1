/*
 * zram_ref: the kernel's zram measured on a corpus, as the reference the
 * store benchmark is compared against (bench/store.sh builds and runs it).
 *
 * As root, with /dev/zram0 present (or loadable with modprobe) and not in
 * use as swap or mounted: resets zram0, selects lz4, sizes it for the
 * corpus, writes every page with its own O_DIRECT pwrite (each timed),
 * reads mm_stat, reads every page back with O_DIRECT pread (each timed,
 * every byte compared), then resets zram0 again so it holds nothing.
 *
 * Usage: zram_ref --corpus FILE [--algo lz4]
 * Prints one JSON object.  When the measurement is impossible here (not
 * root, no zram, zram0 busy) it prints {"skipped": "why"} and exits 0: the
 * ratios are skipped, that is not an error.  Exit 1: the corpus could not
 * be read, an I/O failed, or a page read back differs.  Exit 2: usage.
 *
 * Concurrent users of zram0 among our own tools take an flock on
 * /tmp/tmem-zram0.lock first.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <tmem/abi.h>
#include <tmem/errors.h>

#include "common/corpus.h"

#define SYSDIR "/sys/block/zram0"
#define DEVICE "/dev/zram0"
#define LOCKFILE "/tmp/tmem-zram0.lock"
#define PAGE TMEM_PAGE_SIZE

/* mm_stat's first fields, in the kernel's order. */
static const char *const mm_names[] = {
    "orig_data_size", "compr_data_size", "mem_used_total",  "mem_limit",
    "mem_used_max",   "same_pages",      "pages_compacted", "huge_pages",
};
#define NMM (sizeof mm_names / sizeof mm_names[0])

static int skipped(const char *why)
{
    printf("{\"skipped\": \"%s\"}\n", why);
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Writes a string to a sysfs attribute; returns 0 or -errno. */
static int sysfs_write(const char *attr, const char *val)
{
    char path[128];
    snprintf(path, sizeof path, SYSDIR "/%s", attr);
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err;
}

/* Reads mm_stat into v[NMM]; returns 0 or -errno. */
static int read_mm_stat(uint64_t v[NMM])
{
    FILE *f = fopen(SYSDIR "/mm_stat", "r");
    if (!f)
        return -errno;
    size_t k = 0;
    while (k < NMM && fscanf(f, "%" SCNu64, &v[k]) == 1)
        k++;
    fclose(f);
    return k == NMM ? 0 : -EIO;
}

/* Is zram0 named as a whole word in a /proc table (swaps, mounts)? */
static bool listed_in(const char *table)
{
    FILE *f = fopen(table, "r");
    char line[512];
    bool found = false;
    if (!f)
        return false;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, DEVICE " ", strlen(DEVICE) + 1) == 0 ||
                strncmp(line, DEVICE "\t", strlen(DEVICE) + 1) == 0;
    fclose(f);
    return found;
}

/* Returns NULL when zram0 can be used, else why not. */
static const char *unavailable(void)
{
    if (geteuid() != 0)
        return "not root";
    if (access(SYSDIR, F_OK) != 0 &&
        system("modprobe zram >/dev/null 2>&1") != 0)
        return "no zram (modprobe zram failed)";
    if (access(SYSDIR, F_OK) != 0)
        return "no /dev/zram0";
    if (listed_in("/proc/swaps"))
        return "zram0 is in use as swap";
    if (listed_in("/proc/mounts"))
        return "zram0 is mounted";
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts ns[0..n); returns the q-quantile in microseconds. */
static double quantile_us(uint32_t *ns, size_t n, double q)
{
    qsort(ns, n, sizeof ns[0], cmp_u32);
    return ns[(size_t)(q * (double)(n - 1) + 0.5)] / 1000.0;
}

struct zresult {
    uint64_t write_wall, read_wall; /* ns */
    double w50, w99, r50, r99;
    uint64_t mm[NMM];
    size_t wrong;
};

static uint32_t clamp_ns(uint64_t ns)
{
    return ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* Writes every page, each with its own timed pwrite. */
static int write_pages(int fd, const unsigned char *pages, size_t n,
                       uint32_t *ns, struct zresult *z)
{
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        uint64_t a = now_ns();
        ssize_t w = pwrite(fd, pages + i * PAGE, PAGE, (off_t)(i * PAGE));
        ns[i] = clamp_ns(now_ns() - a);
        if (w != PAGE)
            return w < 0 ? -errno : -EIO;
    }
    z->write_wall = now_ns() - t0;
    z->w50 = quantile_us(ns, n, 0.50);
    z->w99 = quantile_us(ns, n, 0.99);
    return 0;
}

/* Reads every page back (timed) and compares it. */
static int read_pages(int fd, const unsigned char *pages, size_t n,
                      uint32_t *ns, unsigned char *buf, struct zresult *z)
{
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        uint64_t a = now_ns();
        ssize_t r = pread(fd, buf, PAGE, (off_t)(i * PAGE));
        ns[i] = clamp_ns(now_ns() - a);
        if (r != PAGE)
            return r < 0 ? -errno : -EIO;
        z->wrong += memcmp(buf, pages + i * PAGE, PAGE) != 0;
    }
    z->read_wall = now_ns() - t0;
    z->r50 = quantile_us(ns, n, 0.50);
    z->r99 = quantile_us(ns, n, 0.99);
    return 0;
}

/* Configures zram0 for n pages with algo; returns 0, -errno. */
static int setup_device(size_t n, const char *algo)
{
    char size[32];
    int rc = sysfs_write("reset", "1");
    if (rc < 0)
        return rc;
    rc = sysfs_write("comp_algorithm", algo);
    if (rc < 0)
        return rc;
    /* Whole MiB, one spare: the disksize the kernel rounds to pages. */
    snprintf(size, sizeof size, "%zu", (n * PAGE / (1u << 20) + 2) << 20);
    return sysfs_write("disksize", size);
}

static int run(const unsigned char *pages, size_t n, const char *algo,
               struct zresult *z)
{
    uint32_t *ns = calloc(n, sizeof *ns);
    unsigned char *buf = aligned_alloc(PAGE, PAGE);
    int fd = -1, rc = -ENOMEM;

    if (!ns || !buf)
        goto out;
    rc = setup_device(n, algo);
    if (rc < 0)
        goto out;
    fd = open(DEVICE, O_RDWR | O_DIRECT);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = write_pages(fd, pages, n, ns, z);
    if (rc == 0)
        rc = read_mm_stat(z->mm);
    if (rc == 0)
        rc = read_pages(fd, pages, n, ns, buf, z);
    close(fd);
out:
    sysfs_write("reset", "1"); /* hold nothing, whatever happened */
    free(ns);
    free(buf);
    return rc;
}

static void print_result(size_t n, const char *algo, const struct zresult *z)
{
    printf("{\"pages\": %zu, \"algo\": \"%s\"", n, algo);
    for (size_t k = 0; k < NMM; k++)
        printf(", \"%s\": %" PRIu64, mm_names[k], z->mm[k]);
    printf(", \"ratio\": %.3f",
           z->mm[2] ? (double)z->mm[0] / (double)z->mm[2] : 0.0);
    printf(", \"write_us_p50\": %.3f, \"write_us_p99\": %.3f"
           ", \"read_us_p50\": %.3f, \"read_us_p99\": %.3f",
           z->w50, z->w99, z->r50, z->r99);
    printf(", \"write_pages_per_s\": %.1f, \"read_pages_per_s\": %.1f"
           ", \"wrong_pages\": %zu}\n",
           n / (z->write_wall / 1e9), n / (z->read_wall / 1e9), z->wrong);
}

/* O_DIRECT wants aligned buffers: copy the corpus when it is not. */
static unsigned char *aligned_pages(void *pages, size_t n, void **owned)
{
    *owned = NULL;
    if (((uintptr_t)pages & (PAGE - 1)) == 0)
        return pages;
    *owned = aligned_alloc(PAGE, n * PAGE);
    if (*owned)
        memcpy(*owned, pages, n * PAGE);
    return *owned;
}

static int parse_args(int argc, char **argv, const char **corpus,
                      const char **algo)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--corpus") == 0)
            *corpus = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--algo") == 0)
            *algo = argv[++i];
        else
            return -1;
    }
    return *corpus ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *corpus = NULL, *algo = "lz4", *why;
    struct zresult z = {0};
    void *pages = NULL, *copy;
    size_t n = 0;

    if (parse_args(argc, argv, &corpus, &algo) < 0) {
        fprintf(stderr, "usage: zram_ref --corpus FILE [--algo lz4]\n");
        return 2;
    }
    if ((why = unavailable()))
        return skipped(why);
    int rc = tmem__corpus_load(corpus, &pages, &n);
    if (rc < 0 || n == 0) {
        fprintf(stderr, "zram_ref: %s: %s\n", corpus,
                rc < 0 ? tmem_errname(rc) : "no pages");
        return 1;
    }
    unsigned char *aligned = aligned_pages(pages, n, &copy);
    int lock = open(LOCKFILE, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock >= 0)
        flock(lock, LOCK_EX);
    rc = aligned ? run(aligned, n, algo, &z) : -ENOMEM;
    if (lock >= 0)
        close(lock);
    if (rc == -EBUSY) {
        rc = 0;
        skipped("zram0 busy (open elsewhere)");
    } else if (rc < 0) {
        fprintf(stderr, "zram_ref: %s\n", strerror(-rc));
    } else {
        print_result(n, algo, &z);
    }
    free(copy);
    tmem__corpus_free(pages, n);
    if (rc < 0)
        return 1;
    if (z.wrong)
        fprintf(stderr, "zram_ref: %zu pages read back wrong\n", z.wrong);
    return z.wrong ? 1 : 0;
}
