/*
 * tmemd internals: the daemon state, one session per tenant connection,
 * latency histograms and the Prometheus exporter.
 *
 * Threads: the main thread accepts connections and handles signals; each
 * session has a socket thread (requests/replies); the ring workers, one
 * per CPU, serve every tenant's ring (workers.c picks the ring, ring.c
 * runs its batches); libmicrohttpd runs its own thread.
 *
 * Admission and limits live in admit.c (session caps, refusal counters),
 * recv.c (receive deadlines) and share.c (the default persistent cap).
 * Who a tenant is (uid, cgroup, name: struct tmemd_tenant) and the
 * operator's policy applied to it live in tenant.c; the policy file's
 * syntax and matching in policy.c.
 *
 * Lock order: tmemd.policy_lock, then tmemd.share_lock, then tmemd.lock.
 * tmemd.rings.mu is taken alone (never with another of these), and a
 * worker serves a ring without it.
 * tmemd.lock (the session and tenant lists) is never held across a socket
 * write, a store call or a join.  policy_lock serialises applying the
 * policy (at HELLO, at a reload) and share_lock share.c's updates of the
 * default caps; both are held across store calls, never across socket
 * I/O.  The store has its own locks (store.h: thread-safe), taken after
 * tmemd.lock only for a client reference (tmem__client_get: save.c and
 * keep.c) and by the stats JSON splice (which copies session fields
 * first, then calls the store without tmemd.lock); the store never calls
 * back into the daemon.
 */
#ifndef TMEMD_TMEMD_H
#define TMEMD_TMEMD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <proto/conn.h>
#include <proto/proto.h>
#include <tmem/store.h>
#include <store/store_direct.h>

#define TMEMD_MAX_SESSIONS 1024
/* Sessions of the global cap kept for root and the daemon's uid, so an
 * admin can always connect to see and end a flood. */
#define TMEMD_ADMIN_RESERVE 4

struct tmemd_session;

/* Why tmemd refused a connection, a message, a ring or a put (admit.c:
 * names, counters; shown in tmem list and as tmemd_refusals_total). */
enum tmemd_refusal {
    TMEMD_R_SESSIONS_GLOBAL,  /* the global session cap */
    TMEMD_R_SESSIONS_UID,     /* the per-uid session cap */
    TMEMD_R_HELLO_TIMEOUT,    /* no whole HELLO in time after the accept */
    TMEMD_R_RECV_TIMEOUT,     /* a message begun and not finished in time */
    TMEMD_R_SEND_TIMEOUT,     /* a tenant that does not read its replies */
    TMEMD_R_BAD_MESSAGE,      /* malformed: length, opcode, flags */
    TMEMD_R_BAD_VERSION,      /* HELLO of another version or magic */
    TMEMD_R_BAD_NAME,         /* HELLO with an invalid tenant name */
    TMEMD_R_OUT_OF_ORDER,     /* a request before HELLO, a second HELLO */
    TMEMD_R_NOT_ADMIN,        /* an admin operation by a non-admin */
    TMEMD_R_CLIENT_CREATE,    /* the store could not make the client */
    TMEMD_R_RING_BAD_FD,      /* RING_SETUP without a read-write memfd */
    TMEMD_R_RING_BAD_SEALS,   /* ... a memfd not sealed as expected */
    TMEMD_R_RING_BAD_SIZE,    /* ... not exactly the ring's size */
    TMEMD_R_RING_BAD_ENTRIES, /* ... entries outside 1..1024 */
    TMEMD_R_RING_TWICE,       /* a second RING_SETUP */
    TMEMD_R_RING_BUDGET,      /* ... its memory refused by the budget */
    TMEMD_R_PERSISTENT_CAP,   /* a persistent put over the default cap */
    TMEMD_R_N
};

/* Admission limits (tmemd options; admit.c). */
struct tmemd_limits {
    int max_sessions;  /* at once, every uid (<= TMEMD_MAX_SESSIONS) */
    int max_per_uid;   /* at once, one uid (admins exempt); 0 = no cap */
    uint64_t hello_ns; /* from the accept to a whole HELLO */
    uint64_t recv_ns;  /* from a message's first byte to its last */
};

