/*
 * libtmem, the tenant side: a connection to tmemd (or to an embedded store),
 * the raw tmem operations on it, and the guest APIs built on them --
 * cleancache (ephemeral pages, e.g. a file cache) and frontswap (persistent
 * pages, e.g. swapped-out anonymous memory).  docs/client.md is the guide.
 *
 * Connection:
 *   tmem_connect() talks to the daemon at the given socket, else
 *   $TMEM_SOCKET, else the default path (/run/tmem/tmemd.sock as root,
 *   $XDG_RUNTIME_DIR/tmem.sock otherwise).  When no daemon answers there
 *   (no socket file, connection refused, no access) it falls back to an
 *   embedded in-process store: a tmem_store of its own with one client, so a
 *   tenant works either way.  TMEM_EMBEDDED=1 forces the embedded store,
 *   TMEM_EMBEDDED=0 forbids the fallback (tmem_connect then fails).
 *   The embedded store's budget is $TMEM_EMBEDDED_BUDGET_MIB MiB, default
 *   25% of RAM like tmemd.  In the embedded store the process is its own
 *   administrator: a SHARED pool is authorised automatically.
 *
 * Return codes are the same on both paths (<tmem/store.h>, <tmem/errors.h>);
 * the daemon path adds transport errors: -EPIPE (daemon gone), -EPROTO.
 *
 * Threads: every call may be made from any thread; a connection serialises
 * its daemon traffic with one mutex (the embedded store is thread-safe by
 * itself).  A connection must not be used across fork(): the child makes
 * its own.
 *
 * Allocation: tmem_connect, tmem_cleancache_create and tmem_frontswap_create
 * / _init allocate.  The page operations (put, get, flush, batch, the
 * cleancache and frontswap page calls) allocate nothing in the client layer;
 * a put into the embedded store allocates inside the store.  tmem_conn_get
 * and tmem_frontswap_load on a persistent pool free nothing either, so a
 * single-page load can be designed to run in a SIGBUS handler provided the
 * interrupted thread cannot hold the same connection's mutex (use a
 * connection that thread never uses, or the embedded path, which takes no
 * client-layer lock).  tmem_frontswap_shrink allocates a 128 KiB buffer.
 */
#ifndef TMEM_CLIENT_H
#define TMEM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "errors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tmem_conn tmem_conn;

/* Connects (see above).  socket_or_null NULL = $TMEM_SOCKET or the default.
 * Returns 0 and sets *out, or a negative error (TMEM_ENOMEM; a transport
 * error when TMEM_EMBEDDED=0 and no daemon answers). */
int tmem_connect(const char *socket_or_null, tmem_conn **out);
/* Closes the connection; the daemon frees the client's private pools (the
 * embedded store is destroyed).  NULL is a no-op. */
void tmem_disconnect(tmem_conn *c);
/* True when the connection runs on an embedded in-process store. */
bool tmem_conn_is_embedded(const tmem_conn *c);
/* The client id the store gave this connection. */
int tmem_conn_client_id(const tmem_conn *c);

/* Raw tmem operations: results as the store functions of <tmem/store.h>. */
int tmem_conn_pool_new(tmem_conn *c, const uint64_t uuid[2], uint32_t flags,
                       uint32_t *out_flags);
int tmem_conn_pool_destroy(tmem_conn *c, int pool);
int tmem_conn_put(tmem_conn *c, int pool, const tmem_oid *oid, uint32_t index,
                  const void *page);
int tmem_conn_get(tmem_conn *c, int pool, const tmem_oid *oid, uint32_t index,
                  void *page);
int tmem_conn_flush_page(tmem_conn *c, int pool, const tmem_oid *oid,
                         uint32_t index);
int tmem_conn_flush_object(tmem_conn *c, int pool, const tmem_oid *oid);

/* Batches: many operations in as few daemon round trips as possible. */
enum tmem_op_code {
    TMEM_PUT = 1,
    TMEM_GET = 2,
    TMEM_FLUSH_PAGE = 3,
    TMEM_FLUSH_OBJECT = 4,
};

