/*
 * Ring memory charged to the tenant's account (tmemd's session.c,
 * tmem_client_charge): a tenant's ring is counted in the store's
 * used_bytes and in its client's extra_bytes from its setup, and given
 * back when the tenant goes; a budget with no room for a ring refuses it
 * (counted as ring_budget) and the tenant goes on over the socket; the
 * room for a ring is made as for a put, by evicting ephemeral pages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runner.h"
#include "test_tenant_util.h"

#define EPH TMEM_POOL_FLAGS(0)

static uint64_t ring_size(void)
{
    tmem__ring_layout l;
    ASSERT_EQ(tmem__ring_layout_of(TMEM_RING_DEFAULT_ENTRIES, &l), 0);
    return l.size;
}

static double used(const th_daemon *d)
{
    return tu_stat(d, "global", 0, "used_bytes");
}

/* Waits (up to 2 s) until client id is gone from the connections. */
static void await_gone(const th_daemon *d, int id)
{
    for (int i = 0; i < 200; i++) {
        tmem__json *root = tu_stats(d);
        bool there = tu_conn(root, id) != NULL;
        tmem__json_free(root);
        if (!there)
            return;
        usleep(10000);
    }
    tmem_test_fail(__FILE__, __LINE__, "client %d still connected", id);
}

TEST(tmemd_ring_charged_to_client)
{
    th_daemon d;
    th_start(&d, (const char *const[]){"--budget", "64M", NULL});
    double u0 = used(&d), r = (double)ring_size();
    tmem__conn *t = tu_open(&d, "ringed", false);
    tmem__conn *s = tu_open(&d, "plain", true);
    int id = tmem__conn_client_id(t), sid = tmem__conn_client_id(s);
    tmem__json *root = tu_stats(&d);
    const tmem__json *cn = tu_conn(root, id), *cl = tu_client(root, id);
    ASSERT_TRUE(cn && cl);
    ASSERT_EQ(tu_num(cn, "ring"), 1.0);
    ASSERT_EQ(tu_num(cn, "ring_bytes"), r);
    ASSERT_EQ(tu_num(cl, "extra_bytes"), r);
    ASSERT_EQ(tu_num(tu_client(root, sid), "extra_bytes"), 0.0);
    ASSERT_EQ(tu_num(tu_conn(root, sid), "ring_bytes"), 0.0);
    /* in used_bytes, beside two clients' own few structures */
    double u1 = tu_num(tmem__json_get(root, "global"), "used_bytes");
    printf("  ring %.0f bytes: used %.0f -> %.0f\n", r, u0, u1);
    ASSERT_GE(u1, u0 + r);
    ASSERT_LT(u1, u0 + r + 256 * 1024);
    tmem__json_free(root);
    /* the ring works as ever */
    int p = tmem__conn_pool_new(t, NULL, EPH, NULL);
    ASSERT_EQ(th_put_range(t, p, 7, 32), 32);
    tmem__conn_close(t);
    tmem__conn_close(s);
    await_gone(&d, id);
    await_gone(&d, sid);
    double u2 = used(&d);
    ASSERT_LT(u2, u0 + 256 * 1024); /* the ring's bytes given back, */
    ASSERT_GT(u2, u0 - r / 2);      /* once */
    ASSERT_EQ(tu_stat(&d, "refusals", 0, "ring_budget"), 0.0);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_ring_refused_by_budget)
{
    th_daemon d;
    /* 1 MiB: less than one ring of the default 256 entries (~1.02 MiB) */
    th_start(&d, (const char *const[]){"--budget", "1M", NULL});
    ASSERT_GT(ring_size(), 1u << 20);
    tmem__conn *t = tu_open(&d, "tiny", false); /* falls back: no ring */
    int id = tmem__conn_client_id(t);
    tmem__json *root = tu_stats(&d);
    ASSERT_EQ(tu_num(tu_conn(root, id), "ring"), 0.0);
    ASSERT_EQ(tu_num(tu_conn(root, id), "ring_bytes"), 0.0);
    ASSERT_EQ(tu_num(tu_client(root, id), "extra_bytes"), 0.0);
    ASSERT_EQ(tu_num(tmem__json_get(root, "refusals"), "ring_budget"), 1.0);
    ASSERT_LE(tu_num(tmem__json_get(root, "global"), "used_bytes"),
              (double)(1u << 20));
    tmem__json_free(root);
    /* it is served over the socket all the same */
    int p = tmem__conn_pool_new(t, NULL, EPH, NULL);
    ASSERT_GE(p, 0);
    ASSERT_EQ(th_put_range(t, p, 3, 16), 16);
    tmem__conn_close(t);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_ring_charge_evicts_ephemeral)
{
    th_daemon d;
    th_start(&d, (const char *const[]){"--budget", "2M", NULL});
    tmem__conn *fill = tu_open(&d, "fill", true);
    int p = tmem__conn_pool_new(fill, NULL, EPH, NULL);
    th_put_range(fill, p, 11, 600); /* more than the budget holds */
    double before = tu_stat(&d, "global", 0, "evictions");
    /* no room for a ring without evicting */
    ASSERT_GT(tu_stat(&d, "global", 0, "used_bytes"),
              2.0 * (1 << 20) - ring_size());
    tmem__conn *t = tu_open(&d, "late", false);
    int id = tmem__conn_client_id(t);
    ASSERT_EQ(tu_stat(&d, "conn", id, "ring_bytes"), (double)ring_size());
    ASSERT_GT(tu_stat(&d, "global", 0, "evictions"), before);
    ASSERT_LE(tu_stat(&d, "global", 0, "used_bytes"), 2.0 * (1 << 20));
    ASSERT_EQ(tu_stat(&d, "refusals", 0, "ring_budget"), 0.0);
    tmem__conn_close(t);
    tmem__conn_close(fill);
    ASSERT_EQ(th_stop(&d), 0);
}
