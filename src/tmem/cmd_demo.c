/*
 * tmem demo: a host overcommitted through tmem, shown with real programs.
 *
 * It says what it will create, creates it (memory cgroups, a zram swap
 * device, two SQLite databases, a tmemd with a budget smaller than its
 * tenants' memory together), then runs four tenants for a while with tmem
 * and again, the same tenants, seeds, durations and memory, without:
 *   sqlite-a, sqlite-b  Zipfian read-mostly queries on databases larger
 *                       than their page caches; evicted pages go to
 *                       cleancache, the cache is their balloon
 *   redis               redis-server under `tmem run --selfballoon`
 *   batch               anonymous memory it keeps touching and a log it
 *                       writes, in a cgroup under `tmem balloon run` with
 *                       zram swap
 * Weights differ (3, 1, 2; batch is outside tmemd) so the pool's shares
 * show.  A live view while it runs; a report with plots at the end
 * (demo_report.c).  Everything made is removed at the end, on Ctrl-C too.
 *
 * Exit status: 0 when the run's checks hold (no OOM kill, every answer
 * right, pages in the pool, memory saved), 1 otherwise, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "common/sysfile.h"
#include "demo.h"
#include "opt_table.h"

static volatile sig_atomic_t interrupted;

/* Under ASan (make SANITIZE=address check) tmem and the SQLite driver are
 * built alike; the driver then needs room for ASan's shadow memory and
 * quarantine, which its small cgroup would OOM-kill. */
#if defined(__SANITIZE_ADDRESS__)
#define DEMO_ASAN_MB 512u
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEMO_ASAN_MB 512u
#endif
#endif
#ifndef DEMO_ASAN_MB
#define DEMO_ASAN_MB 0u
#endif

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const struct demo_size full_size = {
    .secs = 150, .db_mb = 160, .cache_mb = 64, .sqlite_cg_mb = 80,
    .redis_mb = 256, .batch_mb = 512, .batch_hot_mb = 32, .batch_cg_mb = 256,
    .budget_mb = 160, .zram_mb = 512};
static const struct demo_size quick_size = {
    .secs = 30, .db_mb = 48, .cache_mb = 24, .sqlite_cg_mb = 32,
    .redis_mb = 96, .batch_mb = 256, .batch_hot_mb = 12, .batch_cg_mb = 160,
    .budget_mb = 40, .zram_mb = 256};

struct demo_opts {
    int quick, secs;
    const char *out;
};

static int set_quick(void *o, const char *v)
{
    (void)v;
    ((struct demo_opts *)o)->quick = 1;
    return 0;
}

static int set_secs(void *o, const char *v)
{
    return opt_int(v, 5, DEMO_MAX_SAMPLES - 5, &((struct demo_opts *)o)->secs);
}

static int set_out(void *o, const char *v)
{
    ((struct demo_opts *)o)->out = v;
    return *v ? 0 : -1;
}

static const struct opt_spec demo_opts[] = {
    {"--quick", NULL, set_quick, "small and short: both phases in ~1.5 min"},
    {"--seconds", "N", set_secs, "each phase's length (5..1195; 150, quick 30)"},
    {"--out", "DIR", set_out, "where the report goes (demo-report)"},
};
#define NOPTS (sizeof demo_opts / sizeof demo_opts[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: tmem demo [--quick] [--seconds N] [--out DIR]\n\n"
               "A host overcommitted through tmem: two SQLite tenants on "
               "cleancache, redis\nunder tmem run --selfballoon, a cgroup "
               "tenant under tmem balloon run with\nzram swap, tmemd with "
               "a budget below their memory together; then the same\n"
               "without tmem, and a report with plots in DIR.  Needs root "
               "(cgroups, zram).\n\n");
    opt_usage(f, demo_opts, NOPTS, 14);
}

/* ---- where the programs are ---------------------------------------------- */

