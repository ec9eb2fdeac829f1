/*
 * The store's counters as Prometheus families (prom.h): tables of (field,
 * offset, type, help) over the store's stats structs, so a new counter is
 * one table line.  Global counters are tmem_<field>, per client
 * tmem_client_<field>{client,pid,uid}, per pool
 * tmem_pool_<field>{client,pid,uid,pool}; every family has its HELP and
 * TYPE and all its samples in one block (the clients' stats are read
 * first, then written family by family).
 */
#include "prom.h"
#include "tmemd.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { U64, U32, BOOL, ENUM, INT };
typedef struct field {
    const char *name;
    size_t off;
    enum kind kind;
    const char *type; /* "counter" or "gauge" */
    const char *help;
} field;

#define G(f, k, t, h)                                                          \
    {                                                                          \
#f, offsetof(tmem_global_stats, f), k, t, h                            \
    }
static const field gfields[] = {
    G(budget_bytes, U64, "gauge", "memory the store may use (0: no limit)"),
    G(used_bytes, U64, "gauge", "memory the store holds, data and metadata"),
    G(data_bytes, U64, "gauge", "compressed page data held, after dedup"),
    G(meta_bytes, U64, "gauge", "metadata held: indexes, tables, headers"),
    G(orig_bytes, U64, "gauge", "pages held times 4 KiB (uncompressed)"),
    G(eph_pages, U64, "gauge", "ephemeral pages held"),
    G(eph_pages_max, U64, "gauge", "most ephemeral pages held at once"),
    G(pers_pages, U64, "gauge", "persistent pages held"),
    G(zero_pages, U64, "gauge", "held pages zero or same-filled (no data)"),
    G(dedup_pages, U64, "gauge", "held pages sharing data with another"),
    G(unique_blobs, U64, "gauge", "distinct stored contents"),
    G(raw_pages, U64, "gauge", "held pages stored raw (compress badly)"),
    G(compress_poor, U64, "counter", "puts whose page compressed badly"),
    G(dedup_hits, U64, "counter", "puts that found their content stored"),
    G(dedup_unindexed, U64, "counter",
      "pages stored outside the dedup index (its lookup bound was hit)"),
    G(total_ops, U64, "counter", "operations run"),
    G(errored_ops, U64, "counter", "operations that failed"),
    G(alloc_failed, U64, "counter", "allocations that failed"),
    G(evictions, U64, "counter", "ephemeral pages evicted"),
    G(evict_attempts, U64, "counter", "eviction attempts"),
    G(evict_inline, U64, "counter",
      "evictions run inside a put or pool creation (budget full)"),
    G(evict_background, U64, "counter",
      "evictions run by the maintenance thread"),
    G(compact_background, U64, "counter",
      "compaction steps run by the maintenance thread"),
    G(reject_budget, U64, "counter",
      "puts refused: over the budget, nothing to evict"),
    G(reject_cap, U64, "counter", "puts refused: over a client's store cap"),
    G(reject_frozen, U64, "counter", "puts refused: client frozen"),
    G(reject_nomem, U64, "counter", "puts refused: allocation failure"),
    G(flushed_pools, U64, "counter", "pools destroyed"),
    G(clients, U32, "gauge", "clients in the store"),
    G(shared_pools, U32, "gauge", "shared pools"),
};
#define C(f, k, t, h)                                                          \
    {                                                                          \
#f, offsetof(tmem_client_stats, f), k, t, h                            \
    }
static const field cfields[] = {
    C(weight, U32, "gauge", "weight: share of the store"),
    C(cap_pages, U64, "gauge", "cap set by an admin, pages (0: none)"),
    C(compress, ENUM, "gauge", "codec: 0 none, 1 lz4, 2 zstd"),
    C(frozen, BOOL, "gauge", "1 while frozen: puts refused"),
    C(dead, BOOL, "gauge", "1 once destroyed by an admin"),
    C(eph_pages, U64, "gauge", "ephemeral pages it holds"),
    C(pers_pages, U64, "gauge", "persistent pages it holds"),
    C(data_bytes, U64, "gauge", "compressed bytes of its pages"),
    C(puts_good_pers, U64, "counter", "persistent puts stored"),
    C(gets_good_eph, U64, "counter", "ephemeral gets found"),
    C(gets_good_pers, U64, "counter", "persistent gets found"),
    C(puts_frozen, U64, "counter", "puts refused while frozen"),
    C(puts_cap, U64, "counter", "puts refused or evicted over its cap"),
    C(evicted, U64, "counter", "its ephemeral pages evicted"),
    C(npools, INT, "gauge", "pools it has"),
};
#define P(f, k, t, h)                                                          \
    {                                                                          \
#f, offsetof(tmem_pool_stats, f), k, t, h                              \
    }
