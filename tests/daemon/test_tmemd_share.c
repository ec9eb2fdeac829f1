/*
 * The default persistent cap (tmemd's share.c): a tenant's weighted share
 * of the budget.  A tenant putting persistent pages without end stops at
 * its share (refused, counted, the old page at a refused name gone) while
 * another tenant still gets all of its own, over the ring or the socket;
 * ephemeral puts are not capped; weights move the shares; an admin's cap
 * (tmem set ID cap N) replaces the default; a tenant alone has no default
 * cap and fills the whole budget.  A tenant's ring memory is charged to
 * it and comes out of its share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmem/store.h>

#include "../runner.h"
#include "test_daemon_util.h"
#include "test_integ_common.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define EPH TMEM_POOL_FLAGS(0)
#define MIB (1u << 20)
/* share.c: the pages of raw data the caps of all tenants add up to */
#define PAGE_COST (TMEM_PAGE_SIZE + TMEM_PAGE_SIZE / 16)
#define PAGES(budget) (((budget) - (budget) / 32) / PAGE_COST)

/* The pages a tenant's ring (default entries) takes off its share. */
static long long ring_pages(void)
{
    tmem__ring_layout l;
    ASSERT_EQ(tmem__ring_layout_of(TMEM_RING_DEFAULT_ENTRIES, &l), 0);
    return (long long)((l.size + PAGE_COST - 1) / PAGE_COST);
}

static long long pers_cap(const th_daemon *d, tmem__conn *c)
{
    char name[96];
    snprintf(name, sizeof name,
             "tmemd_client_persistent_cap_pages{client=\"%d\"}",
             tmem__conn_client_id(c));
    return du_daemon_metric(d, name);
}

/* A page that compresses to a few bytes, unique by (seed, i). */
static void fill_small(void *page, uint32_t seed, uint32_t i)
{
    memset(page, (int)(seed & 0x7f), TMEM_PAGE_SIZE);
    memcpy(page, &i, sizeof i);
}

/* Puts pages seed/from.. (th_fill's, or fill_small's when seed has bit
 * 31) until one is refused (or max): how many went. */
static int put_until_refused(tmem__conn *c, int pool, uint32_t seed,
                             uint32_t from, uint32_t max, int *why)
{
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{seed, 0, 0}};
    for (uint32_t i = from; i < from + max; i++) {
        if (seed >> 31)
            fill_small(page, seed, i);
        else
            th_fill(page, seed, i);
        int rc = tmem__conn_put(c, pool, &o, i, page);
        if (rc != 1) {
            *why = rc;
            return (int)(i - from);
        }
    }
    *why = 1;
    return (int)max;
}

/* Another tenant (a name of its own: connections of one uid, cgroup and
 * name are one tenant, with one share), over the socket.  So is every
 * later connection of this test (TMEM_RING=0 stays): a ring is charged to
 * the budget the tenants fill, and a metric reader's would stay charged
 * until the daemon has seen it go. */
static tmem__conn *socket_tenant(const th_daemon *d)
{
    setenv("TMEM_RING", "0", 1); /* its data operations on the socket */
    tmem__conn *c = NULL;
    ASSERT_EQ(tmem__conn_open_named(d->sock, "socket", &c), 0);
    return c;
}

