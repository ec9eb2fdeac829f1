/*
 * The tenant end of a tmemd connection (contract in conn.h).
 *
 * Owns one socket and, once set up, one shared-memory ring.  Data operations
 * go through the ring (a single op is a one-entry batch), control and admin
 * operations over the socket as request/reply pairs.  Invariant: at most one
 * request or one ring batch is outstanding (callers serialise), so a reply
 * always answers the last request (its seq is checked).  TMEM_RING=0 in the
 * environment keeps data operations on the socket.  Arguments the store
 * refuses before anything else (a NULL page to put or get into, a NULL
 * object id, an unknown operation) are answered -EINVAL here, as the
 * embedded store answers them, without touching the page or the wire
 * (op_bad).
 */
#include "conn.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <common/mem.h>
#include <common/pack.h>
#include <tmem/errors.h>

#include "proto.h"

#define CLI_SPIN_NS 60000      /* spin before sleeping: a few entries */
#define CLI_WAIT_NS 200000000u /* futex sleep slice; then check the daemon */
/* Waiting for a batch: spin while the daemon should answer soon (a sleep
 * and wake-up costs ~70-100 us on these machines, PERF.md), but block
 * while it is expected to work much longer (puts: ~3 us a page), so the
 * CPU goes to the daemon or to other tenants rather than to spinning:
 * with two tenants on two CPUs, spinning tenants cost the daemon's
 * threads a third of their throughput, and the scheduler cannot spread
 * busy threads it cannot tell from spinning ones.  The expectation is a
 * moving average of the time per entry for the kind of batch; the sleep
 * ends CLI_WAKE_LEAD_NS before the expected end (timer wake-ups overshoot
 * by ~70 us) and the rest is spun, so one tenant alone loses little. */
#define CLI_BLOCK_MIN_NS 150000u
#define CLI_WAKE_LEAD_NS 100000u
/* The daemon's ring thread sleeps through a batch we take long to write
 * (we pack puts: ~4 us a page); we wake it once the rest should take less
 * than this (a wake-up takes ~70-100 us to run), not at every step. */
#define CLI_WAKE_AHEAD_NS 120000u

/* A daemon that went away (a restart) is reconnected to by itself: at the
 * next call, with the same name, up to TMEM_RECONNECT_MS (default 10 s)
 * for a batch with a get and a single try for the others (a put then
 * fails at once: the caller keeps its page); 0 turns it off. */
#define RECONNECT_MS_DEFAULT 10000u
#define RECONNECT_BACKOFF_MIN_NS 5000000u   /* 5 ms */
#define RECONNECT_BACKOFF_MAX_NS 200000000u /* 200 ms */

struct tmem__conn {
    int fd;
    int client_id;
    uint32_t seq;
    bool has_ring;
    tmem__ring ring;
    /* reconnecting: where, as whom, with a ring or not, how long; epoch
     * counts the reconnections (tmem__conn_epoch) */
    char path[108];
    char name[TMEM_NAME_MAX + 1];
    bool want_ring;
    uint64_t reconnect_ns;
    uint64_t token[2]; /* the daemon's resume token for this tenant */
    _Atomic uint32_t epoch;
    uint32_t ns_per_entry[TMEM_OP_FLUSH_OBJECT + 1]; /* by the batch's op */
    uint32_t fill_ns[TMEM_OP_FLUSH_OBJECT + 1]; /* writing one entry, ditto */
    unsigned char req[TMEM_MSG_REQ_MAX];
    /* LZ4 state for packing puts: callers serialise, so one is enough */
    _Alignas(8) unsigned char pack_state[TMEM_PACK_STATE_SIZE];
    /* LZ4HC state when $TMEM_PACK_LEVEL asks for more effort (made at
     * open, where libtmem allocates: puts run in signal handlers, which
     * must not allocate, and inside `tmem run` a plain mmap would be
     * tswap memory that eviction itself would fault on) */
    void *hc;
    int pack_level;
};

