/*
 * tmem bench daemon: the store's benchmark through tmemd, with the embedded
 * store measured in the same run as the reference.
 *
 * Daemon: --socket PATH (global option) must answer; without it the
 * default socket is tried and, when nothing answers there, the benchmark
 * starts its own tmemd (the tmemd next to this tmem binary) on a socket in
 * a fresh temp directory and stops it at the end.
 *
 * One round: N tenant processes (fork), each with its own connection and
 * persistent pool, put disjoint slices of the corpus in batches of B pages
 * (tmem_conn_batch), all starting together (a process-shared barrier);
 * that is done --repeat R times, the slice flushed (untimed) between
 * passes so every pass stores it anew.  Then they get the slice back 4R
 * times (a get costs about a quarter of a put) and compare every byte.
 * Throughput is the pages of all tenants over the wall time from the
 * common start to the last tenant's end, summed over the passes: R passes
 * make a phase long enough (~0.2 s) that one scheduler hiccup does not
 * decide it.  put_cpus/get_cpus are the CPUs the whole machine kept busy
 * during the phases (/proc/stat, all rounds): with one tenant they bound
 * what more tenants can add, cpus / put_cpus.  The per-page latencies
 * put_us/get_us are each batch's time divided by its pages (last pass);
 * rtt_*_us are single-page operations (one round trip each, tenant 0,
 * after the last round).  The store counters (used,
 * zero, dedup pages) are the daemon's global counters after the puts minus
 * before.  The embedded reference runs the same batches on an embedded
 * connection (TMEM_EMBEDDED=1), one tenant.  The best of --rounds rounds
 * is reported for every throughput (this machine is shared and noisy).
 *
 * Exit status: 0 ok; 1 no daemon, corpus unreadable, an error or a wrong
 * page; 2 bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tmem/client.h>

#include "client/json.h"
#include "cmds.h"
#include "common/corpus.h"
#include "opt_table.h"
#include "proto/conn.h"
#include "proto/proto.h"

#define MAX_CLIENTS 64
#define MAX_BATCH 1024
#define MAX_REPEAT 100
#define GET_PASSES 4 /* get passes per put pass */
#define RTT_OPS 2000
#define BENCH_TIMEOUT_S 600

struct dopts {
    const char *corpus;
    int clients, batch, rounds, repeat;
    bool json, help;
};

/* ---- options: one table ------------------------------------------------- */

static int o_corpus(void *o, const char *v)
{
    ((struct dopts *)o)->corpus = v;
    return 0;
}
static int o_clients(void *o, const char *v)
{
    return opt_int(v, 1, MAX_CLIENTS, &((struct dopts *)o)->clients);
}
static int o_batch(void *o, const char *v)
{
    return opt_int(v, 1, MAX_BATCH, &((struct dopts *)o)->batch);
}
static int o_rounds(void *o, const char *v)
{
    return opt_int(v, 1, 100, &((struct dopts *)o)->rounds);
}
static int o_repeat(void *o, const char *v)
{
    return opt_int(v, 1, MAX_REPEAT, &((struct dopts *)o)->repeat);
}
static int o_json(void *o, const char *v)
{
    (void)v;
    ((struct dopts *)o)->json = true;
    return 0;
}
static int o_help(void *o, const char *v)
{
    (void)v;
    ((struct dopts *)o)->help = true;
    return 0;
}

static const struct opt_spec dopts_table[] = {
    {"--corpus", "FILE", o_corpus,
     "4 KiB pages, raw or .zst (default: the"
     " shared corpus)"},
    {"--clients", "N", o_clients, "tenant processes (1-64, default 1)"},
    {"--batch", "N", o_batch, "pages per batch (1-1024, default 64)"},
    {"--rounds", "N", o_rounds, "rounds, best reported (default 3)"},
    {"--repeat", "N", o_repeat,
     "passes over the corpus per phase and round (1-100, default 8)"},
    {"--json", NULL, o_json, "print one JSON object"},
    {"--help", NULL, o_help, "this text"},
};
#define NDOPTS (sizeof dopts_table / sizeof dopts_table[0])

