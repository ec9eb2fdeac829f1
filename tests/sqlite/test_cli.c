/*
 * The loadable extension in Debian's own sqlite3 (/usr/bin/sqlite3):
 * `.load BUILD/libtmem_sqlite` then `.open` gives the same output as the
 * same script without it, through a real tmemd, and the figures show
 * that pages went to cleancache and came back.  No tmem and
 * TMEM_EMBEDDED=0: the load fails and says why, unless
 * TMEM_SQLITE_OPTIONAL=1.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runner.h"
#include "sq_util.h"

static const char queries[] =
    "PRAGMA cache_size=15;\n"
    "SELECT count(*), sum(length(v)) FROM t;\n"
    "SELECT k, substr(v, 1, 12) FROM t WHERE k % 997 = 0;\n"
    "UPDATE t SET v = v || 'x' WHERE k % 13 = 0;\n"
    "SELECT count(*), sum(length(v)) FROM t;\n"
    "SELECT n, count(*) FROM t GROUP BY n ORDER BY n LIMIT 5;\n"
    "PRAGMA integrity_check;\n";

static void make_db(const char *db)
{
    const char *argv[] = {"sqlite3", db, NULL};
    ASSERT_EQ(sq_run(argv, NULL,
                     "CREATE TABLE t(k INTEGER PRIMARY KEY, n, v);\n"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
                     "FROM c WHERE x < 6000) INSERT INTO t SELECT x, x % 7, "
                     "printf('%.*c', 200 + x % 400, 'q') FROM c;\n",
                     NULL, NULL),
              0);
}

/* Runs the queries on a copy of the database, with or without the
 * extension, and returns the output. */
static char *cli(const char *dir, const char *tag, bool load, const char *sock,
                 const char *extra)
{
    char db[128], out[128], err[128], so[160], script[2048], env[160];
    snprintf(db, sizeof db, "%s/%s.db", dir, tag);
    snprintf(out, sizeof out, "%s/%s.out", dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", dir, tag);
    make_db(db);
    sq_build_path("libtmem_sqlite", so, sizeof so);
    snprintf(script, sizeof script, "%s%s%s\n.open %s\n%s%s",
             load ? ".load " : "", load ? so : "", load ? "" : "", db,
             queries, extra ? extra : "");
    snprintf(env, sizeof env, "TMEM_SOCKET=%s", sock);
    const char *argv[] = {"/usr/bin/sqlite3", "-bail", NULL};
    const char *envs[] = {env, "TMEM_EMBEDDED=0", NULL};
    int rc = sq_run(argv, envs, script, out, err);
    char *e = sq_slurp(err);
    if (rc != 0 || *e)
        tmem_test_fail(__FILE__, __LINE__, "sqlite3 exit %d: %s", rc, e);
    free(e);
    return sq_slurp(out);
}

TEST(sqlite_cli_load_same_output)
{
    char dir[64];
    th_daemon d;
    if (access("/usr/bin/sqlite3", X_OK) != 0)
        TEST_SKIP("no /usr/bin/sqlite3 (scripts/deps.sh installs it)");
    th_start(&d, NULL);
    sq_tmpdir(dir, sizeof dir);
    char *plain = cli(dir, "plain", false, d.sock, NULL);
    char *with = cli(dir, "tmem", true, d.sock, NULL);
    ASSERT_TRUE(strstr(plain, "\nok\n") != NULL);
    ASSERT_STR_EQ(plain, with);
    char *stats = cli(dir, "stats", true, d.sock,
                      "SELECT tmem_sqlite_stats();\n");
    ASSERT_TRUE(strstr(stats, "\"mode\":\"vfs\"") != NULL);
    ASSERT_TRUE(strstr(stats, "\"embedded\":false") != NULL);
    ASSERT_GT(sq_json_num(stats, "cc_hits"), 100);
    ASSERT_GT(sq_json_num(stats, "inval_pages"), 0);
    free(plain);
    free(with);
    free(stats);
}

TEST(sqlite_cli_load_without_tmem)
{
    char dir[64], so[160], script[256], out[128], err[128];
    sq_tmpdir(dir, sizeof dir);
    sq_build_path("libtmem_sqlite", so, sizeof so);
    snprintf(script, sizeof script, ".load %s\nSELECT 1;\n", so);
    sq_file(out, sizeof out, dir, "out");
    sq_file(err, sizeof err, dir, "err");
    const char *argv[] = {"/usr/bin/sqlite3", "-bail", NULL};
    const char *none[] = {"TMEM_SOCKET=/nonexistent/sock", "TMEM_EMBEDDED=0",
                          NULL};
    ASSERT_NE(sq_run(argv, none, script, out, err), 0);
    char *e = sq_slurp(err);
    ASSERT_TRUE(strstr(e, "no tmem store") != NULL);
    ASSERT_TRUE(strstr(e, "/nonexistent/sock") != NULL);
    free(e);
    const char *opt[] = {"TMEM_SOCKET=/nonexistent/sock", "TMEM_EMBEDDED=0",
                         "TMEM_SQLITE_OPTIONAL=1", NULL};
    ASSERT_EQ(sq_run(argv, opt, script, out, err), 0);
    char *o = sq_slurp(out);
    ASSERT_STR_EQ(o, "1\n");
    free(o);
    const char *badenv[] = {"TMEM_EMBEDDED=1", "TMEM_SQLITE_INTERVAL_MS=soon",
                            NULL};
    ASSERT_NE(sq_run(argv, badenv, script, out, err), 0);
    e = sq_slurp(err);
    ASSERT_TRUE(strstr(e, "TMEM_SQLITE_INTERVAL_MS=soon") != NULL);
    free(e);
}
