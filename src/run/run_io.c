/*
 * System calls that take user buffers (run.h).  In tswap's SIGBUS mode the
 * kernel cannot wait for a page it faults on itself: a system call whose
 * buffer is not resident fails with EFAULT.  Each wrapper here brings its
 * buffers in and pins them for the call (tmem_run_pin: a lookup and
 * nothing more for memory that is not tswap's), and retries a call that
 * still failed with EFAULT (a page put out between pin and call cannot
 * happen: pinned pages are never evicted; what remains is a real bad
 * address, which the retry returns as it is).
 *
 * What cannot be wrapped (a raw syscall(2), calls glibc makes inside
 * itself) is covered by run_stdio.c for the usual cases, and otherwise by
 * tswap's THREAD fault mode (tmem run --faults thread).
 */

#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRIES 3

/* Runs `call` with `pins` made and undone, again while it fails with
 * EFAULT on tswap memory (bounded). */
#define PINNED(r, call, pins, unpins)                                       \
    do {                                                                    \
        for (int tries_ = 0;; tries_++) {                                   \
            pins;                                                           \
            r = call;                                                       \
            int e_ = errno;                                                 \
            unpins;                                                         \
            errno = e_;                                                     \
            if (!(r == -1 && e_ == EFAULT && tmem_run_tswap &&              \
                  tries_ + 1 < TRIES))                                      \
                break;                                                      \
        }                                                                   \
    } while (0)

#define BUF(p, n) tmem_run_pin((p), (n))
#define UNBUF(p, n) tmem_run_unpin((p), (n))

static void pin_iov(const struct iovec *v, int n)
{
    if (n <= 0)
        return;
    tmem_run_pin(v, (size_t)n * sizeof *v);
    for (int i = 0; i < n; i++)
        tmem_run_pin(v[i].iov_base, v[i].iov_len);
}

static void unpin_iov(const struct iovec *v, int n)
{
    if (n <= 0)
        return;
    for (int i = 0; i < n; i++)
        tmem_run_unpin(v[i].iov_base, v[i].iov_len);
    tmem_run_unpin(v, (size_t)n * sizeof *v);
}

static void pin_msg(const struct msghdr *m)
{
    tmem_run_pin(m, sizeof *m);
    tmem_run_pin(m->msg_name, m->msg_namelen);
    tmem_run_pin(m->msg_control, m->msg_controllen);
    pin_iov(m->msg_iov, (int)m->msg_iovlen);
}

static void unpin_msg(const struct msghdr *m)
{
    unpin_iov(m->msg_iov, (int)m->msg_iovlen);
    tmem_run_unpin(m->msg_control, m->msg_controllen);
    tmem_run_unpin(m->msg_name, m->msg_namelen);
    tmem_run_unpin(m, sizeof *m);
}

static void pin_mmsg(struct mmsghdr *v, unsigned n)
{
    tmem_run_pin(v, (size_t)n * sizeof *v);
    for (unsigned i = 0; i < n; i++)
        pin_msg(&v[i].msg_hdr);
}

static void unpin_mmsg(struct mmsghdr *v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        unpin_msg(&v[i].msg_hdr);
    tmem_run_unpin(v, (size_t)n * sizeof *v);
}

/* A socklen_t the kernel reads and writes, and the address it sizes. */
static void pin_addr(void *a, socklen_t *len)
{
    tmem_run_pin(len, sizeof *len);
    if (len)
        tmem_run_pin(a, *len);
}

static void unpin_addr(void *a, socklen_t *len, socklen_t was)
{
    if (len)
        tmem_run_unpin(a, was);
    tmem_run_unpin(len, sizeof *len);
}

/* ---- reading and writing ------------------------------------------------- */

DEFINE_REAL(ssize_t, read, (int, void *, size_t))
ssize_t read(int fd, void *buf, size_t n)
{
    ssize_t r;
    PINNED(r, get_read()(fd, buf, n), BUF(buf, n), UNBUF(buf, n));
    return r;
}

DEFINE_REAL(ssize_t, write, (int, const void *, size_t))
ssize_t write(int fd, const void *buf, size_t n)
{
    ssize_t r;
    PINNED(r, get_write()(fd, buf, n), BUF(buf, n), UNBUF(buf, n));
    return r;
}

