/*
 * The daemon test harness (see tmemd_harness.h): a real tmemd per
 * test, on a socket in its own temp dir, killed with the test.
 */
#include "tmemd_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runner.h"
#include "tmpdir.h"

/* pdeath: the daemon dies with the thread that forked it (a restart
 * from a helper thread that ends at once must not ask for that). */
static void exec_daemon(th_daemon *d, const char *const *extra, bool pdeath)
{
    const char *b = getenv("BUILD");
    char prog[256];
    snprintf(prog, sizeof prog, "%s/tmemd", b && *b ? b : "build");
    const char *argv[32] = {prog,           "--socket", d->sock,
                            "--foreground", "--budget", "512M"};
    int n = 6;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    if (pdeath)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0)
        dup2(fd, 2);
    execv(prog, (char *const *)argv);
    _exit(127);
}

static bool can_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Forks and execs the daemon into d (its dir made), and waits for its
 * socket. */
static void spawn(th_daemon *d, const char *const *extra, bool pdeath)
{
    d->pid = fork();
    ASSERT_TRUE(d->pid >= 0);
    if (d->pid == 0)
        exec_daemon(d, extra, pdeath);
    for (int i = 0; i < 500; i++) {
        if (can_connect(d->sock))
            return;
        if (!th_alive(d))
            break;
        usleep(10000);
    }
    tmem_test_fail(__FILE__, __LINE__, "tmemd did not start (log %s)", d->log);
}

/* The daemons this test process started, so that a test that passes
 * leaves none running and no directory behind even when it never stopped
 * its daemon (or put files of its own next to the log): at exit(0) each
 * one still running gets SIGTERM (SIGKILL after 2 s), then its directory
 * goes (tmpdir.h).  A failing test ends in _exit, which skips this: its
 * logs stay. */
#define TH_MAX 64
static struct {
    char dir[64];
    pid_t pid;
} started[TH_MAX];
static int nstarted;
static pid_t owner;

