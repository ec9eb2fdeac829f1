/*
 * tmem demo: a multi-tenant host overcommitted through tmem.  Shared by
 * cmd_demo.c (options, phases, cleanup), demo_host.c (cgroups, zram,
 * processes), demo_work.c (the workloads the demo runs itself),
 * demo_watch.c (sampling and the live view) and demo_report.c (the report
 * and its plots).
 *
 * One run has two phases over the same tenants, seeds, durations and
 * memory: phase 0 with tmem (tmemd, self-ballooning, cleancache, tswap,
 * zram), phase 1 without.  Each tenant lives in a memory cgroup of its own
 * so its memory is measured the same way in both.
 */
#ifndef TMEM_CLI_DEMO_H
#define TMEM_CLI_DEMO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define DEMO_NT 4            /* tenants */
#define DEMO_MAX_SAMPLES 1200 /* seconds per phase */
#define DEMO_MIB (1024.0 * 1024.0)

enum demo_kind { DK_SQLITE, DK_REDIS, DK_BATCH };

/* What the run uses: chosen by --quick or the full default. */
struct demo_size {
    unsigned secs;         /* per phase */
    unsigned db_mb;        /* each SQLite database */
    unsigned cache_mb;     /* each SQLite page cache (its maximum) */
    unsigned sqlite_cg_mb; /* each SQLite tenant's memory cgroup */
    unsigned redis_mb;     /* values in redis */
    unsigned batch_mb;     /* the batch tenant's log, at most */
    unsigned batch_hot_mb; /* its anonymous memory, all touched */
    unsigned batch_cg_mb;  /* its memory cgroup */
    unsigned budget_mb;    /* tmemd's budget */
    unsigned zram_mb;      /* zram disk size */
};

/* One second of one tenant. */
struct demo_sample {
    double t;        /* seconds since the phase began */
    double mem;      /* bytes: the tenant's cgroup (batch: + its zram) */
    double target;   /* bytes: its balloon target, 0 none */
    double pool;     /* bytes of its pages in tmem (batch: in zram) */
    double ops_s;    /* operations in the last second */
    double read_b;   /* bytes read from storage so far */
    double hit;      /* cleancache hit rate so far, -1 none */
};

/* Per-phase totals of one tenant. */
struct demo_result {
    double mem_mean, mem_peak, ops_s, read_b, hit;
    uint64_t ops, wrong, oom;
    bool failed;       /* exited with an error */
    char why[160];
};

struct demo_tenant {
    const char *name;
    enum demo_kind kind;
    unsigned weight;
    char cg[256];       /* its memory cgroup */
    pid_t pid;          /* the tenant */
    pid_t aux;          /* redis: the load; batch: the balloon runner */
    int out_fd;         /* JSON lines: SQLite driver or balloon runner */
    char line[8192];
    size_t linelen;
    /* latest figures */
    double target, pool, hit, read_b;
    uint64_t ops, ops_prev, wrong;
    bool done;          /* the SQLite driver's last line came */
    struct demo_sample s[2][DEMO_MAX_SAMPLES];
    size_t ns[2];
    struct demo_result r[2];
};

/* Counters the demo's own workloads share with it (MAP_SHARED). */
struct demo_counters {
    volatile uint64_t ops[DEMO_NT];
    volatile uint64_t wrong[DEMO_NT];
    volatile int ready[DEMO_NT];
    volatile int stop;
};

struct demo {
    bool quick, tty;
    struct demo_size z;
    const char *out;       /* report directory */
    char bindir[512];      /* where tmem, tmemd, tmem_sqlite_load are */
    char dir[256];         /* data: databases, socket, config */
    char cgroot[256];      /* the demo's cgroup */
    int cgv;               /* 1 or 2 */
    char sock[300];
    int zram;              /* the zram swap device's number, -1 none */
    pid_t tmemd;
    char tmemd_cg[300];
    int phase;
    unsigned redis_port;
    struct demo_counters *ctr;
    struct demo_tenant t[DEMO_NT];
    /* host-wide, per phase and second: tmemd's cgroup, zram */
    double tmemd_mem[2][DEMO_MAX_SAMPLES], zram_mem[2][DEMO_MAX_SAMPLES];
    double host_mean[2], host_peak[2];
    double pool_pages_max; /* most pages in tmem at once (phase 0) */
};

/* demo_host.c */
int demo_cg_init(struct demo *d);            /* 0, or -1 said */
int demo_cg_make(struct demo *d, const char *name, unsigned limit_mb,
                 char *path, size_t cap);
int demo_cg_join(const char *cg, pid_t pid);
double demo_cg_mem(const struct demo *d, const char *cg);
uint64_t demo_cg_ooms(const struct demo *d, const char *cg);
void demo_cg_remove(const char *cg);
int demo_cg_limit(const struct demo *d, const char *cg, unsigned mb);
int demo_zram_on(struct demo *d);
void demo_zram_off(struct demo *d);
double demo_zram_mem(const struct demo *d);
double demo_zram_orig(const struct demo *d);
uint64_t demo_proc_read_bytes(pid_t pid);
void demo_drop_file_cache(const char *path);
/* Starts a program with stdout to a pipe (*out_fd, or inherited when
 * out_fd is NULL), stderr to log (path, appended), in cgroup cg. */
pid_t demo_spawn(const char *cg, char *const argv[], int *out_fd,
                 const char *log);
void demo_stop(pid_t pid, int sig, unsigned wait_ms);
int demo_wait_exit(pid_t pid, unsigned wait_ms); /* status, or -1 */

/* demo_work.c: the batch tenant (anonymous memory, a hot part) and the
 * redis load, each a forked child that counts into d->ctr. */
pid_t demo_batch_start(struct demo *d, int i, uint64_t seed);
pid_t demo_redis_load_start(struct demo *d, int i, uint64_t seed);
int demo_redis_fill(struct demo *d);         /* 0, or -1 said */
int demo_redis_wait(unsigned port, unsigned ms);

/* demo_watch.c */
void demo_watch_tick(struct demo *d, double t);
void demo_watch_drain(struct demo *d); /* takes the reports' last lines */
void demo_view(struct demo *d, double t, bool final);
void demo_phase_totals(struct demo *d);
void demo_progress(struct demo *d, const char *what, int step, int steps);

/* demo_report.c: writes d->out/{report.md,summary.json,*.csv,*.png};
 * 0, or -1 said. */
int demo_report(struct demo *d);

#endif
