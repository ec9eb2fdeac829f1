/*
 * Corpus loader: files of raw 4 KiB pages, plain or zstd-compressed, for
 * the benchmark, the demo and the tests.
 */
#ifndef TMEM_COMMON_CORPUS_H
#define TMEM_COMMON_CORPUS_H

#include <stddef.h>

#define TMEM_CORPUS_PAGE 4096

/* Loads every page of path: raw pages, or a zstd stream of them (detected
 * by its magic number; the content size need not be in the header).
 * Returns 0 and sets *pages (free with tmem__corpus_free; NULL when the
 * file is empty) and *npages; -EINVAL if the (decompressed) size is not a
 * multiple of 4096 or the zstd data is corrupt; -ENOMEM; -errno on I/O
 * errors. */
int tmem__corpus_load(const char *path, void **pages, size_t *npages);
/* Frees what tmem__corpus_load returned.  NULL is a no-op. */
void tmem__corpus_free(void *pages, size_t npages);
/* Returns the first existing of $TMEM_CORPUS,
 * ../shared/corpus/pages-a.bin.zst, /work/shared/corpus/pages-a.bin.zst;
 * NULL if none exists. */
const char *tmem__corpus_default(void);

#endif
