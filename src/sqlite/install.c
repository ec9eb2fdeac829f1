/*
 * Installing the extension: options (the caller's, else the environment),
 * the tmem connection, the page cache (full mode: only before
 * sqlite3_initialize), the VFS, the balloon thread.  Once per process.
 *
 * Environment (read when the option says -1 / 0):
 *   TMEM_SQLITE_INTERVAL_MS    1..3600000, default 1000
 *   TMEM_SQLITE_BALLOON        0 or 1, default 1
 *   TMEM_SQLITE_OPTIONAL       0 or 1, default 0: no tmem is an error
 *   TMEM_SQLITE_MIN_USABLE_MB  0..1048576, default 1 (0: SPEC's floor)
 * A value that is not one of these is an error that names it.
 */
#include "tsq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;

void tmem_sqlite_options_init(tmem_sqlite_options *o)
{
    *o = (tmem_sqlite_options){.socket = NULL,
                               .pcache = 1,
                               .balloon = -1,
                               .interval_ms = 0,
                               .optional = -1,
                               .min_usable_mb = -1};
}

/* *out = $name as a whole number in lo..hi, or dflt when unset.  Returns
 * 0 or -EINVAL with the sentence in err. */
static int env_num(const char *name, long lo, long hi, long dflt, long *out,
                   char *err, size_t cap)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v) {
        *out = dflt;
        return 0;
    }
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < lo || n > hi) {
        snprintf(err, cap, "tmem_sqlite: %s=%s: want a whole number %ld..%ld",
                 name, v, lo, hi);
        return -EINVAL;
    }
    *out = n;
    return 0;
}

/* The options with the environment's values filled in. */
static int resolve(const tmem_sqlite_options *in, tmem_sqlite_options *o,
                   char *err, size_t cap)
{
    long v;
    *o = *in;
    if (o->pcache != 0 && o->pcache != 1) {
        snprintf(err, cap, "tmem_sqlite: pcache=%d: want 0 or 1", o->pcache);
        return -EINVAL;
    }
    if (o->interval_ms < 0 || o->interval_ms > 3600000) {
        snprintf(err, cap, "tmem_sqlite: interval %ld ms: want 1..3600000",
                 o->interval_ms);
        return -EINVAL;
    }
    if (o->interval_ms == 0) {
        if (env_num("TMEM_SQLITE_INTERVAL_MS", 1, 3600000, 1000, &v, err, cap))
            return -EINVAL;
        o->interval_ms = v;
    }
    if (o->balloon < 0) {
        if (env_num("TMEM_SQLITE_BALLOON", 0, 1, 1, &v, err, cap))
            return -EINVAL;
        o->balloon = (int)v;
    }
    if (o->optional < 0) {
        if (env_num("TMEM_SQLITE_OPTIONAL", 0, 1, 0, &v, err, cap))
            return -EINVAL;
        o->optional = (int)v;
    }
    if (o->min_usable_mb < 0) {
        if (env_num("TMEM_SQLITE_MIN_USABLE_MB", 0, 1048576, 1, &v, err, cap))
            return -EINVAL;
        o->min_usable_mb = (int)v;
    }
    return 0;
}

#ifdef SQLITE_CORE
static int install_pcache(char *err, size_t cap)
{
    int rc = sqlite3_config(SQLITE_CONFIG_PCACHE2, tsq_pcache_methods());
    if (rc == SQLITE_OK)
        return 0;
    snprintf(err, cap,
             "tmem_sqlite: SQLite is already initialised (%s): the page "
             "cache can only be installed before sqlite3_initialize; use "
             "pcache = 0 for the VFS alone",
             sqlite3_errstr(rc));
    return -EBUSY;
}
#else
static int install_pcache(char *err, size_t cap)
{
    snprintf(err, cap, "tmem_sqlite: the loadable extension has no page "
                       "cache (SQLite is initialised before it loads): VFS "
                       "only");
    return -ENOTSUP;
}
#endif

static int install_locked(const tmem_sqlite_options *o, char *err, size_t cap)
{
    int rc = 0;
    if (o->pcache && (rc = install_pcache(err, cap)) < 0)
        return rc;
    rc = tsq_tenant_open(o->socket, o->pcache ? TSQ_FULL : TSQ_VFS_ONLY, err,
                         cap);
    if (rc < 0) {
        /* the page cache is in, and without tmem it is plain LRU */
        return o->optional ? 1 : rc;
    }
    rc = tsq_vfs_register();
    if (rc != SQLITE_OK) {
        snprintf(err, cap, "tmem_sqlite: cannot register the VFS: %s",
                 sqlite3_errstr(rc));
        atomic_store(&tsq.mode, TSQ_OFF);
        return -EIO;
    }
    struct tsq_balloon_cfg b = {.on = o->balloon && o->pcache,
                                .interval_ms = o->interval_ms,
                                .min_usable_mb = o->min_usable_mb};
    rc = tsq_balloon_start(&b);
    if (rc < 0)
        snprintf(err, cap, "tmem_sqlite: no balloon thread: %s",
                 strerror(-rc));
    return rc;
}

int tmem_sqlite_install(const tmem_sqlite_options *opt, char *err, size_t cap)
{
    tmem_sqlite_options dflt, o;
    char scratch[8];
    if (!err || !cap) {
        err = scratch;
        cap = sizeof scratch;
    }
    err[0] = '\0';
    if (!opt) {
        tmem_sqlite_options_init(&dflt);
        opt = &dflt;
    }
    int rc = resolve(opt, &o, err, cap);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&install_lock);
    if (installed) {
        snprintf(err, cap, "tmem_sqlite: already installed in this process");
        rc = -EALREADY;
    } else {
        rc = install_locked(&o, err, cap);
        installed = rc >= 0;
    }
    pthread_mutex_unlock(&install_lock);
    return rc;
}
