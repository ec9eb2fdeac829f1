/*
 * Ephemeral page eviction and making room under the budget: the
 * per-client LRU lists, the choice of victim, and tmem__make_room.
 *
 * Each client keeps its ephemeral pages in an LRU list, newest at the head.
 * When the store is over its budget, the victim client is the one furthest
 * OVER its weighted share of the ephemeral pages:
 *     over(c) = eph(c) * W - weight(c) * E
 * (W = sum of the weights of the clients holding ephemeral pages, E = all
 * ephemeral pages; the original tested this the wrong way round), and its
 * oldest page goes.  The evictor holds the client table (read) and the
 * victim's lru_lock, then only TRYLOCKs the page's shard: the usual order
 * is shard -> lru, so a busy shard is skipped rather than waited for.
 * Persistent pages are never evicted.
 *
 * Making room counts bytes, not pages: it measures the account after each
 * step and stops as soon as what was asked for fits, so it evicts no more
 * than the memory it needs, metadata included (an evicted page gives back
 * its index entry and LRU node at once, and its data once the 4 KiB pages
 * it lay on hold no other record: arena.c gathers such pages and punches
 * them).  When no ephemeral page is left it gives back dead pages that
 * were not punched yet, then compacts (blob.c, tmem__blob_reclaim).
 */
#include <sched.h>

#include "store_internal.h"

#define EVICT_TRIES 16   /* LRU pages tried when their shards are busy */
#define EVICT_SPINS 1000 /* rounds of "all busy" before giving up */

void tmem__lru_link(tmem_client *c, eph_node *n)
{
    pthread_mutex_lock(&c->lru_lock);
    n->next = c->lru.next;
    n->prev = &c->lru;
    c->lru.next->prev = n;
    c->lru.next = n;
    pthread_mutex_unlock(&c->lru_lock);
}

static void lru_unlink_locked(eph_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

void tmem__lru_unlink(tmem_client *c, eph_node *n)
{
    pthread_mutex_lock(&c->lru_lock);
    lru_unlink_locked(n);
    pthread_mutex_unlock(&c->lru_lock);
}

/* The client furthest over its weighted share (needs clients_lock).  The
 * shares are of the clients that hold ephemeral pages: one that holds
 * none (an admin connection, a tenant with persistent pools only) leaves
 * its share to the others, in their proportions. */
static tmem_client *pick_victim_locked(tmem_store *s)
{
    unsigned __int128 W = 0, E = 0;
    for (int i = 0; i < s->nclients; i++) {
        uint64_t eph = cnt_get(&s->clients[i]->eph_pages);
        if (eph)
            W += atomic_load(&s->clients[i]->weight);
        E += eph;
    }
    tmem_client *best = NULL;
    __int128 best_over = 0;
    for (int i = 0; i < s->nclients; i++) {
        tmem_client *c = s->clients[i];
        uint64_t eph = cnt_get(&c->eph_pages);
        if (!eph)
            continue;
        __int128 over = (__int128)(eph * W) -
                        (__int128)(atomic_load(&c->weight) * E);
        if (!best || over > best_over ||
            (over == best_over && eph > cnt_get(&best->eph_pages))) {
            best = c;
            best_over = over;
        }
    }
    return best;
}

/* Evicts the oldest page of c whose shard is free.  Returns 1, 0 (no
 * page) or -EAGAIN (all tried shards busy). */
static int evict_from(tmem_store *s, tmem_client *c)
{
    int r = 0;
    pthread_mutex_lock(&c->lru_lock);
    eph_node *n = c->lru.prev;
    for (int tries = 0; n != &c->lru && tries < EVICT_TRIES;
         tries++, n = n->prev) {
        shard *sh = n->obj->shard;
        if (pthread_mutex_trylock(&sh->lock) != 0) {
            r = -EAGAIN;
            continue;
        }
        tmem_obj *o = n->obj;
        tmem_pool *p = sh->pool;
        tmem__map_del(s, &o->map, n->index);
        lru_unlink_locked(n);
        pthread_mutex_unlock(&c->lru_lock);
        /* Now an ordinary drop: its unlink of the self-linked node is a
         * no-op. */
        cnt_add(&p->st.evictions, 1);
        tmem__page_drop_locked(p, (uint64_t)n);
        if (o->map.count == 0)
            tmem__obj_free_locked(sh, o);
        pthread_mutex_unlock(&sh->lock);
        cnt_add(&c->evicted, 1);
        cnt_add(&s->st.evictions, 1);
        return 1;
    }
    pthread_mutex_unlock(&c->lru_lock);
    return r;
}

int tmem__evict_one(tmem_store *s, tmem_client *only)
{
    cnt_add(&s->st.evict_attempts, 1);
    for (int spin = 0; spin < EVICT_SPINS; spin++) {
        pthread_rwlock_rdlock(&s->clients_lock);
        tmem_client *c = only ? only : pick_victim_locked(s);
        int r = c ? evict_from(s, c) : 0;
        pthread_rwlock_unlock(&s->clients_lock);
        if (r != -EAGAIN)
            return r;
        sched_yield();
    }
    return 0;
}

int tmem__make_room(tmem_store *s, uint64_t need)
{
    if (!tmem__acct_limit(&s->acct) || tmem__acct_fits(&s->acct, need))
        return 0;
    pthread_mutex_lock(&s->evict_lock);
    while (!tmem__acct_fits(&s->acct, need)) {
        if (tmem__evict_one(s, NULL) == 1)
            cnt_add(&s->st.evict_inline, 1);
        else if (!tmem__blob_reclaim(s->blobs))
            break;
    }
    pthread_mutex_unlock(&s->evict_lock);
    return tmem__acct_fits(&s->acct, need) ? 0 : TMEM_ENOSPC;
}

int64_t tmem_store_flush_mib(tmem_store *s, uint64_t mib)
{
    uint64_t want = mib << 20;
    uint64_t start_used = tmem__store_used(s);
    uint64_t start_bytes = cnt_get(&s->st.eph_bytes);
    int64_t n = 0;
    pthread_mutex_lock(&s->evict_lock);
    for (;;) {
        uint64_t used = tmem__store_used(s);
        uint64_t bytes = cnt_get(&s->st.eph_bytes);
        if (start_used - (used < start_used ? used : start_used) >= want ||
            start_bytes - (bytes < start_bytes ? bytes : start_bytes) >= want)
            break;
        if (tmem__evict_one(s, NULL) != 1)
            break;
        n++;
    }
    pthread_mutex_unlock(&s->evict_lock);
    return n;
}

uint64_t tmem_store_freeable_mib(tmem_store *s)
{
    uint64_t bytes = cnt_get(&s->st.eph_bytes) +
                     cnt_get(&s->st.eph_pages) * (sizeof(eph_node) + 16);
    return bytes >> 20;
}
