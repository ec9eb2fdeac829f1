/*
 * Decoding packed pages (see pack.h).
 */
#include "pack.h"

#include <errno.h>
#include <lz4.h>
#include <string.h>

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
