/*
 * The balloon: with a cache of 16 MiB filled by a scan and then only a
 * small hot set touched, the controller brings the capacity (and the
 * cache) well below the configured size; it never goes below the pinned
 * pages, in the controller step and in the page cache itself.
 */
#include <poll.h>
#include <stdlib.h>

#include "../runner.h"
#include "balloon/controller.h"
#include "sq_util.h"
#include "../../src/sqlite/tsq.h"

TEST(sqlite_balloon_shrinks_to_hot_set)
{
    char dir[64], db[128];
    sq_tmpdir(dir, sizeof dir);
    sq_file(db, sizeof db, dir, "hot.db");
    sq_install(NULL, 1, 50, 1);
    sqlite3 *h = sq_open(db, 4096);
    sq_exec(h, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE "
               "c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < "
               "30000) INSERT INTO t SELECT x, printf('%.*c', 600, 'h') FROM c");
    char *n = sq_text(h, "SELECT count(*), sum(length(v)) FROM t");
    free(n);
    tmem_sqlite_stats s;
    tmem_sqlite_stats_get(&s);
    ASSERT_EQ(s.max_pages, 4096u);
    ASSERT_GT(s.cache_pages, 3000u);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(h, "SELECT v FROM t WHERE k = ?", -1, &st,
                                 NULL),
              SQLITE_OK);
    for (int i = 0; i < 3000; i++) { /* ~3 s of a hot set of 200 rows */
        for (int k = 1; k <= 200; k++) {
            sqlite3_bind_int(st, 1, k * 131);
            ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
            sqlite3_reset(st);
        }
        tmem_sqlite_stats_get(&s);
        if (s.target_pages < 1024 && s.cache_pages <= s.target_pages + 8)
            break;
        poll(NULL, 0, 1);
    }
    sqlite3_finalize(st);
    ASSERT_LT(s.target_pages, 1024u);
    ASSERT_LE(s.cache_pages, s.target_pages + 8);
    ASSERT_GE(s.target_pages, 200u); /* the hot set's pages stay */
    ASSERT_GT(s.cc_puts, 2000u);     /* the cold pages went to tmem */
    sqlite3_close(h);
}

TEST(sqlite_balloon_step_never_below_pinned)
{
    tmem_balloon b;
    tmem_balloon_init(&b, 1000, true);
    tmem_balloon_disable(&b, false, true);
    tmem_balloon_set(&b, "selfballoon_min_usable_mb", "1", true, NULL);
    uint64_t cur = 1000;
    for (int i = 0; i < 50; i++)
        cur = tsq_balloon_step(&b, cur, 600, 0, 1000);
    /* goal = pinned 600 + reserve 16 + reserved_mb (1 MiB: 256) = 872,
     * approached by 1/8 of the distance each step */
    ASSERT_GE(cur, 872u);
    ASSERT_LE(cur, 880u);
    for (int i = 0; i < 50; i++)
        cur = tsq_balloon_step(&b, cur, 0, 0, 1000);
    ASSERT_LT(cur, 300u);
    ASSERT_GE(cur, 272u); /* the floor: reserve + min_usable 1 MiB */
    ASSERT_EQ(tsq_balloon_step(&b, 272, 500, 0, 1000) >= 516, 1);
    cur = tsq_balloon_step(&b, cur, 0, 900, 1000); /* working set is back */
    ASSERT_EQ(cur, 1000u);
}

TEST(sqlite_pcache_keeps_pinned_pages)
{
    const sqlite3_pcache_methods2 *m = tsq_pcache_methods();
    sqlite3_pcache *c = m->xCreate(4096, 64, 1);
    ASSERT_TRUE(c != NULL);
    m->xCachesize(c, 1000);
    sqlite3_pcache_page *pg[600];
    for (unsigned k = 0; k < 600; k++) {
        pg[k] = m->xFetch(c, k + 1, 2);
        ASSERT_TRUE(pg[k] != NULL);
        ((char *)pg[k]->pBuf)[0] = (char)k;
    }
    atomic_store(&tsq_caches.target, 10); /* a balloon far below pinned */
    ASSERT_TRUE(m->xFetch(c, 601, 1) != NULL); /* room above the pinned */
    for (unsigned k = 0; k < 600; k++) {
        sqlite3_pcache_page *p = m->xFetch(c, k + 1, 0);
        ASSERT_TRUE(p == pg[k]); /* no pinned page was taken */
        ASSERT_EQ(((char *)p->pBuf)[0], (char)k);
    }
    ASSERT_EQ(m->xPagecount(c), 601);
    for (unsigned k = 0; k < 600; k++)
        m->xUnpin(c, pg[k], 0);
    ASSERT_LE(m->xPagecount(c), 10 + 8); /* unpinned: down to the target */
    m->xDestroy(c);
    ASSERT_EQ(atomic_load(&tsq_caches.pages), 0u);
    ASSERT_EQ(atomic_load(&tsq_caches.max), 0u);
}
