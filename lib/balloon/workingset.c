/*
 * The refault-aware working-set estimate of the cgroup backend (see
 * workingset.h and docs/balloon.md, "Refault-aware committed").
 */
#include "balloon/workingset.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/sysfile.h"

void tmem_balloon_ws_reset(tmem_balloon_ws *w)
{
    memset(w, 0, sizeof *w);
}

/* How much a counter grew since *seen (0 when it went backwards); *seen
 * becomes the counter. */
static uint64_t grew(uint64_t *seen, uint64_t now)
{
    uint64_t d = now >= *seen ? now - *seen : 0;

    *seen = now;
    return d;
}

static double at_most(double v, uint64_t bound)
{
    return v > (double)bound ? (double)bound : v;
}

uint64_t tmem_balloon_ws_update(tmem_balloon_ws *w,
                                const tmem_balloon_ws_sample *s)
{
    uint64_t file, anon, mine;
    double keep, total;

    if (!w->primed) {
        w->primed = true;
        w->t_ms = s->now_ms;
        w->file_seen = s->refault_file;
        w->anon_seen = s->refault_anon;
        w->drained_seen = s->drained;
        return 0;
    }
    file = grew(&w->file_seen, s->refault_file);
    anon = grew(&w->anon_seen, s->refault_anon);
    mine = grew(&w->drained_seen, s->drained);
    anon = anon > mine ? anon - mine : 0;
    if (s->step && file + anon > s->step) { /* a burst: one step */
        uint64_t all = file + anon;

        file = (uint64_t)((double)file * (double)s->step / (double)all);
        anon = s->step - file;
    }
    keep = s->now_ms > w->t_ms
               ? exp2(-(double)(s->now_ms - w->t_ms) /
                      (double)TMEM_BALLOON_WS_HALF_LIFE_MS)
               : 1.0;
    w->t_ms = s->now_ms > w->t_ms ? s->now_ms : w->t_ms;
    w->file = at_most(w->file * keep + (double)file, s->cap);
    w->anon = at_most(w->anon * keep + (double)anon, s->anon);
    total = at_most(w->file + w->anon, s->cap);
    return (uint64_t)total;
}

void tmem_balloon_ws_seed(tmem_balloon_ws *w, uint64_t pages)
{
    if ((double)pages > w->file)
        w->file = (double)pages;
}

/* The value of key, or of "total_" key first on v1; 1 when found. */
static int field(const char *stat, int version, const char *key,
                 uint64_t *v)
{
    char total[64];

    if (version == 1) {
        (void)snprintf(total, sizeof total, "total_%s", key);
        if (tmem__text_field(stat, total, v))
            return 1;
    }
    return tmem__text_field(stat, key, v);
}

int tmem_balloon_ws_parse(const char *stat, int version, uint64_t *file,
                          uint64_t *anon)
{
    int found;

    *file = *anon = 0;
    found = field(stat, version, "workingset_refault_file", file);
    found |= field(stat, version, "workingset_refault_anon", anon);
    if (!found)
        found = field(stat, version, "workingset_refault", file);
    return found;
}
