/*
 * Units of lib/proto: request/reply encode and decode, header bounds, the
 * opcode table, ring layout and entry validation.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../runner.h"
#include "common/pack.h"

#include <lz4.h>
#include <proto/conn.h>
#include <proto/proto.h>

TEST(proto_req_roundtrip)
{
    unsigned char b[TMEM_MSG_REQ_MAX], page[TMEM_PAGE_SIZE];
    memset(page, 0xab, sizeof page);
    tmem__msg_args a = {.pool = 3,
                        .index = 9,
                        .oid = {1, 2, 3},
                        .uuid = {4, 5},
                        .arg = 77,
                        .client_id = -1,
                        .flags = 0x10};
    int n = tmem__req_encode(b, sizeof b, TMEM_MSG_PUT, 42, &a, page);
    ASSERT_EQ(n, TMEM_MSG_REQ_MAX);
    tmem__req q;
    ASSERT_EQ(tmem__req_decode(b, (size_t)n, &q), 0);
    ASSERT_EQ(q.hdr.op, TMEM_MSG_PUT);
    ASSERT_EQ(q.hdr.seq, 42);
    ASSERT_EQ(q.args.pool, 3);
    ASSERT_EQ(q.args.index, 9);
    ASSERT_U64_EQ(q.args.oid[2], 3);
    ASSERT_U64_EQ(q.args.uuid[1], 5);
    ASSERT_U64_EQ(q.args.arg, 77);
    ASSERT_EQ(q.args.client_id, -1);
    ASSERT_MEM_EQ(q.page, page, TMEM_PAGE_SIZE);
    n = tmem__req_encode(b, sizeof b, TMEM_MSG_GET, 1, &a, NULL);
    ASSERT_EQ(n, TMEM_MSG_REQ_BASE);
    ASSERT_EQ(tmem__req_decode(b, (size_t)n, &q), 0);
    ASSERT_TRUE(q.page == NULL);
}

TEST(proto_req_rejects)
{
    unsigned char b[TMEM_MSG_REQ_MAX] = {0};
    tmem__req q;
    ASSERT_EQ(tmem__req_encode(b, sizeof b, 99, 1, NULL, NULL), -EINVAL);
    ASSERT_EQ(tmem__req_encode(b, sizeof b, TMEM_MSG_PUT, 1, NULL, NULL),
              -EINVAL); /* PUT needs a page */
    ASSERT_EQ(tmem__req_encode(b, 10, TMEM_MSG_GET, 1, NULL, NULL), -EINVAL);
    int n = tmem__req_encode(b, sizeof b, TMEM_MSG_GET, 1, NULL, NULL);
    ASSERT_EQ(tmem__req_decode(b, (size_t)n - 1, &q), -EBADMSG); /* short */
    ASSERT_EQ(tmem__req_decode(b, 3, &q), -EBADMSG);
    tmem__msg_hdr h = {.len = TMEM_MSG_REQ_BASE, .op = TMEM_MSG_GET};
    ASSERT_EQ(tmem__req_check_hdr(&h), 0);
    h.len = TMEM_MSG_REQ_MAX + 1;
    ASSERT_EQ(tmem__req_check_hdr(&h), -EMSGSIZE);
    h.len = 0;
    ASSERT_EQ(tmem__req_check_hdr(&h), -EMSGSIZE);
    h.len = TMEM_MSG_REQ_MAX; /* GET carries no page */
    ASSERT_EQ(tmem__req_check_hdr(&h), -EBADMSG);
    h.len = TMEM_MSG_REQ_BASE;
    h.flags = 1;
    ASSERT_EQ(tmem__req_check_hdr(&h), -EBADMSG);
    h.flags = 0;
    h.status = 5;
    ASSERT_EQ(tmem__req_check_hdr(&h), -EBADMSG);
    h.status = 0;
    for (unsigned op = 0; op < 300; op++) {
        h.op = (uint16_t)op;
        const tmem__msg_rule *r = tmem__msg_rule_of(op);
        h.len = TMEM_MSG_REQ_BASE + (r && r->page ? TMEM_PAGE_SIZE : 0);
        ASSERT_EQ(tmem__req_check_hdr(&h), r ? 0 : -EBADMSG);
    }
}

