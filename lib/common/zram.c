/*
 * zram swap devices (zram.h).
 */
#include "common/zram.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/swap.h>
#include <unistd.h>

#include "common/sysfile.h"

int tmem__zram_swap_add(unsigned size_mb, int prio)
{
    char buf[32], sys[64], dev[64], cmd[128];
    int id, rc;

    if (tmem__read_text("/sys/class/zram-control", "hot_add", buf,
                        sizeof buf) <= 0)
        return -ENOENT;
    id = atoi(buf);
    snprintf(sys, sizeof sys, "/sys/block/zram%d", id);
    snprintf(dev, sizeof dev, "/dev/zram%d", id);
    tmem__write_text(sys, "comp_algorithm", "lz4"); /* the default if not */
    snprintf(buf, sizeof buf, "%uM", size_mb);
    if ((rc = tmem__write_text(sys, "disksize", buf)) < 0)
        goto fail;
    /* udev may take a moment to make the device node */
    for (int i = 0; i < 50 && access(dev, F_OK) != 0; i++)
        usleep(20000);
    snprintf(cmd, sizeof cmd, "mkswap %s >/dev/null 2>&1", dev);
    if (system(cmd) != 0) {
        rc = -ENOEXEC;
        goto fail;
    }
    if (swapon(dev, SWAP_FLAG_PREFER |
                        ((prio & SWAP_FLAG_PRIO_MASK) << SWAP_FLAG_PRIO_SHIFT)) <
        0) {
        rc = -errno;
        goto fail;
    }
    return id;
fail:
    tmem__zram_swap_remove(id);
    return rc;
}

int tmem__zram_swap_remove(int id)
{
    char sys[64], dev[64], num[16];
    int rc = 0, r;

    if (id < 0)
        return 0;
    snprintf(dev, sizeof dev, "/dev/zram%d", id);
    snprintf(sys, sizeof sys, "/sys/block/zram%d", id);
    snprintf(num, sizeof num, "%d", id);
    if (swapoff(dev) < 0 && errno != EINVAL) /* EINVAL: swap was not on */
        rc = -errno;
    if ((r = tmem__write_text(sys, "reset", "1")) < 0 && !rc)
        rc = r;
    if ((r = tmem__write_text("/sys/class/zram-control", "hot_remove",
                              num)) < 0 &&
        !rc)
        rc = r;
    return rc;
}
