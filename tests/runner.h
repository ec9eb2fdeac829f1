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

/* 1 in a build under ASan or TSan: timing ratios are not asserted there
 * (the sanitizer's cost is not the code's), correctness always is. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif

#define ASSERT_TRUE(c)                                                       \
    do {                                                                     \
        if (!(c))                                                            \
            tmem_test_fail(__FILE__, __LINE__, "ASSERT_TRUE(%s)", #c);        \
    } while (0)

/* Ordered and equality asserts compare the values as they are, not as
 * long long: each operand becomes a tmem_test_val by its own type
 * (_Generic: unsigned integers as uint64_t, floating types as double,
 * other integers, enums and pointers as int64_t), and the comparison is
 * the mathematical one, so a u64 above INT64_MAX is larger than any
 * signed value, -1 is below every unsigned one and 0.235 is not 0.  A
 * failure prints both values in their own form. */
typedef struct tmem_test_val {
    enum { TMEM_TEST_INT, TMEM_TEST_UINT, TMEM_TEST_FLOAT } kind;
    union {
        int64_t i;
        uint64_t u;
        double f;
    };
} tmem_test_val;

/* The order of a against b: one of these bits (masks of the asserts). */
#define TMEM_TEST_LT_ 1u
#define TMEM_TEST_EQ_ 2u
#define TMEM_TEST_GT_ 4u
#define TMEM_TEST_UNORDERED_ 8u /* a NaN */
unsigned tmem_test_order(tmem_test_val a, tmem_test_val b);
void tmem_test_fail_cmp(const char *file, int line, const char *a,
                        const char *op, const char *b, tmem_test_val va,
                        tmem_test_val vb) __attribute__((noreturn));

static inline tmem_test_val tmem_test_i_(int64_t v)
{
    return (tmem_test_val){.kind = TMEM_TEST_INT, .i = v};
}
static inline tmem_test_val tmem_test_u_(uint64_t v)
{
    return (tmem_test_val){.kind = TMEM_TEST_UINT, .u = v};
}
static inline tmem_test_val tmem_test_f_(double v)
{
    return (tmem_test_val){.kind = TMEM_TEST_FLOAT, .f = v};
}

/* x as a tmem_test_val, x evaluated once.  Every branch must compile for
 * every type (only the chosen one is evaluated): the floating branch
 * takes its operand through a second selection that never casts a
 * pointer to a floating type. */
#define TMEM_TEST_FLOAT_OF_(x)                                               \
    _Generic((x), float: (x), double: (x), long double: (x), default: 0.0)
#define TMEM_TEST_VAL_(x)                                                    \
    _Generic((x),                                                            \
        _Bool: tmem_test_u_((uint64_t)(x)),                                  \
        unsigned char: tmem_test_u_((uint64_t)(x)),                          \
        unsigned short: tmem_test_u_((uint64_t)(x)),                         \
        unsigned int: tmem_test_u_((uint64_t)(x)),                           \
        unsigned long: tmem_test_u_((uint64_t)(x)),                          \
        unsigned long long: tmem_test_u_((uint64_t)(x)),                     \
        float: tmem_test_f_(TMEM_TEST_FLOAT_OF_(x)),                         \
        double: tmem_test_f_(TMEM_TEST_FLOAT_OF_(x)),                        \
        long double: tmem_test_f_(TMEM_TEST_FLOAT_OF_(x)),                   \
        default: tmem_test_i_((int64_t)(x)))

/* Fails unless the order of va against vb is in mask. */
#define TMEM_TEST_ASSERT_(va, vb, mask, sa, op, sb)                          \
    do {                                                                     \
        tmem_test_val tmem_a_ = (va), tmem_b_ = (vb);                        \
        if (!(tmem_test_order(tmem_a_, tmem_b_) & (mask)))                   \
            tmem_test_fail_cmp(__FILE__, __LINE__, sa, op, sb, tmem_a_,      \
                               tmem_b_);                                     \
    } while (0)

#define ASSERT_CMP_(a, op, mask, b)                                          \
    TMEM_TEST_ASSERT_(TMEM_TEST_VAL_(a), TMEM_TEST_VAL_(b), mask, #a, #op, #b)

#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, TMEM_TEST_EQ_, b)
#define ASSERT_NE(a, b)                                                      \
    ASSERT_CMP_(a, !=, TMEM_TEST_LT_ | TMEM_TEST_GT_ | TMEM_TEST_UNORDERED_, b)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, TMEM_TEST_LT_, b)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, TMEM_TEST_LT_ | TMEM_TEST_EQ_, b)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, TMEM_TEST_GT_, b)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, TMEM_TEST_GT_ | TMEM_TEST_EQ_, b)

/* Both sides converted to uint64_t first (C's wrap: -1 is UINT64_MAX). */
#define ASSERT_U64_EQ(a, b)                                                  \
    TMEM_TEST_ASSERT_(tmem_test_u_((uint64_t)(a)),                           \
                      tmem_test_u_((uint64_t)(b)), TMEM_TEST_EQ_, #a, "==",  \
                      #b)

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
