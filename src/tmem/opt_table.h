/*
 * Options of a `tmem` subcommand as one table: each entry names an option,
 * its value (or none: a flag), the function that applies it to the
 * command's own options struct, and its help line.  One parser and one
 * usage printer serve every command that has such a table.
 */
#ifndef TMEM_CLI_OPT_TABLE_H
#define TMEM_CLI_OPT_TABLE_H

#include <stddef.h>
#include <stdio.h>

struct opt_spec {
    const char *name; /* "--corpus" */
    const char *arg;  /* the value's name, "FILE"; NULL: a flag */
    /* applies the value (NULL for a flag) to the options struct; < 0 when
     * the value is bad */
    int (*set)(void *opts, const char *v);
    const char *help;
};

/* Applies argv[1..argc) to opts.  Takes `--name VALUE` and `--name=VALUE`.
 * Returns 0, or CLI_USAGE after printing why, prefixed with cmd (e.g.
 * "tmem bench store"). */
int opt_parse(const char *cmd, const struct opt_spec *t, size_t n, void *opts,
              int argc, char **argv);

/* Prints one line per option, the names padded to width columns. */
void opt_usage(FILE *f, const struct opt_spec *t, size_t n, int width);

/* A decimal int in [lo, hi]: 0 and *out set, or TMEM_EINVAL. */
int opt_int(const char *v, int lo, int hi, int *out);

#endif
