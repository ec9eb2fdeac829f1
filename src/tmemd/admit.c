/*
 * Admission: who may hold a session, the limits tmemd enforces on
 * connections (the options that set them), and the refusal counters.
 *
 * Sessions: at most lim.max_sessions at once (the last
 * TMEMD_ADMIN_RESERVE of them only for root and the daemon's uid), and at
 * most lim.max_per_uid of one uid.  Root and the daemon's uid are exempt
 * from the per-uid cap: they are trusted (they can stop the daemon), and
 * an admin must be able to connect to see a flood and end it.  A session
 * counts from its accept, so connections that never say HELLO count too
 * until the hello timeout (recv.c) drops them.
 *
 * Every refusal is counted by reason (enum tmemd_refusal) and logged, at
 * most once a second per reason, so a flood of refusals does not flood
 * the log.  The counters are shown in tmem list (STATS_JSON "refusals")
 * and Prometheus (tmemd_refusals_total{reason}).
 */
#include "tmemd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_EVERY_NS 1000000000ull
#define DEFAULT_PER_UID 64
#define DEFAULT_TIMEOUT_NS 5000000000ull
#define MAX_TIMEOUT_S 3600.0

static const struct {
    const char *name, *help;
} refusal[TMEMD_R_N] = {
    [TMEMD_R_SESSIONS_GLOBAL] = {"sessions_global",
                                 "the global session cap is reached"},
    [TMEMD_R_SESSIONS_UID] = {"sessions_uid",
                              "the uid holds its cap of sessions"},
    [TMEMD_R_HELLO_TIMEOUT] = {"hello_timeout",
                               "no whole HELLO within the hello timeout"},
    [TMEMD_R_RECV_TIMEOUT] = {"recv_timeout",
                              "a message begun and not finished in time"},
    [TMEMD_R_SEND_TIMEOUT] = {"send_timeout",
                              "the tenant did not read its replies"},
    [TMEMD_R_BAD_MESSAGE] = {"bad_message", "a malformed message"},
    [TMEMD_R_BAD_VERSION] = {"bad_version",
                             "HELLO of another protocol version"},
    [TMEMD_R_BAD_NAME] = {"bad_name", "HELLO with an invalid tenant name"},
    [TMEMD_R_OUT_OF_ORDER] = {"out_of_order",
                              "a request before HELLO, or a second HELLO"},
    [TMEMD_R_NOT_ADMIN] = {"not_admin", "an admin operation by a non-admin"},
    [TMEMD_R_CLIENT_CREATE] = {"client_create",
                               "the store could not create the client"},
    [TMEMD_R_RING_BAD_FD] = {"ring_bad_fd",
                             "ring memory is not a read-write memfd"},
    [TMEMD_R_RING_BAD_SEALS] = {"ring_bad_seals",
                                "ring memfd not sealed F_SEAL_SHRINK|"
                                "F_SEAL_GROW, or sealed against writes"},
    [TMEMD_R_RING_BAD_SIZE] = {"ring_bad_size",
                               "ring memfd not exactly the ring's size"},
    [TMEMD_R_RING_BAD_ENTRIES] = {"ring_bad_entries",
                                  "ring entries outside 1..1024"},
    [TMEMD_R_RING_TWICE] = {"ring_twice", "a second RING_SETUP"},
    [TMEMD_R_RING_BUDGET] = {"ring_budget",
                             "no room in the budget for the ring's memory"},
    [TMEMD_R_PERSISTENT_CAP] = {"persistent_cap",
                                "a persistent put over the client's "
                                "default cap (its weighted share)"},
};

const char *tmemd_refusal_name(enum tmemd_refusal why)
{
    return why < TMEMD_R_N ? refusal[why].name : "?";
}

const char *tmemd_refusal_help(enum tmemd_refusal why)
{
    return why < TMEMD_R_N ? refusal[why].help : "?";
}

