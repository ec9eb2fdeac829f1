/*
 * The nine balloon tunables: every default, every refusal, what a write
 * changes (and that a refused one changes nothing), *started, and reads.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include "../runner.h"
#include "balloon/controller.h"

#define NNAMES 9

static const char *const names[NNAMES] = {
    "selfballooning",
    "selfballoon_interval",
    "selfballoon_downhysteresis",
    "selfballoon_uphysteresis",
    "selfballoon_min_usable_mb",
    "selfballoon_reserved_mb",
    "frontswap_selfshrinking",
    "frontswap_hysteresis",
    "frontswap_inertia",
};

/* Defaults for a tenant of 1048576 pages (4 GiB): reserved_mb =
 * (1048576 / 10) / 256 = 409. */
static const char *const defaults_fs[NNAMES] = {
    "1\n", "5\n", "8\n", "1\n", "0\n", "409\n", "1\n", "20\n", "3\n"};
static const char *const defaults_nofs[NNAMES] = {
    "0\n", "5\n", "8\n", "1\n", "0\n", "409\n", "0\n", "20\n", "3\n"};

static void check_all(const tmem_balloon *b, const char *const *want)
{
    for (int i = 0; i < NNAMES; i++) {
        char buf[32];
        int n = tmem_balloon_get(b, names[i], buf, sizeof buf);
        ASSERT_EQ(n, (long long)strlen(want[i]));
        ASSERT_STR_EQ(buf, want[i]);
    }
}

TEST(tunables_names_in_order)
{
    int i = 0;
    for (; tmem_balloon_tunable_names[i]; i++) {
        ASSERT_LT(i, NNAMES);
        ASSERT_STR_EQ(tmem_balloon_tunable_names[i], names[i]);
    }
    ASSERT_EQ(i, NNAMES);
}

TEST(tunables_defaults_with_frontswap)
{
    tmem_balloon b;
    tmem_balloon_init(&b, 1048576, true);
    check_all(&b, defaults_fs);
    ASSERT_EQ(b.fs_counter, 0);
    ASSERT_U64_EQ(b.fs_last, 0);
}

TEST(tunables_defaults_without_frontswap)
{
    tmem_balloon b;
    tmem_balloon_init(&b, 1048576, false);
    check_all(&b, defaults_nofs);
}

/* reserved_mb = (total / 10) / 256, at least 1 (0 is what a write may not
 * set), at most INT_MAX (reads print %d). */
TEST(tunables_reserved_mb_default)
{
    static const struct {
        uint64_t total;
        unsigned mb;
    } rows[] = {
        {0, 1},         {2559, 1},           {2560, 1}, /* 256 / 256 */
        {5119, 1},      {5120, 2},           {25600, 10},
        {1048576, 409}, {262144000, 102400}, {UINT64_MAX, INT_MAX},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tmem_balloon b;
        tmem_balloon_init(&b, rows[i].total, true);
        if (b.t.reserved_mb != rows[i].mb)
            tmem_test_fail(__FILE__, __LINE__,
                           "total %" PRIu64 ": reserved_mb %u, want %u",
                           rows[i].total, b.t.reserved_mb, rows[i].mb);
    }
}

/* Values no tunable accepts, with the error every tunable gives. */
static const struct {
    const char *value;
    int err;
} bad_values[] = {
    {"", -EINVAL},
    {"\n", -EINVAL},
    {"+1", -EINVAL},
    {"-1", -EINVAL},
    {"-0", -EINVAL},
    {" 1", -EINVAL},
    {"1 ", -EINVAL},
    {"1 \n", -EINVAL},
    {"1\n\n", -EINVAL},
    {"1\r\n", -EINVAL},
    {"\t1", -EINVAL},
    {"0x1", -EINVAL},
    {"0x10", -EINVAL},
    {"1a", -EINVAL},
    {"1.0", -EINVAL},
    {"1e3", -EINVAL},
    {"one", -EINVAL},
    {"\n1", -EINVAL},
    {"2147483648", -ERANGE}, /* INT_MAX + 1 */
    {"4294967296", -ERANGE}, /* UINT_MAX + 1 */
    {"99999999999999999999999999", -ERANGE},
    {"2147483648\n", -ERANGE},
    {"99999999999999999999999x", -EINVAL}, /* syntax before range */
};

