/*
 * tmemd: serves one tmem store to many tenant processes over a Unix socket
 * (plus a shared-memory ring per tenant), see tmemd(8), docs/protocol.md.
 *
 * The main thread owns the listening socket and the signals: SIGTERM,
 * SIGINT and SIGHUP are blocked in every thread and read from a signalfd
 * here, so shutdown happens in one place: stop accepting, remove the
 * socket file, shut every session down, wait for them, destroy the store.
 * SIGHUP reloads the configuration file instead (tenant.c), here too, so
 * reloads never overlap.  Every ten seconds it logs an eviction summary
 * when pages were evicted.
 */
#include "tmemd.h"

#ifndef TMEM_VERSION
#define TMEM_VERSION "unknown"
#endif

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <proto/conn.h>
#include <common/size.h>

#define SUMMARY_MS 10000
#define DRAIN_S 5
#define DEFAULT_CONFIG "/etc/tmem/tmemd.conf"

struct opts {
    const char *socket;
    const char *metrics;
    uint64_t budget;
    tmem_compress compress;
    bool foreground;
    struct tmemd_limits lim; /* admit.c */
    const char *config;      /* tenant.c; given: it must exist */
    bool config_given;
    const char *state_dir;   /* keep.c: persistent pages across restarts */
};

void tmemd_log(const char *fmt, ...)
{
    char line[512];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ tmemd: ", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tmemd [--socket PATH] [--budget SIZE] "
               "[--compress lz4|zstd|none]\n"
               "             [--metrics [ADDR:]PORT] [--foreground]\n"
               "             [--max-sessions N] [--max-sessions-per-uid N]\n"
               "             [--hello-timeout SEC] [--recv-timeout SEC]\n"
               "             [--config PATH] [--state-dir DIR]\n"
               "       tmemd --version | --help\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"socket", required_argument, 0, 's'},
        {"budget", required_argument, 0, 'b'},
        {"compress", required_argument, 0, 'c'},
        {"metrics", required_argument, 0, 'm'},
        {"foreground", no_argument, 0, 'f'},
        {"config", required_argument, 0, 'C'},
        {"state-dir", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        /* limits (admit.c), told apart by name */
        {"max-sessions", required_argument, 0, 'L'},
        {"max-sessions-per-uid", required_argument, 0, 'L'},
        {"hello-timeout", required_argument, 0, 'L'},
        {"recv-timeout", required_argument, 0, 'L'},
        {0, 0, 0, 0},
    };
    o->budget =
        (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE) / 4;
    o->compress = TMEM_COMPRESS_LZ4;
    tmemd_limits_default(&o->lim);
    int li = 0;
    for (int c; (c = getopt_long(argc, argv, "s:b:c:m:fhV", lo, &li)) != -1;) {
        if (c == 'L' && tmemd_limit_parse(&o->lim, lo[li].name, optarg) == 0)
            continue;
        if (c == 's')
            o->socket = optarg;
        else if (c == 'C' && *optarg)
            o->config = optarg;
        else if (c == 'S' && *optarg)
            o->state_dir = optarg;
        else if (c == 'm')
            o->metrics = optarg;
        else if (c == 'f')
            o->foreground = true;
        else if (c == 'b' && tmem__parse_size(optarg, &o->budget) == 0)
            continue;
        else if (c == 'c' && tmem_compress_parse(optarg, &o->compress) == 0)
            continue;
        else if (c == 'h') {
            usage(stdout);
            exit(0);
        } else if (c == 'V') {
            printf("tmemd %s\n", TMEM_VERSION);
            exit(0);
        } else {
            if (c == 'b' || c == 'c' || c == 'L' || c == 'C' || c == 'S')
                fprintf(stderr, "tmemd: bad value for --%s: %s\n",
                        c == 'L'   ? lo[li].name
                        : c == 'b' ? "budget"
                        : c == 'C' ? "config"
                        : c == 'S' ? "state-dir"
                                   : "compress",
                        optarg);
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return -EINVAL;
    }
    if (!o->socket)
        o->socket = tmem__conn_default_path();
    o->config_given = o->config != NULL;
    if (!o->config)
        o->config = DEFAULT_CONFIG; /* read only if it exists */
    return 0;
}

/* Refuses to replace a live daemon's socket; removes a stale one. */
static int clear_stale(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int live = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
    close(fd);
    if (live)
        return -EADDRINUSE;
    unlink(sa->sun_path);
    return 0;
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    if (strcmp(path, "/run/tmem/tmemd.sock") == 0)
        mkdir("/run/tmem", 0755);
    int rc = clear_stale(&sa);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Any local user may connect: data ops are per-tenant, admin checked. */
    mode_t old = umask(0);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0 || listen(fd, 128) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static void log_evictions(struct tmemd *d, uint64_t *last)
{
    tmem_global_stats g;
    if (tmem_store_stats(d->store, &g) < 0 || g.evictions == *last)
        return;
    tmemd_log("evicted %llu ephemeral pages in the last %d s (total %llu, "
              "used %llu of %llu bytes)",
              (unsigned long long)(g.evictions - *last), SUMMARY_MS / 1000,
              (unsigned long long)g.evictions, (unsigned long long)g.used_bytes,
              (unsigned long long)g.budget_bytes);
    *last = g.evictions;
}

static void accept_one(struct tmemd *d, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        tmemd_session_start(d, fd);
    else if (errno == EMFILE || errno == ENFILE)
        usleep(10000); /* out of descriptors: do not spin */
}

static void serve(struct tmemd *d, int lfd, int sfd)
{
    struct pollfd p[2] = {{.fd = lfd, .events = POLLIN},
                          {.fd = sfd, .events = POLLIN}};
    uint64_t evicted = 0, last = tmem__now_ns();
    for (;;) {
        int n = poll(p, 2, SUMMARY_MS);
        if (tmem__now_ns() - last >= SUMMARY_MS * 1000000ull) {
            log_evictions(d, &evicted); /* even while accepts keep coming */
            last = tmem__now_ns();
        }
        if (n <= 0)
            continue;
        if (p[1].revents) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) != sizeof si)
                continue;
            if (si.ssi_signo == SIGHUP) {
                tmemd_policy_reload(d);
                continue;
            }
            tmemd_log("signal %u: shutting down", si.ssi_signo);
            return;
        }
        if (p[0].revents)
            accept_one(d, lfd);
    }
}

