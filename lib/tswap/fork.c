/*
 * Fork: a child of a tswap process sees the memory as it was at the fork,
 * stored pages included (docs/tswap.md "Fork").
 *
 * With UFFD_FEATURE_EVENT_FORK (it needs CAP_SYS_PTRACE) the child keeps
 * the registration under a new userfaultfd that the kernel hands to the
 * parent's monitor in the FORK event; the parent passes it to the child
 * over a socket pair made for that fork (SCM_RIGHTS).  A fault in the
 * child before it arrives (glibc's fork touches the heap before the atfork
 * child handlers run) receives it itself.  The child reads its pages from
 * the parent's slots with the direct frontswap load (no connection: it is
 * the parent's), or, when that cannot read one, asks the process that
 * stored it over that socket, with a pipe of its own for the answer.  The
 * storing process keeps each child's socket: it is the child's and its
 * descendants' (they inherit it) until they all exit or exec, so its
 * hang-up is exactly when no one can read the slots any more; until then
 * slots the child may read are neither freed nor stored over (slots.c).
 *
 * Without fork events the child's registration is dropped by the kernel:
 * then the fork first brings every stored page back in (materializes),
 * and the child gets plain memory with everything in it.
 *
 * Invariants: a fork holds t->lock from the prepare handler to the parent
 * handler, so the child's copy of tswap's state is consistent and no
 * page is EVICTING in it; forks are serialised.  Every fd made for a fork
 * is close-on-exec.
 */
#include "tswap/tswap_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PROXY_MAGIC 0x74737770u /* "tswp" */

struct proxy_req {
    uint32_t magic;
    uint32_t slot;
};

/* ---- fd passing ---------------------------------------------------------- */

static int send_fd(int sock, const void *data, size_t len, int fd)
{
    char cb[CMSG_SPACE(sizeof(int))];
    struct iovec io = {(void *)data, len};
    struct msghdr mh = {.msg_iov = &io,
                        .msg_iovlen = 1,
                        .msg_control = cb,
                        .msg_controllen = sizeof cb};
    memset(cb, 0, sizeof cb);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : 0;
}

/* Receives a message and the fd with it.  Returns the fd or -errno
 * (-EPIPE on end of file, -EAGAIN when nothing waits with flags
 * MSG_DONTWAIT). */
static int recv_fd(int sock, void *data, size_t len, int flags)
{
    char cb[CMSG_SPACE(sizeof(int))];
    struct iovec io = {data, len};
    struct msghdr mh = {.msg_iov = &io,
                        .msg_iovlen = 1,
                        .msg_control = cb,
                        .msg_controllen = sizeof cb};
    ssize_t n;
    while ((n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC)) < 0 &&
           errno == EINTR)
        ;
    if (n <= 0)
        return n == 0 ? -EPIPE : -errno;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    int fd;
    if (!c || c->cmsg_type != SCM_RIGHTS)
        return -EPROTO;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

/* ---- the child's userfaultfd --------------------------------------------- */

/* In a fork child: its userfaultfd, received from the parent on first
 * need (the parent sends it right after fork returns there).  -1 when
 * this fork has none to give (the child's memory is then plain, soon). */
int tswap__child_ufd_wait(tmem_tswap *t)
{
    int fd = atomic_load(&t->fk.child_ufd);
    if (fd >= 0 || t->fk.sp[1] < 0)
        return fd;
    char b;
    fd = recv_fd(t->fk.sp[1], &b, 1, 0);
    if (fd < 0)
        tswap__die("fork child: no userfaultfd from the parent for",
                   (uintptr_t)t, fd);
    atomic_store(&t->fk.child_ufd, fd);
    return fd;
}

/* The monitor read a FORK event: the new child's descriptor. */
void tswap__fork_event(tmem_tswap *t, int ufd)
{
    if (atomic_load(&t->fk.pending)) {
        atomic_store(&t->fk.new_ufd, ufd);
        return;
    }
    /* A fork that bypassed the atfork handlers (a raw clone): nobody can
     * give it this descriptor.  Closing it drops the child's registration,
     * so its stored pages read as zeros: counted, and documented. */
    close(ufd);
    atomic_fetch_add(&t->c.fork_unexpected, 1);
}

/* ---- pages for children -------------------------------------------------- */

/* In a child: asks the storing process for slot.  Returns 1, 0 or an
 * error (-EPIPE: that process is gone).  Async-signal-safe. */
