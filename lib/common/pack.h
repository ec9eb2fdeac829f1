/*
 * Packed pages (tmem_packed, include/tmem/abi.h): a tenant of tmemd packs
 * the pages it puts (fill detection, LZ4, the content hash) and decodes
 * the pages it gets, instead of the daemon compressing and decompressing
 * them and copying 4 KiB across CPUs: that work runs on the tenant's own
 * CPU, in parallel with other tenants.  Nothing here allocates or takes a
 * lock, so a fault handler may call it (async-signal-safe).
 */
#ifndef TMEM_COMMON_PACK_H
#define TMEM_COMMON_PACK_H

#include <stddef.h>
#include <stdint.h>

#include <tmem/abi.h>

/* Decodes packed data src[pk->len] into page[TMEM_PAGE_SIZE].  Returns 0,
 * -EINVAL for an unknown encoding or a length out of bounds for it, -EIO
 * for LZ4 data that is corrupt or does not decode to exactly one page. */
int tmem__unpack(const tmem_packed *pk, const void *src, void *page);

/* LZ4 output bound: a page whose LZ4 form would be longer is stored raw
 * ("compresses badly"); the store's codecs use the same bound. */
#define TMEM_PACK_LZ4_MAX (TMEM_PAGE_SIZE * 3 / 4)

/* Bytes of LZ4 state tmem__pack needs (the caller's own, 8-aligned). */
#define TMEM_PACK_STATE_SIZE 16416

/* Packs page[TMEM_PAGE_SIZE] for a put: TMEM_PACK_FILL (no bytes),
 * TMEM_PACK_LZ4 (len <= TMEM_PACK_LZ4_MAX bytes written to out) or
 * TMEM_PACK_RAW (the page copied to out).  *hash is tmem__page_hash of the
 * page (0 for a fill page).  state: TMEM_PACK_STATE_SIZE bytes, used by
 * one thread at a time. */
void tmem__pack(const void *page, void *state, void *out, tmem_packed *pk,
                uint32_t *hash);

/* LZ4HC levels tmem__pack_level takes (0: LZ4's fast compressor). */
#define TMEM_PACK_LEVEL_MAX 12
/* Bytes of LZ4HC state tmem__pack_level needs for a level above 0. */
size_t tmem__pack_hc_size(void);
/* As tmem__pack, with LZ4HC at level (1..TMEM_PACK_LEVEL_MAX) in the
 * caller's hc state (tmem__pack_hc_size bytes, 8-aligned) when hc is not
 * NULL and level > 0.  The output is an LZ4 block like any other (every
 * reader decodes it as fast): more effort when a page is stored, fewer
 * bytes kept (measured on the corpus, docs/tswap.md: level 3 ~14 % fewer
 * than level 0 for ~5x the compression time). */
void tmem__pack_level(const void *page, void *state, void *hc, int level,
                      void *out, tmem_packed *pk, uint32_t *hash);
/* Parses a level "0".."12"; returns 0 and sets *level, or -EINVAL. */
int tmem__pack_level_parse(const char *s, int *level);

/* LZ4-compresses page[TMEM_PAGE_SIZE] into out with the caller's state
 * (TMEM_PACK_STATE_SIZE bytes).  Returns the length (at most
 * TMEM_PACK_LZ4_MAX), or 0 when it would be longer.  The store's codec
 * and tmem__pack both compress with this one call, so a page makes the
 * same bytes on either side (packed puts dedup by bytes first). */
int tmem__pack_lz4(const void *page, void *state, void *out);

/* The content hash the store deduplicates by: the low 32 bits of XXH3. */
uint32_t tmem__page_hash(const void *page);

/* Returns 1 and sets *w when the page is one 32-bit word repeated. */
int tmem__fill_word(const void *page, uint32_t *w);

/* Fills page[TMEM_PAGE_SIZE] with the 32-bit word w. */
void tmem__fill_page(void *page, uint32_t w);

#endif
