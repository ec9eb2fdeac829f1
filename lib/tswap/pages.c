/*
 * Page states and regions: the state-word transitions every path uses
 * (claim, release, wait), the page arrays, region descriptors and the
 * published region table, and their safe reclamation.
 *
 * Invariants:
 *   - a page's state word changes only by compare-and-swap; a claim moves
 *     a stable state (NONE, RESIDENT, STORED) to PAGING_IN or EVICTING and
 *     makes the caller the page's owner until its release; the counters
 *     resident/stored/copies count stable states only (a claim leaves
 *     them, a release enters them);
 *   - the table is replaced, never changed, under t->lock; a table, a
 *     region or a page array is freed only after it was unpublished, the
 *     reader epoch flipped, and every reader of the old epoch left
 *     (tswap__reap_locked), so the fault path may read them without locks;
 *   - a page array is freed when no published region uses it (refs 0).
 */
#include "tswap/tswap_internal.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <string.h>

/* ---- t->lock ------------------------------------------------------------- */

static __thread tmem_tswap *lock_held; /* the tswap whose lock we hold */

void tswap__lock(tmem_tswap *t)
{
    pthread_mutex_lock(&t->lock);
    lock_held = t;
}

bool tswap__trylock(tmem_tswap *t)
{
    if (pthread_mutex_trylock(&t->lock) != 0)
        return false;
    lock_held = t;
    return true;
}

void tswap__unlock(tmem_tswap *t)
{
    lock_held = NULL;
    pthread_mutex_unlock(&t->lock);
}

/* In a fork child: the copied mutex was held by the forking thread. */
void tswap__lock_reset(tmem_tswap *t)
{
    pthread_mutex_init(&t->lock, NULL);
    lock_held = NULL;
}

void tswap__assert_locked(tmem_tswap *t)
{
    (void)t;
    assert(lock_held == t);
}

/* ---- reader sections ----------------------------------------------------- */

void tswap__read_enter(tmem_tswap *t, uint32_t *idx)
{
    uint32_t e = atomic_load(&t->epoch) & 1;
    atomic_fetch_add(&t->readers[e], 1);
    *idx = e;
}

void tswap__read_leave(tmem_tswap *t, uint32_t idx)
{
    atomic_fetch_sub(&t->readers[idx], 1);
}

/* The region holding addr in the published table, or NULL.  Call inside
 * a reader section. */
