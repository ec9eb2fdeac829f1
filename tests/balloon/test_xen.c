/*
 * The Xen guest backend against prepared directory trees: where each input
 * comes from, the target it writes (with the balloon's offset), and every
 * refusal with its message.  Each test builds its own tree under /tmp.
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../runner.h"
#include "test_files.h"
#include "balloon/controller.h"
#include "balloon/xen.h"
#include "common/mem.h"

#define XDIR "sys/devices/system/xen_memory/xen_memory0"

/* A domU with 2000000 kB of RAM (500000 pages) as the kernel counts it,
 * 2097152 kB as the balloon counts it (offset 24288 pages), 1 GiB in the
 * balloon (max = 500000 + 262144), Committed_AS 800000 kB (200000 pages),
 * swap used 1048576 - 1000000 = 48576 kB (12144 pages), and zones whose
 * reserve is min(32 + 15846, 3840) + min(1000 + 500, 400000) = 5340. */
static const char meminfo[] = "MemTotal:        2000000 kB\n"
                              "MemFree:          100000 kB\n"
                              "Cached:           900000 kB\n"
                              "SwapTotal:       1048576 kB\n"
                              "SwapFree:        1000000 kB\n"
                              "Committed_AS:     800000 kB\n"
                              "VmallocTotal:   34359738367 kB\n";

static const char zoneinfo[] = "Node 0, zone      DMA\n"
                               "  per-node stats\n"
                               "      nr_inactive_anon 1234\n"
                               "  pages free     3840\n"
                               "        boost    0\n"
                               "        min      22\n"
                               "        low      27\n"
                               "        high     32\n"
                               "        spanned  4095\n"
                               "        present  3998\n"
                               "        managed  3840\n"
                               "        protection: (0, 1802, 15846, 15846)\n"
                               "  pagesets\n"
                               "    cpu: 0\n"
                               "              count: 0\n"
                               "              high:  999999\n"
                               "              batch: 1\n"
                               "Node 0, zone    DMA32\n"
                               "  pages free     300000\n"
                               "        min      700\n"
                               "        low      850\n"
                               "        high     1000\n"
                               "        managed  400000\n"
                               "        protection: (0, 0, 500, 500)\n"
                               "  pagesets\n"
                               "    cpu: 0\n"
                               "              high:  378\n";

static char root[64];

static void del(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    ASSERT_EQ(unlink(path), 0);
}

static char *slurp(const char *rel)
{
    static char buf[256];
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The full domU tree; tests then remove or spoil one piece. */
static void make_tree(void)
{
    snprintf(root, sizeof root, "/tmp/tmem-xen-XXXXXX");
    ASSERT_TRUE(mkdtemp(root) != NULL);
    tf_put(root, XDIR "/target_kb", "2097152\n");
    tf_put(root, XDIR "/info/current_kb", "2097152\n");
    tf_put(root, XDIR "/info/low_kb", "0\n");
    tf_put(root, XDIR "/info/high_kb", "1048576\n");
    tf_put(root, "proc/meminfo", meminfo);
    tf_put(root, "proc/zoneinfo", zoneinfo);
    tf_put(root, "proc/xen/capabilities", "");
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", root);
}

TEST(xen_reads_state)
{
    tmem_balloon_backend be;
    tmem_balloon_input in;
    char err[512];

    make_tree();
    ASSERT_EQ(tmem_balloon_xen_open(&be, root, err, sizeof err), 0);
    ASSERT_STR_EQ(err, "");
    ASSERT_STR_EQ(be.name, "xen");
    ASSERT_TRUE(be.frontswap_available);
    ASSERT_TRUE(be.shrink_frontswap == NULL);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.cur, 500000);
    ASSERT_U64_EQ(in.committed, 200000);
    ASSERT_U64_EQ(in.reserve, 5340);
    ASSERT_U64_EQ(in.max, 762144);
    ASSERT_U64_EQ(in.frontswap, 12144);
    char want[128];
    snprintf(want, sizeof want, "%s/proc/pressure/memory", root);
    ASSERT_STR_EQ(be.pressure_path, want);
    tmem_balloon_backend_close(&be);
    ASSERT_TRUE(be.self == NULL);
    cleanup();
}

