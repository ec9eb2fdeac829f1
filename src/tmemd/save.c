/*
 * Save and restore of a tenant's pages (admin: `tmem save`, `tmem
 * restore`; the stream is lib/store/save.c's, docs/persistence.md), and
 * the restored clients kept until their tenant connects.
 *
 * The admin passes the descriptor to write or read with the request
 * (SCM_RIGHTS): a file, or a pipe to ssh for a migration.  A save freezes
 * the client while it is written (its puts are refused meanwhile: a
 * consistent image) and thaws it after, unless it was frozen before.  A
 * restore makes a new client holding the stream's pools (all or nothing)
 * and parks it under a name and a uid: the first HELLO with that name from
 * that uid takes it over, pool ids and pages as they were saved, and no
 * other uid can claim it.  Clients kept across a restart (keep.c) are
 * parked here too, also under the tenant's resume token: the connection
 * that reconnects with it takes its client back even without a name; a
 * tenant kept by token only that does not come back within 600 s is
 * dropped (its process ended while the daemon was away).
 *
 * Invariants: parked clients are in tmemd.parked under tmemd.lock, owned
 * by the list until a session takes one; the store destroys those left at
 * exit.  A client saved is held by a reference (tmem__client_get), so its
 * session may end meanwhile (the save then stops: its pools are gone).
 */
#include "tmemd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <store/save.h>

struct tmemd_parked {
    struct tmemd_who who;
    tmem_client *client;
    uint32_t pers;        /* bit p: pool p is persistent */
    uint64_t expires_ns;  /* a tenant known by its token only: dropped
                             when not back by then; 0 never */
    struct tmemd_parked *next;
};

/* A kept tenant known only by its resume token (no name: no new process
 * can claim it) is dropped when it has not come back within this. */
#define TOKEN_KEEP_NS (600ull * 1000000000u)

static bool token_set(const uint64_t t[2])
{
    return t[0] || t[1];
}

/* Whether kept p is tenant w: the same uid, and the same resume token,
 * or (by_name) the same name. */
static bool same(const struct tmemd_who *a, const struct tmemd_who *w,
                 bool by_name)
{
    if (a->uid != w->uid)
        return false;
    if (by_name)
        return w->name[0] && strcmp(a->name, w->name) == 0;
    return token_set(w->token) && a->token[0] == w->token[0] &&
           a->token[1] == w->token[1];
}

static void name_of(const tmem__msg_args *a, char name[TMEM_NAME_MAX + 1])
{
    memset(name, 0, TMEM_NAME_MAX + 1);
    memcpy(name, a->uuid, TMEM_NAME_MAX); /* NUL-padded, maybe full */
}

/* The client a SAVE names: by its connection's name (one connection must
 * have it) or by id.  Returns a reference or NULL with *err. */
static tmem_client *client_named(struct tmemd *d, const tmem__msg_args *a,
                                 int *err)
{
    char name[TMEM_NAME_MAX + 1];
    name_of(a, name);
    int id = a->client_id;
    if (name[0]) {
        int found = 0;
        pthread_mutex_lock(&d->lock);
        for (struct tmemd_session *s = d->sessions; s; s = s->next)
            if (s->client && strcmp(s->name, name) == 0) {
                id = s->id;
                found++;
            }
        pthread_mutex_unlock(&d->lock);
        if (found != 1) {
            *err = found ? -ENOTUNIQ : -ENOENT;
            return NULL;
        }
    }
    tmem_client *c = tmem__client_get(d->store, id);
    if (!c)
        *err = -ENOENT;
    return c;
}

static int save(struct tmemd *d, const tmem__msg_args *a, int fd,
                int64_t *pages)
{
    int rc = 0;
    tmem_client *c = client_named(d, a, &rc);
    if (!c)
        return rc;
    int id = tmem_client_id(c);
    tmem_client_stats cs;
    bool was_frozen = tmem_store_client_stats(d->store, id, &cs) == 0 &&
                      cs.frozen;
    tmem_store_freeze(d->store, id, true);
    tmem_save_stats st;
    rc = tmem__client_save(c, fd, &st);
    if (!was_frozen)
        tmem_store_freeze(d->store, id, false);
    tmem__client_put(c);
    if (rc == 0) {
        *pages = (int64_t)st.pages;
        tmemd_log("saved client %d: %u pools, %llu pages, %llu bytes%s", id,
                  st.pools, (unsigned long long)st.pages,
                  (unsigned long long)st.bytes,
                  st.shared_skipped ? " (shared pools left out)" : "");
    }
    return rc;
}

/* Whether tenant w has a kept client, by its token or its name
 * (tmemd.lock). */
static bool parked_locked(struct tmemd *d, const struct tmemd_who *w)
{
    for (struct tmemd_parked *p = d->parked; p; p = p->next)
        if (same(&p->who, w, false) || same(&p->who, w, true))
            return true;
    return false;
}

/* Keeps client c for tenant w (tmemd.lock): 0, -EEXIST when one is kept
 * for it already, -ENOMEM. */
static int park_locked(struct tmemd *d, const struct tmemd_who *w,
                       tmem_client *c, uint32_t pers)
{
    if (parked_locked(d, w))
        return -EEXIST;
    struct tmemd_parked *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->who = *w;
    p->expires_ns = w->name[0] ? 0 : tmem__now_ns() + TOKEN_KEEP_NS;
    p->client = c;
    p->pers = pers;
    p->next = d->parked;
    d->parked = p;
    return 0;
}

