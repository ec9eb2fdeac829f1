/*
 * Helpers of the SQLite suite (see sq_util.h).
 */
#include "sq_util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/tmpdir.h"
#include "../runner.h"

void sq_tmpdir(char *out, size_t cap)
{
    tl_tmpdir(out, cap, "tmem-sqlite-");
}

void sq_file(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

void sq_build_path(const char *name, char *out, size_t cap)
{
    const char *b = getenv("BUILD");
    snprintf(out, cap, "%s/%s", b && *b ? b : "build", name);
}

static void redirect(const char *path, int fd, int flags)
{
    int f = open(path ? path : "/dev/null", flags, 0644);
    if (f >= 0 && f != fd) {
        dup2(f, fd);
        close(f);
    }
}

int sq_run(const char *const *argv, const char *const *env, const char *in_text,
           const char *out_path, const char *err_path)
{
    int pipefd[2];
    ASSERT_EQ(pipe(pipefd), 0);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[0], 0);
        close(pipefd[0]);
        close(pipefd[1]);
        redirect(out_path, 1, O_WRONLY | O_CREAT | O_TRUNC);
        redirect(err_path, 2, O_WRONLY | O_CREAT | O_TRUNC);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[0]);
    if (in_text) {
        size_t n = strlen(in_text), off = 0;
        while (off < n) {
            ssize_t w = write(pipefd[1], in_text + off, n - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    close(pipefd[1]);
    return th_wait(pid);
}

char *sq_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    if (!f)
        return strdup("");
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

long long sq_json_num(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = s ? strstr(s, pat) : NULL;
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

void sq_install(const char *socket, int pcache, long interval_ms, int balloon)
{
    char err[512];
    tmem_sqlite_options o;
    tmem_sqlite_options_init(&o);
    if (!socket)
        setenv("TMEM_EMBEDDED", "1", 1);
    o.socket = socket;
    o.pcache = pcache;
    o.interval_ms = interval_ms;
    o.balloon = balloon;
    int rc = tmem_sqlite_install(&o, err, sizeof err);
    if (rc != 0)
        tmem_test_fail(__FILE__, __LINE__, "install: %d %s", rc, err);
}

sqlite3 *sq_open(const char *path, int cache_pages)
{
    sqlite3 *db;
    char sql[64];
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    snprintf(sql, sizeof sql, "PRAGMA cache_size=%d; PRAGMA synchronous=OFF",
             cache_pages);
    sq_exec(db, sql);
    return db;
}

void sq_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        tmem_test_fail(__FILE__, __LINE__, "%s: %s", sql, msg);
}

char *sq_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    char *out = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        tmem_test_fail(__FILE__, __LINE__, "%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out ? out : strdup("");
}
