/*
 * tmem bench fairness: one tenant's puts through a running tmemd, alone,
 * beside an honest tenant putting as hard, and beside a tenant that
 * churns (persistent puts and flushes that leave its segments sparse, so
 * compaction runs, and ephemeral puts past the budget, so eviction runs).
 *
 * Each tenant is a process of its own with its own connection.  The
 * victim puts corpus pages into a private ephemeral pool in batches of
 * --batch for --seconds; its rate and its per-page put latency (a batch's
 * time over its pages) p50/p99 are reported for each phase.  The line
 * that counts: the victim's rate beside the churner over its rate beside
 * the honest tenant (the target: >= 0.7), and its p99 beside the
 * churner against its p99 alone.
 *
 * Exit status: 0 ran (the figures say whether targets were met); 1 no
 * daemon, no corpus, or a tenant failed; 2 bad arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tmem/client.h>

#include "cmds.h"
#include "common/corpus.h"
#include "opt_table.h"
#include "proto/proto.h"

#define MAX_LAT (1u << 20) /* latency samples kept per phase */

struct fair_opts {
    const char *corpus;
    int seconds, batch;
    bool json;
};

static int o_corpus(void *o, const char *v)
{
    ((struct fair_opts *)o)->corpus = v;
    return 0;
}
static int o_seconds(void *o, const char *v)
{
    return opt_int(v, 1, 600, &((struct fair_opts *)o)->seconds);
}
static int o_batch(void *o, const char *v)
{
    return opt_int(v, 1, 256, &((struct fair_opts *)o)->batch);
}
static int o_json(void *o, const char *v)
{
    (void)v;
    ((struct fair_opts *)o)->json = true;
    return 0;
}

static const struct opt_spec fair_table[] = {
    {"--corpus", "FILE", o_corpus, "pages to put (raw or .zst; required)"},
    {"--seconds", "S", o_seconds, "length of each phase (3)"},
    {"--batch", "N", o_batch, "pages a batch (64)"},
    {"--json", NULL, o_json, "one JSON object instead of text"},
};
#define NFAIR (sizeof fair_table / sizeof fair_table[0])

enum role { VICTIM, HONEST, CHURNER };

/* Shared with the tenant processes (MAP_SHARED). */
struct shared {
    atomic_int ready, go, stop;
    int err[3];
    uint64_t pages[3];
    uint32_t nlat;
    uint32_t lat_ns[MAX_LAT]; /* the victim's */
};

struct tenant {
    const char *sock;
    const unsigned char *pages;
    size_t npages;
    int batch;
    struct shared *sh;
};

/* Puts a batch of pages [i, i + n) under (obj, i..): corpus pages, each
 * stamped with its number and the tenant's pid so no two are alike (the
 * store must hold them all: eviction and compaction have work).  Returns
 * 0 or the first error (a refusal for room is not one). */
static int put_batch(tmem_conn *c, int pool, const struct tenant *t,
                     uint64_t obj, uint64_t i, int n)
{
    static unsigned char buf[256][TMEM_PAGE_SIZE];
    tmem_op ops[256];
    uint64_t stamp[2] = {0, (uint64_t)getpid()};
    for (int k = 0; k < n; k++) {
        stamp[0] = i + (uint64_t)k;
        memcpy(buf[k], t->pages + (stamp[0] % t->npages) * TMEM_PAGE_SIZE,
               TMEM_PAGE_SIZE);
        memcpy(buf[k] + 64, stamp, sizeof stamp);
        ops[k] = (tmem_op){.op = TMEM_PUT,
                           .pool = pool,
                           .oid = {{obj, (uint64_t)getpid(), 0}},
                           .index = (uint32_t)(stamp[0] % 65536),
                           .page = buf[k]};
    }
    int rc = tmem_conn_batch(c, ops, (size_t)n);
    if (rc < 0)
        return rc;
    for (int k = 0; k < n; k++)
        if (ops[k].result < 0 && ops[k].result != TMEM_ENOSPC)
            return ops[k].result;
    return 0;
}

