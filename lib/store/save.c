/*
 * Save and restore of one client's pools and pages (save.h), the stream
 * format of docs/persistence.md:
 *
 *   header   "TMEMSAVE", version, pool count, page size, creation time,
 *            XXH3-64 of those bytes                            (40 bytes)
 *   pools    per pool: saved id, flags, uuid                   (24 bytes)
 *            XXH3-64 of the pool table                         (8 bytes)
 *   pages    per page: "PAGE", pool, index, encoding, length, fill word,
 *            oid, XXH3-64 of those bytes and the payload, then the
 *            payload (length bytes, as the store keeps it)     (56 + len)
 *   trailer  "TEND", pages, payload bytes, XXH3-64 of every byte before
 *            the trailer                                       (32 bytes)
 *
 * All integers little-endian (the machines tmem runs on).  A reader
 * checks every checksum before it uses what the bytes say, so one changed
 * byte anywhere is caught: in a header, table or page by its own sum, in
 * the trailer by the counts or the whole-stream sum.
 *
 * Invariants: save holds a shard lock only while it lists the names in
 * that shard (no I/O under a lock), then reads each page through the
 * public get; restore creates its pools first and destroys them again on
 * any error, so a refused stream leaves the client as it was.
 */
#include "store/save.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "store_internal.h"

#define SAVE_MAGIC "TMEMSAVE"
#define PAGE_MAGIC 0x45474150u /* "PAGE" */
#define TEND_MAGIC 0x444e4554u /* "TEND" */
#define IOBUF 65536

struct save_hdr {
    char magic[8];
    uint32_t version, npools;
    uint32_t page_size, reserved;
    uint64_t created_ns;
    uint64_t csum;
};

struct save_pool {
    uint32_t id, flags;
    uint64_t uuid[2];
};

struct save_page {
    uint32_t magic, pool, index;
    uint8_t enc, reserved;
    uint16_t len;
    uint32_t fill, reserved2;
    uint64_t oid[3];
    uint64_t csum; /* over the fields above and the payload */
};

struct save_tail {
    uint32_t magic, reserved;
    uint64_t pages, payload_bytes;
    uint64_t stream_csum;
};

_Static_assert(sizeof(struct save_hdr) == 40, "header size");
_Static_assert(sizeof(struct save_pool) == 24, "pool entry size");
_Static_assert(sizeof(struct save_page) == 56, "page record size");
_Static_assert(sizeof(struct save_tail) == 32, "trailer size");

static uint64_t page_csum(const struct save_page *p, const void *payload)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, p, offsetof(struct save_page, csum));
    if (p->len)
        XXH3_64bits_update(&st, payload, p->len);
    return XXH3_64bits_digest(&st);
}

/* ---- buffered output with the running stream sum ------------------------ */

struct out {
    int fd, err;
    size_t n;
    uint64_t bytes;
    XXH3_state_t sum;
    unsigned char buf[IOBUF];
};

