/*
 * Direct loads (protocol v4, docs/layout.md): a tenant reads its own
 * persistent pages from a read-only view of its private arena, without a
 * daemon round trip; what the daemon says a put became; the ARENA request
 * and what a tenant may do with the descriptor; a destroyed client's view
 * going dead; the same through the embedded store.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <tmem/client.h>

#include "../runner.h"
#include "proto/conn.h"
#include "proto/proto.h"
#include "common/arena_fmt.h"
#include "common/pack.h"
#include "../lib/tmemd_harness.h"

/* The gets the store served, summed over every pool in the daemon's
 * JSON. */
static long long daemon_gets(tmem__conn *admin)
{
    char *js = NULL;
    ASSERT_EQ(tmem__conn_stats_json(admin, &js), 0);
    long long n = 0;
    for (const char *p = js; (p = strstr(p, "\"gets\":")) != NULL;) {
        p += strlen("\"gets\":");
        n += atoll(p);
    }
    free(js);
    return n;
}

static void stored_pages_read_directly(tmem_conn *c, tmem__conn *admin)
{
    enum { N = 300 };
    tmem_frontswap *fs;
    uint8_t a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];
    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, N), 0);
    for (uint32_t i = 0; i < N; i++) {
        if (i % 10 == 3)
            memset(a, (int)i, sizeof a); /* same-filled: nothing stored */
        else
            th_fill(a, 21, i);
        ASSERT_EQ(tmem_frontswap_store(fs, 0, i, a), 0);
    }
    long long gets0 = admin ? daemon_gets(admin) : 0;
    for (uint32_t i = 0; i < N; i++) {
        ASSERT_EQ(tmem_frontswap_load_direct(fs, 0, i, b), 1);
        if (i % 10 == 3) {
            memset(a, (int)i, sizeof a);
            ASSERT_MEM_EQ(a, b, TMEM_PAGE_SIZE);
        } else {
            ASSERT_TRUE(th_check(b, 21, i));
        }
        ASSERT_EQ(tmem_frontswap_load(fs, 0, i, b), 1);
    }
    if (admin) { /* not one of those loads asked the daemon; a get does */
        ASSERT_EQ(daemon_gets(admin), gets0);
        ASSERT_EQ(tmem_conn_get(c, 0, &(tmem_oid){{0, 0, 0}}, 7, b), 1);
        ASSERT_TRUE(th_check(b, 21, 7));
        ASSERT_EQ(daemon_gets(admin), gets0 + 1);
    }
    /* a page stored again is read as its new self, an invalidated one
     * is a miss */
    th_fill(a, 22, 5);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 5, a), 0);
    ASSERT_EQ(tmem_frontswap_load_direct(fs, 0, 5, b), 1);
    ASSERT_TRUE(th_check(b, 22, 5));
    ASSERT_EQ(tmem_frontswap_invalidate_page(fs, 0, 6), 1);
    ASSERT_EQ(tmem_frontswap_load_direct(fs, 0, 6, b), 0);
    ASSERT_EQ(tmem_frontswap_load_direct(fs, 0, N, b), TMEM_EINVAL);
    tmem_frontswap_destroy(fs);
}

