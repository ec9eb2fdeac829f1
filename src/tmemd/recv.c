/*
 * Reading a request off a tenant's socket, with deadlines, so that no
 * tenant holds a session thread by saying nothing or half a message:
 *
 *   - before HELLO, the whole HELLO must be in within lim.hello_ns of the
 *     accept (a connection that says nothing is dropped);
 *   - after it, a tenant may stay silent between requests as long as it
 *     likes (idle is fine), but once a message's first byte is in, the
 *     rest must follow within lim.recv_ns.
 *
 * A deadline bounds the whole message, not each read: a tenant that
 * trickles a byte at a time does not stretch it.  The first byte is read
 * with tmem__io_read_fd, which takes a descriptor passed with the message
 * (RING_SETUP; any other or extra one is closed); the rest with plain
 * reads, which close any descriptor that comes with them.
 */
#include "tmemd.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

/* Waits until fd is readable (or hung up) or the deadline (ns; 0 = none)
 * passes: 0 or -ETIMEDOUT. */
static int wait_readable(int fd, uint64_t deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline) {
            uint64_t now = tmem__now_ns();
            if (now >= deadline)
                return -ETIMEDOUT;
            uint64_t left = (deadline - now + 999999) / 1000000;
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0; /* data, or a hangup the read will report */
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* Reads exactly n bytes into p before the deadline. */
static int read_by(int fd, unsigned char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0)
            return -EPIPE;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_readable(fd, deadline);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int tmemd_recv_request(struct tmemd_session *s, tmem__msg_hdr *h, int *passfd)
{
    uint64_t hello_by = s->client ? 0 : s->hello_by;
    int rc = hello_by ? wait_readable(s->fd, hello_by) : 0;
    if (rc == 0) /* blocks while an idle tenant says nothing */
        rc = tmem__io_read_fd(s->fd, s->req, 1, passfd);
    if (rc < 0)
        return rc;
    uint64_t by = tmem__now_ns() + s->d->lim.recv_ns;
    if (hello_by && hello_by < by)
        by = hello_by;
    rc = read_by(s->fd, s->req + 1, TMEM_MSG_HDR_SIZE - 1, by);
    if (rc < 0)
        return rc;
    memcpy(h, s->req, sizeof *h);
    rc = tmem__req_check_hdr(h);
    if (rc < 0)
        return rc;
    return read_by(s->fd, s->req + TMEM_MSG_HDR_SIZE,
                   h->len - TMEM_MSG_HDR_SIZE, by);
}
