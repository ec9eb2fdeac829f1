/*
 * What every fuzz target here shares: the libFuzzer entry point (also
 * called by replay_main.c, which replays a corpus in make check) and
 * CHECK, which aborts when a rule the target holds the code to breaks, so
 * libFuzzer saves the input and a replay fails.
 */
#ifndef TMEM_FUZZ_H
#define TMEM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

#endif
