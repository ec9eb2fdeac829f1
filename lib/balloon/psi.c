/*
 * The PSI guard: the original admits that userspace ballooning OOMs; this
 * one watches memory pressure and backs off before the kernel kills.
 *
 * The trigger is the kernel's PSI trigger interface: "some 100000 1000000"
 * written to /proc/pressure/memory (or a v2 cgroup's memory.pressure)
 * makes the file poll POLLPRI when tasks stalled on memory for 100 ms of
 * a 1 s window.  A process without CAP_SYS_RESOURCE (a container, as on
 * the test machine) may only use windows that are multiples of 2 s; the
 * default then falls back to "some 200000 2000000" (same 10%), which the
 * kernel checks every 2 s.  The loop polls it together with its timer,
 * so a stall is answered at once, not at the next tick.
 *
 * The rule (pure):
 *   - a stall concerns the tenant when the pressure file is the tenant's
 *     own (v2 memory.pressure), or, on the system-wide file, when the
 *     tenant's swap grew within the last GUARD_RECENT_MS (3 s: the
 *     longest PSI window we arm plus a tick) - it is being reclaimed, the
 *     stall is at least partly its own; other tenants' stalls are
 *     ignored (and logged as such);
 *   - and only while the tenant presses on its allowance: it uses all of
 *     cur but a step, max(cur / 8, reserve) (in->used; 0 = unknown, taken
 *     as pressing).  A tenant with room under its allowance is not
 *     stalled by it, and raising an allowance it does not use relieves
 *     nothing (such stalls are ignored and logged as such too);
 *   - then the target is raised at once to
 *         max(cur + max(cur / 4, 32 MiB), committed + reserve
 *             + MB(reserved_mb) + frontswap)
 *     i.e. at least a quarter more, and enough for everything the tenant
 *     has committed and swapped to come back;
 *   - and for hold_ms after the stall (two ticks: 10 s at the default
 *     5 s interval; tmem_balloon_guard_hold_ms) no target below cur is
 *     applied (down-ballooning holds; up moves pass).
 */
#include "balloon/psi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define GUARD_HOLD_MS 10000u
#define GUARD_STEP_MIN TMEM_MB_PAGES(32)
#define GUARD_RECENT_MS 3000u

/* Notes when the tenant's swap was last seen growing. */
static void see(tmem_balloon_guard *g, uint64_t now_ms, uint64_t fs)
{
    if (fs > g->last_fs)
        g->last_growth = now_ms ? now_ms : 1;
    g->last_fs = fs;
}

/* Writes trigger (with its NUL, which the kernel wants).  Returns 0 or
 * -errno. */
static int arm(int fd, const char *trigger)
{
    size_t n = strlen(trigger) + 1;

    return write(fd, trigger, n) == (ssize_t)n ? 0 : -errno;
}

int tmem_balloon_psi_open(tmem_balloon_psi *p, const char *path,
                          const char *trigger)
{
    int rc;

    p->fd = -1;
    p->events = 0;
    p->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (p->fd < 0)
        return -errno;
    rc = arm(p->fd, trigger ? trigger : TMEM_BALLOON_PSI_TRIGGER);
    /* Without CAP_SYS_RESOURCE the kernel takes only windows that are a
     * multiple of 2 s: the default falls back to the same ratio over 2 s. */
    if (rc == -EINVAL && !trigger)
        rc = arm(p->fd, TMEM_BALLOON_PSI_TRIGGER_UNPRIV);
    if (rc < 0) {
        close(p->fd);
        p->fd = -1;
    }
    return rc;
}

int tmem_balloon_psi_fd(const tmem_balloon_psi *p)
{
    return p ? p->fd : -1;
}

int tmem_balloon_psi_check(tmem_balloon_psi *p)
{
    struct pollfd pfd;
    int r;

    if (!p || p->fd < 0)
        return 0;
    pfd.fd = p->fd;
    pfd.events = POLLPRI;
    pfd.revents = 0;
    r = poll(&pfd, 1, 0);
    if (r < 0)
        return -errno;
    if (r == 0)
        return 0;
    if (pfd.revents & POLLERR)
        return -EIO; /* the file went away (cgroup removed) */
    p->events++;
    return 1;
}

void tmem_balloon_psi_close(tmem_balloon_psi *p)
{
    if (p && p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
}

uint64_t tmem_balloon_guard_hold_ms(uint64_t hold_ms, unsigned interval_s)
{
    if (hold_ms)
        return hold_ms;
    return interval_s ? 2000u * (uint64_t)interval_s : 1;
}

void tmem_balloon_guard_init(tmem_balloon_guard *g, bool cgroup_local)
{
    memset(g, 0, sizeof *g);
    g->hold_ms = GUARD_HOLD_MS;
    g->cgroup_local = cgroup_local;
}

bool tmem_balloon_guard_stall(tmem_balloon_guard *g, uint64_t now_ms,
                              const tmem_balloon_input *in,
                              const tmem_balloon *b, uint64_t *target)
{
    uint64_t room, step, need, t;
    see(g, now_ms, in->frontswap);
    if (!g->cgroup_local &&
        !(g->last_growth && now_ms - g->last_growth <= GUARD_RECENT_MS)) {
        g->ignored++;
        return false;
    }
    room = in->cur / 8 > in->reserve ? in->cur / 8 : in->reserve;
    if (in->used && in->used < in->cur && in->cur - in->used > room) {
        g->ignored++; /* room under its allowance: not our squeeze */
        return false;
    }
    step = in->cur / 4 > GUARD_STEP_MIN ? in->cur / 4 : GUARD_STEP_MIN;
    need = in->committed + in->reserve + TMEM_MB_PAGES(b->t.reserved_mb) +
           in->frontswap;
    t = in->cur + step;
    *target = t > need ? t : need;
    g->hold_until = now_ms + g->hold_ms;
    g->raises++;
    return true;
}

bool tmem_balloon_guard_filter(tmem_balloon_guard *g, uint64_t now_ms,
                               const tmem_balloon_input *in,
                               uint64_t *target)
{
    see(g, now_ms, in->frontswap);
    if (g->hold_until == 0 || now_ms >= g->hold_until) {
        g->hold_until = 0;
        return false;
    }
    if (*target >= in->cur)
        return false;
    *target = in->cur;
    g->holds++;
    return true;
}
