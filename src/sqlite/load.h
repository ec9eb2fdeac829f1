/*
 * tmem_sqlite_load, the workload driver: its options (load_main.c), the
 * rows' content and the key distribution (load_data.c), the run
 * (load_run.c).  docs/sqlite.md has the contract of its output.
 */
#ifndef TMEM_SQLITE_LOAD_H
#define TMEM_SQLITE_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct load_opts {
    const char *db, *socket, *name;
    long create_mb, cache_mb, seconds, interval_ms, write_pct;
    uint64_t seed;
    double zipf;
    bool no_tmem;
};

#define LOAD_VALUE_MAX 1000

/* The value of (key, version): 400..1000 bytes of text-like content into
 * out[LOAD_VALUE_MAX].  Returns its length. */
size_t load_value(uint64_t key, uint32_t ver, char *out);

/* Zipfian ranks 0..n-1 (Gray et al.; YCSB's generator), theta in [0, 1). */
struct load_zipf {
    uint64_t n;
    double theta, zetan, alpha, eta, half_pow;
};
void load_zipf_init(struct load_zipf *z, uint64_t n, double theta);
uint64_t load_zipf_next(const struct load_zipf *z, double u);
/* A permutation of 0..n-1 that scatters neighbouring ranks over the file. */
uint64_t load_scatter(uint64_t rank, uint64_t n);
/* splitmix64 step. */
uint64_t load_rand(uint64_t *state);

/* Runs the workload; returns the exit status. */
int load_run(const struct load_opts *o);

#endif
