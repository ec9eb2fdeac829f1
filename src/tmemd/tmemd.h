/*
 * tmemd internals: the daemon state, one session per tenant connection,
 * latency histograms and the Prometheus exporter.
 *
 * Threads: the main thread accepts connections and handles signals; each
 * session has a socket thread (requests/replies) and, once the tenant set
 * up its ring, a ring thread; libmicrohttpd runs its own thread.
 *
 * Lock order: tmemd.lock (the session list) is the only daemon lock and is
 * never held across a socket write, a store call or a join.  The store has
 * its own locks (store.h: thread-safe), taken after tmemd.lock only by the
 * stats JSON splice (which copies session fields first, then calls the
 * store without tmemd.lock).
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

#define TMEMD_MAX_SESSIONS 1024

struct tmemd_session;

struct tmemd {
    tmem_store *store;
    uid_t uid;              /* the daemon's own uid: admin besides root */
    pthread_mutex_t lock;   /* protects sessions, nsessions */
    pthread_cond_t drained; /* signalled when a session ends */
    struct tmemd_session *sessions;
    int nsessions;
    atomic_int stopping;
    /* rings with a batch in the last SRV_IDLE_NS, and the CPUs we may run
     * on: each busy ring has its tenant busy too, so past ncpu / 2 of
     * them both ends of a ring sleep rather than spin (session.c) */
    _Alignas(64) atomic_int rings_busy;
    int ncpu;
    /* ring batches run, and those run crowded (metrics.c) */
    atomic_ullong ring_batches, ring_batches_crowded;
};

struct tmemd_session {
    struct tmemd *d;
    int fd;
    pid_t pid;
    uid_t uid;
    gid_t gid;
    int id; /* store client id, -1 before hello */
    char name[TMEM_NAME_MAX + 1]; /* given at hello, "" if none */
    tmem_client *client;
    bool admin;
    bool has_ring;
    tmem__ring ring;
    pthread_t ring_thr;
    uint32_t ring_seq0; /* sq_seq when the ring was set up */
    atomic_int ring_stop;
    struct tmemd_session *next, *prev; /* tmemd.sessions, under tmemd.lock */
    unsigned char req[TMEM_MSG_REQ_MAX];
    unsigned char page[TMEM_PAGE_SIZE];      /* GET reply / PUT bounce buffer */
    unsigned char ring_page[TMEM_PAGE_SIZE]; /* ring thread's bounce */
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
