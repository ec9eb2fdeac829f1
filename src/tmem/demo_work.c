/*
 * tmem demo: the workloads the demo runs itself, each a forked child that
 * counts its operations (and any wrong answer) into the shared counters:
 *   - the batch tenant: anonymous memory it keeps touching, and a log it
 *     writes and never reads (page cache the balloon may take);
 *   - the redis load: Zipfian GETs of known 4 KiB values over RESP, every
 *     answer compared with the value that was set.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"

#define VALUE_LEN 4096

static uint64_t rng(uint64_t *s)
{
    uint64_t x = *s += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Zipf(theta) over n keys by its cumulative table (n <= a few 100k). */
struct zipf {
    double *cdf;
    size_t n;
};

static int zipf_init(struct zipf *z, size_t n, double theta)
{
    double sum = 0;
    z->n = n;
    z->cdf = malloc(n * sizeof *z->cdf);
    if (!z->cdf)
        return -1;
    for (size_t i = 0; i < n; i++)
        z->cdf[i] = sum += 1.0 / pow((double)(i + 1), theta);
    for (size_t i = 0; i < n; i++)
        z->cdf[i] /= sum;
    return 0;
}

static size_t zipf_next(const struct zipf *z, uint64_t *s)
{
    double u = (double)(rng(s) >> 11) / 9007199254740992.0;
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A page of text-like bytes that names k: compresses as real data does
 * (about 3x with LZ4), differs from every other page. */
static void fill_value(char *v, size_t len, uint64_t k)
{
    static const char *words[] = {"tenant", "memory", "page",  "store",
                                  "pool",   "host",   "cache", "swap",
                                  "weight", "target", "ratio", "byte"};
    uint64_t s = k * 2654435761u + 1;
    size_t o = (size_t)snprintf(v, len, "k%llu:", (unsigned long long)k);
    while (o < len) {
        uint64_t r = rng(&s);
        int n = snprintf(v + o, len - o, "%s=%llu ", words[r % 12],
                         (unsigned long long)(r >> 40) % 1000);
        if (n <= 0)
            break;
        o += (size_t)n;
    }
}

/* ---- the batch tenant ---------------------------------------------------- */

/* Its anonymous memory: batch_hot_mb filled once and touched all the time,
 * each page checked; and its output: a log written at a steady rate,
 * truncated when it reaches batch_mb (so nothing it wrote is read again:
 * page cache the balloon may take). */
static void batch_main(struct demo *d, int i, uint64_t seed)
{
    size_t hot = (size_t)d->z.batch_hot_mb * 256;
    off_t log_max = (off_t)d->z.batch_mb << 20, off = 0;
    char path[300], chunk[64 * 1024];
    char *m = mmap(NULL, hot * 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd;

    snprintf(path, sizeof path, "%s/batch.log", d->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (m == MAP_FAILED || fd < 0)
        _exit(1);
    for (size_t p = 0; p < hot; p++) {
        fill_value(m + p * 4096, 4096, p);
        memcpy(m + p * 4096, &p, sizeof p);
    }
    d->ctr->ready[i] = 1;
    /* 64 KiB of log per 4 ms: 16 MiB/s */
    for (uint64_t n = 0; !d->ctr->stop; n++) {
        for (int k = 0; k < 256; k++) {
            uint64_t r = rng(&seed);
            size_t p = (r >> 12) % hot, stamp;
            memcpy(&stamp, m + p * 4096, sizeof stamp);
            if (stamp != p)
                __atomic_add_fetch(&d->ctr->wrong[i], 1, __ATOMIC_RELAXED);
            m[p * 4096 + 8 + (r >> 50) % 4000] ^= 1;
        }
        for (size_t o = 0; o < sizeof chunk; o += 4096)
            fill_value(chunk + o, 4096, n * 16 + o / 4096);
        if (off >= log_max) {
            if (ftruncate(fd, 0) < 0)
                _exit(1);
            off = 0;
        }
        if (pwrite(fd, chunk, sizeof chunk, off) != (ssize_t)sizeof chunk)
            _exit(1);
        off += (off_t)sizeof chunk;
        __atomic_add_fetch(&d->ctr->ops[i], 256 + 16, __ATOMIC_RELAXED);
        struct timespec ts = {0, 4000000};
        nanosleep(&ts, NULL);
    }
    _exit(0);
}

pid_t demo_batch_start(struct demo *d, int i, uint64_t seed)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        if (demo_cg_join(d->t[i].cg, getpid()) < 0)
            _exit(126);
        batch_main(d, i, seed);
    }
    return pid;
}

/* ---- redis --------------------------------------------------------------- */

static int redis_connect(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int demo_redis_wait(unsigned port, unsigned ms)
{
    for (unsigned t = 0; t < ms; t += 50) {
        int fd = redis_connect(port);
        if (fd >= 0) {
            char r[16];
            ssize_t n = -1;
            if (write(fd, "PING\r\n", 6) == 6)
                n = read(fd, r, sizeof r);
            close(fd);
            if (n > 0 && r[0] == '+')
                return 0;
        }
        usleep(50000);
    }
    return -1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, char *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static size_t redis_keys(const struct demo *d)
{
    return (size_t)d->z.redis_mb * 256;
}

/* SETs every key, 64 per round trip. */
int demo_redis_fill(struct demo *d)
{
    size_t n = redis_keys(d);
    int fd = redis_connect(d->redis_port);
    char *buf = malloc(64 * (VALUE_LEN + 96)), val[VALUE_LEN + 1], ok[5 * 64];
    int rc = -1;

    if (fd < 0 || !buf)
        goto out;
    for (size_t k = 0; k < n; k += 64) {
        size_t o = 0, m = n - k < 64 ? n - k : 64;
        for (size_t j = 0; j < m; j++) {
            char key[32];
            int kl = snprintf(key, sizeof key, "k%zu", k + j);
            fill_value(val, VALUE_LEN + 1, k + j);
            o += (size_t)sprintf(buf + o, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n",
                                 kl, key, VALUE_LEN);
            memcpy(buf + o, val, VALUE_LEN);
            o += VALUE_LEN;
            memcpy(buf + o, "\r\n", 2);
            o += 2;
        }
        if (write_all(fd, buf, o) < 0 || read_all(fd, ok, 5 * m) < 0 ||
            ok[0] != '+')
            goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "tmem demo: filling redis on port %u failed\n",
                d->redis_port);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

static void load_main(struct demo *d, int i, uint64_t seed)
{
    struct zipf z;
    size_t n = redis_keys(d);
    char want[VALUE_LEN + 1], got[VALUE_LEN + 16], req[64];
    int fd = redis_connect(d->redis_port);

    /* a quarter of the keys are asked for, the rest are cold */
    if (fd < 0 || zipf_init(&z, n / 4, 1.1) < 0)
        _exit(1);
    d->ctr->ready[i] = 1;
    while (!d->ctr->stop) {
        /* scatter the popular keys over the keyspace */
        size_t k = zipf_next(&z, &seed) * 2654435761u % (n / 4) * 4;
        char key[32];
        int kl = snprintf(key, sizeof key, "k%zu", k);
        int rl = snprintf(req, sizeof req, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n",
                          kl, key);
        char head[16];
        if (write_all(fd, req, (size_t)rl) < 0 ||
            read_all(fd, head, 7) < 0) /* "$4096\r\n" */
            _exit(2);
        if (memcmp(head, "$4096\r\n", 7) != 0 ||
            read_all(fd, got, VALUE_LEN + 2) < 0) {
            __atomic_add_fetch(&d->ctr->wrong[i], 1, __ATOMIC_RELAXED);
            _exit(3);
        }
        fill_value(want, sizeof want, k);
        if (memcmp(got, want, VALUE_LEN) != 0)
            __atomic_add_fetch(&d->ctr->wrong[i], 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&d->ctr->ops[i], 1, __ATOMIC_RELAXED);
    }
    _exit(0);
}

pid_t demo_redis_load_start(struct demo *d, int i, uint64_t seed)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        load_main(d, i, seed);
    }
    return pid;
}