#define RW_AT(name, cq)                                                     \
    DEFINE_REAL(ssize_t, name, (int, cq void *, size_t, off_t))             \
    ssize_t name(int fd, cq void *buf, size_t n, off_t off)                 \
    {                                                                       \
        ssize_t r;                                                          \
        PINNED(r, get_##name()(fd, buf, n, off), BUF(buf, n),               \
               UNBUF(buf, n));                                              \
        return r;                                                           \
    }
RW_AT(pread, )
RW_AT(pread64, )
RW_AT(pwrite, const)
RW_AT(pwrite64, const)

#define RW_V(name)                                                          \
    DEFINE_REAL(ssize_t, name, (int, const struct iovec *, int))            \
    ssize_t name(int fd, const struct iovec *v, int n)                      \
    {                                                                       \
        ssize_t r;                                                          \
        PINNED(r, get_##name()(fd, v, n), pin_iov(v, n), unpin_iov(v, n));  \
        return r;                                                           \
    }
RW_V(readv)
RW_V(writev)

#define RW_VAT(name)                                                        \
    DEFINE_REAL(ssize_t, name, (int, const struct iovec *, int, off_t))     \
    ssize_t name(int fd, const struct iovec *v, int n, off_t off)           \
    {                                                                       \
        ssize_t r;                                                          \
        PINNED(r, get_##name()(fd, v, n, off), pin_iov(v, n),               \
               unpin_iov(v, n));                                            \
        return r;                                                           \
    }
RW_VAT(preadv)
RW_VAT(pwritev)
RW_VAT(preadv64)
RW_VAT(pwritev64)

#define RW_V2(name)                                                         \
    DEFINE_REAL(ssize_t, name, (int, const struct iovec *, int, off_t, int))\
    ssize_t name(int fd, const struct iovec *v, int n, off_t off, int fl)   \
    {                                                                       \
        ssize_t r;                                                          \
        PINNED(r, get_##name()(fd, v, n, off, fl), pin_iov(v, n),           \
               unpin_iov(v, n));                                            \
        return r;                                                           \
    }
RW_V2(preadv2)
RW_V2(pwritev2)

DEFINE_REAL(ssize_t, getdents64, (int, void *, size_t))
ssize_t getdents64(int fd, void *buf, size_t n)
{
    ssize_t r;
    PINNED(r, get_getdents64()(fd, buf, n), BUF(buf, n), UNBUF(buf, n));
    return r;
}

DEFINE_REAL(ssize_t, getrandom, (void *, size_t, unsigned))
ssize_t getrandom(void *buf, size_t n, unsigned fl)
{
    ssize_t r;
    PINNED(r, get_getrandom()(buf, n, fl), BUF(buf, n), UNBUF(buf, n));
    return r;
}

/* ---- sockets ----------------------------------------------------------- */

DEFINE_REAL(ssize_t, recv, (int, void *, size_t, int))
ssize_t recv(int fd, void *buf, size_t n, int fl)
{
    ssize_t r;
    PINNED(r, get_recv()(fd, buf, n, fl), BUF(buf, n), UNBUF(buf, n));
    return r;
}

DEFINE_REAL(ssize_t, send, (int, const void *, size_t, int))
ssize_t send(int fd, const void *buf, size_t n, int fl)
{
    ssize_t r;
    PINNED(r, get_send()(fd, buf, n, fl), BUF(buf, n), UNBUF(buf, n));
    return r;
}

DEFINE_REAL(ssize_t, recvfrom,
            (int, void *, size_t, int, struct sockaddr *, socklen_t *))
ssize_t recvfrom(int fd, void *buf, size_t n, int fl, struct sockaddr *a,
                 socklen_t *al)
{
    ssize_t r;
    socklen_t was = al ? *al : 0;
    PINNED(r, get_recvfrom()(fd, buf, n, fl, a, al),
           (BUF(buf, n), pin_addr(a, al)), (unpin_addr(a, al, was),
                                            UNBUF(buf, n)));
    return r;
}

DEFINE_REAL(ssize_t, sendto,
            (int, const void *, size_t, int, const struct sockaddr *,
             socklen_t))
ssize_t sendto(int fd, const void *buf, size_t n, int fl,
               const struct sockaddr *a, socklen_t al)
{
    ssize_t r;
    PINNED(r, get_sendto()(fd, buf, n, fl, a, al), (BUF(buf, n), BUF(a, al)),
           (UNBUF(a, al), UNBUF(buf, n)));
    return r;
}

DEFINE_REAL(ssize_t, recvmsg, (int, struct msghdr *, int))
ssize_t recvmsg(int fd, struct msghdr *m, int fl)
{
    ssize_t r;
    PINNED(r, get_recvmsg()(fd, m, fl), pin_msg(m), unpin_msg(m));
    return r;
}

DEFINE_REAL(ssize_t, sendmsg, (int, const struct msghdr *, int))
ssize_t sendmsg(int fd, const struct msghdr *m, int fl)
{
    ssize_t r;
    PINNED(r, get_sendmsg()(fd, m, fl), pin_msg(m), unpin_msg(m));
    return r;
}

DEFINE_REAL(int, recvmmsg,
            (int, struct mmsghdr *, unsigned, int, struct timespec *))
int recvmmsg(int fd, struct mmsghdr *v, unsigned n, int fl,
             struct timespec *t)
{
    int r;
    PINNED(r, get_recvmmsg()(fd, v, n, fl, t),
           (pin_mmsg(v, n), BUF(t, sizeof *t)),
           (UNBUF(t, sizeof *t), unpin_mmsg(v, n)));
    return r;
}

DEFINE_REAL(int, sendmmsg, (int, struct mmsghdr *, unsigned, int))
int sendmmsg(int fd, struct mmsghdr *v, unsigned n, int fl)
{
    int r;
    PINNED(r, get_sendmmsg()(fd, v, n, fl), pin_mmsg(v, n), unpin_mmsg(v, n));
    return r;
}

#define SOCK_ADDR_OUT(name)                                                 \
    DEFINE_REAL(int, name, (int, struct sockaddr *, socklen_t *))           \
    int name(int fd, struct sockaddr *a, socklen_t *al)                     \
    {                                                                       \
        int r;                                                              \
        socklen_t was = al ? *al : 0;                                       \
        PINNED(r, get_##name()(fd, a, al), pin_addr(a, al),                 \
               unpin_addr(a, al, was));                                     \
        return r;                                                           \
    }
SOCK_ADDR_OUT(accept)
SOCK_ADDR_OUT(getsockname)
SOCK_ADDR_OUT(getpeername)

DEFINE_REAL(int, accept4, (int, struct sockaddr *, socklen_t *, int))
int accept4(int fd, struct sockaddr *a, socklen_t *al, int fl)
{
    int r;
    socklen_t was = al ? *al : 0;
    PINNED(r, get_accept4()(fd, a, al, fl), pin_addr(a, al),
           unpin_addr(a, al, was));
    return r;
}

#define SOCK_ADDR_IN(name)                                                  \
    DEFINE_REAL(int, name, (int, const struct sockaddr *, socklen_t))       \
    int name(int fd, const struct sockaddr *a, socklen_t al)                \
    {                                                                       \
        int r;                                                              \
        PINNED(r, get_##name()(fd, a, al), BUF(a, al), UNBUF(a, al));       \
        return r;                                                           \
    }
SOCK_ADDR_IN(connect)
SOCK_ADDR_IN(bind)

DEFINE_REAL(int, getsockopt, (int, int, int, void *, socklen_t *))
int getsockopt(int fd, int lv, int opt, void *v, socklen_t *vl)
{
    int r;
    socklen_t was = vl ? *vl : 0;
    PINNED(r, get_getsockopt()(fd, lv, opt, v, vl), pin_addr(v, vl),
           unpin_addr(v, vl, was));
    return r;
}

DEFINE_REAL(int, setsockopt, (int, int, int, const void *, socklen_t))
int setsockopt(int fd, int lv, int opt, const void *v, socklen_t vl)
{
    int r;
    PINNED(r, get_setsockopt()(fd, lv, opt, v, vl), BUF(v, vl), UNBUF(v, vl));
    return r;
}

DEFINE_REAL(int, socketpair, (int, int, int, int[2]))
int socketpair(int d, int t, int p, int sv[2])
{
    int r;
    PINNED(r, get_socketpair()(d, t, p, sv), BUF(sv, 2 * sizeof *sv),
           UNBUF(sv, 2 * sizeof *sv));
    return r;
}

DEFINE_REAL(int, pipe, (int[2]))
int pipe(int fds[2])
{
    int r;
    PINNED(r, get_pipe()(fds), BUF(fds, 2 * sizeof *fds),
           UNBUF(fds, 2 * sizeof *fds));
    return r;
}

DEFINE_REAL(int, pipe2, (int[2], int))
int pipe2(int fds[2], int fl)
{
    int r;
    PINNED(r, get_pipe2()(fds, fl), BUF(fds, 2 * sizeof *fds),
           UNBUF(fds, 2 * sizeof *fds));
    return r;
}

/* ---- waiting ------------------------------------------------------------- */

DEFINE_REAL(int, epoll_wait, (int, struct epoll_event *, int, int))
int epoll_wait(int ep, struct epoll_event *ev, int max, int to)
{
    int r;
    size_t n = max > 0 ? (size_t)max * sizeof *ev : 0;
    PINNED(r, get_epoll_wait()(ep, ev, max, to), BUF(ev, n), UNBUF(ev, n));
    return r;
}

DEFINE_REAL(int, epoll_pwait,
            (int, struct epoll_event *, int, int, const sigset_t *))
int epoll_pwait(int ep, struct epoll_event *ev, int max, int to,
                const sigset_t *ss)
{
    int r;
    size_t n = max > 0 ? (size_t)max * sizeof *ev : 0;
    PINNED(r, get_epoll_pwait()(ep, ev, max, to, ss),
           (BUF(ev, n), BUF(ss, sizeof *ss)), (UNBUF(ss, sizeof *ss),
                                               UNBUF(ev, n)));
    return r;
}

DEFINE_REAL(int, epoll_ctl, (int, int, int, struct epoll_event *))
int epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
    int r;
    PINNED(r, get_epoll_ctl()(ep, op, fd, ev), BUF(ev, sizeof *ev),
           UNBUF(ev, sizeof *ev));
    return r;
}

DEFINE_REAL(int, poll, (struct pollfd *, nfds_t, int))
int poll(struct pollfd *f, nfds_t n, int to)
{
    int r;
    PINNED(r, get_poll()(f, n, to), BUF(f, n * sizeof *f),
           UNBUF(f, n * sizeof *f));
    return r;
}

DEFINE_REAL(int, ppoll,
            (struct pollfd *, nfds_t, const struct timespec *,
             const sigset_t *))
int ppoll(struct pollfd *f, nfds_t n, const struct timespec *t,
          const sigset_t *ss)
{
    int r;
    PINNED(r, get_ppoll()(f, n, t, ss),
           (BUF(f, n * sizeof *f), BUF(t, sizeof *t), BUF(ss, sizeof *ss)),
           (UNBUF(ss, sizeof *ss), UNBUF(t, sizeof *t),
            UNBUF(f, n * sizeof *f)));
    return r;
}

DEFINE_REAL(int, select, (int, fd_set *, fd_set *, fd_set *, struct timeval *))
int select(int n, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
    int r;
    PINNED(r, get_select()(n, rd, wr, ex, tv),
           (BUF(rd, sizeof *rd), BUF(wr, sizeof *wr), BUF(ex, sizeof *ex),
            BUF(tv, sizeof *tv)),
           (UNBUF(tv, sizeof *tv), UNBUF(ex, sizeof *ex),
            UNBUF(wr, sizeof *wr), UNBUF(rd, sizeof *rd)));
    return r;
}

DEFINE_REAL(int, nanosleep, (const struct timespec *, struct timespec *))
int nanosleep(const struct timespec *req, struct timespec *rem)
{
    int r;
    PINNED(r, get_nanosleep()(req, rem),
           (BUF(req, sizeof *req), BUF(rem, sizeof *rem)),
           (UNBUF(rem, sizeof *rem), UNBUF(req, sizeof *req)));
    return r;
}

DEFINE_REAL(pid_t, waitpid, (pid_t, int *, int))
pid_t waitpid(pid_t p, int *st, int o)
{
    pid_t r;
    PINNED(r, get_waitpid()(p, st, o), BUF(st, sizeof *st),
           UNBUF(st, sizeof *st));
    return r;
}

DEFINE_REAL(pid_t, wait4, (pid_t, int *, int, struct rusage *))
pid_t wait4(pid_t p, int *st, int o, struct rusage *ru)
{
    pid_t r;
    PINNED(r, get_wait4()(p, st, o, ru),
           (BUF(st, sizeof *st), BUF(ru, sizeof *ru)),
           (UNBUF(ru, sizeof *ru), UNBUF(st, sizeof *st)));
    return r;
}

/* ---- files by name ------------------------------------------------------- */

/* Calls with one path: the string pinned around the call. */
#define PATH1(ret, name, params, args, path)                                \
    DEFINE_REAL(ret, name, params)                                          \
    ret name params                                                         \
    {                                                                       \
        ret r;                                                              \
        size_t l_ = 0;                                                      \
        PINNED(r, get_##name() args, l_ = tmem_run_pin_str(path),           \
               tmem_run_unpin_str(path, l_));                               \
        return r;                                                           \
    }

DEFINE_REAL(int, openat, (int, const char *, int, ...))

static int open_common(int dfd, const char *path, int fl, mode_t mode)
{
    int r;
    size_t l = 0;
    PINNED(r, get_openat()(dfd, path, fl, mode), l = tmem_run_pin_str(path),
           tmem_run_unpin_str(path, l));
    return r;
}

static mode_t mode_arg(int fl, va_list ap)
{
    return (fl & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    mode_t m = mode_arg(fl, ap);
    va_end(ap);
    return open_common(AT_FDCWD, path, fl, m);
}

int open64(const char *path, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    mode_t m = mode_arg(fl, ap);
    va_end(ap);
    return open_common(AT_FDCWD, path, fl | O_LARGEFILE, m);
}

int openat(int dfd, const char *path, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    mode_t m = mode_arg(fl, ap);
    va_end(ap);
    return open_common(dfd, path, fl, m);
}

int openat64(int dfd, const char *path, int fl, ...)
{
    va_list ap;
    va_start(ap, fl);
    mode_t m = mode_arg(fl, ap);
    va_end(ap);
    return open_common(dfd, path, fl | O_LARGEFILE, m);
}

int creat(const char *path, mode_t m)
{
    return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, m);
}

PATH1(int, access, (const char *p, int m), (p, m), p)
PATH1(int, unlink, (const char *p), (p), p)
PATH1(int, rmdir, (const char *p), (p), p)
PATH1(int, chdir, (const char *p), (p), p)
PATH1(int, mkdir, (const char *p, mode_t m), (p, m), p)
PATH1(int, chmod, (const char *p, mode_t m), (p, m), p)
PATH1(int, truncate, (const char *p, off_t n), (p, n), p)
PATH1(int, unlinkat, (int d, const char *p, int f), (d, p, f), p)
PATH1(int, mkdirat, (int d, const char *p, mode_t m), (d, p, m), p)
PATH1(int, faccessat, (int d, const char *p, int m, int f), (d, p, m, f), p)

/* stat and friends: the path, and the buffer the kernel fills. */
#define STAT1(name, st_t)                                                   \
    DEFINE_REAL(int, name, (const char *, st_t *))                          \
    int name(const char *p, st_t *b)                                        \
    {                                                                       \
        int r;                                                              \
        size_t l_ = 0;                                                      \
        PINNED(r, get_##name()(p, b),                                       \
               (l_ = tmem_run_pin_str(p), BUF(b, sizeof *b)),               \
               (UNBUF(b, sizeof *b), tmem_run_unpin_str(p, l_)));           \
        return r;                                                           \
    }
STAT1(stat, struct stat)
STAT1(lstat, struct stat)
STAT1(stat64, struct stat64)
STAT1(lstat64, struct stat64)

#define FSTAT1(name, st_t)                                                  \
    DEFINE_REAL(int, name, (int, st_t *))                                   \
    int name(int fd, st_t *b)                                               \
    {                                                                       \
        int r;                                                              \
        PINNED(r, get_##name()(fd, b), BUF(b, sizeof *b),                   \
               UNBUF(b, sizeof *b));                                        \
        return r;                                                           \
    }
FSTAT1(fstat, struct stat)
FSTAT1(fstat64, struct stat64)

#define FSTATAT1(name, st_t)                                                \
    DEFINE_REAL(int, name, (int, const char *, st_t *, int))                \
    int name(int d, const char *p, st_t *b, int f)                          \
    {                                                                       \
        int r;                                                              \
        size_t l_ = 0;                                                      \
        PINNED(r, get_##name()(d, p, b, f),                                 \
               (l_ = tmem_run_pin_str(p), BUF(b, sizeof *b)),               \
               (UNBUF(b, sizeof *b), tmem_run_unpin_str(p, l_)));           \
        return r;                                                           \
    }
FSTATAT1(fstatat, struct stat)
FSTATAT1(fstatat64, struct stat64)

DEFINE_REAL(int, statx,
            (int, const char *, int, unsigned, struct statx *))
int statx(int d, const char *p, int f, unsigned m, struct statx *b)
{
    int r;
    size_t l = 0;
    PINNED(r, get_statx()(d, p, f, m, b),
           (l = tmem_run_pin_str(p), BUF(b, sizeof *b)),
           (UNBUF(b, sizeof *b), tmem_run_unpin_str(p, l)));
    return r;
}

/* Two paths. */
#define PATH2(name, params, args, p1, p2)                                   \
    DEFINE_REAL(int, name, params)                                          \
    int name params                                                         \
    {                                                                       \
        int r;                                                              \
        size_t l1_ = 0, l2_ = 0;                                            \
        PINNED(r, get_##name() args,                                        \
               (l1_ = tmem_run_pin_str(p1), l2_ = tmem_run_pin_str(p2)),    \
               (tmem_run_unpin_str(p2, l2_),                                \
                tmem_run_unpin_str(p1, l1_)));                              \
        return r;                                                           \
    }
PATH2(rename, (const char *a, const char *b), (a, b), a, b)
PATH2(link, (const char *a, const char *b), (a, b), a, b)
PATH2(symlink, (const char *a, const char *b), (a, b), a, b)
PATH2(renameat, (int da, const char *a, int db, const char *b),
      (da, a, db, b), a, b)

DEFINE_REAL(ssize_t, readlink, (const char *, char *, size_t))
ssize_t readlink(const char *p, char *buf, size_t n)
{
    ssize_t r;
    size_t l = 0;
    PINNED(r, get_readlink()(p, buf, n),
           (l = tmem_run_pin_str(p), BUF(buf, n)),
           (UNBUF(buf, n), tmem_run_unpin_str(p, l)));
    return r;
}

DEFINE_REAL(char *, getcwd, (char *, size_t))
char *getcwd(char *buf, size_t n)
{
    char *r = NULL;
    for (int tries = 0; tries < TRIES; tries++) {
        tmem_run_pin(buf, n);
        r = get_getcwd()(buf, n);
        int e = errno;
        tmem_run_unpin(buf, n);
        errno = e;
        if (r || e != EFAULT || !tmem_run_tswap)
            break;
    }
    return r;
}

/* ---- a few more that fill structures --------------------------------------
 */

DEFINE_REAL(int, uname, (struct utsname *))
int uname(struct utsname *u)
{
    int r;
    PINNED(r, get_uname()(u), BUF(u, sizeof *u), UNBUF(u, sizeof *u));
    return r;
}

DEFINE_REAL(int, getrusage, (int, struct rusage *))
int getrusage(int who, struct rusage *u)
{
    int r;
    PINNED(r, get_getrusage()(who, u), BUF(u, sizeof *u), UNBUF(u, sizeof *u));
    return r;
}

DEFINE_REAL(ssize_t, sendfile, (int, int, off_t *, size_t))
ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
    ssize_t r;
    PINNED(r, get_sendfile()(out, in, off, n), BUF(off, sizeof *off),
           UNBUF(off, sizeof *off));
    return r;
}

