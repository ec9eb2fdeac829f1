/*
 * The controller's arithmetic, branch by branch (SPEC.md
 * "Self-ballooning"): hand-computed sequences in tables, each run through
 * tmem_balloon_tick from a fresh controller.  The working of every
 * expected number is in the comment beside it.  Also the floor function
 * alone, the switches, saturation at the edges of uint64_t, and the tswap
 * adapter of tswap_backend.h.
 *
 * Common inputs: reserve R = 1000 pages; BIGMAX = R + MB(1024) = 263144,
 * so useful = 262144 >= MB(512) and the floor is
 * 1000 + 25344 + (262144 - 25344) / 32 = 33744 unless said otherwise.
 */
#include <errno.h>
#include <stdbool.h>

#include "balloon/controller.h"
#include "balloon/tswap_backend.h"
#include "../runner.h"

#define BIGMAX 263144u
#define BIGFLOOR 33744u
#define MAXSTEPS 20
#define MAXSETS 6

struct step {
    tmem_balloon_input in;
    bool ballooned;
    uint64_t goal, floor, target;
    bool shrink;
    uint64_t fs_target;
};

struct seq {
    const char *name;
    uint64_t total;      /* tmem_balloon_init's total_pages */
    bool fs_available;
    const char *sets[MAXSETS]; /* "name=value", applied after init */
    struct step steps[MAXSTEPS];
};

#define IN(c, cm, r, m, f)                                                   \
    {.cur = (c), .committed = (cm), .reserve = (r), .max = (m),              \
     .frontswap = (f)}
/* A step where only self-ballooning runs. */
#define B(in_, g, fl, t) {in_, true, g, fl, t, false, 0}
/* A step where only self-shrinking runs (fired or not). */
#define S(in_, sh, ft) {in_, false, 0, 0, 0, sh, ft}
/* A step where both run. */
#define BS(in_, g, fl, t, sh, ft) {in_, true, g, fl, t, sh, ft}
#define END {IN(0, 0, 0, 0, 0), false, 0, 0, 0, false, 0}
#define IS_END(s) ((s)->in.cur == 0 && (s)->in.max == 0 && !(s)->ballooned)