static void dusage(FILE *f)
{
    fprintf(f, "usage: tmem [--socket PATH] bench daemon [--corpus FILE] "
               "[options]\n\nPuts and gets the corpus through tmemd from N "
               "tenant processes in batches,\nand the same batches on an "
               "embedded store, in one run.\n\noptions:\n");
    opt_usage(f, dopts_table, NDOPTS, 20);
}

static int dparse(struct dopts *o, int argc, char **argv)
{
    *o = (struct dopts){.clients = 1, .batch = 64, .rounds = 3, .repeat = 8};
    int rc = opt_parse("tmem bench daemon", dopts_table, NDOPTS, o, argc,
                       argv);
    if (rc)
        return rc;
    if (!o->corpus)
        o->corpus = tmem__corpus_default();
    return 0;
}

/* ---- shared state between the tenant processes -------------------------- */

/* When one worker (a tenant process or an embedded thread) ran the last
 * put pass and the get phase. */
struct phase_times {
    uint64_t put_t0, put_t1, get_t0, get_t1;
};

struct tenant_res {
    int err;      /* first error, 0 if none */
    uint64_t bad; /* pages missing or wrong */
};

/* One mmap(MAP_SHARED) region: header, then per-page latency slots. */
struct shared {
    pthread_barrier_t bar;
    struct tenant_res res[MAX_CLIENTS];
    struct phase_times times[MAX_CLIENTS];
    uint32_t rtt_put_ns[RTT_OPS], rtt_get_ns[RTT_OPS];
    uint32_t rtt_n;
    /* then put_ns[npages], get_ns[npages] (per-page, batch / size) */
};

struct run {
    const struct dopts *o;
    const unsigned char *pages;
    size_t npages;
    const char *sock;
    struct shared *sh;
    uint32_t *put_ns, *get_ns;
};

/* Runs one phase (put or get) of pages [lo, hi) in batches; fills the
 * per-page latency slots; returns 0 or the first error. */
static int run_batches(tmem_conn *c, int pool, const struct run *r, bool put,
                       size_t lo, size_t hi, unsigned char *back, uint32_t *lat)
{
    tmem_op ops[MAX_BATCH];
    tmem_oid oid = {{lo + 1, 0, 0}};
    for (size_t i = lo; i < hi;) {
        size_t k = 0;
        for (; k < (size_t)r->o->batch && i + k < hi; k++) {
            size_t p = i + k;
            ops[k] =
                (tmem_op){.op = put ? TMEM_PUT : TMEM_GET,
                          .pool = pool,
                          .oid = oid,
                          .index = (uint32_t)(p - lo),
                          .page = put ? (void *)(r->pages + p * TMEM_PAGE_SIZE)
                                      : back + (p - lo) * TMEM_PAGE_SIZE};
        }
        uint64_t t0 = tmem__now_ns();
        int rc = tmem_conn_batch(c, ops, k);
        uint64_t per = (tmem__now_ns() - t0) / k;
        if (rc < 0)
            return rc;
        for (size_t j = 0; j < k; j++) {
            lat[i + j] = per > UINT32_MAX ? UINT32_MAX : (uint32_t)per;
            if (ops[j].result != 1)
                return ops[j].result < 0 ? ops[j].result : -ENOENT;
        }
        i += k;
    }
    return 0;
}

static void measure_rtt(tmem_conn *c, int pool, struct run *r)
{
    unsigned char buf[TMEM_PAGE_SIZE];
    tmem_oid oid = {{1ull << 40, 0, 0}};
    size_t n = r->npages < RTT_OPS ? r->npages : RTT_OPS;
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = tmem__now_ns();
        tmem_conn_put(c, pool, &oid, (uint32_t)i,
                      r->pages + i * TMEM_PAGE_SIZE);
        uint64_t t1 = tmem__now_ns();
        tmem_conn_get(c, pool, &oid, (uint32_t)i, buf);
        uint64_t t2 = tmem__now_ns();
        r->sh->rtt_put_ns[i] = (uint32_t)(t1 - t0);
        r->sh->rtt_get_ns[i] = (uint32_t)(t2 - t1);
    }
    r->sh->rtt_n = (uint32_t)n;
}

/* A tenant process.  Barriers: per put pass start and end (the parent sums
 * the pass's wall time, and after the last reads the counters), then get
 * start and end. */