/* ---- tenants and the policy (tenant.c, policy.c) ------------------------ */

/* A cgroup path longer than this is not recorded (the tenant's cgroup is
 * then unknown: no cgroup rule matches it). */
#define TMEMD_CGROUP_MAX 512

/* What a tenant is known by: all three equal, one tenant. */
struct tmemd_ident {
    uid_t uid;                     /* SO_PEERCRED */
    char name[TMEM_NAME_MAX + 1];  /* given at HELLO; "" = none */
    char cgroup[TMEMD_CGROUP_MAX]; /* of the pid at HELLO; "" = unknown */
};

/* What a policy rule sets (bits of tmemd_settings.set). */
enum {
    TMEMD_SET_WEIGHT = 1u,
    TMEMD_SET_CAP = 2u,  /* the store's cap (tmem_store_set_cap) */
    TMEMD_SET_PCAP = 4u, /* the persistent cap, instead of the share */
    TMEMD_SET_CODEC = 8u,
};

/* The settings one rule gives a tenant. */
struct tmemd_settings {
    unsigned set; /* TMEMD_SET_* bits; 0: no rule applies */
    int line;     /* the rule's line in the file; 0: none */
    uint32_t weight;
    uint64_t cap, pcap; /* pages; 0 = none */
    tmem_compress codec;
};

struct tmemd_policy; /* policy.c: the parsed rules */

/* One tenant: every live session of one identity shares it (tmemd.lock). */
struct tmemd_tenant {
    struct tmemd_ident id;
    int sessions; /* linked sessions (tmemd.lock); freed at 0 */
    int grp;      /* share.c's scratch (share_lock and tmemd.lock) */
    /* share.c: the check of its default persistent cap, over all of its
     * sessions' persistent pages */
    _Atomic uint64_t pers_seen; /* its persistent pages at the last look */
    _Atomic uint64_t pers_puts; /* persistent puts since that look */
    atomic_bool cap_logged;     /* its first cap refusal was logged */
    struct tmemd_tenant *next;  /* tmemd.tenants */
};

/* workers.c: the ring workers (at most one per CPU) and the rings they
 * serve, picked by weighted virtual time. */
struct tmemd_worker {
    pthread_t thr;
    struct tmemd *d;
    int id;
    bool serving;  /* it holds a ring (rings.mu) */
    bool sleeping; /* it waits for a ring's word (rings.mu) */
};

struct tmemd_rings {
    pthread_mutex_t mu;          /* the set, each ring's state and vtime */
    pthread_cond_t given_back;   /* a stopping ring was given back */
    struct tmemd_session **r;    /* the rings set up */
    int n, cap;
    uint64_t vnow; /* the virtual time of the last pick */
    struct tmemd_worker *w;
    int nworkers;
    unsigned next_home; /* the home worker of the next ring set up */
    bool no_waitv; /* futex_waitv missing: sleepers poll */
    _Alignas(64) _Atomic uint32_t ctl; /* moved when a ring comes or goes */
    atomic_int stop;
};

/* A ring's state in the workers' set (workers.c). */
enum { TMEMD_RING_IDLE, TMEMD_RING_PARKED, TMEMD_RING_CLAIMED };

/* A batch being served (ring.c): it may park between entries. */
struct tmemd_batch {
    bool on;
    uint32_t seq, count; /* the sq_seq that announced it; its entries */
    uint32_t i;          /* the next entry to run */
    uint32_t ready;      /* entries known written */
    uint32_t seen;       /* parked: the sq_ready to wait past */
    uint64_t t0, t;      /* when it began; when the last entry ended */
};

