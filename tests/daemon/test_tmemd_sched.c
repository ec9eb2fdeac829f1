/*
 * The daemon's ring workers (src/tmemd/workers.c) through a real tmemd:
 * four tenant processes put as hard as they can through their rings, more
 * rings with work than workers: rings are passed over for less-served
 * ones, every page is stored right, and the pages each got are printed
 * (one has weight 4; measured 1.7-2.4x a light one's pages here, where the
 * tenants' own packing shares the daemon's 2 CPUs; where the daemon is
 * all they wait for it should approach 4x).  However many tenants have
 * rings, the daemon has one ring worker per CPU.  The picking order by
 * weight is tested in-process (test_tmemd_sched_unit.c).
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include <tmem/store.h>

#include "../lib/tmemd_harness.h"
#include "../runner.h"
#include "test_daemon_util.h"

#define NT 4
#define BATCH 64

struct board {
    atomic_int ready, go, stop;
    int id[NT];
    uint64_t pages[NT];
    int bad[NT];
};

static int tenant(const th_daemon *d, void *arg, int k)
{
    struct board *b = arg;
    tmem__conn *c = th_conn(d);
    int pool = tmem__conn_pool_new(c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                                   NULL);
    if (pool < 0)
        return 1;
    b->id[k] = tmem__conn_client_id(c);
    static unsigned char pages[BATCH][TMEM_PAGE_SIZE];
    tmem__op ops[BATCH];
    atomic_fetch_add(&b->ready, 1);
    while (!atomic_load(&b->go))
        usleep(200);
    for (uint32_t round = 0; !atomic_load(&b->stop); round++) {
        for (uint32_t i = 0; i < BATCH; i++) {
            th_fill(pages[i], 700 + (uint32_t)k, round * BATCH + i);
            ops[i] = (tmem__op){.op = TMEM_OP_PUT, .pool = pool,
                                .oid = {{(uint64_t)k, 0, 0}},
                                .index = i, .page = pages[i]};
        }
        if (tmem__conn_batch(c, ops, BATCH) < 0)
            return 2;
        for (uint32_t i = 0; i < BATCH; i++)
            b->bad[k] += ops[i].result != 1;
        b->pages[k] += BATCH;
    }
    tmem__conn_close(c);
    return 0;
}

TEST(tmemd_sched_turns_by_weight)
{
    th_daemon d;
    th_start(&d, NULL);
    struct board *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(b != MAP_FAILED);
    memset(b, 0, sizeof *b);
    pid_t kid[NT];
    ASSERT_EQ(du_fork_tenants(&d, NT, tenant, b, kid, &b->ready, 5000), NT);
    tmem__conn *admin = th_conn(&d);
    ASSERT_EQ(tmem__conn_set_weight(admin, b->id[0], 4), 0);
    /* zstd on the daemon's side (the tenants pack LZ4: each page is
     * decoded and compressed again there): the daemon's work per page is
     * several times the tenant's */
    for (int k = 0; k < NT; k++)
        ASSERT_EQ(tmem__conn_set_compress(admin, b->id[k], TMEM_COMPRESS_ZSTD),
                  0);
    long long waits0 = du_daemon_metric(&d, "tmemd_sched_waits_total");
    atomic_store(&b->go, 1);
    usleep(1500000);
    atomic_store(&b->stop, 1);
    for (int k = 0; k < NT; k++)
        ASSERT_EQ(th_wait(kid[k]), 0);
    long long waits = du_daemon_metric(&d, "tmemd_sched_waits_total") - waits0;
    uint64_t light = 0;
    for (int k = 1; k < NT; k++)
        light += b->pages[k];
    double ratio = (double)b->pages[0] * (NT - 1) / (double)light;
    fprintf(stderr,
            "  pages: weight 4: %llu; weight 1: %llu %llu %llu; heavy / light "
            "mean %.2f; waits %lld\n",
            (unsigned long long)b->pages[0], (unsigned long long)b->pages[1],
            (unsigned long long)b->pages[2], (unsigned long long)b->pages[3],
            ratio, waits);
    for (int k = 0; k < NT; k++)
        ASSERT_EQ(b->bad[k], 0);
    ASSERT_GT(waits, 0);
    if (!TEST_SANITIZED) /* measured 1.7-2.4 (see above); 0.87-1.12
                            with a thread per ring */
        ASSERT_GE(ratio, 1.3);
    for (int k = 0; k < NT; k++)
        ASSERT_GT(b->pages[k], 0);
    tmem__conn_close(admin);
    munmap(b, sizeof *b);
    ASSERT_EQ(th_stop(&d), 0);
}

/* Threads of the daemon whose name is comm. */
static int threads_named(pid_t pid, const char *comm)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    ASSERT_TRUE(dir != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[352], name[32] = {0};
        snprintf(p, sizeof p, "%s/%s/comm", path, e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue; /* the thread ended */
        if (fgets(name, sizeof name, f))
            name[strcspn(name, "\n")] = 0;
        fclose(f);
        n += strcmp(name, comm) == 0;
    }
    closedir(dir);
    return n;
}

/* However many tenants have rings, one worker per CPU serves them all,
 * and every tenant's pages go in and come back. */
TEST(tmemd_ring_workers_one_per_cpu)
{
    enum { NC = 12 };
    th_daemon d;
    th_start(&d, NULL);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    tmem__conn *c[NC];
    int pool[NC];
    for (int k = 0; k < NC; k++) {
        c[k] = th_conn(&d);
        pool[k] = tmem__conn_pool_new(c[k], NULL,
                                      TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), NULL);
        ASSERT_GE(pool[k], 0);
    }
    for (int k = 0; k < NC; k++)
        ASSERT_EQ(th_put_range(c[k], pool[k], 300 + (uint32_t)k, 64), 64);
    for (int k = 0; k < NC; k++)
        ASSERT_EQ(th_count_intact(c[k], pool[k], 300 + (uint32_t)k, 64), 64);
    int workers = threads_named(d.pid, "tmemd-ring");
    fprintf(stderr, "  %d tenants with rings, %ld CPUs: %d ring workers\n",
            NC, ncpu, workers);
    ASSERT_EQ(workers, ncpu < 64 ? ncpu : 64);
    ASSERT_EQ(du_daemon_metric(&d, "tmemd_ring_workers"), workers);
    for (int k = 0; k < NC; k++)
        tmem__conn_close(c[k]);
    ASSERT_EQ(th_stop(&d), 0);
}