/* $TMEM_PACK_LEVEL: 0 (default) LZ4's fast compressor, 1..12 LZ4HC at
 * that level (tmem__pack_level).  A value that does not parse counts as
 * 0: `tmem run` checks the value it sets.  Returns 0 or -ENOMEM. */
static int pack_setup(tmem__conn *c)
{
    const char *env = getenv("TMEM_PACK_LEVEL");
    int level = 0;
    if (!env || tmem__pack_level_parse(env, &level) < 0 || level == 0)
        return 0;
    void *hc = tmem__aligned_alloc(64, tmem__pack_hc_size());
    if (!hc)
        return -ENOMEM;
    c->hc = hc;
    c->pack_level = level;
    return 0;
}

static void pack_free(tmem__conn *c)
{
    tmem__free(c->hc);
}

const char *tmem__conn_default_path(void)
{
    static char buf[256];
    const char *env = getenv("TMEM_SOCKET");
    if (env && *env)
        return env;
    if (geteuid() == 0)
        return "/run/tmem/tmemd.sock";
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    snprintf(buf, sizeof buf, "%s/tmem.sock", xdg && *xdg ? xdg : "/tmp");
    return buf;
}

int tmem__conn_client_id(const tmem__conn *c)
{
    return c->client_id;
}

/* Sends one request (with an fd when pass_fd >= 0) and reads the reply
 * header; payload bytes (if any) go to a malloc'd *payload (may be NULL:
 * then a payload of exactly want_page bytes goes into page). */
typedef struct call {
    uint16_t op;
    const tmem__msg_args *args;
    const void *page_in;
    int pass_fd;
    void *page_out;  /* GET: destination of a one-page payload */
    char **text_out; /* stats: malloc'd NUL-terminated payload */
    void *raw_out;   /* a payload of exactly raw_len bytes (hello) */
    uint32_t raw_len;
    int *fd_out;     /* a descriptor the reply carries (else closed) */
    tmem__msg_res res;
} call;

static int read_payload(tmem__conn *c, call *k, uint32_t n)
{
    if (n == 0)
        return 0;
    if (k->raw_out && n == k->raw_len)
        return tmem__io_read(c->fd, k->raw_out, n);
    if (k->page_out && n == TMEM_PAGE_SIZE)
        return tmem__io_read(c->fd, k->page_out, n);
    if (!k->text_out)
        return -EPROTO;
    char *t = malloc((size_t)n + 1); /* the caller frees it with free() */
    if (!t)
        return -ENOMEM;
    int rc = tmem__io_read(c->fd, t, n);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t[n] = 0;
    *k->text_out = t;
    return 0;
}

static int do_call(tmem__conn *c, call *k)
{
    uint32_t seq = ++c->seq;
    int len = tmem__req_encode(c->req, sizeof c->req, k->op, seq, k->args,
                               k->page_in);
    if (len < 0)
        return len;
    int rc = k->pass_fd >= 0
                 ? tmem__io_write_fd(c->fd, c->req, (size_t)len, k->pass_fd)
                 : tmem__io_write(c->fd, c->req, (size_t)len);
    if (rc < 0)
        return rc == -ECONNRESET ? -EPIPE : rc;
    unsigned char rb[TMEM_MSG_REPLY_BASE];
    tmem__msg_hdr h;
    int got_fd = -1;
    rc = tmem__io_read_fd(c->fd, rb, sizeof rb, &got_fd);
    if (rc == 0 && (tmem__reply_decode(rb, &h, &k->res) < 0 || h.seq != seq ||
                    h.op != k->op))
        rc = -EPROTO;
    if (rc == 0)
        rc = read_payload(c, k, k->res.payload);
    if (rc == 0 && h.status >= 0 && k->fd_out && got_fd >= 0) {
        *k->fd_out = got_fd;
        got_fd = -1;
    }
    if (got_fd >= 0)
        close(got_fd);
    if (rc < 0)
        return rc == -ECONNRESET ? -EPIPE : rc;
    return h.status;
}

static int simple(tmem__conn *c, uint16_t op, const tmem__msg_args *a)
{
    call k = {.op = op, .args = a, .pass_fd = -1};
    return do_call(c, &k);
}

