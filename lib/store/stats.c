/*
 * Statistics: the counters of xl tmem-list (global, client, pool) and ours,
 * as structs and as one JSON document.
 *
 * Counters are relaxed atomics: a snapshot is consistent per counter, not
 * across counters (the same holds for the original).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/mem.h"
#include "store_internal.h"

int tmem_store_stats(tmem_store *s, tmem_global_stats *out)
{
    tmem_blobstore_stats bs;
    tmem__blobstore_stats(s->blobs, &bs);
    memset(out, 0, sizeof *out);
    out->budget_bytes = tmem__acct_limit(&s->acct);
    /* the account holds every byte (acct.h); data is what is not meta */
    out->used_bytes = tmem__acct_used(&s->acct);
    out->data_bytes = bs.data_bytes < out->used_bytes ? bs.data_bytes
                                                      : out->used_bytes;
    out->meta_bytes = out->used_bytes - out->data_bytes;
    out->eph_pages = cnt_get(&s->st.eph_pages);
    out->eph_pages_max = cnt_get(&s->st.eph_pages_max);
    out->pers_pages = cnt_get(&s->st.pers_pages);
    out->orig_bytes = (out->eph_pages + out->pers_pages) * TMEM_PAGE_SIZE;
    out->zero_pages = cnt_get(&s->st.zero_pages);
    out->dedup_pages = bs.refs > bs.blobs ? bs.refs - bs.blobs : 0;
    out->unique_blobs = bs.blobs;
    out->raw_pages = bs.raw_blobs;
    out->compress_poor = bs.compress_poor;
    out->dedup_hits = bs.dedup_hits;
    out->dedup_unindexed = bs.dedup_unindexed;
    out->evict_inline = cnt_get(&s->st.evict_inline);
    out->evict_background = cnt_get(&s->st.evict_background);
    out->compact_background = cnt_get(&s->st.compact_background);
    out->total_ops = scnt_get(&s->st.total_ops);
    out->errored_ops = cnt_get(&s->st.errored_ops);
    out->alloc_failed = cnt_get(&s->st.alloc_failed) + bs.alloc_failed;
    out->evictions = cnt_get(&s->st.evictions);
    out->evict_attempts = cnt_get(&s->st.evict_attempts);
    out->reject_budget = cnt_get(&s->st.reject_budget);
    out->reject_cap = cnt_get(&s->st.reject_cap);
    out->reject_frozen = cnt_get(&s->st.reject_frozen);
    out->reject_nomem = cnt_get(&s->st.reject_nomem);
    out->flushed_pools = cnt_get(&s->st.flushed_pools);
    pthread_rwlock_rdlock(&s->clients_lock);
    out->clients = (uint32_t)s->nclients;
    pthread_rwlock_unlock(&s->clients_lock);
    pthread_mutex_lock(&s->shared_lock);
    for (tmem_pool *p = s->shared_pools; p; p = p->next_shared)
        out->shared_pools++;
    pthread_mutex_unlock(&s->shared_lock);
    return 0;
}

static void pool_stats(tmem_pool *p, int id, tmem_pool_stats *o)
{
    const pool_counters *c = &p->st;
    memset(o, 0, sizeof *o);
    o->pool_id = id;
    o->flags = p->flags;
    memcpy(o->uuid, p->uuid, sizeof o->uuid);
    pthread_mutex_lock(&p->store->shared_lock);
    o->sharers = (uint32_t)p->sharers;
    pthread_mutex_unlock(&p->store->shared_lock);
#define C(f) o->f = cnt_get((acnt *)&c->f)
    C(pages); C(pages_max); C(objects); C(objects_max);
    C(puts); C(puts_good); C(dup_puts_flushed); C(dup_puts_replaced);
    C(puts_nomem); C(gets); C(gets_found); C(flushes); C(flushes_found);
    C(flush_objs); C(flush_objs_found); C(evictions);
#undef C
}

int tmem_store_client_stats(tmem_store *s, int client_id,
                            tmem_client_stats *out)
{
    tmem_client *c = tmem__client_get(s, client_id);
    if (!c)
        return TMEM_ENODEV;
    memset(out, 0, sizeof *out);
    out->client_id = c->id;
    out->weight = atomic_load(&c->weight);
    out->cap_pages = atomic_load(&c->cap);
    out->compress = (tmem_compress)atomic_load(&c->compress);
    out->frozen = atomic_load(&c->frozen);
    out->dead = atomic_load(&c->dead);
    out->eph_pages = cnt_get(&c->eph_pages);
    out->pers_pages = cnt_get(&c->pers_pages);
    out->data_bytes = cnt_get(&c->data_bytes);
    out->puts_good_pers = cnt_get(&c->puts_good_pers);
    out->gets_good_eph = cnt_get(&c->gets_good_eph);
    out->gets_good_pers = cnt_get(&c->gets_good_pers);
    out->puts_frozen = cnt_get(&c->puts_frozen);
    out->puts_cap = cnt_get(&c->puts_cap);
    out->evicted = cnt_get(&c->evicted);
    out->extra_bytes = cnt_get(&c->extra_bytes);
    pthread_rwlock_rdlock(&c->lock);
    for (int i = 0; i < TMEM_MAX_POOLS; i++)
        if (c->pools[i])
            pool_stats(c->pools[i], i, &out->pools[out->npools++]);
    pthread_rwlock_unlock(&c->lock);
    tmem__client_put(c);
    return 0;
}

