/*
 * Temporary directories removed when a test passes (see tmpdir.h).
 */
#include "tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runner.h"

#define TL_MAX 64

static char dirs[TL_MAX][96];
static int ndirs;
static pid_t owner; /* the test process that registered them */

static int rm_one(const char *path, const struct stat *st, int type,
                  struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path); /* FTW_DEPTH: a directory's entries went first */
    return 0;
}

void tl_rm_tree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_all(void)
{
    if (getpid() != owner)
        return; /* a forked child that called exit(): not its dirs */
    for (int i = ndirs - 1; i >= 0; i--)
        tl_rm_tree(dirs[i]);
}

void tl_remove_at_exit(const char *dir)
{
    if (owner != getpid()) { /* the first in this test process */
        owner = getpid();
        ndirs = 0;
        atexit(remove_all);
    }
    if (ndirs < TL_MAX && strlen(dir) < sizeof dirs[0])
        snprintf(dirs[ndirs++], sizeof dirs[0], "%s", dir);
}

void tl_tmpdir(char *out, size_t cap, const char *prefix)
{
    int n = snprintf(out, cap, "/tmp/%sXXXXXX", prefix);
    ASSERT_TRUE(n > 0 && (size_t)n < cap);
    ASSERT_TRUE(mkdtemp(out) != NULL);
    tl_remove_at_exit(out);
}
