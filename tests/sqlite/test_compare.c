/*
 * The same randomized workload with and without tmem gives the same
 * result, line for line, in full mode and in VFS-only mode, through a
 * real tmemd, with a cache far smaller than the database (so pages go
 * to cleancache and come back: asserted).  Also: integrity_check after a
 * long run, and a database of 8 KiB pages passing through untouched.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "sq_util.h"

enum { OPS = 3000, CACHE = 40 };

/* The workload without tmem, in a child that never installs it. */
static void plain_run(const char *db, const char *out, uint32_t seed, int ops)
{
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        FILE *f = fopen(out, "w");
        _exit(f && sq_workload(db, seed, ops, CACHE, f) == 0 && !fclose(f)
                  ? 0
                  : 1);
    }
    ASSERT_EQ(th_wait(pid), 0);
}

static void compare(int pcache, uint32_t seed)
{
    char dir[64], a[128], b[128], dba[128], dbb[128];
    th_daemon d;
    th_start(&d, NULL);
    sq_tmpdir(dir, sizeof dir);
    sq_file(a, sizeof a, dir, "plain.out");
    sq_file(b, sizeof b, dir, "tmem.out");
    sq_file(dba, sizeof dba, dir, "plain.db");
    sq_file(dbb, sizeof dbb, dir, "tmem.db");
    plain_run(dba, a, seed, OPS);
    sq_install(d.sock, pcache, 1000, 1);
    FILE *f = fopen(b, "w");
    ASSERT_EQ(sq_workload(dbb, seed, OPS, CACHE, f), 0);
    fclose(f);
    char *pa = sq_slurp(a), *pb = sq_slurp(b);
    ASSERT_GT(strlen(pa), (size_t)OPS * 10);
    ASSERT_TRUE(strstr(pb, "check 0 0: ok") != NULL);
    ASSERT_STR_EQ(pa, pb);
    tmem_sqlite_stats s;
    tmem_sqlite_stats_get(&s);
    ASSERT_EQ(s.mode, pcache ? 2 : 1);
    ASSERT_EQ(s.embedded, 0);
    ASSERT_GT(s.cc_hits, 100u);
    ASSERT_GT(s.cc_puts, s.cc_hits / 2);
    ASSERT_GT(s.inval_pages, 0u); /* the writes dropped pages */
    free(pa);
    free(pb);
}

TEST(sqlite_full_mode_matches_plain)
{
    compare(1, 7);
}

TEST(sqlite_vfs_only_matches_plain)
{
    compare(0, 8);
}

TEST(sqlite_integrity_after_long_random_run)
{
    char dir[64], db[128];
    sq_tmpdir(dir, sizeof dir);
    sq_file(db, sizeof db, dir, "long.db");
    sq_install(NULL, 1, 1000, 1);
    FILE *f = fopen("/dev/null", "w");
    ASSERT_EQ(sq_workload(db, 99, 4 * OPS, 20, f), 0);
    fclose(f);
    sqlite3 *h = sq_open(db, 20);
    char *ok = sq_text(h, "PRAGMA integrity_check");
    ASSERT_STR_EQ(ok, "ok");
    free(ok);
    sqlite3_close(h);
    tmem_sqlite_stats s;
    tmem_sqlite_stats_get(&s);
    ASSERT_GT(s.cc_hits, 100u);
}

TEST(sqlite_8k_pages_pass_through)
{
    char dir[64], db[128], a[128], b[128], dba[128];
    sq_tmpdir(dir, sizeof dir);
    sq_file(db, sizeof db, dir, "big.db");
    sq_file(dba, sizeof dba, dir, "plain.db");
    sq_file(a, sizeof a, dir, "plain.out");
    sq_file(b, sizeof b, dir, "tmem.out");
    pid_t pid = fork(); /* SQLite used here would be initialised */
    if (pid == 0) {
        for (int i = 0; i < 2; i++) { /* both made with 8 KiB pages */
            sqlite3 *h = sq_open(i ? db : dba, 20);
            sq_exec(h, "PRAGMA page_size=8192; CREATE TABLE z(a)");
            sqlite3_close(h);
        }
        _exit(0);
    }
    ASSERT_EQ(th_wait(pid), 0);
    plain_run(dba, a, 5, 1000);
    sq_install(NULL, 1, 1000, 1);
    FILE *f = fopen(b, "w");
    ASSERT_EQ(sq_workload(db, 5, 1000, 20, f), 0);
    fclose(f);
    char *pa = sq_slurp(a), *pb = sq_slurp(b);
    ASSERT_STR_EQ(pa, pb);
    tmem_sqlite_stats s;
    tmem_sqlite_stats_get(&s);
    ASSERT_EQ(s.cc_gets, 0u);
    ASSERT_EQ(s.cc_puts, 0u);
    ASSERT_GT(s.passthrough, 100u);
    free(pa);
    free(pb);
}
