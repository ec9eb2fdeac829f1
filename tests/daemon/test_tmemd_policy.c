/*
 * The operator's policy (tmemd --config, tmemd(8) CONFIGURATION) against a
 * real tmemd: a bad file stops the daemon with every bad line reported as
 * file:line and its reason; rules apply at HELLO by name, by uid (a tenant
 * of another uid) and by cgroup (a tenant moved into a cgroup made for the
 * test), the most specific rule winning and the first in the file among
 * equals; SIGHUP applies a new file to live tenants (a setting no longer
 * set goes back to the default, one no rule sets stays as an admin left
 * it); a bad reload keeps the policy in force, for live tenants and new
 * ones; a tenant that reconnects gets its policy again; a tenant's
 * persistent cap (the policy's pcap) covers all of its connections.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../runner.h"
#include "test_daemon_util.h"
#include "test_integ_common.h"
#include "test_tenant_util.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define UID_T 60003

/* Writes text into a new configuration file conf[64] and starts tmemd
 * with it. */
static void start_with(th_daemon *d, char conf[64], const char *text)
{
    conf[0] = 0;
    tu_write_conf(conf, text);
    th_start(d, (const char *const[]){"--config", conf, NULL});
}

/* A tenant process: body runs in a child that reports on tell and waits
 * for a byte on wait before it ends (its exit status: 0 all went well). */
typedef int (*kid_fn)(const th_daemon *d, const void *arg, int tell, int wait);
struct kid {
    pid_t pid;
    int up, down; /* we read its report / we release it */
};

static struct kid kid_start(const th_daemon *d, kid_fn body, const void *arg)
{
    int up[2], down[2];
    ASSERT_EQ(pipe(up), 0);
    ASSERT_EQ(pipe(down), 0);
    fflush(stdout);
    struct kid k = {fork(), up[0], down[1]};
    ASSERT_TRUE(k.pid >= 0);
    if (k.pid == 0)
        _exit(body(d, arg, up[1], down[0]));
    close(up[1]);
    close(down[0]);
    return k;
}

/* Releases it; its exit status. */
static int kid_end(struct kid *k)
{
    ASSERT_EQ(write(k->down, "x", 1), 1);
    close(k->up);
    close(k->down);
    return th_wait(k->pid);
}

/* A client's weight, store cap and codec, and its connection's rule. */
struct seen {
    double weight, cap, rule;
    char codec[8];
};

static struct seen seen_of(const th_daemon *d, int id)
{
    tmem__json *root = tu_stats(d);
    const tmem__json *cl = tu_client(root, id), *cn = tu_conn(root, id);
    ASSERT_TRUE(cl != NULL && cn != NULL);
    struct seen s = {tu_num(cl, "weight"), tu_num(cl, "cap_pages"),
                     tu_num(cn, "rule"), ""};
    snprintf(s.codec, sizeof s.codec, "%s", tu_str(cl, "compress"));
    tmem__json_free(root);
    return s;
}

#define ASSERT_SEEN(d, id, w, c, r, codec_)                                    \
    do {                                                                       \
        struct seen s_ = seen_of(d, id);                                       \
        ASSERT_EQ(s_.weight, (double)(w));                                     \
        ASSERT_EQ(s_.cap, (double)(c));                                        \
        ASSERT_EQ(s_.rule, (double)(r));                                       \
        ASSERT_STR_EQ(s_.codec, codec_);                                       \
    } while (0)

/* Puts pages 0.. of object seed until one is refused: how many went. */
static int put_until_refused(tmem__conn *c, int pool, uint32_t seed, int max)
{
    unsigned char page[TMEM_PAGE_SIZE];
    tmem_oid o = {{seed, 0, 0}};
    for (int i = 0; i < max; i++) {
        th_fill(page, seed, (uint32_t)i);
        int rc = tmem__conn_put(c, pool, &o, (uint32_t)i, page);
        if (rc != 1) {
            ASSERT_EQ(rc, -ENOSPC);
            return i;
        }
    }
    return max;
}

