/*
 * tmem_conn: the tenant's connection, either to tmemd (through the
 * lib/proto tenant end) or to an embedded in-process store with one client.
 *
 * Invariants: exactly one of remote / (store, client) is set for the life
 * of the handle.  The remote tmem__conn is used by one thread at a time,
 * so every call on it holds c->lock; the embedded store is thread-safe and
 * takes no client-layer lock.  Page operations never allocate here.
 */
#include <tmem/client.h>
#include <tmem/store.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "client/conn_direct.h"
#include "common/mem.h"
#include "proto/conn.h"
#include "proto/proto.h"
#include "store/store_direct.h"

struct tmem_conn {
    tmem__conn *remote; /* daemon path, or NULL */
    tmem_store *store;  /* embedded path */
    tmem_client *client;
    _Atomic int client_id; /* a reconnection may change it */
    pthread_mutex_t lock; /* serialises use of remote */
    /* the private arena, read-only, once asked for (view_len set last) */
    const void *view;
    _Atomic size_t view_len;
    bool view_mapped; /* ours to unmap */
    int view_fd;      /* its descriptor, for its size (-1 none) */
    /* the daemon came back (tmem__conn_epoch): the view of the arena
     * before is retired (readers may still be in it: unmapped at the
     * disconnect) and direct loads ask the daemon until it is mapped
     * again */
    uint32_t view_epoch;
    bool view_retired; /* never mapped again: entries of the old arena
                          must not be read in a new one */
    struct {
        const void *p;
        size_t len;
    } retired[8];
    int nretired;
};

_Static_assert((int)TMEM__PUT_DIRECT == (int)TMEM_WHERE_DIRECT &&
                   (int)TMEM__PUT_FILL == (int)TMEM_WHERE_FILL &&
                   (int)TMEM__PUT_DIRECT == (int)TMEM__WHERE_DIRECT &&
                   (int)TMEM__PUT_FILL == (int)TMEM__WHERE_FILL,
               "the wire, the store and the client agree on where");

_Static_assert((int)TMEM_PUT == (int)TMEM_OP_PUT &&
                   (int)TMEM_GET == (int)TMEM_OP_GET &&
                   (int)TMEM_FLUSH_PAGE == (int)TMEM_OP_FLUSH_PAGE &&
                   (int)TMEM_FLUSH_OBJECT == (int)TMEM_OP_FLUSH_OBJECT,
               "public and wire op codes agree");

/* Errors of tmem__conn_open that mean "no daemon answers there". */
static bool no_daemon(int err)
{
    return err == -ENOENT || err == -ECONNREFUSED || err == -EACCES ||
           err == -ENOTDIR || err == -ETIMEDOUT || err == -ENOTSOCK;
}

static uint64_t embedded_budget(void)
{
    const char *env = getenv("TMEM_EMBEDDED_BUDGET_MIB");
    if (env && *env) {
        char *end;
        unsigned long long mib = strtoull(env, &end, 10);
        if (*end == '\0')
            return (uint64_t)mib << 20;
    }
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0)
        return 0;
    return (uint64_t)pages * (uint64_t)psz / 4;
}

static int open_embedded(tmem_conn *c)
{
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.budget_bytes = embedded_budget();
    int rc = tmem_store_create(&cfg, &c->store);
    if (rc < 0)
        return rc;
    rc = tmem_client_create(c->store, &c->client);
    if (rc < 0) {
        tmem_store_destroy(c->store);
        c->store = NULL;
        return rc;
    }
    c->client_id = rc;
    return 0;
}

int tmem_connect(const char *socket_or_null, tmem_conn **out)
{
    const char *mode = getenv("TMEM_EMBEDDED");
    bool force = mode && strcmp(mode, "1") == 0;
    bool never = mode && strcmp(mode, "0") == 0;
    tmem_conn *c = tmem__calloc(1, sizeof *c);
    if (c)
        c->view_fd = -1;
    int rc;

    if (!c)
        return TMEM_ENOMEM;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        tmem__free(c);
        return TMEM_ENOMEM;
    }
    rc = force ? -ENOENT : tmem__conn_open(socket_or_null, &c->remote);
    if (rc == 0) {
        c->client_id = tmem__conn_client_id(c->remote);
    } else if (never || !no_daemon(rc)) {
        goto out_free;
    } else {
        rc = open_embedded(c);
        if (rc < 0)
            goto out_free;
    }
    *out = c;
    return 0;

out_free:
    pthread_mutex_destroy(&c->lock);
    tmem__free(c);
    return rc;
}

