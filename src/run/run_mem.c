/*
 * Which of the program's memory is heap (run.h), and so goes to tswap:
 *   - private anonymous read-write mappings it makes through mmap(2)
 *     (jemalloc's extents, which Debian's redis-server uses; Python's
 *     arenas), adopted as they are made;
 *   - what glibc's malloc maps for itself (the brk heap, its arenas and
 *     large chunks), which never passes the mmap symbol: found by a scan
 *     of /proc/self/maps from the run thread and at start.
 * Never adopted: stacks (the main one, every thread's: a signal handler
 * runs on them; a mapping right above an inaccessible guard is taken for
 * one), shared and file mappings, a library's .bss (an anonymous
 * mapping right after a file mapping: libc's own state, which libc hands
 * to the kernel from inside itself), mappings smaller than MIN_ADOPT, and
 * libtmem's own memory (the private heap's range, tswap's staging and
 * metadata: tmem_run_exclude; arenas are shared mappings).
 *
 * Thread stacks: recorded by the pthread_create wrapper (pthread_getattr_np
 * of the new thread) under lock, which the scanner also holds, so a stack
 * mapped by pthread_create is recorded before a scan can see it.  The lock
 * is recursive: pthread_create may call malloc, which may call mmap.
 */

#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/privheap.h"
#include "tswap/tswap.h"

#define MIN_ADOPT (64u << 10) /* smaller mappings stay plain memory */
#define MAX_STACKS 4096

static pthread_mutex_t stacks_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
/* stacks and excluded ranges: never adopted */
struct range {
    uintptr_t lo, hi;
};
static struct range stacks[MAX_STACKS];
static int nstacks;

static void keep_out_locked(uintptr_t a, uintptr_t b)
{
    int i = 0;
    while (i < nstacks && !(stacks[i].lo == a && stacks[i].hi == b))
        i++;
    if (i == nstacks && nstacks < MAX_STACKS)
        stacks[nstacks++] = (struct range){a, b};
}

void tmem_run_stack_add(void *lo, size_t len)
{
    pthread_mutex_lock(&stacks_lock);
    keep_out_locked((uintptr_t)lo, (uintptr_t)lo + len);
    pthread_mutex_unlock(&stacks_lock);
}

void tmem_run_exclude(const void *lo, size_t len)
{
    tmem_run_stack_add((void *)lo, len);
}

static bool is_stack_locked(uintptr_t a, uintptr_t b)
{
    uintptr_t plo, phi;
    tmem__ph_range(&plo, &phi);
    if (a < phi && plo < b)
        return true;
    for (int i = 0; i < nstacks; i++)
        if (a < stacks[i].hi && stacks[i].lo < b)
            return true;
    return false;
}

bool tmem_run_is_stack(const void *p, size_t n)
{
    pthread_mutex_lock(&stacks_lock);
    bool r = is_stack_locked((uintptr_t)p, (uintptr_t)p + n);
    pthread_mutex_unlock(&stacks_lock);
    return r;
}

/* The first page of [a, b) no region covers, when regions cover a
 * prefix of it (a mapping that grew in place); b when they cover it all. */
static uintptr_t covered_up_to(struct tmem_tswap *t, uintptr_t a, uintptr_t b)
{
    uintptr_t lo = a, hi = b; /* owns(lo) holds, owns(hi) does not */
    if (tmem_tswap_owns(t, (void *)(b - 1)))
        return b;
    while (hi - lo > 4096) {
        uintptr_t mid = lo + ((hi - lo) / 2 & ~(uintptr_t)4095);
        if (tmem_tswap_owns(t, (void *)mid))
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* Adopts [a, b) into tswap when it is not a stack and big enough; or
 * the tail a region's mapping grew (glibc's realloc grows its chunks with
 * its own mremap, which the wrapper below never sees). */
static void adopt_range_locked(uintptr_t a, uintptr_t b)
{
    struct tmem_tswap *t = atomic_load(&tmem_run_tswap);
    if (!t || is_stack_locked(a, b))
        return;
    int r = 0;
    if (tmem_tswap_owns(t, (void *)a)) {
        uintptr_t g = covered_up_to(t, a, b);
        if (g < b)
            r = tmem_tswap_adopt_tail(t, (void *)g, b - g);
    } else if (b - a >= MIN_ADOPT) {
        r = tmem_tswap_adopt(t, (void *)a, b - a);
    }
    if (r < 0 && r != -EEXIST)
        tmem_run_say("cannot adopt %#lx-%#lx: %s", (unsigned long)a,
                     (unsigned long)b, strerror(-r));
}

/* ---- mmap --------------------------------------------------------------- */

DEFINE_REAL(void *, mmap, (void *, size_t, int, int, int, off_t))
DEFINE_REAL(void *, mmap64, (void *, size_t, int, int, int, off_t))

void tmem_run_adopt(void *p, size_t len, int prot, int flags)
{
    if (p == MAP_FAILED || !atomic_load(&tmem_run_tswap))
        return;
    if ((prot & (PROT_READ | PROT_WRITE)) != (PROT_READ | PROT_WRITE) ||
        (flags & (MAP_SHARED | MAP_STACK | MAP_GROWSDOWN | MAP_HUGETLB)) ||
        !(flags & MAP_ANONYMOUS) || !(flags & MAP_PRIVATE))
        return;
    pthread_mutex_lock(&stacks_lock);
    adopt_range_locked((uintptr_t)p, (uintptr_t)p + len);
    pthread_mutex_unlock(&stacks_lock);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = get_mmap()(addr, len, prot, flags, fd, off);
    tmem_run_adopt(p, len, prot, flags);
    return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = get_mmap64()(addr, len, prot, flags, fd, off);
    tmem_run_adopt(p, len, prot, flags);
    return p;
}

DEFINE_REAL(void *, mremap, (void *, size_t, size_t, int, ...))

/* mremap: a mapping moved is followed by tswap (its REMAP event); one
 * grown in place sends none, so its new tail is adopted here. */
void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *want = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
    }
    void *p = get_mremap()(old, old_len, new_len, flags, want);
    struct tmem_tswap *t = atomic_load(&tmem_run_tswap);
    if (p != MAP_FAILED && p == old && new_len > old_len && t &&
        tmem_tswap_owns(t, old)) {
        int e = errno;
        pthread_mutex_lock(&stacks_lock);
        adopt_range_locked((uintptr_t)old, (uintptr_t)old + new_len);
        pthread_mutex_unlock(&stacks_lock);
        errno = e;
    }
    return p;
}

