/*
 * tmemd's status page over HTTP, without a browser: /status.json says
 * what each tenant put and reports, tenant-supplied text cannot escape
 * its JSON string, / is one page that loads nothing from elsewhere, and
 * /metrics and the 404s are as they were.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <client/json.h>

#include "../../src/tmemd/web.h"
#include "../daemon/test_daemon_util.h"
#include "../runner.h"
#include "web_util.h"

static double num(const tmem__json *o, const char *key)
{
    const tmem__json *v = tmem__json_get(o, key);
    if (!v || v->type != TMEM_JSON_NUMBER)
        tmem_test_fail(__FILE__, __LINE__, "no number \"%s\"", key);
    return v->num;
}

/* The tenant named name in the status's list, or NULL. */
static const tmem__json *tenant_named(const tmem__json *j, const char *name)
{
    const tmem__json *list = tmem__json_get(j, "tenants");
    ASSERT_TRUE(list && list->type == TMEM_JSON_ARRAY);
    for (const tmem__json *t = list->kids; t; t = t->next) {
        const tmem__json *n = tmem__json_get(t, "name");
        if (n && n->type == TMEM_JSON_STRING && strcmp(n->str, name) == 0)
            return t;
    }
    return NULL;
}

TEST(web_status_json_values)
{
    th_daemon d;
    int port = du_start_metrics(&d, "", 11, NULL);
    tmem_conn *c[2];
    wu_two_tenants(&d, c);
    char *resp = du_http_get(port, "/status.json");
    ASSERT_TRUE(resp && strstr(resp, "200 OK") != NULL);
    ASSERT_TRUE(strstr(resp, "Content-Type: application/json") != NULL);
    ASSERT_TRUE(strstr(resp, "Cache-Control: no-store") != NULL);
    tmem__json *j;
    ASSERT_EQ(tmem__json_parse(wu_body(resp), &j), 0);
    ASSERT_EQ(num(j, "budget_bytes"), 512.0 * 1024 * 1024); /* harness */
    ASSERT_GT(num(j, "used_bytes"), 0.0);
    ASSERT_EQ(num(j, "page_size"), (double)TMEM_PAGE_SIZE);
    ASSERT_EQ(num(j, "pers_pages"), (double)(WU_ALPHA_PERS + WU_BETA_PERS));
    ASSERT_EQ(num(j, "eph_pages"), (double)WU_ALPHA_EPH);
    ASSERT_EQ(num(j, "daemon_pid"), (double)d.pid);
    ASSERT_EQ(tmem__json_get(j, "tenants")->n, 2u);
    const tmem__json *a = tenant_named(j, "alpha"),
                     *b = tenant_named(j, "beta");
    ASSERT_TRUE(a && b);
    ASSERT_EQ(num(a, "client"), (double)tmem_conn_client_id(c[0]));
    ASSERT_EQ(num(b, "client"), (double)tmem_conn_client_id(c[1]));
    ASSERT_EQ(num(a, "pid"), (double)getpid());
    ASSERT_EQ(num(a, "uid"), (double)getuid());
    ASSERT_GE(num(a, "weight"), 1.0);
    ASSERT_EQ(tmem__json_get(a, "live")->num, 1.0);
    ASSERT_EQ(num(a, "pers_pages"), (double)WU_ALPHA_PERS);
    ASSERT_EQ(num(a, "eph_pages"), (double)WU_ALPHA_EPH);
    ASSERT_EQ(num(b, "pers_pages"), (double)WU_BETA_PERS);
    ASSERT_EQ(num(b, "eph_pages"), 0.0);
    ASSERT_GT(num(a, "data_bytes"), 0.0);
    ASSERT_GT(num(b, "data_bytes"), 0.0);
    const tmem__json *ts = tmem__json_get(a, "tswap");
    ASSERT_TRUE(ts && ts->type == TMEM_JSON_OBJECT);
    const tmem__json *kind = tmem__json_get(ts, "kind");
    ASSERT_TRUE(kind && kind->type == TMEM_JSON_STRING &&
                strcmp(kind->str, "tswap") == 0);
    ASSERT_EQ(num(ts, "resident_pages"), (double)WU_RESIDENT);
    ASSERT_EQ(num(ts, "target_pages"), (double)WU_TARGET);
    ASSERT_EQ(num(ts, "stored_pages"), (double)WU_ALPHA_PERS);
    ts = tmem__json_get(b, "tswap"); /* beta gives no figures: null */
    ASSERT_TRUE(ts && ts->type == TMEM_JSON_NULL);
    tmem__json_free(j);
    free(resp);
    tmem_disconnect(c[0]);
    tmem_disconnect(c[1]);
    ASSERT_EQ(th_stop(&d), 0);
}

