/*
 * Helpers shared by the test_integ_*.c tests: run the tmem CLI against a
 * test daemon and capture what it printed.
 */
#ifndef TEST_INTEG_COMMON_H
#define TEST_INTEG_COMMON_H

#include <stddef.h>
#include <sys/types.h>

#include "../lib/tmemd_harness.h"

/* Runs BUILD/tmem --socket d->sock ARGS... (NULL-terminated), as uid/gid
 * when uid != (uid_t)-1.  stdout and stderr go NUL-terminated into out/err
 * (either may be NULL).  Returns the exit status, or -1 if it did not exit. */
int integ_cli_as(const th_daemon *d, uid_t uid, gid_t gid, char *out,
                 size_t out_cap, char *err, size_t err_cap, ...);
#define integ_cli(d, out, oc, err, ec, ...)                                    \
    integ_cli_as(d, (uid_t)-1, (gid_t)-1, out, oc, err, ec, __VA_ARGS__)

#endif
