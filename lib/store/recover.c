/*
 * Recovery of a private arena file after a crash (recover.h).
 *
 * The arena's handle table says where each live record is; the records
 * say what they are.  So recovery walks the handle directory, and for
 * each live handle checks the record it points at, never trusting a byte
 * it has not checked: the place must lie inside the file, the record must
 * point back at the handle, be LIVE, of its kind and length, and carry a
 * good checksum (an alias's target likewise, with the alias's
 * generation).  Payload bytes are never walked as headers, so a page a
 * tenant wrote cannot pass for a record.  move_seq is ignored: a crash in
 * the middle of a compaction step leaves either copy of a moved record
 * whole (the old segment is punched only after the handle moved).
 *
 * What a crash can leave, and what is done with it:
 *   - a put whose state word was not written: fails its checks, dropped
 *     (it was never acknowledged: the reply comes after the handle);
 *   - a replaced page whose old name was not freed yet: two names for one
 *     key; the higher sequence number wins;
 *   - a pool being destroyed: its table entry went first, its records
 *     name no open pool (orphans);
 *   - a client going away: the arena was marked DEAD first: nothing kept.
 * Sorting the names by key keeps memory at ~48 bytes a page.
 */
#include "store/recover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/pack.h"
#include "store/codec.h"
#include "store/save.h"

#define SEG TMEM_ARENA_SEG_SIZE
#define HSLOT0 (TMEM_ARENA_SEG_HDR / sizeof(tmem_arena_handle))

struct found {
    uint32_t pool, index;
    uint64_t oid[3];
    uint64_t seq;
    const char *data; /* the DATA record (an alias's target) */
};

struct view {
    const char *base;
    size_t len;
};

static const tmem_arena_hdr *hdr(const struct view *v)
{
    return (const tmem_arena_hdr *)v->base;
}

/* The header's checks: magic, version, geometry, a private file arena. */
static int check_hdr(const struct view *v)
{
    const tmem_arena_hdr *h = hdr(v);
    if (v->len < 2ull * SEG || v->len % SEG || h->magic != TMEM_ARENA_MAGIC ||
        h->version != TMEM_ARENA_VERSION || h->seg_size != SEG ||
        h->hdir_off != TMEM_ARENA_HDIR_OFF ||
        (h->flags & (TMEM_ARENA_F_NAMED | TMEM_ARENA_F_FILE)) !=
            (TMEM_ARENA_F_NAMED | TMEM_ARENA_F_FILE))
        return -EPROTO;
    return 0;
}

static void peek(const struct view *v, tmem_recover_info *info)
{
    const tmem_arena_hdr *h = hdr(v);
    uint32_t n = atomic_load((_Atomic uint32_t *)&h->tag_len);
    info->tag_len = n <= TMEM_ARENA_TAG_MAX ? n : 0;
    memcpy(info->tag, v->base + TMEM_ARENA_TAG_OFF, info->tag_len);
    info->dead = atomic_load((_Atomic uint32_t *)&h->state) != TMEM_ARENA_LIVE;
}

static int map_fd(int fd, struct view *v, tmem_recover_info *info)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    info->file_bytes = (uint64_t)st.st_size;
    if (st.st_size < (off_t)(2 * SEG))
        return -EPROTO;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *v = (struct view){p, (size_t)st.st_size};
    int rc = check_hdr(v);
    if (rc < 0) {
        munmap(p, v->len);
        return rc;
    }
    peek(v, info);
    return 0;
}

int tmem__arena_file_peek(int fd, tmem_recover_info *info)
{
    memset(info, 0, sizeof *info);
    struct view v;
    int rc = map_fd(fd, &v, info);
    if (rc == 0)
        munmap((void *)v.base, v.len);
    return rc;
}

/* The live record handle h points at, checked (kind: what it must be;
 * gen: its generation, or UINT32_MAX for any; namedead_ok for an alias's
 * target).  Returns it or NULL. */