/* Finds name beside this program, in ../sbin or ../lib/tmem of it. */
static int find_prog(const struct demo *d, const char *name, char *out,
                     size_t cap)
{
    static const char *rel[] = {"", "/../sbin", "/../lib/tmem"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(out, cap, "%s%s/%s", d->bindir, rel[i], name);
        if (access(out, X_OK) == 0)
            return 0;
    }
    fprintf(stderr, "tmem demo: %s is not beside %s (build it: make)\n",
            name, d->bindir);
    return -1;
}

static int on_path(const char *prog)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

/* ---- setup --------------------------------------------------------------- */

static char tmem_bin[PATH_MAX], tmemd_bin[PATH_MAX], load_bin[PATH_MAX];

static void tenants_init(struct demo *d)
{
    static const struct {
        const char *name;
        enum demo_kind kind;
        unsigned weight;
    } t[DEMO_NT] = {{"sqlite-a", DK_SQLITE, 3},
                    {"sqlite-b", DK_SQLITE, 1},
                    {"redis", DK_REDIS, 2},
                    {"batch", DK_BATCH, 0}};
    for (int i = 0; i < DEMO_NT; i++) {
        d->t[i].name = t[i].name;
        d->t[i].kind = t[i].kind;
        d->t[i].weight = t[i].weight;
        d->t[i].out_fd = -1;
    }
}

static void say_plan(const struct demo *d)
{
    const struct demo_size *z = &d->z;
    printf("tmem demo: a host overcommitted through tmem%s\n\n",
           d->quick ? " (quick)" : "");
    printf("It will create, and remove at the end (also on Ctrl-C):\n"
           "  %s/             two SQLite databases of %u MiB, tmemd's "
           "socket and config\n"
           "  %s/   memory cgroups, one per tenant and tmemd\n"
           "  a zram swap device of %u MiB (lz4)\n"
           "  tmemd with a %u MiB budget; its tenants want more together\n"
           "Tenants (weight in tmemd):\n"
           "  sqlite-a (3), sqlite-b (1)  Zipfian reads over %u MiB, page "
           "cache %u MiB\n"
           "                              (its balloon), evicted pages to "
           "cleancache\n"
           "  redis (2)                   %u MiB of values under tmem run "
           "--selfballoon\n"
           "  batch                       %u MiB of memory it touches, a "
           "log it writes\n"
           "                              (page cache), cgroup %u MiB, "
           "under tmem balloon run\n"
           "                              with zram swap\n"
           "Two phases of %u s: with tmem, then the same without it.  "
           "Report: %s/\n\n",
           d->dir, z->db_mb, d->cgroot, z->zram_mb, z->budget_mb, z->db_mb,
           z->cache_mb, z->redis_mb, z->batch_hot_mb, z->batch_cg_mb, z->secs,
           d->out);
    fflush(stdout);
}

static int make_db(struct demo *d, int i)
{
    char db[400], mb[16], log[400];
    snprintf(db, sizeof db, "%s/%s.db", d->dir, d->t[i].name);
    snprintf(mb, sizeof mb, "%u", d->z.db_mb);
    snprintf(log, sizeof log, "%s/%s.log", d->dir, d->t[i].name);
    char *argv[] = {load_bin, "--db", db, "--create-mb", mb, "--seconds",
                    "0", "--no-tmem", NULL};
    pid_t pid = demo_spawn(NULL, argv, NULL, log);
    int st = pid > 0 ? demo_wait_exit(pid, 600000) : -1;
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "tmem demo: creating %s failed (see %s)\n", db, log);
        return -1;
    }
    return 0;
}

