/*
 * tswap's internal structures, shared by the files of lib/tswap (each
 * owns one part: sys.c system calls and its own memory, pages.c page states
 * and regions, staging.c staging area and frames, slots.c frontswap
 * offsets, fault.c the fault path, evict.c the evictor, monitor.c events,
 * fork.c fork, tswap.c the API, stats.c counters and balloon ops).
 *
 * Lock order: t->lock, then frontswap's and the connection's own locks.
 * t->lock serialises every change of the region table, the slot
 * allocator and the children list: held by the evictor per batch, by the
 * monitor per event, by API calls that change regions, and by a fork from
 * its prepare handler to its parent handler.  The fault path takes no
 * tswap lock: it reads the region table inside a reader section (retired
 * tables, regions and page arrays are freed only when no reader that
 * could see them is left) and moves pages through their state words.
 * Nothing holding t->lock touches region memory or makes a system call
 * that waits for the monitor (madvise, munmap, mremap of a region).
 */
#ifndef TMEM_TSWAP_INTERNAL_H
#define TMEM_TSWAP_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <tmem/client.h>

#include "tswap/tswap.h"
#include "tswap/uffd_compat.h"

#define TS_PAGE 4096u
#define TS_SHIFT 12
#define TS_BATCH 64 /* pages per eviction batch: one store_batch */

/* ---- page state words (pages.c) ----------------------------------------
 * One 32-bit word per page, changed only by compare-and-swap:
 *   bits 0-2  state;  3 REF (CLOCK);  4 COPY (the slot still holds this
 *   page's content);  5 FRESH (came in since the last scan: its written
 *   bit says nothing yet);  6 WAIT (a thread sleeps on the word);
 *   16-31 pin count.
 * A thread that moves a page out of NONE/RESIDENT/STORED into PAGING_IN
 * or EVICTING owns the page, its slot and hash until it moves it out;
 * anyone else who finds it so waits (spin, then futex) and retries. */
enum ts_state {
    PS_NONE = 0,
    PS_RESIDENT = 1,
    PS_EVICTING = 2,
    PS_STORED = 3,
    PS_PAGING_IN = 4,
};
#define PS_MASK 0x7u
#define PS_REF (1u << 3)
#define PS_COPY (1u << 4)
#define PS_FRESH (1u << 5)
#define PS_WAIT (1u << 6)
#define PS_PIN_ONE (1u << 16)
#define PS_PIN_MASK 0xffff0000u
#define PS_STATE(v) ((v)&PS_MASK)
#define PS_PINS(v) ((v) >> 16)

/* Every object the fault path may read (page arrays, regions, tables) is
 * one raw mapping that starts with this header: retired objects are
 * linked through it and freed whole after their grace period. */
struct ts_obj {
    struct ts_obj *dead_next;
    size_t bytes;
};

/* The arrays of a run of pages: one raw mapping, header first.  Shared by
 * the regions cut from one mapping (munmap of a middle part); freed when
 * the last of them is retired.  stamp holds the evictor interval (mod 256,
 * never 0) in which the page was last seen used. */
struct ts_pages {
    struct ts_obj obj;
    uint64_t n;
    int refs; /* published regions using it; under t->lock */
    _Atomic uint32_t *state;
    uint32_t *slot;
    uint64_t *hash;
    _Atomic uint8_t *stamp;
};

/* A region: [start, end) of private anonymous memory registered with the
 * process's userfaultfd.  Immutable once published but for ra_next and
 * ra_run. */
struct ts_region {
    struct ts_obj obj;
    uintptr_t start, end;
    struct ts_pages *pg;
    uint64_t first;           /* pg index of the page at start */
    _Atomic uint64_t ra_next; /* region page index a sequential fault hits */
    _Atomic uint32_t ra_run;  /* faults in a row on consecutive pages */
};

/* The published regions, sorted by start, never overlapping. */
struct ts_table {
    struct ts_obj obj;
    uint32_t n;
    uint64_t pages; /* sum of the regions' pages */
    struct ts_region *r[];
};

/* A growable array in raw memory (sys.c), used under t->lock only. */
struct ts_vec {
    void *p;
    size_t len, cap; /* elements */
    size_t esize;
};

/* ---- staging (staging.c) ------------------------------------------------- */
#define TS_STG_SLOTS 2048
#define TS_STG_WORDS (TS_STG_SLOTS / 64)
#define TS_FRAMES_CAP 512

