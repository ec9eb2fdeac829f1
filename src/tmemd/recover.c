/*
 * Persistent pages across a crash (--state-dir DIR; issue 12,
 * docs/persistence.md "After a crash").
 *
 * With a state directory, every tenant's private arena (its persistent
 * pages) is a file in DIR/arenas (tmpfs under systemd: /run/tmem/state)
 * instead of a memfd, so it outlives the process.  Each carries a tag
 * naming its tenant (uid, name, resume token), written when the tenant
 * says HELLO (or when a restore made its client).  A clean stop saves
 * and removes them (keep.c); what a crash leaves is read back here at the
 * next start, before the socket is served: each file's records become a
 * save stream (lib/store/recover.c) that a writer thread feeds through a
 * pipe to the restore of a client kept for that tenant (save.c), which
 * takes it over when it connects again, with its token or its name.  A
 * file restored is removed; one refused is renamed .refused and logged
 * (tmemd_set_aside), never silently dropped.  A tenant whose pages the
 * last clean stop kept in a state file is restored from that file
 * (keep.c runs first) and its arena file, left by the same stop, is
 * removed.
 */
#include "tmemd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include <store/recover.h>
#include <store/save.h>

#define TAG_MAGIC 0x48574d54u /* "TMWH" */
#define MAX_FILES 4096

/* What an arena's tag says (fixed layout; the file never leaves the
 * host). */
struct tag {
    uint32_t magic, uid;
    uint64_t token[2];
    char name[TMEM_NAME_MAX + 1];
};

_Static_assert(sizeof(struct tag) <= TMEM_ARENA_TAG_MAX, "tag too long");

int tmemd_tag_client(tmem_client *c, const struct tmemd_who *w)
{
    struct tag t = {.magic = TAG_MAGIC, .uid = (uint32_t)w->uid,
                    .token = {w->token[0], w->token[1]}};
    memcpy(t.name, w->name, sizeof t.name);
    return tmem__client_set_tag(c, &t, sizeof t);
}

/* The tenant a tag names; false when it names none. */
static bool who_of(const tmem_recover_info *info, struct tmemd_who *w)
{
    struct tag t;
    if (info->tag_len != sizeof t)
        return false;
    memcpy(&t, info->tag, sizeof t);
    if (t.magic != TAG_MAGIC || t.name[TMEM_NAME_MAX] != 0)
        return false;
    memset(w, 0, sizeof *w);
    w->uid = (uid_t)t.uid;
    w->token[0] = t.token[0];
    w->token[1] = t.token[1];
    memcpy(w->name, t.name, sizeof w->name);
    if (w->name[0] && !tmem__name_valid(w->name, TMEM_NAME_MAX))
        return false;
    return w->name[0] || w->token[0] || w->token[1];
}

int tmemd_arena_dir(const char *state_dir, char *out, size_t cap)
{
    if ((size_t)snprintf(out, cap, "%s/arenas", state_dir) >= cap)
        return -ENAMETOOLONG;
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (mkdir(out, 0700) < 0 && errno != EEXIST)
        return -errno;
    struct statfs fs;
    if (statfs(out, &fs) == 0 && fs.f_type != TMPFS_MAGIC)
        tmemd_log("%s is not on tmpfs: persistent pages are written to its "
                  "file system as they are put (slower); a tmpfs such as "
                  "/run keeps them in memory",
                  out);
    return 0;
}

struct feed {
    int arena, pipe_w, rc;
    tmem_recover_info info;
};

static void *feed_main(void *arg)
{
    struct feed *f = arg;
    f->rc = tmem__arena_recover(f->arena, f->pipe_w, &f->info);
    close(f->pipe_w); /* the reader sees the end */
    return NULL;
}

/* Restores one arena file into a client kept for w.  Returns 0, or the
 * error of the restore or of the file's reading. */
static int recover_one(struct tmemd *d, int fd, const struct tmemd_who *w,
                       tmem_recover_info *info, tmem_save_stats *st)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    struct feed f = {.arena = fd, .pipe_w = p[1]};
    pthread_t th;
    int rc = pthread_create(&th, NULL, feed_main, &f);
    if (rc) {
        close(p[0]);
        close(p[1]);
        return -rc;
    }
    int64_t id;
    rc = tmemd_restore_park(d, w, p[0], &id, st);
    close(p[0]); /* a writer cut short gets EPIPE, not a hang */
    pthread_join(th, NULL);
    *info = f.info;
    /* a stream the writer could not finish has no trailer: the restore
     * refused it as damaged, and the writer's error says why (a restore
     * refused for its own reason cuts the writer short instead) */
    return rc == -EINVAL && f.rc < 0 ? f.rc : rc;
}

/* One file left by a crash: recovered and removed, or renamed .refused. */
static void recover_path(struct tmemd *d, const char *path, uint64_t *pages,
                         uint64_t *bytes, int *clients, int *refused)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    tmem_recover_info info = {0};
    struct tmemd_who w;
    int rc = fd < 0 ? -errno : tmem__arena_file_peek(fd, &info);
    if (rc == 0 && (info.dead || !who_of(&info, &w))) {
        /* a tenant going away, or one that never said who it is */
        close(fd);
        unlink(path);
        return;
    }
    tmem_save_stats st = {0};
    if (rc == 0)
        rc = recover_one(d, fd, &w, &info, &st);
    if (fd >= 0)
        close(fd);
    if (rc == -EEXIST && tmemd_parked_same(d, &w)) {
        /* the same tenant's state file, from a clean stop, was taken in
         * (or a crash came between a recovery and this file's removal):
         * these pages are there already */
        unlink(path);
        return;
    }
    if (rc == 0) {
        unlink(path);
        *pages += st.pages;
        *bytes += info.file_bytes;
        (*clients)++;
        if (info.bad || info.orphans)
            tmemd_log("recovered %s (uid %u): %llu records not taken "
                      "(they failed their checks: a put or flush under way "
                      "at the crash, never acknowledged, or damaged), %llu "
                      "of pools being destroyed",
                      w.name[0] ? w.name : "a tenant without a name",
                      (unsigned)w.uid, (unsigned long long)info.bad,
                      (unsigned long long)info.orphans);
        return;
    }
    tmemd_set_aside(path, rc);
    (*refused)++;
}

void tmemd_recover_arenas(struct tmemd *d, const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    /* the names first: restoring makes new arena files in dir */
    char(*names)[256] = calloc(MAX_FILES, sizeof *names);
    int n = 0;
    struct dirent *e;
    while (names && (e = readdir(dp)) != NULL && n < MAX_FILES) {
        size_t len = strlen(e->d_name);
        if (len > 4 && len < 256 && !strcmp(e->d_name + len - 4, ".tma"))
            strcpy(names[n++], e->d_name);
    }
    closedir(dp);
    if (!names) {
        tmemd_log("cannot recover persistent pages from %s: out of memory",
                  dir);
        return;
    }
    uint64_t t0 = tmem__now_ns(), pages = 0, bytes = 0;
    int clients = 0, refused = 0;
    for (int k = 0; k < n; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        recover_path(d, path, &pages, &bytes, &clients, &refused);
    }
    free(names);
    tmemd_log_recovered("recovered after a crash:", dir, pages, clients,
                        refused, bytes, " of arena files", t0);
}
