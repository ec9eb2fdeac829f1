/*
 * Tenants: who a connection belongs to, beyond its client number, and the
 * operator's policy (policy.c) applied to it.
 *
 * A tenant is known by its uid (SO_PEERCRED), its cgroup (read from
 * /proc/PID/cgroup of the peer's pid at HELLO) and the name it gave at
 * HELLO (optional).  Every live session with the same three belongs to one
 * struct tmemd_tenant, which share.c uses to give the tenant one default
 * persistent cap over all of its connections.
 *
 * The policy: at HELLO the rule that applies to the tenant sets its
 * client's weight, cap and codec (through the store's admin calls) and
 * its persistent cap (share.c reads s->pol), so a tenant that reconnects
 * gets its policy again.  SIGHUP re-reads the file: a good file becomes
 * the policy and is applied to every live session; a setting the rule of
 * a session no longer sets goes back to the daemon's default (weight 1,
 * no cap, the weighted share, --compress); a setting no rule ever set is
 * left as it is (an admin's tmem set).  A bad file changes nothing.
 * policy_lock serialises all of it, so a HELLO during a reload sees the
 * old policy and is then updated by the reload, or sees the new one.
 */
#include "tmemd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- identity ------------------------------------------------------------ */

/* The hierarchy a cgroup line is in: 0 the unified one, 1 name=systemd,
 * 2 memory, 3 another v1 controller; the lowest non-root one wins. */
static int cgroup_rank(const char *hier, const char *ctrl)
{
    if (strcmp(hier, "0") == 0 && !ctrl[0])
        return 0;
    if (strcmp(ctrl, "name=systemd") == 0)
        return 1;
    for (const char *c = ctrl;; c++) { /* "cpu,memory": one of them */
        if (strncmp(c, "memory", 6) == 0 && (c[6] == 0 || c[6] == ','))
            return 2;
        if (!(c = strchr(c, ',')))
            return 3;
    }
}

/* Not copied as is: the JSON and the logs quote it. */
static void sanitise(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
            *s = '?';
}

void tmemd_read_cgroup(pid_t pid, char *out, size_t cap)
{
    char path[64], *line = NULL;
    size_t lcap = 0;
    int best = 8;
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    out[0] = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    /* "hierarchy:controllers:path" per line */
    while (getline(&line, &lcap, f) > 0) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/' || strlen(c2 + 1) >= cap)
            continue; /* too long: not recorded rather than cut */
        *c1 = *c2 = 0;
        /* any non-root path beats the root; then the hierarchy's rank */
        int score = cgroup_rank(line, c1 + 1) + (strcmp(c2 + 1, "/") ? 0 : 4);
        if (score < best) {
            snprintf(out, cap, "%s", c2 + 1);
            best = score;
        }
    }
    free(line);
    fclose(f);
    sanitise(out);
}

static bool same_ident(const struct tmemd_ident *a, const struct tmemd_ident *b)
{
    return a->uid == b->uid && strcmp(a->name, b->name) == 0 &&
           strcmp(a->cgroup, b->cgroup) == 0;
}

/* ---- applying the policy ------------------------------------------------- */

/* Moves client id from the settings old applied to those of new (store
 * calls; policy_lock).  The persistent cap is share.c's, from s->pol. */
static void apply(struct tmemd *d, int id, const struct tmemd_settings *old,
                  const struct tmemd_settings *new)
{
    unsigned touched = old->set | new->set;
    if (touched & TMEMD_SET_WEIGHT)
        tmem_store_set_weight(d->store, id,
                              new->set &TMEMD_SET_WEIGHT ? new->weight
                                                         : TMEM_DEFAULT_WEIGHT);
    if (touched & TMEMD_SET_CAP)
        tmem_store_set_cap(d->store, id,
                           new->set &TMEMD_SET_CAP ? new->cap : 0);
    if (touched & TMEMD_SET_CODEC)
        tmem_store_set_compress(
            d->store, id, new->set &TMEMD_SET_CODEC ? new->codec : d->codec);
}

