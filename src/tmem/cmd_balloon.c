/* TEMPORARY stub: replaced by the balloon work (issue 4). */
#include <stdio.h>
#include "cmds.h"
int cmd_balloon(struct tmem_cli *c, int argc, char **argv)
{ (void)c; (void)argc; (void)argv; fprintf(stderr, "tmem balloon: not built yet\n"); return CLI_FAIL; }
