/*
 * tmem demo: once a second, every tenant's figures (its cgroup's memory,
 * what its own reports say: the SQLite driver's and the balloon runner's
 * JSON lines, tmemd's statistics) into the phase's samples, and the live
 * view: one line per tenant, redrawn in place on a terminal, every ten
 * seconds otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/json.h"
#include "demo.h"
#include "proto/conn.h"

static double num(const tmem__json *o, const char *key)
{
    const tmem__json *v = o ? tmem__json_get(o, key) : NULL;
    return v && v->type == TMEM_JSON_NUMBER ? v->num : 0;
}

/* One JSON line from a tenant's report. */
static void take_line(struct demo_tenant *t, const char *line)
{
    tmem__json *j = NULL;

    if (line[0] != '{' || tmem__json_parse(line, &j) < 0)
        return;
    if (t->kind == DK_SQLITE) {
        /* of the pages SQLite missed in its cache, the share tmem gave */
        double hits = num(j, "cc_hits");
        double missed = hits + num(j, "file_read_bytes") / 4096;
        t->ops = (uint64_t)num(j, "ops");
        t->wrong = (uint64_t)num(j, "wrong");
        t->target = num(j, "target_pages") * 4096;
        t->read_b = num(j, "io_read_bytes");
        t->hit = missed > 0 ? hits / missed : -1;
        if (tmem__json_get(j, "done"))
            t->done = true;
    } else if (t->kind == DK_BATCH && tmem__json_get(j, "target")) {
        t->target = num(j, "target") * 4096;
    }
    tmem__json_free(j);
}

/* Reads whatever complete lines the tenant's pipe holds. */
static void drain(struct demo_tenant *t)
{
    for (;;) {
        ssize_t n;
        if (t->out_fd < 0)
            return;
        n = read(t->out_fd, t->line + t->linelen,
                 sizeof t->line - 1 - t->linelen);
        if (n <= 0) {
            if (n == 0 || errno != EAGAIN) {
                close(t->out_fd);
                t->out_fd = -1;
            }
            return;
        }
        t->linelen += (size_t)n;
        t->line[t->linelen] = '\0';
        char *nl;
        while ((nl = strchr(t->line, '\n'))) {
            *nl = '\0';
            take_line(t, t->line);
            t->linelen -= (size_t)(nl + 1 - t->line);
            memmove(t->line, nl + 1, t->linelen + 1);
        }
        if (t->linelen == sizeof t->line - 1) /* a line too long: drop */
            t->linelen = 0;
    }
}

/* The client id of the live connection named name in the stats, or -1. */
static int client_of(const tmem__json *root, const char *name,
                     const tmem__json **tswap)
{
    const tmem__json *c = tmem__json_get(root, "connections");
    for (const tmem__json *k = c ? c->kids : NULL; k; k = k->next) {
        const tmem__json *n = tmem__json_get(k, "name");
        if (n && n->type == TMEM_JSON_STRING && !strcmp(n->str, name)) {
            *tswap = tmem__json_get(k, "tswap");
            return (int)num(k, "client");
        }
    }
    return -1;
}

static const tmem__json *client_stats(const tmem__json *root, int id)
{
    const tmem__json *c = tmem__json_get(root, "clients");
    for (const tmem__json *k = c ? c->kids : NULL; k; k = k->next)
        if ((int)num(k, "client_id") == id)
            return k;
    return NULL;
}

/* tmemd's view of the tenants: pool pages, tswap targets. */
static void from_tmemd(struct demo *d)
{
    static tmem__conn *admin;
    char *text = NULL;
    tmem__json *root = NULL;
    double pages = 0;

    if (d->phase != 0 || d->tmemd <= 0) {
        tmem__conn_close(admin);
        admin = NULL;
        return;
    }
    if (!admin) {
        setenv("TMEM_RING", "0", 1);
        if (tmem__conn_open(d->sock, &admin) < 0) {
            admin = NULL;
            return;
        }
    }
    if (tmem__conn_stats_json(admin, &text) < 0) {
        tmem__conn_close(admin);
        admin = NULL;
        return;
    }
    if (tmem__json_parse(text, &root) == 0) {
        for (int i = 0; i < DEMO_NT; i++) {
            struct demo_tenant *t = &d->t[i];
            const tmem__json *ts = NULL, *cs;
            int id;
            if (t->kind == DK_BATCH)
                continue;
            id = client_of(root, t->name, &ts);
            cs = id >= 0 ? client_stats(root, id) : NULL;
            t->pool = (num(cs, "eph_pages") + num(cs, "pers_pages")) * 4096;
            if (t->kind == DK_REDIS && ts)
                t->target = num(ts, "target") * 4096;
        }
        pages = num(tmem__json_get(root, "global"), "eph_pages") +
                num(tmem__json_get(root, "global"), "pers_pages");
        if (pages > d->pool_pages_max)
            d->pool_pages_max = pages;
    }
    tmem__json_free(root);
    free(text);
}

void demo_watch_drain(struct demo *d)
{
    for (int i = 0; i < DEMO_NT; i++)
        drain(&d->t[i]);
}

