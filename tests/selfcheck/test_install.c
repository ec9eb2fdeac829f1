/*
 * The first hour of a new user: every command and subcommand answers
 * --help on stdout with exit 0 (and `tmem help CMD` the same), both
 * programs say their version, `make install` puts everything where it
 * belongs under PREFIX (a C program builds against it with pkg-config and
 * runs, the systemd unit passes systemd-analyze verify), and `make
 * uninstall` takes it all away.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"

static const char *build(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

/* The sanitizer the build was made with ("-fsanitize=..." from
 * BUILD/.flags, or ""): a program linked with its library needs it too. */
static const char *san_flag(void)
{
    static char flag[128];
    char path[300], text[4096];
    snprintf(path, sizeof path, "%s/.flags", build());
    FILE *f = fopen(path, "r");
    size_t k = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[k] = 0;
    if (f)
        fclose(f);
    const char *p = strstr(text, "-fsanitize=");
    flag[0] = 0;
    if (p)
        snprintf(flag, sizeof flag, "%.*s", (int)strcspn(p, " \n'\""), p);
    return flag;
}

/* Runs a shell command; its stdout into out (n bytes), stderr into err
 * (n bytes, when not NULL).  Returns the exit status. */
static int run(char *out, char *err, size_t n, const char *fmt, ...)
{
    char cmd[4096], full[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char ef[] = "/tmp/tmem-err-XXXXXX";
    int efd = mkstemp(ef);
    ASSERT_GE(efd, 0);
    close(efd);
    snprintf(full, sizeof full, "(%s) 2>%s", cmd, ef);
    FILE *p = popen(full, "r");
    ASSERT_TRUE(p != NULL);
    size_t k = fread(out, 1, n - 1, p);
    out[k] = 0;
    int st = pclose(p);
    if (err) {
        FILE *f = fopen(ef, "r");
        k = f ? fread(err, 1, n - 1, f) : 0;
        err[k] = 0;
        if (f)
            fclose(f);
    }
    unlink(ef);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *const helped[] = {
    "list", "set", "freeze", "thaw", "flush", "freeable", "auth",
    "destroy", "stats", "save", "restore", "bench", "bench store",
    "bench daemon", "bench redis", "bench fairness", "balloon",
    "balloon simulate", "balloon run", "balloon get", "balloon set",
    "balloon list", "run", "fs", "demo",
};

TEST(cli_help_on_every_command)
{
    char out[8192], err[8192];
    for (size_t i = 0; i < sizeof helped / sizeof *helped; i++) {
        /* no daemon on this socket: help must not need one */
        int rc = run(out, err, sizeof out, "%s/tmem --socket /nonexistent %s "
                     "--help", build(), helped[i]);
        if (rc != 0 || strncmp(out, "usage: ", 7) != 0 || err[0])
            fprintf(stderr, "  tmem %s --help: exit %d, stdout '%.80s', "
                    "stderr '%.80s'\n", helped[i], rc, out, err);
        ASSERT_EQ(rc, 0);
        ASSERT_EQ(strncmp(out, "usage: ", 7), 0);
        ASSERT_EQ(err[0], 0);
        ASSERT_TRUE(strstr(out, strchr(helped[i], ' ') ? strchr(helped[i], ' ') + 1
                                                       : helped[i]) != NULL);
        char out2[8192];
        ASSERT_EQ(run(out2, NULL, sizeof out2, "%s/tmem help %s", build(),
                      helped[i]),
                  0);
        ASSERT_EQ(strcmp(out, out2), 0);
    }
    ASSERT_EQ(run(out, NULL, sizeof out, "%s/tmem help", build()), 0);
    ASSERT_TRUE(strstr(out, "commands:") != NULL);
    /* every command `tmem help` lists is among those checked above */
    for (char *l = strstr(out, "commands:"); l && (l = strchr(l, '\n'));) {
        char name[32] = "";
        size_t k;
        l++;
        if (sscanf(l, " %31s", name) != 1)
            break;
        for (k = 0; k < sizeof helped / sizeof *helped; k++)
            if (!strcmp(helped[k], name))
                break;
        if (k == sizeof helped / sizeof *helped)
            fprintf(stderr, "  tmem help lists '%s', not checked here\n", name);
        ASSERT_TRUE(k < sizeof helped / sizeof *helped);
    }
    ASSERT_EQ(run(out, NULL, sizeof out, "%s/tmem -h", build()), 0);
    ASSERT_EQ(run(out, NULL, sizeof out, "%s/tmemd --help", build()), 0);
    ASSERT_EQ(strncmp(out, "usage: tmemd", 12), 0);
    /* the errors a new user met */
    ASSERT_EQ(run(out, err, sizeof out, "%s/tmem --socket", build()), 2);
    ASSERT_TRUE(strstr(err, "--socket needs a PATH") != NULL);
    ASSERT_EQ(run(out, err, sizeof out, "%s/tmem --socket= list", build()), 2);
    ASSERT_EQ(run(out, err, sizeof out, "%s/tmem help nosuch", build()), 2);
    ASSERT_TRUE(strstr(err, "unknown command 'nosuch'") != NULL);
    ASSERT_EQ(run(out, err, sizeof out, "%s/tmem balloon run", build()), 2);
    ASSERT_TRUE(strstr(err, "give one of --cgroup PATH and --xen") != NULL);
    /* a corpus that is not one: what is wrong with it, in words */
    char bad[] = "/tmp/tmem-corpus-XXXXXX";
    int fd = mkstemp(bad);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "abc", 3), 3);
    close(fd);
    static const char *const bench[] = {"store", "daemon", "fairness"};
    for (size_t i = 0; i < 3; i++) {
        ASSERT_EQ(run(out, err, sizeof out, "%s/tmem --socket /nonexistent "
                      "bench %s --corpus %s", build(), bench[i], bad),
                  1);
        ASSERT_TRUE(strstr(err, "its 3 bytes are not a multiple of 4096") !=
                    NULL);
    }
    ASSERT_EQ(truncate(bad, 0), 0);
    ASSERT_EQ(run(out, err, sizeof out, "%s/tmem bench store --corpus %s",
                  build(), bad),
              1);
    ASSERT_TRUE(strstr(err, "empty: no pages in it") != NULL);
    unlink(bad);
}

