/*
 * tmemfs's FUSE operations (high-level, path API): each one the same
 * call on the backing directory, made relative to its descriptor (opened
 * before the mount, so even a mount over the backing directory itself
 * reaches the files beneath).  An open file is a descriptor of the
 * backing file and the cache's node of its inode; reads go through
 * fs_cache.c, and what changes a file's bytes tells the cache: writes,
 * truncates, fallocate, the file a rename replaces, an unlink.
 *
 * Operations given a file handle use it, never the path: with
 * hard_remove and nullpath_ok the path of an unlinked open file is NULL.
 */
#include "tmemfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

struct fs_handle {
    int fd;
    fs_node *node; /* regular files */
    DIR *dir;      /* directories */
};

static struct tmemfs *fs(void)
{
    return fuse_get_context()->private_data;
}

static struct fs_handle *handle(const struct fuse_file_info *fi)
{
    return fi ? (struct fs_handle *)(uintptr_t)fi->fh : NULL;
}

/* The path relative to the backing directory ("." for the root). */
static const char *rel(const char *path)
{
    while (*path == '/')
        path++;
    return *path ? path : ".";
}

static int neg(int rc)
{
    return rc < 0 ? -errno : rc;
}

/* A new entry belongs to the caller when root serves others. */
static int own(const char *path, int rc)
{
    if (rc < 0 || !fs()->chown_new)
        return rc;
    const struct fuse_context *ctx = fuse_get_context();
    if (fchownat(fs()->dirfd, rel(path), ctx->uid, ctx->gid,
                 AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    return 0;
}

/* The inode path names will be gone or replaced: the cache forgets it. */
static void forget_path(const char *path)
{
    struct stat st;
    if (fstatat(fs()->dirfd, rel(path), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode))
        fs_cache_invalidate(fs()->cache, st.st_dev, st.st_ino, NULL);
}

/* fd's inode changed as a whole. */
static void changed_fd(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0)
        fs_cache_invalidate(fs()->cache, st.st_dev, st.st_ino, &st);
}

static int op_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi)
{
    struct fs_handle *h = handle(fi);
    if (h)
        return neg(fstat(h->fd, st));
    return neg(fstatat(fs()->dirfd, rel(path), st, AT_SYMLINK_NOFOLLOW));
}

static int op_readlink(const char *path, char *buf, size_t size)
{
    if (size == 0)
        return -EINVAL;
    ssize_t n = readlinkat(fs()->dirfd, rel(path), buf, size - 1);
    if (n < 0)
        return -errno;
    buf[n] = 0;
    return 0;
}

static int op_mknod(const char *path, mode_t mode, dev_t dev)
{
    return own(path, neg(mknodat(fs()->dirfd, rel(path), mode, dev)));
}

static int op_mkdir(const char *path, mode_t mode)
{
    return own(path, neg(mkdirat(fs()->dirfd, rel(path), mode)));
}

static int op_unlink(const char *path)
{
    forget_path(path);
    return neg(unlinkat(fs()->dirfd, rel(path), 0));
}

static int op_rmdir(const char *path)
{
    return neg(unlinkat(fs()->dirfd, rel(path), AT_REMOVEDIR));
}

static int op_symlink(const char *target, const char *path)
{
    return own(path, neg(symlinkat(target, fs()->dirfd, rel(path))));
}

static int op_rename(const char *from, const char *to, unsigned flags)
{
    /* the file `to` named is replaced (an exchange keeps both) */
    if (!(flags & RENAME_EXCHANGE))
        forget_path(to);
    return neg(renameat2(fs()->dirfd, rel(from), fs()->dirfd, rel(to), flags));
}

static int op_link(const char *from, const char *to)
{
    return neg(linkat(fs()->dirfd, rel(from), fs()->dirfd, rel(to), 0));
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    struct fs_handle *h = handle(fi);
    if (h)
        return neg(fchmod(h->fd, mode));
    return neg(fchmodat(fs()->dirfd, rel(path), mode, 0));
}

