/*
 * Admission and limits against a real tmemd: a uid flooding connections
 * past its cap (refused and counted; its earlier sessions, another uid
 * and root unaffected), the global cap with the sessions kept for admins,
 * a connection that says nothing or half a HELLO (dropped after the hello
 * timeout), a tenant that stalls or trickles mid-message (dropped after
 * the receive timeout) while an idle tenant stays, and the refusals shown
 * in tmem list.  The daemon keeps serving others throughout.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tmem/store.h>

#include "../runner.h"
#include "test_daemon_util.h"
#include "test_integ_common.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define UID_A 60001
#define UID_B 60002

/* A tenant works: a pool, pages in and back. */
static bool serves(tmem__conn *c, uint32_t seed)
{
    int p = tmem__conn_pool_new(c, NULL, PERS, NULL);
    return p >= 0 && th_put_range(c, p, seed, 8) == 8 &&
           th_count_intact(c, p, seed, 8) == 8;
}

/* As uid: opens `ok` sessions that must work and `refused` more that must
 * be refused, checks the first ones still work, then reports on `tell` and
 * waits for a byte on `wait` (if >= 0) before closing them.  Returns an
 * exit status (0: all as expected). */
static int flood_as(const th_daemon *d, uid_t uid, int ok, int refused,
                    int tell, int wait)
{
    tmem__conn *c[64];
    if (setgid(uid) < 0 || setuid(uid) < 0)
        return 20;
    for (int i = 0; i < ok; i++)
        if (tmem__conn_open(d->sock, &c[i]) < 0 || !serves(c[i], 100 + i))
            return 21;
    for (int i = 0; i < refused; i++) {
        tmem__conn *x;
        if (tmem__conn_open(d->sock, &x) == 0)
            return 22;
    }
    for (int i = 0; i < ok; i++)
        if (!serves(c[i], 200 + i))
            return 23;
    char b = 1;
    if (tell >= 0 && write(tell, &b, 1) != 1)
        return 24;
    if (wait >= 0 && read(wait, &b, 1) != 1)
        return 25;
    for (int i = 0; i < ok; i++)
        tmem__conn_close(c[i]);
    return 0;
}

static pid_t fork_flood(const th_daemon *d, uid_t uid, int ok, int refused,
                        int tell, int wait)
{
    fflush(stdout);
    pid_t k = fork();
    ASSERT_TRUE(k >= 0);
    if (k == 0)
        _exit(flood_as(d, uid, ok, refused, tell, wait));
    return k;
}

/* A flooding uid that holds its sessions until released. */
struct holder {
    pid_t pid;
    int up[2], down[2];
};

static void hold(struct holder *h, const th_daemon *d, uid_t uid, int ok,
                 int refused)
{
    char b;
    ASSERT_EQ(pipe(h->up), 0);
    ASSERT_EQ(pipe(h->down), 0);
    h->pid = fork_flood(d, uid, ok, refused, h->up[1], h->down[0]);
    /* the child's ends: closed here, so a child that fails before it
     * tells reads as EOF, not as a wait for ever */
    close(h->up[1]);
    close(h->down[0]);
    h->up[1] = h->down[0] = -1;
    ASSERT_EQ(read(h->up[0], &b, 1), 1); /* all done as expected */
}

/* Lets it close its sessions; returns its exit status. */
static int release(struct holder *h)
{
    ASSERT_EQ(write(h->down[1], "", 1), 1);
    int st = th_wait(h->pid);
    for (int i = 0; i < 2; i++) {
        if (h->up[i] >= 0)
            close(h->up[i]);
        if (h->down[i] >= 0)
            close(h->down[i]);
    }
    return st;
}

/* Waits (up to 2 s) until the daemon holds n sessions, counting the one
 * that asks; false if it never does. */
static bool sessions_settle(const th_daemon *d, long long n)
{
    for (int t = 0; t < 100; t++) {
        if (du_daemon_metric(d, "tmemd_sessions") == n)
            return true;
        usleep(20000);
    }
    return false;
}

