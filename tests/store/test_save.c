/*
 * Save and restore of a client's pools and pages (lib/store/save.c): a
 * round trip into another store gives every page back byte for byte with
 * equal figures; one changed byte anywhere in the stream, any truncation,
 * bytes after its end, another version or no stream at all is refused
 * and leaves the target as it was; a target budget too small for the
 * pages refuses the whole stream; a write that fails fails the save.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <tmem/store.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "../runner.h"
#include "store/save.h"
#include "store_testutil.h"

#define NOBJ 6
#define NIDX 40 /* 240 persistent pages, every kind tu_page makes */

/* A client with a persistent pool (pages of every kind), an ephemeral
 * pool with pages, and an empty persistent pool. */
static tmem_client *source(tmem_store *s, int *pers, int *eph, int *empty)
{
    tmem_client *c = tu_client(s);
    *eph = tmem_pool_new(c, NULL, EPH, NULL);
    *pers = tmem_pool_new(c, NULL, PERS, NULL);
    *empty = tmem_pool_new(c, NULL, PERS, NULL);
    ASSERT_TRUE(*eph >= 0 && *pers >= 0 && *empty >= 0);
    for (uint64_t o = 0; o < NOBJ; o++)
        for (uint32_t i = 0; i < NIDX; i++)
            ASSERT_EQ(tu_put(c, *pers, o, i * 3, o * 1000 + i), 1);
    for (uint32_t i = 0; i < 10; i++)
        ASSERT_EQ(tu_put(c, *eph, 99, i, 5000 + i), 1);
    return c;
}

