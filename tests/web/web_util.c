/*
 * Helpers of the status page tests (web_util.h).
 */
#include "web_util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <client/conn_direct.h>
#include <proto/proto.h>

#include "../lib/tmpdir.h"
#include "../runner.h"

static tmem_conn *tenant(const th_daemon *d, const char *name)
{
    tmem_conn *c = NULL;
    setenv("TMEM_NAME", name, 1);
    setenv("TMEM_EMBEDDED", "0", 1);
    ASSERT_EQ(tmem_connect(d->sock, &c), 0);
    unsetenv("TMEM_NAME");
    ASSERT_TRUE(!tmem_conn_is_embedded(c));
    return c;
}

static void put_pages(tmem_conn *c, uint32_t flags, uint32_t seed, int n)
{
    int pool = tmem_conn_pool_new(c, NULL, flags, NULL);
    ASSERT_GE(pool, 0);
    tmem_oid oid = {{seed, 0, 0}};
    static char page[TMEM_PAGE_SIZE];
    for (int i = 0; i < n; i++) {
        th_fill(page, seed, (uint32_t)i);
        ASSERT_EQ(tmem_conn_put(c, pool, &oid, (uint32_t)i, page), 1);
    }
}

void wu_two_tenants(const th_daemon *d, tmem_conn *c[2])
{
    c[0] = tenant(d, "alpha");
    c[1] = tenant(d, "beta");
    put_pages(c[0], TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), 1, WU_ALPHA_PERS);
    put_pages(c[0], TMEM_POOL_FLAGS(0), 2, WU_ALPHA_EPH);
    put_pages(c[1], TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), 3, WU_BETA_PERS);
    wu_set_resident(c[0], WU_RESIDENT);
}

void wu_set_resident(tmem_conn *alpha, unsigned long long resident)
{
    tmem__tstat *ts = tmem__conn_tstat_block(alpha);
    ASSERT_TRUE(ts != NULL); /* it has a ring */
    tmem__tstat v = {.magic = TMEM_TSTAT_MAGIC,
                     .kind = TMEM_TSTAT_TSWAP,
                     .resident = resident,
                     .target = WU_TARGET,
                     .stored = WU_ALPHA_PERS};
    memcpy(ts, &v, sizeof v);
}

void wu_need_chromium(void)
{
    if (access(WU_CHROMIUM, X_OK) != 0)
        TEST_SKIP(WU_CHROMIUM " is not installed (Debian: apt-get install "
                              "chromium)");
}

/* The child: Chromium in a process group of its own, its home and
 * profile in prof, its output in out_path (and out_path.log). */
static void exec_chromium(const char *const *argv, const char *prof,
                          const char *out_path)
{
    char log[300];
    snprintf(log, sizeof log, "%s.log", out_path);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(126);
    setenv("HOME", prof, 1);
    setenv("XDG_CONFIG_HOME", prof, 1);
    setenv("XDG_CACHE_HOME", prof, 1);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

int wu_chromium(const char *url, const char *const *extra, const char *out_path,
                int timeout_s)
{
    char prof[32], udd[64];
    wu_tmpdir(prof);
    snprintf(udd, sizeof udd, "--user-data-dir=%s", prof);
    const char *argv[32] = {WU_CHROMIUM,
                            "--headless=new",
                            "--no-sandbox", /* as root it must */
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--no-default-browser-check",
                            "--disable-extensions",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--hide-scrollbars",
                            udd};
    int n = 13;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n++] = url;
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        exec_chromium(argv, prof, out_path);
    setpgid(pid, pid); /* (the child does it too: whichever runs first) */
    int st = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= timeout_s)
            break;
        usleep(20000);
    }
    kill(-pid, SIGKILL); /* a hung one, or helpers it left behind */
    if (r == 0)
        waitpid(pid, &st, 0);
    usleep(100000);
    tl_rm_tree(prof);
    if (r == 0)
        tmem_test_fail(__FILE__, __LINE__, "chromium ran over %d s: killed",
                       timeout_s);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *wu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *p = malloc(cap + 1);
    while (p && (k = fread(p + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *q = realloc(p, 2 * cap + 1);
            if (!q)
                free(p);
            p = q;
            cap *= 2;
        }
    }
    fclose(f);
    if (p)
        p[n] = 0;
    if (len)
        *len = n;
    return p;
}

long wu_attr(const char *dom, const char *marker, const char *attr)
{
    const char *m = strstr(dom, marker);
    if (!m)
        return -1;
    const char *lt = m;
    while (lt > dom && *lt != '<')
        lt--;
    const char *gt = strchr(m, '>');
    char key[64];
    snprintf(key, sizeof key, " %s=\"", attr);
    const char *a = strstr(lt, key);
    if (!gt || !a || a > gt)
        return -1;
    return strtol(a + strlen(key), NULL, 10);
}

const char *wu_body(const char *resp)
{
    const char *b = resp ? strstr(resp, "\r\n\r\n") : NULL;
    return b ? b + 4 : NULL;
}

void wu_tmpdir(char dir[32])
{
    snprintf(dir, 32, "/tmp/tmem-web-XXXXXX");
    ASSERT_TRUE(mkdtemp(dir) != NULL);
}
