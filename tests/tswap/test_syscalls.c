/*
 * System calls on region memory.  In SIGBUS mode the kernel does not
 * wait for a page it touches itself: read(2), write(2), recv(2) and
 * send(2) on a buffer that is not resident fail with EFAULT (asserted,
 * so the test shows the problem is real); after tmem_tswap_prefault they
 * work and move the right bytes.  In THREAD mode a handler thread serves
 * the kernel's faults: the same calls work without a prefault.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../runner.h"
#include "tswap_testutil.h"

enum { N = 8 };

/* A region of N pages: pages 0-3 hold patterns (for writes out), 4-7
 * never touched (for reads in); everything but one page put out. */
static char *setup(tmem_tswap *t)
{
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, 4, 77);
    ts_evict_to(t, 1);
    tmem_tswap_set_target(t, 0);
    return p;
}

struct io_result {
    long rd, wr, rv, sd; /* results: read, write, recv, send */
    int erd, ewr, erv, esd;
};

/* read into page 4, write from page 1, recv into page 5, send from page
 * 2; what comes out of the pipe and socket lands in local buffers. */
static struct io_result do_io(char *p, char *out_w, char *out_s)
{
    struct io_result r;
    int pp[2], sp[2];
    char in[PG];
    ASSERT_EQ(pipe(pp), 0);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    ts_fill(in, 88, 0);
    ASSERT_EQ(write(pp[1], in, PG), PG);
    errno = 0;
    r.rd = read(pp[0], p + 4 * PG, PG);
    r.erd = errno;
    errno = 0;
    r.wr = write(pp[1], p + 1 * PG, PG);
    r.ewr = errno;
    if (r.wr == PG)
        ASSERT_EQ(read(pp[0], out_w, PG), PG);
    ts_fill(in, 99, 0);
    ASSERT_EQ(send(sp[0], in, PG, 0), PG);
    errno = 0;
    r.rv = recv(sp[1], p + 5 * PG, PG, MSG_WAITALL);
    r.erv = errno;
    errno = 0;
    r.sd = send(sp[0], p + 2 * PG, PG, 0);
    r.esd = errno;
    if (r.sd == PG)
        ASSERT_EQ(recv(sp[1], out_s, PG, MSG_WAITALL), PG);
    close(pp[0]), close(pp[1]), close(sp[0]), close(sp[1]);
    return r;
}

static void check_io_ok(const struct io_result *r, char *p, char *out_w,
                        char *out_s)
{
    ASSERT_EQ(r->rd, PG);
    ASSERT_EQ(r->wr, PG);
    ASSERT_EQ(r->rv, PG);
    ASSERT_EQ(r->sd, PG);
    ASSERT_TRUE(ts_check(p + 4 * PG, 88, 0));
    ASSERT_TRUE(ts_check(p + 5 * PG, 99, 0));
    ASSERT_TRUE(ts_check(out_w, 77, 1));
    ASSERT_TRUE(ts_check(out_s, 77, 2));
}

TEST(tswap_syscalls_efault_without_prefault)
{
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p = setup(t), out_w[PG], out_s[PG];
    struct io_result r = do_io(p, out_w, out_s);
    ASSERT_EQ(r.rd, -1);
    ASSERT_EQ(r.erd, EFAULT);
    ASSERT_EQ(r.wr, -1);
    ASSERT_EQ(r.ewr, EFAULT);
    ASSERT_EQ(r.rv, -1);
    ASSERT_EQ(r.erv, EFAULT);
    ASSERT_EQ(r.sd, -1);
    ASSERT_EQ(r.esd, EFAULT);
    ASSERT_EQ(ts_check_n(p, 4, 77), -1); /* nothing was harmed */
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_syscalls_work_with_prefault)
{
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    tmem_tswap *t = ts_create(c, &cfg);
    char *p = setup(t), out_w[PG], out_s[PG];
    uint64_t stored = ts_stats(t).stored;
    ASSERT_EQ(tmem_tswap_prefault(t, p + 1, N * PG - 2), 0);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_EQ(s.pins, N);
    ASSERT_GE(s.prefaults, stored);
    /* Pinned pages stay in through an eviction pass. */
    ts_evict_to(t, 1);
    ASSERT_EQ(ts_stats(t).resident, N);
    struct io_result r = do_io(p, out_w, out_s);
    check_io_ok(&r, p, out_w, out_s);
    tmem_tswap_unpin(t, p + 1, N * PG - 2);
    ASSERT_EQ(ts_stats(t).pins, 0);
    ts_evict_to(t, 1);
    ASSERT_LE(ts_stats(t).resident, 1);
    ASSERT_TRUE(ts_check(p + 4 * PG, 88, 0));
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}

TEST(tswap_syscalls_thread_mode_without_prefault)
{
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    cfg.fault_mode = TMEM_TSWAP_THREAD;
    tmem_tswap *t = ts_create(c, &cfg);
    char *p = setup(t), out_w[PG], out_s[PG];
    struct io_result r = do_io(p, out_w, out_s);
    check_io_ok(&r, p, out_w, out_s);
    tmem_tswap_stats s = ts_stats(t);
    ASSERT_GE(s.faults_kernel, 4);
    ASSERT_GT(s.faults_pagein, 0);
    ASSERT_EQ(ts_check_n(p, 4, 77), -1); /* user faults too */
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}