struct tmemd {
    tmem_store *store;
    uid_t uid; /* the daemon's own uid: admin besides root */
    struct tmemd_limits lim;
    tmem_compress codec;         /* --compress: a codec no rule sets */
    pthread_mutex_t lock;        /* protects sessions, nsessions, tenants */
    pthread_mutex_t share_lock;  /* share.c: one update of the caps at once */
    pthread_mutex_t policy_lock; /* tenant.c: policy, applying it */
    pthread_cond_t drained;      /* signalled when a session ends */
    struct tmemd_session *sessions;
    int nsessions;
    struct tmemd_parked *parked; /* save.c: restored clients kept for
                                    their tenants */
    struct tmemd_tenant *tenants;
    /* tenant.c: the configuration file, whether it must exist (given
     * with --config), the policy in force (policy_lock) and the loads */
    const char *config;
    bool config_required;
    struct tmemd_policy *policy;
    atomic_ullong policy_loads, policy_failures;
    atomic_int stopping;
    /* keep.c: a stop is saving the tenants' pages; a session that ends
     * meanwhile leaves its client kept, not destroyed */
    atomic_int keeping;
    /* rings with a batch in the last SRV_IDLE_NS, and the CPUs we may run
     * on: each busy ring has its tenant busy too, so past ncpu / 2 of
     * them both ends of a ring sleep rather than spin (session.c) */
    _Alignas(64) atomic_int rings_busy;
    int ncpu;
    /* ring batches run, and those run crowded (metrics.c) */
    atomic_ullong ring_batches, ring_batches_crowded;
    struct tmemd_rings rings;  /* workers.c */
    /* rings with work passed over for one with less service (workers.c),
     * and batches parked for their entries (ring.c) */
    atomic_ullong sched_waits, ring_parks;
    /* admit.c: refusals by reason, and when each was last logged */
    atomic_ullong refusals[TMEMD_R_N];
    _Atomic uint64_t refusal_logged_ns[TMEMD_R_N];
};

/* Who a tenant is across connections and restarts (save.c, keep.c): its
 * uid, the name it gave (may be ""), and the resume token the daemon gave
 * its connection at HELLO. */
struct tmemd_who {
    char name[TMEM_NAME_MAX + 1];
    uid_t uid;
    uint64_t token[2];
};

struct tmemd_session {
    struct tmemd *d;
    int fd;
    pid_t pid;
    uid_t uid;
    gid_t gid;
    int id;                       /* store client id, -1 before hello */
    char name[TMEM_NAME_MAX + 1]; /* given at hello, "" if none */
    uint64_t token[2];            /* its resume token (given at hello) */
    struct tmemd_tenant *tenant;  /* from hello (tenant.c; tmemd.lock) */
    struct tmemd_settings pol;    /* the policy applied to its client
                                     (written under policy_lock and
                                     tmemd.lock) */
    tmem_client *client;
    bool admin;
    bool has_ring;
    uint64_t hello_by; /* before HELLO: when it must be in (ns) */
    /* share.c: the persistent cap its puts are checked against (its
     * tenant's share, or the policy's pcap) */
    _Atomic uint32_t pers_pools; /* bit p: pool p is persistent */
    _Atomic uint64_t pers_cap;   /* pages; 0 = none */
    bool cap_admin;  /* an admin set its cap: no default (share_lock) */
    tmem__ring ring; /* its size is charged to the client (has_ring) */
    atomic_int ring_stop;
    /* workers.c: its state and virtual time (pages served x 1024 /
     * weight), busy (counted in rings_busy: from a batch until IDLE_NS
     * without one), under rings.mu; ring.c: the last batch's sq_seq, when
     * it ended and the batch in progress, by the worker that claimed it */
    int ring_state;
    uint64_t vtime;
    bool ring_busy;
    bool ring_announced; /* its word is in srv_sleeping (workers.c) */
    int ring_home;       /* the worker that sleeps on its word */
    uint32_t ring_last;
    uint64_t ring_idle_from;
    struct tmemd_batch bt;
    struct tmemd_session *next, *prev; /* tmemd.sessions, under tmemd.lock */
    unsigned char req[TMEM_MSG_REQ_MAX];
    unsigned char page[TMEM_PAGE_SIZE];      /* GET reply / PUT bounce buffer */
    unsigned char ring_page[TMEM_PAGE_SIZE]; /* its ring's bounce (one
                                                 worker at a time) */
};

/* session.c */
/* Starts serving an accepted connection in its own thread.  Returns 0 or
 * a negative error (fd closed then). */