int tmemd_restore_park(struct tmemd *d, const struct tmemd_who *w, int fd,
                       int64_t *id_out, tmem_save_stats *stp)
{
    if (w->name[0] ? !tmem__name_valid(w->name, TMEM_NAME_MAX)
                   : !token_set(w->token))
        return -EINVAL;
    pthread_mutex_lock(&d->lock);
    bool taken = parked_locked(d, w);
    pthread_mutex_unlock(&d->lock);
    if (taken)
        return -EEXIST; /* before reading a whole stream for nothing */
    tmem_client *c = NULL;
    int id = tmem_client_create(d->store, &c);
    if (id < 0)
        return id;
    tmem_save_stats st;
    int rc = tmem__client_restore(c, fd, NULL, &st);
    if (rc == 0) { /* another restore of it may have won the race */
        pthread_mutex_lock(&d->lock);
        rc = park_locked(d, w, c, st.persist);
        pthread_mutex_unlock(&d->lock);
    }
    if (rc < 0) {
        tmem_client_destroy(c);
        return rc;
    }
    /* whose it is, in its arena: from now a crash finds its pages */
    tmemd_tag_client(c, w);
    *id_out = id;
    if (stp)
        *stp = st;
    return 0;
}

static int restore(struct tmemd *d, const tmem__msg_args *a, int fd,
                   int64_t *id_out, uint32_t *pages)
{
    char name[TMEM_NAME_MAX + 1];
    name_of(a, name);
    if (a->arg > UINT32_MAX - 1)
        return -EINVAL;
    uid_t uid = (uid_t)a->arg;
    if (!name[0])
        return -EINVAL; /* an admin's restore is claimed by name */
    struct tmemd_who w = {.uid = uid};
    memcpy(w.name, name, sizeof w.name);
    tmem_save_stats st;
    int rc = tmemd_restore_park(d, &w, fd, id_out, &st);
    if (rc < 0)
        return rc;
    *pages = st.pages > UINT32_MAX ? UINT32_MAX : (uint32_t)st.pages;
    tmemd_log("restored client %lld as %s for uid %u: %u pools, %llu pages; "
              "kept for its tenant",
              (long long)*id_out, name, (unsigned)uid, st.pools,
              (unsigned long long)st.pages);
    return 0;
}

void tmemd_h_save(struct tmemd_session *s, const tmem__req *q, int *passfd,
                  int32_t *status, int64_t *value, uint32_t *out_flags)
{
    int fd = *passfd;
    *passfd = -1;
    *out_flags = 0;
    if (fd < 0) {
        *status = -EBADF;
        return;
    }
    *status = q->hdr.op == TMEM_MSG_SAVE
                  ? save(s->d, &q->args, fd, value)
                  : restore(s->d, &q->args, fd, value, out_flags);
    close(fd);
    if (*status < 0)
        tmemd_log("client %d (uid %u): %s: %s (%s)", s->id, (unsigned)s->uid,
                  q->hdr.op == TMEM_MSG_SAVE ? "save" : "restore",
                  tmem_errname(*status), tmem_strerror(*status));
}

/* Drops the kept tenants known by token only that did not come back in
 * time (tmemd.lock); their clients go. */
static void expire_locked(struct tmemd *d, uint64_t now)
{
    for (struct tmemd_parked **pp = &d->parked; *pp;) {
        struct tmemd_parked *p = *pp;
        if (!p->expires_ns || p->expires_ns > now) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        tmemd_log("kept client %d (uid %u, no name) dropped: its tenant did "
                  "not come back within %llu s",
                  tmem_client_id(p->client), (unsigned)p->who.uid,
                  (unsigned long long)(TOKEN_KEEP_NS / 1000000000u));
        tmem_client_destroy(p->client);
        free(p);
    }
}

tmem_client *tmemd_parked_take(struct tmemd *d, const struct tmemd_who *w,
                               uint32_t *pers, uint64_t token[2])
{
    tmem_client *c = NULL;
    pthread_mutex_lock(&d->lock);
    expire_locked(d, tmem__now_ns());
    /* the same connection come back (its token) first, then its name */
    for (int by_name = 0; by_name < 2 && !c; by_name++)
        for (struct tmemd_parked **pp = &d->parked; *pp; pp = &(*pp)->next) {
            struct tmemd_parked *p = *pp;
            if (!same(&p->who, w, by_name))
                continue;
            c = p->client;
            *pers = p->pers;
            token[0] = p->who.token[0];
            token[1] = p->who.token[1];
            *pp = p->next;
            free(p);
            break;
        }
    pthread_mutex_unlock(&d->lock);
    return c;
}

int tmemd_parked_list_locked(struct tmemd *d, struct tmemd_keep_item *out,
                             int cap)
{
    int n = 0;
    for (struct tmemd_parked *p = d->parked; p && n < cap; p = p->next) {
        tmem_client *c = tmem__client_get(d->store, tmem_client_id(p->client));
        if (!c)
            continue;
        out[n].client = c;
        out[n].who = p->who;
        n++;
    }
    return n;
}

bool tmemd_parked_same(struct tmemd *d, const struct tmemd_who *w)
{
    bool found = false;
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_parked *p = d->parked; p && !found; p = p->next)
        found = p->who.uid == w->uid && !strcmp(p->who.name, w->name) &&
                p->who.token[0] == w->token[0] &&
                p->who.token[1] == w->token[1];
    pthread_mutex_unlock(&d->lock);
    return found;
}

bool tmemd_park_locked(struct tmemd *d, const struct tmemd_who *w,
                       tmem_client *c)
{
    return park_locked(d, w, c, 0) == 0;
}

void tmemd_parked_free(struct tmemd *d)
{
    pthread_mutex_lock(&d->lock);
    while (d->parked) {
        struct tmemd_parked *p = d->parked;
        d->parked = p->next;
        tmem_client_destroy(p->client);
        free(p);
    }
    pthread_mutex_unlock(&d->lock);
}
