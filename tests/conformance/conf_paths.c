/*
 * The three paths of the conformance suite (conf.h): setting each up,
 * the tenant API and the admin calls on each, and their figures.  Owns
 * the environment of one check: the store (store path), the daemon and
 * its admin connection (tmemd path), and the tenants made, which it
 * closes at the end so LeakSanitizer sees nothing left.
 */
#include "conf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/tmemd_harness.h"
#include "client/conn_direct.h"
#include "proto/conn.h"

#define CF_MAX_TENANTS 8

struct cf_tenant {
    cf_env *e;
    tmem_client *cl; /* store path */
    tmem_conn *conn; /* embedded and tmemd paths */
    int id;
};

struct cf_env {
    enum cf_path p;
    uint64_t budget;
    tmem_store *store; /* store path */
    th_daemon d;       /* tmemd path */
    tmem__conn *admin; /* tmemd path */
    cf_tenant *tenants[CF_MAX_TENANTS];
    int ntenants;
};

static const char *const path_names[] = {"store", "embedded", "tmemd"};

enum cf_path cf_path_of(const cf_env *e)
{
    return e->p;
}

const char *cf_path_name(const cf_env *e)
{
    return path_names[e->p];
}

uint64_t cf_budget(const cf_env *e)
{
    return e->budget;
}

/* ---- setting up ---------------------------------------------------------- */

static void open_store(cf_env *e)
{
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.budget_bytes = e->budget;
    ASSERT_EQ(tmem_store_create(&cfg, &e->store), 0);
}

static void open_embedded(cf_env *e)
{
    char mib[32];
    ASSERT_EQ(e->budget % (1u << 20), 0); /* the variable is in MiB */
    snprintf(mib, sizeof mib, "%" PRIu64, e->budget >> 20);
    setenv("TMEM_EMBEDDED", "1", 1);
    setenv("TMEM_EMBEDDED_BUDGET_MIB", mib, 1);
}

static void open_tmemd(cf_env *e)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRIu64, e->budget);
    const char *extra[] = {"--budget", b, NULL};
    /* Under a budget, tenants talk over the socket: tmemd charges each
     * ring a tenant maps (~1 MiB, docs/tmemd.8) to the budget, which the
     * bare store has no counterpart of, and these runs compare the room
     * for pages across the paths.  Ring charging has its own tests
     * (tests/daemon/test_tmemd_ring_charge.c); unbudgeted runs keep the
     * ring. */
    if (e->budget)
        setenv("TMEM_RING", "0", 1);
    else
        unsetenv("TMEM_RING");
    th_start(&e->d, extra);
    e->admin = th_conn(&e->d);
    setenv("TMEM_EMBEDDED", "0", 1); /* a tenant must reach the daemon */
}

void cf_run(enum cf_path p, uint64_t budget, void (*fn)(cf_env *e))
{
    cf_env *e = calloc(1, sizeof *e);
    ASSERT_TRUE(e != NULL);
    e->p = p;
    e->budget = budget;
    printf("  path %s, budget %" PRIu64 "\n", path_names[p], budget);
    fflush(stdout);
    if (p == CF_STORE)
        open_store(e);
    else if (p == CF_EMBEDDED)
        open_embedded(e);
    else
        open_tmemd(e);
    fn(e);
    while (e->ntenants > 0)
        cf_tenant_close(e->tenants[e->ntenants - 1]);
    if (p == CF_STORE)
        tmem_store_destroy(e->store);
    if (p == CF_TMEMD) {
        ASSERT_TRUE(th_alive(&e->d)); /* the daemon never crashes */
        tmem__conn_close(e->admin);
        ASSERT_EQ(th_stop(&e->d), 0);
    }
    free(e);
}

/* ---- what a path cannot do ---------------------------------------------- */

static void skip(cf_env *e, const char *why, const char *what)
{
    static char msg[256];
    snprintf(msg, sizeof msg, "%s path: %s (%s)", cf_path_name(e), why,
             what);
    TEST_SKIP(msg);
}

void cf_need_admin(cf_env *e, const char *what)
{
    if (e->p == CF_EMBEDDED)
        skip(e, "an embedded connection has no administrator calls", what);
}

