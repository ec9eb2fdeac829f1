/*
 * Helpers of the SQLite suite: a temporary directory per test, running a
 * program with its output in files, the randomized workload whose every
 * result is written down (so that two runs can be compared line by
 * line), installing the extension, and reading one number of a JSON line.
 */
#ifndef SQ_UTIL_H
#define SQ_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "../../src/sqlite/tmem_sqlite.h"
#include "../lib/tmemd_harness.h"

/* A fresh directory under /tmp for the test (removed by the OS's tmp
 * cleaning only: tests leave it for a look after a failure). */
void sq_tmpdir(char *out, size_t cap);
/* dir + "/" + name into out. */
void sq_file(char *out, size_t cap, const char *dir, const char *name);
/* BUILD (default "build") + "/" + name into out. */
void sq_build_path(const char *name, char *out, size_t cap);
/* Runs argv with stdin from in_text (may be NULL), stdout into out_path
 * and stderr into err_path (either may be NULL: /dev/null); env entries
 * "NAME=VALUE" (NULL-terminated, may be NULL) are set in the child.
 * Returns the exit status (128 + signal). */
int sq_run(const char *const *argv, const char *const *env, const char *in_text,
           const char *out_path, const char *err_path);
/* The whole of a file into a malloc'd string ("" when absent). */
char *sq_slurp(const char *path);
/* The number after "\"key\":" in s, or -1. */
long long sq_json_num(const char *s, const char *key);

/* Installs the extension (pcache 1: full mode) on socket (NULL: embedded
 * store); fails the test on error. */
void sq_install(const char *socket, int pcache, long interval_ms, int balloon);
/* Opens path with cache_size pages; fails the test on error. */
sqlite3 *sq_open(const char *path, int cache_pages);
/* Runs sql; fails the test on error. */
void sq_exec(sqlite3 *db, const char *sql);
/* The first column of the first row of sql as text (malloc'd). */
char *sq_text(sqlite3 *db, const char *sql);

/* The randomized workload: nops operations from seed on the database at
 * path (made when absent), every result a line of out; ends with the
 * integrity check and a checksum of the whole table.  Returns the number
 * of SQLite errors (0 expected). */
int sq_workload(const char *path, uint32_t seed, int nops, int cache_pages,
                FILE *out);

#endif
