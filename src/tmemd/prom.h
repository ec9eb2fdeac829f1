/*
 * The Prometheus text tmemd serves (metrics.c assembles it): a growable
 * buffer and the family header every metric gets.  Every family is one
 * block: "# HELP name help", "# TYPE name type", then all its samples.
 */
#ifndef TMEMD_PROM_H
#define TMEMD_PROM_H

#include <stdbool.h>
#include <stddef.h>

struct tmemd;

typedef struct tmemd_text {
    char *p;
    size_t len, cap;
    bool oom;
} tmemd_text;

/* Appends printf-style; on allocation failure sets oom (and stops). */
void tmemd_put(tmemd_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "# HELP name help" and "# TYPE name type". */
void tmemd_family(tmemd_text *t, const char *name, const char *type,
                  const char *help);

/* prom_store.c: every store counter (global; per client, labelled client,
 * pid, uid; per pool, labelled too) as families. */
void tmemd_prom_store(tmemd_text *t, struct tmemd *d);

#endif