static const struct seq balloon_seqs[] = {
    /* goal = committed + R + MB(1) = 20000 + 1000 + 256 = 21256 */
    {"cur_above_goal_down_hysteresis", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(100000, 20000, 1000, BIGMAX, 0), 21256, BIGFLOOR,
        90157), /* 100000 - 78744 / 8 = 100000 - 9843 */
      END}},
    /* the tenant follows the target: cur := previous target; min_usable 1
     * puts the floor at 1000 + 256 = 1256, out of the way */
    {"converges_down", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0",
      "selfballoon_min_usable_mb=1"},
     {B(IN(100000, 20000, 1000, BIGMAX, 0), 21256, 1256, 90157),
      B(IN(90157, 20000, 1000, BIGMAX, 0), 21256, 1256,
        81545), /* 90157 - 68901 / 8 = 90157 - 8612 */
      B(IN(81545, 20000, 1000, BIGMAX, 0), 21256, 1256,
        74009), /* 81545 - 60289 / 8 = 81545 - 7536 */
      END}},
    /* goal = 50000 + 1000 + 256 = 51256; up 1: straight to the goal */
    {"cur_below_goal_up_hysteresis_1", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(40000, 50000, 1000, BIGMAX, 0), 51256, BIGFLOOR, 51256), END}},
    /* up 3: 40000 + 11256 / 3 = 40000 + 3752 */
    {"cur_below_goal_up_hysteresis_3", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0",
      "selfballoon_uphysteresis=3"},
     {B(IN(40000, 50000, 1000, BIGMAX, 0), 51256, BIGFLOOR, 43752),
      B(IN(43752, 50000, 1000, BIGMAX, 0), 51256, BIGFLOOR,
        46253), /* 43752 + 7504 / 3 = 43752 + 2501 */
      END}},
    /* cur == goal: no change */
    {"cur_equals_goal", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(51256, 50000, 1000, BIGMAX, 0), 51256, BIGFLOOR, 51256), END}},
    /* 30000 - (30000 - 2256) / 8 = 26532 < floor 33744: the floor wins */
    {"floor_clamps_target", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(30000, 1000, 1000, BIGMAX, 0), 2256, BIGFLOOR, BIGFLOOR), END}},
    /* the reserved_mb default: total 1048576 -> 104857 / 256 = 409 MiB =
     * 104704 pages; goal = 20000 + 1000 + 104704 = 125704; cur below:
     * straight up (up 1) */
    {"reserved_mb_default_in_goal", 1048576, true,
     {"frontswap_selfshrinking=0"},
     {B(IN(100000, 20000, 1000, BIGMAX, 0), 125704, BIGFLOOR, 125704),
      END}},
    /* frontswap 8000 joins the goal while self-shrinking is on:
     * goal = 21256 + 8000 = 29256; 100000 - 70744 / 8 = 100000 - 8843;
     * first sight of frontswap: counter = inertia, no shrink */
    {"frontswap_in_goal_when_selfshrinking", 1 << 20, true,
     {"selfballoon_reserved_mb=1"},
     {BS(IN(100000, 20000, 1000, BIGMAX, 8000), 29256, BIGFLOOR, 91157,
         false, 0),
      END}},
    /* ... and not while it is off: goal 21256, target 90157 */
    {"frontswap_not_in_goal_without_selfshrinking", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(100000, 20000, 1000, BIGMAX, 8000), 21256, BIGFLOOR, 90157),
      END}},
    /* ... nor when there is no frontswap at all (switch on by hand) */
    {"frontswap_not_in_goal_without_frontswap", 1 << 20, false,
     {"selfballoon_reserved_mb=1", "selfballooning=1",
      "frontswap_selfshrinking=1"},
     {B(IN(100000, 20000, 1000, BIGMAX, 8000), 21256, BIGFLOOR, 90157),
      END}},
    /* floor branches through tick, cur far below so target = max(goal,
     * floor); committed 0 -> goal = 1000 + 256 = 1256 */
    /* min_usable_mb 100: floor = 1000 + 25600 */
    {"floor_min_usable_mb", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0",
      "selfballoon_min_usable_mb=100"},
     {B(IN(1256, 0, 1000, BIGMAX, 0), 1256, 26600, 26600), END}},
    /* useful = 5000 - 1000 = 4000 < MB(16): floor = max = 5000 */
    {"floor_useful_below_16mb_is_max", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(1256, 0, 1000, 5000, 0), 1256, 5000, 5000), END}},
    /* useful = 10000 < MB(64): 1000 + 4096 + (10000 - 4096) / 2 = 8048 */
    {"floor_useful_below_64mb", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(1256, 0, 1000, 11000, 0), 1256, 8048, 8048), END}},
    /* useful = 100000 < MB(512): 1000 + 10240 + 89760 / 8 = 22460 */
    {"floor_useful_below_512mb", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(1256, 0, 1000, 101000, 0), 1256, 22460, 22460), END}},
    /* useful >= MB(512): 33744 */
    {"floor_useful_512mb_and_more", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(1256, 0, 1000, BIGMAX, 0), 1256, BIGFLOOR, BIGFLOOR), END}},
    /* the target above the floor is left alone: goal 200000 + 1256 */
    {"floor_below_target", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "frontswap_selfshrinking=0"},
     {B(IN(1256, 200000, 1000, BIGMAX, 0), 201256, BIGFLOOR, 201256),
      END}},
};

/* Self-shrinking alone (self-ballooning off); hysteresis 20, inertia 3
 * unless set.  State starts at last = 0, counter = 0. */
