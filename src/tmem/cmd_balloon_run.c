/*
 * tmem balloon run|get|set|list: one controller in the foreground over a
 * real backend (a cgroup, a Xen guest), and the clients of its control
 * socket.  The loop itself is lib/balloon/runner.c; this file owns the
 * option tables, the backend choice and the signal handling.
 *
 * run: the controller starts from the tenant's state at start (total
 * memory for reserved_mb's default = its cur then), applies --interval
 * and every --set in order (a refused one exits 2 with the error in
 * words), then loops until SIGTERM/SIGINT.  On exit the control socket is
 * removed and the cgroup backend restores the allowance the cgroup had at
 * start.  The control socket defaults to /run/tmem/balloon-<name>.sock,
 * <name> the cgroup's last path component or "xen".
 *
 * get/set/list: --control PATH, or the only socket in /run/tmem.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/cgroup.h"
#include "balloon/controller.h"
#include "balloon/runner.h"
#include "balloon/xen.h"
#include "cmds.h"

#define RUN_DIR "/run/tmem"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct run_args {
    const char *cgroup, *root, *interval, *control, *trigger;
    bool xen, json, no_psi;
    unsigned max_ticks, hold_s, budget_mb;
    const char *sets[32];
    int nsets;
};

/* Option table: name, takes a value, where it goes. */
enum opt_kind { O_STR, O_FLAG, O_UINT, O_SET };
static const struct run_opt {
    const char *name;
    enum opt_kind kind;
    size_t off;
} run_opts[] = {
    {"--cgroup", O_STR, offsetof(struct run_args, cgroup)},
    {"--root", O_STR, offsetof(struct run_args, root)},
    {"--interval", O_STR, offsetof(struct run_args, interval)},
    {"--control", O_STR, offsetof(struct run_args, control)},
    {"--psi-trigger", O_STR, offsetof(struct run_args, trigger)},
    {"--xen", O_FLAG, offsetof(struct run_args, xen)},
    {"--json", O_FLAG, offsetof(struct run_args, json)},
    {"--no-psi", O_FLAG, offsetof(struct run_args, no_psi)},
    {"--max-ticks", O_UINT, offsetof(struct run_args, max_ticks)},
    {"--hold", O_UINT, offsetof(struct run_args, hold_s)},
    {"--shrink-budget-mb", O_UINT, offsetof(struct run_args, budget_mb)},
    {"--set", O_SET, 0},
};

static int run_usage(FILE *f)
{
    fprintf(f, "usage: tmem balloon run --cgroup PATH | --xen [--root DIR]\n"
               "         [--interval S] [--set NAME=VALUE]... [--json] "
               "[--no-psi]\n"
               "         [--control PATH] [--hold S] [--psi-trigger TEXT]\n"
               "         [--shrink-budget-mb N] [--max-ticks N]\n");
    return f == stdout ? CLI_OK : CLI_USAGE;
}

/* Parses one option at argv[*i].  Returns 0 or -1. */
static int parse_opt(struct run_args *a, int argc, char **argv, int *i)
{
    for (size_t k = 0; k < sizeof run_opts / sizeof run_opts[0]; k++) {
        const struct run_opt *o = &run_opts[k];
        char *field = (char *)a + o->off, *end;
        unsigned long v;

        if (strcmp(argv[*i], o->name) != 0)
            continue;
        if (o->kind == O_FLAG) {
            *(bool *)field = true;
            return 0;
        }
        if (*i + 1 >= argc)
            return -1;
        const char *val = argv[++*i];
        if (o->kind == O_STR) {
            *(const char **)field = val;
        } else if (o->kind == O_SET) {
            if (a->nsets == (int)(sizeof a->sets / sizeof a->sets[0]))
                return -1;
            a->sets[a->nsets++] = val;
        } else {
            v = strtoul(val, &end, 10);
            if (*end || end == val || v > 1000000)
                return -1;
            *(unsigned *)field = (unsigned)v;
        }
        return 0;
    }
    return -1;
}

static int open_backend(const struct run_args *a, tmem_balloon_backend *be,
                        char *name, size_t cap)
{
    char err[PATH_MAX + 200] = "";
    const char *base;
    int rc;

    if (a->xen) {
        rc = tmem_balloon_xen_open(be, a->root, err, sizeof err);
        snprintf(name, cap, "xen");
    } else {
        rc = tmem_balloon_cgroup_open(be, a->cgroup, err, sizeof err);
        base = strrchr(a->cgroup, '/');
        snprintf(name, cap, "%s", base && base[1] ? base + 1 : a->cgroup);
    }
    if (rc < 0)
        fprintf(stderr, "tmem balloon run: %s (%s)\n", err, strerror(-rc));
    return rc;
}

/* Sets up the controller from the first reading and the options. */
static int setup_controller(const struct run_args *a, tmem_balloon_backend *be,
                            tmem_balloon *b)
{
    tmem_balloon_input in;
    char iv[80];
    int rc = be->read(be->self, &in);

    if (rc < 0) {
        fprintf(stderr, "tmem balloon run: %s (%s)\n",
                tmem_balloon_backend_why(be), strerror(-rc));
        return CLI_FAIL;
    }
    tmem_balloon_init(b, in.cur, be->frontswap_available);
    if (a->interval) {
        snprintf(iv, sizeof iv, "selfballoon_interval=%s", a->interval);
        if (cli_balloon_set("tmem balloon run", b, iv))
            return CLI_USAGE;
    }
    for (int i = 0; i < a->nsets; i++)
        if (cli_balloon_set("tmem balloon run", b, a->sets[i]))
            return CLI_USAGE;
    if (!b->t.selfballooning && !b->t.selfshrinking)
        fprintf(stderr,
                "tmem balloon run: idle: self-ballooning and frontswap "
                "self-shrinking are off (%s); turn self-ballooning on with "
                "--set selfballooning=1, or `tmem balloon set selfballooning "
                "1` while this runs\n",
                be->frontswap_available
                    ? "as the --set options asked"
                    : "their default where the tenant has no swap to push "
                      "pages to: give its cgroup swap (zram or zswap)");
    return 0;
}

