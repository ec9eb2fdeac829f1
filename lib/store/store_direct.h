/*
 * What the daemon and the embedded connection need beyond <tmem/store.h>
 * to let a tenant read its own persistent pages without asking
 * (docs/layout.md): where a put stored a page, and the tenant's private
 * arena.  Internal: not part of the public store API.
 */
#ifndef TMEM_STORE_DIRECT_H
#define TMEM_STORE_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include <tmem/store.h>

/* Where a put stored its page: kind TMEM__WHERE_DIRECT when the tenant
 * may read it in its private arena at (handle, gen); TMEM__WHERE_FILL for
 * a same-filled page (no bytes stored; handle holds the word);
 * TMEM__WHERE_NONE for pages only the store reads (other pools). */
enum { TMEM__WHERE_NONE = 0, TMEM__WHERE_DIRECT = 1, TMEM__WHERE_FILL = 2 };
typedef struct tmem__page_where {
    uint32_t kind;
    uint32_t handle, gen;
} tmem__page_where;

/* tmem_page_put_packed (pk given) or tmem_page_put (pk NULL: data is the
 * page), also saying where the page went.  Returns as they do. */
int tmem__page_put_where(tmem_client *c, int pool, const tmem_oid *oid,
                         uint32_t index, const tmem_packed *pk,
                         const void *data, tmem__page_where *where);

/* A new read-only descriptor of c's private arena (made when c created
 * its first persistent pool) and the bytes to map.  Returns it, -ENOENT
 * when c has none, or -errno. */
int tmem__client_arena_fd(tmem_client *c, size_t *len);

#endif
