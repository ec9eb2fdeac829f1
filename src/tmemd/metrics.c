/*
 * tmemd metrics: per-operation latency histograms (lock-free atomics) and
 * the Prometheus text (prom.h), served over HTTP by libmicrohttpd (GET
 * /metrics, on 127.0.0.1 unless an address is given) and over the socket
 * (TMEM_MSG_PROMETHEUS); the same server serves the status page, GET /
 * and GET /status.json (web.h).  Every family has its # HELP and # TYPE lines
 * and its samples in one block: the store's counters (prom_store.c), the
 * daemon's own (sessions, refusals by reason, default caps, rings), the
 * tswap tenants' figures and the histograms.
 *
 * Histograms are sharded: each thread records into one of LAT_SHARDS
 * copies (cache-line aligned) and the exposition sums them, so ring
 * threads of different tenants never write the same cache line per page.
 * Buckets are in microseconds; the text uses the _bucket/_sum/_count form
 * with cumulative buckets.
 */
#include "prom.h"
#include "tmemd.h"
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* ---- the text ------------------------------------------------------------ */

void tmemd_put(tmemd_text *t, const char *fmt, ...)
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

void tmemd_family(tmemd_text *t, const char *name, const char *type,
                  const char *help)
{
    tmemd_put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void emit_histograms(tmemd_text *t)
{
    tmemd_family(t, "tmem_op_latency_us", "histogram",
                 "time tmemd took per operation, microseconds");
    for (int k = 0; k < LAT_N; k++) {
        unsigned long long cum = 0, bucket[NBUCKETS + 1], sum_ns, count;
        lat_sum(k, bucket, &sum_ns, &count);
        for (size_t b = 0; b <= NBUCKETS; b++) {
            cum += bucket[b];
            if (b < NBUCKETS)
                tmemd_put(
                    t, "tmem_op_latency_us_bucket{op=\"%s\",le=\"%g\"} %llu\n",
                    lat_name[k], bucket_us[b], cum);
            else
                tmemd_put(
                    t,
                    "tmem_op_latency_us_bucket{op=\"%s\",le=\"+Inf\"} %llu\n",
                    lat_name[k], cum);
        }
        tmemd_put(t, "tmem_op_latency_us_sum{op=\"%s\"} %.3f\n", lat_name[k],
                  (double)sum_ns / 1000.0);
        tmemd_put(t, "tmem_op_latency_us_count{op=\"%s\"} %llu\n", lat_name[k],
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

static void emit_tenants(tmemd_text *t, struct tmemd *d)
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
        char name[64];
        snprintf(name, sizeof name, "tmem_tswap_%s", tsfields[f].name);
        tmemd_family(t, name, tsfields[f].type, tsfields[f].help);
        for (int i = 0; i < n; i++) {
            uint64_t x;
            memcpy(&x, (const char *)&v[i].ts + tsfields[f].off, sizeof x);
            tmemd_put(t, "tmem_tswap_%s{client=\"%d\",name=\"%s\"} %llu\n",
                      tsfields[f].name, v[i].id, v[i].name,
                      (unsigned long long)x);
        }
    }
    free(v);
}

/* Per client: its persistent cap (share.c: its tenant's share, or the
 * policy's pcap) and the ring memory the daemon maps for it (charged to
 * its account in the store). */
static void emit_per_client(tmemd_text *t, struct tmemd *d)
{
    static const struct {
        const char *name, *help;
    } fam[2] = {
        {"tmemd_client_persistent_cap_pages",
         "persistent cap: the client's tenant's weighted share of the "
         "budget or its policy's pcap, pages (0: none)"},
        {"tmemd_client_ring_bytes",
         "ring memory mapped for the client, charged to it in the store"},
    };
    for (int f = 0; f < 2; f++) {
        tmemd_family(t, fam[f].name, "gauge", fam[f].help);
        pthread_mutex_lock(&d->lock);
        for (struct tmemd_session *s = d->sessions; s; s = s->next)
            if (s->id >= 0)
                tmemd_put(t, "%s{client=\"%d\"} %llu\n", fam[f].name, s->id,
                          f == 0 ? (unsigned long long)atomic_load(&s->pers_cap)
                          : s->has_ring ? (unsigned long long)s->ring.lay.size
                                        : 0ull);
        pthread_mutex_unlock(&d->lock);
    }
}

/* The policy file (tenant.c): rules in force, loads and failed loads. */
static void emit_policy(tmemd_text *t, struct tmemd *d)
{
    pthread_mutex_lock(&d->policy_lock);
    int rules = tmemd_policy_rules(d->policy);
    pthread_mutex_unlock(&d->policy_lock);
    tmemd_family(t, "tmemd_policy_rules", "gauge",
                 "rules of the configuration file in force");
    tmemd_put(t, "tmemd_policy_rules %d\n", rules);
    tmemd_family(t, "tmemd_policy_loads_total", "counter",
                 "configuration file loads, by result (a failed reload "
                 "keeps the policy in force)");
    tmemd_put(t, "tmemd_policy_loads_total{result=\"ok\"} %llu\n",
              (unsigned long long)atomic_load(&d->policy_loads));
    tmemd_put(t, "tmemd_policy_loads_total{result=\"failed\"} %llu\n",
              (unsigned long long)atomic_load(&d->policy_failures));
}

/* The daemon's own: sessions, refusals by reason (admit.c), default
 * persistent caps (share.c), the policy (tenant.c), its rings' hand-over
 * mode (session.c, crowded). */
static void emit_daemon(tmemd_text *t, struct tmemd *d)
{
    pthread_mutex_lock(&d->lock);
    int n = d->nsessions;
    pthread_mutex_unlock(&d->lock);
    tmemd_family(t, "tmemd_sessions", "gauge",
                 "connections open (with or without HELLO)");
    tmemd_put(t, "tmemd_sessions %d\n", n);
    tmemd_family(t, "tmemd_refusals_total", "counter",
                 "connections, messages, rings and puts refused, by reason");
    for (int r = 0; r < TMEMD_R_N; r++)
        tmemd_put(t, "tmemd_refusals_total{reason=\"%s\"} %llu\n",
                  tmemd_refusal_name(r),
                  (unsigned long long)atomic_load(&d->refusals[r]));
    emit_per_client(t, d);
    emit_policy(t, d);
    tmemd_family(t, "tmemd_rings_busy", "gauge",
                 "rings with a batch in the last 2 ms");
    tmemd_put(t, "tmemd_rings_busy %d\n", atomic_load(&d->rings_busy));
    tmemd_family(t, "tmemd_ring_batches_total", "counter", "ring batches run");
    tmemd_put(t, "tmemd_ring_batches_total %llu\n",
              (unsigned long long)atomic_load(&d->ring_batches));
    tmemd_family(t, "tmemd_ring_batches_crowded_total", "counter",
                 "ring batches run crowded (both ends sleep, not spin)");
    tmemd_put(t, "tmemd_ring_batches_crowded_total %llu\n",
              (unsigned long long)atomic_load(&d->ring_batches_crowded));
    tmemd_family(t, "tmemd_sched_waits_total", "counter",
                 "rings with work passed over by a free worker for a ring "
                 "with less service for its weight");
    tmemd_put(t, "tmemd_sched_waits_total %llu\n",
              (unsigned long long)atomic_load(&d->sched_waits));
    tmemd_family(t, "tmemd_ring_workers", "gauge",
                 "threads serving every tenant's ring (one per CPU at most)");
    tmemd_put(t, "tmemd_ring_workers %d\n", d->rings.nworkers);
    tmemd_family(t, "tmemd_ring_parks_total", "counter",
                 "batches set aside until their tenant wrote their next "
                 "entry (no worker waits for a tenant)");
    tmemd_put(t, "tmemd_ring_parks_total %llu\n",
              (unsigned long long)atomic_load(&d->ring_parks));
}

int tmemd_prometheus(struct tmemd *d, char **out)
{
    tmemd_text t = {.p = malloc(8192), .cap = 8192};
    if (!t.p)
        return -ENOMEM;
    t.p[0] = 0;
    tmemd_prom_store(&t, d);
    emit_daemon(&t, d);
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

/* The status page may load nothing from anywhere (its script and style
 * are inline) and fetch only from this server. */
#define PAGE_CSP                                                               \
    "default-src 'none'; script-src 'unsafe-inline'; "                         \
    "style-src 'unsafe-inline'; connect-src 'self'; "                          \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static struct MHD_Response *not_found(unsigned *code)
{
    static char nf[] = "not found: try GET /metrics, /status.json or /\n";
    *code = MHD_HTTP_NOT_FOUND;
    return MHD_create_response_from_buffer(sizeof nf - 1, nf,
                                           MHD_RESPMEM_PERSISTENT);
}

/* The response to GET url: /metrics, the status page (/) and its data
 * (/status.json, web.h); 404 for any other.  NULL: out of memory. */
static struct MHD_Response *respond(struct tmemd *d, const char *url,
                                    unsigned *code)
{
    struct MHD_Response *resp;
    char *body = NULL;
    int n = -1;
    const char *type = NULL;
    bool fresh = false; /* the page's data: never from a cache */
    if (strcmp(url, "/metrics") == 0) {
        n = tmemd_prometheus(d, &body);
        type = "text/plain; version=0.0.4";
    } else if (strcmp(url, "/status.json") == 0) {
        n = tmemd_status_json(d, &body);
        type = "application/json";
        fresh = true;
    } else if (strcmp(url, "/") == 0) {
        resp = MHD_create_response_from_buffer(strlen(tmemd_status_page),
                                               (void *)tmemd_status_page,
                                               MHD_RESPMEM_PERSISTENT);
        if (resp) {
            MHD_add_response_header(resp, "Content-Type",
                                    "text/html; charset=utf-8");
            MHD_add_response_header(resp, "Content-Security-Policy", PAGE_CSP);
            MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        }
        return resp;
    }
    if (n < 0) /* (or out of memory) */
        return not_found(code);
    resp =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    if (fresh)
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    return resp;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    unsigned code = MHD_HTTP_OK;
    struct MHD_Response *resp = strcmp(method, "GET") == 0
                                    ? respond(cls, url, &code)
                                    : not_found(&code);
    if (!resp)
        return MHD_NO;
    enum MHD_Result r = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return r;
}

/* "PORT", "ADDR:PORT" or ":PORT"; no address (or "localhost") is
 * 127.0.0.1: metrics reach other hosts only when asked for by address. */
static int parse_addr(const char *addr, struct sockaddr_in *sa)
{
    const char *colon = strrchr(addr, ':');
    const char *port_s = colon ? colon + 1 : addr;
    size_t hlen = colon ? (size_t)(colon - addr) : 0;
    char host[64];
    if (hlen >= sizeof host)
        return -EINVAL;
    memcpy(host, addr, hlen);
    host[hlen] = 0;
    if (!host[0] || strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    char *end;
    long port = strtol(port_s, &end, 10);
    if (end == port_s || *end || port <= 0 || port > 65535)
        return -EINVAL;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -EINVAL;
    return 0;
}

int tmemd_metrics_start(struct tmemd *d, const char *addr)
{
    struct sockaddr_in sa;
    int rc = parse_addr(addr, &sa);
    if (rc < 0)
        return rc;
    /* our own listening socket: a bind that fails says why (a port in
     * use, an address not of this host, a port below 1024 without root) */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(fd, 64) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, ntohs(sa.sin_port),
                           NULL, NULL, on_request, d,
                           MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_END);
    if (!mhd) {
        close(fd);
        return -ENOMEM;
    }
    return 0; /* MHD_stop_daemon closes fd */
}

void tmemd_metrics_stop(void)
{
    if (mhd)
        MHD_stop_daemon(mhd);
    mhd = NULL;
}