bool tmemd_refuse(struct tmemd *d, enum tmemd_refusal why)
{
    atomic_fetch_add_explicit(&d->refusals[why], 1, memory_order_relaxed);
    uint64_t now = tmem__now_ns();
    uint64_t last =
        atomic_load_explicit(&d->refusal_logged_ns[why], memory_order_relaxed);
    if (last && now - last < LOG_EVERY_NS)
        return false;
    /* one thread wins the right to log this second */
    return atomic_compare_exchange_strong(&d->refusal_logged_ns[why], &last,
                                          now);
}

/* ---- sessions ------------------------------------------------------------ */

enum tmemd_refusal tmemd_admit_locked(const struct tmemd *d, uid_t uid,
                                      bool admin)
{
    int max = d->lim.max_sessions;
    if (d->nsessions >= (admin ? max : max - TMEMD_ADMIN_RESERVE))
        return TMEMD_R_SESSIONS_GLOBAL;
    if (admin || d->lim.max_per_uid == 0)
        return TMEMD_R_N;
    int n = 0;
    for (const struct tmemd_session *s = d->sessions; s; s = s->next)
        n += s->uid == uid;
    return n >= d->lim.max_per_uid ? TMEMD_R_SESSIONS_UID : TMEMD_R_N;
}

/* ---- options ---------------------------------------------------------------
 */

void tmemd_limits_default(struct tmemd_limits *l)
{
    *l = (struct tmemd_limits){.max_sessions = TMEMD_MAX_SESSIONS,
                               .max_per_uid = DEFAULT_PER_UID,
                               .hello_ns = DEFAULT_TIMEOUT_NS,
                               .recv_ns = DEFAULT_TIMEOUT_NS};
}

static int parse_int(const char *val, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* Seconds, with a fraction ("0.5"), above 0 and at most an hour. */
static int parse_seconds(const char *val, uint64_t *ns)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !(v > 0) || v > MAX_TIMEOUT_S)
        return -EINVAL;
    *ns = (uint64_t)(v * 1e9);
    return *ns ? 0 : -EINVAL;
}

int tmemd_limit_parse(struct tmemd_limits *l, const char *name, const char *val)
{
    if (strcmp(name, "max-sessions") == 0)
        return parse_int(val, TMEMD_ADMIN_RESERVE + 1, TMEMD_MAX_SESSIONS,
                         &l->max_sessions);
    if (strcmp(name, "max-sessions-per-uid") == 0)
        return parse_int(val, 0, TMEMD_MAX_SESSIONS, &l->max_per_uid);
    if (strcmp(name, "hello-timeout") == 0)
        return parse_seconds(val, &l->hello_ns);
    if (strcmp(name, "recv-timeout") == 0)
        return parse_seconds(val, &l->recv_ns);
    return -EINVAL;
}

/* ---- JSON ------------------------------------------------------------------
 */

char *tmemd_admission_json(struct tmemd *d)
{
    size_t cap = 512 + TMEMD_R_N * 48, n;
    char *t = malloc(cap);
    if (!t)
        return NULL;
    pthread_mutex_lock(&d->lock);
    int sessions = d->nsessions;
    pthread_mutex_unlock(&d->lock);
    n = (size_t)snprintf(
        t, cap,
        "\"admission\":{\"sessions\":%d,\"max_sessions\":%d,"
        "\"admin_reserve\":%d,\"max_sessions_per_uid\":%d,"
        "\"hello_timeout_s\":%.3f,\"recv_timeout_s\":%.3f},\"refusals\":{",
        sessions, d->lim.max_sessions, TMEMD_ADMIN_RESERVE, d->lim.max_per_uid,
        (double)d->lim.hello_ns / 1e9, (double)d->lim.recv_ns / 1e9);
    for (int r = 0; r < TMEMD_R_N && n < cap; r++)
        n += (size_t)snprintf(t + n, cap - n, "%s\"%s\":%llu", r ? "," : "",
                              refusal[r].name,
                              (unsigned long long)atomic_load(&d->refusals[r]));
    if (n < cap)
        snprintf(t + n, cap - n, "}");
    return t;
}
