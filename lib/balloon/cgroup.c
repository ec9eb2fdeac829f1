/*
 * The cgroup balloon backend: self-ballooning a memory cgroup (v1 or v2)
 * from outside, so that tmem_balloon_tick sizes a container as
 * xen-selfballoon sized a guest.  The version is told by the files: v2 has
 * memory.high, v1 memory.limit_in_bytes.
 *
 * Where each quantity comes from (4 KiB pages):
 *   used      the usage (for the PSI guard: whether it presses on cur).
 *   cur       the allowance now: memory.limit_in_bytes (v1) or memory.high
 *             (v2) when set (below MemTotal), else the usage
 *             (memory.usage_in_bytes / memory.current).
 *   committed what the kernel cannot reclaim without swap: v1
 *             total_rss (else rss) of memory.stat plus
 *             memory.kmem.usage_in_bytes when present; v2 anon plus
 *             kernel minus slab_reclaimable of memory.stat (without a
 *             kernel field: slab_unreclaimable + kernel_stack + pagetables
 *             + percpu).  Page cache, shmem and reclaimable slab are left
 *             out: they are what ballooning squeezes (shmem goes to swap).
 *             Plus the working set the tenant re-uses, from its refault
 *             counters (workingset.h): pages squeezed out that it needed
 *             again, so the target stops above what it reads again; for
 *             a tenant that ran unlimited, seeded with its active file
 *             list when ballooning starts.
 *   reserve   the kernel's slack for charging: its per-CPU charge stock
 *             (64 pages a CPU) plus 2 MiB; BACKEND_RESERVE below.
 *   max       the allowance at open when one was set; else the highest
 *             usage seen since open (the tenant's own peak), so that the
 *             floor function scales with the tenant, not with the host.
 *   frontswap the cgroup's pages in swap (zram, zswap or a disk): v1
 *             total_swap of memory.stat, else memory.memsw.usage_in_bytes
 *             - memory.usage_in_bytes, else the processes' VmSwap; v2
 *             memory.swap.current, else VmSwap.
 *
 * Applying a target: a tenant with no allowance at open that has not
 * yet held reserve + 16 MiB is not worth ballooning (the floor
 * function's first case): it is left at its ceiling, none, instead of
 * being pinned at the little it has held.  Otherwise v2 writes memory.high (throttle and reclaim, never an
 * OOM kill); v1 writes memory.limit_in_bytes.  Both never go below the
 * usage now by more than one step, max(32 MiB, usage / 8), so the kernel
 * reclaims a bounded amount per tick instead of failing a charge and
 * OOM-killing; a v1 write that the kernel cannot reclaim for (EBUSY) is
 * retried at the usage.  Targets never exceed the allowance at open (the
 * administrator's ceiling), nor a finite v1 memsw limit.
 *
 * Refusals: the root of a hierarchy (its parent directory has no
 * cgroup.procs) and a cgroup holding the calling process in it or below
 * it are -EPERM: the host never self-balloons.  Closing the backend
 * restores the allowance the cgroup had at open.
 */
#include "balloon/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "balloon/drain.h"
#include "balloon/workingset.h"
#include "common/mem.h"
#include "common/sysfile.h"

#define CG_PAGE ((uint64_t)4096)
#define CG_PATH (PATH_MAX + 64) /* dir + "/" + a file name */
#define CG_STEP_MIN TMEM_MB_PAGES(32)

struct cg_self {
    char dir[PATH_MAX];
    char why[PATH_MAX + 160];
    char start_text[64];  /* the allowance file's content at open */
    char pressure[PATH_MAX + 32];
    int version;
    uint64_t mem_total;   /* pages, /proc/meminfo MemTotal */
    uint64_t start_limit; /* pages, 0 = none */
    uint64_t memsw_limit; /* pages, 0 = none (v1) */
    uint64_t peak;        /* highest usage seen, pages */
    uint64_t usage, limit, applied, drained, clamped;
    uint64_t workingset;  /* pages added to committed at the last read */
    tmem_balloon_ws ws;
    bool seeded;          /* the estimate took the active file list */
};

