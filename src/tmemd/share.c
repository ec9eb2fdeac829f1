/*
 * The default persistent cap: each tenant's weighted share of the budget.
 *
 * Of the live tenants that hold a persistent pool (a tenant: every session
 * of one uid, cgroup and name, tenant.c), tenant t may keep
 *
 *     cap(t) = (budget - budget / 32) / PAGE_COST * weight(t) / W
 *              - ceil(rings(t) / PAGE_COST)
 *
 * persistent pages over all of its sessions together (W: the sum of their
 * weights; weight(t): the largest of its sessions'; rings(t): the ring
 * memory of those sessions, charged to their clients in the store, so a
 * tenant's rings come out of its own share; at least 1), so that together
 * they never hold more than the budget: a tenant that puts persistent
 * pages without end stops at its share, however many connections it
 * opens, and every other one still gets its own.  A page counts PAGE_COST
 * bytes, what one stored raw takes with its record and index (4096 and
 * ~170 bytes, rounded up to a 16th), and a 32nd of the budget is left for
 * the store's own tables, so a share holds whatever the pages contain
 * (compressible pages take less: their owner then holds less than its
 * share of the bytes, never more).  A tenant that holds all the weight
 * (one alone, say) has no default cap: the whole budget is its share.  No
 * budget (unlimited), no default caps.  Only the rings of sessions with
 * a persistent pool count: a connection that holds none (tmem list's,
 * an ephemeral-only tenant's) moves no one's share as it comes and goes.
 *
 * The policy's pcap (tenant.c, s->pol) replaces the share of the tenants
 * it applies to (0: none; their rings are not taken off it); they still
 * weigh in W.  An admin's SET_CAP (tmem
 * set ID cap N) replaces both for that client, for good: the store's cap
 * then applies (0 = none), to its ephemeral and persistent pages as the
 * store defines it.  The default itself counts persistent pages only:
 * ephemeral pages are the store's to evict by weighted share, and capping
 * them would waste idle memory.
 *
 * Caps are recomputed when a client makes its first persistent pool or
 * drops its last, when one with a persistent pool sets up its ring, when
 * a session ends, when an
 * admin changes a weight or kills a client, and after a policy reload.  A
 * tenant over a smaller new share keeps its pages (persistent pages are
 * never taken) but puts no new ones.
 *
 * The check: the store counts each client's persistent pages, but reading
 * them takes its locks, so the daemon looks only when the tenant's puts
 * since its last look could have reached the cap: a tenant far from its
 * cap pays an atomic add per put.  A look sums the pages of the tenant's
 * sessions.  A refused put removes any old page at that name (a failed
 * put never leaves old data readable), as the store's own cap does.
 */
#include "tmemd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_COST (TMEM_PAGE_SIZE + TMEM_PAGE_SIZE / 16)

/* One session with a persistent pool, as update() sees it. */
struct member {
    int id;
    int grp;        /* its tenant's index among the groups */
    bool admin_cap; /* no default: the admin's cap */
    bool pcap_set;  /* the policy's pcap instead of the share */
    uint64_t pcap;
    uint64_t ring;   /* its ring's bytes */
    uint32_t weight; /* 0 once killed */
};

/* A tenant, as update() sees it. */
struct group {
    uint32_t weight; /* the largest of its members' */
    bool pcap_set;
    uint64_t rings; /* its members' */
    uint64_t cap;
};

/* The sessions with a persistent pool, *n of them, in *ng tenants
 * (malloc'd, *n + 1 room). */
static struct member *members(struct tmemd *d, int *n, int *ng)
{
    pthread_mutex_lock(&d->lock);
    struct member *m = malloc(sizeof *m * (size_t)(d->nsessions + 1));
    *n = *ng = 0;
    for (struct tmemd_tenant *t = d->tenants; t; t = t->next)
        t->grp = -1;
    for (struct tmemd_session *s = d->sessions; m && s; s = s->next) {
        if (s->id < 0 || !s->tenant || !atomic_load(&s->pers_pools))
            continue;
        if (s->tenant->grp < 0)
            s->tenant->grp = (*ng)++;
        m[(*n)++] = (struct member){
            .id = s->id,
            .grp = s->tenant->grp,
            .admin_cap = s->cap_admin,
            .pcap_set = s->pol.set & TMEMD_SET_PCAP,
            .pcap = s->pol.pcap,
            .ring = s->has_ring ? s->ring.lay.size : 0,
        };
    }
    pthread_mutex_unlock(&d->lock);
    return m;
}

static uint64_t cap_of(uint64_t budget, uint32_t w, uint64_t all,
                       uint64_t rings)
{
    if (!budget || w == 0 || w >= all)
        return 0; /* no budget, or all the weight: the budget is the cap */
    uint64_t pages = (budget - budget / 32) / PAGE_COST;
    uint64_t c = (uint64_t)((unsigned __int128)pages * w / all);
    uint64_t r = (rings + PAGE_COST - 1) / PAGE_COST;
    return c > r ? c - r : 1;
}

