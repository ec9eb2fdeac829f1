/*
 * Fake control-file trees for the balloon tests (cgroup, Xen, traces).
 */
#ifndef TEST_FILES_H
#define TEST_FILES_H

/* Creates or replaces dir/rel holding text, making the missing
 * directories of rel below dir; fails the test on error. */
void tf_put(const char *dir, const char *rel, const char *text);

#endif