bool tmem__name_valid(const char *name, size_t maxlen)
{
    size_t n = 0;
    for (; name[n]; n++) {
        char ch = name[n];
        if (n >= maxlen || !((ch >= 'a' && ch <= 'z') ||
                             (ch >= 'A' && ch <= 'Z') ||
                             (ch >= '0' && ch <= '9') || ch == '.' ||
                             ch == '_' || ch == '-'))
            return false;
    }
    return n > 0;
}

/* A name into the 16 bytes of uuid (NUL-padded); false when too long. */
static bool name_args(tmem__msg_args *a, const char *name)
{
    if (!name)
        return true;
    size_t n = strlen(name);
    if (n > TMEM_NAME_MAX)
        return false;
    memcpy(a->uuid, name, n);
    return true;
}

/* HELLO, as name (may be NULL) and, after a reconnection, with the
 * resume token the daemon gave: a daemon that kept this tenant's client
 * across its restart hands it back.  The reply carries the token for
 * next time. */
static int hello(tmem__conn *c, const char *name)
{
    tmem__msg_args a = {.arg = TMEM_PROTO_VERSION, .flags = TMEM_PROTO_MAGIC};
    (void)name_args(&a, name); /* checked by tmem__conn_open_named */
    a.oid[0] = c->token[0];
    a.oid[1] = c->token[1];
    uint64_t token[2] = {0, 0};
    call k = {.op = TMEM_MSG_HELLO, .args = &a, .pass_fd = -1,
              .raw_out = token, .raw_len = sizeof token};
    int rc = do_call(c, &k);
    if (rc < 0)
        return rc;
    c->client_id = (int)k.res.value;
    c->token[0] = token[0];
    c->token[1] = token[1];
    return 0;
}

static int ring_setup(tmem__conn *c)
{
    int mfd;
    int rc = tmem__ring_create(TMEM_RING_DEFAULT_ENTRIES, &c->ring, &mfd);
    if (rc < 0)
        return rc;
    tmem__msg_args a = {.arg = TMEM_RING_DEFAULT_ENTRIES};
    call k = {.op = TMEM_MSG_RING_SETUP, .args = &a, .pass_fd = mfd};
    rc = do_call(c, &k);
    close(mfd);
    if (rc < 0) {
        tmem__ring_unmap(&c->ring);
        return rc;
    }
    c->has_ring = true;
    return 0;
}

static int sock_connect(const char *path, int *out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return e == ENOENT ? -ENOENT : -ECONNREFUSED;
    }
    *out = fd;
    return 0;
}

int tmem__conn_open(const char *path, tmem__conn **out)
{
    const char *name = getenv("TMEM_NAME");
    return tmem__conn_open_named(path, name && *name ? name : NULL, out);
}

int tmem__conn_open_named(const char *path, const char *name,
                          tmem__conn **out)
{
    if (name && !tmem__name_valid(name, TMEM_NAME_MAX))
        return -EINVAL;
    tmem__conn *c = tmem__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    if (!path)
        path = tmem__conn_default_path();
    if (strlen(path) < sizeof c->path)
        strcpy(c->path, path); /* longer: sock_connect refuses it below */
    if (name)
        strcpy(c->name, name);
    const char *ms = getenv("TMEM_RECONNECT_MS");
    c->reconnect_ns = (ms && *ms ? strtoull(ms, NULL, 10)
                                 : RECONNECT_MS_DEFAULT) *
                      1000000u;
    int rc = pack_setup(c);
    if (rc < 0)
        goto out_free;
    rc = sock_connect(path, &c->fd);
    if (rc < 0)
        goto out_free;
    rc = hello(c, name);
    if (rc < 0)
        goto out_close;
    const char *env = getenv("TMEM_RING");
    c->want_ring = !(env && strcmp(env, "0") == 0);
    if (c->want_ring)
        (void)ring_setup(c); /* no ring: data goes over the socket */
    *out = c;
    return 0;
out_close:
    close(c->fd);
out_free:
    pack_free(c);
    tmem__free(c);
    return rc;
}

