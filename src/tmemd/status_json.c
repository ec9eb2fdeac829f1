/*
 * GET /status.json, which the status page polls (web.h): the store's
 * totals and, per client of the store, who it is (from its live session,
 * when it has one), its pages and bytes, and a tswap tenant's own
 * figures (tmem__tstat: resident and target, as the tenant says them;
 * null when it gives none).  Session fields are copied under tmemd.lock
 * first, then the store is asked without it (tmemd.h: lock order).
 */
#include "prom.h"
#include "tmemd.h"
#include "web.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What the status shows of one live session. */
struct seen {
    int id;
    pid_t pid;
    uid_t uid;
    bool has_ts;
    tmem__tstat ts;
    char name[TMEM_NAME_MAX + 1];
};

/* The live sessions (with a client) into v[cap]; returns how many. */
static int sessions(struct tmemd *d, struct seen *v, int cap)
{
    int n = 0;
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_session *s = d->sessions; s && n < cap; s = s->next) {
        if (s->id < 0)
            continue;
        v[n].id = s->id;
        v[n].pid = s->pid;
        v[n].uid = s->uid;
        v[n].has_ts = tmemd_session_tstat(s, &v[n].ts);
        memcpy(v[n].name, s->name, sizeof v[n].name);
        v[n].name[TMEM_NAME_MAX] = 0;
        n++;
    }
    pthread_mutex_unlock(&d->lock);
    return n;
}

static const struct seen *find(const struct seen *v, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    return NULL;
}

/* One client as a JSON object (s: its live session, or NULL). */
static void tenant(tmemd_text *t, const tmem_client_stats *st,
                   const struct seen *s)
{
    char name[6 * TMEM_NAME_MAX + 1];
    tmemd_json_escape(name, sizeof name, s ? s->name : "");
    tmemd_put(t,
              "{\"client\":%d,\"name\":\"%s\",\"live\":%s,\"pid\":%d,"
              "\"uid\":%u,\"weight\":%u,\"eph_pages\":%llu,"
              "\"pers_pages\":%llu,\"data_bytes\":%llu,\"tswap\":",
              st->client_id, name, s ? "true" : "false", s ? (int)s->pid : 0,
              s ? (unsigned)s->uid : 0u, (unsigned)st->weight,
              (unsigned long long)st->eph_pages,
              (unsigned long long)st->pers_pages,
              (unsigned long long)st->data_bytes);
    if (s && s->has_ts)
        tmemd_put(t,
                  "{\"kind\":\"%s\",\"resident_pages\":%llu,"
                  "\"target_pages\":%llu,\"stored_pages\":%llu}}",
                  tmemd_tstat_kind(&s->ts),
                  (unsigned long long)s->ts.resident,
                  (unsigned long long)s->ts.target,
                  (unsigned long long)s->ts.stored);
    else
        tmemd_put(t, "null}");
}

static void totals(tmemd_text *t, struct tmemd *d)
{
    tmem_global_stats g;
    tmem_store_stats(d->store, &g);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    tmemd_put(t,
              "{\"version\":\"%s\",\"daemon_pid\":%d,\"time_ms\":%lld,"
              "\"page_size\":%d,\"budget_bytes\":%llu,\"used_bytes\":%llu,"
              "\"data_bytes\":%llu,\"eph_pages\":%llu,\"pers_pages\":%llu,",
              TMEM_VERSION, (int)getpid(),
              (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000,
              TMEM_PAGE_SIZE, (unsigned long long)g.budget_bytes,
              (unsigned long long)g.used_bytes,
              (unsigned long long)g.data_bytes, (unsigned long long)g.eph_pages,
              (unsigned long long)g.pers_pages);
}

int tmemd_status_json(struct tmemd *d, char **out)
{
    struct seen *v = malloc(sizeof *v * TMEMD_MAX_SESSIONS);
    int *ids = malloc(sizeof *ids * TMEMD_MAX_SESSIONS);
    tmem_client_stats *st = malloc(sizeof *st);
    tmemd_text t = {.p = malloc(4096), .cap = 4096};
    int rc = -ENOMEM;
    if (!v || !ids || !st || !t.p)
        goto out;
    int n = sessions(d, v, TMEMD_MAX_SESSIONS);
    int k = tmem_store_list_clients(d->store, ids, TMEMD_MAX_SESSIONS);
    if (k > TMEMD_MAX_SESSIONS)
        k = TMEMD_MAX_SESSIONS;
    totals(&t, d);
    tmemd_put(&t, "\"tenants\":[");
    for (int i = 0, first = 1; i < k; i++) {
        if (tmem_store_client_stats(d->store, ids[i], st) != 0)
            continue; /* gone meanwhile */
        tmemd_put(&t, first ? "" : ",");
        tenant(&t, st, find(v, n, ids[i]));
        first = 0;
    }
    tmemd_put(&t, "]}\n");
    if (!t.oom) {
        *out = t.p;
        t.p = NULL;
        rc = (int)t.len;
    }
out:
    free(t.p);
    free(st);
    free(ids);
    free(v);
    return rc;
}
