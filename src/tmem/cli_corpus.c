/*
 * The benchmarks' --corpus FILE: loaded, or what is wrong with FILE in
 * words (cmds.h, cli_corpus).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <tmem/errors.h>

#include "cmds.h"
#include "common/corpus.h"

int cli_corpus(const char *cmd, const char *path, void **pages, size_t *n)
{
    int rc = tmem__corpus_load(path, pages, n);
    if (rc == 0 && *n)
        return 0;
    if (rc == 0)
        tmem__corpus_free(*pages, *n);
    struct stat st;
    if (rc == -EINVAL && stat(path, &st) == 0)
        fprintf(stderr,
                "%s: corpus %s: neither raw 4 KiB pages (its %lld bytes are "
                "not a multiple of 4096) nor a whole zstd stream of them\n",
                cmd, path, (long long)st.st_size);
    else if (rc < 0)
        fprintf(stderr, "%s: corpus %s: %s (%s)\n", cmd, path,
                tmem_strerror(rc), tmem_errname(rc));
    else
        fprintf(stderr, "%s: corpus %s: empty: no pages in it\n", cmd,
                path);
    return CLI_FAIL;
}
