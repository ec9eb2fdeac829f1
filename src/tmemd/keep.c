/*
 * Persistent pages across a graceful restart (--state-dir DIR; issue 12,
 * docs/persistence.md).
 *
 * At a stop (SIGTERM, SIGINT), before any session is shut down, every
 * client is frozen (no put is acknowledged after), and each tenant's
 * client with persistent pages, and each client still waiting for its
 * tenant, is saved (lib/store/save.c) to DIR/UID-NAME@TOKEN.tmem
 * (written as .tmp, synced, renamed: a file there is always whole).  At a
 * start, before the socket is served, each such file is restored into a
 * client kept for its tenant (save.c): the connection that comes back
 * with that resume token, or a new one with that name from that uid,
 * takes over its pool ids and pages.  A file restored is removed; one
 * refused (damaged, over the budget) is renamed .refused and logged
 * (tmemd_set_aside), never silently dropped.  A tenant without a name is
 * known by its token alone (save.c drops it after 600 s).  What a crash
 * leaves is recovered from the arena files instead (recover.c).
 */
#include "tmemd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <store/save.h>

#define KEEP_MAX 1100 /* sessions (1024) and kept clients */

/* The tenants to save: every session with a client (a reference each),
 * and the kept clients, in one look (a session that ends moves its client
 * to the kept ones under tmemd.lock: each is seen once).  Returns how
 * many. */
static int tenants(struct tmemd *d, struct tmemd_keep_item *v, int cap)
{
    int n = 0;
    pthread_mutex_lock(&d->lock);
    for (struct tmemd_session *s = d->sessions; s && n < cap; s = s->next) {
        if (!s->client)
            continue;
        tmem_client *c = tmem__client_get(d->store, s->id);
        if (!c)
            continue;
        v[n].client = c;
        tmemd_session_who(s, &v[n].who);
        n++;
    }
    n += tmemd_parked_list_locked(d, v + n, cap - n);
    pthread_mutex_unlock(&d->lock);
    return n;
}

/* Saves one tenant's client to dir/UID-NAME@TOKEN.tmem.  Returns the
 * pages saved, 0 when it has none, or an error. */
static int64_t save_one(const char *dir, const struct tmemd_keep_item *t,
                        uint64_t *bytes)
{
    char path[4200], tmp[4210];
    snprintf(path, sizeof path, "%s/%u-%s@%016llx%016llx.tmem", dir,
             (unsigned)t->who.uid, t->who.name,
             (unsigned long long)t->who.token[0],
             (unsigned long long)t->who.token[1]);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* the files of the last start were restored and removed (or renamed
     * .refused): one there now was written by this stop */
    if (access(path, F_OK) == 0)
        return -EEXIST;
    unlink(tmp); /* a stop cut short before */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    tmem_save_stats st;
    int rc = tmem__client_save(t->client, fd, &st);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && st.pages && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0 || !st.pages)
        unlink(tmp);
    *bytes += rc == 0 ? st.bytes : 0;
    return rc < 0 ? rc : (int64_t)st.pages;
}

int tmemd_keep_save(struct tmemd *d, const char *dir)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        tmemd_log("cannot keep persistent pages in %s: %s", dir,
                  strerror(errno));
        return 1;
    }
    struct tmemd_keep_item *v = calloc(KEEP_MAX, sizeof *v);
    if (!v) {
        tmemd_log("cannot keep persistent pages: out of memory");
        return 1;
    }
    int lost = 0;
    uint64_t t0 = tmem__now_ns(), kept = 0, bytes = 0, unnamed = 0;
    /* no put is accepted from here on, and no tenant's client is
     * destroyed (a tenant that leaves now leaves it kept) */
    atomic_store(&d->keeping, 1);
    tmem_store_freeze(d->store, TMEM_ALL_CLIENTS, true);
    int n = tenants(d, v, KEEP_MAX), files = 0;
    for (int k = 0; k < n; k++) {
        tmem_client_stats cs;
        int id = tmem_client_id(v[k].client);
        uint64_t pers = tmem_store_client_stats(d->store, id, &cs) == 0
                            ? cs.pers_pages
                            : 0;
        if (pers) {
            int64_t r = save_one(dir, &v[k], &bytes);
            if (r > 0) {
                kept += (uint64_t)r;
                files++;
                unnamed += v[k].who.name[0] ? 0 : (uint64_t)r;
            } else if (r < 0) {
                lost++;
                tmemd_log("client %d (%s, uid %u): %llu persistent pages "
                          "not kept: %s",
                          id, v[k].who.name[0] ? v[k].who.name : "no name",
                          (unsigned)v[k].who.uid, (unsigned long long)pers,
                          strerror((int)-r));
            }
        }
        tmem__client_put(v[k].client);
    }
    free(v);
    char anon[96] = "";
    if (unnamed)
        snprintf(anon, sizeof anon,
                 "; %llu of them of tenants without a name (kept for their "
                 "connections)",
                 (unsigned long long)unnamed);
    tmemd_log("kept %llu persistent pages of %d tenants in %s (%llu bytes, "
              "%.3f s)%s",
              (unsigned long long)kept, files, dir, (unsigned long long)bytes,
              (double)(tmem__now_ns() - t0) / 1e9, anon);
    return lost;
}

