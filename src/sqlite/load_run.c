/*
 * The driver's run: open (or create) the database, then S seconds of
 * Zipfian reads and P% updates, every read checked against the content
 * its (key, version) must have; one JSON line per interval.
 *
 * The driver is its database's only writer: it knows each key's version
 * (0, or what the table `updated` says from earlier runs, kept in the
 * same transaction as each update).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "load.h"
#include "tmem_sqlite.h"

struct run {
    const struct load_opts *o;
    sqlite3 *db;
    sqlite3_stmt *get, *put, *note, *begin, *commit;
    uint64_t rows, rng;
    uint32_t *ver;
    struct load_zipf z;
    uint64_t ops, reads, writes, wrong, last_ops;
    double t0, last_t;
    int err;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "name value" from /proc/self/io, or 0. */
static unsigned long long proc_io(const char *name)
{
    char line[128];
    unsigned long long v = 0;
    size_t n = strlen(name);
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, n) && line[n] == ':')
            v = strtoull(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

static int sql_fail(struct run *r, const char *what)
{
    fprintf(stderr, "tmem_sqlite_load: %s: %s: %s\n", r->o->db, what,
            sqlite3_errmsg(r->db));
    r->err = 1;
    return -1;
}

static int exec(struct run *r, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    fprintf(stderr, "tmem_sqlite_load: %s: %s: %s\n", r->o->db, sql, msg);
    sqlite3_free(msg);
    r->err = 1;
    return -1;
}

static int prepare(struct run *r, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) == SQLITE_OK)
        return 0;
    return sql_fail(r, sql);
}

/* Fills a new database with about create_mb MiB of rows, version 0. */
static int create(struct run *r)
{
    char v[LOAD_VALUE_MAX];
    sqlite3_stmt *ins;
    uint64_t rows = (uint64_t)r->o->create_mb * 1048576 / 760;
    if (exec(r, "BEGIN; CREATE TABLE kv(key INTEGER PRIMARY KEY, ver INTEGER "
                "NOT NULL, value BLOB NOT NULL); CREATE TABLE updated(key "
                "INTEGER PRIMARY KEY, ver INTEGER NOT NULL)") ||
        prepare(r, "INSERT INTO kv VALUES(?, 0, ?)", &ins))
        return -1;
    for (uint64_t k = 1; k <= rows; k++) {
        size_t n = load_value(k, 0, v);
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)k);
        sqlite3_bind_blob(ins, 2, v, (int)n, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            sqlite3_finalize(ins);
            return sql_fail(r, "insert");
        }
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    return exec(r, "COMMIT");
}

/* The rows and each key's version. */
static int load_versions(struct run *r)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db, "SELECT max(key) FROM kv", -1, &st, NULL)) {
        fprintf(stderr,
                "tmem_sqlite_load: %s: not a database of this driver (%s); "
                "give a new path with --create-mb N\n",
                r->o->db, sqlite3_errmsg(r->db));
        r->err = 2;
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW)
        r->rows = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (r->rows == 0 || !(r->ver = calloc(r->rows + 1, sizeof *r->ver))) {
        fprintf(stderr, "tmem_sqlite_load: %s: %s\n", r->o->db,
                r->rows ? "out of memory" : "no rows");
        r->err = 2;
        return -1;
    }
    if (prepare(r, "SELECT key, ver FROM updated", &st))
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint64_t k = (uint64_t)sqlite3_column_int64(st, 0);
        if (k >= 1 && k <= r->rows)
            r->ver[k] = (uint32_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return 0;
}

static int open_db(struct run *r)
{
    struct stat st;
    bool exists = stat(r->o->db, &st) == 0;
    char sql[96];
    if (!exists && !r->o->create_mb) {
        fprintf(stderr, "tmem_sqlite_load: %s: no such database (--create-mb "
                        "N makes one)\n", r->o->db);
        r->err = 2;
        return -1;
    }
    int flags = SQLITE_OPEN_READWRITE | (exists ? 0 : SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(r->o->db, &r->db, flags, NULL) != SQLITE_OK) {
        fprintf(stderr, "tmem_sqlite_load: %s: cannot open: %s\n", r->o->db,
                r->db ? sqlite3_errmsg(r->db) : "out of memory");
        r->err = 2;
        return -1;
    }
    snprintf(sql, sizeof sql,
             "PRAGMA cache_size=%ld; PRAGMA synchronous=OFF; "
             "PRAGMA journal_mode=TRUNCATE",
             r->o->cache_mb * 256);
    if (exec(r, sql)) {
        r->err = 2; /* not a database, or not ours to write */
        return -1;
    }
    if ((!exists && create(r)) || load_versions(r))
        return -1;
    return prepare(r, "SELECT ver, value FROM kv WHERE key=?", &r->get) ||
           prepare(r, "UPDATE kv SET ver=?, value=? WHERE key=?", &r->put) ||
           prepare(r, "INSERT OR REPLACE INTO updated VALUES(?, ?)",
                   &r->note) ||
           prepare(r, "BEGIN", &r->begin) || prepare(r, "COMMIT", &r->commit);
}

static int step_done(struct run *r, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(r, sqlite3_sql(st));
}

