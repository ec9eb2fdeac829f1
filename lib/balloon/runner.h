/*
 * The balloon run loop: one controller over one backend, in the
 * foreground, with the PSI guard on top and its tunables served on a unix
 * control socket.  See runner.c for the loop and the socket protocol.
 */
#ifndef TMEM_BALLOON_RUNNER_H
#define TMEM_BALLOON_RUNNER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "balloon/backend.h"
#include "balloon/controller.h"
#include "balloon/psi.h"

struct tmem_balloon_run_opts {
    const char *control;   /* control socket path, NULL = none */
    bool json;             /* one JSON object per line instead of text */
    bool psi;              /* the PSI guard on */
    const char *psi_trigger; /* NULL = TMEM_BALLOON_PSI_TRIGGER */
    unsigned hold_ms;      /* 0 = the guard's default */
    unsigned shrink_budget_mb; /* pages brought back per tick, 0 = 64 MiB */
    unsigned max_ticks;    /* stop after this many ticks, 0 = never */
    FILE *log;             /* NULL = stdout */
    volatile sig_atomic_t *stop; /* the loop ends when *stop != 0 */
};

/* Runs the loop until *opts->stop (or max_ticks).  b must be initialised
 * (tmem_balloon_init) and stays the caller's.  Returns 0 on a clean stop,
 * or -errno when the backend or the control socket failed to start. */
int tmem_balloon_run(tmem_balloon_backend *be, tmem_balloon *b,
                     const struct tmem_balloon_run_opts *opts);

/* Client side of the control socket: sends one request line ("get NAME",
 * "set NAME VALUE", "list") and copies the reply's payload into out.
 * Returns 0, or the negative errno the runner answered (-EPERM, -EINVAL,
 * -ERANGE), or -errno of the connection. */
int tmem_balloon_control(const char *path, const char *request, char *out,
                         size_t cap);

#endif