/* The README's balloon simulate line runs on the trace it names. */
TEST(readme_trace_example_simulates)
{
    char out[16384], err[4096];
    ASSERT_EQ(run(out, err, sizeof out, "%s/tmem balloon simulate --trace "
                  "docs/trace-example.csv --set selfballoon_downhysteresis=4",
                  build()),
              0);
    ASSERT_EQ(strncmp(out, "step,goal,floor,target,frontswap_target\n", 40),
              0);
    ASSERT_TRUE(strstr(out, "\n60,") != NULL); /* a line per interval */
    ASSERT_EQ(err[0], 0);
}

TEST(cli_version)
{
    char want[64] = "", out[256];
    FILE *f = fopen("VERSION", "r");
    ASSERT_TRUE(f != NULL);
    ASSERT_TRUE(fgets(want, sizeof want, f) != NULL);
    fclose(f);
    want[strcspn(want, "\n")] = 0;
    ASSERT_GT(strlen(want), 0);
    char line[128];
    ASSERT_EQ(run(out, NULL, sizeof out, "%s/tmem --version", build()), 0);
    snprintf(line, sizeof line, "tmem %s\n", want);
    ASSERT_STR_EQ(out, line);
    ASSERT_EQ(run(out, NULL, sizeof out, "%s/tmemd --version", build()), 0);
    snprintf(line, sizeof line, "tmemd %s\n", want);
    ASSERT_STR_EQ(out, line);
}

/* What a program written against the installed headers does: connect
 * (no daemon: the embedded store), a persistent pool, a page round trip. */
static const char example[] =
    "#include <string.h>\n"
    "#include <tmem/client.h>\n"
    "int main(void) {\n"
    "    tmem_conn *c;\n"
    "    if (tmem_connect(\"/nonexistent/sock\", &c) != 0) return 1;\n"
    "    int p = tmem_conn_pool_new(c, NULL,\n"
    "                               TMEM_POOL_FLAGS(TMEM_POOL_PERSIST), NULL);\n"
    "    char a[TMEM_PAGE_SIZE], b[TMEM_PAGE_SIZE];\n"
    "    memset(a, 7, sizeof a);\n"
    "    tmem_oid o = {{1, 2, 3}};\n"
    "    if (p < 0 || tmem_conn_put(c, p, &o, 0, a) != 1) return 2;\n"
    "    if (tmem_conn_get(c, p, &o, 0, b) != 1) return 3;\n"
    "    tmem_disconnect(c);\n"
    "    return memcmp(a, b, sizeof a) ? 4 : 0;\n"
    "}\n";

