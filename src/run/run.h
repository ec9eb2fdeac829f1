/*
 * tmem run's preload library (build/libtmem_run.so): puts an unmodified,
 * dynamically linked program's heap into tswap memory (lib/tswap), whose
 * pages over the resident target live in the tmem store, and wraps the
 * libc calls that would otherwise trip over that (docs/tswap.md, "tmem
 * run").
 *
 * Pieces, one file each:
 *   run_init.c   the constructor: settings from the environment, the
 *                private heap, the connection, tswap, adopting the heap
 *                there is, the run thread (heap scanner, balloon, figures)
 *   run_mem.c    which mappings are heap: mmap, the heap scanner, thread
 *                stacks kept out (pthread_create)
 *   run_io.c     system calls that take user buffers: pages brought in
 *                and pinned for the call, EFAULT retried
 *   run_stdio.c  stdio buffers and directory streams kept resident
 *   run_sig.c    the program's SIGBUS handler and signal masks
 * fork needs nothing here: tswap's own fork handlers hand the child its
 * view of the parent's memory (docs/tswap.md "Fork").
 *
 * Every wrapper works before the constructor ran (it then only calls the
 * real function) and after tswap failed to start (ditto).
 */
#ifndef TMEM_RUN_H
#define TMEM_RUN_H

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tmem_tswap;

/* The process's tswap once it runs, else NULL. */
extern struct tmem_tswap *_Atomic tmem_run_tswap;

/* The next definition of a libc function (what the program would have
 * called), looked up once.  REAL(name) names the function pointer. */
#define REAL(name) real_##name
#define DEFINE_REAL(ret, name, params)                                      \
    typedef ret(*name##_fn) params;                                         \
    static name##_fn real_##name;                                           \
    static inline name##_fn get_##name(void)                                \
    {                                                                       \
        if (!real_##name)                                                   \
            real_##name = (name##_fn)dlsym(RTLD_NEXT, #name);               \
        return real_##name;                                                 \
    }

/* Brings [p, p+n) in and pins it while a system call uses it, when it is
 * tswap memory; a no-op otherwise (and for n == 0). */
void tmem_run_pin(const void *p, size_t n);
void tmem_run_unpin(const void *p, size_t n);
/* The same for a NUL-terminated string (and its NUL). */
size_t tmem_run_pin_str(const char *s);
void tmem_run_unpin_str(const char *s, size_t n);

/* Records the stack of a thread (it never goes to tswap). */
void tmem_run_stack_add(void *lo, size_t len);
/* Keeps a range of libtmem's own out of tswap. */
void tmem_run_exclude(const void *lo, size_t len);
/* True when [p, p+n) lies in a recorded stack. */
bool tmem_run_is_stack(const void *p, size_t n);
/* Adopts the heap mappings made since the last scan (run thread). */
void tmem_run_scan(void);
/* Adopts one mapping the program just made, if it is heap. */
void tmem_run_adopt(void *p, size_t len, int prot, int flags);

/* run_sig.c: the SIGBUS action the program believes it has. */
void tmem_run_sig_init(void);

/* run_stdio.c: gives the standard streams private buffers. */
void tmem_run_stdio_init(void);

/* One line to stderr: "tmem run: ..." (async-signal-safe). */
void tmem_run_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