/* Busy and total CPU time of the machine so far (/proc/stat jiffies). */
struct cpu_ticks {
    uint64_t busy, total;
};

static void cpu_ticks_add(struct cpu_ticks *acc, int sign)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return;
    /* user nice system idle iowait irq softirq steal */
    uint64_t idle = v[3] + v[4], total = 0;
    for (int i = 0; i < 8; i++)
        total += v[i];
    acc->busy += (uint64_t)sign * (total - idle);
    acc->total += (uint64_t)sign * total;
}

/* Worker id's slice of the corpus: pages [*lo, *hi). */
static void slice_of(const struct run *r, int id, size_t *lo, size_t *hi)
{
    *lo = r->npages * (size_t)id / (size_t)r->o->clients;
    *hi = r->npages * (size_t)(id + 1) / (size_t)r->o->clients;
}

/* A worker's phases, on slice [lo, hi): --repeat put passes (the slice
 * flushed between passes so each stores it anew), then GET_PASSES x
 * --repeat get passes; every phase starts and ends on bar, which the
 * leader (lead_puts, lead_gets) waits on too.  Records its times in *t.
 * Returns rc (the setup's result) or the first error. */
static int run_phases(tmem_conn *c, int pool, const struct run *r, size_t lo,
                      size_t hi, unsigned char *back, uint32_t *put_lat,
                      uint32_t *get_lat, pthread_barrier_t *bar,
                      struct phase_times *t, int rc)
{
    tmem_oid oid = {{lo + 1, 0, 0}}; /* run_batches' object for the slice */
    for (int k = 0; k < r->o->repeat; k++) {
        pthread_barrier_wait(bar);
        t->put_t0 = tmem__now_ns();
        if (rc >= 0)
            rc = run_batches(c, pool, r, true, lo, hi, back, put_lat);
        t->put_t1 = tmem__now_ns();
        pthread_barrier_wait(bar);
        if (rc >= 0 && k + 1 < r->o->repeat) {
            int f = tmem_conn_flush_object(c, pool, &oid);
            rc = f < 0 ? f : 0;
        }
    }
    pthread_barrier_wait(bar);
    t->get_t0 = tmem__now_ns();
    for (int k = 0; rc >= 0 && k < GET_PASSES * r->o->repeat; k++)
        rc = run_batches(c, pool, r, false, lo, hi, back, get_lat);
    t->get_t1 = tmem__now_ns();
    pthread_barrier_wait(bar);
    return rc;
}

/* The wall time of the phase the workers just ended: first start to last
 * end. */
static uint64_t wall_of(const struct phase_times *t, int n, bool get)
{
    uint64_t t0 = UINT64_MAX, t1 = 0;
    for (int i = 0; i < n; i++) {
        uint64_t a = get ? t[i].get_t0 : t[i].put_t0;
        uint64_t b = get ? t[i].get_t1 : t[i].put_t1;
        t0 = a < t0 ? a : t0;
        t1 = b > t1 ? b : t1;
    }
    return t1 > t0 ? t1 - t0 : 0;
}

/* The leader's side of run_phases: the put passes' summed wall time, and
 * the CPU ticks spent in them (cpu may be NULL). */
static uint64_t lead_puts(const struct run *r, pthread_barrier_t *bar,
                          const struct phase_times *t, int n,
                          struct cpu_ticks *cpu)
{
    uint64_t wall = 0;
    for (int k = 0; k < r->o->repeat; k++) {
        if (cpu)
            cpu_ticks_add(cpu, -1);
        pthread_barrier_wait(bar); /* pass start */
        pthread_barrier_wait(bar); /* pass end */
        if (cpu)
            cpu_ticks_add(cpu, +1);
        wall += wall_of(t, n, false);
    }
    return wall;
}

/* ...and of the get phase: its wall time. */
static uint64_t lead_gets(pthread_barrier_t *bar, const struct phase_times *t,
                          int n, struct cpu_ticks *cpu)
{
    if (cpu)
        cpu_ticks_add(cpu, -1);
    pthread_barrier_wait(bar); /* get start */
    pthread_barrier_wait(bar); /* get end */
    if (cpu)
        cpu_ticks_add(cpu, +1);
    return wall_of(t, n, true);
}