struct ts_staging {
    char *base; /* NULL in a fork child (MADV_DONTFORK) */
    /* bit set: the slot holds a free frame (present) / is empty
     * (missing, a MOVE destination).  A slot in neither is the
     * evictor's (staged) or a page-in's (taken). */
    _Atomic uint64_t frames[TS_STG_WORDS];
    _Atomic uint64_t empty[TS_STG_WORDS];
    _Atomic uint32_t nframes;
    _Atomic uint32_t hint;
};

/* ---- slots (slots.c): frontswap offsets of type 0, under t->lock --------- */
struct ts_slots {
    uint64_t max;           /* offsets 0..max-1 */
    uint64_t fresh;         /* next never-used offset */
    struct ts_vec free;     /* uint32_t: invalidated, reusable */
    struct ts_vec flushq;   /* uint32_t: to invalidate, then free */
    struct ts_vec epoch;    /* uint32_t per slot: forks when stored */
    struct ts_vec deferred; /* struct ts_deferred */
    uint32_t fork_epoch;    /* handed-off forks so far */
    uint32_t newest_live;   /* newest live child's fork number, 0 none */
};

struct ts_deferred {
    uint32_t slot, epoch;
};

/* ---- fork (fork.c) ------------------------------------------------------- */
#define TS_MAX_KIDS 256

struct ts_kid {
    int sock;       /* our end; HUP when it and its descendants are gone */
    uint32_t epoch; /* its fork number */
};

struct ts_fork {
    _Atomic int pending;   /* a fork is between prepare and parent/child */
    _Atomic int reading;   /* the monitor is in a read of the descriptor */
    _Atomic int new_ufd;   /* the child's userfaultfd from the FORK event */
    bool materialize;      /* this fork brought every page in instead */
    int sp[2];             /* this fork's socket pair: [0] parent [1] child */
    _Atomic int child_ufd; /* in a child: its userfaultfd once received */
    int proxy_sock;        /* in a child: socket to the storing process */
    struct ts_kid kids[TS_MAX_KIDS]; /* root: live children, under lock */
    _Atomic int nkids;
    bool untracked; /* a child could not be watched: slots kept for good */
};

/* ---- counters (stats.c) -------------------------------------------------- */
struct ts_counters {
    _Atomic int64_t resident, stored, copies;
    _Atomic uint64_t faults_zero, faults_pagein, pagein_moves, faults_waited,
        faults_kernel, readahead, evicted, stores, clean_drops, zero_drops,
        stale_flushes, refused, refused_nospace, refused_gone,
        refused_transport, refused_other, evict_busy, prefaults, pins,
        fork_children, fork_live, fork_materialized, fork_unexpected,
        proxy_loads, ev_remove, ev_unmap, ev_remap, unknown_faults,
        direct_evictions;
    _Atomic uint64_t meta_bytes;
    _Atomic uint64_t hist[TMEM_TSWAP_HIST];
};

struct tmem_tswap {
    tmem_conn *conn;
    tmem_frontswap *fs;
    tmem_tswap_config cfg;
    pid_t pid;         /* the process this state belongs to */
    int ufd;           /* regions' userfaultfd */
    int sfd;           /* staging's userfaultfd (no events) */
    int pagemap_fd;    /* /proc/self/pagemap, for PAGEMAP_SCAN */
    int wake_fd;       /* eventfd that wakes the monitor */
    uint64_t features; /* UFFD_FEATURE_* obtained */
    bool handoff;      /* EVENT_FORK: children get a userfaultfd */
    bool is_child;     /* a fork child reading its parent's slots */
    bool detached;     /* a child of a materialized fork: not ours */

    pthread_mutex_t lock;
    _Atomic(struct ts_table *) table;
    /* Reader sections: readers[epoch & 1] counts the readers that
     * entered in that epoch; retired objects wait for a flip and for the
     * old count to drain (an SRCU of two counters). */
    _Atomic uint64_t readers[2];
    _Atomic uint32_t epoch;
    struct ts_obj *retired_new, *retired_old; /* under lock */
    uint32_t retired_old_idx;

    struct ts_staging stg;
    struct ts_slots slots;
    struct ts_counters c;

