/*
 * tmem demo: the report.  In d->out: the samples as CSV, PNG plots drawn
 * by gnuplot from them, report.md (headline figures first, beside the
 * original's published ones, then the checks, each tenant, the plots) and
 * summary.json (the same figures for programs: make check reads it).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"

struct headline {
    double saved, saved_pct, reads[2], reads_pct, tput_pct;
    uint64_t ooms, wrong;
    int failed;
    bool pool_ok, saved_ok;
};

static double pct(double now, double before)
{
    return before > 0 ? 100.0 * (now - before) / before : 0;
}

static void figures(const struct demo *d, struct headline *h)
{
    double logsum = 0;
    int nlog = 0;

    memset(h, 0, sizeof *h);
    h->saved = d->host_mean[1] - d->host_mean[0];
    h->saved_pct = d->host_mean[1] > 0 ? 100 * h->saved / d->host_mean[1] : 0;
    for (int i = 0; i < DEMO_NT; i++) {
        const struct demo_tenant *t = &d->t[i];
        for (int ph = 0; ph < 2; ph++) {
            h->ooms += t->r[ph].oom;
            h->wrong += t->r[ph].wrong;
            h->failed += t->r[ph].failed;
            if (t->kind == DK_SQLITE)
                h->reads[ph] += t->r[ph].read_b;
        }
        if (t->r[0].ops_s > 0 && t->r[1].ops_s > 0) {
            logsum += log(t->r[0].ops_s / t->r[1].ops_s);
            nlog++;
        }
    }
    h->reads_pct = pct(h->reads[0], h->reads[1]);
    h->tput_pct = nlog ? 100 * (exp(logsum / nlog) - 1) : 0;
    h->pool_ok = d->pool_pages_max > 0;
    h->saved_ok = h->saved > 0;
}

/* ---- CSV and plots ------------------------------------------------------- */

static FILE *open_out(const struct demo *d, const char *name)
{
    char p[600];
    FILE *f;
    snprintf(p, sizeof p, "%s/%s", d->out, name);
    if (!(f = fopen(p, "w")))
        fprintf(stderr, "tmem demo: cannot write %s: %s\n", p,
                strerror(errno));
    return f;
}

/* samples-PHASE.csv: t, then per tenant mem, target, pool, ops_s, read
 * (MiB and ops), then tmemd's memory and the host's. */
static int write_csv(const struct demo *d, int ph)
{
    char name[32];
    FILE *f;

    snprintf(name, sizeof name, "samples-%s.csv", ph ? "without" : "with");
    if (!(f = open_out(d, name)))
        return -1;
    fprintf(f, "t");
    for (int i = 0; i < DEMO_NT; i++)
        fprintf(f, ",%s_mem,%s_target,%s_pool,%s_ops_s,%s_read", d->t[i].name,
                d->t[i].name, d->t[i].name, d->t[i].name, d->t[i].name);
    fprintf(f, ",tmemd_mem,host_mem\n");
    for (size_t k = 0; k < d->t[0].ns[ph]; k++) {
        double host = d->tmemd_mem[ph][k];
        fprintf(f, "%.0f", d->t[0].s[ph][k].t);
        for (int i = 0; i < DEMO_NT; i++) {
            const struct demo_sample *s = &d->t[i].s[ph][k];
            host += s->mem;
            fprintf(f, ",%.2f,%.2f,%.2f,%.0f,%.2f", s->mem / DEMO_MIB,
                    s->target / DEMO_MIB, s->pool / DEMO_MIB, s->ops_s,
                    s->read_b / DEMO_MIB);
        }
        fprintf(f, ",%.2f,%.2f\n", d->tmemd_mem[ph][k] / DEMO_MIB,
                host / DEMO_MIB);
    }
    return fclose(f);
}

/* Column of tenant i's field (0 mem, 1 target, 2 pool, 3 ops_s, 4 read). */
static int col(int i, int field) { return 2 + i * 5 + field; }