TEST(direct_load_through_tmemd)
{
    th_daemon d;
    th_start(&d, NULL);
    setenv("TMEM_EMBEDDED", "0", 1);
    tmem_conn *c;
    ASSERT_EQ(tmem_connect(d.sock, &c), 0);
    tmem__conn *admin = th_conn(&d);
    stored_pages_read_directly(c, admin);
    tmem__conn_close(admin);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(direct_load_embedded)
{
    setenv("TMEM_EMBEDDED", "1", 1);
    tmem_conn *c;
    ASSERT_EQ(tmem_connect(NULL, &c), 0);
    ASSERT_TRUE(tmem_conn_is_embedded(c));
    stored_pages_read_directly(c, NULL);
    tmem_disconnect(c);
}

/* What a PUT result says, and the ARENA request's descriptor. */
TEST(direct_put_where_and_arena_fd)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem__conn *c = th_conn(&d);
    int fd;
    size_t len;
    /* no persistent pool yet: no arena */
    ASSERT_EQ(tmem__conn_arena(c, &fd, &len), -ENOENT);
    int eph = tmem__conn_pool_new(c, NULL, TMEM_POOL_FLAGS(0), NULL);
    int per = tmem__conn_pool_new(c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                                  NULL);
    ASSERT_GE(eph, 0);
    ASSERT_GE(per, 0);
    uint8_t pg[3][TMEM_PAGE_SIZE];
    th_fill(pg[0], 5, 0);
    memset(pg[1], 0, TMEM_PAGE_SIZE);
    tmem__op ops[3] = {
        {.op = TMEM_OP_PUT, .pool = per, .index = 0, .page = pg[0]},
        {.op = TMEM_OP_PUT, .pool = per, .index = 1, .page = pg[1]},
        {.op = TMEM_OP_PUT, .pool = eph, .index = 2, .page = pg[0]},
    };
    ASSERT_EQ(tmem__conn_batch(c, ops, 3), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(ops[i].result, 1);
    ASSERT_EQ(ops[0].where, TMEM_WHERE_DIRECT);
    ASSERT_NE(ops[0].handle, 0);
    ASSERT_GE(ops[0].gen, 1);
    ASSERT_EQ(ops[1].where, TMEM_WHERE_FILL);
    ASSERT_EQ(ops[1].handle, 0);
    ASSERT_EQ(ops[2].where, TMEM_WHERE_NONE); /* ephemeral: daemon only */
    ASSERT_EQ(tmem__conn_arena(c, &fd, &len), 0);
    ASSERT_GT(len, 1u << 20);
    /* read-only: no writable mapping, no write(2) */
    ASSERT_TRUE(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) ==
                MAP_FAILED);
    ASSERT_EQ(write(fd, "x", 1), -1);
    ASSERT_EQ(errno, EBADF);
    ASSERT_EQ(ftruncate(fd, 0), -1);
    void *v = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0);
    ASSERT_TRUE(v != MAP_FAILED);
    close(fd);
    tmem_arena_rec r;
    uint8_t buf[TMEM_PAGE_SIZE], back[TMEM_PAGE_SIZE];
    ASSERT_EQ(tmem__arena_read(v, len, ops[0].handle, ops[0].gen,
                               TMEM_ARENA_VERIFY, &r, buf),
              0);
    /* the record's pool: the id, and the pool's instance above it */
    ASSERT_EQ(TMEM_ARENA_POOL_ID(r.pool), (uint32_t)per);
    ASSERT_GE(TMEM_ARENA_POOL_INST(r.pool), 1);
    ASSERT_EQ(r.index, 0);
    tmem_packed pk = {.enc = r.codec ? TMEM_PACK_LZ4 : TMEM_PACK_RAW,
                      .len = r.len};
    ASSERT_LT(r.codec, 2);
    ASSERT_EQ(tmem__unpack(&pk, buf, back), 0);
    ASSERT_MEM_EQ(back, pg[0], TMEM_PAGE_SIZE);
    /* the pool destroyed: the record is gone for the reader */
    ASSERT_EQ(tmem__conn_pool_destroy(c, per), 0);
    ASSERT_EQ(tmem__arena_read(v, len, ops[0].handle, ops[0].gen,
                               TMEM_ARENA_VERIFY, &r, buf),
              -ENOENT);
    munmap(v, len);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
}

/* An administrator destroys the client: its view goes dead, a direct load
 * says ask the daemon, and the daemon says the client is gone. */
TEST(direct_load_after_client_destroyed)
{
    th_daemon d;
    th_start(&d, NULL);
    setenv("TMEM_EMBEDDED", "0", 1);
    tmem_conn *c;
    ASSERT_EQ(tmem_connect(d.sock, &c), 0);
    tmem_frontswap *fs;
    uint8_t a[TMEM_PAGE_SIZE];
    ASSERT_EQ(tmem_frontswap_create(c, &fs), 0);
    ASSERT_EQ(tmem_frontswap_init(fs, 0, 8), 0);
    th_fill(a, 9, 1);
    ASSERT_EQ(tmem_frontswap_store(fs, 0, 1, a), 0);
    ASSERT_EQ(tmem_frontswap_load_direct(fs, 0, 1, a), 1);
    tmem__conn *admin = th_conn(&d);
    ASSERT_EQ(tmem__conn_destroy_client(admin, tmem_conn_client_id(c)), 0);
    ASSERT_EQ(tmem_frontswap_load_direct(fs, 0, 1, a), TMEM_EAGAIN);
    ASSERT_EQ(tmem_frontswap_load(fs, 0, 1, a), TMEM_ENODEV);
    tmem__conn_close(admin);
    tmem_frontswap_destroy(fs);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}
