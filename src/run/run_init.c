/*
 * The preload's start (run.h): read the settings tmem run put in the
 * environment, move libtmem's own memory to the private heap, connect
 * (tmemd, or an embedded store), start tswap, adopt the heap there is, and
 * start the run thread (heap scans every SCAN_MS, the tenant's figures in
 * the ring for tmem list) and, with --selfballoon, the balloon thread (the
 * controller over tswap's backend, the PSI guard on top).
 *
 * Environment: TMEM_RUN_BUDGET (bytes), TMEM_RUN_SELFBALLOON=1,
 * TMEM_RUN_FAULTS (sigbus|thread), TMEM_RUN_READAHEAD (pages),
 * TMEM_RUN_CONTROL (the balloon's control socket), TMEM_RUN_LOG (the
 * balloon's log file; else none); TMEM_NAME, TMEM_SOCKET and
 * TMEM_EMBEDDED as for any tenant (docs/client.md).
 *
 * If tswap cannot start, the program does not run: it was asked to run
 * under tmem, and silently running it without would lie to the operator.
 * The process exits 127 with the reason on stderr.
 */

#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <tmem/client.h>

#include "balloon/controller.h"
#include "balloon/runner.h"
#include "balloon/tswap_backend.h"
#include "client/conn_direct.h"
#include "common/mem.h"
#include "common/sysfile.h"
#include "proto/proto.h"
#include "tswap/tswap.h"

#define SCAN_MS 100

struct tmem_tswap *_Atomic tmem_run_tswap;
static tmem_conn *conn;
static struct tmem_balloon_tswap glue;

void tmem_run_say(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "tmem run[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    syscall(SYS_write, 2, line, (size_t)n);
}

static void fatal(const char *what, const char *why)
{
    tmem_run_say("%s: %s", what, why);
    _exit(127);
}

/* ---- pins: what the wrappers of run_io.c use ------------------------------ */

void tmem_run_pin(const void *p, size_t n)
{
    struct tmem_tswap *t = atomic_load_explicit(&tmem_run_tswap,
                                                memory_order_acquire);
    if (t && p && n && tmem_tswap_owns(t, p))
        tmem_tswap_prefault(t, p, n);
    else if (t && p && n && tmem_tswap_owns(t, (const char *)p + n - 1))
        tmem_tswap_prefault(t, p, n);
}

void tmem_run_unpin(const void *p, size_t n)
{
    struct tmem_tswap *t = atomic_load_explicit(&tmem_run_tswap,
                                                memory_order_acquire);
    if (t && p && n &&
        (tmem_tswap_owns(t, p) || tmem_tswap_owns(t, (const char *)p + n - 1)))
        tmem_tswap_unpin(t, p, n);
}

size_t tmem_run_pin_str(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s) + 1; /* reading it brings its pages in */
    tmem_run_pin(s, n);
    return n;
}

void tmem_run_unpin_str(const char *s, size_t n)
{
    if (s)
        tmem_run_unpin(s, n);
}

/* ---- the tenant's figures, for tmem list ---------------------------------- */

static void publish(struct tmem_tswap *t)
{
    tmem__tstat *ts = tmem__conn_tstat_block(conn);
    if (!ts)
        return;
    tmem_tswap_stats s;
    tmem_tswap_stats_get(t, &s);
    tmem__tstat v = {
        .magic = TMEM_TSTAT_MAGIC,
        .kind = TMEM_TSTAT_TSWAP,
        .resident = s.resident,
        .target = s.target,
        .stored = s.stored + s.copies,
        .faults = s.faults_zero + s.faults_pagein,
        .pageins = s.faults_pagein + s.readahead,
        .evicted = s.evicted,
        .refused = s.refused,
        .pagein_p50_ns = (uint64_t)(tmem_tswap_pagein_us(&s, 0.5) * 1e3),
        .pagein_p99_ns = (uint64_t)(tmem_tswap_pagein_us(&s, 0.99) * 1e3)};
    memcpy(ts, &v, sizeof v);
}

/* ---- --budget: the program's resident memory, tmem's own included ------- */

static uint64_t budget_pages; /* --budget, pages; 0 with --selfballoon */

/* The process's resident anonymous and file pages (RssAnon + RssFile), or
 * 0.  Not RssShmem: that is the read-only view of the tenant's own arena,
 * whose pages are the store's (counted there, not twice). */
static uint64_t rss_pages(void)
{
    char buf[4096];
    if (tmem__read_text("/proc/self/status", NULL, buf, sizeof buf) <= 0)
        return 0;
    const char *a = strstr(buf, "\nRssAnon:"), *f = strstr(buf, "\nRssFile:");
    if (!a)
        return 0;
    return (strtoull(a + 9, NULL, 10) + (f ? strtoull(f + 9, NULL, 10) : 0)) / 4;
}

