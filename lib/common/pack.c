/*
 * Packing and unpacking pages (see pack.h).
 */
#include "pack.h"

#include <errno.h>
#include <lz4.h>
#include <lz4hc.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

_Static_assert(TMEM_PACK_STATE_SIZE >= sizeof(LZ4_stream_t),
               "TMEM_PACK_STATE_SIZE below the LZ4 state");

int tmem__fill_word(const void *page, uint32_t *w)
{
    const uint64_t *q = page;
    uint64_t first = q[0];
    if ((uint32_t)first != (uint32_t)(first >> 32))
        return 0;
    for (size_t i = 1; i < TMEM_PAGE_SIZE / 8; i++)
        if (q[i] != first)
            return 0;
    *w = (uint32_t)first;
    return 1;
}

uint32_t tmem__page_hash(const void *page)
{
    return (uint32_t)XXH3_64bits(page, TMEM_PAGE_SIZE);
}

int tmem__pack_lz4(const void *page, void *state, void *out)
{
    int n = LZ4_compress_fast_extState(state, page, out, TMEM_PAGE_SIZE,
                                       TMEM_PACK_LZ4_MAX, 1);
    return n > 0 ? n : 0;
}

void tmem__pack(const void *page, void *state, void *out, tmem_packed *pk,
                uint32_t *hash)
{
    tmem__pack_level(page, state, NULL, 0, out, pk, hash);
}

size_t tmem__pack_hc_size(void)
{
    return (size_t)LZ4_sizeofStateHC();
}

int tmem__pack_level_parse(const char *s, int *level)
{
    char *end;
    errno = 0;
    long v = s && *s ? strtol(s, &end, 10) : -1;
    if (!s || !*s || errno || *end || v < 0 || v > TMEM_PACK_LEVEL_MAX)
        return -EINVAL;
    *level = (int)v;
    return 0;
}

void tmem__pack_level(const void *page, void *state, void *hc, int level,
                      void *out, tmem_packed *pk, uint32_t *hash)
{
    uint32_t w;
    if (tmem__fill_word(page, &w)) {
        *pk = (tmem_packed){.enc = TMEM_PACK_FILL, .fill = w};
        *hash = 0;
        return;
    }
    *hash = tmem__page_hash(page);
    int n = hc && level > 0
                ? LZ4_compress_HC_extStateHC(hc, page, out, TMEM_PAGE_SIZE,
                                             TMEM_PACK_LZ4_MAX, level)
                : tmem__pack_lz4(page, state, out);
    if (n > 0) {
        *pk = (tmem_packed){.enc = TMEM_PACK_LZ4, .len = (uint32_t)n};
        return;
    }
    memcpy(out, page, TMEM_PAGE_SIZE);
    *pk = (tmem_packed){.enc = TMEM_PACK_RAW, .len = TMEM_PAGE_SIZE};
}

#include <tmem/abi.h>

void tmem__fill_page(void *page, uint32_t w)
{
    uint64_t v = (uint64_t)w << 32 | w, *q = page;
    for (size_t i = 0; i < TMEM_PAGE_SIZE / 8; i++)
        q[i] = v;
}

int tmem__unpack(const tmem_packed *pk, const void *src, void *page)
{
    switch (pk->enc) {
    case TMEM_PACK_RAW:
        if (pk->len != TMEM_PAGE_SIZE)
            return -EINVAL;
        memcpy(page, src, TMEM_PAGE_SIZE);
        return 0;
    case TMEM_PACK_LZ4:
        if (pk->len == 0 || pk->len > TMEM_PAGE_SIZE)
            return -EINVAL;
        return LZ4_decompress_safe(src, page, (int)pk->len, TMEM_PAGE_SIZE) ==
                       TMEM_PAGE_SIZE
                   ? 0
                   : -EIO;
    case TMEM_PACK_FILL:
        if (pk->len != 0)
            return -EINVAL;
        tmem__fill_page(page, pk->fill);
        return 0;
    default:
        return -EINVAL;
    }
}