int tmemd_session_start(struct tmemd *d, int fd);
/* Shuts every session's socket down (they end on their own). */
void tmemd_sessions_shutdown(struct tmemd *d);
/* Writes the connections as a JSON array into a malloc'd string. */
char *tmemd_sessions_json(struct tmemd *d);
/* Copies a session's tenant figures out of its ring; false when it has
 * none (no ring, or the tenant never filled them).  Needs tmemd.lock. */
bool tmemd_session_tstat(const struct tmemd_session *s, tmem__tstat *out);
/* The name of a tstat block's kind as the JSON shows it: "tswap" or
 * "sqlite" (a block tmemd_session_tstat accepted). */
const char *tmemd_tstat_kind(const tmem__tstat *ts);

/* session.c: one page operation, shared by the socket and ring paths
 * (see there), and the latency each op is recorded under. */
int tmemd_page_op(tmem_client *c, uint8_t op, int32_t pool,
                  const uint64_t oid[3], uint32_t index, void *page,
                  tmem_packed *pk, tmem__page_where *w);
extern const uint8_t tmemd_op_lat[TMEM_OP_FLUSH_OBJECT + 1];

/* save.c */
/* SAVE and RESTORE (admin): the status, value and out_flags of the reply.
 * Takes the descriptor passed with the request (closes it). */
void tmemd_h_save(struct tmemd_session *s, const tmem__req *q, int *passfd,
                  int32_t *status, int64_t *value, uint32_t *out_flags);
/* The client kept for tenant w (by its resume token, else its name),
 * taken out of the list, or NULL; *pers: its persistent pools (bit p);
 * token: the kept one's token. */
tmem_client *tmemd_parked_take(struct tmemd *d, const struct tmemd_who *w,
                               uint32_t *pers, uint64_t token[2]);
/* Destroys the clients still kept (at exit, before the store goes). */
void tmemd_parked_free(struct tmemd *d);
/* Reads a save stream from fd into a new client kept for (name, uid):
 * 0 and its id (and *st, may be NULL), or an error (nothing kept). */
struct tmem_save_stats;
int tmemd_restore_park(struct tmemd *d, const struct tmemd_who *w, int fd,
                       int64_t *id, struct tmem_save_stats *st);
/* session.c: who session s's tenant is (uid, name, resume token). */
void tmemd_session_who(const struct tmemd_session *s, struct tmemd_who *w);
/* Whether a client is kept for exactly w: uid, name and resume token. */
bool tmemd_parked_same(struct tmemd *d, const struct tmemd_who *w);
/* A client to keep across a restart: a reference (tmem__client_put it),
 * and who its tenant is. */
struct tmemd_keep_item {
    tmem_client *client;
    struct tmemd_who who;
};
/* The kept clients, up to cap, as references (tmemd.lock). */
int tmemd_parked_list_locked(struct tmemd *d, struct tmemd_keep_item *out,
                             int cap);
/* Keeps client c for tenant w (tmemd.lock); false when one is kept for
 * it already or memory is short (c is then the caller's still). */
bool tmemd_park_locked(struct tmemd *d, const struct tmemd_who *w,
                       tmem_client *c);

/* keep.c: persistent pages across a graceful restart (--state-dir) */
/* At a stop: every tenant's persistent pages into dir.  Returns how many
 * tenants' pages could not be kept there. */
int tmemd_keep_save(struct tmemd *d, const char *dir);
/* At a start: the files in dir into clients kept for their tenants. */
void tmemd_keep_load(struct tmemd *d, const char *dir);

/* A file of kept pages that could not be taken in (rc: why): renamed
 * PATH.refused and logged, never dropped. */
void tmemd_set_aside(const char *path, int rc);
/* The start's line for what was taken in (when anything was): "WHAT N
 * persistent pages of M tenants from DIR (B bytes OF in S s, S s per GiB
 * of pages)". */
void tmemd_log_recovered(const char *what, const char *dir, uint64_t pages,
                         int clients, int refused, uint64_t bytes,
                         const char *of, uint64_t t0);

/* notify.c: "READY=1", "STOPPING=1" to systemd ($NOTIFY_SOCKET; nothing
 * when it is not set). */
void tmemd_notify(const char *state);

