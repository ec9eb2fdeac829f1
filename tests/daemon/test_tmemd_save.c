/*
 * tmem save and tmem restore through real daemons (src/tmemd/save.c,
 * src/tmem/cmd_save.c): a named tenant's pages saved from one tmemd with
 * the CLI, restored into another, and read back byte for byte by the
 * tenant that connects there with that name, through the pool ids it had;
 * another name or another uid does not get them; a damaged stream is
 * refused whole (nothing is kept); a second restore for the same tenant
 * is refused; a client that is not there, or a tenant that is not an
 * admin, is refused; the saved client is thawed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tmem/store.h>

#include "../lib/tmemd_harness.h"
#include "../runner.h"
#include "test_daemon_util.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define NP 300

static const char *tmem_bin(char *buf, size_t n)
{
    const char *b = getenv("BUILD");
    snprintf(buf, n, "%s/tmem", b && *b ? b : "build");
    return buf;
}

/* Runs the CLI against d: its exit status; its stderr into err. */
static int cli(const th_daemon *d, const char *args, char *err, size_t n)
{
    char bin[256], cmd[1024], ef[] = "/tmp/tmem-save-err-XXXXXX";
    int efd = mkstemp(ef);
    ASSERT_GE(efd, 0);
    close(efd);
    snprintf(cmd, sizeof cmd, "%s --socket %s %s 2>%s", tmem_bin(bin, sizeof bin),
             d->sock, args, ef);
    int st = system(cmd);
    FILE *f = fopen(ef, "r");
    size_t k = f ? fread(err, 1, n - 1, f) : 0;
    err[k] = 0;
    if (f)
        fclose(f);
    unlink(ef);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Pages 0..NP-1 of object 7 of pool, as th_fill makes them (seed). */
static int intact(tmem__conn *c, int pool, uint32_t seed)
{
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{7, 0, 0}};
    int good = 0;
    for (uint32_t i = 0; i < NP; i++)
        good += tmem__conn_get(c, pool, &o, i, page) == 1 &&
                th_check(page, seed, i);
    return good;
}

/* Puts pages 0..NP-1 of object 7 of pool (th_fill's, seed). */
static void put_all(tmem__conn *c, int pool, uint32_t seed)
{
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{7, 0, 0}};
    for (uint32_t i = 0; i < NP; i++) {
        th_fill(page, seed, i);
        ASSERT_EQ(tmem__conn_put(c, pool, &o, i, page), 1);
    }
}

/* A tenant connecting to d as name gets a client of its own: its first
 * pool is id 0 and holds none of the pages of seed. */
static void fresh(const th_daemon *d, const char *name, uint32_t seed)
{
    tmem__conn *c = NULL;
    ASSERT_EQ(tmem__conn_open_named(d->sock, name, &c), 0);
    ASSERT_EQ(tmem__conn_pool_new(c, NULL, PERS, NULL), 0);
    ASSERT_EQ(intact(c, 0, seed), 0);
    tmem__conn_close(c);
}

