/*
 * The tmem ABI: how a page is named and what a pool's flags mean.
 *
 * A page is named by (pool id, object id = three u64, index = u32).  A client
 * owns at most TMEM_MAX_POOLS pools.  Pool flags (new_pool):
 *   bit 0      PERSIST   persistent pool (else ephemeral)
 *   bit 1      SHARED    shared pool, joined by UUID (never with PERSIST)
 *   bits 4-7   page size as log2(size) - 12; only 0 (4 KiB) is accepted
 *   bits 24-31 spec version; must equal TMEM_SPEC_VERSION
 * Any other bit set, SHARED|PERSIST, another page size or a version mismatch
 * is refused with TMEM_EPERM.
 *
 * Return values of the page operations, as in the original:
 *   put 1 = stored; get 1 = found, 0 = miss; negative = error.
 */
#ifndef TMEM_ABI_H
#define TMEM_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TMEM_PAGE_SHIFT 12
#define TMEM_PAGE_SIZE (1 << TMEM_PAGE_SHIFT)
#define TMEM_MAX_POOLS 16

#define TMEM_POOL_PERSIST 0x1u
#define TMEM_POOL_SHARED 0x2u
#define TMEM_POOL_PAGESIZE_SHIFT 4
#define TMEM_POOL_PAGESIZE_MASK 0xf0u
#define TMEM_POOL_VERSION_SHIFT 24
#define TMEM_POOL_VERSION_MASK 0xff000000u
#define TMEM_SPEC_VERSION 1u

/* Flags for a 4 KiB pool of this spec version: TMEM_POOL_FLAGS(PERSIST). */
#define TMEM_POOL_FLAGS(f) \
    ((uint32_t)(f) | (TMEM_SPEC_VERSION << TMEM_POOL_VERSION_SHIFT))

/* Object id: three u64, e.g. an inode number for cleancache, the swap type
 * for frontswap. */
typedef struct tmem_oid {
    uint64_t oid[3];
} tmem_oid;

/* A page in the form the store keeps it (tmem_page_get_packed; the ring
 * protocol carries it so a tenant decodes its own pages):
 *   TMEM_PACK_RAW   len == TMEM_PAGE_SIZE bytes, the page itself
 *   TMEM_PACK_LZ4   len bytes (1..TMEM_PAGE_SIZE) of one LZ4 block that
 *                   decodes to exactly TMEM_PAGE_SIZE bytes
 *   TMEM_PACK_FILL  no bytes (len 0): every 32-bit word of the page is fill */
#define TMEM_PACK_RAW 0u
#define TMEM_PACK_LZ4 1u
#define TMEM_PACK_FILL 2u

typedef struct tmem_packed {
    uint32_t enc;  /* TMEM_PACK_* */
    uint32_t len;  /* bytes of packed data */
    uint32_t fill; /* TMEM_PACK_FILL: the repeated word */
} tmem_packed;

#ifdef __cplusplus
}
#endif
#endif
