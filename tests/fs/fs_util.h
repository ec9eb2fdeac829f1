/*
 * Helpers of the tmemfs suite: a tmemfs mount served by BUILD/tmem fs in
 * the foreground (a child that gets SIGTERM, and so unmounts itself, when
 * the test process dies), files with known bytes, the kernel's copy of a
 * file dropped, shell commands, the cache's counters.
 */
#ifndef TEST_FS_UTIL_H
#define TEST_FS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../lib/tmemd_harness.h"

typedef struct fsu_mount {
    pid_t pid;
    char dir[64]; /* temp dir: b/ (backing), m/ (mount), log */
    char backing[96];
    char mnt[96];
    char log[96];
} fsu_mount;

/* Skips the test when /dev/fuse is absent. */
void fsu_need_fuse(void);
/* fsu_need_fuse, a tmemd (th_start with tmemd_extra) and m's dirs. */
void fsu_setup(th_daemon *d, fsu_mount *m, const char *const *tmemd_extra);
/* Unmounts m if mounted (tmem fs must exit 0), removes its dirs, stops
 * the daemon. */
void fsu_teardown(th_daemon *d, fsu_mount *m);
/* Makes the temp dir with b/ and m/ (no mount). */
void fsu_dirs(fsu_mount *m);
/* Mounts m's backing dir on m's mount point through tmemd d (NULL:
 * --embedded) with extra arguments (NULL-terminated, may be NULL); fails
 * the test when it is not mounted within 10 s. */
void fsu_mount_on(fsu_mount *m, const th_daemon *d, const char *const *extra);
/* fusermount3 -u, then waits for tmem fs; returns its exit status. */
int fsu_unmount(fsu_mount *m);
/* Whether path is a mount point of a tmemfs (in /proc/mounts). */
bool fsu_mounted(const char *path);
/* The counter name of the mount's stats (its root's xattr). */
uint64_t fsu_stat(const fsu_mount *m, const char *name);

/* path under dir (backing or mount) into buf. */
const char *fsu_path(char *buf, size_t cap, const char *dir, const char *name);
/* Writes n bytes derived from seed to path (0644). */
void fsu_write_file(const char *path, size_t n, uint32_t seed);
/* The whole file at path, malloc'd; *n its length. */
char *fsu_read_file(const char *path, size_t *n);
/* Whether two files hold the same bytes. */
bool fsu_same(const char *a, const char *b);
/* Drops the kernel's cached pages of path (posix_fadvise DONTNEED). */
void fsu_drop(const char *path);
/* Runs a shell command; its exit status (-1 when killed). out (cap
 * bytes, may be NULL) receives its stdout and stderr. */
int fsu_sh(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* BUILD/tmem. */
const char *fsu_tmem(void);

#endif
