/*
 * One tenant connection: its socket thread (request/reply loop and the
 * opcode handler table).  Its ring, once set up, is served by the ring
 * workers (workers.c, ring.c).
 *
 * Invariants: a session owns exactly one store client, created at HELLO
 * and destroyed when the socket thread ends (after its ring has left
 * the workers' set), so no thread uses the client after it is
 * destroyed.
 * Anything malformed on the socket (bad header, length, opcode, version)
 * gets an error reply and a disconnect: the stream can no longer be
 * trusted.  Bad arguments of a well-formed request get an error reply
 * only.  Writes to a tenant block only its own thread and time out
 * (SO_SNDTIMEO), so a tenant that never reads is disconnected; reads have
 * deadlines too (recv.c: no HELLO, or half a message, is dropped).
 * Admission (admit.c) decides at the accept whether a session may exist;
 * every refusal here is counted by reason (tmemd_refuse).  Admin
 * operations and the stats texts are admin.c's; the default persistent
 * cap is share.c's, checked before every persistent put; the tenant a
 * session belongs to and the policy applied at HELLO are tenant.c's.
 * A ring's memory is charged to the session's client in the store
 * (tmem_client_charge) from its setup until it is unmapped.
 */
#include "tmemd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <proto/conn.h>
#include <store/store_direct.h>

_Static_assert((int)TMEM__WHERE_NONE == (int)TMEM_WHERE_NONE &&
                   (int)TMEM__WHERE_DIRECT == (int)TMEM_WHERE_DIRECT &&
                   (int)TMEM__WHERE_FILL == (int)TMEM_WHERE_FILL,
               "store and wire agree on where a page went");

#define SEND_TIMEOUT_S 5

typedef struct reply {
    int32_t status;
    int64_t value;
    uint32_t out_flags;
    const void *payload;
    uint32_t plen;
    char *heap; /* malloc'd payload to free after sending */
    int fd;     /* a descriptor to pass with the reply (closed after) */
    bool close; /* disconnect after the reply */
} reply;

typedef void (*handler_fn)(struct tmemd_session *s, const tmem__req *q,
                           int *passfd, reply *r);

static bool pool_ok(int32_t pool)
{
    return pool >= 0 && pool < TMEM_MAX_POOLS;
}

/* ---- data operations ----------------------------------------------------- */

static int timed(enum tmemd_lat lat, uint64_t t0, int rc)
{
    tmemd_lat_record(lat, tmem__now_ns() - t0);
    return rc;
}

static void h_pool_new(struct tmemd_session *s, const tmem__req *q, int *passfd,
                       reply *r)
{
    (void)passfd;
    uint64_t t0 = tmem__now_ns();
    uint32_t fl = 0;
    r->status =
        timed(LAT_POOL_NEW, t0,
              tmem_pool_new(s->client, q->args.uuid, q->args.flags, &fl));
    r->out_flags = fl;
    if (r->status >= 0)
        tmemd_share_pool_new(s, r->status, fl);
}

static void h_pool_destroy(struct tmemd_session *s, const tmem__req *q,
                           int *passfd, reply *r)
{
    (void)passfd;
    uint64_t t0 = tmem__now_ns();
    r->status = pool_ok(q->args.pool)
                    ? tmem_pool_destroy(s->client, q->args.pool)
                    : -ENODEV;
    timed(LAT_POOL_DESTROY, t0, 0);
    if (r->status == 0)
        tmemd_share_pool_gone(s, q->args.pool);
}

/* Runs one page operation (untimed); shared by the socket and the ring
 * paths.  page is a private copy for PUT, the destination for GET.  With
 * pk the page is packed both ways: a PUT's page is pk's bytes (the hash a
 * ring entry carries is not passed on: the store never trusts one, it
 * hashes what it stores), and a GET leaves the page packed
 * (tmem_page_get_packed).  A PUT says in *w where the page went. */
int tmemd_page_op(tmem_client *c, uint8_t op, int32_t pool,
                   const uint64_t oid[3], uint32_t index, void *page,
                   tmem_packed *pk, tmem__page_where *w)
{
    tmem_oid o;
    memcpy(o.oid, oid, sizeof o.oid);
    if (!pool_ok(pool))
        return -ENODEV;
    switch (op) {
    case TMEM_OP_PUT:
        return tmem__page_put_where(c, pool, &o, index, pk, page, w);
    case TMEM_OP_GET:
        return pk ? tmem_page_get_packed(c, pool, &o, index, page, pk)
                  : tmem_page_get(c, pool, &o, index, page);
    case TMEM_OP_FLUSH_PAGE:
        return tmem_page_flush(c, pool, &o, index);
    case TMEM_OP_FLUSH_OBJECT:
        return tmem_object_flush(c, pool, &o);
    }
    return -EINVAL;
}