static int start_tmemd(struct demo *d)
{
    char conf[400], budget[16], log[400];
    FILE *f;

    snprintf(conf, sizeof conf, "%s/tmemd.conf", d->dir);
    if (!(f = fopen(conf, "w")))
        return -1;
    for (int i = 0; i < DEMO_NT; i++)
        if (d->t[i].weight)
            fprintf(f, "tenant name=%s weight=%u\n", d->t[i].name,
                    d->t[i].weight);
    fclose(f);
    snprintf(budget, sizeof budget, "%uM", d->z.budget_mb);
    snprintf(log, sizeof log, "%s/tmemd.log", d->dir);
    char *argv[] = {tmemd_bin, "--socket", d->sock, "--budget", budget,
                    "--config", conf, "--foreground", NULL};
    d->tmemd = demo_spawn(d->tmemd_cg, argv, NULL, log);
    for (int k = 0; d->tmemd > 0 && k < 100; k++) {
        if (access(d->sock, F_OK) == 0)
            return 0;
        usleep(50000);
    }
    fprintf(stderr, "tmem demo: tmemd did not start (see %s)\n", log);
    return -1;
}

/* ---- phases -------------------------------------------------------------- */

static int start_sqlite(struct demo *d, int i, bool tmem)
{
    struct demo_tenant *t = &d->t[i];
    char db[400], cache[16], secs[16], seed[16], log[400];

    snprintf(db, sizeof db, "%s/%s.db", d->dir, t->name);
    snprintf(cache, sizeof cache, "%u", d->z.cache_mb);
    snprintf(secs, sizeof secs, "%u", d->z.secs + 2);
    snprintf(seed, sizeof seed, "%d", 101 + i);
    snprintf(log, sizeof log, "%s/%s.log", d->dir, t->name);
    demo_drop_file_cache(db);
    char *argv[] = {load_bin, "--db", db, "--cache-mb", cache, "--seconds",
                    secs, "--seed", seed, "--name", (char *)t->name,
                    tmem ? "--socket" : "--no-tmem", tmem ? d->sock : NULL,
                    NULL};
    t->pid = demo_spawn(t->cg, argv, &t->out_fd, log);
    return t->pid > 0 ? 0 : -1;
}

static int start_redis(struct demo *d, int i, bool tmem)
{
    struct demo_tenant *t = &d->t[i];
    char port[16], log[400], blog[400];

    snprintf(port, sizeof port, "%u", d->redis_port);
    snprintf(log, sizeof log, "%s/redis.log", d->dir);
    char *plain[] = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", NULL};
    char *under[] = {tmem_bin, "--socket", d->sock, "run", "--selfballoon",
                     "--name", "redis", "--", "redis-server", "--port", port,
                     "--bind", "127.0.0.1", "--save", "", "--appendonly",
                     "no", NULL};
    snprintf(blog, sizeof blog, "%s/redis-balloon.log", d->dir);
    setenv("TMEM_RUN_LOG", blog, 1); /* the controller's decisions */
    t->pid = demo_spawn(t->cg, tmem ? under : plain, NULL, log);
    if (t->pid <= 0 || demo_redis_wait(d->redis_port, 20000) < 0) {
        fprintf(stderr, "tmem demo: redis did not start (see %s)\n", log);
        return -1;
    }
    return demo_redis_fill(d);
}

static int start_batch(struct demo *d, int i, bool tmem)
{
    struct demo_tenant *t = &d->t[i];
    char log[400];

    t->pid = demo_batch_start(d, i, 7);
    if (t->pid <= 0)
        return -1;
    for (int k = 0; k < 600 && !d->ctr->ready[i] && !interrupted; k++) {
        if (demo_wait_exit(t->pid, 0) != -1) { /* it died */
            t->pid = 0;
            break;
        }
        usleep(50000);
    }
    if (!d->ctr->ready[i]) {
        fprintf(stderr, "tmem demo: the batch tenant did not start\n");
        return -1;
    }
    if (!tmem)
        return 0;
    snprintf(log, sizeof log, "%s/balloon.log", d->dir);
    char *argv[] = {tmem_bin, "balloon", "run", "--cgroup", t->cg,
                    "--interval", "1", "--json", NULL};
    t->aux = demo_spawn(NULL, argv, &t->out_fd, log);
    return t->aux > 0 ? 0 : -1;
}