TEST(proto_opcode_table)
{
    ASSERT_TRUE(tmem__msg_rule_of(0) == NULL);
    ASSERT_TRUE(tmem__msg_rule_of(TMEM_MSG_OP_MAX) == NULL);
    ASSERT_TRUE(tmem__msg_rule_of(10) == NULL);
    ASSERT_STR_EQ(tmem__msg_rule_of(TMEM_MSG_ARENA)->name, "arena");
    ASSERT_TRUE(!tmem__msg_rule_of(TMEM_MSG_ARENA)->admin);
    ASSERT_TRUE(!tmem__msg_rule_of(TMEM_MSG_ARENA)->page);
    ASSERT_TRUE(tmem__msg_rule_of(TMEM_MSG_PUT)->page);
    ASSERT_TRUE(!tmem__msg_rule_of(TMEM_MSG_PUT)->admin);
    for (unsigned op = TMEM_MSG_SET_WEIGHT; op < TMEM_MSG_OP_MAX; op++)
        ASSERT_TRUE(tmem__msg_rule_of(op)->admin);
}

TEST(proto_reply_roundtrip)
{
    unsigned char b[TMEM_MSG_REPLY_BASE];
    tmem__msg_hdr h;
    tmem__msg_res r;
    tmem__reply_encode(b, TMEM_MSG_FLUSH_MIB, 7, -ENOSPC, -12345678901LL, 0x33,
                       4096);
    ASSERT_EQ(tmem__reply_decode(b, &h, &r), 0);
    ASSERT_EQ(h.status, -ENOSPC);
    ASSERT_EQ(h.seq, 7);
    ASSERT_EQ(h.len, TMEM_MSG_REPLY_BASE + 4096);
    ASSERT_EQ(r.value, -12345678901LL);
    ASSERT_EQ(r.out_flags, 0x33);
    tmem__reply_encode(b, 1, 1, 0, 0, 0, TMEM_MSG_REPLY_MAX);
    ASSERT_EQ(tmem__reply_decode(b, &h, &r), -EPROTO); /* too long */
    tmem__reply_encode(b, 1, 1, 0, 0, 0, 10);
    b[28] = 11; /* payload field disagrees with len */
    ASSERT_EQ(tmem__reply_decode(b, &h, &r), -EPROTO);
}

TEST(proto_ring_layout_and_entries)
{
    tmem__ring_layout l;
    ASSERT_EQ(tmem__ring_layout_of(0, &l), -EINVAL);
    ASSERT_EQ(tmem__ring_layout_of(TMEM_RING_MAX_ENTRIES + 1, &l), -EINVAL);
    ASSERT_EQ(tmem__ring_layout_of(256, &l), 0);
    ASSERT_EQ(l.sq_off, 4096);
    ASSERT_EQ(l.cq_off % 4096, 0);
    ASSERT_EQ(l.slot_off % 4096, 0);
    ASSERT_GE(l.cq_off, l.sq_off + 256 * 64);
    ASSERT_EQ(l.size, l.slot_off + 256 * 4096);
    tmem__ring r = {0};
    int fd;
    ASSERT_EQ(tmem__ring_create(4, &r, &fd), 0);
    tmem__ring d = {0};
    ASSERT_EQ(tmem__ring_attach(fd, 4, &d), 0);
    tmem__ring big = {0};
    ASSERT_EQ(tmem__ring_attach(fd, 8, &big), -EINVAL); /* memfd too small */
    ASSERT_EQ(tmem__ring_attach(fd, 2, &big), -EINVAL); /* too big: exact */
    int pp[2];
    ASSERT_EQ(pipe(pp), 0);
    ASSERT_EQ(tmem__ring_attach(pp[0], 4, &big), -EBADF); /* not a memfd */
    close(pp[0]);
    close(pp[1]);
    int loose = memfd_create("loose", MFD_ALLOW_SEALING);
    ASSERT_EQ(ftruncate(loose, (off_t)r.lay.size), 0);
    ASSERT_EQ(tmem__ring_attach(loose, 4, &big), -EPERM); /* no seals */
    close(loose);
    r.sq[0] = (tmem__ring_sqe){.op = TMEM_OP_PUT, .slot = 3, .pool = 1};
    tmem__ring_sqe e;
    ASSERT_EQ(tmem__ring_sqe_fetch(&d, 0, &e), 0);
    ASSERT_EQ(e.pool, 1);
    r.sq[0].slot = 4;
    ASSERT_EQ(tmem__ring_sqe_fetch(&d, 0, &e), -EINVAL);
    r.sq[0].op = TMEM_OP_FLUSH_PAGE; /* slot unused: fine */
    ASSERT_EQ(tmem__ring_sqe_fetch(&d, 0, &e), 0);
    r.sq[0].op = 0;
    ASSERT_EQ(tmem__ring_sqe_fetch(&d, 0, &e), -EINVAL);
    ASSERT_EQ(tmem__ring_count_check(&d, 0), -EINVAL);
    ASSERT_EQ(tmem__ring_count_check(&d, 4), 0);
    ASSERT_EQ(tmem__ring_count_check(&d, 5), -EINVAL);
    tmem__ring_unmap(&d);
    tmem__ring_unmap(&r);
    close(fd);
}