/* target_kb = (target + 524288 - 500000) * 4 */
TEST(xen_writes_target_with_offset)
{
    tmem_balloon_backend be;
    tmem_balloon_input in;

    make_tree();
    ASSERT_EQ(tmem_balloon_xen_open(&be, root, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_EQ(be.apply_target(be.self, 400000), 0);
    ASSERT_STR_EQ(slurp(XDIR "/target_kb"), "1697152\n");
    ASSERT_EQ(be.apply_target(be.self, 0), -EINVAL);
    ASSERT_TRUE(strstr(tmem_balloon_backend_why(&be), "refusing") != NULL);
    ASSERT_EQ(be.apply_target(be.self, UINT64_MAX), -EINVAL);
    ASSERT_STR_EQ(slurp(XDIR "/target_kb"), "1697152\n");
    tmem_balloon_backend_close(&be);
    cleanup();
}

/* Without info/: the target stands for the balloon's current size and max
 * is the current memory. */
TEST(xen_without_info_dir)
{
    tmem_balloon_backend be;
    tmem_balloon_input in;

    make_tree();
    del(XDIR "/info/current_kb");
    del(XDIR "/info/low_kb");
    del(XDIR "/info/high_kb");
    tf_put(root, XDIR "/target_kb", "2001000\n"); /* offset (2001000-2000000)/4 */
    ASSERT_EQ(tmem_balloon_xen_open(&be, root, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.max, 500000);
    ASSERT_EQ(be.apply_target(be.self, 450000), 0);
    ASSERT_STR_EQ(slurp(XDIR "/target_kb"), "1801000\n"); /* 450250 * 4 */
    tmem_balloon_backend_close(&be);
    cleanup();
}

/* Each read sees the files anew; a file that vanishes fails the read. */
TEST(xen_rereads_each_tick)
{
    tmem_balloon_backend be;
    tmem_balloon_input in;

    make_tree();
    ASSERT_EQ(tmem_balloon_xen_open(&be, root, NULL, 0), 0);
    tf_put(root, "proc/meminfo", "MemTotal: 1000000 kB\nCommitted_AS: 4 kB\n"
                        "SwapTotal: 0 kB\nSwapFree: 0 kB\n");
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.cur, 250000);
    ASSERT_U64_EQ(in.committed, 1);
    ASSERT_U64_EQ(in.frontswap, 0);
    del("proc/zoneinfo");
    ASSERT_EQ(be.read(be.self, &in), -ENOENT);
    ASSERT_TRUE(strstr(tmem_balloon_backend_why(&be), "zoneinfo") != NULL);
    tmem_balloon_backend_close(&be);
    cleanup();
}

/* Trees that are not a usable domU, the error and the file it names. */
static const struct {
    const char *what;
    const char *rel;  /* file to change */
    const char *text; /* its new text, NULL = remove it */
    int err;
    const char *says; /* in the message */
} broken[] = {
    {"no balloon driver", XDIR "/target_kb", NULL, -ENOENT, "target_kb"},
    {"no meminfo", "proc/meminfo", NULL, -ENOENT, "meminfo"},
    {"no zoneinfo", "proc/zoneinfo", NULL, -ENOENT, "zoneinfo"},
    {"dom0", "proc/xen/capabilities", "control_d\n", -EPERM, "dom0"},
    {"target not a number", XDIR "/target_kb", "lots\n", -EINVAL,
     "not a number"},
    {"target trailing junk", XDIR "/target_kb", "12 34\n", -EINVAL,
     "not a number"},
    {"target empty", XDIR "/target_kb", "", -EINVAL, "not a number"},
    {"current not a number", XDIR "/info/current_kb", "-1\n", -EINVAL,
     "current_kb"},
    {"no MemTotal", "proc/meminfo", "Committed_AS: 5 kB\n", -EINVAL,
     "MemTotal"},
    {"MemTotal 0", "proc/meminfo",
     "MemTotal: 0 kB\nCommitted_AS: 0 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
     -EINVAL, "MemTotal is 0"},
    {"no Committed_AS", "proc/meminfo",
     "MemTotal: 10 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n", -EINVAL,
     "Committed_AS"},
    {"Committed_AS junk", "proc/meminfo",
     "MemTotal: 10 kB\nCommitted_AS: x kB\nSwapTotal: 0 kB\n"
     "SwapFree: 0 kB\n",
     -EINVAL, "Committed_AS"},
    {"no swap lines", "proc/meminfo", "MemTotal: 10 kB\nCommitted_AS: 1 kB\n",
     -EINVAL, "SwapTotal"},
    {"zoneinfo without zones", "proc/zoneinfo", "nonsense\n", -EINVAL,
     "no zones"},
};

TEST(xen_refusals)
{
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        tmem_balloon_backend be;
        char err[512];
        int rc;

        make_tree();
        if (broken[i].text)
            tf_put(root, broken[i].rel, broken[i].text);
        else
            del(broken[i].rel);
        rc = tmem_balloon_xen_open(&be, root, err, sizeof err);
        if (rc != broken[i].err || !strstr(err, broken[i].says))
            tmem_test_fail(__FILE__, __LINE__, "%s: %d \"%s\", want %d \"%s\"",
                           broken[i].what, rc, err, broken[i].err,
                           broken[i].says);
        ASSERT_TRUE(be.self == NULL && be.read == NULL);
        tmem_balloon_backend_close(&be);
        cleanup();
    }
}

TEST(xen_swap_edge_cases)
{
    tmem_balloon_backend be;
    tmem_balloon_input in;

    make_tree();
    tf_put(root, "proc/meminfo", "MemTotal: 400 kB\nCommitted_AS: 40 kB\n"
                        "SwapTotal: 0 kB\nSwapFree: 0 kB\n");
    tf_put(root, "proc/xen/capabilities", "\n"); /* a domU's (empty) caps */
    ASSERT_EQ(tmem_balloon_xen_open(&be, root, NULL, 0), 0);
    ASSERT_TRUE(!be.frontswap_available);
    tmem_balloon_backend_close(&be);
    tf_put(root, "proc/meminfo", "MemTotal: 400 kB\nCommitted_AS: 40 kB\n"
                        "SwapTotal: 40 kB\nSwapFree: 80 kB\n");
    del("proc/xen/capabilities"); /* no xenfs: not dom0 */
    ASSERT_EQ(tmem_balloon_xen_open(&be, root, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    ASSERT_U64_EQ(in.frontswap, 0); /* free > total: nothing used */
    tmem_balloon_backend_close(&be);
    cleanup();
}

/* A trailing slash on root, and the real root on a machine that is not a
 * Xen guest. */
TEST(xen_root_forms)
{
    tmem_balloon_backend be;
    char slash[80], err[512];

    make_tree();
    snprintf(slash, sizeof slash, "%s//", root);
    ASSERT_EQ(tmem_balloon_xen_open(&be, slash, err, sizeof err), 0);
    tmem_balloon_backend_close(&be);
    cleanup();
    if (access("/" XDIR "/target_kb", F_OK) == 0)
        TEST_SKIP("this machine is a Xen guest");
    ASSERT_EQ(tmem_balloon_xen_open(&be, NULL, err, sizeof err), -ENOENT);
    ASSERT_TRUE(strstr(err, "/" XDIR "/target_kb") != NULL);
    ASSERT_EQ(tmem_balloon_xen_open(&be, "/", err, sizeof err), -ENOENT);
}

/* One controller step end to end: read, tick, apply.  Defaults with
 * frontswap, total 500000: reserved_mb = 50000 / 256 = 195 (49920 pages);
 * goal = 200000 + 5340 + 49920 + 12144 = 267404; down 8:
 * 500000 - 232596 / 8 = 470926; floor (useful 756804 >= MB(512)) =
 * 5340 + 25344 + 731460 / 32 = 53542; target_kb = (470926 + 24288) * 4. */
TEST(xen_controller_step)
{
    tmem_balloon_backend be;
    tmem_balloon_input in;
    tmem_balloon_output out;
    tmem_balloon b;

    make_tree();
    ASSERT_EQ(tmem_balloon_xen_open(&be, root, NULL, 0), 0);
    ASSERT_EQ(be.read(be.self, &in), 0);
    tmem_balloon_init(&b, in.cur, be.frontswap_available);
    tmem_balloon_tick(&b, &in, &out);
    ASSERT_TRUE(out.ballooned);
    ASSERT_U64_EQ(out.goal, 267404);
    ASSERT_U64_EQ(out.floor, 53542);
    ASSERT_U64_EQ(out.target, 470926);
    ASSERT_EQ(be.apply_target(be.self, out.target), 0);
    ASSERT_STR_EQ(slurp(XDIR "/target_kb"), "1980856\n");
    tmem_balloon_backend_close(&be);
    cleanup();
}

/* Allocation-failure sweep: fail the Nth allocation of open (then of a
 * read) until it succeeds; every failure is -ENOMEM with nothing leaked
 * (the sanitizer build checks) and nothing half-open. */
TEST(xen_allocation_failures)
{
    tmem_balloon_backend be;
    tmem_balloon_input in;
    char err[512];
    long n;
    int rc;

    make_tree();
    for (n = 1; n < 100; n++) {
        tmem__fault_arm(n, 0);
        rc = tmem_balloon_xen_open(&be, root, err, sizeof err);
        long hits = tmem__fault_hits();
        tmem__fault_arm(0, 0);
        if (hits == 0) {
            ASSERT_EQ(rc, 0);
            break;
        }
        ASSERT_EQ(rc, -ENOMEM);
        ASSERT_TRUE(be.self == NULL);
        ASSERT_TRUE(strstr(err, "emory") != NULL);
    }
    ASSERT_GT(n, 1);
    ASSERT_LT(n, 100);
    for (n = 1; n < 100; n++) {
        tmem__fault_arm(n, 0);
        rc = be.read(be.self, &in);
        long hits = tmem__fault_hits();
        tmem__fault_arm(0, 0);
        if (hits == 0) {
            ASSERT_EQ(rc, 0);
            break;
        }
        ASSERT_EQ(rc, -ENOMEM);
    }
    ASSERT_U64_EQ(in.cur, 500000);
    tmem_balloon_backend_close(&be);
    cleanup();
}