static void end_daemon(pid_t pid)
{
    int st;

    if (pid <= 0 || waitpid(pid, &st, WNOHANG) != 0)
        return; /* reaped already, or not our child */
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

static void end_started(void)
{
    if (getpid() != owner)
        return; /* a forked child that called exit(): not its daemons */
    for (int i = 0; i < nstarted; i++)
        end_daemon(started[i].pid);
}

static void note_started(const th_daemon *d)
{
    for (int i = 0; i < nstarted; i++)
        if (strcmp(started[i].dir, d->dir) == 0) {
            started[i].pid = d->pid;
            return;
        }
    /* atexit runs in reverse: the directory is registered first, so it
     * goes after its daemon has ended */
    tl_remove_at_exit(d->dir);
    if (owner != getpid()) { /* first in this test process */
        owner = getpid();
        nstarted = 0;
        atexit(end_started);
    }
    if (nstarted == TH_MAX)
        return;
    snprintf(started[nstarted].dir, sizeof started[nstarted].dir, "%s",
             d->dir);
    started[nstarted++].pid = d->pid;
}

void th_start(th_daemon *d, const char *const *extra)
{
    snprintf(d->dir, sizeof d->dir, "/tmp/tmemd-test-XXXXXX");
    ASSERT_TRUE(mkdtemp(d->dir) != NULL);
    chmod(d->dir, 0755); /* a tenant running as nobody must reach it */
    snprintf(d->sock, sizeof d->sock, "%s/sock", d->dir);
    snprintf(d->log, sizeof d->log, "%s/log", d->dir);
    spawn(d, extra, true);
    note_started(d);
}

size_t th_log(const th_daemon *d, char *buf, size_t n)
{
    FILE *f = fopen(d->log, "r");
    size_t k = f ? fread(buf, 1, n - 1, f) : 0;
    buf[k] = 0;
    if (f)
        fclose(f);
    return k;
}

void th_restart(th_daemon *d, const char *const *extra)
{
    ASSERT_EQ(mkdir(d->dir, 0755), 0);
    spawn(d, extra, false);
    note_started(d);
}

int th_wait(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int th_tenants(const th_daemon *d, int n, th_tenant_fn fn, uint32_t seed0,
               unsigned arg)
{
    pid_t kids[64];
    int first = 0;
    ASSERT_TRUE(n >= 1 && n <= 64);
    fflush(stdout); /* children must not repeat buffered output */
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        ASSERT_TRUE(kids[i] >= 0);
        if (kids[i] == 0)
            _exit(fn(d, seed0 + (uint32_t)i, arg));
    }
    for (int i = 0; i < n; i++) {
        int st = th_wait(kids[i]);
        if (st != 0 && first == 0)
            first = st;
    }
    return first;
}

bool th_alive(const th_daemon *d)
{
    int st;
    return waitpid(d->pid, &st, WNOHANG) == 0;
}

int th_stop(th_daemon *d)
{
    int st;
    kill(d->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(d->pid, &st, WNOHANG);
        if (r != d->pid) {
            usleep(10000);
            continue;
        }
        int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (rc == 0) { /* keep the log of a daemon that failed */
            unlink(d->log);
            unlink(d->sock);
            rmdir(d->dir); /* what else the test put there goes at exit */
        }
        return rc;
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    return -1;
}

tmem__conn *th_conn(const th_daemon *d)
{
    tmem__conn *c = NULL;
    int rc = tmem__conn_open(d->sock, &c);
    ASSERT_EQ(rc, 0);
    return c;
}

int th_raw(const th_daemon *d)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", d->sock);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

int th_raw_status(int fd)
{
    unsigned char b[TMEM_MSG_REQ_MAX];
    tmem__msg_hdr h;
    tmem__msg_res r;
    ASSERT_EQ(tmem__io_read(fd, b, TMEM_MSG_REPLY_BASE), 0);
    ASSERT_EQ(tmem__reply_decode(b, &h, &r), 0);
    /* a payload (HELLO's resume token): read and dropped */
    ASSERT_TRUE(r.payload <= sizeof b);
    if (r.payload)
        ASSERT_EQ(tmem__io_read(fd, b, r.payload), 0);
    return h.status;
}

int th_raw_hello_token(int fd, const uint64_t token[2])
{
    unsigned char b[TMEM_MSG_REQ_MAX];
    tmem__msg_args a = {.arg = TMEM_PROTO_VERSION, .flags = TMEM_PROTO_MAGIC};
    if (token) {
        a.oid[0] = token[0];
        a.oid[1] = token[1];
    }
    int n = tmem__req_encode(b, sizeof b, TMEM_MSG_HELLO, 1, &a, NULL);
    ASSERT_EQ(tmem__io_write(fd, b, (size_t)n), 0);
    return th_raw_status(fd);
}

int th_raw_hello(int fd)
{
    return th_raw_hello_token(fd, NULL);
}

void th_fill(void *page, uint32_t seed, uint32_t index)
{
    uint32_t *w = page;
    uint32_t x = seed * 2654435761u ^ index * 40503u ^ 0x9e3779b9u;
    for (unsigned i = 0; i < TMEM_PAGE_SIZE / 4; i++) {
        /* half the words vary: compressible, never same-filled */
        w[i] = (i & 1) ? x + i : (x ^= x << 13, x ^= x >> 17, x ^= x << 5);
    }
}

bool th_check(const void *page, uint32_t seed, uint32_t index)
{
    uint32_t want[TMEM_PAGE_SIZE / 4];
    th_fill(want, seed, index);
    return memcmp(page, want, TMEM_PAGE_SIZE) == 0;
}

int th_put_range(tmem__conn *c, int pool, uint32_t seed, uint32_t n)
{
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{seed, 0, 0}};
    int good = 0;
    for (uint32_t i = 0; i < n; i++) {
        th_fill(page, seed, i);
        good += tmem__conn_put(c, pool, &o, i, page) == 1;
    }
    return good;
}

int th_count_intact(tmem__conn *c, int pool, uint32_t seed, uint32_t n)
{
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{seed, 0, 0}};
    int good = 0;
    for (uint32_t i = 0; i < n; i++)
        good += tmem__conn_get(c, pool, &o, i, page) == 1 &&
                th_check(page, seed, i);
    return good;
}
