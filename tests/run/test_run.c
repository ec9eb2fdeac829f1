/*
 * tmem run with real programs (docs/tswap.md): Debian's redis-server and
 * python3 with their heaps in tswap memory under a budget, through a real
 * tmemd and with an embedded store; system calls on buffers that are out;
 * redis forking to save; and the errors a user meets first.
 *
 * Each test runs the programs as children of the test; they die with it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/tmemd_harness.h"
#include "../lib/tmpdir.h"
#include "../runner.h"

static const char *build(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

static const char *corpus(void)
{
    const char *c = getenv("TMEM_CORPUS");
    if (c && *c)
        return c;
    return access("../shared/corpus/pages-a.bin.zst", R_OK) == 0
               ? "../shared/corpus/pages-a.bin.zst"
               : NULL;
}

static void need(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    if (system(cmd) != 0) {
        char why[128];
        snprintf(why, sizeof why, "%s is not installed", prog);
        TEST_SKIP(why);
    }
}

/* Runs argv (NULL-terminated) in the background; stdout/stderr to log. */
static pid_t spawn(const char *const *argv, const char *log)
{
    pid_t p = fork();
    ASSERT_TRUE(p >= 0);
    if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return p;
}

/* Runs a shell command, returns its exit status; its output to out. */
static int sh(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    ASSERT_TRUE(f != NULL);
    size_t n = out ? fread(out, 1, cap - 1, f) : 0;
    if (out)
        out[n] = 0;
    else
        while (fgetc(f) != EOF)
            ;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The process's anonymous resident memory: its heap and libtmem's own;
 * not the pages of the store's arena it maps to read its pages (RssShmem:
 * the daemon's memory, counted there). */
/* One "Rss...:" field of /proc/p/status in KiB, or -1. */
static long rss_field_kib(pid_t p, const char *field)
{
    char path[64], line[256], fmt[32];
    snprintf(path, sizeof path, "/proc/%d/status", (int)p);
    snprintf(fmt, sizeof fmt, "%s: %%ld", field);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static long rss_anon_kib(pid_t p)
{
    return rss_field_kib(p, "RssAnon");
}

/* ---- redis --------------------------------------------------------------- */

struct redis {
    pid_t pid;
    int port;
    char log[160];
};

/* Up and done loading its dump (PING answers while it still loads). */
static bool redis_up(int port)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd,
             "redis-cli -p %d info persistence 2>/dev/null | "
             "grep -q '^loading:0'",
             port);
    return system(cmd) == 0;
}

/* A TCP port nothing listens on now (the kernel's pick). */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Starts redis-server under tmem run with opts ("--budget 64M" ...). */
static void redis_start(struct redis *r, const th_daemon *d, const char *opts,
                        const char *dir)
{
    r->port = free_port();
    snprintf(r->log, sizeof r->log, "%s/redis.log", dir);
    char tmem[128], port[16], cmd[1024];
    snprintf(tmem, sizeof tmem, "%s/tmem", build());
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(cmd, sizeof cmd,
             "exec %s %s%s run %s --name redis -- redis-server --port %d "
             "--save '' --appendonly no --dir %s",
             tmem, d ? "--socket " : "", d ? d->sock : "", opts, r->port, dir);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    r->pid = spawn(argv, r->log);
    for (int i = 0; i < 200 && !redis_up(r->port); i++) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid)
            break;
        usleep(50000);
    }
    if (!redis_up(r->port)) {
        char log[4096] = "";
        sh(log, sizeof log, "cat %s", r->log);
        tmem_test_fail(__FILE__, __LINE__, "redis did not start: %s", log);
    }
}

static void redis_stop(struct redis *r)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "redis-cli -p %d shutdown nosave >/dev/null 2>&1",
             r->port);
    system(cmd);
    ASSERT_EQ(th_wait(r->pid), 0);
}

/* tmem bench redis fill|check of keys values: exit status. */
static int redis_load(struct redis *r, const char *what, int keys)
{
    char out[512];
    const char *c = corpus();
    int st =
        sh(out, sizeof out, "%s/tmem bench redis %s --port %d --keys %d %s%s",
           build(), what, r->port, keys, c ? "--corpus " : "", c ? c : "");
    if (st != 0)
        fprintf(stderr, "  %s: %s", what, out);
    return st;
}