void tmemd_share_update(struct tmemd *d)
{
    pthread_mutex_lock(&d->share_lock);
    int n, ng;
    struct member *m = members(d, &n, &ng);
    struct group *g = calloc((size_t)ng + 1, sizeof *g);
    tmem_client_stats *cs = malloc(sizeof *cs);
    tmem_global_stats gs;
    if (!m || !g || !cs || tmem_store_stats(d->store, &gs) < 0)
        goto out;
    for (int i = 0; i < n; i++) {
        struct group *t = &g[m[i].grp];
        if (tmem_store_client_stats(d->store, m[i].id, cs) == 0 && !cs->dead)
            m[i].weight = cs->weight;
        if (m[i].weight > t->weight)
            t->weight = m[i].weight;
        t->pcap_set |= m[i].pcap_set;
        t->rings += m[i].ring;
        t->cap = m[i].pcap_set ? m[i].pcap : t->cap;
    }
    uint64_t all = 0;
    for (int k = 0; k < ng; k++)
        all += g[k].weight;
    for (int k = 0; k < ng; k++)
        if (!g[k].pcap_set)
            g[k].cap = cap_of(gs.budget_bytes, g[k].weight, all, g[k].rings);
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_session *s = d->sessions; s; s = s->next) {
        uint64_t cap = 0;
        for (int i = 0; i < n; i++)
            if (m[i].id == s->id && !m[i].admin_cap)
                cap = g[m[i].grp].cap;
        atomic_store(&s->pers_cap, cap);
    }
    pthread_mutex_unlock(&d->lock);
out:
    free(cs);
    free(g);
    free(m);
    pthread_mutex_unlock(&d->share_lock);
}

void tmemd_share_pool_new(struct tmemd_session *s, int pool, uint32_t flags)
{
    uint32_t bit = 1u << pool, was;
    if (flags & TMEM_POOL_PERSIST)
        was = atomic_fetch_or(&s->pers_pools, bit);
    else
        was = atomic_fetch_and(&s->pers_pools, ~bit);
    if (!was != !atomic_load(&s->pers_pools))
        tmemd_share_update(s->d); /* it joined or left the sharers */
}

void tmemd_share_pool_gone(struct tmemd_session *s, int pool)
{
    uint32_t bit = 1u << pool;
    if (atomic_fetch_and(&s->pers_pools, ~bit) == bit)
        tmemd_share_update(s->d); /* its last persistent pool */
}

int tmemd_share_set_cap(struct tmemd *d, int client_id, uint64_t pages)
{
    pthread_mutex_lock(&d->share_lock);
    int rc = tmem_store_set_cap(d->store, client_id, pages);
    if (rc == 0) {
        pthread_mutex_lock(&d->lock);
        for (struct tmemd_session *s = d->sessions; s; s = s->next)
            if (s->id == client_id) {
                s->cap_admin = true;
                atomic_store(&s->pers_cap, 0);
            }
        pthread_mutex_unlock(&d->lock);
    }
    pthread_mutex_unlock(&d->share_lock);
    return rc;
}

/* The persistent pages the store holds now for s's tenant: the sum over
 * its sessions (their ids copied under tmemd.lock, the store asked
 * without it). */
static uint64_t tenant_pers_pages(struct tmemd_session *s)
{
    struct tmemd *d = s->d;
    int ids[64], *id = ids, n = 0, cap = 64;
    pthread_mutex_lock(&d->lock);
    if (d->nsessions > cap && (id = malloc(sizeof *id * (size_t)d->nsessions)))
        cap = d->nsessions;
    else
        id = ids;
    for (struct tmemd_session *o = d->sessions; o && n < cap; o = o->next)
        if (o->tenant == s->tenant && o->id >= 0)
            id[n++] = o->id;
    pthread_mutex_unlock(&d->lock);
    uint64_t pages = 0;
    tmem_client_stats cs;
    for (int i = 0; i < n; i++)
        if (tmem_store_client_stats(d->store, id[i], &cs) == 0)
            pages += cs.pers_pages;
    if (id != ids)
        free(id);
    return pages;
}

int tmemd_share_check(struct tmemd_session *s, int32_t pool,
                      const uint64_t oid[3], uint32_t index)
{
    struct tmemd_tenant *t = s->tenant; /* set at hello, before any put */
    if (pool < 0 || pool >= TMEM_MAX_POOLS || !t ||
        !(atomic_load_explicit(&s->pers_pools, memory_order_relaxed) &
          (1u << pool)))
        return 0;
    uint64_t cap = atomic_load_explicit(&s->pers_cap, memory_order_relaxed);
    if (!cap)
        return 0;
    uint64_t puts = atomic_fetch_add(&t->pers_puts, 1) + 1;
    if (atomic_load(&t->pers_seen) + puts <= cap)
        return 0; /* cannot have reached it since the last look */
    uint64_t now = tenant_pers_pages(s);
    atomic_store(&t->pers_seen, now);
    atomic_store(&t->pers_puts, 1);
    if (now < cap)
        return 0;
    tmem_oid o;
    memcpy(o.oid, oid, sizeof o.oid);
    tmem_page_flush(s->client, pool, &o, index);
    bool first = !atomic_exchange(&t->cap_logged, true);
    if (tmemd_refuse(s->d, TMEMD_R_PERSISTENT_CAP) && first)
        tmemd_log("client %d (pid %d uid %u%s%s): persistent puts refused: "
                  "%llu pages, its tenant's cap",
                  s->id, (int)s->pid, (unsigned)s->uid,
                  s->name[0] ? " name " : "", s->name, (unsigned long long)cap);
    return -ENOSPC;
}
