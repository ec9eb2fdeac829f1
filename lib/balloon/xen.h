/*
 * The Xen guest balloon backend: self-ballooning a Xen domU through the
 * kernel's balloon driver (sysfs), as xen-selfballoon did from inside.
 * See xen.c for where each quantity comes from.
 */
#ifndef TMEM_BALLOON_XEN_H
#define TMEM_BALLOON_XEN_H

#include "balloon/backend.h"

/* The sysfs directory of the balloon driver, under root. */
#define TMEM_BALLOON_XEN_DIR "/sys/devices/system/xen_memory/xen_memory0"

/* Opens the backend for the guest whose /sys and /proc are under root
 * (NULL or "" = "/"; tests pass a prepared directory) and fills *out.
 * Returns 0; -ENOENT when target_kb or /proc/meminfo is missing (not a Xen
 * guest with a balloon driver), -EPERM in dom0 (the host never
 * self-balloons), -EINVAL for unreadable contents, -ENOMEM.  On failure
 * *out is cleared and, when errbuf is not NULL, errbuf (cap bytes) holds
 * one line saying which file and why. */
int tmem_balloon_xen_open(tmem_balloon_backend *out, const char *root,
                          char *errbuf, size_t cap);

#endif