static const tmem_arena_rec *rec_of(const struct view *v, uint32_t h,
                                    unsigned kind, uint32_t gen,
                                    bool namedead_ok)
{
    const tmem_arena_handle *e = tmem__arena_handle_at(v->base, v->len, h);
    if (!e)
        return NULL;
    uint64_t loc = atomic_load((_Atomic uint64_t *)&e->loc);
    if (!TMEM_ALOC_LIVE(loc))
        return NULL;
    uint32_t seg = TMEM_ALOC_SEG(loc), off = TMEM_ALOC_OFF(loc);
    uint32_t len = TMEM_ALOC_LEN(loc);
    if (seg == 0 || ((size_t)seg + 1) * SEG > v->len ||
        off < TMEM_ARENA_SEG_HDR || off % 8 ||
        off + TMEM_ARENA_REC_HDR + len > SEG)
        return NULL;
    const char *p = v->base + (size_t)seg * SEG + off;
    tmem_arena_rec r;
    memcpy(&r, p, sizeof r);
    uint32_t st = atomic_load(&r.state);
    bool alias = kind == TMEM_REC_ALIAS;
    if (r.handle != h || (gen != UINT32_MAX && r.gen != gen) ||
        r.kind != kind || (unsigned)alias != TMEM_ALOC_ALIAS(loc) ||
        r.len != len || r.codec > 2 || r.codec != TMEM_ALOC_CODEC(loc) ||
        (alias ? r.len != 0 : r.len == 0) ||
        !(st == TMEM_REC_LIVE || (namedead_ok && st == TMEM_REC_NAMEDEAD)) ||
        tmem__arena_csum(&r, p + TMEM_ARENA_REC_HDR) != r.csum)
        return NULL;
    return (const tmem_arena_rec *)p;
}

struct walk {
    const struct view *v;
    uint32_t inst[TMEM_ARENA_POOLS_MAX]; /* open pools' instances, 0 none */
    struct found *f;
    size_t n, cap;
    tmem_recover_info *info;
};

static int add(struct walk *w, const tmem_arena_rec *name,
               const char *data)
{
    uint32_t id = TMEM_ARENA_POOL_ID(name->pool);
    if (id >= TMEM_ARENA_POOLS_MAX || !w->inst[id] ||
        w->inst[id] != TMEM_ARENA_POOL_INST(name->pool)) {
        w->info->orphans++;
        return 0;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 4096;
        struct found *f = realloc(w->f, cap * sizeof *f);
        if (!f)
            return TMEM_ENOMEM;
        w->f = f;
        w->cap = cap;
    }
    struct found *x = &w->f[w->n++];
    x->pool = id;
    x->index = name->index;
    memcpy(x->oid, name->oid, sizeof x->oid);
    x->seq = name->seq;
    x->data = data;
    w->info->names++;
    return 0;
}

/* Handle h of a HANDLE segment: a name, or nothing (a free handle, or a
 * DATA record only aliases name). */
static int visit(struct walk *w, uint32_t h)
{
    const struct view *v = w->v;
    const tmem_arena_handle *e = tmem__arena_handle_at(v->base, v->len, h);
    uint64_t loc = e ? atomic_load((_Atomic uint64_t *)&e->loc) : 0;
    if (!TMEM_ALOC_LIVE(loc))
        return 0;
    if (!TMEM_ALOC_ALIAS(loc)) {
        const tmem_arena_rec *r = rec_of(v, h, TMEM_REC_DATA, UINT32_MAX,
                                         true);
        if (!r) {
            w->info->bad++;
            return 0;
        }
        if (atomic_load((_Atomic uint32_t *)&r->state) != TMEM_REC_LIVE)
            return 0; /* data kept for aliases: they name it */
        return add(w, r, (const char *)r);
    }
    const tmem_arena_rec *a = rec_of(v, h, TMEM_REC_ALIAS, UINT32_MAX, false);
    const tmem_arena_rec *t =
        a ? rec_of(v, a->hash, TMEM_REC_DATA, a->tgen, true) : NULL;
    if (!t) {
        w->info->bad++;
        return 0;
    }
    return add(w, a, (const char *)t);
}

static int by_key_newest_first(const void *pa, const void *pb)
{
    const struct found *a = pa, *b = pb;
    if (a->pool != b->pool)
        return a->pool < b->pool ? -1 : 1;
    int c = memcmp(a->oid, b->oid, sizeof a->oid);
    if (c)
        return c;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    return a->seq > b->seq ? -1 : a->seq < b->seq;
}