static void fail(struct cg_self *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct cg_self *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[CG_PATH];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Parses a byte count ("max" = none = 0) into pages, rounding up.
 * Returns 0 or -EINVAL. */
static int parse_bytes(const char *s, uint64_t *pages)
{
    unsigned long long v;
    char *end;

    while (*s == ' ')
        s++;
    if (strncmp(s, "max", 3) == 0) {
        *pages = 0;
        return 0;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || (*end && *end != '\n'))
        return -EINVAL;
    *pages = v / CG_PAGE + (v % CG_PAGE != 0);
    return 0;
}

/* Reads dir/name as a byte count in pages.  Returns 0 or -errno (why set). */
static int read_pages(struct cg_self *c, const char *name, uint64_t *pages)
{
    char buf[64];
    int rc = tmem__read_text(c->dir, name, buf, sizeof buf);

    if (rc >= 0)
        rc = parse_bytes(buf, pages);
    if (rc < 0)
        fail(c, "%s/%s: %s", c->dir, name, strerror(-rc));
    return rc;
}

static uint64_t pages_of(uint64_t bytes)
{
    return bytes / CG_PAGE;
}

static int add_vmswap(pid_t pid, void *arg)
{
    int64_t n = tmem_balloon_swapped_pages(pid);

    if (n > 0)
        *(uint64_t *)arg += (uint64_t)n;
    return 0;
}

/* v1 committed and frontswap from memory.stat and its neighbours. */
static int read_v1_stat(struct cg_self *c, const char *st,
                        tmem_balloon_input *in)
{
    uint64_t rss = 0, swap = 0, kmem = 0, memsw;

    if (!tmem__text_field(st, "total_rss", &rss) && !tmem__text_field(st, "rss", &rss)) {
        fail(c, "%s/memory.stat: no rss field", c->dir);
        return -EINVAL;
    }
    in->committed = pages_of(rss);
    if (read_pages(c, "memory.kmem.usage_in_bytes", &kmem) == 0)
        in->committed += kmem;
    if (tmem__text_field(st, "total_swap", &swap) || tmem__text_field(st, "swap", &swap))
        in->frontswap = pages_of(swap);
    else if (read_pages(c, "memory.memsw.usage_in_bytes", &memsw) == 0)
        in->frontswap = memsw > c->usage ? memsw - c->usage : 0;
    else
        return tmem__balloon_cgroup_each_pid(c->dir, add_vmswap,
                                             &in->frontswap);
    return 0;
}

/* v2 committed and frontswap from memory.stat and memory.swap.current. */
static int read_v2_stat(struct cg_self *c, const char *st,
                        tmem_balloon_input *in)
{
    uint64_t anon = 0, kernel = 0, v = 0;
    static const char *const kparts[] = {"slab_unreclaimable", "kernel_stack",
                                         "pagetables", "percpu"};

    if (!tmem__text_field(st, "anon", &anon)) {
        fail(c, "%s/memory.stat: no anon field", c->dir);
        return -EINVAL;
    }
    if (tmem__text_field(st, "kernel", &kernel)) {
        if (tmem__text_field(st, "slab_reclaimable", &v) && v <= kernel)
            kernel -= v;
    } else {
        for (size_t i = 0; i < sizeof kparts / sizeof kparts[0]; i++)
            if (tmem__text_field(st, kparts[i], &v))
                kernel += v;
    }
    in->committed = pages_of(anon) + pages_of(kernel);
    if (file_exists(c->dir, "memory.swap.current"))
        return read_pages(c, "memory.swap.current", &in->frontswap);
    return tmem__balloon_cgroup_each_pid(c->dir, add_vmswap, &in->frontswap);
}

static const char *limit_file(const struct cg_self *c)
{
    return c->version == 2 ? "memory.high" : "memory.limit_in_bytes";
}

static const char *usage_file(const struct cg_self *c)
{
    return c->version == 2 ? "memory.current" : "memory.usage_in_bytes";
}

/* Reads the allowance: 0 when none (unset or not below MemTotal). */
static int read_limit(struct cg_self *c, uint64_t *limit)
{
    int rc = read_pages(c, limit_file(c), limit);

    if (rc == 0 && *limit >= c->mem_total)
        *limit = 0;
    return rc;
}

static uint64_t backend_reserve(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    return TMEM_MB_PAGES(2) + 64u * (uint64_t)(cpus > 0 ? cpus : 1);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The working set seen through refaults (workingset.h), in pages; in
 * holds committed, frontswap and cur of this read.  Bounded by the
 * tenant's size, at least one step (32 MiB): a tenant that starts empty
 * and re-reads at once grows by a step, then doubles, per read. */
static uint64_t reused(struct cg_self *c, const char *st,
                       const tmem_balloon_input *in)
{
    tmem_balloon_ws_sample s = {.now_ms = now_ms(),
                                .drained = c->drained,
                                .anon = in->committed + in->frontswap,
                                .cap = in->cur > CG_STEP_MIN ? in->cur
                                                             : CG_STEP_MIN,
                                .step = in->cur / 8 > CG_STEP_MIN
                                            ? in->cur / 8
                                            : CG_STEP_MIN};

    if (!tmem_balloon_ws_parse(st, c->version, &s.refault_file,
                               &s.refault_anon))
        return 0;
    return tmem_balloon_ws_update(&c->ws, &s);
}

/* Whether a tenant without an allowance at open has held enough to be
 * ballooned (cg_apply). */
static bool worth(const struct cg_self *c)
{
    return c->peak >= backend_reserve() + TMEM_MB_PAGES(16);
}

/* When ballooning starts on a tenant that ran unlimited, the kernel's
 * active file list is what it has seen re-used: the estimate starts from
 * it instead of learning it from the refaults of the first squeezes. */
static void seed(struct cg_self *c, const char *st)
{
    uint64_t active = 0;
    char key[32];

    c->seeded = true;
    snprintf(key, sizeof key, "%sactive_file",
             c->version == 1 ? "total_" : "");
    if (tmem__text_field(st, key, &active))
        tmem_balloon_ws_seed(&c->ws, pages_of(active));
}

static int cg_read(void *self, tmem_balloon_input *in)
{
    struct cg_self *c = self;
    char st[TMEM_SYSFILE_MAX];
    int rc;

    memset(in, 0, sizeof *in);
    if ((rc = read_pages(c, usage_file(c), &c->usage)) < 0 ||
        (rc = read_limit(c, &c->limit)) < 0)
        return rc;
    rc = tmem__read_text(c->dir, "memory.stat", st, sizeof st);
    if (rc < 0) {
        fail(c, "%s/memory.stat: %s", c->dir, strerror(-rc));
        return rc;
    }
    rc = c->version == 2 ? read_v2_stat(c, st, in) : read_v1_stat(c, st, in);
    if (rc < 0)
        return rc;
    if (c->usage > c->peak)
        c->peak = c->usage;
    if (!c->start_limit && !c->seeded && worth(c))
        seed(c, st);
    in->cur = c->limit ? c->limit : c->usage;
    in->used = c->usage;
    c->workingset = reused(c, st, in);
    in->committed += c->workingset;
    in->reserve = backend_reserve();
    in->max = c->start_limit ? c->start_limit : c->peak;
    return 0;
}

/* Writes pages (bytes) to the allowance file.  Returns 0 or -errno. */
static int write_limit(struct cg_self *c, uint64_t pages)
{
    char text[32];

    snprintf(text, sizeof text, "%" PRIu64 "\n", pages * CG_PAGE);
    return tmem__write_text(c->dir, limit_file(c), text);
}

static int cg_apply(void *self, uint64_t target)
{
    struct cg_self *c = self;
    uint64_t usage = 0, step, lowest;
    int rc;

    if ((rc = read_pages(c, usage_file(c), &usage)) < 0)
        return rc;
    if (usage > c->peak)
        c->peak = usage;
    if (!c->start_limit && !worth(c)) {
        /* not worth ballooning yet: its ceiling, which is none */
        rc = tmem__write_text(c->dir, limit_file(c), c->start_text);
        if (rc < 0) {
            fail(c, "%s/%s: write %s: %s", c->dir, limit_file(c),
                 c->start_text, strerror(-rc));
            return rc;
        }
        c->applied = 0;
        return 0;
    }
    step = usage / 8 > CG_STEP_MIN ? usage / 8 : CG_STEP_MIN;
    lowest = usage > step ? usage - step : 0;
    if (target < lowest) {
        target = lowest;
        c->clamped++;
    }
    if (c->start_limit && target > c->start_limit)
        target = c->start_limit;
    if (c->memsw_limit && target > c->memsw_limit)
        target = c->memsw_limit;
    rc = write_limit(c, target);
    if (rc == -EBUSY && target < usage) { /* v1 could not reclaim enough */
        c->clamped++;
        target = usage;
        rc = write_limit(c, target);
    }
    if (rc < 0) {
        fail(c, "%s/%s: write %" PRIu64 " pages: %s", c->dir, limit_file(c),
             target, strerror(-rc));
        return rc;
    }
    c->applied = target;
    return 0;
}

/* Headroom under the allowance that swapped pages can come back into. */
static uint64_t headroom(struct cg_self *c)
{
    uint64_t usage = 0, limit = 0, slack = backend_reserve();

    if (read_pages(c, usage_file(c), &usage) < 0 || read_limit(c, &limit) < 0)
        return 0;
    if (limit == 0)
        return UINT64_MAX;
    return limit > usage + slack ? limit - usage - slack : 0;
}

static int cg_shrink(void *self, uint64_t target, uint64_t budget)
{
    struct cg_self *c = self;
    tmem_balloon_input in;
    uint64_t want, room;
    int64_t got;
    int rc;

    if ((rc = cg_read(c, &in)) < 0)
        return rc;
    if (in.frontswap <= target)
        return 0;
    want = in.frontswap - target;
    if (budget && want > budget)
        want = budget;
    room = headroom(c);
    if (want > room)
        want = room;
    if (want == 0)
        return 0;
    got = tmem_balloon_drain_cgroup(c->dir, want, NULL);
    if (got < 0) {
        fail(c, "%s: drain: %s", c->dir, strerror((int)-got));
        return (int)got;
    }
    c->drained += (uint64_t)got;
    return got > INT_MAX ? INT_MAX : (int)got;
}

static const char *cg_why(void *self)
{
    struct cg_self *c = self;

    return c->why[0] ? c->why : NULL;
}

/* Writes back the allowance the cgroup had at open. */
static void cg_destroy(void *self)
{
    struct cg_self *c = self;

    /* best effort: the cgroup may be gone */
    (void)tmem__write_text(c->dir, limit_file(c), c->start_text);
    tmem__free(c);
}

/* MemTotal in pages, or 0. */
static uint64_t mem_total(void)
{
    char line[256];
    unsigned long long kb = 0;
    FILE *f = fopen("/proc/meminfo", "re");

    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return kb / 4;
}

/* Whether swap is on: SwapTotal > 0. */
static bool swap_on(void)
{
    char line[256];
    unsigned long long kb = 0;
    FILE *f = fopen("/proc/meminfo", "re");

    if (!f)
        return false;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "SwapTotal: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return kb > 0;
}

static int is_self(pid_t pid, void *arg)
{
    (void)arg;
    return pid == getpid() ? 1 : 0;
}

/* Refuses the root of a hierarchy and a cgroup holding us. */
static int check_tenant(struct cg_self *c)
{
    char parent[PATH_MAX];
    char *slash;
    int rc;

    snprintf(parent, sizeof parent, "%s", c->dir);
    slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(parent, sizeof parent, ".");
    if (!file_exists(parent, "cgroup.procs")) {
        fail(c, "%s: the root cgroup: the host never self-balloons", c->dir);
        return -EPERM;
    }
    rc = tmem__balloon_cgroup_each_pid(c->dir, is_self, NULL);
    if (rc == 1) {
        fail(c, "%s holds this process (pid %d): the host never "
                "self-balloons", c->dir, (int)getpid());
        return -EPERM;
    }
    if (rc < 0)
        fail(c, "%s/cgroup.procs: %s", c->dir, strerror(-rc));
    return rc;
}

/* Fills in version, the allowance at open and the limits.  Returns 0 or
 * -errno (why set). */
static int cg_setup(struct cg_self *c)
{
    uint64_t memsw = 0;
    int rc;

    if (file_exists(c->dir, "memory.high"))
        c->version = 2;
    else if (file_exists(c->dir, "memory.limit_in_bytes"))
        c->version = 1;
    else {
        fail(c, "%s: not a memory cgroup (no memory.high nor "
                "memory.limit_in_bytes)", c->dir);
        return -ENOENT;
    }
    c->mem_total = mem_total();
    if (c->mem_total == 0)
        c->mem_total = UINT64_MAX;
    if ((rc = check_tenant(c)) < 0)
        return rc;
    rc = tmem__read_text(c->dir, limit_file(c), c->start_text, sizeof c->start_text);
    if (rc < 0) {
        fail(c, "%s/%s: %s", c->dir, limit_file(c), strerror(-rc));
        return rc;
    }
    if ((rc = read_limit(c, &c->start_limit)) < 0)
        return rc;
    if (c->version == 1 &&
        read_pages(c, "memory.memsw.limit_in_bytes", &memsw) == 0 &&
        memsw < c->mem_total)
        c->memsw_limit = memsw;
    if (c->version == 2 && file_exists(c->dir, "memory.pressure"))
        snprintf(c->pressure, sizeof c->pressure, "%s/memory.pressure",
                 c->dir);
    else
        snprintf(c->pressure, sizeof c->pressure, "/proc/pressure/memory");
    c->why[0] = '\0';
    return 0;
}

int tmem_balloon_cgroup_open(tmem_balloon_backend *out, const char *path,
                             char *errbuf, size_t cap)
{
    struct cg_self *c;
    size_t n;
    int rc;

    memset(out, 0, sizeof *out);
    if (!path || !*path || strlen(path) >= PATH_MAX) {
        if (errbuf && cap)
            snprintf(errbuf, cap, "cgroup path missing or too long");
        return -EINVAL;
    }
    c = tmem__calloc(1, sizeof *c);
    if (!c) {
        if (errbuf && cap)
            snprintf(errbuf, cap, "out of memory");
        return -ENOMEM;
    }
    snprintf(c->dir, sizeof c->dir, "%s", path);
    n = strlen(c->dir);
    while (n > 1 && c->dir[n - 1] == '/')
        c->dir[--n] = '\0';
    rc = cg_setup(c);
    if (rc < 0) {
        if (errbuf && cap)
            snprintf(errbuf, cap, "%s", c->why);
        tmem__free(c);
        return rc;
    }
    out->name = c->version == 2 ? "cgroup-v2" : "cgroup-v1";
    out->self = c;
    out->frontswap_available = swap_on();
    out->pressure_path = c->pressure;
    out->read = cg_read;
    out->apply_target = cg_apply;
    out->shrink_frontswap = cg_shrink;
    out->why = cg_why;
    out->destroy = cg_destroy;
    return 0;
}

int tmem_balloon_cgroup_info(const tmem_balloon_backend *be,
                             struct tmem_balloon_cgroup_info *info)
{
    const struct cg_self *c;

    if (!be || !be->self || be->read != cg_read)
        return -EINVAL;
    c = be->self;
    info->version = c->version;
    info->usage = c->usage;
    info->limit = c->limit;
    info->applied = c->applied;
    info->start_limit = c->start_limit;
    info->drained = c->drained;
    info->clamped = c->clamped;
    info->workingset = c->workingset;
    return 0;
}
