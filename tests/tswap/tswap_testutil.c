/*
 * tswap suite helpers (tswap_testutil.h).  The daemon is started here
 * (fork + exec of BUILD/tmemd, dying with the test through
 * PR_SET_PDEATHSIG) rather than with the daemon suite's harness: a suite
 * is the C files of its own directory.
 *
 * ASan: tswap's SIGBUS handler must be the one the kernel calls, and the
 * program's handler behind it is ASan's; allow_user_segv_handler lets a
 * program install its own (ASan's defaults already keep handle_sigbus).
 */
#include "tswap_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allow_user_segv_handler=1";
}

static const char *build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

tmem_conn *ts_embedded(void)
{
    tmem_conn *c = NULL;
    setenv("TMEM_EMBEDDED", "1", 1);
    ASSERT_EQ(tmem_connect(NULL, &c), 0);
    ASSERT_TRUE(tmem_conn_is_embedded(c));
    return c;
}

static bool can_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

void ts_daemon_start(ts_daemon *d, const char *budget)
{
    char prog[256];
    snprintf(prog, sizeof prog, "%s/tmemd", build_dir());
    if (access(prog, X_OK) != 0) /* a build of the suite alone */
        snprintf(prog, sizeof prog, "build/tmemd");
    snprintf(d->dir, sizeof d->dir, "/tmp/tswap-test-XXXXXX");
    ASSERT_TRUE(mkdtemp(d->dir) != NULL);
    chmod(d->dir, 0755);
    snprintf(d->sock, sizeof d->sock, "%s/sock", d->dir);
    snprintf(d->log, sizeof d->log, "%s/log", d->dir);
    fflush(stdout);
    d->pid = fork();
    ASSERT_TRUE(d->pid >= 0);
    if (d->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 2);
        execl(prog, prog, "--socket", d->sock, "--foreground", "--budget",
              budget, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (can_connect(d->sock))
            return;
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid)
            break;
        usleep(10000);
    }
    tmem_test_fail(__FILE__, __LINE__, "tmemd did not start (log %s)", d->log);
}

void ts_daemon_stop(ts_daemon *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
    unlink(d->log);
    unlink(d->sock);
    rmdir(d->dir);
}

tmem_conn *ts_daemon_conn(const ts_daemon *d)
{
    tmem_conn *c = NULL;
    setenv("TMEM_EMBEDDED", "0", 1);
    ASSERT_EQ(tmem_connect(d->sock, &c), 0);
    ASSERT_TRUE(!tmem_conn_is_embedded(c));
    return c;
}

void ts_on_daemon(const char *budget, void (*fn)(tmem_conn *c))
{
    ts_daemon d;
    ts_daemon_start(&d, budget);
    tmem_conn *c = ts_daemon_conn(&d);
    fn(c);
    tmem_disconnect(c);
    ts_daemon_stop(&d);
}

/* BUILD/tmem, or build/tmem when the suite was built alone. */
static const char *cli_prog(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/tmem", build_dir());
    if (access(buf, X_OK) != 0)
        snprintf(buf, cap, "build/tmem");
    return buf;
}

int ts_cli(const ts_daemon *d, const char *args)
{
    char cmd[512], prog[256];
    snprintf(cmd, sizeof cmd, "%s --socket %s %s >/dev/null 2>&1",
             cli_prog(prog, sizeof prog), d->sock, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

long long ts_daemon_pers_pages(const ts_daemon *d)
{
    char cmd[512], buf[65536], prog[256];
    snprintf(cmd, sizeof cmd, "%s --socket %s list --json",
             cli_prog(prog, sizeof prog), d->sock);
    FILE *f = popen(cmd, "r");
    ASSERT_TRUE(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    pclose(f);
    const char *p = strstr(buf, "\"pers_pages\":");
    ASSERT_TRUE(p != NULL);
    return atoll(p + strlen("\"pers_pages\":"));
}

tmem_tswap_config ts_config(uint64_t target, bool events)
{
    tmem_tswap_config c;
    tmem_tswap_config_init(&c);
    c.target_pages = target;
    c.events = events;
    return c;
}

tmem_tswap *ts_create(tmem_conn *c, const tmem_tswap_config *cfg)
{
    tmem_tswap *t = NULL;
    int rc = tmem_tswap_create(c, cfg, &t);
    if (rc == -ENOSYS) {
        static char why[300];
        snprintf(why, sizeof why, "userfaultfd unavailable: %s",
                 tmem_tswap_why(NULL));
        TEST_SKIP(why);
    }
    if (rc < 0)
        tmem_test_fail(__FILE__, __LINE__, "tmem_tswap_create: %d (%s)", rc,
                       tmem_tswap_why(NULL));
    return t;
}

void ts_fill(void *page, uint32_t seed, uint64_t idx)
{
    uint64_t *w = page;
    uint64_t x = (uint64_t)seed * 0x9e3779b97f4a7c15ull + idx * 0x632be5ab;
    for (size_t i = 0; i < PG / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[i] = x | 1;
    }
}

bool ts_check(const void *page, uint32_t seed, uint64_t idx)
{
    uint64_t want[PG / 8];
    ts_fill(want, seed, idx);
    return memcmp(page, want, PG) == 0;
}

void ts_fill_n(void *base, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        ts_fill((char *)base + i * PG, seed, i);
}

long ts_check_n(const void *base, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        if (!ts_check((const char *)base + i * PG, seed, i))
            return (long)i;
    return -1;
}

void ts_evict_to(tmem_tswap *t, uint64_t target)
{
    /* Down to the evictor's own goal (1/64 under the target), so that
     * its thread has nothing left to start after the last pass here. */
    uint64_t goal = target - target / 64;
    ASSERT_EQ(tmem_tswap_set_target(t, target), 0);
    for (int i = 0; i < 50; i++) {
        ASSERT_GE(tmem_tswap_reclaim(t), 0);
        if (ts_stats(t).resident <= goal)
            break;
    }
    /* Once more: a pass takes the lock, so a batch the evictor thread had
     * under way is finished when this returns. */
    ASSERT_GE(tmem_tswap_reclaim(t), 0);
}

tmem_tswap_stats ts_stats(tmem_tswap *t)
{
    tmem_tswap_stats s;
    tmem_tswap_stats_get(t, &s);
    return s;
}
