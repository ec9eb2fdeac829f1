/*
 * Per-thread slots for sharded state: each thread gets a small number on
 * its first call, handed out round robin (0, 1, 2, ...), and spreads its
 * writes over N shards with tmem__thread_slot() % N, so threads started
 * together (two tenants' ring threads, say) land on different cache lines.
 */
#ifndef TMEM_COMMON_THREAD_SLOT_H
#define TMEM_COMMON_THREAD_SLOT_H

unsigned tmem__thread_slot(void);

#endif
