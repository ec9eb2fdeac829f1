/*
 * The status page in headless Chromium: against a real tmemd with two
 * tenants it draws both charts from the data (each chart's data-points)
 * and names the tenants, and a screenshot is taken (BUILD/tests/
 * web-status.png, kept to look at); against a stand-in server it shows
 * hostile tenant names as text only, a failed fetch and a restarted
 * daemon.  Skipped where Chromium is not installed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../daemon/test_daemon_util.h"
#include "../lib/tmpdir.h"
#include "../runner.h"
#include "web_util.h"

#define CHROMIUM_S 90 /* longest a Chromium run may take */

/* data-points of the canvas in the card of client id (its memory chart),
 * or -1 when the card has none; *nofig: the card says "no figures". */
static long card_points(const char *dom, int id, bool *nofig)
{
    char key[48];
    snprintf(key, sizeof key, "data-client=\"%d\"", id);
    const char *c = strstr(dom, key);
    ASSERT_TRUE(c != NULL);
    const char *end = strstr(c + 1, "class=\"card\"");
    size_t n = end ? (size_t)(end - c) : strlen(c);
    char *card = strndup(c, n);
    *nofig = strstr(card, ">no figures<") != NULL;
    long p =
        strstr(card, "<canvas") ? wu_attr(card, "<canvas", "data-points") : -1;
    free(card);
    return p;
}

/* Moves alpha's resident figure and adds pages to beta while the page
 * runs, so the charts have a shape. */
struct busy {
    tmem_conn *c[2];
    atomic_bool stop;
};

static void *keep_busy(void *arg)
{
    struct busy *b = arg;
    int pool = tmem_conn_pool_new(b->c[1], NULL, TMEM_POOL_FLAGS(0), NULL);
    static char page[TMEM_PAGE_SIZE];
    tmem_oid oid = {{77, 0, 0}};
    for (uint32_t i = 0; !atomic_load(&b->stop) && i < 4000; i++) {
        wu_set_resident(b->c[0], WU_RESIDENT - 60 + (i * 7) % 90);
        th_fill(page, 77, i);
        if (pool >= 0 && i < 400)
            tmem_conn_put(b->c[1], pool, &oid, i, page);
        usleep(20000);
    }
    return NULL;
}

TEST(web_page_in_chromium)
{
    wu_need_chromium();
    th_daemon d;
    int port = du_start_metrics(&d, "", 14, NULL);
    struct busy b = {.stop = false};
    wu_two_tenants(&d, b.c);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, keep_busy, &b), 0);
    char dir[32], url[64], out[64], shot[256];
    wu_tmpdir(dir);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(out, sizeof out, "%s/dom.html", dir);
    const char *const dump[] = {"--virtual-time-budget=5000", "--dump-dom",
                                NULL};
    ASSERT_EQ(wu_chromium(url, dump, out, CHROMIUM_S), 0);
    char *dom = wu_slurp(out, NULL);
    ASSERT_TRUE(dom != NULL);
    ASSERT_GE(wu_attr(dom, "<body", "data-samples"), 2);
    long points = wu_attr(dom, "id=\"pool\"", "data-points");
    printf("  %ld samples; pool chart: %ld points\n",
           wu_attr(dom, "<body", "data-samples"), points);
    ASSERT_GE(points, 4); /* two tenants, two samples at least */
    ASSERT_TRUE(strstr(dom, "data-state=\"ok\"") != NULL);
    ASSERT_TRUE(strstr(dom, ">alpha (client ") != NULL); /* legend and cards */
    ASSERT_TRUE(strstr(dom, ">beta (client ") != NULL);
    bool nofig;
    ASSERT_GE(card_points(dom, tmem_conn_client_id(b.c[0]), &nofig), 2);
    ASSERT_TRUE(!nofig);
    ASSERT_EQ(card_points(dom, tmem_conn_client_id(b.c[1]), &nofig), -1);
    ASSERT_TRUE(nofig);
    free(dom);

    const char *build = getenv("BUILD");
    snprintf(shot, sizeof shot, "%s/tests/web-status.png",
             build && *build ? build : "build");
    char shot_arg[300];
    snprintf(shot_arg, sizeof shot_arg, "--screenshot=%s", shot);
    remove(shot);
    const char *const pic[] = {"--virtual-time-budget=20000", shot_arg,
                               "--window-size=1200,900", NULL};
    snprintf(out, sizeof out, "%s/shot.out", dir);
    ASSERT_EQ(wu_chromium(url, pic, out, CHROMIUM_S), 0);
    size_t len;
    char *png = wu_slurp(shot, &len);
    ASSERT_TRUE(png != NULL);
    printf("  screenshot %s: %zu bytes\n", shot, len);
    ASSERT_GT(len, 20000u); /* charts and text, not a blank page */
    ASSERT_MEM_EQ(png, "\x89PNG\r\n\x1a\n", 8);
    free(png);
    atomic_store(&b.stop, true);
    pthread_join(t, NULL);
    tl_rm_tree(dir);
    tmem_disconnect(b.c[0]);
    tmem_disconnect(b.c[1]);
    ASSERT_EQ(th_stop(&d), 0);
}

