/*
 * The PSI guard: its pure rule (whose stall, how far up, the hold) and the
 * kernel trigger on /proc/pressure/memory.
 */
#include <errno.h>
#include <unistd.h>

#include "../runner.h"
#include "balloon/psi.h"

static tmem_balloon_input input(uint64_t cur, uint64_t committed,
                                uint64_t fs)
{
    tmem_balloon_input in = {cur, committed, 1000, 4 * cur, fs, 0};
    return in;
}

TEST(psi_guard_ignores_system_stall_without_swap_growth)
{
    tmem_balloon_guard g;
    tmem_balloon b;
    tmem_balloon_input in = input(100000, 50000, 0);
    uint64_t t = 0;

    tmem_balloon_init(&b, 100000, true);
    tmem_balloon_guard_init(&g, false);
    ASSERT_TRUE(!tmem_balloon_guard_stall(&g, 1000, &in, &b, &t));
    ASSERT_EQ(g.ignored, 1);
    ASSERT_EQ(g.hold_until, 0);
    /* swap grew at 2 s (a tick saw it): a stall at 4.5 s concerns it */
    in.frontswap = 500;
    t = in.cur;
    tmem_balloon_guard_filter(&g, 2000, &in, &t);
    ASSERT_TRUE(tmem_balloon_guard_stall(&g, 4500, &in, &b, &t));
    /* cur + cur/4 = 125000 vs committed + reserve + reserved + fs */
    ASSERT_U64_EQ(t, 125000);
    ASSERT_EQ(g.raises, 1);
    /* ... but not one 3 s later without new growth */
    ASSERT_TRUE(!tmem_balloon_guard_stall(&g, 8000, &in, &b, &t));
}

TEST(psi_guard_raise_covers_committed_and_swap)
{
    tmem_balloon_guard g;
    tmem_balloon b;
    tmem_balloon_input in = input(100000, 90000, 40000);
    uint64_t t = 0;

    tmem_balloon_init(&b, 100000, true); /* reserved_mb = 39 */
    tmem_balloon_guard_init(&g, true);   /* the tenant's own file */
    ASSERT_TRUE(tmem_balloon_guard_stall(&g, 10, &in, &b, &t));
    ASSERT_U64_EQ(t, 90000 + 1000 + TMEM_MB_PAGES(39) + 40000);
    /* small tenants step at least 32 MiB */
    tmem_balloon_init(&b, 3000, true); /* reserved_mb = 1 */
    in = input(1000, 0, 0);
    ASSERT_TRUE(tmem_balloon_guard_stall(&g, 20, &in, &b, &t));
    ASSERT_U64_EQ(t, 1000 + TMEM_MB_PAGES(32));
}

/* A stall concerns a tenant only while it presses on its allowance (uses
 * all but max(cur / 8, reserve) of it): raising an allowance it does not
 * use relieves nothing.  used = 0 is unknown: pressing. */
TEST(psi_guard_ignores_stall_with_room_under_allowance)
{
    tmem_balloon_guard g;
    tmem_balloon b;
    tmem_balloon_input in = input(100000, 50000, 0);
    uint64_t t = 0;

    tmem_balloon_init(&b, 100000, true);
    tmem_balloon_guard_init(&g, true);
    in.used = 80000; /* 20000 of room > 12500 */
    ASSERT_TRUE(!tmem_balloon_guard_stall(&g, 1000, &in, &b, &t));
    ASSERT_EQ(g.ignored, 1);
    ASSERT_EQ(g.hold_until, 0);
    in.used = 87500; /* exactly a step of room: pressing */
    ASSERT_TRUE(tmem_balloon_guard_stall(&g, 2000, &in, &b, &t));
    ASSERT_U64_EQ(t, 125000);
    in.used = 0; /* unknown */
    ASSERT_TRUE(tmem_balloon_guard_stall(&g, 3000, &in, &b, &t));
    /* a small tenant's step is its reserve (1000 pages) */
    in = input(4000, 1000, 0);
    in.used = 2900;
    ASSERT_TRUE(!tmem_balloon_guard_stall(&g, 4000, &in, &b, &t));
    in.used = 3000;
    ASSERT_TRUE(tmem_balloon_guard_stall(&g, 5000, &in, &b, &t));
    ASSERT_EQ(g.raises, 3);
    ASSERT_EQ(g.ignored, 2);
}

/* The hold: --hold when given, else two ticks at the interval now. */
TEST(psi_guard_hold_is_two_ticks_unless_given)
{
    ASSERT_U64_EQ(tmem_balloon_guard_hold_ms(0, 5), 10000);
    ASSERT_U64_EQ(tmem_balloon_guard_hold_ms(0, 1), 2000);
    ASSERT_U64_EQ(tmem_balloon_guard_hold_ms(0, 30), 60000);
    ASSERT_U64_EQ(tmem_balloon_guard_hold_ms(7000, 1), 7000);
    ASSERT_U64_EQ(tmem_balloon_guard_hold_ms(0, 0), 1);
}

TEST(psi_guard_holds_down_steps_only)
{
    tmem_balloon_guard g;
    tmem_balloon b;
    tmem_balloon_input in = input(100000, 50000, 0);
    uint64_t t;

    tmem_balloon_init(&b, 100000, true);
    tmem_balloon_guard_init(&g, true);
    ASSERT_EQ(g.hold_ms, 10000);
    ASSERT_TRUE(tmem_balloon_guard_stall(&g, 1000, &in, &b, &t));
    t = 90000; /* a down step during the hold: refused */
    ASSERT_TRUE(tmem_balloon_guard_filter(&g, 5000, &in, &t));
    ASSERT_U64_EQ(t, 100000);
    t = 120000; /* up passes */
    ASSERT_TRUE(!tmem_balloon_guard_filter(&g, 6000, &in, &t));
    ASSERT_U64_EQ(t, 120000);
    t = 90000; /* after the hold: down passes */
    ASSERT_TRUE(!tmem_balloon_guard_filter(&g, 11000, &in, &t));
    ASSERT_U64_EQ(t, 90000);
    ASSERT_EQ(g.holds, 1);
}

TEST(psi_trigger_arms_on_proc_pressure)
{
    tmem_balloon_psi p;
    int rc;

    if (access("/proc/pressure/memory", F_OK) != 0)
        TEST_SKIP("no /proc/pressure/memory (kernel without PSI)");
    rc = tmem_balloon_psi_open(&p, "/proc/pressure/memory", NULL);
    if (rc == -EACCES || rc == -EPERM)
        TEST_SKIP("PSI triggers need root here");
    ASSERT_EQ(rc, 0);
    ASSERT_GE(tmem_balloon_psi_fd(&p), 0);
    ASSERT_GE(tmem_balloon_psi_check(&p), 0);
    tmem_balloon_psi_close(&p);
    ASSERT_EQ(tmem_balloon_psi_fd(&p), -1);
    /* a malformed trigger is refused */
    ASSERT_EQ(tmem_balloon_psi_open(&p, "/proc/pressure/memory", "bogus"),
              -EINVAL);
    ASSERT_EQ(tmem_balloon_psi_open(&p, "/nonexistent/pressure", NULL),
              -ENOENT);
}
