/*
 * Helpers of the tenant tests (test_tmemd_policy.c, test_tmemd_ring_charge.c):
 * tmemd's stats JSON read over a connection without a ring (so the
 * reader's own ring is in no figure and no refusal), the members of one
 * client or connection in it, configuration files, and tmemd runs that
 * must fail.
 */
#ifndef TEST_TENANT_UTIL_H
#define TEST_TENANT_UTIL_H

#include <stddef.h>

#include "../lib/tmemd_harness.h"
#include "client/json.h"

/* Opens a connection named name (NULL: none), with a ring unless
 * socket_only; fails the test on error. */
tmem__conn *tu_open(const th_daemon *d, const char *name, bool socket_only);
/* The daemon's stats JSON, parsed (tmem__json_free it). */
tmem__json *tu_stats(const th_daemon *d);
/* The "clients" entry of client id, or the "connections" entry; NULL when
 * there is none. */
const tmem__json *tu_client(const tmem__json *root, int id);
const tmem__json *tu_conn(const tmem__json *root, int id);
/* obj's member key, a number or a string; fails the test when absent. */
double tu_num(const tmem__json *obj, const char *key);
const char *tu_str(const tmem__json *obj, const char *key);
/* tu_num of one member of the stats now: of client id's entry (where
 * "client"), its connection ("conn"), or a top-level object (where names
 * it: "global", "refusals", "policy"). */
double tu_stat(const th_daemon *d, const char *where, int id, const char *key);
/* Writes text to path atomically (a new file renamed over it); with
 * path[0] == 0 makes a new temp file and puts its name in path[64]. */
void tu_write_conf(char path[64], const char *text);
/* Waits (up to 3 s) until the daemon has loaded its policy ok times and
 * failed to failed times; fails the test otherwise. */
void tu_await_loads(const th_daemon *d, int ok, int failed);
/* Runs BUILD/tmemd with args (NULL-terminated) on a socket of its own and
 * waits for it to exit (it must, within 5 s): its exit status, and its
 * standard error in err[cap]. */
int tu_run_tmemd(const char *const *args, char *err, size_t cap);
/* The whole file at path into buf[cap] (NUL-terminated). */
void tu_read_file(const char *path, char *buf, size_t cap);

#endif
