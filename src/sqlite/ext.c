/*
 * The loadable extension's entry point (`.load libtmem_sqlite` in the
 * sqlite3 shell, sqlite3_load_extension) and the SQL function
 * tmem_sqlite_stats(), which returns the figures as JSON.
 *
 * SQLite is initialised before any extension loads, so the page cache
 * cannot be installed: the extension registers the VFS "tmem" as the
 * default (VFS-only mode, docs/sqlite.md).  A database opened before the
 * load keeps the VFS it was opened with: reopen it (`.open FILE`) or name
 * the VFS (file:FILE?vfs=tmem).  The library stays loaded for the life of
 * the process (the VFS and its thread live in it).
 */
#include "tsq.h"

#include <errno.h>
#include <stdio.h>

SQLITE_EXTENSION_INIT1

static void stats_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    char buf[1024];
    (void)argc;
    (void)argv;
    int n = tmem_sqlite_stats_json(buf, sizeof buf);
    sqlite3_result_text(ctx, buf, n, SQLITE_TRANSIENT);
}

/* Adds tmem_sqlite_stats() to a connection.  Returns an SQLite code. */
int tsq_add_functions(sqlite3 *db)
{
    return sqlite3_create_function(db, "tmem_sqlite_stats", 0, SQLITE_UTF8,
                                   NULL, stats_fn, NULL, NULL);
}

static int auto_ext(sqlite3 *db, char **msg, const sqlite3_api_routines *api)
{
    (void)msg;
    (void)api;
    return tsq_add_functions(db);
}

__attribute__((visibility("default"))) int
sqlite3_tmemsqlite_init(sqlite3 *db, char **msg,
                        const sqlite3_api_routines *api)
{
    SQLITE_EXTENSION_INIT2(api);
    char err[512];
    tmem_sqlite_options o;
    tmem_sqlite_options_init(&o);
    o.pcache = 0;
    int rc = tsq_on() ? 0 : tmem_sqlite_install(&o, err, sizeof err);
    if (rc == -EALREADY) /* loaded before, with TMEM_SQLITE_OPTIONAL=1 */
        rc = 0;
    if (rc < 0) {
        *msg = sqlite3_mprintf("%s", err);
        return SQLITE_ERROR;
    }
    if (rc == 1)
        sqlite3_log(SQLITE_WARNING, "%s; running without tmem", err);
    sqlite3_auto_extension((void (*)(void))auto_ext);
    rc = tsq_add_functions(db);
    return rc == SQLITE_OK ? SQLITE_OK_LOAD_PERMANENTLY : rc;
}
