/*
 * bench/save_bench.c: save and restore throughput of one client's
 * persistent pages (lib/store/save.c) through a file, on the embedded
 * store (built and run by bench/save.sh, which times `cat` of the stream
 * in the same run).  Usage: save_bench CORPUS PAGES FILE.  Prints one JSON
 * object; exits non-zero when a restored page differs.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tmem/store.h>

#include "bench_pages.h"
#include "common/corpus.h"
#include "store/save.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: save_bench CORPUS PAGES FILE\n");
        return 2;
    }
    uint32_t pages = (uint32_t)strtoul(argv[2], NULL, 10);
    void *corpus = NULL;
    size_t ncorpus = 0;
    if (tmem__corpus_load(argv[1], &corpus, &ncorpus) < 0 || !ncorpus) {
        fprintf(stderr, "save_bench: cannot read %s\n", argv[1]);
        return 1;
    }
    tmem_store *a, *b;
    tmem_client *c, *d;
    if (tmem_store_create(NULL, &a) < 0 || tmem_store_create(NULL, &b) < 0 ||
        tmem_client_create(a, &c) < 0 || tmem_client_create(b, &d) < 0)
        return 1;
    int pool = tmem_pool_new(c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), NULL);
    unsigned char page[TMEM_PAGE_SIZE];
    for (uint32_t i = 0; i < pages; i++) {
        tmem_oid o = {{i >> 9, 0, 0}};
        page_of(corpus, ncorpus, i, page);
        if (tmem_page_put(c, pool, &o, i & 511, page) != 1)
            return 1;
    }
    int fd = open(argv[3], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 1;
    tmem_save_stats ss, rs;
    double t0 = now_s();
    if (tmem__client_save(c, fd, &ss) < 0)
        return 1;
    double t1 = now_s();
    lseek(fd, 0, SEEK_SET);
    if (tmem__client_restore(d, fd, NULL, &rs) < 0)
        return 1;
    double t2 = now_s();
    close(fd);
    unsigned char got[TMEM_PAGE_SIZE];
    uint32_t bad = 0;
    for (uint32_t i = 0; i < pages; i++) {
        tmem_oid o = {{i >> 9, 0, 0}};
        page_of(corpus, ncorpus, i, page);
        bad += tmem_page_get(d, pool, &o, i & 511, got) != 1 ||
               memcmp(got, page, TMEM_PAGE_SIZE) != 0;
    }
    double mib = (double)ss.bytes / 1048576.0;
    printf("{\"pages\": %u, \"stream_mib\": %.1f, \"orig_mib\": %.1f, "
           "\"save_s\": %.4f, \"restore_s\": %.4f, \"save_mib_s\": %.0f, "
           "\"restore_mib_s\": %.0f, \"save_pages_s\": %.0f, "
           "\"restore_pages_s\": %.0f, \"bad\": %u}\n",
           pages, mib, pages * 4096.0 / 1048576.0, t1 - t0, t2 - t1,
           mib / (t1 - t0), mib / (t2 - t1), pages / (t1 - t0),
           pages / (t2 - t1), bad);
    tmem_store_destroy(a);
    tmem_store_destroy(b);
    tmem__corpus_free(corpus, ncorpus);
    return bad ? 1 : 0;
}
