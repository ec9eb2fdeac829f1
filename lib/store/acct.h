/*
 * The store's memory account: one count of every byte the store holds,
 * checked against the budget before a byte is taken.
 *
 * Every layer that takes memory (the store core's structures, the blob
 * layer's tables, an arena's file pages and private structures) charges it
 * here first and uncharges it when it gives it back.  A charge that would
 * take `used` past the limit is refused (-ENOSPC) and changes nothing, so
 * `used <= limit` holds at every instant, not only between operations
 * (docs/store.md, "Budget").  The check and the add are one compare-and-
 * swap: two threads can never both take the last bytes.
 *
 * Credit: a put reserves, before it touches anything, the bytes its index
 * work will need (tmem__acct_reserve); the store core's allocations on
 * that thread then draw on the reservation (tmem__acct_draw) instead of
 * charging, so they cannot be refused after the page data went in.  What
 * is left is given back by tmem__acct_release.  One reservation per thread
 * at a time.
 *
 * A NULL account counts nothing and refuses nothing (arenas and blob
 * stores made alone, in tests).
 */
#ifndef TMEM_STORE_ACCT_H
#define TMEM_STORE_ACCT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct tmem_acct {
    _Atomic uint64_t used;    /* bytes held now */
    _Atomic uint64_t limit;   /* 0: none */
    _Atomic uint64_t refused; /* charges refused */
} tmem_acct;

void tmem__acct_init(tmem_acct *m, uint64_t limit);
void tmem__acct_set_limit(tmem_acct *m, uint64_t limit);
uint64_t tmem__acct_limit(const tmem_acct *m);
uint64_t tmem__acct_used(const tmem_acct *m);
/* True when n more bytes fit under the limit now. */
bool tmem__acct_fits(const tmem_acct *m, uint64_t n);

/* Charges n bytes.  Returns 0, or -ENOSPC (nothing charged; the refusal
 * is remembered for this thread, see tmem__acct_take_refusal). */
int tmem__acct_charge(tmem_acct *m, uint64_t n);
void tmem__acct_uncharge(tmem_acct *m, uint64_t n);
/* Moves a charge from old_n to new_n bytes (a table resized in place of
 * another); a growth may be refused as tmem__acct_charge. */
int tmem__acct_recharge(tmem_acct *m, uint64_t old_n, uint64_t new_n);

/* True when a charge was refused on this thread since the last call (and
 * forgets it): tells a budget refusal from an allocation failure. */
bool tmem__acct_take_refusal(void);

/* Charges n bytes as this thread's credit on m.  Returns 0 or -ENOSPC. */
int tmem__acct_reserve(tmem_acct *m, uint64_t n);
/* Takes up to n bytes from this thread's credit on m; returns the bytes
 * covered (the caller charges the rest). */
uint64_t tmem__acct_draw(tmem_acct *m, uint64_t n);
/* Gives back what is left of this thread's credit on m. */
void tmem__acct_release(tmem_acct *m);

#endif