TEST(proto_default_path)
{
    setenv("TMEM_SOCKET", "/x/y.sock", 1);
    ASSERT_STR_EQ(tmem__conn_default_path(), "/x/y.sock");
    unsetenv("TMEM_SOCKET");
    if (geteuid() == 0)
        ASSERT_STR_EQ(tmem__conn_default_path(), "/run/tmem/tmemd.sock");
    tmem__conn *c;
    ASSERT_EQ(tmem__conn_open("/nonexistent/dir/sock", &c), -ENOENT);
}

/* tmem__unpack: every encoding, and every bad length or encoding refused
 * without touching memory past the data. */
TEST(proto_unpack)
{
    unsigned char page[TMEM_PAGE_SIZE], want[TMEM_PAGE_SIZE];
    unsigned char lz[LZ4_COMPRESSBOUND(TMEM_PAGE_SIZE)];
    for (size_t i = 0; i < TMEM_PAGE_SIZE; i++)
        want[i] = (unsigned char)(i % 251 / 7);
    int n = LZ4_compress_default((const char *)want, (char *)lz,
                                 TMEM_PAGE_SIZE, (int)sizeof lz);
    ASSERT_TRUE(n > 0 && n < TMEM_PAGE_SIZE);
    tmem_packed pk = {TMEM_PACK_LZ4, (uint32_t)n, 0};
    ASSERT_EQ(tmem__unpack(&pk, lz, page), 0);
    ASSERT_MEM_EQ(page, want, TMEM_PAGE_SIZE);
    pk.len = (uint32_t)n - 1; /* truncated */
    ASSERT_EQ(tmem__unpack(&pk, lz, page), -EIO);
    pk.len = 0;
    ASSERT_EQ(tmem__unpack(&pk, lz, page), -EINVAL);
    pk.len = TMEM_PAGE_SIZE + 1;
    ASSERT_EQ(tmem__unpack(&pk, lz, page), -EINVAL);
    /* a block that decodes to less than a page */
    int m = LZ4_compress_default((const char *)want, (char *)lz, 100,
                                 (int)sizeof lz);
    pk = (tmem_packed){TMEM_PACK_LZ4, (uint32_t)m, 0};
    ASSERT_EQ(tmem__unpack(&pk, lz, page), -EIO);
    memset(lz, 0xff, 64); /* garbage */
    pk.len = 64;
    ASSERT_EQ(tmem__unpack(&pk, lz, page), -EIO);

    pk = (tmem_packed){TMEM_PACK_RAW, TMEM_PAGE_SIZE, 0};
    ASSERT_EQ(tmem__unpack(&pk, want, page), 0);
    ASSERT_MEM_EQ(page, want, TMEM_PAGE_SIZE);
    pk.len = 100;
    ASSERT_EQ(tmem__unpack(&pk, want, page), -EINVAL);

    pk = (tmem_packed){TMEM_PACK_FILL, 0, 0x01020304u};
    ASSERT_EQ(tmem__unpack(&pk, NULL, page), 0);
    uint32_t w;
    memcpy(&w, page + TMEM_PAGE_SIZE - 4, 4);
    ASSERT_EQ(w, 0x01020304u);
    pk.len = 4;
    ASSERT_EQ(tmem__unpack(&pk, NULL, page), -EINVAL);
    pk = (tmem_packed){3, 0, 0};
    ASSERT_EQ(tmem__unpack(&pk, NULL, page), -EINVAL);
}