typedef struct tmem_op {
    uint8_t op; /* enum tmem_op_code */
    int32_t pool;
    tmem_oid oid;
    uint32_t index;
    void *page;     /* TMEM_PAGE_SIZE bytes: source (PUT), dest (GET) */
    int32_t result; /* OUT: the operation's store result */
} tmem_op;

/* Runs ops[0..n-1] in order; each result lands in ops[i].result.  Returns
 * 0, or a transport error (the results are then undefined). */
int tmem_conn_batch(tmem_conn *c, tmem_op *ops, size_t n);

/* ---- cleancache: ephemeral pages --------------------------------------- */

typedef struct tmem_cleancache tmem_cleancache;

typedef struct tmem_cleancache_stats {
    uint64_t succ_gets;   /* get_page found the page */
    uint64_t failed_gets; /* get_page missed (or failed) */
    uint64_t puts;        /* put_page calls */
    uint64_t put_errors;  /* puts the store refused (counted, not returned) */
    uint64_t invalidates; /* invalidate_page and invalidate_inode calls */
} tmem_cleancache_stats;

/* A cleancache front end on conn (which must outlive it).  Returns 0 and
 * sets *out, or TMEM_ENOMEM. */
int tmem_cleancache_create(tmem_conn *conn, tmem_cleancache **out);
/* Frees the handle (the pools stay until invalidate_fs or disconnect).
 * NULL is a no-op. */
void tmem_cleancache_destroy(tmem_cleancache *cc);
/* A private ephemeral pool for one file system.  Returns the pool id (>= 0)
 * or a negative error; calls on a negative pool id are no-ops (misses). */
int tmem_cleancache_init_fs(tmem_cleancache *cc);
/* A shared ephemeral pool joined by uuid (the daemon makes a private one
 * when the client is not authorised for uuid; *out_shared says which). */
int tmem_cleancache_init_shared_fs(tmem_cleancache *cc, const uint64_t uuid[2],
                                   bool *out_shared);
/* Reads page (file key, page offset).  Returns 1 found, 0 miss, negative
 * error.  Private pools: the page leaves the cache when read. */
int tmem_cleancache_get_page(tmem_cleancache *cc, int pool, const tmem_oid *key,
                             uint32_t index, void *page);
/* Offers a page: always "succeeds" for the caller; refusals are counted. */
void tmem_cleancache_put_page(tmem_cleancache *cc, int pool,
                              const tmem_oid *key, uint32_t index,
                              const void *page);
void tmem_cleancache_invalidate_page(tmem_cleancache *cc, int pool,
                                     const tmem_oid *key, uint32_t index);
void tmem_cleancache_invalidate_inode(tmem_cleancache *cc, int pool,
                                      const tmem_oid *key);
/* Destroys the pool (the file system is unmounted). */
void tmem_cleancache_invalidate_fs(tmem_cleancache *cc, int pool);
void tmem_cleancache_stats_get(const tmem_cleancache *cc,
                               tmem_cleancache_stats *out);

/* ---- frontswap: persistent pages ---------------------------------------- */

/* Swap types 0..TMEM_FRONTSWAP_MAX_TYPES-1, each one persistent pool (so
 * at most TMEM_MAX_POOLS minus the connection's other pools), each holding
 * offsets 0..npages-1 with npages <= TMEM_FRONTSWAP_MAX_PAGES. */
#define TMEM_FRONTSWAP_MAX_TYPES 16
#define TMEM_FRONTSWAP_MAX_PAGES (1ull << 32)

typedef struct tmem_frontswap tmem_frontswap;

typedef struct tmem_frontswap_stats {
    uint64_t succ_stores;   /* stores accepted */
    uint64_t failed_stores; /* stores refused: the caller kept the page */
    uint64_t loads;         /* loads that found the page */
    uint64_t failed_loads;  /* loads that missed or failed */
    uint64_t invalidates;   /* pages invalidated (page calls, areas, shrink) */
    uint64_t shrunk;        /* pages handed back by shrink */
} tmem_frontswap_stats;

/* Receives one page brought back by shrink; must keep it (copy it out) and
 * return 0, or return non-zero to stop: that page then stays stored. */