static const struct seq shrink_seqs[] = {
    {"shrink_inertia_countdown_and_reset", 1 << 20, true,
     {"selfballooning=0"},
     {S(IN(1, 0, 0, 1, 1000), false, 0), /* grew 0 -> 1000: counter 3 */
      S(IN(1, 0, 0, 1, 1000), false, 0), /* counter 2 */
      S(IN(1, 0, 0, 1, 1000), false, 0), /* counter 1 */
      S(IN(1, 0, 0, 1, 1000), true, 950), /* 0: 1000 - 1000 / 20 */
      S(IN(1, 0, 0, 1, 950), false, 0),   /* counter reset 3 -> 2 */
      S(IN(1, 0, 0, 1, 950), false, 0),   /* 1 */
      S(IN(1, 0, 0, 1, 950), true, 903),  /* 950 - 47 */
      S(IN(1, 0, 0, 1, 2000), false, 0),  /* growth: counter 3 */
      S(IN(1, 0, 0, 1, 2000), false, 0),  /* 2 */
      S(IN(1, 0, 0, 1, 0), false, 0),     /* empty: counter 3 */
      S(IN(1, 0, 0, 1, 15), false, 0),    /* 0 -> 15 grew: counter 3 */
      S(IN(1, 0, 0, 1, 15), false, 0),    /* 2 */
      S(IN(1, 0, 0, 1, 15), false, 0),    /* 1 */
      S(IN(1, 0, 0, 1, 15), true, 0),     /* 15 <= 20: all of it */
      S(IN(1, 0, 0, 1, 20), false, 0),    /* grew: 3 */
      S(IN(1, 0, 0, 1, 20), false, 0),    /* 2 */
      S(IN(1, 0, 0, 1, 20), false, 0),    /* 1 */
      S(IN(1, 0, 0, 1, 20), true, 0),     /* 20 <= 20: all of it */
      S(IN(1, 0, 0, 1, 21), false, 0),    /* grew: 3 */
      END}},
    /* a fall without growth counts down like a flat line */
    {"shrink_fall_counts_down", 1 << 20, true,
     {"selfballooning=0"},
     {S(IN(1, 0, 0, 1, 500), false, 0), /* grew: 3 */
      S(IN(1, 0, 0, 1, 400), false, 0), /* 2 */
      S(IN(1, 0, 0, 1, 300), false, 0), /* 1 */
      S(IN(1, 0, 0, 1, 21), true, 20),  /* 21 - 21 / 20 = 20 */
      END}},
    /* inertia 1: shrink every tick after the first */
    {"shrink_inertia_1", 1 << 20, true,
     {"selfballooning=0", "frontswap_inertia=1"},
     {S(IN(1, 0, 0, 1, 100), false, 0), /* grew: counter 1 */
      S(IN(1, 0, 0, 1, 100), true, 95), /* --1 = 0: 100 - 5 */
      S(IN(1, 0, 0, 1, 95), true, 91),  /* 95 - 4 */
      END}},
    /* hysteresis 3: 100 - 33; hysteresis 1: everything */
    {"shrink_hysteresis_3", 1 << 20, true,
     {"selfballooning=0", "frontswap_inertia=1", "frontswap_hysteresis=3"},
     {S(IN(1, 0, 0, 1, 100), false, 0), S(IN(1, 0, 0, 1, 100), true, 67),
      END}},
    {"shrink_hysteresis_1", 1 << 20, true,
     {"selfballooning=0", "frontswap_inertia=1", "frontswap_hysteresis=1"},
     {S(IN(1, 0, 0, 1, 100), false, 0), S(IN(1, 0, 0, 1, 100), true, 0),
      END}},
    /* self-shrinking off: nothing, whatever frontswap does */
    {"shrink_off", 1 << 20, true,
     {"selfballooning=0", "frontswap_selfshrinking=0"},
     {S(IN(1, 0, 0, 1, 100), false, 0), S(IN(1, 0, 0, 1, 100), false, 0),
      S(IN(1, 0, 0, 1, 100), false, 0), S(IN(1, 0, 0, 1, 100), false, 0),
      S(IN(1, 0, 0, 1, 100), false, 0), END}},
    /* both on: ballooning with frontswap in the goal, shrink alongside.
     * goal = 20000 + 1000 + 256 + fs; floor 1256 (min_usable 1) */
    {"both_on", 1 << 20, true,
     {"selfballoon_reserved_mb=1", "selfballoon_min_usable_mb=1",
      "frontswap_inertia=1"},
     {BS(IN(100000, 20000, 1000, BIGMAX, 4000), 25256, 1256,
         90657, false, 0), /* 100000 - 74744 / 8 = 100000 - 9343; grew */
      BS(IN(90657, 20000, 1000, BIGMAX, 4000), 25256, 1256,
         82482, true, 3800), /* 90657 - 65401 / 8 = - 8175; 4000 - 200 */
      BS(IN(82482, 20000, 1000, BIGMAX, 3800), 25056, 1256,
         75304, true, 3610), /* 82482 - 57426 / 8 = - 7178; 3800 - 190 */
      END}},
};