void tmem__conn_close(tmem__conn *c)
{
    if (!c)
        return;
    if (c->has_ring)
        tmem__ring_unmap(&c->ring);
    if (c->fd >= 0)
        close(c->fd);
    pack_free(c);
    tmem__free(c);
}

uint32_t tmem__conn_epoch(const tmem__conn *c)
{
    return atomic_load(&((tmem__conn *)c)->epoch);
}

/* A transport error: the daemon is gone (or was already). */
static bool gone_err(int rc)
{
    return rc == -EPIPE || rc == -ECONNRESET || rc == -EBADF ||
           rc == -ENOTCONN;
}

/* Connects again, as the same tenant, trying for up to wait_ns (one try
 * when 0).  Returns 0, or -EPIPE when the daemon did not come back. */
static int reconnect(tmem__conn *c, uint64_t wait_ns)
{
    if (!c->reconnect_ns || !c->path[0])
        return -EPIPE;
    if (c->has_ring)
        tmem__ring_unmap(&c->ring);
    c->has_ring = false;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    uint64_t until = tmem__now_ns() + wait_ns, backoff = RECONNECT_BACKOFF_MIN_NS;
    for (;;) {
        int fd;
        if (sock_connect(c->path, &fd) == 0) {
            c->fd = fd;
            if (hello(c, c->name[0] ? c->name : NULL) == 0) {
                if (c->want_ring)
                    (void)ring_setup(c);
                atomic_fetch_add(&c->epoch, 1);
                return 0;
            }
            close(fd);
            c->fd = -1;
        }
        uint64_t now = tmem__now_ns();
        if (now >= until)
            return -EPIPE;
        uint64_t nap = until - now < backoff ? until - now : backoff;
        struct timespec ts = {(time_t)(nap / 1000000000u),
                              (long)(nap % 1000000000u)};
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > RECONNECT_BACKOFF_MAX_NS
                      ? RECONNECT_BACKOFF_MAX_NS
                      : backoff * 2;
    }
}

/* ---- ring batches -------------------------------------------------------- */

/* True when the daemon closed the socket (checked while we sleep). */
static bool daemon_gone(tmem__conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLIN));
}

#define READY_STEP 8 /* entries per sq_ready update */

/* True for an operation the store would refuse with -EINVAL before
 * anything else: an unknown op, or a put or get without a page. */
static bool op_bad(const tmem__op *op)
{
    if (op->op < TMEM_OP_PUT || op->op > TMEM_OP_FLUSH_OBJECT)
        return true;
    return (op->op == TMEM_OP_PUT || op->op == TMEM_OP_GET) && !op->page;
}

/* The kind of a batch, for its time per entry: its first op (0: bad). */
static unsigned kind_of(const tmem__op *ops)
{
    unsigned op = ops[0].op;
    return op >= TMEM_OP_PUT && op <= TMEM_OP_FLUSH_OBJECT ? op : 0;
}

/* Writes the entries, raising sq_ready after the first, every READY_STEP
 * and at the end.  When the daemon may be waiting (wake), a sleeping
 * daemon is woken once the rest should take less than CLI_WAKE_AHEAD_NS,
 * and always at the end. */
