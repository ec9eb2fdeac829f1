/*
 * The tmem CLI's admin commands end to end against a real tmemd: list
 * (--json parses), set, freeze/thaw, flush, freeable, auth, destroy,
 * stats; their effects read back from list --json; usage errors exit 2,
 * failed operations exit 1 with the errno name; a non-root tenant is
 * refused; no daemon exits 1.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tmem/client.h>

#include "../runner.h"
#include "client/json.h"
#include "test_integ_common.h"

enum { BIG = 1 << 20 };

static tmem_conn *tenant(const th_daemon *d)
{
    tmem_conn *c = NULL;
    setenv("TMEM_EMBEDDED", "0", 1);
    ASSERT_EQ(tmem_connect(d->sock, &c), 0);
    return c;
}

/* Runs list --json, parses it; returns the tree (caller frees). */
static tmem__json *list_json(const th_daemon *d)
{
    char *out = malloc(BIG);
    tmem__json *root = NULL;
    ASSERT_TRUE(out != NULL);
    ASSERT_EQ(integ_cli(d, out, BIG, NULL, 0, "list", "--json", NULL), 0);
    ASSERT_EQ(tmem__json_parse(out, &root), 0);
    free(out);
    return root;
}

/* The client entry with this id in a list --json tree, or NULL. */
static const tmem__json *client_of(const tmem__json *root, int id)
{
    const tmem__json *cl = tmem__json_get(root, "clients");
    for (const tmem__json *c = cl ? cl->kids : NULL; c; c = c->next) {
        const tmem__json *v = tmem__json_get(c, "client_id");
        if (v && (int)v->num == id)
            return c;
    }
    return NULL;
}

static double field(const tmem__json *obj, const char *key)
{
    const tmem__json *v = tmem__json_get(obj, key);
    ASSERT_TRUE(v != NULL);
    return v->num;
}