static int plots(const struct demo *d)
{
    static const char *color[DEMO_NT] = {"#1f77b4", "#ff7f0e", "#2ca02c",
                                         "#9467bd"};
    FILE *g = open_out(d, "plots.gp");
    char cmd[700];

    if (!g)
        return -1;
    fprintf(g, "set terminal pngcairo size 1000,560 font 'sans,11'\n"
               "set datafile separator ','\nset key outside right\n"
               "set grid\nset xlabel 'seconds'\n"
               "W='samples-with.csv'\nO='samples-without.csv'\n");
    /* memory per tenant with its balloon target */
    fprintf(g, "set output 'memory.png'\nset title 'Memory per tenant with "
               "tmem (solid) and its balloon target (dashed)'\n"
               "set ylabel 'MiB'\nplot ");
    for (int i = 0; i < DEMO_NT; i++)
        fprintf(g,
                "W u 1:%d w l lw 2 lc rgb '%s' t '%s', "
                "W u 1:($%d>0?$%d:1/0) w l dt 2 lc rgb '%s' t '%s target', ",
                col(i, 0), color[i], d->t[i].name, col(i, 1), col(i, 1),
                color[i], d->t[i].name);
    fprintf(g, "W u 1:%d w l lw 2 lc rgb 'black' t 'tmemd'\n",
            col(DEMO_NT, 0));
    /* host memory, with and without */
    fprintf(g, "set output 'host.png'\nset title 'Host memory: tenants, "
               "tmemd and zram together'\n"
               "plot W u 1:%d w l lw 2 t 'with tmem', O u 1:%d w l lw 2 "
               "t 'without'\n",
            col(DEMO_NT, 1), col(DEMO_NT, 1));
    /* pool contents, stacked */
    fprintf(g, "set output 'pool.png'\nset title 'Pages in tmem by tenant "
               "(stacked; weights 3:1:2)'\nset ylabel 'MiB of pages'\n"
               "plot W u 1:($%d+$%d+$%d) w filledcurves x1 lc rgb '%s' "
               "t 'redis', W u 1:($%d+$%d) w filledcurves x1 lc rgb '%s' "
               "t 'sqlite-b', W u 1:%d w filledcurves x1 lc rgb '%s' "
               "t 'sqlite-a'\n",
            col(0, 2), col(1, 2), col(2, 2), color[2], col(0, 2), col(1, 2),
            color[1], col(0, 2), color[0]);
    /* storage reads */
    fprintf(g, "set output 'reads.png'\nset title 'Bytes the SQLite "
               "tenants read from storage (so far)'\nset ylabel 'MiB'\n"
               "plot ");
    for (int i = 0; i < 2; i++)
        fprintf(g, "W u 1:%d w l lw 2 lc rgb '%s' t '%s with tmem', "
                   "O u 1:%d w l dt 2 lw 2 lc rgb '%s' t '%s without'%s",
                col(i, 4), color[i], d->t[i].name, col(i, 4), color[i],
                d->t[i].name, i ? "\n" : ", ");
    /* throughput */
    fprintf(g, "set output 'throughput.png'\nset title 'Operations per "
               "second (solid: with tmem, dashed: without)'\n"
               "set ylabel 'ops/s'\nset logscale y\nplot ");
    for (int i = 0; i < DEMO_NT; i++)
        fprintf(g, "W u 1:($%d>0?$%d:1/0) w l lw 2 lc rgb '%s' t '%s', "
                   "O u 1:($%d>0?$%d:1/0) w l dt 2 lc rgb '%s' notitle%s",
                col(i, 3), col(i, 3), color[i], d->t[i].name, col(i, 3),
                col(i, 3), color[i], i == DEMO_NT - 1 ? "\n" : ", ");
    fclose(g);
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot plots.gp 2>gnuplot.log",
             d->out);
    if (system(cmd) != 0) {
        fprintf(stderr, "tmem demo: gnuplot failed (see %s/gnuplot.log); "
                        "the report has no plots\n", d->out);
        return -1;
    }
    return 0;
}

/* ---- report.md and summary.json ----------------------------------------- */

static const char *mark(bool ok) { return ok ? "yes" : "**NO**"; }

