/*
 * The shared-memory ring between a tenant and tmemd: layout, creation
 * (tenant), attachment with validation (daemon), entry fetch-and-validate,
 * and the spin-then-futex wait both sides use.
 *
 * Invariants: the daemon maps only a memfd, open for reading and writing,
 * sealed against shrinking and growing (and not against writes), of
 * exactly the size its entry count (given in the setup message, kept by
 * the daemon, never re-read from shared memory) needs, so no access
 * through the mapping can fault and the file cannot change size later.
 * Every field read from shared memory is read once (volatile copy) before
 * it is validated.  Futexes are shared (not FUTEX_PRIVATE): the two ends
 * are different processes.
 */
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <proto/conn.h>

_Static_assert(sizeof(tmem__ring_hdr) <= TMEM_RING_TSTAT_OFF &&
                   TMEM_RING_TSTAT_OFF + sizeof(tmem__tstat) <= 4096,
               "ring hdr and tenant stats fit a page");
_Static_assert(sizeof(tmem__ring_sqe) == 64, "sqe size");
_Static_assert(sizeof(tmem__ring_cqe) == 16, "cqe size");

#define SPIN_PURE_NS 5000
#define RING_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)
#ifdef F_SEAL_FUTURE_WRITE
#define RING_SEALS_NOT (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)
#else
#define RING_SEALS_NOT F_SEAL_WRITE
#endif

static size_t page_round(size_t n)
{
    return (n + TMEM_PAGE_SIZE - 1) & ~(size_t)(TMEM_PAGE_SIZE - 1);
}

int tmem__ring_layout_of(uint32_t n, tmem__ring_layout *out)
{
    if (n == 0 || n > TMEM_RING_MAX_ENTRIES)
        return -EINVAL;
    out->entries = n;
    out->sq_off = TMEM_PAGE_SIZE;
    out->cq_off = page_round(out->sq_off + (size_t)n * sizeof(tmem__ring_sqe));
    out->slot_off = page_round(out->cq_off + (size_t)n * sizeof(tmem__ring_cqe));
    out->size = out->slot_off + (size_t)n * TMEM_PAGE_SIZE;
    return 0;
}

static void ring_bind(tmem__ring *r, void *base)
{
    r->base = base;
    r->hdr = base;
    r->sq = (tmem__ring_sqe *)(r->base + r->lay.sq_off);
    r->cq = (tmem__ring_cqe *)(r->base + r->lay.cq_off);
    r->slots = r->base + r->lay.slot_off;
}

