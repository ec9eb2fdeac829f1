/*
 * The test runner (see runner.h): keeps the registered tests, runs each in a
 * forked child with a time limit and counts passes, failures and skips.
 */
#include "runner.h"

#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 1024
#define EXIT_SKIP 77

struct test {
    const char *name;
    const char *file;
    tmem_test_fn fn;
};

static struct test tests[MAX_TESTS];
static int ntests;

void tmem_test_register(const char *name, const char *file, tmem_test_fn fn)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "runner: too many tests\n");
        abort();
    }
    tests[ntests++] = (struct test){name, file, fn};
}

void tmem_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

/* Integers compare exactly, across signedness; a floating operand makes
 * it a long double comparison (exact for every double and every 64-bit
 * integer on x86). */
static long double as_float(tmem_test_val v)
{
    return v.kind == TMEM_TEST_FLOAT  ? (long double)v.f
           : v.kind == TMEM_TEST_UINT ? (long double)v.u
                                      : (long double)v.i;
}

unsigned tmem_test_order(tmem_test_val a, tmem_test_val b)
{
    if (a.kind == TMEM_TEST_FLOAT || b.kind == TMEM_TEST_FLOAT) {
        long double x = as_float(a), y = as_float(b);
        return x < y    ? TMEM_TEST_LT_
               : x > y  ? TMEM_TEST_GT_
               : x == y ? TMEM_TEST_EQ_
                        : TMEM_TEST_UNORDERED_;
    }
    if (a.kind == TMEM_TEST_INT && a.i < 0 && b.kind == TMEM_TEST_UINT)
        return TMEM_TEST_LT_;
    if (b.kind == TMEM_TEST_INT && b.i < 0 && a.kind == TMEM_TEST_UINT)
        return TMEM_TEST_GT_;
    if (a.kind == TMEM_TEST_INT && b.kind == TMEM_TEST_INT)
        return a.i < b.i   ? TMEM_TEST_LT_
               : a.i > b.i ? TMEM_TEST_GT_
                           : TMEM_TEST_EQ_;
    /* both >= 0 here: compare as unsigned */
    uint64_t x = a.kind == TMEM_TEST_UINT ? a.u : (uint64_t)a.i;
    uint64_t y = b.kind == TMEM_TEST_UINT ? b.u : (uint64_t)b.i;
    return x < y ? TMEM_TEST_LT_ : x > y ? TMEM_TEST_GT_ : TMEM_TEST_EQ_;
}

static const char *fmt_val(char *buf, size_t cap, tmem_test_val v)
{
    if (v.kind == TMEM_TEST_UINT)
        snprintf(buf, cap, "%" PRIu64, v.u);
    else if (v.kind == TMEM_TEST_INT)
        snprintf(buf, cap, "%" PRId64, v.i);
    else
        snprintf(buf, cap, "%.17g", v.f);
    return buf;
}

void tmem_test_fail_cmp(const char *file, int line, const char *a,
                        const char *op, const char *b, tmem_test_val va,
                        tmem_test_val vb)
{
    char x[48], y[48];
    tmem_test_fail(file, line, "%s %s %s: %s vs %s", a, op, b,
                   fmt_val(x, sizeof x, va), fmt_val(y, sizeof y, vb));
}

void tmem_test_skip(const char *reason)
{
    printf("  skip: %s\n", reason);
    fflush(stdout);
    _exit(EXIT_SKIP);
}

static int cmp_test(const void *a, const void *b)
{
    const struct test *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return 1;
    return 0;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Runs one test in a child; returns 0 pass, 1 fail, 2 skip. */
static int run_one(const struct test *t, int timeout)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        alarm(timeout);
        t->fn();
        fflush(stdout);
        exit(0); /* not _exit: LeakSanitizer checks at exit */
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        ;
    kill(-pid, SIGKILL); /* anything the test left running */
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_SKIP)
        return 2;
    if (WIFSIGNALED(st))
        fprintf(stderr, "  killed by signal %d%s\n", WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
    return 1;
}

int main(int argc, char **argv)
{
    const char *suite = getenv("TMEM_SUITE");
    const char *to = getenv("TMEM_TEST_TIMEOUT");
    int timeout = to ? atoi(to) : 300;
    int counts[3] = {0, 0, 0};

    if (!suite) {
        suite = strrchr(argv[0], '/');
        suite = suite ? suite + 1 : argv[0];
    }
    qsort(tests, ntests, sizeof tests[0], cmp_test);
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ntests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    for (int i = 0; i < ntests; i++) {
        if (!selected(tests[i].name, argc, argv))
            continue;
        double t0 = now_ms();
        int r = run_one(&tests[i], timeout);
        static const char *word[] = {"ok", "FAIL", "skip"};
        printf("%-4s %s (%.0f ms)\n", word[r], tests[i].name, now_ms() - t0);
        counts[r]++;
    }
    printf("%s: %d passed, %d failed, %d skipped\n", suite, counts[0],
           counts[1], counts[2]);
    return counts[1] ? 1 : 0;
}