TEST(integ_cli_list)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem_conn *c = tenant(&d);
    static char out[BIG];
    tmem__json *root = list_json(&d);
    ASSERT_TRUE(tmem__json_get(root, "global") != NULL);
    ASSERT_TRUE(client_of(root, tmem_conn_client_id(c)) != NULL);
    tmem__json_free(root);
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "list", NULL), 0);
    ASSERT_TRUE(strstr(out, "global:") != NULL);
    ASSERT_TRUE(strstr(out, "clients:") != NULL);
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "stats", NULL), 0);
    ASSERT_TRUE(strstr(out, "used_bytes") != NULL);
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "stats", "--json", NULL),
              0);
    ASSERT_TRUE(tmem__json_parse(out, &root) == 0);
    tmem__json_free(root);
    ASSERT_EQ(
        integ_cli(&d, out, sizeof out, NULL, 0, "stats", "--prometheus", NULL),
        0);
    ASSERT_TRUE(strstr(out, "tmem_") != NULL);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_cli_set)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem_conn *c = tenant(&d);
    char id[16];
    snprintf(id, sizeof id, "%d", tmem_conn_client_id(c));
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "set", id, "weight", "5", NULL),
              0);
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "set", id, "cap", "100", NULL),
              0);
    ASSERT_EQ(
        integ_cli(&d, NULL, 0, NULL, 0, "set", id, "compress", "zstd", NULL),
        0);
    tmem__json *root = list_json(&d);
    const tmem__json *me = client_of(root, tmem_conn_client_id(c));
    ASSERT_TRUE(me != NULL);
    ASSERT_EQ(field(me, "weight"), 5);
    ASSERT_EQ(field(me, "cap_pages"), 100);
    ASSERT_STR_EQ(tmem__json_get(me, "compress")->str, "zstd");
    tmem__json_free(root);
    /* cap as a size: 1M = 256 pages */
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "set", id, "cap", "1M", NULL), 0);
    root = list_json(&d);
    ASSERT_EQ(field(client_of(root, tmem_conn_client_id(c)), "cap_pages"), 256);
    tmem__json_free(root);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_cli_freeze_thaw)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem_conn *c = tenant(&d);
    char id[16];
    uint8_t pg[TMEM_PAGE_SIZE];
    tmem_oid o = {{1, 0, 0}};
    int p =
        tmem_conn_pool_new(c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), NULL);
    ASSERT_GE(p, 0);
    th_fill(pg, 1, 1);
    snprintf(id, sizeof id, "%d", tmem_conn_client_id(c));
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "freeze", id, NULL), 0);
    ASSERT_EQ(tmem_conn_put(c, p, &o, 0, pg), TMEM_EFROZEN);
    tmem__json *root = list_json(&d);
    ASSERT_TRUE(
        tmem__json_get(client_of(root, tmem_conn_client_id(c)), "frozen")
            ->num == 1);
    tmem__json_free(root);
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "thaw", id, NULL), 0);
    ASSERT_EQ(tmem_conn_put(c, p, &o, 0, pg), 1);
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "freeze", "all", NULL), 0);
    ASSERT_EQ(tmem_conn_put(c, p, &o, 1, pg), TMEM_EFROZEN);
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "thaw", "all", NULL), 0);
    ASSERT_EQ(tmem_conn_put(c, p, &o, 1, pg), 1);
    ASSERT_NE(integ_cli(&d, NULL, 0, NULL, 0, "freeze", "9999", NULL), 0);
    /* the daemon's log says what happened in names, not numbers */
    char log[16384], line[128];
    ASSERT_GT(th_log(&d, log, sizeof log), 0);
    snprintf(line, sizeof line, "): freeze client %s: ok", id);
    ASSERT_TRUE(strstr(log, line) != NULL);
    snprintf(line, sizeof line, "): thaw client %s: ok", id);
    ASSERT_TRUE(strstr(log, line) != NULL);
    ASSERT_TRUE(strstr(log, "): thaw all clients: ok") != NULL);
    ASSERT_TRUE(strstr(log, "): freeze client 9999: E") != NULL);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_cli_flush_freeable)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem_conn *c = tenant(&d);
    char out[256];
    static uint8_t pages[64][TMEM_PAGE_SIZE];
    tmem_op ops[64];
    int p = tmem_conn_pool_new(c, NULL, TMEM_POOL_FLAGS(0), NULL);
    ASSERT_GE(p, 0);
    for (uint32_t round = 0; round < 40; round++) { /* 2560 pages */
        for (uint32_t i = 0; i < 64; i++) {
            th_fill(pages[i], round, i);
            ops[i] = (tmem_op){.op = TMEM_PUT,
                               .pool = p,
                               .oid = {{round, 0, 0}},
                               .index = i,
                               .page = pages[i]};
        }
        ASSERT_EQ(tmem_conn_batch(c, ops, 64), 0);
    }
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "freeable", NULL), 0);
    ASSERT_GE(atol(out), 1);
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "flush", "100000", NULL),
              0);
    ASSERT_TRUE(strstr(out, "pages evicted") != NULL);
    ASSERT_GE(atol(out), 2000);
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "freeable", NULL), 0);
    ASSERT_EQ(atol(out), 0);
    tmem__json *root = list_json(&d);
    ASSERT_EQ(field(client_of(root, tmem_conn_client_id(c)), "eph_pages"), 0);
    tmem__json_free(root);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_cli_destroy_and_unknown)
{
    th_daemon d;
    th_start(&d, NULL);
    tmem_conn *c = tenant(&d);
    char id[16], err[512];
    uint8_t pg[TMEM_PAGE_SIZE] = {1};
    tmem_oid o = {{1, 0, 0}};
    int p =
        tmem_conn_pool_new(c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), NULL);
    ASSERT_EQ(tmem_conn_put(c, p, &o, 0, pg), 1);
    snprintf(id, sizeof id, "%d", tmem_conn_client_id(c));
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "destroy", id, NULL), 0);
    ASSERT_EQ(tmem_conn_get(c, p, &o, 0, pg), TMEM_ENODEV);
    ASSERT_EQ(tmem_conn_put(c, p, &o, 0, pg), TMEM_ENODEV);
    /* unknown client: exit 1, the words and the errno name */
    ASSERT_EQ(integ_cli(&d, NULL, 0, err, sizeof err, "freeze", "7777", NULL),
              1);
    ASSERT_TRUE(strstr(err, "tmem: freeze 7777:") != NULL);
    ASSERT_TRUE(strstr(err, "(ENODEV)") != NULL);
    ASSERT_EQ(integ_cli(&d, NULL, 0, err, sizeof err, "set", "7777", "weight",
                        "2", NULL),
              1);
    ASSERT_TRUE(strstr(err, "ENODEV") != NULL);
    tmem_disconnect(c);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_cli_usage_errors)
{
    th_daemon d;
    th_start(&d, NULL);
    static const char *const bad[][6] = {
        {"set", NULL},
        {"set", "1", "bogus", "3", NULL},
        {"set", "x", "weight", "1", NULL},
        {"set", "1", "weight", "abc", NULL},
        {"set", "1", "compress", "gzip", NULL},
        {"freeze", NULL},
        {"thaw", "1", "2", NULL},
        {"flush", "abc", NULL},
        {"freeable", "x", NULL},
        {"auth", "1", "not-a-uuid", "on", NULL},
        {"auth", "1", "01234567-89ab-cdef-0011-223344556677", "maybe", NULL},
        {"destroy", "all", NULL},
        {"list", "--bogus", NULL},
        {"stats", "--bogus", NULL},
        {"nosuchcommand", NULL},
        {"bench", "fairness", NULL}, /* no --corpus */
        {"bench", "fairness", "--seconds", "0", NULL},
        {"bench", "fairness", "--batch", "257", NULL},
        {"bench", "fairness", "--bogus", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = integ_cli(&d, NULL, 0, NULL, 0, bad[i][0], bad[i][1],
                           bad[i][2], bad[i][3], bad[i][4], NULL);
        if (rc != 2)
            tmem_test_fail(__FILE__, __LINE__, "tmem %s %s: exit %d, not 2",
                           bad[i][0], bad[i][1] ? bad[i][1] : "", rc);
    }
    /* a corpus that cannot be read: the operation fails (1), not usage */
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "bench", "fairness", "--corpus",
                        "/nonexistent/pages.bin", NULL),
              1);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_cli_no_daemon)
{
    th_daemon d = {.pid = -1};
    char err[512];
    snprintf(d.sock, sizeof d.sock, "/tmp/tmem-no-such-dir/sock");
    ASSERT_EQ(integ_cli(&d, NULL, 0, err, sizeof err, "list", NULL), 1);
    ASSERT_TRUE(
        strstr(err, "cannot reach tmemd at /tmp/tmem-no-such-dir/sock") !=
        NULL);
}