static int flush_out(struct out *o)
{
    for (size_t off = 0; off < o->n && !o->err;) {
        ssize_t w = write(o->fd, o->buf + off, o->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            o->err = w < 0 ? -errno : -EIO;
        else
            off += (size_t)w;
    }
    o->n = 0;
    return o->err;
}

static void put_bytes(struct out *o, const void *p, size_t len)
{
    XXH3_64bits_update(&o->sum, p, len);
    o->bytes += len;
    while (len && !o->err) {
        size_t k = IOBUF - o->n < len ? IOBUF - o->n : len;
        memcpy(o->buf + o->n, p, k);
        o->n += k;
        p = (const char *)p + k;
        len -= k;
        if (o->n == IOBUF)
            flush_out(o);
    }
}

/* ---- save ------------------------------------------------------------------ */

struct name {
    tmem_oid oid;
    uint32_t index;
};

struct names {
    struct name *v;
    size_t n, cap;
    tmem_oid cur;
    bool nomem;
};

static bool collect(uint64_t val, uint32_t index, void *arg)
{
    (void)val;
    struct names *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        struct name *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->nomem = true;
            return false;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (struct name){l->cur, index};
    return false; /* listed, kept */
}

/* Lists the names in shard k of c's pool id (NULL pool: gone).  Returns
 * false when the pool went away or no memory was left. */
static bool list_shard(tmem_client *c, int id, tmem_pool *p, int k,
                       struct names *l)
{
    l->n = 0;
    pthread_rwlock_rdlock(&c->lock);
    bool same = !atomic_load(&c->dead) && c->pools[id] == p;
    if (same) {
        shard *sh = &p->shards[k];
        pthread_mutex_lock(&sh->lock);
        for (uint32_t b = 0; b < sh->nbuckets && !l->nomem; b++)
            for (tmem_obj *o = sh->buckets[b]; o && !l->nomem; o = o->next) {
                l->cur = o->oid;
                tmem__map_filter(c->store, &o->map, collect, l);
            }
        pthread_mutex_unlock(&sh->lock);
    }
    pthread_rwlock_unlock(&c->lock);
    return same && !l->nomem;
}

/* Writes the pages of c's persistent pool id.  Returns 0 or an error. */
static int save_pool_pages(tmem_client *c, int id, tmem_pool *p,
                           tmem_save_writer *w)
{
    struct names l = {0};
    unsigned char page[TMEM_PAGE_SIZE];
    int rc = 0;
    for (int k = 0; k < POOL_SHARDS && rc == 0; k++) {
        if (!list_shard(c, id, p, k, &l)) {
            rc = l.nomem ? TMEM_ENOMEM : 0; /* gone: nothing more of it */
            break;
        }
        for (size_t i = 0; i < l.n && rc == 0; i++) {
            tmem_packed pk;
            int r = tmem_page_get_packed(c, id, &l.v[i].oid, l.v[i].index,
                                         page, &pk);
            if (r == 0)
                continue; /* flushed since it was listed */
            if (r < 0) {
                rc = r == TMEM_ENODEV ? 0 : r;
                break;
            }
            rc = tmem__save_page(w, (uint32_t)id, l.v[i].oid.oid,
                                 l.v[i].index, &pk, page);
        }
    }
    free(l.v);
    return rc;
}

/* ---- the writer ------------------------------------------------------------ */

struct tmem_save_writer {
    struct out o;
    uint64_t pages, payload;
};

tmem_save_writer *tmem__save_open(int fd, const tmem_save_pool_ent *pools,
                                  uint32_t npools)
{
    if (npools > TMEM_MAX_POOLS)
        return NULL;
    tmem_save_writer *w = malloc(sizeof *w);
    if (!w)
        return NULL;
    struct out *o = &w->o;
    o->fd = fd;
    o->err = 0;
    o->n = 0;
    o->bytes = 0;
    w->pages = w->payload = 0;
    XXH3_INITSTATE(&o->sum);
    XXH3_64bits_reset(&o->sum);
    struct save_pool tab[TMEM_MAX_POOLS];
    for (uint32_t i = 0; i < npools; i++)
        tab[i] = (struct save_pool){.id = pools[i].id,
                                    .flags = pools[i].flags};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct save_hdr h = {.magic = SAVE_MAGIC,
                         .version = TMEM_SAVE_VERSION,
                         .npools = npools,
                         .page_size = TMEM_PAGE_SIZE,
                         .created_ns = (uint64_t)ts.tv_sec * 1000000000u +
                                       (uint64_t)ts.tv_nsec};
    h.csum = XXH3_64bits(&h, offsetof(struct save_hdr, csum));
    put_bytes(o, &h, sizeof h);
    put_bytes(o, tab, npools * sizeof tab[0]);
    uint64_t tsum = XXH3_64bits(tab, npools * sizeof tab[0]);
    put_bytes(o, &tsum, sizeof tsum);
    return w;
}

int tmem__save_page(tmem_save_writer *w, uint32_t pool, const uint64_t oid[3],
                    uint32_t index, const tmem_packed *pk, const void *data)
{
    struct save_page rec = {.magic = PAGE_MAGIC,
                            .pool = pool,
                            .index = index,
                            .enc = (uint8_t)pk->enc,
                            .len = (uint16_t)pk->len,
                            .fill = pk->fill};
    memcpy(rec.oid, oid, sizeof rec.oid);
    rec.csum = page_csum(&rec, data);
    put_bytes(&w->o, &rec, sizeof rec);
    put_bytes(&w->o, data, pk->len);
    w->pages++;
    w->payload += pk->len;
    return w->o.err;
}

int tmem__save_close(tmem_save_writer *w, bool complete, uint64_t *pages,
                     uint64_t *bytes)
{
    struct out *o = &w->o;
    if (complete && !o->err) {
        struct save_tail t = {.magic = TEND_MAGIC,
                              .pages = w->pages,
                              .payload_bytes = w->payload,
                              .stream_csum = XXH3_64bits_digest(&o->sum)};
        put_bytes(o, &t, sizeof t);
        flush_out(o);
    }
    int rc = o->err;
    if (pages)
        *pages = w->pages;
    if (bytes)
        *bytes = o->bytes;
    free(w);
    return rc;
}

int tmem__client_save(tmem_client *c, int fd, tmem_save_stats *stp)
{
    tmem_save_stats st = {0};
    /* operations under way finish first (each holds c->lock to read): a
     * put that passed a freeze's check before the caller froze c is in
     * the stream, and any later one is refused */
    pthread_rwlock_wrlock(&c->lock);
    pthread_rwlock_unlock(&c->lock);
    /* the pools, as they are now */
    tmem_pool *pools[TMEM_MAX_POOLS] = {0};
    tmem_save_pool_ent tab[TMEM_MAX_POOLS];
    uint32_t n = 0;
    pthread_rwlock_rdlock(&c->lock);
    for (int i = 0; i < TMEM_MAX_POOLS && !atomic_load(&c->dead); i++) {
        tmem_pool *p = c->pools[i];
        if (!p)
            continue;
        if (p->shared) {
            st.shared_skipped++;
            continue;
        }
        pools[i] = p;
        tab[n] = (tmem_save_pool_ent){.id = (uint32_t)i, .flags = p->flags};
        n++;
    }
    pthread_rwlock_unlock(&c->lock);
    tmem_save_writer *w = tmem__save_open(fd, tab, n);
    if (!w)
        return TMEM_ENOMEM;
    st.pools = n;
    int rc = 0;
    for (int i = 0; i < TMEM_MAX_POOLS && rc == 0; i++)
        if (pools[i] && pools[i]->persist)
            rc = save_pool_pages(c, i, pools[i], w);
    int wr = tmem__save_close(w, rc == 0, &st.pages, &st.bytes);
    if (stp)
        *stp = st;
    return rc ? rc : wr;
}

/* ---- restore --------------------------------------------------------------- */

struct in {
    int fd, err;
    bool eof;
    size_t pos, n;
    uint64_t bytes;
    XXH3_state_t sum;
    unsigned char buf[IOBUF];
};

/* Reads exactly len bytes (summed unless nosum).  Returns 0, -EINVAL at
 * an early end, or -errno. */
static int get_bytes(struct in *r, void *p, size_t len, bool nosum)
{
    char *d = p;
    size_t want = len;
    while (want) {
        if (r->pos == r->n) {
            ssize_t k = read(r->fd, r->buf, IOBUF);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return r->err = -errno;
            if (k == 0) {
                r->eof = true;
                return TMEM_EINVAL; /* the stream ends early */
            }
            r->pos = 0;
            r->n = (size_t)k;
        }
        size_t k = r->n - r->pos < want ? r->n - r->pos : want;
        memcpy(d, r->buf + r->pos, k);
        r->pos += k;
        d += k;
        want -= k;
    }
    if (!nosum)
        XXH3_64bits_update(&r->sum, p, len);
    r->bytes += len;
    return 0;
}

/* Nothing may follow the trailer. */
static int at_end(struct in *r)
{
    unsigned char b;
    int rc = get_bytes(r, &b, 1, true);
    if (rc == 0)
        return TMEM_EINVAL; /* bytes after the trailer */
    return r->eof ? 0 : rc;
}

static bool page_ok(const struct save_page *p)
{
    switch (p->enc) {
    case TMEM_PACK_RAW:
        return p->len == TMEM_PAGE_SIZE;
    case TMEM_PACK_LZ4:
        return p->len >= 1 && p->len < TMEM_PAGE_SIZE;
    case TMEM_PACK_FILL:
        return p->len == 0;
    }
    return false;
}

/* Reads the header and pool table and makes the pools (made[]: their new
 * ids, for the rollback).  Returns 0 or an error. */
static int restore_pools(tmem_client *c, struct in *r, int map[],
                         uint32_t *persist, uint32_t *persist_new, int made[],
                         int *nmade)
{
    struct save_hdr h;
    int rc = get_bytes(r, &h, sizeof h, false);
    if (rc < 0)
        return rc == TMEM_EINVAL ? -EPROTO : rc;
    if (memcmp(h.magic, SAVE_MAGIC, 8) != 0)
        return -EPROTO;
    if (h.csum != XXH3_64bits(&h, offsetof(struct save_hdr, csum)))
        return TMEM_EINVAL;
    if (h.version != TMEM_SAVE_VERSION || h.page_size != TMEM_PAGE_SIZE)
        return -EPROTO;
    if (h.npools > TMEM_MAX_POOLS)
        return TMEM_EINVAL;
    struct save_pool tab[TMEM_MAX_POOLS];
    uint64_t tsum;
    if ((rc = get_bytes(r, tab, h.npools * sizeof tab[0], false)) < 0 ||
        (rc = get_bytes(r, &tsum, sizeof tsum, false)) < 0)
        return rc;
    if (tsum != XXH3_64bits(tab, h.npools * sizeof tab[0]))
        return TMEM_EINVAL;
    /* Each pool gets its saved id where that is free: the ids below it
     * that are free are held by placeholders meanwhile (a tenant kept
     * across a restart uses the ids it had, 0 and 3 as well as 0 and 1). */
    int hold[TMEM_MAX_POOLS], nhold = 0;
    rc = 0;
    for (uint32_t i = 0; i < h.npools && rc == 0; i++) {
        if (tab[i].id >= TMEM_MAX_POOLS || map[tab[i].id] >= 0 ||
            (tab[i].flags & TMEM_POOL_SHARED)) {
            rc = TMEM_EINVAL;
            break;
        }
        int id;
        for (;;) {
            id = tmem_pool_new(c, NULL, tab[i].flags & ~TMEM_POOL_PERSIST,
                               NULL);
            if (id < 0 || (uint32_t)id >= tab[i].id)
                break;
            hold[nhold++] = id; /* below the saved id: hold it */
        }
        if (id >= 0) { /* the saved id (or the next free): the real one */
            tmem_pool_destroy(c, id);
            id = tmem_pool_new(c, NULL, tab[i].flags, NULL);
        }
        if (id < 0) {
            rc = id == TMEM_EPERM ? TMEM_EINVAL : id;
            break;
        }
        made[(*nmade)++] = id;
        map[tab[i].id] = id;
        if (tab[i].flags & TMEM_POOL_PERSIST) {
            *persist |= 1u << tab[i].id;
            *persist_new |= 1u << id;
        }
    }
    for (int k = 0; k < nhold; k++)
        tmem_pool_destroy(c, hold[k]);
    return rc;
}

/* Reads the page records and the trailer, putting each page. */
static int restore_pages(tmem_client *c, struct in *r, const int map[],
                         uint32_t persist, tmem_save_stats *st)
{
    unsigned char page[TMEM_PAGE_SIZE];
    uint64_t payload = 0;
    for (;;) {
        uint32_t magic;
        int rc = get_bytes(r, &magic, sizeof magic, true);
        if (rc < 0)
            return rc;
        if (magic == TEND_MAGIC) {
            struct save_tail t = {.magic = magic};
            uint64_t want = XXH3_64bits_digest(&r->sum);
            rc = get_bytes(r, (char *)&t + 4, sizeof t - 4, true);
            if (rc < 0)
                return rc;
            if (t.reserved != 0 || t.pages != st->pages ||
                t.payload_bytes != payload || t.stream_csum != want)
                return TMEM_EINVAL;
            return at_end(r);
        }
        if (magic != PAGE_MAGIC)
            return TMEM_EINVAL;
        XXH3_64bits_update(&r->sum, &magic, sizeof magic);
        struct save_page p = {.magic = magic};
        if ((rc = get_bytes(r, (char *)&p + 4, sizeof p - 4, false)) < 0)
            return rc;
        /* the length is checked before it is used, the sum after */
        if (!page_ok(&p))
            return TMEM_EINVAL;
        if ((rc = get_bytes(r, page, p.len, false)) < 0)
            return rc;
        if (p.csum != page_csum(&p, page) || p.pool >= TMEM_MAX_POOLS ||
            !(persist & (1u << p.pool)))
            return TMEM_EINVAL;
        tmem_oid oid;
        memcpy(oid.oid, p.oid, sizeof oid.oid);
        tmem_packed pk = {.enc = p.enc, .len = p.len, .fill = p.fill};
        rc = tmem_page_put_packed(c, map[p.pool], &oid, p.index, &pk, page, 0);
        if (rc != 1)
            return rc < 0 ? rc : TMEM_EINVAL;
        st->pages++;
        payload += p.len;
    }
}

int tmem__client_restore(tmem_client *c, int fd, int mapout[TMEM_MAX_POOLS],
                         tmem_save_stats *stp)
{
    tmem_save_stats st = {0};
    struct in *r = malloc(sizeof *r);
    if (!r)
        return TMEM_ENOMEM;
    *r = (struct in){.fd = fd};
    XXH3_INITSTATE(&r->sum);
    XXH3_64bits_reset(&r->sum);
    int map[TMEM_MAX_POOLS], made[TMEM_MAX_POOLS], nmade = 0;
    for (int i = 0; i < TMEM_MAX_POOLS; i++)
        map[i] = -1;
    uint32_t persist = 0;
    int rc = restore_pools(c, r, map, &persist, &st.persist, made, &nmade);
    if (rc == 0)
        rc = restore_pages(c, r, map, persist, &st);
    st.bytes = r->bytes;
    st.pools = (uint32_t)nmade;
    free(r);
    if (rc < 0) {
        /* all or nothing: what this stream made goes */
        for (int i = 0; i < nmade; i++)
            tmem_pool_destroy(c, made[i]);
        for (int i = 0; i < TMEM_MAX_POOLS; i++)
            map[i] = -1;
        st.pools = 0;
        st.pages = 0;
        st.persist = 0;
    }
    if (mapout)
        memcpy(mapout, map, sizeof map);
    if (stp)
        *stp = st;
    return rc;
}
