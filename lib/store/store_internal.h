/*
 * The store core's private structures, shared by store.c (store, clients,
 * admin), pool.c (pools, sharing), page.c (put/get/flush), objmap.c (the
 * per-shard object table and per-object page map), evict.c (budget, cap,
 * LRU) and stats.c (counters, JSON).
 *
 * What a page costs: one slot in its object's page map (u32 index + u64
 * value); for persistent pools the value is the tmem_blob itself; for
 * ephemeral pools it points to a struct eph_node, which links the page into
 * its owner client's LRU.  Page contents live in the blob layer (blob.h).
 *
 * LOCK ORDER (take left before right; never the reverse):
 *
 *   client->lock (rw)  ->  store->evict_lock  ->  store->clients_lock (rw)
 *        ->  shard->lock  ->  client->lru_lock  ->  store->shared_lock
 *        ->  blob layer
 *
 *   - client->lock: read for every data operation of that client (keeps
 *     its pool slots and the pools alive); write to create/destroy pools
 *     and to kill the client.
 *   - store->clients_lock: the client table.  An evictor holds it (read)
 *     while it evicts, so a client is unlinked (write) before it is freed.
 *     Admin operations look a client up under it and take a reference.
 *   - shard->lock: one of a pool's POOL_SHARDS mutexes; guards the shard's
 *     objects and their page maps.  Held only for index work, never while
 *     compressing or decompressing.
 *   - client->lru_lock: the client's ephemeral LRU list.  The evictor takes
 *     it first and then only TRYLOCKs a shard (the reverse order), skipping
 *     pages whose shard is busy: no deadlock.
 *   - store->shared_lock: the shared-pool list, auth table and sharers
 *     counts.
 *   - store->evict_lock: one thread makes room at a time (evict.c); a put
 *     takes it holding its client's read lock (never another client's),
 *     pool and client creation before taking any lock.
 * Counters are relaxed atomics and need no lock.
 *
 * Memory (docs/store.md, "Budget"): every byte the store holds is charged
 * to store->acct before it is taken (tmem__core_alloc for the core's
 * structures; the blob layer and arenas for theirs), so used_bytes never
 * passes the budget.  A put first makes room for what it may need
 * (tmem__make_room: evict, give back dead pages, compact), reserves the
 * bytes its index entry may take, then stores its page; a charge refused
 * on the way fails it with -ENOSPC having kept nothing.
 */
#ifndef TMEM_STORE_INTERNAL_H
#define TMEM_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <tmem/store.h>

#include "acct.h"
#include "blob.h"
#include "store_direct.h"
#include "common/thread_slot.h"

#define POOL_SHARDS 32

typedef _Atomic uint64_t acnt;

static inline void cnt_add(acnt *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}
static inline void cnt_sub(acnt *c, uint64_t v)
{
    atomic_fetch_sub_explicit(c, v, memory_order_relaxed);
}
static inline uint64_t cnt_get(acnt *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}
/* A counter every data operation of every client bumps: one cache line
 * per shard, a thread adds to its own (a single atomic here would bounce
 * between the CPUs of every tenant's thread on every page). */
#define SCNT_SHARDS 16
typedef struct scnt {
    struct {
        acnt v;
    } __attribute__((aligned(64))) s[SCNT_SHARDS];
} scnt;

static inline void scnt_add(scnt *c, uint64_t v)
{
    cnt_add(&c->s[tmem__thread_slot() % SCNT_SHARDS].v, v);
}
static inline uint64_t scnt_get(scnt *c)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < SCNT_SHARDS; i++)
        t += cnt_get(&c->s[i].v);
    return t;
}

/* Raises *max to v if v is larger. */
static inline void cnt_max(acnt *max, uint64_t v)
{
    uint64_t m = cnt_get(max);
    while (v > m && !atomic_compare_exchange_weak_explicit(
                        max, &m, v, memory_order_relaxed,
                        memory_order_relaxed))
        ;
}

/* ---- page map: u32 index -> u64 value (pagemap.c) ----------------------
 * Indices are grouped in chunks of 64 (index >> 6); a chunk keeps a bitmap
 * of the indices present and their values packed in index order, so a
 * dense object (frontswap) costs ~8.3 bytes a page.  Chunks are found in
 * an open-addressing table, or directly when an object has only one. */

typedef struct pagechunk {
    uint32_t base;  /* index >> 6 */
    uint8_t n, cap; /* values held, slots allocated (<= 64) */
    uint64_t bits;  /* bit i: index base*64+i present */
    uint64_t vals[];
} pagechunk;

