/*
 * Codecs (codec.h).  Owns the per-thread compression state: an LZ4 state
 * in thread-local storage (no allocation), and zstd contexts created on a
 * thread's first zstd use through tmem__malloc (so fault injection reaches
 * them) and freed by a pthread key destructor when the thread exits.
 * Invariant: no codec call takes a lock or aborts on OOM.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <lz4.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/mem.h"
#include "common/pack.h"
#include "store/codec.h"

struct zctx {
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
};

static _Thread_local LZ4_stream_t lz4_tls;
static _Thread_local struct zctx zstd_tls;
static pthread_key_t zstd_key;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;
static int zstd_key_ok;

static void *zalloc_cb(void *opaque, size_t n)
{
    (void)opaque;
    return tmem__malloc(n);
}

static void zfree_cb(void *opaque, void *p)
{
    (void)opaque;
    tmem__free(p);
}

static const ZSTD_customMem zmem = {zalloc_cb, zfree_cb, NULL};

static void zstd_release(void *arg)
{
    struct zctx *z = arg;
    ZSTD_freeCCtx(z->c);
    ZSTD_freeDCtx(z->d);
    z->c = NULL;
    z->d = NULL;
}

static void zstd_key_init(void)
{
    zstd_key_ok = pthread_key_create(&zstd_key, zstd_release) == 0;
}

/* Returns the thread's contexts, creating the one asked for; NULL on OOM. */
static struct zctx *zstd_get(int want_c)
{
    struct zctx *z = &zstd_tls;
    if (want_c ? z->c != NULL : z->d != NULL)
        return z;
    pthread_once(&zstd_once, zstd_key_init);
    if (!zstd_key_ok)
        return NULL;
    if (want_c && !(z->c = ZSTD_createCCtx_advanced(zmem)))
        return NULL;
    if (!want_c && !(z->d = ZSTD_createDCtx_advanced(zmem)))
        return NULL;
    /* Registering again is harmless: the value is the same pointer. */
    if (pthread_setspecific(zstd_key, z) != 0) {
        zstd_release(z);
        return NULL;
    }
    return z;
}

int tmem__codec_compress(tmem_compress c, const void *page, void *dst)
{
    switch (c) {
    case TMEM_COMPRESS_LZ4:
        return tmem__pack_lz4(page, &lz4_tls, dst);
    case TMEM_COMPRESS_ZSTD: {
        struct zctx *z = zstd_get(1);
        if (!z)
            return TMEM_ENOMEM;
        size_t n = ZSTD_compressCCtx(z->c, dst, TMEM_CODEC_MAX_OUT, page,
                                     TMEM_PAGE_SIZE, 1);
        if (ZSTD_isError(n))
            return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation
                       ? TMEM_ENOMEM
                       : 0;
        return (int)n;
    }
    default:
        return 0;
    }
}

int tmem__codec_decompress(tmem_compress c, const void *src, size_t len,
                           void *page)
{
    switch (c) {
    case TMEM_COMPRESS_NONE:
    case TMEM_COMPRESS_LZ4: { /* the packed forms a tenant decodes too */
        tmem_packed pk = {c == TMEM_COMPRESS_LZ4 ? TMEM_PACK_LZ4
                                                 : TMEM_PACK_RAW,
                          len > TMEM_PAGE_SIZE ? 0 : (uint32_t)len, 0};
        return tmem__unpack(&pk, src, page) == 0 ? 0 : -EIO;
    }
    case TMEM_COMPRESS_ZSTD: {
        struct zctx *z = zstd_get(0);
        if (!z)
            return TMEM_ENOMEM;
        size_t n = ZSTD_decompressDCtx(z->d, page, TMEM_PAGE_SIZE, src, len);
        if (ZSTD_isError(n) &&
            ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
            return TMEM_ENOMEM;
        return !ZSTD_isError(n) && n == TMEM_PAGE_SIZE ? 0 : -EIO;
    }
    default:
        return -EINVAL;
    }
}
