/* TEMPORARY stub: replaced by the tmemd/admin work (issue 3). */
#include <stdio.h>
#include "cmds.h"
#define STUB(f) int f(struct tmem_cli *c, int argc, char **argv) \
 { (void)c; (void)argc; fprintf(stderr, "tmem %s: not built yet\n", argv[0]); return CLI_FAIL; }
STUB(cmd_list) STUB(cmd_set) STUB(cmd_freeze) STUB(cmd_flush) STUB(cmd_freeable)
STUB(cmd_auth) STUB(cmd_destroy) STUB(cmd_stats)
