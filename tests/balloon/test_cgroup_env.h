/*
 * Real-machine fixtures for the cgroup, drain and run tests: a zram swap
 * device of our own, memory cgroups, a tenant process driven over pipes.
 * Everything set up is registered with a guardian process that undoes it
 * when the test process ends, however it ends (the runner _exits on a
 * failed ASSERT).  See test_cgroup_env.c.
 */
#ifndef TMEM_TEST_CGROUP_ENV_H
#define TMEM_TEST_CGROUP_ENV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <common/sysfile.h> /* tmem__write_text, tmem__read_ll */

/* Starts the guardian (once per test).  Returns 0 or -errno. */
int env_guard_start(void);
/* Registers something to undo: "cg PATH", "zram ID", "file PATH". */
void env_guard_note(const char *kind, const char *what);
/* A zram swap device of size_mb, on with priority 100; its id or -errno
 * (skips the test when zram or swapon is absent). */
int env_zram_swap(unsigned size_mb);
/* Creates memory cgroup <v1 or v2 root>/name (version 1 or 2) into path.
 * Returns 0 or -errno. */
int env_cgroup(int version, const char *name, char *path, size_t cap);
/* Whether a v2 memory controller is mounted (path of the v2 root into
 * root). */
bool env_v2_memory(char *root, size_t cap);

/* A tenant: a child in a cgroup holding patterned anonymous memory. */
struct tenant {
    pid_t pid;
    int cmd, reply;
};
/* Forks the tenant into cgroup dir (NULL = none). */
int tenant_start(struct tenant *t, const char *cgdir);
/* Sends one command ("anon MIB", "cache PATH", "check", "pageout",
 * "quit") and waits for the reply line.  Returns the number in the reply
 * (>= 0), or -1 on a failure / dead tenant. */
long tenant_cmd(struct tenant *t, const char *cmd, int timeout_s);
bool tenant_alive(struct tenant *t);
void tenant_stop(struct tenant *t);

/* A file of mb MiB at path, not in the page cache. */
int env_cold_file(const char *path, unsigned mb);

/* Starts `$BUILD/tmem balloon run --cgroup cg --interval 1 --json
 * --control sock` plus the NULL-ended extra arguments, its output into
 * log; the socket is noted for the guardian.  Returns the pid (the test
 * fails when the binary is missing). */
pid_t env_balloon_run(const char *cg, const char *log, const char *sock,
                      const char *const *extra);

#endif