TEST(tmemd_policy_bad_file_refused)
{
    char conf[64] = "", err[8192];
    tu_write_conf(conf, "# tenants\n"
                        "tenant name=cache weight=3 cap=100000 codec=zstd\n"
                        "tenat uid=1 weight=2\n"
                        "tenant uid=1000 weight=0\n"
                        "\n"
                        "tenant name=cache cap=5\n"
                        "tenant cgroup=system.slice weight=2\n"
                        "tenant name=x wieght=2\n"
                        "tenant name=y   # sets nothing\n"
                        "tenant name=this-name-is-far-too-long weight=1\n"
                        "tenant uid=1000 pcap=5000x codec=lz5\n"
                        "tenant uid=nobody codec=none pcap=64M\n"
                        "tenant name=z weight=2 weight=3\n");
    int st = tu_run_tmemd((const char *const[]){"--config", conf, NULL}, err,
                          sizeof err);
    ASSERT_EQ(st, 1);
    static const struct {
        int line;
        const char *why;
    } bad[] = {
        {3, "unknown directive 'tenat'"},
        {4, "weight=0: a whole number from 1 to 1000000"},
        {6, "the same selectors as line 2"},
        {7, "cgroup=system.slice: an absolute cgroup path"},
        {8, "unknown key 'wieght'"},
        {9, "the rule sets nothing"},
        {10, "name=this-name-is-far-too-long: a name is 1 to 16"},
        {11, "pcap=5000x: pages, or a size"},
        {13, "weight given twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[256];
        snprintf(want, sizeof want, "%s:%d: %s", conf, bad[i].line, bad[i].why);
        if (!strstr(err, want))
            tmem_test_fail(__FILE__, __LINE__, "no \"%s\" in:\n%s", want, err);
    }
    /* the good lines (2, 12) and the blank and comment lines are not
     * reported; 9 bad lines in all */
    char good[80];
    snprintf(good, sizeof good, "%s:2:", conf);
    ASSERT_TRUE(strstr(err, good) == NULL);
    snprintf(good, sizeof good, "%s:12:", conf);
    ASSERT_TRUE(strstr(err, good) == NULL);
    ASSERT_TRUE(strstr(err, "9 bad lines: not started") != NULL);
    /* a file given with --config must exist; an empty name is a usage
     * error */
    ASSERT_EQ(
        tu_run_tmemd(
            (const char *const[]){"--config", "/nonexistent/tmemd.conf", NULL},
            err, sizeof err),
        1);
    ASSERT_TRUE(strstr(err, "/nonexistent/tmemd.conf: cannot open: No such "
                            "file or directory") != NULL);
    ASSERT_EQ(tu_run_tmemd((const char *const[]){"--config", "", NULL}, err,
                           sizeof err),
              2);
    ASSERT_TRUE(strstr(err, "bad value for --config") != NULL);
    /* the same file, fixed, serves */
    unlink(conf);
    th_daemon d;
    start_with(&d, conf,
               "tenant name=cache weight=3 cap=100000 codec=zstd\n"
               "tenant uid=nobody codec=none pcap=64M\n");
    ASSERT_EQ(tu_stat(&d, "policy", 0, "rules"), 2.0);
    ASSERT_EQ(th_stop(&d), 0);
    unlink(conf);
}

TEST(tmemd_policy_by_name)
{
    char conf[64];
    th_daemon d;
    start_with(&d, conf,
               "# by name\n"
               "tenant name=cache weight=3 cap=100000 codec=zstd\n"
               "tenant name=small pcap=20\n");
    tmem__conn *cache = tu_open(&d, "cache", false);
    tmem__conn *anon = tu_open(&d, NULL, false);
    ASSERT_SEEN(&d, tmem__conn_client_id(cache), 3, 100000, 2, "zstd");
    ASSERT_SEEN(&d, tmem__conn_client_id(anon), 1, 0, 0, "lz4");
    /* zstd is really used: a page comes back whole */
    int p = tmem__conn_pool_new(cache, NULL, PERS, NULL);
    ASSERT_EQ(th_put_range(cache, p, 5, 8), 8);
    ASSERT_EQ(th_count_intact(cache, p, 5, 8), 8);
    /* pcap: one cap over all of the tenant's connections, two of them
     * here (ring and socket), beside another tenant with no cap */
    tmem__conn *s1 = tu_open(&d, "small", false);
    tmem__conn *s2 = tu_open(&d, "small", true);
    int p1 = tmem__conn_pool_new(s1, NULL, PERS, NULL);
    int p2 = tmem__conn_pool_new(s2, NULL, PERS, NULL);
    ASSERT_GE(p1, 0);
    ASSERT_GE(p2, 0);
    ASSERT_EQ(tu_stat(&d, "conn", tmem__conn_client_id(s1), "pers_cap"), 20.0);
    ASSERT_EQ(tu_stat(&d, "conn", tmem__conn_client_id(s2), "pers_cap"), 20.0);
    ASSERT_EQ(put_until_refused(s1, p1, 1, 12), 12);
    ASSERT_EQ(put_until_refused(s2, p2, 2, 30), 8); /* 12 + 8 = 20 */
    ASSERT_EQ(put_until_refused(s1, p1, 3, 5), 0);
    ASSERT_EQ(tu_stat(&d, "refusals", 0, "persistent_cap"), 2.0);
    ASSERT_EQ(th_count_intact(s1, p1, 1, 12), 12);
    ASSERT_EQ(th_count_intact(s2, p2, 2, 8), 8);
    ASSERT_EQ(put_until_refused(cache, p, 6, 40), 40); /* not capped */
    tmem__conn_close(s1);
    tmem__conn_close(s2);
    tmem__conn_close(anon);
    tmem__conn_close(cache);
    ASSERT_EQ(th_stop(&d), 0);
    unlink(conf);
}

/* As UID_T: an unnamed connection and one named "job"; reports both ids
 * on tell, then waits for a byte on wait. */
static int uid_tenant(const th_daemon *d, const void *arg, int tell, int wait)
{
    tmem__conn *a, *b;
    (void)arg;
    if (setgid(UID_T) < 0 || setuid(UID_T) < 0)
        return 20;
    if (tmem__conn_open(d->sock, &a) < 0 ||
        tmem__conn_open_named(d->sock, "job", &b) < 0)
        return 21;
    int ids[2] = {tmem__conn_client_id(a), tmem__conn_client_id(b)};
    char x;
    if (write(tell, ids, sizeof ids) != sizeof ids || read(wait, &x, 1) != 1)
        return 22;
    tmem__conn_close(a);
    tmem__conn_close(b);
    return 0;
}

TEST(tmemd_policy_by_uid)
{
    char conf[64];
    th_daemon d;
    start_with(&d, conf,
               "tenant uid=60003 weight=2 codec=none\n"
               "tenant uid=60003 name=job weight=5\n"
               "tenant name=job weight=9\n");
    struct kid k = kid_start(&d, uid_tenant, NULL);
    int ids[2];
    ASSERT_EQ(read(k.up, ids, sizeof ids), (ssize_t)sizeof ids);
    ASSERT_EQ(tu_stat(&d, "conn", ids[0], "uid"), (double)UID_T);
    ASSERT_SEEN(&d, ids[0], 2, 0, 1, "none");
    /* both uid rules apply to "job": the one with two selectors wins,
     * whole (its codec is the default, not the other rule's) */
    ASSERT_SEEN(&d, ids[1], 5, 0, 2, "lz4");
    /* root's "job" is not uid 60003's */
    tmem__conn *job = tu_open(&d, "job", false);
    ASSERT_SEEN(&d, tmem__conn_client_id(job), 9, 0, 3, "lz4");
    ASSERT_EQ(kid_end(&k), 0);
    tmem__conn_close(job);
    ASSERT_EQ(th_stop(&d), 0);
    unlink(conf);
}

/* A cgroup hierarchy this test may write, the one tmemd knows a tenant by
 * first (tmemd(8): the unified one, else name=systemd, else memory). */
static bool cgroup_root(char *out, size_t cap)
{
    static const char *const want[] = {"cgroup2", "name=systemd", "memory"};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        FILE *f = fopen("/proc/self/mounts", "r");
        char dev[256], dir[256], type[64], opts[512];
        while (f && fscanf(f, "%255s %255s %63s %511s %*d %*d", dev, dir, type,
                           opts) == 4) {
            bool hit = w == 0 ? strcmp(type, "cgroup2") == 0
                              : strcmp(type, "cgroup") == 0 &&
                                    strstr(opts, want[w]) != NULL;
            if (hit && access(dir, W_OK) == 0) {
                snprintf(out, cap, "%s", dir);
                fclose(f);
                return true;
            }
        }
        if (f)
            fclose(f);
    }
    return false;
}

