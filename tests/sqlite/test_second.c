/*
 * Another process writing the same database: the first never reads a
 * page older than the file.  The first process keeps the database open
 * with a small cache (its pages live in cleancache, through a real
 * tmemd); between its passes, /usr/bin/sqlite3, a separate plain
 * process, rewrites a different part of the rows each round.  Every
 * value the first reads must be the newest, and the resets it counted
 * show the invalidation happened (full mode and VFS-only mode).
 */
#include <stdlib.h>
#include <string.h>

#include "../runner.h"
#include "sq_util.h"

enum { ROWS = 2000, ROUNDS = 8 };

/* Checks every row: v must be 'r<round of its last write>-<k>...'. */
static void check_all(sqlite3 *db, const int *round)
{
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT k, v FROM t ORDER BY k", -1, &st,
                                 NULL),
              SQLITE_OK);
    int seen = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0);
        char want[32];
        snprintf(want, sizeof want, "r%d-%d.", round[k], k);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (strncmp(v, want, strlen(want)) != 0)
            tmem_test_fail(__FILE__, __LINE__, "row %d: \"%.20s\" want %s", k,
                           v, want);
        seen++;
    }
    sqlite3_finalize(st);
    ASSERT_EQ(seen, ROWS);
}

/* ROWS rows, each 'r0-<k>.' and 400..699 bytes more. */
static void make_rows(sqlite3 *h)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE "
             "c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d) "
             "INSERT INTO t SELECT x, printf('r0-%%d.%%.*c', x, 400 + x %% "
             "300, 'a') FROM c",
             ROWS);
    sq_exec(h, sql);
}

/* The other process: rows with k % ROUNDS == r get round r's value. */
static void other_writes(const char *db, int r)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE t SET v = printf('r%d-%%d.%%.*c', k, 400 + k %% 300, "
             "'w') WHERE k %% %d = %d;",
             r, ROUNDS, r % ROUNDS);
    const char *argv[] = {"sqlite3", db, sql, NULL};
    ASSERT_EQ(sq_run(argv, NULL, NULL, NULL, NULL), 0);
}

static void second_writer(int pcache)
{
    char dir[64], db[128];
    int round[ROWS + 1] = {0};
    th_daemon d;
    th_start(&d, NULL);
    sq_tmpdir(dir, sizeof dir);
    sq_file(db, sizeof db, dir, "shared.db");
    sq_install(d.sock, pcache, 1000, 1);
    sqlite3 *h = sq_open(db, 30);
    make_rows(h);
    check_all(h, round);
    check_all(h, round); /* pages came back from cleancache */
    tmem_sqlite_stats s0;
    tmem_sqlite_stats_get(&s0);
    ASSERT_GT(s0.cc_hits, 50u);
    for (int r = 1; r <= ROUNDS; r++) {
        other_writes(db, r);
        for (int k = 1; k <= ROWS; k++)
            if (k % ROUNDS == r % ROUNDS)
                round[k] = r;
        check_all(h, round);
        check_all(h, round);
    }
    tmem_sqlite_stats s;
    tmem_sqlite_stats_get(&s);
    ASSERT_GE(s.resets, (uint64_t)ROUNDS);
    ASSERT_GT(s.inval_files, 0u);
    ASSERT_GT(s.cc_hits, s0.cc_hits); /* still used between the writes */
    sqlite3_close(h);
}

TEST(sqlite_second_process_full_mode)
{
    second_writer(1);
}

TEST(sqlite_second_process_vfs_only)
{
    second_writer(0);
}

/* Two connections of one process, one writing: the other's cache and
 * cleancache never give it an old page either. */
TEST(sqlite_second_connection_same_process)
{
    char dir[64], db[128];
    int round[ROWS + 1] = {0};
    sq_tmpdir(dir, sizeof dir);
    sq_file(db, sizeof db, dir, "two.db");
    sq_install(NULL, 1, 1000, 1);
    sqlite3 *a = sq_open(db, 30), *b = sq_open(db, 30);
    make_rows(a);
    char sql[320];
    check_all(a, round);
    check_all(b, round);
    for (int r = 1; r <= ROUNDS; r++) {
        snprintf(sql, sizeof sql,
                 "UPDATE t SET v = printf('r%d-%%d.%%.*c', k, 300 + k %% 500, "
                 "'z') WHERE k %% %d = %d",
                 r, ROUNDS, r % ROUNDS);
        sq_exec(b, sql);
        for (int k = 1; k <= ROWS; k++)
            if (k % ROUNDS == r % ROUNDS)
                round[k] = r;
        check_all(a, round);
        check_all(b, round);
    }
    tmem_sqlite_stats s;
    tmem_sqlite_stats_get(&s);
    ASSERT_GT(s.cc_hits, 100u);
    sqlite3_close(a);
    sqlite3_close(b);
}
