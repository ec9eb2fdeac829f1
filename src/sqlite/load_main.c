/*
 * tmem_sqlite_load: options, checked one by one (each bad value says
 * which and what it wants), then the run.  Exit status: 0 all reads
 * right and no SQLite error, 1 a wrong read or an SQLite error, 2 a bad
 * command line or a database it cannot use.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

static const char usage[] =
    "usage: tmem_sqlite_load --db PATH [--create-mb N] [--cache-mb M]\n"
    "         [--seconds S] [--seed X] [--zipf THETA] [--write-pct P]\n"
    "         [--no-tmem] [--socket PATH] [--interval-ms MS] [--name NAME]\n";

enum kind { NUM, REAL, STR, FLAG };

struct opt {
    const char *name;
    enum kind kind;
    size_t off;   /* in struct load_opts */
    double lo, hi; /* NUM, REAL */
};

#define OFF(f) offsetof(struct load_opts, f)
static const struct opt table[] = {
    {"--db", STR, OFF(db), 0, 0},
    {"--create-mb", NUM, OFF(create_mb), 1, 1048576},
    {"--cache-mb", NUM, OFF(cache_mb), 1, 1048576},
    {"--seconds", NUM, OFF(seconds), 0, 31536000},
    {"--seed", NUM, OFF(seed), 0, 1e18},
    {"--zipf", REAL, OFF(zipf), 0, 0.9999},
    {"--write-pct", NUM, OFF(write_pct), 0, 100},
    {"--no-tmem", FLAG, OFF(no_tmem), 0, 0},
    {"--socket", STR, OFF(socket), 0, 0},
    {"--interval-ms", NUM, OFF(interval_ms), 1, 3600000},
    {"--name", STR, OFF(name), 0, 0},
};

static int bad(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "tmem_sqlite_load: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* Sets one option from its value text.  Returns 0 or 2 (said why). */
static int set(struct load_opts *o, const struct opt *t, const char *v)
{
    char *p = (char *)o + t->off, *end;
    if (t->kind == STR) {
        *(const char **)p = v;
        return 0;
    }
    errno = 0;
    double d = t->kind == REAL ? strtod(v, &end) : (double)strtoull(v, &end, 10);
    if (errno || end == v || *end || isnan(d) || d < t->lo || d > t->hi ||
        (t->kind == NUM && v[0] == '-')) {
        char want[64];
        snprintf(want, sizeof want, t->kind == REAL ? "%g..%g" : "%.0f..%.0f",
                 t->lo, t->hi);
        fprintf(stderr, "tmem_sqlite_load: %s \"%s\": want a number in %s\n%s",
                t->name, v, want, usage);
        return 2;
    }
    if (t->kind == REAL)
        *(double *)p = d;
    else if (t->off == OFF(seed))
        *(uint64_t *)p = strtoull(v, NULL, 10);
    else
        *(long *)p = (long)d;
    return 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && !strchr("._-", s[i]))
            return false;
    return true;
}

static int parse(int argc, char **argv, struct load_opts *o)
{
    *o = (struct load_opts){.cache_mb = 16, .seconds = 10, .seed = 1,
                            .zipf = 0.99, .write_pct = 2,
                            .interval_ms = 1000, .name = "sqlite"};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        const struct opt *t = NULL;
        for (size_t k = 0; k < sizeof table / sizeof *table; k++)
            if (!strcmp(argv[i], table[k].name))
                t = &table[k];
        if (!t)
            return bad("unknown option \"%s\"%s", argv[i], "");
        if (t->kind == FLAG) {
            *(bool *)((char *)o + t->off) = true;
            continue;
        }
        if (i + 1 >= argc)
            return bad("%s needs a value%s", t->name, "");
        if (set(o, t, argv[++i]))
            return 2;
    }
    if (!o->db)
        return bad("--db PATH is required%s%s", "", "");
    if (!name_ok(o->name))
        return bad("--name \"%s\": want 1..16 letters, digits, '.', '_' or "
                   "'-'%s",
                   o->name, "");
    if (o->no_tmem && o->socket)
        return bad("--socket and --no-tmem: the baseline uses no tmem%s%s",
                   "", "");
    return 0;
}

int main(int argc, char **argv)
{
    struct load_opts o;
    int rc = parse(argc, argv, &o);
    return rc ? rc : load_run(&o);
}
