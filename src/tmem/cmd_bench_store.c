/*
 * tmem bench store: the embedded store's benchmark (issue 2).
 *
 * Loads a corpus of 4 KiB pages (raw, or .zst), creates an embedded store
 * with one client and one persistent pool, and has N threads put disjoint
 * sets of the pages (blocks of 64 pages dealt round-robin; pool index =
 * page number; each thread uses its own object id {thread + 1, 0, 0} unless
 * --oid shared puts every page under {1, 0, 0}).  Every put and get is timed on
 * its own (clock_gettime around the call; the latencies go to one array slot
 * per page, so the threads share nothing but the store).  After the puts the
 * store's counters are read; then the same threads get every page back and
 * compare every byte.
 *
 * Output: one JSON object (--json) or the same fields as readable lines.
 * Exit status: 0 ok; 1 the corpus could not be read, the store failed, or a
 * page came back wrong or went missing; 2 bad arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tmem/store.h>

#include "cmds.h"
#include "common/corpus.h"
#include "common/size.h"
#include "opt_table.h"

#define MAX_THREADS 256
#define BLOCK_PAGES 64 /* pages dealt to a thread at a time */

/* Page outcomes, one byte per page. */
enum { PG_NONE, PG_STORED, PG_REFUSED, PG_OK, PG_MISSING, PG_WRONG };

struct bench_opts {
    const char *corpus;
    int threads;
    tmem_compress compress;
    uint64_t budget;
    bool json;
    bool shared_oid;
    bool help;
};

/* ---- argument parsing: one table of options --------------------------- */

static int opt_corpus(void *o, const char *v)
{
    ((struct bench_opts *)o)->corpus = v;
    return 0;
}

static int opt_threads(void *o, const char *v)
{
    return opt_int(v, 1, MAX_THREADS, &((struct bench_opts *)o)->threads);
}

static int opt_compress(void *o, const char *v)
{
    return tmem_compress_parse(v, &((struct bench_opts *)o)->compress) < 0
               ? TMEM_EINVAL
               : 0;
}

/* SIZE: bytes, or with a binary suffix K, M, G, T (optionally "iB"/"B"). */
static int opt_budget(void *o, const char *v)
{
    int rc = tmem__parse_size(v, &((struct bench_opts *)o)->budget);
    return rc == -ERANGE ? TMEM_ERANGE : rc ? TMEM_EINVAL : 0;
}

static int opt_oid(void *o, const char *v)
{
    if (strcmp(v, "shared") && strcmp(v, "per-thread"))
        return TMEM_EINVAL;
    ((struct bench_opts *)o)->shared_oid = strcmp(v, "shared") == 0;
    return 0;
}

static int opt_json(void *o, const char *v)
{
    (void)v;
    ((struct bench_opts *)o)->json = true;
    return 0;
}

static int opt_help(void *o, const char *v)
{
    (void)v;
    ((struct bench_opts *)o)->help = true;
    return 0;
}

static const struct opt_spec bench_opts_table[] = {
    {"--corpus", "FILE", opt_corpus, "4 KiB pages, raw or .zst (required)"},
    {"--threads", "N", opt_threads,
     "threads putting/getting (1-256, default 1)"},
    {"--compress", "lz4|zstd|none", opt_compress, "codec (default lz4)"},
    {"--budget", "SIZE", opt_budget,
     "store budget, e.g. 64M (default 0 = unlimited)"},
    {"--oid", "per-thread|shared", opt_oid,
     "one object per thread (default) or one for all"},
    {"--json", NULL, opt_json, "print one JSON object"},
    {"--help", NULL, opt_help, "this text"},
};

#define NOPTS (sizeof bench_opts_table / sizeof bench_opts_table[0])

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: tmem bench store --corpus FILE [options]\n\n"
               "Puts every page of FILE into an embedded store (one client,"
               " one persistent\npool), gets them all back verifying every"
               " byte, and reports memory used\nand per-operation latency.\n\n"
               "options:\n");
    opt_usage(f, bench_opts_table, NOPTS, 32);
}

static int parse_args(struct bench_opts *o, int argc, char **argv)
{
    *o = (struct bench_opts){.threads = 1, .compress = TMEM_COMPRESS_LZ4};
    int rc = opt_parse("tmem bench store", bench_opts_table, NOPTS, o, argc,
                       argv);
    if (rc)
        return rc;
    if (!o->help && !o->corpus) {
        fprintf(stderr, "tmem bench store: --corpus FILE is required\n");
        return CLI_USAGE;
    }
    return 0;
}