enum { KEYS = 65536 }; /* 256 MiB of 4 KiB values */

static void redis_exercise(struct redis *r, const th_daemon *d);

/* 256 MiB into redis under a 64 MiB budget: every value back, RSS near
 * the budget, redis-benchmark clean, the tenant in tmem list. */
static void redis_case(const th_daemon *d, const char *opts, const char *dir)
{
    struct redis r;
    redis_start(&r, d, opts, dir);
    ASSERT_EQ(redis_load(&r, "fill", KEYS), 0);
    ASSERT_EQ(redis_load(&r, "check", KEYS), 0);
    long rss = rss_anon_kib(r.pid) + rss_field_kib(r.pid, "RssFile");
    fprintf(stderr, "  redis RSS (anonymous + file) %ld MiB with 256 MiB "
                    "of values\n",
            rss >> 10);
    /* The budget holds all resident memory but the arena's view (stacks,
     * the binary, libtmem's own, the copies' share too); the heap's target
     * follows it every 100 ms. */
    ASSERT_LT(rss, 68 << 10);
    redis_exercise(&r, d);
    redis_stop(&r);
}

/* redis-benchmark clean, the tenant in tmem list, every value still
 * right after it. */
static void redis_exercise(struct redis *r, const th_daemon *d)
{
    char out[4096];
    ASSERT_EQ(sh(out, sizeof out,
                 "redis-benchmark -p %d -t get -n 20000 -r %d -d 4096 "
                 "-c 4 -q 2>&1",
                 r->port, KEYS),
              0);
    ASSERT_TRUE(strstr(out, "GET:") != NULL);
    if (d) {
        ASSERT_EQ(
            sh(out, sizeof out, "%s/tmem --socket %s list", build(), d->sock),
            0);
        ASSERT_TRUE(strstr(out, "redis") != NULL);
    }
    ASSERT_EQ(redis_load(r, "check", KEYS), 0); /* after the benchmark */
}

