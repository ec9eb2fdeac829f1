/*
 * The store and its clients: creation, destruction, the client table and
 * the administrator's per-client settings.
 *
 * Clients are refcounted: the owner holds one reference from create to
 * destroy; admin operations and the evictor take one while they work on a
 * client looked up by id, so a client is freed only when all are done.
 * Ids grow monotonically and are never reused within a store.
 * See store_internal.h for the lock order.  Memory: the store's account
 * (acct.h) holds every byte; tmem__core_alloc charges the core's
 * structures (drawing on the credit a put reserved), and creating a
 * client first makes room for it.
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "store_internal.h"

void *tmem__core_alloc(tmem_store *s, size_t n)
{
    void *p = tmem__calloc(1, n);
    if (!p) {
        cnt_add(&s->st.alloc_failed, 1);
        return NULL;
    }
    uint64_t held = tmem__held(p);
    uint64_t drawn = tmem__acct_draw(&s->acct, held);
    if (tmem__acct_charge(&s->acct, held - drawn) < 0) {
        tmem__acct_uncharge(&s->acct, drawn); /* what it drew goes back */
        tmem__free(p);
        return NULL;
    }
    cnt_add(&s->meta_bytes, held);
    return p;
}

void tmem__core_free(tmem_store *s, void *p)
{
    if (!p)
        return;
    uint64_t held = tmem__held(p);
    cnt_sub(&s->meta_bytes, held);
    tmem__acct_uncharge(&s->acct, held);
    tmem__free(p);
}

uint64_t tmem__store_used(tmem_store *s)
{
    return tmem__acct_used(&s->acct);
}

static const char *const codec_names[] = {"none", "lz4", "zstd"};

int tmem_compress_parse(const char *name, tmem_compress *out)
{
    for (int i = 0; i < 3; i++) {
        if (name && strcmp(name, codec_names[i]) == 0) {
            *out = (tmem_compress)i;
            return 0;
        }
    }
    return TMEM_EINVAL;
}

const char *tmem_compress_name(tmem_compress c)
{
    return (unsigned)c < 3 ? codec_names[c] : "?";
}

static bool codec_valid(tmem_compress c)
{
    return (unsigned)c < 3;
}

void tmem_store_config_init(tmem_store_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->compress = TMEM_COMPRESS_LZ4;
}

int tmem_store_create(const tmem_store_config *cfg, tmem_store **out)
{
    tmem_store_config def;
    if (!cfg) {
        tmem_store_config_init(&def);
        cfg = &def;
    }
    if (!out || !codec_valid(cfg->compress))
        return TMEM_EINVAL;
    tmem_store *s = tmem__aligned_alloc(64, sizeof *s); /* scnt lines */
    if (!s)
        return TMEM_ENOMEM;
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    /* the limit comes once the store's own structures are in */
    tmem__acct_init(&s->acct, 0);
    tmem__acct_charge(&s->acct, tmem__held(s));
    cnt_add(&s->meta_bytes, tmem__held(s));
    int r = tmem__blobstore_create(&s->acct, &s->blobs);
    if (r < 0) {
        tmem__free(s);
        return r;
    }
    s->cfg.arena_dir = NULL; /* the caller's string: the blob store's copy */
    if (cfg->arena_dir &&
        (r = tmem__blobstore_set_dir(s->blobs, cfg->arena_dir)) < 0) {
        tmem__blobstore_destroy(s->blobs);
        tmem__free(s);
        return r;
    }
    pthread_rwlock_init(&s->clients_lock, NULL);
    pthread_mutex_init(&s->shared_lock, NULL);
    pthread_mutex_init(&s->evict_lock, NULL);
    if (cfg->budget_bytes && tmem__acct_used(&s->acct) > cfg->budget_bytes) {
        tmem_store_destroy(s); /* a budget the empty store passes */
        return TMEM_EINVAL;
    }
    tmem__acct_set_limit(&s->acct, cfg->budget_bytes);
    *out = s;
    return 0;
}

void tmem_store_destroy(tmem_store *s)
{
    if (!s)
        return;
    tmem__maint_stop(s);
    while (s->nclients > 0) {
        tmem_client *c = s->clients[s->nclients - 1];
        /* The owners' handles die with the store: drop every reference. */
        atomic_store(&c->refs, 1);
        tmem_client_destroy(c);
    }
    tmem__core_free(s, s->clients);
    tmem__core_free(s, s->auth);
    tmem__blobstore_destroy(s->blobs);
    pthread_rwlock_destroy(&s->clients_lock);
    pthread_mutex_destroy(&s->shared_lock);
    pthread_mutex_destroy(&s->evict_lock);
    tmem__free(s);
}

