/*
 * The tmemd wire protocol and shared-memory ring, used by both ends
 * (lib/proto/conn.c on the tenant side, src/tmemd on the daemon side).
 * docs/protocol.md is the prose version of this file.
 *
 * Socket messages: a 16-byte header, a 64-byte argument block (requests) or
 * a 16-byte result block (replies), then an optional payload.  Every length
 * is bounded: a request is at most TMEM_MSG_REQ_MAX bytes, a reply at most
 * TMEM_MSG_REPLY_MAX.  Both ends run on one host, so integers are in host
 * byte order; structs are copied with memcpy, never cast from a buffer.
 *
 * The ring: a sealed memfd the tenant passes with TMEM_MSG_RING_SETUP.
 * Layout for N entries (1 <= N <= TMEM_RING_MAX_ENTRIES):
 *   [0, 4096)                       struct tmem__ring_hdr (control words)
 *   [4096, +N*64)                   submission entries (tmem__ring_sqe)
 *   then, page aligned, N * 16      completion entries (tmem__ring_cqe)
 *   then, page aligned, N * 4096    page slots
 * A PUT's page is in its slot packed by the tenant (tmem__pack: a fill
 * word, LZ4 data or the raw page, with its content hash), so the tenant's
 * CPU compresses it and the daemon stores the bytes.
 * A GET that found its page leaves it in its slot packed (tmem_packed,
 * include/tmem/abi.h: LZ4 data as stored, a raw page, or a fill word with
 * no bytes) and the completion entry says how; the tenant decodes it, so
 * the daemon neither decompresses nor copies a whole page.
 * The tenant writes sq_ready = 0 and sq_count, bumps sq_seq, then fills
 * entries 0..count-1, raising sq_ready as they are written (so the daemon
 * works on the first pages while the tenant copies the next ones).
 * The daemon copies every field it reads from shared memory once into
 * locals before validating it (the tenant may change the memory at any
 * time), writes results, raising cq_ready as they are final (the tenant
 * zeroes it before each batch), then sets cq_seq = sq_seq.  Both sides spin for
 * a bounded time, then sleep on a futex on the word they wait for, having
 * announced it in srv_sleeping / cli_sleeping.  The tenant sets cq_taken =
 * cq_seq once it has taken a batch's results; until then the daemon keeps
 * spinning (bounded), since the next batch usually follows at once.
 */
#ifndef TMEM_PROTO_PROTO_H
#define TMEM_PROTO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tmem/abi.h>

#define TMEM_PROTO_VERSION 4u /* 2: completion entries carry packed gets,
                                 3: submission entries carry packed puts,
                                 4: PUT results say where the page went;
                                    ARENA; a name at HELLO; tenant stats */
#define TMEM_PROTO_MAGIC 0x4d454d54u /* "TMEM" */

/* ---- socket messages ---------------------------------------------------- */

enum tmem__msg_op {
    TMEM_MSG_HELLO = 1,        /* arg = version, flags = magic, uuid =
                                  name, oid[0..1] = resume token (0: none);
                                  reply payload: the session's 16-byte
                                  resume token */
    TMEM_MSG_RING_SETUP = 2,   /* SCM_RIGHTS memfd; arg = entries */
    TMEM_MSG_POOL_NEW = 3,     /* uuid, flags */
    TMEM_MSG_POOL_DESTROY = 4, /* pool */
    TMEM_MSG_PUT = 5,          /* pool, oid, index; payload = page */
    TMEM_MSG_GET = 6,          /* pool, oid, index; reply payload = page */
    TMEM_MSG_FLUSH_PAGE = 7,   /* pool, oid, index */
    TMEM_MSG_FLUSH_OBJECT = 8, /* pool, oid */
    TMEM_MSG_ARENA = 9,        /* reply: SCM_RIGHTS read-only fd of the
                                  client's private arena, value = bytes to
                                  map */
    /* admin: root or the daemon's uid only */
    TMEM_MSG_SET_WEIGHT = 16,     /* client_id, arg */
    TMEM_MSG_SET_CAP = 17,        /* client_id, arg (pages) */
    TMEM_MSG_SET_COMPRESS = 18,   /* client_id, arg (tmem_compress) */
    TMEM_MSG_FREEZE = 19,         /* client_id, arg (1 freeze, 0 thaw) */
    TMEM_MSG_FLUSH_MIB = 20,      /* arg; reply value = pages evicted */
    TMEM_MSG_FREEABLE = 21,       /* reply value = MiB */
    TMEM_MSG_AUTH = 22,           /* client_id, uuid, arg (1 on, 0 off) */
    TMEM_MSG_DESTROY_CLIENT = 23, /* client_id */
    TMEM_MSG_STATS_JSON = 24,     /* reply payload = JSON text */
    TMEM_MSG_PROMETHEUS = 25,     /* reply payload = Prometheus text */
    TMEM_MSG_SAVE = 26,    /* client_id, or uuid = its name; SCM_RIGHTS fd
                              to write the stream to; value = pages */
    TMEM_MSG_RESTORE = 27, /* uuid = the name it is restored as, arg = the
                              uid that may claim it; SCM_RIGHTS fd to read
                              from; value = client id, out_flags = pages */
    TMEM_MSG_OP_MAX = 28,
};

