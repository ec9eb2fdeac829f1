/*
 * The cgroup balloon backend (v1 and v2): a tenant is a memory cgroup; its
 * allowance is memory.limit_in_bytes (v1) or memory.high (v2).  See
 * cgroup.c for where each quantity comes from and how targets are applied.
 */
#ifndef TMEM_BALLOON_CGROUP_H
#define TMEM_BALLOON_CGROUP_H

#include <stddef.h>

#include "balloon/backend.h"

/* Opens the backend for the memory cgroup directory path (a v1 directory
 * with memory.limit_in_bytes or a v2 one with memory.high; tests pass a
 * prepared tree) and fills *out.  Returns 0; -ENOENT when path is not a
 * memory cgroup, -EPERM for the root of a hierarchy or a cgroup that holds
 * the calling process (in it or below it: the host never self-balloons),
 * -EINVAL for unreadable contents, -ENOMEM.  On failure *out is cleared
 * and errbuf (when not NULL, cap bytes) holds one line saying why.
 * Closing the backend restores the limit the cgroup had at open. */
int tmem_balloon_cgroup_open(tmem_balloon_backend *out, const char *path,
                             char *errbuf, size_t cap);

/* Last numbers the backend saw or wrote, for logs and tests (bytes are
 * converted to 4 KiB pages). */
struct tmem_balloon_cgroup_info {
    int version;          /* 1 or 2 */
    unsigned long long usage;   /* memory.usage_in_bytes / memory.current */
    unsigned long long limit;   /* the allowance, 0 = none */
    unsigned long long applied; /* what the last apply_target wrote */
    unsigned long long start_limit; /* the allowance at open, 0 = none */
    unsigned long long drained; /* pages brought back, total */
    unsigned long long clamped; /* applies cut short by the step rule */
    unsigned long long workingset; /* re-used pages in the last committed */
};

/* Fills *info from an open cgroup backend.  Returns 0 or -EINVAL when be
 * is not a cgroup backend. */
int tmem_balloon_cgroup_info(const tmem_balloon_backend *be,
                             struct tmem_balloon_cgroup_info *info);

#endif
