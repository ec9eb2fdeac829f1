/*
 * tmem balloon: the self-ballooning controller from the command line.  This
 * file owns the subcommand table and `balloon simulate`, which replays a
 * trace of tenant states through the pure controller (lib/balloon) and
 * prints what it decided, tick by tick: the verification interface of the
 * controller's arithmetic.  run/get/set/list live in cmd_balloon_run.c.
 *
 * simulate reads the whole trace before printing anything, so a bad trace
 * gives an error and no partial output.  Exit status: 0 ok, 1 the trace
 * cannot be read, 2 usage, a bad trace, or a --set the tunable refuses.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmem/errors.h>

#include "balloon/controller.h"
#include "cmds.h"

#define TRACE_HEADER                                                           \
    "cur_pages,committed_pages,reserve_pages,max_pages,frontswap_pages"
#define TRACE_FIELDS 5

static const struct subcommand {
    const char *name;
    int (*fn)(struct tmem_cli *, int, char **);
    const char *usage;
} subcommands[] = {
    {"simulate", cmd_balloon_simulate,
     "simulate --trace FILE [--set NAME=VALUE]...   replay a trace (CSV)"},
    {"run", cmd_balloon_run,
     "run --cgroup PATH | --xen [--root DIR] ...    run a controller"},
    {"get", cmd_balloon_get,
     "get NAME                                      read a tunable"},
    {"set", cmd_balloon_set,
     "set NAME VALUE                                write a tunable"},
    {"list", cmd_balloon_list,
     "list                                          every tunable"},
};

#define NSUB (sizeof subcommands / sizeof subcommands[0])

static int usage(FILE *f)
{
    fprintf(f, "usage: tmem balloon SUBCOMMAND ...\n\n");
    for (size_t i = 0; i < NSUB; i++)
        fprintf(f, "  %s\n", subcommands[i].usage);
    fprintf(f, "\ntunables (tmem balloon get|set NAME, simulate --set):\n");
    for (size_t i = 0; tmem_balloon_tunable_names[i]; i++)
        fprintf(f, "  %s\n", tmem_balloon_tunable_names[i]);
    return f == stdout ? CLI_OK : CLI_USAGE;
}

int cmd_balloon(struct tmem_cli *cli, int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help"))
        return usage(stdout);
    for (size_t i = 0; i < NSUB; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].fn(cli, argc - 1, argv + 1);
    fprintf(stderr, "tmem balloon: unknown subcommand '%s'\n", argv[1]);
    return usage(stderr);
}

/* ---- simulate ---- */

struct trace {
    tmem_balloon_input *rows;
    size_t n, cap;
};

/* Parses one field: digits only, at most UINT64_MAX.  Returns 0 or -1. */
static int parse_field(const char *s, size_t len, uint64_t *v)
{
    uint64_t r = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (s[i] < '0' || s[i] > '9' || r > (UINT64_MAX - d) / 10)
            return -1;
        r = r * 10 + d;
    }
    *v = r;
    return 0;
}

/* Splits a row into the five input fields.  Returns 0, or -1 with *why
 * set. */
static int parse_row(const char *line, tmem_balloon_input *in, const char **why)
{
    uint64_t f[TRACE_FIELDS];
    const char *p = line;
    size_t n = 0;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == TRACE_FIELDS) {
            *why = "wrong field count (want 5)";
            return -1;
        }
        if (parse_field(p, len, &f[n]) != 0) {
            *why = "not a decimal number of pages";
            return -1;
        }
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (n != TRACE_FIELDS) {
        *why = "wrong field count (want 5)";
        return -1;
    }
    *in = (tmem_balloon_input){.cur = f[0],
                               .committed = f[1],
                               .reserve = f[2],
                               .max = f[3],
                               .frontswap = f[4]};
    return 0;
}

static int trace_push(struct trace *t, const tmem_balloon_input *in)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        tmem_balloon_input *r = realloc(t->rows, cap * sizeof *r);
        if (!r)
            return -ENOMEM;
        t->rows = r;
        t->cap = cap;
    }
    t->rows[t->n++] = *in;
    return 0;
}

/* Drops the line end ("\n" or "\r\n"). */
static void chomp(char *line)
{
    size_t len = strlen(line);

    if (len && line[len - 1] == '\n')
        line[--len] = '\0';
    if (len && line[len - 1] == '\r')
        line[--len] = '\0';
}

/* Reads the whole trace.  Returns CLI_OK, CLI_FAIL (cannot read) or
 * CLI_USAGE (bad CSV, reported with its line number). */
