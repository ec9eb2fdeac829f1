/*
 * Wire encode/decode of tmemd socket messages, and whole-buffer socket I/O.
 *
 * Owns the opcode table (which opcodes exist, which carry a page, which are
 * admin-only).  Invariant: a request that tmem__req_decode accepts has a
 * known opcode, zero flags, and exactly the length its opcode requires;
 * nothing else reaches the daemon's dispatcher.  Buffers are never cast to
 * structs: fields are copied with memcpy (alignment, strict aliasing).
 */
#include "proto.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(tmem__msg_hdr) == TMEM_MSG_HDR_SIZE, "hdr size");
_Static_assert(sizeof(tmem__msg_args) == TMEM_MSG_ARGS_SIZE, "args size");
_Static_assert(sizeof(tmem__msg_res) == TMEM_MSG_RES_SIZE, "res size");

static const tmem__msg_rule rules[TMEM_MSG_OP_MAX] = {
    [TMEM_MSG_HELLO] = {"hello", false, false},
    [TMEM_MSG_RING_SETUP] = {"ring_setup", false, false},
    [TMEM_MSG_POOL_NEW] = {"pool_new", false, false},
    [TMEM_MSG_POOL_DESTROY] = {"pool_destroy", false, false},
    [TMEM_MSG_PUT] = {"put", true, false},
    [TMEM_MSG_GET] = {"get", false, false},
    [TMEM_MSG_FLUSH_PAGE] = {"flush_page", false, false},
    [TMEM_MSG_FLUSH_OBJECT] = {"flush_object", false, false},
    [TMEM_MSG_ARENA] = {"arena", false, false},
    [TMEM_MSG_SET_WEIGHT] = {"set_weight", false, true},
    [TMEM_MSG_SET_CAP] = {"set_cap", false, true},
    [TMEM_MSG_SET_COMPRESS] = {"set_compress", false, true},
    [TMEM_MSG_FREEZE] = {"freeze", false, true},
    [TMEM_MSG_FLUSH_MIB] = {"flush_mib", false, true},
    [TMEM_MSG_FREEABLE] = {"freeable", false, true},
    [TMEM_MSG_AUTH] = {"auth", false, true},
    [TMEM_MSG_DESTROY_CLIENT] = {"destroy_client", false, true},
    [TMEM_MSG_STATS_JSON] = {"stats_json", false, true},
    [TMEM_MSG_PROMETHEUS] = {"prometheus", false, true},
    [TMEM_MSG_SAVE] = {"save", false, true},
    [TMEM_MSG_RESTORE] = {"restore", false, true},
};

const tmem__msg_rule *tmem__msg_rule_of(unsigned op)
{
    if (op >= TMEM_MSG_OP_MAX || !rules[op].name)
        return NULL;
    return &rules[op];
}

int tmem__req_check_hdr(const tmem__msg_hdr *h)
{
    if (h->len < TMEM_MSG_REQ_BASE || h->len > TMEM_MSG_REQ_MAX)
        return -EMSGSIZE;
    const tmem__msg_rule *r = tmem__msg_rule_of(h->op);
    if (!r || h->flags != 0 || h->status != 0)
        return -EBADMSG;
    uint32_t want = TMEM_MSG_REQ_BASE + (r->page ? TMEM_PAGE_SIZE : 0);
    return h->len == want ? 0 : -EBADMSG;
}

int tmem__req_decode(const void *buf, size_t n, tmem__req *out)
{
    const unsigned char *p = buf;
    if (n < TMEM_MSG_REQ_BASE)
        return -EBADMSG;
    memcpy(&out->hdr, p, TMEM_MSG_HDR_SIZE);
    int rc = tmem__req_check_hdr(&out->hdr);
    if (rc < 0)
        return rc;
    if (out->hdr.len != n)
        return -EBADMSG;
    memcpy(&out->args, p + TMEM_MSG_HDR_SIZE, TMEM_MSG_ARGS_SIZE);
    out->page =
        tmem__msg_rule_of(out->hdr.op)->page ? p + TMEM_MSG_REQ_BASE : NULL;
    return 0;
}

int tmem__req_encode(void *buf, size_t cap, uint16_t op, uint32_t seq,
                     const tmem__msg_args *a, const void *page)
{
    const tmem__msg_rule *r = tmem__msg_rule_of(op);
    if (!r || (r->page && !page))
        return -EINVAL;
    uint32_t len = TMEM_MSG_REQ_BASE + (r->page ? TMEM_PAGE_SIZE : 0);
    if (cap < len)
        return -EINVAL;
    tmem__msg_hdr h = {.len = len, .op = op, .seq = seq};
    tmem__msg_args zero = {0};
    unsigned char *p = buf;
    memcpy(p, &h, sizeof h);
    memcpy(p + TMEM_MSG_HDR_SIZE, a ? a : &zero, TMEM_MSG_ARGS_SIZE);
    if (r->page)
        memcpy(p + TMEM_MSG_REQ_BASE, page, TMEM_PAGE_SIZE);
    return (int)len;
}

void tmem__reply_encode(void *buf, uint16_t op, uint32_t seq, int32_t status,
                        int64_t value, uint32_t out_flags, uint32_t plen)
{
    tmem__msg_hdr h = {.len = TMEM_MSG_REPLY_BASE + plen,
                       .op = op,
                       .seq = seq,
                       .status = status};
    tmem__msg_res r = {.value = value, .out_flags = out_flags, .payload = plen};
    memcpy(buf, &h, sizeof h);
    memcpy((unsigned char *)buf + TMEM_MSG_HDR_SIZE, &r, sizeof r);
}

int tmem__reply_decode(const void *buf, tmem__msg_hdr *h, tmem__msg_res *r)
{
    memcpy(h, buf, sizeof *h);
    memcpy(r, (const unsigned char *)buf + TMEM_MSG_HDR_SIZE, sizeof *r);
    if (h->len > TMEM_MSG_REPLY_MAX || h->len < TMEM_MSG_REPLY_BASE ||
        r->payload != h->len - TMEM_MSG_REPLY_BASE || h->flags != 0)
        return -EPROTO;
    return 0;
}

/* ---- socket I/O --------------------------------------------------------- */

int tmem__io_write(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tmem__io_read(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        if (r == 0)
            return -EPIPE;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int tmem__io_write_fd(int fd, const void *buf, size_t n, int pass_fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    memset(u.buf, 0, sizeof u.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    ssize_t w;
    do
        w = sendmsg(fd, &m, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return -errno;
    return tmem__io_write(fd, (const char *)buf + w, n - (size_t)w);
}

/* Takes the first SCM_RIGHTS descriptor of m into *out_fd (if it is still
 * -1); closes every other one, so a hostile peer cannot leak fds into us. */
static void take_fds(struct msghdr *m, int *out_fd)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*out_fd < 0)
                *out_fd = fd;
            else
                close(fd);
        }
    }
}

int tmem__io_read_fd(int fd, void *buf, size_t n, int *out_fd)
{
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = n};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    *out_fd = -1;
    ssize_t r;
    do
        r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EAGAIN ? -ETIMEDOUT : -errno;
    take_fds(&m, out_fd);
    if (r == 0)
        return -EPIPE;
    return tmem__io_read(fd, (char *)buf + r, n - (size_t)r);
}

uint64_t tmem__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
