/*
 * Who may use tswap.  An unprivileged process (uid 65534, with
 * /dev/userfaultfd 0600 root and vm.unprivileged_userfaultfd=0) cannot
 * have a userfaultfd that serves the kernel's faults: THREAD mode fails
 * with -EPERM and tmem_tswap_why() names what it needs (root,
 * CAP_SYS_PTRACE, read-write access to /dev/userfaultfd, or
 * vm.unprivileged_userfaultfd=1).  SIGBUS mode needs no more than a
 * user-mode-only descriptor, which anyone may make: it works, events
 * included; only fork events need CAP_SYS_PTRACE, so a fork brings every
 * stored page in first and the child gets plain memory.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "tswap_testutil.h"

static bool unprivileged_would_fail(char *why, size_t cap)
{
    struct stat st;
    FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    if (geteuid() != 0) {
        snprintf(why, cap, "needs root to drop to an unprivileged uid");
        return false;
    }
    if (v != 0 || (stat("/dev/userfaultfd", &st) == 0 && (st.st_mode & 0066))) {
        snprintf(why, cap, "userfaultfd is open to every user here");
        return false;
    }
    return true;
}

/* Becomes uid/gid 65534.  Changing credentials makes a process
 * non-dumpable, which hides its /proc/self files from itself; a process
 * started as that user would not be: made dumpable again. */
static int drop_privileges(void)
{
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
        setresuid(65534, 65534, 65534) < 0)
        return -1;
    return prctl(PR_SET_DUMPABLE, 1) < 0 ? -1 : 0;
}

static const char *const needs[] = {"root", "CAP_SYS_PTRACE",
                                    "read-write access to /dev/userfaultfd",
                                    "vm.unprivileged_userfaultfd=1"};

/* The unprivileged side; returns 0 when all went as expected. */
static int unprivileged(void)
{
    tmem_conn *c = NULL;
    tmem_tswap *t = NULL;
    if (drop_privileges() < 0)
        return 2;
    setenv("TMEM_EMBEDDED", "1", 1);
    if (tmem_connect(NULL, &c) < 0)
        return 3;
    tmem_tswap_config cfg = ts_config(0, true);
    cfg.fault_mode = TMEM_TSWAP_THREAD;
    if (tmem_tswap_create(c, &cfg, &t) != -EPERM || t)
        return 4;
    for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++)
        if (!strstr(tmem_tswap_why(NULL), needs[i])) {
            fprintf(stderr, "why: %s\n", tmem_tswap_why(NULL));
            return 5;
        }
    cfg.fault_mode = TMEM_TSWAP_SIGBUS;
    int rc = tmem_tswap_create(c, &cfg, &t);
    if (rc < 0) {
        fprintf(stderr, "create: %d: %s\n", rc, tmem_tswap_why(NULL));
        return 6;
    }
    char *p;
    if (tmem_tswap_map(t, 64 * PG, (void **)&p) < 0)
        return 7;
    ts_fill_n(p, 64, 41);
    ts_evict_to(t, 1);
    if (ts_stats(t).stored < 60 || ts_check_n(p, 64, 41) != -1)
        return 8;
    ts_evict_to(t, 1);
    fflush(stdout);
    pid_t kid = tmem_tswap_fork(t);
    if (kid == 0)
        _exit(ts_check_n(p, 64, 41) == -1 ? 0 : 1);
    int st;
    if (kid < 0 || waitpid(kid, &st, 0) != kid || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0)
        return 9;
    /* (The evictor may have put them out again since, to its target.) */
    if (ts_stats(t).fork_materialized != 1)
        return 10;
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
    return 0;
}

TEST(tswap_unprivileged_access)
{
    char why[128];
    if (!unprivileged_would_fail(why, sizeof why))
        TEST_SKIP(why);
    fflush(stdout);
    pid_t kid = fork();
    ASSERT_GE(kid, 0);
    if (kid == 0)
        _exit(unprivileged());
    int st;
    ASSERT_EQ(waitpid(kid, &st, 0), kid);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
}

TEST(tswap_why_after_success_is_empty)
{
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    cfg.fault_mode = 7;
    tmem_tswap *t = NULL;
    ASSERT_EQ(tmem_tswap_create(c, &cfg, &t), -EINVAL);
    t = ts_create(c, NULL);
    ASSERT_STR_EQ(tmem_tswap_why(t), "");
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}
