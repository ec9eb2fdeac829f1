/*
 * Internal interface of the SQLite extension (src/sqlite): the tmem
 * tenant (tenant.c), database file records (dbfile.c), the page cache and
 * its buffer registry (pcache.c, pgreg.c), the VFS (vfs.c) and the
 * balloon thread (balloon.c).  docs/sqlite.md has the design.
 *
 * Built twice: with SQLITE_CORE for programs that link it (sqlite3_*
 * are the library's own functions), and without for the loadable
 * extension, where sqlite3ext.h turns every sqlite3_* call into one
 * through the routines table the loading SQLite hands to ext.c.
 */
#ifndef TMEM_SQLITE_TSQ_H
#define TMEM_SQLITE_TSQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include <tmem/client.h>

#include "tmem_sqlite.h"

#define TSQ_PAGE 4096
#define TSQ_VFS_NAME "tmem"

/* ---- the tenant: one connection to tmem per process (tenant.c) ------- */

enum { TSQ_OFF = 0, TSQ_VFS_ONLY = 1, TSQ_FULL = 2 };

struct tsq_counters {
    _Atomic uint64_t gets, hits, puts, stale, inval_pages, inval_files,
        resets, passthrough, file_read_bytes, stored;
};

struct tsq_tenant {
    _Atomic int mode;      /* TSQ_*; TSQ_OFF in a forked child */
    tmem_conn *conn;
    tmem_cleancache *cc;
    int pool;
    struct tsq_counters n;
};
extern struct tsq_tenant tsq;

/* Connects (socket may be NULL) and makes the private pool.  Returns 0 or
 * a negative error with a sentence in err. */
int tsq_tenant_open(const char *socket, int mode, char *err, size_t cap);
static inline bool tsq_on(void)
{
    return atomic_load_explicit(&tsq.mode, memory_order_relaxed) != TSQ_OFF;
}
static inline void tsq_bump(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}
/* Writes the figures into the daemon's tenant block (no-op embedded). */
void tsq_tenant_publish(const tmem_sqlite_stats *s);

/* ---- database files (dbfile.c) ---------------------------------------- */

/* One per (device, inode) a main database was opened from; never freed.
 * lock guards every field below it and every cleancache call for the
 * file, so that what the bitmap says is what cleancache holds. */
struct tsq_file {
    dev_t dev;
    ino_t ino;
    struct tsq_file *next;
    pthread_mutex_t lock;
    uint64_t epoch;        /* moves whenever the file's pages are dropped */
    bool cacheable;        /* 4 KiB pages, rollback journal (not WAL) */
    bool have_sig;
    unsigned char sig[16]; /* header bytes that change with each commit */
    int openers;
    uint64_t *bits[1024];  /* pages put (may be in cleancache), 32 Ki each */
};
#define TSQ_MAX_PGNO (1024u * 32768u)

struct tsq_file *tsq_file_open(dev_t dev, ino_t ino);
void tsq_file_close(struct tsq_file *f);
/* The header as read under a new SHARED lock (n bytes, n < 100: empty
 * file): drops the file's pages when it changed since last seen. */
void tsq_file_check(struct tsq_file *f, const unsigned char *hdr, int n);
/* A write of n bytes at off is about to be made: drops its pages.
 * Returns the epoch the written content belongs to. */
uint64_t tsq_file_before_write(struct tsq_file *f, const void *buf, int n,
                           int64_t off);
/* Drops every page of the file (truncate, failed write). */
void tsq_file_drop(struct tsq_file *f);
/* Looks up page pgno; returns 1 (page filled) or 0, and the epoch the
 * page's content belongs to in *epoch.  keep: put it straight back. */
int tsq_file_get(struct tsq_file *f, uint32_t pgno, void *page,
                 uint64_t *epoch, bool keep);
/* Puts page pgno read or written at epoch; skipped when stale. */
void tsq_file_put(struct tsq_file *f, uint64_t epoch, uint32_t pgno,
                  const void *page);
bool tsq_file_cacheable(struct tsq_file *f);

/* ---- the page cache (pcache.c) and its registry (pgreg.c) ------------- */

struct tsq_page;
const sqlite3_pcache_methods2 *tsq_pcache_methods(void);
/* The VFS read or wrote pgno of f into buf at epoch: when buf is a page
 * of the page cache holding pgno, it is tagged so that its eviction puts
 * it into cleancache. */
void tsq_pcache_tag(void *buf, struct tsq_file *f, uint64_t epoch,
                    uint32_t pgno);

void tsq_pgreg_add(void *buf, struct tsq_page *p);
void tsq_pgreg_del(void *buf);
struct tsq_page *tsq_pgreg_find_locked(void *buf);
void tsq_pgreg_lock(void);
void tsq_pgreg_unlock(void);

/* Figures of all page caches together, for the balloon. */
struct tsq_cache_totals {
    _Atomic uint64_t pages, pinned, max, reused;
    _Atomic uint64_t target; /* 0: no balloon target */
    _Atomic uint32_t epoch;  /* the interval, for "reused" */
};
extern struct tsq_cache_totals tsq_caches;

/* ---- the VFS (vfs.c) ---------------------------------------------------- */

/* Registers the VFS "tmem" over the default one, as the new default.
 * Returns an SQLite result code. */
int tsq_vfs_register(void);

/* Adds the SQL function tmem_sqlite_stats() to db (ext.c).  Returns an
 * SQLite result code. */
int tsq_add_functions(sqlite3 *db);

/* ---- the balloon thread (balloon.c) ------------------------------------ */

struct tsq_balloon_cfg {
    bool on;
    long interval_ms;
    int min_usable_mb;
};
/* Starts the thread that runs the controller and reports every
 * interval.  Returns 0 or a negative errno. */
int tsq_balloon_start(const struct tsq_balloon_cfg *cfg);
/* One controller step on the figures given (pure but for b): the new
 * capacity in pages, never below pinned + reserve nor above max. */
struct tmem_balloon;
uint64_t tsq_balloon_step(struct tmem_balloon *b, uint64_t cur, uint64_t pinned,
                          uint64_t seen, uint64_t max);

#endif
