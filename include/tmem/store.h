/*
 * The tmem page store: host RAM lent to clients as ephemeral and persistent
 * pages, compressed, deduplicated, shared fairly by weight.
 *
 * Objects:
 *   tmem_store   one store: a global memory budget, the clients, the shared
 *                pools, the dedup table and the compressed-data allocator.
 *   tmem_client  one tenant ("domain" in Xen's words), owning up to
 *                TMEM_MAX_POOLS pools.  Created and destroyed by its owner
 *                (the daemon's connection, or the embedding process).
 *
 * Semantics (SPEC.md "The tmem ABI"):
 *   - ephemeral puts may be refused now and dropped at any time later;
 *     persistent puts either fail now or are kept until flushed, the pool
 *     destroyed or the client destroyed;
 *   - a put over an existing page replaces it, or fails AND removes the old
 *     page: old data is never left readable after a failed put;
 *   - gets from a private ephemeral pool are exclusive (the page is removed
 *     when read); shared-ephemeral and persistent gets are not;
 *   - a SHARED pool is joined by UUID across clients, only when the client
 *     was authorised for that UUID (tmem_store_auth); otherwise a private
 *     pool is created and *out_flags says so (SHARED cleared).
 *
 * Thread safety: every function may be called from any thread at once,
 * except that a tmem_client must not be destroyed while another thread still
 * uses that handle.  Admin operations address clients by id and are safe
 * against concurrent data operations.
 *
 * Errors: negative codes of <tmem/errors.h>.
 */
#ifndef TMEM_STORE_H
#define TMEM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "errors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tmem_store tmem_store;
typedef struct tmem_client tmem_client;

typedef enum tmem_compress {
    TMEM_COMPRESS_NONE = 0,
    TMEM_COMPRESS_LZ4 = 1, /* default */
    TMEM_COMPRESS_ZSTD = 2,
} tmem_compress;

/* Parses "none", "lz4" or "zstd"; returns 0 and sets *out, or TMEM_EINVAL. */
int tmem_compress_parse(const char *name, tmem_compress *out);
/* Returns "none", "lz4", "zstd" (or "?"). */
const char *tmem_compress_name(tmem_compress c);

typedef struct tmem_store_config {
    uint64_t budget_bytes;  /* memory the store may use; 0 = unlimited */
    tmem_compress compress; /* default codec for new clients */
    /* A directory (on tmpfs) where private arenas, the persistent pages,
     * are kept as files that outlive the process, so that they can be
     * recovered after a crash (docs/persistence.md); NULL: in memory
     * only.  The store copies the string. */
    const char *arena_dir;
} tmem_store_config;

/* Fills *cfg with the defaults: unlimited budget, LZ4. */
void tmem_store_config_init(tmem_store_config *cfg);

/* Creates a store.  cfg NULL = defaults.  Returns 0 and sets *out, or
 * TMEM_ENOMEM / TMEM_EINVAL. */
int tmem_store_create(const tmem_store_config *cfg, tmem_store **out);
/* Destroys the store and every client still in it (their handles become
 * invalid).  NULL is a no-op. */
void tmem_store_destroy(tmem_store *s);

/* Creates a client.  Returns its id (>= 0) and sets *out, or a negative
 * error.  Ids are never reused within one store. */
int tmem_client_create(tmem_store *s, tmem_client **out);
/* Destroys a client: its private pools are freed, it leaves its shared
 * pools (which live on while other sharers remain).  NULL is a no-op. */
void tmem_client_destroy(tmem_client *c);
/* Returns the client's id. */
int tmem_client_id(const tmem_client *c);
/* The client's weight now (tmem_store_set_weight); lock-free. */
uint32_t tmem_client_weight(const tmem_client *c);

/* Creates (or, for SHARED, joins) a pool.  uuid may be NULL for private
 * pools.  Returns the pool id (0..TMEM_MAX_POOLS-1) or TMEM_EPERM (bad
 * flags), TMEM_ENOSPC (16 pools already), TMEM_ENOMEM, TMEM_ENODEV (client
 * destroyed by an admin).  out_flags (may be NULL) receives the flags the
 * pool really has: SHARED is cleared when the client was not authorised for
 * the UUID and a private pool was made instead. */
int tmem_pool_new(tmem_client *c, const uint64_t uuid[2], uint32_t flags,
                  uint32_t *out_flags);
/* Destroys a pool of the client (for a shared pool: the client leaves it,
 * the objects it put last are removed).  Returns 0 or TMEM_ENODEV. */
int tmem_pool_destroy(tmem_client *c, int pool);

/* Stores one TMEM_PAGE_SIZE page.  Returns 1 on success; TMEM_ENODEV (no
 * such pool), TMEM_EFROZEN, TMEM_ENOSPC (budget or cap), TMEM_ENOMEM.  On
 * failure any previous page at that name has been removed. */
int tmem_page_put(tmem_client *c, int pool, const tmem_oid *oid,
                  uint32_t index, const void *page);