/* Where the cgroup tenant goes: into leaf for its HELLO, then back home
 * (the hierarchy's root), so that the test can remove leaf at once. */
struct cg_move {
    const char *leaf, *home;
};

static bool move_to(const char *dir)
{
    char procs[600];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    FILE *f = fopen(procs, "w");
    return f && fprintf(f, "%d\n", (int)getpid()) > 0 && fclose(f) == 0;
}

/* Connects from the leaf cgroup and makes a persistent pool, goes home,
 * reports its id on tell and waits for a byte. */
static int cgroup_tenant(const th_daemon *d, const void *arg, int tell,
                         int wait)
{
    const struct cg_move *m = arg;
    tmem__conn *c;
    if (!move_to(m->leaf))
        return 20;
    if (tmem__conn_open(d->sock, &c) < 0 ||
        tmem__conn_pool_new(c, NULL, PERS, NULL) < 0)
        return 21;
    if (!move_to(m->home))
        return 23;
    int id = tmem__conn_client_id(c);
    char x;
    if (write(tell, &id, sizeof id) != sizeof id || read(wait, &x, 1) != 1)
        return 22;
    tmem__conn_close(c);
    return 0;
}

TEST(tmemd_policy_by_cgroup)
{
    char root[256], top[352], leaf[384], rel[64], conf[64], text[512];
    if (!cgroup_root(root, sizeof root))
        TEST_SKIP("no writable cgroup hierarchy (cgroup2, name=systemd or "
                  "memory) in /proc/self/mounts");
    snprintf(rel, sizeof rel, "/tmem-test-%d", (int)getpid());
    snprintf(top, sizeof top, "%s%s", root, rel);
    snprintf(leaf, sizeof leaf, "%s/job", top);
    if (mkdir(top, 0755) < 0 || mkdir(leaf, 0755) < 0)
        TEST_SKIP("cannot make a cgroup under the cgroup hierarchy");
    printf("  tenant in %s/job\n", top);
    /* the leaf matches its parent's rule, not one that only shares a
     * prefix of its name (first: it would win a tie), nor a deeper one */
    snprintf(text, sizeof text,
             "tenant cgroup=%s/jo weight=11\n"
             "tenant cgroup=%s weight=7 pcap=30\n"
             "tenant cgroup=%s/job/deeper weight=9\n",
             rel, rel, rel);
    th_daemon d;
    start_with(&d, conf, text);
    struct kid k = kid_start(&d, cgroup_tenant, &(struct cg_move){leaf, root});
    int id = -1;
    ssize_t got = read(k.up, &id, sizeof id);
    /* it is out of them now (or gone): removed before anything can fail */
    for (int i = 0; i < 100 && rmdir(leaf) < 0 && errno == EBUSY; i++)
        usleep(10000);
    rmdir(top);
    unlink(conf);
    ASSERT_EQ(got, (ssize_t)sizeof id);
    /* known by the cgroup of its HELLO, though it has moved since */
    tmem__json *js = tu_stats(&d);
    char want[96];
    snprintf(want, sizeof want, "%s/job", rel);
    const tmem__json *cn = tu_conn(js, id);
    ASSERT_TRUE(cn != NULL);
    ASSERT_STR_EQ(tu_str(cn, "cgroup"), want);
    ASSERT_EQ(tu_num(cn, "pers_cap"), 30.0);
    tmem__json_free(js);
    ASSERT_SEEN(&d, id, 7, 0, 2, "lz4");
    /* we are not in it */
    tmem__conn *me = tu_open(&d, NULL, true);
    ASSERT_SEEN(&d, tmem__conn_client_id(me), 1, 0, 0, "lz4");
    tmem__conn_close(me);
    ASSERT_EQ(kid_end(&k), 0);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_policy_sighup_reload)
{
    char conf[64], out[1 << 16];
    th_daemon d;
    start_with(&d, conf, "tenant name=web weight=2 cap=500\n");
    tmem__conn *web = tu_open(&d, "web", false);
    tmem__conn *web2 = tu_open(&d, "web", true);
    tmem__conn *other = tu_open(&d, "other", false);
    int w = tmem__conn_client_id(web), w2 = tmem__conn_client_id(web2),
        o = tmem__conn_client_id(other);
    ASSERT_SEEN(&d, w, 2, 500, 1, "lz4");
    ASSERT_SEEN(&d, o, 1, 0, 0, "lz4");
    /* an admin's codec, a setting no rule sets */
    char id[16];
    snprintf(id, sizeof id, "%d", w);
    ASSERT_EQ(
        integ_cli(&d, NULL, 0, NULL, 0, "set", id, "compress", "none", NULL),
        0);
    /* web (uid 0) is matched by both rules, with one selector each: the
     * first in the file wins; its cap is no longer set: back to none; the
     * codec no rule set stays as the admin left it */
    tu_write_conf(conf, "# reloaded\n"
                        "tenant name=web weight=5\n"
                        "tenant uid=0 weight=4 cap=64K\n");
    ASSERT_EQ(kill(d.pid, SIGHUP), 0);
    tu_await_loads(&d, 2, 0);
    ASSERT_SEEN(&d, w, 5, 0, 2, "none");
    ASSERT_SEEN(&d, w2, 5, 0, 2, "lz4");
    ASSERT_SEEN(&d, o, 4, 16, 3, "lz4");
    ASSERT_TRUE(th_alive(&d));
    /* tmem list shows it: the weights in --json, the tenants in the text */
    tmem__json *root = NULL;
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "list", "--json", NULL),
              0);
    ASSERT_EQ(tmem__json_parse(out, &root), 0);
    ASSERT_EQ(tu_num(tu_client(root, w), "weight"), 5.0);
    ASSERT_EQ(tu_num(tu_client(root, o), "weight"), 4.0);
    ASSERT_EQ(tu_num(tmem__json_get(root, "policy"), "rules"), 2.0);
    tmem__json_free(root);
    ASSERT_EQ(integ_cli(&d, out, sizeof out, NULL, 0, "list", NULL), 0);
    ASSERT_TRUE(strstr(out, "cgroup\n") != NULL); /* the connections' head */
    ASSERT_TRUE(strstr(out, " web ") != NULL);
    ASSERT_TRUE(strstr(out, "policy:") != NULL);
    tmem__conn_close(other);
    tmem__conn_close(web2);
    tmem__conn_close(web);
    ASSERT_EQ(th_stop(&d), 0);
    unlink(conf);
}

