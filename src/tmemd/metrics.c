/*
 * tmemd metrics: per-operation latency histograms (lock-free atomics) and
 * the Prometheus text exposition of every store counter, served over HTTP
 * by libmicrohttpd (GET /metrics) and over the socket (TMEM_MSG_PROMETHEUS).
 *
 * Histograms are sharded: each thread records into one of LAT_SHARDS
 * copies (cache-line aligned) and the exposition sums them, so ring
 * threads of different tenants never write the same cache line per page.
 *
 * Counters come from tables (field name, offset, type) over the store's
 * stats structs, so a new counter is one table line.  Histogram buckets are
 * in microseconds; the text uses the _bucket/_sum/_count form with
 * cumulative buckets.
 */
#include "tmemd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/thread_slot.h"

/* ---- histograms -----------------------------------------------------------
 */

static const double bucket_us[] = {1,   2,   5,    10,   20,   50,    100,
                                   200, 500, 1000, 2000, 5000, 10000, 100000};
#define NBUCKETS (sizeof bucket_us / sizeof bucket_us[0])

static const char *const lat_name[LAT_N] = {
    [LAT_PUT] = "put",
    [LAT_GET] = "get",
    [LAT_FLUSH_PAGE] = "flush_page",
    [LAT_FLUSH_OBJECT] = "flush_object",
    [LAT_POOL_NEW] = "pool_new",
    [LAT_POOL_DESTROY] = "pool_destroy",
    [LAT_BATCH] = "ring_batch",
    [LAT_ADMIN] = "admin",
};

#define LAT_SHARDS 16

static struct lat_hist {
    atomic_ullong bucket[NBUCKETS + 1]; /* last: +Inf */
    atomic_ullong sum_ns, count;
} __attribute__((aligned(64))) lat[LAT_SHARDS][LAT_N];

