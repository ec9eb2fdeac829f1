/*
 * tswap's system interface: its own memory, futexes, the userfaultfd
 * descriptors and their ioctls, and the one-line failure text (why).
 *
 * Invariants: every byte of tswap's own memory (the handle, page arrays,
 * region descriptors, tables, slot lists, staging) comes from libtmem's
 * private heap (common/privheap.h: the mmap system call itself, never the
 * libc wrapper a preload may interpose, never malloc), is counted in
 * meta_bytes, and so lies in the one range tmem run's heap scanner keeps
 * out of (tmem__ph_range): tswap never manages its own memory.  Regions
 * (the program's memory) come from tswap__mmap.  The ioctl wrappers
 * return 0 or -errno and are async-signal-safe.
 */
#include "tswap/tswap_internal.h"

#include "common/privheap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

void *tswap__mmap(size_t len, int prot, int flags)
{
    long p = syscall(SYS_mmap, NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
    return p == -1 ? NULL : (void *)p;
}

int tswap__munmap(void *p, size_t len)
{
    return syscall(SYS_munmap, p, len) == 0 ? 0 : -errno;
}

/* Small blocks of the private heap may be reused ones: cleared here.
 * Large ones are whole granules, fresh or given back with MADV_DONTNEED
 * when freed, so zero already (and left untouched: page arrays cost
 * memory only where pages are used). */
#define PH_SMALL (32u << 10)

void *tswap__alloc(tmem_tswap *t, size_t bytes)
{
    void *p = tmem__ph_alloc(bytes);
    if (!p)
        return NULL;
    if (bytes <= PH_SMALL)
        memset(p, 0, bytes);
    if (t)
        atomic_fetch_add(&t->c.meta_bytes, tmem__ph_held(p));
    return p;
}

void tswap__free(tmem_tswap *t, void *p)
{
    if (!p)
        return;
    if (t)
        atomic_fetch_sub(&t->c.meta_bytes, tmem__ph_held(p));
    tmem__ph_free(p);
}

int tswap__vec_reserve(tmem_tswap *t, struct ts_vec *v, size_t n)
{
    if (n <= v->cap)
        return 0;
    size_t cap = v->cap ? v->cap : 1024;
    while (cap < n)
        cap *= 2;
    void *p = tswap__alloc(t, cap * v->esize);
    if (!p)
        return -ENOMEM;
    if (v->p)
        memcpy(p, v->p, v->len * v->esize);
    tswap__free(t, v->p);
    v->p = p;
    v->cap = cap;
    return 0;
}

int tswap__vec_push(tmem_tswap *t, struct ts_vec *v, const void *e)
{
    int rc = tswap__vec_reserve(t, v, v->len + 1);
    if (rc < 0)
        return rc;
    memcpy((char *)v->p + v->len++ * v->esize, e, v->esize);
    return 0;
}

void tswap__vec_free(tmem_tswap *t, struct ts_vec *v)
{
    tswap__free(t, v->p);
    v->p = NULL;
    v->len = v->cap = 0;
}

uint64_t tswap__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tswap__futex_wait(_Atomic uint32_t *w, uint32_t val, uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, ns ? &ts : NULL,
            NULL, 0);
}

void tswap__futex_wake(_Atomic uint32_t *w, int n)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ---- userfaultfd --------------------------------------------------------- */

/* A new descriptor: the system call, then /dev/userfaultfd, then (when
 * user_only_ok) a user-mode-only one, which any process may make.  Sets
 * *user_only.  Returns the fd or -errno. */
static int uffd_new(bool user_only_ok, bool *user_only)
{
    const int flags = O_CLOEXEC | O_NONBLOCK;
    *user_only = false;
    int fd = (int)syscall(SYS_userfaultfd, flags);
    if (fd >= 0 || errno != EPERM)
        return fd >= 0 ? fd : -errno;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
        fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
        close(dev);
        if (fd >= 0)
            return fd;
    }
    if (!user_only_ok)
        return -EPERM;
    fd = (int)syscall(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY);
    *user_only = fd >= 0;
    return fd >= 0 ? fd : -errno;
}

