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