/* ---- JSON ----------------------------------------------------------------
 * A bounded appender: writes what fits, counts what the whole needs. */

typedef struct jbuf {
    char *buf;
    size_t cap, len;
} jbuf;

static void jprintf(jbuf *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void jprintf(jbuf *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = j->len < j->cap ? j->cap - j->len : 0;
    int n = vsnprintf(room ? j->buf + j->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        j->len += (size_t)n;
}

static void jnum(jbuf *j, const char *k, uint64_t v, bool comma)
{
    jprintf(j, "\"%s\":%" PRIu64 "%s", k, v, comma ? "," : "");
}

static void json_pool(jbuf *j, const tmem_pool_stats *p)
{
    jprintf(j, "{\"pool_id\":%d,\"persistent\":%s,\"shared\":%s,"
               "\"uuid\":\"%016" PRIx64 "%016" PRIx64 "\",",
            p->pool_id, (p->flags & TMEM_POOL_PERSIST) ? "true" : "false",
            (p->flags & TMEM_POOL_SHARED) ? "true" : "false", p->uuid[0],
            p->uuid[1]);
#define N(f) jnum(j, #f, p->f, true)
    N(sharers); N(pages); N(pages_max); N(objects); N(objects_max); N(puts);
    N(puts_good); N(dup_puts_flushed); N(dup_puts_replaced); N(puts_nomem);
    N(gets); N(gets_found); N(flushes); N(flushes_found); N(flush_objs);
    N(flush_objs_found);
#undef N
    jnum(j, "evictions", p->evictions, false);
    jprintf(j, "}");
}

static void json_client(jbuf *j, const tmem_client_stats *c)
{
    jprintf(j, "{\"client_id\":%d,\"compress\":\"%s\",\"frozen\":%s,"
               "\"dead\":%s,",
            c->client_id, tmem_compress_name(c->compress),
            c->frozen ? "true" : "false", c->dead ? "true" : "false");
#define N(f) jnum(j, #f, c->f, true)
    N(weight); N(cap_pages); N(eph_pages); N(pers_pages); N(data_bytes);
    N(puts_good_pers); N(gets_good_eph); N(gets_good_pers); N(puts_frozen);
    N(puts_cap); N(evicted); N(extra_bytes);
#undef N
    jprintf(j, "\"pools\":[");
    for (int i = 0; i < c->npools; i++) {
        json_pool(j, &c->pools[i]);
        jprintf(j, i + 1 < c->npools ? "," : "");
    }
    jprintf(j, "]}");
}

/* Ours beyond tmem_global_stats: pools and clients refused over the
 * budget, dead 4 KiB pages given back and waiting to be. */
static void json_more(jbuf *j, tmem_store *s)
{
    tmem_blobstore_stats bs;
    tmem__blobstore_stats(s->blobs, &bs);
    jnum(j, "reject_budget_meta", cnt_get(&s->st.reject_budget_meta), true);
    jnum(j, "pages_punched", bs.pages_punched, true);
    jnum(j, "pages_dead", bs.pages_dead, true);
}

static void json_global(jbuf *j, const tmem_global_stats *g)
{
#define N(f) jnum(j, #f, g->f, true)
    N(budget_bytes); N(used_bytes); N(data_bytes); N(meta_bytes);
    N(orig_bytes); N(eph_pages); N(eph_pages_max); N(pers_pages);
    N(zero_pages); N(dedup_pages); N(unique_blobs); N(raw_pages);
    N(compress_poor); N(dedup_hits); N(dedup_unindexed); N(total_ops);
    N(errored_ops); N(evict_inline); N(evict_background);
    N(compact_background);
    N(alloc_failed); N(evictions); N(evict_attempts); N(reject_budget);
    N(reject_cap); N(reject_frozen); N(reject_nomem); N(flushed_pools);
    N(clients);
#undef N
    jnum(j, "shared_pools", g->shared_pools, false);
}

int tmem_store_stats_json(tmem_store *s, char *buf, size_t cap)
{
    jbuf j = {buf, cap, 0};
    tmem_global_stats g;
    tmem_store_stats(s, &g);
    jprintf(&j, "{\"global\":{");
    json_more(&j, s);
    json_global(&j, &g);
    jprintf(&j, "},\"clients\":[");
    int cap_ids = tmem_store_list_clients(s, NULL, 0) + 16;
    int *ids = tmem__malloc((size_t)cap_ids * sizeof *ids);
    if (!ids)
        return TMEM_ENOMEM;
    int n = tmem_store_list_clients(s, ids, cap_ids);
    if (n > cap_ids)
        n = cap_ids; /* clients that arrived meanwhile wait for next time */
    for (int i = 0, first = 1; i < n; i++) {
        tmem_client_stats cs;
        if (tmem_store_client_stats(s, ids[i], &cs) < 0)
            continue; /* gone meanwhile */
        jprintf(&j, first ? "" : ",");
        first = 0;
        json_client(&j, &cs);
    }
    tmem__free(ids);
    jprintf(&j, "]}");
    if (cap)
        buf[j.len < cap ? j.len : cap - 1] = '\0';
    return j.len > INT32_MAX ? -E2BIG : (int)j.len;
}
