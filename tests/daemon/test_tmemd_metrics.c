/*
 * tmemd's metrics: served over HTTP on 127.0.0.1 when --metrics gives only
 * a port (ADDR:PORT still binds ADDR), and every sample's family has its
 * # HELP and # TYPE lines before its samples, all in one block, whatever
 * the daemon serves: store counters, per-client and per-pool families of
 * several clients, tswap tenants' figures, refusals, histograms.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tmem/store.h>

#include "../runner.h"
#include "test_daemon_util.h"

#define PERS TMEM_POOL_FLAGS(TMEM_POOL_PERSIST)
#define EPH TMEM_POOL_FLAGS(0)

TEST(tmemd_metrics_http)
{
    th_daemon d;
    int port = du_start_metrics(&d, "127.0.0.1:", 0, NULL);
    tmem__conn *c = th_conn(&d);
    ASSERT_EQ(th_put_range(c, tmem__conn_pool_new(c, NULL, PERS, NULL), 4, 5),
              5);
    char *body = du_http_get(port, "/metrics");
    ASSERT_TRUE(body != NULL);
    ASSERT_TRUE(strstr(body, "200 OK") != NULL);
    ASSERT_TRUE(strstr(body, "tmem_pers_pages 5") != NULL);
    ASSERT_TRUE(strstr(body, "tmem_pool_puts_good{client=") != NULL);
    ASSERT_TRUE(strstr(body, "tmem_op_latency_us_count{op=\"put\"} 5") != NULL);
    free(body);
    body = du_http_get(port, "/nope");
    ASSERT_TRUE(body && strstr(body, "404") != NULL);
    free(body);
    tmem__conn_close(c);
    ASSERT_EQ(th_stop(&d), 0);
}

/* The local address (hex, as /proc/net/tcp has it) of the socket
 * listening on port, into addr[9]; false when none listens. */
static bool listening_on(int port, char addr[9])
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    bool found = false;
    ASSERT_TRUE(f != NULL);
    while (!found && fgets(line, sizeof line, f)) {
        unsigned p, st;
        char a[9];
        if (sscanf(line, " %*d: %8[0-9A-F]:%x %*[0-9A-F]:%*x %x", a, &p, &st) ==
                3 &&
            (int)p == port && st == 0x0a) { /* TCP_LISTEN */
            memcpy(addr, a, 9);
            found = true;
        }
    }
    fclose(f);
    return found;
}

TEST(tmemd_metrics_port_only_is_loopback)
{
    const char *forms[][2] = {{"", "0100007F"},  /* PORT */
                              {":", "0100007F"}, /* :PORT */
                              {"0.0.0.0:", "00000000"}};
    for (int k = 0; k < 3; k++) {
        th_daemon d;
        char addr[9];
        int port = du_start_metrics(&d, forms[k][0], k + 1, NULL);
        ASSERT_TRUE(listening_on(port, addr));
        ASSERT_STR_EQ(addr, forms[k][1]);
        char *body = du_http_get(port, "/metrics");
        ASSERT_TRUE(body && strstr(body, "200 OK") != NULL);
        free(body);
        ASSERT_EQ(th_stop(&d), 0);
    }
}

/* ---- the exposition's shape -----------------------------------------------
 */

#define MAXFAM 512

struct families {
    char name[MAXFAM][96];
    char type[MAXFAM][32];
    bool help[MAXFAM], closed[MAXFAM];
    int n, cur; /* cur: the family whose samples came last (-1 none) */
};

static int fam_find(struct families *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->name[i], name) == 0)
            return i;
    return -1;
}

static int fam_add(struct families *f, const char *name)
{
    int i = fam_find(f, name);
    if (i >= 0)
        return i;
    ASSERT_LT(f->n, MAXFAM);
    snprintf(f->name[f->n], sizeof f->name[0], "%s", name);
    return f->n++;
}

/* The family a sample belongs to: its name, or for a histogram's
 * _bucket/_sum/_count (a summary's _sum/_count) the name without it. */