const uint8_t tmemd_op_lat[TMEM_OP_FLUSH_OBJECT + 1] = {
    [TMEM_OP_PUT] = LAT_PUT,
    [TMEM_OP_GET] = LAT_GET,
    [TMEM_OP_FLUSH_PAGE] = LAT_FLUSH_PAGE,
    [TMEM_OP_FLUSH_OBJECT] = LAT_FLUSH_OBJECT,
};

static void h_page(struct tmemd_session *s, const tmem__req *q, int *passfd,
                   reply *r)
{
    static const uint8_t code[TMEM_MSG_OP_MAX] = {
        [TMEM_MSG_PUT] = TMEM_OP_PUT,
        [TMEM_MSG_GET] = TMEM_OP_GET,
        [TMEM_MSG_FLUSH_PAGE] = TMEM_OP_FLUSH_PAGE,
        [TMEM_MSG_FLUSH_OBJECT] = TMEM_OP_FLUSH_OBJECT,
    };
    (void)passfd;
    uint8_t op = code[q->hdr.op];
    if (op == TMEM_OP_PUT)
        memcpy(s->page, q->page, TMEM_PAGE_SIZE);
    uint64_t t0 = tmem__now_ns();
    tmem__page_where w = {0};
    r->status =
        op == TMEM_OP_PUT
            ? tmemd_share_check(s, q->args.pool, q->args.oid, q->args.index)
            : 0;
    if (r->status == 0)
        r->status = tmemd_page_op(s->client, op, q->args.pool, q->args.oid,
                            q->args.index, s->page, NULL, &w);
    timed(tmemd_op_lat[op], t0, 0);
    if (op == TMEM_OP_GET && r->status == 1) {
        r->payload = s->page;
        r->plen = TMEM_PAGE_SIZE;
    }
    if (op == TMEM_OP_PUT && r->status == 1) {
        r->out_flags = w.kind;
        r->value = (int64_t)((uint64_t)w.gen << 32 | w.handle);
    }
}

/* The client's private arena, read-only, for its own page-ins. */
static void h_arena(struct tmemd_session *s, const tmem__req *q, int *passfd,
                    reply *r)
{
    (void)q;
    (void)passfd;
    size_t len = 0;
    int fd = tmem__client_arena_fd(s->client, &len);
    if (fd < 0) {
        r->status = fd;
        return;
    }
    r->fd = fd;
    r->value = (int64_t)len;
}

static void h_ring_setup(struct tmemd_session *s, const tmem__req *q,
                         int *passfd, reply *r)
{
    r->status = tmemd_ring_attach(s, q->args.arg, *passfd);
    if (*passfd >= 0)
        close(*passfd);
    *passfd = -1;
    if (r->status < 0)
        return;
    int e = tmemd_rings_add(s->d, s);
    if (e < 0) {
        tmemd_ring_release(s);
        r->status = e;
        return;
    }
    pthread_mutex_lock(&s->d->lock); /* tmemd_sessions_json reads it */
    s->has_ring = true;
    pthread_mutex_unlock(&s->d->lock);
    if (atomic_load(&s->pers_pools)) /* its ring comes out of its share */
        tmemd_share_update(s->d);
}

/* ---- control and admin -----------------------------------------------------
 */

/* Refuses a HELLO (counted, logged) and ends the session after the
 * reply. */
static void hello_refused(struct tmemd_session *s, enum tmemd_refusal why,
                          int status, reply *r)
{
    if (tmemd_refuse(s->d, why))
        tmemd_log("pid %d uid %u: hello refused (%s): %s", (int)s->pid,
                  (unsigned)s->uid, tmemd_refusal_name(why),
                  tmemd_refusal_help(why));
    r->status = status;
    r->close = true;
}

