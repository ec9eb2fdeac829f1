/*
 * Reading the arena format (arena_fmt.h): the checksum and the lock-free
 * reader that the store and tenants share.
 *
 * The reader is a seqlock reader: it copies a record between two reads of
 * the header's move_seq, so a record moved by a compaction step under it
 * is read again from its new place.  A tenant also checks that what it
 * copied is the record it asked for (back-pointer, state, kind, length,
 * checksum): a record freed and its segment punched or reused under it
 * fails those checks, so it never decodes bytes that are not its page.
 */
#include "arena_fmt.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>

#include <xxhash.h>

#define READ_TRIES 64      /* records that moved under the reader */
#define WAIT_ROUNDS 1000000 /* rounds waiting for a compaction step */

uint32_t tmem__arena_csum(const tmem_arena_rec *r, const void *payload)
{
    const unsigned char *h = (const unsigned char *)r;
    uint64_t seed = XXH3_64bits(h + 8, TMEM_ARENA_REC_HDR - 8);
    return (uint32_t)XXH3_64bits_withSeed(payload, r->len, seed);
}

static const tmem_arena_hdr *hdr_of(const void *base)
{
    return (const tmem_arena_hdr *)base;
}

const tmem_arena_handle *tmem__arena_handle_at(const void *base,
                                               size_t map_len, uint32_t h)
{
    const tmem_arena_hdr *a = hdr_of(base);
    uint32_t d = h / TMEM_ARENA_HPS, slot = h % TMEM_ARENA_HPS;
    if (d >= TMEM_ARENA_HDIR_MAX ||
        d >= atomic_load_explicit(&((tmem_arena_hdr *)a)->ndir,
                                  memory_order_acquire) ||
        slot < TMEM_ARENA_SEG_HDR / sizeof(tmem_arena_handle))
        return NULL;
    const _Atomic uint32_t *dir =
        (const _Atomic uint32_t *)((const char *)base + TMEM_ARENA_HDIR_OFF);
    uint32_t seg = atomic_load_explicit(&dir[d], memory_order_acquire);
    if (seg == 0 || ((size_t)seg + 1) << TMEM_ARENA_SEG_SHIFT > map_len)
        return NULL;
    return (const tmem_arena_handle *)((const char *)base +
                                       ((size_t)seg << TMEM_ARENA_SEG_SHIFT)) +
           slot;
}

/* Waits while a compaction step runs (move_seq odd); returns the even
 * value, or an odd one when it waited too long. */
static uint32_t seq_even(tmem_arena_hdr *a)
{
    uint32_t s = atomic_load_explicit(&a->move_seq, memory_order_acquire);
    for (unsigned i = 0; (s & 1) && i < WAIT_ROUNDS; i++) {
        if (i > 100)
            sched_yield(); /* a step moves at most one segment */
#if defined(__x86_64__) || defined(__i386__)
        else
            __builtin_ia32_pause();
#endif
        s = atomic_load_explicit(&a->move_seq, memory_order_acquire);
    }
    return s;
}

/* One consistent copy of handle h's record: 0, -ENOENT (not live),
 * -EAGAIN (moved under us: retry), -ERANGE (a place out of bounds). */
static int copy_once(const void *base, size_t map_len, uint32_t h,
                     tmem_arena_rec *out, void *payload)
{
    tmem_arena_hdr *a = (tmem_arena_hdr *)base;
    uint32_t s1 = seq_even(a);
    if (s1 & 1)
        return -EAGAIN;
    const tmem_arena_handle *he = tmem__arena_handle_at(base, map_len, h);
    if (!he)
        return -ENOENT;
    uint64_t loc = atomic_load_explicit(&((tmem_arena_handle *)he)->loc,
                                        memory_order_acquire);
    if (!TMEM_ALOC_LIVE(loc))
        return -ENOENT;
    uint32_t seg = TMEM_ALOC_SEG(loc), off = TMEM_ALOC_OFF(loc);
    uint32_t len = TMEM_ALOC_LEN(loc);
    bool named = a->flags & TMEM_ARENA_F_NAMED;
    uint32_t hl = named ? TMEM_ARENA_REC_HDR : TMEM_ARENA_SREC_HDR;
    if (len > 4096 || off < TMEM_ARENA_SEG_HDR ||
        off + hl + len > TMEM_ARENA_SEG_SIZE ||
        ((size_t)seg + 1) << TMEM_ARENA_SEG_SHIFT > map_len)
        return -ERANGE;
    const char *rec = (const char *)base +
                      ((size_t)seg << TMEM_ARENA_SEG_SHIFT) + off;
    if (named) {
        memcpy(out, rec, TMEM_ARENA_REC_HDR);
    } else {
        tmem_arena_srec sr;
        memcpy(&sr, rec, sizeof sr);
        memset(out, 0, sizeof *out);
        out->handle = sr.handle;
        out->len = sr.lck & 0x1fffu;
        out->codec = (uint8_t)((sr.lck >> 13) & 3u);
        out->kind = TMEM_REC_DATA;
        if (sr.lck >> 15)
            return -EIO; /* the common arena has no aliases */
    }
    memcpy(payload, rec + hl, len);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&a->move_seq, memory_order_relaxed) != s1)
        return -EAGAIN;
    if (out->len != len && out->kind == TMEM_REC_DATA)
        return -EIO; /* checked by the caller when it verifies */
    return 0;
}

/* Checks a copied record against what the reader asked for. */
static int check(const tmem_arena_rec *r, const void *payload, uint32_t h,
                 uint32_t gen, int want_alias_ok)
{
    uint32_t st = atomic_load_explicit(&((tmem_arena_rec *)r)->state,
                                       memory_order_relaxed);
    if (r->handle != h || r->gen != gen)
        return -ENOENT;
    if (st != TMEM_REC_LIVE && st != TMEM_REC_NAMEDEAD)
        return -ENOENT;
    if (r->kind != TMEM_REC_DATA && !(want_alias_ok && r->kind == TMEM_REC_ALIAS))
        return -EIO;
    if (r->kind == TMEM_REC_ALIAS && (r->len != 0 || st != TMEM_REC_LIVE))
        return -EIO;
    if (r->len > 4096 || r->codec > 2)
        return -EIO;
    return tmem__arena_csum(r, payload) == r->csum ? 0 : -EIO;
}

int tmem__arena_read(const void *base, size_t map_len, uint32_t h,
                     uint32_t gen, int verify, tmem_arena_rec *out,
                     void *payload)
{
    const tmem_arena_hdr *a = hdr_of(base);
    int hops = 0, r = -EAGAIN;
    for (int tries = 0; tries < READ_TRIES; tries++) {
        if (verify && (atomic_load_explicit(&((tmem_arena_hdr *)a)->state,
                                            memory_order_acquire) !=
                           TMEM_ARENA_LIVE ||
                       !(a->flags & TMEM_ARENA_F_NAMED)))
            return -EAGAIN;
        r = copy_once(base, map_len, h, out, payload);
        if (r == -EAGAIN || (r == -EIO && verify))
            continue; /* moved under us, or torn: read again */
        if (r < 0)
            return r == -ERANGE ? -EIO : r;
        if (verify) {
            r = check(out, payload, h, gen, hops == 0);
            if (r == -EIO)
                continue;
            if (r < 0)
                return r;
        }
        if (out->kind != TMEM_REC_ALIAS)
            return 0;
        if (++hops > 1)
            return -EIO; /* an alias of an alias: never written */
        gen = out->tgen;
        h = out->hash;
        tries = -1; /* the target gets its own tries */
    }
    return r == -EIO ? -EIO : -EAGAIN;
}