static bool same_key(const struct found *a, const struct found *b)
{
    return a->pool == b->pool && a->index == b->index &&
           memcmp(a->oid, b->oid, sizeof a->oid) == 0;
}

/* One page into the stream as stored (zstd, which a tenant never reads,
 * decoded to raw). */
static int emit(tmem_save_writer *sw, const struct found *x)
{
    const tmem_arena_rec *r = (const tmem_arena_rec *)x->data;
    const char *payload = x->data + TMEM_ARENA_REC_HDR;
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_packed pk = {TMEM_PACK_LZ4, r->len, 0};
    if (r->codec == TMEM_COMPRESS_NONE) {
        if (r->len != TMEM_PAGE_SIZE)
            return 1; /* checked, yet not a page: dropped */
        pk.enc = TMEM_PACK_RAW;
    } else if (r->codec == TMEM_COMPRESS_ZSTD) {
        if (tmem__codec_decompress(TMEM_COMPRESS_ZSTD, payload, r->len,
                                   page) < 0)
            return 1;
        pk = (tmem_packed){TMEM_PACK_RAW, TMEM_PAGE_SIZE, 0};
        payload = (const char *)page;
    } else if (r->len > TMEM_CODEC_MAX_OUT) {
        return 1;
    }
    return tmem__save_page(sw, x->pool, x->oid, x->index, &pk, payload);
}

static int write_stream(struct walk *w, int out)
{
    const struct view *v = w->v;
    tmem_save_pool_ent pools[TMEM_ARENA_POOLS_MAX];
    uint32_t np = 0;
    const tmem_arena_pool *tab =
        (const tmem_arena_pool *)(v->base + TMEM_ARENA_POOLS_OFF);
    for (uint32_t id = 0; id < TMEM_ARENA_POOLS_MAX; id++)
        if (w->inst[id])
            pools[np++] = (tmem_save_pool_ent){id, tab[id].flags};
    w->info->pools = np;
    tmem_save_writer *sw = tmem__save_open(out, pools, np);
    if (!sw)
        return TMEM_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < w->n && rc >= 0; i++) {
        if (i && same_key(&w->f[i], &w->f[i - 1])) {
            w->info->replaced++; /* an older name of the same key */
            continue;
        }
        rc = emit(sw, &w->f[i]);
        if (rc == 1) {
            w->info->bad++;
            rc = 0;
        }
    }
    uint64_t pages = 0;
    int wr = tmem__save_close(sw, rc == 0, &pages, NULL);
    w->info->pages = pages;
    return rc < 0 ? rc : wr;
}

int tmem__arena_recover(int fd, int out, tmem_recover_info *info)
{
    memset(info, 0, sizeof *info);
    struct view v;
    int rc = map_fd(fd, &v, info);
    if (rc < 0)
        return rc;
    struct walk w = {.v = &v, .info = info};
    const tmem_arena_pool *tab =
        (const tmem_arena_pool *)(v.base + TMEM_ARENA_POOLS_OFF);
    for (uint32_t id = 0; id < TMEM_ARENA_POOLS_MAX; id++) {
        uint32_t inst = atomic_load((_Atomic uint32_t *)&tab[id].inst);
        if (inst && (tab[id].flags & TMEM_POOL_PERSIST) &&
            !(tab[id].flags & TMEM_POOL_SHARED))
            w.inst[id] = inst;
    }
    uint32_t ndir = atomic_load((_Atomic uint32_t *)&hdr(&v)->ndir);
    if (ndir > TMEM_ARENA_HDIR_MAX)
        ndir = TMEM_ARENA_HDIR_MAX;
    if (!info->dead)
        for (uint32_t d = 0; d < ndir && rc == 0; d++)
            for (uint32_t s = HSLOT0; s < TMEM_ARENA_HPS && rc == 0; s++)
                rc = visit(&w, d * TMEM_ARENA_HPS + s);
    if (rc == 0) {
        if (w.n)
            qsort(w.f, w.n, sizeof *w.f, by_key_newest_first);
        rc = write_stream(&w, out);
    }
    free(w.f);
    munmap((void *)v.base, v.len);
    return rc;
}