int tmemd_tenant_join(struct tmemd_session *s)
{
    struct tmemd *d = s->d;
    struct tmemd_tenant *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->id.uid = s->uid;
    memcpy(t->id.name, s->name, sizeof t->id.name);
    tmemd_read_cgroup(s->pid, t->id.cgroup, sizeof t->id.cgroup);
    pthread_mutex_lock(&d->policy_lock);
    struct tmemd_settings st = tmemd_policy_match(d->policy, &t->id);
    pthread_mutex_lock(&d->lock);
    struct tmemd_tenant *have = d->tenants;
    while (have && !same_ident(&have->id, &t->id))
        have = have->next;
    if (have) {
        free(t);
        t = have;
    } else {
        t->next = d->tenants;
        d->tenants = t;
    }
    t->sessions++;
    s->tenant = t;
    s->pol = st;
    pthread_mutex_unlock(&d->lock);
    apply(d, s->id, &(struct tmemd_settings){0}, &st);
    pthread_mutex_unlock(&d->policy_lock);
    return st.line;
}

void tmemd_tenant_leave_locked(struct tmemd_session *s)
{
    struct tmemd_tenant *t = s->tenant, **pp = &s->d->tenants;
    s->tenant = NULL;
    if (!t || --t->sessions > 0)
        return;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp)
        *pp = t->next;
    free(t);
}

int tmemd_policy_start(struct tmemd *d)
{
    int bad = 0;
    int rc = tmemd_policy_load(d->config, d->config_required, &d->policy, &bad);
    if (rc < 0) {
        if (bad)
            tmemd_log("%s: %d bad line%s: not started", d->config, bad,
                      bad > 1 ? "s" : "");
        return rc;
    }
    atomic_fetch_add(&d->policy_loads, 1);
    if (tmemd_policy_rules(d->policy))
        tmemd_log("policy: %d rules from %s", tmemd_policy_rules(d->policy),
                  d->config);
    return 0;
}

/* One session's move, as a reload collects it. */
struct move {
    int id;
    struct tmemd_settings old, new;
};

void tmemd_policy_reload(struct tmemd *d)
{
    struct tmemd_policy *p = NULL;
    int bad = 0, n = 0;
    int rc = tmemd_policy_load(d->config, d->config_required, &p, &bad);
    struct move *mv = rc == 0 ? malloc(sizeof *mv * TMEMD_MAX_SESSIONS) : NULL;
    if (!mv) {
        atomic_fetch_add(&d->policy_failures, 1);
        if (bad)
            tmemd_log("%s not reloaded: %d bad line%s: the policy in force "
                      "stays",
                      d->config, bad, bad > 1 ? "s" : "");
        else
            tmemd_log("%s not reloaded: %s: the policy in force stays",
                      d->config, strerror(rc < 0 ? -rc : ENOMEM));
        tmemd_policy_free(p);
        return;
    }
    pthread_mutex_lock(&d->policy_lock);
    struct tmemd_policy *old = d->policy;
    d->policy = p;
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_session *s = d->sessions; s; s = s->next) {
        if (!s->tenant || n == TMEMD_MAX_SESSIONS)
            continue;
        struct tmemd_settings st = tmemd_policy_match(p, &s->tenant->id);
        mv[n++] = (struct move){s->id, s->pol, st};
        s->pol = st;
    }
    pthread_mutex_unlock(&d->lock);
    for (int i = 0; i < n; i++)
        apply(d, mv[i].id, &mv[i].old, &mv[i].new);
    pthread_mutex_unlock(&d->policy_lock);
    tmemd_share_update(d); /* weights and persistent caps may have moved */
    atomic_fetch_add(&d->policy_loads, 1);
    tmemd_log("%s reloaded: %d rules, applied to %d sessions", d->config,
              tmemd_policy_rules(p), n);
    tmemd_policy_free(old);
    free(mv);
}

char *tmemd_policy_json(struct tmemd *d)
{
    pthread_mutex_lock(&d->policy_lock);
    int rules = tmemd_policy_rules(d->policy);
    pthread_mutex_unlock(&d->policy_lock);
    char path[TMEMD_CGROUP_MAX], *t = malloc(sizeof path + 256);
    snprintf(path, sizeof path, "%s", d->config);
    sanitise(path); /* quoted below */
    if (t)
        snprintf(t, sizeof path + 256,
                 "\"policy\":{\"config\":\"%s\",\"rules\":%d,"
                 "\"loads\":%llu,\"load_failures\":%llu}",
                 path, rules, (unsigned long long)atomic_load(&d->policy_loads),
                 (unsigned long long)atomic_load(&d->policy_failures));
    return t;
}
