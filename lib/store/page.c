/*
 * The page operations: put, get, flush page, flush object.
 *
 * The expensive work — hashing, compressing, decompressing — runs with no
 * store lock but the client's read lock; a shard lock is held only to find
 * or swap a map slot.  A put builds the new content first, then swaps it in,
 * so a put over an existing page either replaces it or, when anything fails,
 * removes the old page (never leaves it readable after a failed put).
 *
 * Budget: a put makes room for what it may need before it starts
 * (tmem__make_room), reserves its index bytes, and every byte it then
 * takes is charged first; a refusal (-ENOSPC) on the way gives back what
 * the put took.  A NULL argument is -EINVAL before anything else.
 */
#include <string.h>

#include "store_internal.h"

/* Blob of a map value: persistent pools store the blob directly,
 * ephemeral pools an eph_node. */
static inline tmem_blob val_blob(const tmem_pool *p, uint64_t v)
{
    return p->persist ? (tmem_blob)v : ((eph_node *)v)->blob;
}

/* Accounting of a page coming (+1) or going (-1). */
static void account(tmem_pool *p, tmem_client *owner, tmem_blob b, int dir)
{
    tmem_store *s = p->store;
    uint64_t bytes = tmem__blob_size(s->blobs, b);
    acnt *cp = p->persist ? &owner->pers_pages : &owner->eph_pages;
    acnt *gp = p->persist ? &s->st.pers_pages : &s->st.eph_pages;
    if (dir > 0) {
        cnt_add(cp, 1);
        cnt_add(gp, 1);
        cnt_add(&owner->data_bytes, bytes);
        cnt_add(&p->st.pages, 1);
        cnt_max(&p->st.pages_max, cnt_get(&p->st.pages));
        if (!p->persist) {
            cnt_max(&s->st.eph_pages_max, cnt_get(gp));
            cnt_add(&s->st.eph_bytes, bytes);
        }
        if (TMEM_BLOB_IS_FILL(b))
            cnt_add(&s->st.zero_pages, 1);
    } else {
        cnt_sub(cp, 1);
        cnt_sub(gp, 1);
        cnt_sub(&owner->data_bytes, bytes);
        cnt_sub(&p->st.pages, 1);
        if (!p->persist)
            cnt_sub(&s->st.eph_bytes, bytes);
        if (TMEM_BLOB_IS_FILL(b))
            cnt_sub(&s->st.zero_pages, 1);
    }
}

void tmem__page_drop_locked(tmem_pool *p, uint64_t val)
{
    tmem_store *s = p->store;
    tmem_blob b = val_blob(p, val);
    tmem_client *owner = p->owner;
    if (!p->persist) {
        eph_node *n = (eph_node *)val;
        owner = n->owner;
        tmem__lru_unlink(owner, n);
        tmem__core_free(s, n);
    }
    account(p, owner, b, -1);
    tmem__blob_drop(s->blobs, b);
}

struct drop_arg {
    tmem_pool *p;
    tmem_client *only; /* drop only pages owned by this client, or all */
};

static bool drop_cb(uint64_t val, uint32_t index, void *arg)
{
    struct drop_arg *a = arg;
    (void)index;
    if (a->only && ((eph_node *)val)->owner != a->only)
        return false;
    tmem__page_drop_locked(a->p, val);
    return true;
}

uint64_t tmem__obj_drop_locked(tmem_pool *p, tmem_obj *o, tmem_client *only)
{
    struct drop_arg a = {p, only};
    return tmem__map_filter(p->store, &o->map, drop_cb, &a);
}

uint64_t tmem__obj_destroy_locked(tmem_pool *p, shard *sh, tmem_obj *o)
{
    uint64_t n = tmem__obj_drop_locked(p, o, NULL);
    tmem__obj_free_locked(sh, o);
    return n;
}

/* Looks up pool slot `pool` of c (caller holds c->lock for read). */
static tmem_pool *pool_of(tmem_client *c, int pool)
{
    if (pool < 0 || pool >= TMEM_MAX_POOLS || atomic_load(&c->dead))
        return NULL;
    return c->pools[pool];
}