TEST(tmemd_save_restore_to_another_daemon)
{
    th_daemon a, b;
    th_start(&a, NULL);
    th_start(&b, NULL);
    char dir[] = "/tmp/tmem-save-XXXXXX", file[128], args[512], err[2048];
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(file, sizeof file, "%s/alpha.tmem", dir);
    /* a named tenant with an ephemeral pool (id 0) and a persistent one */
    tmem__conn *t = NULL;
    ASSERT_EQ(tmem__conn_open_named(a.sock, "alpha", &t), 0);
    int eph = tmem__conn_pool_new(t, NULL, TMEM_POOL_FLAGS(0), NULL);
    int pers = tmem__conn_pool_new(t, NULL, PERS, NULL);
    ASSERT_EQ(eph, 0);
    ASSERT_EQ(pers, 1);
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{7, 0, 0}};
    put_all(t, pers, 41);
    /* saved by name with the CLI: the file appears whole */
    snprintf(args, sizeof args, "save alpha %s", file);
    ASSERT_EQ(cli(&a, args, err, sizeof err), 0);
    fprintf(stderr, "  %s", err);
    ASSERT_TRUE(strstr(err, "saved 300 pages") != NULL);
    struct stat sb;
    ASSERT_EQ(stat(file, &sb), 0);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    ASSERT_NE(stat(tmp, &sb), 0);
    /* the tenant goes on putting in A: it was thawed after the save */
    th_fill(page, 41, NP);
    ASSERT_EQ(tmem__conn_put(t, pers, &o, NP, page), 1);
    /* restored into B for alpha, uid 0 */
    snprintf(args, sizeof args, "restore %s --as alpha --uid 0", file);
    ASSERT_EQ(cli(&b, args, err, sizeof err), 0);
    ASSERT_TRUE(strstr(err, "restored 300 pages") != NULL);
    /* a second restore for the same tenant is refused */
    ASSERT_EQ(cli(&b, args, err, sizeof err), 1);
    ASSERT_TRUE(strstr(err, "already waits") != NULL);
    /* another name does not get them */
    fresh(&b, "beta", 41);
    /* alpha connecting to B has its pools and pages, same ids */
    tmem__conn *t2 = NULL;
    ASSERT_EQ(tmem__conn_open_named(b.sock, "alpha", &t2), 0);
    ASSERT_EQ(intact(t2, pers, 41), NP);
    ASSERT_EQ(tmem__conn_get(t2, pers, &o, NP, page), 0); /* after save */
    /* and can go on using them: a new pool takes the next free id */
    ASSERT_EQ(tmem__conn_pool_new(t2, NULL, PERS, NULL), 2);
    th_fill(page, 42, 0);
    ASSERT_EQ(tmem__conn_put(t2, pers, &o, 0, page), 1);
    tmem__conn_close(t2);
    tmem__conn_close(t);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    ASSERT_EQ(system(args), 0);
    ASSERT_EQ(th_stop(&a), 0);
    ASSERT_EQ(th_stop(&b), 0);
}

struct not_admin {
    const th_daemon *d;
    int client;
};

/* A save asked by a tenant that is not an admin: 0 when refused EPERM. */
static int save_as_tenant(void *arg)
{
    struct not_admin *na = arg;
    tmem__conn *n = NULL;
    if (tmem__conn_open(na->d->sock, &n) < 0)
        return 4;
    int nfd = open("/dev/null", O_WRONLY);
    int64_t r = tmem__conn_save(n, na->client, NULL, nfd);
    return r == -EPERM ? 0 : 5;
}

TEST(tmemd_restore_refusals)
{
    th_daemon a;
    th_start(&a, NULL);
    char dir[] = "/tmp/tmem-save-XXXXXX", file[128], bad[160], args[1024],
         err[2048];
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(file, sizeof file, "%s/s.tmem", dir);
    snprintf(bad, sizeof bad, "%s/bad.tmem", dir);
    tmem__conn *t = NULL;
    ASSERT_EQ(tmem__conn_open_named(a.sock, "gamma", &t), 0);
    int pers = tmem__conn_pool_new(t, NULL, PERS, NULL);
    put_all(t, pers, 43);
    /* by id through the admin call, to a file */
    tmem__conn *adm = th_conn(&a);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(tmem__conn_save(adm, tmem__conn_client_id(t), NULL, fd), NP);
    close(fd);
    /* no such client, no such name */
    fd = open("/dev/null", O_WRONLY);
    ASSERT_EQ(tmem__conn_save(adm, 9999, NULL, fd), -ENOENT);
    ASSERT_EQ(tmem__conn_save(adm, -1, "nobody-here", fd), -ENOENT);
    close(fd);
    /* one byte changed in the middle: refused, nothing kept */
    struct stat sb;
    ASSERT_EQ(stat(file, &sb), 0);
    snprintf(args, sizeof args,
             "cp %s %s && printf 'X' | dd of=%s bs=1 seek=%lld conv=notrunc "
             "status=none",
             file, bad, bad, (long long)sb.st_size / 2);
    ASSERT_EQ(system(args), 0);
    snprintf(args, sizeof args, "restore %s --as gamma", bad);
    ASSERT_EQ(cli(&a, args, err, sizeof err), 1);
    ASSERT_TRUE(strstr(err, "damaged") != NULL);
    /* cut short: refused too */
    ASSERT_EQ(truncate(bad, sb.st_size - 10), 0);
    ASSERT_EQ(cli(&a, args, err, sizeof err), 1);
    /* not a stream */
    snprintf(args, sizeof args, "restore /etc/hostname --as gamma");
    ASSERT_EQ(cli(&a, args, err, sizeof err), 1);
    ASSERT_TRUE(strstr(err, "not a tmem save stream") != NULL);
    /* a new gamma gets an empty client: nothing was kept */
    fresh(&a, "gamma", 43);
    /* kept for another uid: root's gamma does not get it */
    snprintf(args, sizeof args, "restore %s --as gamma --uid 4242", file);
    ASSERT_EQ(cli(&a, args, err, sizeof err), 0);
    fresh(&a, "gamma", 43);
    /* bad usage */
    ASSERT_EQ(cli(&a, "restore", err, sizeof err), 2);
    snprintf(args, sizeof args, "restore %s", file);
    ASSERT_EQ(cli(&a, args, err, sizeof err), 2); /* no --as */
    snprintf(args, sizeof args, "restore %s --as 'bad name'", file);
    ASSERT_EQ(cli(&a, args, err, sizeof err), 2);
    ASSERT_EQ(cli(&a, "save", err, sizeof err), 2);
    ASSERT_EQ(cli(&a, "save gamma /nonexistent-dir/x", err, sizeof err), 1);
    /* a tenant that is not an admin may not save */
    struct not_admin na = {&a, tmem__conn_client_id(t)};
    ASSERT_EQ(du_as_nobody(save_as_tenant, &na), 0);
    tmem__conn_close(adm);
    tmem__conn_close(t);
    snprintf(args, sizeof args, "rm -rf %s", dir);
    ASSERT_EQ(system(args), 0);
    ASSERT_EQ(th_stop(&a), 0);
}

