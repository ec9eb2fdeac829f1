/*
 * scale_ref: how well this machine runs two threads at once right now, as
 * the ceiling for the store's 2-thread scaling target (bench/store.sh
 * builds and runs it next to the store bench, in the same rounds).
 *
 * It LZ4-compresses every page of the corpus (the bulk of a put's work),
 * first with one thread, then with N threads on disjoint slices, and prints
 * the pages per second of each and their ratio.  No store, no locks, no
 * shared memory written: on an idle 2-vCPU machine the ratio is near 2; when
 * something else keeps a vCPU busy it drops toward 1, and the store's own
 * scaling cannot do better.
 *
 * Usage: scale_ref --corpus FILE [--threads N]; prints one JSON object.
 * Exit 1: the corpus could not be read; 2: usage.
 */
#include <lz4.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tmem/errors.h>

#include "common/corpus.h"

#define PAGE 4096
#define MAX_THREADS 64

struct slice {
    const char *pages;
    size_t lo, hi;
    pthread_t tid;
    int sink; /* keeps the compressor's work observable */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void *compress_slice(void *arg)
{
    struct slice *s = arg;
    char out[LZ4_COMPRESSBOUND(PAGE)];
    for (size_t i = s->lo; i < s->hi; i++)
        s->sink += LZ4_compress_default(s->pages + i * PAGE, out, PAGE,
                                        (int)sizeof out);
    return NULL;
}

/* Compresses all n pages with t threads; returns pages per second, or 0
 * when a thread could not be started. */
static double run(const char *pages, size_t n, int t)
{
    struct slice s[MAX_THREADS];
    int started = 0;
    double t0 = now_s();
    for (; started < t; started++) {
        s[started] =
            (struct slice){pages, n * started / t, n * (started + 1) / t, 0, 0};
        if (pthread_create(&s[started].tid, NULL, compress_slice, &s[started]))
            break;
    }
    for (int k = 0; k < started; k++)
        pthread_join(s[k].tid, NULL);
    double dt = now_s() - t0;
    return started == t && dt > 0 ? n / dt : 0;
}

int main(int argc, char **argv)
{
    const char *corpus = NULL;
    int threads = 2;
    void *pages = NULL;
    size_t n = 0;

    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--corpus") == 0)
            corpus = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[++i]);
        else
            corpus = NULL, i = argc;
    }
    if (!corpus || threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "usage: scale_ref --corpus FILE [--threads N]\n");
        return 2;
    }
    int rc = tmem__corpus_load(corpus, &pages, &n);
    if (rc < 0 || n == 0) {
        fprintf(stderr, "scale_ref: %s: %s\n", corpus,
                rc < 0 ? tmem_errname(rc) : "no pages");
        return 1;
    }
    double one = run(pages, n, 1), many = run(pages, n, threads);
    printf("{\"pages\": %zu, \"threads\": %d, \"lz4_1t_pages_per_s\": %.1f"
           ", \"lz4_nt_pages_per_s\": %.1f, \"scaling\": %.3f}\n",
           n, threads, one, many, one > 0 ? many / one : 0.0);
    tmem__corpus_free(pages, n);
    return one > 0 && many > 0 ? 0 : 1;
}
