/*
 * A tenant's ring: attaching its memory, and serving its batches for the
 * worker that claimed it (workers.c).
 *
 * Invariants: a batch is served by one worker at a time and may be served
 * in parts: when the tenant announced a batch (sq_seq) but has not yet
 * written the next entry (sq_ready), the worker spins a little, then
 * parks the batch (s->bt keeps where it was) and goes to serve other
 * rings; a worker resumes it once sq_ready moves.  So a tenant that never
 * writes its entries holds no worker.  Every field read from the ring is
 * read once before it is checked; the batch's count is read once, when
 * the batch starts.  A ring's memory is charged to the session's client in
 * the store (tmem_client_charge) from its setup until it is unmapped.
 */
#include "tmemd.h"

#include <errno.h>
#include <string.h>

#include <proto/conn.h>

#define SRV_SPIN_NS 50000 /* spin this long before parking / going idle */
/* After a batch, while the tenant has not yet taken its results (cq_taken),
 * the next batch usually follows at once: spin up to this long more before
 * the usual spin, rather than pay a ~100 us wake-up. */
#define SRV_TAKE_SPIN_NS 1000000
#define CQ_READY_STEP 8 /* results published per cq_ready update */

static uint32_t load(const uint32_t *w)
{
    return atomic_load_explicit((_Atomic uint32_t *)w, memory_order_acquire);
}

/* Crowded: more busy rings than half the CPUs.  Each busy ring has a busy
 * tenant too, so its threads outnumber the CPUs, and a thread that spins
 * takes the CPU the thread it waits for needs: both ends of every ring
 * then sleep at once instead (see docs/protocol.md, "Waiting"). */
static bool crowded(const struct tmemd_session *s)
{
    return 2 * atomic_load_explicit(&s->d->rings_busy, memory_order_relaxed) >
           s->d->ncpu;
}

/* Whether entry b->i is written (sq_ready > i): 1 yes, 0 not yet (the
 * batch parks: b->seen is the sq_ready to wait past), -1 stopping.  After
 * a wait, b->t is the time it ended. */
static int entry_ready(struct tmemd_session *s, struct tmemd_batch *b)
{
    tmem__ring_hdr *h = s->ring.hdr;
    /* one spin budget per entry, however sq_ready moves meanwhile (a
     * tenant that moves it without passing i must not hold the worker) */
    uint64_t budget = crowded(s) ? 0 : SRV_SPIN_NS, t0 = 0;
    while (b->ready <= b->i) {
        uint32_t cur = load(&h->sq_ready);
        if (cur > b->ready) {
            b->ready = cur; /* any value: only compared with i < count */
            continue;
        }
        if (atomic_load(&s->ring_stop))
            return -1;
        uint64_t now = tmem__now_ns();
        if (!t0)
            t0 = now;
        uint64_t left = now - t0 < budget ? budget - (now - t0) : 0;
        if (!left ||
            !tmem__ring_spin_while(&h->sq_ready, cur, NULL, 0, left)) {
            b->seen = cur;
            return 0;
        }
        b->t = tmem__now_ns();
    }
    return 1;
}

/* A ring PUT: the tenant packed the page (tmem__pack).  Its bytes are
 * copied once out of the slot (the tenant may rewrite it under us), then
 * stored as they are; the store checks the encoding and length. */
static int ring_put(struct tmemd_session *s, const tmem__ring_sqe *e,
                    tmem__page_where *w)
{
    if (e->len > TMEM_PAGE_SIZE)
        return -EINVAL;
    int rc = tmemd_share_check(s, e->pool, e->oid, e->index);
    if (rc < 0)
        return rc;
    memcpy(s->ring_page, tmem__ring_slot(&s->ring, e->slot), e->len);
    tmem_packed pk = {.enc = e->enc, .len = e->len, .fill = e->fill};
    return tmemd_page_op(s->client, e->op, e->pool, e->oid, e->index,
                         s->ring_page, &pk, w);
}

/* Runs the batch's entries from b->i on.  Entries run back to back, so
 * one clock read per entry times it (from the previous entry's end, or
 * the end of a wait).  Returns 1 when the batch is done, 0 when it parked,
 * -1 when the ring is stopping. */
static int batch_run(struct tmemd_session *s, struct tmemd_batch *b)
{
    tmem__ring *rg = &s->ring;
    for (; b->i < b->count; b->i++) {
        uint32_t i = b->i;
        int ready = entry_ready(s, b);
        if (ready <= 0)
            return ready < 0 ? -1 : 0;
        tmem__ring_sqe e;
        tmem_packed pk = {0};
        tmem__page_where w = {0};
        int rc = tmem__ring_sqe_fetch(rg, i, &e);
        if (rc == 0) {
            if (e.op == TMEM_OP_PUT)
                rc = ring_put(s, &e, &w);
            else /* a GET is left packed in its slot: the tenant decodes it */
                rc = tmemd_page_op(s->client, e.op, e.pool, e.oid, e.index,
                                   e.op == TMEM_OP_GET
                                       ? tmem__ring_slot(rg, e.slot)
                                       : NULL,
                                   &pk, NULL);
            uint64_t now = tmem__now_ns();
            tmemd_lat_record(tmemd_op_lat[e.op], now - b->t);
            b->t = now;
        }
        if (e.op == TMEM_OP_PUT && rc == 1)
            rg->cq[i] = (tmem__ring_cqe){.result = rc, .where = w.kind,
                                         .handle = w.handle, .gen = w.gen};
        else
            rg->cq[i] = (tmem__ring_cqe){
                .result = rc, .enc = pk.enc, .len = pk.len, .fill = pk.fill};
        if ((i + 1) % CQ_READY_STEP == 0 || i + 1 == b->count)
            tmem__ring_post(&rg->hdr->cq_ready, i + 1, &rg->hdr->cli_sleeping,
                            TMEM_RING_W_CQ_READY);
    }
    tmemd_lat_record(LAT_BATCH, tmem__now_ns() - b->t0);
    return 1;
}

