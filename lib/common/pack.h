/*
 * Decoding packed pages (tmem_packed, include/tmem/abi.h): the peer that
 * wants a page (a tenant of tmemd) decodes it itself instead of the daemon
 * decompressing it and copying 4 KiB across CPUs.  Allocates nothing and
 * takes no lock, so a fault handler may call it (async-signal-safe).
 */
#ifndef TMEM_COMMON_PACK_H
#define TMEM_COMMON_PACK_H

#include <stdint.h>

#include <tmem/abi.h>

/* Decodes packed data src[pk->len] into page[TMEM_PAGE_SIZE].  Returns 0,
 * -EINVAL for an unknown encoding or a length out of bounds for it, -EIO
 * for LZ4 data that is corrupt or does not decode to exactly one page. */
int tmem__unpack(const tmem_packed *pk, const void *src, void *page);

/* Fills page[TMEM_PAGE_SIZE] with the 32-bit word w. */
void tmem__fill_page(void *page, uint32_t w);

#endif
