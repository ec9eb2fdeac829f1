/*
 * The VFS "tmem": the default VFS with cleancache in front of the main
 * database files (journals, WAL files and temporary files pass through).
 *
 *  - xOpen of a main database: its record (dbfile.c) by (device, inode).
 *  - xLock to SHARED from no lock: the header is read from the file and
 *    compared with what was last seen; another writer's commit moved it,
 *    and the file's pages are dropped before SQLite reads any page.
 *  - xRead of one 4 KiB page: cleancache first.  Full mode: a hit takes
 *    the page out (SQLite's cache holds it now), and the page buffer is
 *    tagged so that its eviction puts it back.  VFS-only mode (loaded
 *    into an initialised sqlite3: no page cache of ours, so no eviction
 *    is seen): a page read from the file is put, a hit is put back.
 *  - xWrite drops the pages written (and tags the buffer, full mode);
 *    xTruncate and a failed write drop the whole file.
 *  - I/O methods version 2: no memory-mapped reads (they would bypass
 *    both the page cache and cleancache).
 */
#include "tsq.h"

#include <string.h>
#include <sys/stat.h>

struct tfile {
    sqlite3_file base;
    struct tsq_file *rec; /* main database, else NULL */
    int lock;
    sqlite3_file real[]; /* the default VFS's file, szOsFile bytes */
};

static sqlite3_vfs *under;
static sqlite3_vfs tvfs;

#define REAL(f) (((struct tfile *)(f))->real)
#define RM(f) (REAL(f)->pMethods)

static int t_close(sqlite3_file *f)
{
    struct tfile *t = (struct tfile *)f;
    int rc = RM(f)->xClose(REAL(f));
    if (t->rec)
        tsq_file_close(t->rec);
    return rc;
}

static bool whole_page(const struct tfile *t, int n, sqlite3_int64 off)
{
    return t->rec && n == TSQ_PAGE && off % TSQ_PAGE == 0 &&
           off / TSQ_PAGE + 1 < TSQ_MAX_PGNO;
}

static int read_file(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    tsq_bump(&tsq.n.file_read_bytes, (uint64_t)n);
    return RM(f)->xRead(REAL(f), buf, n, off);
}

static int t_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    struct tfile *t = (struct tfile *)f;
    if (!t->rec)
        return RM(f)->xRead(REAL(f), buf, n, off);
    if (!whole_page(t, n, off) || !tsq_file_cacheable(t->rec)) {
        if (n >= 512) /* a page, of another size or of a WAL database */
            tsq_bump(&tsq.n.passthrough, 1);
        return read_file(f, buf, n, off);
    }
    bool full = atomic_load(&tsq.mode) == TSQ_FULL;
    uint32_t pgno = (uint32_t)(off / TSQ_PAGE) + 1;
    uint64_t epoch;
    int rc = SQLITE_OK;
    if (!tsq_file_get(t->rec, pgno, buf, &epoch, !full)) {
        rc = read_file(f, buf, n, off);
        if (rc == SQLITE_OK && !full)
            tsq_file_put(t->rec, epoch, pgno, buf);
    }
    if (rc == SQLITE_OK && full)
        tsq_pcache_tag(buf, t->rec, epoch, pgno);
    return rc;
}

static int t_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    struct tfile *t = (struct tfile *)f;
    if (!t->rec)
        return RM(f)->xWrite(REAL(f), buf, n, off);
    uint64_t epoch = tsq_file_before_write(t->rec, buf, n, off);
    int rc = RM(f)->xWrite(REAL(f), buf, n, off);
    if (rc != SQLITE_OK)
        tsq_file_drop(t->rec); /* the file holds we know not what */
    else if (whole_page(t, n, off) && atomic_load(&tsq.mode) == TSQ_FULL)
        tsq_pcache_tag((void *)buf, t->rec, epoch,
                       (uint32_t)(off / TSQ_PAGE) + 1);
    return rc;
}

static int t_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct tfile *t = (struct tfile *)f;
    if (t->rec)
        tsq_file_drop(t->rec);
    return RM(f)->xTruncate(REAL(f), size);
}

static int t_sync(sqlite3_file *f, int flags)
{
    return RM(f)->xSync(REAL(f), flags);
}

static int t_size(sqlite3_file *f, sqlite3_int64 *out)
{
    return RM(f)->xFileSize(REAL(f), out);
}

/* Under a new SHARED lock: no one can commit until it goes, so what the
 * header says now holds for every page read under it. */
static void check_header(struct tfile *t)
{
    unsigned char hdr[100];
    int rc = RM(&t->base)->xRead(REAL(&t->base), hdr, sizeof hdr, 0);
    tsq_bump(&tsq.n.file_read_bytes, sizeof hdr);
    if (rc == SQLITE_OK)
        tsq_file_check(t->rec, hdr, sizeof hdr);
    else
        tsq_file_check(t->rec, hdr, 0); /* short or failed: not cacheable */
}

