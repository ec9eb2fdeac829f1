/*
 * A client's pools and pages as a stream (lib/store/save.c): what
 * `tmem save` writes and `tmem restore` reads (issue 12), in the format
 * docs/persistence.md describes.  Internal to tmem's programs.
 */
#ifndef TMEM_STORE_SAVE_H
#define TMEM_STORE_SAVE_H

#include <stdbool.h>
#include <stdint.h>

#include <tmem/store.h>

#define TMEM_SAVE_VERSION 1u

typedef struct tmem_save_stats {
    uint32_t pools;         /* pools written / created */
    uint32_t shared_skipped; /* shared pools not saved (their sharers') */
    uint64_t pages;         /* pages written / restored */
    uint64_t bytes;         /* stream bytes */
    uint32_t persist;       /* restore: bit p, new pool p is persistent */
} tmem_save_stats;

/* Writing a stream piece by piece (what tmem__client_save does, and
 * recovery from an arena's records, recover.h): open (header and pool
 * table), pages, close (trailer).  Errors of the underlying writes stick:
 * every call after one returns it. */
typedef struct tmem_save_writer tmem_save_writer;
typedef struct tmem_save_pool_ent {
    uint32_t id, flags; /* pool id as saved; TMEM_POOL_* flags */
} tmem_save_pool_ent;
/* NULL when npools > TMEM_MAX_POOLS or no memory. */
tmem_save_writer *tmem__save_open(int fd, const tmem_save_pool_ent *pools,
                                  uint32_t npools);
/* One page as stored: pk->enc TMEM_PACK_* and pk->len bytes of data (LZ4
 * or raw; a fill word has none).  Returns 0 or -errno of a write. */
int tmem__save_page(tmem_save_writer *w, uint32_t pool, const uint64_t oid[3],
                    uint32_t index, const tmem_packed *pk, const void *data);
/* Writes the trailer when complete (else the stream stays incomplete, and
 * its reader refuses it), flushes and frees w.  Returns 0 or the first
 * write error; *pages and *bytes (may be NULL) get the counts. */
int tmem__save_close(tmem_save_writer *w, bool complete, uint64_t *pages,
                     uint64_t *bytes);

/* A reference to client id (NULL if none), for an admin that works on a
 * client another thread owns; tmem__client_put gives it back.  A client
 * destroyed meanwhile reads as one without pools. */
tmem_client *tmem__client_get(tmem_store *s, int id);
void tmem__client_put(tmem_client *c);

/* Writes c's private pools and their persistent pages to fd (ephemeral
 * pools go as empty pools: their pages may be dropped at any time, and a
 * read would take them out).  Pages are written as stored (LZ4 data, raw
 * pages and fill words; zstd data decoded to raw).  The caller keeps the
 * client still (tmem_store_freeze) for a consistent image: every put
 * that was accepted before the save began (any operation under way
 * finishes first) is in it, and a frozen client accepts none after;
 * otherwise pages put or flushed meanwhile may or may not be in it.  Returns 0, or -errno of a
 * failed write (the stream is then incomplete and its reader refuses
 * it), or TMEM_ENOMEM.  st may be NULL. */
int tmem__client_save(tmem_client *c, int fd, tmem_save_stats *st);

/* Reads a stream from fd into new pools of c, all or nothing: a stream
 * whose magic, version, checksums, counts or length are wrong, or that
 * ends early, or whose pages do not fit the budget (or c's cap), leaves c
 * as it was (the pools it created are destroyed) and returns
 * TMEM_EINVAL (damaged), -EPROTO (not a tmem stream or another version),
 * TMEM_ENOSPC (budget or cap), TMEM_ENOMEM, or -errno of a failed read.
 * map (may be NULL) receives, for each saved pool id, the new pool's id
 * (-1 where the stream had none).  Returns 0 on success.  st may be
 * NULL. */
int tmem__client_restore(tmem_client *c, int fd, int map[TMEM_MAX_POOLS],
                         tmem_save_stats *st);

#endif