/* The churner's step: a batch of persistent pages of which every other
 * one is flushed right away (4 KiB pages keep a live record, segments go
 * sparse: compaction), then a batch of ephemeral pages (past the budget:
 * eviction). */
static int churn_step(tmem_conn *c, int pers, int eph, const struct tenant *t,
                      uint64_t i)
{
    int rc = put_batch(c, pers, t, 1 + (i / 65536), i, t->batch);
    tmem_op ops[128];
    size_t n = 0;
    for (int k = 1; k < t->batch; k += 2)
        ops[n++] = (tmem_op){
            .op = TMEM_FLUSH_PAGE,
            .pool = pers,
            .oid = {{1 + (i / 65536), (uint64_t)getpid(), 0}},
            .index = (uint32_t)((i + (uint64_t)k) % 65536)};
    if (rc == 0 && n)
        rc = tmem_conn_batch(c, ops, n);
    return rc < 0 ? rc : put_batch(c, eph, t, 1000 + i / 65536, i, t->batch);
}

static int tenant_run(const struct tenant *t, enum role role)
{
    struct shared *sh = t->sh;
    tmem_conn *c;
    int rc = tmem_connect(t->sock, &c);
    if (rc < 0)
        return rc;
    int eph = tmem_conn_pool_new(c, NULL, TMEM_POOL_FLAGS(0), NULL);
    int pers = role == CHURNER
                   ? tmem_conn_pool_new(c, NULL,
                                        TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                                        NULL)
                   : 0;
    if (eph < 0 || pers < 0) {
        tmem_disconnect(c);
        return eph < 0 ? eph : pers;
    }
    atomic_fetch_add(&sh->ready, 1);
    while (!atomic_load(&sh->go))
        usleep(100);
    uint64_t i = 0;
    while (!atomic_load(&sh->stop) && rc == 0) {
        uint64_t t0 = tmem__now_ns();
        rc = role == CHURNER ? churn_step(c, pers, eph, t, i)
                             : put_batch(c, eph, t, 1 + i / 65536, i, t->batch);
        if (role == VICTIM && sh->nlat < MAX_LAT)
            sh->lat_ns[sh->nlat++] =
                (uint32_t)((tmem__now_ns() - t0) / (uint64_t)t->batch);
        i += (uint64_t)t->batch;
    }
    sh->pages[role] = i;
    tmem_disconnect(c);
    return rc;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

struct phase_out {
    double pps, p50_us, p99_us;
};

/* Runs the victim, with another tenant of role other (or alone when
 * other is VICTIM), for the phase's seconds. */
static int phase(const struct tenant *t, enum role other, int seconds,
                 struct phase_out *out)
{
    struct shared *sh = t->sh;
    memset(sh, 0, offsetof(struct shared, lat_ns));
    int n = other == VICTIM ? 1 : 2;
    pid_t pid[2];
    for (int k = 0; k < n; k++) {
        enum role r = k == 0 ? VICTIM : other;
        pid[k] = fork();
        if (pid[k] < 0)
            return -errno;
        if (pid[k] == 0) {
            int rc = tenant_run(t, r);
            sh->err[r] = rc;
            _exit(rc < 0);
        }
    }
    while (atomic_load(&sh->ready) < n) {
        for (int k = 0; k < n; k++)
            if (waitpid(pid[k], NULL, WNOHANG) == pid[k]) {
                atomic_store(&sh->stop, 1);
                atomic_store(&sh->go, 1);
                for (int j = 0; j < n; j++)
                    if (j != k)
                        waitpid(pid[j], NULL, 0);
                int e = sh->err[k == 0 ? VICTIM : other];
                fprintf(stderr, "tmem bench fairness: a tenant could not "
                                "start: %s\n",
                        tmem_strerror(e ? e : -EIO));
                return -EIO;
            }
        usleep(1000);
    }
    uint64_t t0 = tmem__now_ns();
    atomic_store(&sh->go, 1);
    struct timespec ts = {seconds, 0};
    nanosleep(&ts, NULL);
    atomic_store(&sh->stop, 1);
    uint64_t wall = tmem__now_ns() - t0;
    int bad = 0;
    for (int k = 0; k < n; k++) {
        int st;
        waitpid(pid[k], &st, 0);
        bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    if (bad) {
        for (int r = 0; r < 3; r++)
            if (sh->err[r])
                fprintf(stderr, "tmem bench fairness: tenant %d: %s\n", r,
                        tmem_strerror(sh->err[r]));
        return -EIO;
    }
    qsort(sh->lat_ns, sh->nlat, sizeof sh->lat_ns[0], cmp_u32);
    out->pps = (double)sh->pages[VICTIM] / ((double)wall / 1e9);
    out->p50_us = sh->nlat ? sh->lat_ns[sh->nlat / 2] / 1e3 : 0;
    out->p99_us = sh->nlat ? sh->lat_ns[(uint64_t)sh->nlat * 99 / 100] / 1e3
                           : 0;
    return 0;
}

int cmd_bench_fair(struct tmem_cli *cli, int argc, char **argv)
{
    struct fair_opts o = {.seconds = 3, .batch = 64};
    if (cli_wants_help(argc, argv)) {
        printf("usage: tmem [--socket PATH] bench fairness --corpus FILE "
               "[options]\n");
        opt_usage(stdout, fair_table, NFAIR, 14);
        return CLI_OK;
    }
    int rc = opt_parse("tmem bench fairness", fair_table, NFAIR, &o, argc,
                       argv);
    if (rc)
        return rc;
    if (!o.corpus) {
        fprintf(stderr, "tmem bench fairness: --corpus FILE is required\n");
        opt_usage(stderr, fair_table, NFAIR, 14);
        return CLI_USAGE;
    }
    void *pages;
    size_t npages;
    if ((rc = cli_corpus("tmem bench fairness", o.corpus, &pages,
                         &npages)) != 0)
        return rc;
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        tmem__corpus_free(pages, npages);
        return CLI_FAIL;
    }
    struct tenant t = {cli->socket, pages, npages, o.batch, sh};
    static const char *const names[] = {"alone", "beside_honest",
                                        "beside_churner"};
    struct phase_out out[3];
    for (int p = 0; p < 3 && rc == 0; p++)
        rc = phase(&t, (enum role)p, o.seconds, &out[p]);
    munmap(sh, sizeof *sh);
    tmem__corpus_free(pages, npages);
    if (rc < 0) {
        fprintf(stderr, "tmem bench fairness: %s\n", tmem_strerror(rc));
        return CLI_FAIL;
    }
    double ratio = out[2].pps / out[1].pps;
    if (o.json) {
        printf("{");
        for (int p = 0; p < 3; p++)
            printf("\"%s\":{\"pages_per_s\":%.0f,\"put_p50_us\":%.2f,"
                   "\"put_p99_us\":%.2f},",
                   names[p], out[p].pps, out[p].p50_us, out[p].p99_us);
        printf("\"churner_over_honest\":%.3f}\n", ratio);
    } else {
        printf("victim puts (batch %d, %d s a phase)\n", o.batch, o.seconds);
        printf("%-16s %12s %10s %10s\n", "phase", "pages/s", "p50 us",
               "p99 us");
        for (int p = 0; p < 3; p++)
            printf("%-16s %12.0f %10.2f %10.2f\n", names[p], out[p].pps,
                   out[p].p50_us, out[p].p99_us);
        printf("victim beside churner / beside honest: %.2f (target >= "
               "0.70): %s\n",
               ratio, ratio >= 0.7 ? "PASS" : "MISS");
        printf("victim p99 beside churner / alone: %.2f\n",
               out[2].p99_us / (out[0].p99_us > 0 ? out[0].p99_us : 1));
    }
    return CLI_OK;
}