/* The escaper itself, byte for byte. */
TEST(web_json_escape)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"alpha-1.b_c", "alpha-1.b_c"},
        {"a\"b\\c", "a\\\"b\\\\c"},
        {"\n\t\x01\x1f\x7f", "\\u000a\\u0009\\u0001\\u001f\\u007f"},
        {"</script><b>", "\\u003c/script\\u003e\\u003cb\\u003e"},
        {"x&y'z", "x\\u0026y\\u0027z"},
        {"\xc3\xa9\xff", "\\u00c3\\u00a9\\u00ff"},
        {"", ""},
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = tmemd_json_escape(out, sizeof out, cases[i].in);
        ASSERT_STR_EQ(out, cases[i].out);
        ASSERT_EQ(n, strlen(cases[i].out));
    }
    /* too small: the length it needs, and never half an escape */
    for (size_t cap = 1; cap < 14; cap++) {
        memset(out, 'Z', sizeof out);
        ASSERT_EQ(tmemd_json_escape(out, cap, "ab<c"), 9u);
        size_t k = strlen(out);
        ASSERT_LT(k, cap);
        ASSERT_TRUE(strncmp(out, "ab\\u003cc", k) == 0);
        ASSERT_TRUE(k == 0 || k == 1 || k == 2 || k == 8 || k == 9);
    }
}

/* A HELLO with a hostile name: refused, and never in the status. */
TEST(web_hostile_name_kept_out)
{
    th_daemon d;
    int port = du_start_metrics(&d, "", 12, NULL);
    int fd = th_raw(&d);
    unsigned char b[TMEM_MSG_REQ_MAX];
    tmem__msg_args a = {.arg = TMEM_PROTO_VERSION, .flags = TMEM_PROTO_MAGIC};
    memcpy(a.uuid, "\"</script><i>\\\x01", 16);
    int n = tmem__req_encode(b, sizeof b, TMEM_MSG_HELLO, 1, &a, NULL);
    ASSERT_EQ(tmem__io_write(fd, b, (size_t)n), 0);
    ASSERT_EQ(th_raw_status(fd), -EINVAL);
    close(fd);
    tmem_conn *c[2];
    wu_two_tenants(&d, c);
    char *resp = du_http_get(port, "/status.json");
    const char *body = wu_body(resp);
    ASSERT_TRUE(body != NULL);
    ASSERT_TRUE(strpbrk(body, "<>\\") == NULL);
    tmem__json *j;
    ASSERT_EQ(tmem__json_parse(body, &j), 0);
    ASSERT_EQ(tmem__json_get(j, "tenants")->n, 2u);
    tmem__json_free(j);
    free(resp);
    ASSERT_EQ(du_http_metric(port, "tmemd_refusals_total{reason=\"bad_name\"}"),
              1);
    tmem_disconnect(c[0]);
    tmem_disconnect(c[1]);
    ASSERT_EQ(th_stop(&d), 0);
}

/* / is one HTML page with everything inline; the other paths are as
 * before. */
TEST(web_page_self_contained)
{
    th_daemon d;
    int port = du_start_metrics(&d, "", 13, NULL);
    char *resp = du_http_get(port, "/");
    ASSERT_TRUE(resp && strstr(resp, "200 OK") != NULL);
    ASSERT_TRUE(strstr(resp, "Content-Type: text/html; charset=utf-8"));
    ASSERT_TRUE(strstr(resp, "Content-Security-Policy: default-src 'none'"));
    const char *page = wu_body(resp);
    ASSERT_TRUE(page && strncmp(page, "<!doctype html>", 15) == 0);
    ASSERT_TRUE(strstr(page, "<canvas id='pool'") != NULL);
    ASSERT_TRUE(strstr(page, "fetch('status.json'") != NULL);
    static const char *const outside[] = {"http:", "https:",     "//cdn",
                                          " src=", "<link",      "@import",
                                          "url(",  "@font-face", "ws:"};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++)
        if (strcasestr(page, outside[i]))
            tmem_test_fail(__FILE__, __LINE__, "the page has \"%s\"",
                           outside[i]);
    ASSERT_TRUE(strstr(page, "innerHTML") == NULL); /* text only */
    ASSERT_TRUE(strstr(page, "textContent") != NULL);
    free(resp);
    static const char *const missing[] = {"/index.html", "/status.jsonx",
                                          "/status", "//", "/metrics/"};
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
        resp = du_http_get(port, missing[i]);
        ASSERT_TRUE(resp && strstr(resp, " 404 ") != NULL);
        free(resp);
    }
    resp = du_http_get(port, "/metrics");
    ASSERT_TRUE(resp && strstr(resp, "200 OK") != NULL);
    ASSERT_TRUE(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
    ASSERT_TRUE(strstr(resp, "\ntmem_pers_pages 0\n") != NULL);
    free(resp);
    ASSERT_EQ(th_stop(&d), 0);
}
