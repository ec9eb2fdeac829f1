/*
 * Admin operations (root or the daemon's uid; session.c checks) and the
 * stats texts: one small function per operation, dispatched by opcode.
 * Weight, cap and client changes also go to share.c, which keeps the
 * default persistent caps (weighted shares) in step; an admin's cap
 * replaces a client's default for good.
 */
#include "tmemd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each returns the status; *v receives a 64-bit result where there is
 * one. */
typedef int (*admin_fn)(struct tmemd *d, const tmem__msg_args *a, int64_t *v);

static int a_weight(struct tmemd *d, const tmem__msg_args *a, int64_t *v)
{
    (void)v;
    if (a->arg > UINT32_MAX)
        return -EINVAL;
    int rc = tmem_store_set_weight(d->store, a->client_id, (uint32_t)a->arg);
    if (rc == 0)
        tmemd_share_update(d);
    return rc;
}

static int a_cap(struct tmemd *d, const tmem__msg_args *a, int64_t *v)
{
    (void)v;
    return tmemd_share_set_cap(d, a->client_id, a->arg);
}

static int a_compress(struct tmemd *d, const tmem__msg_args *a, int64_t *v)
{
    (void)v;
    if (a->arg > TMEM_COMPRESS_ZSTD)
        return -EINVAL;
    return tmem_store_set_compress(d->store, a->client_id,
                                   (tmem_compress)a->arg);
}

static int a_freeze(struct tmemd *d, const tmem__msg_args *a, int64_t *v)
{
    (void)v;
    return tmem_store_freeze(d->store, a->client_id, a->arg != 0);
}

static int a_auth(struct tmemd *d, const tmem__msg_args *a, int64_t *v)
{
    (void)v;
    return tmem_store_auth(d->store, a->client_id, a->uuid, a->arg != 0);
}

static int a_destroy(struct tmemd *d, const tmem__msg_args *a, int64_t *v)
{
    (void)v;
    int rc = tmem_store_client_kill(d->store, a->client_id);
    if (rc == 0)
        tmemd_share_update(d); /* it weighs nothing now */
    return rc;
}

static int a_flush(struct tmemd *d, const tmem__msg_args *a, int64_t *v)
{
    *v = tmem_store_flush_mib(d->store, a->arg);
    return *v < 0 ? (int)*v : 0;
}

static int a_freeable(struct tmemd *d, const tmem__msg_args *a, int64_t *v)
{
    (void)a;
    *v = (int64_t)tmem_store_freeable_mib(d->store);
    return 0;
}

static const admin_fn admin_ops[TMEM_MSG_OP_MAX] = {
    [TMEM_MSG_SET_WEIGHT] = a_weight,
    [TMEM_MSG_SET_CAP] = a_cap,
    [TMEM_MSG_SET_COMPRESS] = a_compress,
    [TMEM_MSG_FREEZE] = a_freeze,
    [TMEM_MSG_FLUSH_MIB] = a_flush,
    [TMEM_MSG_FREEABLE] = a_freeable,
    [TMEM_MSG_AUTH] = a_auth,
    [TMEM_MSG_DESTROY_CLIENT] = a_destroy,
};

int tmemd_admin_op(struct tmemd_session *s, const tmem__req *q, int64_t *value)
{
    uint64_t t0 = tmem__now_ns();
    int rc = admin_ops[q->hdr.op](s->d, &q->args, value);
    tmemd_lat_record(LAT_ADMIN, tmem__now_ns() - t0);
    /* names, not numbers: the operation as the CLI says it, the client
     * ("all" for every one), the outcome ("ok" or the error's name) */
    const char *what = tmem__msg_rule_of(q->hdr.op)->name;
    if (q->hdr.op == TMEM_MSG_FREEZE)
        what = q->args.arg ? "freeze" : "thaw";
    else if (q->hdr.op == TMEM_MSG_AUTH)
        what = q->args.arg ? "auth on" : "auth off";
    char who[32];
    if (q->args.client_id == TMEM_ALL_CLIENTS)
        snprintf(who, sizeof who, "all clients");
    else
        snprintf(who, sizeof who, "client %d", q->args.client_id);
    tmemd_log("client %d (uid %u): %s %s: %s", s->id, (unsigned)s->uid, what,
              who, rc < 0 ? tmem_errname(rc) : "ok");
    return rc;
}

/* The store's JSON into a malloc'd string (counters may grow between
 * sizing and writing: a few tries). */
static char *store_json(tmem_store *st)
{
    int n = tmem_store_stats_json(st, NULL, 0);
    if (n < 2)
        return NULL;
    size_t cap = (size_t)n + 1;
    char *js = NULL;
    for (int tries = 0; tries < 4; tries++) {
        cap += 4096;
        free(js);
        js = malloc(cap);
        if (!js || (n = tmem_store_stats_json(st, js, cap)) < 0)
            break;
        if ((size_t)n < cap)
            return js[0] == '{' ? js : (free(js), NULL);
    }
    free(js);
    return NULL;
}

/* The store's JSON with the daemon's own members spliced in first:
 * "connections" (the live sessions), "admission" (limits), "refusals"
 * (counts by reason) and "policy" (the configuration file). */
static int stats_json(struct tmemd_session *s, char **out)
{
    char *conns = tmemd_sessions_json(s->d);
    char *adm = tmemd_admission_json(s->d);
    char *pol = tmemd_policy_json(s->d);
    char *js = store_json(s->d->store);
    char *t = NULL;
    if (conns && adm && pol && js) {
        size_t need =
            strlen(js) + strlen(conns) + strlen(adm) + strlen(pol) + 32;
        t = malloc(need);
        if (t)
            snprintf(t, need, "{\"connections\":%s,%s,%s%s%s", conns, adm, pol,
                     js[1] == '}' ? "" : ",", js + 1);
    }
    free(js);
    free(pol);
    free(adm);
    free(conns);
    if (!t)
        return -ENOMEM;
    *out = t;
    return (int)strlen(t);
}

int tmemd_stats_text(struct tmemd_session *s, uint16_t op, char **out)
{
    return op == TMEM_MSG_STATS_JSON ? stats_json(s, out)
                                     : tmemd_prometheus(s->d, out);
}
