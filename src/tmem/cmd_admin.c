/*
 * The tmem CLI's admin commands: list, set, freeze/thaw, flush, freeable,
 * auth, destroy, stats.  Each opens one connection to tmemd (never the
 * embedded fallback: there is nothing to administer in-process), makes one
 * admin call and prints the result.
 *
 * Exit status: 0 ok; 1 the operation failed (message "tmem: CMD ARGS:
 * words (ENAME)", or "cannot reach tmemd at PATH: ..."); 2 usage.
 * Tables are rendered from the daemon's JSON (one source of truth for the
 * counters): a fixed column table per level, extra keys ignored.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmem/errors.h>
#include <tmem/store.h>

#include "client/json.h"
#include "cmds.h"
#include "proto/conn.h"

/* ---- helpers --------------------------------------------------------------
 */

static const char *sock_path(const struct tmem_cli *cli)
{
    return cli->socket ? cli->socket : tmem__conn_default_path();
}

/* Opens the admin connection; prints the reason and returns NULL.  No
 * ring: admin calls go over the socket, and a ring's memory would be
 * charged to the store's budget for nothing (one command per process). */
static tmem__conn *admin_open(const struct tmem_cli *cli)
{
    tmem__conn *c = NULL;
    setenv("TMEM_RING", "0", 1);
    int rc = tmem__conn_open(cli->socket, &c);
    if (rc < 0) {
        fprintf(stderr, "tmem: cannot reach tmemd at %s: %s (%s)\n",
                sock_path(cli), tmem_strerror(rc), tmem_errname(rc));
        return NULL;
    }
    return c;
}

/* Prints "tmem: <argv joined>: <words> (<ENAME>)" and returns CLI_FAIL. */
static int op_failed(int argc, char **argv, int64_t rc)
{
    fprintf(stderr, "tmem:");
    for (int i = 0; i < argc; i++)
        fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, ": %s (%s)\n", tmem_strerror((int)rc),
            tmem_errname((int)rc));
    return CLI_FAIL;
}

static int usage_err(const char *msg)
{
    fprintf(stderr, "tmem: %s\n", msg);
    return CLI_USAGE;
}

/* Parses a decimal u64 (whole string); false when malformed. */
static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* CLIENT: a client id >= 0, or "all" when allow_all. */
static bool parse_client(const char *s, bool allow_all, int *out)
{
    uint64_t v;
    if (allow_all && strcmp(s, "all") == 0) {
        *out = TMEM_ALL_CLIENTS;
        return true;
    }
    if (!parse_u64(s, &v) || v > INT32_MAX)
        return false;
    *out = (int)v;
    return true;
}

/* UUID in 8-4-4-4-12 hex form -> two u64 (first 16 digits, last 16). */
static bool parse_uuid(const char *s, uint64_t uuid[2])
{
    static const int dash[] = {8, 13, 18, 23};
    char hex[33];
    size_t n = 0;

    if (strlen(s) != 36)
        return false;
    for (size_t i = 0, d = 0; i < 36; i++) {
        if (d < 4 && (int)i == dash[d]) {
            if (s[i] != '-')
                return false;
            d++;
            continue;
        }
        if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
            return false;
        hex[n++] = s[i];
    }
    hex[n] = '\0';
    char hi[17];
    memcpy(hi, hex, 16);
    hi[16] = '\0';
    uuid[0] = strtoull(hi, NULL, 16);
    uuid[1] = strtoull(hex + 16, NULL, 16);
    return true;
}

/* A size for cap: pages, or bytes with a K/M/G suffix (rounded up). */
static bool parse_cap(const char *s, uint64_t *pages)
{
    static const struct {
        char suffix;
        unsigned shift;
    } units[] = {{'K', 10}, {'M', 20}, {'G', 30},
                 {'k', 10}, {'m', 20}, {'g', 30}};
    size_t len = strlen(s);
    for (size_t i = 0; len > 1 && i < sizeof units / sizeof units[0]; i++) {
        if (s[len - 1] != units[i].suffix)
            continue;
        char num[32];
        uint64_t v;
        if (len >= sizeof num)
            return false;
        memcpy(num, s, len - 1);
        num[len - 1] = '\0';
        if (!parse_u64(num, &v) || v > (UINT64_MAX >> units[i].shift))
            return false;
        *pages = ((v << units[i].shift) + TMEM_PAGE_SIZE - 1) / TMEM_PAGE_SIZE;
        return true;
    }
    return parse_u64(s, pages);
}

