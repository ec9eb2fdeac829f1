/*
 * tmem bench redis fill|check: loads a Redis server with known values and
 * checks every one back, for `tmem run` proofs and benchmarks (a Redis
 * server whose heap lives in tswap must return every byte it was given).
 *
 * Keys are redis-benchmark's: "key:%012u" for 0..keys-1, so a later
 * `redis-benchmark -t get -r KEYS` reads the same keys.  A value is a page
 * of the corpus (--corpus: real heap pages, so compression is realistic)
 * or, without one, text-like bytes; its first 16 bytes name its key, so no
 * two values are alike.  The client speaks RESP itself over TCP and
 * pipelines --pipeline commands at a time.
 *
 * Exit status: 0 every value stored / read back intact; 1 a value was
 * wrong or missing, or the server could not be reached (the first bad key
 * is named); 2 bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "common/corpus.h"
#include "opt_table.h"

struct redis_opts {
    const char *host, *corpus;
    int port, keys, size, pipeline;
};

static int o_host(void *o, const char *v)
{
    ((struct redis_opts *)o)->host = v;
    return 0;
}
static int o_corpus(void *o, const char *v)
{
    ((struct redis_opts *)o)->corpus = v;
    return 0;
}
static int o_port(void *o, const char *v)
{
    return opt_int(v, 1, 65535, &((struct redis_opts *)o)->port);
}
static int o_keys(void *o, const char *v)
{
    return opt_int(v, 1, 100000000, &((struct redis_opts *)o)->keys);
}
static int o_size(void *o, const char *v)
{
    return opt_int(v, 16, 64 << 20, &((struct redis_opts *)o)->size);
}
static int o_pipeline(void *o, const char *v)
{
    return opt_int(v, 1, 4096, &((struct redis_opts *)o)->pipeline);
}

static const struct opt_spec redis_table[] = {
    {"--host", "ADDR", o_host, "server address (127.0.0.1)"},
    {"--port", "PORT", o_port, "server port (6379)"},
    {"--keys", "N", o_keys, "keys key:000000000000 .. N-1 (65536)"},
    {"--size", "BYTES", o_size, "bytes a value, 16 B to 64 MiB (4096)"},
    {"--corpus", "FILE", o_corpus, "values from these pages (raw or .zst)"},
    {"--pipeline", "N", o_pipeline, "commands in flight (32)"},
};
#define NREDIS (sizeof redis_table / sizeof redis_table[0])

/* ---- values ------------------------------------------------------------ */

struct values {
    unsigned char *pages;
    size_t npages;
    int size;
};

static void value_of(const struct values *v, uint32_t k, unsigned char *out)
{
    if (v->pages) {
        const unsigned char *pg = v->pages + (k % v->npages) * 4096;
        for (int i = 0; i < v->size; i += 4096)
            memcpy(out + i, pg, v->size - i < 4096 ? (size_t)(v->size - i) : 4096);
    } else {
        static const char *w[] = {"alpha ", "tmem ", "redis ", "page ",
                                  "value ", "heap ", "store ", "zram "};
        uint64_t s = k * 0x9e3779b97f4a7c15ull + 1;
        for (int i = 0; i < v->size;) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            const char *x = w[s % 8];
            for (; *x && i < v->size; x++)
                out[i++] = (unsigned char)*x;
        }
    }
    char tag[17];
    snprintf(tag, sizeof tag, "%016u", k);
    memcpy(out, tag, 16);
}

/* ---- a minimal RESP client ---------------------------------------------- */

struct conn {
    int fd;
    unsigned char *in;
    size_t cap, lo, hi;
};

static int rd_more(struct conn *c)
{
    if (c->lo > 0 && c->lo == c->hi)
        c->lo = c->hi = 0;
    if (c->hi == c->cap) {
        memmove(c->in, c->in + c->lo, c->hi - c->lo);
        c->hi -= c->lo;
        c->lo = 0;
    }
    ssize_t n = read(c->fd, c->in + c->hi, c->cap - c->hi);
    if (n <= 0)
        return -1;
    c->hi += (size_t)n;
    return 0;
}

/* The next reply line (without CRLF) into line[cap]. */
static int rd_line(struct conn *c, char *line, size_t cap)
{
    for (;;) {
        unsigned char *nl = memchr(c->in + c->lo, '\n', c->hi - c->lo);
        if (nl) {
            size_t n = (size_t)(nl - (c->in + c->lo));
            if (n == 0 || n >= cap)
                return -1;
            memcpy(line, c->in + c->lo, n - 1);
            line[n - 1] = 0;
            c->lo += n + 1;
            return 0;
        }
        if (rd_more(c) < 0)
            return -1;
    }
}

static int rd_bytes(struct conn *c, unsigned char *out, size_t n)
{
    while (c->hi - c->lo < n + 2)
        if (rd_more(c) < 0)
            return -1;
    memcpy(out, c->in + c->lo, n);
    c->lo += n + 2;
    return 0;
}