static void report_md(const struct demo *d, FILE *f, const struct headline *h,
                      bool plotted)
{
    time_t now = time(NULL);
    char when[64];

    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(f, "# tmem demo report\n\n%s run, %s: two phases of %u s each "
               "on the same tenants, seeds and memory, first with tmem, then "
               "without.\n\n",
            d->quick ? "Quick" : "Full", when, d->z.secs);
    fprintf(f, "## Headline\n\n| | with tmem | without | change |\n"
               "|---|---:|---:|---:|\n");
    fprintf(f, "| host memory, mean | %.1f MiB | %.1f MiB | **%+.1f%%** "
               "(%.1f MiB %s) |\n",
            d->host_mean[0] / DEMO_MIB, d->host_mean[1] / DEMO_MIB,
            -h->saved_pct, fabs(h->saved) / DEMO_MIB,
            h->saved >= 0 ? "saved" : "more");
    fprintf(f, "| host memory, peak | %.1f MiB | %.1f MiB | %+.1f%% |\n",
            d->host_peak[0] / DEMO_MIB, d->host_peak[1] / DEMO_MIB,
            pct(d->host_peak[0], d->host_peak[1]));
    fprintf(f, "| SQLite reads from storage | %.1f MiB | %.1f MiB | "
               "**%+.1f%%** |\n",
            h->reads[0] / DEMO_MIB, h->reads[1] / DEMO_MIB, h->reads_pct);
    fprintf(f, "| throughput (geometric mean of the tenants' ratios) | | | "
               "**%+.1f%%** |\n\n",
            h->tput_pct);
    fprintf(f, "The original system (Xen's tmem with self-ballooning, on a "
               "kernel build in a guest) published *up to 8%% faster, up to "
               "52%% fewer sectors read*.  Here: throughput %+.1f%%, "
               "storage reads %+.1f%%, host memory %+.1f%%.\n\n",
            h->tput_pct, h->reads_pct, -h->saved_pct);
    fprintf(f, "## Checks\n\n| check | holds |\n|---|---|\n"
               "| no OOM kill (%llu) | %s |\n"
               "| every answer right (%llu wrong) | %s |\n"
               "| every tenant ran to the end | %s |\n"
               "| pages in tmem's pool (at most %.0f at once) | %s |\n"
               "| host memory saved (%.1f MiB) | %s |\n\n",
            (unsigned long long)h->ooms, mark(h->ooms == 0),
            (unsigned long long)h->wrong, mark(h->wrong == 0),
            mark(h->failed == 0), d->pool_pages_max, mark(h->pool_ok),
            h->saved / DEMO_MIB, mark(h->saved_ok));
    for (int i = 0; i < DEMO_NT; i++)
        for (int ph = 0; ph < 2; ph++)
            if (d->t[i].r[ph].failed)
                fprintf(f, "- %s %s: %s\n", d->t[i].name,
                        ph ? "without tmem" : "with tmem", d->t[i].r[ph].why);
    fprintf(f, "\n## Tenants\n\n| tenant | weight | memory mean with / "
               "without (MiB) | peak with / without | ops/s with / without "
               "| storage reads with / without (MiB) | misses served by tmem |\n"
               "|---|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < DEMO_NT; i++) {
        const struct demo_tenant *t = &d->t[i];
        char hit[16] = "-";
        if (t->kind == DK_SQLITE && t->r[0].hit >= 0)
            snprintf(hit, sizeof hit, "%.0f%%", 100 * t->r[0].hit);
        fprintf(f, "| %s | %s%u | %.1f / %.1f | %.1f / %.1f | %.0f / %.0f "
                   "| %.1f / %.1f | %s |\n",
                t->name, t->weight ? "" : "(cgroup) ", t->weight,
                t->r[0].mem_mean / DEMO_MIB, t->r[1].mem_mean / DEMO_MIB,
                t->r[0].mem_peak / DEMO_MIB, t->r[1].mem_peak / DEMO_MIB,
                t->r[0].ops_s, t->r[1].ops_s, t->r[0].read_b / DEMO_MIB,
                t->r[1].read_b / DEMO_MIB, hit);
    }
    if (plotted)
        fprintf(f, "\n## Plots\n\n![memory per tenant](memory.png)\n\n"
                   "![host memory](host.png)\n\n![pool by tenant](pool.png)"
                   "\n\n![storage reads](reads.png)\n\n"
                   "![throughput](throughput.png)\n");
    fprintf(f,
            "\n## How it was measured\n\n"
            "- Each tenant runs in a memory cgroup of its own; its memory is "
            "the cgroup's usage, sampled every second.  The batch tenant's "
            "also counts what zram takes for its pages; with tmem, tmemd's "
            "cgroup counts as host memory too.\n"
            "- SQLite tenants: page cache %u MiB at most, cgroup %u MiB "
            "(so their databases of %u MiB cannot stay in the kernel's page "
            "cache).  With tmem the self-balloon controller sizes the page "
            "cache; the demo shrinks the tenant's cgroup by as much, as a "
            "guest's balloon shrinks the whole guest.  Storage reads are "
            "the process's read_bytes (/proc/PID/io), after each database "
            "was dropped from the kernel's page cache.\n"
            "- redis: %u MiB of 4 KiB values, Zipfian GETs over a quarter of "
            "them (the rest stay cold), each compared with the value set.  batch: %u MiB of anonymous memory "
            "touched all the time, every page checked when touched, and a "
            "log written at 16 MiB/s (truncated at %u MiB), in a %u MiB "
            "cgroup.\n"
            "- tmemd's budget: %u MiB.  Samples: samples-with.csv, "
            "samples-without.csv; plots: plots.gp.\n"
            "- Throughput depends on what a storage read costs here.  A "
            "SQLite miss served by tmem is a round trip to tmemd (a "
            "cross-process wake-up each way); one served by storage is a "
            "read(2), which on a virtual disk backed by the host's page "
            "cache can cost less.  On a real disk, where a read waits for "
            "the device, the storage reads saved above are time saved.\n",
            d->z.cache_mb, d->z.sqlite_cg_mb, d->z.db_mb, d->z.redis_mb,
            d->z.batch_hot_mb, d->z.batch_mb, d->z.batch_cg_mb,
            d->z.budget_mb);
}

