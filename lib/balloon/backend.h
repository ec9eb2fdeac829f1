/*
 * The balloon backend interface: how a controller loop reads a tenant's
 * state and applies what tmem_balloon_tick decided, independent of the
 * mechanism (cgroup v1/v2, Xen guest balloon, tswap memory).
 *
 * A backend is a small value: a table of operations plus the backend's own
 * state (self).  A constructor of each backend fills a caller-provided
 * struct tmem_balloon_backend (e.g. tmem_balloon_xen_open); the loop calls
 * read -> tmem_balloon_tick -> apply_target / shrink_frontswap, and ends
 * with tmem_balloon_backend_close, which calls destroy(self) once and clears
 * the struct (closing a cleared or zeroed struct is a no-op).
 *
 * All quantities are 4 KiB pages.  Every operation returns 0 (or a count,
 * see below) on success and a negative errno on failure; after a failure,
 * why(self), when not NULL, gives one line saying what failed (file and
 * reason), valid until the next call on the backend.
 *
 * Invariants: the operations never block for long (one interval at most)
 * and never change anything in read.  The loop owns the backend; a backend
 * is not thread-safe.
 */
#ifndef TMEM_BALLOON_BACKEND_H
#define TMEM_BALLOON_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "balloon/controller.h"

typedef struct tmem_balloon_backend {
    const char *name; /* "cgroup-v1", "cgroup-v2", "xen", "tswap" */
    void *self;       /* the backend's state, owned by it */
    /* Whether this tenant has a frontswap tier (swap, zram, tswap's
     * frontswap): the default of both switches (tmem_balloon_init). */
    bool frontswap_available;
    /* The PSI file that reflects this tenant's memory pressure
     * ("/proc/pressure/memory", a cgroup's memory.pressure), or NULL when
     * the backend has none; the PSI guard sits on top of the backend. */
    const char *pressure_path;

    /* Reads the tenant's state now (all five fields of *in).  Required. */
    int (*read)(void *self, tmem_balloon_input *in);
    /* Sets the tenant's memory size to target_pages (a memory size, not a
     * balloon size).  A backend may apply less than the full step when the
     * mechanism needs it (cgroup v1 never cuts below usage by more than one
     * step); returns 0 or -errno.  Required. */
    int (*apply_target)(void *self, uint64_t target_pages);
    /* Brings frontswap pages back into memory until target_pages remain,
     * bringing back at most budget_pages in this call (0 = no bound).
     * Returns the number of pages brought back (may be 0; clamped to
     * INT_MAX) or -errno.  NULL when the backend cannot shrink (the loop
     * then reports -EOPNOTSUPP once and skips self-shrink). */
    int (*shrink_frontswap)(void *self, uint64_t target_pages,
                            uint64_t budget_pages);
    /* One line on the last failure, or NULL. */
    const char *(*why)(void *self);
    /* Frees self.  May be NULL when self needs no freeing. */
    void (*destroy)(void *self);
} tmem_balloon_backend;

/* Calls destroy(self) once and clears *be; a no-op on NULL or a cleared
 * backend. */
static inline void tmem_balloon_backend_close(tmem_balloon_backend *be)
{
    if (!be)
        return;
    if (be->destroy && be->self)
        be->destroy(be->self);
    memset(be, 0, sizeof *be);
}

/* The last failure in words, never NULL (empty when unknown). */
static inline const char *tmem_balloon_backend_why(tmem_balloon_backend *be)
{
    const char *w = (be && be->why && be->self) ? be->why(be->self) : NULL;
    return w ? w : "";
}

#endif
