/*
 * tmem bench: dispatches to the benchmark named by its first argument.
 */
#include <stdio.h>
#include <string.h>

#include "cmds.h"

int cmd_bench(struct tmem_cli *cli, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "store") == 0)
        return cmd_bench_store(cli, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "daemon") == 0)
        return cmd_bench_daemon(cli, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "redis") == 0)
        return cmd_bench_redis(cli, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "fairness") == 0)
        return cmd_bench_fair(cli, argc - 1, argv + 1);
    bool help = argc >= 2 && cli_wants_help(argc, argv);
    fprintf(help ? stdout : stderr,
            "usage: tmem bench store|daemon|fairness --corpus FILE"
            " [options] (tmem bench store --help)\n"
            "       tmem bench redis fill|check [options]\n");
    return help ? CLI_OK : CLI_USAGE;
}