static int unpriv_value(void)
{
    char b[8] = "";
    int fd = open("/proc/sys/vm/unprivileged_userfaultfd", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    return n > 0 ? b[0] - '0' : -1;
}

static void say_no_access(tmem_tswap *t, bool user_only_ok)
{
    tswap__say(t,
               "userfaultfd is not permitted%s: it needs root, "
               "CAP_SYS_PTRACE, read-write access to /dev/userfaultfd, or "
               "vm.unprivileged_userfaultfd=1 (/proc/sys/vm/"
               "unprivileged_userfaultfd is %d)",
               user_only_ok ? "" : " for THREAD mode (kernel faults)",
               unpriv_value());
}

static const struct {
    uint64_t bit;
    const char *what;
} feature_names[] = {
    {UFFD_FEATURE_SIGBUS, "SIGBUS (4.14)"},
    {UFFD_FEATURE_WP_ASYNC, "WP_ASYNC (6.7)"},
    {UFFD_FEATURE_MOVE, "MOVE (6.8)"},
    {UFFD_FEATURE_EVENT_REMOVE, "EVENT_REMOVE"},
    {UFFD_FEATURE_EVENT_UNMAP, "EVENT_UNMAP"},
    {UFFD_FEATURE_EVENT_REMAP, "EVENT_REMAP"},
};

/* Enables features on fd.  *avail receives what the kernel offers (it
 * reports all it supports, not what was enabled). */
static int api(int fd, uint64_t features, uint64_t *avail)
{
    struct uffdio_api a = {.api = UFFD_API, .features = features};
    if (ioctl(fd, UFFDIO_API, &a) < 0)
        return -errno;
    *avail = a.features;
    return 0;
}

/* Says which wanted feature this kernel lacks.  Returns -ENOSYS. */
static int say_missing(tmem_tswap *t, uint64_t missing)
{
    for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++)
        if (missing & feature_names[i].bit) {
            tswap__say(t, "this kernel's userfaultfd lacks %s",
                       feature_names[i].what);
            return -ENOSYS;
        }
    tswap__say(t, "this kernel's userfaultfd lacks features 0x%llx",
               (unsigned long long)missing);
    return -ENOSYS;
}

int tswap__uffd_open(tmem_tswap *t, uint64_t want, bool user_only_ok,
                     uint64_t *got)
{
    bool uo;
    uint64_t avail = 0;
    int fd = uffd_new(user_only_ok, &uo);
    if (fd == -ENOSYS) {
        tswap__say(t, "this kernel has no userfaultfd");
        return -ENOSYS;
    }
    if (fd < 0) {
        say_no_access(t, user_only_ok);
        return -EPERM;
    }
    int rc = api(fd, 0, &avail); /* what the kernel offers */
    close(fd);
    if (rc < 0) {
        tswap__say(t, "UFFDIO_API: %s", strerror(-rc));
        return rc;
    }
    if (want & ~avail & ~(uint64_t)UFFD_FEATURE_EVENT_FORK)
        return say_missing(t, want & ~avail & ~UFFD_FEATURE_EVENT_FORK);
    for (int tries = 0; tries < 2; tries++) {
        fd = uffd_new(user_only_ok, &uo);
        if (fd < 0)
            return fd;
        uint64_t offered;
        rc = api(fd, want & avail, &offered);
        if (rc == 0) {
            *got = want & avail; /* what is on: what we asked for */
            return fd;
        }
        close(fd);
        /* Fork events need CAP_SYS_PTRACE: without, forks materialize. */
        if (rc != -EPERM || !(want & UFFD_FEATURE_EVENT_FORK))
            break;
        want &= ~(uint64_t)UFFD_FEATURE_EVENT_FORK;
    }
    tswap__say(t, "UFFDIO_API: %s", strerror(-rc));
    return rc;
}

int tswap__uffd_register(int fd, uintptr_t start, size_t len, bool wp)
{
    struct uffdio_register r = {.range = {.start = start, .len = len},
                                .mode = UFFDIO_REGISTER_MODE_MISSING |
                                        (wp ? UFFDIO_REGISTER_MODE_WP : 0)};
    return ioctl(fd, UFFDIO_REGISTER, &r) < 0 ? -errno : 0;
}

int tswap__uffd_unregister(int fd, uintptr_t start, size_t len)
{
    struct uffdio_range r = {.start = start, .len = len};
    return ioctl(fd, UFFDIO_UNREGISTER, &r) < 0 ? -errno : 0;
}

static bool present(uintptr_t a)
{
    unsigned char v = 0;
    return syscall(SYS_mincore, a, (size_t)TS_PAGE, &v) == 0 && (v & 1);
}

