/*
 * The balloon run loop (`tmem balloon run`): reads the backend every
 * interval, runs tmem_balloon_tick, lets the PSI guard veto or raise, and
 * applies the result; logs one line per decision with its reason; serves
 * the tunables on a unix control socket.  Single-threaded: one poll() over
 * the control socket, the PSI trigger and the tick timer, so a stall or a
 * tunable write is answered at once.
 *
 * Reasons logged (several joined by ','):
 *   hysteresis  target moved down toward the goal by 1/downhysteresis
 *   up          target moved up toward the goal by 1/uphysteresis
 *   steady      target = cur
 *   floor       the floor function raised the target
 *   hold        the PSI guard refused a down step (target = cur)
 *   psi         a stall raised the target at once (between ticks)
 *   ignored     a system-wide stall that was not the tenant's (its swap
 *               did not grow lately): nothing done
 *   shrink      self-shrink brought swapped pages back
 *   started     a tunable write turned a function on while idle
 *   error       the backend failed (its why() follows)
 * The worker is idle (no ticks) while both functions are off.
 *
 * Control protocol: one request line per connection, "get NAME",
 * "set NAME VALUE" or "list"; the reply is a status line, "0" or a
 * negative errno, then the payload ("%d\n" for get, "NAME VALUE" lines for
 * list, "started\n" when a set started the worker) or, on error, the
 * message.  A set is admin-only: the peer's SO_PEERCRED uid must be 0 or
 * the runner's own, else the controller answers -EPERM.
 */
#include "balloon/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RUN_BUDGET_MB 64u
#define RUN_REPLY_MAX 2048