static void ring_fill(tmem__conn *c, const tmem__op *ops, uint32_t n,
                      bool wake)
{
    tmem__ring_hdr *h = c->ring.hdr;
    uint32_t *per = &c->fill_ns[kind_of(ops)];
    uint64_t t0 = tmem__now_ns();
    for (uint32_t i = 0; i < n; i++) {
        tmem__ring_sqe *e = &c->ring.sq[i];
        /* a bad entry goes as op 0: the daemon answers -EINVAL */
        e->op = op_bad(&ops[i]) ? 0 : ops[i].op;
        e->pool = ops[i].pool;
        e->index = ops[i].index;
        e->slot = i;
        memcpy(e->oid, ops[i].oid.oid, sizeof e->oid);
        if (e->op == TMEM_OP_PUT) {
            /* compressed here, on our CPU, straight into the slot */
            tmem_packed pk;
            tmem__pack_level(ops[i].page, c->pack_state, c->hc,
                             c->pack_level, tmem__ring_slot(&c->ring, i), &pk,
                             &e->hash);
            e->enc = pk.enc;
            e->len = pk.len;
            e->fill = pk.fill;
        }
        if (i != 0 && (i + 1) % READY_STEP != 0 && i + 1 != n)
            continue;
        if (wake && (i + 1 == n ||
                     (uint64_t)(n - i - 1) * *per < CLI_WAKE_AHEAD_NS))
            tmem__ring_post(&h->sq_ready, i + 1, &h->srv_sleeping,
                            TMEM_RING_W_SQ_READY);
        else
            atomic_store((_Atomic uint32_t *)&h->sq_ready, i + 1);
    }
    tmem__ewma(per, (tmem__now_ns() - t0) / n);
}

/* Takes the results of entries [from, to) out of the ring. */
static void ring_reap(tmem__conn *c, tmem__op *ops, uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to; i++) {
        const volatile tmem__ring_cqe *q = &c->ring.cq[i];
        ops[i].result = op_bad(&ops[i]) ? -EINVAL : q->result;
        if (ops[i].op == TMEM_OP_PUT && ops[i].result == 1) {
            ops[i].where = q->where;
            ops[i].handle = q->handle;
            ops[i].gen = q->gen;
        }
        if (ops[i].op != TMEM_OP_GET || ops[i].result != 1)
            continue;
        tmem_packed pk = {.enc = q->enc, .len = q->len, .fill = q->fill};
        /* bounds checked by tmem__unpack: len never exceeds the slot */
        int rc = tmem__unpack(&pk, tmem__ring_slot(&c->ring, i), ops[i].page);
        if (rc < 0)
            ops[i].result = rc == -EINVAL ? -EPROTO : rc;
    }
}

/* Waits for the batch seq, reaping results as the daemon publishes them
 * (cq_ready), so copying got pages out overlaps with the daemon's work. */
static int ring_complete(tmem__conn *c, tmem__op *ops, uint32_t n, uint32_t seq)
{
    tmem__ring_hdr *h = c->ring.hdr;
    uint32_t done = 0, slept_at = UINT32_MAX;
    uint64_t per = c->ns_per_entry[kind_of(ops)];
    for (;;) {
        bool final = atomic_load((_Atomic uint32_t *)&h->cq_seq) == seq;
        uint32_t ready = atomic_load((_Atomic uint32_t *)&h->cq_ready);
        if (final && h->cq_status < 0)
            return -EPROTO;
        ready = final || ready > n ? n : ready;
        if (ready > done) {
            ring_reap(c, ops, done, ready);
            done = ready;
            continue;
        }
        if (final)
            return 0;
        /* a long wait ahead (and the last sleep saw progress): block */
        uint64_t rem = (uint64_t)(n - done) * per;
        if (rem >= CLI_BLOCK_MIN_NS && slept_at != done) {
            slept_at = done;
            uint32_t cur = atomic_load((_Atomic uint32_t *)&h->cq_seq);
            if (cur != seq)
                tmem__ring_wait(&h->cq_seq, cur, &h->cli_sleeping,
                                TMEM_RING_W_CQ_SEQ, 0,
                                rem - CLI_WAKE_LEAD_NS);
            continue;
        }
        /* all published but not yet final: wait on cq_seq, else on more */
        uint32_t *w = done == n ? &h->cq_seq : &h->cq_ready;
        uint32_t old = done == n ? atomic_load((_Atomic uint32_t *)w) : ready;
        if (done == n && old == seq)
            continue;
        uint32_t tag = done == n ? TMEM_RING_W_CQ_SEQ : TMEM_RING_W_CQ_READY;
        if (tmem__ring_wait(w, old, &h->cli_sleeping, tag, CLI_SPIN_NS,
                            CLI_WAIT_NS) < 0 &&
            daemon_gone(c))
            return -EPIPE;
    }
}