/* ---- a stand-in server: the daemon's page, status data of our own ----- */

/* Hostile names a status could carry if the daemon let them in, as
 * JSON; with a tswap block for the first. */
static const char hostile[] =
    "{\"client\":5,\"name\":\"<img src=x onerror=alert(1)>\",\"live\":true,"
    "\"pid\":1,\"uid\":0,\"weight\":1,\"eph_pages\":10,\"pers_pages\":30,"
    "\"data_bytes\":4096,\"tswap\":{\"resident_pages\":50,"
    "\"target_pages\":40,\"stored_pages\":30}},"
    "{\"client\":6,\"name\":\"</script><b id=pwn>x</b>\",\"live\":true,"
    "\"pid\":1,\"uid\":0,\"weight\":1,\"eph_pages\":0,\"pers_pages\":12,"
    "\"data_bytes\":4096,\"tswap\":null}";

/* What the stand-in answers: the k-th GET of status.json (from 0) by
 * mode: 'r' ok (daemon pid 100), 503, then ok from pid 200 (a restart);
 * 'e' always 503. */
static void answer(int fd, const char *page, char mode, int k)
{
    char req[2048], json[2048], head[256];
    const char *body = json;
    ssize_t n = read(fd, req, sizeof req - 1);
    if (n <= 0)
        return;
    req[n] = 0;
    const char *type = "application/json", *what = "200 OK";
    if (strncmp(req, "GET / ", 6) == 0) {
        type = "text/html; charset=utf-8";
        body = page;
    } else if (strncmp(req, "GET /status.json ", 17) == 0 && mode == 'r' &&
               k != 1) {
        snprintf(json, sizeof json,
                 "{\"version\":\"t\",\"daemon_pid\":%d,\"time_ms\":0,"
                 "\"page_size\":4096,\"budget_bytes\":1048576,"
                 "\"used_bytes\":65536,\"data_bytes\":8192,\"eph_pages\":10,"
                 "\"pers_pages\":42,\"tenants\":[%s]}",
                 k ? 200 : 100, hostile);
    } else {
        what = "503 Service Unavailable";
        body = "down\n";
    }
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n",
                     what, type, strlen(body));
    if (write(fd, head, (size_t)h) == h)
        (void)!write(fd, body, strlen(body));
}

/* Serves page and status data on a port of 127.0.0.1 (returned) from a
 * child process (*pid), each connection in a child of its own (Chromium
 * may open one it never uses). */
