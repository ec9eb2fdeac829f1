/*
 * The runner's own asserts (tests/runner.h): ordered and equality asserts
 * compare values as they are, never through long long.  A u64 above
 * INT64_MAX is larger than small values and than any signed value, -1 is
 * below every unsigned value, doubles keep their fraction, and a failing
 * assert prints both values in their own form.  Each expected failure runs
 * in a forked child whose stderr is read back.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"

#define BIG ((uint64_t)INT64_MAX + 1) /* 9223372036854775808 */

/* Runs fn in a child; returns its exit status and its stderr in err. */
static int run_child(void (*fn)(void), char *err, size_t cap)
{
    int fd[2];
    ASSERT_EQ(pipe(fd), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        fn();
        _exit(0);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd[0], err + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    err[n] = '\0';
    close(fd[0]);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* fn must fail its assert, printing want. */
static void expect_fail(void (*fn)(void), const char *want)
{
    char err[1024];
    ASSERT_EQ(run_child(fn, err, sizeof err), 1);
    if (!strstr(err, want))
        tmem_test_fail(__FILE__, __LINE__, "want \"%s\" in \"%s\"", want, err);
}

TEST(runner_u64_above_int64_max_orders)
{
    uint64_t big = BIG, max = UINT64_MAX;
    ASSERT_GT(big, 1);
    ASSERT_GT(big, (uint64_t)INT64_MAX);
    ASSERT_GT(big, INT64_MAX);
    ASSERT_GE(max, big);
    ASSERT_LT(1, big);
    ASSERT_LE((uint64_t)INT64_MAX, big);
    ASSERT_NE(big, INT64_MIN); /* same bits, different numbers */
    ASSERT_EQ(max, UINT64_MAX);
    ASSERT_U64_EQ(max, -1); /* explicitly through uint64_t */
}

TEST(runner_mixed_signs_order)
{
    int minus_one = -1;
    uint64_t zero = 0;
    unsigned u = 3;
    ASSERT_LT(minus_one, zero);
    ASSERT_GT(zero, minus_one);
    ASSERT_NE(minus_one, UINT64_MAX);
    ASSERT_LT(INT64_MIN, u);
    ASSERT_EQ(u, 3);
    ASSERT_EQ((unsigned char)200, 200);
    ASSERT_EQ((signed char)-5, -5);
}

TEST(runner_floating_keeps_fraction)
{
    double share = 0.25;
    ASSERT_GE(share, 0.235);
    ASSERT_LE(share, 0.265);
    ASSERT_GT(share * 1000, 249);
    ASSERT_LT((double)BIG, (double)UINT64_MAX + 1e10);
    ASSERT_EQ(0.5f, 0.5);
    ASSERT_NE(NAN, NAN);
}

TEST(runner_pointers_and_bools)
{
    int x[2];
    const void *p = NULL;
    ASSERT_EQ(p, NULL);
    ASSERT_NE(&x[0], NULL);
    ASSERT_LT(&x[0], &x[1]);
    ASSERT_EQ((_Bool)1, 1);
}

static int calls;
static int once(void)
{
    return ++calls;
}

TEST(runner_operands_evaluated_once)
{
    ASSERT_EQ(once(), 1);
    ASSERT_GT(once() + 10, 11);
    ASSERT_EQ(calls, 2);
}

static void fail_big_lt_one(void)
{
    uint64_t big = BIG;
    ASSERT_LT(big, 1);
}
static void fail_big_le_max(void)
{
    uint64_t big = BIG;
    int64_t imax = INT64_MAX;
    ASSERT_LE(big, imax);
}
static void fail_max_eq_minus_one(void)
{
    uint64_t max = UINT64_MAX;
    ASSERT_EQ(max, -1);
}
static void fail_fraction(void)
{
    double share = 0.2;
    ASSERT_GE(share, 0.235);
}
static void fail_nan(void)
{
    double nan = NAN;
    ASSERT_GE(nan, 0);
}
static void fail_u64_eq(void)
{
    ASSERT_U64_EQ(BIG, 7);
}

TEST(runner_u64_failures_print_values)
{
    expect_fail(fail_big_lt_one, "big < 1: 9223372036854775808 vs 1");
    expect_fail(fail_big_le_max, "big <= imax: 9223372036854775808 vs "
                                 "9223372036854775807");
    expect_fail(fail_max_eq_minus_one, "max == -1: 18446744073709551615 vs -1");
    expect_fail(fail_u64_eq, "== 7: 9223372036854775808 vs 7");
}

TEST(runner_floating_failures_print_values)
{
    expect_fail(fail_fraction, "share >= 0.235: 0.2");
    expect_fail(fail_nan, "nan >= 0: nan vs 0");
}
