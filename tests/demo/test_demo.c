/*
 * tmem demo --quick, the whole of it, as make demo runs it: real tmemd,
 * SQLite tenants, redis under tmem run, a cgroup tenant under tmem balloon
 * run with zram.  Its report must exist with its plots, and its figures
 * must hold: no OOM kill, every answer right, every tenant to the end,
 * pages in the pool, host memory saved.  Also its bad options and --help.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "client/json.h"

static const char *build(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

/* Runs a shell command; its exit status, output in out (may be NULL). */
static int sh(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    int st;

    ASSERT_TRUE(p != NULL);
    if (out) {
        n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
    } else {
        char sink[4096];
        while (fread(sink, 1, sizeof sink, p) > 0)
            ;
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static long file_size(const char *dir, const char *name)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* The first word of the demo's output starting with prefix (what it said
 * it would make, or made), without a trailing '/'. */
static bool said_made(const char *log, const char *prefix, char *out,
                      size_t cap)
{
    const char *p = strstr(log, prefix);
    size_t n = 0;
    if (!p)
        return false;
    while (p[n] && p[n] != ' ' && p[n] != '\n' && n + 1 < cap)
        n++;
    while (n && p[n - 1] == '/')
        n--;
    snprintf(out, cap, "%.*s", (int)n, p);
    return n > strlen(prefix);
}

static double num(const tmem__json *o, const char *k)
{
    const tmem__json *v = tmem__json_get(o, k);
    ASSERT_TRUE(v != NULL);
    return v->num;
}

static void needs_host(void)
{
    if (geteuid() != 0)
        TEST_SKIP("tmem demo needs root (cgroups, zram)");
    if (access("/sys/class/zram-control/hot_add", F_OK) != 0)
        TEST_SKIP("no zram on this kernel (/sys/class/zram-control)");
    if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) != 0 &&
        access("/sys/fs/cgroup/cgroup.controllers", F_OK) != 0)
        TEST_SKIP("no memory cgroup controller");
    if (system("command -v redis-server >/dev/null") != 0)
        TEST_SKIP("redis-server is not installed");
}

TEST(demo_quick_report_holds)
{
    char base[] = "/tmp/tmem-demo-test-XXXXXX", out[256], cmd[1024];
    static char text[1 << 18];
    tmem__json *j = NULL;
    int rc;

    needs_host();
    ASSERT_TRUE(mkdtemp(base) != NULL);
    snprintf(out, sizeof out, "%s/report", base);
    snprintf(cmd, sizeof cmd, "%s/tmem demo --quick --out %s 2>&1", build(),
             out);
    rc = sh(cmd, text, sizeof text);
    printf("%s", text);
    fflush(stdout); /* all of it before any failure ends the test */
    char *log = strdup(text);
    ASSERT_TRUE(file_size(out, "report.md") > 1000);
    snprintf(cmd, sizeof cmd, "cat %s/summary.json", out);
    ASSERT_EQ(sh(cmd, text, sizeof text), 0);
    ASSERT_EQ(tmem__json_parse(text, &j), 0);
    ASSERT_EQ(num(j, "oom_kills"), 0);
    ASSERT_EQ(num(j, "wrong"), 0);
    ASSERT_EQ(num(j, "failed"), 0);
    ASSERT_GT(num(j, "pool_pages_max"), 0);
    ASSERT_GT(num(j, "memory_saved_bytes"), 0);
    const tmem__json *ts = tmem__json_get(j, "tenants");
    ASSERT_TRUE(ts && ts->n == 4);
    for (const tmem__json *t = ts->kids; t; t = t->next) {
        /* every tenant worked in both phases, every second sampled */
        ASSERT_GT(num(t, "ops_with"), 0);
        ASSERT_GT(num(t, "ops_without"), 0);
        ASSERT_GE(num(t, "samples"), num(j, "seconds"));
    }
    ASSERT_EQ(rc, 0); /* the demo's own verdict agrees */
    static const char *png[] = {"memory.png", "host.png", "pool.png",
                                "reads.png", "throughput.png"};
    for (size_t i = 0; i < sizeof png / sizeof png[0]; i++)
        ASSERT_GT(file_size(out, png[i]), 5000);
    /* nothing it said it made is left: data, cgroups, swap on its zram */
    static const char *made[] = {"/var/tmp/tmem-demo-", "/sys/fs/cgroup/",
                                 "/dev/zram"};
    char swaps[4096] = "";
    FILE *f = fopen("/proc/swaps", "r");
    ASSERT_TRUE(f != NULL);
    swaps[fread(swaps, 1, sizeof swaps - 1, f)] = '\0';
    fclose(f);
    for (size_t i = 0; i < 3; i++) {
        char path[256];
        ASSERT_TRUE(said_made(log, made[i], path, sizeof path));
        printf("  made: %s\n", path);
        if (i < 2)
            ASSERT_TRUE(access(path, F_OK) != 0);
        else
            ASSERT_TRUE(strstr(swaps, path) == NULL);
    }
    free(log);
    tmem__json_free(j);
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    ASSERT_EQ(sh(cmd, NULL, 0), 0);
}

TEST(demo_options_in_words)
{
    char cmd[512], text[4096];

    snprintf(cmd, sizeof cmd, "%s/tmem demo --help", build());
    ASSERT_EQ(sh(cmd, text, sizeof text), 0);
    ASSERT_TRUE(strstr(text, "usage: tmem demo") != NULL);
    snprintf(cmd, sizeof cmd, "%s/tmem demo --seconds 2 2>&1", build());
    ASSERT_EQ(sh(cmd, text, sizeof text), 2);
    ASSERT_TRUE(strstr(text, "--seconds") != NULL);
    snprintf(cmd, sizeof cmd, "%s/tmem demo --frobnicate 2>&1", build());
    ASSERT_EQ(sh(cmd, text, sizeof text), 2);
    ASSERT_TRUE(strstr(text, "--frobnicate") != NULL);
    snprintf(cmd, sizeof cmd, "%s/tmem demo --out '' 2>&1", build());
    ASSERT_EQ(sh(cmd, text, sizeof text), 2);
    if (geteuid() == 0) { /* as a user: it says it needs root, makes nothing */
        snprintf(cmd, sizeof cmd,
                 "su nobody -s /bin/sh -c '%s/tmem demo --quick' 2>&1",
                 build());
        ASSERT_EQ(sh(cmd, text, sizeof text), 1);
        ASSERT_TRUE(strstr(text, "needs root") != NULL);
        ASSERT_TRUE(strstr(text, "removing") == NULL);
    }
}
