/*
 * tmem save CLIENT|NAME FILE|-  and  tmem restore FILE|- --as NAME
 * [--uid UID] (admin; docs/persistence.md): tmemd writes or reads the
 * stream itself, through the descriptor this command opens and passes it
 * (a file, or this process's standard output or input: a pipe to ssh is
 * a migration).  A save to a file goes to FILE.tmp first and is renamed
 * over FILE once whole, so FILE is never half-written.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tmem/errors.h>

#include "cmds.h"
#include "proto/conn.h"

static int usage_save(void)
{
    fprintf(stderr, "usage: tmem save CLIENT|NAME FILE|-\n");
    return CLI_USAGE;
}

static int usage_restore(void)
{
    fprintf(stderr, "usage: tmem restore FILE|- --as NAME [--uid UID]\n");
    return CLI_USAGE;
}

static tmem__conn *open_admin(const struct tmem_cli *cli)
{
    tmem__conn *c = NULL;
    setenv("TMEM_RING", "0", 1); /* one call: no ring to charge */
    int rc = tmem__conn_open(cli->socket, &c);
    if (rc < 0) {
        fprintf(stderr, "tmem: cannot reach tmemd at %s: %s (%s)\n",
                cli->socket ? cli->socket : tmem__conn_default_path(),
                tmem_strerror(rc), tmem_errname(rc));
        return NULL;
    }
    return c;
}

/* A client given as a number is an id, else a connection's name. */
static bool client_arg(const char *s, int *id, const char **name)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s && *end == 0 && errno == 0 && v >= 0 && v <= INT32_MAX) {
        *id = (int)v;
        *name = NULL;
        return true;
    }
    *id = -1;
    *name = s;
    return strlen(s) <= TMEM_NAME_MAX && tmem__name_valid(s, TMEM_NAME_MAX);
}

static const char *why(int64_t rc)
{
    switch (rc) {
    case -ENOENT:
        return "no such client";
    case -ENOTUNIQ:
        return "several connections have that name: give the client id";
    case -EPROTO:
        return "not a tmem save stream, or another version of it";
    case -EINVAL:
        return "the stream is damaged or cut short: nothing was restored";
    case -ENOSPC:
        return "the pages do not fit the store's budget: nothing was restored";
    case -EEXIST:
        return "a restored client already waits for that name and uid";
    case -EPERM:
        return "only root or tmemd's own user may do that";
    }
    return tmem_strerror((int)rc);
}

int cmd_save(struct tmem_cli *cli, int argc, char **argv)
{
    int id;
    const char *name;
    if (argc != 3 || !client_arg(argv[1], &id, &name))
        return usage_save();
    bool out = strcmp(argv[2], "-") == 0;
    char tmp[4096];
    int fd = 1;
    if (!out) {
        if (snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]) >= (int)sizeof tmp)
            return usage_save();
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            fprintf(stderr, "tmem: save: %s: %s\n", tmp, strerror(errno));
            return CLI_FAIL;
        }
    }
    tmem__conn *c = open_admin(cli);
    int64_t rc = c ? tmem__conn_save(c, id, name, fd) : -ECONNREFUSED;
    if (c)
        tmem__conn_close(c);
    if (!out) {
        if (rc >= 0 && (fsync(fd) < 0 || rename(tmp, argv[2]) < 0))
            rc = -errno;
        close(fd);
        if (rc < 0)
            unlink(tmp);
    }
    if (rc < 0) {
        if (c)
            fprintf(stderr, "tmem: save %s: %s (%s)\n", argv[1], why(rc),
                    tmem_errname((int)rc));
        return CLI_FAIL;
    }
    fprintf(stderr, "tmem: saved %" PRId64 " pages of %s%s%s\n", rc, argv[1],
            out ? "" : " to ", out ? "" : argv[2]);
    return CLI_OK;
}

int cmd_restore(struct tmem_cli *cli, int argc, char **argv)
{
    const char *file = NULL, *as = NULL;
    uint64_t uid = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
            as = argv[++i];
        } else if (strcmp(argv[i], "--uid") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            uid = strtoull(argv[++i], &end, 10);
            if (!*argv[i] || *end || errno || argv[i][0] == '-' ||
                uid >= UINT32_MAX)
                return usage_restore();
        } else if (!file && (argv[i][0] != '-' || !strcmp(argv[i], "-"))) {
            file = argv[i];
        } else {
            return usage_restore();
        }
    }
    if (!file || !as || strlen(as) > TMEM_NAME_MAX ||
        !tmem__name_valid(as, TMEM_NAME_MAX))
        return usage_restore();
    int fd = 0;
    if (strcmp(file, "-") != 0) {
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "tmem: restore: %s: %s\n", file, strerror(errno));
            return CLI_FAIL;
        }
    }
    tmem__conn *c = open_admin(cli);
    uint64_t pages = 0;
    int rc = c ? tmem__conn_restore(c, as, (uint32_t)uid, fd, &pages)
               : -ECONNREFUSED;
    if (c)
        tmem__conn_close(c);
    if (fd != 0)
        close(fd);
    if (rc < 0) {
        if (c)
            fprintf(stderr, "tmem: restore %s: %s (%s)\n", file, why(rc),
                    tmem_errname(rc));
        return CLI_FAIL;
    }
    fprintf(stderr,
            "tmem: restored %" PRIu64 " pages as client %d, kept for the "
            "tenant that connects as %s with uid %" PRIu64 "\n",
            pages, rc, as, uid);
    return CLI_OK;
}
