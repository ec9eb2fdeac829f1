/*
 * libFuzzer target for packed pages, the bytes a tenant hands the store
 * already encoded: tmem__unpack (lib/common/pack.c) and the store's
 * packed put (tmem_page_put_packed -> tmem__blob_put_packed), with the
 * content hash the tenant claims.
 *
 * Input: byte 0 picks the clients' codec (LZ4, zstd, none); then records
 *   [op][index][enc][len:2][fill:4][hash:4][data: len bytes]
 * (little endian; data short of len is zero-padded, in a buffer of
 * exactly len bytes so a read past it is caught).  op bit 0 picks one of
 * two clients (two tenants of one store: dedup across them), bits 1-2
 * put (0, 1), flush (2) or read back now (3).
 *
 * Beyond not crashing, it holds the store to what tmem/store.h promises,
 * against a model of every page: tmem__unpack returns 0, -EINVAL or -EIO
 * and decodes raw and fill pages exactly; a put the unpacker calls
 * -EINVAL is refused with TMEM_EINVAL; an accepted put reads back as the
 * page its data decodes to, whatever hash was claimed and whatever other
 * pages share it (LZ4 data that does not decode may be accepted only by
 * an LZ4 client and then reads back -EIO); a refused put leaves no page.
 * tmem_page_get_packed returns a form that decodes to the same page.  A
 * broken rule aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tmem/errors.h>
#include <tmem/store.h>

#include "common/pack.h"
#include "fuzz.h"

#define NCLIENTS 2
#define NINDEX 32 /* few names: puts replace, flush and dedup each other */
#define REC_HDR 13

enum { ABSENT, PAGE, CORRUPT };

struct model {
    uint8_t state[NCLIENTS][NINDEX];
    uint8_t page[NCLIENTS][NINDEX][TMEM_PAGE_SIZE];
};

struct run {
    tmem_store *s;
    tmem_client *c[NCLIENTS];
    int pool[NCLIENTS];
    tmem_compress codec;
    struct model *m;
};

static const tmem_oid oid = {{7, 0, 0}};

static uint32_t le(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* tmem__unpack's own contract; returns its result, page filled on 0. */
static int unpack_checked(const tmem_packed *pk, const uint8_t *d,
                          uint8_t *page)
{
    int u = tmem__unpack(pk, d, page);
    CHECK(u == 0 || u == -EINVAL || u == -EIO);
    if (pk->enc == TMEM_PACK_RAW && pk->len == TMEM_PAGE_SIZE)
        CHECK(u == 0 && memcmp(page, d, TMEM_PAGE_SIZE) == 0);
    if (pk->enc == TMEM_PACK_FILL && pk->len == 0) {
        uint32_t w;
        CHECK(u == 0 && tmem__fill_word(page, &w) && w == pk->fill);
    }
    if (pk->enc > TMEM_PACK_FILL)
        CHECK(u == -EINVAL);
    return u;
}

/* Reads (k, idx) back both ways and compares with the model. */
static void check_one(struct run *r, int k, uint32_t idx)
{
    static uint8_t got[TMEM_PAGE_SIZE], buf[TMEM_PAGE_SIZE],
        dec[TMEM_PAGE_SIZE];
    uint8_t st = r->m->state[k][idx];
    int g = tmem_page_get(r->c[k], r->pool[k], &oid, idx, got);
    if (st == ABSENT)
        CHECK(g == 0);
    else if (st == CORRUPT)
        CHECK(g == -EIO);
    else
        CHECK(g == 1 && memcmp(got, r->m->page[k][idx], TMEM_PAGE_SIZE) == 0);

    tmem_packed pk;
    g = tmem_page_get_packed(r->c[k], r->pool[k], &oid, idx, buf, &pk);
    if (st == ABSENT) {
        CHECK(g == 0);
    } else if (st == PAGE) {
        CHECK(g == 1);
        CHECK(tmem__unpack(&pk, buf, dec) == 0);
        CHECK(memcmp(dec, r->m->page[k][idx], TMEM_PAGE_SIZE) == 0);
    } else {
        /* stored as given: handed back as LZ4 the tenant cannot decode */
        CHECK(g == -EIO || (g == 1 && tmem__unpack(&pk, buf, dec) != 0));
    }
}

/* One packed put of record rec (REC_HDR bytes) with its data. */
static void put_one(struct run *r, int k, uint32_t idx, const uint8_t *rec,
                    const uint8_t *d, size_t avail)
{
    static uint8_t page[TMEM_PAGE_SIZE];
    tmem_packed pk = {.enc = rec[2] < 3 ? rec[2] : 0x100u + rec[2],
                      .len = le(rec + 3, 2),
                      .fill = le(rec + 5, 4)};
    uint32_t hash = le(rec + 9, 4);
    uint8_t *buf = malloc(pk.len ? pk.len : 1);
    CHECK(buf != NULL);
    memset(buf, 0, pk.len);
    memcpy(buf, d, avail < pk.len ? avail : pk.len);

    int u = unpack_checked(&pk, buf, page);
    int p =
        tmem_page_put_packed(r->c[k], r->pool[k], &oid, idx, &pk, buf, hash);
    free(buf);
    CHECK(p == 1 || p == TMEM_EINVAL || p == TMEM_ENOSPC || p == TMEM_ENOMEM);
    if (u == -EINVAL)
        CHECK(p == TMEM_EINVAL);
    if (p != 1) {
        r->m->state[k][idx] = ABSENT;
        return;
    }
    if (u == -EIO) {
        CHECK(pk.enc == TMEM_PACK_LZ4 && r->codec == TMEM_COMPRESS_LZ4);
        r->m->state[k][idx] = CORRUPT;
        return;
    }
    r->m->state[k][idx] = PAGE;
    memcpy(r->m->page[k][idx], page, TMEM_PAGE_SIZE);
}

static int run_open(struct run *r, uint8_t codec_byte)
{
    static const tmem_compress codecs[] = {
        TMEM_COMPRESS_LZ4, TMEM_COMPRESS_ZSTD, TMEM_COMPRESS_NONE};
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    r->codec = codecs[codec_byte % 3];
    cfg.compress = r->codec;
    if (tmem_store_create(&cfg, &r->s) != 0)
        return -1;
    for (int k = 0; k < NCLIENTS; k++) {
        CHECK(tmem_client_create(r->s, &r->c[k]) >= 0);
        r->pool[k] = tmem_pool_new(r->c[k], NULL,
                                   TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), NULL);
        CHECK(r->pool[k] >= 0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct model m;
    struct run r = {.m = &m};
    if (size < 1 || run_open(&r, data[0]) != 0)
        return 0;
    memset(m.state, ABSENT, sizeof m.state);
    size_t at = 1;
    while (at + REC_HDR <= size) {
        const uint8_t *rec = data + at;
        int k = rec[0] & 1, op = (rec[0] >> 1) & 3;
        uint32_t idx = rec[1] % NINDEX;
        size_t len = le(rec + 3, 2);
        at += REC_HDR;
        size_t avail = size - at < len ? size - at : len;
        if (op <= 1) {
            put_one(&r, k, idx, rec, data + at, avail);
            at += avail;
        } else if (op == 2) {
            int f = tmem_page_flush(r.c[k], r.pool[k], &oid, idx);
            CHECK(f == (m.state[k][idx] != ABSENT));
            m.state[k][idx] = ABSENT;
        } else {
            check_one(&r, k, idx);
        }
    }
    for (int k = 0; k < NCLIENTS; k++)
        for (uint32_t i = 0; i < NINDEX; i++)
            check_one(&r, k, i);
    tmem_store_destroy(r.s);
    return 0;
}