static int stand_in(const char *page, char mode, pid_t *pid)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    ASSERT_EQ(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    ASSERT_EQ(listen(ls, 16), 0);
    ASSERT_EQ(getsockname(ls, (struct sockaddr *)&sa, &len), 0);
    _Atomic int *gets = mmap(NULL, sizeof *gets, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(gets != MAP_FAILED);
    fflush(stdout);
    *pid = fork();
    ASSERT_GE(*pid, 0);
    if (*pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGCHLD, SIG_IGN); /* no zombies */
        for (;;) {
            int fd = accept(ls, NULL, NULL);
            if (fd < 0)
                continue;
            if (fork() == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                struct timeval tv = {.tv_sec = 5};
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                char peek[32] = {0};
                recv(fd, peek, sizeof peek - 1, MSG_PEEK);
                int k =
                    strstr(peek, "status.json") ? atomic_fetch_add(gets, 1) : 0;
                answer(fd, page, mode, k);
                _exit(0);
            }
            close(fd);
        }
    }
    close(ls);
    return ntohs(sa.sin_port);
}

/* The daemon's page served by a stand-in in mode; Chromium's DOM after
 * 5 s (malloc'd). */
static char *dom_from_stand_in(char mode)
{
    th_daemon d;
    int port = du_start_metrics(&d, "", 15, NULL);
    char *resp = du_http_get(port, "/");
    ASSERT_TRUE(resp && wu_body(resp));
    ASSERT_EQ(th_stop(&d), 0);
    char *page = strdup(wu_body(resp));
    free(resp);
    pid_t srv;
    int sport = stand_in(page, mode, &srv);
    char dir[32], url[64], out[64];
    wu_tmpdir(dir);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", sport);
    snprintf(out, sizeof out, "%s/dom.html", dir);
    const char *const dump[] = {"--virtual-time-budget=5000", "--dump-dom",
                                NULL};
    int rc = wu_chromium(url, dump, out, CHROMIUM_S);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    ASSERT_EQ(rc, 0);
    char *dom = wu_slurp(out, NULL);
    ASSERT_TRUE(dom != NULL);
    tl_rm_tree(dir);
    free(page);
    return dom;
}

TEST(web_page_hostile_names_and_restart)
{
    wu_need_chromium();
    char *dom = dom_from_stand_in('r');
    /* the names are text: escaped in the DOM, no element of theirs */
    ASSERT_TRUE(strstr(dom, "&lt;img src=x onerror=alert(1)&gt; (client 5)"));
    ASSERT_TRUE(strstr(dom, "&lt;/script&gt;&lt;b id=pwn&gt;x&lt;/b&gt;"));
    ASSERT_TRUE(strstr(dom, "<img") == NULL);
    ASSERT_TRUE(strstr(dom, "id=\"pwn\"") == NULL);
    ASSERT_TRUE(strstr(dom, "id=pwn>") == NULL);
    /* the failed fetch between (503) did not stop it; the restart shows */
    ASSERT_GE(wu_attr(dom, "<body", "data-samples"), 2);
    ASSERT_TRUE(strstr(dom, "tmemd restarted at") != NULL);
    ASSERT_TRUE(strstr(dom, "data-state=\"ok\"") != NULL);
    ASSERT_GT(wu_attr(dom, "id=\"pool\"", "data-points"), 0);
    bool nofig;
    ASSERT_GT(card_points(dom, 5, &nofig), 0);
    ASSERT_EQ(card_points(dom, 6, &nofig), -1);
    ASSERT_TRUE(nofig);
    free(dom);
}

TEST(web_page_says_fetch_failed)
{
    wu_need_chromium();
    char *dom = dom_from_stand_in('e');
    ASSERT_TRUE(strstr(dom, "data-state=\"error\"") != NULL);
    ASSERT_TRUE(strstr(dom, "no answer from tmemd (HTTP 503)") != NULL);
    ASSERT_TRUE(strstr(dom, "retrying every second") != NULL);
    const char *f = strstr(dom, "second, ");
    ASSERT_TRUE(f && atoi(f + 8) >= 2); /* it went on trying */
    ASSERT_EQ(wu_attr(dom, "<body", "data-samples"), 0);
    free(dom);
}