/* --budget bounds the memory the program costs the host beyond what it
 * put out of RAM, which is what an operator means by it: its resident
 * anonymous and file pages — the heap tswap keeps resident, what tswap
 * does not manage (stacks, small mappings, the binary's and libraries'
 * pages), tmem's own memory (tswap's page tables, staging frames,
 * frontswap's entries) — and the copies the store keeps of resident
 * pages (a page that came back keeps its stored copy, so evicting it
 * again unchanged costs nothing: the analogue of the kernel's swap cache,
 * which its memory cgroup is charged for).  So the heap's target is the
 * budget less all that, measured every SCAN_MS, and never under a quarter
 * of the budget.  A copy is costed at the average stored page: the bytes
 * the tenant's private arena holds over the pages in it. */
static uint64_t copies_cost(const tmem_tswap_stats *s)
{
    int64_t bytes = tmem__conn_arena_bytes(conn);
    uint64_t pages = s->stored + s->copies;
    if (bytes <= 0 || !pages || !s->copies)
        return 0;
    return (uint64_t)((double)s->copies * (double)bytes / (double)pages /
                      4096.0);
}

static void hold_budget(struct tmem_tswap *t)
{
    uint64_t rss = budget_pages ? rss_pages() : 0;
    if (!rss)
        return;
    tmem_tswap_stats s;
    tmem_tswap_stats_get(t, &s);
    uint64_t other = (rss > s.resident ? rss - s.resident : 0) +
                     copies_cost(&s);
    uint64_t tg = budget_pages - budget_pages / 4 > other
                      ? budget_pages - other
                      : budget_pages / 4;
    uint64_t d = tg > s.target ? tg - s.target : s.target - tg;
    if (d > budget_pages / 128)
        tmem_tswap_set_target(t, tg);
}

static void *run_thread(void *arg)
{
    struct tmem_tswap *t = arg;
    for (;;) {
        tmem_run_scan();
        hold_budget(t);
        publish(t);
        struct timespec ts = {0, SCAN_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* ---- --selfballoon ------------------------------------------------------- */

static void *balloon_thread(void *arg)
{
    struct tmem_tswap *t = arg;
    static tmem_balloon b;
    static tmem_balloon_backend be;
    static volatile sig_atomic_t never;
    glue = (struct tmem_balloon_tswap){tmem_tswap_balloon_ops(), t};
    if (tmem_balloon_tswap_backend(&be, &glue) < 0)
        return NULL;
    tmem_balloon_input in;
    if (be.read(be.self, &in) < 0)
        return NULL;
    tmem_balloon_init(&b, in.max, true);
    const char *logp = getenv("TMEM_RUN_LOG");
    FILE *log = logp && *logp ? fopen(logp, "a") : fopen("/dev/null", "w");
    struct tmem_balloon_run_opts o = {
        .control = getenv("TMEM_RUN_CONTROL"),
        .psi = true,
        .log = log,
        .stop = &never,
    };
    int rc = tmem_balloon_run(&be, &b, &o);
    if (rc < 0)
        tmem_run_say("self-ballooning stopped: %s", strerror(-rc));
    return NULL;
}

/* ---- start ---------------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end)
        fatal(name, "not a number");
    return n;
}

static void start_thread(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&th, &a, fn, arg);
    pthread_attr_destroy(&a);
    if (e)
        fatal("cannot start a thread", strerror(e));
}

__attribute__((constructor)) static void run_start(void)
{
    tmem__mem_use_private();
    tmem_run_sig_init();
    tmem_tswap_config cfg;
    tmem_tswap_config_init(&cfg);
    cfg.events = true;
    cfg.target_pages = env_u64("TMEM_RUN_BUDGET", 0) / 4096;
    budget_pages = cfg.target_pages;
    cfg.readahead = (unsigned)env_u64("TMEM_RUN_READAHEAD", cfg.readahead);
    const char *faults = getenv("TMEM_RUN_FAULTS");
    if (faults && !strcmp(faults, "thread"))
        cfg.fault_mode = TMEM_TSWAP_THREAD;
    bool balloon = env_u64("TMEM_RUN_SELFBALLOON", 0) != 0;
    if (balloon) /* the controller sets the target */
        budget_pages = 0;

    int rc = tmem_connect(NULL, &conn);
    if (rc < 0)
        fatal("cannot connect to tmemd", tmem_strerror(rc));
    struct tmem_tswap *t;
    rc = tmem_tswap_create(conn, &cfg, &t);
    if (rc < 0)
        fatal("tswap did not start", tmem_tswap_why(NULL));
    atomic_store_explicit(&tmem_run_tswap, t, memory_order_release);
    tmem_run_stdio_init();
    tmem_run_scan();
    start_thread(run_thread, t);
    if (balloon)
        start_thread(balloon_thread, t);
}