/* Gives the remote connection back; first, when it was made again since
 * the last look, retires the arena view (its pages are in another arena
 * now) and takes the client id the daemon gave. */
static void remote_unlock(tmem_conn *c)
{
    uint32_t e = tmem__conn_epoch(c->remote);
    if (e != c->view_epoch) {
        c->view_epoch = e;
        c->client_id = tmem__conn_client_id(c->remote);
        size_t len = atomic_exchange(&c->view_len, 0);
        if (len && c->view_mapped && c->nretired < 8) {
            c->retired[c->nretired].p = c->view;
            c->retired[c->nretired].len = len;
            c->nretired++;
        } /* past 8 restarts a view stays mapped until the process ends */
        c->view_mapped = false;
        c->view_retired = true;
        if (c->view_fd >= 0)
            close(c->view_fd);
        c->view_fd = -1;
    }
    pthread_mutex_unlock(&c->lock);
}

void tmem_disconnect(tmem_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nretired; i++)
        munmap((void *)c->retired[i].p, c->retired[i].len);
    if (c->view_mapped)
        munmap((void *)c->view, atomic_load(&c->view_len));
    if (c->view_fd >= 0)
        close(c->view_fd);
    tmem__conn_close(c->remote);
    tmem_client_destroy(c->client);
    tmem_store_destroy(c->store);
    pthread_mutex_destroy(&c->lock);
    tmem__free(c);
}

bool tmem_conn_is_embedded(const tmem_conn *c)
{
    return c->remote == NULL;
}

int tmem_conn_client_id(const tmem_conn *c)
{
    return c->client_id;
}

int tmem_conn_pool_new(tmem_conn *c, const uint64_t uuid[2], uint32_t flags,
                       uint32_t *out_flags)
{
    int rc;
    if (!c->remote) {
        /* The embedding process is its own administrator. */
        if ((flags & TMEM_POOL_SHARED) && uuid)
            tmem_store_auth(c->store, c->client_id, uuid, true);
        return tmem_pool_new(c->client, uuid, flags, out_flags);
    }
    pthread_mutex_lock(&c->lock);
    rc = tmem__conn_pool_new(c->remote, uuid, flags, out_flags);
    remote_unlock(c);
    return rc;
}

int tmem_conn_pool_destroy(tmem_conn *c, int pool)
{
    int rc;
    if (!c->remote)
        return tmem_pool_destroy(c->client, pool);
    pthread_mutex_lock(&c->lock);
    rc = tmem__conn_pool_destroy(c->remote, pool);
    remote_unlock(c);
    return rc;
}

int tmem_conn_put(tmem_conn *c, int pool, const tmem_oid *oid, uint32_t index,
                  const void *page)
{
    int rc;
    if (!c->remote)
        return tmem_page_put(c->client, pool, oid, index, page);
    pthread_mutex_lock(&c->lock);
    rc = tmem__conn_put(c->remote, pool, oid, index, page);
    remote_unlock(c);
    return rc;
}

int tmem_conn_get(tmem_conn *c, int pool, const tmem_oid *oid, uint32_t index,
                  void *page)
{
    int rc;
    if (!c->remote)
        return tmem_page_get(c->client, pool, oid, index, page);
    pthread_mutex_lock(&c->lock);
    rc = tmem__conn_get(c->remote, pool, oid, index, page);
    remote_unlock(c);
    return rc;
}

int tmem_conn_flush_page(tmem_conn *c, int pool, const tmem_oid *oid,
                         uint32_t index)
{
    int rc;
    if (!c->remote)
        return tmem_page_flush(c->client, pool, oid, index);
    pthread_mutex_lock(&c->lock);
    rc = tmem__conn_flush_page(c->remote, pool, oid, index);
    remote_unlock(c);
    return rc;
}

int tmem_conn_flush_object(tmem_conn *c, int pool, const tmem_oid *oid)
{
    int rc;
    if (!c->remote)
        return tmem_object_flush(c->client, pool, oid);
    pthread_mutex_lock(&c->lock);
    rc = tmem__conn_flush_object(c->remote, pool, oid);
    remote_unlock(c);
    return rc;
}

