/*
 * `tmem balloon simulate`, the controller's verification interface, run as
 * a program: traces written to temporary files, output compared exactly,
 * every refusal with its exit status and words.  The binary is
 * $BUILD/tmem (BUILD defaults to "build").
 */
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runner.h"
#include "test_files.h"

#define HDR                                                                    \
    "cur_pages,committed_pages,reserve_pages,max_pages,frontswap_pages\n"
#define OUT_HDR "step,goal,floor,target,frontswap_target\n"

static char dir[64];
static char out[8192], err[8192];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/tmem-sim-XXXXXX");
    ASSERT_TRUE(mkdtemp(dir) != NULL);
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", dir);
}

static void read_file(const char *name, char *buf, size_t cap)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs `tmem ARGS` (args are shell words; "@" stands for the trace file
 * path) with stdout and stderr captured.  Returns the exit status. */
static int tmem(const char *args)
{
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char bin[256], cmd[2048], expanded[1024];
    size_t j = 0;

    snprintf(bin, sizeof bin, "%s/tmem", build);
    if (access(bin, X_OK) != 0)
        tmem_test_fail(__FILE__, __LINE__, "%s not built", bin);
    for (const char *p = args; *p && j < sizeof expanded - 80; p++) {
        if (*p == '@')
            j += (size_t)snprintf(expanded + j, sizeof expanded - j,
                                  "%s/trace.csv", dir);
        else
            expanded[j++] = *p;
    }
    expanded[j] = '\0';
    snprintf(cmd, sizeof cmd, "%s %s >%s/out 2>%s/err", bin, expanded, dir,
             dir);
    int st = system(cmd);
    ASSERT_TRUE(st != -1 && WIFEXITED(st));
    read_file("out", out, sizeof out);
    read_file("err", err, sizeof err);
    return WEXITSTATUS(st);
}

/* Traces and the exact output, hand-computed (working beside each row). */
static const struct {
    const char *what;
    const char *trace;
    const char *sets; /* extra arguments */
    const char *want;
} runs[] = {
    /* total = 1048576 -> reserved_mb 409 (104704 pages); goal = 20000 +
     * 1000 + 104704 = 125704; 1048576 - 922872 / 8 = 933217; floor 33744;
     * frontswap 0: no shrink */
    {"defaults", HDR "1048576,20000,1000,263144,0\n", "",
     OUT_HDR "1,125704,33744,933217,\n"},
    /* both on, floor 1256, goal = 21256 + fs; inertia 1 */
    {"both_on",
     HDR "100000,20000,1000,263144,4000\n"
         "90657,20000,1000,263144,4000\n"
         "82482,20000,1000,263144,3800\n",
     "--set selfballoon_reserved_mb=1 --set selfballoon_min_usable_mb=1 "
     "--set frontswap_inertia=1",
     OUT_HDR "1,25256,1256,90657,\n"       /* 100000 - 74744 / 8; fs grew */
             "2,25256,1256,82482,3800\n"   /* - 65401 / 8; 4000 - 200 */
             "3,25056,1256,75304,3610\n"}, /* - 57426 / 8; 3800 - 190 */
    /* self-ballooning off: goal/floor/target empty; shrink still runs */
    {"selfballooning_off",
     HDR "100000,20000,1000,263144,100\n"
         "100000,20000,1000,263144,100\n",
     "--set selfballooning=0 --set=frontswap_inertia=1",
     OUT_HDR "1,,,,\n2,,,,95\n"},
    /* both off: nothing at all */
    {"both_off", HDR "100000,20000,1000,263144,100\n",
     "--set selfballooning=0 --set frontswap_selfshrinking=0",
     OUT_HDR "1,,,,\n"},
    /* floor clamps, up hysteresis 2, useful < MB(64) branch:
     * max 11000, reserve 1000 -> floor 8048; goal 5000 + 1000 + 256 */
    {"floor_and_up",
     HDR "3000,5000,1000,11000,0\n"
         "9000,9000,1000,11000,0\n",
     "--set selfballoon_reserved_mb=1 --set selfballoon_uphysteresis=2",
     OUT_HDR "1,6256,8048,8048,\n"    /* 3000 + 3256 / 2 = 4628 < floor */
             "2,10256,8048,9628,\n"}, /* 9000 + 1256 / 2 */
    /* fields up to UINT64_MAX; total UINT64_MAX -> reserved_mb INT_MAX */
    {"u64_max", HDR "18446744073709551615,0,0,18446744073709551615,0\n", "",
     OUT_HDR "1,549755813632,576460752303448039,16140901133215334368,\n"},
    /* header only: no ticks */
    {"header_only", HDR, "", OUT_HDR},
    /* CRLF line ends are accepted */
    {"crlf",
     "cur_pages,committed_pages,reserve_pages,max_pages,frontswap_pages\r\n"
     "1048576,20000,1000,263144,0\r\n",
     "", OUT_HDR "1,125704,33744,933217,\n"},
};