TEST(tmemd_admit_uid_cap)
{
    if (geteuid() != 0)
        TEST_SKIP("needs root to run tenants as other uids");
    th_daemon d;
    th_start(&d, (const char *const[]){"--max-sessions-per-uid", "4", NULL});
    /* uid A: 4 sessions, 3 more refused, the 4 still serve; it holds them */
    struct holder a;
    hold(&a, &d, UID_A, 4, 3);
    ASSERT_EQ(du_refusals(&d, "sessions_uid"), 3);
    /* while A holds its cap: another uid gets its own 4, root more */
    ASSERT_EQ(th_wait(fork_flood(&d, UID_B, 4, 1, -1, -1)), 0);
    ASSERT_EQ(du_refusals(&d, "sessions_uid"), 4);
    tmem__conn *r[6];
    for (int i = 0; i < 6; i++) {
        r[i] = th_conn(&d);
        ASSERT_TRUE(serves(r[i], 300 + (uint32_t)i));
    }
    ASSERT_EQ(release(&a), 0);
    /* A's sessions gone (root's 6 and the one asking remain), its slots
     * come back */
    ASSERT_TRUE(sessions_settle(&d, 7));
    ASSERT_EQ(th_wait(fork_flood(&d, UID_A, 4, 0, -1, -1)), 0);
    ASSERT_EQ(du_refusals(&d, "sessions_global"), 0);
    static char out[1 << 16];
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "list", NULL), 0);
    ASSERT_TRUE(strstr(out, "refusals:") != NULL);
    char *line = strstr(out, "sessions_uid");
    ASSERT_TRUE(line != NULL);
    ASSERT_EQ(strtol(line + strlen("sessions_uid"), NULL, 10), 4);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -q 'connection refused (sessions_uid)' %s",
             d.log);
    ASSERT_EQ(system(cmd), 0);
    for (int i = 0; i < 6; i++)
        tmem__conn_close(r[i]);
    ASSERT_EQ(th_stop(&d), 0);
}

/* The daemon's figures over HTTP: no session of its own, so they can be
 * read while every session is taken. */
static long long sessions_now(int port)
{
    return du_http_metric(port, "tmemd_sessions");
}

static long long global_refusals(int port)
{
    return du_http_metric(port,
                          "tmemd_refusals_total{reason=\"sessions_global\"}");
}

static bool settle_http(int port, long long n)
{
    for (int t = 0; t < 100 && sessions_now(port) != n; t++)
        usleep(20000);
    return sessions_now(port) == n;
}

TEST(tmemd_admit_global_cap_keeps_admin_sessions)
{
    if (geteuid() != 0)
        TEST_SKIP("needs root to run tenants as other uids");
    th_daemon d;
    /* 8 at once, the last 4 (TMEMD_ADMIN_RESERVE) only for admins */
    int port = du_start_metrics(
        &d, "", 0, (const char *const[]){"--max-sessions", "8", NULL});
    struct holder a;
    hold(&a, &d, UID_A, 4, 2);
    ASSERT_EQ(th_wait(fork_flood(&d, UID_B, 0, 1, -1, -1)), 0);
    ASSERT_EQ(sessions_now(port), 4);
    ASSERT_EQ(global_refusals(port), 3);
    tmem__conn *r[4]; /* root: the reserve */
    for (int i = 0; i < 4; i++) {
        r[i] = th_conn(&d);
        ASSERT_TRUE(serves(r[i], 400 + (uint32_t)i));
    }
    tmem__conn *x;
    ASSERT_TRUE(tmem__conn_open(d.sock, &x) < 0); /* 9th: even root */
    ASSERT_EQ(sessions_now(port), 8);
    ASSERT_EQ(global_refusals(port), 4);
    ASSERT_EQ(release(&a), 0);
    ASSERT_TRUE(settle_http(port, 4)); /* root's 4 */
    ASSERT_EQ(du_refusals(&d, "sessions_uid"), 0);
    for (int i = 0; i < 4; i++)
        tmem__conn_close(r[i]);
    ASSERT_EQ(th_stop(&d), 0);
}

/* Milliseconds until the daemon closes fd (reads see EOF or a reset), or
 * -1 when it is still open after max_ms. */
static long closed_within(int fd, long max_ms)
{
    uint64_t t0 = tmem__now_ns();
    for (;;) {
        long ms = (long)((tmem__now_ns() - t0) / 1000000);
        if (ms > max_ms)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(max_ms - ms) + 1) <= 0)
            continue;
        char sink[256];
        ssize_t r = read(fd, sink, sizeof sink);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return (long)((tmem__now_ns() - t0) / 1000000);
    }
}