void tmemd_lat_record(enum tmemd_lat which, uint64_t ns)
{
    struct lat_hist *h = &lat[tmem__thread_slot() % LAT_SHARDS][which];
    double us = (double)ns / 1000.0;
    size_t b = 0;
    while (b < NBUCKETS && us > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

/* The sum over shards of one histogram. */
static void lat_sum(int k, unsigned long long bucket[NBUCKETS + 1],
                    unsigned long long *sum_ns, unsigned long long *count)
{
    memset(bucket, 0, (NBUCKETS + 1) * sizeof *bucket);
    *sum_ns = *count = 0;
    for (int s = 0; s < LAT_SHARDS; s++) {
        for (size_t b = 0; b <= NBUCKETS; b++)
            bucket[b] += atomic_load(&lat[s][k].bucket[b]);
        *sum_ns += atomic_load(&lat[s][k].sum_ns);
        *count += atomic_load(&lat[s][k].count);
    }
}

/* ---- a growable text buffer ------------------------------------------------
 */

typedef struct text {
    char *p;
    size_t len, cap;
    bool oom;
} text;

static void put(text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    for (;;) {
        if (t->oom)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t nc = t->cap * 2 + (size_t)(n > 0 ? n : 0);
        char *np = realloc(t->p, nc);
        if (!np) {
            t->oom = true;
            return;
        }
        t->p = np;
        t->cap = nc;
    }
}

/* ---- counter tables --------------------------------------------------------
 */

enum kind { U64, U32, BOOL, ENUM, INT };
typedef struct field {
    const char *name;
    size_t off;
    enum kind kind;
    const char *type; /* "counter" or "gauge" */
} field;

#define G(f, k, t)                                                             \
    {                                                                          \
#f, offsetof(tmem_global_stats, f), k, t                               \
    }
static const field gfields[] = {
    G(budget_bytes, U64, "gauge"),     G(used_bytes, U64, "gauge"),
    G(data_bytes, U64, "gauge"),       G(meta_bytes, U64, "gauge"),
    G(orig_bytes, U64, "gauge"),       G(eph_pages, U64, "gauge"),
    G(eph_pages_max, U64, "gauge"),    G(pers_pages, U64, "gauge"),
    G(zero_pages, U64, "gauge"),       G(dedup_pages, U64, "gauge"),
    G(unique_blobs, U64, "gauge"),     G(raw_pages, U64, "gauge"),
    G(compress_poor, U64, "counter"),  G(dedup_hits, U64, "counter"),
    G(total_ops, U64, "counter"),      G(errored_ops, U64, "counter"),
    G(alloc_failed, U64, "counter"),   G(evictions, U64, "counter"),
    G(evict_attempts, U64, "counter"), G(reject_budget, U64, "counter"),
    G(reject_cap, U64, "counter"),     G(reject_frozen, U64, "counter"),
    G(reject_nomem, U64, "counter"),   G(flushed_pools, U64, "counter"),
    G(clients, U32, "gauge"),          G(shared_pools, U32, "gauge"),
};
#define C(f, k, t)                                                             \
    {                                                                          \
#f, offsetof(tmem_client_stats, f), k, t                               \
    }
static const field cfields[] = {
    C(weight, U32, "gauge"),
    C(cap_pages, U64, "gauge"),
    C(compress, ENUM, "gauge"),
    C(frozen, BOOL, "gauge"),
    C(dead, BOOL, "gauge"),
    C(eph_pages, U64, "gauge"),
    C(pers_pages, U64, "gauge"),
    C(data_bytes, U64, "gauge"),
    C(puts_good_pers, U64, "counter"),
    C(gets_good_eph, U64, "counter"),
    C(gets_good_pers, U64, "counter"),
    C(puts_frozen, U64, "counter"),
    C(puts_cap, U64, "counter"),
    C(evicted, U64, "counter"),
    C(npools, INT, "gauge"),
};
#define P(f, k, t)                                                             \
    {                                                                          \
#f, offsetof(tmem_pool_stats, f), k, t                                 \
    }
static const field pfields[] = {
    P(flags, U32, "gauge"),
    P(sharers, U32, "gauge"),
    P(pages, U64, "gauge"),
    P(pages_max, U64, "gauge"),
    P(objects, U64, "gauge"),
    P(objects_max, U64, "gauge"),
    P(puts, U64, "counter"),
    P(puts_good, U64, "counter"),
    P(dup_puts_flushed, U64, "counter"),
    P(dup_puts_replaced, U64, "counter"),
    P(puts_nomem, U64, "counter"),
    P(gets, U64, "counter"),
    P(gets_found, U64, "counter"),
    P(flushes, U64, "counter"),
    P(flushes_found, U64, "counter"),
    P(flush_objs, U64, "counter"),
    P(flush_objs_found, U64, "counter"),
    P(evictions, U64, "counter"),
};
#define NF(a) (sizeof a / sizeof a[0])

static unsigned long long value_of(const void *base, const field *f)
{
    const char *p = (const char *)base + f->off;
    uint64_t u64;
    uint32_t u32;
    bool b;
    int i;
    switch (f->kind) {
    case U64:
        memcpy(&u64, p, sizeof u64);
        return u64;
    case U32:
        memcpy(&u32, p, sizeof u32);
        return u32;
    case BOOL:
        memcpy(&b, p, sizeof b);
        return b;
    case ENUM: {
        tmem_compress c;
        memcpy(&c, p, sizeof c);
        return (unsigned)c;
    }
    case INT:
        memcpy(&i, p, sizeof i);
        return (unsigned long long)(i < 0 ? 0 : i);
    }
    return 0;
}

/* One client's labels: client, pid, uid (from the live session). */
typedef struct who {
    int id;
    int pid;
    unsigned uid;
} who;

static int sessions_who(struct tmemd *d, who *w, int cap)
{
    int n = 0;
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_session *s = d->sessions; s && n < cap; s = s->next)
        if (s->id >= 0)
            w[n++] = (who){s->id, (int)s->pid, (unsigned)s->uid};
    pthread_mutex_unlock(&d->lock);
    return n;
}

static who who_of(const who *w, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (w[i].id == id)
            return w[i];
    return (who){id, 0, 0};
}

static void emit_global(text *t, struct tmemd *d)
{
    tmem_global_stats g;
    tmem_store_stats(d->store, &g);
    for (size_t i = 0; i < NF(gfields); i++)
        put(t, "# TYPE tmem_%s %s\ntmem_%s %llu\n", gfields[i].name,
            gfields[i].type, gfields[i].name, value_of(&g, &gfields[i]));
}

static void emit_client(text *t, const tmem_client_stats *cs, who w)
{
    char lab[96];
    snprintf(lab, sizeof lab, "client=\"%d\",pid=\"%d\",uid=\"%u\"", w.id,
             w.pid, w.uid);
    for (size_t i = 0; i < NF(cfields); i++)
        put(t, "tmem_client_%s{%s} %llu\n", cfields[i].name, lab,
            value_of(cs, &cfields[i]));
    for (int p = 0; p < cs->npools && p < TMEM_MAX_POOLS; p++)
        for (size_t i = 0; i < NF(pfields); i++)
            put(t, "tmem_pool_%s{%s,pool=\"%d\"} %llu\n", pfields[i].name, lab,
                cs->pools[p].pool_id, value_of(&cs->pools[p], &pfields[i]));
}

static void emit_clients(text *t, struct tmemd *d)
{
    int ids[TMEMD_MAX_SESSIONS];
    who w[TMEMD_MAX_SESSIONS];
    int nw = sessions_who(d, w, TMEMD_MAX_SESSIONS);
    int n = tmem_store_list_clients(d->store, ids, TMEMD_MAX_SESSIONS);
    if (n > TMEMD_MAX_SESSIONS)
        n = TMEMD_MAX_SESSIONS;
    tmem_client_stats *cs = malloc(sizeof *cs);
    if (!cs) {
        t->oom = true;
        return;
    }
    for (int i = 0; i < n; i++)
        if (tmem_store_client_stats(d->store, ids[i], cs) == 0)
            emit_client(t, cs, who_of(w, nw, ids[i]));
    free(cs);
}

static void emit_histograms(text *t)
{
    put(t, "# TYPE tmem_op_latency_us histogram\n");
    for (int k = 0; k < LAT_N; k++) {
        unsigned long long cum = 0, bucket[NBUCKETS + 1], sum_ns, count;
        lat_sum(k, bucket, &sum_ns, &count);
        for (size_t b = 0; b <= NBUCKETS; b++) {
            cum += bucket[b];
            if (b < NBUCKETS)
                put(t, "tmem_op_latency_us_bucket{op=\"%s\",le=\"%g\"} %llu\n",
                    lat_name[k], bucket_us[b], cum);
            else
                put(t,
                    "tmem_op_latency_us_bucket{op=\"%s\",le=\"+Inf\"} %llu\n",
                    lat_name[k], cum);
        }
        put(t, "tmem_op_latency_us_sum{op=\"%s\"} %.3f\n", lat_name[k],
            (double)sum_ns / 1000.0);
        put(t, "tmem_op_latency_us_count{op=\"%s\"} %llu\n", lat_name[k],
            count);
    }
}

/* tswap tenants' own figures (tmem run), as they report them in their
 * ring: labelled by client and name. */
static const struct {
    const char *name, *type, *help;
    size_t off;
} tsfields[] = {
    {"resident_pages", "gauge", "pages of the tenant's heap in RAM",
     offsetof(tmem__tstat, resident)},
    {"target_pages", "gauge", "its resident target (0: none)",
     offsetof(tmem__tstat, target)},
    {"stored_pages", "gauge", "its pages in the store",
     offsetof(tmem__tstat, stored)},
    {"faults_total", "counter", "faults served (zero-fill and page-in)",
     offsetof(tmem__tstat, faults)},
    {"pageins_total", "counter", "pages brought back",
     offsetof(tmem__tstat, pageins)},
    {"evicted_total", "counter", "pages put out",
     offsetof(tmem__tstat, evicted)},
    {"refused_total", "counter", "stores refused (page kept)",
     offsetof(tmem__tstat, refused)},
    {"pagein_p50_ns", "gauge", "page-in latency, median",
     offsetof(tmem__tstat, pagein_p50_ns)},
    {"pagein_p99_ns", "gauge", "page-in latency, 99th percentile",
     offsetof(tmem__tstat, pagein_p99_ns)},
};

static void emit_tenants(text *t, struct tmemd *d)
{
    struct one {
        int id;
        char name[TMEM_NAME_MAX + 1];
        tmem__tstat ts;
    } *v = malloc(sizeof *v * TMEMD_MAX_SESSIONS);
    int n = 0;
    if (!v) {
        t->oom = true;
        return;
    }
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_session *s = d->sessions; s; s = s->next)
        if (s->id >= 0 && n < TMEMD_MAX_SESSIONS &&
            tmemd_session_tstat(s, &v[n].ts)) {
            v[n].id = s->id;
            memcpy(v[n].name, s->name, sizeof v[n].name);
            n++;
        }
    pthread_mutex_unlock(&d->lock);
    for (size_t f = 0; n && f < sizeof tsfields / sizeof tsfields[0]; f++) {
        put(t, "# HELP tmem_tswap_%s %s\n# TYPE tmem_tswap_%s %s\n",
            tsfields[f].name, tsfields[f].help, tsfields[f].name,
            tsfields[f].type);
        for (int i = 0; i < n; i++) {
            uint64_t x;
            memcpy(&x, (const char *)&v[i].ts + tsfields[f].off, sizeof x);
            put(t, "tmem_tswap_%s{client=\"%d\",name=\"%s\"} %llu\n",
                tsfields[f].name, v[i].id, v[i].name, (unsigned long long)x);
        }
    }
    free(v);
}

