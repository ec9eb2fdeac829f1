/*
 * tswap through tmemd: the daemon holds the stored pages (its count of
 * persistent pages says so), destroy frees every one of them, and a
 * tenant that exits without destroying anything leaves none behind (the
 * daemon frees the client's pools when the connection closes).
 */
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "tswap_testutil.h"

enum { N = 256 };

static void wait_pages(const ts_daemon *d, long long want)
{
    for (int i = 0; i < 300 && ts_daemon_pers_pages(d) != want; i++)
        poll(NULL, 0, 10);
    ASSERT_EQ(ts_daemon_pers_pages(d), want);
}

TEST(tswap_daemon_destroy_frees_every_page)
{
    ts_daemon d;
    ts_daemon_start(&d, "256M");
    tmem_conn *c = ts_daemon_conn(&d);
    tmem_tswap_config cfg = ts_config(0, true);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, N, 51);
    ts_evict_to(t, 8);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_GE(s.stored, N - 8);
    ASSERT_EQ(ts_daemon_pers_pages(&d), (long long)(s.stored + s.copies));
    ASSERT_EQ(ts_check_n(p, N, 51), -1);
    tmem_tswap_destroy(t);
    ASSERT_EQ(ts_daemon_pers_pages(&d), 0);
    ASSERT_EQ(ts_check_n(p, N, 51), -1); /* plain memory, all of it */
    munmap(p, N * PG);
    tmem_disconnect(c);
    ts_daemon_stop(&d);
}

TEST(tswap_daemon_tenant_exit_leaves_nothing)
{
    ts_daemon d;
    int ready[2], done[2];
    ts_daemon_start(&d, "256M");
    ASSERT_EQ(pipe(ready), 0);
    ASSERT_EQ(pipe(done), 0);
    fflush(stdout);
    pid_t kid = fork();
    ASSERT_GE(kid, 0);
    if (kid == 0) { /* a tenant that never destroys anything */
        tmem_conn *c = ts_daemon_conn(&d);
        tmem_tswap_config cfg = ts_config(0, false);
        tmem_tswap *t = ts_create(c, &cfg);
        char *p, b;
        if (tmem_tswap_map(t, N * PG, (void **)&p) < 0)
            _exit(2);
        ts_fill_n(p, N, 52);
        ts_evict_to(t, 8);
        if (write(ready[1], "r", 1) != 1 || read(done[0], &b, 1) != 1)
            _exit(3);
        _exit(0);
    }
    char b;
    ASSERT_EQ(read(ready[0], &b, 1), 1);
    ASSERT_GE(ts_daemon_pers_pages(&d), N - 8);
    ASSERT_EQ(write(done[1], "d", 1), 1);
    ASSERT_EQ(waitpid(kid, NULL, 0), kid);
    wait_pages(&d, 0);
    ts_daemon_stop(&d);
}
