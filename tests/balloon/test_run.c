/*
 * `tmem balloon run` end to end over a prepared (fake) v1 cgroup tree:
 * one JSON line per tick with every field, the control socket's get, set
 * and list, refusals (-EINVAL exits 2, a non-admin set is EPERM), turning
 * a function on while the worker idles starts it, SIGTERM removes the
 * socket and restores the limit; and the root-cgroup refusal of the CLI.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runner.h"
#include "test_files.h"
#include "balloon/runner.h"

struct fake {
    char tmp[64], ten[160], sock[128], log[128], bin[256];
    pid_t pid;
};

static void fake_make(struct fake *f)
{
    const char *b = getenv("BUILD");
    char parent[128];

    snprintf(f->bin, sizeof f->bin, "%s/tmem", b ? b : "build");
    if (access(f->bin, X_OK) != 0)
        TEST_SKIP("no tmem binary (BUILD)");
    strcpy(f->tmp, "/tmp/tmem-runfake-XXXXXX");
    ASSERT_TRUE(mkdtemp(f->tmp) != NULL);
    chmod(f->tmp, 0755);
    snprintf(parent, sizeof parent, "%s/p", f->tmp);
    ASSERT_EQ(mkdir(parent, 0755), 0);
    tf_put(parent, "cgroup.procs", "");
    snprintf(f->ten, sizeof f->ten, "%s/ten", parent);
    ASSERT_EQ(mkdir(f->ten, 0755), 0);
    tf_put(f->ten, "cgroup.procs", "1\n");
    tf_put(f->ten, "memory.limit_in_bytes", "9223372036854771712\n");
    tf_put(f->ten, "memory.usage_in_bytes", "1073741824\n"); /* 1 GiB */
    tf_put(f->ten, "memory.stat", "total_rss 268435456\ntotal_swap 0\n");
    snprintf(f->sock, sizeof f->sock, "%s/ctl.sock", f->tmp);
    snprintf(f->log, sizeof f->log, "%s/log", f->tmp);
}

static void fake_run(struct fake *f, const char *const *extra)
{
    char *args[32] = {f->bin, "balloon", "run", "--cgroup", f->ten,
                      "--control", f->sock, "--json", "--no-psi"};
    int n = 9;

    for (; extra && *extra; extra++)
        args[n++] = (char *)*extra;
    f->pid = fork();
    ASSERT_GE(f->pid, 0);
    if (f->pid == 0) {
        int fd = open(f->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(f->bin, args);
        _exit(127);
    }
    for (int i = 0; i < 100 && access(f->sock, F_OK) != 0; i++)
        usleep(20000);
    ASSERT_EQ(access(f->sock, F_OK), 0);
}

/* Runs tmem with args (as uid when >= 0); output into out.  Returns the
 * exit status. */
static int cli(struct fake *f, int uid, char *out, size_t cap,
               const char *const *args)
{
    char *argv[16] = {f->bin};
    char path[160];
    int n = 1, st = 0, fd;
    pid_t pid;

    for (; *args; args++)
        argv[n++] = (char *)*args;
    snprintf(path, sizeof path, "%s/cli.out", f->tmp);
    pid = fork();
    if (pid == 0) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        dup2(fd, 1);
        dup2(fd, 2);
        if (uid >= 0 && (setgid((gid_t)uid) < 0 || setuid((uid_t)uid) < 0))
            _exit(126);
        execv(f->bin, argv);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    fd = open(path, O_RDONLY);
    n = fd >= 0 ? (int)read(fd, out, cap - 1) : 0;
    out[n > 0 ? n : 0] = '\0';
    if (fd >= 0)
        close(fd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines_with(const char *path, const char *needle)
{
    char line[1024];
    int n = 0;
    FILE *fp = fopen(path, "r");

    while (fp && fgets(line, sizeof line, fp))
        n += strstr(line, needle) != NULL;
    if (fp)
        fclose(fp);
    return n;
}

static void fake_stop(struct fake *f)
{
    int st = 0;
    char cmd[320];

    ASSERT_EQ(kill(f->pid, SIGTERM), 0);
    ASSERT_EQ(waitpid(f->pid, &st, 0), f->pid);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT_TRUE(access(f->sock, F_OK) != 0);
    snprintf(cmd, sizeof cmd, "grep -qx 9223372036854771712 %s/"
                              "memory.limit_in_bytes", f->ten);
    ASSERT_EQ(system(cmd), 0); /* the limit at start, restored */
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->tmp);
    ASSERT_EQ(system(cmd), 0);
}

TEST(run_json_ticks_and_control_socket)
{
    struct fake f;
    char out[2048];
    const char *extra[] = {"--interval", "1", "--set", "selfballooning=1",
                           NULL};

    fake_make(&f);
    fake_run(&f, extra);
    usleep(1300000);
    ASSERT_GE(count_lines_with(f.log, "\"event\":\"tick\""), 2);
    ASSERT_GE(count_lines_with(f.log, "\"cur\":262144,\"committed\":65536,"
                                      "\"frontswap\":0,\"goal\":"), 1);
    ASSERT_GE(count_lines_with(f.log, "\"reason\":\"hysteresis\""), 1);
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "get", "selfballoon_interval",
                                   "--control", f.sock, NULL}), 0);
    ASSERT_STR_EQ(out, "1\n");
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "list", "--control", f.sock,
                                   NULL}), 0);
    ASSERT_TRUE(strstr(out, "selfballoon_downhysteresis 8\n") != NULL);
    ASSERT_TRUE(strstr(out, "frontswap_inertia 3\n") != NULL);
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "set", "selfballoon_interval",
                                   "0", "--control", f.sock, NULL}), 2);
    ASSERT_TRUE(strstr(out, "Invalid argument") != NULL);
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "set",
                                   "selfballoon_downhysteresis", "2",
                                   "--control", f.sock, NULL}), 0);
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "get",
                                   "selfballoon_downhysteresis", "--control",
                                   f.sock, NULL}), 0);
    ASSERT_STR_EQ(out, "2\n");
    /* non-admin: get works, set is refused */
    ASSERT_EQ(cli(&f, 65534, out, sizeof out,
                  (const char *[]){"balloon", "get", "selfballoon_interval",
                                   "--control", f.sock, NULL}), 0);
    ASSERT_STR_EQ(out, "1\n");
    ASSERT_EQ(cli(&f, 65534, out, sizeof out,
                  (const char *[]){"balloon", "set", "selfballoon_interval",
                                   "3", "--control", f.sock, NULL}), 1);
    ASSERT_TRUE(strstr(out, "Operation not permitted") != NULL);
    fake_stop(&f);
}

