/*
 * The Xen guest balloon backend.  It reads a domU's state from /proc and
 * the balloon driver's sysfs directory and writes the balloon target, so
 * that tmem_balloon_tick drives a Xen guest as xen-selfballoon did from
 * inside the kernel.  Every path is under a root directory (normally "/"),
 * so tests run against a prepared tree.
 *
 * Where each quantity comes from (pages of 4 KiB):
 *   cur       MemTotal of /proc/meminfo: the kernel's totalram, which the
 *             balloon driver lowers and raises (the original used
 *             totalram_pages).
 *   committed Committed_AS of /proc/meminfo.
 *   reserve   the kernel's totalreserve_pages, rebuilt from /proc/zoneinfo:
 *             per zone, its high watermark plus its largest lowmem
 *             protection, at most the zone's managed pages, summed.
 *   max       cur plus the pages now in the balloon (info/low_kb +
 *             info/high_kb of the balloon driver, when present): the
 *             memory the guest would have with the balloon empty, in the
 *             same units as cur.  Without info/ it is cur.
 *   frontswap SwapTotal - SwapFree: the guest's swap tier (zswap/zram or a
 *             device) stands in for the frontswap of old.
 * The balloon driver counts memory as info/current_kb (or target_kb when
 * there is no info/), which exceeds MemTotal by what the kernel took at
 * boot; as in the original, a target is written as
 *   target_kb = (target + (balloon current - MemTotal)) * 4.
 *
 * Refusals: dom0 (proc/xen/capabilities says control_d) is -EPERM, the
 * host never self-balloons; a missing target_kb or meminfo is -ENOENT; a
 * field that is absent or not a number is -EINVAL.  Frontswap shrinking is
 * not offered (shrink_frontswap is NULL): a guest's swap can only be
 * brought back per process, which the cgroup backend does.
 */
#include "balloon/xen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/sysfile.h"

#define XEN_TARGET TMEM_BALLOON_XEN_DIR "/target_kb"
#define XEN_CURRENT TMEM_BALLOON_XEN_DIR "/info/current_kb"
#define XEN_LOW TMEM_BALLOON_XEN_DIR "/info/low_kb"
#define XEN_HIGH TMEM_BALLOON_XEN_DIR "/info/high_kb"
#define XEN_MEMINFO "/proc/meminfo"
#define XEN_ZONEINFO "/proc/zoneinfo"
#define XEN_CAPS "/proc/xen/capabilities"

/* /proc/zoneinfo of a large machine is tens of KiB. */
#define XEN_FILE_MAX (1u << 20)

struct xen_self {
    char root[PATH_MAX];
    char why[PATH_MAX + 128];
    char pressure[PATH_MAX + 32]; /* root/proc/pressure/memory */
    uint64_t swap_total;          /* KiB, from last read */
    uint64_t offset; /* balloon current - MemTotal, pages, from last read */
};

static void fail(struct xen_self *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct xen_self *x, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(x->why, sizeof x->why, fmt, ap);
    va_end(ap);
}

/* Reads root/rel into a NUL-terminated buffer the caller frees.  Returns
 * its length or -errno (x->why says which file). */
static long slurp(struct xen_self *x, const char *rel, char **out)
{
    char path[sizeof x->root + 64];
    size_t len = 0, cap = 4096;
    char *buf;
    int fd, err;

    snprintf(path, sizeof path, "%s%s", x->root, rel);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = -errno;
        goto out_fail;
    }
    buf = tmem__malloc(cap);
    if (!buf) {
        err = -ENOMEM;
        goto out_close;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = -errno;
            goto out_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len + 1 == cap) { /* full: grow, up to XEN_FILE_MAX */
            char *bigger = NULL;
            err = cap >= XEN_FILE_MAX ? -EFBIG : -ENOMEM;
            if (cap < XEN_FILE_MAX)
                bigger = tmem__realloc(buf, cap * 2);
            if (!bigger)
                goto out_free;
            buf = bigger;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    close(fd);
    *out = buf;
    return (long)len;

out_free:
    tmem__free(buf);
out_close:
    close(fd);
out_fail:
    fail(x, "xen: %s: %s", path, strerror(-err));
    return err;
}

/* Parses an unsigned decimal at *s (leading blanks skipped) and moves *s
 * past it.  Returns 0 or -EINVAL. */
static int parse_u64(const char **s, uint64_t *v)
{
    const char *p = *s;
    uint64_t r = 0;

    while (*p == ' ' || *p == '\t')
        p++;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (r > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        r = r * 10 + (uint64_t)(*p - '0');
    }
    *s = p;
    *v = r;
    return 0;
}