typedef struct pagemap {
    pagechunk **tab; /* cap slots, NULL = empty; unused when cap == 0 */
    pagechunk *single; /* the only chunk while cap == 0 */
    uint32_t cap, nchunks, count;
} pagemap;

struct tmem_store;
struct tmem_pool;
struct shard;

typedef struct tmem_obj {
    tmem_oid oid;
    struct tmem_obj *next; /* shard hash chain */
    struct shard *shard;
    int last_client;       /* client id that put into it last */
    pagemap map;
} tmem_obj;

typedef struct shard {
    pthread_mutex_t lock;
    tmem_obj **buckets;
    uint32_t nbuckets; /* power of two, or 0 */
    uint32_t nobjs;
    struct tmem_pool *pool;
} shard;

/* An ephemeral page: its content and its place in the owner's LRU. */
typedef struct eph_node {
    struct eph_node *prev, *next;
    tmem_obj *obj;
    struct tmem_client *owner;
    tmem_blob blob;
    uint32_t index;
} eph_node;

typedef struct pool_counters {
    acnt pages, pages_max, objects, objects_max;
    acnt puts, puts_good, dup_puts_flushed, dup_puts_replaced, puts_nomem;
    acnt gets, gets_found, flushes, flushes_found, flush_objs;
    acnt flush_objs_found, evictions;
} pool_counters;

typedef struct tmem_pool {
    struct tmem_store *store;
    uint32_t flags;
    bool persist, shared;
    uint64_t uuid[2];
    int sharers;             /* under store->shared_lock */
    struct tmem_pool *next_shared;
    struct tmem_client *owner; /* private pools: the one client */
    int arena;               /* blob arena: 0 common, else the owner's */
    uint32_t inst;           /* its instance in that arena (records carry
                                id | inst << 8: TMEM_ARENA_POOL_INST) */
    pool_counters st;
    shard shards[POOL_SHARDS];
} tmem_pool;

struct tmem_client {
    struct tmem_store *store;
    int id;
    _Atomic int refs;        /* owner + admin/evictor lookups */
    pthread_rwlock_t lock;   /* see LOCK ORDER */
    tmem_pool *pools[TMEM_MAX_POOLS];
    int arena;               /* private arena (persistent pools), 0 none;
                                under lock (write) */
    _Atomic bool frozen, dead;
    _Atomic uint32_t weight;
    _Atomic uint64_t cap;    /* pages; 0 = none */
    _Atomic int compress;
    pthread_mutex_t lru_lock;
    eph_node lru;            /* sentinel: lru.next = newest */
    acnt eph_pages, pers_pages, data_bytes;
    acnt puts_good_pers, gets_good_eph, gets_good_pers;
    acnt puts_frozen, puts_cap, evicted;
    acnt extra_bytes;        /* tmem_client_charge: held for it outside */
    /* the owner's words for its private arena (tmem__client_set_tag):
     * written there when the arena opens; under lock (write) */
    unsigned char tag[TMEM_ARENA_TAG_MAX];
    uint32_t tag_len;
};

typedef struct auth_entry {
    int client_id;
    uint64_t uuid[2];
} auth_entry;

typedef struct store_counters {
    acnt eph_pages, eph_pages_max, pers_pages, zero_pages, eph_bytes;
    scnt total_ops;
    acnt errored_ops, evictions, evict_attempts;
    acnt reject_budget, reject_cap, reject_frozen, reject_nomem;
    acnt reject_budget_meta;
    acnt flushed_pools, alloc_failed;
    acnt evict_inline, evict_background, compact_background;
} store_counters;

/* The maintenance thread (maint.c). */
typedef struct store_maint {
    pthread_t thr;
    atomic_bool running;
    atomic_int stop, kicked;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} store_maint;

struct tmem_store {
    tmem_store_config cfg;
    tmem_acct acct;          /* every byte held; limit = the budget */
    tmem_blobstore *blobs;
    acnt meta_bytes;         /* the core's own allocations */
    pthread_rwlock_t clients_lock;
    struct tmem_client **clients; /* sorted by id */
    int nclients, clients_cap, next_id;
    pthread_mutex_t shared_lock;
    tmem_pool *shared_pools;
    auth_entry *auth;
    int nauth, auth_cap;
    pthread_mutex_t evict_lock; /* one evictor at a time */
    store_counters st;
    store_maint maint;
};