TEST(tunables_refuse_bad_values_everywhere)
{
    for (int i = 0; i < NNAMES; i++) {
        for (size_t j = 0; j < sizeof bad_values / sizeof bad_values[0]; j++) {
            tmem_balloon b, before;
            bool started = true;
            tmem_balloon_init(&b, 1048576, true);
            before = b;
            int err = tmem_balloon_set(&b, names[i], bad_values[j].value, true,
                                       &started);
            if (err != bad_values[j].err)
                tmem_test_fail(__FILE__, __LINE__, "%s = \"%s\": %d, want %d",
                               names[i], bad_values[j].value, err,
                               bad_values[j].err);
            ASSERT_TRUE(!started);
            ASSERT_MEM_EQ(&b, &before, sizeof b); /* nothing changed */
        }
    }
}

/* Per tunable: which values are refused and which taken. */
static const struct {
    const char *name, *value;
    int err;
    unsigned stored; /* when err == 0 */
} writes[] = {
    {"selfballooning", "0", 0, 0},
    {"selfballooning", "1", 0, 1},
    {"selfballooning", "1\n", 0, 1},
    {"selfballooning", "01", 0, 1},
    {"selfballooning", "2", -EINVAL, 0},
    {"selfballooning", "10", -EINVAL, 0},
    {"selfballooning", "2147483647", -EINVAL, 0},
    {"selfballoon_interval", "0", -EINVAL, 0},
    {"selfballoon_interval", "00", -EINVAL, 0},
    {"selfballoon_interval", "0\n", -EINVAL, 0},
    {"selfballoon_interval", "1", 0, 1},
    {"selfballoon_interval", "2147483647", 0, INT_MAX},
    {"selfballoon_downhysteresis", "0", -EINVAL, 0},
    {"selfballoon_downhysteresis", "16\n", 0, 16},
    {"selfballoon_uphysteresis", "0", -EINVAL, 0},
    {"selfballoon_uphysteresis", "007", 0, 7},
    {"selfballoon_min_usable_mb", "0", 0, 0}, /* our difference */
    {"selfballoon_min_usable_mb", "100", 0, 100},
    {"selfballoon_min_usable_mb", "2147483647", 0, INT_MAX},
    {"selfballoon_reserved_mb", "0", -EINVAL, 0},
    {"selfballoon_reserved_mb", "1", 0, 1},
    {"frontswap_selfshrinking", "0", 0, 0},
    {"frontswap_selfshrinking", "1", 0, 1},
    {"frontswap_selfshrinking", "2", -EINVAL, 0},
    {"frontswap_hysteresis", "0", -EINVAL, 0},
    {"frontswap_hysteresis", "1", 0, 1},
    {"frontswap_inertia", "0", -EINVAL, 0},
    {"frontswap_inertia", "9", 0, 9},
    {"no_such_tunable", "1", -EINVAL, 0},
    {"", "1", -EINVAL, 0},
    {"selfballooning\n", "1", -EINVAL, 0},
    {"SELFBALLOONING", "1", -EINVAL, 0},
};

TEST(tunables_writes_table)
{
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        tmem_balloon b, before;
        char buf[32], want[32];
        tmem_balloon_init(&b, 1048576, true);
        tmem_balloon_set(&b, "selfballoon_min_usable_mb", "5", true, NULL);
        before = b;
        int err =
            tmem_balloon_set(&b, writes[i].name, writes[i].value, true, NULL);
        if (err != writes[i].err)
            tmem_test_fail(__FILE__, __LINE__, "%s = \"%s\": %d, want %d",
                           writes[i].name, writes[i].value, err, writes[i].err);
        if (err) {
            ASSERT_MEM_EQ(&b, &before, sizeof b);
            continue;
        }
        snprintf(want, sizeof want, "%u\n", writes[i].stored);
        ASSERT_GT(tmem_balloon_get(&b, writes[i].name, buf, sizeof buf), 0);
        ASSERT_STR_EQ(buf, want);
    }
}

