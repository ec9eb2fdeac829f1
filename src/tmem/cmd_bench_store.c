/* TEMPORARY stub: replaced by the store benchmark work (issue 2). */
#include <stdio.h>
#include "cmds.h"
int cmd_bench_store(struct tmem_cli *c, int argc, char **argv)
{ (void)c; (void)argc; (void)argv; fprintf(stderr, "tmem bench store: not built yet\n"); return CLI_FAIL; }
