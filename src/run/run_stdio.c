/*
 * Memory that glibc hands to the kernel from inside itself (run.h), where
 * no wrapper of ours sees the call: stdio reads into and writes from a
 * stream's buffer with its own internal read/write, and readdir fills its
 * directory stream with an internal getdents.  If those buffers were
 * tswap memory and out, the call would fail with EFAULT.  So:
 *   - every stream the program opens (and stdin, stdout, stderr) gets a
 *     buffer from libtmem's private heap, never tswap memory (setvbuf
 *     right after the open, as the C library allows); fclose frees it;
 *   - a directory stream's allocation is pinned (kept resident) from
 *     opendir to closedir.
 * Streams glibc opens for itself (its NSS lookups) are not covered; for
 * those, --faults thread.
 */

#include "run.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/privheap.h"

#define STREAM_BUF 8192

/* Gives fp a private buffer in the mode it would have had. */
static void private_buffer(FILE *fp, int mode)
{
    if (!fp || !atomic_load(&tmem_run_tswap))
        return;
    char *b = tmem__ph_alloc(STREAM_BUF);
    if (b && setvbuf(fp, b, mode, STREAM_BUF) != 0)
        tmem__ph_free(b);
}

/* The buffer of fp if it is one of ours. */
static void *our_buffer(FILE *fp)
{
    void *b = fp->_IO_buf_base;
    uintptr_t lo, hi;
    tmem__ph_range(&lo, &hi);
    return (uintptr_t)b >= lo && (uintptr_t)b < hi ? b : NULL;
}

void tmem_run_stdio_init(void)
{
    private_buffer(stdin, _IOFBF);
    private_buffer(stdout, isatty(1) ? _IOLBF : _IOFBF);
    private_buffer(stderr, _IONBF);
}

#define OPEN2(name)                                                         \
    DEFINE_REAL(FILE *, name, (const char *, const char *))                 \
    FILE *name(const char *p, const char *m)                                \
    {                                                                       \
        size_t l = tmem_run_pin_str(p);                                     \
        FILE *f = get_##name()(p, m);                                       \
        tmem_run_unpin_str(p, l);                                           \
        private_buffer(f, _IOFBF);                                          \
        return f;                                                           \
    }
OPEN2(fopen)
OPEN2(fopen64)

DEFINE_REAL(FILE *, fdopen, (int, const char *))
FILE *fdopen(int fd, const char *m)
{
    FILE *f = get_fdopen()(fd, m);
    private_buffer(f, isatty(fd) ? _IOLBF : _IOFBF);
    return f;
}

DEFINE_REAL(FILE *, freopen, (const char *, const char *, FILE *))
FILE *freopen(const char *p, const char *m, FILE *fp)
{
    void *old = fp ? our_buffer(fp) : NULL;
    size_t l = tmem_run_pin_str(p);
    FILE *f = get_freopen()(p, m, fp);
    tmem_run_unpin_str(p, l);
    if (old && (!f || our_buffer(f) != old))
        tmem__ph_free(old);
    if (f && !our_buffer(f))
        private_buffer(f, _IOFBF);
    return f;
}

DEFINE_REAL(int, fclose, (FILE *))
int fclose(FILE *fp)
{
    void *b = our_buffer(fp);
    int r = get_fclose()(fp); /* flushes from it first */
    tmem__ph_free(b);
    return r;
}

/* ---- directory streams ---------------------------------------------------- */

/* glibc's DIR starts with int fd, int lock, size_t allocation, then
 * bookkeeping, then its buffer of `allocation` bytes. */
#define DIR_HEAD 64u
#define DIR_MAX (1u << 20)

static size_t dir_span(DIR *d)
{
    size_t alloc;
    memcpy(&alloc, (char *)d + 8, sizeof alloc);
    return alloc <= DIR_MAX ? DIR_HEAD + alloc : DIR_HEAD;
}

DEFINE_REAL(DIR *, opendir, (const char *))
DIR *opendir(const char *p)
{
    size_t l = tmem_run_pin_str(p);
    DIR *d = get_opendir()(p);
    tmem_run_unpin_str(p, l);
    if (d)
        tmem_run_pin(d, dir_span(d));
    return d;
}

DEFINE_REAL(DIR *, fdopendir, (int))
DIR *fdopendir(int fd)
{
    DIR *d = get_fdopendir()(fd);
    if (d)
        tmem_run_pin(d, dir_span(d));
    return d;
}

DEFINE_REAL(int, closedir, (DIR *))
int closedir(DIR *d)
{
    tmem_run_unpin(d, dir_span(d));
    return get_closedir()(d);
}