TEST(run_redis_budget_daemon)
{
    need("redis-server");
    need("redis-benchmark");
    th_daemon d;
    th_start(&d, (const char *const[]){"--budget", "2G", NULL});
    redis_case(&d, "--budget 64M", d.dir);
    /* the tenant gone, its pages are gone from the store */
    char out[8192];
    ASSERT_EQ(sh(out, sizeof out, "%s/tmem --socket %s stats --json", build(),
                 d.sock),
              0);
    ASSERT_TRUE(strstr(out, "\"pers_pages\":0") != NULL);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(run_redis_budget_embedded)
{
    need("redis-server");
    need("redis-benchmark");
    char dir[64];
    tl_tmpdir(dir, sizeof dir, "tmem-run-");
    redis_case(NULL, "--embedded --budget 64M", dir);
}

/* The resident target tmem list shows for the tenant named name, or -1. */
static long tenant_target(const th_daemon *d, const char *name)
{
    static char out[65536];
    char key[64];
    if (sh(out, sizeof out, "%s/tmem --socket %s list --json", build(),
           d->sock) != 0)
        return -1;
    snprintf(key, sizeof key, "\"name\":\"%s\"", name);
    const char *p = strstr(out, key);
    p = p ? strstr(p, "\"target\"") : NULL;
    p = p ? strchr(p, ':') : NULL;
    return p ? strtol(p + 1, NULL, 10) : -1;
}

/* --selfballoon: the controller sizes the heap's resident target (from
 * the working set, the frontswap pages and the reserve, docs/balloon.md);
 * with a 1 s interval an idle redis that took in 256 MiB gives most of
 * it back to the store, and every value stays right. */
TEST(run_redis_selfballoon)
{
    need("redis-server");
    need("redis-benchmark");
    th_daemon d;
    th_start(&d, (const char *const[]){"--budget", "2G", NULL});
    char ctl[512], out[4096];
    snprintf(ctl, sizeof ctl, "%s/balloon.ctl", d.dir);
    setenv("TMEM_RUN_CONTROL", ctl, 1);
    struct redis r;
    redis_start(&r, &d, "--selfballoon", d.dir);
    unsetenv("TMEM_RUN_CONTROL");
    ASSERT_EQ(redis_load(&r, "fill", KEYS), 0);
    long full = rss_anon_kib(r.pid);
    ASSERT_GT(full, 256 << 10); /* nothing out yet: no budget, no pressure */
    ASSERT_EQ(sh(out, sizeof out,
                 "%s/tmem balloon set --control %s selfballoon_interval 1",
                 build(), ctl),
              0);
    ASSERT_EQ(sh(out, sizeof out,
                 "%s/tmem balloon set --control %s "
                 "selfballoon_downhysteresis 2",
                 build(), ctl),
              0);
    long tg = -1;
    for (int i = 0; i < 60; i++) {
        usleep(250000);
        tg = tenant_target(&d, "redis");
        if (tg > 0 && tg < KEYS * 3 / 4 && rss_anon_kib(r.pid) < full * 3 / 4)
            break;
    }
    long now = rss_anon_kib(r.pid);
    fprintf(stderr,
            "  selfballoon: target %ld pages, anonymous RSS %ld -> %ld MiB\n",
            tg, full >> 10, now >> 10);
    ASSERT_GT(tg, 0);
    ASSERT_LT(tg, KEYS * 3 / 4);
    ASSERT_LT(now, full * 3 / 4);
    ASSERT_EQ(redis_load(&r, "check", KEYS), 0);
    redis_exercise(&r, &d);
    redis_stop(&r);
    ASSERT_EQ(th_stop(&d), 0);
}

/* redis forks to save: the child writes every value, including those
 * whose pages were out when it forked; a plain redis then loads it. */
TEST(run_redis_fork_save)
{
    need("redis-server");
    th_daemon d;
    th_start(&d, (const char *const[]){"--budget", "2G", NULL});
    struct redis r;
    redis_start(&r, &d, "--budget 32M", d.dir);
    ASSERT_EQ(redis_load(&r, "fill", 32768), 0);
    char out[256];
    ASSERT_EQ(sh(out, sizeof out, "redis-cli -p %d save", r.port), 0);
    ASSERT_TRUE(strstr(out, "OK") != NULL);
    redis_stop(&r);
    /* a plain redis on the dump */
    r.port = free_port();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "exec redis-server --port %d --dir %s", r.port,
             d.dir);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    r.pid = spawn(argv, r.log);
    for (int i = 0; i < 200 && !redis_up(r.port); i++)
        usleep(50000);
    ASSERT_EQ(redis_load(&r, "check", 32768), 0);
    redis_stop(&r);
    ASSERT_EQ(th_stop(&d), 0);
}

/* Large values received into buffers whose pages were out. */
TEST(run_redis_large_values)
{
    need("redis-server");
    th_daemon d;
    th_start(&d, (const char *const[]){"--budget", "2G", NULL});
    struct redis r;
    redis_start(&r, &d, "--budget 16M", d.dir);
    ASSERT_EQ(redis_load(&r, "fill", 8192), 0); /* 32 MiB: half out */
    char out[512];
    ASSERT_EQ(sh(out, sizeof out,
                 "%s/tmem bench redis fill --port %d --keys 24 --size 2097152",
                 build(), r.port),
              0);
    ASSERT_EQ(sh(out, sizeof out,
                 "%s/tmem bench redis check --port %d --keys 24 --size 2097152",
                 build(), r.port),
              0);
    redis_stop(&r);
    ASSERT_EQ(th_stop(&d), 0);
}

/* ---- system calls, python ---------------------------------------------- */

static void syscall_case(const char *opts, const th_daemon *d)
{
    char dir[64], out[4096];
    tl_tmpdir(dir, sizeof dir, "tmem-run-");
    int st =
        sh(out, sizeof out,
           "%s/tmem %s%s run %s -- %s/tests/progs/"
           "syscall_buffers %s 2>&1",
           build(), d ? "--socket " : "", d ? d->sock : "", opts, build(), dir);
    if (st)
        fprintf(stderr, "%s", out);
    ASSERT_EQ(st, 0);
    ASSERT_TRUE(strstr(out, "syscall_buffers: ok") != NULL);
    rmdir(dir);
}

TEST(run_syscall_buffers_daemon)
{
    th_daemon d;
    th_start(&d, NULL);
    syscall_case("--budget 2M", &d);
    ASSERT_EQ(th_stop(&d), 0);
}

TEST(run_syscall_buffers_embedded)
{
    syscall_case("--embedded --budget 2M", NULL);
}