/* Message header, requests and replies. */
typedef struct tmem__msg_hdr {
    uint32_t len;   /* whole message, header included */
    uint16_t op;    /* enum tmem__msg_op; a reply echoes it */
    uint16_t flags; /* must be 0 */
    uint32_t seq;   /* chosen by the tenant, echoed */
    int32_t status; /* reply: the result code; request: 0 */
} tmem__msg_hdr;

/* Argument block of every request (unused fields 0). */
typedef struct tmem__msg_args {
    int32_t pool;
    uint32_t index;
    uint64_t oid[3];
    uint64_t uuid[2];
    uint64_t arg;
    int32_t client_id;
    uint32_t flags;
} tmem__msg_args;

/* Result block of every reply. */
typedef struct tmem__msg_res {
    int64_t value;      /* 64-bit results (flush_mib, freeable, client id) */
    uint32_t out_flags; /* pool_new: the flags the pool really has */
    uint32_t payload;   /* bytes of payload after this block */
} tmem__msg_res;

#define TMEM_MSG_HDR_SIZE 16u
#define TMEM_MSG_ARGS_SIZE 64u
#define TMEM_MSG_RES_SIZE 16u
#define TMEM_MSG_REQ_BASE (TMEM_MSG_HDR_SIZE + TMEM_MSG_ARGS_SIZE)
#define TMEM_MSG_REQ_MAX (TMEM_MSG_REQ_BASE + TMEM_PAGE_SIZE)
#define TMEM_MSG_REPLY_BASE (TMEM_MSG_HDR_SIZE + TMEM_MSG_RES_SIZE)
#define TMEM_MSG_REPLY_MAX (16u << 20) /* stats texts */

/* A decoded request: header, arguments, and the payload (a page for PUT,
 * pointing into the caller's buffer, else NULL). */
typedef struct tmem__req {
    tmem__msg_hdr hdr;
    tmem__msg_args args;
    const void *page;
} tmem__req;

/* Per-opcode rules: which need a page payload, which are admin-only. */
typedef struct tmem__msg_rule {
    const char *name; /* NULL: no such opcode */
    bool page;        /* request carries exactly one page */
    bool admin;
} tmem__msg_rule;

/* Returns the rule for op, or NULL for an unknown opcode. */
const tmem__msg_rule *tmem__msg_rule_of(unsigned op);

/* Checks a header copied from the wire (as a request): returns 0 or
 * -EMSGSIZE (len out of bounds), -EBADMSG (bad op/flags/len for op). */
int tmem__req_check_hdr(const tmem__msg_hdr *h);
/* Decodes a whole request of n bytes.  Returns 0 or a negative error
 * (-EBADMSG, -EMSGSIZE, -EINVAL); out->page points into buf. */
int tmem__req_decode(const void *buf, size_t n, tmem__req *out);
/* Encodes a request into buf (capacity cap >= TMEM_MSG_REQ_MAX suffices);
 * page is copied when the opcode carries one.  Returns the length or
 * -EINVAL. */
int tmem__req_encode(void *buf, size_t cap, uint16_t op, uint32_t seq,
                     const tmem__msg_args *a, const void *page);
/* Encodes a reply header + result block; the payload (plen bytes) follows
 * separately.  buf holds TMEM_MSG_REPLY_BASE bytes. */
void tmem__reply_encode(void *buf, uint16_t op, uint32_t seq, int32_t status,
                        int64_t value, uint32_t out_flags, uint32_t plen);
/* Decodes a reply header + result block (TMEM_MSG_REPLY_BASE bytes).
 * Returns 0 or -EPROTO when inconsistent. */
int tmem__reply_decode(const void *buf, tmem__msg_hdr *h, tmem__msg_res *r);

/* Socket helpers: whole-buffer I/O, EINTR-safe.  Return 0 or -errno
 * (-EPIPE on EOF). */