int tmem__ring_create(uint32_t n, tmem__ring *r, int *out_fd)
{
    int rc = tmem__ring_layout_of(n, &r->lay);
    if (rc < 0)
        return rc;
    int fd = memfd_create("tmem-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)r->lay.size) < 0 ||
        fcntl(fd, F_ADD_SEALS, RING_SEALS) < 0)
        goto out_errno;
    void *p =
        mmap(NULL, r->lay.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto out_errno;
    ring_bind(r, p);
    r->hdr->magic = TMEM_PROTO_MAGIC;
    r->hdr->version = TMEM_PROTO_VERSION;
    r->hdr->entries = n;
    *out_fd = fd;
    return 0;
out_errno:
    rc = -errno;
    close(fd);
    return rc;
}

/* What the daemon accepts as ring memory (see the invariants above).
 * Returns 0, -EBADF (not a memfd: F_GET_SEALS fails, not a regular file,
 * or not open read-write), -EPERM (seals other than the tenant side makes:
 * F_SEAL_SHRINK and F_SEAL_GROW must be set, F_SEAL_WRITE and
 * F_SEAL_FUTURE_WRITE must not), -EINVAL (not exactly lay->size bytes). */
static int ring_fd_check(int fd, const tmem__ring_layout *lay)
{
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    int fl = fcntl(fd, F_GETFL);
    if (seals < 0 || fl < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (fl & O_ACCMODE) != O_RDWR)
        return -EBADF;
    if ((seals & RING_SEALS) != RING_SEALS || (seals & RING_SEALS_NOT))
        return -EPERM;
    if ((uint64_t)st.st_size != lay->size)
        return -EINVAL;
    return 0;
}

int tmem__ring_attach(int fd, uint32_t n, tmem__ring *r)
{
    int rc = tmem__ring_layout_of(n, &r->lay);
    if (rc == 0)
        rc = ring_fd_check(fd, &r->lay);
    if (rc < 0)
        return rc;
    void *p =
        mmap(NULL, r->lay.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    ring_bind(r, p);
    return 0;
}

void tmem__ring_unmap(tmem__ring *r)
{
    if (r->base)
        munmap(r->base, r->lay.size);
    r->base = NULL;
}

int tmem__ring_count_check(const tmem__ring *r, uint32_t count)
{
    return count >= 1 && count <= r->lay.entries ? 0 : -EINVAL;
}

int tmem__ring_sqe_fetch(const tmem__ring *r, uint32_t i, tmem__ring_sqe *out)
{
    /* One volatile copy: later checks see only our private copy. */
    const volatile tmem__ring_sqe *src = &r->sq[i];
    out->op = src->op;
    out->pool = src->pool;
    out->index = src->index;
    out->slot = src->slot;
    for (int k = 0; k < 3; k++)
        out->oid[k] = src->oid[k];
    out->enc = src->enc;
    out->len = src->len;
    out->fill = src->fill;
    out->hash = src->hash;
    if (out->op < TMEM_OP_PUT || out->op > TMEM_OP_FLUSH_OBJECT)
        return -EINVAL;
    bool page = out->op == TMEM_OP_PUT || out->op == TMEM_OP_GET;
    if (page && out->slot >= r->lay.entries)
        return -EINVAL;
    return 0;
}

/* ---- waiting ------------------------------------------------------------ */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint32_t load(uint32_t *w)
{
    return atomic_load_explicit((_Atomic uint32_t *)w, memory_order_acquire);
}

/* Past a short pure spin it yields between checks: on a busy 2-CPU
 * machine the peer we wait for may need this very CPU.  hold may be NULL
 * (spin the whole max_ns). */
bool tmem__ring_spin_while(uint32_t *word, uint32_t old, uint32_t *hold,
                 uint32_t hold_val, uint64_t max_ns)
{
    uint64_t start = tmem__now_ns(), spent = 0;
    for (unsigned i = 0; max_ns > 0; i++) {
        if (load(word) != old)
            return true;
        if (hold && load(hold) != hold_val)
            return false;
        cpu_relax();
        if ((i & 63) != 63)
            continue;
        spent = tmem__now_ns() - start;
        if (spent >= max_ns)
            return false;
        if (spent >= SPIN_PURE_NS)
            sched_yield();
    }
    return false;
}

int tmem__ring_wait(uint32_t *word, uint32_t old, uint32_t *sleeping,
                    uint32_t tag, uint64_t spin_ns, uint64_t timeout_ns)
{
    if (tmem__ring_spin_while(word, old, NULL, 0, spin_ns))
        return 0;
    _Atomic uint32_t *sl = (_Atomic uint32_t *)sleeping;
    atomic_store(sl, tag); /* seq_cst: pairs with tmem__ring_post */
    if (atomic_load((_Atomic uint32_t *)word) != old) {
        atomic_store(sl, 0);
        return 0;
    }
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u),
                          (long)(timeout_ns % 1000000000u)};
    syscall(SYS_futex, word, FUTEX_WAIT, old, &ts, NULL, 0);
    atomic_store(sl, 0);
    return load(word) != old ? 0 : -ETIMEDOUT;
}

void tmem__ring_post(uint32_t *word, uint32_t val, uint32_t *sleeping,
                     uint32_t tag)
{
    atomic_store((_Atomic uint32_t *)word, val); /* seq_cst */
    if (atomic_load((_Atomic uint32_t *)sleeping) == tag)
        syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}