/* Both switches off: tick reports nothing and keeps no state. */
static const struct seq off_seqs[] = {
    {"both_off", 1 << 20, true,
     {"selfballooning=0", "frontswap_selfshrinking=0"},
     {S(IN(100000, 20000, 1000, BIGMAX, 8000), false, 0),
      S(IN(100000, 20000, 1000, BIGMAX, 8000), false, 0), END}},
    /* frontswap unavailable: both default off */
    {"defaults_without_frontswap", 1 << 20, false,
     {NULL},
     {S(IN(100000, 20000, 1000, BIGMAX, 8000), false, 0),
      S(IN(100000, 20000, 1000, BIGMAX, 8000), false, 0),
      S(IN(100000, 20000, 1000, BIGMAX, 8000), false, 0),
      S(IN(100000, 20000, 1000, BIGMAX, 8000), false, 0), END}},
};

static void run_seq(const struct seq *q)
{
    tmem_balloon b;

    tmem_balloon_init(&b, q->total, q->fs_available);
    for (size_t i = 0; i < MAXSETS && q->sets[i]; i++) {
        char name[64];
        const char *eq = strchr(q->sets[i], '=');
        size_t n = (size_t)(eq - q->sets[i]);
        memcpy(name, q->sets[i], n);
        name[n] = '\0';
        int err = tmem_balloon_set(&b, name, eq + 1, true, NULL);
        if (err)
            tmem_test_fail(__FILE__, __LINE__, "%s: set %s: %d", q->name,
                           q->sets[i], err);
    }
    for (size_t i = 0; i < MAXSTEPS && !IS_END(&q->steps[i]); i++) {
        const struct step *s = &q->steps[i];
        tmem_balloon_output o;
        tmem_balloon_tick(&b, &s->in, &o);
        if (o.ballooned != s->ballooned || o.shrink != s->shrink ||
            (s->ballooned && (o.goal != s->goal || o.floor != s->floor ||
                              o.target != s->target)) ||
            (s->shrink && o.fs_target != s->fs_target))
            tmem_test_fail(
                __FILE__, __LINE__,
                "%s step %zu: got ballooned %d goal %" PRIu64
                " floor %" PRIu64 " target %" PRIu64 " shrink %d fs %" PRIu64
                "; want %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %d %" PRIu64,
                q->name, i + 1, o.ballooned, o.goal, o.floor, o.target,
                o.shrink, o.fs_target, s->ballooned, s->goal, s->floor,
                s->target, s->shrink, s->fs_target);
    }
}

#define RUN_ALL(tab)                                                         \
    do {                                                                     \
        for (size_t i_ = 0; i_ < sizeof(tab) / sizeof(tab)[0]; i_++)         \
            run_seq(&(tab)[i_]);                                             \
    } while (0)

TEST(controller_balloon_sequences) { RUN_ALL(balloon_seqs); }
TEST(controller_shrink_sequences) { RUN_ALL(shrink_seqs); }
TEST(controller_off_sequences) { RUN_ALL(off_seqs); }