/* Crowded (the daemon says busy rings outnumber half the CPUs): one
 * hand-over each way, no spinning.  The batch is written whole before
 * sq_seq is bumped, then we sleep until cq_seq says it is done. */
static int ring_run_crowded(tmem__conn *c, tmem__op *ops, uint32_t n,
                            uint32_t seq)
{
    tmem__ring_hdr *h = c->ring.hdr;
    ring_fill(c, ops, n, false);
    tmem__ring_post(&h->sq_seq, seq, &h->srv_sleeping, TMEM_RING_W_SQ_SEQ);
    for (;;) {
        uint32_t cur = atomic_load((_Atomic uint32_t *)&h->cq_seq);
        if (cur == seq)
            break;
        if (tmem__ring_wait(&h->cq_seq, cur, &h->cli_sleeping,
                            TMEM_RING_W_CQ_SEQ, 0, CLI_WAIT_NS) < 0 &&
            daemon_gone(c))
            return -EPIPE;
    }
    if (h->cq_status < 0)
        return -EPROTO;
    ring_reap(c, ops, 0, n);
    return 0;
}

static int ring_run(tmem__conn *c, tmem__op *ops, uint32_t n)
{
    tmem__ring_hdr *h = c->ring.hdr;
    atomic_store((_Atomic uint32_t *)&h->sq_ready, 0);
    atomic_store((_Atomic uint32_t *)&h->cq_ready, 0);
    h->sq_count = n;
    uint32_t seq = h->sq_seq + 1;
    uint64_t t0 = tmem__now_ns();
    int rc;
    if (atomic_load_explicit((_Atomic uint32_t *)&h->crowded,
                             memory_order_relaxed)) {
        rc = ring_run_crowded(c, ops, n, seq);
    } else {
        tmem__ring_post(&h->sq_seq, seq, &h->srv_sleeping,
                        TMEM_RING_W_SQ_SEQ);
        ring_fill(c, ops, n, true);
        rc = ring_complete(c, ops, n, seq);
    }
    atomic_store_explicit((_Atomic uint32_t *)&h->cq_taken, seq,
                          memory_order_release);
    tmem__ewma(&c->ns_per_entry[kind_of(ops)], (tmem__now_ns() - t0) / n);
    return rc;
}

/* ---- socket data path ---------------------------------------------------- */

static const uint16_t op_msg[] = {
    [TMEM_OP_PUT] = TMEM_MSG_PUT,
    [TMEM_OP_GET] = TMEM_MSG_GET,
    [TMEM_OP_FLUSH_PAGE] = TMEM_MSG_FLUSH_PAGE,
    [TMEM_OP_FLUSH_OBJECT] = TMEM_MSG_FLUSH_OBJECT,
};

static int sock_op(tmem__conn *c, tmem__op *op)
{
    if (op_bad(op)) { /* that op's result, not the transport's */
        op->result = -EINVAL;
        return 0;
    }
    tmem__msg_args a = {.pool = op->pool, .index = op->index};
    memcpy(a.oid, op->oid.oid, sizeof a.oid);
    call k = {.op = op_msg[op->op],
              .args = &a,
              .pass_fd = -1,
              .page_in = op->op == TMEM_OP_PUT ? op->page : NULL,
              .page_out = op->op == TMEM_OP_GET ? op->page : NULL};
    int rc = do_call(c, &k);
    if (rc == -EPIPE || rc == -EPROTO || rc == -ETIMEDOUT)
        return rc; /* transport */
    op->result = rc;
    if (op->op == TMEM_OP_PUT && rc == 1) {
        op->where = k.res.out_flags;
        op->handle = (uint32_t)k.res.value;
        op->gen = (uint32_t)((uint64_t)k.res.value >> 32);
    }
    return 0;
}

static int batch_once(tmem__conn *c, tmem__op *ops, size_t n)
{
    if (c->fd < 0)
        return -EPIPE; /* the last reconnection failed */
    while (n > 0) {
        int rc;
        size_t k = 1;
        if (c->has_ring) {
            k = n < c->ring.lay.entries ? n : c->ring.lay.entries;
            rc = ring_run(c, ops, (uint32_t)k);
        } else {
            rc = sock_op(c, ops);
        }
        if (rc < 0)
            return rc;
        ops += k;
        n -= k;
    }
    return 0;
}