/* ---- running programs ---------------------------------------------------- */

/* Pins (pin) or unpins a NULL-terminated vector of strings and the
 * vector itself; NULL is none. */
static void vec(char *const *v, bool pin)
{
    size_t n = 0;
    if (!v)
        return;
    while (v[n])
        n++;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]) + 1;
        if (pin)
            tmem_run_pin(v[i], l);
        else
            tmem_run_unpin(v[i], l);
    }
    if (pin)
        tmem_run_pin(v, (n + 1) * sizeof *v);
    else
        tmem_run_unpin(v, (n + 1) * sizeof *v);
}

/* An exec: what the kernel reads is pinned; it comes back only when the
 * exec failed, and then everything is unpinned. */
#define EXEC(call, path, argv, envp)                                           \
    do {                                                                       \
        size_t l_ = tmem_run_pin_str(path);                                    \
        vec(argv, true);                                                       \
        vec(envp, true);                                                       \
        int r_ = call;                                                         \
        int e_ = errno;                                                        \
        vec(envp, false);                                                      \
        vec(argv, false);                                                      \
        tmem_run_unpin_str(path, l_);                                          \
        errno = e_;                                                            \
        return r_;                                                             \
    } while (0)

DEFINE_REAL(int, execve, (const char *, char *const *, char *const *))
int execve(const char *p, char *const *argv, char *const *envp)
{
    EXEC(get_execve()(p, argv, envp), p, argv, envp);
}