/* ---- list / stats ------------------------------------------------------- */

static void print_value(const tmem__json *v, int width)
{
    if (!v)
        printf("%*s", width, "-");
    else if (v->type == TMEM_JSON_BOOL)
        printf("%*s", width, v->num ? "yes" : "no");
    else if (v->type == TMEM_JSON_NUMBER || v->type == TMEM_JSON_STRING)
        printf("%*s", width, v->str);
    else
        printf("%*s", width, "?");
}

struct column {
    const char *key, *head;
    int width;
};

static const struct column client_cols[] = {
    {"client_id", "id", 4},       {"weight", "weight", 7},
    {"cap_pages", "cap", 8},      {"compress", "codec", 6},
    {"frozen", "frozen", 7},      {"dead", "dead", 5},
    {"eph_pages", "eph", 9},      {"pers_pages", "pers", 9},
    {"data_bytes", "data_B", 11}, {"evicted", "evicted", 8},
};

static const struct column pool_cols[] = {
    {"pool_id", "pool", 6},        {"persistent", "pers", 5},
    {"shared", "shared", 7},       {"sharers", "shr", 4},
    {"pages", "pages", 9},         {"objects", "objs", 7},
    {"puts_good", "puts", 9},      {"gets_found", "gets", 9},
    {"flushes_found", "flush", 7}, {"evictions", "evict", 7},
};

/* The cells of a row (the heads with head; "-" for what obj lacks, all
 * of them when obj is NULL), end after the last. */
static void print_cells(const tmem__json *obj, const struct column *cols,
                        size_t n, bool head, const char *end)
{
    for (size_t i = 0; i < n; i++) {
        if (head)
            printf("%*s", cols[i].width, cols[i].head);
        else
            print_value(tmem__json_get(obj, cols[i].key), cols[i].width);
        printf("%s", i + 1 < n ? " " : end);
    }
}

static void print_row(const tmem__json *obj, const struct column *cols,
                      size_t n, bool head)
{
    print_cells(obj, cols, n, head, "\n");
}

#define NCOLS(a) (sizeof a / sizeof a[0])

/* An object's members as "key value" pairs, two to a line. */
static void print_pairs(const char *title, const tmem__json *g)
{
    int col = 0;
    printf("%s:\n", title);
    for (const tmem__json *k = g ? g->kids : NULL; k; k = k->next) {
        printf("  %-20s %12s", k->key ? k->key : "?",
               k->str ? k->str : (k->num ? "yes" : "no"));
        printf(++col % 2 == 0 ? "\n" : "");
    }
    if (col % 2)
        printf("\n");
}

static void print_global(const tmem__json *g)
{
    print_pairs("global", g);
}

/* The daemon's admission limits, what it refused, by reason (tmemd(8):
 * connections, messages, rings, persistent puts over the default cap),
 * and its policy file (rules in force, loads and failed loads). */
static void print_admission(const tmem__json *root)
{
    static const char *const part[] = {"admission", "refusals", "policy"};
    for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
        const tmem__json *v = tmem__json_get(root, part[i]);
        if (v) {
            printf("\n");
            print_pairs(part[i], v);
        }
    }
}

/* The live connections: who (name, pid, uid; the cgroup last, as long
 * as it is), its ring's bytes (charged to it), pcap (its persistent cap:
 * its tenant's weighted share of the budget or the policy's pcap, in
 * pages, 0 for none), rule (the line of the policy file that applies, 0
 * for none), and for tswap tenants (tmem run) their own figures ("tswap"
 * in each connection: pages resident, the target, pages in the store,
 * faults, page-in latency; "-" for others). */
static const struct column conn_cols[] = {
    {"client", "id", 4}, {"name", "name", 16},        {"pid", "pid", 8},
    {"uid", "uid", 6},   {"ring_bytes", "ring_B", 8}, {"pers_cap", "pcap", 9},
    {"rule", "rule", 5},
};
static const struct column tswap_cols[] = {
    {"resident", "resident", 9},     {"target", "target", 9},
    {"stored", "stored", 9},         {"faults", "faults", 9},
    {"pagein_p50_us", "in_p50_us", 10}, {"pagein_p99_us", "in_p99_us", 10},
};

