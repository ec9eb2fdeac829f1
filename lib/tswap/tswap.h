/*
 * tswap: tenant memory backed by userfaultfd whose overflow goes to the
 * tmem store through frontswap (docs/tswap.md is the design).
 *
 * A tmem_tswap manages regions of the process's private anonymous memory.
 * At most a resident target of their pages stay in RAM; the coldest of
 * the rest are stored (frontswap type 0 on the tmem_conn given) and their
 * frames released; touching one brings it back, in the faulting thread
 * (SIGBUS mode) or in a handler thread (THREAD mode).  A page never
 * touched reads as zeros.  One tmem_tswap per process.
 *
 * Threads and signals: every call may be made from any thread.  tswap
 * installs a SIGBUS handler; a SIGBUS it does not own goes to the
 * program's previous handler (tmem_tswap_set_next_sigbus replaces it).
 * Program threads must not hold a tswap lock while touching region
 * memory, and no tswap call may be made from a signal handler that
 * interrupts tswap or libtmem code (as with any non-async-signal-safe
 * library).  tmem_tswap_owns, _prefault and _unpin take no lock.
 *
 * System calls: in SIGBUS mode the kernel does not wait for a page it
 * touches itself, so a system call whose buffer is not resident fails
 * with EFAULT; tmem_tswap_prefault makes a range resident and pins it for
 * the call.  THREAD mode serves the kernel's faults too (~100 us each).
 *
 * Memory: tswap's own memory (metadata, staging) comes from libtmem's
 * private heap (common/privheap.h), never malloc, and is never a region;
 * the caller must make libtmem's other allocations private too
 * (tmem__mem_use_private) when regions hold the program's heap.
 *
 * Errors are negative errno values; tmem_tswap_why() gives the last
 * failure in one line.
 */
#ifndef TMEM_TSWAP_H
#define TMEM_TSWAP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <tmem/client.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tmem_tswap tmem_tswap;
struct tmem_balloon_tswap_ops;

/* Who resolves a fault on a page that is not resident. */
enum {
    TMEM_TSWAP_SIGBUS = 0, /* the faulting thread, in a SIGBUS handler */
    TMEM_TSWAP_THREAD = 1, /* a handler thread: kernel faults too, slow */
};

typedef struct tmem_tswap_config {
    uint64_t target_pages; /* resident target; 0 = no limit */
    unsigned readahead;    /* pages after a sequential fault (8) */
    int fault_mode;        /* TMEM_TSWAP_SIGBUS (default) or _THREAD */
    bool events;           /* follow munmap/mremap/madvise/fork (tmem run) */
    unsigned interval_ms;  /* evictor period (100) */
    uint64_t max_stored;   /* frontswap offsets: pages storable (2^26) */
} tmem_tswap_config;

/* Page-in latency histogram: bucket b counts page-ins that took
 * [lo(b), lo(b + 1)) ns, four buckets per power of two from 64 ns:
 * lo(b) = 2^(6 + b / 4) * (4 + b % 4) / 4; the last is open-ended. */
#define TMEM_TSWAP_HIST 96

typedef struct tmem_tswap_stats {
    uint64_t resident; /* pages in RAM (tswap's count) */
    uint64_t stored;   /* pages only in the store */
    uint64_t copies;   /* resident pages whose stored copy is kept */
    uint64_t target;   /* resident target (0 = none) */
    uint64_t regions;  /* regions now */
    uint64_t region_pages;
    uint64_t faults_zero;       /* first touches: a zero page */
    uint64_t faults_pagein;     /* faults that brought a stored page back */
    uint64_t pagein_moves;      /* page-ins that moved a recycled frame in (the
                                   others copied: no frame was free) */
    uint64_t faults_waited;     /* faults that waited for another thread */
    uint64_t faults_kernel;     /* THREAD mode: faults served by the thread */
    uint64_t readahead;         /* pages brought in by read-ahead */
    uint64_t evicted;           /* pages put out (stored or dropped) */
    uint64_t stores;            /* pages the store accepted */
    uint64_t clean_drops;       /* unchanged pages dropped, copy kept */
    uint64_t zero_drops;        /* all-zero pages dropped, nothing stored */
    uint64_t stale_flushes;     /* copies flushed: the page was written */
    uint64_t refused;           /* stores refused: the page stayed resident */
    uint64_t refused_nospace;   /* ... budget or cap (ENOSPC) */
    uint64_t refused_gone;      /* ... client destroyed (ENODEV) */
    uint64_t refused_transport; /* ... daemon gone (EPIPE, EPROTO) */
    uint64_t refused_other;
    uint64_t evict_busy;        /* victims shared with a fork child: kept */
    uint64_t prefaults;         /* pages made resident by prefault */
    uint64_t pins;              /* pins held now */
    uint64_t fork_children;     /* fork children handed a userfaultfd */
    uint64_t fork_live;         /* ... still alive (slots kept for them) */
    uint64_t fork_materialized; /* forks that brought every page in */
    uint64_t fork_unexpected;   /* forks tswap was not told about */
    uint64_t deferred_slots;    /* slots kept for live children */
    uint64_t proxy_loads;       /* child page reads served by the parent */
    uint64_t ev_remove, ev_unmap, ev_remap; /* events handled */
    uint64_t unknown_faults; /* zero-filled faults outside every region */
    uint64_t meta_bytes;     /* tswap's own memory */
    uint64_t pagein_hist[TMEM_TSWAP_HIST];
} tmem_tswap_stats;

