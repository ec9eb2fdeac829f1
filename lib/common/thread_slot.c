/*
 * Per-thread slots (thread_slot.h).
 */
#include "thread_slot.h"

#include <stdatomic.h>

static atomic_uint next_slot;
static _Thread_local unsigned my_slot; /* slot + 1; 0 = none yet */

unsigned tmem__thread_slot(void)
{
    if (my_slot == 0)
        my_slot = atomic_fetch_add_explicit(&next_slot, 1,
                                            memory_order_relaxed) + 1;
    return my_slot - 1;
}