TEST(run_idle_worker_started_by_set)
{
    struct fake f;
    char out[256];
    const char *extra[] = {"--set", "selfballooning=0", "--set",
                           "frontswap_selfshrinking=0", NULL};

    fake_make(&f);
    fake_run(&f, extra);
    usleep(600000);
    ASSERT_EQ(count_lines_with(f.log, "\"event\":\"tick\""), 0); /* idle */
    /* and it says so, and how to change it */
    ASSERT_EQ(count_lines_with(f.log, "idle: self-ballooning and frontswap "
                                      "self-shrinking are off"),
              1);
    ASSERT_EQ(count_lines_with(f.log, "--set selfballooning=1"), 1);
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "set", "selfballooning", "1",
                                   "--control", f.sock, NULL}), 0);
    ASSERT_STR_EQ(out, "started\n");
    usleep(300000); /* at once, not after the 5 s interval */
    ASSERT_EQ(count_lines_with(f.log, "started"), 1);
    fake_stop(&f);
}

TEST(run_refuses_root_cgroup_and_bad_set)
{
    struct fake f;
    char out[512], root[160];

    fake_make(&f);
    snprintf(root, sizeof root, "%s/p", f.tmp);
    tf_put(root, "memory.limit_in_bytes", "9223372036854771712\n");
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "run", "--cgroup", root, NULL}),
              1);
    ASSERT_TRUE(strstr(out, "root cgroup") != NULL);
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "run", "--cgroup", f.ten,
                                   "--set", "selfballoon_interval=0", NULL}),
              2);
    ASSERT_TRUE(strstr(out, "selfballoon_interval: bad value '0' (allowed: "
                            "a whole number, 1..2147483647)") != NULL);
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "run", "--cgroup", f.ten,
                                   "--set", "selfballooning=2", NULL}),
              2);
    ASSERT_TRUE(strstr(out, "(allowed: 0 or 1)") != NULL);
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "run", "--cgroup", f.ten,
                                   "--set", "nosuch=1", NULL}),
              2);
    ASSERT_TRUE(strstr(out, "unknown tunable 'nosuch' (tunables: "
                            "selfballooning ") != NULL);
    ASSERT_EQ(cli(&f, -1, out, sizeof out,
                  (const char *[]){"balloon", "run", NULL}), 2);
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f.tmp);
    ASSERT_EQ(system(cmd), 0);
}

/* The library client against a missing socket. */
TEST(run_control_client_no_runner)
{
    char out[64];

    ASSERT_EQ(tmem_balloon_control("/tmp/tmem-no-such-runner.sock", "list",
                                   out, sizeof out), -ENOENT);
}