static void print_connections(const tmem__json *conns)
{
    if (!conns || !conns->n)
        return;
    printf("\nconnections:\n");
    print_cells(NULL, conn_cols, NCOLS(conn_cols), true, " ");
    print_cells(NULL, tswap_cols, NCOLS(tswap_cols), true, " cgroup\n");
    for (const tmem__json *c = conns->kids; c; c = c->next) {
        const tmem__json *cg = tmem__json_get(c, "cgroup");
        print_cells(c, conn_cols, NCOLS(conn_cols), false, " ");
        print_cells(tmem__json_get(c, "tswap"), tswap_cols, NCOLS(tswap_cols),
                    false, " ");
        printf("%s\n", cg && cg->str && cg->str[0] ? cg->str : "-");
    }
}

static void print_tables(const tmem__json *root)
{
    const tmem__json *clients = tmem__json_get(root, "clients");
    print_global(tmem__json_get(root, "global"));
    print_connections(tmem__json_get(root, "connections"));
    print_admission(root);
    printf("\nclients:\n");
    print_row(NULL, client_cols, NCOLS(client_cols), true);
    for (const tmem__json *c = clients ? clients->kids : NULL; c; c = c->next) {
        print_row(c, client_cols, NCOLS(client_cols), false);
        const tmem__json *pools = tmem__json_get(c, "pools");
        if (!pools || !pools->n)
            continue;
        printf("    ");
        print_row(NULL, pool_cols, NCOLS(pool_cols), true);
        for (const tmem__json *p = pools->kids; p; p = p->next) {
            printf("    ");
            print_row(p, pool_cols, NCOLS(pool_cols), false);
        }
    }
}

/* Fetches the daemon's JSON and prints it raw or as tables. */
static int show_stats(struct tmem_cli *cli, int argc, char **argv, bool json,
                      bool global_only)
{
    tmem__conn *c = admin_open(cli);
    char *text = NULL;
    tmem__json *root = NULL;
    int rc;

    if (!c)
        return CLI_FAIL;
    rc = tmem__conn_stats_json(c, &text);
    tmem__conn_close(c);
    if (rc < 0)
        return op_failed(argc, argv, rc);
    if (json) {
        printf("%s\n", text);
        free(text);
        return CLI_OK;
    }
    rc = tmem__json_parse(text, &root);
    free(text);
    if (rc < 0) {
        fprintf(stderr, "tmem: %s: the daemon sent malformed JSON\n", argv[0]);
        return CLI_FAIL;
    }
    if (global_only)
        print_global(tmem__json_get(root, "global"));
    else
        print_tables(root);
    tmem__json_free(root);
    return CLI_OK;
}

int cmd_list(struct tmem_cli *cli, int argc, char **argv)
{
    bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json))
        return usage_err("usage: tmem list [--json]");
    return show_stats(cli, argc, argv, json, false);
}

int cmd_stats(struct tmem_cli *cli, int argc, char **argv)
{
    if (argc == 1)
        return show_stats(cli, argc, argv, false, true);
    if (argc == 2 && strcmp(argv[1], "--json") == 0)
        return show_stats(cli, argc, argv, true, false);
    if (argc != 2 || strcmp(argv[1], "--prometheus") != 0)
        return usage_err("usage: tmem stats [--prometheus|--json]");
    tmem__conn *c = admin_open(cli);
    char *text = NULL;
    if (!c)
        return CLI_FAIL;
    int rc = tmem__conn_prometheus(c, &text);
    tmem__conn_close(c);
    if (rc < 0)
        return op_failed(argc, argv, rc);
    fputs(text, stdout);
    free(text);
    return CLI_OK;
}

/* ---- set ------------------------------------------------------------------
 */

/* A setter's result for a malformed VALUE (a usage error, exit 2). */
#define USAGE_MARK (TMEM_EINVAL - 10000)

static int set_weight(tmem__conn *c, int id, const char *v)
{
    uint64_t w;
    if (!parse_u64(v, &w) || w > UINT32_MAX)
        return USAGE_MARK;
    return tmem__conn_set_weight(c, id, (uint32_t)w);
}

static int set_cap(tmem__conn *c, int id, const char *v)
{
    uint64_t pages;
    if (!parse_cap(v, &pages))
        return USAGE_MARK;
    return tmem__conn_set_cap(c, id, pages);
}