/* ---- the scan of /proc/self/maps ------------------------------------------ */

/* One line of maps: its range, whether it is file-backed or an anonymous
 * inaccessible guard, and whether it is a heap candidate: "[heap]", or
 * anonymous, private and read-write. */
static bool maps_line(const char *l, uintptr_t *a, uintptr_t *b, bool *file,
                      bool *guard)
{
    char perm[8] = "";
    unsigned long lo, hi, off, ino;
    unsigned maj, min;
    int name = 0;
    if (sscanf(l, "%lx-%lx %7s %lx %x:%x %lu %n", &lo, &hi, perm, &off, &maj,
               &min, &ino, &name) < 7)
        return false;
    *a = lo;
    *b = hi;
    *file = ino != 0;
    const char *nm = l + name;
    while (*nm == ' ')
        nm++;
    *guard = ino == 0 && !strcmp(perm, "---p") && (!*nm || *nm == '\n');
    if (strcmp(perm, "rw-p") != 0 || ino != 0)
        return false;
    /* [stack], [vvar], memfds and named regions are not heap */
    return !*nm || *nm == '\n' || strncmp(nm, "[heap]", 6) == 0;
}

/* Reads /proc/self/maps with system calls only (no stdio, no malloc). */
static ssize_t read_maps(char *buf, size_t cap)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps",
                          O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    for (;;) {
        ssize_t r = syscall(SYS_read, fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            break;
    }
    syscall(SYS_close, fd);
    buf[n] = 0;
    return (ssize_t)n;
}

#define MAPS_CAP (4u << 20)

void tmem_run_scan(void)
{
    static char *buf;
    if (!atomic_load(&tmem_run_tswap))
        return;
    if (!buf) {
        long p = syscall(SYS_mmap, NULL, MAPS_CAP, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p < 0 && p > -4096)
            return;
        buf = (char *)p;
    }
    pthread_mutex_lock(&stacks_lock);
    /* the end of the last file mapping (a library's .bss follows one) and
     * of the last guard (a thread stack sits right above its guard page:
     * threads started behind our back, as jemalloc's own, have stacks we
     * were never told of; a fault on an evicted stack page could not even
     * be signalled) */
    uintptr_t file_end = 0, guard_end = 0;
    if (read_maps(buf, MAPS_CAP) > 0) {
        for (char *l = buf; l && *l;) {
            char *nl = strchr(l, '\n');
            if (nl)
                *nl = 0;
            uintptr_t a, b;
            bool file = false, guard = false;
            bool heap = maps_line(l, &a, &b, &file, &guard);
            if (heap && a != file_end && a != guard_end)
                adopt_range_locked(a, b);
            file_end = file ? b : 0;
            guard_end = guard ? b : 0;
            l = nl ? nl + 1 : NULL;
        }
    }
    pthread_mutex_unlock(&stacks_lock);
}

/* ---- thread stacks ------------------------------------------------------- */

DEFINE_REAL(int, pthread_create,
            (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))

int pthread_create(pthread_t *th, const pthread_attr_t *attr,
                   void *(*fn)(void *), void *arg)
{
    /* held across: the new stack is recorded before a scan can see it */
    pthread_mutex_lock(&stacks_lock);
    int r = get_pthread_create()(th, attr, fn, arg);
    pthread_attr_t a;
    if (r == 0 && pthread_getattr_np(*th, &a) == 0) {
        void *lo;
        size_t len, guard = 0;
        if (pthread_attr_getstack(&a, &lo, &len) == 0) {
            pthread_attr_getguardsize(&a, &guard);
            /* the guard below the stack too */
            keep_out_locked((uintptr_t)lo - guard, (uintptr_t)lo + len);
        }
        pthread_attr_destroy(&a);
    }
    pthread_mutex_unlock(&stacks_lock);
    return r;
}
