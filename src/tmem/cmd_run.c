/*
 * tmem run: runs an unmodified program as a tmem tenant.  Its heap goes to
 * tswap memory (docs/tswap.md) through the preload library
 * libtmem_run.so; this command checks what would make that fail (no
 * program, a static one, no userfaultfd) and says so in words, then sets
 * the environment the library reads and executes the program.
 *
 * Exit status: the program's own once it runs; 1 when it cannot be run
 * (with the reason), 2 for a usage error.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <tmem/errors.h>

#include "cmds.h"
#include "common/pack.h"
#include "common/size.h"
#include "opt_table.h"
#include "proto/conn.h"

/* LZ4HC level 3: ~14 % fewer stored bytes than LZ4's fast compressor on
 * the corpus for ~5x its compression time; page-in is unchanged
 * (docs/tswap.md, "Compression effort"). */
#define RUN_PACK_LEVEL "3"

struct run_opts {
    const char *budget, *name, *faults, *readahead, *pack_level;
    int selfballoon, embedded;
    const char *socket;
};

static int set_budget(void *o, const char *v)
{
    uint64_t b;
    ((struct run_opts *)o)->budget = v;
    return tmem__parse_size(v, &b) < 0 || b < 4096 ? -1 : 0;
}

static int set_selfballoon(void *o, const char *v)
{
    (void)v;
    ((struct run_opts *)o)->selfballoon = 1;
    return 0;
}

static int set_socket(void *o, const char *v)
{
    ((struct run_opts *)o)->socket = v;
    return 0;
}

static int set_name(void *o, const char *v)
{
    ((struct run_opts *)o)->name = v;
    return tmem__name_valid(v, TMEM_NAME_MAX) ? 0 : -1;
}

static int set_embedded(void *o, const char *v)
{
    (void)v;
    ((struct run_opts *)o)->embedded = 1;
    return 0;
}

static int set_faults(void *o, const char *v)
{
    ((struct run_opts *)o)->faults = v;
    return strcmp(v, "sigbus") && strcmp(v, "thread") ? -1 : 0;
}

static int set_readahead(void *o, const char *v)
{
    int n;
    ((struct run_opts *)o)->readahead = v;
    return opt_int(v, 0, 256, &n);
}

static int set_pack_level(void *o, const char *v)
{
    int n;
    ((struct run_opts *)o)->pack_level = v;
    return tmem__pack_level_parse(v, &n);
}

static const struct opt_spec run_opts_table[] = {
    {"--budget", "SIZE (e.g. 64M, at least 4K)", set_budget,
     "resident target: pages over it go to the store"},
    {"--selfballoon", NULL, set_selfballoon,
     "the self-balloon controller sets the target"},
    {"--socket", "PATH", set_socket, "tmemd's socket"},
    {"--name", "NAME (up to 16 of letters, digits, ._-)", set_name,
     "the tenant's name in tmem list"},
    {"--embedded", NULL, set_embedded,
     "an embedded store in the program, not tmemd"},
    {"--faults", "sigbus|thread", set_faults,
     "sigbus (default: fixed in the faulting thread) or thread (slower; "
     "covers system calls no wrapper sees)"},
    {"--readahead", "PAGES (0..256)", set_readahead,
     "pages brought in after sequential faults (8)"},
    {"--pack-level", "LEVEL (0..12)", set_pack_level,
     "compression effort of pages going out through tmemd: 0 LZ4's "
     "fast compressor, 1..12 LZ4HC (3; reads are as fast)"},
};
#define NRUNOPTS (sizeof run_opts_table / sizeof run_opts_table[0])

/* Whether option a (without "=VALUE") is one that takes a value. */
static bool takes_value(const char *a)
{
    for (size_t k = 0; k < NRUNOPTS; k++)
        if (!strcmp(a, run_opts_table[k].name))
            return run_opts_table[k].arg != NULL;
    return false;
}

static void run_usage(FILE *f)
{
    fprintf(f, "usage: tmem run [OPTIONS] [--] CMD [ARGS...]\n\n"
               "Runs CMD with its heap in tswap memory: pages over the "
               "resident target live\nin the tmem store (tmemd, or an "
               "embedded store when none answers) and come\nback when "
               "touched.  Options:\n");
    opt_usage(f, run_opts_table, NRUNOPTS, 16);
}

/* The path CMD runs from (PATH searched as execvp does), or NULL. */
static char *find_cmd(const char *cmd, char *buf, size_t cap)
{
    if (strchr(cmd, '/'))
        return access(cmd, X_OK) == 0 ? strncpy(buf, cmd, cap - 1) : NULL;
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/bin:/bin"; p && *p;) {
        const char *c = strchr(p, ':');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        snprintf(buf, cap, "%.*s/%s", (int)n, n ? p : ".", cmd);
        if (access(buf, X_OK) == 0)
            return buf;
        p = c ? c + 1 : NULL;
    }
    return NULL;
}