static void h_hello(struct tmemd_session *s, const tmem__req *q, int *passfd,
                    reply *r)
{
    (void)passfd;
    if (s->client) {
        if (tmemd_refuse(s->d, TMEMD_R_OUT_OF_ORDER))
            tmemd_log("client %d (pid %d): second hello refused", s->id,
                      (int)s->pid);
        r->status = -EPROTO;
        return;
    }
    if (q->args.flags != TMEM_PROTO_MAGIC ||
        q->args.arg != TMEM_PROTO_VERSION) {
        hello_refused(s, TMEMD_R_BAD_VERSION, -EPROTONOSUPPORT, r);
        return;
    }
    char name[TMEM_NAME_MAX + 1] = {0};
    memcpy(name, q->args.uuid, TMEM_NAME_MAX); /* NUL-padded, maybe full */
    if (name[0] && !tmem__name_valid(name, TMEM_NAME_MAX)) {
        hello_refused(s, TMEMD_R_BAD_NAME, -EINVAL, r);
        return;
    }
    /* a client kept for this tenant (save.c: restored, or kept across a
     * restart) is taken over as it is, with its resume token */
    uint32_t pers = 0;
    struct tmemd_who who = {.uid = s->uid,
                            .token = {q->args.oid[0], q->args.oid[1]}};
    memcpy(who.name, name, sizeof who.name);
    uint64_t token[2] = {0, 0};
    tmem_client *kept = tmemd_parked_take(s->d, &who, &pers, token);
    int id = kept ? tmem_client_id(kept)
                  : tmem_client_create(s->d->store, &s->client);
    if (id < 0) {
        hello_refused(s, TMEMD_R_CLIENT_CREATE, id, r);
        return;
    }
    if (kept && (token[0] || token[1])) {
        s->token[0] = token[0];
        s->token[1] = token[1];
    } else if (getrandom(s->token, sizeof s->token, 0) !=
               (ssize_t)sizeof s->token) {
        s->token[0] = tmem__now_ns(); /* no entropy: still unique here */
        s->token[1] = (uint64_t)s->pid << 32 | (uint32_t)id;
    }
    if (kept) {
        s->client = kept;
        for (int p = 0; p < TMEM_MAX_POOLS; p++)
            if (pers & (1u << p))
                tmemd_share_pool_new(s, p, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST));
    }
    /* who it is, in its arena, for a start after a crash (recover.c) */
    who.token[0] = s->token[0];
    who.token[1] = s->token[1];
    tmemd_tag_client(s->client, &who);
    pthread_mutex_lock(&s->d->lock); /* the session list readers see it */
    s->id = id;
    memcpy(s->name, name, sizeof s->name);
    pthread_mutex_unlock(&s->d->lock);
    int line = tmemd_tenant_join(s);
    if (line < 0) { /* the client goes at session_end */
        hello_refused(s, TMEMD_R_CLIENT_CREATE, line, r);
        return;
    }
    r->value = id;
    r->out_flags = TMEM_PROTO_VERSION;
    r->payload = s->token; /* for a reconnection after a restart */
    r->plen = sizeof s->token;
    char rule[32] = ""; /* its tenant's identity is fixed: no lock */
    if (line)
        snprintf(rule, sizeof rule, ", rule at line %d", line);
    tmemd_log("client %d connected: pid %d uid %u gid %u%s%s cgroup %s%s%s%s",
              id, (int)s->pid, (unsigned)s->uid, (unsigned)s->gid,
              name[0] ? " name " : "", name,
              s->tenant->id.cgroup[0] ? s->tenant->id.cgroup : "?",
              s->admin ? " (admin)" : "", rule,
              kept ? ", its restored pages taken over" : "");
}

static void h_admin(struct tmemd_session *s, const tmem__req *q, int *passfd,
                    reply *r)
{
    (void)passfd;
    r->status = tmemd_admin_op(s, q, &r->value);
}

static void h_save(struct tmemd_session *s, const tmem__req *q, int *passfd,
                   reply *r)
{
    tmemd_h_save(s, q, passfd, &r->status, &r->value, &r->out_flags);
}

static void h_text(struct tmemd_session *s, const tmem__req *q, int *passfd,
                   reply *r)
{
    (void)passfd;
    char *t = NULL;
    int n = tmemd_stats_text(s, q->hdr.op, &t);
    if (n < 0) {
        r->status = n;
        return;
    }
    if ((uint64_t)n > TMEM_MSG_REPLY_MAX - TMEM_MSG_REPLY_BASE) {
        free(t);
        r->status = -E2BIG;
        return;
    }
    r->heap = t;
    r->payload = t;
    r->plen = (uint32_t)n;
}