static int read_one(struct run *r, uint64_t key)
{
    char want[LOAD_VALUE_MAX];
    sqlite3_bind_int64(r->get, 1, (sqlite3_int64)key);
    int rc = sqlite3_step(r->get);
    if (rc == SQLITE_ROW) {
        uint32_t v = (uint32_t)sqlite3_column_int64(r->get, 0);
        size_t n = load_value(key, r->ver[key], want);
        const void *got = sqlite3_column_blob(r->get, 1);
        if (v != r->ver[key] || (size_t)sqlite3_column_bytes(r->get, 1) != n ||
            memcmp(got, want, n) != 0)
            r->wrong++;
    } else if (rc == SQLITE_DONE) {
        r->wrong++; /* the row is gone */
    }
    sqlite3_reset(r->get);
    r->reads++;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sql_fail(r, "read");
}

static int write_one(struct run *r, uint64_t key)
{
    char v[LOAD_VALUE_MAX];
    uint32_t ver = r->ver[key] + 1;
    size_t n = load_value(key, ver, v);
    sqlite3_bind_int64(r->put, 1, ver);
    sqlite3_bind_blob(r->put, 2, v, (int)n, SQLITE_STATIC);
    sqlite3_bind_int64(r->put, 3, (sqlite3_int64)key);
    sqlite3_bind_int64(r->note, 1, (sqlite3_int64)key);
    sqlite3_bind_int64(r->note, 2, ver);
    if (step_done(r, r->begin) || step_done(r, r->put) ||
        step_done(r, r->note) || step_done(r, r->commit)) {
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    r->ver[key] = ver;
    r->writes++;
    return 0;
}

static void report(struct run *r, double t, bool done)
{
    tmem_sqlite_stats s;
    unsigned long long file_bytes;
    tmem_sqlite_stats_get(&s);
    if (r->o->no_tmem) { /* no VFS of ours: every byte read() returned */
        s.cache_pages = s.target_pages = (uint64_t)r->o->cache_mb * 256;
        file_bytes = proc_io("rchar");
    } else {
        file_bytes = (unsigned long long)s.file_read_bytes;
    }
    double dt = done ? t - r->t0 : t - r->last_t; /* the last: whole run */
    uint64_t dops = done ? r->ops : r->ops - r->last_ops;
    printf("{\"t\":%.3f,\"name\":\"%s\",\"ops\":%llu,\"ops_s\":%.1f,"
           "\"reads\":%llu,\"writes\":%llu,\"wrong\":%llu,"
           "\"cache_pages\":%llu,\"target_pages\":%llu,\"cc_gets\":%llu,"
           "\"cc_hits\":%llu,\"cc_puts\":%llu,\"file_read_bytes\":%llu,"
           "\"io_read_bytes\":%llu%s}\n",
           t - r->t0, r->o->name, (unsigned long long)r->ops,
           dt > 0 ? (double)dops / dt : 0.0,
           (unsigned long long)r->reads, (unsigned long long)r->writes,
           (unsigned long long)r->wrong, (unsigned long long)s.cache_pages,
           (unsigned long long)s.target_pages, (unsigned long long)s.cc_gets,
           (unsigned long long)s.cc_hits, (unsigned long long)s.cc_puts,
           file_bytes, proc_io("read_bytes"), done ? ",\"done\":true" : "");
    fflush(stdout);
    r->last_t = t;
    r->last_ops = r->ops;
}

static void work(struct run *r)
{
    double iv = (double)r->o->interval_ms / 1000.0, next = r->t0 + iv;
    double end = r->t0 + (double)r->o->seconds, t = now();
    while (t < end && !r->err) {
        double u = (double)(load_rand(&r->rng) >> 11) / 9007199254740992.0;
        uint64_t key = load_scatter(load_zipf_next(&r->z, u), r->rows) + 1;
        if (load_rand(&r->rng) % 10000 < (uint64_t)r->o->write_pct * 100)
            write_one(r, key);
        else
            read_one(r, key);
        r->ops++;
        t = now();
        if (t >= next) {
            report(r, t, false);
            next += iv;
        }
    }
    report(r, now(), true);
}

static int install(const struct load_opts *o)
{
    char err[512];
    tmem_sqlite_options to;
    tmem_sqlite_options_init(&to);
    to.socket = o->socket;
    to.interval_ms = o->interval_ms;
    to.optional = 0;
    setenv("TMEM_NAME", o->name, 1);
    if (tmem_sqlite_install(&to, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "tmem_sqlite_load: %s\n", err);
    return -1;
}

int load_run(const struct load_opts *o)
{
    struct run r = {.o = o, .rng = o->seed * 0x9e3779b97f4a7c15ull + 1};
    if (!o->no_tmem && install(o))
        return 2;
    r.t0 = r.last_t = now();
    if (open_db(&r) == 0) {
        load_zipf_init(&r.z, r.rows, o->zipf);
        r.t0 = r.last_t = now();
        work(&r);
    }
    sqlite3_stmt *sts[] = {r.get, r.put, r.note, r.begin, r.commit};
    for (size_t i = 0; i < sizeof sts / sizeof *sts; i++)
        sqlite3_finalize(sts[i]);
    sqlite3_close(r.db);
    free(r.ver);
    if (r.err)
        return r.err;
    if (r.wrong)
        fprintf(stderr, "tmem_sqlite_load: %llu wrong reads\n",
                (unsigned long long)r.wrong);
    return r.wrong ? 1 : 0;
}
