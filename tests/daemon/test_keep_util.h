/*
 * Helpers of the tests of persistent pages across daemon restarts and
 * crashes (test_tmemd_keep.c, test_tmemd_crash.c): a tmemd keeping pages
 * in a state directory, stopped (by a signal) and started again on the
 * same socket.
 */
#ifndef TEST_KEEP_UTIL_H
#define TEST_KEEP_UTIL_H

#include <pthread.h>
#include <stddef.h>

#include "../lib/tmemd_harness.h"

/* Sends sig (SIGTERM: a stop; SIGKILL: a crash), waits, and puts the
 * daemon's log into log (n bytes); removes its socket directory.
 * Returns its exit status, or -1 when a signal ended it. */
int ku_stop_with_log(th_daemon *d, char *log, size_t n, int sig);
/* Starts tmemd keeping pages in state (--state-dir). */
void ku_start_kept(th_daemon *d, const char *state);
/* Starts tmemd again on d's socket path (its directory made again),
 * keeping pages in state, with a 512M budget; waits for it to answer. */
void ku_restart_same(th_daemon *d, const char *state);
/* Starts a thread that, ms milliseconds from now, does ku_restart_same
 * (join it). */
pthread_t ku_restart_later(th_daemon *d, const char *state, int ms);
/* rm -rf dir (a test's state directory). */
void ku_rm_rf(const char *dir);
/* Whether dir holds a file whose name starts with prefix and ends with
 * suffix (its path into out, n bytes, when out is not NULL). */
bool ku_dir_has(const char *dir, const char *prefix, const char *suffix,
                char *out, size_t n);

#endif
