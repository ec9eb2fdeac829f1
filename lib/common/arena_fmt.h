/*
 * The arena format (docs/layout.md): the bytes of a store arena file,
 * shared by the store that writes it (lib/store/arena.c) and the tenant
 * that reads its own private arena through a read-only mapping
 * (lib/client), so both sides agree on one definition.
 *
 * A file of TMEM_ARENA_SEG_SIZE segments.  Segment 0 is the header (its
 * first 4 KiB) and the handle directory (the rest); other segments start
 * with a tmem_arena_seg header and hold either records (DATA) or handle
 * entries (HANDLE).  A record never straddles a segment.  In a named
 * (private) arena it is a 72-byte tmem_arena_rec and its payload, 8-byte
 * aligned: it names its owner, pool, oid, index and carries a checksum.
 * In the common arena it is an 8-byte tmem_arena_srec and its payload,
 * byte-packed: the store's index names those pages, and every byte of
 * header there is paid on every ephemeral page.  A handle entry names the
 * current place of one record; records name their handle back.
 *
 * Readers take no lock: tmem__arena_read copies a record between two reads
 * of the header's move_seq (odd while a compaction step moves records) and
 * checks it.  Nothing here allocates, locks or calls the kernel, so a
 * signal handler may read.  Integers are in host byte order (the file is
 * shared between processes of one host, or saved and restored by tmem,
 * which checks the version).
 */
#ifndef TMEM_COMMON_ARENA_FMT_H
#define TMEM_COMMON_ARENA_FMT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TMEM_ARENA_MAGIC 0x414e4d54u /* "TMNA" */
#define TMEM_ARENA_VERSION 1u
#define TMEM_ARENA_SEG_SHIFT 18
#define TMEM_ARENA_SEG_SIZE (1u << TMEM_ARENA_SEG_SHIFT)
#define TMEM_ARENA_SEG_HDR 64u      /* segment header bytes */
#define TMEM_ARENA_HDIR_OFF 256u    /* the handle directory in segment 0 */
/* Directory entries: 16,384 handle segments of 16,384 handles (2^28: the
 * dedup index keeps 28 bits of a handle). */
#define TMEM_ARENA_HDIR_MAX 16383u
/* Handles per HANDLE segment (16 bytes each; the first 64 bytes hold the
 * segment header, so slot 0..3 are never handed out). */
#define TMEM_ARENA_HPS (TMEM_ARENA_SEG_SIZE / 16u)
#define TMEM_ARENA_MAX_HANDLES (TMEM_ARENA_HDIR_MAX * TMEM_ARENA_HPS)
#define TMEM_ARENA_REC_HDR 72u  /* named arenas */
#define TMEM_ARENA_SREC_HDR 6u  /* the common arena */

/* Arena states (header) */
enum { TMEM_ARENA_LIVE = 1, TMEM_ARENA_DEAD = 2 };
/* Segment types */
enum { TMEM_ARENA_SEG_DATA = 1, TMEM_ARENA_SEG_HANDLE = 2 };
/* Record states: a record only moves forward (LIVE -> NAMEDEAD -> FREE). */
enum {
    TMEM_REC_LIVE = 0x4c495645u,     /* "LIVE": data and its name */
    TMEM_REC_NAMEDEAD = 0x4e414d44u, /* data kept for aliases, name gone */
    TMEM_REC_FREE = 0x46524545u,     /* dead */
};
/* Record kinds */
enum { TMEM_REC_DATA = 1, TMEM_REC_ALIAS = 2 };

typedef struct tmem_arena_hdr {
    uint32_t magic, version;
    uint32_t seg_size, hdir_off;
    _Atomic uint32_t state;    /* TMEM_ARENA_LIVE / DEAD */
    _Atomic uint32_t move_seq; /* odd while a compaction step runs */
    _Atomic uint32_t nseg;     /* segments the file holds */
    _Atomic uint32_t ndir;     /* handle directory entries in use */
    uint32_t owner;            /* the owner's identity number */
    uint32_t flags;            /* TMEM_ARENA_F_* */
    uint64_t created_ns;       /* CLOCK_REALTIME at creation */
    uint32_t pool_inst;        /* the last pool instance number given */
    _Atomic uint32_t tag_len;  /* bytes of tag (0: no owner yet) */
    /* bytes 56..63 reserved; 64..255 the tag; then the directory; then
     * the pool table (TMEM_ARENA_POOLS_OFF) */
} tmem_arena_hdr;

#define TMEM_ARENA_F_NAMED 1u /* private arena: every name has a record */
/* A file that outlives the daemon (its records are recovered after a
 * crash, docs/persistence.md): same-filled pages get records too. */
#define TMEM_ARENA_F_FILE 2u

/* Who owns a private arena, in the owner's words (the daemon writes its
 * tenant's uid, name and resume token): opaque to the store. */
#define TMEM_ARENA_TAG_OFF 64u
#define TMEM_ARENA_TAG_MAX 192u

/* The private pools' table, after the handle directory: one entry per
 * pool id.  A record's pool field is id | inst << 8: a record of a pool
 * destroyed since (whose entry is gone or has another inst) names no
 * pool, so a crash in the middle of a pool's destruction, or a new pool
 * with the id, never brings its old pages back. */
#define TMEM_ARENA_POOLS_OFF 65792u /* 256 + 4 x 16,383, 64-aligned */
#define TMEM_ARENA_POOLS_MAX 16u
#define TMEM_ARENA_POOL_ID(p) ((p) & 0xffu)
#define TMEM_ARENA_POOL_INST(p) ((p) >> 8)