/* The floor function alone: every branch and its boundaries. */
static const struct {
    unsigned min_usable_mb;
    uint64_t max, reserve, floor;
} floors[] = {
    {100, BIGMAX, 1000, 26600},  /* 1000 + MB(100) */
    {1, 500, 1000, 1256},        /* min_usable wins even past max */
    {0, 5000, 1000, 5000},       /* useful 4000 < MB(16): max */
    {0, 5095, 1000, 5095},       /* useful 4095: still max */
    {0, 5096, 1000, 5096},       /* useful 4096: 1000 + 4096 + 0 */
    {0, 5099, 1000, 5097},       /* useful 4099: + 3 / 2 */
    {0, 11000, 1000, 8048},      /* 1000 + 4096 + 5904 / 2 */
    {0, 17383, 1000, 11239},     /* useful 16383: 1000+4096+12287/2 */
    {0, 17384, 1000, 12008},     /* useful 16384: 1000+10240+6144/8 */
    {0, 101000, 1000, 22460},    /* 1000 + 10240 + 89760 / 8 */
    {0, 132071, 1000, 26343},    /* useful 131071: 1000+10240+120831/8 */
    {0, 132072, 1000, 29648},    /* useful 131072: 1000+25344+105728/32 */
    {0, BIGMAX, 1000, BIGFLOOR}, /* 1000 + 25344 + 236800 / 32 */
    {0, 1000, 5000, 1000},       /* reserve > max: useful 0 -> max */
    {0, 0, 0, 0},                /* nothing at all */
    {0, UINT64_MAX, 0, 576460752303448039u}, /* 25344 + (2^64-1-25344)/32 */
    {1, 0, UINT64_MAX, UINT64_MAX}, /* saturates instead of wrapping */
};

TEST(controller_floor_table)
{
    for (size_t i = 0; i < sizeof floors / sizeof floors[0]; i++) {
        tmem_balloon b;
        char v[16];
        tmem_balloon_init(&b, 1 << 20, true);
        snprintf(v, sizeof v, "%u", floors[i].min_usable_mb);
        ASSERT_EQ(tmem_balloon_set(&b, "selfballoon_min_usable_mb", v, true,
                                   NULL),
                  0);
        uint64_t f = tmem_balloon_floor(&b, floors[i].max, floors[i].reserve);
        if (f != floors[i].floor)
            tmem_test_fail(__FILE__, __LINE__,
                           "row %zu: floor %" PRIu64 ", want %" PRIu64, i, f,
                           floors[i].floor);
    }
}

/* min_usable_mb back to 0 restores the floor function (our difference). */
TEST(controller_min_usable_back_to_zero)
{
    tmem_balloon b;

    tmem_balloon_init(&b, 1 << 20, true);
    ASSERT_EQ(tmem_balloon_set(&b, "selfballoon_min_usable_mb", "1", true,
                               NULL), 0);
    ASSERT_U64_EQ(tmem_balloon_floor(&b, BIGMAX, 1000), 1256);
    ASSERT_EQ(tmem_balloon_set(&b, "selfballoon_min_usable_mb", "0", true,
                               NULL), 0);
    ASSERT_U64_EQ(tmem_balloon_floor(&b, BIGMAX, 1000), BIGFLOOR);
}

/* A frontswap_inertia write restarts the countdown: with the default 3 a
 * shrink would come at tick 4; the write of 5 after tick 2 moves it to 7. */
TEST(controller_inertia_write_resets_counter)
{
    tmem_balloon b;
    tmem_balloon_input in = IN(1, 0, 0, 1, 1000);
    tmem_balloon_output o;

    tmem_balloon_init(&b, 1 << 20, true);
    tmem_balloon_disable(&b, true, false);
    tmem_balloon_tick(&b, &in, &o); /* grew: counter 3 */
    ASSERT_TRUE(!o.shrink);
    tmem_balloon_tick(&b, &in, &o); /* 2 */
    ASSERT_TRUE(!o.shrink);
    ASSERT_EQ(tmem_balloon_set(&b, "frontswap_inertia", "5", true, NULL), 0);
    ASSERT_EQ(b.fs_counter, 5);
    for (int i = 3; i <= 6; i++) { /* 4, 3, 2, 1 */
        tmem_balloon_tick(&b, &in, &o);
        ASSERT_TRUE(!o.shrink);
    }
    tmem_balloon_tick(&b, &in, &o); /* 0: shrink */
    ASSERT_TRUE(o.shrink);
    ASSERT_U64_EQ(o.fs_target, 950);
    ASSERT_EQ(b.fs_counter, 5); /* reset to inertia after a shrink */
}

