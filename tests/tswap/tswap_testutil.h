/*
 * Helpers of the tswap suite: connections (embedded, or a real tmemd this
 * file starts on a socket of its own), page patterns, a tswap made with a
 * test's config, and reading the daemon's page count.
 */
#ifndef TSWAP_TESTUTIL_H
#define TSWAP_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <tmem/client.h>

#include "tswap/tswap.h"

#define PG 4096

typedef struct ts_daemon {
    pid_t pid;
    char dir[64];
    char sock[96];
    char log[128];
} ts_daemon;

/* A connection to an embedded store (TMEM_EMBEDDED=1). */
tmem_conn *ts_embedded(void);
/* Starts BUILD/tmemd with --budget budget on a fresh socket; it dies with
 * the test.  Fails the test when it does not come up. */
void ts_daemon_start(ts_daemon *d, const char *budget);
void ts_daemon_stop(ts_daemon *d);
/* A connection through d (never embedded). */
tmem_conn *ts_daemon_conn(const ts_daemon *d);
/* Runs fn on a connection to a tmemd of its own (--budget budget), then
 * disconnects and stops the daemon. */
void ts_on_daemon(const char *budget, void (*fn)(tmem_conn *c));
/* The daemon's persistent pages (tmem list --json, global pers_pages). */
long long ts_daemon_pers_pages(const ts_daemon *d);
/* Runs BUILD/tmem --socket d->sock with args; returns its exit status. */
int ts_cli(const ts_daemon *d, const char *args);

/* A tswap with cfg (NULL: defaults with the given events flag). */
tmem_tswap *ts_create(tmem_conn *c, const tmem_tswap_config *cfg);
/* Default config with a target and events on or off. */
tmem_tswap_config ts_config(uint64_t target, bool events);

/* Page patterns: page idx of run seed.  Zero-free words. */
void ts_fill(void *page, uint32_t seed, uint64_t idx);
bool ts_check(const void *page, uint32_t seed, uint64_t idx);
/* Fills / checks n pages at base; check returns the first bad index or
 * -1. */
void ts_fill_n(void *base, size_t n, uint32_t seed);
long ts_check_n(const void *base, size_t n, uint32_t seed);

/* Puts pages out until at most target stay resident (a reclaim loop). */
void ts_evict_to(tmem_tswap *t, uint64_t target);
tmem_tswap_stats ts_stats(tmem_tswap *t);

#endif