/* A non-admin writer is refused before anything else is looked at
 * (except the name), and changes nothing. */
TEST(tunables_non_admin_eperm)
{
    for (int i = 0; i < NNAMES; i++) {
        static const char *const values[] = {"1", "0", "junk", "",
                                             "99999999999"};
        for (size_t j = 0; j < 5; j++) {
            tmem_balloon b, before;
            bool started = true;
            tmem_balloon_init(&b, 1048576, false);
            before = b;
            ASSERT_EQ(
                tmem_balloon_set(&b, names[i], values[j], false, &started),
                -EPERM);
            ASSERT_TRUE(!started);
            ASSERT_MEM_EQ(&b, &before, sizeof b);
        }
    }
    tmem_balloon b;
    tmem_balloon_init(&b, 1048576, false);
    ASSERT_EQ(tmem_balloon_set(&b, "nope", "1", false, NULL), -EINVAL);
    ASSERT_EQ(tmem_balloon_set(&b, NULL, "1", true, NULL), -EINVAL);
    ASSERT_EQ(tmem_balloon_set(&b, "selfballooning", NULL, true, NULL),
              -EINVAL);
}

/* *started: true exactly when a switch goes 0 -> 1. */
TEST(tunables_started)
{
    static const struct {
        const char *name;
        bool frontswap; /* init's frontswap_available: switches' default */
        const char *value;
        bool started;
    } rows[] = {
        {"selfballooning", false, "1", true},
        {"selfballooning", false, "1\n", true},
        {"selfballooning", false, "0", false},
        {"selfballooning", true, "1", false}, /* already on */
        {"selfballooning", true, "0", false},
        {"frontswap_selfshrinking", false, "1", true},
        {"frontswap_selfshrinking", true, "1", false},
        {"frontswap_selfshrinking", true, "0", false},
        {"selfballoon_interval", false, "1", false},
        {"frontswap_inertia", false, "1", false},
        {"selfballooning", false, "2", false}, /* refused */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tmem_balloon b;
        bool started = !rows[i].started;
        tmem_balloon_init(&b, 1048576, rows[i].frontswap);
        tmem_balloon_set(&b, rows[i].name, rows[i].value, true, &started);
        if (started != rows[i].started)
            tmem_test_fail(__FILE__, __LINE__, "row %zu: started %d", i,
                           started);
    }
    /* off by boot option, then on again by a write: started */
    tmem_balloon b;
    bool started = false;
    tmem_balloon_init(&b, 1048576, true);
    tmem_balloon_disable(&b, true, true);
    ASSERT_EQ(
        tmem_balloon_set(&b, "frontswap_selfshrinking", "1", true, &started),
        0);
    ASSERT_TRUE(started);
    ASSERT_EQ(tmem_balloon_set(&b, "selfballooning", "1", true, NULL), 0);
    ASSERT_EQ(b.t.selfballooning, 1);
}

TEST(tunables_get_refusals)
{
    tmem_balloon b;
    char buf[8];

    tmem_balloon_init(&b, 1048576, true);
    ASSERT_EQ(tmem_balloon_get(&b, "nope", buf, sizeof buf), -EINVAL);
    ASSERT_EQ(tmem_balloon_get(&b, NULL, buf, sizeof buf), -EINVAL);
    ASSERT_EQ(tmem_balloon_get(&b, "selfballoon_reserved_mb", buf, 4),
              -EINVAL); /* "409\n" needs 5 */
    ASSERT_EQ(tmem_balloon_get(&b, "selfballoon_reserved_mb", buf, 5), 4);
    ASSERT_STR_EQ(buf, "409\n");
    ASSERT_EQ(
        tmem_balloon_set(&b, "selfballoon_interval", "2147483647", true, NULL),
        0);
    char big[16];
    ASSERT_EQ(tmem_balloon_get(&b, "selfballoon_interval", big, sizeof big),
              11);
    ASSERT_STR_EQ(big, "2147483647\n");
}
