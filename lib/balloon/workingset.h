/*
 * The working set a memory cgroup re-uses, seen through the kernel's
 * refault counters: what the cgroup backend adds to `committed` so that
 * self-ballooning stops just above what the tenant reads again instead of
 * pushing it out (docs/balloon.md, "Refault-aware committed").
 *
 * A refault is a page the kernel evicted (file) or swapped out (anon) that
 * the tenant needed again while the kernel still remembered it (a shadow
 * entry): memory.stat's workingset_refault_file / workingset_refault_anon
 * (v1: the hierarchical total_ variants).  Each sample adds the refaults
 * since the previous one to a level that halves every
 * TMEM_BALLOON_WS_HALF_LIFE_MS, so a tenant that keeps re-reading keeps
 * its pages and one that stopped gives them back within a few half-lives;
 * with no refault at all the level is 0 and nothing changes.
 *
 * Pure arithmetic over samples the backend reads (no system calls), so
 * that tests feed it time and counters directly.
 */
#ifndef TMEM_BALLOON_WORKINGSET_H
#define TMEM_BALLOON_WORKINGSET_H

#include <stdbool.h>
#include <stdint.h>

/* How fast the estimate forgets refaults: its half-life. */
#define TMEM_BALLOON_WS_HALF_LIFE_MS 20000u

/* One reading of the tenant (pages; counters are cumulative). */
typedef struct tmem_balloon_ws_sample {
    uint64_t now_ms;       /* a monotonic clock */
    uint64_t refault_file; /* workingset_refault_file, pages */
    uint64_t refault_anon; /* workingset_refault_anon, pages */
    uint64_t drained;      /* pages the backend's own drain swapped in */
    uint64_t anon;         /* anonymous pages now, resident + swapped */
    uint64_t cap;          /* the tenant's size now (cur) */
    uint64_t step;         /* the most the estimate grows per sample
                            * (0 = no limit) */
} tmem_balloon_ws_sample;

/* The estimate's state; zero it (or tmem_balloon_ws_reset) to start. */
typedef struct tmem_balloon_ws {
    bool primed;           /* a first sample was taken */
    uint64_t t_ms;         /* time of the previous sample */
    uint64_t file_seen, anon_seen, drained_seen; /* counters then */
    double file, anon;     /* the two levels, pages */
} tmem_balloon_ws;

void tmem_balloon_ws_reset(tmem_balloon_ws *w);

/* Feeds one sample and returns the working set to add to committed, in
 * pages: 0 on the first sample (counters before it are history, not
 * this controller's doing), then
 *
 *   file = min(file * 2^(-dt / half-life) + new file refaults, cap)
 *   anon = min(anon * 2^(-dt / half-life) + new anon refaults
 *              - new drained pages (never below 0), sample anon)
 *   result = min(file + anon, cap), rounded down
 *
 * where the new refaults of one sample add at most step pages together
 * (scaled down alike): a thrash refaults the same pages again and again,
 * so a burst of refaults says the tenant needs more, not how much more;
 * the estimate then grows by a step a sample, as the allowance falls by
 * at most a step a tick.
 *
 * A counter that went backwards (a recreated cgroup) counts as no
 * refaults and becomes the new base. */
uint64_t tmem_balloon_ws_update(tmem_balloon_ws *w,
                                const tmem_balloon_ws_sample *s);

/* Raises the file level to at least pages (the kernel's active file
 * list when ballooning starts: what it saw re-used before any squeeze). */
void tmem_balloon_ws_seed(tmem_balloon_ws *w, uint64_t pages);

/* The refault counters of a memory.stat text (event counts: pages) into
 * *file and *anon.  v1 prefers
 * total_workingset_refault_* (hierarchical), v2 reads
 * workingset_refault_*; a kernel before 5.9 has one workingset_refault
 * (file and anon together: counted as file).  Returns 1 when a counter
 * was found, 0 when the kernel has none (both then 0). */
int tmem_balloon_ws_parse(const char *stat, int version, uint64_t *file,
                          uint64_t *anon);

#endif