int tswap__proxy_load(tmem_tswap *t, uint32_t slot, void *buf)
{
    int p[2], st = -EPIPE;
    int sock = t->is_child ? t->fk.proxy_sock : t->fk.sp[1];
    struct proxy_req rq = {PROXY_MAGIC, slot};
    if (sock < 0 || pipe2(p, O_CLOEXEC) < 0)
        return -EPIPE;
    int rc = send_fd(sock, &rq, sizeof rq, p[1]);
    close(p[1]);
    char *dst = buf;
    size_t want = sizeof st, got = 0;
    while (rc == 0 && got < want) {
        ssize_t n = read(
            p[0], got < sizeof st ? (char *)&st + got : dst + got - sizeof st,
            got < sizeof st ? sizeof st - got : want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            st = -EPIPE;
            break;
        }
        got += (size_t)n;
        if (got == sizeof st && st == 1)
            want = sizeof st + TS_PAGE;
    }
    close(p[0]);
    return rc < 0 ? -EPIPE : st;
}

/* In the storing process's monitor: answers every request waiting on a
 * child's socket.  Returns false when the socket hung up (the child and
 * its descendants are gone). */
bool tswap__proxy_serve(tmem_tswap *t, int sock)
{
    for (;;) {
        struct proxy_req rq;
        int fd = recv_fd(sock, &rq, sizeof rq, MSG_DONTWAIT);
        if (fd == -EAGAIN)
            return true;
        if (fd < 0)
            return false;
        int st = rq.magic == PROXY_MAGIC
                     ? tmem_frontswap_load(t->fs, 0, rq.slot, t->mon_buf)
                     : -EPROTO;
        ssize_t n = write(fd, &st, sizeof st);
        if (n == (ssize_t)sizeof st && st == 1)
            n = write(fd, t->mon_buf, TS_PAGE);
        (void)n;
        close(fd);
    }
}

/* A child's socket hung up: it and its descendants are gone (exited or
 * exec'd).  Frees the slots only they could read. */
void tswap__kid_event_locked(tmem_tswap *t, int k, bool hup)
{
    tswap__assert_locked(t);
    if (!hup)
        return;
    int n = atomic_load(&t->fk.nkids);
    close(t->fk.kids[k].sock);
    t->fk.kids[k] = t->fk.kids[n - 1];
    atomic_store(&t->fk.nkids, n - 1);
    tswap__kids_changed_locked(t);
    atomic_fetch_sub(&t->c.fork_live, 1); /* after its slots are freed */
}

/* ---- the atfork handlers ------------------------------------------------- */

static void prepare(void)
{
    tmem_tswap *t = atomic_load(&tswap__current);
    if (!t || t->detached)
        return;
    tswap__lock(t);
    t->fk.sp[0] = t->fk.sp[1] = -1;
    atomic_store(&t->fk.new_ufd, -1);
    atomic_store(&t->fk.child_ufd, -1);
    t->fk.materialize = !t->handoff;
    if (t->fk.materialize) {
        tswap__bring_in_locked(t, 0, 0, false);
        atomic_fetch_add(&t->c.fork_materialized, 1);
    } else if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, t->fk.sp) <
               0) {
        t->fk.sp[0] = t->fk.sp[1] = -1;
    }
    atomic_store(&t->fk.pending, 1);
}

/* Records a new child (storing process only): its socket is watched, the
 * slots it may read are kept while it lives. */
static void add_kid_locked(tmem_tswap *t, int sock)
{
    int n = atomic_load(&t->fk.nkids);
    t->slots.fork_epoch++;
    if (n == TS_MAX_KIDS) {
        /* Too many to watch: keep every slot from now on (store space,
         * never a page, is what this costs). */
        t->fk.untracked = true;
        tswap__kids_changed_locked(t);
        close(sock);
        return;
    }
    t->fk.kids[n] = (struct ts_kid){sock, t->slots.fork_epoch};
    atomic_store(&t->fk.nkids, n + 1);
    atomic_fetch_add(&t->c.fork_live, 1);
    tswap__kids_changed_locked(t);
    tswap__monitor_wake(t);
}

