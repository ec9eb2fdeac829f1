/*
 * The node table of tmemfs's cache (fs_node.h): chained hashing on
 * (dev, ino), a clock hand over the chains to find a node to evict when
 * the table is full.  The keys are the backing file system's inode
 * numbers, which a user of the mount chooses only as far as creating
 * files goes; the hash mixes both words and the chains stay short.
 */
#include "fs_node.h"

#include <errno.h>
#include <stdlib.h>

static size_t chain_of(const fs_table *t, dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t)dev * 0xc2b2ae3d27d4eb4full;
    h ^= h >> 29;
    return (size_t)(h % t->nchains);
}

int fs_table_init(fs_table *t, size_t max)
{
    t->nchains = max < 64 ? 64 : max;
    t->chains = calloc(t->nchains, sizeof *t->chains);
    if (!t->chains)
        return -ENOMEM;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->chains);
        return -ENOMEM;
    }
    t->count = t->hand = 0;
    t->max = max;
    return 0;
}

void fs_node_free(struct fs_node *n)
{
    if (!n)
        return;
    pthread_mutex_destroy(&n->lock);
    free(n);
}

void fs_table_fini(fs_table *t)
{
    for (size_t i = 0; i < t->nchains; i++) {
        for (struct fs_node *n = t->chains[i], *next; n; n = next) {
            next = n->next;
            fs_node_free(n);
        }
    }
    free(t->chains);
    pthread_mutex_destroy(&t->lock);
}

/* Unlinks n from its chain (table lock held). */
static void unlink_locked(fs_table *t, struct fs_node *n)
{
    struct fs_node **p = &t->chains[chain_of(t, n->dev, n->ino)];
    while (*p != n)
        p = &(*p)->next;
    *p = n->next;
    t->count--;
}

/* An unpinned node unlinked for eviction, or NULL (table lock held): the
 * hand visits each chain at most once. */
static struct fs_node *evict_locked(fs_table *t)
{
    for (size_t k = 0; k < t->nchains; k++) {
        size_t i = t->hand;
        t->hand = (t->hand + 1) % t->nchains;
        for (struct fs_node *n = t->chains[i]; n; n = n->next) {
            if (n->refs == 0) {
                unlink_locked(t, n);
                return n;
            }
        }
    }
    return NULL;
}

static struct fs_node *node_new(dev_t dev, ino_t ino)
{
    struct fs_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    if (pthread_mutex_init(&n->lock, NULL) != 0) {
        free(n);
        return NULL;
    }
    n->dev = dev;
    n->ino = ino;
    return n;
}

struct fs_node *fs_table_pin(fs_table *t, dev_t dev, ino_t ino, bool make,
                             bool *made, struct fs_node **evicted)
{
    struct fs_node *fresh = NULL;
    *made = false;
    *evicted = NULL;
    /* allocated outside the lock, freed when another thread won */
    if (make && !(fresh = node_new(dev, ino)))
        return NULL;
    pthread_mutex_lock(&t->lock);
    size_t i = chain_of(t, dev, ino);
    struct fs_node *n = t->chains[i];
    while (n && (n->dev != dev || n->ino != ino || n->gone))
        n = n->next;
    if (!n && fresh) {
        if (t->count >= t->max)
            *evicted = evict_locked(t);
        n = fresh;
        fresh = NULL;
        n->next = t->chains[i];
        t->chains[i] = n;
        t->count++;
        *made = true;
    }
    if (n)
        n->refs++;
    pthread_mutex_unlock(&t->lock);
    fs_node_free(fresh);
    return n;
}

bool fs_table_unpin(fs_table *t, struct fs_node *n)
{
    pthread_mutex_lock(&t->lock);
    bool drop = --n->refs == 0 && n->gone;
    if (drop)
        unlink_locked(t, n);
    pthread_mutex_unlock(&t->lock);
    return drop;
}

void fs_table_mark_gone(fs_table *t, struct fs_node *n)
{
    pthread_mutex_lock(&t->lock);
    n->gone = true;
    pthread_mutex_unlock(&t->lock);
}

size_t fs_table_count(fs_table *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

struct fs_stamp fs_stamp_of(const struct stat *st)
{
    return (struct fs_stamp){.size = st->st_size,
                             .mtime = st->st_mtim,
                             .ctime = st->st_ctim,
                             .type = st->st_mode & S_IFMT};
}

bool fs_stamp_eq(const struct fs_stamp *a, const struct fs_stamp *b)
{
    return a->size == b->size && a->type == b->type &&
           a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
}
