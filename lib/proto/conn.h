/*
 * The tenant end of the tmemd protocol: one connection to the daemon.
 *
 * Owned by lib/proto (conn.c); used by lib/client to build the public tenant
 * API (include/tmem/client.h) and by the tmem CLI for admin operations.
 * The wire format is in proto.h and docs/protocol.md.  Data operations go
 * through the shared-memory ring once it is set up (tmem__conn_open does
 * it), else over the socket.  A tmem__conn is used by one thread at a time
 * (callers serialise); every call returns the daemon's result code
 * (store.h semantics) or a transport error: -EPIPE (daemon gone), -EPROTO
 * (bad reply), -ECONNREFUSED/-ENOENT (no daemon at open).
 */
#ifndef TMEM_PROTO_CONN_H
#define TMEM_PROTO_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tmem/abi.h>

typedef struct tmem__conn tmem__conn;

/* Opcodes of a batch entry. */
enum tmem__op_code {
    TMEM_OP_PUT = 1,
    TMEM_OP_GET = 2,
    TMEM_OP_FLUSH_PAGE = 3,
    TMEM_OP_FLUSH_OBJECT = 4,
};

/* One operation of a batch: page points to TMEM_PAGE_SIZE bytes (source
 * for PUT, destination for GET, unused otherwise); result receives the
 * store's return value for that operation, and for a PUT that stored its
 * page, where says where it went (enum tmem__where of proto.h: handle and
 * gen in the tenant's private arena, or the fill word in handle). */
typedef struct tmem__op {
    uint8_t op;
    int32_t pool;
    tmem_oid oid;
    uint32_t index;
    void *page;
    int32_t result;
    uint32_t where, handle, gen;
} tmem__op;

/* Connects to the daemon at path (NULL: $TMEM_SOCKET, else the default:
 * /run/tmem/tmemd.sock as root, $XDG_RUNTIME_DIR/tmem.sock otherwise),
 * checks the protocol version, sets up the ring.  The tenant is named
 * $TMEM_NAME when set (see tmem__conn_open_named).  Returns 0 or an
 * error. */
int tmem__conn_open(const char *path, tmem__conn **out);
/* As tmem__conn_open, naming the tenant (NULL: none): at most
 * TMEM_NAME_MAX bytes of letters, digits, '.', '_' and '-'
 * (-EINVAL otherwise). */
#define TMEM_NAME_MAX 16
int tmem__conn_open_named(const char *path, const char *name,
                          tmem__conn **out);
/* How many times the connection was made again after the daemon went
 * away (a restart): pages put before the last one live in another arena
 * than the one mapped then (tmem__conn_arena again for the new one). */
uint32_t tmem__conn_epoch(const tmem__conn *c);
/* True when name is a valid tenant name. */
bool tmem__name_valid(const char *name, size_t maxlen);
/* Asks for a read-only descriptor of the client's private arena (made
 * with its first persistent pool).  Returns 0 and sets *fd (the caller's
 * to close) and *len (bytes to map), -ENOENT when there is none yet, or
 * a transport error. */
int tmem__conn_arena(tmem__conn *c, int *fd, size_t *len);
/* The tenant's figures block in the ring (the daemon shows them), or NULL
 * without a ring.  The caller writes it; one writer. */
struct tmem__tstat *tmem__conn_tstat(tmem__conn *c);
void tmem__conn_close(tmem__conn *c); /* NULL is a no-op */
/* The default socket path (static buffer). */
const char *tmem__conn_default_path(void);
/* The client id the daemon gave this connection. */
int tmem__conn_client_id(const tmem__conn *c);

/* Data operations: same results as the store functions of store.h. */
int tmem__conn_pool_new(tmem__conn *c, const uint64_t uuid[2],
                        uint32_t flags, uint32_t *out_flags);
int tmem__conn_pool_destroy(tmem__conn *c, int pool);
int tmem__conn_put(tmem__conn *c, int pool, const tmem_oid *oid,
                   uint32_t index, const void *page);
int tmem__conn_get(tmem__conn *c, int pool, const tmem_oid *oid,
                   uint32_t index, void *page);
int tmem__conn_flush_page(tmem__conn *c, int pool, const tmem_oid *oid,
                          uint32_t index);
int tmem__conn_flush_object(tmem__conn *c, int pool, const tmem_oid *oid);
/* Runs n operations in as few round trips as possible; each result lands
 * in ops[i].result.  Returns 0, or a transport error (then results are
 * undefined). */
int tmem__conn_batch(tmem__conn *c, tmem__op *ops, size_t n);

/* Admin operations (daemon refuses with -EPERM unless the peer is root or
 * the daemon's uid).  client_id TMEM_ALL_CLIENTS (-1) where "all" fits. */
int tmem__conn_set_weight(tmem__conn *c, int client_id, uint32_t weight);
int tmem__conn_set_cap(tmem__conn *c, int client_id, uint64_t cap_pages);
int tmem__conn_set_compress(tmem__conn *c, int client_id, int compress);
int tmem__conn_freeze(tmem__conn *c, int client_id, bool frozen);
/* Returns pages evicted (>= 0) or an error. */
int64_t tmem__conn_flush_mib(tmem__conn *c, uint64_t mib);
/* Returns freeable MiB (>= 0) or an error. */
int64_t tmem__conn_freeable_mib(tmem__conn *c);
int tmem__conn_auth(tmem__conn *c, int client_id, const uint64_t uuid[2],
                    bool on);
int tmem__conn_destroy_client(tmem__conn *c, int client_id);
/* Admin: tmemd writes the save stream of a client (by id, or by its
 * connection's name when name is not NULL) to fd (docs/persistence.md).
 * Returns the pages saved or a negative error. */
int64_t tmem__conn_save(tmem__conn *c, int client_id, const char *name, int fd);
/* Admin: tmemd reads a save stream from fd into a new client, kept for
 * the tenant that connects as name with uid.  Returns its client id (and
 * *pages, may be NULL) or a negative error; a refused stream changes
 * nothing. */
int tmem__conn_restore(tmem__conn *c, const char *name, uint32_t uid, int fd,
                       uint64_t *pages);
/* Statistics: *out receives a malloc'd NUL-terminated text the caller
 * frees: the store's JSON (tmem_store_stats_json) or Prometheus text. */
int tmem__conn_stats_json(tmem__conn *c, char **out);
int tmem__conn_prometheus(tmem__conn *c, char **out);

#endif
