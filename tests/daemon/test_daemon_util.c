/*
 * test_daemon_util.h: tmemd's metrics as the tests read them.
 */
#include "test_daemon_util.h"

#include <arpa/inet.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../runner.h"

long long du_metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    return -1;
}

char *du_prometheus(const th_daemon *d)
{
    tmem__conn *c = th_conn(d);
    char *pr = NULL;
    ASSERT_EQ(tmem__conn_prometheus(c, &pr), 0);
    tmem__conn_close(c);
    return pr;
}

long long du_daemon_metric(const th_daemon *d, const char *name)
{
    char *pr = du_prometheus(d);
    long long v = du_metric(pr, name);
    free(pr);
    return v;
}

long long du_refusals(const th_daemon *d, const char *reason)
{
    char name[96];
    snprintf(name, sizeof name, "tmemd_refusals_total{reason=\"%s\"}", reason);
    return du_daemon_metric(d, name);
}

char *du_http_get(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return NULL;
    }
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
    ASSERT_EQ(write(fd, req, (size_t)n), n);
    size_t cap = 4 << 20, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = 0;
    close(fd);
    return buf;
}

int du_start_metrics(th_daemon *d, const char *prefix, int k,
                     const char *const *extra)
{
    int port = 20000 + (getpid() * 7 + k) % 20000;
    char arg[64];
    const char *argv[16] = {"--metrics", arg};
    int n = 2;
    snprintf(arg, sizeof arg, "%s%d", prefix, port);
    for (int i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    th_start(d, argv);
    du_await_http(port);
    return port;
}

void du_await_http(int port)
{
    char *body = NULL;
    for (int t = 0; t < 200 && !(body = du_http_get(port, "/metrics")); t++)
        usleep(10000);
    ASSERT_TRUE(body != NULL);
    free(body);
}

long long du_http_metric(int port, const char *name)
{
    char *body = du_http_get(port, "/metrics");
    char *text = body ? strstr(body, "\r\n\r\n") : NULL;
    long long v = text ? du_metric(text + 4, name) : -1;
    free(body);
    return v;
}

int du_fork_tenants(const th_daemon *d, int n, du_tenant_fn fn, void *arg,
                    pid_t *kid, _Atomic int *ready, int wait_ms)
{
    fflush(stdout); /* children must not repeat buffered output */
    fflush(stderr);
    for (int k = 0; k < n; k++) {
        kid[k] = fork();
        ASSERT_TRUE(kid[k] >= 0);
        if (kid[k] == 0)
            _exit(fn(d, arg, k));
    }
    for (int t = 0; t < wait_ms && atomic_load(ready) < n; t++)
        usleep(1000);
    return atomic_load(ready);
}

int du_as_nobody(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t kid = fork();
    ASSERT_GE(kid, 0);
    if (kid == 0) {
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(3);
        _exit(fn(arg));
    }
    return th_wait(kid);
}