static int trace_read(const char *path, struct trace *t)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    unsigned long lineno = 0;
    const char *why = NULL;
    int rc = CLI_OK;

    if (!f) {
        fprintf(stderr, "tmem balloon simulate: %s: %s\n", path,
                strerror(errno));
        return CLI_FAIL;
    }
    while (getline(&line, &cap, f) >= 0) {
        tmem_balloon_input in;
        lineno++;
        chomp(line);
        if (lineno == 1) {
            if (strcmp(line, TRACE_HEADER) != 0) {
                why = "wrong header (want " TRACE_HEADER ")";
                break;
            }
            continue;
        }
        if (parse_row(line, &in, &why) != 0)
            break;
        if (trace_push(t, &in) != 0) {
            why = "out of memory";
            break;
        }
    }
    if (!why && ferror(f)) {
        fprintf(stderr, "tmem balloon simulate: %s: %s\n", path,
                strerror(errno));
        rc = CLI_FAIL;
    } else if (!why && lineno == 0) {
        lineno = 1;
        why = "empty trace (no header)";
    }
    if (why) {
        fprintf(stderr, "tmem balloon simulate: %s:%lu: %s\n", path, lineno,
                why);
        rc = CLI_USAGE;
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

/* Applies one --set NAME=VALUE.  Returns CLI_OK or CLI_USAGE. */
int cli_balloon_set(const char *cmd, tmem_balloon *b, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char name[64];

    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof name) {
        fprintf(stderr, "%s: --set wants NAME=VALUE, not '%s'\n", cmd, arg);
        return CLI_USAGE;
    }
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    const char *allowed = tmem_balloon_tunable_allowed(name);
    if (!allowed) {
        fprintf(stderr, "%s: unknown tunable '%s' (tunables:", cmd, name);
        for (size_t i = 0; tmem_balloon_tunable_names[i]; i++)
            fprintf(stderr, " %s", tmem_balloon_tunable_names[i]);
        fprintf(stderr, ")\n");
        return CLI_USAGE;
    }
    if (tmem_balloon_set(b, name, eq + 1, true, NULL) < 0) {
        fprintf(stderr, "%s: %s: bad value '%s' (allowed: %s)\n", cmd, name,
                eq + 1, allowed);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static void print_u64_or_empty(bool valid, uint64_t v, const char *end)
{
    if (valid)
        printf("%llu%s", (unsigned long long)v, end);
    else
        printf("%s", end);
}

static void simulate(tmem_balloon *b, const struct trace *t)
{
    printf("step,goal,floor,target,frontswap_target\n");
    for (size_t i = 0; i < t->n; i++) {
        tmem_balloon_output out;
        tmem_balloon_tick(b, &t->rows[i], &out);
        printf("%zu,", i + 1);
        print_u64_or_empty(out.ballooned, out.goal, ",");
        print_u64_or_empty(out.ballooned, out.floor, ",");
        print_u64_or_empty(out.ballooned, out.target, ",");
        print_u64_or_empty(out.shrink, out.fs_target, "\n");
    }
}

static int simulate_usage(FILE *f)
{
    fprintf(f, "usage: tmem balloon simulate --trace FILE "
               "[--set NAME=VALUE]...\n"
               "  FILE: CSV with header " TRACE_HEADER "\n");
    return f == stdout ? CLI_OK : CLI_USAGE;
}

int cmd_balloon_simulate(struct tmem_cli *cli, int argc, char **argv)
{
    const char *path = NULL;
    const char **sets = NULL;
    size_t nsets = 0;
    struct trace t = {0};
    tmem_balloon b;
    int rc;

    (void)cli;
    if (cli_wants_help(argc, argv))
        return simulate_usage(stdout);
    sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets)
        return CLI_FAIL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--trace") && i + 1 < argc)
            path = argv[++i];
        else if (!strncmp(argv[i], "--trace=", 8))
            path = argv[i] + 8;
        else if (!strcmp(argv[i], "--set") && i + 1 < argc)
            sets[nsets++] = argv[++i];
        else if (!strncmp(argv[i], "--set=", 6))
            sets[nsets++] = argv[i] + 6;
        else {
            fprintf(stderr, "tmem balloon simulate: bad argument '%s'\n",
                    argv[i]);
            rc = simulate_usage(stderr);
            goto out_sets;
        }
    }
    if (!path) {
        rc = simulate_usage(stderr);
        goto out_sets;
    }
    rc = trace_read(path, &t);
    if (rc != CLI_OK)
        goto out_trace;
    /* Total memory at start: the first row's cur (simulate has frontswap). */
    tmem_balloon_init(&b, t.n ? t.rows[0].cur : 0, true);
    for (size_t i = 0; i < nsets && rc == CLI_OK; i++)
        rc = cli_balloon_set("tmem balloon simulate", &b, sets[i]);
    if (rc == CLI_OK)
        simulate(&b, &t);
    if (rc == CLI_OK && fflush(stdout) != 0)
        rc = CLI_FAIL;
out_trace:
    free(t.rows);
out_sets:
    free(sets);
    return rc;
}