static void reset_tenant(struct demo *d, int i)
{
    struct demo_tenant *t = &d->t[i];
    t->ops = t->ops_prev = t->wrong = 0;
    t->target = t->pool = t->read_b = 0;
    t->hit = -1;
    t->done = false;
    t->linelen = 0;
    d->ctr->ops[i] = d->ctr->wrong[i] = 0;
    d->ctr->ready[i] = 0;
}

/* Room a SQLite tenant's cgroup keeps above its anonymous memory: the
 * database pages it reads pass through the kernel's page cache. */
#define DEMO_SQLITE_ROOM_MB 8u

/* The SQLite tenant's cgroup shrinks as its balloon shrinks its page
 * cache, as a guest's balloon shrinks the whole guest; but never below
 * its anonymous memory now plus DEMO_SQLITE_ROOM_MB.  The balloon's
 * target is met in SQLite's own thread, at its next page fetch, and the
 * heap does not shrink with the cache at once: a limit cut by the whole
 * target before that could leave the kernel nothing to reclaim but the
 * tenant's heap, and once in ~16 quick runs the driver was OOM-killed. */
static void follow_balloons(struct demo *d)
{
    for (int i = 0; i < DEMO_NT; i++) {
        struct demo_tenant *t = &d->t[i];
        long long anon;
        unsigned mb, floor_mb;
        double cut;
        if (t->kind != DK_SQLITE || t->target <= 0)
            continue;
        cut = (double)d->z.cache_mb * DEMO_MIB - t->target;
        if (cut <= 0)
            continue;
        mb = d->z.sqlite_cg_mb - (unsigned)(cut / DEMO_MIB);
        anon = tmem__read_ll(t->cg, "memory.stat",
                             d->cgv == 1 ? "total_rss" : "anon");
        floor_mb = anon > 0 ? (unsigned)(anon >> 20) + DEMO_SQLITE_ROOM_MB
                            : d->z.sqlite_cg_mb;
        if (floor_mb > d->z.sqlite_cg_mb)
            floor_mb = d->z.sqlite_cg_mb;
        demo_cg_limit(d, t->cg, mb > floor_mb ? mb : floor_mb);
    }
}

static void stop_tenants(struct demo *d)
{
    d->ctr->stop = 1;
    for (int i = 0; i < DEMO_NT; i++) {
        struct demo_tenant *t = &d->t[i];
        int st;
        if (t->kind == DK_SQLITE && t->pid > 0) {
            st = interrupted ? -1 : demo_wait_exit(t->pid, 10000);
            demo_watch_drain(d); /* its last line */
            if (st == -1) {
                demo_stop(t->pid, SIGTERM, 2000);
                snprintf(t->r[d->phase].why, sizeof t->r[0].why,
                         "did not end");
                t->r[d->phase].failed = true;
            } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                snprintf(t->r[d->phase].why, sizeof t->r[0].why,
                         "exited with %d (see %.100s/%s.log)",
                         WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
                         d->dir, t->name);
                t->r[d->phase].failed = true;
            }
        }
        /* the demo's own workloads end at d->ctr->stop, with 0 */
        pid_t own = t->kind == DK_BATCH ? t->pid
                    : t->kind == DK_REDIS ? t->aux : 0;
        if (own > 0 && !interrupted) {
            st = demo_wait_exit(own, 5000);
            if (st != -1 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
                snprintf(t->r[d->phase].why, sizeof t->r[0].why,
                         "its %s ended early (status %d)",
                         t->kind == DK_BATCH ? "workload" : "load", st);
                t->r[d->phase].failed = true;
            }
            if (st != -1 && own == t->pid)
                t->pid = 0; /* reaped */
            else if (st != -1)
                t->aux = 0;
        }
        demo_stop(t->aux, SIGTERM, 5000);
        if (t->kind != DK_SQLITE)
            demo_stop(t->pid, SIGTERM, 5000);
        t->pid = t->aux = 0;
        if (t->out_fd >= 0)
            close(t->out_fd);
        t->out_fd = -1;
    }
    d->ctr->stop = 0;
}

