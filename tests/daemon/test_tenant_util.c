/*
 * test_tenant_util.h: what the tenant tests read of tmemd, and the files
 * they give it.
 */
#include "test_tenant_util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runner.h"

tmem__conn *tu_open(const th_daemon *d, const char *name, bool socket_only)
{
    tmem__conn *c = NULL;
    if (socket_only)
        setenv("TMEM_RING", "0", 1);
    else
        unsetenv("TMEM_RING");
    int rc = tmem__conn_open_named(d->sock, name, &c);
    unsetenv("TMEM_RING");
    ASSERT_EQ(rc, 0);
    return c;
}

tmem__json *tu_stats(const th_daemon *d)
{
    tmem__conn *c = tu_open(d, NULL, true);
    char *text = NULL;
    tmem__json *root = NULL;
    ASSERT_EQ(tmem__conn_stats_json(c, &text), 0);
    tmem__conn_close(c);
    ASSERT_EQ(tmem__json_parse(text, &root), 0);
    free(text);
    return root;
}

/* The entry of array arr whose member key is id. */
static const tmem__json *entry(const tmem__json *arr, const char *key, int id)
{
    for (const tmem__json *e = arr ? arr->kids : NULL; e; e = e->next) {
        const tmem__json *v = tmem__json_get(e, key);
        if (v && v->type == TMEM_JSON_NUMBER && (int)v->num == id)
            return e;
    }
    return NULL;
}

const tmem__json *tu_client(const tmem__json *root, int id)
{
    return entry(tmem__json_get(root, "clients"), "client_id", id);
}

const tmem__json *tu_conn(const tmem__json *root, int id)
{
    return entry(tmem__json_get(root, "connections"), "client", id);
}

static const tmem__json *member(const tmem__json *obj, const char *key)
{
    const tmem__json *v = tmem__json_get(obj, key);
    if (!v)
        tmem_test_fail(__FILE__, __LINE__, "no \"%s\" in the stats", key);
    return v;
}

double tu_num(const tmem__json *obj, const char *key)
{
    const tmem__json *v = member(obj, key);
    ASSERT_TRUE(v->type == TMEM_JSON_NUMBER || v->type == TMEM_JSON_BOOL);
    return v->num;
}

const char *tu_str(const tmem__json *obj, const char *key)
{
    const tmem__json *v = member(obj, key);
    ASSERT_TRUE(v->type == TMEM_JSON_STRING);
    return v->str;
}

double tu_stat(const th_daemon *d, const char *where, int id, const char *key)
{
    tmem__json *root = tu_stats(d);
    const tmem__json *o = strcmp(where, "client") == 0 ? tu_client(root, id)
                          : strcmp(where, "conn") == 0
                              ? tu_conn(root, id)
                              : tmem__json_get(root, where);
    if (!o)
        tmem_test_fail(__FILE__, __LINE__, "no %s %d in the stats", where, id);
    double v = tu_num(o, key);
    tmem__json_free(root);
    return v;
}

void tu_write_conf(char path[64], const char *text)
{
    char tmp[80];
    if (!path[0]) {
        snprintf(path, 64, "/tmp/tmemd-conf-XXXXXX");
        int fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        close(fd);
    }
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(fputs(text, f) >= 0, 1);
    ASSERT_EQ(fclose(f), 0);
    ASSERT_EQ(rename(tmp, path), 0);
}

void tu_await_loads(const th_daemon *d, int ok, int failed)
{
    double got_ok = -1, got_failed = -1;
    for (int i = 0; i < 300; i++) {
        tmem__json *root = tu_stats(d);
        const tmem__json *p = tmem__json_get(root, "policy");
        ASSERT_TRUE(p != NULL);
        got_ok = tu_num(p, "loads");
        got_failed = tu_num(p, "load_failures");
        tmem__json_free(root);
        if (got_ok == ok && got_failed == failed)
            return;
        usleep(10000);
    }
    tmem_test_fail(__FILE__, __LINE__,
                   "policy loads %g, failures %g; waited for %d and %d", got_ok,
                   got_failed, ok, failed);
}

int tu_run_tmemd(const char *const *args, char *err, size_t cap)
{
    const char *b = getenv("BUILD");
    char prog[256], dir[] = "/tmp/tmemd-run-XXXXXX", sock[64], log[64];
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(prog, sizeof prog, "%s/tmemd", b && *b ? b : "build");
    snprintf(sock, sizeof sock, "%s/sock", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    const char *argv[32] = {prog, "--socket", sock, "--foreground"};
    int n = 4;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    int st = -1;
    for (int i = 0; i < 500 && waitpid(pid, &st, WNOHANG) == 0; i++)
        usleep(10000);
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        tmem_test_fail(__FILE__, __LINE__, "tmemd kept running (log %s)", log);
    }
    tu_read_file(log, err, cap);
    ASSERT_EQ(access(sock, F_OK), -1); /* it never listened */
    unlink(log);
    rmdir(dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void tu_read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
}
