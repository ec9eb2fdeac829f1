/*
 * The page-buffer registry: which buffers are pages of our page cache.
 * The VFS reads and writes a page straight into SQLite's page buffer;
 * finding that buffer here is how it learns which cache page now holds
 * (file, page number) at which epoch (tsq_pcache_tag), so that the
 * page's eviction can put it into cleancache.
 *
 * A chained hash keyed by the buffer's address, doubled when it holds
 * more entries than buckets.  One mutex guards it; a lookup's result is
 * used under that mutex (the page may be freed by its cache otherwise).
 */
#include "tsq.h"

#include <stdlib.h>

struct ent {
    void *buf;
    struct tsq_page *page;
    struct ent *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ent **tab;
static size_t nbucket, nent;

static size_t slot(const void *buf, size_t n)
{
    uint64_t x = (uint64_t)(uintptr_t)buf;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return (size_t)(x >> 32) & (n - 1);
}

static void grow_locked(void)
{
    size_t n = nbucket ? nbucket * 2 : 1024;
    struct ent **t = calloc(n, sizeof *t);
    if (!t)
        return; /* chains just get longer */
    for (size_t i = 0; i < nbucket; i++)
        for (struct ent *e = tab[i], *nx; e; e = nx) {
            nx = e->next;
            size_t s = slot(e->buf, n);
            e->next = t[s];
            t[s] = e;
        }
    free(tab);
    tab = t;
    nbucket = n;
}

void tsq_pgreg_lock(void)
{
    pthread_mutex_lock(&reg_lock);
}

void tsq_pgreg_unlock(void)
{
    pthread_mutex_unlock(&reg_lock);
}

void tsq_pgreg_add(void *buf, struct tsq_page *p)
{
    struct ent *e = malloc(sizeof *e);
    pthread_mutex_lock(&reg_lock);
    if (nent >= nbucket)
        grow_locked();
    if (e && nbucket) {
        size_t s = slot(buf, nbucket);
        *e = (struct ent){buf, p, tab[s]};
        tab[s] = e;
        nent++;
        e = NULL;
    }
    pthread_mutex_unlock(&reg_lock);
    free(e); /* no memory: the page is simply never tagged */
}

void tsq_pgreg_del(void *buf)
{
    struct ent *gone = NULL;
    pthread_mutex_lock(&reg_lock);
    if (nbucket) {
        struct ent **pp = &tab[slot(buf, nbucket)];
        while (*pp && (*pp)->buf != buf)
            pp = &(*pp)->next;
        if ((gone = *pp)) {
            *pp = gone->next;
            nent--;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    free(gone);
}

struct tsq_page *tsq_pgreg_find_locked(void *buf)
{
    if (!nbucket)
        return NULL;
    for (struct ent *e = tab[slot(buf, nbucket)]; e; e = e->next)
        if (e->buf == buf)
            return e->page;
    return NULL;
}
