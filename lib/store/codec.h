/*
 * Page codecs for the blob layer: none, LZ4 (acceleration 1), zstd level 1.
 * Compression state is per thread, so codecs never take a lock.
 */
#ifndef TMEM_STORE_CODEC_H
#define TMEM_STORE_CODEC_H

#include <stddef.h>

#include <tmem/store.h>

#include "common/pack.h"

/* A page whose compressed form would exceed this is stored raw: above 3/4
 * of a page compression saves under 25% while every read still pays the
 * decompression; zram's "huge class" cut is about the same.  Tenants that
 * pack their own pages use the same bound. */
#define TMEM_CODEC_MAX_OUT TMEM_PACK_LZ4_MAX

/* Compresses page[TMEM_PAGE_SIZE] into dst[TMEM_CODEC_MAX_OUT].  Returns
 * the compressed size (> 0), 0 if it would not fit (store raw), or
 * TMEM_ENOMEM if the thread's zstd context could not be allocated.
 * TMEM_COMPRESS_NONE always returns 0. */
int tmem__codec_compress(tmem_compress c, const void *page, void *dst);
/* Decompresses src[len] into page[TMEM_PAGE_SIZE].  Returns 0, -EIO if
 * the data is corrupt or not exactly one page, TMEM_ENOMEM (zstd context),
 * -EINVAL for an unknown codec.  TMEM_COMPRESS_NONE copies len == page. */
int tmem__codec_decompress(tmem_compress c, const void *src, size_t len,
                           void *page);

#endif