static int op_chown(const char *path, uid_t uid, gid_t gid,
                    struct fuse_file_info *fi)
{
    struct fs_handle *h = handle(fi);
    if (h)
        return neg(fchown(h->fd, uid, gid));
    return neg(fchownat(fs()->dirfd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    struct fs_handle *h = handle(fi);
    int fd = h ? h->fd : openat(fs()->dirfd, rel(path), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = neg(ftruncate(fd, size));
    if (rc == 0)
        changed_fd(fd);
    if (!h)
        close(fd);
    return rc;
}

static int op_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi)
{
    struct fs_handle *h = handle(fi);
    if (h)
        return neg(futimens(h->fd, tv));
    return neg(utimensat(fs()->dirfd, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

/* Opens (or creates) the backing file and its handle. */
static int open_file(const char *path, int flags, mode_t mode,
                     struct fuse_file_info *fi)
{
    struct fs_handle *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->fd = openat(fs()->dirfd, rel(path), flags | O_CLOEXEC, mode);
    int rc = h->fd < 0 ? -errno : 0;
    if (rc == 0 && (flags & O_CREAT))
        rc = own(path, 0);
    bool keep = false;
    if (rc == 0)
        rc =
            fs_cache_open(fs()->cache, h->fd, flags & O_TRUNC, &h->node, &keep);
    if (rc < 0) {
        if (h->fd >= 0)
            close(h->fd);
        free(h);
        return rc;
    }
    fi->keep_cache = keep;
    fi->direct_io = fs()->direct_io;
    fi->fh = (uintptr_t)h;
    return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    return open_file(path, fi->flags, 0, fi);
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    return open_file(path, fi->flags | O_CREAT, mode, fi);
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    (void)path;
    struct fs_handle *h = handle(fi);
    ssize_t n = fs_cache_read(fs()->cache, h->node, h->fd, buf, size, off);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    struct fs_handle *h = handle(fi);
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(h->fd, buf + done, size - done, off + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int err = errno;
    if (done)
        fs_cache_wrote(fs()->cache, h->node, h->fd, off, done);
    return done ? (int)done : size ? -err : 0;
}

static int op_statfs(const char *path, struct statvfs *sv)
{
    (void)path;
    return neg(fstatvfs(fs()->dirfd, sv));
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct fs_handle *h = handle(fi);
    fs_cache_close(fs()->cache, h->node);
    close(h->fd);
    free(h);
    return 0;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    struct fs_handle *h = handle(fi);
    return neg(datasync ? fdatasync(h->fd) : fsync(h->fd));
}

static int op_fallocate(const char *path, int mode, off_t off, off_t len,
                        struct fuse_file_info *fi)
{
    (void)path;
    struct fs_handle *h = handle(fi);
    int rc = neg(fallocate(h->fd, mode, off, len));
    if (rc == 0)
        changed_fd(h->fd); /* a punched hole or a new size */
    return rc;
}

static int op_access(const char *path, int mask)
{
    return neg(faccessat(fs()->dirfd, rel(path), mask, 0));
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
    struct fs_handle *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->fd = openat(fs()->dirfd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (h->fd < 0 || !(h->dir = fdopendir(h->fd))) {
        int err = errno;
        if (h->fd >= 0)
            close(h->fd);
        free(h);
        return -err;
    }
    fi->fh = (uintptr_t)h;
    return 0;
}

/* Every entry in one go (offsets 0: libfuse keeps them). */
static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    (void)path, (void)off, (void)flags;
    struct fs_handle *h = handle(fi);
    rewinddir(h->dir);
    errno = 0;
    for (struct dirent *d; (d = readdir(h->dir));) {
        struct stat st = {.st_ino = d->d_ino,
                          .st_mode = (mode_t)d->d_type << 12};
        if (fill(buf, d->d_name, &st, 0, 0))
            break;
    }
    return -errno;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct fs_handle *h = handle(fi);
    closedir(h->dir);
    free(h);
    return 0;
}

/* "/proc/self/fd/N/rel": the backing path, for calls with no *at form. */
static int proc_path(const char *path, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "/proc/self/fd/%d/%s", fs()->dirfd, rel(path));
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int op_getxattr(const char *path, const char *name, char *val,
                       size_t size)
{
    char p[4096];
    if (!strcmp(rel(path), ".") && !strcmp(name, TMEMFS_STATS_XATTR)) {
        char s[512];
        int n = fs_cache_stats_format(fs()->cache, s, sizeof s);
        if (size && (size_t)n > size)
            return -ERANGE;
        if (size)
            memcpy(val, s, (size_t)n);
        return n;
    }
    int rc = proc_path(path, p, sizeof p);
    return rc < 0 ? rc : (int)neg((int)lgetxattr(p, name, val, size));
}

static int op_listxattr(const char *path, char *list, size_t size)
{
    char p[4096];
    int rc = proc_path(path, p, sizeof p);
    return rc < 0 ? rc : (int)neg((int)llistxattr(p, list, size));
}

static int op_setxattr(const char *path, const char *name, const char *val,
                       size_t size, int flags)
{
    char p[4096];
    int rc = proc_path(path, p, sizeof p);
    return rc < 0 ? rc : neg(lsetxattr(p, name, val, size, flags));
}

static int op_removexattr(const char *path, const char *name)
{
    char p[4096];
    int rc = proc_path(path, p, sizeof p);
    return rc < 0 ? rc : neg(lremovexattr(p, name));
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    struct tmemfs *t = fuse_get_context()->private_data;
    cfg->use_ino = 1;
    cfg->hard_remove = 1;
    cfg->nullpath_ok = 1;
    cfg->entry_timeout = cfg->attr_timeout = t->timeout;
    cfg->negative_timeout = t->timeout; /* a name created from outside shows within it */
    cfg->auto_cache = 0; /* keep_cache is the cache's own decision */
    cfg->kernel_cache = 0;
    return t;
}

static const struct fuse_operations ops = {
    .init = op_init,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .chmod = op_chmod,
    .chown = op_chown,
    .truncate = op_truncate,
    .utimens = op_utimens,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .statfs = op_statfs,
    .release = op_release,
    .fsync = op_fsync,
    .fallocate = op_fallocate,
    .access = op_access,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
};

const struct fuse_operations *tmemfs_operations(void)
{
    return &ops;
}
