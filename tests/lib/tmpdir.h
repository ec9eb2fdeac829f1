/*
 * Temporary directories of a test: made under /tmp, removed with all
 * they hold when the test passes (its process ends in exit(0)); a
 * failing test ends in _exit and keeps them, for the logs.
 */
#ifndef TESTS_LIB_TMPDIR_H
#define TESTS_LIB_TMPDIR_H

#include <stddef.h>

/* Makes /tmp/<prefix>XXXXXX into out (cap bytes) and has it removed at a
 * passing test's end; fails the test on error. */
void tl_tmpdir(char *out, size_t cap, const char *prefix);

/* Has dir (made by the caller) removed at a passing test's end, after
 * the functions registered before this one have run. */
void tl_remove_at_exit(const char *dir);

/* Removes the tree at path now (best effort). */
void tl_rm_tree(const char *path);

#endif