static int run_phase(struct demo *d, bool tmem)
{
    struct timespec t0, now;

    for (int i = 0; i < DEMO_NT; i++)
        reset_tenant(d, i);
    demo_cg_limit(d, d->t[0].cg, d->z.sqlite_cg_mb);
    demo_cg_limit(d, d->t[1].cg, d->z.sqlite_cg_mb);
    demo_cg_limit(d, d->t[3].cg, d->z.batch_cg_mb);
    printf("phase %d/2: %s\n", d->phase + 1,
           tmem ? "with tmem" : "the same without tmem");
    demo_progress(d, "redis: start and fill", 0, 3);
    if (start_redis(d, 2, tmem) < 0)
        return -1;
    demo_progress(d, "batch: fill its memory", 1, 3);
    if (start_batch(d, 3, tmem) < 0)
        return -1;
    demo_progress(d, "SQLite tenants and the redis load", 2, 3);
    d->t[2].aux = demo_redis_load_start(d, 2, 11);
    if (start_sqlite(d, 0, tmem) < 0 || start_sqlite(d, 1, tmem) < 0)
        return -1;
    demo_progress(d, "running", 3, 3);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned s = 1; s <= d->z.secs && !interrupted; s++) {
        struct timespec until = {t0.tv_sec + s, t0.tv_nsec};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until,
                               NULL) == EINTR && !interrupted)
            ;
        clock_gettime(CLOCK_MONOTONIC, &now);
        demo_watch_tick(d, (double)s);
        if (tmem)
            follow_balloons(d);
        demo_view(d, (double)s, false);
    }
    stop_tenants(d);
    demo_view(d, (double)d->z.secs, true);
    demo_phase_totals(d);
    printf("\n");
    return interrupted ? -1 : 0;
}

/* ---- the whole run ------------------------------------------------------- */

static void cleanup(struct demo *d)
{
    if (d->ctr)
        stop_tenants(d);
    demo_stop(d->tmemd, SIGTERM, 10000);
    d->tmemd = 0;
    demo_zram_off(d);
    for (int i = 0; i < DEMO_NT; i++)
        demo_cg_remove(d->t[i].cg);
    demo_cg_remove(d->tmemd_cg);
    if (d->cgroot[0])
        rmdir(d->cgroot);
    if (d->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "%s '%s'",
                 getenv("TMEM_DEMO_KEEP") ? "echo tmem demo: kept" : "rm -rf",
                 d->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "tmem demo: could not remove %s\n", d->dir);
    }
}

static int setup(struct demo *d)
{
    int steps = 5;

    demo_progress(d, "memory cgroups", 0, steps);
    if (demo_cg_init(d) < 0 ||
        demo_cg_make(d, "tmemd", 0, d->tmemd_cg, sizeof d->tmemd_cg) < 0)
        return -1;
    for (int i = 0; i < DEMO_NT; i++)
        if (demo_cg_make(d, d->t[i].name, 0, d->t[i].cg,
                         sizeof d->t[i].cg) < 0)
            return -1;
    if (d->cgv == 1) /* SQLite tenants keep their memory out of swap */
        for (int i = 0; i < 2; i++)
            tmem__write_text(d->t[i].cg, "memory.swappiness", "0");
    demo_progress(d, "zram swap", 1, steps);
    if (demo_zram_on(d) < 0)
        return -1;
    if (!d->tty)
        printf("  swap on /dev/zram%d\n", d->zram);
    for (int i = 0; i < 2; i++) {
        demo_progress(d, i ? "database sqlite-b" : "database sqlite-a",
                      2 + i, steps);
        if (make_db(d, i) < 0)
            return -1;
    }
    demo_progress(d, "tmemd", 4, steps);
    if (start_tmemd(d) < 0)
        return -1;
    demo_progress(d, "ready", steps, steps);
    return 0;
}

