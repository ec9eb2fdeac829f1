/*
 * The operator's policy: the configuration file (default
 * /etc/tmem/tmemd.conf, --config PATH) and which of its rules applies to a
 * tenant.  Applying it is tenant.c's.
 *
 * The file is line based; '#' starts a comment, blank lines are skipped.
 * Every other line is one rule:
 *
 *     tenant KEY=VALUE ...
 *
 * with selectors (who it is for) and settings (what it sets):
 *
 *     name=NAME      the name given at connect (tmem run --name, TMEM_NAME)
 *     uid=UID        a number or a user name
 *     cgroup=PATH    the cgroup the tenant is in (tmemd(8)), or one below
 *     weight=N       1..1000000
 *     cap=PAGES      the store's cap (pages, or a size such as 64M; 0 none)
 *     pcap=PAGES     the persistent cap, instead of the weighted share
 *     codec=C        none, lz4 or zstd
 *
 * A rule applies to a tenant when every selector it has matches (a rule
 * with none applies to every tenant); of those, the one with the most
 * selectors wins, and among as many the first in the file.  A rule sets
 * at least one thing; two rules with the same selectors are refused (the
 * second could never apply).  Each bad line is reported with its file,
 * line and reason, and one bad line makes the whole file bad: a daemon
 * does not start on it, a reload keeps the policy in force.
 */
#include "tmemd.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <common/size.h>

#define MAX_WEIGHT 1000000u
#define MAX_RULES 4096

/* Selectors (bits of rule.sel) */
enum { SEL_NAME = 1u, SEL_UID = 2u, SEL_CGROUP = 4u };

struct rule {
    unsigned sel; /* SEL_* bits */
    int nsel;
    uid_t uid;
    char name[TMEM_NAME_MAX + 1];
    char cgroup[TMEMD_CGROUP_MAX];
    struct tmemd_settings set; /* .line: where it is */
};

struct tmemd_policy {
    int n, cap;
    struct rule *r;
};

/* ---- values -------------------------------------------------------------- */

/* Each parses one value into r; NULL, or why the value is bad. */
typedef const char *(*value_fn)(struct rule *r, const char *v);

static const char *v_name(struct rule *r, const char *v)
{
    if (!tmem__name_valid(v, TMEM_NAME_MAX))
        return "a name is 1 to 16 of A-Z a-z 0-9 . _ -";
    snprintf(r->name, sizeof r->name, "%s", v);
    return NULL;
}

/* A whole decimal number in lo..hi. */
static bool number(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (*v < '0' || *v > '9')
        return false;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

static const char *v_uid(struct rule *r, const char *v)
{
    uint64_t x;
    if (number(v, 0, (uid_t)-2, &x)) {
        r->uid = (uid_t)x;
        return NULL;
    }
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwnam_r(v, &pw, buf, sizeof buf, &res) != 0 || !res)
        return "not a uid or a known user name";
    r->uid = res->pw_uid;
    return NULL;
}

static const char *v_cgroup(struct rule *r, const char *v)
{
    size_t n = strlen(v);
    if (v[0] != '/' || n >= sizeof r->cgroup || strpbrk(v, "\"\\"))
        return "an absolute cgroup path, such as /system.slice/redis.service";
    while (n > 1 && v[n - 1] == '/') /* "/a/b/" is "/a/b" */
        n--;
    memcpy(r->cgroup, v, n);
    r->cgroup[n] = 0;
    return NULL;
}

static const char *v_weight(struct rule *r, const char *v)
{
    uint64_t x;
    if (!number(v, 1, MAX_WEIGHT, &x))
        return "a whole number from 1 to 1000000";
    r->set.weight = (uint32_t)x;
    return NULL;
}

/* Pages, or a size with a unit (K, M, G, T) rounded up to pages. */
static bool pages(const char *v, uint64_t *out)
{
    uint64_t x;
    if (number(v, 0, UINT64_MAX, out))
        return true;
    if (tmem__parse_size(v, &x) < 0)
        return false;
    *out = x / TMEM_PAGE_SIZE + (x % TMEM_PAGE_SIZE != 0);
    return true;
}

static const char *const pages_why = "pages, or a size such as 64M (0: none)";

static const char *v_cap(struct rule *r, const char *v)
{
    return pages(v, &r->set.cap) ? NULL : pages_why;
}

static const char *v_pcap(struct rule *r, const char *v)
{
    return pages(v, &r->set.pcap) ? NULL : pages_why;
}

static const char *v_codec(struct rule *r, const char *v)
{
    return tmem_compress_parse(v, &r->set.codec) < 0 ? "none, lz4 or zstd"
                                                     : NULL;
}

static const struct key {
    const char *name;
    unsigned sel, set; /* the selector or the setting it is */
    value_fn fn;
} keys[] = {
    {"name", SEL_NAME, 0, v_name},
    {"uid", SEL_UID, 0, v_uid},
    {"cgroup", SEL_CGROUP, 0, v_cgroup},
    {"weight", 0, TMEMD_SET_WEIGHT, v_weight},
    {"cap", 0, TMEMD_SET_CAP, v_cap},
    {"pcap", 0, TMEMD_SET_PCAP, v_pcap},
    {"codec", 0, TMEMD_SET_CODEC, v_codec},
};

/* ---- lines --------------------------------------------------------------- */

#define WHY_MAX 160

static bool same_selectors(const struct rule *a, const struct rule *b)
{
    return a->sel == b->sel && (!(a->sel & SEL_UID) || a->uid == b->uid) &&
           strcmp(a->name, b->name) == 0 && strcmp(a->cgroup, b->cgroup) == 0;
}

