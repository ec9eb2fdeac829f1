/*
 * The nine balloon tunables (SPEC.md "Self-ballooning", tunables table):
 * their names, where each lives in tmem_balloon_tunables, and the rules a
 * write must pass.  One table drives reads, writes and the name list.
 *
 * Writes take the text a sysfs write would carry: a decimal number of
 * digits only, optionally followed by one newline.  Anything else (empty,
 * a sign, spaces, hex, trailing garbage) is -EINVAL; a well-formed number
 * above INT_MAX is -ERANGE (reads print "%d", so nothing larger may be
 * stored).  Checks run in this order: name, admin, syntax, range, the
 * tunable's own rule; a refused write changes nothing.
 *
 * Our one deliberate difference from the original: selfballoon_min_usable_mb
 * accepts 0, meaning "use the floor function again".
 */
#include "balloon/controller.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

enum tunable_rule {
    RULE_SWITCH,  /* 0 or 1; 0 -> 1 reports *started */
    RULE_NONZERO, /* any value but 0 */
    RULE_ANY,     /* any value, 0 included */
};

static const struct tunable {
    const char *name;
    size_t offset; /* into tmem_balloon_tunables */
    enum tunable_rule rule;
    bool resets_counter; /* a write also restarts the inertia countdown */
} tunables[] = {
    {"selfballooning", offsetof(tmem_balloon_tunables, selfballooning),
     RULE_SWITCH, false},
    {"selfballoon_interval", offsetof(tmem_balloon_tunables, interval),
     RULE_NONZERO, false},
    {"selfballoon_downhysteresis",
     offsetof(tmem_balloon_tunables, downhysteresis), RULE_NONZERO, false},
    {"selfballoon_uphysteresis", offsetof(tmem_balloon_tunables, uphysteresis),
     RULE_NONZERO, false},
    {"selfballoon_min_usable_mb",
     offsetof(tmem_balloon_tunables, min_usable_mb), RULE_ANY, false},
    {"selfballoon_reserved_mb", offsetof(tmem_balloon_tunables, reserved_mb),
     RULE_NONZERO, false},
    {"frontswap_selfshrinking", offsetof(tmem_balloon_tunables, selfshrinking),
     RULE_SWITCH, false},
    {"frontswap_hysteresis", offsetof(tmem_balloon_tunables, fs_hysteresis),
     RULE_NONZERO, false},
    {"frontswap_inertia", offsetof(tmem_balloon_tunables, fs_inertia),
     RULE_NONZERO, true},
};

#define NTUNABLES (sizeof tunables / sizeof tunables[0])

const char *const tmem_balloon_tunable_names[] = {
    "selfballooning",
    "selfballoon_interval",
    "selfballoon_downhysteresis",
    "selfballoon_uphysteresis",
    "selfballoon_min_usable_mb",
    "selfballoon_reserved_mb",
    "frontswap_selfshrinking",
    "frontswap_hysteresis",
    "frontswap_inertia",
    NULL,
};

_Static_assert(sizeof tmem_balloon_tunable_names /
                       sizeof tmem_balloon_tunable_names[0] ==
                   NTUNABLES + 1,
               "name list and tunable table must match");

static const struct tunable *find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < NTUNABLES; i++)
        if (strcmp(tunables[i].name, name) == 0)
            return &tunables[i];
    return NULL;
}

static unsigned *field(tmem_balloon_tunables *t, const struct tunable *d)
{
    return (unsigned *)((char *)t + d->offset);
}

static unsigned field_value(const tmem_balloon_tunables *t,
                            const struct tunable *d)
{
    return *(const unsigned *)((const char *)t + d->offset);
}

/* Parses digits with at most one trailing newline into *out.  Returns 0,
 * -EINVAL (not such a number) or -ERANGE (above INT_MAX). */
static int parse_decimal(const char *s, unsigned *out)
{
    unsigned long long v = 0;
    bool big = false;
    const char *p = s;

    if (!s)
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (!big)
            v = v * 10 + (unsigned long long)(*p - '0');
        if (v > INT_MAX)
            big = true;
    }
    if (p == s)
        return -EINVAL;
    if (*p == '\n')
        p++;
    if (*p != '\0')
        return -EINVAL;
    if (big)
        return -ERANGE;
    *out = (unsigned)v;
    return 0;
}

const char *tmem_balloon_tunable_allowed(const char *name)
{
    const struct tunable *d = find(name);
    if (!d)
        return NULL;
    return d->rule == RULE_SWITCH    ? "0 or 1"
           : d->rule == RULE_NONZERO ? "a whole number, 1..2147483647"
                                     : "a whole number, 0..2147483647";
}

int tmem_balloon_set(tmem_balloon *b, const char *name, const char *value,
                     bool admin, bool *started)
{
    const struct tunable *d = find(name);
    unsigned v, *f;
    int err;

    if (started)
        *started = false;
    if (!d)
        return -EINVAL;
    if (!admin)
        return -EPERM;
    err = parse_decimal(value, &v);
    if (err)
        return err;
    if ((d->rule == RULE_SWITCH && v > 1) ||
        (d->rule == RULE_NONZERO && v == 0))
        return -EINVAL;
    f = field(&b->t, d);
    if (d->rule == RULE_SWITCH && started && *f == 0 && v == 1)
        *started = true;
    *f = v;
    if (d->resets_counter)
        b->fs_counter = v;
    return 0;
}

int tmem_balloon_get(const tmem_balloon *b, const char *name, char *buf,
                     size_t cap)
{
    const struct tunable *d = find(name);
    int n;

    if (!d || !buf)
        return -EINVAL;
    n = snprintf(buf, cap, "%d\n", (int)field_value(&b->t, d));
    if (n < 0 || (size_t)n >= cap)
        return -EINVAL;
    return n;
}