TEST(simulate_outputs)
{
    setup();
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char args[512];
        tf_put(dir, "trace.csv", runs[i].trace);
        snprintf(args, sizeof args, "balloon simulate --trace @ %s",
                 runs[i].sets);
        int rc = tmem(args);
        if (rc != 0 || strcmp(out, runs[i].want) != 0)
            tmem_test_fail(__FILE__, __LINE__,
                           "%s: exit %d\n--- got:\n%s--- want:\n%s--- err:\n%s",
                           runs[i].what, rc, out, runs[i].want, err);
    }
    cleanup();
}

/* --trace=FILE works like --trace FILE; - reads stdin. */
TEST(simulate_option_forms)
{
    setup();
    tf_put(dir, "trace.csv", HDR "1048576,20000,1000,263144,0\n");
    ASSERT_EQ(tmem("balloon simulate --trace=@"), 0);
    ASSERT_STR_EQ(out, OUT_HDR "1,125704,33744,933217,\n");
    ASSERT_EQ(tmem("balloon simulate --trace - <@"), 0);
    ASSERT_STR_EQ(out, OUT_HDR "1,125704,33744,933217,\n");
    cleanup();
}

/* A --set the tunable refuses: exit 2, the error in words (what the
 * tunable allows, or the tunables there are), no output. */
#define SIM "tmem balloon simulate: "
#define POSITIVE "(allowed: a whole number, 1..2147483647)\n"
static const struct {
    const char *set, *says;
} bad_sets[] = {
    {"selfballoon_interval=0", SIM "selfballoon_interval: bad value '0' "
                               POSITIVE},
    {"selfballooning=2", SIM "selfballooning: bad value '2' (allowed: 0 or "
                         "1)\n"},
    {"frontswap_selfshrinking=-1", SIM "frontswap_selfshrinking: bad value "
                                   "'-1' (allowed: 0 or 1)\n"},
    {"selfballoon_reserved_mb=0", SIM "selfballoon_reserved_mb: bad value "
                                  "'0' " POSITIVE},
    {"frontswap_inertia=0x3", SIM "frontswap_inertia: bad value '0x3' "
                              POSITIVE},
    {"frontswap_hysteresis=2147483648", SIM "frontswap_hysteresis: bad value "
                                        "'2147483648' " POSITIVE},
    {"no_such_tunable=1",
     SIM "unknown tunable 'no_such_tunable' (tunables: selfballooning "
         "selfballoon_interval selfballoon_downhysteresis "
         "selfballoon_uphysteresis selfballoon_min_usable_mb "
         "selfballoon_reserved_mb frontswap_selfshrinking "
         "frontswap_hysteresis frontswap_inertia)\n"},
    {"selfballoon_downhysteresis=", SIM "selfballoon_downhysteresis: bad "
                                    "value '' " POSITIVE},
};