static const handler_fn handlers[TMEM_MSG_OP_MAX] = {
    [TMEM_MSG_HELLO] = h_hello,        [TMEM_MSG_RING_SETUP] = h_ring_setup,
    [TMEM_MSG_POOL_NEW] = h_pool_new,  [TMEM_MSG_POOL_DESTROY] = h_pool_destroy,
    [TMEM_MSG_PUT] = h_page,           [TMEM_MSG_GET] = h_page,
    [TMEM_MSG_FLUSH_PAGE] = h_page,    [TMEM_MSG_FLUSH_OBJECT] = h_page,
    [TMEM_MSG_ARENA] = h_arena,
    [TMEM_MSG_SET_WEIGHT] = h_admin,   [TMEM_MSG_SET_CAP] = h_admin,
    [TMEM_MSG_SET_COMPRESS] = h_admin, [TMEM_MSG_FREEZE] = h_admin,
    [TMEM_MSG_FLUSH_MIB] = h_admin,    [TMEM_MSG_FREEABLE] = h_admin,
    [TMEM_MSG_AUTH] = h_admin,         [TMEM_MSG_DESTROY_CLIENT] = h_admin,
    [TMEM_MSG_STATS_JSON] = h_text,    [TMEM_MSG_PROMETHEUS] = h_text,
    [TMEM_MSG_SAVE] = h_save,          [TMEM_MSG_RESTORE] = h_save,
};

/* ---- the socket loop --------------------------------------------------- */

static int send_reply(struct tmemd_session *s, const tmem__msg_hdr *h,
                      const reply *r)
{
    unsigned char base[TMEM_MSG_REPLY_BASE];
    tmem__reply_encode(base, h->op, h->seq, r->status, r->value, r->out_flags,
                       r->plen);
    int rc = r->fd >= 0 ? tmem__io_write_fd(s->fd, base, sizeof base, r->fd)
                        : tmem__io_write(s->fd, base, sizeof base);
    if (rc == 0 && r->plen)
        rc = tmem__io_write(s->fd, r->payload, r->plen);
    return rc;
}

static void dispatch(struct tmemd_session *s, const tmem__req *q, int *passfd,
                     reply *r)
{
    const tmem__msg_rule *rule = tmem__msg_rule_of(q->hdr.op);
    if (!s->client && q->hdr.op != TMEM_MSG_HELLO) {
        r->status = -EPROTO; /* hello first */
        r->close = true;
        if (tmemd_refuse(s->d, TMEMD_R_OUT_OF_ORDER))
            tmemd_log("pid %d uid %u: %s before hello refused", (int)s->pid,
                      (unsigned)s->uid, rule->name);
    } else if (rule->admin && !s->admin) {
        r->status = -EPERM;
        if (tmemd_refuse(s->d, TMEMD_R_NOT_ADMIN))
            tmemd_log("client %d (pid %d uid %u): %s refused: not admin",
                      s->id, (int)s->pid, (unsigned)s->uid, rule->name);
    } else {
        handlers[q->hdr.op](s, q, passfd, r);
    }
}

/* A tenant too slow with its HELLO or with a message it began (recv.c):
 * counted and logged; the session ends. */
static int recv_timed_out(struct tmemd_session *s)
{
    enum tmemd_refusal why =
        s->client ? TMEMD_R_RECV_TIMEOUT : TMEMD_R_HELLO_TIMEOUT;
    if (tmemd_refuse(s->d, why))
        tmemd_log("client %d (pid %d uid %u): dropped (%s): %s", s->id,
                  (int)s->pid, (unsigned)s->uid, tmemd_refusal_name(why),
                  tmemd_refusal_help(why));
    return -ECONNABORTED;
}

/* Reads and serves one request.  Returns 0 to go on, < 0 to disconnect. */
static int serve_one(struct tmemd_session *s)
{
    tmem__msg_hdr h = {0};
    tmem__req q;
    reply r = {.fd = -1};
    int passfd = -1;
    int rc = tmemd_recv_request(s, &h, &passfd);
    if (rc == -ETIMEDOUT) {
        rc = recv_timed_out(s);
        goto out;
    }
    if (rc == 0)
        rc = tmem__req_decode(s->req, h.len, &q);
    if (rc == -EMSGSIZE || rc == -EBADMSG) {
        if (tmemd_refuse(s->d, TMEMD_R_BAD_MESSAGE))
            tmemd_log("client %d (pid %d): bad message (op %u len %u): %s",
                      s->id, (int)s->pid, h.op, h.len, strerror(-rc));
        r.status = rc;
        send_reply(s, &h, &r);
        goto out;
    }
    if (rc < 0)
        goto out;
    dispatch(s, &q, &passfd, &r);
    rc = send_reply(s, &h, &r);
    if (rc == -ETIMEDOUT) /* it does not read its replies: dropped */
        tmemd_refuse(s->d, TMEMD_R_SEND_TIMEOUT);
    free(r.heap);
    if (r.fd >= 0)
        close(r.fd);
    if (rc == 0 && r.close)
        rc = -ECONNABORTED;
out:
    if (passfd >= 0)
        close(passfd);
    return rc;
}

