/*
 * Blobs: the stored contents of pages, compressed and deduplicated, in
 * arenas (arena.h, docs/layout.md).
 *
 * The store core (store.c & co) names a page's content with a tmem_blob
 * value and never touches stored bytes itself.  A tmem_blob is:
 *   0                      no content (never returned by put)
 *   TMEM_BLOB_IS_FILL(b)   a zero or same-filled page: the 32-bit pattern is
 *                          encoded in the value, no memory is held
 *   otherwise              a handle in an arena (refcounted)
 *
 * Arenas: number 0 is the common arena (ephemeral and shared pools, dedup
 * across all clients, daemon-only); tmem__blob_arena_open makes a private,
 * named arena for one client's persistent pools (dedup within it; every
 * name recorded, a dedup hit as an ALIAS record; its tenant may map it
 * read-only).  Every put says which arena and under what name.
 *
 * Reference counting: a put returns a value holding one reference, the
 * name's own; tmem__blob_drop gives it back when the name goes (flush,
 * replace, eviction), tmem__blob_ref / tmem__blob_release take and give a
 * transient one (a reader); the data is freed when the last goes.
 * Identical pages in one arena share one stored copy (hash + full compare).
 *
 * Thread safety: every function may be called concurrently.  A caller that
 * holds a reference may read (tmem__blob_read) without any other lock.
 *
 * Memory: every byte the blob layer and its arenas hold is charged to the
 * account given at creation (acct.h) before it is taken; a put whose bytes
 * the account refuses fails with TMEM_ENOSPC and leaves nothing behind.
 * tmem__blobstore_stats reports data bytes and every byte of metadata
 * (record headers, segment slack, handles, dedup tables).
 */
#ifndef TMEM_STORE_BLOB_H
#define TMEM_STORE_BLOB_H

#include <stdint.h>

#include <tmem/store.h>

#include "common/pack.h"

#include "store/acct.h"
#include "store/arena.h"

typedef uint64_t tmem_blob;

#define TMEM_BLOB_FILL_TAG 1u
#define TMEM_BLOB_IS_FILL(b) (((b) & TMEM_BLOB_FILL_TAG) != 0)

typedef struct tmem_blobstore tmem_blobstore;

/* Outcome flags of tmem__blob_put. */
#define TMEM_BLOB_PUT_FILL 0x1u  /* zero or same-filled: no data stored */
#define TMEM_BLOB_PUT_DEDUP 0x2u /* content was already stored: shared */
#define TMEM_BLOB_PUT_RAW 0x4u   /* compressed badly: stored uncompressed */

typedef struct tmem_blobstore_stats {
    uint64_t data_bytes;   /* compressed/raw payload bytes held */
    uint64_t meta_bytes;   /* everything else held: record headers,
                              segment slack, handles, dedup tables */
    uint64_t blobs;        /* distinct stored contents */
    uint64_t aliases;      /* names recorded for dedup hits (private) */
    uint64_t arenas;       /* private arenas open */
    uint64_t compactions;  /* compaction steps run */
    uint64_t moved;        /* records they moved */
    uint64_t refs;         /* references held on stored contents */
    uint64_t raw_blobs;    /* blobs stored uncompressed */
    uint64_t dedup_hits;   /* puts that found their content stored */
    uint64_t compress_poor; /* puts whose page compressed badly */
    uint64_t fill_puts;    /* puts of zero/same-filled pages */
    uint64_t alloc_failed; /* allocations that failed */
    uint64_t pages_punched; /* dead 4 KiB pages given back */
    uint64_t pages_dead;   /* dead pages not given back yet */
    uint64_t dedup_unindexed; /* pages stored outside the dedup index: a
                                 lookup bound stopped (forged or colliding
                                 hashes) */
} tmem_blobstore_stats;

/* Creates a blob store charging its memory to acct (may be NULL).
 * Returns 0 and sets *out, or TMEM_ENOMEM / TMEM_ENOSPC. */
int tmem__blobstore_create(tmem_acct *acct, tmem_blobstore **out);
/* Private arenas opened from now on are files in dir (NULL: memfds), which
 * outlive the process (docs/persistence.md, "After a crash"); in them a
 * same-filled page is stored as a record too.  Returns 0 or TMEM_ENOMEM. */
int tmem__blobstore_set_dir(tmem_blobstore *bs, const char *dir);
/* Frees everything, whatever references remain.  NULL is a no-op. */
void tmem__blobstore_destroy(tmem_blobstore *bs);

/* Opens a private arena for the client with identity owner.  Returns its
 * number (> 0) or TMEM_ENOMEM / TMEM_ENOSPC / -errno. */
int tmem__blob_arena_open(tmem_blobstore *bs, uint32_t owner);
/* Closes private arena n (its blobs must all be gone): tenants mapping it
 * see it dead.  0 is a no-op. */