static void parent(void)
{
    tmem_tswap *t = atomic_load(&tswap__current);
    if (!t || t->detached || !atomic_load(&t->fk.pending))
        return;
    /* On success the monitor read the FORK event before fork returned
     * here; wait until it finished taking it. */
    while (atomic_load(&t->fk.reading))
        sched_yield();
    int ufd = atomic_exchange(&t->fk.new_ufd, -1);
    if (ufd >= 0 && t->fk.sp[0] >= 0) {
        char b = 'u';
        send_fd(t->fk.sp[0], &b, 1, ufd);
        atomic_fetch_add(&t->c.fork_children, 1);
    }
    if (ufd >= 0)
        close(ufd);
    if (t->fk.sp[1] >= 0)
        close(t->fk.sp[1]);
    if (ufd >= 0 && t->fk.sp[0] >= 0 && !t->is_child)
        add_kid_locked(t, t->fk.sp[0]);
    else if (t->fk.sp[0] >= 0)
        close(t->fk.sp[0]);
    t->fk.sp[0] = t->fk.sp[1] = -1;
    atomic_store(&t->fk.pending, 0);
    tswap__unlock(t);
}

/* A child of a materialized fork: its memory is plain now. */
static void detach(tmem_tswap *t)
{
    t->detached = true;
    atomic_store(&tswap__current, NULL);
    int fds[] = {t->ufd, t->sfd, t->pagemap_fd, t->wake_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Closes what belongs to the parent: its descriptors and children. */
static void drop_parent_fds(tmem_tswap *t)
{
    int fds[] = {t->ufd, t->sfd, t->pagemap_fd, t->wake_fd, t->fk.sp[0]};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    for (int k = 0; k < atomic_load(&t->fk.nkids); k++)
        close(t->fk.kids[k].sock);
    atomic_store(&t->fk.nkids, 0);
}

/* Pages copied mid-page-in: the parent's thread is not here; their slot
 * still holds them. */
static void normalize(tmem_tswap *t)
{
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n; k++) {
        struct ts_region *r = tb->r[k];
        for (uint64_t i = 0; i < (r->end - r->start) >> TS_SHIFT; i++) {
            _Atomic uint32_t *w = &r->pg->state[r->first + i];
            uint32_t v = atomic_load(w);
            if (PS_STATE(v) == PS_PAGING_IN)
                atomic_store(w, (v & ~(PS_MASK | PS_WAIT)) | PS_STORED);
        }
    }
}

static void child(void)
{
    tmem_tswap *t = atomic_load(&tswap__current);
    if (!t || t->detached || !atomic_load(&t->fk.pending))
        return;
    tswap__lock_reset(t);
    tswap__handlers_reset();
    if (t->fk.materialize || t->fk.sp[1] < 0) {
        detach(t);
        return;
    }
    int ufd = tswap__child_ufd_wait(t);
    drop_parent_fds(t);
    if (t->is_child) /* a grandchild: the storer is the same */
        close(t->fk.sp[1]);
    else
        t->fk.proxy_sock = t->fk.sp[1];
    t->fk.sp[0] = t->fk.sp[1] = -1;
    t->ufd = ufd;
    t->sfd = -1;
    t->wake_fd = -1;
    t->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    t->pid = (pid_t)syscall(SYS_getpid);
    t->is_child = true;
    t->stg.base = NULL; /* MADV_DONTFORK: not here */
    t->evictor_on = t->monitor_on = false;
    atomic_store(&t->readers[0], 0);
    atomic_store(&t->readers[1], 0);
    atomic_store(&t->c.fork_live, 0);
    normalize(t);
    atomic_store(&t->fk.pending, 0);
    /* Its own munmaps and madvises wait for a reader of its events. */
    if (tswap__monitor_start(t) < 0)
        tswap__die("fork child: cannot start the monitor of", (uintptr_t)t,
                   -EAGAIN);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int atfork_rc;

static void atfork_register(void)
{
    atfork_rc = pthread_atfork(prepare, parent, child);
}

int tswap__fork_setup(tmem_tswap *t)
{
    t->fk.sp[0] = t->fk.sp[1] = -1;
    t->fk.proxy_sock = -1;
    atomic_store(&t->fk.new_ufd, -1);
    atomic_store(&t->fk.child_ufd, -1);
    pthread_once(&atfork_once, atfork_register);
    if (atfork_rc) {
        tswap__say(t, "pthread_atfork: %s", strerror(atfork_rc));
        return -atfork_rc;
    }
    return 0;
}

pid_t tmem_tswap_fork(tmem_tswap *t)
{
    (void)t; /* the atfork handlers do the work for every fork() */
    return fork();
}
