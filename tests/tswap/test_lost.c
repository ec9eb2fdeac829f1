/*
 * A page tswap stored that cannot come back stops the process with one
 * line on stderr naming the address and the reason (abort: SIGABRT),
 * never a zero or wrong page.  Made to happen through tmemd: an
 * administrator destroys the client after its pages went out.  The
 * tenant is a child process whose stderr the test reads.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "tswap_testutil.h"

/* The tenant: stores pages, has its client destroyed, touches one.
 * Writes the address it touches to out first. */
static int tenant(const ts_daemon *d, int out)
{
    enum { N = 32 };
    tmem_conn *c = ts_daemon_conn(d);
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p, cmd[64], line[64];
    if (tmem_tswap_map(t, N * PG, (void **)&p) < 0)
        return 2;
    ts_fill_n(p, N, 23);
    ts_evict_to(t, 1);
    if (ts_stats(t).stored < N - 1)
        return 3;
    snprintf(cmd, sizeof cmd, "destroy %d", tmem_conn_client_id(c));
    if (ts_cli(d, cmd) != 0)
        return 4;
    char *victim = p + 7 * PG;
    int n = snprintf(line, sizeof line, "%p\n", (void *)victim);
    if (write(out, line, (size_t)n) != n)
        return 5;
    volatile char x = *victim; /* must not return */
    (void)x;
    return 6;
}

TEST(tswap_lost_page_stops_the_process)
{
    ts_daemon d;
    int err[2], out[2];
    ts_daemon_start(&d, "64M");
    ASSERT_EQ(pipe(err), 0);
    ASSERT_EQ(pipe(out), 0);
    fflush(stdout);
    pid_t kid = fork();
    ASSERT_GE(kid, 0);
    if (kid == 0) {
        dup2(err[1], 2);
        close(err[0]), close(out[0]);
        _exit(tenant(&d, out[1]));
    }
    close(err[1]), close(out[1]);
    char addr[64] = "", msg[1024] = "";
    ssize_t n = read(out[0], addr, sizeof addr - 1);
    size_t got = 0;
    while ((n = read(err[0], msg + got, sizeof msg - 1 - got)) > 0)
        got += (size_t)n;
    int st;
    ASSERT_EQ(waitpid(kid, &st, 0), kid);
    ASSERT_TRUE(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGABRT);
    char *nl = strchr(addr, '\n');
    ASSERT_TRUE(nl != NULL);
    *nl = '\0';
    char want[128];
    snprintf(want, sizeof want, "tmem tswap: page at %s is lost", addr);
    if (!strstr(msg, want) || !strstr(msg, "No such pool or client"))
        tmem_test_fail(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"", msg,
                       want);
    ts_daemon_stop(&d);
}