TEST(simulate_refused_set)
{
    setup();
    tf_put(dir, "trace.csv", HDR "1048576,20000,1000,263144,0\n");
    for (size_t i = 0; i < sizeof bad_sets / sizeof bad_sets[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "balloon simulate --trace @ --set '%s'",
                 bad_sets[i].set);
        int rc = tmem(args);
        if (rc != 2 || strcmp(err, bad_sets[i].says) != 0 || out[0])
            tmem_test_fail(__FILE__, __LINE__,
                           "--set %s: exit %d, err \"%s\", out \"%s\"",
                           bad_sets[i].set, rc, err, out);
    }
    /* min_usable_mb accepts 0 (our one difference) */
    ASSERT_EQ(tmem("balloon simulate --trace @ --set "
                   "selfballoon_min_usable_mb=0"),
              0);
    cleanup();
}

/* Bad traces: exit 2, the line number in the message, no output. */
static const struct {
    const char *what, *trace, *line;
} bad_traces[] = {
    {"empty", "", ":1:"},
    {"wrong header", "cur,committed,reserve,max,frontswap\n1,2,3,4,5\n", ":1:"},
    {"header reordered",
     "committed_pages,cur_pages,reserve_pages,max_pages,frontswap_pages\n",
     ":1:"},
    {"header extra column",
     "cur_pages,committed_pages,reserve_pages,"
     "max_pages,frontswap_pages,x\n",
     ":1:"},
    {"non-numeric", HDR "1,2,3,4,5\n1,2,x,4,5\n", ":3:"},
    {"negative", HDR "1,-2,3,4,5\n", ":2:"},
    {"space", HDR "1, 2,3,4,5\n", ":2:"},
    {"hex", HDR "0x1,2,3,4,5\n", ":2:"},
    {"too few fields", HDR "1,2,3,4\n", ":2:"},
    {"too many fields", HDR "1,2,3,4,5\n1,2,3,4,5,6\n", ":3:"},
    {"empty field", HDR "1,2,,4,5\n", ":2:"},
    {"trailing comma", HDR "1,2,3,4,5,\n", ":2:"},
    {"blank line", HDR "1,2,3,4,5\n\n1,2,3,4,5\n", ":3:"},
    {"past uint64", HDR "18446744073709551616,2,3,4,5\n", ":2:"},
};

TEST(simulate_bad_traces)
{
    setup();
    for (size_t i = 0; i < sizeof bad_traces / sizeof bad_traces[0]; i++) {
        tf_put(dir, "trace.csv", bad_traces[i].trace);
        int rc = tmem("balloon simulate --trace @");
        if (rc != 2 || !strstr(err, bad_traces[i].line) || out[0])
            tmem_test_fail(__FILE__, __LINE__,
                           "%s: exit %d, err \"%s\", out \"%s\"",
                           bad_traces[i].what, rc, err, out);
    }
    cleanup();
}

TEST(simulate_usage_errors)
{
    setup();
    tf_put(dir, "trace.csv", HDR "1,2,3,4,5\n");
    ASSERT_EQ(tmem("balloon simulate --trace /nonexistent/trace.csv"), 1);
    ASSERT_TRUE(strstr(err, "No such file") != NULL);
    ASSERT_EQ(tmem("balloon simulate"), 2);
    ASSERT_EQ(tmem("balloon simulate --trace"), 2);
    ASSERT_EQ(tmem("balloon simulate --trace @ --bogus"), 2);
    ASSERT_EQ(tmem("balloon simulate --trace @ --set noequals"), 2);
    ASSERT_EQ(tmem("balloon simulate --trace @ --set =1"), 2);
    ASSERT_EQ(tmem("balloon"), 2);
    ASSERT_EQ(tmem("balloon nonsense"), 2);
    ASSERT_EQ(tmem("balloon --help"), 0);
    ASSERT_TRUE(strstr(out, "simulate") && strstr(out, "run") &&
                strstr(out, "frontswap_inertia"));
    cleanup();
}