TEST(integ_cli_nobody_refused)
{
    if (geteuid() != 0)
        TEST_SKIP("needs root to become nobody");
    struct passwd *pw = getpwnam("nobody");
    ASSERT_TRUE(pw != NULL);
    th_daemon d;
    char err[512];
    th_start(&d, NULL);
    static const char *const cmds[][4] = {
        {"freeze", "all", NULL},
        {"list", NULL},
        {"flush", "1", NULL},
    };
    for (size_t i = 0; i < 3; i++) {
        ASSERT_EQ(integ_cli_as(&d, pw->pw_uid, pw->pw_gid, NULL, 0, err,
                               sizeof err, cmds[i][0], cmds[i][1], NULL),
                  1);
        ASSERT_TRUE(strstr(err, "EPERM") != NULL);
    }
    /* the same user may still be a tenant */
    pid_t k = fork();
    if (k == 0) {
        if (setgid(pw->pw_gid) || setuid(pw->pw_uid))
            _exit(20);
        tmem_conn *c = NULL;
        setenv("TMEM_EMBEDDED", "0", 1);
        if (tmem_connect(d.sock, &c) || tmem_conn_is_embedded(c))
            _exit(21);
        int p = tmem_conn_pool_new(c, NULL, TMEM_POOL_FLAGS(TMEM_POOL_PERSIST),
                                   NULL);
        uint8_t pg[TMEM_PAGE_SIZE] = {7};
        tmem_oid o = {{1, 0, 0}};
        _exit(p >= 0 && tmem_conn_put(c, p, &o, 0, pg) == 1 ? 0 : 22);
    }
    ASSERT_EQ(th_wait(k), 0);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(integ_cli_bench_daemon)
{
    th_daemon d;
    char corpus[160];
    static char out[8192];
    th_start(&d, NULL);
    snprintf(corpus, sizeof corpus, "%s/corpus.bin", d.dir);
    FILE *f = fopen(corpus, "wb");
    ASSERT_TRUE(f != NULL);
    uint8_t pg[TMEM_PAGE_SIZE];
    for (uint32_t i = 0; i < 300; i++) {
        th_fill(pg, 5, i % 250); /* some duplicates */
        if (i % 7 == 0)
            memset(pg, 0, sizeof pg);
        ASSERT_EQ(fwrite(pg, sizeof pg, 1, f), 1);
    }
    fclose(f);
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "bench", "daemon",
                        "--corpus", corpus, "--clients", "2", "--batch", "16",
                        "--rounds", "1", "--json", NULL),
              0);
    tmem__json *root = NULL;
    ASSERT_EQ(tmem__json_parse(out, &root), 0);
    ASSERT_EQ(field(root, "pages"), 300);
    ASSERT_EQ(field(root, "clients"), 2);
    ASSERT_EQ(field(root, "batch"), 16);
    ASSERT_EQ(field(root, "own_daemon"), 0);
    ASSERT_EQ(field(root, "orig_bytes"), 300.0 * TMEM_PAGE_SIZE);
    ASSERT_GE(field(root, "zero_pages"), 43);
    ASSERT_GT(field(root, "put_pages_per_s"), 0);
    ASSERT_GT(field(root, "embedded_get_pages_per_s"), 0);
    ASSERT_GT(field(root, "rtt_get_us_p50") * 1000, 0); /* ns */
    tmem__json_free(root);
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "bench", "daemon", "--clients",
                        "0", NULL),
              2);
    /* the shared option parser: --name=VALUE, flags take no value */
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "bench", "daemon",
                        "--batch=2000", NULL),
              2);
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "bench", "daemon", "--json=1",
                        NULL),
              2);
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "bench", "daemon", "--rounds",
                        NULL),
              2);
    ASSERT_EQ(th_stop(&d), 0);
}
