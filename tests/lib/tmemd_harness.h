/*
 * Harness for the daemon tests: starts a real tmemd (BUILD/tmemd, default
 * build/) on a socket in a fresh temp dir, as a child that dies with the
 * test (PR_SET_PDEATHSIG), and offers small helpers (pages with a known
 * pattern, a raw connected socket for hostile clients).
 */
#ifndef TEST_TMEMD_HARNESS_H
#define TEST_TMEMD_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <proto/conn.h>
#include <proto/proto.h>

typedef struct th_daemon {
    pid_t pid;
    char dir[64];
    char sock[96];
    char log[128];
} th_daemon;

/* Starts tmemd with extra arguments (NULL-terminated list, may be NULL).
 * Fails the test when it does not come up within 5 s. */
void th_start(th_daemon *d, const char *const *extra);
/* Starts tmemd again on d's socket path, its directory made again (a
 * stop removed it), with extra arguments; it outlives the thread that
 * calls this.  Fails the test when it does not come up within 5 s. */
void th_restart(th_daemon *d, const char *const *extra);
/* The daemon's log so far into buf (n bytes, NUL-terminated; "" when
 * there is none).  Returns its length. */
size_t th_log(const th_daemon *d, char *buf, size_t n);
/* SIGTERM, wait; returns the exit status (or -1). */
int th_stop(th_daemon *d);
/* True while the daemon process is alive. */
bool th_alive(const th_daemon *d);
/* Opens a conn; fails the test on error. */
tmem__conn *th_conn(const th_daemon *d);
/* A raw stream socket connected to the daemon (no hello). */
int th_raw(const th_daemon *d);
/* Sends a valid hello on a raw socket and reads the reply; returns status. */
int th_raw_hello(int fd);
/* The same, claiming a resume token (NULL: none). */
int th_raw_hello_token(int fd, const uint64_t token[2]);
/* Reads one reply on a raw socket (its payload dropped); its status. */
int th_raw_status(int fd);
/* The exit status of child pid once it ends (128 + signal if killed). */
int th_wait(pid_t pid);
/* A tenant process's body: returns its exit status (0: all went well). */
typedef int (*th_tenant_fn)(const th_daemon *d, uint32_t seed, unsigned arg);
/* Runs fn(d, seed0 + i, arg) in n child processes at once (n <= 64) and
 * waits for them all.  Returns 0 when every one exited 0, else the first
 * other status. */
int th_tenants(const th_daemon *d, int n, th_tenant_fn fn, uint32_t seed0,
               unsigned arg);
/* Fills a page with a pattern derived from (seed, index). */
void th_fill(void *page, uint32_t seed, uint32_t index);
/* Checks a page against th_fill's pattern. */
bool th_check(const void *page, uint32_t seed, uint32_t index);
/* Puts n pages (index 0..n-1, object oid {seed,0,0}) into pool and
 * checks they read back (persistent pool) — returns pages intact. */
int th_put_range(tmem__conn *c, int pool, uint32_t seed, uint32_t n);
int th_count_intact(tmem__conn *c, int pool, uint32_t seed, uint32_t n);

#endif