TEST(tmemd_admit_silent_connections_dropped)
{
    th_daemon d;
    th_start(&d, (const char *const[]){"--hello-timeout", "0.5", NULL});
    tmem__conn *idle = th_conn(&d); /* after HELLO: may stay silent */
    int silent = th_raw(&d);
    int half = th_raw(&d);
    ASSERT_EQ(write(half, "\x50\x00\x00", 3), 3); /* a third of a header */
    tmem__conn *c = th_conn(&d);                  /* served meanwhile */
    ASSERT_TRUE(serves(c, 1));
    long ms = closed_within(silent, 3000);
    ASSERT_GE(ms, 300);
    ASSERT_LE(ms, 2000);
    ASSERT_LE(closed_within(half, 1000), 1000);
    ASSERT_EQ(du_refusals(&d, "hello_timeout"), 2);
    usleep(300000); /* the idle tenant, well past the hello timeout */
    ASSERT_TRUE(serves(idle, 2));
    ASSERT_TRUE(serves(c, 3));
    ASSERT_EQ(du_refusals(&d, "recv_timeout"), 0);
    ASSERT_TRUE(th_alive(&d));
    close(silent);
    close(half);
    tmem__conn_close(c);
    tmem__conn_close(idle);
    ASSERT_EQ(th_stop(&d), 0);
}

/* A raw session after HELLO that sent the header of a PUT and `body`
 * bytes of it. */
static int partial_put(const th_daemon *d, size_t body)
{
    int fd = th_raw(d);
    ASSERT_EQ(th_raw_hello(fd), 0);
    tmem__msg_hdr h = {.len = TMEM_MSG_REQ_MAX, .op = TMEM_MSG_PUT, .seq = 2};
    ASSERT_EQ(tmem__io_write(fd, &h, sizeof h), 0);
    static const char zeros[TMEM_MSG_REQ_MAX];
    if (body)
        ASSERT_EQ(tmem__io_write(fd, zeros, body), 0);
    return fd;
}

TEST(tmemd_admit_partial_message_dropped)
{
    th_daemon d;
    th_start(&d, (const char *const[]){"--recv-timeout", "0.5", NULL});
    tmem__conn *idle = th_conn(&d);
    int stall = partial_put(&d, 10);
    tmem__conn *c = th_conn(&d);
    ASSERT_TRUE(serves(c, 1)); /* while one stalls, others are served */
    long ms = closed_within(stall, 3000);
    ASSERT_GE(ms, 300);
    ASSERT_LE(ms, 2000);
    ASSERT_EQ(du_refusals(&d, "recv_timeout"), 1);
    /* a trickle (a byte every 50 ms) does not stretch the deadline: it
     * covers the whole message, not each read */
    int trickle = partial_put(&d, 0);
    uint64_t t0 = tmem__now_ns();
    bool dropped = false;
    while (!dropped && tmem__now_ns() - t0 < 3000000000ull) {
        usleep(50000);
        dropped = send(trickle, "x", 1, MSG_NOSIGNAL) < 0 ||
                  closed_within(trickle, 0) >= 0;
    }
    ASSERT_TRUE(dropped);
    ASSERT_LE((tmem__now_ns() - t0) / 1000000, 2000);
    ASSERT_EQ(du_refusals(&d, "recv_timeout"), 2);
    ASSERT_TRUE(serves(idle, 2)); /* idle between requests: fine */
    ASSERT_TRUE(serves(c, 3));
    ASSERT_EQ(du_refusals(&d, "hello_timeout"), 0);
    close(stall);
    close(trickle);
    tmem__conn_close(c);
    tmem__conn_close(idle);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_admit_bad_limits_refused)
{
    static const char *const bad[][2] = {
        {"--max-sessions", "0"},         {"--max-sessions", "4"},
        {"--max-sessions", "5000"},      {"--max-sessions-per-uid", "-1"},
        {"--max-sessions-per-uid", "x"}, {"--hello-timeout", "0"},
        {"--hello-timeout", "-1"},       {"--recv-timeout", "4000"},
        {"--recv-timeout", "1s"},
    };
    const char *b = getenv("BUILD");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "%s/tmemd --socket /nonexistent/s %s %s --foreground "
                 "2>/dev/null",
                 b && *b ? b : "build", bad[i][0], bad[i][1]);
        int st = system(cmd);
        ASSERT_EQ(WEXITSTATUS(st), 2);
    }
}
