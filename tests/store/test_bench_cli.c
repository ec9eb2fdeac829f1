/*
 * Tests of `tmem bench store` as a program: its argument handling, exit
 * statuses and JSON output.  Each test writes a small generated corpus
 * (256 pages: zero, same-filled, random, text-like and duplicate pages) to
 * a temporary file, runs $BUILD/tmem (BUILD from the environment, default
 * "build") as a subprocess and checks what it printed against what the
 * corpus holds.  Nothing here needs the shared corpus.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <tmem/abi.h>

#include "../runner.h"
#include "common/corpus.h"

#define PG TMEM_PAGE_SIZE
#define NPAGES 256
/* The corpus layout, by page number. */
#define ZERO_END 32       /* [0, 32) zero */
#define SAME_END 40       /* [32, 40) same-filled with one byte value */
#define RANDOM_END 128    /* [40, 128) random: incompressible */
#define TEXT_END 224      /* [128, 224) text-like: compressible */
                          /* [224, 256) copies of random and text pages */
#define NZEROISH SAME_END /* zero and same-filled pages cost no data */
#define NRANDOM (RANDOM_END - SAME_END)
#define NDUP (NPAGES - TEXT_END)

#define OUT_CAP 8192

struct proc {
    int status; /* exit status, or -1 if it did not exit normally */
    char out[OUT_CAP];
    char err[OUT_CAP];
};

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill_text(unsigned char *p, uint64_t *rng)
{
    static const char *const words[] = {
        "page ",   "store ",  "memory ",   "tenant ", "the ",
        "of ",     "pool ",   "{\"id\": ", "null, ",  "function ",
        "return ", "0x7f3a ", "\n",
    };
    size_t n = 0, nw = sizeof words / sizeof words[0];
    while (n < PG) {
        const char *w = words[rng_next(rng) % nw];
        for (; *w && n < PG; w++)
            p[n++] = (unsigned char)*w;
    }
}

