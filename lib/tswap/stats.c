/*
 * tswap's counters, the page-in latency histogram, the working set, the
 * balloon ops over a tmem_tswap, and the last failure's text.
 *
 * Invariants: counters are relaxed atomics bumped on the paths that count
 * them (the fault path included); a snapshot reads each once, so fields
 * may disagree by the events in flight.  The working set is read from the
 * per-page stamps (the evictor interval of a page's last fault or written
 * scan), never kept as a second structure.
 */
#include "tswap/tswap_internal.h"

#include <limits.h>
#include <string.h>

#include "balloon/tswap_backend.h"

#define WS_INTERVALS 16 /* committed = pages used in the last 16 intervals */

char tswap__last_why[256];

static uint64_t ld(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static uint64_t pos(_Atomic int64_t *c)
{
    int64_t v = atomic_load_explicit(c, memory_order_relaxed);
    return v > 0 ? (uint64_t)v : 0;
}

static void table_size(tmem_tswap *t, uint64_t *regions, uint64_t *pages)
{
    uint32_t idx;
    tswap__read_enter(t, &idx);
    struct ts_table *tb = atomic_load(&t->table);
    *regions = tb ? tb->n : 0;
    *pages = tb ? tb->pages : 0;
    tswap__read_leave(t, idx);
}

void tmem_tswap_stats_get(tmem_tswap *t, tmem_tswap_stats *o)
{
    struct ts_counters *c = &t->c;
    memset(o, 0, sizeof *o);
    o->resident = pos(&c->resident);
    o->stored = pos(&c->stored);
    o->copies = pos(&c->copies);
    o->target = atomic_load(&t->target);
    table_size(t, &o->regions, &o->region_pages);
    o->faults_zero = ld(&c->faults_zero);
    o->faults_pagein = ld(&c->faults_pagein);
    o->pagein_moves = ld(&c->pagein_moves);
    o->faults_waited = ld(&c->faults_waited);
    o->faults_kernel = ld(&c->faults_kernel);
    o->readahead = ld(&c->readahead);
    o->evicted = ld(&c->evicted);
    o->stores = ld(&c->stores);
    o->clean_drops = ld(&c->clean_drops);
    o->zero_drops = ld(&c->zero_drops);
    o->stale_flushes = ld(&c->stale_flushes);
    o->refused = ld(&c->refused);
    o->refused_nospace = ld(&c->refused_nospace);
    o->refused_gone = ld(&c->refused_gone);
    o->refused_transport = ld(&c->refused_transport);
    o->refused_other = ld(&c->refused_other);
    o->evict_busy = ld(&c->evict_busy);
    o->prefaults = ld(&c->prefaults);
    o->pins = ld(&c->pins);
    o->fork_children = ld(&c->fork_children);
    o->fork_live = ld(&c->fork_live);
    o->fork_materialized = ld(&c->fork_materialized);
    o->fork_unexpected = ld(&c->fork_unexpected);
    o->deferred_slots = t->slots.deferred.len; /* a racy read: a gauge */
    o->proxy_loads = ld(&c->proxy_loads);
    o->ev_remove = ld(&c->ev_remove);
    o->ev_unmap = ld(&c->ev_unmap);
    o->ev_remap = ld(&c->ev_remap);
    o->unknown_faults = ld(&c->unknown_faults);
    o->meta_bytes = ld(&c->meta_bytes);
    for (int b = 0; b < TMEM_TSWAP_HIST; b++)
        o->pagein_hist[b] = ld(&c->hist[b]);
}

/* The lower bound of bucket b, in ns (tswap.h). */
static double bucket_lo(int b)
{
    return (double)(1ull << (6 + b / 4)) * (4 + b % 4) / 4.0;
}

double tmem_tswap_pagein_us(const tmem_tswap_stats *s, double q)
{
    uint64_t total = 0, seen = 0;
    for (int b = 0; b < TMEM_TSWAP_HIST; b++)
        total += s->pagein_hist[b];
    if (!total)
        return 0;
    double want = q * (double)total;
    for (int b = 0; b < TMEM_TSWAP_HIST; b++) {
        seen += s->pagein_hist[b];
        if ((double)seen >= want && s->pagein_hist[b])
            return (bucket_lo(b) + bucket_lo(b + 1)) / 2 / 1000.0;
    }
    return bucket_lo(TMEM_TSWAP_HIST - 1) / 1000.0;
}

tmem_frontswap *tmem_tswap_frontswap(tmem_tswap *t)
{
    return t ? t->fs : NULL;
}

const char *tmem_tswap_why(tmem_tswap *t)
{
    return t ? t->why : tswap__last_why;
}

/* Pages faulted or found written within the last WS_INTERVALS evictor
 * intervals (stamps are the interval mod 255, plus one; 0 = never). */
static uint64_t working_set(tmem_tswap *t)
{
    uint32_t idx;
    uint64_t n = 0;
    unsigned now = atomic_load(&t->interval) % 255 + 1;
    tswap__read_enter(t, &idx);
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n; k++) {
        struct ts_region *r = tb->r[k];
        uint64_t npg = (r->end - r->start) >> TS_SHIFT;
        for (uint64_t i = r->first; i < r->first + npg; i++) {
            unsigned s =
                atomic_load_explicit(&r->pg->stamp[i], memory_order_relaxed);
            n += s && (now + 255 - s) % 255 < WS_INTERVALS;
        }
    }
    tswap__read_leave(t, idx);
    return n;
}

/* ---- balloon ops (lib/balloon/tswap_backend.h) --------------------------- */

static int b_read(void *tv, tmem_balloon_input *in)
{
    tmem_tswap *t = tv;
    uint64_t regions, pages;
    table_size(t, &regions, &pages);
    uint64_t tg = atomic_load(&t->target);
    in->max = pages;
    in->cur = tg ? tg : pages;
    in->committed = working_set(t);
    /* tswap's own need: its metadata and the frames it keeps. */
    in->reserve =
        (ld(&t->c.meta_bytes) + TS_PAGE - 1) / TS_PAGE + TS_FRAMES_CAP;
    in->frontswap = tmem_frontswap_curr_pages(t->fs);
    return 0;
}

static int b_set_target(void *tv, uint64_t pages)
{
    return tmem_tswap_set_target(tv, pages);
}

static int b_shrink(void *tv, uint64_t target, uint64_t budget)
{
    int64_t n = tmem_tswap_shrink(tv, target, budget);
    return n > INT_MAX ? INT_MAX : (int)n;
}

static const char *b_why(void *tv)
{
    const char *w = tmem_tswap_why(tv);
    return w && *w ? w : NULL;
}

static const struct tmem_balloon_tswap_ops balloon_ops = {
    .read = b_read,
    .set_resident_target = b_set_target,
    .shrink = b_shrink,
    .why = b_why,
};

const struct tmem_balloon_tswap_ops *tmem_tswap_balloon_ops(void)
{
    return &balloon_ops;
}
