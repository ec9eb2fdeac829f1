/*
 * The PSI guard (SPEC "Beyond the original: no OOM"): a PSI trigger on a
 * memory pressure file, and the rule that turns a stall into a raised
 * target and a hold on down-ballooning.  See psi.c.
 */
#ifndef TMEM_BALLOON_PSI_H
#define TMEM_BALLOON_PSI_H

#include <stdbool.h>
#include <stdint.h>

#include "balloon/controller.h"

/* Default trigger: 100 ms of "some" stall within a 1 s window. */
#define TMEM_BALLOON_PSI_TRIGGER "some 100000 1000000"
/* The same without CAP_SYS_RESOURCE (windows must be multiples of 2 s). */
#define TMEM_BALLOON_PSI_TRIGGER_UNPRIV "some 200000 2000000"

typedef struct tmem_balloon_psi {
    int fd;          /* the armed pressure file, -1 when closed */
    uint64_t events; /* stalls seen */
} tmem_balloon_psi;

/* Arms trigger (NULL = TMEM_BALLOON_PSI_TRIGGER) on the pressure file path
 * ("/proc/pressure/memory" or a v2 cgroup's memory.pressure).  Returns 0,
 * -ENOENT when the kernel has no PSI, -EPERM/-EINVAL when the trigger is
 * refused. */
int tmem_balloon_psi_open(tmem_balloon_psi *p, const char *path,
                          const char *trigger);
/* The fd to poll for POLLPRI, or -1. */
int tmem_balloon_psi_fd(const tmem_balloon_psi *p);
/* Consumes a pending stall event without blocking.  Returns 1 when a stall
 * fired since the last call, 0 when not, -errno on error. */
int tmem_balloon_psi_check(tmem_balloon_psi *p);
void tmem_balloon_psi_close(tmem_balloon_psi *p);

/* The guard's rule, pure (no system calls). */
typedef struct tmem_balloon_guard {
    uint64_t hold_ms;      /* no down-ballooning this long after a stall */
    uint64_t hold_until;   /* monotonic ms; 0 = not holding */
    uint64_t raises;       /* targets raised by a stall */
    uint64_t holds;        /* down steps refused while holding */
    uint64_t ignored;      /* stalls that were not the tenant's */
    uint64_t last_fs;      /* frontswap at the last decision */
    uint64_t last_growth;  /* monotonic ms the tenant's swap last grew */
    bool cgroup_local;     /* the pressure file is the tenant's own */
} tmem_balloon_guard;

/* How long a stall holds down-ballooning: hold_ms when one was given
 * (--hold), else two ticks at the interval now (interval_s seconds): 10 s
 * at the default 5 s interval, 2 s at 1 s.  At least 1 ms. */
uint64_t tmem_balloon_guard_hold_ms(uint64_t hold_ms, unsigned interval_s);

/* Defaults: hold 10 s (the runner sets tmem_balloon_guard_hold_ms);
 * cgroup_local false (system-wide PSI: a stall counts only when the
 * tenant's own swap grew lately, see psi.c). */
void tmem_balloon_guard_init(tmem_balloon_guard *g, bool cgroup_local);

/* A stall fired at now_ms with the tenant's state in.  Returns true when
 * it concerns the tenant; then *target is the raised target (pages) and
 * the hold starts. */
bool tmem_balloon_guard_stall(tmem_balloon_guard *g, uint64_t now_ms,
                              const tmem_balloon_input *in,
                              const tmem_balloon *b, uint64_t *target);

/* Filters a controller target at now_ms: while holding, a target below
 * cur becomes cur.  Returns true when it refused a down step. */
bool tmem_balloon_guard_filter(tmem_balloon_guard *g, uint64_t now_ms,
                               const tmem_balloon_input *in,
                               uint64_t *target);

#endif
