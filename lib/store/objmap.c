/*
 * Object tables and page maps: where a (oid, index) name is found.
 *
 * A pool has POOL_SHARDS shards chosen by a hash of the oid; a shard keeps
 * its objects in a chained hash table that doubles when it gets full.  An
 * object keeps its pages in a pagemap: open addressing with linear probing
 * over two parallel arrays (u32 keys, u64 values; value 0 = empty), grown at
 * 3/4 load and shrunk at 1/8, deleted with backward shifting so no
 * tombstones ever slow a lookup.  12 bytes a slot.
 *
 * Everything here runs under the shard's lock (callers hold it).
 */
#include <string.h>

#include <xxhash.h>

#include "store_internal.h"

#define MAP_MIN 4u

static inline uint32_t hash_u32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

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

/* ---- page map ----------------------------------------------------------- */

static uint32_t slot_of(const pagemap *m, uint32_t index)
{
    return hash_u32(index) & (m->cap - 1);
}

uint64_t *tmem__map_find(pagemap *m, uint32_t index)
{
    if (!m->cap)
        return NULL;
    for (uint32_t i = slot_of(m, index);; i = (i + 1) & (m->cap - 1)) {
        if (!m->vals[i])
            return NULL;
        if (m->keys[i] == index)
            return &m->vals[i];
    }
}

/* Rebuilds the map with ncap slots.  Returns 0 or TMEM_ENOMEM. */
static int map_resize(tmem_store *s, pagemap *m, uint32_t ncap)
{
    uint32_t *keys = tmem__core_alloc(s, (size_t)ncap * sizeof *keys);
    uint64_t *vals = tmem__core_alloc(s, (size_t)ncap * sizeof *vals);
    if (!keys || !vals) {
        tmem__core_free(s, keys);
        tmem__core_free(s, vals);
        return TMEM_ENOMEM;
    }
    pagemap n = {keys, vals, ncap, m->count};
    for (uint32_t i = 0; i < m->cap; i++) {
        if (!m->vals[i])
            continue;
        uint32_t j = slot_of(&n, m->keys[i]);
        while (n.vals[j])
            j = (j + 1) & (ncap - 1);
        n.keys[j] = m->keys[i];
        n.vals[j] = m->vals[i];
    }
    tmem__core_free(s, m->keys);
    tmem__core_free(s, m->vals);
    *m = n;
    return 0;
}

int tmem__map_set(tmem_store *s, pagemap *m, uint32_t index, uint64_t val,
                  uint64_t *old)
{
    uint64_t *slot = tmem__map_find(m, index);
    if (slot) {
        *old = *slot;
        *slot = val;
        return 0;
    }
    *old = 0;
    if ((m->count + 1) * 4 > m->cap * 3) {
        int r = map_resize(s, m, m->cap ? m->cap * 2 : MAP_MIN);
        if (r < 0)
            return r;
    }
    uint32_t i = slot_of(m, index);
    while (m->vals[i])
        i = (i + 1) & (m->cap - 1);
    m->keys[i] = index;
    m->vals[i] = val;
    m->count++;
    return 0;
}

uint64_t tmem__map_del(tmem_store *s, pagemap *m, uint32_t index)
{
    uint64_t *slot = tmem__map_find(m, index);
    if (!slot)
        return 0;
    uint64_t val = *slot;
    uint32_t mask = m->cap - 1;
    uint32_t i = (uint32_t)(slot - m->vals);
    /* Backward-shift deletion: pull later entries of the probe run into
     * the hole when their home slot allows it. */
    for (uint32_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
        uint32_t home = slot_of(m, m->keys[j]);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->vals[i] = 0;
    m->count--;
    if (m->count == 0) {
        tmem__map_free(s, m);
    } else if (m->cap > MAP_MIN && m->count * 8 < m->cap) {
        map_resize(s, m, m->cap / 2); /* on ENOMEM just stay larger */
    }
    return val;
}

void tmem__map_free(tmem_store *s, pagemap *m)
{
    tmem__core_free(s, m->keys);
    tmem__core_free(s, m->vals);
    memset(m, 0, sizeof *m);
}
