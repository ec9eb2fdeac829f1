/*
 * Object tables: where an object of a pool is found.
 *
 * A pool has POOL_SHARDS shards chosen by a hash of the oid; a shard keeps
 * its objects in a chained hash table that doubles when it gets full (and
 * simply keeps longer chains if that allocation fails).  An object keeps
 * its pages in a pagemap (pagemap.c).
 *
 * Everything here runs under the shard's lock (callers hold it).
 */
#include <string.h>

#include <xxhash.h>

#include "store_internal.h"

static inline uint64_t oid_hash(const tmem_oid *oid)
{
    return XXH3_64bits(oid, sizeof *oid);
}

shard *tmem__shard_of(tmem_pool *p, const tmem_oid *oid)
{
    return &p->shards[oid_hash(oid) % POOL_SHARDS];
}

static uint32_t bucket_of(const shard *sh, const tmem_oid *oid)
{
    return (uint32_t)(oid_hash(oid) >> 32) & (sh->nbuckets - 1);
}

tmem_obj *tmem__obj_find_locked(shard *sh, const tmem_oid *oid)
{
    if (!sh->nbuckets)
        return NULL;
    for (tmem_obj *o = sh->buckets[bucket_of(sh, oid)]; o; o = o->next)
        if (memcmp(&o->oid, oid, sizeof *oid) == 0)
            return o;
    return NULL;
}

/* Doubles the bucket array; on ENOMEM keeps the old one (chains just get
 * longer), so it never fails. */
static void shard_grow(tmem_store *s, shard *sh)
{
    uint32_t n = sh->nbuckets ? sh->nbuckets * 2 : 4;
    tmem_obj **b = tmem__core_alloc(s, n * sizeof *b);
    if (!b)
        return;
    uint32_t old_n = sh->nbuckets;
    tmem_obj **old = sh->buckets;
    sh->buckets = b;
    sh->nbuckets = n;
    for (uint32_t i = 0; i < old_n; i++) {
        tmem_obj *o = old[i];
        while (o) {
            tmem_obj *next = o->next;
            uint32_t k = bucket_of(sh, &o->oid);
            o->next = b[k];
            b[k] = o;
            o = next;
        }
    }
    tmem__core_free(s, old);
}

tmem_obj *tmem__obj_get_locked(shard *sh, const tmem_oid *oid)
{
    tmem_obj *o = tmem__obj_find_locked(sh, oid);
    if (o)
        return o;
    tmem_store *s = sh->pool->store;
    if (sh->nobjs >= sh->nbuckets)
        shard_grow(s, sh);
    if (!sh->nbuckets)
        return NULL;
    o = tmem__core_alloc(s, sizeof *o);
    if (!o)
        return NULL;
    o->oid = *oid;
    o->shard = sh;
    o->last_client = -1;
    uint32_t k = bucket_of(sh, oid);
    o->next = sh->buckets[k];
    sh->buckets[k] = o;
    sh->nobjs++;
    cnt_add(&sh->pool->st.objects, 1);
    cnt_max(&sh->pool->st.objects_max, cnt_get(&sh->pool->st.objects));
    return o;
}

void tmem__obj_free_locked(shard *sh, tmem_obj *o)
{
    tmem_store *s = sh->pool->store;
    tmem_obj **pp = &sh->buckets[bucket_of(sh, &o->oid)];
    while (*pp != o)
        pp = &(*pp)->next;
    *pp = o->next;
    sh->nobjs--;
    cnt_sub(&sh->pool->st.objects, 1);
    tmem__map_free(s, &o->map);
    tmem__core_free(s, o);
}