int tmem__io_write(int fd, const void *buf, size_t n);
int tmem__io_read(int fd, void *buf, size_t n);
/* Sends buf with one file descriptor attached (SCM_RIGHTS). */
int tmem__io_write_fd(int fd, const void *buf, size_t n, int pass_fd);
/* Reads exactly n bytes; the first recvmsg may carry a file descriptor,
 * stored in *out_fd (else -1).  Extra descriptors are closed. */
int tmem__io_read_fd(int fd, void *buf, size_t n, int *out_fd);

/* ---- the shared-memory ring -------------------------------------------- */

#define TMEM_RING_MAX_ENTRIES 1024u
#define TMEM_RING_DEFAULT_ENTRIES 256u
#define TMEM_RING_CACHELINE 64

typedef struct tmem__ring_hdr {
    uint32_t magic, version, entries, pad0;
    char pad1[TMEM_RING_CACHELINE - 16];
    uint32_t sq_seq;   /* tenant: bumped when a batch starts */
    uint32_t sq_count; /* tenant: entries in the batch */
    uint32_t cq_taken; /* tenant: = cq_seq once it took all its results
                          (a hint: the daemon spins, bounded, until then) */
    char pad2[TMEM_RING_CACHELINE - 12];
    uint32_t sq_ready; /* tenant: entries 0..sq_ready-1 are written */
    char pad6[TMEM_RING_CACHELINE - 4];
    uint32_t srv_sleeping; /* daemon: the word it sleeps on, 0 awake */
    char pad3[TMEM_RING_CACHELINE - 4];
    uint32_t cq_seq;   /* daemon: = sq_seq when the batch is done */
    int32_t cq_status; /* daemon: 0 or -EINVAL (bad count) */
    uint32_t crowded;  /* daemon: 1 while busy rings outnumber half the
                          CPUs (a hint: the tenant then writes a whole
                          batch before bumping sq_seq, and sleeps at once) */
    char pad4[TMEM_RING_CACHELINE - 12];
    uint32_t cq_ready; /* daemon: results 0..cq_ready-1 are final
                          (the tenant zeroes it before each batch) */
    char pad7[TMEM_RING_CACHELINE - 4];
    uint32_t cli_sleeping; /* tenant: the word it sleeps on, 0 awake */
    char pad5[TMEM_RING_CACHELINE - 4];
} tmem__ring_hdr;

/* One submission entry (64 bytes). */
typedef struct tmem__ring_sqe {
    uint8_t op; /* enum tmem__op_code (conn.h) */
    uint8_t pad[3];
    int32_t pool;
    uint32_t index;
    uint32_t slot; /* page slot for PUT/GET, < entries */
    uint64_t oid[3];
    uint32_t enc;  /* PUT: TMEM_PACK_* of the slot's data (tmem__pack) */
    uint32_t len;  /* ... bytes of it in the slot */
    uint32_t fill; /* ... TMEM_PACK_FILL: the word */
    uint32_t hash; /* ... tmem__page_hash of the page (not used by this
                      daemon: older ones chose dedup candidates by it) */
    uint64_t reserved;
} tmem__ring_sqe;

/* Where a PUT's page went (PUT results and replies, protocol v4). */
enum tmem__where {
    TMEM_WHERE_NONE = 0,   /* only the daemon can read it */
    TMEM_WHERE_DIRECT = 1, /* the tenant's private arena, at (handle, gen) */
    TMEM_WHERE_FILL = 2,   /* a same-filled page: no bytes stored */
};

/* One completion entry (16 bytes). */
typedef struct tmem__ring_cqe {
    int32_t result; /* the operation's return value */
    union {
        struct {
            uint32_t enc;  /* GET with result 1: TMEM_PACK_* of the slot */
            uint32_t len;  /* ... bytes of it in the slot */
            uint32_t fill; /* ... TMEM_PACK_FILL: the word */
        };
        struct {
            uint32_t where;  /* PUT with result 1: enum tmem__where */
            uint32_t handle; /* ... DIRECT: the handle; FILL: the word */
            uint32_t gen;    /* ... DIRECT: the handle's generation */
        };
    };
} tmem__ring_cqe;

/* A tenant's own figures, written by the tenant at TMEM_RING_TSTAT_OFF of
 * the ring header page and shown by the daemon (tmem list, metrics) as
 * the tenant says them: numbers only, never trusted for anything else. */
