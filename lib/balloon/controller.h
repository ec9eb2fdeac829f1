/*
 * The self-ballooning and frontswap self-shrinking controller: pure
 * arithmetic, no system calls (SPEC.md "Self-ballooning").
 *
 * A backend reads a tenant's state into a tmem_balloon_input each interval,
 * calls tmem_balloon_tick, and applies what comes out.  All quantities are
 * in 4 KiB pages; integer division throughout, exactly as SPEC states.
 *
 * Tunables are addressed by their interface names (SPEC table):
 * selfballooning, selfballoon_interval, selfballoon_downhysteresis,
 * selfballoon_uphysteresis, selfballoon_min_usable_mb,
 * selfballoon_reserved_mb, frontswap_selfshrinking, frontswap_hysteresis,
 * frontswap_inertia.  Reads print "%d\n".
 */
#ifndef TMEM_BALLOON_CONTROLLER_H
#define TMEM_BALLOON_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TMEM_MB_PAGES(x) ((uint64_t)(x) * 256u)

typedef struct tmem_balloon_tunables {
    unsigned selfballooning;      /* 0/1 */
    unsigned interval;            /* seconds, > 0 */
    unsigned downhysteresis;      /* > 0 */
    unsigned uphysteresis;        /* > 0 */
    unsigned min_usable_mb;       /* 0 = floor function */
    unsigned reserved_mb;         /* > 0 */
    unsigned selfshrinking;       /* 0/1 */
    unsigned fs_hysteresis;       /* > 0 */
    unsigned fs_inertia;          /* > 0 */
} tmem_balloon_tunables;

typedef struct tmem_balloon_input {
    uint64_t cur;       /* tenant's current memory size */
    uint64_t committed; /* memory it has committed (unreclaimable) */
    uint64_t reserve;   /* memory it must keep for itself (totalreserve) */
    uint64_t max;       /* its maximum (max_pfn) */
    uint64_t frontswap; /* its pages in frontswap (or the swap tier) now */
    uint64_t used;      /* of cur, what it uses now; 0 = unknown (all of
                         * it).  Not the controller's: the PSI guard's */
} tmem_balloon_input;

typedef struct tmem_balloon_output {
    bool ballooned;       /* self-ballooning ran: goal/floor/target valid */
    uint64_t goal, floor, target; /* target = new memory size (not balloon) */
    bool shrink;          /* self-shrink fired: shrink frontswap to ... */
    uint64_t fs_target;   /* ... this many pages */
} tmem_balloon_output;

typedef struct tmem_balloon {
    tmem_balloon_tunables t;
    uint64_t fs_last;     /* frontswap pages at the previous tick */
    unsigned fs_counter;  /* inertia countdown */
    bool frontswap_available;
} tmem_balloon;

/* Sets defaults: total_pages is the tenant's memory at start (reserved_mb =
 * (total_pages / 10) / 256); switches default to frontswap_available. */
void tmem_balloon_init(tmem_balloon *b, uint64_t total_pages,
                       bool frontswap_available);
/* Applies the boot-option equivalents (tmem.selfballooning=0,
 * tmem.selfshrink=0): turns a function off from start. */
void tmem_balloon_disable(tmem_balloon *b, bool selfballooning,
                          bool selfshrinking);
/* One controller step. */
void tmem_balloon_tick(tmem_balloon *b, const tmem_balloon_input *in,
                       tmem_balloon_output *out);
/* The floor function alone (for tests and plots). */
uint64_t tmem_balloon_floor(const tmem_balloon *b, uint64_t max,
                            uint64_t reserve);

/* Writes a tunable from its decimal text.  Returns 0, or -EPERM (admin
 * false), -EINVAL (unknown name, not a number, 0 where refused, not 0/1 for
 * a switch), -ERANGE (too large).  *started (may be NULL) is set true when
 * the write turned a function on that was off (the worker must start). */
int tmem_balloon_set(tmem_balloon *b, const char *name, const char *value,
                     bool admin, bool *started);
/* Reads a tunable as "%d\n" into buf.  Returns the length or -EINVAL. */
int tmem_balloon_get(const tmem_balloon *b, const char *name, char *buf,
                     size_t cap);
/* What a tunable accepts, in words ("0 or 1", "a whole number,
 * 1..2147483647"), or NULL when there is no tunable of that name. */
const char *tmem_balloon_tunable_allowed(const char *name);
/* The tunable names in order, NULL-terminated. */
extern const char *const tmem_balloon_tunable_names[];

#endif