/* ---- store.c ------------------------------------------------------------ */
/* Zeroed, counted in meta_bytes and charged (drawing on this thread's
 * credit first).  NULL when malloc fails or the budget refuses (then
 * tmem__acct_take_refusal says so). */
void *tmem__core_alloc(tmem_store *s, size_t n);
void tmem__core_free(tmem_store *s, void *p);
/* What a failed allocation of a pool's or client's structures returns:
 * TMEM_ENOSPC (counted in reject_budget_meta) when the budget refused it,
 * else TMEM_ENOMEM.  Consumes this thread's refusal flag. */
int tmem__meta_refused(tmem_store *s);
/* Looks a client up by id and takes a reference (NULL if none). */
struct tmem_client *tmem__client_get(tmem_store *s, int id);
void tmem__client_put(struct tmem_client *c);
/* Bytes the store holds now (data + metadata). */
uint64_t tmem__store_used(tmem_store *s);

/* ---- objmap.c ----------------------------------------------------------- */
shard *tmem__shard_of(tmem_pool *p, const tmem_oid *oid);
tmem_obj *tmem__obj_find_locked(shard *sh, const tmem_oid *oid);
/* Finds or creates; NULL on ENOMEM. */
tmem_obj *tmem__obj_get_locked(shard *sh, const tmem_oid *oid);
/* Unlinks and frees an object whose map is empty. */
void tmem__obj_free_locked(shard *sh, tmem_obj *o);
/* ---- pagemap.c ---------------------------------------------------------- */
/* Returns the value slot of index (valid until the map changes) or NULL. */
uint64_t *tmem__map_find(pagemap *m, uint32_t index);
/* Inserts or replaces; *old receives the previous value (0 if none).
 * Returns 0 or TMEM_ENOMEM (map unchanged). */
int tmem__map_set(tmem_store *s, pagemap *m, uint32_t index, uint64_t val,
                  uint64_t *old);
/* Removes index; returns the value (0 if none). */
uint64_t tmem__map_del(tmem_store *s, pagemap *m, uint32_t index);
/* Calls fn for every entry; removes those for which fn returns true (fn
 * has disposed of them).  Returns the number removed. */
uint64_t tmem__map_filter(tmem_store *s, pagemap *m,
                          bool (*fn)(uint64_t val, uint32_t index, void *arg),
                          void *arg);
void tmem__map_free(tmem_store *s, pagemap *m);

/* ---- page.c ------------------------------------------------------------- */
/* Removes one map value's page (blob release, LRU unlink, counters);
 * the slot must already be out of the map.  Needs the shard lock. */
void tmem__page_drop_locked(tmem_pool *p, uint64_t val);
/* Removes the pages of o owned by `only` (an ephemeral pool's client), or
 * all pages if only is NULL.  Returns pages removed. */
uint64_t tmem__obj_drop_locked(tmem_pool *p, tmem_obj *o,
                               struct tmem_client *only);
/* Removes every page of o and frees it.  Returns pages removed. */
uint64_t tmem__obj_destroy_locked(tmem_pool *p, shard *sh, tmem_obj *o);

/* ---- evict.c ------------------------------------------------------------ */
void tmem__lru_link(struct tmem_client *c, eph_node *n);
void tmem__lru_unlink(struct tmem_client *c, eph_node *n);
/* Evicts one ephemeral page, from the client furthest over its weighted
 * share (or from `only` if not NULL).  Returns 1 if a page went, 0 if none
 * could be. */
int tmem__evict_one(tmem_store *s, struct tmem_client *only);
/* Makes room for `need` more bytes under the budget: evicts ephemeral
 * pages (victim by weighted share), gives back dead pages, compacts.
 * Returns 0 when they fit, TMEM_ENOSPC when nothing more can be freed.
 * Takes evict_lock: the caller holds no store lock but its client's read
 * lock. */
int tmem__make_room(tmem_store *s, uint64_t need);
/* ---- maint.c ------------------------------------------------------------ */
/* A put's note to the maintenance thread: wakes it when the store is over
 * its high watermark (nothing when it does not run).  No lock needed. */
void tmem__maint_note(tmem_store *s);
/* Stops the thread (store destroy). */
void tmem__maint_stop(tmem_store *s);

/* ---- pool.c ------------------------------------------------------------- */
/* Destroys or leaves pool slot i of c; needs c->lock held for write. */
void tmem__pool_release_locked(struct tmem_client *c, int i);

#endif