/* Moves len bytes; *moved says how many moved before a failure.
 *
 * Linux 6.18's batched UFFDIO_MOVE can report a failure for a page it did
 * move: an internal retry (a PTE changed under it: its accessed, dirty or
 * uffd-wp bit) leaves the error set, the page moves, the loop does not
 * advance, and the retry at the same address fails with EEXIST (or
 * ENOENT).  So the page at the failure is checked: its source gone and its
 * destination present means it moved.  Every caller owns both pages, so
 * nothing else can have changed them.  Async-signal-safe. */
int tswap__uffd_move(int fd, uintptr_t dst, uintptr_t src, size_t len,
                     size_t *moved)
{
    struct uffdio_move m = {.dst = dst, .src = src, .len = len, .mode = 0};
    int rc = ioctl(fd, UFFDIO_MOVE, &m) < 0 ? -errno : 0;
    *moved = rc == 0 ? len : (m.move > 0 ? (size_t)m.move : 0);
    if (rc == 0 || rc == -EAGAIN || *moved >= len)
        return rc;
    if (!present(src + *moved) && present(dst + *moved)) {
        *moved += TS_PAGE;
        return *moved == len ? 0 : -EAGAIN;
    }
    return rc;
}

int tswap__uffd_copy(int fd, uintptr_t dst, const void *src)
{
    struct uffdio_copy c = {
        .dst = dst, .src = (uintptr_t)src, .len = TS_PAGE, .mode = 0};
    return ioctl(fd, UFFDIO_COPY, &c) < 0 ? -errno : 0;
}

int tswap__uffd_zero(int fd, uintptr_t dst)
{
    struct uffdio_zeropage z = {.range = {.start = dst, .len = TS_PAGE}};
    return ioctl(fd, UFFDIO_ZEROPAGE, &z) < 0 ? -errno : 0;
}

void tswap__uffd_wake(int fd, uintptr_t addr, size_t len)
{
    struct uffdio_range r = {.start = addr, .len = len};
    ioctl(fd, UFFDIO_WAKE, &r);
}

/* ---- /proc/self/maps ----------------------------------------------------- */

/* Reads a number in base 16 or 10 at *p, moves *p past it. */
static unsigned long long num(const char **p, int base)
{
    unsigned long long v = 0;
    for (;; (*p)++) {
        char c = **p;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : 99;
        if (d >= base)
            return v;
        v = v * (unsigned)base + (unsigned)d;
    }
}

/* Skips one field and the blanks after it. */
static void field(const char **p)
{
    while (**p && **p != ' ')
        (*p)++;
    while (**p == ' ')
        (*p)++;
}

/* Parses "start-end perms offset dev inode ..." of one line by hand (no
 * stdio: the monitor thread calls this and must not take libc locks). */
static bool parse_line(const char *l, uintptr_t *s, uintptr_t *e, bool *anon_rw)
{
    *s = (uintptr_t)num(&l, 16);
    if (*l++ != '-')
        return false;
    *e = (uintptr_t)num(&l, 16);
    field(&l);
    bool rwp = strncmp(l, "rw-p", 4) == 0;
    field(&l); /* perms */
    field(&l); /* offset */
    bool nodev = strncmp(l, "00:00 ", 6) == 0;
    field(&l); /* dev */
    *anon_rw = rwp && nodev && num(&l, 10) == 0;
    return true;
}

int tswap__vma_end(tmem_tswap *t, uintptr_t addr, uintptr_t *end, bool *anon_rw)
{
    (void)t;
    char buf[8192];
    size_t have = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *l = buf, *nl;
        while ((nl = strchr(l, '\n')) != NULL) {
            uintptr_t s, e;
            *nl = '\0';
            if (parse_line(l, &s, &e, anon_rw) && s <= addr && addr < e) {
                close(fd);
                *end = e;
                return 0;
            }
            l = nl + 1;
        }
        have = (size_t)(buf + have - l);
        memmove(buf, l, have);
    }
    close(fd);
    return -ENOENT;
}

/* ---- messages ------------------------------------------------------------ */

void tswap__say(tmem_tswap *t, const char *fmt, ...)
{
    va_list ap;
    if (!t)
        return;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof t->why, fmt, ap);
    va_end(ap);
}

/* Writes parts to stderr in one writev: async-signal-safe. */
void tswap__write_err(const char *const *parts, size_t n)
{
    struct iovec iov[16];
    if (n > 16)
        n = 16;
    for (size_t i = 0; i < n; i++)
        iov[i] = (struct iovec){(void *)parts[i], strlen(parts[i])};
    ssize_t r = writev(2, iov, (int)n);
    (void)r;
}