/* Removes (pool, oid, index) if present; returns 1 if it was there. */
static int flush_one(tmem_pool *p, const tmem_oid *oid,
                     uint32_t index)
{
    shard *sh = tmem__shard_of(p, oid);
    int found = 0;
    pthread_mutex_lock(&sh->lock);
    tmem_obj *o = tmem__obj_find_locked(sh, oid);
    if (o) {
        uint64_t v = tmem__map_del(p->store, &o->map, index);
        if (v) {
            tmem__page_drop_locked(p, v);
            found = 1;
            if (o->map.count == 0)
                tmem__obj_free_locked(sh, o);
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return found;
}

/* A put that fails removes the old page (duplicate-put coherence). */
static int put_fail(tmem_pool *p, const tmem_oid *oid,
                    uint32_t index, int err)
{
    if (flush_one(p, oid, index))
        cnt_add(&p->st.dup_puts_flushed, 1);
    cnt_add(&p->store->st.errored_ops, 1);
    return err;
}

/* Cap check before a put: the client's own oldest ephemeral pages make
 * room first; when only persistent pages fill the cap, the put fails. */
static int cap_check(tmem_pool *p, tmem_client *c)
{
    uint64_t cap = atomic_load(&c->cap);
    if (!cap)
        return 0;
    while (cnt_get(&c->eph_pages) + cnt_get(&c->pers_pages) >= cap) {
        cnt_add(&c->puts_cap, 1);
        if (!cnt_get(&c->eph_pages) || tmem__evict_one(p->store, c) != 1) {
            cnt_add(&p->store->st.reject_cap, 1);
            return TMEM_ENOSPC;
        }
    }
    return 0;
}

/* Swaps the new value into the map under the shard lock. */
static int install(tmem_pool *p, tmem_client *c, const tmem_oid *oid,
                   uint32_t index, uint64_t val)
{
    shard *sh = tmem__shard_of(p, oid);
    uint64_t old = 0;
    pthread_mutex_lock(&sh->lock);
    tmem_obj *o = tmem__obj_get_locked(sh, oid);
    int r = o ? tmem__map_set(p->store, &o->map, index, val, &old)
              : TMEM_ENOMEM;
    if (r < 0) {
        if (o && o->map.count == 0)
            tmem__obj_free_locked(sh, o);
        pthread_mutex_unlock(&sh->lock);
        return r;
    }
    o->last_client = c->id;
    if (!p->persist) {
        eph_node *n = (eph_node *)val;
        n->obj = o;
        tmem__lru_link(c, n);
    }
    account(p, c, val_blob(p, val), +1);
    if (old) {
        tmem__page_drop_locked(p, old);
        cnt_add(&p->st.dup_puts_replaced, 1);
    }
    pthread_mutex_unlock(&sh->lock);
    return 0;
}

/* A put's content: a raw page, or one packed by the caller; and where to
 * say where it was stored (may be NULL). */
struct put_src {
    const void *page; /* raw page, or NULL */
    const tmem_packed *pk;
    const void *data;
    tmem__page_where *where;
};

/* What a put may need: the index entry's bytes, reserved up front (its
 * object, page-map chunk and LRU node), and the room made for the whole
 * put: two pages of record, a handle page, and that credit. */
#define PUT_CREDIT 1024u
#define PUT_ROOM (3u * TMEM_PAGE_SIZE + PUT_CREDIT)
#define PUT_RETRIES 2

/* Says where the page went (for a tenant reading its own arena). */
static void put_where(tmem_pool *p, tmem_blob b, tmem__page_where *w)
{
    *w = (tmem__page_where){0};
    if (TMEM_BLOB_IS_FILL(b))
        *w = (tmem__page_where){TMEM__WHERE_FILL, (uint32_t)(b >> 32), 0};
    else if (p->arena && tmem__blob_where(p->store->blobs, b, &w->handle,
                                          &w->gen))
        w->kind = TMEM__WHERE_DIRECT;
}

/* Stores the content (blob layer) under its name: in the client's private
 * arena for a persistent pool, else in its own segments of the common
 * arena. */
static int put_blob(tmem_pool *p, tmem_client *c, int pool,
                    const tmem_oid *oid, uint32_t index,
                    const struct put_src *src, tmem_blob *b)
{
    tmem_store *s = c->store;
    tmem_compress codec = (tmem_compress)atomic_load(&c->compress);
    tmem_arena_name nm = {.owner = (uint32_t)c->id,
                          .pool = (uint32_t)pool | p->inst << 8,
                          .index = index,
                          .flags = p->arena ? 0 : TMEM_ARENA_NM_OWNER};
    memcpy(nm.oid, oid->oid, sizeof nm.oid);
    if (src->page)
        return tmem__blob_put(s->blobs, p->arena, &nm, src->page, codec, b,
                              NULL);
    return tmem__blob_put_packed(s->blobs, p->arena, &nm, src->pk, src->data,
                                 codec, b, NULL);
}

/* A put's map value: the blob itself (persistent), or a new LRU node for
 * it (ephemeral).  Returns 0 or TMEM_ENOMEM. */
static int put_value(tmem_pool *p, tmem_client *c, uint32_t index,
                     tmem_blob b, uint64_t *val)
{
    *val = b;
    if (p->persist)
        return 0;
    eph_node *n = tmem__core_alloc(c->store, sizeof *n);
    if (!n)
        return TMEM_ENOMEM;
    n->blob = b;
    n->owner = c;
    n->index = index;
    *val = (uint64_t)n;
    return 0;
}

/* One attempt at a put: reserves its index bytes, stores the content,
 * installs it.  Returns 1, or an error having kept nothing it took:
 * TMEM_ENOSPC when the budget refused a byte, TMEM_ENOMEM, TMEM_EINVAL. */
static int put_once(tmem_pool *p, tmem_client *c, int pool,
                    const tmem_oid *oid, uint32_t index,
                    const struct put_src *src)
{
    tmem_store *s = c->store;
    tmem_blob b = 0;
    uint64_t val = 0;
    tmem__acct_take_refusal();
    if (tmem__acct_limit(&s->acct) &&
        tmem__acct_reserve(&s->acct, PUT_CREDIT) < 0)
        return TMEM_ENOSPC;
    int r = put_blob(p, c, pool, oid, index, src, &b);
    if (r == 0 && (r = put_value(p, c, index, b, &val)) < 0)
        tmem__blob_drop(s->blobs, b);
    if (r == 0 && src->where) /* now: once installed, it may be flushed */
        put_where(p, b, src->where);
    if (r == 0 && (r = install(p, c, oid, index, val)) < 0) {
        if (!p->persist)
            tmem__core_free(s, (void *)val);
        tmem__blob_drop(s->blobs, b);
        if (src->where)
            src->where->kind = TMEM__WHERE_NONE;
    }
    tmem__acct_release(&s->acct);
    if (r == TMEM_ENOMEM && tmem__acct_take_refusal())
        r = TMEM_ENOSPC;
    return r < 0 ? r : 1;
}

/* Counts a failed put by its reason and removes the old page. */
static int put_refused(tmem_pool *p, const tmem_oid *oid, uint32_t index,
                       int r)
{
    tmem_store *s = p->store;
    if (r != TMEM_EINVAL) {
        cnt_add(r == TMEM_ENOSPC ? &s->st.reject_budget
                                 : &s->st.reject_nomem, 1);
        cnt_add(&p->st.puts_nomem, 1);
    }
    return put_fail(p, oid, index, r); /* counts it errored */
}

/* A put: room is made first (evicting, giving back dead pages); a put the
 * budget refused anyway gets more room made and another try, until
 * nothing more can be freed. */
static int put_stored(tmem_pool *p, tmem_client *c, int pool,
                      const tmem_oid *oid, uint32_t index,
                      const struct put_src *src)
{
    tmem_store *s = c->store;
    tmem__maint_note(s);
    tmem__make_room(s, PUT_ROOM);
    int r = put_once(p, c, pool, oid, index, src);
    for (int t = 1; r == TMEM_ENOSPC && t <= PUT_RETRIES; t++) {
        if (tmem__make_room(s, (uint64_t)PUT_ROOM << t) < 0)
            break;
        r = put_once(p, c, pool, oid, index, src);
    }
    if (r < 0)
        return put_refused(p, oid, index, r);
    cnt_add(&p->st.puts_good, 1);
    if (p->persist)
        cnt_add(&c->puts_good_pers, 1);
    return 1;
}

static int put_src(tmem_client *c, int pool, const tmem_oid *oid,
                   uint32_t index, const struct put_src *src)
{
    tmem_store *s = c->store;
    int r;
    scnt_add(&s->st.total_ops, 1);
    if (!oid || !(src->page || (src->pk && src->data))) {
        cnt_add(&s->st.errored_ops, 1);
        return TMEM_EINVAL;
    }
    pthread_rwlock_rdlock(&c->lock);
    tmem_pool *p = pool_of(c, pool);
    if (!p) {
        cnt_add(&s->st.errored_ops, 1);
        r = TMEM_ENODEV;
        goto out_unlock;
    }
    cnt_add(&p->st.puts, 1);
    if (atomic_load(&c->frozen)) {
        cnt_add(&c->puts_frozen, 1);
        cnt_add(&s->st.reject_frozen, 1);
        r = put_fail(p, oid, index, TMEM_EFROZEN);
        goto out_unlock;
    }
    if ((r = cap_check(p, c)) < 0) {
        cnt_add(&p->st.puts_nomem, 1);
        r = put_fail(p, oid, index, r);
        goto out_unlock;
    }
    r = put_stored(p, c, pool, oid, index, src);
out_unlock:
    pthread_rwlock_unlock(&c->lock);
    return r;
}

int tmem_page_put(tmem_client *c, int pool, const tmem_oid *oid,
                  uint32_t index, const void *page)
{
    struct put_src src = {.page = page};
    return put_src(c, pool, oid, index, &src);
}

int tmem_page_put_packed(tmem_client *c, int pool, const tmem_oid *oid,
                         uint32_t index, const tmem_packed *pk,
                         const void *data, uint32_t hash)
{
    (void)hash; /* never trusted: the store hashes what it stores */
    struct put_src src = {.pk = pk, .data = data};
    return put_src(c, pool, oid, index, &src);
}

int tmem__page_put_where(tmem_client *c, int pool, const tmem_oid *oid,
                         uint32_t index, const tmem_packed *pk,
                         const void *data, tmem__page_where *where)
{
    struct put_src src = {.page = pk ? NULL : data, .pk = pk, .data = data,
                          .where = where};
    return put_src(c, pool, oid, index, &src);
}

/* Under the shard lock: takes the page out of (pool, oid, index) for an
 * exclusive get, or pins its blob for a shared one.  Returns 1 and sets
 * *b (a reference the caller releases), or 0 if absent. */
static int get_locked(tmem_pool *p, shard *sh,
                      const tmem_oid *oid, uint32_t index, void *page,
                      tmem_blob *b)
{
    tmem_obj *o = tmem__obj_find_locked(sh, oid);
    uint64_t *slot = o ? tmem__map_find(&o->map, index) : NULL;
    if (!slot)
        return 0;
    uint64_t v = *slot;
    if (!p->persist && !p->shared) {
        /* Exclusive: keep the node's blob reference for the caller. */
        eph_node *n = (eph_node *)v;
        tmem__map_del(p->store, &o->map, index);
        tmem__lru_unlink(n->owner, n);
        account(p, n->owner, n->blob, -1);
        *b = n->blob;
        tmem__core_free(p->store, n);
        if (o->map.count == 0)
            tmem__obj_free_locked(sh, o);
        return 1;
    }
    *b = val_blob(p, v);
    if (tmem__blob_ref(p->store->blobs, *b) < 0) {
        /* Count saturated: read under the lock instead. */
        int rr = tmem__blob_read(p->store->blobs, *b, page);
        *b = 0;
        if (rr < 0)
            return rr;
    }
    return 1;
}

/* tmem_page_get and tmem_page_get_packed: pk NULL decodes into page. */
static int page_get(tmem_client *c, int pool, const tmem_oid *oid,
                    uint32_t index, void *page, tmem_packed *pk)
{
    tmem_store *s = c->store;
    scnt_add(&s->st.total_ops, 1);
    if (!oid || !page) {
        cnt_add(&s->st.errored_ops, 1);
        return TMEM_EINVAL;
    }
    pthread_rwlock_rdlock(&c->lock);
    tmem_pool *p = pool_of(c, pool);
    int r = TMEM_ENODEV;
    if (!p) {
        cnt_add(&s->st.errored_ops, 1);
        goto out_unlock;
    }
    cnt_add(&p->st.gets, 1);
    shard *sh = tmem__shard_of(p, oid);
    tmem_blob b = 0;
    pthread_mutex_lock(&sh->lock);
    r = get_locked(p, sh, oid, index, page, &b);
    pthread_mutex_unlock(&sh->lock);
    if (r == 1 && b) {
        /* -EIO (corrupt data) or -ENOMEM (no decompression context for
         * this thread); an exclusive get's page is gone either way, which
         * ephemeral semantics allow. */
        int rr = pk ? tmem__blob_read_packed(s->blobs, b, page, pk)
                    : tmem__blob_read(s->blobs, b, page);
        if (rr < 0)
            r = rr;
        if (!p->persist && !p->shared) /* exclusive: the name's reference */
            tmem__blob_drop(s->blobs, b);
        else
            tmem__blob_release(s->blobs, b);
    } else if (r == 1 && pk) { /* get_locked decoded it already */
        *pk = (tmem_packed){.enc = TMEM_PACK_RAW, .len = TMEM_PAGE_SIZE};
    }
    if (r == 1) {
        cnt_add(&p->st.gets_found, 1);
        cnt_add(p->persist ? &c->gets_good_pers : &c->gets_good_eph, 1);
    } else if (r < 0) {
        cnt_add(&s->st.errored_ops, 1);
    }
out_unlock:
    pthread_rwlock_unlock(&c->lock);
    return r;
}

int tmem_page_get(tmem_client *c, int pool, const tmem_oid *oid,
                  uint32_t index, void *page)
{
    return page_get(c, pool, oid, index, page, NULL);
}

int tmem_page_get_packed(tmem_client *c, int pool, const tmem_oid *oid,
                         uint32_t index, void *buf, tmem_packed *pk)
{
    if (!pk)
        return TMEM_EINVAL;
    return page_get(c, pool, oid, index, buf, pk);
}

int tmem_page_flush(tmem_client *c, int pool, const tmem_oid *oid,
                    uint32_t index)
{
    tmem_store *s = c->store;
    scnt_add(&s->st.total_ops, 1);
    if (!oid) {
        cnt_add(&s->st.errored_ops, 1);
        return TMEM_EINVAL;
    }
    pthread_rwlock_rdlock(&c->lock);
    tmem_pool *p = pool_of(c, pool);
    int r = TMEM_ENODEV;
    if (p) {
        cnt_add(&p->st.flushes, 1);
        r = flush_one(p, oid, index);
        if (r)
            cnt_add(&p->st.flushes_found, 1);
    } else {
        cnt_add(&s->st.errored_ops, 1);
    }
    pthread_rwlock_unlock(&c->lock);
    return r;
}

int tmem_object_flush(tmem_client *c, int pool, const tmem_oid *oid)
{
    tmem_store *s = c->store;
    scnt_add(&s->st.total_ops, 1);
    if (!oid) {
        cnt_add(&s->st.errored_ops, 1);
        return TMEM_EINVAL;
    }
    pthread_rwlock_rdlock(&c->lock);
    tmem_pool *p = pool_of(c, pool);
    int r;
    if (!p) {
        cnt_add(&s->st.errored_ops, 1);
        r = TMEM_ENODEV;
        goto out_unlock;
    }
    cnt_add(&p->st.flush_objs, 1);
    shard *sh = tmem__shard_of(p, oid);
    pthread_mutex_lock(&sh->lock);
    tmem_obj *o = tmem__obj_find_locked(sh, oid);
    uint64_t n = 0;
    if (o)
        n = tmem__obj_destroy_locked(p, sh, o);
    pthread_mutex_unlock(&sh->lock);
    if (o)
        cnt_add(&p->st.flush_objs_found, 1);
    r = n > INT32_MAX ? INT32_MAX : (int)n;
out_unlock:
    pthread_rwlock_unlock(&c->lock);
    return r;
}
