/*
 * The option-table parser (opt_table.h).
 */
#include "opt_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <tmem/errors.h>

#include "cmds.h"

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    return false;
}

int opt_int(const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return TMEM_EINVAL;
    *out = (int)n;
    return 0;
}

/* Applies the option at argv[*i] (advancing *i past its value). */
static int parse_one(const char *cmd, const struct opt_spec *t, size_t n,
                     void *opts, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    for (size_t k = 0; k < n; k++) {
        const struct opt_spec *b = &t[k];
        size_t len = strlen(b->name);
        if (strncmp(a, b->name, len) || (a[len] && a[len] != '='))
            continue;
        const char *v = a[len] == '=' ? a + len + 1 : NULL;
        if (b->arg && !v) {
            if (*i + 1 >= argc) {
                fprintf(stderr, "%s: %s needs %s\n", cmd, b->name, b->arg);
                return CLI_USAGE;
            }
            v = argv[++*i];
        } else if (!b->arg && v) {
            fprintf(stderr, "%s: %s takes no value\n", cmd, b->name);
            return CLI_USAGE;
        }
        if (b->set(opts, v) < 0) {
            fprintf(stderr, "%s: bad %s '%s' (expected %s)\n", cmd, b->name,
                    v, b->arg);
            return CLI_USAGE;
        }
        return 0;
    }
    fprintf(stderr, "%s: unknown argument '%s'\n", cmd, a);
    return CLI_USAGE;
}

int opt_parse(const char *cmd, const struct opt_spec *t, size_t n, void *opts,
              int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int rc = parse_one(cmd, t, n, opts, argc, argv, &i);
        if (rc)
            return rc;
    }
    return 0;
}

void opt_usage(FILE *f, const struct opt_spec *t, size_t n, int width)
{
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", t[i].name, t[i].arg ? " " : "",
                 t[i].arg ? t[i].arg : "");
        fprintf(f, "  %-*s %s\n", width, left, t[i].help);
    }
}