typedef struct tmem_arena_pool {
    _Atomic uint32_t inst; /* 0: no pool; written last, cleared first */
    uint32_t flags;        /* the pool's TMEM_POOL_* flags */
    uint64_t uuid[2];
} tmem_arena_pool;

typedef struct tmem_arena_seg {
    uint32_t magic; /* TMEM_ARENA_MAGIC */
    uint32_t type;  /* TMEM_ARENA_SEG_* */
    uint64_t seq;   /* arena put sequence when the segment was opened */
    uint8_t reserved[48];
} tmem_arena_seg;

typedef struct tmem_arena_rec {
    _Atomic uint32_t state; /* TMEM_REC_*, written last; not checksummed */
    uint32_t csum;          /* tmem__arena_csum */
    uint32_t handle, gen;   /* back-pointer */
    uint16_t len;           /* payload bytes (0 for an alias) */
    uint8_t codec;          /* 0 raw, 1 LZ4, 2 zstd */
    uint8_t kind;           /* TMEM_REC_DATA / ALIAS */
    uint32_t owner, pool, index;
    uint64_t oid[3];
    uint64_t seq;
    uint32_t hash; /* DATA: the content hash; ALIAS: the target handle */
    uint32_t tgen; /* ALIAS: the target's gen */
} tmem_arena_rec;

/* The common arena's record header (read with memcpy: byte-packed):
 * the handle, and len | codec << 13 | alias << 15 (the same bits as the
 * low 16 of a handle's loc). */
typedef struct __attribute__((packed)) tmem_arena_srec {
    uint32_t handle;
    uint16_t lck;
} tmem_arena_srec;

_Static_assert(sizeof(tmem_arena_hdr) == 56, "arena header fields");
_Static_assert(TMEM_ARENA_POOLS_OFF >= TMEM_ARENA_HDIR_OFF +
                                           4u * TMEM_ARENA_HDIR_MAX,
               "pool table after the directory");
_Static_assert(sizeof(tmem_arena_rec) == TMEM_ARENA_REC_HDR,
               "record header is 72 bytes");
_Static_assert(sizeof(tmem_arena_srec) == TMEM_ARENA_SREC_HDR,
               "short record header is 6 bytes");
_Static_assert(sizeof(tmem_arena_seg) == TMEM_ARENA_SEG_HDR,
               "segment header is 64 bytes");

/* A handle entry.  loc: 0 never used; TMEM_ALOC_FREE | next free + 1; or
 * a live record's place (TMEM_ALOC_MAKE).  aux: the content hash while
 * live (dedup), the last gen while free.  ref: references held (the
 * store's; not part of the format). */
typedef struct tmem_arena_handle {
    _Atomic uint64_t loc;
    _Atomic uint32_t ref;
    _Atomic uint32_t aux;
} tmem_arena_handle;

#define TMEM_ALOC_FREE (1ull << 63)
#define TMEM_ALOC_MAKE(seg, off, len, codec, alias)                          \
    ((uint64_t)(seg) << 34 | (uint64_t)(off) << 16 |                         \
     (uint64_t)((alias) != 0) << 15 | (uint64_t)((codec) & 3) << 13 |        \
     (uint64_t)((len) & 0x1fff))
#define TMEM_ALOC_SEG(l) ((uint32_t)((l) >> 34) & 0x1fffffffu)
#define TMEM_ALOC_OFF(l) ((uint32_t)((l) >> 16) & 0x3ffffu)
#define TMEM_ALOC_ALIAS(l) ((unsigned)((l) >> 15) & 1u)
#define TMEM_ALOC_CODEC(l) ((unsigned)((l) >> 13) & 3u)
#define TMEM_ALOC_LEN(l) ((uint32_t)(l) & 0x1fffu)
#define TMEM_ALOC_LIVE(l) ((l) != 0 && !((l) & TMEM_ALOC_FREE))

/* Bytes a record with len payload bytes takes in its segment. */
static inline uint32_t tmem__arena_rec_size(int named, uint32_t len)
{
    return named ? TMEM_ARENA_REC_HDR + ((len + 7u) & ~7u)
                 : TMEM_ARENA_SREC_HDR + len;
}

/* The record's checksum: low 32 bits of XXH3-64 over the header from
 * handle on, then the payload. */
uint32_t tmem__arena_csum(const tmem_arena_rec *r, const void *payload);

/* Handle entry h of a mapped arena (base, map_len bytes valid), or NULL
 * when its directory entry is missing or out of bounds. */
const tmem_arena_handle *tmem__arena_handle_at(const void *base,
                                               size_t map_len, uint32_t h);

/* How much tmem__arena_read checks: a tenant reading its own mapping
 * checks everything; the store, which holds a reference on what it reads,
 * needs only the seqlock. */
enum { TMEM_ARENA_TRUST = 0, TMEM_ARENA_VERIFY = 1 };

/* Copies the DATA record of handle h (generation gen; an alias is followed
 * once) out of a mapped arena into *out and payload[4096] (from a short
 * record, only handle, len, codec and kind are filled).  With
 * TMEM_ARENA_VERIFY (named arenas only) the back-pointer (handle, gen),
 * state, kind, length and checksum must all hold.  Returns 0; -ENOENT when h is not a live
 * (h, gen) (freed, reused, never there); -EAGAIN when the arena is dead or
 * the record kept moving (retry later, or ask the store); -EIO when a
 * record fails its checks after retries. */
int tmem__arena_read(const void *base, size_t map_len, uint32_t h,
                     uint32_t gen, int verify, tmem_arena_rec *out,
                     void *payload);

#endif