/* "UID-NAME@TOKEN.tmem" (NAME may be empty, TOKEN 32 hex digits) into
 * w; false for any other file. */
static bool parse_name(const char *f, struct tmemd_who *w)
{
    size_t n = strlen(f);
    if (n < 5 || strcmp(f + n - 5, ".tmem") != 0)
        return false;
    char *end;
    errno = 0;
    unsigned long u = strtoul(f, &end, 10);
    if (end == f || *end != '-' || errno || u >= UINT32_MAX)
        return false;
    const char *name = end + 1, *at = strchr(name, '@');
    if (!at || (size_t)(f + n - 5 - at) != 33)
        return false;
    size_t len = (size_t)(at - name);
    if (len > TMEM_NAME_MAX)
        return false;
    memset(w, 0, sizeof *w);
    memcpy(w->name, name, len);
    w->uid = (uid_t)u;
    for (int k = 0; k < 2; k++) {
        char hex[17];
        memcpy(hex, at + 1 + 16 * k, 16);
        hex[16] = 0;
        w->token[k] = strtoull(hex, &end, 16);
        if (*end)
            return false;
    }
    if (len && !tmem__name_valid(w->name, TMEM_NAME_MAX))
        return false;
    return len || w->token[0] || w->token[1];
}

void tmemd_keep_load(struct tmemd *d, const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        if (errno != ENOENT)
            tmemd_log("cannot read kept pages in %s: %s", dir,
                      strerror(errno));
        return;
    }
    uint64_t t0 = tmem__now_ns(), pages = 0, bytes = 0;
    int clients = 0, refused = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        struct tmemd_who w;
        char path[4200];
        if (!parse_name(e->d_name, &w))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        int64_t id = -1;
        tmem_save_stats st = {0};
        int rc = fd < 0 ? -errno : tmemd_restore_park(d, &w, fd, &id, &st);
        if (fd >= 0)
            close(fd);
        if (rc == 0) {
            unlink(path);
            pages += st.pages;
            bytes += st.bytes;
            clients++;
            continue;
        }
        tmemd_set_aside(path, rc);
        refused++;
    }
    closedir(dp);
    tmemd_log_recovered("recovered", dir, pages, clients, refused, bytes,
                        "", t0);
}

/* Why a file of kept pages could not be taken in, in words. */
static const char *refusal(int rc)
{
    return rc == -EEXIST   ? "another tenant with its name and uid is kept"
           : rc == -ENOSPC ? "they do not fit the budget"
           : rc == -EPROTO ? "not a file of this tmemd"
           : rc == -EINVAL ? "the file is damaged"
                           : strerror(-rc);
}

void tmemd_set_aside(const char *path, int rc)
{
    char bad[4210];
    snprintf(bad, sizeof bad, "%s.refused", path);
    rename(path, bad);
    tmemd_log("persistent pages in %s not taken in: %s; left in %s", path,
              refusal(rc), bad);
}

void tmemd_log_recovered(const char *what, const char *dir, uint64_t pages,
                         int clients, int refused, uint64_t bytes,
                         const char *of, uint64_t t0)
{
    double s = (double)(tmem__now_ns() - t0) / 1e9;
    if (clients || refused)
        tmemd_log("%s %llu persistent pages of %d tenants from %s "
                  "(%llu bytes%s in %.3f s, %.2f s per GiB of pages)%s",
                  what, (unsigned long long)pages, clients, dir,
                  (unsigned long long)bytes, of, s,
                  pages ? s / ((double)pages * TMEM_PAGE_SIZE / 1073741824.0)
                        : 0.0,
                  refused ? "; some refused, see above" : "");
}
