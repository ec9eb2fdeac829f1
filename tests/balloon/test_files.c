#include "test_files.h"

#include <limits.h>
#include <stdio.h>
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