static void summary_json(const struct demo *d, FILE *f,
                         const struct headline *h)
{
    fprintf(f, "{\"quick\":%s,\"seconds\":%u,\"host_mean_with\":%.0f,"
               "\"host_mean_without\":%.0f,\"memory_saved_bytes\":%.0f,"
               "\"reads_with\":%.0f,\"reads_without\":%.0f,"
               "\"throughput_change_pct\":%.2f,\"pool_pages_max\":%.0f,"
               "\"oom_kills\":%llu,\"wrong\":%llu,\"failed\":%d,"
               "\"checks_ok\":%s,\"tenants\":[",
            d->quick ? "true" : "false", d->z.secs, d->host_mean[0],
            d->host_mean[1], h->saved, h->reads[0], h->reads[1],
            h->tput_pct, d->pool_pages_max, (unsigned long long)h->ooms,
            (unsigned long long)h->wrong, h->failed,
            h->ooms == 0 && h->wrong == 0 && !h->failed && h->pool_ok &&
                    h->saved_ok
                ? "true"
                : "false");
    for (int i = 0; i < DEMO_NT; i++) {
        const struct demo_tenant *t = &d->t[i];
        fprintf(f, "%s{\"name\":\"%s\",\"weight\":%u,\"mem_mean_with\":%.0f,"
                   "\"mem_mean_without\":%.0f,\"ops_s_with\":%.1f,"
                   "\"ops_s_without\":%.1f,\"ops_with\":%llu,"
                   "\"ops_without\":%llu,\"reads_with\":%.0f,"
                   "\"reads_without\":%.0f,\"hit\":%.3f,\"samples\":%zu}",
                i ? "," : "", t->name, t->weight, t->r[0].mem_mean,
                t->r[1].mem_mean, t->r[0].ops_s, t->r[1].ops_s,
                (unsigned long long)t->r[0].ops,
                (unsigned long long)t->r[1].ops, t->r[0].read_b,
                t->r[1].read_b, t->r[0].hit, t->ns[0]);
    }
    fprintf(f, "]}\n");
}

int demo_report(struct demo *d)
{
    struct headline h;
    FILE *f;
    bool plotted;

    if (mkdir(d->out, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "tmem demo: cannot make %s: %s\n", d->out,
                strerror(errno));
        return -1;
    }
    figures(d, &h);
    if (write_csv(d, 0) != 0 || write_csv(d, 1) != 0)
        return -1;
    plotted = plots(d) == 0;
    if (!(f = open_out(d, "report.md")))
        return -1;
    report_md(d, f, &h, plotted);
    fclose(f);
    if (!(f = open_out(d, "summary.json")))
        return -1;
    summary_json(d, f, &h);
    fclose(f);
    printf("tmem demo: host memory %.1f MiB with tmem, %.1f MiB without "
           "(%+.1f%%); SQLite storage reads %+.1f%%; throughput %+.1f%%\n"
           "           (the original: up to 8%% faster, up to 52%% fewer "
           "sectors read)\n",
           d->host_mean[0] / DEMO_MIB, d->host_mean[1] / DEMO_MIB,
           -h.saved_pct, h.reads_pct, h.tput_pct);
    printf("tmem demo: checks: no OOM %s, answers right %s, tenants ran %s, "
           "pool used %s, memory saved %s\n",
           mark(h.ooms == 0), mark(h.wrong == 0), mark(h.failed == 0),
           mark(h.pool_ok), mark(h.saved_ok));
    printf("tmem demo: report in %s/report.md%s\n", d->out,
           plotted ? " (with plots)" : "");
    return h.ooms == 0 && h.wrong == 0 && !h.failed && h.pool_ok && h.saved_ok
               ? 0
               : -1;
}