/* Pages per second of a phase of `passes` passes over the corpus. */
static double pps_of(const struct run *r, int passes, uint64_t wall)
{
    return (double)r->npages * passes / ((double)(wall + 1) / 1e9);
}

static int tenant(struct run *r, int id, bool rtt)
{
    struct tenant_res *res = &r->sh->res[id];
    size_t lo, hi;
    slice_of(r, id, &lo, &hi);
    unsigned char *back = malloc((hi - lo + 1) * TMEM_PAGE_SIZE);
    tmem_conn *c = NULL;
    int pool = -1, rc;

    setenv("TMEM_EMBEDDED", "0", 1);
    if (back) /* fault it in now: page faults are not what we measure */
        memset(back, 0xa5, (hi - lo + 1) * TMEM_PAGE_SIZE);
    rc = back ? tmem_connect(r->sock, &c) : -ENOMEM;
    if (rc == 0)
        rc = pool = tmem_conn_pool_new(
            c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), NULL);
    rc = run_phases(c, pool, r, lo, hi, back, r->put_ns, r->get_ns,
                    &r->sh->bar, &r->sh->times[id], rc);
    for (size_t p = lo; rc >= 0 && p < hi; p++)
        res->bad += memcmp(back + (p - lo) * TMEM_PAGE_SIZE,
                           r->pages + p * TMEM_PAGE_SIZE, TMEM_PAGE_SIZE) != 0;
    if (rc >= 0 && rtt)
        measure_rtt(c, pool, r);
    /* Destroy the pool before leaving: a disconnect frees it only when the
     * daemon notices, and pages still there would make the next round's
     * puts dedup hits. */
    if (pool >= 0) {
        int drc = tmem_conn_pool_destroy(c, pool);
        rc = rc < 0 ? rc : drc;
    }
    res->err = rc < 0 ? rc : 0;
    tmem_disconnect(c);
    free(back);
    return rc < 0 ? 1 : 0;
}

/* ---- daemon counters ------------------------------------------------------
 */

static const char *const stat_keys[] = {"orig_bytes", "used_bytes",
                                        "zero_pages", "dedup_pages"};
#define NSTATS (sizeof stat_keys / sizeof stat_keys[0])

/* Reads the daemon's global counters; false when it cannot (not admin). */
static bool daemon_stats(const char *sock, int64_t out[NSTATS])
{
    tmem__conn *c = NULL;
    char *text = NULL;
    tmem__json *root = NULL;
    bool ok = false;

    if (tmem__conn_open(sock, &c) < 0)
        return false;
    if (tmem__conn_stats_json(c, &text) == 0 &&
        tmem__json_parse(text, &root) == 0) {
        const tmem__json *g = tmem__json_get(root, "global");
        ok = g != NULL;
        for (size_t i = 0; ok && i < NSTATS; i++) {
            const tmem__json *v = tmem__json_get(g, stat_keys[i]);
            out[i] = v ? (int64_t)v->num : 0;
        }
    }
    tmem__json_free(root);
    free(text);
    tmem__conn_close(c);
    return ok;
}

/* ---- one round through the daemon --------------------------------------- */

struct round_out {
    double put_pps, get_pps;
    struct cpu_ticks put_cpu, get_cpu;
    int64_t stats[NSTATS];
    bool have_stats;
    int err;
    uint64_t bad;
};