static const field pfields[] = {
    P(flags, U32, "gauge", "pool flags (1 persistent, 2 shared)"),
    P(sharers, U32, "gauge", "clients in the pool"),
    P(pages, U64, "gauge", "pages in the pool"),
    P(pages_max, U64, "gauge", "most pages at once"),
    P(objects, U64, "gauge", "objects in the pool"),
    P(objects_max, U64, "gauge", "most objects at once"),
    P(puts, U64, "counter", "puts attempted"),
    P(puts_good, U64, "counter", "puts stored"),
    P(dup_puts_flushed, U64, "counter",
      "puts over a page that failed (old page removed)"),
    P(dup_puts_replaced, U64, "counter", "puts that replaced a page"),
    P(puts_nomem, U64, "counter", "puts refused for memory, budget or cap"),
    P(gets, U64, "counter", "gets"),
    P(gets_found, U64, "counter", "gets found"),
    P(flushes, U64, "counter", "page flushes"),
    P(flushes_found, U64, "counter", "page flushes that removed a page"),
    P(flush_objs, U64, "counter", "object flushes"),
    P(flush_objs_found, U64, "counter", "object flushes that found it"),
    P(evictions, U64, "counter", "ephemeral pages evicted from it"),
};
#define NF(a) (sizeof a / sizeof a[0])

static unsigned long long value_of(const void *base, const field *f)
{
    const char *p = (const char *)base + f->off;
    uint64_t u64;
    uint32_t u32;
    bool b;
    int i;
    switch (f->kind) {
    case U64:
        memcpy(&u64, p, sizeof u64);
        return u64;
    case U32:
        memcpy(&u32, p, sizeof u32);
        return u32;
    case BOOL:
        memcpy(&b, p, sizeof b);
        return b;
    case ENUM: {
        tmem_compress c;
        memcpy(&c, p, sizeof c);
        return (unsigned)c;
    }
    case INT:
        memcpy(&i, p, sizeof i);
        return (unsigned long long)(i < 0 ? 0 : i);
    }
    return 0;
}

static void family(tmemd_text *t, const char *prefix, const field *f)
{
    char name[96];
    snprintf(name, sizeof name, "%s%s", prefix, f->name);
    tmemd_family(t, name, f->type, f->help);
}

static void emit_global(tmemd_text *t, struct tmemd *d)
{
    tmem_global_stats g;
    tmem_store_stats(d->store, &g);
    for (size_t i = 0; i < NF(gfields); i++) {
        family(t, "tmem_", &gfields[i]);
        tmemd_put(t, "tmem_%s %llu\n", gfields[i].name,
                  value_of(&g, &gfields[i]));
    }
}

/* One client: its stats and its labels (client, pid, uid). */
struct one {
    tmem_client_stats st;
    char lab[96];
};

/* pid and uid of the live session of each client (0 when none). */
static void label(struct tmemd *d, struct one *c, int n)
{
    for (int i = 0; i < n; i++)
        snprintf(c[i].lab, sizeof c[i].lab, "client=\"%d\",pid=\"0\",uid=\"0\"",
                 c[i].st.client_id);
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_session *s = d->sessions; s; s = s->next)
        for (int i = 0; s->id >= 0 && i < n; i++)
            if (c[i].st.client_id == s->id)
                snprintf(c[i].lab, sizeof c[i].lab,
                         "client=\"%d\",pid=\"%d\",uid=\"%u\"", s->id,
                         (int)s->pid, (unsigned)s->uid);
    pthread_mutex_unlock(&d->lock);
}

/* The clients' stats, read once; *n of them (malloc'd). */
static struct one *clients(struct tmemd *d, int *n)
{
    int ids[TMEMD_MAX_SESSIONS];
    int k = tmem_store_list_clients(d->store, ids, TMEMD_MAX_SESSIONS);
    if (k > TMEMD_MAX_SESSIONS)
        k = TMEMD_MAX_SESSIONS;
    struct one *c = malloc(sizeof *c * (size_t)(k > 0 ? k : 1));
    *n = 0;
    for (int i = 0; c && i < k; i++)
        if (tmem_store_client_stats(d->store, ids[i], &c[*n].st) == 0)
            (*n)++;
    if (c)
        label(d, c, *n);
    return c;
}

static void emit_clients(tmemd_text *t, struct tmemd *d)
{
    int n;
    struct one *c = clients(d, &n);
    if (!c) {
        t->oom = true;
        return;
    }
    for (size_t f = 0; n && f < NF(cfields); f++) {
        family(t, "tmem_client_", &cfields[f]);
        for (int i = 0; i < n; i++)
            tmemd_put(t, "tmem_client_%s{%s} %llu\n", cfields[f].name, c[i].lab,
                      value_of(&c[i].st, &cfields[f]));
    }
    int pools = 0;
    for (int i = 0; i < n; i++)
        pools += c[i].st.npools;
    for (size_t f = 0; pools && f < NF(pfields); f++) {
        family(t, "tmem_pool_", &pfields[f]);
        for (int i = 0; i < n; i++)
            for (int p = 0; p < c[i].st.npools && p < TMEM_MAX_POOLS; p++)
                tmemd_put(t, "tmem_pool_%s{%s,pool=\"%d\"} %llu\n",
                          pfields[f].name, c[i].lab, c[i].st.pools[p].pool_id,
                          value_of(&c[i].st.pools[p], &pfields[f]));
    }
    free(c);
}

void tmemd_prom_store(tmemd_text *t, struct tmemd *d)
{
    emit_global(t, d);
    emit_clients(t, d);
}