/* recover.c: persistent pages across a crash (--state-dir) */
/* Makes state_dir/arenas (out, cap bytes), where the store keeps private
 * arenas as files.  Returns 0 or -errno. */
int tmemd_arena_dir(const char *state_dir, char *out, size_t cap);
/* Writes whose client c is (w) into its arena, for recovery.  Returns 0
 * or an error of the store. */
int tmemd_tag_client(tmem_client *c, const struct tmemd_who *w);
/* At a start, after tmemd_keep_load: the arena files a crash left in dir
 * into clients kept for their tenants. */
void tmemd_recover_arenas(struct tmemd *d, const char *dir);

/* ring.c */
/* Maps the tenant's ring memory (fd: -1 when none came) and charges it to
 * the client: 0, or the status of a refusal, counted and logged with its
 * reason.  The tenant sees -EINVAL for any memory tmem__ring_attach
 * refuses, -EBUSY for a second ring, -ENOSPC when the budget has no room
 * for it (it then keeps its data operations on the socket). */
int tmemd_ring_attach(struct tmemd_session *s, uint64_t entries, int fd);
/* Unmaps the ring and gives its charge back. */
void tmemd_ring_release(struct tmemd_session *s);
/* Serves s's ring for the worker that claimed it: resumes its parked
 * batch or runs the next one, then (uncrowded) spins a little for the one
 * after.  *pages: the entries of a batch it finished.  Returns the ring's
 * state after: TMEMD_RING_IDLE or TMEMD_RING_PARKED. */
int tmemd_ring_serve(struct tmemd_session *s, uint32_t *pages);

/* workers.c */
void tmemd_rings_init(struct tmemd *d);
/* Starts the workers (1..64).  Returns how many started, or -errno. */
int tmemd_rings_start(struct tmemd *d, int workers);
/* Stops and joins them (every ring has left). */
void tmemd_rings_stop(struct tmemd *d);
/* Puts s's attached ring in the set: 0 or -ENOMEM. */
int tmemd_rings_add(struct tmemd *d, struct tmemd_session *s);
/* Takes it out once no worker serves it (sets ring_stop). */
void tmemd_rings_remove(struct tmemd *d, struct tmemd_session *s);
/* Whether an unclaimed ring has work: a new batch, or its parked batch's
 * next entry. */
bool tmemd_ring_has_work(struct tmemd_session *s);
/* For worker me (-1: any), the ring with work whose tenant had the least
 * service for its weight, of its home rings and those whose home worker
 * is serving another, or NULL; lowers *wake_in to when a busy ring turns
 * idle (rings.mu). */
struct tmemd_session *tmemd_rings_pick_locked(struct tmemd *d, int me,
                                              uint64_t now,
                                              uint64_t *wake_in);
/* Adds a serve's cost to s's virtual time (rings.mu). */
void tmemd_rings_charge_locked(struct tmemd_session *s, uint32_t pages,
                               uint64_t ns);

/* admit.c */
/* Parses one limit option (name without dashes: max-sessions,
 * max-sessions-per-uid, hello-timeout, recv-timeout).  Returns 0 or
 * -EINVAL. */
int tmemd_limit_parse(struct tmemd_limits *l, const char *name,
                      const char *val);
void tmemd_limits_default(struct tmemd_limits *l);
/* Whether a new session of uid may be linked: TMEMD_R_N when it may, else
 * the reason it may not.  Needs tmemd.lock. */
enum tmemd_refusal tmemd_admit_locked(const struct tmemd *d, uid_t uid,
                                      bool admin);
/* Counts a refusal; true when it should be logged (the first of its
 * reason in a second: a flood does not flood the log). */
bool tmemd_refuse(struct tmemd *d, enum tmemd_refusal why);
const char *tmemd_refusal_name(enum tmemd_refusal why);
const char *tmemd_refusal_help(enum tmemd_refusal why);
/* The refusals and limits as two JSON members ("admission":{...},
 * "refusals":{...}) into a malloc'd string. */
char *tmemd_admission_json(struct tmemd *d);

/* recv.c: reads one request into s->req with the deadlines of s->d->lim:
 * 0, -ETIMEDOUT (a deadline passed), -EMSGSIZE/-EBADMSG (bad header), or
 * -errno/-EPIPE.  The header is in *h once its 16 bytes are in. */