/* do_call, and when the daemon went away, one try to reach it again and
 * the call once more (pool calls: the caller waits for no one). */
static int call_revived(tmem__conn *c, call *k)
{
    int rc = c->fd < 0 ? -EPIPE : do_call(c, k);
    if (gone_err(rc))
        rc = reconnect(c, 0) < 0 ? -EPIPE : do_call(c, k);
    return rc;
}

int tmem__conn_batch(tmem__conn *c, tmem__op *ops, size_t n)
{
    int rc = batch_once(c, ops, n);
    if (!gone_err(rc))
        return rc;
    /* the daemon went away: a get waits for it to come back, the rest
     * try once (a put that fails leaves its page with the caller) */
    bool get = false;
    for (size_t i = 0; i < n; i++)
        get = get || ops[i].op == TMEM_OP_GET;
    if (reconnect(c, get ? c->reconnect_ns : 0) < 0)
        return -EPIPE;
    rc = batch_once(c, ops, n); /* every op again: each is idempotent */
    return gone_err(rc) ? -EPIPE : rc;
}

static int one(tmem__conn *c, uint8_t code, int pool, const tmem_oid *oid,
               uint32_t index, void *page)
{
    tmem__op op = {.op = code, .pool = pool, .index = index, .page = page};
    if (!oid || op_bad(&op))
        return -EINVAL; /* as the store: before the pool is looked at */
    op.oid = *oid;
    int rc = tmem__conn_batch(c, &op, 1);
    return rc < 0 ? rc : op.result;
}

int tmem__conn_put(tmem__conn *c, int pool, const tmem_oid *oid, uint32_t index,
                   const void *page)
{
    return one(c, TMEM_OP_PUT, pool, oid, index, (void *)page);
}

int tmem__conn_get(tmem__conn *c, int pool, const tmem_oid *oid, uint32_t index,
                   void *page)
{
    return one(c, TMEM_OP_GET, pool, oid, index, page);
}

int tmem__conn_flush_page(tmem__conn *c, int pool, const tmem_oid *oid,
                          uint32_t index)
{
    return one(c, TMEM_OP_FLUSH_PAGE, pool, oid, index, NULL);
}

int tmem__conn_flush_object(tmem__conn *c, int pool, const tmem_oid *oid)
{
    return one(c, TMEM_OP_FLUSH_OBJECT, pool, oid, 0, NULL);
}

int tmem__conn_pool_new(tmem__conn *c, const uint64_t uuid[2], uint32_t flags,
                        uint32_t *out_flags)
{
    tmem__msg_args a = {.flags = flags};
    if (uuid)
        memcpy(a.uuid, uuid, sizeof a.uuid);
    call k = {.op = TMEM_MSG_POOL_NEW, .args = &a, .pass_fd = -1};
    int rc = call_revived(c, &k);
    if (rc >= 0 && out_flags)
        *out_flags = k.res.out_flags;
    return rc;
}

int tmem__conn_pool_destroy(tmem__conn *c, int pool)
{
    tmem__msg_args a = {.pool = pool};
    call k = {.op = TMEM_MSG_POOL_DESTROY, .args = &a, .pass_fd = -1};
    return call_revived(c, &k);
}

int tmem__conn_arena(tmem__conn *c, int *fd, size_t *len)
{
    tmem__msg_args a = {0};
    int got = -1;
    call k = {.op = TMEM_MSG_ARENA, .args = &a, .pass_fd = -1, .fd_out = &got};
    int rc = do_call(c, &k);
    if (rc >= 0 && (got < 0 || k.res.value <= 0)) {
        if (got >= 0)
            close(got);
        return -EPROTO;
    }
    if (rc < 0)
        return rc;
    *fd = got;
    *len = (size_t)k.res.value;
    return 0;
}

