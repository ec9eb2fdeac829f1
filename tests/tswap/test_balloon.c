/*
 * tswap as a balloon backend (lib/balloon/tswap_backend.h): the five
 * inputs a controller reads (cur = the resident target or the regions'
 * size, committed = pages used within the last 16 evictor intervals,
 * reserve = tswap's own pages, max = the regions' pages, frontswap =
 * pages held in the store), one controller tick applied (its target
 * becomes the resident target and the evictor follows it), and the
 * self-shrink bringing pages back.
 */
#include <string.h>

#include "../runner.h"
#include "balloon/controller.h"
#include "balloon/tswap_backend.h"
#include "tswap_testutil.h"

TEST(tswap_balloon_backend_and_one_tick)
{
    enum { N = 4096, USED = 1024 };
    tmem_conn *c = ts_embedded();
    tmem_tswap_config cfg = ts_config(0, false);
    cfg.interval_ms = 10000; /* one interval for the whole test */
    tmem_tswap *t = ts_create(c, &cfg);
    char *p;
    ASSERT_EQ(tmem_tswap_map(t, N * PG, (void **)&p), 0);
    ts_fill_n(p, USED, 61);

    struct tmem_balloon_tswap glue = {tmem_tswap_balloon_ops(), t};
    tmem_balloon_backend be;
    ASSERT_EQ(tmem_balloon_tswap_backend(&be, &glue), 0);
    ASSERT_STR_EQ(be.name, "tswap");
    tmem_balloon_input in;
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_EQ(in.max, N);
    ASSERT_EQ(in.cur, N); /* no target yet: all of it */
    ASSERT_EQ(in.committed, USED);
    ASSERT_GT(in.reserve, 0);
    ASSERT_LT(in.reserve, N);
    ASSERT_EQ(in.frontswap, 0);

    /* One tick: the tenant is far above its goal, the target comes down
     * (reserved_mb 1, a floor out of the way: min_usable_mb 1). */
    tmem_balloon b;
    tmem_balloon_init(&b, N, true);
    ASSERT_EQ(tmem_balloon_set(&b, "selfballoon_reserved_mb", "1", true, NULL),
              0);
    ASSERT_EQ(
        tmem_balloon_set(&b, "selfballoon_min_usable_mb", "1", true, NULL), 0);
    tmem_balloon_output out;
    tmem_balloon_tick(&b, &in, &out);
    ASSERT_TRUE(out.ballooned);
    ASSERT_LT(out.target, N);
    ASSERT_GE(out.target, USED);
    ASSERT_EQ(be.apply_target(be.self, 600), 0);
    ASSERT_EQ(ts_stats(t).target, 600);
    ASSERT_EQ(be.apply_target(be.self, out.target), 0);
    ASSERT_EQ(ts_stats(t).target, out.target);
    ts_evict_to(t, 600); /* what a smaller target does */
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_EQ(in.cur, 600);
    ASSERT_GE(in.frontswap, USED - 600);
    ASSERT_EQ(in.committed, USED); /* still the same interval */

    /* Self-shrink: bring 100 back. */
    uint64_t before = in.frontswap;
    ASSERT_EQ(be.shrink_frontswap(be.self, 0, 100), 100);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_LE(in.frontswap, before - 100);
    ASSERT_EQ(ts_check_n(p, USED, 61), -1);
    ASSERT_EQ(be.why(be.self), NULL);
    tmem_balloon_backend_close(&be);
    tmem_tswap_destroy(t);
    tmem_disconnect(c);
}