void tmem__blob_arena_close(tmem_blobstore *bs, int n);
/* The client with identity owner is gone: the common arena stops keeping
 * a segment open for it. */
void tmem__blob_owner_gone(tmem_blobstore *bs, uint32_t owner);
/* The arena of number n (0: the common one), or NULL. */
tmem_arena *tmem__blob_arena(tmem_blobstore *bs, int n);

/* Stores a TMEM_PAGE_SIZE page compressed with codec into arena n under
 * name nm (looking for an identical stored page there first).  Returns 0
 * and sets *out (the name's reference) and *flags (TMEM_BLOB_PUT_*; may be
 * NULL), or TMEM_ENOMEM, or TMEM_ENOSPC (the account refused its bytes:
 * nothing was stored). */
int tmem__blob_put(tmem_blobstore *bs, int n, const tmem_arena_name *nm,
                   const void *page, tmem_compress codec, tmem_blob *out,
                   unsigned *flags);
/* As tmem__blob_put for a page the caller packed (tmem__pack): fill and
 * raw pages as above (a raw one is not compressed with LZ4 again); LZ4
 * bytes, for an LZ4 codec, are stored as given, for another codec decoded
 * and stored as a raw page would be.  Dedup indexes the stored bytes by a
 * hash the store computes (blob.c): nothing a caller claims is trusted.
 * LZ4 bytes are not decoded: data that does not decode makes later reads
 * of this blob fail with -EIO (and equals no honest page's bytes).
 * Returns as tmem__blob_put, or -EINVAL for an encoding or length out of
 * bounds, or LZ4 data that another codec needed decoded and did not. */
int tmem__blob_put_packed(tmem_blobstore *bs, int n, const tmem_arena_name *nm,
                          const tmem_packed *pk, const void *data,
                          tmem_compress codec, tmem_blob *out,
                          unsigned *flags);
/* Hands compaction to a maintenance thread: a free that would compact
 * inline calls kick(ctx) instead (kick NULL: inline again). */
void tmem__blob_set_background(tmem_blobstore *bs, void (*kick)(void *ctx),
                               void *ctx);
/* One compaction step (one segment moved) in the first arena that wants
 * it.  Returns 1, or 0 when none does. */
int tmem__blob_compact_one_step(tmem_blobstore *bs);
/* Writes the page content of b into page[TMEM_PAGE_SIZE].  The caller holds
 * a reference.  Returns 0, or -EIO if stored data fails to decompress, or
 * TMEM_ENOMEM if this thread's zstd context could not be allocated (the
 * data is intact: a later read may succeed). */
int tmem__blob_read(tmem_blobstore *bs, tmem_blob b, void *page);
/* Writes the content of b into buf[TMEM_PAGE_SIZE] as stored, for a peer
 * that decodes it with tmem__unpack: LZ4 data and raw pages are copied
 * as they are, fill values carry no bytes, zstd data is decompressed here
 * (sent raw).  The caller holds a reference.  Returns 0, -EIO or
 * TMEM_ENOMEM as tmem__blob_read. */
int tmem__blob_read_packed(tmem_blobstore *bs, tmem_blob b, void *buf,
                           tmem_packed *pk);
/* Adds a transient reference.  Returns 0, or TMEM_ENOSPC if the count
 * would overflow (then the caller must read under its own lock). */
int tmem__blob_ref(tmem_blobstore *bs, tmem_blob b);
/* Drops a transient reference; frees the content when it was the last. */
void tmem__blob_release(tmem_blobstore *bs, tmem_blob b);
/* Drops the name's own reference: the name is gone (in a private arena
 * its record says so at once); frees the content when it was the last. */
void tmem__blob_drop(tmem_blobstore *bs, tmem_blob b);
/* Returns the bytes of data b holds (0 for fill values); for per-client
 * accounting. */
uint32_t tmem__blob_size(tmem_blobstore *bs, tmem_blob b);
/* Returns nonzero if b is stored uncompressed. */
int tmem__blob_is_raw(tmem_blobstore *bs, tmem_blob b);
/* Where b is for a tenant reading its arena: sets *handle and *gen and
 * returns 1, or 0 for a fill value.  The caller holds a reference. */
int tmem__blob_where(tmem_blobstore *bs, tmem_blob b, uint32_t *handle,
                     uint32_t *gen);

void tmem__blobstore_stats(tmem_blobstore *bs, tmem_blobstore_stats *out);

/* Frees memory that holds nothing: gives back the dead pages of every
 * arena, or when there are none runs one compaction step that frees a few
 * pages at least.  Returns nonzero when it freed something. */
int tmem__blob_reclaim(tmem_blobstore *bs);

#endif
