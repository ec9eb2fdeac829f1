/*
 * The randomized workload of the comparison tests: point and range reads,
 * reads through an index, updates, inserts, deletes, transactions that
 * commit and ones that roll back, on a table many times the cache.  Every
 * result is a line of the output, so a run with tmem and one without can
 * be compared line for line.
 */
#include "sq_util.h"

#include <string.h>

static uint64_t next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Prints every row of sql's result (bound to a, b) as one line. */
static int query(sqlite3 *db, FILE *out, const char *tag, const char *sql,
                 long long a, long long b)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(out, "%s error %s\n", tag, sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    fprintf(out, "%s %lld %lld:", tag, a, b);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int i = 0; i < sqlite3_column_count(st); i++)
            fprintf(out, " %s", sqlite3_column_text(st, i)
                                    ? (const char *)sqlite3_column_text(st, i)
                                    : "NULL");
    fprintf(out, " (%d changes)\n", sqlite3_changes(db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : 1;
}

static int make(sqlite3 *db, FILE *out)
{
    sqlite3_exec(db,
                 "CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, n "
                 "INTEGER, v TEXT); CREATE INDEX IF NOT EXISTS t_n ON t(n)",
                 NULL, NULL, NULL);
    return query(db, out, "fill",
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM "
                 "c WHERE x < ?1) INSERT OR IGNORE INTO t SELECT x, x * 7 % "
                 "1000, printf('%.*c', 300 + x % 500, char(97 + x % 26)) || x "
                 "FROM c",
                 3000, 0);
}

static int one(sqlite3 *db, FILE *out, uint64_t *s)
{
    long long k = (long long)(next(s) % 3600), r = (long long)next(s) % 100;
    if (r < 50)
        return query(db, out, "get",
                     "SELECT n, length(v), substr(v, -8) FROM t WHERE k = ?1",
                     k, 0);
    if (r < 60)
        return query(db, out, "range",
                     "SELECT count(*), sum(length(v)), sum(n) FROM t WHERE k "
                     "BETWEEN ?1 AND ?1 + ?2",
                     k, (long long)next(s) % 400);
    if (r < 66)
        return query(db, out, "index",
                     "SELECT count(*), max(k) FROM t WHERE n BETWEEN ?1 AND ?2",
                     k % 1000, k % 1000 + 20);
    if (r < 78)
        return query(db, out, "update",
                     "UPDATE t SET v = printf('%.*c', ?2, 'u') || k, n = ?2 "
                     "% 1000 WHERE k = ?1",
                     k, 100 + (long long)next(s) % 900);
    if (r < 85)
        return query(db, out, "insert",
                     "INSERT OR REPLACE INTO t VALUES(?1, ?2 % 1000, "
                     "printf('%.*c', ?2, 'i'))",
                     k, 200 + (long long)next(s) % 700);
    if (r < 90)
        return query(db, out, "delete", "DELETE FROM t WHERE k BETWEEN ?1 AND ?2",
                     k, k + (long long)next(s) % 20);
    const char *end = r < 95 ? "ROLLBACK" : "COMMIT";
    int err = query(db, out, "begin", "BEGIN", 0, 0);
    for (int i = 0; i < 5; i++)
        err += query(db, out, "txupdate",
                     "UPDATE t SET v = v || 'x', n = n + ?2 WHERE k BETWEEN ?1 "
                     "AND ?1 + 30",
                     (long long)(next(s) % 3600), i);
    return err + query(db, out, end, end, 0, 0);
}

int sq_workload(const char *path, uint32_t seed, int nops, int cache_pages,
                FILE *out)
{
    sqlite3 *db = sq_open(path, cache_pages);
    uint64_t s = seed;
    int err = make(db, out);
    for (int i = 0; i < nops; i++)
        err += one(db, out, &s);
    err += query(db, out, "check", "PRAGMA integrity_check", 0, 0);
    err += query(db, out, "sum",
                 "SELECT count(*), sum(n), sum(length(v)), "
                 "sum(unicode(substr(v, -1)) * k) FROM t",
                 0, 0);
    sqlite3_close(db);
    return err;
}