static void round_daemon(struct run *r, bool last, struct round_out *out)
{
    int n = r->o->clients;
    pid_t pids[MAX_CLIENTS];
    int64_t before[NSTATS] = {0}, after[NSTATS] = {0};
    pthread_barrierattr_t ba;

    memset(&r->sh->res, 0, sizeof r->sh->res);
    memset(&r->sh->times, 0, sizeof r->sh->times);
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&r->sh->bar, &ba, (unsigned)n + 1);
    out->have_stats = daemon_stats(r->sock, before);
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            _exit(tenant(r, i, last && i == 0));
        }
    }
    out->put_cpu = out->get_cpu = (struct cpu_ticks){0};
    uint64_t put_wall =
        lead_puts(r, &r->sh->bar, r->sh->times, n, &out->put_cpu);
    out->have_stats = out->have_stats && daemon_stats(r->sock, after);
    uint64_t get_wall = lead_gets(&r->sh->bar, r->sh->times, n, &out->get_cpu);
    for (int i = 0; i < n; i++)
        waitpid(pids[i], NULL, 0);
    pthread_barrier_destroy(&r->sh->bar);

    out->err = 0;
    out->bad = 0;
    for (int i = 0; i < n; i++) {
        const struct tenant_res *t = &r->sh->res[i];
        out->err = out->err ? out->err : t->err;
        out->bad += t->bad;
    }
    out->put_pps = pps_of(r, r->o->repeat, put_wall);
    out->get_pps = pps_of(r, GET_PASSES * r->o->repeat, get_wall);
    for (size_t i = 0; i < NSTATS; i++)
        out->stats[i] = after[i] - before[i];
}

/* The embedded reference: N threads (N = --clients), each with its own
 * embedded connection (its own store), the same slices, batches and
 * passes as the tenants, in this process.  What the machine does with no
 * daemon and no process boundary: the ceiling for N tenants. */
struct emb_thr {
    struct run *r;
    pthread_barrier_t *bar;
    unsigned char *back;
    uint32_t *lat;
    struct phase_times *times;
    int id, rc;
};

static void *emb_main(void *arg)
{
    struct emb_thr *t = arg;
    struct run *r = t->r;
    size_t lo, hi;
    slice_of(r, t->id, &lo, &hi);
    unsigned char *back = t->back + lo * TMEM_PAGE_SIZE;
    tmem_conn *c = NULL;
    int pool = tmem_connect(NULL, &c); /* TMEM_EMBEDDED=1: set by caller */
    if (pool == 0)
        pool = tmem_conn_pool_new(c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                                  NULL);
    int rc = run_phases(c, pool, r, lo, hi, back, t->lat, t->lat, t->bar,
                        &t->times[t->id], pool < 0 ? pool : 0);
    if (rc == 0 && memcmp(back, r->pages + lo * TMEM_PAGE_SIZE,
                          (hi - lo) * TMEM_PAGE_SIZE))
        rc = -EIO;
    tmem_disconnect(c);
    t->rc = rc;
    return NULL;
}

static int round_embedded(struct run *r, double *put_pps, double *get_pps)
{
    int n = r->o->clients;
    struct emb_thr t[MAX_CLIENTS];
    struct phase_times times[MAX_CLIENTS] = {0};
    unsigned char *back = malloc(r->npages * TMEM_PAGE_SIZE);
    uint32_t *lat = malloc(r->npages * sizeof *lat);
    pthread_t tid[MAX_CLIENTS];
    pthread_barrier_t bar;
    int rc = back && lat ? 0 : -ENOMEM;

    if (rc == 0) { /* as the tenants do: faults are not what we measure */
        memset(back, 0xa5, r->npages * TMEM_PAGE_SIZE);
        pthread_barrier_init(&bar, NULL, (unsigned)n + 1); /* + us, leading */
        setenv("TMEM_EMBEDDED", "1", 1);
        for (int i = 0; i < n; i++) {
            t[i] = (struct emb_thr){.r = r, .bar = &bar, .back = back,
                                    .lat = lat, .times = times, .id = i};
            if (pthread_create(&tid[i], NULL, emb_main, &t[i])) {
                /* cannot run the barrier with fewer threads */
                fprintf(stderr, "tmem bench daemon: cannot start threads\n");
                exit(CLI_FAIL);
            }
        }
        uint64_t put_wall = lead_puts(r, &bar, times, n, NULL);
        uint64_t get_wall = lead_gets(&bar, times, n, NULL);
        for (int i = 0; i < n; i++)
            pthread_join(tid[i], NULL);
        unsetenv("TMEM_EMBEDDED");
        pthread_barrier_destroy(&bar);
        for (int i = 0; i < n && rc == 0; i++)
            rc = t[i].rc;
        *put_pps = pps_of(r, r->o->repeat, put_wall);
        *get_pps = pps_of(r, GET_PASSES * r->o->repeat, get_wall);
    }
    free(back);
    free(lat);
    return rc;
}

/* ---- our own tmemd when none answers --------------------------------------
 */

