/*
 * Pools: creation with the flag checks of the ABI, sharing by UUID with
 * per-client authorisation, and destruction.
 *
 * A shared pool lives on the store's shared list while sharers > 0 (under
 * store->shared_lock); a client leaving it removes the objects it put into
 * last and, since they are accounted to it, its other pages in the pool
 * (ephemeral pages may be dropped at any time, so this is allowed).  The
 * pool is freed when its last sharer leaves.
 */
#include <string.h>

#include "store_internal.h"

static bool flags_valid(uint32_t flags)
{
    const uint32_t known = TMEM_POOL_PERSIST | TMEM_POOL_SHARED |
                           TMEM_POOL_PAGESIZE_MASK | TMEM_POOL_VERSION_MASK;
    if (flags & ~known)
        return false;
    if ((flags & TMEM_POOL_SHARED) && (flags & TMEM_POOL_PERSIST))
        return false;
    if ((flags & TMEM_POOL_PAGESIZE_MASK) >> TMEM_POOL_PAGESIZE_SHIFT)
        return false; /* only 4 KiB pages */
    return (flags & TMEM_POOL_VERSION_MASK) >> TMEM_POOL_VERSION_SHIFT ==
           TMEM_SPEC_VERSION;
}

static tmem_pool *pool_alloc(tmem_store *s, tmem_client *owner,
                             uint32_t flags, const uint64_t uuid[2])
{
    tmem_pool *p = tmem__core_alloc(s, sizeof *p);
    if (!p)
        return NULL;
    p->store = s;
    p->owner = (flags & TMEM_POOL_SHARED) ? NULL : owner;
    p->flags = flags;
    p->persist = flags & TMEM_POOL_PERSIST;
    p->shared = flags & TMEM_POOL_SHARED;
    if (uuid)
        memcpy(p->uuid, uuid, sizeof p->uuid);
    p->sharers = 1;
    for (int i = 0; i < POOL_SHARDS; i++) {
        pthread_mutex_init(&p->shards[i].lock, NULL);
        p->shards[i].pool = p;
    }
    return p;
}

static void pool_free(tmem_pool *p)
{
    tmem_store *s = p->store;
    for (int i = 0; i < POOL_SHARDS; i++) {
        pthread_mutex_destroy(&p->shards[i].lock);
        tmem__core_free(s, p->shards[i].buckets);
    }
    cnt_add(&s->st.flushed_pools, 1);
    tmem__core_free(s, p);
}

static bool authorised_locked(tmem_store *s, int cid, const uint64_t u[2])
{
    for (int i = 0; i < s->nauth; i++)
        if (s->auth[i].client_id == cid && s->auth[i].uuid[0] == u[0] &&
            s->auth[i].uuid[1] == u[1])
            return true;
    return false;
}

/* Joins the shared pool of that UUID, creating it if none; NULL if ENOMEM. */
static tmem_pool *shared_join(tmem_store *s, uint32_t flags,
                              const uint64_t uuid[2])
{
    pthread_mutex_lock(&s->shared_lock);
    tmem_pool *p = s->shared_pools;
    while (p && (p->uuid[0] != uuid[0] || p->uuid[1] != uuid[1]))
        p = p->next_shared;
    if (p) {
        p->sharers++;
    } else if ((p = pool_alloc(s, NULL, flags, uuid)) != NULL) {
        p->next_shared = s->shared_pools;
        s->shared_pools = p;
    }
    pthread_mutex_unlock(&s->shared_lock);
    return p;
}

/* Room for a pool's structures, and for the private arena a client's
 * first persistent pool opens (its header page, tables and first handle
 * and data pages). */
#define POOL_ROOM (4u * 1024)
#define ARENA_ROOM (32u * 1024)

int tmem_pool_new(tmem_client *c, const uint64_t uuid[2], uint32_t flags,
                  uint32_t *out_flags)
{
    tmem_store *s = c->store;
    static const uint64_t nil[2] = {0, 0};
    if (!flags_valid(flags))
        return TMEM_EPERM;
    pthread_rwlock_rdlock(&c->lock);
    bool opens_arena = (flags & TMEM_POOL_PERSIST) && !c->arena;
    pthread_rwlock_unlock(&c->lock);
    tmem__make_room(s, POOL_ROOM + (opens_arena ? ARENA_ROOM : 0));
    tmem__acct_take_refusal();
    if (!uuid)
        uuid = nil;
    if (flags & TMEM_POOL_SHARED) {
        pthread_mutex_lock(&s->shared_lock);
        bool ok = authorised_locked(s, c->id, uuid);
        pthread_mutex_unlock(&s->shared_lock);
        if (!ok)
            flags &= ~TMEM_POOL_SHARED; /* as the original: private */
    }
    pthread_rwlock_wrlock(&c->lock);
    int r = TMEM_ENODEV;
    if (atomic_load(&c->dead))
        goto out_unlock;
    r = TMEM_ENOSPC;
    int i = 0;
    while (i < TMEM_MAX_POOLS && c->pools[i])
        i++;
    if (i == TMEM_MAX_POOLS)
        goto out_unlock;
    if ((flags & TMEM_POOL_PERSIST) && !c->arena) {
        /* Persistent pages live in the client's own arena (its tenant may
         * read them there, and they can outlive the daemon). */
        int n = tmem__blob_arena_open(s->blobs, (uint32_t)c->id);
        if (n < 0) {
            r = tmem__meta_refused(s);
            goto out_unlock;
        }
        c->arena = n;
        if (c->tag_len)
            tmem__arena_set_tag(tmem__blob_arena(s->blobs, n), c->tag,
                                c->tag_len);
    }
    tmem_pool *p = (flags & TMEM_POOL_SHARED) ? shared_join(s, flags, uuid)
                                              : pool_alloc(s, c, flags, uuid);
    if (!p) {
        r = tmem__meta_refused(s);
        goto out_unlock;
    }
    if (p->persist) { /* a shared pool (never persistent) stays at 0: other
                         sharers read it without this client's lock */
        p->arena = c->arena;
        p->inst = tmem__arena_pool_open(tmem__blob_arena(s->blobs, c->arena),
                                        (unsigned)i, flags, uuid);
    }
    c->pools[i] = p;
    r = i;
    if (out_flags)
        *out_flags = flags;
out_unlock:
    pthread_rwlock_unlock(&c->lock);
    return r;
}