TEST(run_syscall_buffers_thread_faults)
{
    syscall_case("--embedded --budget 2M --faults thread", NULL);
}

/* Python builds and checks a 300 MiB structure under a quarter of it. */
TEST(run_python_structure)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        TEST_SKIP("/usr/bin/python3 is not installed");
    static const char script[] =
        "import hashlib\n"
        "N = 75000\n"
        "def page(i):\n"
        "    w = (b'tmem %d heap ' % i) * 400\n"
        "    return w[:4096]\n"
        "h = hashlib.sha256()\n"
        "data = [page(i) for i in range(N)]\n"
        "index = {i: (i * i, str(i)) for i in range(N)}\n"
        "for b in data: h.update(b)\n"
        "first = h.hexdigest()\n"
        "h = hashlib.sha256()\n"
        "for i in range(N):\n"
        "    assert data[i] == page(i), i\n"
        "    assert index[i] == (i * i, str(i)), i\n"
        "    h.update(data[i])\n"
        "assert h.hexdigest() == first\n"
        "print('python ok', first[:16])\n";
    char path[] = "/tmp/tmem-run-py-XXXXXX", out[4096];
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, script, sizeof script - 1), (ssize_t)sizeof script - 1);
    close(fd);
    th_daemon d;
    th_start(&d, (const char *const[]){"--budget", "2G", NULL});
    int st = sh(out, sizeof out,
                "%s/tmem --socket %s run --budget 80M -- /usr/bin/python3 %s "
                "2>&1",
                build(), d.sock, path);
    fprintf(stderr, "  %s", out);
    ASSERT_EQ(st, 0);
    ASSERT_TRUE(strstr(out, "python ok") != NULL);
    unlink(path);
    ASSERT_EQ(th_stop(&d), 0);
}

/* ---- what a user meets first ----------------------------------------------
 */

TEST(run_errors_in_words)
{
    char out[4096];
    ASSERT_EQ(sh(out, sizeof out, "%s/tmem run 2>&1", build()), 2);
    ASSERT_TRUE(strstr(out, "no command given") != NULL);
    ASSERT_EQ(
        sh(out, sizeof out, "%s/tmem run --budget 12 -- true 2>&1", build()),
        2);
    ASSERT_TRUE(strstr(out, "--budget") != NULL);
    ASSERT_EQ(sh(out, sizeof out,
                 "%s/tmem run --budget 1G --selfballoon -- true 2>&1", build()),
              2);
    ASSERT_EQ(
        sh(out, sizeof out, "%s/tmem run --faults fast true 2>&1", build()), 2);
    ASSERT_EQ(sh(out, sizeof out, "%s/tmem run --pack-level 13 true 2>&1",
                 build()),
              2);
    ASSERT_TRUE(strstr(out, "--pack-level") != NULL);
    ASSERT_EQ(
        sh(out, sizeof out, "%s/tmem run no-such-program-x 2>&1", build()), 1);
    ASSERT_TRUE(strstr(out, "command not found") != NULL);
    ASSERT_EQ(sh(out, sizeof out, "%s/tmem run --help", build()), 0);
    ASSERT_TRUE(strstr(out, "--selfballoon") != NULL);
    /* a static program */
    char dir[] = "/tmp/tmem-run-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    if (sh(NULL, 0,
           "printf 'int main(void){return 0;}' > %s/s.c && "
           "cc -static -o %s/s %s/s.c 2>/dev/null",
           dir, dir, dir) == 0) {
        ASSERT_EQ(sh(out, sizeof out, "%s/tmem run %s/s 2>&1", build(), dir),
                  1);
        ASSERT_TRUE(strstr(out, "statically linked") != NULL);
    }
    /* no userfaultfd for this user: what it needs, in words */
    char rel[PATH_MAX], tmem[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/tmem", build());
    if (geteuid() == 0 && realpath(rel, tmem)) {
        ASSERT_EQ(sh(out, sizeof out,
                     "cd / && setpriv --reuid=65534 --regid=65534 "
                     "--clear-groups %s run true 2>&1",
                     tmem),
                  1);
        ASSERT_TRUE(strstr(out, "vm.unprivileged_userfaultfd") != NULL);
    }
    sh(NULL, 0, "rm -rf %s", dir);
}
