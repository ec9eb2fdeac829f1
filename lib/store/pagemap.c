/*
 * Page maps: an object's index -> value table (see store_internal.h).
 *
 * Invariants: a chunk in the map has n == popcount(bits) values packed in
 * index order; n <= cap <= 64; chunks with n == 0 are freed (a filter may
 * leave one when it cannot allocate, which is harmless); while cap == 0 the
 * map holds at most one chunk, in `single`.  The chunk table uses linear
 * probing on the chunk's base with backward-shift deletion (no tombstones),
 * grows at 3/4 load and shrinks at 1/8.
 *
 * Callers hold the shard lock.  Every allocation failure leaves the map as
 * it was.
 */
#include <string.h>

#include "store_internal.h"

#define CHUNK_BITS 6
#define CHUNK_SLOTS 64
#define CHUNK_STEP 4 /* slots are added and removed four at a time */

static inline uint32_t hash_u32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static size_t chunk_size(unsigned cap)
{
    return sizeof(pagechunk) + cap * sizeof(uint64_t);
}

/* The table slot holding base, or NULL (cap > 0). */
static pagechunk **tab_find(pagemap *m, uint32_t base)
{
    uint32_t mask = m->cap - 1;
    for (uint32_t i = hash_u32(base) & mask;; i = (i + 1) & mask) {
        if (!m->tab[i])
            return NULL;
        if (m->tab[i]->base == base)
            return &m->tab[i];
    }
}

/* Where chunk `base` lives (its pointer's address), or NULL. */
static pagechunk **chunk_ref(pagemap *m, uint32_t base)
{
    if (m->cap)
        return tab_find(m, base);
    return m->single && m->single->base == base ? &m->single : NULL;
}

static void tab_insert(pagemap *m, pagechunk *c)
{
    uint32_t mask = m->cap - 1;
    uint32_t i = hash_u32(c->base) & mask;
    while (m->tab[i])
        i = (i + 1) & mask;
    m->tab[i] = c;
}

/* Rebuilds the chunk table with ncap slots (0: back to `single`, only if
 * at most one chunk).  Returns 0 or TMEM_ENOMEM (nothing changed). */
static int tab_resize(tmem_store *s, pagemap *m, uint32_t ncap)
{
    pagechunk **old = m->tab, *one = m->single;
    uint32_t ocap = m->cap;
    pagechunk **tab = NULL;
    if (ncap) {
        tab = tmem__core_alloc(s, ncap * sizeof *tab);
        if (!tab)
            return TMEM_ENOMEM;
    }
    m->tab = tab;
    m->cap = ncap;
    m->single = NULL;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i]) {
            if (ncap)
                tab_insert(m, old[i]);
            else
                m->single = old[i];
        }
    if (!ocap && one)
        tab_insert(m, one);
    tmem__core_free(s, old);
    return 0;
}

/* Removes the chunk at *ref from the map (it is not freed). */
static void tab_remove(tmem_store *s, pagemap *m, pagechunk **ref)
{
    m->nchunks--;
    if (!m->cap) {
        m->single = NULL;
        return;
    }
    uint32_t mask = m->cap - 1;
    uint32_t i = (uint32_t)(ref - m->tab);
    for (uint32_t j = (i + 1) & mask; m->tab[j]; j = (j + 1) & mask) {
        uint32_t home = hash_u32(m->tab[j]->base) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->tab[i] = m->tab[j];
            i = j;
        }
    }
    m->tab[i] = NULL;
    if (m->nchunks <= 1)
        tab_resize(s, m, 0);
    else if (m->cap > 8 && m->nchunks * 8 < m->cap)
        tab_resize(s, m, m->cap / 2); /* on ENOMEM: stay larger */
}

static inline unsigned pos_of(const pagechunk *c, unsigned bit)
{
    return (unsigned)__builtin_popcountll(c->bits & ((1ull << bit) - 1));
}

uint64_t *tmem__map_find(pagemap *m, uint32_t index)
{
    pagechunk **ref = chunk_ref(m, index >> CHUNK_BITS);
    unsigned bit = index & (CHUNK_SLOTS - 1);
    if (!ref || !((*ref)->bits >> bit & 1))
        return NULL;
    return &(*ref)->vals[pos_of(*ref, bit)];
}

/* Adds a new, empty chunk for base.  Returns its address in the map or
 * NULL (ENOMEM, nothing changed). */
static pagechunk **chunk_add(tmem_store *s, pagemap *m, uint32_t base)
{
    pagechunk *c = tmem__core_alloc(s, chunk_size(CHUNK_STEP));
    if (!c)
        return NULL;
    c->base = base;
    c->cap = CHUNK_STEP;
    if (!m->cap && !m->single) {
        m->single = c;
        m->nchunks = 1;
        return &m->single;
    }
    uint32_t need = m->nchunks + 1;
    if (need * 4 > m->cap * 3 &&
        tab_resize(s, m, m->cap ? m->cap * 2 : 4) < 0) {
        tmem__core_free(s, c);
        return NULL;
    }
    tab_insert(m, c);
    m->nchunks++;
    return tab_find(m, base);
}