struct ts_region *tswap__lookup(tmem_tswap *t, uintptr_t addr)
{
    struct ts_table *tb = atomic_load(&t->table);
    uint32_t lo = 0, hi = tb ? tb->n : 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        struct ts_region *r = tb->r[mid];
        if (addr < r->start)
            hi = mid;
        else if (addr >= r->end)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

/* ---- state words --------------------------------------------------------- */

void tswap__account(tmem_tswap *t, uint32_t v, int dir)
{
    switch (PS_STATE(v)) {
    case PS_RESIDENT:
        atomic_fetch_add_explicit(&t->c.resident, dir, memory_order_relaxed);
        if (v & PS_COPY)
            atomic_fetch_add_explicit(&t->c.copies, dir, memory_order_relaxed);
        break;
    case PS_STORED:
        atomic_fetch_add_explicit(&t->c.stored, dir, memory_order_relaxed);
        break;
    default:
        break;
    }
}

/* Moves the page from *v (a stable state, as last read) to state `to`,
 * keeping flags and pins.  Returns true when the caller now owns the page
 * (*v still holds the word it claimed); on false *v holds the word now. */
bool tswap__claim(tmem_tswap *t, _Atomic uint32_t *w, uint32_t *v, uint32_t to)
{
    uint32_t old = *v;
    uint32_t nv = (old & ~(PS_MASK | PS_WAIT)) | to;
    if (!atomic_compare_exchange_strong(w, v, nv))
        return false;
    tswap__account(t, old, -1);
    return true;
}

/* The owner's release: the word becomes its pins, the flags of keep_mask
 * it had, and bits (a stable state and flags); sleepers are woken. */
void tswap__release(tmem_tswap *t, _Atomic uint32_t *w, uint32_t keep_mask,
                    uint32_t bits)
{
    uint32_t old = atomic_load(w), nv;
    do
        nv = (old & (PS_PIN_MASK | keep_mask)) | bits;
    while (!atomic_compare_exchange_weak(w, &old, nv));
    tswap__account(t, nv, +1);
    if (old & PS_WAIT)
        tswap__futex_wake(w, 0x7fffffff);
}

/* Sets and clears flag bits of a page in state `state`; returns false
 * (changing nothing) when the page is not in that state. */
bool tswap__flags(tmem_tswap *t, _Atomic uint32_t *w, uint32_t state,
                  uint32_t set, uint32_t clear)
{
    uint32_t old = atomic_load(w), nv;
    do {
        if (PS_STATE(old) != state)
            return false;
        nv = (old | set) & ~clear;
    } while (!atomic_compare_exchange_weak(w, &old, nv));
    if (state == PS_RESIDENT && ((old ^ nv) & PS_COPY))
        atomic_fetch_add_explicit(&t->c.copies, (nv & PS_COPY) ? 1 : -1,
                                  memory_order_relaxed);
    return true;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Waits until the word differs from seen (a transitional state): spins a
 * little (the owner is usually running on the other CPU and done within
 * microseconds; a futex wake-up costs ~100 us here), then sleeps on the
 * futex.  Returns the word as it is now. */
uint32_t tswap__wait(_Atomic uint32_t *w, uint32_t seen)
{
    for (int i = 0; i < 2000; i++) {
        uint32_t v = atomic_load_explicit(w, memory_order_acquire);
        if (v != seen)
            return v;
        if (i % 256 == 255)
            sched_yield();
        else
            cpu_relax();
    }
    uint32_t v = seen;
    if (!(v & PS_WAIT) && !atomic_compare_exchange_strong(w, &v, v | PS_WAIT))
        return v;
    /* The timeout bounds a wake-up lost to a pin change racing the flag. */
    tswap__futex_wait(w, seen | PS_WAIT, 10 * 1000 * 1000);
    return atomic_load(w);
}

/* Waits until the page is in a stable state; returns its word. */
uint32_t tswap__settle(_Atomic uint32_t *w)
{
    uint32_t v = atomic_load(w);
    while (PS_STATE(v) == PS_PAGING_IN || PS_STATE(v) == PS_EVICTING)
        v = tswap__wait(w, v);
    return v;
}

/* Forgets page i of pg (its memory went away or was discarded): settles
 * it, releases its slot when it had one, leaves it NONE with its pins. */
void tswap__page_forget_locked(tmem_tswap *t, struct ts_pages *pg, uint64_t i)
{
    _Atomic uint32_t *w = &pg->state[i];
    tswap__assert_locked(t);
    for (;;) {
        uint32_t v = tswap__settle(w);
        if (PS_STATE(v) == PS_NONE)
            return;
        if (!tswap__claim(t, w, &v, PS_PAGING_IN))
            continue;
        if (PS_STATE(v) == PS_STORED || (v & PS_COPY))
            tswap__slot_release_locked(t, pg->slot[i]);
        tswap__release(t, w, 0, PS_NONE);
        return;
    }
}

/* ---- page arrays and regions --------------------------------------------- */

struct ts_pages *tswap__pages_new(tmem_tswap *t, uint64_t n)
{
    size_t hdr = (sizeof(struct ts_pages) + 63) & ~(size_t)63;
    size_t bytes = hdr + n * (8 + 4 + 4 + 1);
    char *p = tswap__alloc(t, bytes);
    if (!p)
        return NULL;
    struct ts_pages *pg = (struct ts_pages *)p;
    pg->obj.bytes = bytes;
    pg->n = n;
    pg->hash = (uint64_t *)(p + hdr);
    pg->state = (_Atomic uint32_t *)(pg->hash + n);
    pg->slot = (uint32_t *)(pg->state + n);
    pg->stamp = (_Atomic uint8_t *)(pg->slot + n);
    return pg;
}

struct ts_region *tswap__region_new(tmem_tswap *t, uintptr_t start,
                                    uintptr_t end, struct ts_pages *pg,
                                    uint64_t first)
{
    struct ts_region *r = tswap__alloc(t, sizeof *r);
    if (!r)
        return NULL;
    r->obj.bytes = sizeof *r;
    r->start = start;
    r->end = end;
    r->pg = pg;
    r->first = first;
    atomic_store(&r->ra_next, ~0ull);
    atomic_store(&r->ra_run, 0);
    return r;
}

/* ---- the table ----------------------------------------------------------- */

static bool dropped(struct ts_region *r, struct ts_region *const *drop,
                    size_t ndrop)
{
    for (size_t i = 0; i < ndrop; i++)
        if (drop[i] == r)
            return true;
    return false;
}

/* Inserts r into the sorted prefix tb->r[0..tb->n-1]. */
static void insert_sorted(struct ts_table *tb, struct ts_region *r)
{
    uint32_t i = tb->n++;
    while (i > 0 && tb->r[i - 1]->start > r->start) {
        tb->r[i] = tb->r[i - 1];
        i--;
    }
    tb->r[i] = r;
    tb->pages += (r->end - r->start) >> TS_SHIFT;
}

/* Publishes the table minus drop plus add (which must not overlap what
 * stays); retires the old table, the dropped regions and the page arrays
 * no region uses any more.  Returns 0 or -ENOMEM (nothing changed). */
int tswap__table_swap_locked(tmem_tswap *t, struct ts_region *const *drop,
                             size_t ndrop, struct ts_region *const *add,
                             size_t nadd)
{
    tswap__assert_locked(t);
    struct ts_table *old = atomic_load(&t->table);
    uint32_t on = old ? old->n : 0;
    size_t bytes = sizeof *old + (on + nadd) * sizeof(struct ts_region *);
    struct ts_table *nt = tswap__alloc(t, bytes);
    if (!nt)
        return -ENOMEM;
    nt->obj.bytes = bytes;
    for (uint32_t i = 0; i < on; i++)
        if (!dropped(old->r[i], drop, ndrop))
            insert_sorted(nt, old->r[i]);
    for (size_t i = 0; i < nadd; i++) {
        insert_sorted(nt, add[i]);
        add[i]->pg->refs++;
    }
    atomic_store(&t->table, nt);
    if (old)
        tswap__retire_locked(t, &old->obj);
    for (size_t i = 0; i < ndrop; i++) {
        if (--drop[i]->pg->refs == 0)
            tswap__retire_locked(t, &drop[i]->pg->obj);
        tswap__retire_locked(t, &drop[i]->obj);
    }
    tswap__reap_locked(t);
    return 0;
}

/* Forgets every region page of [s, e) (tswap__page_forget_locked). */
void tswap__forget_range_locked(tmem_tswap *t, uintptr_t s, uintptr_t e)
{
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n; k++) {
        struct ts_region *r = tb->r[k];
        uintptr_t a = s > r->start ? s : r->start;
        uintptr_t b = e < r->end ? e : r->end;
        for (uintptr_t p = a; p < b; p += TS_PAGE)
            tswap__page_forget_locked(t, r->pg,
                                      r->first + ((p - r->start) >> TS_SHIFT));
    }
    tswap__flush_commit_locked(t);
}

/* The regions overlapping [s, e) (drop) and what is left of them outside
 * it (add, sharing their page arrays). */
struct cut {
    struct ts_region **drop, **add;
    size_t ndrop, nadd;
};

static int cut_out(tmem_tswap *t, uintptr_t s, uintptr_t e, struct cut *c)
{
    struct ts_table *tb = atomic_load(&t->table);
    for (uint32_t k = 0; tb && k < tb->n; k++) {
        struct ts_region *r = tb->r[k], *x;
        if (r->end <= s || r->start >= e)
            continue;
        c->drop[c->ndrop++] = r;
        if (r->start < s) {
            if (!(x = tswap__region_new(t, r->start, s, r->pg, r->first)))
                return -ENOMEM;
            c->add[c->nadd++] = x;
        }
        if (e < r->end) {
            x = tswap__region_new(t, e, r->end, r->pg,
                                  r->first + ((e - r->start) >> TS_SHIFT));
            if (!x)
                return -ENOMEM;
            c->add[c->nadd++] = x;
        }
    }
    return 0;
}

/* Takes [s, e) out of the regions, and adds extra (may be NULL).  On no
 * memory nothing changes and -ENOMEM is returned (the range stays in the
 * table: no fault can come from it once it is unmapped). */
int tswap__cut_locked(tmem_tswap *t, uintptr_t s, uintptr_t e,
                      struct ts_region *extra)
{
    struct ts_table *tb = atomic_load(&t->table);
    size_t n = tb ? tb->n : 0;
    struct cut c = {.ndrop = 0, .nadd = 0};
    size_t bytes = (3 * n + 1) * sizeof(struct ts_region *);
    c.drop = tswap__alloc(t, bytes);
    int rc = -ENOMEM;
    if (!c.drop)
        goto out;
    c.add = c.drop + n;
    rc = cut_out(t, s, e, &c);
    if (rc == 0 && extra)
        c.add[c.nadd++] = extra;
    if (rc == 0)
        rc = tswap__table_swap_locked(t, c.drop, c.ndrop, c.add, c.nadd);
    if (rc < 0)
        for (size_t i = 0; i < c.nadd; i++)
            if (c.add[i] != extra)
                tswap__free(t, c.add[i]);
    tswap__free(t, c.drop);
out:
    if (rc < 0)
        tswap__say(t, "region table: %s", strerror(-rc));
    return rc;
}

/* ---- retirement ---------------------------------------------------------- */

void tswap__retire_locked(tmem_tswap *t, struct ts_obj *o)
{
    tswap__assert_locked(t);
    o->dead_next = t->retired_new;
    t->retired_new = o;
}

static void free_list(tmem_tswap *t, struct ts_obj *o)
{
    while (o) {
        struct ts_obj *next = o->dead_next;
        tswap__free(t, o);
        o = next;
    }
}

/* Frees what every reader has left behind; flips the epoch when there
 * is something new to wait for.  Never blocks. */
void tswap__reap_locked(tmem_tswap *t)
{
    tswap__assert_locked(t);
    if (t->retired_old && atomic_load(&t->readers[t->retired_old_idx]) == 0) {
        free_list(t, t->retired_old);
        t->retired_old = NULL;
    }
    if (!t->retired_old && t->retired_new) {
        t->retired_old = t->retired_new;
        t->retired_new = NULL;
        t->retired_old_idx = atomic_fetch_add(&t->epoch, 1) & 1;
        if (atomic_load(&t->readers[t->retired_old_idx]) == 0) {
            free_list(t, t->retired_old);
            t->retired_old = NULL;
        }
    }
}

/* Waits until everything retired is freed (destroy). */
void tswap__reap_all(tmem_tswap *t)
{
    tswap__lock(t);
    while (t->retired_old || t->retired_new) {
        tswap__reap_locked(t);
        if (t->retired_old || t->retired_new) {
            tswap__unlock(t);
            sched_yield();
            tswap__lock(t);
        }
    }
    tswap__unlock(t);
}
