/*
 * The tmem tenant of the SQLite extension: the process's one connection
 * (daemon or embedded store), its private cleancache pool, the counters
 * every part bumps, and the figures block the daemon shows.
 *
 * Invariants: tsq.mode is TSQ_OFF until the connection and the pool
 * exist, and becomes TSQ_OFF again in a forked child (a connection must
 * not cross fork(); the child's SQLite then runs plain: its reads go to
 * the file, and nothing it does reaches the parent's pool).
 */
#include "tsq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/conn_direct.h"
#include "proto/proto.h"

struct tsq_tenant tsq = {.pool = -1};

static void forked_child(void)
{
    atomic_store(&tsq.mode, TSQ_OFF);
}

int tsq_tenant_open(const char *socket, int mode, char *err, size_t cap)
{
    int rc = tmem_connect(socket, &tsq.conn);
    if (rc < 0) {
        snprintf(err, cap,
                 "tmem_sqlite: no tmem store: %s (socket %s; TMEM_EMBEDDED=0 "
                 "forbids the embedded store; TMEM_SQLITE_OPTIONAL=1 runs "
                 "SQLite without tmem)",
                 tmem_strerror(rc),
                 socket ? socket
                 : getenv("TMEM_SOCKET") ? getenv("TMEM_SOCKET")
                                         : "default");
        return rc;
    }
    rc = tmem_cleancache_create(tsq.conn, &tsq.cc);
    if (rc == 0)
        rc = tsq.pool = tmem_cleancache_init_fs(tsq.cc);
    if (rc < 0) {
        snprintf(err, cap, "tmem_sqlite: no cleancache pool: %s",
                 tmem_strerror(rc));
        tmem_cleancache_destroy(tsq.cc);
        tmem_disconnect(tsq.conn);
        tsq.cc = NULL;
        tsq.conn = NULL;
        return rc;
    }
    pthread_atfork(NULL, NULL, forked_child);
    atomic_store(&tsq.mode, mode);
    return 0;
}

void tsq_tenant_publish(const tmem_sqlite_stats *s)
{
    if (!tsq_on())
        return;
    tmem__tstat *ts = tmem__conn_tstat_block(tsq.conn);
    if (!ts)
        return;
    tmem__tstat v = {.magic = TMEM_TSTAT_MAGIC,
                     .kind = TMEM_TSTAT_SQLITE,
                     .resident = s->cache_pages,
                     .target = s->target_pages,
                     .stored = s->stored,
                     .faults = s->cc_gets,
                     .pageins = s->cc_hits,
                     .evicted = s->cc_puts,
                     .refused = s->cc_put_errors};
    memcpy(ts, &v, sizeof v);
}

void tmem_sqlite_stats_get(tmem_sqlite_stats *o)
{
    struct tsq_counters *n = &tsq.n;
    memset(o, 0, sizeof *o);
    o->mode = atomic_load(&tsq.mode);
    o->embedded = tsq.conn && tmem_conn_is_embedded(tsq.conn);
    o->cc_gets = atomic_load(&n->gets);
    o->cc_hits = atomic_load(&n->hits);
    o->cc_puts = atomic_load(&n->puts);
    if (tsq.cc) {
        tmem_cleancache_stats cs;
        tmem_cleancache_stats_get(tsq.cc, &cs);
        o->cc_put_errors = cs.put_errors;
    }
    o->stale_skipped = atomic_load(&n->stale);
    o->inval_pages = atomic_load(&n->inval_pages);
    o->inval_files = atomic_load(&n->inval_files);
    o->resets = atomic_load(&n->resets);
    o->passthrough = atomic_load(&n->passthrough);
    o->file_read_bytes = atomic_load(&n->file_read_bytes);
    o->stored = atomic_load(&n->stored);
    o->cache_pages = atomic_load(&tsq_caches.pages);
    o->pinned_pages = atomic_load(&tsq_caches.pinned);
    o->max_pages = atomic_load(&tsq_caches.max);
    uint64_t t = atomic_load(&tsq_caches.target);
    o->target_pages = t && t < o->max_pages ? t : o->max_pages;
}

int tmem_sqlite_stats_json(char *buf, size_t cap)
{
    tmem_sqlite_stats s;
    tmem_sqlite_stats_get(&s);
    static const char *const modes[] = {"off", "vfs", "full"};
    int n = snprintf(
        buf, cap,
        "{\"mode\":\"%s\",\"embedded\":%s,\"cc_gets\":%llu,\"cc_hits\":%llu,"
        "\"cc_puts\":%llu,\"cc_put_errors\":%llu,\"stale_skipped\":%llu,"
        "\"inval_pages\":%llu,\"inval_files\":%llu,\"resets\":%llu,"
        "\"passthrough\":%llu,\"file_read_bytes\":%llu,\"stored\":%llu,"
        "\"cache_pages\":%llu,\"pinned_pages\":%llu,\"max_pages\":%llu,"
        "\"target_pages\":%llu}",
        modes[s.mode % 3], s.embedded ? "true" : "false",
        (unsigned long long)s.cc_gets, (unsigned long long)s.cc_hits,
        (unsigned long long)s.cc_puts, (unsigned long long)s.cc_put_errors,
        (unsigned long long)s.stale_skipped, (unsigned long long)s.inval_pages,
        (unsigned long long)s.inval_files, (unsigned long long)s.resets,
        (unsigned long long)s.passthrough,
        (unsigned long long)s.file_read_bytes, (unsigned long long)s.stored,
        (unsigned long long)s.cache_pages, (unsigned long long)s.pinned_pages,
        (unsigned long long)s.max_pages, (unsigned long long)s.target_pages);
    return n < 0 ? 0 : n;
}