static int wr_all(int fd, const void *b, size_t n)
{
    for (const char *p = b; n;) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int dial(const struct redis_opts *o, struct conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1)
        return -EINVAL;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return -errno;
    c->cap = (size_t)o->size * 2 + 65536;
    c->in = malloc(c->cap);
    return c->in ? 0 : -ENOMEM;
}

/* Appends one command (argc bulk strings) to out; returns its length. */
static size_t cmd(char *out, const char *verb, uint32_t k,
                  const unsigned char *val, int size)
{
    char key[32];
    int kl = snprintf(key, sizeof key, "key:%012u", k);
    size_t n = (size_t)sprintf(out, "*%d\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n",
                               val ? 3 : 2, strlen(verb), verb, kl, key);
    if (val) {
        n += (size_t)sprintf(out + n, "$%d\r\n", size);
        memcpy(out + n, val, (size_t)size);
        n += (size_t)size;
        memcpy(out + n, "\r\n", 2);
        n += 2;
    }
    return n;
}

/* ---- fill and check ----------------------------------------------------- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs every key through SET (fill) or GET (check).  Returns the keys
 * done right; *bad receives the first key that was not (or -1). */
static long run_keys(const struct redis_opts *o, const struct values *v,
                     bool fill, struct conn *c, long *bad)
{
    size_t per = (size_t)o->size + 128;
    char *out = malloc(per * (size_t)o->pipeline);
    unsigned char *val = malloc((size_t)o->size), *got = malloc((size_t)o->size);
    long good = 0;
    *bad = -1;
    char line[64];
    for (uint32_t k0 = 0; out && val && got && k0 < (uint32_t)o->keys;) {
        uint32_t n = (uint32_t)o->keys - k0 < (uint32_t)o->pipeline
                         ? (uint32_t)o->keys - k0 : (uint32_t)o->pipeline;
        size_t len = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (fill)
                value_of(v, k0 + i, val);
            len += cmd(out + len, fill ? "SET" : "GET", k0 + i,
                       fill ? val : NULL, o->size);
        }
        if (wr_all(c->fd, out, len) < 0)
            break;
        for (uint32_t i = 0; i < n; i++) {
            if (rd_line(c, line, sizeof line) < 0)
                goto out;
            bool ok;
            if (fill) {
                ok = !strcmp(line, "+OK");
            } else if (line[0] == '$' && atoi(line + 1) == o->size) {
                if (rd_bytes(c, got, (size_t)o->size) < 0)
                    goto out;
                value_of(v, k0 + i, val);
                ok = !memcmp(got, val, (size_t)o->size);
            } else {
                ok = false;
                if (line[0] == '$' && atoi(line + 1) > 0)
                    rd_bytes(c, got, (size_t)atoi(line + 1) <= (size_t)o->size
                                         ? (size_t)atoi(line + 1) : 0);
            }
            if (ok)
                good++;
            else if (*bad < 0)
                *bad = (long)(k0 + i);
        }
        k0 += n;
    }
out:
    free(out);
    free(val);
    free(got);
    return good;
}

int cmd_bench_redis(struct tmem_cli *cli, int argc, char **argv)
{
    (void)cli;
    struct redis_opts o = {"127.0.0.1", NULL, 6379, 65536, 4096, 32};
    if (argc < 2 || (strcmp(argv[1], "fill") && strcmp(argv[1], "check"))) {
        bool help = argc >= 2 && !strcmp(argv[1], "--help");
        FILE *f = help ? stdout : stderr;
        fprintf(f, "usage: tmem bench redis fill|check [options]\n");
        opt_usage(f, redis_table, NREDIS, 14);
        return help ? CLI_OK : CLI_USAGE;
    }
    bool fill = !strcmp(argv[1], "fill");
    if (opt_parse("tmem bench redis", redis_table, NREDIS, &o, argc - 1,
                  argv + 1))
        return CLI_USAGE;
    struct values v = {.size = o.size};
    if (o.corpus) {
        int rc = cli_corpus("tmem bench redis", o.corpus,
                            (void **)&v.pages, &v.npages);
        if (rc != 0)
            return rc;
    }
    struct conn c = {0};
    int rc = dial(&o, &c);
    if (rc < 0) {
        fprintf(stderr, "tmem bench redis: cannot reach %s:%d: %s\n", o.host,
                o.port, strerror(-rc));
        return CLI_FAIL;
    }
    double t0 = now_s();
    long bad, good = run_keys(&o, &v, fill, &c, &bad);
    double dt = now_s() - t0;
    printf("{\"op\":\"%s\",\"keys\":%d,\"size\":%d,\"good\":%ld,"
           "\"first_bad\":%ld,\"seconds\":%.3f,\"ops_per_s\":%.0f}\n",
           argv[1], o.keys, o.size, good, bad, dt,
           dt > 0 ? (double)good / dt : 0.0);
    close(c.fd);
    free(c.in);
    tmem__corpus_free(v.pages, v.npages);
    return good == o.keys ? CLI_OK : CLI_FAIL;
}
