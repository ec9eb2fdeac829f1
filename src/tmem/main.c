/*
 * tmem: the administrator's and tenant's command-line tool.  This file owns
 * the global options and the command table; each command lives in a
 * cmd_*.c file of its own.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"

static const struct command {
    const char *name;
    int (*fn)(struct tmem_cli *, int, char **);
    const char *usage;
} commands[] = {
    {"list", cmd_list, "list [--json]            clients, pools, counters"},
    {"set", cmd_set, "set CLIENT weight|cap|compress VALUE"},
    {"freeze", cmd_freeze, "freeze CLIENT|all        refuse the client's puts"},
    {"thaw", cmd_freeze, "thaw CLIENT|all          accept its puts again"},
    {"flush", cmd_flush, "flush MIB                evict MIB of ephemeral pages"},
    {"freeable", cmd_freeable, "freeable                 MiB evicting all would free"},
    {"auth", cmd_auth, "auth CLIENT UUID on|off  shared-pool authorisation"},
    {"destroy", cmd_destroy, "destroy CLIENT           drop a client's pools"},
    {"stats", cmd_stats, "stats [--prometheus|--json]"},
    {"save", cmd_save, "save CLIENT|NAME FILE|-  a client's pools and pages"},
    {"restore", cmd_restore, "restore FILE|- --as NAME [--uid UID]  kept for NAME"},
    {"bench", cmd_bench, "bench store|daemon ...   benchmarks (--help)"},
    {"balloon", cmd_balloon, "balloon simulate|run|get|set|list ... (--help)"},
    {"run", cmd_run, "run [OPTIONS] -- CMD ... a program as a tswap tenant (--help)"},
    {"demo", cmd_demo, "demo [--quick]           a host overcommitted through tmem, with a report"},
    {"fs", cmd_fs, "fs [OPTIONS] BACKING_DIR MOUNTPOINT  tmemfs: files cached in tmem (--help)"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static int usage(FILE *f)
{
    fprintf(f, "usage: tmem [--socket PATH] COMMAND [ARGS]\n"
               "       tmem help [COMMAND [SUBCOMMAND]]\n"
               "       tmem --version\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %s\n", commands[i].usage);
    return f == stdout ? CLI_OK : CLI_USAGE;
}

/* Commands that parse their own --help (they have subcommands or a table
 * of options); the others print their line of the table. */
static bool own_help(const struct command *c)
{
    return c->fn == cmd_bench || c->fn == cmd_balloon || c->fn == cmd_run ||
           c->fn == cmd_fs || c->fn == cmd_demo;
}

static int dispatch(struct tmem_cli *cli, int argc, char **argv)
{
    for (size_t c = 0; c < NCOMMANDS; c++) {
        if (strcmp(argv[0], commands[c].name) != 0)
            continue;
        if (!own_help(&commands[c]) && cli_wants_help(argc, argv)) {
            printf("usage: tmem [--socket PATH] %s\n", commands[c].usage);
            return CLI_OK;
        }
        return commands[c].fn(cli, argc, argv);
    }
    fprintf(stderr, "tmem: unknown command '%s'\n", argv[0]);
    return usage(stderr);
}

/* tmem help [COMMAND [SUBCOMMAND]]: that command's --help. */
static int help(struct tmem_cli *cli, int argc, char **argv)
{
    if (argc < 2)
        return usage(stdout);
    char *v[4] = {argv[1], argc > 2 ? argv[2] : "--help",
                  argc > 2 ? "--help" : NULL, NULL};
    return dispatch(cli, argc > 2 ? 3 : 2, v);
}

int main(int argc, char **argv)
{
    struct tmem_cli cli = {.socket = NULL};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--socket") == 0) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "tmem: --socket needs a PATH (tmemd's "
                                "socket)\n");
                return CLI_USAGE;
            }
            cli.socket = argv[++i];
        } else if (strncmp(argv[i], "--socket=", 9) == 0) {
            cli.socket = argv[i] + 9;
            if (!cli.socket[0]) {
                fprintf(stderr, "tmem: --socket needs a PATH\n");
                return CLI_USAGE;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            return usage(stdout);
        } else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("tmem %s\n", TMEM_VERSION);
            return CLI_OK;
        } else {
            fprintf(stderr, "tmem: unknown option %s\n", argv[i]);
            return usage(stderr);
        }
    }
    if (i >= argc)
        return usage(stderr);
    if (!strcmp(argv[i], "help"))
        return help(&cli, argc - i, argv + i);
    return dispatch(&cli, argc - i, argv + i);
}
