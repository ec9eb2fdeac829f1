/*
 * The store's memory account (acct.h).  Owns `used`, `limit`, the refusal
 * count and, per thread, the last refusal flag and the credit of the put
 * running on that thread.  Invariant: used <= limit whenever limit != 0
 * and no administrator lowered it below what is held; a charge is one
 * compare-and-swap, so the invariant holds for every reader at every
 * instant.
 */
#include "store/acct.h"

#include <errno.h>
#include <stddef.h>

static _Thread_local bool refused_here;
static _Thread_local struct {
    tmem_acct *m;
    uint64_t left;
} credit;

void tmem__acct_init(tmem_acct *m, uint64_t limit)
{
    atomic_init(&m->used, 0);
    atomic_init(&m->limit, limit);
    atomic_init(&m->refused, 0);
}

void tmem__acct_set_limit(tmem_acct *m, uint64_t limit)
{
    atomic_store(&m->limit, limit);
}

uint64_t tmem__acct_limit(const tmem_acct *m)
{
    return m ? atomic_load_explicit(&m->limit, memory_order_relaxed) : 0;
}

uint64_t tmem__acct_used(const tmem_acct *m)
{
    return m ? atomic_load_explicit(&m->used, memory_order_relaxed) : 0;
}

bool tmem__acct_fits(const tmem_acct *m, uint64_t n)
{
    uint64_t lim = tmem__acct_limit(m);
    return !lim || tmem__acct_used(m) + n <= lim;
}

int tmem__acct_charge(tmem_acct *m, uint64_t n)
{
    if (!m || !n)
        return 0;
    uint64_t u = atomic_load_explicit(&m->used, memory_order_relaxed);
    for (;;) {
        uint64_t lim = atomic_load_explicit(&m->limit, memory_order_relaxed);
        if (lim && (u + n > lim || u + n < u)) {
            atomic_fetch_add_explicit(&m->refused, 1, memory_order_relaxed);
            refused_here = true;
            return -ENOSPC;
        }
        if (atomic_compare_exchange_weak_explicit(&m->used, &u, u + n,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
}

void tmem__acct_uncharge(tmem_acct *m, uint64_t n)
{
    if (m && n)
        atomic_fetch_sub_explicit(&m->used, n, memory_order_relaxed);
}

int tmem__acct_recharge(tmem_acct *m, uint64_t old_n, uint64_t new_n)
{
    if (new_n > old_n)
        return tmem__acct_charge(m, new_n - old_n);
    tmem__acct_uncharge(m, old_n - new_n);
    return 0;
}

bool tmem__acct_take_refusal(void)
{
    bool r = refused_here;
    refused_here = false;
    return r;
}

int tmem__acct_reserve(tmem_acct *m, uint64_t n)
{
    int r = tmem__acct_charge(m, n);
    if (r == 0) {
        credit.m = m;
        credit.left = n;
    }
    return r;
}

uint64_t tmem__acct_draw(tmem_acct *m, uint64_t n)
{
    if (!m || credit.m != m)
        return 0;
    uint64_t k = n < credit.left ? n : credit.left;
    credit.left -= k;
    return k;
}

void tmem__acct_release(tmem_acct *m)
{
    if (!m || credit.m != m)
        return;
    tmem__acct_uncharge(m, credit.left);
    credit.m = NULL;
    credit.left = 0;
}
