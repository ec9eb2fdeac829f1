/*
 * Fake control-file trees for the balloon tests (cgroup, Xen, traces).
 */
#ifndef TEST_FILES_H
#define TEST_FILES_H

/* Creates or replaces dir/rel holding text, making the missing
 * directories of rel below dir; fails the test on error. */
void tf_put(const char *dir, const char *rel, const char *text);

/* A fake cgroup tree: tmp (PATH_MAX) becomes a new /tmp directory holding
 * parent/ (a cgroup: it has cgroup.procs) and parent/ten/ (the tenant,
 * into ten, PATH_MAX); fails the test on error. */
void tf_cgroup_tree(char *tmp, char *ten);
/* Removes the tree tmp; fails the test on error. */
void tf_rm_tree(const char *tmp);

#endif
