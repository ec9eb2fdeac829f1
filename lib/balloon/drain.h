/*
 * Drain of the kernel's swap tier for a set of processes: a proactive
 * swap-in (process_madvise MADV_WILLNEED over the swapped ranges, then a
 * read of those ranges so they are mapped again).  See drain.c.
 */
#ifndef TMEM_BALLOON_DRAIN_H
#define TMEM_BALLOON_DRAIN_H

#include <stdint.h>
#include <sys/types.h>

struct tmem_balloon_drain_stats {
    uint64_t pages;    /* swapped pages asked back */
    uint64_t ranges;   /* runs of swapped pages found */
    uint64_t procs;    /* processes visited */
    uint64_t madvise_calls; /* process_madvise calls */
    uint64_t failed;   /* processes skipped on an error (gone, EPERM) */
};

/* Brings back up to budget swapped pages (0 = no bound) of process pid.
 * Returns the pages asked back (>= 0) or -errno (-ESRCH when the process
 * is gone, -ENOSYS without process_madvise).  st (may be NULL) is added
 * to. */
int64_t tmem_balloon_drain_pid(pid_t pid, uint64_t budget,
                               struct tmem_balloon_drain_stats *st);

/* The same over every process of the cgroup directory dir and of its
 * descendants (their cgroup.procs), budget shared.  A process that fails
 * is counted in st->failed and skipped.  Returns pages asked back or
 * -errno when cgroup.procs cannot be read. */
int64_t tmem_balloon_drain_cgroup(const char *dir, uint64_t budget,
                                  struct tmem_balloon_drain_stats *st);

/* The process's pages in swap now (VmSwap of /proc/PID/status), or
 * -errno. */
int64_t tmem_balloon_swapped_pages(pid_t pid);

/* Calls fn(pid, arg) for each process of dir and its descendants; stops
 * when fn returns nonzero and returns that.  Returns 0 or -errno. */
int tmem__balloon_cgroup_each_pid(const char *dir,
                                  int (*fn)(pid_t pid, void *arg), void *arg);

#endif