/* Starts the batch sq_seq announced (cur): its count is read once and
 * checked.  Returns false when the count is bad (the batch is answered
 * with that status at once). */
static bool batch_start(struct tmemd_session *s, uint32_t cur)
{
    tmem__ring_hdr *h = s->ring.hdr;
    uint32_t count = *(volatile uint32_t *)&h->sq_count; /* read once */
    int st = tmem__ring_count_check(&s->ring, count);
    if (st != 0) {
        h->cq_status = st;
        return false;
    }
    if (!s->ring_busy)
        atomic_fetch_add(&s->d->rings_busy, 1);
    s->ring_busy = true;
    /* a hint for the tenant's next batch: how to hand it over */
    uint32_t crowd = crowded(s);
    if (*(volatile uint32_t *)&h->crowded != crowd)
        h->crowded = crowd;
    atomic_fetch_add_explicit(&s->d->ring_batches, 1, memory_order_relaxed);
    if (crowd)
        atomic_fetch_add_explicit(&s->d->ring_batches_crowded, 1,
                                  memory_order_relaxed);
    uint64_t now = tmem__now_ns();
    s->bt = (struct tmemd_batch){
        .on = true, .seq = cur, .count = count, .t0 = now, .t = now};
    return true;
}

/* The batch (or its bad count) is answered: the tenant may go on. */
static void batch_end(struct tmemd_session *s, uint32_t seq)
{
    tmem__ring_hdr *h = s->ring.hdr;
    if (s->bt.on)
        h->cq_status = 0;
    s->bt.on = false;
    tmem__ring_post(&h->cq_seq, seq, &h->cli_sleeping, TMEM_RING_W_CQ_SEQ);
    s->ring_last = seq;
    s->ring_idle_from = tmem__now_ns();
}

/* Right after a batch the next one usually follows at once: uncrowded,
 * spin for it (longer while the tenant has not taken its results). */
static void spin_next(struct tmemd_session *s)
{
    tmem__ring_hdr *h = s->ring.hdr;
    uint32_t last = s->ring_last;
    if (crowded(s))
        return;
    uint32_t taken = load(&h->cq_taken);
    if (taken != last &&
        tmem__ring_spin_while(&h->sq_seq, last, &h->cq_taken, taken,
                              SRV_TAKE_SPIN_NS))
        return;
    tmem__ring_spin_while(&h->sq_seq, last, NULL, 0, SRV_SPIN_NS);
}

int tmemd_ring_serve(struct tmemd_session *s, uint32_t *pages)
{
    tmem__ring_hdr *h = s->ring.hdr;
    *pages = 0;
    if (!s->bt.on) {
        uint32_t cur = load(&h->sq_seq);
        if (cur == s->ring_last || atomic_load(&s->ring_stop))
            return TMEMD_RING_IDLE;
        if (!batch_start(s, cur)) {
            batch_end(s, cur);
            return TMEMD_RING_IDLE;
        }
    }
    int rc = batch_run(s, &s->bt);
    if (rc <= 0) {
        if (rc == 0)
            atomic_fetch_add_explicit(&s->d->ring_parks, 1,
                                      memory_order_relaxed);
        return rc == 0 ? TMEMD_RING_PARKED : TMEMD_RING_IDLE;
    }
    *pages = s->bt.count;
    batch_end(s, s->bt.seq);
    spin_next(s);
    return TMEMD_RING_IDLE;
}

/* Unmaps the ring and gives its charge back (the client's own, which
 * tmem_client_destroy would give back too: by then it is 0). */
void tmemd_ring_release(struct tmemd_session *s)
{
    int64_t size = (int64_t)s->ring.lay.size;
    tmem__ring_unmap(&s->ring);
    tmem_client_charge(s->client, -size);
}

int tmemd_ring_attach(struct tmemd_session *s, uint64_t entries, int fd)
{
    enum tmemd_refusal why;
    tmem__ring_layout lay;
    int rc = -EINVAL;
    if (s->has_ring) {
        why = TMEMD_R_RING_TWICE;
        rc = -EBUSY;
    } else if (fd < 0) {
        why = TMEMD_R_RING_BAD_FD;
    } else if (entries > TMEM_RING_MAX_ENTRIES ||
               tmem__ring_layout_of((uint32_t)entries, &lay) < 0) {
        why = TMEMD_R_RING_BAD_ENTRIES;
    } else if ((rc = tmem__ring_attach(fd, (uint32_t)entries, &s->ring)) ==
               0) {
        rc = tmem_client_charge(s->client, (int64_t)s->ring.lay.size);
        if (rc == 0) {
            /* read before the reply: the tenant may submit as soon as it
             * has it */
            s->ring_last = load(&s->ring.hdr->sq_seq);
            s->bt.on = false;
            return 0;
        }
        tmem__ring_unmap(&s->ring);
        why = TMEMD_R_RING_BUDGET;
    } else {
        why = rc == -EPERM    ? TMEMD_R_RING_BAD_SEALS
              : rc == -EINVAL ? TMEMD_R_RING_BAD_SIZE
                              : TMEMD_R_RING_BAD_FD;
        if (rc == -EPERM || rc == -EBADF)
            rc = -EINVAL;
    }
    if (tmemd_refuse(s->d, why))
        tmemd_log("client %d (pid %d uid %u): ring refused (%s): %s", s->id,
                  (int)s->pid, (unsigned)s->uid, tmemd_refusal_name(why),
                  tmemd_refusal_help(why));
    return rc;
}