struct run {
    tmem_balloon_backend *be;
    tmem_balloon *b;
    const struct tmem_balloon_run_opts *o;
    FILE *log;
    int lfd;                 /* control socket listener, -1 = none */
    tmem_balloon_psi psi;
    tmem_balloon_guard guard;
    uint64_t t0, tick;
    bool shrink_warned;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One decision, for the log. */
struct decision {
    const char *event;       /* "tick" or "psi" */
    tmem_balloon_input in;
    tmem_balloon_output out;
    uint64_t target;         /* what was applied (0 = nothing) */
    int64_t drained;         /* pages brought back, -1 = no shrink */
    char reason[96];
};

static void add_reason(struct decision *d, const char *r)
{
    size_t n = strlen(d->reason);

    snprintf(d->reason + n, sizeof d->reason - n, "%s%s", n ? "," : "", r);
}

static void log_decision(struct run *r, const struct decision *d)
{
    double t = (double)(now_ms() - r->t0) / 1000.0;
    const tmem_balloon_output *o = &d->out;
    char fs[24] = "";

    if (d->out.shrink)
        snprintf(fs, sizeof fs, "%" PRIu64, o->fs_target);
    if (r->o->json)
        fprintf(r->log,
                "{\"event\":\"%s\",\"tick\":%" PRIu64 ",\"t\":%.3f,"
                "\"cur\":%" PRIu64 ",\"committed\":%" PRIu64
                ",\"frontswap\":%" PRIu64 ",\"goal\":%" PRIu64
                ",\"floor\":%" PRIu64 ",\"target\":%" PRIu64
                ",\"fs_target\":%s,\"drained\":%" PRId64
                ",\"reason\":\"%s\"}\n",
                d->event, r->tick, t, d->in.cur, d->in.committed,
                d->in.frontswap, o->goal, o->floor, d->target,
                fs[0] ? fs : "null", d->drained < 0 ? 0 : d->drained,
                d->reason);
    else
        fprintf(r->log,
                "%s %" PRIu64 " t=%.1f cur=%" PRIu64 " committed=%" PRIu64
                " frontswap=%" PRIu64 " goal=%" PRIu64 " floor=%" PRIu64
                " target=%" PRIu64 " fs_target=%s drained=%" PRId64
                " reason=%s\n",
                d->event, r->tick, t, d->in.cur, d->in.committed,
                d->in.frontswap, o->goal, o->floor, d->target,
                fs[0] ? fs : "-", d->drained < 0 ? 0 : d->drained, d->reason);
    fflush(r->log);
}

static void log_error(struct run *r, const char *what, int rc)
{
    if (r->o->json)
        fprintf(r->log, "{\"event\":\"error\",\"what\":\"%s\",\"errno\":%d,"
                        "\"why\":\"%s\"}\n",
                what, -rc, tmem_balloon_backend_why(r->be));
    else
        fprintf(r->log, "error %s: %s (%s)\n", what, strerror(-rc),
                tmem_balloon_backend_why(r->be));
    fflush(r->log);
}

/* The hysteresis step alone, to tell "floor" from "hysteresis". */
static uint64_t raw_target(const tmem_balloon *b, uint64_t cur, uint64_t goal)
{
    if (cur > goal)
        return cur - (cur - goal) / b->t.downhysteresis;
    if (cur < goal)
        return cur + (goal - cur) / b->t.uphysteresis;
    return cur;
}

/* The ballooning half of a tick: reason, guard, apply. */
static void tick_balloon(struct run *r, struct decision *d)
{
    const tmem_balloon_output *o = &d->out;
    uint64_t cur = d->in.cur, t = o->target;
    int rc;

    if (t < cur)
        add_reason(d, "hysteresis");
    else if (t > cur)
        add_reason(d, "up");
    else
        add_reason(d, "steady");
    if (raw_target(r->b, cur, o->goal) < o->floor)
        add_reason(d, "floor");
    if (r->psi.fd >= 0 && tmem_balloon_guard_filter(&r->guard, now_ms(),
                                                    &d->in, &t))
        add_reason(d, "hold");
    d->target = t;
    if (t == cur)
        return;
    rc = r->be->apply_target(r->be->self, t);
    if (rc < 0)
        log_error(r, "apply", rc);
}

/* The self-shrink half of a tick. */
static void tick_shrink(struct run *r, struct decision *d)
{
    unsigned mb = r->o->shrink_budget_mb ? r->o->shrink_budget_mb
                                         : RUN_BUDGET_MB;
    int rc;

    if (!r->be->shrink_frontswap) {
        if (!r->shrink_warned)
            log_error(r, "shrink", -EOPNOTSUPP);
        r->shrink_warned = true;
        return;
    }
    rc = r->be->shrink_frontswap(r->be->self, d->out.fs_target,
                                 TMEM_MB_PAGES(mb));
    if (rc < 0) {
        log_error(r, "shrink", rc);
        return;
    }
    d->drained = rc;
    add_reason(d, "shrink");
}

static void do_tick(struct run *r, const char *extra)
{
    struct decision d = {.event = "tick", .drained = -1};
    int rc = r->be->read(r->be->self, &d.in);

    r->tick++;
    if (rc < 0) {
        log_error(r, "read", rc);
        return;
    }
    tmem_balloon_tick(r->b, &d.in, &d.out);
    if (extra)
        add_reason(&d, extra);
    if (d.out.ballooned)
        tick_balloon(r, &d);
    if (d.out.shrink)
        tick_shrink(r, &d);
    if (!d.reason[0])
        add_reason(&d, "idle");
    log_decision(r, &d);
}

/* A PSI stall between ticks: raise at once when it concerns the tenant. */
static void on_stall(struct run *r)
{
    struct decision d = {.event = "psi", .drained = -1};
    uint64_t t;
    int rc = r->be->read(r->be->self, &d.in);

    if (rc < 0) {
        log_error(r, "read", rc);
        return;
    }
    d.out.goal = d.in.committed + d.in.reserve +
                 TMEM_MB_PAGES(r->b->t.reserved_mb) + d.in.frontswap;
    d.out.floor = tmem_balloon_floor(r->b, d.in.max, d.in.reserve);
    r->guard.hold_ms = tmem_balloon_guard_hold_ms(r->o->hold_ms,
                                                  r->b->t.interval);
    if (!tmem_balloon_guard_stall(&r->guard, now_ms(), &d.in, r->b, &t)) {
        d.target = d.in.cur;
        add_reason(&d, "ignored"); /* not this tenant's stall */
        log_decision(r, &d);
        return;
    }
    d.target = t;
    add_reason(&d, "psi");
    rc = r->be->apply_target(r->be->self, t);
    if (rc < 0)
        log_error(r, "apply", rc);
    log_decision(r, &d);
}

/* ---- control socket ---------------------------------------------------- */

static int listen_on(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char dir[sizeof sa.sun_path];
    char *slash;
    int fd;

    if (strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir(dir, 0755); /* /run/tmem; exists is fine */
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    unlink(path); /* a stale socket of a runner that died */
    /* everyone may connect (get, list); set checks the peer's uid */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        chmod(path, 0666) < 0 || listen(fd, 8) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* Answers one request into reply.  Returns the status (0 or -errno). */
static int answer(struct run *r, char *req, bool admin, char *reply,
                  size_t cap, bool *started)
{
    char *name, *value, *save = NULL;
    char *verb = strtok_r(req, " \t\r\n", &save);
    size_t n = 0;
    int rc;

    reply[0] = '\0';
    if (!verb)
        return -EINVAL;
    name = strtok_r(NULL, " \t\r\n", &save);
    value = strtok_r(NULL, " \t\r\n", &save);
    if (strcmp(verb, "list") == 0) {
        for (size_t i = 0; tmem_balloon_tunable_names[i]; i++) {
            const char *nm = tmem_balloon_tunable_names[i];
            char v[32];
            if (tmem_balloon_get(r->b, nm, v, sizeof v) < 0)
                continue;
            n += (size_t)snprintf(reply + n, n < cap ? cap - n : 0, "%s %s",
                                  nm, v);
        }
        return 0;
    }
    if (strcmp(verb, "get") == 0 && name) {
        rc = tmem_balloon_get(r->b, name, reply, cap);
        return rc < 0 ? rc : 0;
    }
    if (strcmp(verb, "set") == 0 && name && value) {
        rc = tmem_balloon_set(r->b, name, value, admin, started);
        if (rc == 0 && *started)
            snprintf(reply, cap, "started\n");
        return rc;
    }
    return -EINVAL;
}

static void serve_one(struct run *r, bool *started)
{
    char req[256], reply[RUN_REPLY_MAX], head[16];
    struct timeval tv = {1, 0};
    struct ucred cred;
    socklen_t len = sizeof cred;
    ssize_t got = 0, n;
    int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC), rc;
    bool admin;

    if (fd < 0)
        return;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (got < (ssize_t)sizeof req - 1 &&
           (n = read(fd, req + got, sizeof req - 1 - (size_t)got)) > 0) {
        got += n;
        if (memchr(req, '\n', (size_t)got))
            break;
    }
    req[got > 0 ? got : 0] = '\0';
    admin = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
            (cred.uid == 0 || cred.uid == geteuid());
    rc = answer(r, req, admin, reply, sizeof reply, started);
    if (rc < 0)
        snprintf(reply, sizeof reply, "%s\n", strerror(-rc));
    n = snprintf(head, sizeof head, "%d\n", rc);
    if (write(fd, head, (size_t)n) == n)
        (void)!write(fd, reply, strlen(reply));
    close(fd);
}

int tmem_balloon_control(const char *path, const char *request, char *out,
                         size_t cap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char buf[RUN_REPLY_MAX + 32], *nl;
    ssize_t got = 0, n;
    int fd, rc;

    if (strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        write(fd, request, strlen(request)) < 0 || write(fd, "\n", 1) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    while (got < (ssize_t)sizeof buf - 1 &&
           (n = read(fd, buf + got, sizeof buf - 1 - (size_t)got)) > 0)
        got += n;
    close(fd);
    buf[got > 0 ? got : 0] = '\0';
    nl = strchr(buf, '\n');
    if (!nl)
        return -EPROTO;
    *nl = '\0';
    rc = atoi(buf);
    if (out && cap)
        snprintf(out, cap, "%s", nl + 1);
    return rc;
}

/* ---- the loop ---------------------------------------------------------- */

static bool worker_idle(const tmem_balloon *b)
{
    return !b->t.selfballooning &&
           !(b->t.selfshrinking && b->frontswap_available);
}

static void run_init(struct run *r)
{
    const char *pp = r->be->pressure_path;
    int rc;

    r->psi.fd = -1;
    if (!r->o->psi)
        return;
    if (!pp) {
        fprintf(r->log, "psi: off (the %s backend has no pressure file)\n",
                r->be->name);
        return;
    }
    rc = tmem_balloon_psi_open(&r->psi, pp, r->o->psi_trigger);
    if (rc < 0) {
        fprintf(r->log, "psi: off (%s: %s)\n", pp, strerror(-rc));
        return;
    }
    /* its hold_ms is set at each stall (on_stall): the interval may
     * change meanwhile */
    tmem_balloon_guard_init(&r->guard,
                            strcmp(pp, "/proc/pressure/memory") != 0);
}

/* Waits for the socket, a stall or the next tick (at most until then). */
static void wait_once(struct run *r, uint64_t next, bool *tick_now)
{
    struct pollfd p[2] = {{r->lfd, POLLIN, 0}, {r->psi.fd, POLLPRI, 0}};
    uint64_t now = now_ms();
    int timeout = next > now ? (int)(next - now) : 0;
    bool started = false;

    if (timeout > 1000)
        timeout = 1000; /* look at *stop at least every second */
    if (poll(p, 2, timeout) <= 0)
        return;
    if (p[0].revents & POLLIN) {
        serve_one(r, &started);
        if (started)
            *tick_now = true;
    }
    if (p[1].revents & (POLLERR | POLLNVAL)) { /* the cgroup went away */
        fprintf(r->log, "psi: off (pressure file gone)\n");
        tmem_balloon_psi_close(&r->psi);
    } else if (p[1].revents & POLLPRI) {
        r->psi.events++;
        on_stall(r);
    }
}

/* The counters, one per reason, on exit. */
static void log_summary(struct run *r)
{
    const tmem_balloon_guard *g = &r->guard;

    if (r->o->json)
        fprintf(r->log,
                "{\"event\":\"stop\",\"ticks\":%" PRIu64
                ",\"stalls\":%" PRIu64 ",\"psi_raises\":%" PRIu64
                ",\"psi_ignored\":%" PRIu64 ",\"holds\":%" PRIu64 "}\n",
                r->tick, r->psi.events, g->raises, g->ignored, g->holds);
    else
        fprintf(r->log,
                "stop ticks=%" PRIu64 " stalls=%" PRIu64 " psi_raises=%" PRIu64
                " psi_ignored=%" PRIu64 " holds=%" PRIu64 "\n",
                r->tick, r->psi.events, g->raises, g->ignored, g->holds);
    fflush(r->log);
}

int tmem_balloon_run(tmem_balloon_backend *be, tmem_balloon *b,
                     const struct tmem_balloon_run_opts *o)
{
    struct run r = {.be = be, .b = b, .o = o, .lfd = -1};
    uint64_t next = 0;
    bool tick_now = false, was_idle = false;

    r.log = o->log ? o->log : stdout;
    r.t0 = now_ms();
    if (o->control) {
        r.lfd = listen_on(o->control);
        if (r.lfd < 0)
            return r.lfd;
    }
    run_init(&r);
    while (!(o->stop && *o->stop) &&
           !(o->max_ticks && r.tick >= o->max_ticks)) {
        bool idle = worker_idle(b);
        uint64_t now = now_ms();

        if (!idle && (tick_now || now >= next)) {
            do_tick(&r, tick_now || was_idle ? "started" : NULL);
            next = now + (uint64_t)b->t.interval * 1000u;
            tick_now = false;
        }
        was_idle = idle;
        wait_once(&r, idle ? now + 1000 : next, &tick_now);
    }
    log_summary(&r);
    tmem_balloon_psi_close(&r.psi);
    if (r.lfd >= 0) {
        close(r.lfd);
        unlink(o->control);
    }
    return 0;
}
