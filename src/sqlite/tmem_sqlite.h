/*
 * tmem for SQLite: a page cache (sqlite3_pcache_methods2) and a VFS that
 * keep SQLite's clean pages in tmem's cleancache (docs/sqlite.md).
 *
 * Linked into a program: call tmem_sqlite_install() before anything else
 * of SQLite (sqlite3_initialize, sqlite3_open): full mode, the page cache
 * and the VFS.  Loaded into a running sqlite3 (`.load libtmem_sqlite`):
 * the VFS alone (VFS-only mode); see sqlite3_tmemsqlite_init in ext.c.
 */
#ifndef TMEM_SQLITE_H
#define TMEM_SQLITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tmem_sqlite_options {
    const char *socket; /* NULL: $TMEM_SOCKET, else the default, else an
                           embedded store (tmem_connect's rules) */
    int pcache;         /* 1: full mode (page cache + VFS), 0: VFS only */
    int balloon;        /* 1 on, 0 off, -1: $TMEM_SQLITE_BALLOON (on) */
    long interval_ms;   /* balloon/report interval; 0: env or 1000 */
    int optional;       /* 1: no tmem is not an error (plain SQLite);
                           -1: $TMEM_SQLITE_OPTIONAL (off) */
    int min_usable_mb;  /* balloon floor; -1: env or 1 (0: SPEC's floor) */
} tmem_sqlite_options;

typedef struct tmem_sqlite_stats {
    int mode;                 /* 0 off, 1 VFS only, 2 full */
    int embedded;             /* 1: an in-process store, no daemon */
    uint64_t cc_gets;         /* cleancache lookups sent */
    uint64_t cc_hits;         /* ... that found the page */
    uint64_t cc_puts;         /* pages put */
    uint64_t cc_put_errors;   /* puts the store refused */
    uint64_t stale_skipped;   /* evicted pages not put: the file changed */
    uint64_t inval_pages;     /* pages invalidated (writes) */
    uint64_t inval_files;     /* whole files invalidated */
    uint64_t resets;          /* another writer seen (change counter) */
    uint64_t passthrough;     /* reads not through tmem (page size, WAL) */
    uint64_t file_read_bytes; /* bytes read from main database files */
    uint64_t stored;          /* pages in cleancache (estimate) */
    uint64_t cache_pages;     /* pages in the page caches (full mode) */
    uint64_t pinned_pages;    /* ... of which pinned */
    uint64_t max_pages;       /* configured cache sizes, summed */
    uint64_t target_pages;    /* the balloon's target (max when off) */
} tmem_sqlite_stats;

/* Defaults: socket NULL, pcache 1, everything else from the environment. */
void tmem_sqlite_options_init(tmem_sqlite_options *o);

/* Connects to tmem and installs the page cache (pcache = 1, before
 * sqlite3_initialize) and the VFS "tmem" as the default.  Returns 0 when
 * tmem is in use, 1 when it is not and opt->optional allowed that (SQLite
 * runs plain), or a negative errno with a sentence in err[cap]. */
int tmem_sqlite_install(const tmem_sqlite_options *opt, char *err,
                        size_t cap);

void tmem_sqlite_stats_get(tmem_sqlite_stats *out);
/* The figures as one JSON object into buf[cap].  Returns its length. */
int tmem_sqlite_stats_json(char *buf, size_t cap);

#endif
