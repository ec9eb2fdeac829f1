/*
 * The self-ballooning and frontswap self-shrinking controller (SPEC.md
 * "Self-ballooning"): one pure step per interval, no system calls, no
 * allocation.  This file owns the arithmetic and the self-shrink state
 * (fs_last, fs_counter); the tunables and their parsing live in tunables.c.
 *
 * The arithmetic is SPEC's, in pages with integer division, with two
 * guards that SPEC's formulas leave implicit: sums saturate at UINT64_MAX
 * instead of wrapping (inputs come from files and traces), and
 * useful = max - reserve is 0 when reserve exceeds max (so the floor is
 * max: "not worth ballooning") instead of wrapping to a huge number.  For
 * every input where SPEC's formula neither overflows nor underflows the
 * result is exactly SPEC's.
 *
 * Invariants: goal/floor/target are only written when self-ballooning is
 * on; fs_last/fs_counter only change in a tick when self-shrinking is on
 * and frontswap is available (or on a frontswap_inertia write).
 */
#include "balloon/controller.h"

#include <string.h>

/* a + b, saturating at UINT64_MAX. */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Whether frontswap self-shrinking runs (and adds to the goal). */
static bool selfshrink_on(const tmem_balloon *b)
{
    return b->t.selfshrinking && b->frontswap_available;
}

void tmem_balloon_init(tmem_balloon *b, uint64_t total_pages,
                       bool frontswap_available)
{
    uint64_t mb = (total_pages / 10) / 256;

    memset(b, 0, sizeof *b);
    b->frontswap_available = frontswap_available;
    b->t.selfballooning = frontswap_available;
    b->t.selfshrinking = frontswap_available;
    b->t.interval = 5;
    b->t.downhysteresis = 8;
    b->t.uphysteresis = 1;
    b->t.min_usable_mb = 0;
    /* 10% of memory at start; a write of 0 is refused, so a tenant under
     * 2560 pages (10 MiB) gets the smallest value a write may set, 1 MiB.
     * Clamped to INT_MAX so that reads stay within "%d". */
    if (mb == 0)
        mb = 1;
    if (mb > 0x7fffffffu)
        mb = 0x7fffffffu;
    b->t.reserved_mb = (unsigned)mb;
    b->t.fs_hysteresis = 20;
    b->t.fs_inertia = 3;
    b->fs_last = 0;
    b->fs_counter = 0;
}

void tmem_balloon_disable(tmem_balloon *b, bool selfballooning,
                          bool selfshrinking)
{
    if (selfballooning)
        b->t.selfballooning = 0;
    if (selfshrinking)
        b->t.selfshrinking = 0;
}

/* Returns the floor: the piecewise function of SPEC, or reserve +
 * min_usable_mb when that is set. */
uint64_t tmem_balloon_floor(const tmem_balloon *b, uint64_t max,
                            uint64_t reserve)
{
    uint64_t useful = max > reserve ? max - reserve : 0;

    if (b->t.min_usable_mb != 0)
        return sat_add(reserve, TMEM_MB_PAGES(b->t.min_usable_mb));
    if (useful < TMEM_MB_PAGES(16))
        return max; /* not worth ballooning */
    if (useful < TMEM_MB_PAGES(64))
        return sat_add(reserve,
                       TMEM_MB_PAGES(16) + (useful - TMEM_MB_PAGES(16)) / 2);
    if (useful < TMEM_MB_PAGES(512))
        return sat_add(reserve,
                       TMEM_MB_PAGES(40) + (useful - TMEM_MB_PAGES(40)) / 8);
    return sat_add(reserve,
                   TMEM_MB_PAGES(99) + (useful - TMEM_MB_PAGES(99)) / 32);
}

/* Self-ballooning: goal, the hysteresis step toward it, the floor. */
static void balloon_step(const tmem_balloon *b, const tmem_balloon_input *in,
                         tmem_balloon_output *out)
{
    uint64_t cur = in->cur;
    uint64_t goal = sat_add(sat_add(in->committed, in->reserve),
                            TMEM_MB_PAGES(b->t.reserved_mb));
    uint64_t target = cur;

    if (selfshrink_on(b)) /* room for frontswap pages to come back */
        goal = sat_add(goal, in->frontswap);
    if (cur > goal)
        target = cur - (cur - goal) / b->t.downhysteresis;
    else if (cur < goal)
        target = cur + (goal - cur) / b->t.uphysteresis;
    out->ballooned = true;
    out->goal = goal;
    out->floor = tmem_balloon_floor(b, in->max, in->reserve);
    out->target = target < out->floor ? out->floor : target;
}

/* Frontswap self-shrink: shrink only after frontswap has not grown for
 * `inertia` ticks, and then by 1/hysteresis of it per tick. */
static void shrink_step(tmem_balloon *b, const tmem_balloon_input *in,
                        tmem_balloon_output *out)
{
    uint64_t last = b->fs_last;
    uint64_t cur_fs = in->frontswap;

    b->fs_last = cur_fs;
    if (cur_fs == 0 || cur_fs > last) {
        b->fs_counter = b->t.fs_inertia;
        return;
    }
    if (b->fs_counter != 0 && --b->fs_counter != 0)
        return;
    out->shrink = true;
    out->fs_target =
        cur_fs <= b->t.fs_hysteresis ? 0 : cur_fs - cur_fs / b->t.fs_hysteresis;
    b->fs_counter = b->t.fs_inertia;
}

void tmem_balloon_tick(tmem_balloon *b, const tmem_balloon_input *in,
                       tmem_balloon_output *out)
{
    memset(out, 0, sizeof *out);
    if (b->t.selfballooning)
        balloon_step(b, in, out);
    if (selfshrink_on(b))
        shrink_step(b, in, out);
}
