/*
 * Sizes as people write them on a command line: "4096", "64K", "512M",
 * "2G", "1T" (also k/m/g/t, and KiB/KB style tails).  Binary units.
 */
#ifndef TMEM_COMMON_SIZE_H
#define TMEM_COMMON_SIZE_H

#include <stdint.h>

/* Parses s into bytes.  Returns 0, -EINVAL (not a size: empty, a sign,
 * junk after the unit) or -ERANGE (does not fit 64 bits). */
int tmem__parse_size(const char *s, uint64_t *out);

#endif