TEST(tmemd_policy_bad_reload_keeps_old)
{
    char conf[64], log[16384], want[128];
    th_daemon d;
    start_with(&d, conf, "tenant name=web weight=2 codec=zstd\n");
    tmem__conn *web = tu_open(&d, "web", false);
    int w = tmem__conn_client_id(web);
    ASSERT_SEEN(&d, w, 2, 0, 1, "zstd");
    tu_write_conf(conf, "tenant name=web weight=6\n"
                        "tenant name=web2 weight=lots\n");
    ASSERT_EQ(kill(d.pid, SIGHUP), 0);
    tu_await_loads(&d, 1, 1);
    ASSERT_TRUE(th_alive(&d));
    ASSERT_SEEN(&d, w, 2, 0, 1, "zstd"); /* nothing of the bad file */
    tu_read_file(d.log, log, sizeof log);
    snprintf(want, sizeof want, "%s:2: weight=lots: a whole number", conf);
    ASSERT_TRUE(strstr(log, want) != NULL);
    snprintf(want, sizeof want,
             "%s not reloaded: 1 bad line: the policy in force stays", conf);
    ASSERT_TRUE(strstr(log, want) != NULL);
    /* a new tenant gets the policy in force too */
    tmem__conn *late = tu_open(&d, "web", true);
    ASSERT_SEEN(&d, tmem__conn_client_id(late), 2, 0, 1, "zstd");
    ASSERT_EQ(tu_stat(&d, "policy", 0, "rules"), 1.0);
    /* the file fixed: every connection of the tenant follows */
    tu_write_conf(conf, "tenant name=web weight=6\n");
    ASSERT_EQ(kill(d.pid, SIGHUP), 0);
    tu_await_loads(&d, 2, 1);
    ASSERT_SEEN(&d, w, 6, 0, 1, "lz4");
    ASSERT_SEEN(&d, tmem__conn_client_id(late), 6, 0, 1, "lz4");
    /* a file gone is a failed reload too (it was given with --config) */
    unlink(conf);
    ASSERT_EQ(kill(d.pid, SIGHUP), 0);
    tu_await_loads(&d, 2, 2);
    ASSERT_SEEN(&d, w, 6, 0, 1, "lz4");
    ASSERT_EQ(
        du_daemon_metric(&d, "tmemd_policy_loads_total{result=\"failed\"}"), 2);
    tmem__conn_close(late);
    tmem__conn_close(web);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(tmemd_policy_reconnect)
{
    char conf[64], id[16];
    th_daemon d;
    start_with(&d, conf, "tenant name=cache weight=3 pcap=100\n");
    tmem__conn *c = tu_open(&d, "cache", false);
    int first = tmem__conn_client_id(c);
    ASSERT_GE(tmem__conn_pool_new(c, NULL, PERS, NULL), 0);
    snprintf(id, sizeof id, "%d", first);
    ASSERT_EQ(integ_cli(&d, NULL, 0, NULL, 0, "set", id, "weight", "9", NULL),
              0);
    ASSERT_SEEN(&d, first, 9, 0, 1, "lz4");
    tmem__conn_close(c);
    /* back: a new client, its policy again (not the admin's weight) */
    c = tu_open(&d, "cache", false);
    int again = tmem__conn_client_id(c);
    ASSERT_NE(again, first);
    ASSERT_SEEN(&d, again, 3, 0, 1, "lz4");
    ASSERT_GE(tmem__conn_pool_new(c, NULL, PERS, NULL), 0);
    ASSERT_EQ(tu_stat(&d, "conn", again, "pers_cap"), 100.0);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
    unlink(conf);
}