static int fam_of_sample(struct families *f, const char *metric)
{
    int i = fam_find(f, metric);
    if (i >= 0)
        return i;
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(metric), m = strlen(sfx[k]);
        if (n <= m || strcmp(metric + n - m, sfx[k]) != 0)
            continue;
        char base[96];
        snprintf(base, sizeof base, "%.*s", (int)(n - m), metric);
        i = fam_find(f, base);
        if (i >= 0 && (strcmp(f->type[i], "histogram") == 0 ||
                       (k > 0 && strcmp(f->type[i], "summary") == 0)))
            return i;
    }
    tmem_test_fail(__FILE__, __LINE__, "sample %s: no # TYPE before it",
                   metric);
}

/* One line of the text: a comment (HELP/TYPE) or a sample. */
static void check_line(struct families *f, const char *line)
{
    char name[96], word[32];
    if (sscanf(line, "# HELP %95s %31s", name, word) == 2) {
        int i = fam_add(f, name);
        ASSERT_TRUE(!f->help[i]); /* once */
        f->help[i] = true;
        return;
    }
    if (sscanf(line, "# TYPE %95s %31s", name, word) == 2) {
        int i = fam_add(f, name);
        ASSERT_EQ(f->type[i][0], 0); /* once */
        ASSERT_TRUE(strcmp(word, "counter") == 0 ||
                    strcmp(word, "gauge") == 0 ||
                    strcmp(word, "histogram") == 0);
        snprintf(f->type[i], sizeof f->type[0], "%s", word);
        return;
    }
    ASSERT_TRUE(line[0] != '#');
    size_t n = strcspn(line, "{ ");
    ASSERT_TRUE(n > 0 && n < sizeof name);
    snprintf(name, sizeof name, "%.*s", (int)n, line);
    const char *v = strchr(line + n, '}');
    v = strchr(v ? v : line + n, ' ');
    ASSERT_TRUE(v != NULL);
    char *end;
    strtod(v + 1, &end);
    ASSERT_TRUE(end > v + 1 && (*end == 0 || *end == '\n'));
    int i = fam_of_sample(f, name);
    if (!f->help[i] || !f->type[i][0])
        tmem_test_fail(__FILE__, __LINE__, "family %s: HELP %d TYPE '%s'",
                       f->name[i], f->help[i], f->type[i]);
    if (i != f->cur) { /* a new block: this family's only one */
        if (f->closed[i])
            tmem_test_fail(__FILE__, __LINE__, "family %s: two blocks",
                           f->name[i]);
        if (f->cur >= 0)
            f->closed[f->cur] = true;
        f->cur = i;
    }
}

/* Checks the whole text; returns the number of families with samples. */
static int check_exposition(const char *text)
{
    static struct families f;
    memset(&f, 0, sizeof f);
    f.cur = -1;
    int samples = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];
        ASSERT_LT(n, sizeof line);
        memcpy(line, p, n);
        line[n] = 0;
        if (n) {
            check_line(&f, line);
            samples += line[0] != '#';
        }
        p += n + (nl != NULL);
    }
    int with = 0;
    for (int i = 0; i < f.n; i++) {
        ASSERT_TRUE(f.help[i] && f.type[i][0]); /* no header left alone */
        with += f.closed[i] || i == f.cur;
    }
    printf("  %d families, %d samples\n", with, samples);
    return with;
}

/* A tenant whose ring says it is a tswap tenant (tmem run), so the daemon
 * shows its figures (tmem_tswap_*). */
static int tswap_like(const th_daemon *d, tmem__ring *r)
{
    int fd = th_raw(d), m;
    ASSERT_EQ(th_raw_hello(fd), 0);
    ASSERT_EQ(tmem__ring_create(8, r, &m), 0);
    tmem__tstat ts = {.magic = TMEM_TSTAT_MAGIC, .kind = 1, .resident = 5};
    memcpy((char *)r->hdr + TMEM_RING_TSTAT_OFF, &ts, sizeof ts);
    unsigned char b[TMEM_MSG_REQ_MAX];
    tmem__msg_args a = {.arg = 8};
    int n = tmem__req_encode(b, sizeof b, TMEM_MSG_RING_SETUP, 2, &a, NULL);
    ASSERT_EQ(tmem__io_write_fd(fd, b, (size_t)n, m), 0);
    ASSERT_EQ(tmem__io_read(fd, b, TMEM_MSG_REPLY_BASE), 0);
    close(m);
    return fd;
}