/* The daemon's own: its rings' hand-over mode (session.c, crowded). */
static void emit_daemon(text *t, struct tmemd *d)
{
    put(t, "# TYPE tmemd_rings_busy gauge\ntmemd_rings_busy %d\n",
        atomic_load(&d->rings_busy));
    put(t, "# TYPE tmemd_ring_batches_total counter\n"
           "tmemd_ring_batches_total %llu\n",
        (unsigned long long)atomic_load(&d->ring_batches));
    put(t, "# TYPE tmemd_ring_batches_crowded_total counter\n"
           "tmemd_ring_batches_crowded_total %llu\n",
        (unsigned long long)atomic_load(&d->ring_batches_crowded));
}

int tmemd_prometheus(struct tmemd *d, char **out)
{
    text t = {.p = malloc(8192), .cap = 8192};
    if (!t.p)
        return -ENOMEM;
    t.p[0] = 0;
    emit_global(&t, d);
    emit_daemon(&t, d);
    emit_clients(&t, d);
    emit_tenants(&t, d);
    emit_histograms(&t);
    if (t.oom) {
        free(t.p);
        return -ENOMEM;
    }
    *out = t.p;
    return (int)t.len;
}

/* ---- HTTP -----------------------------------------------------------------
 */

static struct MHD_Daemon *mhd;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    struct MHD_Response *resp;
    unsigned code = MHD_HTTP_OK;
    char *body = NULL;
    int n = -1;
    if (strcmp(method, "GET") == 0 && strcmp(url, "/metrics") == 0)
        n = tmemd_prometheus(cls, &body);
    if (n >= 0) {
        resp = MHD_create_response_from_buffer((size_t)n, body,
                                               MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type",
                                "text/plain; version=0.0.4");
    } else {
        static char nf[] = "not found: try GET /metrics\n";
        code = MHD_HTTP_NOT_FOUND;
        resp = MHD_create_response_from_buffer(sizeof nf - 1, nf,
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    enum MHD_Result r = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return r;
}

static int parse_addr(const char *addr, struct sockaddr_in *sa)
{
    const char *colon = strrchr(addr, ':');
    char host[64];
    if (!colon || (size_t)(colon - addr) >= sizeof host)
        return -EINVAL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535)
        return -EINVAL;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &sa->sin_addr) != 1)
        return -EINVAL;
    return 0;
}

int tmemd_metrics_start(struct tmemd *d, const char *addr)
{
    struct sockaddr_in sa;
    int rc = parse_addr(addr, &sa);
    if (rc < 0)
        return rc;
    mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, ntohs(sa.sin_port),
                           NULL, NULL, on_request, d, MHD_OPTION_SOCK_ADDR,
                           (struct sockaddr *)&sa, MHD_OPTION_END);
    return mhd ? 0 : -EADDRINUSE;
}

void tmemd_metrics_stop(void)
{
    if (mhd)
        MHD_stop_daemon(mhd);
    mhd = NULL;
}
