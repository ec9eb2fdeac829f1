/*
 * Database file records: what cleancache holds of each main database
 * file this process opened, and when that stops being true.
 *
 * A file's pages live in the private pool under the object id (inode,
 * device, 0), index = page number.  A record is made at the first open
 * of a (device, inode) and never freed (a handful per process).
 *
 * Invariants, all under f->lock, which every cleancache call on the file
 * holds:
 *   - a page is in cleancache only if its bit is set (bits are set before
 *     a put, cleared by a hit or an invalidation), so a write or a reset
 *     needs a round trip only for pages that may be there;
 *   - epoch moves whenever the file's pages are dropped (another writer
 *     seen, truncate, the first open, WAL): a page whose content was read
 *     or written at an older epoch is never put;
 *   - cacheable: the header says 4 KiB pages and a rollback journal; WAL
 *     databases stay out of cleancache (a checkpoint by another process
 *     changes the file without moving the change counter).
 */
#include "tsq.h"

#include <stdlib.h>
#include <string.h>

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tsq_file *files;

static tmem_oid oid_of(const struct tsq_file *f)
{
    return (tmem_oid){{(uint64_t)f->ino, (uint64_t)f->dev, 0}};
}

static bool bit_test(const struct tsq_file *f, uint32_t pgno)
{
    const uint64_t *c = f->bits[pgno >> 15];
    return c && (c[(pgno & 32767) >> 6] >> (pgno & 63) & 1);
}

/* Sets or clears the bit of pgno; false when it cannot be set (no
 * memory).  Keeps the count of pages stored. */
static bool bit_set(struct tsq_file *f, uint32_t pgno, bool on)
{
    uint64_t **c = &f->bits[pgno >> 15];
    if (!*c && !on)
        return true;
    if (!*c && !(*c = calloc(32768 / 64, sizeof **c)))
        return false;
    uint64_t *w = &(*c)[(pgno & 32767) >> 6], m = 1ull << (pgno & 63);
    if (!!(*w & m) != on) {
        *w ^= m;
        if (on)
            tsq_bump(&tsq.n.stored, 1);
        else
            atomic_fetch_sub(&tsq.n.stored, 1);
    }
    return true;
}

/* Drops every page: the object goes, the bits go, the epoch moves. */
static void drop_locked(struct tsq_file *f)
{
    bool any = false;
    for (unsigned i = 0; i < 1024; i++) {
        if (!f->bits[i])
            continue;
        for (unsigned j = 0; j < 32768 / 64; j++) {
            uint64_t w = f->bits[i][j];
            if (w) {
                any = true;
                atomic_fetch_sub(&tsq.n.stored,
                                 (uint64_t)__builtin_popcountll(w));
            }
        }
        free(f->bits[i]);
        f->bits[i] = NULL;
    }
    f->epoch++;
    if (any && tsq_on()) {
        tmem_oid k = oid_of(f);
        tmem_cleancache_invalidate_inode(tsq.cc, tsq.pool, &k);
        tsq_bump(&tsq.n.inval_files, 1);
    }
}

struct tsq_file *tsq_file_open(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&files_lock);
    struct tsq_file *f = files;
    while (f && (f->dev != dev || f->ino != ino))
        f = f->next;
    if (!f && (f = calloc(1, sizeof *f))) {
        f->dev = dev;
        f->ino = ino;
        pthread_mutex_init(&f->lock, NULL);
        f->next = files;
        files = f;
    }
    pthread_mutex_unlock(&files_lock);
    if (!f)
        return NULL;
    pthread_mutex_lock(&f->lock);
    if (f->openers++ == 0) { /* it may be another file on that inode now */
        drop_locked(f);
        f->have_sig = false;
        f->cacheable = false;
    }
    pthread_mutex_unlock(&f->lock);
    return f;
}

void tsq_file_close(struct tsq_file *f)
{
    pthread_mutex_lock(&f->lock);
    f->openers--;
    pthread_mutex_unlock(&f->lock);
}

/* Takes the header's commit-dependent bytes into f; true when they differ
 * from what was seen.  Page size (16..17), format versions (18..19: 2 is
 * WAL), change counter (24..27), size in pages (28..31), version-valid-for
 * (92..95). */
