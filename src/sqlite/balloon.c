/*
 * The balloon of full mode: the page caches' capacity is the tenant's
 * memory, sized every interval by the self-balloon controller
 * (lib/balloon/controller.h), and the figures go to the daemon.
 *
 * Inputs of each step: cur = the capacity now (the last target), max =
 * the configured cache sizes, committed = what the caches can see of the
 * working set: pages pinned + pages reused in the interval + pages that
 * came back from cleancache in it (they were needed and did not fit),
 * reserve = 16 pages, frontswap = 0 (self-shrinking off: cleancache is
 * ephemeral, nothing is brought back).  The target becomes the capacity;
 * the caches evict down to it at their next fetch or unpin (in SQLite's
 * own thread, under its lock: see pcache.c), the evicted pages go to
 * cleancache.  The target never goes below pinned + reserve.
 *
 * The thread runs for the life of the process (also with the balloon
 * off, to report).  It touches only atomics.
 */
#include "tsq.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "balloon/controller.h"

#define RESERVE 16u

static struct tsq_balloon_cfg cfg;
static tmem_balloon ctl;
static uint64_t ctl_max; /* the max the controller was set up for */

uint64_t tsq_balloon_step(struct tmem_balloon *b, uint64_t cur,
                          uint64_t pinned, uint64_t seen, uint64_t max)
{
    uint64_t committed = pinned + seen;
    tmem_balloon_input in = {.cur = cur,
                             .committed = committed < max ? committed : max,
                             .reserve = RESERVE,
                             .max = max,
                             .frontswap = 0};
    tmem_balloon_output out;
    tmem_balloon_tick(b, &in, &out);
    uint64_t t = out.ballooned ? out.target : cur;
    if (t > max)
        t = max;
    if (t < pinned + RESERVE)
        t = pinned + RESERVE < max ? pinned + RESERVE : max;
    return t;
}

static void setup(uint64_t max)
{
    char v[16];
    tmem_balloon_init(&ctl, max, true);
    tmem_balloon_disable(&ctl, false, true); /* self-shrinking off */
    snprintf(v, sizeof v, "%d", cfg.min_usable_mb);
    tmem_balloon_set(&ctl, "selfballoon_min_usable_mb", v, true, NULL);
    ctl_max = max;
}

static void tick(uint64_t hits_in_interval)
{
    uint64_t max = atomic_load(&tsq_caches.max);
    uint64_t cur = atomic_load(&tsq_caches.target);
    uint64_t reused = atomic_exchange(&tsq_caches.reused, 0);
    atomic_fetch_add(&tsq_caches.epoch, 1);
    if (!cfg.on || max == 0)
        return;
    if (max != ctl_max) /* a cache came, went or was resized */
        setup(max);
    if (cur == 0 || cur > max)
        cur = max;
    uint64_t t = tsq_balloon_step(&ctl, cur, atomic_load(&tsq_caches.pinned),
                                  reused + hits_in_interval, max);
    atomic_store(&tsq_caches.target, t);
}

static void *run(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all); /* signals are the program's main thread's */
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uint64_t last_hits = 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        next.tv_nsec += (cfg.interval_ms % 1000) * 1000000L;
        next.tv_sec += cfg.interval_ms / 1000 + next.tv_nsec / 1000000000L;
        next.tv_nsec %= 1000000000L;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) ==
               EINTR)
            ;
        uint64_t hits = atomic_load(&tsq.n.hits);
        tick(hits - last_hits);
        last_hits = hits;
        tmem_sqlite_stats s;
        tmem_sqlite_stats_get(&s);
        tsq_tenant_publish(&s);
    }
    return NULL;
}

int tsq_balloon_start(const struct tsq_balloon_cfg *c)
{
    pthread_t th;
    pthread_attr_t a;
    cfg = *c;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &a, run, NULL);
    pthread_attr_destroy(&a);
    return -rc;
}
