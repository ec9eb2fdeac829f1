/* TEMPORARY stub: replaced by the tmemd work (issue 3). */
#include <stdio.h>
#include "cmds.h"
int cmd_bench_daemon(struct tmem_cli *c, int argc, char **argv)
{ (void)c; (void)argc; (void)argv; fprintf(stderr, "tmem bench daemon: not built yet\n"); return CLI_FAIL; }