/* Empties the pool (or, leaving a shared pool, removes what c owns). */
static void pool_clear(tmem_pool *p, tmem_client *c, bool all)
{
    for (int i = 0; i < POOL_SHARDS; i++) {
        shard *sh = &p->shards[i];
        pthread_mutex_lock(&sh->lock);
        for (uint32_t b = 0; b < sh->nbuckets; b++) {
            tmem_obj *o = sh->buckets[b];
            while (o) {
                tmem_obj *next = o->next;
                if (all || o->last_client == c->id) {
                    tmem__obj_destroy_locked(p, sh, o);
                } else {
                    /* Drop c's pages in another client's object. */
                    tmem__obj_drop_locked(p, o, c);
                    if (o->map.count == 0)
                        tmem__obj_free_locked(sh, o);
                }
                o = next;
            }
        }
        pthread_mutex_unlock(&sh->lock);
    }
}

void tmem__pool_release_locked(tmem_client *c, int i)
{
    tmem_pool *p = c->pools[i];
    tmem_store *s = c->store;
    c->pools[i] = NULL;
    if (p->arena) /* recovery stops naming its pages first */
        tmem__arena_pool_close(tmem__blob_arena(s->blobs, p->arena),
                               (unsigned)i);
    if (!p->shared) {
        pool_clear(p, c, true);
        pool_free(p);
        return;
    }
    pool_clear(p, c, false);
    pthread_mutex_lock(&s->shared_lock);
    bool last = --p->sharers == 0;
    if (last) {
        tmem_pool **pp = &s->shared_pools;
        while (*pp != p)
            pp = &(*pp)->next_shared;
        *pp = p->next_shared;
    }
    pthread_mutex_unlock(&s->shared_lock);
    if (last) {
        pool_clear(p, c, true);
        pool_free(p);
    }
}

int tmem_pool_destroy(tmem_client *c, int pool)
{
    if (pool < 0 || pool >= TMEM_MAX_POOLS)
        return TMEM_ENODEV;
    pthread_rwlock_wrlock(&c->lock);
    int r = TMEM_ENODEV;
    if (c->pools[pool] && !atomic_load(&c->dead)) {
        tmem__pool_release_locked(c, pool);
        r = 0;
    }
    pthread_rwlock_unlock(&c->lock);
    return r;
}

int tmem_store_auth(tmem_store *s, int client_id, const uint64_t uuid[2],
                    bool on)
{
    if (!uuid)
        return TMEM_EINVAL;
    tmem_client *c = tmem__client_get(s, client_id);
    if (!c)
        return TMEM_ENODEV;
    int r = 0;
    pthread_mutex_lock(&s->shared_lock);
    bool have = authorised_locked(s, client_id, uuid);
    if (on && !have) {
        if (s->nauth == s->auth_cap) {
            int ncap = s->auth_cap ? s->auth_cap * 2 : 8;
            void *n = tmem__core_alloc(s, ncap * sizeof *s->auth);
            if (!n) {
                r = tmem__meta_refused(s);
                goto out_unlock;
            }
            if (s->nauth)
                memcpy(n, s->auth, s->nauth * sizeof *s->auth);
            tmem__core_free(s, s->auth);
            s->auth = n;
            s->auth_cap = ncap;
        }
        s->auth[s->nauth++] = (auth_entry){client_id, {uuid[0], uuid[1]}};
    } else if (!on && have) {
        for (int i = 0; i < s->nauth; i++)
            if (s->auth[i].client_id == client_id &&
                s->auth[i].uuid[0] == uuid[0] &&
                s->auth[i].uuid[1] == uuid[1]) {
                s->auth[i] = s->auth[--s->nauth];
                break;
            }
    }
out_unlock:
    pthread_mutex_unlock(&s->shared_lock);
    tmem__client_put(c);
    return r;
}