struct own_daemon {
    pid_t pid;
    char dir[64], sock[96];
};

static int start_daemon(struct own_daemon *d)
{
    char exe[4096], tmemd[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -ENOENT;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(tmemd, sizeof tmemd, "%s/tmemd", exe);
    snprintf(d->dir, sizeof d->dir, "/tmp/tmem-bench-XXXXXX");
    if (!mkdtemp(d->dir))
        return -errno;
    snprintf(d->sock, sizeof d->sock, "%s/tmemd.sock", d->dir);
    d->pid = fork();
    if (d->pid < 0)
        return -errno;
    if (d->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 2); /* its log would mix with our report */
        execl(tmemd, "tmemd", "--socket", d->sock, "--foreground",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) { /* up to 5 s */
        tmem__conn *c = NULL;
        if (tmem__conn_open(d->sock, &c) == 0) {
            tmem__conn_close(c);
            return 0;
        }
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
            return -ECONNREFUSED;
        usleep(10000);
    }
    return -ETIMEDOUT;
}

static void stop_daemon(struct own_daemon *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    waitpid(d->pid, NULL, 0);
    unlink(d->sock);
    rmdir(d->dir);
}

/* ---- report ----------------------------------------------------------------
 */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double q_us(uint32_t *ns, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(ns, n, sizeof *ns, cmp_u32);
    return ns[(size_t)(q * (double)(n - 1) + 0.5)] / 1000.0;
}

struct best {
    struct round_out d; /* best daemon throughputs, stats of round 1 */
    double emb_put, emb_get;
    struct cpu_ticks put_cpu, get_cpu; /* all rounds */
};

/* CPUs kept busy on average over ticks t. */
static double cpus_of(const struct cpu_ticks *t)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return t->total ? (double)t->busy / (double)t->total * (double)n : 0;
}

static void report(struct run *r, struct best *b, bool own)
{
    size_t n = r->npages;
    uint32_t rn = r->sh->rtt_n;
    const struct {
        const char *key;
        double v;
        const char *fmt;
    } f[] = {
        {"pages", (double)n, "%.0f"},
        {"clients", r->o->clients, "%.0f"},
        {"batch", r->o->batch, "%.0f"},
        {"rounds", r->o->rounds, "%.0f"},
        {"repeat", r->o->repeat, "%.0f"},
        {"own_daemon", own, "%.0f"},
        {"cpus", (double)sysconf(_SC_NPROCESSORS_ONLN), "%.0f"},
        {"orig_bytes", (double)b->d.stats[0], "%.0f"},
        {"used_bytes", (double)b->d.stats[1], "%.0f"},
        {"zero_pages", (double)b->d.stats[2], "%.0f"},
        {"dedup_pages", (double)b->d.stats[3], "%.0f"},
        {"put_us_p50", q_us(r->put_ns, n, 0.50), "%.3f"},
        {"put_us_p99", q_us(r->put_ns, n, 0.99), "%.3f"},
        {"get_us_p50", q_us(r->get_ns, n, 0.50), "%.3f"},
        {"get_us_p99", q_us(r->get_ns, n, 0.99), "%.3f"},
        {"rtt_put_us_p50", q_us(r->sh->rtt_put_ns, rn, 0.50), "%.3f"},
        {"rtt_put_us_p99", q_us(r->sh->rtt_put_ns, rn, 0.99), "%.3f"},
        {"rtt_get_us_p50", q_us(r->sh->rtt_get_ns, rn, 0.50), "%.3f"},
        {"rtt_get_us_p99", q_us(r->sh->rtt_get_ns, rn, 0.99), "%.3f"},
        {"put_cpus", cpus_of(&b->put_cpu), "%.2f"},
        {"get_cpus", cpus_of(&b->get_cpu), "%.2f"},
        {"put_pages_per_s", b->d.put_pps, "%.0f"},
        {"get_pages_per_s", b->d.get_pps, "%.0f"},
        {"embedded_put_pages_per_s", b->emb_put, "%.0f"},
        {"embedded_get_pages_per_s", b->emb_get, "%.0f"},
        {"put_ratio_vs_embedded", b->d.put_pps / b->emb_put, "%.3f"},
        {"get_ratio_vs_embedded", b->d.get_pps / b->emb_get, "%.3f"},
    };
    if (r->o->json) {
        printf("{\"corpus\": \"");
        for (const char *p = r->o->corpus; *p; p++)
            printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        printf("\"");
    } else {
        printf("%-26s %s\n", "corpus", r->o->corpus);
    }
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        printf(r->o->json ? ", \"%s\": " : "%-26s ", f[i].key);
        printf(f[i].fmt, f[i].v);
        printf(r->o->json ? "" : "\n");
    }
    if (r->o->json)
        printf(", \"have_store_stats\": %s}\n",
               b->d.have_stats ? "true" : "false");
}

