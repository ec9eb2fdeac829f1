/*
 * tmem_sqlite_load, the workload driver: a run through a real tmemd
 * prints one JSON line per interval and a last one with "done":true, no
 * wrong read, pages through cleancache; the baseline (--no-tmem) runs on
 * the same database; every bad command line or database is exit status
 * 2 with a sentence that names the problem.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runner.h"
#include "sq_util.h"

static int driver(const char *const *args, const char *const *env,
                  const char *out, const char *err)
{
    char prog[160];
    const char *argv[32] = {prog};
    int n = 1;
    sq_build_path("tmem_sqlite_load", prog, sizeof prog);
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return sq_run(argv, env, NULL, out, err);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

TEST(sqlite_driver_runs_through_tmemd)
{
    char dir[64], db[128], out[128], err[128];
    th_daemon d;
    th_start(&d, NULL);
    sq_tmpdir(dir, sizeof dir);
    sq_file(db, sizeof db, dir, "load.db");
    sq_file(out, sizeof out, dir, "out");
    sq_file(err, sizeof err, dir, "err");
    const char *args[] = {"--db", db, "--create-mb", "8", "--cache-mb", "1",
                          "--seconds", "2", "--interval-ms", "250",
                          "--write-pct", "5", "--socket", d.sock,
                          "--name", "loadtest", NULL};
    const char *env[] = {"TMEM_EMBEDDED=0", NULL};
    ASSERT_EQ(driver(args, env, out, err), 0);
    char *o = sq_slurp(out), *last = NULL;
    ASSERT_GE(count_lines(o), 6);
    for (char *p = strtok(o, "\n"); p; p = strtok(NULL, "\n")) {
        ASSERT_EQ(sq_json_num(p, "wrong"), 0);
        ASSERT_TRUE(strstr(p, "\"name\":\"loadtest\"") != NULL);
        last = p;
    }
    ASSERT_TRUE(strstr(last, "\"done\":true") != NULL);
    ASSERT_GT(sq_json_num(last, "ops"), 1000);
    ASSERT_GT(sq_json_num(last, "writes"), 10);
    ASSERT_GT(sq_json_num(last, "cc_hits"), 100);
    ASSERT_GT(sq_json_num(last, "cc_puts"), 100);
    ASSERT_EQ(sq_json_num(last, "cache_pages") <= 256, 1);
    ASSERT_GT(sq_json_num(last, "file_read_bytes"), 0);
    free(o);
    const char *base[] = {"--db", db, "--cache-mb", "1", "--seconds", "1",
                          "--no-tmem", NULL};
    ASSERT_EQ(driver(base, NULL, out, err), 0);
    o = sq_slurp(out);
    ASSERT_TRUE(strstr(o, "\"done\":true") != NULL);
    ASSERT_EQ(sq_json_num(o, "cc_gets"), 0);
    free(o);
}

struct bad {
    const char *args[12];
    const char *says;
};

TEST(sqlite_driver_bad_inputs)
{
    char dir[64], out[128], err[128], notdb[128], nodb[128];
    sq_tmpdir(dir, sizeof dir);
    sq_file(out, sizeof out, dir, "out");
    sq_file(err, sizeof err, dir, "err");
    sq_file(notdb, sizeof notdb, dir, "notdb");
    sq_file(nodb, sizeof nodb, dir, "absent.db");
    FILE *f = fopen(notdb, "w");
    fputs("this is not a database, not at all, no\n", f);
    fclose(f);
    const struct bad cases[] = {
        {{NULL}, "--db PATH is required"},
        {{"--db", nodb, "--frobnicate", NULL}, "unknown option \"--frobnicate\""},
        {{"--db", nodb, "--zipf", "1.5", NULL}, "--zipf \"1.5\": want a number"},
        {{"--db", nodb, "--write-pct", "101", NULL}, "--write-pct \"101\""},
        {{"--db", nodb, "--seconds", "soon", NULL}, "--seconds \"soon\""},
        {{"--db", nodb, "--cache-mb", "0", NULL}, "--cache-mb \"0\""},
        {{"--db", nodb, "--cache-mb", "-3", NULL}, "--cache-mb \"-3\""},
        {{"--db", nodb, "--seed", NULL}, "--seed needs a value"},
        {{"--db", nodb, "--name", "a b", NULL}, "--name \"a b\""},
        {{"--db", nodb, "--no-tmem", "--socket", "/x", NULL},
         "--socket and --no-tmem"},
        {{"--db", nodb, "--no-tmem", NULL}, "no such database"},
        {{"--db", notdb, "--no-tmem", NULL}, "file is not a database"},
        {{"--db", nodb, "--create-mb", "1", "--socket", "/nonexistent/s",
          NULL},
         "no tmem store"},
    };
    const char *env[] = {"TMEM_EMBEDDED=0", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = driver(cases[i].args, env, out, err);
        char *e = sq_slurp(err);
        if (rc != 2 || !strstr(e, cases[i].says))
            tmem_test_fail(__FILE__, __LINE__, "case %zu: exit %d, \"%s\"", i,
                           rc, e);
        free(e);
    }
    ASSERT_EQ(access(nodb, F_OK), -1); /* nothing made on the way */
}
