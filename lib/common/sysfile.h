/*
 * Control files (cgroup, sysfs, Xen trees): writing one value, reading one
 * back, finding "key value" in a stat file, with every failure reported.
 * A NULL file means dir is the whole path.
 */
#ifndef TMEM_COMMON_SYSFILE_H
#define TMEM_COMMON_SYSFILE_H

#include <stddef.h>
#include <stdint.h>

/* The largest control file read whole (a cgroup's memory.stat: ~1-4 KiB). */
#define TMEM_SYSFILE_MAX 16384

/* Writes text to dir/file, replacing what was there; never creates it.
 * Returns 0, or -errno (-EIO for a short write, -ENAMETOOLONG for a path
 * that does not fit PATH_MAX). */
int tmem__write_text(const char *dir, const char *file, const char *text);

/* Reads dir/file into buf (at most cap - 1 bytes, NUL-terminated).
 * Returns the length, or -errno as tmem__write_text. */
int tmem__read_text(const char *dir, const char *file, char *buf, size_t cap);

/* Finds the line "key value" in text.  Returns 1 (value set) or 0. */
int tmem__text_field(const char *text, const char *key, uint64_t *value);

/* The number in dir/file (its first line, or the value of "key value"
 * when key != NULL); -1 when the file or key is absent, or it says
 * "max".  For tests and benchmarks that only watch a cgroup. */
long long tmem__read_ll(const char *dir, const char *file, const char *key);

#endif