TEST(install_under_prefix_and_uninstall)
{
    char dir[] = "/tmp/tmem-install-XXXXXX", out[8192], err[8192];
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    int rc = run(out, err, sizeof out,
                 "make --no-print-directory BUILD=%s PREFIX=%s/usr install",
                 build(), dir);
    if (rc)
        fprintf(stderr, "%s%s", out, err);
    ASSERT_EQ(rc, 0);
    static const char *const files[] = {
        "usr/bin/tmem", "usr/sbin/tmemd", "usr/lib/libtmem.a",
        "usr/lib/libtmem.so", "usr/lib/tmem/libtmem_run.so",
        "usr/lib/pkgconfig/tmem.pc", "usr/include/tmem/client.h",
        "usr/include/tmem/store.h", "usr/include/tmem/abi.h",
        "usr/include/tmem/errors.h", "usr/share/man/man1/tmem.1",
        "usr/share/man/man8/tmemd.8", "usr/lib/systemd/system/tmemd.service",
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[700];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (stat(path, &st) != 0)
            fprintf(stderr, "  missing: %s\n", path);
        ASSERT_EQ(stat(path, &st), 0);
    }
    /* the installed tmem finds its preload library (PREFIX/lib/tmem) */
    ASSERT_EQ(run(out, err, sizeof out, "%s/usr/bin/tmem run --embedded "
                  "--budget 8M -- true", dir),
              0);
    /* a program built with pkg-config against the install, and run */
    char src[700];
    snprintf(src, sizeof src, "%s/example.c", dir);
    FILE *f = fopen(src, "w");
    ASSERT_TRUE(f != NULL);
    fputs(example, f);
    fclose(f);
    rc = run(out, err, sizeof out,
             "export PKG_CONFIG_PATH=%s/usr/lib/pkgconfig; "
             "cc -std=c11 -Wall -Wextra -Werror %s -o %s/example %s "
             "$(pkg-config --cflags --libs tmem) && "
             "LD_LIBRARY_PATH=%s/usr/lib %s/example",
             dir, san_flag(), dir, src, dir, dir);
    if (rc)
        fprintf(stderr, "%s%s", out, err);
    ASSERT_EQ(rc, 0);
    /* the unit, with its ExecStart written for this PREFIX */
    char unit[700];
    snprintf(unit, sizeof unit, "%s/usr/lib/systemd/system/tmemd.service",
             dir);
    ASSERT_EQ(run(out, NULL, sizeof out, "grep -c '^ExecStart=%s/usr/sbin/"
                  "tmemd ' %s", dir, unit),
              0);
    if (system("command -v systemd-analyze >/dev/null 2>&1") == 0) {
        /* its man pages are under PREFIX, not where man looks */
        rc = run(out, err, sizeof out, "systemd-analyze verify --man=no %s",
                 unit);
        if (rc)
            fprintf(stderr, "%s%s", out, err);
        ASSERT_EQ(rc, 0);
    } else {
        fprintf(stderr, "  systemd-analyze absent: the unit not verified\n");
    }
    ASSERT_EQ(run(out, err, sizeof out,
                  "make --no-print-directory BUILD=%s PREFIX=%s/usr uninstall",
                  build(), dir),
              0);
    ASSERT_EQ(run(out, NULL, sizeof out, "find %s/usr -type f | wc -l", dir),
              0);
    ASSERT_STR_EQ(out, "0\n");
    snprintf(src, sizeof src, "rm -rf %s", dir);
    ASSERT_EQ(system(src), 0);
}

/* The README's C example (its first ```c block) compiles as written,
 * with -Wall -Wextra -Werror, against the tree's library, and runs. */
TEST(readme_c_example_builds_and_runs)
{
    FILE *f = fopen("README.md", "r");
    ASSERT_TRUE(f != NULL);
    char dir[] = "/tmp/tmem-readme-XXXXXX", src[600], line[512];
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(src, sizeof src, "%s/example.c", dir);
    FILE *o = fopen(src, "w");
    ASSERT_TRUE(o != NULL);
    int in = 0, lines = 0;
    while (fgets(line, sizeof line, f) && in >= 0) {
        if (!in && !strcmp(line, "```c\n"))
            in = 1;
        else if (in && !strcmp(line, "```\n"))
            in = -1;
        else if (in == 1) {
            fputs(line, o);
            lines++;
        }
    }
    fclose(f);
    fclose(o);
    ASSERT_GT(lines, 10);
    char out[4096], err[4096];
    int rc = run(out, err, sizeof out,
                 "cc -std=c11 -Wall -Wextra -Werror %s -Iinclude -o "
                 "%s/example %s %s/libtmem.a -llz4 -lzstd -lxxhash "
                 "-lmicrohttpd -luring -lpthread -lm && %s/example",
                 san_flag(), dir, src, build(), dir);
    if (rc)
        fprintf(stderr, "%s%s", out, err);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(out, "put 1, get 1, same 1\n");
    snprintf(src, sizeof src, "rm -rf %s", dir);
    ASSERT_EQ(system(src), 0);
}

/* Every relative link of README.md and of the docs' .md files names a
 * file of the tree (http links and #anchors aside). */
TEST(doc_links_resolve)
{
    char out[65536];
    /* "FILE<TAB>TARGET" for every ](TARGET) of the markdown files */
    ASSERT_EQ(run(out, NULL, sizeof out,
                  "for f in README.md docs/*.md; do "
                  "grep -o '](\\([^)#]*\\)' \"$f\" | sed 's/^](//' | "
                  "while read -r t; do printf '%%s\\t%%s\\n' \"$f\" \"$t\"; "
                  "done; done"),
              0);
    int checked = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        if (!tab || !tab[1] || strstr(tab + 1, "://") ||
            !strncmp(tab + 1, "mailto:", 7))
            continue;
        *tab = 0;
        char dir[512], path[1200];
        snprintf(dir, sizeof dir, "%s", line);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            strcpy(dir, ".");
        snprintf(path, sizeof path, "%s/%s", dir, tab + 1);
        if (access(path, F_OK) != 0)
            fprintf(stderr, "  %s: link to %s does not resolve\n", line,
                    tab + 1);
        ASSERT_EQ(access(path, F_OK), 0);
        checked++;
    }
    ASSERT_GT(checked, 10);
}