void tmemd_session_who(const struct tmemd_session *s, struct tmemd_who *w)
{
    memset(w, 0, sizeof *w);
    w->uid = s->uid;
    memcpy(w->name, s->name, sizeof w->name);
    memcpy(w->token, s->token, sizeof w->token);
}

static void session_end(struct tmemd_session *s)
{
    struct tmemd *d = s->d;
    if (s->has_ring) {
        tmemd_rings_remove(d, s); /* no worker serves it after this */
        /* readers of the ring under d->lock (the tenant's figures) must
         * not see it once it is unmapped */
        pthread_mutex_lock(&d->lock);
        s->has_ring = false;
        pthread_mutex_unlock(&d->lock);
        tmemd_ring_release(s);
    }
    if (s->client && atomic_load(&d->keeping)) {
        /* a stop is keeping the tenants' pages (keep.c): its client stays,
         * kept for it, and is saved with the others */
        struct tmemd_who who;
        tmemd_session_who(s, &who);
        pthread_mutex_lock(&d->lock);
        if (tmemd_park_locked(d, &who, s->client))
            s->client = NULL;
        pthread_mutex_unlock(&d->lock);
    }
    if (s->client) {
        tmem_client_destroy(s->client);
        tmemd_log("client %d disconnected: pid %d uid %u", s->id, (int)s->pid,
                  (unsigned)s->uid);
    }
    /* the others' shares grow; while still linked, so that drain() waits
     * for this before the store goes */
    if (atomic_exchange(&s->pers_pools, 0))
        tmemd_share_update(d);
    pthread_mutex_lock(&d->lock);
    tmemd_tenant_leave_locked(s);
    if (s->prev)
        s->prev->next = s->next;
    else
        d->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    d->nsessions--;
    close(s->fd);
    pthread_cond_broadcast(&d->drained);
    pthread_mutex_unlock(&d->lock);
    free(s);
}

static void *session_main(void *arg)
{
    struct tmemd_session *s = arg;
    int rc;
    do
        rc = serve_one(s);
    while (rc == 0 && !atomic_load(&s->d->stopping));
    if (rc != -EPIPE && rc != -ECONNABORTED && rc != -ECONNRESET && s->id >= 0)
        tmemd_log("client %d (pid %d): dropped: %s", s->id, (int)s->pid,
                  strerror(-rc));
    session_end(s);
    return NULL;
}

static int peer_cred(struct tmemd_session *s)
{
    struct ucred uc;
    socklen_t len = sizeof uc;
    if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
        return -errno;
    s->pid = uc.pid;
    s->uid = uc.uid;
    s->gid = uc.gid;
    s->admin = uc.uid == 0 || uc.uid == s->d->uid;
    return 0;
}

/* Links an admitted session (admit.c); returns the reason it was not
 * admitted, else TMEMD_R_N. */
static enum tmemd_refusal session_link(struct tmemd *d,
                                       struct tmemd_session *s)
{
    pthread_mutex_lock(&d->lock);
    enum tmemd_refusal why = tmemd_admit_locked(d, s->uid, s->admin);
    if (why != TMEMD_R_N) {
        pthread_mutex_unlock(&d->lock);
        return why;
    }
    s->next = d->sessions;
    if (d->sessions)
        d->sessions->prev = s;
    d->sessions = s;
    d->nsessions++;
    pthread_mutex_unlock(&d->lock);
    return TMEMD_R_N;
}