TEST(tmemd_metrics_help_and_type)
{
    th_daemon d;
    int port = du_start_metrics(&d, "", 5, NULL);
    tmem__conn *c[2] = {th_conn(&d), th_conn(&d)};
    for (int k = 0; k < 2; k++) { /* two clients, two pools each */
        int p = tmem__conn_pool_new(c[k], NULL, PERS, NULL);
        int e = tmem__conn_pool_new(c[k], NULL, EPH, NULL);
        ASSERT_EQ(th_put_range(c[k], p, 10 + (uint32_t)k, 20), 20);
        ASSERT_EQ(th_put_range(c[k], e, 20 + (uint32_t)k, 4), 4);
    }
    tmem__ring r;
    int ts = tswap_like(&d, &r);
    int raw = th_raw(&d); /* and a refusal: a GET before HELLO */
    tmem__msg_args a = {0};
    unsigned char b[TMEM_MSG_REQ_MAX];
    int n = tmem__req_encode(b, sizeof b, TMEM_MSG_GET, 1, &a, NULL);
    ASSERT_EQ(tmem__io_write(raw, b, (size_t)n), 0);
    ASSERT_EQ(tmem__io_read(raw, b, TMEM_MSG_REPLY_BASE), 0);
    close(raw);
    char *body = du_http_get(port, "/metrics");
    ASSERT_TRUE(body && strstr(body, "200 OK") != NULL);
    char *text = strstr(body, "\r\n\r\n");
    ASSERT_TRUE(text != NULL);
    ASSERT_GE(check_exposition(text + 4), 60);
    ASSERT_EQ(
        du_metric(text + 4, "tmemd_refusals_total{reason=\"out_of_order\"}"),
        1);
    ASSERT_TRUE(strstr(text, "\ntmem_tswap_resident_pages{client=") != NULL);
    ASSERT_TRUE(strstr(text, "\ntmem_pool_pages{client=") != NULL);
    tmem__ring_layout lay; /* the ring memory mapped for the tswap-like one */
    ASSERT_EQ(tmem__ring_layout_of(8, &lay), 0);
    int rings = 0;
    for (int id = 0; id < 4; id++) {
        char name[64];
        snprintf(name, sizeof name, "tmemd_client_ring_bytes{client=\"%d\"}",
                 id);
        rings += du_metric(text + 4, name) == (long long)lay.size;
    }
    ASSERT_EQ(rings, 1);
    free(body);
    char *pr = du_prometheus(&d); /* the socket serves the same shape */
    ASSERT_GE(check_exposition(pr), 60);
    free(pr);
    close(ts);
    tmem__ring_unmap(&r);
    for (int k = 0; k < 2; k++)
        tmem__conn_close(c[k]);
    ASSERT_EQ(th_stop(&d), 0);
}

/* A metrics server that cannot start: tmemd says why and exits 1, and no
 * socket file stays behind. */
TEST(tmemd_metrics_cannot_start_says_why)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ASSERT_EQ(listen(fd, 1), 0);
    socklen_t len = sizeof sa;
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char dir[] = "/tmp/tmem-metrics-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    const char *b = getenv("BUILD");
    static const struct {
        const char *arg, *why;
    } cases[] = {{"127.0.0.1:%d", "Address already in use"},
                 {"192.0.2.1:%d", "Cannot assign requested address"},
                 {"port%d", "not PORT, :PORT or ADDR:PORT"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char arg[64], cmd[700], out[4096];
        snprintf(arg, sizeof arg, cases[i].arg, ntohs(sa.sin_port));
        snprintf(cmd, sizeof cmd,
                 "%s/tmemd --socket %s/s --foreground --metrics %s 2>&1",
                 b && *b ? b : "build", dir, arg);
        FILE *p = popen(cmd, "r");
        ASSERT_TRUE(p != NULL);
        size_t k = fread(out, 1, sizeof out - 1, p);
        out[k] = 0;
        int st = pclose(p);
        ASSERT_EQ(WEXITSTATUS(st), 1);
        ASSERT_TRUE(strstr(out, "cannot serve metrics on") != NULL);
        ASSERT_TRUE(strstr(out, cases[i].why) != NULL);
        char sock[600];
        snprintf(sock, sizeof sock, "%s/s", dir);
        ASSERT_TRUE(access(sock, F_OK) != 0); /* no stale socket file */
    }
    close(fd);
    rmdir(dir);
}