#define TMEM_RING_TSTAT_OFF 2048u
#define TMEM_TSTAT_MAGIC 0x54535441u /* "TSTA" */
#define TMEM_TSTAT_TSWAP 1u  /* tswap memory (tmem run): pages resident */
#define TMEM_TSTAT_SQLITE 2u /* SQLite's page cache (src/sqlite): pages */
typedef struct tmem__tstat {
    uint32_t magic;       /* TMEM_TSTAT_MAGIC once the tenant fills it */
    uint32_t kind;        /* TMEM_TSTAT_TSWAP or TMEM_TSTAT_SQLITE */
    uint64_t resident;    /* pages resident */
    uint64_t target;      /* resident target, pages (0 none) */
    uint64_t stored;      /* pages in the store */
    uint64_t faults;      /* faults served (zero-fill and page-in) */
    uint64_t pageins;     /* pages brought back */
    uint64_t evicted;     /* pages put out */
    uint64_t refused;     /* stores refused (page kept) */
    uint64_t pagein_p50_ns, pagein_p99_ns;
} tmem__tstat;

/* Offsets of a ring of n entries. */
typedef struct tmem__ring_layout {
    uint32_t entries;
    size_t sq_off, cq_off, slot_off, size;
} tmem__ring_layout;

/* Computes the layout of a ring with n entries.  Returns 0 or -EINVAL
 * (n == 0 or n > TMEM_RING_MAX_ENTRIES). */
int tmem__ring_layout_of(uint32_t n, tmem__ring_layout *out);

/* A mapped ring, either end. */
typedef struct tmem__ring {
    tmem__ring_layout lay;
    unsigned char *base;
    tmem__ring_hdr *hdr;
    tmem__ring_sqe *sq;
    tmem__ring_cqe *cq;
    unsigned char *slots;
} tmem__ring;

/* Tenant: creates a sealed memfd ring of n entries, mapped; *out_fd is
 * the descriptor to pass to the daemon.  Returns 0 or -errno. */
int tmem__ring_create(uint32_t n, tmem__ring *r, int *out_fd);
/* Daemon: checks that fd is a read-write memfd sealed as tmem__ring_create
 * seals it (no shrink, no grow, writable) of exactly the size n entries
 * need, maps it.  Returns 0, -EINVAL (bad n, wrong size), -EBADF (not a
 * read-write memfd), -EPERM (wrong seals) or -errno (mmap). */
int tmem__ring_attach(int fd, uint32_t n, tmem__ring *r);
void tmem__ring_unmap(tmem__ring *r);
/* Returns a pointer to page slot i (i < entries). */
static inline void *tmem__ring_slot(const tmem__ring *r, uint32_t i)
{
    return r->slots + (size_t)i * TMEM_PAGE_SIZE;
}

/* Copies submission entry i out of shared memory (one read of each field)
 * and validates it: returns 0 or -EINVAL (unknown op, slot out of range
 * for an op that needs a page). */
int tmem__ring_sqe_fetch(const tmem__ring *r, uint32_t i, tmem__ring_sqe *out);
/* Validates a batch count read once from the ring: 0 or -EINVAL. */
int tmem__ring_count_check(const tmem__ring *r, uint32_t count);

/* What a sleeper announces in srv_sleeping / cli_sleeping: the word it
 * sleeps on (0: awake).  A post wakes only a sleeper on its own word, so
 * the daemon publishing progress on cq_ready makes no system call while
 * the tenant sleeps until cq_seq. */
enum tmem__ring_word {
    TMEM_RING_W_SQ_SEQ = 1,
    TMEM_RING_W_SQ_READY = 2,
    TMEM_RING_W_CQ_SEQ = 3,
    TMEM_RING_W_CQ_READY = 4,
};

/* Waiting: spin up to spin_ns on *word != old, then sleep on the futex
 * with *sleeping = tag announced, up to timeout_ns (then return
 * -ETIMEDOUT so the caller can check liveness or spin).  Returns 0 when
 * the word changed. */
int tmem__ring_wait(uint32_t *word, uint32_t old, uint32_t *sleeping,
                    uint32_t tag, uint64_t spin_ns, uint64_t timeout_ns);
/* Spins (yielding past a few us) while *word == old and *hold ==
 * hold_val (hold may be NULL), at most max_ns.  Returns true when *word changed. */
bool tmem__ring_spin_while(uint32_t *word, uint32_t old, uint32_t *hold,
                           uint32_t hold_val, uint64_t max_ns);
/* Publishes *word = val and wakes a sleeper that announced tag. */
void tmem__ring_post(uint32_t *word, uint32_t val, uint32_t *sleeping,
                     uint32_t tag);

/* A moving average of times: *avg moves a quarter of the way to v. */
static inline void tmem__ewma(uint32_t *avg, uint64_t v)
{
    v = *avg ? (3 * (uint64_t)*avg + v) / 4 : v;
    *avg = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Monotonic clock in nanoseconds. */
uint64_t tmem__now_ns(void);

#endif
