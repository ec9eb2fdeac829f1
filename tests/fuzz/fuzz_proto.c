/*
 * libFuzzer target for the tmemd protocol decoder and the ring entry
 * validation: the first byte picks the path, the rest is the input.
 *   0: a socket request (tmem__req_decode, and the header check alone)
 *   1: a reply header + result block (tmem__reply_decode)
 *   2: ring contents: a count and submission entries, validated as the
 *      daemon does (count check, tmem__ring_sqe_fetch)
 * Every accepted request must satisfy the decoder's invariants (known
 * opcode, exact length, page pointer inside the input); the fuzzer aborts
 * otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <proto/conn.h>
#include <proto/proto.h>

#include "fuzz.h"

static void check_request(const uint8_t *d, size_t n)
{
    tmem__req q;
    if (tmem__req_decode(d, n, &q) != 0)
        return;
    const tmem__msg_rule *r = tmem__msg_rule_of(q.hdr.op);
    if (!r || q.hdr.len != n || n > TMEM_MSG_REQ_MAX)
        abort();
    if (r->page != (q.page != NULL))
        abort();
    if (q.page && (const uint8_t *)q.page + TMEM_PAGE_SIZE != d + n)
        abort();
    if (n >= TMEM_MSG_HDR_SIZE) {
        tmem__msg_hdr h;
        memcpy(&h, d, sizeof h);
        if (tmem__req_check_hdr(&h) != 0)
            abort();
    }
}

static void check_reply(const uint8_t *d, size_t n)
{
    if (n < TMEM_MSG_REPLY_BASE)
        return;
    tmem__msg_hdr h;
    tmem__msg_res r;
    if (tmem__reply_decode(d, &h, &r) == 0 &&
        (h.len > TMEM_MSG_REPLY_MAX ||
         r.payload + TMEM_MSG_REPLY_BASE != h.len))
        abort();
}

/* A ring of 8 entries in private memory, filled from the input. */
static void check_ring(const uint8_t *d, size_t n)
{
    static _Alignas(4096) unsigned char mem[4096 * 12];
    tmem__ring r = {0};
    if (n < 4 || tmem__ring_layout_of(8, &r.lay) != 0 ||
        r.lay.size > sizeof mem)
        return;
    r.base = mem;
    r.sq = (tmem__ring_sqe *)(mem + r.lay.sq_off);
    size_t body =
        n - 4 < 8 * sizeof(tmem__ring_sqe) ? n - 4 : 8 * sizeof(tmem__ring_sqe);
    memset(r.sq, 0, 8 * sizeof(tmem__ring_sqe));
    memcpy(r.sq, d + 4, body);
    uint32_t count;
    memcpy(&count, d, 4);
    if (tmem__ring_count_check(&r, count) != 0)
        return;
    for (uint32_t i = 0; i < count; i++) {
        tmem__ring_sqe e;
        if (tmem__ring_sqe_fetch(&r, i, &e) != 0)
            continue;
        if ((e.op == TMEM_OP_PUT || e.op == TMEM_OP_GET) && e.slot >= 8)
            abort();
        if (e.op < TMEM_OP_PUT || e.op > TMEM_OP_FLUSH_OBJECT)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static void (*const path[])(const uint8_t *, size_t) = {
        check_request,
        check_reply,
        check_ring,
    };
    path[data[0] % 3](data + 1, size - 1);
    return 0;
}