static int prepare(struct demo *d, const struct demo_opts *o)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

    if (geteuid() != 0) {
        fprintf(stderr, "tmem demo: needs root: it makes memory cgroups and "
                        "a zram swap device (sudo make demo)\n");
        return -1;
    }
    if (n <= 0)
        return -1;
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(d->bindir, sizeof d->bindir, "%.500s", self);
    if (find_prog(d, "tmem", tmem_bin, sizeof tmem_bin) < 0 ||
        find_prog(d, "tmemd", tmemd_bin, sizeof tmemd_bin) < 0 ||
        find_prog(d, "tmem_sqlite_load", load_bin, sizeof load_bin) < 0)
        return -1;
    if (!on_path("redis-server")) {
        fprintf(stderr, "tmem demo: redis-server is not installed "
                        "(apt-get install redis-server)\n");
        return -1;
    }
    d->z = o->quick ? quick_size : full_size;
    if (o->secs)
        d->z.secs = (unsigned)o->secs;
    if (DEMO_ASAN_MB) {
        d->z.sqlite_cg_mb += DEMO_ASAN_MB;
        printf("tmem demo: an ASan build: the SQLite tenants' cgroups get "
               "%u MiB more for ASan's own memory\n", DEMO_ASAN_MB);
    }
    d->quick = o->quick;
    d->out = o->out;
    d->tty = isatty(1);
    d->redis_port = 16379 + (unsigned)getpid() % 1000;
    snprintf(d->dir, sizeof d->dir, "/var/tmp/tmem-demo-XXXXXX");
    if (!mkdtemp(d->dir)) {
        fprintf(stderr, "tmem demo: cannot make a directory in /var/tmp: %s\n",
                strerror(errno));
        d->dir[0] = '\0';
        return -1;
    }
    snprintf(d->sock, sizeof d->sock, "%s/tmemd.sock", d->dir);
    snprintf(d->cgroot, sizeof d->cgroot, "%s/tmem-demo-%d",
             access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0
                 ? "/sys/fs/cgroup/memory"
                 : "/sys/fs/cgroup",
             (int)getpid());
    d->ctr = mmap(NULL, sizeof *d->ctr, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (d->ctr == MAP_FAILED) {
        d->ctr = NULL;
        return -1;
    }
    memset(d->ctr, 0, sizeof *d->ctr);
    tenants_init(d);
    return 0;
}

int cmd_demo(struct tmem_cli *cli, int argc, char **argv)
{
    struct demo_opts o = {.out = "demo-report"};
    struct demo *d;
    struct sigaction sa = {.sa_handler = on_signal};
    int rc = CLI_FAIL;
    bool reported = false;

    (void)cli;
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return CLI_OK;
    }
    if (opt_parse("tmem demo", demo_opts, NOPTS, &o, argc, argv) != 0) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!(d = calloc(1, sizeof *d))) {
        fprintf(stderr, "tmem demo: out of memory\n");
        return CLI_FAIL;
    }
    d->zram = -1; /* none made: cleanup must not take another's zram0 */
    if (prepare(d, &o) < 0)
        goto out;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    say_plan(d);
    if (setup(d) < 0 || run_phase(d, true) < 0)
        goto out;
    /* tmem's part ends: without it, nothing is squeezed */
    demo_stop(d->tmemd, SIGTERM, 10000);
    d->tmemd = 0;
    demo_zram_off(d);
    d->phase = 1;
    if (run_phase(d, false) < 0)
        goto out;
    rc = demo_report(d) == 0 ? CLI_OK : CLI_FAIL;
    reported = true;
out:
    if (interrupted)
        printf("\ntmem demo: interrupted; removing what it made\n");
    else if (!reported && d->cgroot[0])
        fprintf(stderr, "tmem demo: stopped; removing what it made\n");
    cleanup(d);
    if (d->ctr)
        munmap(d->ctr, sizeof *d->ctr);
    free(d);
    return rc;
}