    _Atomic uint64_t target;
    _Atomic uint32_t kick;     /* futex: the evictor has work */
    _Atomic int kick_cpu;      /* the CPU of the fault that kicked it */
    int evict_cpu;             /* the CPU the evictor is bound to, or -1 */
    _Atomic uint32_t passes;   /* futex: evictor passes done (throttle) */
    _Atomic int stop;          /* the evictor ends */
    _Atomic int mon_stop;      /* the monitor ends */
    _Atomic uint32_t interval; /* evictor ticks (stamps) */
    uint32_t hand_reg;         /* CLOCK hand, under lock */
    uint64_t hand_pg;
    _Atomic uint64_t last_scan_ns;
    pthread_t evictor, monitor;
    bool evictor_on, monitor_on;
    _Atomic uint32_t ev_busy; /* futex: the monitor is between an event's
                                 read and the end of its handling */
    void *mon_buf;            /* monitor's scratch (maps, proxy page) */
    struct uffd_msg *mq;      /* monitor's queue of read messages */
    uint32_t mq_n;

    struct ts_fork fk;
    char why[256];
};

/* ---- sys.c --------------------------------------------------------------- */
void *tswap__mmap(size_t len, int prot, int flags);
int tswap__munmap(void *p, size_t len);
void *tswap__alloc(tmem_tswap *t, size_t bytes); /* zeroed, raw */
void tswap__free(tmem_tswap *t, void *p);
int tswap__vec_push(tmem_tswap *t, struct ts_vec *v, const void *e);
int tswap__vec_reserve(tmem_tswap *t, struct ts_vec *v, size_t n);
void tswap__vec_free(tmem_tswap *t, struct ts_vec *v);
uint64_t tswap__now_ns(void);
void tswap__futex_wait(_Atomic uint32_t *w, uint32_t val, uint64_t ns);
void tswap__futex_wake(_Atomic uint32_t *w, int n);
int tswap__uffd_open(tmem_tswap *t, uint64_t want, bool user_only_ok,
                     uint64_t *got);
int tswap__uffd_register(int fd, uintptr_t start, size_t len, bool wp);
int tswap__uffd_unregister(int fd, uintptr_t start, size_t len);
int tswap__uffd_move(int fd, uintptr_t dst, uintptr_t src, size_t len,
                     size_t *moved);
int tswap__uffd_copy(int fd, uintptr_t dst, const void *src);
int tswap__uffd_zero(int fd, uintptr_t dst);
void tswap__uffd_wake(int fd, uintptr_t addr, size_t len);
int tswap__vma_end(tmem_tswap *t, uintptr_t addr, uintptr_t *end,
                   bool *anon_rw);
