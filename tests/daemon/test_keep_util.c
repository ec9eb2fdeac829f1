/*
 * Helpers of the keep and crash tests (test_keep_util.h).
 */
#include "test_keep_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"

int ku_stop_with_log(th_daemon *d, char *log, size_t n, int sig)
{
    kill(d->pid, sig);
    int st;
    ASSERT_EQ(waitpid(d->pid, &st, 0), d->pid);
    FILE *f = fopen(d->log, "r");
    size_t k = f ? fread(log, 1, n - 1, f) : 0;
    log[k] = 0;
    if (f)
        fclose(f);
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
        FILE *f = fopen(d->log, "r");
        size_t k = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        buf[k] = 0;
        if (f)
            fclose(f);
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
    ASSERT_EQ(mkdir(d->dir, 0755), 0);
    d->pid = fork();
    ASSERT_TRUE(d->pid >= 0);
    if (d->pid == 0) {
        char prog[256];
        const char *b = getenv("BUILD");
        snprintf(prog, sizeof prog, "%s/tmemd", b && *b ? b : "build");
        /* no PR_SET_PDEATHSIG: the thread that forks it ends at once */
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 2);
        execl(prog, prog, "--socket", d->sock, "--foreground", "--budget",
              "512M", "--state-dir", state, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", d->sock);
        bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok) {
            await_serving(d);
            return;
        }
        usleep(10000);
    }
    ASSERT_TRUE(false); /* it did not come back */
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