/* The stream c saves, in a memfd; *len its bytes. */
static int saved(tmem_client *c, size_t *len)
{
    int fd = memfd_create("tmem-save-test", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    tmem_save_stats st;
    ASSERT_EQ(tmem__client_save(c, fd, &st), 0);
    ASSERT_EQ(st.pages, NOBJ * NIDX);
    ASSERT_EQ(st.pools, 3);
    *len = (size_t)lseek(fd, 0, SEEK_END);
    ASSERT_EQ(*len, st.bytes);
    return fd;
}

/* A memfd holding len bytes of buf. */
static int stream_of(const unsigned char *buf, size_t len)
{
    int fd = memfd_create("tmem-save-test", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, buf, len), (ssize_t)len);
    ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static unsigned char *copy_of(const unsigned char *b, size_t len)
{
    unsigned char *c = malloc(len + 1);
    ASSERT_TRUE(c != NULL);
    memcpy(c, b, len);
    return c;
}

static unsigned char *slurp(int fd, size_t len)
{
    unsigned char *b = malloc(len + 1);
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ(pread(fd, b, len, 0), (ssize_t)len);
    return b;
}

/* Restores fd into c, returning the status; the target must be
 * unchanged (no pages, its pool ids free) when it is refused. */
static int restore_fd(tmem_store *s, tmem_client *c, int fd)
{
    int map[TMEM_MAX_POOLS];
    int rc = tmem__client_restore(c, fd, map, NULL);
    close(fd);
    if (rc < 0) {
        tmem_client_stats cs;
        ASSERT_EQ(tmem_store_client_stats(s, tmem_client_id(c), &cs), 0);
        ASSERT_EQ(cs.pers_pages, 0);
        for (int i = 0; i < TMEM_MAX_POOLS; i++)
            ASSERT_EQ(map[i], -1);
    }
    return rc;
}

/* A source store (*a) and client as source() makes, and its stream in
 * memory (*len bytes; the caller frees it). */
static unsigned char *saved_source(tmem_store **a, int *pers, size_t *len)
{
    int eph, empty;
    *a = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = source(*a, pers, &eph, &empty);
    int fd = saved(c, len);
    unsigned char *good = slurp(fd, *len);
    close(fd);
    return good;
}

TEST(save_restore_round_trip)
{
    tmem_store *a = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_store *b = tu_store(0, TMEM_COMPRESS_LZ4);
    int pers, eph, empty;
    tmem_client *c = source(a, &pers, &eph, &empty);
    size_t len;
    int fd = saved(c, &len);
    ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
    tmem_client *d = tu_client(b);
    int map[TMEM_MAX_POOLS];
    tmem_save_stats st;
    ASSERT_EQ(tmem__client_restore(d, fd, map, &st), 0);
    close(fd);
    ASSERT_EQ(st.pages, NOBJ * NIDX);
    ASSERT_EQ(st.pools, 3);
    ASSERT_EQ(st.bytes, len);
    /* a fresh client gets the same pool ids */
    ASSERT_EQ(map[pers], pers);
    ASSERT_EQ(map[eph], eph);
    ASSERT_EQ(map[empty], empty);
    for (uint64_t o = 0; o < NOBJ; o++)
        for (uint32_t i = 0; i < NIDX; i++)
            tu_expect_page(d, pers, o, i * 3, o * 1000 + i);
    /* the ephemeral pool comes back empty, the empty one empty */
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o99 = tu_oid(99);
    ASSERT_EQ(tmem_page_get(d, eph, &o99, 0, page), 0);
    tmem_oid o0 = tu_oid(0);
    ASSERT_EQ(tmem_page_get(d, empty, &o0, 0, page), 0);
    /* the same figures: pages, compressed bytes, zero and dedup pages
     * (the source's ephemeral pages, not saved, put aside) */
    ASSERT_EQ(tmem_object_flush(c, eph, &o99), 10);
    tmem_client_stats sa, sb;
    ASSERT_EQ(tmem_store_client_stats(a, tmem_client_id(c), &sa), 0);
    ASSERT_EQ(tmem_store_client_stats(b, tmem_client_id(d), &sb), 0);
    ASSERT_EQ(sb.pers_pages, sa.pers_pages);
    ASSERT_EQ(sb.data_bytes, sa.data_bytes);
    tmem_global_stats ga, gb;
    ASSERT_EQ(tmem_store_stats(a, &ga), 0);
    ASSERT_EQ(tmem_store_stats(b, &gb), 0);
    ASSERT_EQ(gb.pers_pages, ga.pers_pages);
    ASSERT_EQ(gb.zero_pages, ga.zero_pages);
    ASSERT_EQ(gb.dedup_pages, ga.dedup_pages);
    /* saving the restored client gives the same pages again */
    size_t len2;
    int fd2 = saved(d, &len2);
    ASSERT_EQ(len2, len);
    close(fd2);
    tmem_store_destroy(a);
    tmem_store_destroy(b);
}

TEST(save_restore_every_damaged_byte_refused)
{
    tmem_store *a;
    int pers;
    size_t len;
    unsigned char *good = saved_source(&a, &pers, &len);
    tmem_store *b = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *d = tu_client(b);
    /* every byte of the header, pool table, first records and trailer,
     * and about 1,500 bytes spread over the rest, changed one way or
     * another */
    unsigned tried = 0;
    size_t stride = len / 1500 | 1;
    for (size_t i = 0; i < len; i++) {
        if (i >= 400 && i + 64 < len && i % stride)
            continue;
        unsigned char *bad = copy_of(good, len);
        bad[i] ^= (unsigned char)(1u << (i % 8));
        int rc = restore_fd(b, d, stream_of(bad, len));
        free(bad);
        if (rc >= 0)
            fprintf(stderr, "  byte %zu changed: accepted\n", i);
        ASSERT_LT(rc, 0);
        tried++;
    }
    /* cut short anywhere */
    for (size_t n = 0; n < len; n += n < 200 ? 1 : 8 * stride + 1) {
        ASSERT_LT(restore_fd(b, d, stream_of(good, n)), 0);
        tried++;
    }
    ASSERT_LT(restore_fd(b, d, stream_of(good, len - 1)), 0);
    /* bytes after its end */
    unsigned char *more = malloc(len + 1);
    memcpy(more, good, len);
    more[len] = 0;
    ASSERT_EQ(restore_fd(b, d, stream_of(more, len + 1)), TMEM_EINVAL);
    free(more);
    /* not a stream, and another version */
    ASSERT_EQ(restore_fd(b, d, stream_of((const unsigned char *)"hello", 5)),
              -EPROTO);
    ASSERT_EQ(restore_fd(b, d, stream_of(good, 0)), -EPROTO);
    {
        unsigned char *v2 = copy_of(good, len);
        uint32_t version = TMEM_SAVE_VERSION + 1;
        memcpy(v2 + 8, &version, 4);
        uint64_t sum = XXH3_64bits(v2, 32); /* the header's own sum */
        memcpy(v2 + 32, &sum, 8);
        ASSERT_EQ(restore_fd(b, d, stream_of(v2, len)), -EPROTO);
        free(v2);
    }
    fprintf(stderr, "  %u damaged streams of %zu bytes refused\n", tried, len);
    /* and after all that the good one goes in whole */
    ASSERT_EQ(restore_fd(b, d, stream_of(good, len)), 0);
    tu_expect_page(d, pers, NOBJ - 1, (NIDX - 1) * 3,
                   (NOBJ - 1) * 1000 + NIDX - 1);
    free(good);
    tmem_store_destroy(a);
    tmem_store_destroy(b);
}

TEST(save_restore_over_budget_refused_whole)
{
    tmem_store *a;
    int pers;
    size_t len;
    unsigned char *good = saved_source(&a, &pers, &len);
    /* room for a part of the pages only */
    tmem_global_stats ga;
    ASSERT_EQ(tmem_store_stats(a, &ga), 0);
    tmem_store *b = tu_store(ga.used_bytes / 2, TMEM_COMPRESS_LZ4);
    tmem_client *d = tu_client(b);
    ASSERT_EQ(restore_fd(b, d, stream_of(good, len)), TMEM_ENOSPC);
    tmem_global_stats gb;
    ASSERT_EQ(tmem_store_stats(b, &gb), 0);
    ASSERT_EQ(gb.pers_pages, 0);
    /* a cap refuses it the same way */
    tmem_store *e = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *f = tu_client(e);
    ASSERT_EQ(tmem_store_set_cap(e, tmem_client_id(f), 100), 0);
    ASSERT_EQ(restore_fd(e, f, stream_of(good, len)), TMEM_ENOSPC);
    free(good);
    tmem_store_destroy(a);
    tmem_store_destroy(b);
    tmem_store_destroy(e);
}

TEST(save_write_failure_fails_the_save)
{
    tmem_store *a = tu_store(0, TMEM_COMPRESS_LZ4);
    int pers, eph, empty;
    tmem_client *c = source(a, &pers, &eph, &empty);
    int fd = open("/dev/null", O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(tmem__client_save(c, fd, NULL), -EBADF);
    close(fd);
    fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        ASSERT_EQ(tmem__client_save(c, fd, NULL), -ENOSPC);
        close(fd);
    }
    tmem_store_destroy(a);
}

/* Makes every sum of a version-1 stream right again after an edit (the
 * layout of lib/store/save.c), so that what a reader checks after the
 * sums is what refuses it. */
static void resum(unsigned char *b, size_t len)
{
    uint64_t h = XXH3_64bits(b, 32);
    memcpy(b + 32, &h, 8);
    uint32_t np;
    memcpy(&np, b + 12, 4);
    size_t off = 40 + (size_t)np * 24;
    h = XXH3_64bits(b + 40, (size_t)np * 24);
    memcpy(b + off, &h, 8);
    off += 8;
    while (off + 32 < len) { /* page records, up to the trailer */
        uint16_t plen;
        memcpy(&plen, b + off + 14, 2);
        XXH3_state_t st;
        XXH3_64bits_reset(&st);
        XXH3_64bits_update(&st, b + off, 48);
        XXH3_64bits_update(&st, b + off + 56, plen);
        h = XXH3_64bits_digest(&st);
        memcpy(b + off + 48, &h, 8);
        off += 56 + plen;
    }
    ASSERT_EQ(off + 32, len);
    h = XXH3_64bits(b, off);
    memcpy(b + off + 24, &h, 8);
}

/* Streams whose sums are right but whose content is not: pools a restore
 * must refuse, and a page for a pool that is not persistent. */
TEST(save_restore_refuses_what_the_sums_allow)
{
    tmem_store *a = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *c = tu_client(a);
    int eph = tmem_pool_new(c, NULL, EPH, NULL);
    int pers = tmem_pool_new(c, NULL, PERS, NULL);
    ASSERT_EQ(eph, 0);
    ASSERT_EQ(pers, 1);
    ASSERT_EQ(tu_put(c, pers, 1, 0, 2), 1); /* a text-like page: LZ4 */
    size_t len;
    int fd = memfd_create("tmem-save-test", MFD_CLOEXEC);
    ASSERT_EQ(tmem__client_save(c, fd, NULL), 0);
    len = (size_t)lseek(fd, 0, SEEK_END);
    unsigned char *good = slurp(fd, len);
    close(fd);
    tmem_store *b = tu_store(0, TMEM_COMPRESS_LZ4);
    tmem_client *d = tu_client(b);
    /* the untouched stream, sums made again, still goes in: resum is
     * right */
    unsigned char *x = copy_of(good, len);
    resum(x, len);
    ASSERT_MEM_EQ(x, good, len);
    free(x);
    size_t tab = 40, page = 40 + 2 * 24 + 8;
    struct {
        const char *what;
        size_t off;
        uint32_t val;
    } bad[] = {
        {"a shared pool", tab + 24 + 4, PERS | TMEM_POOL_SHARED},
        {"a pool id past 15", tab + 24, 16},
        {"the same pool id twice", tab + 24, 0},
        {"flags the store refuses", tab + 24 + 4, 0x80},
        {"more pools than 16", 12, 17},
        {"a page for the ephemeral pool", page + 4, 0},
        {"a page for a pool not in the table", page + 4, 7},
        {"an unknown encoding", page + 12, 9},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        x = copy_of(good, len);
        if (bad[k].off == page + 12)
            x[bad[k].off] = (unsigned char)bad[k].val;
        else
            memcpy(x + bad[k].off, &bad[k].val, 4);
        if (bad[k].off != 12)
            resum(x, len);
        else { /* the header alone: its own sum */
            uint64_t h = XXH3_64bits(x, 32);
            memcpy(x + 32, &h, 8);
        }
        int rc = restore_fd(b, d, stream_of(x, len));
        if (rc >= 0)
            fprintf(stderr, "  %s: accepted\n", bad[k].what);
        ASSERT_LT(rc, 0);
        free(x);
    }
    free(good);
    tmem_store_destroy(a);
    tmem_store_destroy(b);
}