/* Fills *c with the defaults above. */
void tmem_tswap_config_init(tmem_tswap_config *c);

/* Creates the process's tswap on conn (which must outlive it): opens the
 * userfaultfds, frontswap type 0 on conn, installs the SIGBUS handler and
 * starts the evictor (and, with events or THREAD mode, the monitor).
 * cfg NULL = defaults.  Returns 0 and sets *out; -EPERM when userfaultfd
 * is not available to this process (tmem_tswap_why says what it needs),
 * -EBUSY when the process has one already, -EINVAL, -ENOMEM, -ENOSYS. */
int tmem_tswap_create(tmem_conn *conn, const tmem_tswap_config *cfg,
                      tmem_tswap **out);
/* Brings every stored page back in, then unregisters every region: they
 * stay mapped as plain memory holding their content (unmap them first
 * with tmem_tswap_unmap to skip bringing pages back).  Frees every slot
 * and the frontswap type, stops the threads, restores the previous
 * SIGBUS handler.  A page that cannot be brought back stops the process
 * (see tmem_tswap_create's "lost page").  NULL is a no-op. */
void tmem_tswap_destroy(tmem_tswap *t);

/* Maps a new region of len bytes (rounded up to pages), every page zero.
 * Returns 0 and sets *out, or -errno. */
int tmem_tswap_map(tmem_tswap *t, size_t len, void **out);
/* Makes an existing private anonymous read-write mapping (page aligned)
 * a region; its resident pages are kept as they are.  Returns 0,
 * -EINVAL (not page aligned, not private anonymous rw), -EEXIST
 * (overlaps a region), or -errno. */
int tmem_tswap_adopt(tmem_tswap *t, void *addr, size_t len);
/* Adopts the tail a mapping grew in place (mremap without a move: the
 * kernel sends no event), which starts right after a region.  Returns 0,
 * -EINVAL (no region right before it, not private anonymous rw), -EEXIST
 * or -errno. */
int tmem_tswap_adopt_tail(tmem_tswap *t, void *addr, size_t len);
/* Unmaps [addr, addr + len), which must lie in regions, and frees the
 * slots of its pages.  Returns 0 or -errno. */
int tmem_tswap_unmap(tmem_tswap *t, void *addr, size_t len);

/* Sets the resident target (0 = no limit) and wakes the evictor. */
int tmem_tswap_set_target(tmem_tswap *t, uint64_t pages);
/* One synchronous eviction pass down to the target.  Returns the pages
 * put out, or -errno. */
int64_t tmem_tswap_reclaim(tmem_tswap *t);
/* Makes every region page of [addr, addr + len) resident and pins it
 * (never evicted until tmem_tswap_unpin), for a system call on it.
 * Bytes outside regions are ignored.  Returns 0 or -errno. */
int tmem_tswap_prefault(tmem_tswap *t, const void *addr, size_t len);
/* Drops the pins of a prefault of the same range. */
void tmem_tswap_unpin(tmem_tswap *t, const void *addr, size_t len);
/* True when addr is in a region.  Lock-free. */
bool tmem_tswap_owns(const tmem_tswap *t, const void *addr);

/* fork() for a process with a tswap: the child gets its own
 * userfaultfd and sees the memory as it was at the fork, stored pages
 * included (docs/tswap.md "Fork").  Any fork() of the process does the
 * same (tswap registers pthread_atfork handlers); this is fork() by
 * name.  Returns as fork(). */
pid_t tmem_tswap_fork(tmem_tswap *t);
/* Brings stored pages back: first drops the copies of resident pages,
 * then pages in stored ones, until at most stored_target pages are held
 * in the store, at most budget pages brought in (0 = no bound).  Pages
 * brought in may push the resident count over the target: the target is
 * then raised to it.  Returns the pages brought in, or -errno. */
int64_t tmem_tswap_shrink(tmem_tswap *t, uint64_t stored_target,
                          uint64_t budget);

void tmem_tswap_stats_get(tmem_tswap *t, tmem_tswap_stats *out);
/* Page-in latency at quantile q (0..1) of s's histogram, in
 * microseconds; 0 when no page came in. */
double tmem_tswap_pagein_us(const tmem_tswap_stats *s, double q);
/* The frontswap handle tswap stores through (for its counters). */
tmem_frontswap *tmem_tswap_frontswap(tmem_tswap *t);
/* The balloon ops over a tmem_tswap (lib/balloon/tswap_backend.h):
 * cur = the resident target (the regions' size when there is none),
 * committed = pages touched within the last 16 evictor intervals (the
 * working set), reserve = tswap's metadata in pages, max = the regions'
 * pages, frontswap = pages held in the store (stored + copies). */
const struct tmem_balloon_tswap_ops *tmem_tswap_balloon_ops(void);
/* The last failure of t, one line ("" when none); with t NULL, why the
 * last tmem_tswap_create failed. */
const char *tmem_tswap_why(tmem_tswap *t);
/* The handler a SIGBUS outside every region goes to from now on (NULL:
 * the default action).  Works before tmem_tswap_create too. */
void tmem_tswap_set_next_sigbus(const struct sigaction *sa);

#ifdef __cplusplus
}
#endif
#endif
