/*
 * The balloon interface the tswap memory (lib/tswap) plugs
 * into: what the controller needs from a tenant's userfaultfd-backed memory
 * and how that becomes a tmem_balloon_backend.
 *
 * tswap owns a tenant region; pages over its resident target go to
 * frontswap (the tmem store), faults bring them back.  For the controller:
 *   cur       = the resident target now (pages tswap lets stay resident)
 *   committed = pages the tenant has touched and not released (its anon
 *               working set: resident + in frontswap, minus discarded)
 *   reserve   = tswap's own fixed need (its metadata, fault buffers)
 *   max       = the region size
 *   frontswap = the tenant's pages held in frontswap now
 * and the controller's target becomes the new resident target (tswap then
 * puts the coldest pages over it to frontswap), its shrink target brings
 * frontswap pages back in, at most `budget` per call.
 *
 * tswap implements struct tmem_balloon_tswap_ops over its own handle; the
 * adapter below makes a backend of it with no allocation: the caller keeps
 * the struct tmem_balloon_tswap alive as long as the backend.
 */
#ifndef TMEM_BALLOON_TSWAP_BACKEND_H
#define TMEM_BALLOON_TSWAP_BACKEND_H

#include <errno.h>
#include <stdint.h>

#include "balloon/backend.h"

struct tmem_balloon_tswap_ops {
    /* Fills all five fields of *in (pages).  Returns 0 or -errno. */
    int (*read)(void *tswap, tmem_balloon_input *in);
    /* Sets the resident target; pages over it go to frontswap.  Returns 0
     * or -errno. */
    int (*set_resident_target)(void *tswap, uint64_t pages);
    /* Brings pages back from frontswap until target remain, at most budget
     * (0 = no bound).  Returns pages brought back, or -errno. */
    int (*shrink)(void *tswap, uint64_t target, uint64_t budget);
    /* One line on the last failure, or NULL. */
    const char *(*why)(void *tswap);
};

/* Caller-owned glue between a tswap handle and a backend. */
struct tmem_balloon_tswap {
    const struct tmem_balloon_tswap_ops *ops;
    void *tswap; /* tswap's handle; not owned (destroy does not free it) */
};

static inline int tmem__balloon_tswap_read(void *self, tmem_balloon_input *in)
{
    struct tmem_balloon_tswap *a = self;
    return a->ops->read(a->tswap, in);
}

static inline int tmem__balloon_tswap_apply(void *self, uint64_t target)
{
    struct tmem_balloon_tswap *a = self;
    return a->ops->set_resident_target(a->tswap, target);
}

static inline int tmem__balloon_tswap_shrink(void *self, uint64_t target,
                                             uint64_t budget)
{
    struct tmem_balloon_tswap *a = self;
    return a->ops->shrink ? a->ops->shrink(a->tswap, target, budget)
                          : -EOPNOTSUPP;
}

static inline const char *tmem__balloon_tswap_why(void *self)
{
    struct tmem_balloon_tswap *a = self;
    return a->ops->why ? a->ops->why(a->tswap) : NULL;
}

/* Fills *out with a backend over a (frontswap is always available: tswap's
 * pages over target go to frontswap).  Returns 0, or -EINVAL when a, its
 * ops, read or set_resident_target is missing. */
static inline int tmem_balloon_tswap_backend(tmem_balloon_backend *out,
                                             struct tmem_balloon_tswap *a)
{
    memset(out, 0, sizeof *out);
    if (!a || !a->ops || !a->ops->read || !a->ops->set_resident_target)
        return -EINVAL;
    out->name = "tswap";
    out->self = a;
    out->frontswap_available = true;
    /* a process has no memory.pressure of its own on a v1 host: the
     * system's stalls guard it (page-ins of tswap are not stalls the
     * kernel counts; a target that was too low costs faults) */
    out->pressure_path = "/proc/pressure/memory";
    out->read = tmem__balloon_tswap_read;
    out->apply_target = tmem__balloon_tswap_apply;
    out->shrink_frontswap = tmem__balloon_tswap_shrink;
    out->why = tmem__balloon_tswap_why;
    out->destroy = NULL;
    return 0;
}

#endif