int cmd_balloon_run(struct tmem_cli *cli, int argc, char **argv)
{
    struct run_args a = {0};
    struct sigaction sa = {.sa_handler = on_signal};
    tmem_balloon_backend be;
    tmem_balloon b;
    char name[128], ctl[PATH_MAX];
    int rc;

    (void)cli;
    if (cli_wants_help(argc, argv))
        return run_usage(stdout);
    for (int i = 1; i < argc; i++)
        if (parse_opt(&a, argc, argv, &i) < 0) {
            fprintf(stderr, "tmem balloon run: bad option %s\n", argv[i]);
            return run_usage(stderr);
        }
    if (!a.xen == !a.cgroup) {
        fprintf(stderr, "tmem balloon run: give one of --cgroup PATH and "
                        "--xen\n");
        return run_usage(stderr);
    }
    if (open_backend(&a, &be, name, sizeof name) < 0)
        return CLI_FAIL;
    rc = setup_controller(&a, &be, &b);
    if (rc) {
        tmem_balloon_backend_close(&be);
        return rc;
    }
    snprintf(ctl, sizeof ctl, "%s/balloon-%s.sock", RUN_DIR, name);
    struct tmem_balloon_run_opts o = {
        .control = a.control ? a.control : ctl,
        .json = a.json, .psi = !a.no_psi, .psi_trigger = a.trigger,
        .hold_ms = a.hold_s * 1000u, .shrink_budget_mb = a.budget_mb,
        .max_ticks = a.max_ticks, .log = stdout, .stop = &stop_flag,
    };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = tmem_balloon_run(&be, &b, &o);
    tmem_balloon_backend_close(&be);
    if (rc < 0) {
        fprintf(stderr, "tmem balloon run: control socket %s: %s\n",
                o.control, strerror(-rc));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ---- clients ----------------------------------------------------------- */

/* Finds --control PATH in argv (removing it), or the only runner socket. */
static int find_control(int *argc, char **argv, char *out, size_t cap)
{
    glob_t g;
    int rc;

    for (int i = 1; i + 1 < *argc; i++)
        if (strcmp(argv[i], "--control") == 0) {
            snprintf(out, cap, "%s", argv[i + 1]);
            memmove(argv + i, argv + i + 2,
                    (size_t)(*argc - i - 2) * sizeof *argv);
            *argc -= 2;
            return 0;
        }
    if (glob(RUN_DIR "/balloon-*.sock", 0, NULL, &g) != 0) {
        fprintf(stderr, "tmem balloon: no runner socket in %s "
                        "(is `tmem balloon run` running?)\n", RUN_DIR);
        return -1;
    }
    rc = g.gl_pathc == 1 ? 0 : -1;
    if (rc == 0)
        snprintf(out, cap, "%s", g.gl_pathv[0]);
    else
        fprintf(stderr, "tmem balloon: %zu runners in %s: say which with "
                        "--control PATH\n", g.gl_pathc, RUN_DIR);
    globfree(&g);
    return rc;
}

/* Sends request and prints the reply.  Returns the exit status. */
static int control(const char *path, const char *what, const char *request)
{
    char out[4096];
    int rc = tmem_balloon_control(path, request, out, sizeof out);

    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, strerror(-rc));
        return rc == -EINVAL || rc == -ERANGE ? CLI_USAGE : CLI_FAIL;
    }
    fputs(out, stdout);
    return CLI_OK;
}

#define GET_USAGE "usage: tmem balloon get NAME [--control PATH]"
#define SET_USAGE "usage: tmem balloon set NAME VALUE [--control PATH]"
#define LIST_USAGE "usage: tmem balloon list [--control PATH]"

int cmd_balloon_get(struct tmem_cli *cli, int argc, char **argv)
{
    char path[PATH_MAX], req[160];

    (void)cli;
    if (cli_wants_help(argc, argv)) {
        puts(GET_USAGE);
        return CLI_OK;
    }
    if (find_control(&argc, argv, path, sizeof path) < 0)
        return CLI_FAIL;
    if (argc != 2) {
        fprintf(stderr, "%s\n", GET_USAGE);
        return CLI_USAGE;
    }
    snprintf(req, sizeof req, "get %s", argv[1]);
    return control(path, argv[1], req);
}

int cmd_balloon_set(struct tmem_cli *cli, int argc, char **argv)
{
    char path[PATH_MAX], req[200];

    (void)cli;
    if (cli_wants_help(argc, argv)) {
        puts(SET_USAGE);
        return CLI_OK;
    }
    if (find_control(&argc, argv, path, sizeof path) < 0)
        return CLI_FAIL;
    if (argc != 3) {
        fprintf(stderr, "%s\n", SET_USAGE);
        return CLI_USAGE;
    }
    snprintf(req, sizeof req, "set %s %s", argv[1], argv[2]);
    return control(path, argv[1], req);
}

int cmd_balloon_list(struct tmem_cli *cli, int argc, char **argv)
{
    char path[PATH_MAX];

    (void)cli;
    if (cli_wants_help(argc, argv)) {
        puts(LIST_USAGE);
        return CLI_OK;
    }
    if (find_control(&argc, argv, path, sizeof path) < 0)
        return CLI_FAIL;
    if (argc != 1) {
        fprintf(stderr, "%s\n", LIST_USAGE);
        return CLI_USAGE;
    }
    return control(path, "list", "list");
}