int tmemd_recv_request(struct tmemd_session *s, tmem__msg_hdr *h, int *passfd);

/* share.c: the default persistent cap (a tenant's weighted share of the
 * budget, over all of its sessions).  pool_new/pool_gone follow the
 * session's persistent pools; update recomputes every cap (after pools,
 * weights, rings or the policy changed); set_cap is the admin's SET_CAP
 * (it replaces the default); check runs before a persistent put: 0, or
 * -ENOSPC after removing any old page at that name (counted). */
void tmemd_share_pool_new(struct tmemd_session *s, int pool, uint32_t flags);
void tmemd_share_pool_gone(struct tmemd_session *s, int pool);
void tmemd_share_update(struct tmemd *d);
int tmemd_share_set_cap(struct tmemd *d, int client_id, uint64_t pages);
int tmemd_share_check(struct tmemd_session *s, int32_t pool,
                      const uint64_t oid[3], uint32_t index);

/* tenant.c: tenants and the operator's policy.
 * policy_start loads d->config at startup (0, or < 0: logged, do not
 * start); join runs at HELLO once s->client exists: it reads the peer's
 * cgroup, links s to its tenant and applies the policy to its client (the
 * line of the rule applied, 0 for none, or -ENOMEM); leave unlinks it (needs
 * tmemd.lock); reload re-reads the file (SIGHUP) and applies it to every live
 * session, or keeps the policy in force when the file is bad; policy_json is
 * "policy":{...} (malloc'd). read_cgroup: the cgroup a pid is known by (see
 * tmemd(8)), "" when it cannot be read. */
int tmemd_policy_start(struct tmemd *d);
int tmemd_tenant_join(struct tmemd_session *s);
void tmemd_tenant_leave_locked(struct tmemd_session *s);
void tmemd_policy_reload(struct tmemd *d);
char *tmemd_policy_json(struct tmemd *d);
void tmemd_read_cgroup(pid_t pid, char *out, size_t cap);

/* policy.c: the configuration file.  load reads path (a missing file is
 * an empty policy unless required), logs every bad line as "path:line:
 * key=value: reason" and counts them in *bad; returns 0 and sets *out, or
 * a negative error (-EINVAL: bad lines).  match gives the settings of the
 * rule that applies to a tenant: of those whose every selector matches,
 * the one with the most selectors, the first in the file among equals. */
int tmemd_policy_load(const char *path, bool required,
                      struct tmemd_policy **out, int *bad);
void tmemd_policy_free(struct tmemd_policy *p);
int tmemd_policy_rules(const struct tmemd_policy *p);
struct tmemd_settings tmemd_policy_match(const struct tmemd_policy *p,
                                         const struct tmemd_ident *id);

/* admin.c: the admin operations (SET_WEIGHT .. DESTROY_CLIENT): the
 * status, *value a 64-bit result where there is one; and the stats texts
 * (STATS_JSON, PROMETHEUS) into a malloc'd *out: length or error. */
int tmemd_admin_op(struct tmemd_session *s, const tmem__req *q, int64_t *value);
int tmemd_stats_text(struct tmemd_session *s, uint16_t op, char **out);

/* metrics.c: latency histograms, one per operation kind. */
enum tmemd_lat {
    LAT_PUT,
    LAT_GET,
    LAT_FLUSH_PAGE,
    LAT_FLUSH_OBJECT,
    LAT_POOL_NEW,
    LAT_POOL_DESTROY,
    LAT_BATCH,
    LAT_ADMIN,
    LAT_N
};
void tmemd_lat_record(enum tmemd_lat which, uint64_t ns);
/* Builds the Prometheus text of every store counter and histogram into a
 * malloc'd string; returns its length or a negative error. */
int tmemd_prometheus(struct tmemd *d, char **out);
/* Serves GET /metrics on addr ("ADDR:PORT").  Returns 0 or an error. */
int tmemd_metrics_start(struct tmemd *d, const char *addr);
void tmemd_metrics_stop(void);

/* main.c: one log line to stderr, with a timestamp. */
void tmemd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
