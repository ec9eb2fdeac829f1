/*
 * A SIGBUS that is not tswap's (here: touching a file mapping past the
 * end of its file) goes to the program's own handler: the SA_SIGINFO one
 * it had before tswap, a plain one given later with
 * tmem_tswap_set_next_sigbus, or the default action, which kills with
 * SIGBUS; region faults keep working in between.
 */
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "tswap_testutil.h"

static sigjmp_buf jb;
static volatile sig_atomic_t got;

static void on_info(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    got = si->si_code > 0 ? 1 : -1;
    siglongjmp(jb, 1);
}

static void on_plain(int sig)
{
    (void)sig;
    got = 2;
    siglongjmp(jb, 1);
}

/* A page of a file mapping past the file's end: touching it is SIGBUS. */
static volatile char *past_eof(void)
{
    int fd = memfd_create("tswap-test", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, PG), 0);
    char *m = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_TRUE(m != MAP_FAILED);
    close(fd);
    return m + PG;
}

TEST(tswap_sigbus_outside_regions_goes_to_the_program)
{
    struct sigaction sa = {.sa_sigaction = on_info, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGBUS, &sa, NULL), 0);
    tmem_conn *c = ts_embedded();
    tmem_tswap *t = ts_create(c, NULL);
    volatile char *bad = past_eof();
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, 4 * PG, (void **)&p), 0);
    got = 0;
    if (!sigsetjmp(jb, 1))
        (void)*bad;
    ASSERT_EQ(got, 1);
    p[PG] = 7; /* region faults: still tswap's */
    ts_evict_to(t, 1);
    ASSERT_EQ(p[PG], 7);

    struct sigaction plain = {.sa_handler = on_plain};
    sigemptyset(&plain.sa_mask);
    tmem_tswap_set_next_sigbus(&plain);
    got = 0;
    if (!sigsetjmp(jb, 1))
        (void)*bad;
    ASSERT_EQ(got, 2);
    tmem_tswap_destroy(t); /* gives the handler it chains to back */
    struct sigaction now;
    ASSERT_EQ(sigaction(SIGBUS, NULL, &now), 0);
    ASSERT_TRUE(now.sa_handler == on_plain);
    tmem_disconnect(c);
}

TEST(tswap_sigbus_default_action_kills)
{
    fflush(stdout);
    pid_t kid = fork();
    ASSERT_GE(kid, 0);
    if (kid == 0) {
        tmem_conn *c = ts_embedded();
        tmem_tswap *t = ts_create(c, NULL);
        volatile char *bad = past_eof();
        tmem_tswap_set_next_sigbus(NULL); /* the default action */
        (void)t;
        (void)*bad;
        _exit(0);
    }
    int st;
    ASSERT_EQ(waitpid(kid, &st, 0), kid);
    ASSERT_TRUE(WIFSIGNALED(st));
    ASSERT_EQ(WTERMSIG(st), SIGBUS);
}