static int32_t embedded_op(tmem_client *cl, const tmem_op *o,
                           tmem__put_where *w)
{
    tmem__page_where pw;
    int32_t r;
    switch (o->op) {
    case TMEM_PUT:
        if (!w)
            return tmem_page_put(cl, o->pool, &o->oid, o->index, o->page);
        r = tmem__page_put_where(cl, o->pool, &o->oid, o->index, NULL,
                                 o->page, &pw);
        *w = (tmem__put_where){pw.kind, pw.handle, pw.gen};
        return r;
    case TMEM_GET:
        return tmem_page_get(cl, o->pool, &o->oid, o->index, o->page);
    case TMEM_FLUSH_PAGE:
        return tmem_page_flush(cl, o->pool, &o->oid, o->index);
    case TMEM_FLUSH_OBJECT:
        return tmem_object_flush(cl, o->pool, &o->oid);
    default:
        return TMEM_EINVAL;
    }
}

/* The public and wire op structs are distinct types: convert in chunks on
 * the stack (no allocation), one tmem__conn_batch call per chunk. */
#define BATCH_CHUNK 256

static int remote_batch_locked(tmem_conn *c, tmem_op *ops,
                               tmem__put_where *w, size_t n)
{
    tmem__op wire[BATCH_CHUNK];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < BATCH_CHUNK ? n - done : BATCH_CHUNK;
        for (size_t i = 0; i < k; i++) {
            const tmem_op *o = &ops[done + i];
            wire[i] = (tmem__op){.op = o->op,
                                 .pool = o->pool,
                                 .oid = o->oid,
                                 .index = o->index,
                                 .page = o->page,
                                 .result = 0};
        }
        int rc = tmem__conn_batch(c->remote, wire, k);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < k; i++) {
            ops[done + i].result = wire[i].result;
            if (w && ops[done + i].op == TMEM_PUT && wire[i].result == 1)
                w[done + i] = (tmem__put_where){wire[i].where, wire[i].handle,
                                                wire[i].gen};
        }
        done += k;
    }
    return 0;
}

int tmem__conn_batch_where(tmem_conn *c, tmem_op *ops, tmem__put_where *w,
                           size_t n)
{
    int rc;
    if (w)
        memset(w, 0, n * sizeof *w);
    if (!c->remote) {
        for (size_t i = 0; i < n; i++)
            ops[i].result = embedded_op(c->client, &ops[i], w ? &w[i] : NULL);
        return 0;
    }
    pthread_mutex_lock(&c->lock);
    rc = remote_batch_locked(c, ops, w, n);
    remote_unlock(c);
    return rc;
}

int tmem_conn_batch(tmem_conn *c, tmem_op *ops, size_t n)
{
    return tmem__conn_batch_where(c, ops, NULL, n);
}

/* ---- the tenant's view of its private arena ------------------------------ */

/* A mapping of its own, also on the embedded path: it outlives the
 * store's (an arena closed under a reader reads as dead, not unmapped). */
static int view_map_locked(tmem_conn *c)
{
    int fd;
    size_t len = 0;
    /* after a reconnection the handles a caller kept name records of the
     * old arena: a new view could show another page under one of them */
    if (c->view_retired)
        return -ESTALE;
    int rc = c->remote ? tmem__conn_arena(c->remote, &fd, &len)
                       : (fd = tmem__client_arena_fd(c->client, &len));
    if (rc < 0)
        return rc;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0);
    rc = p == MAP_FAILED ? -errno : 0;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    c->view_fd = fd;
    c->view = p;
    c->view_mapped = true;
    atomic_store_explicit(&c->view_len, len, memory_order_release);
    return 0;
}

int tmem__conn_arena_view(tmem_conn *c, const void **base, size_t *len)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (!atomic_load(&c->view_len))
        rc = view_map_locked(c);
    pthread_mutex_unlock(&c->lock);
    if (rc == 0) {
        *base = c->view;
        *len = atomic_load(&c->view_len);
    }
    return rc;
}

int64_t tmem__conn_arena_bytes(tmem_conn *c)
{
    struct stat st;
    pthread_mutex_lock(&c->lock);
    int fd = c->view_fd;
    int rc = fd < 0 ? -ENOENT : fstat(fd, &st) < 0 ? -errno : 0;
    pthread_mutex_unlock(&c->lock);
    return rc < 0 ? rc : (int64_t)st.st_blocks * 512;
}

const void *tmem__conn_arena_peek(const tmem_conn *c, size_t *len)
{
    size_t n = atomic_load_explicit(&((tmem_conn *)c)->view_len,
                                    memory_order_acquire);
    *len = n;
    return n ? c->view : NULL;
}

struct tmem__tstat *tmem__conn_tstat_block(tmem_conn *c)
{
    return c->remote ? tmem__conn_tstat(c->remote) : NULL;
}

tmem_store *tmem__conn_store(tmem_conn *c)
{
    return c->remote ? NULL : c->store;
}
