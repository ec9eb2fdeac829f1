/*
 * test_integ_common.h: running the tmem CLI from a test, output captured
 * through two pipes drained with poll (neither can fill up and block).
 */
#include "test_integ_common.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void drain(int fds[2], char *bufs[2], size_t caps[2])
{
    size_t len[2] = {0, 0};
    struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    int open_n = 2;
    while (open_n > 0 && poll(p, 2, 30000) > 0) {
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            char tmp[4096];
            ssize_t n = read(p[i].fd, tmp, sizeof tmp);
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_n--;
                continue;
            }
            size_t room = caps[i] > len[i] + 1 ? caps[i] - len[i] - 1 : 0;
            size_t k = (size_t)n < room ? (size_t)n : room;
            if (bufs[i])
                memcpy(bufs[i] + len[i], tmp, k);
            len[i] += k;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (p[i].fd >= 0)
            close(p[i].fd);
        if (bufs[i] && caps[i])
            bufs[i][len[i]] = '\0';
    }
}

int integ_cli_as(const th_daemon *d, uid_t uid, gid_t gid, char *out,
                 size_t out_cap, char *err, size_t err_cap, ...)
{
    const char *b = getenv("BUILD");
    char prog[256];
    const char *argv[32] = {"tmem", "--socket", d->sock};
    int argc = 3, po[2], pe[2];
    va_list ap;

    snprintf(prog, sizeof prog, "%s/tmem", b && *b ? b : "build");
    va_start(ap, err_cap);
    for (const char *a; argc < 31 && (a = va_arg(ap, const char *));)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    if (pipe(po) || pipe(pe))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        if (uid != (uid_t)-1 && (setgid(gid) || setuid(uid)))
            _exit(126);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    int fds[2] = {po[0], pe[0]};
    char *bufs[2] = {out, err};
    size_t caps[2] = {out ? out_cap : 0, err ? err_cap : 0};
    drain(fds, bufs, caps);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}
