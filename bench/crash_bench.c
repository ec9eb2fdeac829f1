/*
 * bench/crash_bench.c: the tenant side of bench/crash.sh.  Usage:
 *   crash_bench put SOCKET CORPUS PAGES   puts PAGES pages (corpus pages,
 *       each made its own) into a persistent pool as tenant "crashbench",
 *       prints "ready" and waits (the daemon is killed under it)
 *   crash_bench check SOCKET CORPUS PAGES   connects as "crashbench" to
 *       the restarted daemon and checks every page byte for byte
 * Exits non-zero when a put fails or a page differs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tmem/client.h>

#include "bench_pages.h"
#include "common/corpus.h"

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "put") && strcmp(argv[1], "check"))) {
        fprintf(stderr, "usage: crash_bench put|check SOCKET CORPUS PAGES\n");
        return 2;
    }
    uint32_t pages = (uint32_t)strtoul(argv[4], NULL, 10);
    void *corpus = NULL;
    size_t n = 0;
    if (tmem__corpus_load(argv[3], &corpus, &n) < 0 || !n) {
        fprintf(stderr, "crash_bench: cannot read %s\n", argv[3]);
        return 1;
    }
    setenv("TMEM_NAME", "crashbench", 1);
    tmem_conn *c = NULL;
    int rc = tmem_connect(argv[2], &c);
    if (rc < 0) {
        fprintf(stderr, "crash_bench: connect: %d\n", rc);
        return 1;
    }
    bool put = !strcmp(argv[1], "put");
    int pool = put ? tmem_conn_pool_new(c, NULL,
                                        TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                                        NULL)
                   : 0; /* taken over: the id it had */
    if (pool < 0) {
        fprintf(stderr, "crash_bench: pool: %d\n", pool);
        return 1;
    }
    unsigned char page[TMEM_PAGE_SIZE], got[TMEM_PAGE_SIZE];
    for (uint32_t i = 0; i < pages; i++) {
        tmem_oid o = {{i / 4096, 0, 0}};
        page_of(corpus, n, i, page);
        if (put ? tmem_conn_put(c, pool, &o, i % 4096, page) != 1
                : (tmem_conn_get(c, pool, &o, i % 4096, got) != 1 ||
                   memcmp(got, page, TMEM_PAGE_SIZE) != 0)) {
            fprintf(stderr, "crash_bench: %s of page %u failed\n", argv[1], i);
            return 1;
        }
    }
    if (put) {
        printf("ready\n");
        fflush(stdout);
        pause(); /* killed by the script, as the daemon is */
    }
    printf("%u pages back, byte for byte\n", pages);
    tmem_disconnect(c);
    tmem__corpus_free(corpus, n);
    return 0;
}