/* Builds the 256-page corpus in memory (caller frees). */
static unsigned char *make_corpus(void)
{
    unsigned char *c = calloc(NPAGES, PG);
    uint64_t rng = 0x9e3779b97f4a7c15u;
    ASSERT_TRUE(c != NULL);
    for (size_t i = ZERO_END; i < SAME_END; i++)
        memset(c + i * PG, 0xa5, PG);
    for (size_t i = SAME_END; i < RANDOM_END; i++)
        for (size_t k = 0; k < PG; k += 8) {
            uint64_t v = rng_next(&rng);
            memcpy(c + i * PG + k, &v, 8);
        }
    for (size_t i = RANDOM_END; i < TEXT_END; i++)
        fill_text(c + i * PG, &rng);
    for (size_t i = TEXT_END; i < NPAGES; i++) {
        size_t k = i - TEXT_END;
        size_t src = k % 2 ? RANDOM_END + k : SAME_END + k;
        memcpy(c + i * PG, c + src * PG, PG);
    }
    return c;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

/* Writes the corpus to a temporary file, raw or zstd-compressed; the path
 * goes into path[64]. */
static void corpus_file(char *path, int zst)
{
    unsigned char *c = make_corpus();
    snprintf(path, 64, "/tmp/tmem-benchcli-%d%s", (int)getpid(),
             zst ? ".bin.zst" : ".bin");
    if (!zst) {
        write_file(path, c, (size_t)NPAGES * PG);
    } else {
        size_t cap = ZSTD_compressBound((size_t)NPAGES * PG);
        void *z = malloc(cap);
        ASSERT_TRUE(z != NULL);
        size_t n = ZSTD_compress(z, cap, c, (size_t)NPAGES * PG, 3);
        ASSERT_TRUE(!ZSTD_isError(n));
        write_file(path, z, n);
        free(z);
    }
    free(c);
}

static void read_all(int fd, char *buf)
{
    size_t n = 0;
    ssize_t r;
    lseek(fd, 0, SEEK_SET);
    while (n < OUT_CAP - 1 && (r = read(fd, buf + n, OUT_CAP - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
}

static const char *tmem_path(void)
{
    static char path[512];
    const char *b = getenv("BUILD");
    snprintf(path, sizeof path, "%s/tmem", b && *b ? b : "build");
    return path;
}

/* Runs `tmem bench store ARGS...` (NULL-terminated), capturing output. */
static void run_bench(struct proc *p, const char *const *args)
{
    char *argv[32] = {(char *)tmem_path(), "bench", "store"};
    int n = 3;
    for (; *args && n < 31; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    if (access(argv[0], X_OK) != 0)
        tmem_test_fail(__FILE__, __LINE__, "%s not built", argv[0]);
    FILE *o = tmpfile(), *e = tmpfile();
    ASSERT_TRUE(o && e);
    fflush(stdout);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        dup2(fileno(o), 1);
        dup2(fileno(e), 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    read_all(fileno(o), p->out);
    read_all(fileno(e), p->err);
    fclose(o);
    fclose(e);
}

/* Returns the text right after "key": in a flat JSON object, or NULL. */
static const char *json_at(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *at = strstr(json, pat);
    return at ? at + strlen(pat) : NULL;
}

static double json_num(const char *json, const char *key)
{
    const char *v = json_at(json, key);
    if (!v)
        tmem_test_fail(__FILE__, __LINE__, "no \"%s\" in %s", key, json);
    return strtod(v, NULL);
}

static int json_str_is(const char *json, const char *key, const char *want)
{
    const char *v = json_at(json, key);
    size_t n = strlen(want);
    return v && v[0] == '"' && strncmp(v + 1, want, n) == 0 && v[n + 1] == '"';
}

/* The fields the issue requires, plus the ones the bench adds. */
static const char *const required[] = {
    "pages",       "orig_bytes",      "used_bytes",      "zero_pages",
    "dedup_pages", "put_us_p50",      "put_us_p99",      "get_us_p50",
    "get_us_p99",  "put_pages_per_s", "get_pages_per_s", "threads",
    "compress",    "data_bytes",      "meta_bytes",      "ratio",
};

/* Runs a successful JSON bench on a fresh corpus and checks the counts
 * every codec must agree on. */
static void check_run(struct proc *p, int zst, const char *const *args)
{
    char path[64];
    const char *full[16] = {"--corpus", path, "--json"};
    int n = 3;
    corpus_file(path, zst);
    for (; *args; args++)
        full[n++] = *args;
    full[n] = NULL;
    run_bench(p, full);
    unlink(path);
    if (p->status != 0)
        tmem_test_fail(__FILE__, __LINE__, "exit %d: %s", p->status, p->err);
    ASSERT_EQ(p->out[0], '{');
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!json_at(p->out, required[i]))
            tmem_test_fail(__FILE__, __LINE__, "missing \"%s\" in %s",
                           required[i], p->out);
    ASSERT_EQ(json_num(p->out, "pages"), NPAGES);
    ASSERT_EQ(json_num(p->out, "orig_bytes"), (double)NPAGES * PG);
    ASSERT_EQ(json_num(p->out, "zero_pages"), NZEROISH);
    ASSERT_GE(json_num(p->out, "dedup_pages"), NDUP);
    ASSERT_GT(json_num(p->out, "used_bytes"), 0);
    ASSERT_EQ(json_num(p->out, "verified_pages"), NPAGES);
    ASSERT_GT(json_num(p->out, "put_pages_per_s"), 0);
    ASSERT_GT(json_num(p->out, "get_pages_per_s"), 0);
    ASSERT_LE(json_num(p->out, "put_us_p50"), json_num(p->out, "put_us_p99"));
    ASSERT_LE(json_num(p->out, "get_us_p50"), json_num(p->out, "get_us_p99"));
}

TEST(bench_cli_loader_reads_generated_corpus)
{
    char path[64];
    void *pages = NULL;
    size_t n = 0;
    unsigned char *want = make_corpus();
    for (int zst = 0; zst <= 1; zst++) {
        corpus_file(path, zst);
        ASSERT_EQ(tmem__corpus_load(path, &pages, &n), 0);
        unlink(path);
        ASSERT_EQ(n, NPAGES);
        ASSERT_MEM_EQ(pages, want, (size_t)NPAGES * PG);
        tmem__corpus_free(pages, n);
    }
    free(want);
}

TEST(bench_cli_json_lz4_counts)
{
    struct proc p;
    const char *args[] = {NULL};
    check_run(&p, 0, args);
    ASSERT_EQ(json_num(p.out, "threads"), 1);
    ASSERT_TRUE(json_str_is(p.out, "compress", "lz4"));
    /* Random pages cannot shrink; zero and duplicate pages cost nothing. */
    ASSERT_GE(json_num(p.out, "raw_pages"), NRANDOM);
    ASSERT_LT(json_num(p.out, "used_bytes"), json_num(p.out, "orig_bytes"));
    ASSERT_GT(json_num(p.out, "ratio") * 1000, 1000); /* ASSERT_* are integer */
    ASSERT_EQ(json_num(p.out, "put_refused"), 0);
}

TEST(bench_cli_zst_corpus_two_threads_zstd)
{
    struct proc p;
    const char *args[] = {"--threads", "2", "--compress", "zstd", NULL};
    check_run(&p, 1, args);
    ASSERT_EQ(json_num(p.out, "threads"), 2);
    ASSERT_TRUE(json_str_is(p.out, "compress", "zstd"));
}

TEST(bench_cli_none_shared_oid)
{
    struct proc p;
    const char *args[] = {"--compress=none", "--threads=3", "--oid", "shared",
                          NULL};
    check_run(&p, 0, args);
    ASSERT_TRUE(json_str_is(p.out, "compress", "none"));
    ASSERT_TRUE(json_str_is(p.out, "oid", "shared"));
}

TEST(bench_cli_budget_refuses_and_still_verifies)
{
    char path[64];
    struct proc p;
    corpus_file(path, 0);
    const char *args[] = {"--corpus", path, "--budget", "64K", "--json", NULL};
    run_bench(&p, args);
    unlink(path);
    if (p.status != 0)
        tmem_test_fail(__FILE__, __LINE__, "exit %d: %s", p.status, p.err);
    double refused = json_num(p.out, "put_refused");
    ASSERT_GT(refused, 0);
    ASSERT_EQ(json_num(p.out, "verified_pages") + refused, NPAGES);
    ASSERT_EQ(json_num(p.out, "budget_bytes"), 65536);
}

TEST(bench_cli_readable_output)
{
    char path[64];
    struct proc p;
    corpus_file(path, 0);
    const char *args[] = {"--corpus", path, NULL};
    run_bench(&p, args);
    unlink(path);
    ASSERT_EQ(p.status, 0);
    ASSERT_TRUE(p.out[0] != '{');
    ASSERT_TRUE(strstr(p.out, "put us p50") != NULL);
    ASSERT_TRUE(strstr(p.out, "ratio orig/used") != NULL);
}

TEST(bench_cli_help)
{
    struct proc p;
    const char *args[] = {"--help", NULL};
    run_bench(&p, args);
    ASSERT_EQ(p.status, 0);
    ASSERT_TRUE(strstr(p.out, "--corpus") != NULL);
    ASSERT_TRUE(strstr(p.out, "--threads") != NULL);
}

TEST(bench_cli_bad_arguments_exit_2)
{
    static const char *const cases[][6] = {
        {NULL},
        {"--json", NULL},
        {"--corpus", NULL},
        {"--corpus", "x", "--threads", "0", NULL},
        {"--corpus", "x", "--threads", "2x", NULL},
        {"--corpus", "x", "--threads", "100000", NULL},
        {"--corpus", "x", "--compress", "lzma", NULL},
        {"--corpus", "x", "--budget", "12Q", NULL},
        {"--corpus", "x", "--budget", "-5", NULL},
        {"--corpus", "x", "--oid", "sometimes", NULL},
        {"--corpus", "x", "--json=yes", NULL},
        {"--corpus", "x", "--bogus", NULL},
        {"--corpus", "x", "extra", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct proc p;
        run_bench(&p, cases[i]);
        if (p.status != 2)
            tmem_test_fail(__FILE__, __LINE__, "case %zu: exit %d", i,
                           p.status);
        ASSERT_TRUE(strstr(p.err, "tmem bench store") != NULL);
    }
}

TEST(bench_cli_missing_corpus_exits_1_with_errno_name)
{
    struct proc p;
    const char *args[] = {"--corpus", "/nonexistent/tmem-corpus.bin", "--json",
                          NULL};
    run_bench(&p, args);
    ASSERT_EQ(p.status, 1);
    ASSERT_TRUE(strstr(p.err, "ENOENT") != NULL);
    ASSERT_EQ(p.out[0], '\0');
}