/* As tmem_page_put, for a page the caller packed (tmem_packed: its data
 * and len).  hash is ignored (kept for compatibility): dedup indexes what
 * the store stores by a keyed hash it computes itself, so no caller can
 * steer it.  LZ4 data is stored as given when the client's codec is LZ4
 * (else decoded and compressed with the client's codec); a raw page is
 * not compressed with LZ4 again.  LZ4 data that does not decode is not
 * caught here: reading that page back then fails with -EIO.  Returns as tmem_page_put,
 * or TMEM_EINVAL for a bad encoding or length (LZ4: 1..3072 bytes, raw:
 * 4096, fill: 0). */
int tmem_page_put_packed(tmem_client *c, int pool, const tmem_oid *oid,
                         uint32_t index, const tmem_packed *pk,
                         const void *data, uint32_t hash);
/* Reads a page into page[TMEM_PAGE_SIZE].  Returns 1 (found), 0 (miss) or
 * TMEM_ENODEV.  Private ephemeral pools: the page is removed when read. */
int tmem_page_get(tmem_client *c, int pool, const tmem_oid *oid,
                  uint32_t index, void *page);
/* As tmem_page_get, but writes the page as stored into buf[TMEM_PAGE_SIZE]
 * and describes it in *pk (LZ4 data and raw pages as they are, fill pages
 * as their word, zstd data decompressed to raw), for a peer that decodes
 * it itself.  Returns as tmem_page_get; -EIO for corrupt stored data. */
int tmem_page_get_packed(tmem_client *c, int pool, const tmem_oid *oid,
                         uint32_t index, void *buf, tmem_packed *pk);
/* Removes one page.  Returns 1 if a page was removed, 0 if none was there,
 * or TMEM_ENODEV. */
int tmem_page_flush(tmem_client *c, int pool, const tmem_oid *oid,
                    uint32_t index);
/* Removes every page of an object.  Returns the number of pages removed
 * (>= 0) or TMEM_ENODEV. */
int tmem_object_flush(tmem_client *c, int pool, const tmem_oid *oid);

/* ---- administration (by client id; callers check privileges) ---------- */

#define TMEM_ALL_CLIENTS (-1)
#define TMEM_DEFAULT_WEIGHT 1

/* Each returns 0, or TMEM_ENODEV (no such client), TMEM_EINVAL. */
int tmem_store_set_weight(tmem_store *s, int client_id, uint32_t weight);
/* cap in pages; 0 = no cap.  Persistent puts past it fail (-ENOSPC) and
 * ephemeral puts past it evict the client's own oldest page first. */
int tmem_store_set_cap(tmem_store *s, int client_id, uint64_t cap_pages);
/* Charges bytes the host keeps for client c outside the store (tmemd: its
 * ring) to the store's budget, making room first as a put would; bytes <
 * 0 gives them back.  Counted in used_bytes and the client's
 * extra_bytes; given back when the client is destroyed.  Returns 0,
 * TMEM_ENOSPC (the budget refused: nothing charged) or TMEM_EINVAL (more
 * given back than charged). */
int tmem_client_charge(tmem_client *c, int64_t bytes);
int tmem_store_set_compress(tmem_store *s, int client_id, tmem_compress c);
/* Freezes (frozen=true) or thaws a client, or all with TMEM_ALL_CLIENTS. */
int tmem_store_freeze(tmem_store *s, int client_id, bool frozen);
/* Evicts ephemeral pages until mib MiB of used memory are freed or none are
 * left.  Returns the number of pages evicted (>= 0). */
int64_t tmem_store_flush_mib(tmem_store *s, uint64_t mib);
/* Returns the MiB that evicting every ephemeral page would free. */
uint64_t tmem_store_freeable_mib(tmem_store *s);
/* Authorises (on) or de-authorises a client for a shared pool UUID.  A
 * client id that does not exist yet is refused (TMEM_ENODEV). */
int tmem_store_auth(tmem_store *s, int client_id, const uint64_t uuid[2],
                    bool on);
/* Destroys a client's pools and marks it dead: its handle stays valid for
 * its owner, every later operation on it returns TMEM_ENODEV. */
int tmem_store_client_kill(tmem_store *s, int client_id);
/* Changes the global budget (bytes, 0 = unlimited); evicts if needed. */
int tmem_store_set_budget(tmem_store *s, uint64_t budget_bytes);
/* Starts the store's maintenance thread: it evicts ephemeral pages ahead
 * of need (from the high watermark, budget - budget/256, down to the low
 * one, budget - budget/128, with the usual weighted victim choice) and
 * runs compaction a segment at a time, so puts and flushes no longer do
 * either inline; a put that finds the budget full before the thread
 * caught up still evicts inline (counted in evict_inline).  Stopped by
 * tmem_store_destroy.  Returns 0, or a negative errno (already running:
 * -EALREADY). */
int tmem_store_start_maintenance(tmem_store *s);

/* ---- statistics --------------------------------------------------------- */

