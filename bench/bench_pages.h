/*
 * bench/bench_pages.h: the pages the persistence benchmarks (save_bench.c,
 * crash_bench.c) put: corpus pages, each made its own.
 */
#ifndef TMEM_BENCH_PAGES_H
#define TMEM_BENCH_PAGES_H

#include <stdint.h>
#include <string.h>

#include <tmem/abi.h>

/* Page i: corpus page i mod n, its first 8 bytes made i (every page its
 * own, none deduplicated away; zero pages stay mostly zero). */
static inline void page_of(const void *corpus, size_t n, uint32_t i,
                           void *out)
{
    memcpy(out, (const char *)corpus + (size_t)(i % n) * TMEM_PAGE_SIZE,
           TMEM_PAGE_SIZE);
    uint64_t v = i;
    memcpy(out, &v, sizeof v);
}

#endif
