#include "test_files.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../runner.h"

void tf_put(const char *dir, const char *rel, const char *text)
{
    char path[PATH_MAX];
    size_t base = strlen(dir) + 1;
    ASSERT_TRUE(snprintf(path, sizeof path, "%s/%s", dir, rel) <
                (int)sizeof path);
    for (char *p = path + base; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755); /* may exist: fopen below tells */
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    ASSERT_TRUE(fputs(text, f) >= 0);
    ASSERT_EQ(fclose(f), 0);
}

void tf_cgroup_tree(char *tmp, char *ten)
{
    char parent[PATH_MAX];

    strcpy(tmp, "/tmp/tmem-cgfake-XXXXXX");
    ASSERT_TRUE(mkdtemp(tmp) != NULL);
    snprintf(parent, PATH_MAX, "%s/parent", tmp);
    ASSERT_EQ(mkdir(parent, 0755), 0);
    tf_put(parent, "cgroup.procs", "");
    snprintf(ten, PATH_MAX, "%.200s/ten", parent);
    ASSERT_EQ(mkdir(ten, 0755), 0);
    tf_put(ten, "cgroup.procs", "1\n");
}

void tf_rm_tree(const char *tmp)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    ASSERT_EQ(system(cmd), 0);
}
