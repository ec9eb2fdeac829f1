/*
 * The inodes tmemfs's cache knows (fs_cache.h): a hash table of nodes
 * keyed by (st_dev, st_ino), each pinned while a file handle or a call
 * uses it.  The table holds at most max nodes: past that, an unpinned
 * node is unlinked and handed back to the caller, who flushes its pages
 * and frees it.
 *
 * Locks: the table's lock guards the chains, count, refs and gone; each
 * node's own lock guards its generation, write count and stamp (and is
 * held across the tmem calls that must not pass an invalidation).  Order:
 * never take the table's lock while holding a node's.
 */
#ifndef TMEM_FS_NODE_H
#define TMEM_FS_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* What of a backing file's stat says its bytes may have changed. */
struct fs_stamp {
    off_t size;
    struct timespec mtime, ctime;
    mode_t type;
};

struct fs_node {
    struct fs_node *next; /* chain (table lock) */
    dev_t dev;
    ino_t ino;
    int refs;  /* pins (table lock) */
    bool gone; /* the inode was removed: drop once unpinned (table lock) */
    pthread_mutex_t lock;
    uint64_t gen;        /* the oid's third word: pages of this version */
    uint64_t wseq;       /* writes through the mount so far */
    struct fs_stamp rec; /* the file when gen began or was last written */
    bool ours;           /* rec was taken after our own write returned */
};

typedef struct fs_table {
    pthread_mutex_t lock;
    struct fs_node **chains;
    size_t nchains, count, max, hand;
} fs_table;

/* An empty table of at most max nodes.  Returns 0 or -ENOMEM. */
int fs_table_init(fs_table *t, size_t max);
/* Frees every node (none may be pinned). */
void fs_table_fini(fs_table *t);

/* The node of (dev, ino), pinned; made (gen 0, stamp zero, *made set)
 * when absent and make is true, else NULL.  When the table was full,
 * *evicted (OUT) receives an unlinked node to flush and free (or NULL).
 * NULL also when out of memory. */
struct fs_node *fs_table_pin(fs_table *t, dev_t dev, ino_t ino, bool make,
                             bool *made, struct fs_node **evicted);
/* Unpins n.  Returns true when n is gone and no longer pinned: it is
 * unlinked, and the caller flushes and frees it. */
bool fs_table_unpin(fs_table *t, struct fs_node *n);
/* Marks n gone (dropped at its last unpin). */
void fs_table_mark_gone(fs_table *t, struct fs_node *n);
size_t fs_table_count(fs_table *t);
void fs_node_free(struct fs_node *n);

/* The stamp of st. */
struct fs_stamp fs_stamp_of(const struct stat *st);
bool fs_stamp_eq(const struct fs_stamp *a, const struct fs_stamp *b);

#endif
