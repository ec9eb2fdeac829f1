/*
 * The conformance suite's harness: one set of checks, written against the
 * tenant API, run on each of the three ways a tenant reaches a store:
 *
 *   store     the embedded store itself (<tmem/store.h>): a tmem_store,
 *             one tmem_client per tenant, admin calls made directly;
 *   embedded  tmem_connect with TMEM_EMBEDDED=1 (<tmem/client.h>): a
 *             store of the connection's own, budget from
 *             TMEM_EMBEDDED_BUDGET_MIB; one tenant, no admin calls;
 *   tmemd     tmem_connect to a real tmemd started for the check (the
 *             tests/lib harness), tenants as connections, admin calls
 *             over an admin connection as the tmem CLI makes them.
 *
 * A check is written once (CF_CHECK) and becomes three tests,
 * <check>__store, <check>__embedded, <check>__tmemd, so the three runs
 * sit side by side in the output and must agree: every check asserts the
 * same outcomes on every path.  Where a path cannot run a check (admin
 * calls or a second tenant on the embedded connection; tmem_conn front
 * ends on the bare store), the check ends as skipped and says why, by
 * name (cf_need_*).
 *
 * Figures (used bytes, budget, pages, per-client pages) come from
 * tmem_store_stats on the store paths and from the daemon's STATS_JSON
 * through tmemd.
 */
#ifndef TMEM_TEST_CONF_H
#define TMEM_TEST_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tmem/client.h>
#include <tmem/store.h>

#include "../runner.h"

enum cf_path { CF_STORE, CF_EMBEDDED, CF_TMEMD };

typedef struct cf_env cf_env;
typedef struct cf_tenant cf_tenant;

/* Defines check `name` (body: void (cf_env *e)) run on all three paths,
 * with a budget of `budget` bytes (0: none). */
#define CF_CHECK(name, budget)                                               \
    static void cf_##name(cf_env *e);                                        \
    TEST(name##__store) { cf_run(CF_STORE, budget, cf_##name); }             \
    TEST(name##__embedded) { cf_run(CF_EMBEDDED, budget, cf_##name); }       \
    TEST(name##__tmemd) { cf_run(CF_TMEMD, budget, cf_##name); }             \
    static void cf_##name(cf_env *e)

/* Sets up path p with a budget (bytes; 0 none), runs fn, tears down. */
void cf_run(enum cf_path p, uint64_t budget, void (*fn)(cf_env *e));
enum cf_path cf_path_of(const cf_env *e);
const char *cf_path_name(const cf_env *e);
uint64_t cf_budget(const cf_env *e);

/* ---- what a path can do: end the check as skipped, by name ----------- */

/* The check needs administrator calls (`what` says which). */
void cf_need_admin(cf_env *e, const char *what);
/* The check needs n tenants of one store. */
void cf_need_tenants(cf_env *e, int n, const char *what);
/* The check needs the tmem_conn front ends (batches, cleancache,
 * frontswap). */
void cf_need_conn(cf_env *e, const char *what);
/* The check is about tmemd's own transport (the socket data path). */
void cf_need_daemon(cf_env *e, const char *what);

/* ---- tenants: the tenant API on each path ---------------------------- */

cf_tenant *cf_tenant_new(cf_env *e); /* fails the check on error */
void cf_tenant_close(cf_tenant *t);
int cf_id(const cf_tenant *t);
/* The tenant's tmem_conn (embedded and tmemd paths). */
tmem_conn *cf_conn(cf_tenant *t);

int cf_pool_new(cf_tenant *t, const uint64_t uuid[2], uint32_t flags,
                uint32_t *out_flags);
int cf_pool_destroy(cf_tenant *t, int pool);
int cf_put(cf_tenant *t, int pool, const tmem_oid *oid, uint32_t index,
           const void *page);
int cf_get(cf_tenant *t, int pool, const tmem_oid *oid, uint32_t index,
           void *page);
int cf_flush(cf_tenant *t, int pool, const tmem_oid *oid, uint32_t index);
int cf_flush_obj(cf_tenant *t, int pool, const tmem_oid *oid);

/* ---- administration (cf_need_admin first) ----------------------------- */

int cf_set_weight(cf_env *e, int id, uint32_t weight);
int cf_set_cap(cf_env *e, int id, uint64_t pages);
int cf_freeze(cf_env *e, int id, bool on);
int cf_auth(cf_env *e, int id, const uint64_t uuid[2], bool on);
int cf_kill(cf_env *e, int id);

/* ---- figures ---------------------------------------------------------- */

typedef struct cf_stats {
    uint64_t budget, used, data, meta;
    uint64_t eph_pages, pers_pages, evictions, reject_budget;
} cf_stats;

void cf_stats_get(cf_env *e, cf_stats *out);
/* Ephemeral pages client id holds. */
uint64_t cf_client_eph(cf_env *e, int id);
/* Asserts used <= budget (when there is one); returns used. */
uint64_t cf_check_budget(cf_env *e, const char *step, uint64_t n);

/* ---- pages ------------------------------------------------------------ */

/* A page from (seed, index): half its words vary, so it stays about a
 * page stored; never same-filled. */
void cf_page(void *page, uint32_t seed, uint32_t index);
bool cf_page_is(const void *page, uint32_t seed, uint32_t index);
static inline tmem_oid cf_oid(uint64_t a)
{
    return (tmem_oid){{a, 0x7e57, 0}};
}

#define CF_PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define CF_EPH TMEM_POOL_FLAGS(0)
#define CF_SHARED TMEM_POOL_FLAGS(TMEM_POOL_SHARED)

#endif