void cf_need_tenants(cf_env *e, int n, const char *what)
{
    if (e->p == CF_EMBEDDED && n > 1)
        skip(e, "each embedded connection is a store of its own: no "
                "second tenant to share one with", what);
}

void cf_need_conn(cf_env *e, const char *what)
{
    if (e->p == CF_STORE)
        skip(e, "<tmem/store.h> has no tmem_conn front ends", what);
}

void cf_need_daemon(cf_env *e, const char *what)
{
    if (e->p != CF_TMEMD)
        skip(e, "no daemon, so no transport to check", what);
}

/* ---- tenants ------------------------------------------------------------- */

cf_tenant *cf_tenant_new(cf_env *e)
{
    ASSERT_LT(e->ntenants, CF_MAX_TENANTS);
    ASSERT_TRUE(e->p != CF_EMBEDDED || e->ntenants == 0);
    cf_tenant *t = calloc(1, sizeof *t);
    ASSERT_TRUE(t != NULL);
    t->e = e;
    if (e->p == CF_STORE) {
        t->id = tmem_client_create(e->store, &t->cl);
        ASSERT_GE(t->id, 0);
    } else {
        ASSERT_EQ(tmem_connect(e->p == CF_TMEMD ? e->d.sock : NULL,
                               &t->conn),
                  0);
        ASSERT_EQ(tmem_conn_is_embedded(t->conn), e->p == CF_EMBEDDED);
        t->id = tmem_conn_client_id(t->conn);
    }
    e->tenants[e->ntenants++] = t;
    return t;
}

void cf_tenant_close(cf_tenant *t)
{
    cf_env *e = t->e;
    for (int i = 0; i < e->ntenants; i++)
        if (e->tenants[i] == t) {
            e->tenants[i] = e->tenants[--e->ntenants];
            break;
        }
    tmem_client_destroy(t->cl);
    tmem_disconnect(t->conn);
    free(t);
}

int cf_id(const cf_tenant *t)
{
    return t->id;
}

tmem_conn *cf_conn(cf_tenant *t)
{
    cf_need_conn(t->e, "tmem_conn");
    return t->conn;
}

int cf_pool_new(cf_tenant *t, const uint64_t uuid[2], uint32_t flags,
                uint32_t *out_flags)
{
    return t->cl ? tmem_pool_new(t->cl, uuid, flags, out_flags)
                 : tmem_conn_pool_new(t->conn, uuid, flags, out_flags);
}

int cf_pool_destroy(cf_tenant *t, int pool)
{
    return t->cl ? tmem_pool_destroy(t->cl, pool)
                 : tmem_conn_pool_destroy(t->conn, pool);
}

int cf_put(cf_tenant *t, int pool, const tmem_oid *oid, uint32_t index,
           const void *page)
{
    return t->cl ? tmem_page_put(t->cl, pool, oid, index, page)
                 : tmem_conn_put(t->conn, pool, oid, index, page);
}

int cf_get(cf_tenant *t, int pool, const tmem_oid *oid, uint32_t index,
           void *page)
{
    return t->cl ? tmem_page_get(t->cl, pool, oid, index, page)
                 : tmem_conn_get(t->conn, pool, oid, index, page);
}

int cf_flush(cf_tenant *t, int pool, const tmem_oid *oid, uint32_t index)
{
    return t->cl ? tmem_page_flush(t->cl, pool, oid, index)
                 : tmem_conn_flush_page(t->conn, pool, oid, index);
}

int cf_flush_obj(cf_tenant *t, int pool, const tmem_oid *oid)
{
    return t->cl ? tmem_object_flush(t->cl, pool, oid)
                 : tmem_conn_flush_object(t->conn, pool, oid);
}

/* ---- administration ------------------------------------------------------ */

int cf_set_weight(cf_env *e, int id, uint32_t weight)
{
    cf_need_admin(e, "set weight");
    return e->store ? tmem_store_set_weight(e->store, id, weight)
                    : tmem__conn_set_weight(e->admin, id, weight);
}

int cf_set_cap(cf_env *e, int id, uint64_t pages)
{
    cf_need_admin(e, "set cap");
    return e->store ? tmem_store_set_cap(e->store, id, pages)
                    : tmem__conn_set_cap(e->admin, id, pages);
}

