/*
 * tmem fs [OPTIONS] BACKING_DIR MOUNTPOINT: mounts tmemfs (tmemfs.h)
 * and serves it until unmounted or told to stop (SIGINT, SIGTERM,
 * SIGHUP: it unmounts itself), then prints the cache's counters.
 *
 * Everything that can go wrong is found before the mount and said in
 * one line: a backing directory that is absent, not a directory or not
 * readable; a mount point that is not a directory or lies inside the
 * backing directory (its own files would loop back into it); no tmemd.
 * Without --foreground the work is done in a child that reports back
 * through a pipe, so those errors still reach the terminal and the exit
 * status, and the command returns once the mount is up.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <tmem/errors.h>

#include "cmds.h"
#include "opt_table.h"
#include "tmemfs.h"

struct fs_opts {
    const char *socket, *name, *mount_opts;
    int foreground, embedded, settle_ms, direct_io;
    double timeout;
};

static int set_foreground(void *o, const char *v)
{
    (void)v;
    ((struct fs_opts *)o)->foreground = 1;
    return 0;
}

static int set_socket(void *o, const char *v)
{
    ((struct fs_opts *)o)->socket = v;
    return 0;
}

static int set_name(void *o, const char *v)
{
    ((struct fs_opts *)o)->name = v;
    return strlen(v) <= 16 &&
                   strspn(v, "abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789._-") == strlen(v) &&
                   *v
               ? 0
               : -1;
}

static int set_embedded(void *o, const char *v)
{
    (void)v;
    ((struct fs_opts *)o)->embedded = 1;
    return 0;
}

static int set_mount_opts(void *o, const char *v)
{
    ((struct fs_opts *)o)->mount_opts = v;
    return *v && !strchr(v, ' ') ? 0 : -1;
}

static int set_timeout(void *o, const char *v)
{
    char *end;
    double t = strtod(v, &end);
    ((struct fs_opts *)o)->timeout = t;
    return end == v || *end || !(t >= 0 && t <= 3600) ? -1 : 0;
}

static int set_direct_io(void *o, const char *v)
{
    (void)v;
    ((struct fs_opts *)o)->direct_io = 1;
    return 0;
}

static int set_settle(void *o, const char *v)
{
    return opt_int(v, 0, 3600000, &((struct fs_opts *)o)->settle_ms);
}

static const struct opt_spec fs_opts_table[] = {
    {"-f", NULL, set_foreground, "stay in the foreground (--foreground)"},
    {"--foreground", NULL, set_foreground,
     "stay in the foreground; the counters go to stderr at the end"},
    {"--socket", "PATH", set_socket, "tmemd's socket"},
    {"--name", "NAME (up to 16 of letters, digits, ._-)", set_name,
     "the tenant's name in tmem list"},
    {"--embedded", NULL, set_embedded,
     "a store inside this process, not tmemd"},
    {"--attr-timeout", "SECONDS (0..3600)", set_timeout,
     "how long the kernel trusts a file's attributes (0: it asks each "
     "time, so a writer outside the mount is seen at once)"},
    {"--settle-ms", "MS (0..3600000)", set_settle,
     "a file changed from outside is cached once its change is MS old "
     "(1000: a write in progress is never half kept)"},
    {"--direct-io", NULL, set_direct_io,
     "no kernel page cache for the files: every read comes to tmemfs "
     "(tests, measurements)"},
    {"-o", "OPTS", set_mount_opts, "FUSE mount options, e.g. allow_other, ro"},
};
#define NFSOPTS (sizeof fs_opts_table / sizeof fs_opts_table[0])

static void fs_usage(FILE *f)
{
    fprintf(f,
            "usage: tmem fs [OPTIONS] BACKING_DIR MOUNTPOINT\n\n"
            "Mounts BACKING_DIR on MOUNTPOINT through FUSE; reads keep "
            "the files' pages\nin tmemd's ephemeral pool as a second "
            "level under the kernel's page cache.\nUnmount with "
            "fusermount3 -u MOUNTPOINT (or SIGTERM); the counters of "
            "the cache\n(gets, hits, puts, invalidations) are printed "
            "then, and read while mounted\nwith getfattr -n " TMEMFS_STATS_XATTR
            " MOUNTPOINT.  Options:\n");
    opt_usage(f, fs_opts_table, NFSOPTS, 20);
}

static bool takes_value(const char *a)
{
    for (size_t k = 0; k < NFSOPTS; k++)
        if (!strcmp(a, fs_opts_table[k].name))
            return fs_opts_table[k].arg != NULL;
    return false;
}

/* Splits argv into options (parsed into o) and the two paths. */
static int parse(int argc, char **argv, struct fs_opts *o, char **paths)
{
    char *optv[64] = {argv[0]};
    int nopt = 1, npath = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' || !argv[i][1]) {
            if (npath == 2) {
                fprintf(stderr,
                        "tmem fs: one BACKING_DIR and one "
                        "MOUNTPOINT, '%s' is a third\n",
                        argv[i]);
                return CLI_USAGE;
            }
            paths[npath++] = argv[i];
            continue;
        }
        int n =
            1 + (!strchr(argv[i], '=') && takes_value(argv[i]) && i + 1 < argc);
        for (int k = 0; k < n && nopt < 63; k++)
            optv[nopt++] = argv[i + k];
        i += n - 1;
    }
    if (opt_parse("tmem fs", fs_opts_table, NFSOPTS, o, nopt, optv))
        return CLI_USAGE;
    if (npath != 2) {
        fprintf(stderr, "tmem fs: give BACKING_DIR and MOUNTPOINT\n");
        fs_usage(stderr);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* The backing directory, opened: a descriptor, or -1 after saying why. */
static int open_backing(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "tmem fs: backing directory %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "tmem fs: backing directory %s: not a directory\n",
                path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || access(path, R_OK | W_OK | X_OK) < 0) {
        fprintf(stderr,
                "tmem fs: backing directory %s: %s (tmem fs runs "
                "as uid %u and needs to read, write and search it)\n",
                path, strerror(errno), (unsigned)geteuid());
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Whether the mount point can be used: 0, or -1 after saying why. */
static int check_mountpoint(const char *mnt, const char *backing)
{
    struct stat st;
    char rm[PATH_MAX], rb[PATH_MAX];
    if (stat(mnt, &st) < 0) {
        fprintf(stderr, "tmem fs: mount point %s: %s\n", mnt, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "tmem fs: mount point %s: not a directory\n", mnt);
        return -1;
    }
    if (!realpath(mnt, rm) || !realpath(backing, rb))
        return 0; /* the mount itself will say */
    size_t n = strlen(rb);
    if (!strncmp(rm, rb, n) && (rm[n] == '/' || (n == 1 && rm[1]))) {
        fprintf(stderr,
                "tmem fs: mount point %s is inside the backing "
                "directory %s: its files would loop back into tmemfs\n",
                mnt, backing);
        return -1;
    }
    return 0;
}

/* The tmem connection: 0, or CLI_FAIL after saying why. */
static int connect_tmem(const struct tmem_cli *cli, const struct fs_opts *o,
                        tmem_conn **conn, fs_cache **cache)
{
    if (o->name)
        setenv("TMEM_NAME", o->name, 1);
    setenv("TMEM_EMBEDDED", o->embedded ? "1" : "0", 1);
    int rc = tmem_connect(cli->socket, conn);
    if (rc < 0) {
        fprintf(stderr,
                "tmem fs: cannot reach tmemd at %s: %s (%s); "
                "start tmemd, or give --socket PATH or --embedded\n",
                cli->socket ? cli->socket : "the default socket",
                tmem_strerror(rc), tmem_errname(rc));
        return CLI_FAIL;
    }
    rc = fs_cache_create(*conn, (unsigned)o->settle_ms, cache);
    if (rc < 0) {
        fprintf(stderr, "tmem fs: no ephemeral pool: %s (%s)\n",
                tmem_strerror(rc), tmem_errname(rc));
        tmem_disconnect(*conn);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* The counters, in one line (to stderr, or syslog once detached). */
static void report(fs_cache *c, const char *mnt, bool detached)
{
    fs_cache_stats s;
    char line[512];
    fs_cache_stats_get(c, &s);
    snprintf(line, sizeof line,
             "tmem fs: %s unmounted: gets %llu hits %llu puts %llu "
             "put_errors %llu invalidations %llu stale %llu backing_bytes "
             "%llu",
             mnt, (unsigned long long)s.gets, (unsigned long long)s.hits,
             (unsigned long long)s.puts, (unsigned long long)s.put_errors,
             (unsigned long long)s.invalidations, (unsigned long long)s.stale,
             (unsigned long long)s.backing_bytes);
    if (detached)
        syslog(LOG_INFO, "%s", line);
    else
        fprintf(stderr, "%s\n", line);
}

/* Detaches from the terminal once the mount is up, and tells the parent
 * waiting on ready. */
static void detach(int ready)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
    if (chdir("/") < 0) {
        /* the file system works from its descriptors: nothing to undo */
    }
    ssize_t w = write(ready, "1", 1);
    (void)w;
    close(ready);
}

/* Mounts the file system t on mnt and serves it until the loop ends,
 * then prints the counters.  ready >= 0: detach and report there once
 * mounted. */
static int mount_and_serve(struct tmemfs *t, const struct fs_opts *o,
                           const char *mnt, int ready)
{
    char opts[2048];
    snprintf(opts, sizeof opts,
             "fsname=tmemfs,subtype=tmemfs,default_permissions%s%s",
             o->mount_opts ? "," : "", o->mount_opts ? o->mount_opts : "");
    char *fargv[] = {"tmem fs", "-o", opts, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
    struct fuse *f =
        fuse_new(&args, tmemfs_operations(), sizeof(struct fuse_operations), t);
    if (!f) {
        fprintf(stderr, "tmem fs: bad mount options '%s'\n", opts);
        fuse_opt_free_args(&args);
        return CLI_USAGE;
    }
    int rc = CLI_FAIL;
    if (fuse_mount(f, mnt) != 0) {
        fprintf(stderr,
                "tmem fs: cannot mount on %s (is /dev/fuse there, "
                "and fusermount3 for a user?)\n",
                mnt);
        goto out_destroy;
    }
    struct fuse_session *se = fuse_get_session(f);
    if (fuse_set_signal_handlers(se) != 0)
        goto out_unmount;
    if (ready >= 0)
        detach(ready);
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    int res = lc ? fuse_loop_mt(f, lc) : -ENOMEM;
    fuse_loop_cfg_destroy(lc);
    rc = res < 0 ? CLI_FAIL : CLI_OK; /* a signal's number: asked to stop */
    fuse_remove_signal_handlers(se);
out_unmount:
    fuse_unmount(f);
    report(t->cache, mnt, ready >= 0);
out_destroy:
    fuse_destroy(f);
    fuse_opt_free_args(&args);
    return rc;
}

/* Checks, connects, mounts and serves; the exit status. */
static int serve(const struct tmem_cli *cli, const struct fs_opts *o,
                 const char *backing, const char *mnt, int ready)
{
    int dirfd = open_backing(backing);
    if (dirfd < 0)
        return CLI_FAIL;
    tmem_conn *conn;
    struct tmemfs t = {.dirfd = dirfd,
                       .timeout = o->timeout,
                       .direct_io = o->direct_io,
                       .chown_new = geteuid() == 0};
    int rc = check_mountpoint(mnt, backing) < 0
                 ? CLI_FAIL
                 : connect_tmem(cli, o, &conn, &t.cache);
    if (rc == CLI_OK) {
        rc = mount_and_serve(&t, o, mnt, ready);
        fs_cache_destroy(t.cache);
        tmem_disconnect(conn);
    }
    close(dirfd);
    return rc;
}

int cmd_fs(struct tmem_cli *cli, int argc, char **argv)
{
    struct fs_opts o = {.settle_ms = 1000};
    char *paths[2];
    if (cli_wants_help(argc, argv)) {
        fs_usage(stdout);
        return CLI_OK;
    }
    int rc = parse(argc, argv, &o, paths);
    if (rc != CLI_OK)
        return rc;
    if (o.socket)
        cli->socket = o.socket;
    if (o.foreground)
        return serve(cli, &o, paths[0], paths[1], -1);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return CLI_FAIL;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        setsid();
        _exit(serve(cli, &o, paths[0], paths[1], p[1]));
    }
    close(p[1]);
    char b = 0;
    ssize_t n;
    while ((n = read(p[0], &b, 1)) < 0 && errno == EINTR)
        ;
    close(p[0]);
    if (pid < 0 || n == 1)
        return pid < 0 ? CLI_FAIL : CLI_OK;
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : CLI_FAIL;
}
