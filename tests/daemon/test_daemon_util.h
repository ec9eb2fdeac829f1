/*
 * Helpers shared by the daemon tests: reading tmemd's metrics (over its
 * socket or HTTP) and its refusal counters.
 */
#ifndef TEST_DAEMON_UTIL_H
#define TEST_DAEMON_UTIL_H

#include <stdatomic.h>
#include <sys/types.h>

#include "../lib/tmemd_harness.h"

/* A sample's value in Prometheus text: "name value" at a line's start
 * (name may carry its labels: tmemd_refusals_total{reason="x"}), or -1
 * when absent. */
long long du_metric(const char *text, const char *name);
/* Forks n (<= 64) tenant processes, kid[k] running _exit(fn(d, arg, k)),
 * and waits up to wait_ms for *ready to reach n (each tenant raises it
 * when set up).  Returns *ready then. */
typedef int (*du_tenant_fn)(const th_daemon *d, void *arg, int k);
int du_fork_tenants(const th_daemon *d, int n, du_tenant_fn fn, void *arg,
                    pid_t *kid, _Atomic int *ready, int wait_ms);
/* Runs fn(arg) in a child process as uid and gid 65534 (nobody): its
 * exit status (fn's return; 3 when the uid could not be dropped). */
int du_as_nobody(int (*fn)(void *), void *arg);
/* The daemon's Prometheus text over its socket (root: admin); malloc'd. */
char *du_prometheus(const th_daemon *d);
/* du_metric of the daemon's text now. */
long long du_daemon_metric(const th_daemon *d, const char *name);
/* tmemd_refusals_total{reason="reason"} now. */
long long du_refusals(const th_daemon *d, const char *reason);
/* GET path over HTTP/1.0 from 127.0.0.1:port: the whole response
 * (malloc'd), or NULL when it cannot connect. */
char *du_http_get(int port, const char *path);
/* Starts tmemd with --metrics PREFIX<port> (prefix: "", ":", "ADDR:")
 * and the extra arguments (NULL-terminated, may be NULL), on a port
 * picked from k and the pid, and waits for its HTTP thread.  Returns the
 * port. */
int du_start_metrics(th_daemon *d, const char *prefix, int k,
                     const char *const *extra);
/* Waits (up to 2 s) for tmemd's HTTP thread on port: it may start just
 * after the socket listens.  Fails the test if it never answers. */
void du_await_http(int port);
/* du_metric of GET /metrics on 127.0.0.1:port: read without a session of
 * the daemon's own (-1 when absent or unreachable). */
long long du_http_metric(int port, const char *name);

#endif
