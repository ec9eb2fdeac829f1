/*
 * lib/client's interface beyond <tmem/client.h> for the tenant side
 * (frontswap, tmem run, the conformance suite): where each put went, the
 * tenant's own read-only view of its private arena, so a persistent page
 * can be read back without a daemon round trip (docs/layout.md), and the
 * figures block tmem run fills.  Not exported from libtmem.so.
 */
#ifndef TMEM_CLIENT_CONN_DIRECT_H
#define TMEM_CLIENT_CONN_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include <tmem/client.h>

/* Where a put's page went: TMEM__PUT_DIRECT (readable in the tenant's
 * private arena at handle, gen), TMEM__PUT_FILL (a same-filled page of
 * word `handle`: nothing stored), or TMEM__PUT_OTHER. */
enum { TMEM__PUT_OTHER = 0, TMEM__PUT_DIRECT = 1, TMEM__PUT_FILL = 2 };
typedef struct tmem__put_where {
    uint32_t kind, handle, gen;
} tmem__put_where;

/* tmem_conn_batch, also filling w[i] for every PUT that stored its page
 * (w may be NULL). */
int tmem__conn_batch_where(tmem_conn *c, tmem_op *ops, tmem__put_where *w,
                           size_t n);

/* The client's private arena as this process may read it: maps it
 * read-only on the first call (daemon: ARENA request; embedded: the
 * store's own mapping).  Not from a signal handler.  Returns 0 and sets
 * *base, *len; -ENOENT before the client's first persistent pool; or an
 * error. */
int tmem__conn_arena_view(tmem_conn *c, const void **base, size_t *len);
/* The memory the client's private arena holds (its file's allocated
 * bytes: records, handles, header; punched pages excluded), once the view
 * was made; -ENOENT before. */
int64_t tmem__conn_arena_bytes(tmem_conn *c);
/* The view once made (NULL before): lock-free, signal-safe. */
const void *tmem__conn_arena_peek(const tmem_conn *c, size_t *len);

/* The tenant figures block the daemon shows (tmem list), or NULL on the
 * embedded path or without a ring. */
struct tmem__tstat *tmem__conn_tstat_block(tmem_conn *c);

/* The embedded store a connection runs on, or NULL through the daemon:
 * for tests and tools that read the store's own figures (used bytes
 * against the budget) where no daemon answers STATS_JSON. */
struct tmem_store *tmem__conn_store(tmem_conn *c);

#endif