/* Index of id in the sorted table, or of where it would go. */
static int client_slot_locked(tmem_store *s, int id)
{
    int lo = 0, hi = s->nclients;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s->clients[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A refused allocation of a pool's or client's structures: the budget
 * (counted) or memory. */
int tmem__meta_refused(tmem_store *s)
{
    if (!tmem__acct_take_refusal())
        return TMEM_ENOMEM;
    cnt_add(&s->st.reject_budget_meta, 1);
    return TMEM_ENOSPC;
}

/* Doubles the client table (charged).  Needs clients_lock (write). */
static int clients_grow_locked(tmem_store *s)
{
    int ncap = s->clients_cap ? s->clients_cap * 2 : 8;
    tmem_client **n = tmem__core_alloc(s, ncap * sizeof *s->clients);
    if (!n)
        return -1;
    if (s->nclients)
        memcpy(n, s->clients, s->nclients * sizeof *s->clients);
    tmem__core_free(s, s->clients);
    s->clients = n;
    s->clients_cap = ncap;
    return 0;
}

/* Room for a client and a bigger client table. */
#define CLIENT_ROOM 2048u

int tmem_client_create(tmem_store *s, tmem_client **out)
{
    if (!s || !out)
        return TMEM_EINVAL;
    pthread_rwlock_rdlock(&s->clients_lock);
    uint64_t room = CLIENT_ROOM + (uint64_t)s->clients_cap * 16;
    pthread_rwlock_unlock(&s->clients_lock);
    tmem__make_room(s, room);
    tmem__acct_take_refusal();
    tmem_client *c = tmem__core_alloc(s, sizeof *c);
    if (!c)
        return tmem__meta_refused(s);
    c->store = s;
    atomic_init(&c->refs, 1);
    atomic_init(&c->weight, TMEM_DEFAULT_WEIGHT);
    atomic_init(&c->compress, (int)s->cfg.compress);
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->lru_lock, NULL);
    c->lru.next = c->lru.prev = &c->lru;

    pthread_rwlock_wrlock(&s->clients_lock);
    if (s->nclients == s->clients_cap && clients_grow_locked(s) < 0) {
        pthread_rwlock_unlock(&s->clients_lock);
        pthread_rwlock_destroy(&c->lock);
        pthread_mutex_destroy(&c->lru_lock);
        tmem__core_free(s, c);
        return tmem__meta_refused(s);
    }
    c->id = s->next_id++;
    s->clients[s->nclients++] = c; /* ids grow: stays sorted */
    pthread_rwlock_unlock(&s->clients_lock);
    *out = c;
    return c->id;
}

int tmem_client_id(const tmem_client *c)
{
    return c->id;
}

uint32_t tmem_client_weight(const tmem_client *c)
{
    return atomic_load_explicit(&((tmem_client *)c)->weight,
                                memory_order_relaxed);
}

tmem_client *tmem__client_get(tmem_store *s, int id)
{
    tmem_client *c = NULL;
    pthread_rwlock_rdlock(&s->clients_lock);
    int i = client_slot_locked(s, id);
    if (i < s->nclients && s->clients[i]->id == id) {
        c = s->clients[i];
        atomic_fetch_add(&c->refs, 1);
    }
    pthread_rwlock_unlock(&s->clients_lock);
    return c;
}

static void client_free(tmem_client *c)
{
    tmem_store *s = c->store;
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->lru_lock);
    tmem__core_free(s, c);
}

void tmem__client_put(tmem_client *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        client_free(c);
}

/* Releases every pool of c; marks it dead. */
static void client_kill(tmem_client *c)
{
    pthread_rwlock_wrlock(&c->lock);
    atomic_store(&c->dead, true);
    if (c->arena) /* a crash while its pages go brings none back */
        tmem__arena_doom(tmem__blob_arena(c->store->blobs, c->arena));
    for (int i = 0; i < TMEM_MAX_POOLS; i++)
        if (c->pools[i])
            tmem__pool_release_locked(c, i);
    /* Its arena is empty now; a tenant mapping it sees it dead. */
    tmem__blob_arena_close(c->store->blobs, c->arena);
    c->arena = 0;
    tmem__blob_owner_gone(c->store->blobs, (uint32_t)c->id);
    pthread_rwlock_unlock(&c->lock);
}

int tmem_client_charge(tmem_client *c, int64_t bytes)
{
    if (!c)
        return TMEM_EINVAL;
    tmem_store *s = c->store;
    if (bytes > 0) {
        tmem__make_room(s, (uint64_t)bytes);
        if (tmem__acct_charge(&s->acct, (uint64_t)bytes) < 0)
            return TMEM_ENOSPC;
        cnt_add(&c->extra_bytes, (uint64_t)bytes);
    } else if (bytes < 0) {
        uint64_t n = (uint64_t)-bytes, had = cnt_get(&c->extra_bytes);
        if (n > had)
            return TMEM_EINVAL; /* more than it was charged */
        cnt_sub(&c->extra_bytes, n);
        tmem__acct_uncharge(&s->acct, n);
    }
    return 0;
}