/* Reallocates *ref to ncap slots.  Returns 0 or TMEM_ENOMEM. */
static int chunk_recap(tmem_store *s, pagechunk **ref, unsigned ncap)
{
    pagechunk *n = tmem__core_alloc(s, chunk_size(ncap));
    if (!n)
        return TMEM_ENOMEM;
    memcpy(n, *ref, chunk_size((*ref)->n));
    n->cap = (uint8_t)ncap;
    tmem__core_free(s, *ref);
    *ref = n;
    return 0;
}

int tmem__map_set(tmem_store *s, pagemap *m, uint32_t index, uint64_t val,
                  uint64_t *old)
{
    uint64_t *slot = tmem__map_find(m, index);
    *old = 0;
    if (slot) {
        *old = *slot;
        *slot = val;
        return 0;
    }
    uint32_t base = index >> CHUNK_BITS;
    unsigned bit = index & (CHUNK_SLOTS - 1);
    pagechunk **ref = chunk_ref(m, base);
    if (!ref && !(ref = chunk_add(s, m, base)))
        return TMEM_ENOMEM;
    pagechunk *c = *ref;
    /* A fresh chunk has room, so a failure here changes nothing. */
    if (c->n == c->cap && chunk_recap(s, ref, c->cap + CHUNK_STEP) < 0)
        return TMEM_ENOMEM;
    c = *ref;
    unsigned pos = pos_of(c, bit);
    memmove(&c->vals[pos + 1], &c->vals[pos], (c->n - pos) * sizeof *c->vals);
    c->vals[pos] = val;
    c->bits |= 1ull << bit;
    c->n++;
    m->count++;
    return 0;
}

uint64_t tmem__map_del(tmem_store *s, pagemap *m, uint32_t index)
{
    pagechunk **ref = chunk_ref(m, index >> CHUNK_BITS);
    unsigned bit = index & (CHUNK_SLOTS - 1);
    if (!ref || !((*ref)->bits >> bit & 1))
        return 0;
    pagechunk *c = *ref;
    unsigned pos = pos_of(c, bit);
    uint64_t val = c->vals[pos];
    memmove(&c->vals[pos], &c->vals[pos + 1],
            (c->n - pos - 1) * sizeof *c->vals);
    c->bits &= ~(1ull << bit);
    c->n--;
    m->count--;
    if (c->n == 0) {
        tab_remove(s, m, ref);
        tmem__core_free(s, c);
    } else if (c->cap - c->n >= 2 * CHUNK_STEP) {
        chunk_recap(s, ref, c->cap - CHUNK_STEP); /* ENOMEM: stay */
    }
    return val;
}

/* Filters one chunk in place; returns the number removed. */
static unsigned chunk_filter(pagechunk *c,
                             bool (*fn)(uint64_t, uint32_t, void *),
                             void *arg)
{
    unsigned kept = 0, k = 0, removed = 0;
    for (uint64_t bits = c->bits; bits; bits &= bits - 1, k++) {
        unsigned bit = (unsigned)__builtin_ctzll(bits);
        uint32_t index = (c->base << CHUNK_BITS) | bit;
        if (fn(c->vals[k], index, arg)) {
            c->bits &= ~(1ull << bit);
            removed++;
        } else {
            c->vals[kept++] = c->vals[k];
        }
    }
    c->n = (uint8_t)kept;
    return removed;
}

uint64_t tmem__map_filter(tmem_store *s, pagemap *m,
                          bool (*fn)(uint64_t, uint32_t, void *), void *arg)
{
    uint64_t removed = 0;
    if (!m->cap && m->single)
        removed = chunk_filter(m->single, fn, arg);
    for (uint32_t i = 0; i < m->cap; i++)
        if (m->tab[i])
            removed += chunk_filter(m->tab[i], fn, arg);
    m->count -= (uint32_t)removed;
    /* Free emptied chunks: one deletion at a time keeps the probing
     * invariant; a deletion may move a later chunk into slot i. */
    for (uint32_t i = 0; i < m->cap;) {
        pagechunk *c = m->tab[i];
        if (!c || c->n) {
            i++;
            continue;
        }
        uint32_t cap = m->cap;
        tab_remove(s, m, &m->tab[i]);
        tmem__core_free(s, c);
        if (m->cap != cap)
            i = 0; /* table rebuilt */
    }
    /* No table (from the start, or rebuilt down to one chunk). */
    if (!m->cap && m->single && m->single->n == 0) {
        tmem__core_free(s, m->single);
        m->single = NULL;
        m->nchunks = 0;
    }
    return removed;
}

void tmem__map_free(tmem_store *s, pagemap *m)
{
    for (uint32_t i = 0; i < m->cap; i++)
        tmem__core_free(s, m->tab[i]);
    tmem__core_free(s, m->tab);
    tmem__core_free(s, m->single);
    memset(m, 0, sizeof *m);
}
