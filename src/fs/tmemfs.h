/*
 * tmemfs, `tmem fs BACKING_DIR MOUNTPOINT` (docs/tmemfs.md): a FUSE
 * pass-through file system over a backing directory whose reads go
 * through fs_cache.h.  fs_ops.c owns the FUSE operations, fs_cmd.c the
 * command (options, checks, the mount and its loop).
 */
#ifndef TMEM_FS_TMEMFS_H
#define TMEM_FS_TMEMFS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <stdbool.h>

#include "fs_cache.h"

/* The name of the virtual extended attribute of the mount's root that
 * reads as the cache's counters (fs_cache_stats_format). */
#define TMEMFS_STATS_XATTR "user.tmemfs.stats"

/* The mounted file system: fuse's private_data. */
struct tmemfs {
    int dirfd; /* the backing directory, opened before mounting */
    fs_cache *cache;
    double timeout; /* attribute and entry timeout (s) */
    bool chown_new; /* root serving others: new entries are the caller's */
    bool direct_io; /* no kernel page cache for the files */
};

/* The operations (fs_ops.c). */
const struct fuse_operations *tmemfs_operations(void);

#endif