static bool take_sig_locked(struct tsq_file *f, const unsigned char *h, int n)
{
    unsigned char s[16] = {0};
    if (n >= 100) {
        memcpy(s, h + 16, 4);
        memcpy(s + 4, h + 24, 8);
        memcpy(s + 12, h + 92, 4);
    }
    bool changed = !f->have_sig || memcmp(s, f->sig, sizeof s) != 0;
    memcpy(f->sig, s, sizeof s);
    f->have_sig = true;
    f->cacheable = n >= 100 && h[16] == TSQ_PAGE >> 8 && h[17] == 0 &&
                   h[18] == 1 && h[19] == 1;
    return changed;
}

void tsq_file_check(struct tsq_file *f, const unsigned char *hdr, int n)
{
    pthread_mutex_lock(&f->lock);
    bool seen = f->have_sig;
    if (take_sig_locked(f, hdr, n) || !f->cacheable) {
        if (n >= 100 && (hdr[16] != TSQ_PAGE >> 8 || hdr[17] != 0) && !seen)
            sqlite3_log(SQLITE_NOTICE,
                        "tmem: database (inode %llu) has %d-byte pages, not "
                        "4096: its pages pass through without tmem",
                        (unsigned long long)f->ino,
                        hdr[16] == 1 && hdr[17] == 0 ? 65536
                                                     : hdr[16] << 8 | hdr[17]);
        if (seen)
            tsq_bump(&tsq.n.resets, 1);
        drop_locked(f);
    }
    pthread_mutex_unlock(&f->lock);
}

uint64_t tsq_file_before_write(struct tsq_file *f, const void *buf, int n,
                               int64_t off)
{
    pthread_mutex_lock(&f->lock);
    if (off == 0 && n >= 100) { /* our own commit: not another writer */
        bool was = f->cacheable;
        take_sig_locked(f, buf, n);
        if (was && !f->cacheable)
            drop_locked(f);
    }
    tmem_oid k = oid_of(f);
    uint64_t first = (uint64_t)off / TSQ_PAGE + 1;
    uint64_t last = ((uint64_t)off + (uint64_t)(n > 0 ? n : 1) - 1) / TSQ_PAGE + 1;
    for (uint64_t p = first; p <= last && p < TSQ_MAX_PGNO; p++) {
        if (!bit_test(f, (uint32_t)p))
            continue;
        bit_set(f, (uint32_t)p, false);
        if (tsq_on())
            tmem_cleancache_invalidate_page(tsq.cc, tsq.pool, &k,
                                            (uint32_t)p);
        tsq_bump(&tsq.n.inval_pages, 1);
    }
    uint64_t epoch = f->epoch;
    pthread_mutex_unlock(&f->lock);
    return epoch;
}

void tsq_file_drop(struct tsq_file *f)
{
    pthread_mutex_lock(&f->lock);
    drop_locked(f);
    pthread_mutex_unlock(&f->lock);
}

bool tsq_file_cacheable(struct tsq_file *f)
{
    pthread_mutex_lock(&f->lock);
    bool c = f->cacheable && tsq_on();
    pthread_mutex_unlock(&f->lock);
    return c;
}

/* Puts a page whose bit the caller set, under f->lock. */
static void put_locked(struct tsq_file *f, uint32_t pgno, const void *page)
{
    tmem_oid k = oid_of(f);
    tmem_cleancache_put_page(tsq.cc, tsq.pool, &k, pgno, page);
    tsq_bump(&tsq.n.puts, 1);
}

int tsq_file_get(struct tsq_file *f, uint32_t pgno, void *page,
                 uint64_t *epoch, bool keep)
{
    int rc = 0;
    pthread_mutex_lock(&f->lock);
    *epoch = f->epoch;
    if (f->cacheable && tsq_on() && pgno < TSQ_MAX_PGNO && bit_test(f, pgno)) {
        tmem_oid k = oid_of(f);
        rc = tmem_cleancache_get_page(tsq.cc, tsq.pool, &k, pgno, page) == 1;
        tsq_bump(&tsq.n.gets, 1);
        tsq_bump(&tsq.n.hits, (uint64_t)rc);
        bit_set(f, pgno, false); /* a private pool's get takes it out */
        if (rc && keep && bit_set(f, pgno, true))
            put_locked(f, pgno, page);
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

void tsq_file_put(struct tsq_file *f, uint64_t epoch, uint32_t pgno,
                  const void *page)
{
    pthread_mutex_lock(&f->lock);
    if (epoch != f->epoch || !f->cacheable)
        tsq_bump(&tsq.n.stale, 1);
    else if (tsq_on() && pgno < TSQ_MAX_PGNO && bit_set(f, pgno, true))
        put_locked(f, pgno, page);
    pthread_mutex_unlock(&f->lock);
}