/* The boot options turn a function off from start, and nothing else. */
TEST(controller_disable_boot_options)
{
    tmem_balloon b;

    tmem_balloon_init(&b, 1 << 20, true);
    tmem_balloon_disable(&b, false, false);
    ASSERT_EQ(b.t.selfballooning, 1);
    ASSERT_EQ(b.t.selfshrinking, 1);
    tmem_balloon_disable(&b, true, false);
    ASSERT_EQ(b.t.selfballooning, 0);
    ASSERT_EQ(b.t.selfshrinking, 1);
    tmem_balloon_disable(&b, false, true);
    ASSERT_EQ(b.t.selfshrinking, 0);
    ASSERT_EQ(b.t.interval, 5);
}

/* Sums saturate: a goal past UINT64_MAX is UINT64_MAX, and the step up is
 * computed from it without wrapping. */
TEST(controller_saturates)
{
    tmem_balloon b;
    tmem_balloon_input in = IN(1000, UINT64_MAX, 5, BIGMAX, 0);
    tmem_balloon_output o;

    tmem_balloon_init(&b, 1 << 20, true);
    tmem_balloon_disable(&b, false, true);
    tmem_balloon_tick(&b, &in, &o);
    ASSERT_TRUE(o.ballooned);
    ASSERT_U64_EQ(o.goal, UINT64_MAX);
    ASSERT_U64_EQ(o.target, UINT64_MAX); /* up 1: to the goal */
    in = (tmem_balloon_input)IN(UINT64_MAX, 0, 0, UINT64_MAX, 0);
    tmem_balloon_tick(&b, &in, &o);
    /* goal = MB(reserved 409) = 104704; down 8 */
    ASSERT_U64_EQ(o.goal, 104704);
    ASSERT_U64_EQ(o.target,
                  UINT64_MAX - (UINT64_MAX - 104704) / 8);
}

/* The tswap adapter maps each backend call onto tswap's ops. */
struct fake_tswap {
    uint64_t resident_target, shrink_target, shrink_budget;
    int reads;
};

static int fake_read(void *t, tmem_balloon_input *in)
{
    struct fake_tswap *f = t;
    f->reads++;
    *in = (tmem_balloon_input)IN(10, 20, 30, 40, 50);
    return 0;
}

static int fake_set(void *t, uint64_t pages)
{
    ((struct fake_tswap *)t)->resident_target = pages;
    return 0;
}

static int fake_shrink(void *t, uint64_t target, uint64_t budget)
{
    struct fake_tswap *f = t;
    f->shrink_target = target;
    f->shrink_budget = budget;
    return 7;
}

TEST(controller_tswap_adapter)
{
    static const struct tmem_balloon_tswap_ops ops = {
        .read = fake_read, .set_resident_target = fake_set,
        .shrink = fake_shrink, .why = NULL};
    struct fake_tswap f = {0};
    struct tmem_balloon_tswap a = {.ops = &ops, .tswap = &f};
    struct tmem_balloon_tswap bad = {.ops = NULL, .tswap = &f};
    tmem_balloon_backend be;
    tmem_balloon_input in;

    ASSERT_EQ(tmem_balloon_tswap_backend(&be, &bad), -EINVAL);
    ASSERT_EQ(tmem_balloon_tswap_backend(&be, &a), 0);
    ASSERT_STR_EQ(be.name, "tswap");
    ASSERT_TRUE(be.frontswap_available);
    ASSERT_STR_EQ(be.pressure_path, "/proc/pressure/memory");
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_EQ(f.reads, 1);
    ASSERT_U64_EQ(in.frontswap, 50);
    ASSERT_EQ(be.apply_target(be.self, 1234), 0);
    ASSERT_U64_EQ(f.resident_target, 1234);
    ASSERT_EQ(be.shrink_frontswap(be.self, 5, 6), 7);
    ASSERT_U64_EQ(f.shrink_target, 5);
    ASSERT_U64_EQ(f.shrink_budget, 6);
    ASSERT_STR_EQ(tmem_balloon_backend_why(&be), "");
    tmem_balloon_backend_close(&be); /* destroy NULL: tswap not freed */
    ASSERT_TRUE(be.self == NULL && be.read == NULL);
    tmem_balloon_backend_close(&be); /* twice: no-op */
    tmem_balloon_backend_close(NULL);
}
