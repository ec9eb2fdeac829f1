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
 * other uid can claim it.
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
    char name[TMEM_NAME_MAX + 1];
    uid_t uid;
    tmem_client *client;
    uint32_t pers; /* bit p: pool p is persistent */
    struct tmemd_parked *next;
};

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

/* Whether a tenant (name, uid) has a parked client (tmemd.lock). */
static bool parked_locked(struct tmemd *d, const char *name, uid_t uid)
{
    for (struct tmemd_parked *p = d->parked; p; p = p->next)
        if (p->uid == uid && strcmp(p->name, name) == 0)
            return true;
    return false;
}

int tmemd_restore_park(struct tmemd *d, const char *name, uid_t uid, int fd,
                       int64_t *id_out, tmem_save_stats *stp)
{
    if (!name[0] || !tmem__name_valid(name, TMEM_NAME_MAX))
        return -EINVAL;
    struct tmemd_parked *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    pthread_mutex_lock(&d->lock);
    bool taken = parked_locked(d, name, uid);
    pthread_mutex_unlock(&d->lock);
    if (taken) {
        free(p);
        return -EEXIST;
    }
    tmem_client *c = NULL;
    int id = tmem_client_create(d->store, &c);
    if (id < 0) {
        free(p);
        return id;
    }
    tmem_save_stats st;
    int rc = tmem__client_restore(c, fd, NULL, &st);
    pthread_mutex_lock(&d->lock);
    if (rc == 0 && parked_locked(d, name, uid))
        rc = -EEXIST; /* another restore of it won the race */
    if (rc == 0) {
        snprintf(p->name, sizeof p->name, "%s", name);
        p->uid = uid;
        p->client = c;
        p->pers = st.persist;
        p->next = d->parked;
        d->parked = p;
    }
    pthread_mutex_unlock(&d->lock);
    if (rc < 0) {
        tmem_client_destroy(c);
        free(p);
        return rc;
    }
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
    tmem_save_stats st;
    int rc = tmemd_restore_park(d, name, uid, fd, id_out, &st);
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
        tmemd_log("client %d (uid %u): %s -> %d", s->id, (unsigned)s->uid,
                  q->hdr.op == TMEM_MSG_SAVE ? "save" : "restore", *status);
}

tmem_client *tmemd_parked_take(struct tmemd *d, const char *name, uid_t uid,
                               uint32_t *pers)
{
    tmem_client *c = NULL;
    if (!name[0])
        return NULL;
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_parked **pp = &d->parked; *pp; pp = &(*pp)->next) {
        struct tmemd_parked *p = *pp;
        if (p->uid == uid && strcmp(p->name, name) == 0) {
            c = p->client;
            *pers = p->pers;
            *pp = p->next;
            free(p);
            break;
        }
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
        out[n].uid = p->uid;
        snprintf(out[n].name, sizeof out[n].name, "%s", p->name);
        n++;
    }
    return n;
}

bool tmemd_park_locked(struct tmemd *d, const char *name, uid_t uid,
                       tmem_client *c)
{
    struct tmemd_parked *p = calloc(1, sizeof *p);
    if (!p || parked_locked(d, name, uid)) {
        free(p);
        return false;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->uid = uid;
    p->client = c;
    p->next = d->parked;
    d->parked = p;
    return true;
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
