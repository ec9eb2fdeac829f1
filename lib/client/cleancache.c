/*
 * cleancache on a tmem_conn: ephemeral pools keyed by (file key = object
 * id, page offset = index), after the Linux cleancache shim.
 *
 * Owns only its counters; pools belong to the connection.  Puts never
 * report failure to the caller (an ephemeral page may be dropped at any
 * time anyway): refusals are counted in put_errors.  Calls on a negative
 * pool id (an init that failed) are cheap no-ops, as in the original.
 */
#include <tmem/client.h>

#include <stdatomic.h>

#include "common/mem.h"

struct tmem_cleancache {
    tmem_conn *conn;
    _Atomic uint64_t succ_gets, failed_gets, puts, put_errors, invalidates;
};

static void bump(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

int tmem_cleancache_create(tmem_conn *conn, tmem_cleancache **out)
{
    tmem_cleancache *cc = tmem__calloc(1, sizeof *cc);
    if (!cc)
        return TMEM_ENOMEM;
    cc->conn = conn;
    *out = cc;
    return 0;
}

void tmem_cleancache_destroy(tmem_cleancache *cc)
{
    tmem__free(cc);
}

int tmem_cleancache_init_fs(tmem_cleancache *cc)
{
    return tmem_conn_pool_new(cc->conn, NULL, TMEM_POOL_FLAGS(0), NULL);
}

int tmem_cleancache_init_shared_fs(tmem_cleancache *cc, const uint64_t uuid[2],
                                   bool *out_shared)
{
    uint32_t got = 0;
    int rc = tmem_conn_pool_new(cc->conn, uuid,
                                TMEM_POOL_FLAGS(TMEM_POOL_SHARED), &got);
    if (out_shared)
        *out_shared = rc >= 0 && (got & TMEM_POOL_SHARED);
    return rc;
}

int tmem_cleancache_get_page(tmem_cleancache *cc, int pool, const tmem_oid *key,
                             uint32_t index, void *page)
{
    int rc = pool < 0 ? 0 : tmem_conn_get(cc->conn, pool, key, index, page);
    bump(rc == 1 ? &cc->succ_gets : &cc->failed_gets);
    return rc;
}

void tmem_cleancache_put_page(tmem_cleancache *cc, int pool,
                              const tmem_oid *key, uint32_t index,
                              const void *page)
{
    bump(&cc->puts);
    if (pool < 0 || tmem_conn_put(cc->conn, pool, key, index, page) != 1)
        bump(&cc->put_errors);
}

void tmem_cleancache_invalidate_page(tmem_cleancache *cc, int pool,
                                     const tmem_oid *key, uint32_t index)
{
    if (pool < 0)
        return;
    bump(&cc->invalidates);
    tmem_conn_flush_page(cc->conn, pool, key, index);
}

void tmem_cleancache_invalidate_inode(tmem_cleancache *cc, int pool,
                                      const tmem_oid *key)
{
    if (pool < 0)
        return;
    bump(&cc->invalidates);
    tmem_conn_flush_object(cc->conn, pool, key);
}

void tmem_cleancache_invalidate_fs(tmem_cleancache *cc, int pool)
{
    if (pool >= 0)
        tmem_conn_pool_destroy(cc->conn, pool);
}

void tmem_cleancache_stats_get(const tmem_cleancache *cc,
                               tmem_cleancache_stats *out)
{
    tmem_cleancache *m = (tmem_cleancache *)cc; /* atomics load only */
    out->succ_gets = atomic_load(&m->succ_gets);
    out->failed_gets = atomic_load(&m->failed_gets);
    out->puts = atomic_load(&m->puts);
    out->put_errors = atomic_load(&m->put_errors);
    out->invalidates = atomic_load(&m->invalidates);
}