/* One KEY=VALUE of a rule into r: 0, or -1 with why[] filled. */
static int parse_pair(struct rule *r, char *tok, char why[WHY_MAX])
{
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok || !eq[1]) {
        snprintf(why, WHY_MAX, "'%.40s' is not KEY=VALUE", tok);
        return -1;
    }
    *eq = 0;
    const struct key *k = NULL;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, tok) == 0)
            k = &keys[i];
    if (!k) {
        snprintf(why, WHY_MAX,
                 "unknown key '%.40s' (selectors: name, uid, cgroup; "
                 "settings: weight, cap, pcap, codec)",
                 tok);
        return -1;
    }
    if ((r->sel & k->sel) || (r->set.set & k->set)) {
        snprintf(why, WHY_MAX, "%s given twice", k->name);
        return -1;
    }
    const char *bad = k->fn(r, eq + 1);
    if (bad) {
        snprintf(why, WHY_MAX, "%s=%.60s: %s", k->name, eq + 1, bad);
        return -1;
    }
    r->sel |= k->sel;
    r->nsel += k->sel != 0;
    r->set.set |= k->set;
    return 0;
}

/* One line: 1 a rule in *r, 0 nothing (blank, comment), -1 bad (why). */
static int parse_line(const struct tmemd_policy *p, char *line, struct rule *r,
                      char why[WHY_MAX])
{
    char *hash = strchr(line, '#'), *save = NULL;
    if (hash)
        *hash = 0;
    char *tok = strtok_r(line, " \t\r\n", &save);
    if (!tok)
        return 0;
    if (strcmp(tok, "tenant") != 0) {
        snprintf(why, WHY_MAX,
                 "unknown directive '%.40s': a rule is 'tenant KEY=VALUE...'",
                 tok);
        return -1;
    }
    while ((tok = strtok_r(NULL, " \t\r\n", &save)))
        if (parse_pair(r, tok, why) < 0)
            return -1;
    if (!r->set.set) {
        snprintf(why, WHY_MAX,
                 "the rule sets nothing (weight=, cap=, pcap= or codec=)");
        return -1;
    }
    for (int i = 0; i < p->n; i++)
        if (same_selectors(&p->r[i], r)) {
            snprintf(why, WHY_MAX,
                     "the same selectors as line %d, which always wins",
                     p->r[i].set.line);
            return -1;
        }
    return 1;
}

static int add_rule(struct tmemd_policy *p, const struct rule *r)
{
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 16;
        struct rule *nr = realloc(p->r, sizeof *nr * (size_t)cap);
        if (!nr)
            return -ENOMEM;
        p->r = nr;
        p->cap = cap;
    }
    p->r[p->n++] = *r;
    return 0;
}

/* Reads every line of f into p; counts and logs the bad ones. */
static int parse_file(FILE *f, const char *path, struct tmemd_policy *p,
                      int *bad)
{
    char *line = NULL, why[WHY_MAX];
    size_t cap = 0;
    int rc = 0;
    for (int no = 1; rc == 0 && getline(&line, &cap, f) >= 0; no++) {
        struct rule r = {.set = {.line = no}};
        int k = parse_line(p, line, &r, why);
        if (k > 0 && p->n >= MAX_RULES) {
            snprintf(why, WHY_MAX, "more than %d rules", MAX_RULES);
            k = -1;
        }
        if (k < 0) {
            tmemd_log("%s:%d: %s", path, no, why);
            ++*bad;
        } else if (k > 0) {
            rc = add_rule(p, &r);
        }
    }
    if (rc == 0 && ferror(f)) {
        rc = -errno;
        tmemd_log("%s: cannot read: %s", path, strerror(errno));
    }
    free(line);
    return rc < 0 ? rc : *bad ? -EINVAL : 0;
}

int tmemd_policy_load(const char *path, bool required,
                      struct tmemd_policy **out, int *bad)
{
    struct tmemd_policy *p = calloc(1, sizeof *p);
    *bad = 0;
    if (!p)
        return -ENOMEM;
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        if (e == ENOENT && !required) {
            *out = p; /* no file: no rules */
            return 0;
        }
        tmemd_log("%s: cannot open: %s", path, strerror(e));
        free(p);
        return -e;
    }
    int rc = parse_file(f, path, p, bad);
    fclose(f);
    if (rc < 0) {
        tmemd_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void tmemd_policy_free(struct tmemd_policy *p)
{
    if (p)
        free(p->r);
    free(p);
}

int tmemd_policy_rules(const struct tmemd_policy *p)
{
    return p ? p->n : 0;
}

/* ---- matching ------------------------------------------------------------ */

/* The tenant's cgroup is the rule's or one below it. */
static bool cgroup_within(const char *tenant, const char *rule)
{
    size_t n = strlen(rule);
    if (!tenant[0])
        return false; /* unknown: no cgroup rule applies */
    if (strcmp(rule, "/") == 0)
        return true;
    return strncmp(tenant, rule, n) == 0 &&
           (tenant[n] == 0 || tenant[n] == '/');
}

static bool applies(const struct rule *r, const struct tmemd_ident *id)
{
    return (!(r->sel & SEL_NAME) || strcmp(r->name, id->name) == 0) &&
           (!(r->sel & SEL_UID) || r->uid == id->uid) &&
           (!(r->sel & SEL_CGROUP) || cgroup_within(id->cgroup, r->cgroup));
}

struct tmemd_settings tmemd_policy_match(const struct tmemd_policy *p,
                                         const struct tmemd_ident *id)
{
    const struct rule *best = NULL;
    for (int i = 0; p && i < p->n; i++)
        if (applies(&p->r[i], id) && (!best || p->r[i].nsel > best->nsel))
            best = &p->r[i];
    return best ? best->set : (struct tmemd_settings){0};
}