/* Per-pool counters, after xl tmem-list's "P=" lines. */
typedef struct tmem_pool_stats {
    int pool_id;
    uint32_t flags;         /* as created (SHARED only if really shared) */
    uint64_t uuid[2];
    uint32_t sharers;       /* clients in a shared pool, 1 otherwise */
    uint64_t pages;         /* Pc: pages now */
    uint64_t pages_max;     /* Pm */
    uint64_t objects;       /* Oc */
    uint64_t objects_max;   /* Om */
    uint64_t puts;          /* pt: puts attempted */
    uint64_t puts_good;     /* ps: puts stored */
    uint64_t dup_puts_flushed;  /* pd: put over a page failed, old removed */
    uint64_t dup_puts_replaced; /* pr: put over a page replaced it */
    uint64_t puts_nomem;    /* px: refused for memory/budget/cap */
    uint64_t gets;          /* gt */
    uint64_t gets_found;    /* gs */
    uint64_t flushes;       /* ft: flush_page calls */
    uint64_t flushes_found; /* fs */
    uint64_t flush_objs;    /* ot */
    uint64_t flush_objs_found; /* os */
    uint64_t evictions;     /* ephemeral pages evicted from this pool */
} tmem_pool_stats;

/* Per-client counters, after xl tmem-list's "C=" lines. */
typedef struct tmem_client_stats {
    int client_id;
    uint32_t weight;        /* ww */
    uint64_t cap_pages;     /* ca; 0 = none */
    tmem_compress compress; /* co */
    bool frozen;            /* fr */
    bool dead;              /* killed by an admin */
    uint64_t eph_pages;     /* ephemeral pages it holds now */
    uint64_t pers_pages;    /* persistent pages it holds now */
    uint64_t data_bytes;    /* compressed bytes of its pages (pre-dedup) */
    uint64_t puts_good_pers; /* Pp */
    uint64_t gets_good_eph;  /* Ge */
    uint64_t gets_good_pers; /* Gp */
    uint64_t puts_frozen;    /* puts refused because frozen */
    uint64_t puts_cap;       /* puts refused/evicted because of the cap */
    uint64_t evicted;        /* its ephemeral pages evicted */
    uint64_t extra_bytes;    /* charged for it outside the store (ring) */
    int npools;
    tmem_pool_stats pools[TMEM_MAX_POOLS];
} tmem_client_stats;

/* Store-wide counters, after xl tmem-list's "G=" line plus ours. */
typedef struct tmem_global_stats {
    uint64_t budget_bytes;  /* 0 = unlimited */
    uint64_t used_bytes;    /* all memory held: data + metadata */
    uint64_t data_bytes;    /* compressed page data held (after dedup) */
    uint64_t meta_bytes;    /* metadata: indexes, tables, headers */
    uint64_t orig_bytes;    /* pages held x TMEM_PAGE_SIZE */
    uint64_t eph_pages;     /* Ec */
    uint64_t eph_pages_max; /* Em */
    uint64_t pers_pages;
    uint64_t zero_pages;    /* held pages that are zero/same-filled */
    uint64_t dedup_pages;   /* held pages that share data with another */
    uint64_t unique_blobs;  /* distinct stored contents */
    uint64_t raw_pages;     /* held pages stored raw (compress poor) */
    uint64_t compress_poor; /* puts whose page compressed badly (total) */
    uint64_t dedup_hits;    /* puts that found their content stored */
    uint64_t total_ops;     /* Tt */
    uint64_t errored_ops;   /* Te */
    uint64_t alloc_failed;  /* Af: allocations that failed */
    uint64_t evictions;     /* Et: ephemeral pages evicted */
    uint64_t evict_attempts; /* Ea */
    uint64_t reject_budget; /* puts refused: over budget, nothing evictable */
    uint64_t reject_cap;    /* puts refused: over a client's cap */
    uint64_t reject_frozen; /* puts refused: client frozen */
    uint64_t reject_nomem;  /* puts refused: allocation failure */
    uint64_t flushed_pools; /* Fp: pools destroyed */
    uint32_t clients;
    uint32_t shared_pools;
    uint64_t dedup_unindexed; /* pages stored outside the dedup index: a
                                 lookup hit its bound (colliding hashes) */
    uint64_t evict_inline;     /* evictions a put or pool creation ran
                                  itself: the budget was full */
    uint64_t evict_background; /* evictions by the maintenance thread */
    uint64_t compact_background; /* compaction steps it ran */
} tmem_global_stats;

/* Fills *out.  Returns 0. */
int tmem_store_stats(tmem_store *s, tmem_global_stats *out);
/* Fills *out for one client.  Returns 0 or TMEM_ENODEV. */
int tmem_store_client_stats(tmem_store *s, int client_id,
                            tmem_client_stats *out);
/* Writes up to cap client ids (ascending) into ids; returns how many
 * clients there are (may exceed cap). */
int tmem_store_list_clients(tmem_store *s, int *ids, int cap);
/* Writes every global, client and pool counter as one JSON object into buf
 * (NUL-terminated when cap > 0).  Returns the length the full text needs
 * (excluding the NUL), like snprintf; negative on error. */
int tmem_store_stats_json(tmem_store *s, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