struct tmem__tstat *tmem__conn_tstat(tmem__conn *c)
{
    if (!c->has_ring)
        return NULL;
    return (struct tmem__tstat *)((char *)c->ring.hdr + TMEM_RING_TSTAT_OFF);
}

/* ---- admin --------------------------------------------------------------- */

static int admin(tmem__conn *c, uint16_t op, int client_id, uint64_t arg)
{
    tmem__msg_args a = {.client_id = client_id, .arg = arg};
    return simple(c, op, &a);
}

int tmem__conn_set_weight(tmem__conn *c, int client_id, uint32_t weight)
{
    return admin(c, TMEM_MSG_SET_WEIGHT, client_id, weight);
}

int tmem__conn_set_cap(tmem__conn *c, int client_id, uint64_t cap_pages)
{
    return admin(c, TMEM_MSG_SET_CAP, client_id, cap_pages);
}

int tmem__conn_set_compress(tmem__conn *c, int client_id, int compress)
{
    if (compress < 0)
        return -EINVAL;
    return admin(c, TMEM_MSG_SET_COMPRESS, client_id, (uint64_t)compress);
}

int tmem__conn_freeze(tmem__conn *c, int client_id, bool frozen)
{
    return admin(c, TMEM_MSG_FREEZE, client_id, frozen);
}

int tmem__conn_destroy_client(tmem__conn *c, int client_id)
{
    return admin(c, TMEM_MSG_DESTROY_CLIENT, client_id, 0);
}

static int64_t admin64(tmem__conn *c, uint16_t op, uint64_t arg)
{
    tmem__msg_args a = {.arg = arg};
    call k = {.op = op, .args = &a, .pass_fd = -1};
    int rc = do_call(c, &k);
    return rc < 0 ? rc : k.res.value;
}

int64_t tmem__conn_save(tmem__conn *c, int client_id, const char *name, int fd)
{
    tmem__msg_args a = {.client_id = client_id};
    if (fd < 0 || !name_args(&a, name))
        return -EINVAL;
    call k = {.op = TMEM_MSG_SAVE, .args = &a, .pass_fd = fd};
    int rc = do_call(c, &k);
    return rc < 0 ? rc : k.res.value;
}

int tmem__conn_restore(tmem__conn *c, const char *name, uint32_t uid, int fd,
                       uint64_t *pages)
{
    tmem__msg_args a = {.arg = uid};
    if (fd < 0 || !name || !*name || !name_args(&a, name))
        return -EINVAL;
    call k = {.op = TMEM_MSG_RESTORE, .args = &a, .pass_fd = fd};
    int rc = do_call(c, &k);
    if (rc < 0)
        return rc;
    if (pages)
        *pages = k.res.out_flags;
    return (int)k.res.value;
}

int64_t tmem__conn_flush_mib(tmem__conn *c, uint64_t mib)
{
    return admin64(c, TMEM_MSG_FLUSH_MIB, mib);
}

int64_t tmem__conn_freeable_mib(tmem__conn *c)
{
    return admin64(c, TMEM_MSG_FREEABLE, 0);
}

int tmem__conn_auth(tmem__conn *c, int client_id, const uint64_t uuid[2],
                    bool on)
{
    tmem__msg_args a = {.client_id = client_id, .arg = on};
    memcpy(a.uuid, uuid, sizeof a.uuid);
    return simple(c, TMEM_MSG_AUTH, &a);
}

static int text(tmem__conn *c, uint16_t op, char **out)
{
    char *t = NULL;
    call k = {.op = op, .pass_fd = -1, .text_out = &t};
    int rc = do_call(c, &k);
    if (rc < 0) {
        free(t);
        return rc;
    }
    if (!t) {
        t = malloc(1);
        if (!t)
            return -ENOMEM;
        t[0] = 0;
    }
    *out = t;
    return 0;
}

int tmem__conn_stats_json(tmem__conn *c, char **out)
{
    return text(c, TMEM_MSG_STATS_JSON, out);
}

int tmem__conn_prometheus(tmem__conn *c, char **out)
{
    return text(c, TMEM_MSG_PROMETHEUS, out);
}