/* 1: a dynamically linked ELF (or a script); 0: static; -errno. */
static int is_dynamic(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    Elf64_Ehdr eh;
    ssize_t n = pread(fd, &eh, sizeof eh, 0);
    int r = 1; /* scripts: their interpreter decides */
    if (n == (ssize_t)sizeof eh && !memcmp(eh.e_ident, ELFMAG, SELFMAG)) {
        r = 0;
        for (unsigned i = 0; i < eh.e_phnum && r == 0; i++) {
            Elf64_Phdr ph;
            if (pread(fd, &ph, sizeof ph,
                      (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
                (ssize_t)sizeof ph)
                break;
            r = ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC;
        }
    }
    close(fd);
    return r;
}

/* Whether this process may use userfaultfd as tswap needs it (kernel
 * faults included, and fork events); the reason when not. */
static int uffd_ok(char *why, size_t cap)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == EPERM) {
        int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        if (dev >= 0)
            fd = ioctl(dev, _IO(0xAA, 0x00), O_CLOEXEC | O_NONBLOCK);
        if (dev >= 0)
            close(dev);
    }
    if (fd >= 0) {
        close(fd);
        return 1;
    }
    char v[16] = "?";
    int s = open("/proc/sys/vm/unprivileged_userfaultfd", O_RDONLY);
    if (s >= 0) {
        ssize_t n = read(s, v, sizeof v - 1);
        v[n > 0 ? n - (v[n - 1] == '\n') : 0] = 0;
        close(s);
    }
    snprintf(why, cap,
             "userfaultfd is not available to uid %u (%s): run as root, "
             "grant CAP_SYS_PTRACE, give read-write access to "
             "/dev/userfaultfd, or set vm.unprivileged_userfaultfd=1 "
             "(it is %s)",
             (unsigned)geteuid(), strerror(errno), v);
    return 0;
}

/* libtmem_run.so: $TMEM_RUN_LIB, beside this binary, or under ../lib. */
static int find_lib(char *buf, size_t cap)
{
    const char *env = getenv("TMEM_RUN_LIB");
    if (env && *env)
        return snprintf(buf, cap, "%s", env), access(buf, R_OK) == 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    static const char *const where[] = {"/libtmem_run.so",
                                        "/../lib/tmem/libtmem_run.so"};
    for (size_t k = 0; k < 2; k++) {
        if (strlen(exe) + strlen(where[k]) >= cap)
            continue;
        strcpy(buf, exe);
        strcat(buf, where[k]);
        if (access(buf, R_OK) == 0)
            return 1;
    }
    return 0;
}

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "tmem run: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return CLI_FAIL;
}

/* Puts the settings in the environment the preload library reads. */
static int set_env(const struct tmem_cli *cli, const struct run_opts *o,
                   const char *lib)
{
    char pre[PATH_MAX * 2];
    const char *old = getenv("LD_PRELOAD");
    snprintf(pre, sizeof pre, "%s%s%s", lib, old && *old ? " " : "",
             old ? old : "");
    uint64_t b = 0;
    if (o->budget && tmem__parse_size(o->budget, &b) < 0)
        return -1;
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)b);
    /* the default effort unless the option, or the caller's environment,
     * says otherwise */
    const char *level = o->pack_level ? o->pack_level : RUN_PACK_LEVEL;
    return setenv("LD_PRELOAD", pre, 1) ||
           setenv("TMEM_PACK_LEVEL", level, o->pack_level != NULL) ||
           (o->budget && setenv("TMEM_RUN_BUDGET", num, 1)) ||
           (o->selfballoon && setenv("TMEM_RUN_SELFBALLOON", "1", 1)) ||
           (o->name && setenv("TMEM_NAME", o->name, 1)) ||
           (cli->socket && setenv("TMEM_SOCKET", cli->socket, 1)) ||
           (o->embedded && setenv("TMEM_EMBEDDED", "1", 1)) ||
           (o->faults && setenv("TMEM_RUN_FAULTS", o->faults, 1)) ||
           (o->readahead && setenv("TMEM_RUN_READAHEAD", o->readahead, 1))
               ? -1
               : 0;
}

int cmd_run(struct tmem_cli *cli, int argc, char **argv)
{
    struct run_opts o = {0};
    int i = 1; /* the options end at "--" or at the first non-option */
    while (i < argc && !strncmp(argv[i], "--", 2) && argv[i][2]) {
        if (!strcmp(argv[i], "--help")) {
            run_usage(stdout);
            return CLI_OK;
        }
        i += 1 + (!strchr(argv[i], '=') && takes_value(argv[i]));
    }
    if (i > argc)
        i = argc;
    if (opt_parse("tmem run", run_opts_table, NRUNOPTS, &o, i, argv))
        return CLI_USAGE;
    if (i < argc && !strcmp(argv[i], "--"))
        i++;
    if (i >= argc) {
        fprintf(stderr, "tmem run: no command given\n");
        run_usage(stderr);
        return CLI_USAGE;
    }
    if (o.budget && o.selfballoon) {
        fprintf(stderr, "tmem run: --budget and --selfballoon: one or the "
                        "other (the controller sets the target)\n");
        return CLI_USAGE;
    }
    if (o.socket)
        cli->socket = o.socket;
    char path[PATH_MAX], lib[PATH_MAX], why[512];
    if (!find_cmd(argv[i], path, sizeof path))
        return fail("%s: %s", argv[i], "command not found");
    int dyn = is_dynamic(path);
    if (dyn < 0)
        return fail("%s: %s", path, strerror(-dyn));
    if (dyn == 0)
        return fail("%s is statically linked%s", path,
                    ": tmem run needs a dynamically linked program (it "
                    "works through LD_PRELOAD)");
    if (!uffd_ok(why, sizeof why))
        return fail("%s%s", why, "");
    if (!find_lib(lib, sizeof lib))
        return fail("libtmem_run.so not found beside %s%s",
                    "the tmem binary", " (set TMEM_RUN_LIB)");
    if (set_env(cli, &o, lib) < 0)
        return fail("cannot set the environment: %s%s", strerror(errno), "");
    execv(path, argv + i);
    return fail("cannot run %s: %s", path, strerror(errno));
}
