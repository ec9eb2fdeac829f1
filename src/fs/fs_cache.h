/*
 * tmemfs's second-level page cache: the pages of backing files in a
 * private ephemeral tmem pool (cleancache), checked before the backing
 * file and filled from it (docs/tmemfs.md).  No FUSE here: the file
 * system (fs_ops.c) calls these with the backing file's descriptor.
 *
 * A page's key is (pool, oid = {st_dev, st_ino, generation}, page
 * number).  Each backing inode seen has a node: its generation (from one
 * counter, never reused in the process, so a dropped node or a reused
 * inode number can never name old pages), and the stamp (size, mtime,
 * ctime, type) of the file when that generation began.  A stamp that
 * changed (a writer outside the mount, a truncate) starts a new
 * generation: every page of the old one is unreachable at once, and
 * flushed.  Writes through the mount flush the pages they touch.
 *
 * Thread-safe: any call from any FUSE thread.
 */
#ifndef TMEM_FS_CACHE_H
#define TMEM_FS_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <tmem/client.h>

#define FS_PAGE 4096u

typedef struct fs_cache fs_cache;
typedef struct fs_node fs_node;

typedef struct fs_cache_stats {
    uint64_t gets;          /* pages looked for in tmem */
    uint64_t hits;          /* ... and found */
    uint64_t puts;          /* pages offered (after a miss or a hit) */
    uint64_t put_errors;    /* offers the store refused (a full pool) */
    uint64_t invalidations; /* pages and inodes flushed */
    uint64_t stale;         /* reads whose file changed while read, or
                               too recently: their pages were not put */
    uint64_t backing_bytes; /* bytes read from backing files */
    uint64_t nodes;         /* inodes known now */
} fs_cache_stats;

/* A cache on conn (which must outlive it), with a private ephemeral pool
 * of its own.  A file changed from outside is not cached until settle_ms
 * after the change (a write in progress may be half read: fs_cache.c).
 * Returns 0 and sets *out, or a negative tmem error (the pool could not
 * be made: the caller says why). */
int fs_cache_create(tmem_conn *conn, unsigned settle_ms, fs_cache **out);
/* Destroys the pool and frees every node.  NULL is a no-op. */
void fs_cache_destroy(fs_cache *c);

/* The node of the backing file open at fd, pinned until fs_cache_close.
 * *keep (OUT) is true when the file is unchanged since the cache last saw
 * it, so pages the kernel holds for it are still good (FUSE keep_cache).
 * trunc: the open truncated it.  Returns 0 or -errno. */
int fs_cache_open(fs_cache *c, int fd, bool trunc, fs_node **out, bool *keep);
void fs_cache_close(fs_cache *c, fs_node *n);

/* Reads up to size bytes at off from the file open at fd (node n) into
 * buf: each page from tmem when there, else from fd and then offered to
 * tmem; never a byte past the file's end.  Returns the bytes read or
 * -errno. */
ssize_t fs_cache_read(fs_cache *c, fs_node *n, int fd, char *buf, size_t size,
                      off_t off);
/* After len bytes were written at off through fd: flushes those pages
 * (many: the whole inode) and takes the file's new stamp. */
void fs_cache_wrote(fs_cache *c, fs_node *n, int fd, off_t off, size_t len);
/* The inode (dev, ino) changed as a whole (truncated, punched, replaced
 * or removed): a new generation.  now is its stamp after the change, or
 * NULL when it is gone (its node is then dropped once unpinned). */
void fs_cache_invalidate(fs_cache *c, dev_t dev, ino_t ino,
                         const struct stat *now);

void fs_cache_stats_get(fs_cache *c, fs_cache_stats *out);
/* The stats as "name value" lines into buf (cap bytes, NUL-terminated);
 * returns the length (as snprintf). */
int fs_cache_stats_format(fs_cache *c, char *buf, size_t cap);

#endif
