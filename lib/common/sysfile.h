/*
 * Writing one value to a control file (cgroup, sysfs, xenstore trees):
 * open, one write, close, with every failure reported.
 */
#ifndef TMEM_COMMON_SYSFILE_H
#define TMEM_COMMON_SYSFILE_H

/* Writes text to dir/file (or to dir itself when file is NULL), replacing
 * what was there.  Returns 0, or -errno (-EIO for a short write, -ENAMETOOLONG
 * for a path that does not fit PATH_MAX). */
int tmem__write_text(const char *dir, const char *file, const char *text);

#endif