void tmem_client_destroy(tmem_client *c)
{
    if (!c)
        return;
    tmem_store *s = c->store;
    /* what it was charged from outside goes back with it */
    tmem__acct_uncharge(&s->acct, atomic_exchange(&c->extra_bytes, 0));
    pthread_rwlock_wrlock(&s->clients_lock);
    int i = client_slot_locked(s, c->id);
    if (i < s->nclients && s->clients[i] == c) {
        memmove(&s->clients[i], &s->clients[i + 1],
                (s->nclients - i - 1) * sizeof *s->clients);
        s->nclients--;
    }
    pthread_rwlock_unlock(&s->clients_lock);
    client_kill(c);
    /* Its authorisations go with it. */
    pthread_mutex_lock(&s->shared_lock);
    for (int k = 0; k < s->nauth;)
        if (s->auth[k].client_id == c->id)
            s->auth[k] = s->auth[--s->nauth];
        else
            k++;
    pthread_mutex_unlock(&s->shared_lock);
    tmem__client_put(c);
}

/* ---- the private arena -------------------------------------------------- */

int tmem__client_set_tag(tmem_client *c, const void *tag, uint32_t len)
{
    if (len > TMEM_ARENA_TAG_MAX)
        return TMEM_EINVAL;
    pthread_rwlock_wrlock(&c->lock);
    memcpy(c->tag, tag, len);
    c->tag_len = len;
    if (c->arena)
        tmem__arena_set_tag(tmem__blob_arena(c->store->blobs, c->arena), tag,
                            len);
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

int tmem__client_arena_fd(tmem_client *c, size_t *len)
{
    pthread_rwlock_rdlock(&c->lock);
    tmem_arena *a = tmem__blob_arena(c->store->blobs, c->arena);
    int fd = a && c->arena ? tmem__arena_fd_ro(a) : -ENOENT;
    if (fd >= 0)
        *len = tmem__arena_map_len(a);
    pthread_rwlock_unlock(&c->lock);
    return fd;
}

/* ---- administration ----------------------------------------------------- */

int tmem_store_set_weight(tmem_store *s, int client_id, uint32_t weight)
{
    tmem_client *c = tmem__client_get(s, client_id);
    if (!c)
        return TMEM_ENODEV;
    atomic_store(&c->weight, weight);
    tmem__client_put(c);
    return 0;
}

int tmem_store_set_cap(tmem_store *s, int client_id, uint64_t cap_pages)
{
    tmem_client *c = tmem__client_get(s, client_id);
    if (!c)
        return TMEM_ENODEV;
    atomic_store(&c->cap, cap_pages);
    /* Ephemeral pages over the new cap go now; persistent ones stay (they
     * are never evicted) but block further puts. */
    while (cap_pages && cnt_get(&c->eph_pages) + cnt_get(&c->pers_pages) >
                            cap_pages &&
           cnt_get(&c->eph_pages) > 0)
        if (!tmem__evict_one(s, c))
            break;
    tmem__client_put(c);
    return 0;
}

int tmem_store_set_compress(tmem_store *s, int client_id, tmem_compress cc)
{
    if (!codec_valid(cc))
        return TMEM_EINVAL;
    tmem_client *c = tmem__client_get(s, client_id);
    if (!c)
        return TMEM_ENODEV;
    atomic_store(&c->compress, (int)cc);
    tmem__client_put(c);
    return 0;
}

int tmem_store_freeze(tmem_store *s, int client_id, bool frozen)
{
    if (client_id == TMEM_ALL_CLIENTS) {
        pthread_rwlock_rdlock(&s->clients_lock);
        for (int i = 0; i < s->nclients; i++)
            atomic_store(&s->clients[i]->frozen, frozen);
        pthread_rwlock_unlock(&s->clients_lock);
        return 0;
    }
    tmem_client *c = tmem__client_get(s, client_id);
    if (!c)
        return TMEM_ENODEV;
    atomic_store(&c->frozen, frozen);
    tmem__client_put(c);
    return 0;
}

int tmem_store_client_kill(tmem_store *s, int client_id)
{
    tmem_client *c = tmem__client_get(s, client_id);
    if (!c)
        return TMEM_ENODEV;
    client_kill(c);
    tmem__client_put(c);
    return 0;
}

int tmem_store_set_budget(tmem_store *s, uint64_t budget_bytes)
{
    tmem__acct_set_limit(&s->acct, budget_bytes);
    tmem__make_room(s, 0); /* persistent pages may keep it over */
    return 0;
}

int tmem_store_list_clients(tmem_store *s, int *ids, int cap)
{
    pthread_rwlock_rdlock(&s->clients_lock);
    int n = s->nclients;
    for (int i = 0; i < n && i < cap; i++)
        ids[i] = s->clients[i]->id;
    pthread_rwlock_unlock(&s->clients_lock);
    return n;
}