TEST(tmemd_share_persistent_flood_capped)
{
    th_daemon d;
    th_start(&d, (const char *const[]){"--budget", "4M", NULL});
    tmem__conn *a = th_conn(&d), *b = socket_tenant(&d);
    int pa = tmem__conn_pool_new(a, NULL, PERS, NULL);
    ASSERT_GE(pa, 0);
    ASSERT_EQ(pers_cap(&d, a), 0); /* alone: the whole budget is its share */
    int pb = tmem__conn_pool_new(b, NULL, PERS, NULL);
    ASSERT_GE(pb, 0);
    long long share = PAGES(4 * MIB) / 2, share_a = share - ring_pages();
    ASSERT_EQ(pers_cap(&d, a), share_a); /* its ring (b has none) */
    ASSERT_EQ(pers_cap(&d, b), share);
    /* a puts without end: it stops at its share, exactly */
    int why = 0, na = put_until_refused(a, pa, 1, 0, 4000, &why);
    ASSERT_EQ(why, -ENOSPC);
    ASSERT_EQ(na, share_a);
    ASSERT_EQ(du_refusals(&d, "persistent_cap"), 1);
    /* a refused put over a stored page takes the old page with it */
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{1, 0, 0}};
    th_fill(page, 9, 0);
    ASSERT_EQ(tmem__conn_put(a, pa, &o, 0, page), -ENOSPC);
    ASSERT_EQ(tmem__conn_get(a, pa, &o, 0, page), 0);
    ASSERT_EQ(du_refusals(&d, "persistent_cap"), 2);
    /* its ephemeral puts are not capped */
    int ea = tmem__conn_pool_new(a, NULL, EPH, NULL);
    ASSERT_EQ(th_put_range(a, ea, 3, 16), 16);
    /* b still gets its whole share, then stops there too */
    ASSERT_EQ(put_until_refused(b, pb, 2, 0, (uint32_t)share, &why), share);
    ASSERT_EQ(why, 1);
    ASSERT_EQ(put_until_refused(b, pb, 2, (uint32_t)share, 10, &why), 0);
    ASSERT_EQ(why, -ENOSPC);
    ASSERT_EQ(th_count_intact(b, pb, 2, (uint32_t)share), share);
    tmem_oid oa = {{1, 0, 0}};
    for (uint32_t i = 1; i < (uint32_t)na; i++) { /* a's pages intact */
        ASSERT_EQ(tmem__conn_get(a, pa, &oa, i, page), 1);
        ASSERT_TRUE(th_check(page, 1, i));
    }
    /* weights move the shares: b at 3, a gets a quarter */
    tmem__conn *admin = th_conn(&d);
    ASSERT_EQ(tmem__conn_set_weight(admin, tmem__conn_client_id(b), 3), 0);
    long long quarter_a = PAGES(4 * MIB) / 4 - ring_pages();
    ASSERT_EQ(pers_cap(&d, a), quarter_a > 0 ? quarter_a : 1); /* at least 1 */
    ASSERT_EQ(pers_cap(&d, b), PAGES(4 * MIB) * 3 / 4);
    /* an admin's cap replaces a's default: 0 lifts it */
    char id[16];
    snprintf(id, sizeof id, "%d", tmem__conn_client_id(a));
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "set", id, "cap", "0", NULL), 0);
    ASSERT_EQ(pers_cap(&d, a), 0);
    ASSERT_EQ(du_refusals(&d, "persistent_cap"), 3); /* a 2, b 1 */
    ASSERT_GT(put_until_refused(a, pa, 1, (uint32_t)na, 4000, &why), 0);
    ASSERT_EQ(why, -ENOSPC); /* the budget stops it now, not a cap */
    ASSERT_EQ(du_refusals(&d, "persistent_cap"), 3);
    ASSERT_GE(du_daemon_metric(&d, "tmem_reject_budget"), 1);
    tmem__conn_close(b); /* and b leaving leaves a's admin cap alone */
    ASSERT_EQ(pers_cap(&d, a), 0);
    tmem__conn_close(admin);
    tmem__conn_close(a);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_share_alone_fills_budget)
{
    th_daemon d;
    th_start(&d, (const char *const[]){"--budget", "2M", NULL});
    tmem__conn *a = th_conn(&d);
    int pa = tmem__conn_pool_new(a, NULL, PERS, NULL);
    int why = 0, n = put_until_refused(a, pa, 1u << 31, 0, 100000, &why);
    ASSERT_EQ(why, -ENOSPC);
    char *pr = du_prometheus(&d);
    long long used = du_metric(pr, "tmem_used_bytes");
    printf("  alone in 2 MiB: %d persistent pages, %lld bytes used\n", n, used);
    /* compressible pages: many more than a raw budget's worth, and it
     * was the budget that stopped them, not a cap */
    ASSERT_EQ(pers_cap(&d, a), 0);
    ASSERT_GT(n, 4 * (2 * MIB / TMEM_PAGE_SIZE));
    ASSERT_GE(used, 2 * MIB / 100 * 95);
    ASSERT_GE(du_metric(pr, "tmem_reject_budget"), 1);
    ASSERT_EQ(du_metric(pr, "tmemd_refusals_total{reason=\"persistent_cap\"}"),
              0);
    free(pr);
    unsigned char page[TMEM_PAGE_SIZE], want[TMEM_PAGE_SIZE];
    tmem_oid o = {{1u << 31, 0, 0}};
    for (uint32_t i = 0; i < (uint32_t)n; i += 97) {
        fill_small(want, 1u << 31, i);
        ASSERT_EQ(tmem__conn_get(a, pa, &o, i, page), 1);
        ASSERT_MEM_EQ(page, want, TMEM_PAGE_SIZE);
    }
    tmem__conn_close(a);
    ASSERT_EQ(th_stop(&d), 0);
}