/* Reads a file that holds one number (sysfs style).  Returns 0 or -errno. */
static int read_number(struct xen_self *x, const char *rel, uint64_t *v)
{
    char *buf;
    const char *p;
    long n = slurp(x, rel, &buf);
    int err;

    if (n < 0)
        return (int)n;
    p = buf;
    err = parse_u64(&p, v);
    while (!err && (*p == ' ' || *p == '\n' || *p == '\t'))
        p++;
    if (!err && *p != '\0')
        err = -EINVAL;
    if (err)
        fail(x, "xen: %s%s: not a number", x->root, rel);
    tmem__free(buf);
    return err;
}

/* Finds "name:   N kB" in meminfo text.  Returns 0 or -EINVAL. */
static int meminfo_kb(struct xen_self *x, const char *text, const char *name,
                      uint64_t *kb)
{
    size_t len = strlen(name);

    for (const char *p = text; *p;) {
        const char *q = p + len;
        if (strncmp(p, name, len) == 0 && *q == ':') {
            q++;
            if (parse_u64(&q, kb) == 0)
                return 0;
            break;
        }
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    fail(x, "xen: %s" XEN_MEMINFO ": no number for %s", x->root, name);
    return -EINVAL;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

struct zone_acc {
    bool open;
    uint64_t high, managed, prot;
};

static uint64_t zone_reserve(const struct zone_acc *z)
{
    uint64_t r;

    if (!z->open)
        return 0;
    r = z->high > UINT64_MAX - z->prot ? UINT64_MAX : z->high + z->prot;
    return r > z->managed ? z->managed : r;
}

/* Largest number of "protection: (a, b, c)". */
static uint64_t max_protection(const char *p)
{
    uint64_t m = 0, v;

    while (*p && *p != '\n') {
        if (*p >= '0' && *p <= '9' && parse_u64(&p, &v) == 0) {
            if (v > m)
                m = v;
            continue;
        }
        p++;
    }
    return m;
}

/* One line of zoneinfo into the current zone. */
static void zone_line(struct zone_acc *z, const char *line)
{
    const char *p = line;
    char word[16];
    size_t n = 0;

    while (*p == ' ' || *p == '\t')
        p++;
    while (p[n] && p[n] != ' ' && p[n] != '\t' && p[n] != '\n' &&
           n < sizeof word - 1)
        n++;
    memcpy(word, p, n);
    word[n] = '\0';
    p += n;
    /* "high" exactly: the per-cpu pagesets print "high:" too. */
    if (strcmp(word, "high") == 0)
        parse_u64(&p, &z->high);
    else if (strcmp(word, "managed") == 0)
        parse_u64(&p, &z->managed);
    else if (strcmp(word, "protection:") == 0)
        z->prot = max_protection(p);
}

/* totalreserve_pages from /proc/zoneinfo.  Returns 0 or -errno. */
static int read_reserve(struct xen_self *x, uint64_t *reserve)
{
    struct zone_acc z = {0};
    uint64_t sum = 0;
    unsigned zones = 0;
    char *buf;
    long n = slurp(x, XEN_ZONEINFO, &buf);

    if (n < 0)
        return (int)n;
    for (const char *p = buf; p && *p;) {
        if (strncmp(p, "Node ", 5) == 0) {
            sum = sat_add(sum, zone_reserve(&z));
            z = (struct zone_acc){.open = true};
            zones++;
        } else if (z.open) {
            zone_line(&z, p);
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    sum = sat_add(sum, zone_reserve(&z));
    tmem__free(buf);
    if (zones == 0) {
        fail(x, "xen: %s" XEN_ZONEINFO ": no zones", x->root);
        return -EINVAL;
    }
    *reserve = sum;
    return 0;
}

/* Reads an optional number: dflt when the file is absent.  Returns 0 or
 * -errno. */
static int read_optional(struct xen_self *x, const char *rel, uint64_t dflt,
                         uint64_t *v)
{
    int err = read_number(x, rel, v);

    if (err == -ENOENT) {
        x->why[0] = '\0';
        *v = dflt;
        return 0;
    }
    return err;
}

static int read_meminfo(struct xen_self *x, tmem_balloon_input *in,
                        uint64_t *swap_total)
{
    uint64_t total, committed, sfree;
    char *buf;
    long n = slurp(x, XEN_MEMINFO, &buf);
    int err;

    if (n < 0)
        return (int)n;
    err = meminfo_kb(x, buf, "MemTotal", &total);
    if (!err)
        err = meminfo_kb(x, buf, "Committed_AS", &committed);
    if (!err)
        err = meminfo_kb(x, buf, "SwapTotal", swap_total);
    if (!err)
        err = meminfo_kb(x, buf, "SwapFree", &sfree);
    tmem__free(buf);
    if (err)
        return err;
    if (total == 0) {
        fail(x, "xen: %s" XEN_MEMINFO ": MemTotal is 0", x->root);
        return -EINVAL;
    }
    in->cur = total / 4;
    in->committed = committed / 4;
    in->frontswap = *swap_total > sfree ? (*swap_total - sfree) / 4 : 0;
    return 0;
}

static int xen_read(void *self, tmem_balloon_input *in)
{
    struct xen_self *x = self;
    uint64_t swap_total, target_kb = 0, current_kb = 0, low_kb = 0;
    uint64_t high_kb = 0;
    int err;

    x->why[0] = '\0';
    err = read_number(x, XEN_TARGET, &target_kb);
    if (!err)
        err = read_meminfo(x, in, &swap_total);
    if (!err)
        err = read_reserve(x, &in->reserve);
    if (!err) /* without info/current_kb the target stands for it */
        err = read_optional(x, XEN_CURRENT, target_kb, &current_kb);
    if (!err)
        err = read_optional(x, XEN_LOW, 0, &low_kb);
    if (!err)
        err = read_optional(x, XEN_HIGH, 0, &high_kb);
    if (err)
        return err;
    x->swap_total = swap_total;
    x->offset = current_kb / 4 > in->cur ? current_kb / 4 - in->cur : 0;
    in->max = sat_add(in->cur, low_kb / 4 + high_kb / 4);
    return 0;
}

static int xen_apply(void *self, uint64_t target)
{
    struct xen_self *x = self;
    char path[sizeof x->root + 64], text[32];
    uint64_t kb;
    int err;

    x->why[0] = '\0';
    if (target == 0 || target > UINT64_MAX / 4 - x->offset) {
        fail(x, "xen: refusing target of %" PRIu64 " pages", target);
        return -EINVAL;
    }
    kb = (target + x->offset) * 4;
    snprintf(path, sizeof path, "%s%s", x->root, XEN_TARGET);
    snprintf(text, sizeof text, "%" PRIu64 "\n", kb);
    err = tmem__write_text(path, NULL, text);
    if (err < 0)
        fail(x, "xen: %s: %s", path, strerror(-err));
    return err;
}

static const char *xen_why(void *self)
{
    struct xen_self *x = self;
    return x->why[0] ? x->why : NULL;
}

static void xen_destroy(void *self)
{
    tmem__free(self);
}

/* dom0 never self-balloons.  Returns 0, -EPERM, or -errno when the
 * capabilities file exists but cannot be read. */
static int refuse_dom0(struct xen_self *x)
{
    char *caps;
    long n = slurp(x, XEN_CAPS, &caps);
    bool dom0;

    if (n == -ENOENT) { /* no xenfs: not dom0 as far as we can tell */
        x->why[0] = '\0';
        return 0;
    }
    if (n < 0)
        return (int)n;
    dom0 = strstr(caps, "control_d") != NULL;
    tmem__free(caps);
    if (dom0) {
        fail(x,
             "xen: %s" XEN_CAPS ": this is dom0, the host never "
             "self-balloons",
             x->root);
        return -EPERM;
    }
    return 0;
}

static void set_err(char *errbuf, size_t cap, const char *msg)
{
    if (errbuf && cap)
        snprintf(errbuf, cap, "%s", msg);
}

int tmem_balloon_xen_open(tmem_balloon_backend *out, const char *root,
                          char *errbuf, size_t cap)
{
    struct xen_self *x;
    tmem_balloon_input in;
    int err;

    memset(out, 0, sizeof *out);
    set_err(errbuf, cap, "");
    x = tmem__calloc(1, sizeof *x);
    if (!x) {
        set_err(errbuf, cap, "xen: out of memory");
        return -ENOMEM;
    }
    if (!root || !*root || strcmp(root, "/") == 0)
        root = "";
    if (strlen(root) >= sizeof x->root) {
        set_err(errbuf, cap, "xen: root path too long");
        err = -ENAMETOOLONG;
        goto out_free;
    }
    strcpy(x->root, root);
    /* "dir/" + "/sys/..." would still work, but keep messages tidy. */
    for (size_t n = strlen(x->root); n > 0 && x->root[n - 1] == '/'; n--)
        x->root[n - 1] = '\0';
    err = refuse_dom0(x);
    if (!err)
        err = xen_read(x, &in); /* all files there and readable */
    if (err) {
        set_err(errbuf, cap, x->why);
        goto out_free;
    }
    out->name = "xen";
    out->self = x;
    out->frontswap_available = x->swap_total > 0;
    snprintf(x->pressure, sizeof x->pressure, "%s/proc/pressure/memory",
             x->root);
    out->pressure_path = x->pressure;
    out->read = xen_read;
    out->apply_target = xen_apply;
    out->shrink_frontswap = NULL;
    out->why = xen_why;
    out->destroy = xen_destroy;
    return 0;

out_free:
    tmem__free(x);
    return err;
}