/* An admin request as sent by hand (after a HELLO), with fd passed when
 * >= 0: the reply's status. */
static int raw_admin(const th_daemon *d, uint16_t op, const tmem__msg_args *a,
                     int fd)
{
    int s = th_raw(d);
    ASSERT_EQ(th_raw_hello(s), 0);
    unsigned char b[TMEM_MSG_REQ_MAX];
    int n = tmem__req_encode(b, sizeof b, op, 2, a, NULL);
    ASSERT_GT(n, 0);
    ASSERT_EQ(fd >= 0 ? tmem__io_write_fd(s, b, (size_t)n, fd)
                      : tmem__io_write(s, b, (size_t)n),
              0);
    int rc = th_raw_status(s);
    close(s);
    return rc;
}

/* What the library never sends, sent by hand: no descriptor, no name or
 * a bad one, a uid out of range; and the CLI's bad --uid values. */
TEST(tmemd_save_restore_bad_requests)
{
    th_daemon a;
    th_start(&a, NULL);
    tmem__msg_args none = {.client_id = 0};
    ASSERT_EQ(raw_admin(&a, TMEM_MSG_SAVE, &none, -1), -EBADF);
    ASSERT_EQ(raw_admin(&a, TMEM_MSG_RESTORE, &none, -1), -EBADF);
    int fd = open("/dev/null", O_RDONLY);
    ASSERT_GE(fd, 0);
    tmem__msg_args empty = {.arg = 0}; /* no name */
    ASSERT_EQ(raw_admin(&a, TMEM_MSG_RESTORE, &empty, fd), -EINVAL);
    tmem__msg_args badname = {.arg = 0};
    memcpy(badname.uuid, "bad name", 8);
    ASSERT_EQ(raw_admin(&a, TMEM_MSG_RESTORE, &badname, fd), -EINVAL);
    tmem__msg_args biguid = {.arg = UINT32_MAX};
    memcpy(biguid.uuid, "ok", 2);
    ASSERT_EQ(raw_admin(&a, TMEM_MSG_RESTORE, &biguid, fd), -EINVAL);
    close(fd);
    char err[2048];
    ASSERT_EQ(cli(&a, "restore /dev/null --as ok --uid abc", err, sizeof err),
              2);
    ASSERT_EQ(cli(&a, "restore /dev/null --as ok --uid -1", err, sizeof err),
              2);
    ASSERT_EQ(cli(&a, "restore /dev/null --as ok --uid 4294967295", err,
                  sizeof err),
              2);
    ASSERT_EQ(cli(&a, "save 'bad name' /dev/null", err, sizeof err), 2);
    ASSERT_TRUE(th_alive(&a));
    ASSERT_EQ(th_stop(&a), 0);
}