/* ---- the whole run ----------------------------------------------------------
 */

static int bench_rounds(struct run *r, struct best *b)
{
    for (int k = 0; k < r->o->rounds; k++) {
        struct round_out d;
        double ep, eg;
        int rc = round_embedded(r, &ep, &eg);
        if (rc < 0) {
            fprintf(stderr, "tmem bench daemon: embedded store: %s (%s)\n",
                    tmem_strerror(rc), tmem_errname(rc));
            return CLI_FAIL;
        }
        round_daemon(r, k == r->o->rounds - 1, &d);
        if (d.err || d.bad) {
            fprintf(stderr,
                    "tmem bench daemon: through tmemd: %s (%s), "
                    "%" PRIu64 " pages wrong\n",
                    tmem_strerror(d.err), tmem_errname(d.err), d.bad);
            return CLI_FAIL;
        }
        if (k == 0)
            b->d = d;
        b->d.put_pps = d.put_pps > b->d.put_pps ? d.put_pps : b->d.put_pps;
        b->d.get_pps = d.get_pps > b->d.get_pps ? d.get_pps : b->d.get_pps;
        b->emb_put = ep > b->emb_put ? ep : b->emb_put;
        b->emb_get = eg > b->emb_get ? eg : b->emb_get;
        b->put_cpu.busy += d.put_cpu.busy;
        b->put_cpu.total += d.put_cpu.total;
        b->get_cpu.busy += d.get_cpu.busy;
        b->get_cpu.total += d.get_cpu.total;
    }
    return CLI_OK;
}

int cmd_bench_daemon(struct tmem_cli *cli, int argc, char **argv)
{
    struct dopts o;
    struct run r = {.o = &o, .sock = cli->socket};
    struct own_daemon own = {.pid = -1};
    struct best b = {0};
    void *pages = NULL;
    int rc = dparse(&o, argc, argv);

    if (rc)
        return rc;
    if (o.help) {
        dusage(stdout);
        return CLI_OK;
    }
    if ((rc = cli_corpus("tmem bench daemon", o.corpus, &pages,
                         &r.npages)) != 0)
        return rc;
    r.pages = pages;
    /* Watchdog: a tenant stuck in the daemon would hold the barrier for
     * ever; SIGALRM ends us, and our tenants and tmemd die with us. */
    alarm(BENCH_TIMEOUT_S);
    tmem__conn *probe = NULL;
    rc = tmem__conn_open(r.sock, &probe);
    tmem__conn_close(probe);
    if (rc < 0 && !r.sock) {
        rc = start_daemon(&own);
        r.sock = own.sock;
    }
    if (rc < 0) {
        fprintf(stderr,
                "tmem bench daemon: cannot reach tmemd at %s: %s "
                "(%s)\n",
                r.sock ? r.sock : tmem__conn_default_path(), tmem_strerror(rc),
                tmem_errname(rc));
        rc = CLI_FAIL;
        goto out;
    }
    size_t len = sizeof(struct shared) + 2 * r.npages * sizeof(uint32_t);
    r.sh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
    if (r.sh == MAP_FAILED) {
        rc = CLI_FAIL;
        goto out;
    }
    r.put_ns = (uint32_t *)(r.sh + 1);
    r.get_ns = r.put_ns + r.npages;
    rc = bench_rounds(&r, &b);
    if (rc == CLI_OK)
        report(&r, &b, own.pid > 0);
    munmap(r.sh, len);
out:
    stop_daemon(&own);
    tmem__corpus_free(pages, r.npages);
    return rc;
}
