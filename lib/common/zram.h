/*
 * A zram device as a swap device: made (hot_add, lz4 where the kernel
 * has it, disksize, mkswap, swapon at a priority) and removed (swapoff,
 * reset, hot_remove).  For the demo, the balloon tests and benchmarks,
 * which each bring their own zram swap and take it away again.
 */
#ifndef TMEM_COMMON_ZRAM_H
#define TMEM_COMMON_ZRAM_H

/* Makes a zram swap device of size_mb MiB at priority prio (0..32767).
 * Returns its number (>= 0), or -ENOENT when the kernel has no zram
 * (/sys/class/zram-control), -ENOEXEC when mkswap failed, another -errno
 * otherwise; on failure nothing is left behind. */
int tmem__zram_swap_add(unsigned size_mb, int prio);

/* Turns swap on device id off and removes the device; a no-op for
 * id < 0.  Returns 0 or the first -errno (it goes on after one). */
int tmem__zram_swap_remove(int id);

#endif