DEFINE_REAL(int, execvpe, (const char *, char *const *, char *const *))
int execvpe(const char *p, char *const *argv, char *const *envp)
{
    EXEC(get_execvpe()(p, argv, envp), p, argv, envp);
}

int execv(const char *p, char *const *argv)
{
    return execve(p, argv, __environ);
}

int execvp(const char *p, char *const *argv)
{
    return execvpe(p, argv, __environ);
}

/* The execl family: the arguments gathered into a vector here. */
#define MAX_EXECL_ARGS 4096
static int execl_common(const char *p, const char *arg0, va_list ap,
                        bool with_env, bool search)
{
    char *argv[MAX_EXECL_ARGS];
    size_t n = 0;
    argv[n++] = (char *)arg0;
    while (arg0 && n < MAX_EXECL_ARGS && (argv[n] = va_arg(ap, char *)))
        n++;
    if (n == MAX_EXECL_ARGS) {
        errno = E2BIG;
        return -1;
    }
    argv[n] = NULL;
    char *const *envp = with_env ? va_arg(ap, char *const *) : __environ;
    return search ? execvpe(p, argv, envp) : execve(p, argv, envp);
}

int execl(const char *p, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int r = execl_common(p, arg, ap, false, false);
    va_end(ap);
    return r;
}

int execlp(const char *p, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int r = execl_common(p, arg, ap, false, true);
    va_end(ap);
    return r;
}

int execle(const char *p, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int r = execl_common(p, arg, ap, true, false);
    va_end(ap);
    return r;
}

#define SPAWN(name)                                                            \
    DEFINE_REAL(int, name,                                                     \
                (pid_t *, const char *, const posix_spawn_file_actions_t *,    \
                 const posix_spawnattr_t *, char *const *, char *const *))     \
    int name(pid_t *pid, const char *p, const posix_spawn_file_actions_t *fa,  \
             const posix_spawnattr_t *at, char *const *argv,                   \
             char *const *envp)                                                \
    {                                                                          \
        size_t l_ = tmem_run_pin_str(p);                                       \
        vec(argv, true);                                                       \
        vec(envp, true);                                                       \
        int r_ = get_##name()(pid, p, fa, at, argv, envp);                     \
        vec(envp, false);                                                      \
        vec(argv, false);                                                      \
        tmem_run_unpin_str(p, l_);                                             \
        return r_;                                                             \
    }
SPAWN(posix_spawn)
SPAWN(posix_spawnp)