int cf_freeze(cf_env *e, int id, bool on)
{
    cf_need_admin(e, on ? "freeze" : "thaw");
    return e->store ? tmem_store_freeze(e->store, id, on)
                    : tmem__conn_freeze(e->admin, id, on);
}

int cf_auth(cf_env *e, int id, const uint64_t uuid[2], bool on)
{
    cf_need_admin(e, "shared-pool authorisation");
    return e->store ? tmem_store_auth(e->store, id, uuid, on)
                    : tmem__conn_auth(e->admin, id, uuid, on);
}

int cf_kill(cf_env *e, int id)
{
    cf_need_admin(e, "destroy client");
    return e->store ? tmem_store_client_kill(e->store, id)
                    : tmem__conn_destroy_client(e->admin, id);
}

/* ---- figures ------------------------------------------------------------- */

/* The store a store path's figures come from. */
static tmem_store *store_of(cf_env *e)
{
    if (e->p == CF_STORE)
        return e->store;
    ASSERT_GT(e->ntenants, 0); /* the embedded store is the connection's */
    tmem_store *s = tmem__conn_store(e->tenants[0]->conn);
    ASSERT_TRUE(s != NULL);
    return s;
}

/* The number after "key": at or after from, or fails the check. */
static uint64_t json_u64(const char *from, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(from, pat);
    if (!p)
        tmem_test_fail(__FILE__, __LINE__, "no %s in the stats", key);
    return strtoull(p + strlen(pat), NULL, 10);
}

static char *daemon_json(cf_env *e)
{
    char *js = NULL;
    ASSERT_EQ(tmem__conn_stats_json(e->admin, &js), 0);
    return js;
}

void cf_stats_get(cf_env *e, cf_stats *out)
{
    if (e->p == CF_TMEMD) {
        char *js = daemon_json(e);
        const char *g = strstr(js, "\"global\":");
        ASSERT_TRUE(g != NULL);
        *out = (cf_stats){
            .budget = json_u64(g, "budget_bytes"),
            .used = json_u64(g, "used_bytes"),
            .data = json_u64(g, "data_bytes"),
            .meta = json_u64(g, "meta_bytes"),
            .eph_pages = json_u64(g, "eph_pages"),
            .pers_pages = json_u64(g, "pers_pages"),
            .evictions = json_u64(g, "evictions"),
            .reject_budget = json_u64(g, "reject_budget")};
        free(js);
        return;
    }
    tmem_global_stats g;
    ASSERT_EQ(tmem_store_stats(store_of(e), &g), 0);
    *out = (cf_stats){g.budget_bytes, g.used_bytes,  g.data_bytes,
                      g.meta_bytes,   g.eph_pages,   g.pers_pages,
                      g.evictions,    g.reject_budget};
}

uint64_t cf_client_eph(cf_env *e, int id)
{
    if (e->p != CF_TMEMD) {
        tmem_client_stats cs;
        ASSERT_EQ(tmem_store_client_stats(store_of(e), id, &cs), 0);
        return cs.eph_pages;
    }
    char *js = daemon_json(e), pat[48];
    snprintf(pat, sizeof pat, "{\"client_id\":%d,", id);
    const char *c = strstr(js, pat);
    ASSERT_TRUE(c != NULL);
    uint64_t n = json_u64(c, "eph_pages");
    free(js);
    return n;
}

uint64_t cf_check_budget(cf_env *e, const char *step, uint64_t n)
{
    cf_stats st;
    cf_stats_get(e, &st);
    ASSERT_U64_EQ(st.budget, e->budget);
    if (e->budget && st.used > e->budget)
        tmem_test_fail(__FILE__, __LINE__,
                       "%s path, %s %" PRIu64 ": used_bytes %" PRIu64
                       " > budget %" PRIu64,
                       cf_path_name(e), step, n, st.used, e->budget);
    return st.used;
}

/* ---- pages --------------------------------------------------------------- */

void cf_page(void *page, uint32_t seed, uint32_t index)
{
    th_fill(page, seed, index);
}

bool cf_page_is(const void *page, uint32_t seed, uint32_t index)
{
    return th_check(page, seed, index);
}