/* ---- the measured run -------------------------------------------------- */

struct bench_run {
    const struct bench_opts *o;
    const unsigned char *pages;
    size_t npages;
    tmem_store *store;
    tmem_client *client;
    int pool;
    uint32_t *put_ns; /* one per page */
    uint32_t *get_ns;
    unsigned char *state; /* PG_* per page */
};

struct worker {
    struct bench_run *r;
    pthread_t tid;
    int id;
    void (*phase)(struct worker *);
    int err; /* first unexpected store error, 0 if none */
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint32_t clamp_ns(uint64_t ns)
{
    return ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* A worker's pages: blocks of BLOCK_PAGES, dealt round-robin to the
 * threads.  Contiguous halves would not do: real corpora bunch their zero
 * pages (the shared one has 90% of them in its second half), so one thread
 * would get most of the work.  A block is one full chunk of an object's
 * page map, so no object's map is sparser than with one thread. */
static size_t first_page(const struct worker *w)
{
    return (size_t)w->id * BLOCK_PAGES;
}

/* The worker's page after page i (may be >= npages: the end). */
static size_t next_page(const struct worker *w, size_t i)
{
    i++;
    if (i % BLOCK_PAGES == 0)
        i += (size_t)(w->r->o->threads - 1) * BLOCK_PAGES;
    return i;
}

static tmem_oid worker_oid(const struct worker *w)
{
    tmem_oid oid = {{w->r->o->shared_oid ? 1 : (uint64_t)w->id + 1, 0, 0}};
    return oid;
}

static void put_slice(struct worker *w)
{
    struct bench_run *r = w->r;
    tmem_oid oid = worker_oid(w);
    for (size_t i = first_page(w); i < r->npages; i = next_page(w, i)) {
        const void *pg = r->pages + i * TMEM_PAGE_SIZE;
        uint64_t t0 = now_ns();
        int rc = tmem_page_put(r->client, r->pool, &oid, (uint32_t)i, pg);
        r->put_ns[i] = clamp_ns(now_ns() - t0);
        r->state[i] = rc == 1 ? PG_STORED : PG_REFUSED;
        /* Over the budget a persistent put is refused: counted, not fatal. */
        if (rc < 0 && rc != TMEM_ENOSPC && !w->err)
            w->err = rc;
    }
}

static void get_slice(struct worker *w)
{
    struct bench_run *r = w->r;
    tmem_oid oid = worker_oid(w);
    unsigned char buf[TMEM_PAGE_SIZE] __attribute__((aligned(64)));
    for (size_t i = first_page(w); i < r->npages; i = next_page(w, i)) {
        uint64_t t0 = now_ns();
        int rc = tmem_page_get(r->client, r->pool, &oid, (uint32_t)i, buf);
        r->get_ns[i] = clamp_ns(now_ns() - t0);
        if (rc < 0 && !w->err)
            w->err = rc;
        if (r->state[i] != PG_STORED)
            continue;
        if (rc != 1)
            r->state[i] = PG_MISSING;
        else if (memcmp(buf, r->pages + i * TMEM_PAGE_SIZE, TMEM_PAGE_SIZE))
            r->state[i] = PG_WRONG;
        else
            r->state[i] = PG_OK;
    }
}

/* Start gate: the workers wait until every one of them exists, so the
 * phase's wall time covers the threads running together. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
};

static struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                           false};

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = open;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_mutex_lock(&gate.mu);
    while (!gate.open)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
    w->phase(w);
    return NULL;
}

/* Runs one phase on every worker at once; returns its wall time in ns, or
 * 0 when a thread could not be started. */
static uint64_t run_phase(struct bench_run *r, struct worker *ws,
                          void (*phase)(struct worker *))
{
    int n = r->o->threads, started = 0;

    gate_set(false);
    for (; started < n; started++) {
        ws[started].phase = phase;
        if (pthread_create(&ws[started].tid, NULL, worker_main, &ws[started]))
            break;
    }
    uint64_t t0 = now_ns();
    gate_set(true);
    for (int k = 0; k < started; k++)
        pthread_join(ws[k].tid, NULL);
    uint64_t t1 = now_ns();
    if (started < n)
        return 0;
    return t1 > t0 ? t1 - t0 : 1;
}

/* ---- results ----------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Returns the q-quantile of the sorted ns[0..n), in microseconds. */
static double quantile_us(const uint32_t *ns, size_t n, double q)
{
    if (n == 0)
        return 0;
    return ns[(size_t)(q * (double)(n - 1) + 0.5)] / 1000.0;
}

enum { F_U64, F_DBL, F_STR };

struct field {
    const char *key;
    int kind;
    uint64_t u;
    double d;
    const char *s;
    const char *label; /* readable form; NULL = JSON only */
};

/* clang-format off */
#define FU(k, v, l) {.key = k, .kind = F_U64, .u = (v), .label = l}
#define FD(k, v, l) {.key = k, .kind = F_DBL, .d = (v), .label = l}
#define FS(k, v, l) {.key = k, .kind = F_STR, .s = (v), .label = l}
/* clang-format on */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void print_fields(const struct field *fs, size_t n, bool json)
{
    if (json)
        fputc('{', stdout);
    for (size_t i = 0; i < n; i++) {
        const struct field *f = &fs[i];
        if (!json && !f->label)
            continue;
        if (json)
            printf("%s\"%s\": ", i ? ", " : "", f->key);
        else
            printf("%-28s ", f->label);
        if (f->kind == F_U64)
            printf("%" PRIu64, f->u);
        else if (f->kind == F_DBL)
            printf(json ? "%.3f" : "%.2f", f->d);
        else if (json)
            json_string(stdout, f->s);
        else
            fputs(f->s, stdout);
        if (!json)
            fputc('\n', stdout);
    }
    if (json)
        fputs("}\n", stdout);
}

struct outcome {
    size_t refused, missing, wrong, first_bad;
};

static struct outcome count_outcomes(const struct bench_run *r)
{
    struct outcome o = {0, 0, 0, (size_t)-1};
    for (size_t i = 0; i < r->npages; i++) {
        unsigned char s = r->state[i];
        o.refused += s == PG_REFUSED;
        o.missing += s == PG_MISSING;
        o.wrong += s == PG_WRONG;
        if ((s == PG_MISSING || s == PG_WRONG) && o.first_bad == (size_t)-1)
            o.first_bad = i;
    }
    return o;
}

static void report(const struct bench_run *r, const tmem_global_stats *st,
                   uint64_t put_wall, uint64_t get_wall,
                   const struct outcome *oc)
{
    size_t n = r->npages;
    double put_s = put_wall / 1e9, get_s = get_wall / 1e9;
    double ratio = st->used_bytes ? (double)st->orig_bytes / st->used_bytes : 0;
    const struct field fs[] = {
        FS("corpus", r->o->corpus, "corpus"),
        FU("pages", n, "pages"),
        FU("threads", (uint64_t)r->o->threads, "threads"),
        FS("compress", tmem_compress_name(r->o->compress), "compression"),
        FS("oid", r->o->shared_oid ? "shared" : "per-thread", "object ids"),
        FU("budget_bytes", r->o->budget, "budget bytes (0 = none)"),
        FU("orig_bytes", st->orig_bytes, "original bytes"),
        FU("used_bytes", st->used_bytes, "used bytes (data + meta)"),
        FU("data_bytes", st->data_bytes, "data bytes"),
        FU("meta_bytes", st->meta_bytes, "metadata bytes"),
        FD("ratio", ratio, "ratio orig/used"),
        FU("zero_pages", st->zero_pages, "zero/same-filled pages"),
        FU("dedup_pages", st->dedup_pages, "deduplicated pages"),
        FU("raw_pages", st->raw_pages, "raw (incompressible) pages"),
        FU("unique_blobs", st->unique_blobs, "distinct contents stored"),
        FU("put_refused", oc->refused, "puts refused (budget)"),
        FD("put_us_p50", quantile_us(r->put_ns, n, 0.50), "put us p50"),
        FD("put_us_p99", quantile_us(r->put_ns, n, 0.99), "put us p99"),
        FD("get_us_p50", quantile_us(r->get_ns, n, 0.50), "get us p50"),
        FD("get_us_p99", quantile_us(r->get_ns, n, 0.99), "get us p99"),
        FD("put_pages_per_s", n / put_s, "put pages/s"),
        FD("get_pages_per_s", n / get_s, "get pages/s"),
        FD("put_s", put_s, "put wall seconds"),
        FD("get_s", get_s, "get wall seconds"),
        FU("verified_pages", n - oc->refused - oc->missing - oc->wrong,
           "pages verified byte-exact"),
        FU("missing_pages", oc->missing, NULL),
        FU("wrong_pages", oc->wrong, NULL),
    };
    print_fields(fs, sizeof fs / sizeof fs[0], r->o->json);
}

/* ---- setup and teardown ------------------------------------------------ */

static int open_store(struct bench_run *r)
{
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.budget_bytes = r->o->budget;
    cfg.compress = r->o->compress;
    int rc = tmem_store_create(&cfg, &r->store);
    if (rc < 0)
        return rc;
    rc = tmem_client_create(r->store, &r->client);
    if (rc < 0)
        return rc;
    rc = tmem_store_set_compress(r->store, rc, r->o->compress);
    if (rc < 0)
        return rc;
    r->pool = tmem_pool_new(r->client, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                            NULL);
    return r->pool < 0 ? r->pool : 0;
}

static int alloc_arrays(struct bench_run *r)
{
    r->put_ns = calloc(r->npages, sizeof *r->put_ns);
    r->get_ns = calloc(r->npages, sizeof *r->get_ns);
    r->state = calloc(r->npages, 1);
    return r->put_ns && r->get_ns && r->state ? 0 : TMEM_ENOMEM;
}

static void free_run(struct bench_run *r)
{
    tmem_store_destroy(r->store); /* also its client */
    free(r->put_ns);
    free(r->get_ns);
    free(r->state);
}

static void make_workers(struct bench_run *r, struct worker *ws)
{
    for (int k = 0; k < r->o->threads; k++)
        ws[k] = (struct worker){.r = r, .id = k};
}

/* First unexpected store error of any worker, or 0. */
static int worker_error(const struct worker *ws, int n)
{
    for (int k = 0; k < n; k++)
        if (ws[k].err)
            return ws[k].err;
    return 0;
}

static int fail(const char *what, int err)
{
    fprintf(stderr, "tmem bench store: %s: %s (%s)\n", what, tmem_strerror(err),
            tmem_errname(err));
    return CLI_FAIL;
}

/* Puts, reads the counters, gets and verifies, reports. */
static int measure(struct bench_run *r)
{
    struct worker ws[MAX_THREADS];
    tmem_global_stats st;
    int n = r->o->threads;

    make_workers(r, ws);
    uint64_t put_wall = run_phase(r, ws, put_slice);
    if (!put_wall)
        return fail("starting threads", -EAGAIN);
    if (worker_error(ws, n))
        return fail("put", worker_error(ws, n));
    tmem_store_stats(r->store, &st);
    uint64_t get_wall = run_phase(r, ws, get_slice);
    if (!get_wall)
        return fail("starting threads", -EAGAIN);
    if (worker_error(ws, n))
        return fail("get", worker_error(ws, n));
    qsort(r->put_ns, r->npages, sizeof *r->put_ns, cmp_u32);
    qsort(r->get_ns, r->npages, sizeof *r->get_ns, cmp_u32);
    struct outcome oc = count_outcomes(r);
    report(r, &st, put_wall, get_wall, &oc);
    if (oc.missing || oc.wrong) {
        fprintf(stderr,
                "tmem bench store: %zu pages wrong, %zu missing "
                "(first: page %zu)\n",
                oc.wrong, oc.missing, oc.first_bad);
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cmd_bench_store(struct tmem_cli *cli, int argc, char **argv)
{
    struct bench_opts o;
    struct bench_run r = {.o = &o};
    void *pages = NULL;
    int rc;

    (void)cli;
    rc = parse_args(&o, argc, argv);
    if (rc) {
        fprintf(stderr, "usage: tmem bench store --corpus FILE [options]"
                        " (see --help)\n");
        return rc;
    }
    if (o.help) {
        bench_usage(stdout);
        return CLI_OK;
    }
    if ((rc = cli_corpus("tmem bench store", o.corpus, &pages,
                         &r.npages)) != 0)
        return rc;
    r.pages = pages;
    if (r.npages == 0 || r.npages > UINT32_MAX) {
        fprintf(stderr, "tmem bench store: %s: %zu pages (need 1..2^32-1)\n",
                o.corpus, r.npages);
        rc = CLI_FAIL;
    } else if ((rc = alloc_arrays(&r)) < 0 || (rc = open_store(&r)) < 0) {
        rc = fail("setup", rc);
    } else {
        rc = measure(&r);
    }
    free_run(&r);
    tmem__corpus_free(pages, r.npages);
    return rc;
}