/* Ends every session; true when all ended within DRAIN_S seconds. */
static bool drain(struct tmemd *d)
{
    atomic_store(&d->stopping, 1);
    tmemd_sessions_shutdown(d);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DRAIN_S;
    pthread_mutex_lock(&d->lock);
    while (d->nsessions > 0 &&
           pthread_cond_timedwait(&d->drained, &d->lock, &until) == 0)
        ;
    bool done = d->nsessions == 0;
    pthread_mutex_unlock(&d->lock);
    return done;
}

static int setup_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

static int run(struct tmemd *d, const struct opts *o, int lfd, int sfd)
{
    tmemd_log("serving on %s (budget %llu bytes, %s%s%s; sessions %d, "
              "%d per uid; hello within %.3g s, a message within %.3g s; "
              "policy %s, %d rules)",
              o->socket, (unsigned long long)o->budget,
              tmem_compress_name(o->compress),
              o->metrics ? ", metrics on " : "", o->metrics ? o->metrics : "",
              o->lim.max_sessions, o->lim.max_per_uid,
              (double)o->lim.hello_ns / 1e9, (double)o->lim.recv_ns / 1e9,
              o->config, tmemd_policy_rules(d->policy));
    tmemd_notify("READY=1\nSTATUS=serving");
    serve(d, lfd, sfd);
    tmemd_notify("STOPPING=1");
    /* before any session is shut down: their pages are still there */
    int lost = o->state_dir ? tmemd_keep_save(d, o->state_dir) : 0;
    close(lfd);
    unlink(o->socket);
    tmemd_metrics_stop();
    if (lost) {
        /* the store goes with the process, its arena files stay: the
         * next start recovers them as after a crash */
        tmemd_log("the arena files of tenants whose pages could not be "
                  "saved are left for the next start to recover");
    } else if (drain(d)) {
        tmemd_rings_stop(d);
        tmemd_parked_free(d);
        tmem_store_destroy(d->store);
        tmemd_policy_free(d->policy);
    } else {
        tmemd_log("sessions still busy after %d s; exiting anyway", DRAIN_S);
    }
    tmemd_log("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    if (parse_opts(argc, argv, &o) < 0)
        return 2;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct tmemd d = {.uid = geteuid(),
                      .lim = o.lim,
                      .codec = o.compress,
                      .config = o.config,
                      .config_required = o.config_given,
                      .ncpu = ncpu > 0 ? (int)ncpu : 1,
                      .lock = PTHREAD_MUTEX_INITIALIZER,
                      .share_lock = PTHREAD_MUTEX_INITIALIZER,
                      .policy_lock = PTHREAD_MUTEX_INITIALIZER,
                      .drained = PTHREAD_COND_INITIALIZER};
    tmemd_rings_init(&d);
    /* a bad file stops us before the socket is touched */
    if (tmemd_policy_start(&d) < 0)
        return 1;
    int sfd = setup_signals();
    int lfd = listen_on(o.socket);
    if (lfd < 0 || sfd < 0) {
        tmemd_log("cannot listen on %s: %s", o.socket,
                  strerror(lfd < 0 ? -lfd : errno));
        return 1;
    }
    /* before any thread exists (the store may start some) */
    if (!o.foreground && daemon(1, 1) < 0) {
        tmemd_log("cannot daemonise: %s", strerror(errno));
        return 1;
    }
    int rc;
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.budget_bytes = o.budget;
    cfg.compress = o.compress;
    char arenas[4200];
    if (o.state_dir) { /* persistent pages in files a crash leaves */
        if ((rc = tmemd_arena_dir(o.state_dir, arenas, sizeof arenas)) < 0) {
            tmemd_log("cannot keep arenas in %s/arenas: %s", o.state_dir,
                      strerror(-rc));
            tmemd_policy_free(d.policy);
            unlink(o.socket);
            return 1;
        }
        cfg.arena_dir = arenas;
    }
    rc = tmem_store_create(&cfg, &d.store);
    if (rc < 0) {
        tmemd_log("cannot create the store: %s", tmem_strerror(rc));
        tmemd_policy_free(d.policy);
        unlink(o.socket);
        return 1;
    }
    /* eviction ahead of need and compaction off the tenants' paths */
    if ((rc = tmem_store_start_maintenance(d.store)) < 0) {
        tmemd_log("cannot start the store's maintenance: %s", strerror(-rc));
        tmem_store_destroy(d.store);
        tmemd_policy_free(d.policy);
        unlink(o.socket);
        return 1;
    }
    /* the metrics server before any kept page is taken in: if it cannot
     * start, nothing of the state directory has been touched */
    rc = o.metrics ? tmemd_metrics_start(&d, o.metrics) : 0;
    if (rc < 0) {
        tmemd_log("cannot serve metrics on %s: %s", o.metrics,
                  rc == -EINVAL ? "not PORT, :PORT or ADDR:PORT (IPv4)"
                                : strerror(-rc));
        tmem_store_destroy(d.store);
        tmemd_policy_free(d.policy);
        unlink(o.socket); /* nothing is served: no socket file stays */
        return 1;
    }
    /* what the last stop kept, for its tenants, before anyone connects */
    if (o.state_dir) {
        tmemd_keep_load(&d, o.state_dir);
        tmemd_recover_arenas(&d, arenas); /* what a crash left */
    }
    /* at most one ring worker per CPU, however many tenants */
    if ((rc = tmemd_rings_start(&d, d.ncpu)) < 0) {
        tmemd_log("cannot start the ring workers: %s", strerror(-rc));
        tmemd_metrics_stop();
        /* with a state directory the kept pages are in its arena files:
         * leave them for the next start, as a crash would */
        if (!o.state_dir) {
            tmem_store_destroy(d.store);
            tmemd_policy_free(d.policy);
        }
        unlink(o.socket);
        return 1;
    }
    return run(&d, &o, lfd, sfd);
}