int tmemd_session_start(struct tmemd *d, int fd)
{
    struct tmemd_session *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    s->d = d;
    s->fd = fd;
    s->id = -1;
    s->hello_by = tmem__now_ns() + d->lim.hello_ns;
    struct timeval tv = {SEND_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc = peer_cred(s);
    enum tmemd_refusal why = rc == 0 ? session_link(d, s) : TMEMD_R_N;
    if (rc < 0 || why != TMEMD_R_N) {
        if (rc < 0)
            tmemd_log("connection refused: %s", strerror(-rc));
        else if (tmemd_refuse(d, why))
            tmemd_log("connection refused (%s): pid %d uid %u: %s",
                      tmemd_refusal_name(why), (int)s->pid, (unsigned)s->uid,
                      tmemd_refusal_help(why));
        close(fd);
        free(s);
        return rc < 0 ? rc : -EUSERS;
    }
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    rc = -pthread_create(&t, &at, session_main, s);
    pthread_attr_destroy(&at);
    if (rc < 0) {
        s->client = NULL;
        session_end(s);
    }
    return rc;
}

void tmemd_sessions_shutdown(struct tmemd *d)
{
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_session *s = d->sessions; s; s = s->next)
        shutdown(s->fd, SHUT_RDWR);
    pthread_mutex_unlock(&d->lock);
}

bool tmemd_session_tstat(const struct tmemd_session *s, tmem__tstat *out)
{
    if (!s->has_ring)
        return false;
    /* the tenant's memory: copied once, only shown as numbers */
    memcpy(out, (const char *)s->ring.hdr + TMEM_RING_TSTAT_OFF, sizeof *out);
    return out->magic == TMEM_TSTAT_MAGIC &&
           (out->kind == TMEM_TSTAT_TSWAP || out->kind == TMEM_TSTAT_SQLITE);
}

const char *tmemd_tstat_kind(const tmem__tstat *ts)
{
    return ts->kind == TMEM_TSTAT_SQLITE ? "sqlite" : "tswap";
}

/* One connection as JSON into t[cap]; returns the length written.  Its
 * cgroup has no quote or backslash (tenant.c). */
static size_t session_json(const struct tmemd_session *s, char *t, size_t cap)
{
    size_t n = (size_t)snprintf(
        t, cap,
        "{\"client\":%d,\"name\":\"%s\",\"pid\":%d,\"uid\":%u,"
        "\"gid\":%u,\"cgroup\":\"%s\",\"rule\":%d,\"ring\":%s,"
        "\"ring_bytes\":%zu,\"pers_cap\":%llu",
        s->id, s->name, (int)s->pid, (unsigned)s->uid, (unsigned)s->gid,
        s->tenant ? s->tenant->id.cgroup : "", s->pol.line,
        s->has_ring ? "true" : "false", s->has_ring ? s->ring.lay.size : 0,
        (unsigned long long)atomic_load(&s->pers_cap));
    tmem__tstat ts;
    if (n < cap && tmemd_session_tstat(s, &ts))
        n += (size_t)snprintf(
            t + n, cap - n,
            ",\"tswap\":{\"kind\":\"%s\",\"resident\":%llu,\"target\":%llu,"
            "\"stored\":%llu,\"faults\":%llu,\"pageins\":%llu,"
            "\"evicted\":%llu,\"refused\":%llu,\"pagein_p50_us\":%.1f,"
            "\"pagein_p99_us\":%.1f}",
            tmemd_tstat_kind(&ts),
            (unsigned long long)ts.resident, (unsigned long long)ts.target,
            (unsigned long long)ts.stored, (unsigned long long)ts.faults,
            (unsigned long long)ts.pageins, (unsigned long long)ts.evicted,
            (unsigned long long)ts.refused, (double)ts.pagein_p50_ns / 1e3,
            (double)ts.pagein_p99_ns / 1e3);
    if (n < cap)
        n += (size_t)snprintf(t + n, cap - n, "}");
    return n < cap ? n : cap - 1; /* (cannot happen: cap fits any) */
}

#define SESSION_JSON_MAX (768 + TMEMD_CGROUP_MAX)

char *tmemd_sessions_json(struct tmemd *d)
{
    pthread_mutex_lock(&d->lock);
    size_t cap = 64 + (size_t)d->nsessions * (SESSION_JSON_MAX + 1), len = 1;
    char *t = malloc(cap);
    if (t) {
        t[0] = '[';
        for (struct tmemd_session *s = d->sessions; s; s = s->next) {
            if (s->id < 0)
                continue;
            if (len > 1)
                t[len++] = ',';
            len += session_json(s, t + len, SESSION_JSON_MAX);
        }
        snprintf(t + len, cap - len, "]");
    }
    pthread_mutex_unlock(&d->lock);
    return t;
}