static int t_lock(sqlite3_file *f, int level)
{
    struct tfile *t = (struct tfile *)f;
    int rc = RM(f)->xLock(REAL(f), level);
    if (rc == SQLITE_OK) {
        if (t->rec && t->lock == SQLITE_LOCK_NONE && level >= SQLITE_LOCK_SHARED)
            check_header(t);
        t->lock = level;
    }
    return rc;
}

static int t_unlock(sqlite3_file *f, int level)
{
    struct tfile *t = (struct tfile *)f;
    int rc = RM(f)->xUnlock(REAL(f), level);
    if (rc == SQLITE_OK)
        t->lock = level;
    return rc;
}

static int t_check_reserved(sqlite3_file *f, int *out)
{
    return RM(f)->xCheckReservedLock(REAL(f), out);
}

static int t_fcntl(sqlite3_file *f, int op, void *arg)
{
    if (op == SQLITE_FCNTL_VFSNAME && arg) {
        int rc = RM(f)->xFileControl(REAL(f), op, arg);
        char **name = arg;
        char *n = sqlite3_mprintf("tmem/%z", rc == SQLITE_OK ? *name : NULL);
        *name = n;
        return n ? SQLITE_OK : SQLITE_NOMEM;
    }
    return RM(f)->xFileControl(REAL(f), op, arg);
}

static int t_sector(sqlite3_file *f)
{
    return RM(f)->xSectorSize(REAL(f));
}

static int t_devchar(sqlite3_file *f)
{
    return RM(f)->xDeviceCharacteristics(REAL(f));
}

static int t_shm_map(sqlite3_file *f, int pg, int sz, int extend,
                     void volatile **pp)
{
    return RM(f)->xShmMap(REAL(f), pg, sz, extend, pp);
}

static int t_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return RM(f)->xShmLock(REAL(f), off, n, flags);
}

static void t_shm_barrier(sqlite3_file *f)
{
    RM(f)->xShmBarrier(REAL(f));
}

static int t_shm_unmap(sqlite3_file *f, int del)
{
    return RM(f)->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods io = {
    .iVersion = 2,
    .xClose = t_close,
    .xRead = t_read,
    .xWrite = t_write,
    .xTruncate = t_truncate,
    .xSync = t_sync,
    .xFileSize = t_size,
    .xLock = t_lock,
    .xUnlock = t_unlock,
    .xCheckReservedLock = t_check_reserved,
    .xFileControl = t_fcntl,
    .xSectorSize = t_sector,
    .xDeviceCharacteristics = t_devchar,
    .xShmMap = t_shm_map,
    .xShmLock = t_shm_lock,
    .xShmBarrier = t_shm_barrier,
    .xShmUnmap = t_shm_unmap,
};

static int v_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f,
                  int flags, int *out_flags)
{
    struct tfile *t = (struct tfile *)f;
    (void)v;
    memset(t, 0, sizeof *t);
    int rc = under->xOpen(under, name, REAL(f), flags, out_flags);
    if (rc != SQLITE_OK || !REAL(f)->pMethods) {
        f->pMethods = NULL;
        return rc;
    }
    struct stat st;
    if ((flags & SQLITE_OPEN_MAIN_DB) && name && stat(name, &st) == 0 &&
        S_ISREG(st.st_mode) && tsq_on())
        t->rec = tsq_file_open(st.st_dev, st.st_ino);
    f->pMethods = &io;
    return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync)
{
    (void)v;
    return under->xDelete(under, name, sync);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return under->xAccess(under, name, flags, out);
}

static int v_fullpath(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return under->xFullPathname(under, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return under->xDlOpen(under, name);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *msg)
{
    (void)v;
    under->xDlError(under, n, msg);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return under->xDlSym(under, h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    under->xDlClose(under, h);
}

static int v_random(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return under->xRandomness(under, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return under->xSleep(under, us);
}

static int v_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return under->xCurrentTime(under, out);
}

static int v_lasterr(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return under->xGetLastError ? under->xGetLastError(under, n, out) : 0;
}

static int v_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return under->xCurrentTimeInt64(under, out);
}

int tsq_vfs_register(void)
{
    if (sqlite3_vfs_find(TSQ_VFS_NAME))
        return SQLITE_OK;
    under = sqlite3_vfs_find(NULL);
    if (!under)
        return SQLITE_ERROR;
    tvfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct tfile) + under->szOsFile,
        .mxPathname = under->mxPathname,
        .zName = TSQ_VFS_NAME,
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_fullpath,
        .xDlOpen = v_dlopen,
        .xDlError = v_dlerror,
        .xDlSym = v_dlsym,
        .xDlClose = v_dlclose,
        .xRandomness = v_random,
        .xSleep = v_sleep,
        .xCurrentTime = v_time,
        .xGetLastError = v_lasterr,
        .xCurrentTimeInt64 = v_time64,
    };
    if (under->iVersion < 2 || !under->xCurrentTimeInt64)
        tvfs.iVersion = 1;
    return sqlite3_vfs_register(&tvfs, 1);
}
