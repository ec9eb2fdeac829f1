/*
 * Signals (run.h).  tswap brings pages back in its SIGBUS handler, so:
 *   - the program's own SIGBUS action is recorded, not installed: tswap
 *     hands it every SIGBUS that is not a page of its (and a program that
 *     asks sees what it set);
 *   - SIGBUS is never blocked: a fault raised while it is blocked kills
 *     the process, so it is taken out of every mask a thread sets;
 *   - an alternate signal stack is kept resident while it is one (a
 *     handler running there must not fault on its own stack).
 */

#include "run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "tswap/tswap.h"

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction program_bus; /* what the program set for SIGBUS */

DEFINE_REAL(int, sigaction,
            (int, const struct sigaction *, struct sigaction *))

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    struct tmem_tswap *t = atomic_load(&tmem_run_tswap);
    if (sig != SIGBUS || !t)
        return get_sigaction()(sig, act, old);
    pthread_mutex_lock(&sig_lock);
    if (old)
        *old = program_bus;
    if (act) {
        program_bus = *act;
        tmem_tswap_set_next_sigbus(act);
    }
    pthread_mutex_unlock(&sig_lock);
    return 0;
}

/* signal(2) and its old names, through sigaction with BSD semantics. */
static __sighandler_t set_handler(int sig, __sighandler_t h, int flags)
{
    struct sigaction sa = {.sa_handler = h, .sa_flags = flags}, old;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}

__sighandler_t signal(int sig, __sighandler_t h)
{
    return set_handler(sig, h, SA_RESTART);
}

__sighandler_t bsd_signal(int sig, __sighandler_t h)
{
    return set_handler(sig, h, SA_RESTART);
}

__sighandler_t sysv_signal(int sig, __sighandler_t h)
{
    return set_handler(sig, h, SA_RESETHAND | SA_NODEFER);
}

/* A copy of set without SIGBUS, when it would block it. */
static const sigset_t *without_bus(int how, const sigset_t *set,
                                   sigset_t *copy)
{
    if (!set || how == SIG_UNBLOCK || !atomic_load(&tmem_run_tswap) ||
        !sigismember(set, SIGBUS))
        return set;
    *copy = *set;
    sigdelset(copy, SIGBUS);
    return copy;
}

DEFINE_REAL(int, sigprocmask, (int, const sigset_t *, sigset_t *))
int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    sigset_t c;
    return get_sigprocmask()(how, without_bus(how, set, &c), old);
}

DEFINE_REAL(int, pthread_sigmask, (int, const sigset_t *, sigset_t *))
int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    sigset_t c;
    return get_pthread_sigmask()(how, without_bus(how, set, &c), old);
}

DEFINE_REAL(int, sigaltstack, (const stack_t *, stack_t *))
int sigaltstack(const stack_t *ss, stack_t *old)
{
    stack_t was;
    int r = get_sigaltstack()(ss, &was);
    if (r == 0 && ss && !(ss->ss_flags & SS_DISABLE)) {
        tmem_run_pin(ss->ss_sp, ss->ss_size);
        if (!(was.ss_flags & SS_DISABLE))
            tmem_run_unpin(was.ss_sp, was.ss_size);
    } else if (r == 0 && ss && !(was.ss_flags & SS_DISABLE)) {
        tmem_run_unpin(was.ss_sp, was.ss_size);
    }
    if (r == 0 && old)
        *old = was;
    return r;
}

void tmem_run_sig_init(void)
{
    /* what the program had before us: the default */
    program_bus.sa_handler = SIG_DFL;
    sigemptyset(&program_bus.sa_mask);
}