void demo_watch_tick(struct demo *d, double t)
{
    int ph = d->phase;
    size_t k = d->t[0].ns[ph];

    if (k >= DEMO_MAX_SAMPLES)
        return;
    from_tmemd(d);
    for (int i = 0; i < DEMO_NT; i++) {
        struct demo_tenant *tn = &d->t[i];
        struct demo_sample *s = &tn->s[ph][k];

        drain(tn);
        if (tn->kind != DK_SQLITE) {
            tn->ops = d->ctr->ops[i];
            tn->wrong = d->ctr->wrong[i];
            tn->read_b = (double)demo_proc_read_bytes(tn->pid);
        }
        s->t = t;
        s->mem = demo_cg_mem(d, tn->cg);
        if (tn->kind == DK_BATCH) {
            s->mem += demo_zram_mem(d);
            tn->pool = demo_zram_orig(d);
        }
        s->target = ph == 0 ? tn->target : 0;
        if (tn->kind == DK_SQLITE && s->target > 0) /* as its cgroup's */
            s->target += (double)(d->z.sqlite_cg_mb - d->z.cache_mb) * DEMO_MIB;
        s->pool = ph == 0 ? tn->pool : 0;
        s->ops_s = (double)(tn->ops - tn->ops_prev);
        tn->ops_prev = tn->ops;
        s->read_b = tn->read_b;
        s->hit = tn->kind == DK_SQLITE && ph == 0 ? tn->hit : -1;
        tn->ns[ph] = k + 1;
    }
    d->tmemd_mem[ph][k] = ph == 0 ? demo_cg_mem(d, d->tmemd_cg) : 0;
    d->zram_mem[ph][k] = demo_zram_mem(d);
}

/* Clears the rest of a line being redrawn: only on a terminal. */
static const char *el(const struct demo *d) { return d->tty ? "\033[K" : ""; }

static void mib(char *b, size_t cap, double bytes)
{
    if (bytes <= 0)
        snprintf(b, cap, "%8s", "-");
    else
        snprintf(b, cap, "%8.1f", bytes / DEMO_MIB);
}

void demo_view(struct demo *d, double t, bool final)
{
    static int last_lines;
    int ph = d->phase;
    size_t k = d->t[0].ns[ph];
    double host = 0;
    char m[16], tg[16], pl[16], hit[16];

    if (k == 0)
        return;
    if (!d->tty && !final && ((int)t % 10 != 0 || t < 1))
        return;
    for (int i = 0; i < DEMO_NT; i++)
        host += d->t[i].s[ph][k - 1].mem;
    host += d->tmemd_mem[ph][k - 1];
    if (d->tty && last_lines)
        printf("\033[%dA", last_lines);
    printf("%s phase %d/2, %s: %3.0f of %u s   host memory %.1f MiB%s%s\n",
           final ? "done:" : "     ", ph + 1, ph == 0 ? "with tmem" : "without",
           t, d->z.secs, host / DEMO_MIB,
           ph == 0 ? " (tenants + tmemd + zram)" : " (tenants)", el(d));
    printf("  %-9s %6s %8s %8s %8s %6s %9s %7s%s\n", "tenant", "weight",
           "mem MiB", "target", "pool", "hit", "ops/s", "wrong", el(d));
    for (int i = 0; i < DEMO_NT; i++) {
        struct demo_tenant *tn = &d->t[i];
        struct demo_sample *s = &tn->s[ph][k - 1];
        mib(m, sizeof m, s->mem);
        mib(tg, sizeof tg, s->target);
        mib(pl, sizeof pl, s->pool);
        if (s->hit >= 0)
            snprintf(hit, sizeof hit, "%5.0f%%", 100 * s->hit);
        else
            snprintf(hit, sizeof hit, "%6s", "-");
        printf("  %-9s %6u %s %s %s %s %9.0f %7llu%s\n", tn->name,
               tn->weight, m, tg, pl, hit, s->ops_s,
               (unsigned long long)tn->wrong, el(d));
    }
    if (ph == 0) {
        mib(m, sizeof m, d->tmemd_mem[ph][k - 1]);
        printf("  %-9s %6s %s   (pool: pages in tmem; batch: in zram)%s\n",
               "tmemd", "", m, el(d));
    }
    last_lines = final || !d->tty ? 0 : DEMO_NT + 2 + (ph == 0);
    fflush(stdout);
}

void demo_progress(struct demo *d, const char *what, int step, int steps)
{
    if (d->tty) {
        int w = 30, f = steps ? step * w / steps : w;
        printf("\r  [%.*s%.*s] %d/%d %s\033[K", f,
               "##############################", w - f,
               "..............................", step, steps, what);
        if (step == steps)
            printf("\n");
    } else {
        printf("  setup %d/%d: %s\n", step, steps, what);
    }
    fflush(stdout);
}

void demo_phase_totals(struct demo *d)
{
    int ph = d->phase;

    for (int i = 0; i < DEMO_NT; i++) {
        struct demo_tenant *t = &d->t[i];
        struct demo_result *r = &t->r[ph];
        size_t n = t->ns[ph];
        double sum = 0, ops = 0;

        for (size_t k = 0; k < n; k++) {
            sum += t->s[ph][k].mem;
            ops += t->s[ph][k].ops_s;
            if (t->s[ph][k].mem > r->mem_peak)
                r->mem_peak = t->s[ph][k].mem;
        }
        r->mem_mean = n ? sum / (double)n : 0;
        r->ops = t->ops;
        /* over the phase's seconds only (a driver may run a little longer) */
        r->ops_s = n ? ops / (double)n : 0;
        r->read_b = t->read_b;
        r->hit = t->hit;
        r->wrong = t->wrong;
        r->oom = demo_cg_ooms(d, t->cg);
    }
    double sum = 0, peak = 0;
    size_t n = d->t[0].ns[ph];
    for (size_t k = 0; k < n; k++) {
        double h = d->tmemd_mem[ph][k];
        for (int i = 0; i < DEMO_NT; i++)
            h += d->t[i].s[ph][k].mem;
        sum += h;
        if (h > peak)
            peak = h;
    }
    d->host_mean[ph] = n ? sum / (double)n : 0;
    d->host_peak[ph] = peak;
}
