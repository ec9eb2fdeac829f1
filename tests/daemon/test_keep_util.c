/*
 * Helpers of the keep and crash tests (test_keep_util.h).
 */
#include "test_keep_util.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"

int ku_stop_with_log(th_daemon *d, char *log, size_t n, int sig)
{
    kill(d->pid, sig);
    int st;
    ASSERT_EQ(waitpid(d->pid, &st, 0), d->pid);
    th_log(d, log, n);
    unlink(d->log);
    unlink(d->sock);
    rmdir(d->dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Waits (up to 10 s) for the daemon's "serving on" line: its socket
 * answers as soon as it listens, before what it kept is taken in. */
static void await_serving(const th_daemon *d)
{
    for (int i = 0; i < 1000; i++) {
        char buf[65536];
        th_log(d, buf, sizeof buf);
        if (strstr(buf, "serving on"))
            return;
        usleep(10000);
    }
    ASSERT_TRUE(false); /* it never served */
}

void ku_start_kept(th_daemon *d, const char *state)
{
    const char *extra[] = {"--state-dir", state, NULL};
    th_start(d, extra);
    await_serving(d);
}

void ku_restart_same(th_daemon *d, const char *state)
{
    th_restart(d, (const char *const[]){"--state-dir", state, NULL});
    await_serving(d);
}

struct later {
    th_daemon *d;
    const char *state;
    int ms;
};

static void *restart_later(void *arg)
{
    struct later *l = arg;
    usleep((useconds_t)l->ms * 1000);
    ku_restart_same(l->d, l->state);
    free(l);
    return NULL;
}

pthread_t ku_restart_later(th_daemon *d, const char *state, int ms)
{
    struct later *l = malloc(sizeof *l);
    ASSERT_TRUE(l != NULL);
    *l = (struct later){d, state, ms};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, restart_later, l), 0);
    return t;
}

void ku_rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
}

bool ku_dir_has(const char *dir, const char *prefix, const char *suffix,
                char *out, size_t n)
{
    DIR *dp = opendir(dir);
    ASSERT_TRUE(dp != NULL);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(dp)) != NULL) {
        size_t b = strlen(e->d_name), sl = strlen(suffix);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || b < sl ||
            strcmp(e->d_name + b - sl, suffix) != 0)
            continue;
        found = true;
        if (out)
            snprintf(out, n, "%s/%s", dir, e->d_name);
    }
    closedir(dp);
    return found;
}