typedef int (*tmem_frontswap_shrink_fn)(void *arg, unsigned type,
                                        uint64_t offset, const void *page);

/* A frontswap front end on conn (which must outlive it).  Returns 0 and
 * sets *out, or TMEM_ENOMEM. */
int tmem_frontswap_create(tmem_conn *conn, tmem_frontswap **out);
/* Destroys every pool it made and frees it.  NULL is a no-op. */
void tmem_frontswap_destroy(tmem_frontswap *fs);
/* Sets up swap type `type` with npages offsets (a swapon): creates its
 * persistent pool and the bitmap that keeps curr_pages exact.  A type that
 * is already set up is emptied first.  Returns 0, TMEM_EINVAL (type or
 * npages out of range), TMEM_ENOMEM, or the pool creation error. */
int tmem_frontswap_init(tmem_frontswap *fs, unsigned type, uint64_t npages);
/* Stores a page.  Returns 0: accepted and guaranteed until invalidated;
 * negative: refused, the caller must keep the page (an older copy at that
 * offset is gone either way). */
int tmem_frontswap_store(tmem_frontswap *fs, unsigned type, uint64_t offset,
                         const void *page);
/* Loads a page (non-exclusive: it stays stored).  Returns 1 found, 0 not
 * stored, negative error. */
int tmem_frontswap_load(tmem_frontswap *fs, unsigned type, uint64_t offset,
                        void *page);
/* Batched store/load of n pages of one type.  results[i] receives what
 * store / load would return for page i.  Returns the pages accepted
 * (store) or found (load), or a negative transport error (then every
 * results[i] is that error, and for stores the caller keeps every page). */
int64_t tmem_frontswap_store_batch(tmem_frontswap *fs, unsigned type,
                                   const uint64_t *offsets,
                                   const void *const *pages, size_t n,
                                   int *results);
int64_t tmem_frontswap_load_batch(tmem_frontswap *fs, unsigned type,
                                  const uint64_t *offsets, void *const *pages,
                                  size_t n, int *results);
/* Loads a page without using the connection: from the tenant's own
 * read-only mapping of its private arena (docs/layout.md), or from the
 * fill word kept when a same-filled page was stored.  Takes no lock,
 * allocates nothing and makes no system call, so it may run in a signal
 * handler, and in a child after fork() (the mapping is inherited; the
 * connection must not be used there).  Returns 1 found, 0 not stored,
 * TMEM_EAGAIN when the page is stored but cannot be read this way (use
 * tmem_frontswap_load), or TMEM_EINVAL. */
int tmem_frontswap_load_direct(tmem_frontswap *fs, unsigned type,
                               uint64_t offset, void *page);
/* Forgets one page.  Returns 1 removed, 0 none, negative error. */
int tmem_frontswap_invalidate_page(tmem_frontswap *fs, unsigned type,
                                   uint64_t offset);
/* Forgets n pages of one type in as few round trips as possible.
 * results[i] (may be NULL) receives what invalidate_page would return.
 * Returns the pages removed, or a negative transport error. */
int64_t tmem_frontswap_invalidate_batch(tmem_frontswap *fs, unsigned type,
                                        const uint64_t *offsets, size_t n,
                                        int *results);
/* Forgets a whole type (a swapoff): destroys its pool.  Returns 0 or an
 * error. */
int tmem_frontswap_invalidate_area(tmem_frontswap *fs, unsigned type);
/* Pages held now across all types: exact. */
uint64_t tmem_frontswap_curr_pages(const tmem_frontswap *fs);
/* Brings pages back in ascending (type, offset) order, handing each to cb
 * and then invalidating it, until at most target pages remain or cb
 * refuses one (which stays stored).  Returns the pages brought back (>= 0),
 * or a negative error when none could be brought back because of one. */
int64_t tmem_frontswap_shrink(tmem_frontswap *fs, uint64_t target,
                              tmem_frontswap_shrink_fn cb, void *arg);
void tmem_frontswap_stats_get(const tmem_frontswap *fs,
                              tmem_frontswap_stats *out);

#ifdef __cplusplus
}
#endif
#endif
