/*
 * The test runner: TEST(name) { ... } registers a test (at load time, so a
 * suite is every C file of tests/<suite>/ linked with tests/runner.c).  Each
 * test runs in a forked child with a time limit; ASSERT_* print both values
 * and end the test as failed.  TEST_SKIP(reason) ends it as skipped, only
 * for a facility that truly is absent.
 *
 * The suite binary prints one line per test and ends with
 *   "<suite>: N passed, N failed, N skipped".
 * Arguments: substrings of test names to run (default all); --list.
 * TMEM_TEST_TIMEOUT (seconds, default 300) bounds each test.
 */
#ifndef TMEM_TEST_RUNNER_H
#define TMEM_TEST_RUNNER_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*tmem_test_fn)(void);
void tmem_test_register(const char *name, const char *file, tmem_test_fn fn);
void tmem_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
void tmem_test_skip(const char *reason) __attribute__((noreturn));

#define TEST(name)                                                           \
    static void test_##name(void);                                           \
    __attribute__((constructor)) static void test_reg_##name(void)           \
    {                                                                        \
        tmem_test_register(#name, __FILE__, test_##name);                    \
    }                                                                        \
    static void test_##name(void)

#define TEST_SKIP(reason) tmem_test_skip(reason)

#define ASSERT_TRUE(c)                                                       \
    do {                                                                     \
        if (!(c))                                                            \
            tmem_test_fail(__FILE__, __LINE__, "ASSERT_TRUE(%s)", #c);        \
    } while (0)

#define ASSERT_CMP_(a, op, b)                                                \
    do {                                                                     \
        long long a_ = (long long)(a), b_ = (long long)(b);                  \
        if (!(a_ op b_))                                                     \
            tmem_test_fail(__FILE__, __LINE__,                               \
                           "%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_);   \
    } while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b)

#define ASSERT_U64_EQ(a, b)                                                  \
    do {                                                                     \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                     \
        if (a_ != b_)                                                        \
            tmem_test_fail(__FILE__, __LINE__, "%s == %s: %" PRIu64          \
                           " vs %" PRIu64, #a, #b, a_, b_);                  \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                  \
    do {                                                                     \
        const char *a_ = (a), *b_ = (b);                                     \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                               \
            tmem_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", \
                           #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");  \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                               \
    do {                                                                     \
        if (memcmp((a), (b), (n)) != 0)                                      \
            tmem_test_fail(__FILE__, __LINE__, "memcmp(%s, %s, %s) != 0",    \
                           #a, #b, #n);                                      \
    } while (0)

#endif