void tswap__say(tmem_tswap *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tswap__write_err(const char *const *parts, size_t n);

/* ---- pages.c ------------------------------------------------------------- */
void tswap__read_enter(tmem_tswap *t, uint32_t *idx);
void tswap__read_leave(tmem_tswap *t, uint32_t idx);
struct ts_region *tswap__lookup(tmem_tswap *t, uintptr_t addr);
bool tswap__claim(tmem_tswap *t, _Atomic uint32_t *w, uint32_t *v, uint32_t to);
void tswap__release(tmem_tswap *t, _Atomic uint32_t *w, uint32_t keep_mask,
                    uint32_t bits);
bool tswap__flags(tmem_tswap *t, _Atomic uint32_t *w, uint32_t state,
                  uint32_t set, uint32_t clear);
uint32_t tswap__wait(_Atomic uint32_t *w, uint32_t seen);
uint32_t tswap__settle(_Atomic uint32_t *w);
struct ts_pages *tswap__pages_new(tmem_tswap *t, uint64_t n);
struct ts_region *tswap__region_new(tmem_tswap *t, uintptr_t start,
                                    uintptr_t end, struct ts_pages *pg,
                                    uint64_t first);
int tswap__table_swap_locked(tmem_tswap *t, struct ts_region *const *drop,
                             size_t ndrop, struct ts_region *const *add,
                             size_t nadd);
void tswap__reap_locked(tmem_tswap *t);
void tswap__reap_all(tmem_tswap *t);
void tswap__page_forget_locked(tmem_tswap *t, struct ts_pages *pg, uint64_t i);
void tswap__retire_locked(tmem_tswap *t, struct ts_obj *o);
void tswap__forget_range_locked(tmem_tswap *t, uintptr_t s, uintptr_t e);
int tswap__cut_locked(tmem_tswap *t, uintptr_t s, uintptr_t e,
                      struct ts_region *extra);
void tswap__lock_reset(tmem_tswap *t);
void tswap__account(tmem_tswap *t, uint32_t v, int dir);
void tswap__lock(tmem_tswap *t);
bool tswap__trylock(tmem_tswap *t);
void tswap__unlock(tmem_tswap *t);
void tswap__assert_locked(tmem_tswap *t);

static inline _Atomic uint32_t *tswap__state(struct ts_region *r,
                                             uintptr_t addr, uint64_t *i)
{
    *i = r->first + ((addr - r->start) >> TS_SHIFT);
    return &r->pg->state[*i];
}

/* ---- staging.c ----------------------------------------------------------- */
int tswap__staging_init(tmem_tswap *t);
void tswap__staging_fini(tmem_tswap *t);
int tswap__frame_take(tmem_tswap *t);
void tswap__frame_put(tmem_tswap *t, int slot);
void tswap__slot_emptied(tmem_tswap *t, int slot);
size_t tswap__empty_claim(tmem_tswap *t, int *out, size_t n);
enum { TS_STG_GONE, TS_STG_KEEP, TS_STG_DROP };
void tswap__staged_done(tmem_tswap *t, int slot, int how);
static inline char *tswap__stg_addr(tmem_tswap *t, int slot)
{
    return t->stg.base + (size_t)slot * TS_PAGE;
}

/* ---- slots.c ------------------------------------------------------------- */
int tswap__slots_init(tmem_tswap *t);
void tswap__slots_fini(tmem_tswap *t);
int64_t tswap__slot_alloc_locked(tmem_tswap *t);
bool tswap__slot_shared_locked(tmem_tswap *t, uint32_t slot);
void tswap__slot_stored_locked(tmem_tswap *t, uint32_t slot);
void tswap__slot_release_locked(tmem_tswap *t, uint32_t slot);
void tswap__slot_forget_locked(tmem_tswap *t, uint32_t slot);
void tswap__flush_commit_locked(tmem_tswap *t);
void tswap__kids_changed_locked(tmem_tswap *t);

/* ---- fault.c ------------------------------------------------------------- */
enum { TS_RES_FAULT = 1, TS_RES_PREFAULT = 2, TS_RES_DRAIN = 4 };
int tswap__resolve(tmem_tswap *t, uintptr_t addr, bool write, int how);
int tswap__ufd(tmem_tswap *t);
bool tswap__child_now(tmem_tswap *t);
int tswap__load(tmem_tswap *t, uint32_t slot, void *buf, bool child);
int tswap__bring_page(tmem_tswap *t, struct ts_region *r, uintptr_t addr,
                      bool keep_copy);
void tswap__lost(tmem_tswap *t, uintptr_t addr, uint32_t slot, int rc)
    __attribute__((noreturn));
void tswap__die(const char *what, uintptr_t addr, int err)
    __attribute__((noreturn));
int tswap__sigbus_install(tmem_tswap *t);
void tswap__sigbus_restore(void);
void tswap__handlers_drain(void);
void tswap__handlers_reset(void);
bool tswap__fault_unknown(tmem_tswap *t, uintptr_t addr, bool write);
void tswap__hist_add(tmem_tswap *t, uint64_t ns);
void tswap__mark_monitor(void);
extern _Atomic(tmem_tswap *) tswap__current;

/* ---- evict.c ------------------------------------------------------------- */
int tswap__evictor_start(tmem_tswap *t);
void tswap__evictor_stop(tmem_tswap *t);
void tswap__kick(tmem_tswap *t);
bool tswap__evict_direct(tmem_tswap *t);
/* Resident pages ran past the target's slack (a fault then evicts). */
bool tswap__over_slack(tmem_tswap *t);
/* percent of an interval has passed since the last scan of written
 * bits. */
bool tswap__scan_due(tmem_tswap *t, unsigned percent);
int64_t tswap__evict_pass(tmem_tswap *t, bool scan);
void tswap__scan_locked(tmem_tswap *t);

/* ---- monitor.c ----------------------------------------------------------- */
int tswap__monitor_start(tmem_tswap *t);
void tswap__monitor_stop(tmem_tswap *t);
void tswap__monitor_wake(tmem_tswap *t);
void tswap__lock_evented(tmem_tswap *t);

/* ---- fork.c -------------------------------------------------------------- */
int tswap__fork_setup(tmem_tswap *t);
int tswap__child_ufd_wait(tmem_tswap *t);
int tswap__proxy_load(tmem_tswap *t, uint32_t slot, void *buf);
void tswap__fork_event(tmem_tswap *t, int ufd);
void tswap__kid_event_locked(tmem_tswap *t, int k, bool hup);
bool tswap__proxy_serve(tmem_tswap *t, int sock);

/* ---- stats.c ------------------------------------------------------------- */
extern char tswap__last_why[256];

/* ---- tswap.c ------------------------------------------------------------- */
int64_t tswap__bring_in_locked(tmem_tswap *t, uint64_t stored_target,
                               uint64_t budget, bool drop_copies);
int tswap__block_signals(sigset_t *old);

#endif
