/*
 * The tmem CLI's commands: one function each, dispatched from main.c's
 * table.  Each returns the process exit status: 0 ok, 1 the operation
 * failed, 2 usage error.  argv[0] is the command's own name.
 */
#ifndef TMEM_CLI_CMDS_H
#define TMEM_CLI_CMDS_H

struct tmem_cli {
    const char *socket; /* --socket PATH, or NULL for the default */
};

#include <stdbool.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

#ifndef TMEM_VERSION
#define TMEM_VERSION "unknown"
#endif

/* opt_table.c: whether argv[1..] (up to a "--") asks for --help or -h:
 * every command then prints its usage to stdout and exits 0. */
bool cli_wants_help(int argc, char **argv);

#include <stddef.h>
/* cli_corpus.c: loads the corpus at path (tmem__corpus_load) with at
 * least one page: 0; else says on stderr, after cmd, what is wrong with
 * the file (missing, unreadable, empty, not pages) and returns
 * CLI_FAIL. */
int cli_corpus(const char *cmd, const char *path, void **pages, size_t *n);

/* cmd_balloon.c: applies --set NAME=VALUE to b; on a refusal says on
 * stderr, after cmd, what is wrong (the form, an unknown name with the
 * list of tunables, a value with what the tunable allows) and returns
 * CLI_USAGE; else CLI_OK. */
struct tmem_balloon;
int cli_balloon_set(const char *cmd, struct tmem_balloon *b, const char *arg);

/* cmd_admin.c: list, set, freeze, thaw, flush, freeable, auth, destroy,
 * stats (talk to tmemd). */
int cmd_list(struct tmem_cli *cli, int argc, char **argv);
int cmd_set(struct tmem_cli *cli, int argc, char **argv);
int cmd_freeze(struct tmem_cli *cli, int argc, char **argv); /* and thaw */
int cmd_flush(struct tmem_cli *cli, int argc, char **argv);
int cmd_freeable(struct tmem_cli *cli, int argc, char **argv);
int cmd_auth(struct tmem_cli *cli, int argc, char **argv);
int cmd_destroy(struct tmem_cli *cli, int argc, char **argv);
int cmd_stats(struct tmem_cli *cli, int argc, char **argv);

/* cmd_save.c: save and restore of a client's pools and pages. */
int cmd_save(struct tmem_cli *cli, int argc, char **argv);
int cmd_restore(struct tmem_cli *cli, int argc, char **argv);

/* cmd_bench.c: "bench store" (embedded store), "bench daemon" (through
 * tmemd, in cmd_bench_daemon.c). */
int cmd_bench(struct tmem_cli *cli, int argc, char **argv);
int cmd_bench_store(struct tmem_cli *cli, int argc, char **argv);
int cmd_bench_daemon(struct tmem_cli *cli, int argc, char **argv);
/* cmd_bench_redis.c: "bench redis fill|check" (known values into a Redis
 * server and back). */
int cmd_bench_redis(struct tmem_cli *cli, int argc, char **argv);
/* cmd_bench_fair.c: "bench fairness" (one tenant's puts through tmemd,
 * alone, beside an honest tenant and beside a churning one). */
int cmd_bench_fair(struct tmem_cli *cli, int argc, char **argv);

/* cmd_balloon.c: balloon simulate|run|get|set|list (dispatch, simulate). */
int cmd_balloon(struct tmem_cli *cli, int argc, char **argv);
int cmd_balloon_simulate(struct tmem_cli *cli, int argc, char **argv);
/* cmd_balloon_run.c: balloon run, and get/set/list of a running
 * controller's tunables. */
int cmd_balloon_run(struct tmem_cli *cli, int argc, char **argv);
int cmd_balloon_get(struct tmem_cli *cli, int argc, char **argv);
int cmd_balloon_set(struct tmem_cli *cli, int argc, char **argv);
int cmd_balloon_list(struct tmem_cli *cli, int argc, char **argv);

/* cmd_demo.c: the multi-tenant demo (demo_*.c). */
int cmd_demo(struct tmem_cli *cli, int argc, char **argv);

/* cmd_run.c: run a program as a tswap tenant (libtmem_run.so). */
int cmd_run(struct tmem_cli *cli, int argc, char **argv);

/* src/fs/fs_cmd.c: tmem fs, the tmemfs FUSE file system (docs/tmemfs.md). */
int cmd_fs(struct tmem_cli *cli, int argc, char **argv);

#endif