static int set_compress(tmem__conn *c, int id, const char *v)
{
    tmem_compress cc;
    if (tmem_compress_parse(v, &cc) < 0)
        return USAGE_MARK;
    return tmem__conn_set_compress(c, id, (int)cc);
}

static const struct setting {
    const char *name;
    int (*fn)(tmem__conn *, int, const char *);
    const char *value_usage;
} settings[] = {
    {"weight", set_weight, "weight: a decimal number"},
    {"cap", set_cap, "cap: pages, or a size such as 64M (0 = none)"},
    {"compress", set_compress, "compress: none, lz4 or zstd"},
};

int cmd_set(struct tmem_cli *cli, int argc, char **argv)
{
    const struct setting *st = NULL;
    int id;

    if (argc != 4 || !parse_client(argv[1], false, &id))
        return usage_err("usage: tmem set CLIENT weight|cap|compress VALUE");
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (strcmp(argv[2], settings[i].name) == 0)
            st = &settings[i];
    if (!st)
        return usage_err("usage: tmem set CLIENT weight|cap|compress VALUE");
    tmem__conn *c = admin_open(cli);
    if (!c)
        return CLI_FAIL;
    int rc = st->fn(c, id, argv[3]);
    tmem__conn_close(c);
    if (rc == USAGE_MARK)
        return usage_err(st->value_usage);
    return rc < 0 ? op_failed(argc, argv, rc) : CLI_OK;
}

/* ---- freeze/thaw, flush, freeable, auth, destroy ---------------------------
 */

int cmd_freeze(struct tmem_cli *cli, int argc, char **argv)
{
    bool freeze = strcmp(argv[0], "freeze") == 0;
    int id;
    if (argc != 2 || !parse_client(argv[1], true, &id))
        return usage_err(freeze ? "usage: tmem freeze CLIENT|all"
                                : "usage: tmem thaw CLIENT|all");
    tmem__conn *c = admin_open(cli);
    if (!c)
        return CLI_FAIL;
    int rc = tmem__conn_freeze(c, id, freeze);
    tmem__conn_close(c);
    return rc < 0 ? op_failed(argc, argv, rc) : CLI_OK;
}

int cmd_flush(struct tmem_cli *cli, int argc, char **argv)
{
    uint64_t mib;
    if (argc != 2 || !parse_u64(argv[1], &mib))
        return usage_err("usage: tmem flush MIB");
    tmem__conn *c = admin_open(cli);
    if (!c)
        return CLI_FAIL;
    int64_t rc = tmem__conn_flush_mib(c, mib);
    tmem__conn_close(c);
    if (rc < 0)
        return op_failed(argc, argv, rc);
    printf("%" PRId64 " pages evicted\n", rc);
    return CLI_OK;
}

int cmd_freeable(struct tmem_cli *cli, int argc, char **argv)
{
    if (argc != 1)
        return usage_err("usage: tmem freeable");
    tmem__conn *c = admin_open(cli);
    if (!c)
        return CLI_FAIL;
    int64_t rc = tmem__conn_freeable_mib(c);
    tmem__conn_close(c);
    if (rc < 0)
        return op_failed(argc, argv, rc);
    printf("%" PRId64 "\n", rc);
    return CLI_OK;
}

int cmd_auth(struct tmem_cli *cli, int argc, char **argv)
{
    uint64_t uuid[2];
    int id;
    if (argc != 4 || !parse_client(argv[1], false, &id) ||
        !parse_uuid(argv[2], uuid) ||
        (strcmp(argv[3], "on") != 0 && strcmp(argv[3], "off") != 0))
        return usage_err("usage: tmem auth CLIENT UUID on|off "
                         "(UUID as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
    tmem__conn *c = admin_open(cli);
    if (!c)
        return CLI_FAIL;
    int rc = tmem__conn_auth(c, id, uuid, strcmp(argv[3], "on") == 0);
    tmem__conn_close(c);
    return rc < 0 ? op_failed(argc, argv, rc) : CLI_OK;
}

int cmd_destroy(struct tmem_cli *cli, int argc, char **argv)
{
    int id;
    if (argc != 2 || !parse_client(argv[1], false, &id))
        return usage_err("usage: tmem destroy CLIENT");
    tmem__conn *c = admin_open(cli);
    if (!c)
        return CLI_FAIL;
    int rc = tmem__conn_destroy_client(c, id);
    tmem__conn_close(c);
    return rc < 0 ? op_failed(argc, argv, rc) : CLI_OK;
}
