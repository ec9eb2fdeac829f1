/*
 * Recovery of private arena files after a crash (lib/store/recover.c): a
 * child process fills a store whose arenas are files and dies without
 * tearing anything down; the files it leaves are read back into save
 * streams and restored into another store, and every persistent page
 * comes back exactly as the child last put it (replaced, flushed, fill
 * and deduplicated pages included), in the pool ids it had.  Damaged
 * files are refused or lose only the damaged records.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/recover.h"
#include "store/save.h"
#include "store_testutil.h"

#define NOBJ 12
#define NIDX 50
#define NPOOL 4

/* What the child leaves: seed + 1 of each (pool, obj, idx), 0 absent. */
struct model {
    uint64_t seed[NPOOL][NOBJ][NIDX];
};

static void put_m(struct model *m, tmem_client *c, int pool, int obj, int idx,
                  uint64_t seed)
{
    ASSERT_EQ(tu_put(c, pool, (uint64_t)obj, (uint32_t)idx, seed), 1);
    m->seed[pool][obj][idx] = seed + 1;
}

/* The child's work on one client: pools 0 and 3 persistent, 1 ephemeral,
 * 2 persistent but destroyed and made again; puts of every kind of page,
 * duplicates, replacements, flushes. */
static void fill_client(tmem_client *c, struct model *m, uint64_t base)
{
    memset(m, 0, sizeof *m);
    ASSERT_EQ(tmem_pool_new(c, NULL, PERS, NULL), 0);
    ASSERT_EQ(tmem_pool_new(c, NULL, EPH, NULL), 1);
    ASSERT_EQ(tmem_pool_new(c, NULL, PERS, NULL), 2);
    ASSERT_EQ(tmem_pool_new(c, NULL, PERS, NULL), 3);
    for (int i = 0; i < 8 * NIDX; i++) /* every kind: zero, fill, text... */
        put_m(m, c, 0, i / NIDX, i % NIDX, base + (uint64_t)i);
    for (int i = 0; i < NIDX; i++) /* the same contents again: aliases */
        put_m(m, c, 0, 9, i, base + 150 + (uint64_t)i);
    for (int i = 0; i < NIDX; i += 3) /* replaced */
        put_m(m, c, 0, 0, i, base + 5000 + (uint64_t)i);
    tmem_oid o1 = tu_oid(1), o2 = tu_oid(2), o3 = tu_oid(3);
    for (int i = 0; i < NIDX; i += 2) { /* flushed */
        ASSERT_EQ(tmem_page_flush(c, 0, &o1, (uint32_t)i), 1);
        m->seed[0][1][i] = 0;
    }
    ASSERT_GE(tmem_object_flush(c, 0, &o2), 0);
    memset(m->seed[0][2], 0, sizeof m->seed[0][2]);
    /* the originals of obj 9's duplicates go: their data stays for the
     * aliases */
    ASSERT_GE(tmem_object_flush(c, 0, &o3), 0);
    memset(m->seed[0][3], 0, sizeof m->seed[0][3]);
    for (int i = 0; i < NIDX; i++) { /* ephemeral: never recovered */
        uint8_t page[TMEM_PAGE_SIZE];
        tmem_oid o = tu_oid(4);
        tu_page(page, base + 7000 + (uint64_t)i);
        ASSERT_GE(tmem_page_put(c, 1, &o, (uint32_t)i, page), 0);
    }
    for (int i = 0; i < NIDX; i++) /* a pool destroyed: its pages go */
        ASSERT_EQ(tu_put(c, 2, 5, (uint32_t)i, base + 8000 + (uint64_t)i), 1);
    ASSERT_EQ(tmem_pool_destroy(c, 2), 0);
    ASSERT_EQ(tmem_pool_new(c, NULL, PERS, NULL), 2);
    for (int i = 0; i < 10; i++)
        put_m(m, c, 2, 5, i, base + 9000 + (uint64_t)i);
    for (int i = 0; i < NIDX; i++)
        put_m(m, c, 3, 11, i, base + 10000 + (uint64_t)i);
    /* pool 1 goes: pools 0, 2, 3 must keep their ids */
    ASSERT_EQ(tmem_pool_destroy(c, 1), 0);
}

struct shared {
    struct model m[2];
};

/* The child: two tenants whose arenas are files, a third that leaves
 * normally (its file goes), then death without teardown. */
static void child(const char *dir, struct shared *sh)
{
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.arena_dir = dir;
    tmem_store *s = NULL;
    if (tmem_store_create(&cfg, &s) != 0)
        _exit(2);
    const char *tags[2] = {"tenant-a", "tenant-b"};
    for (int k = 0; k < 2; k++) {
        tmem_client *c = tu_client(s);
        ASSERT_EQ(tmem__client_set_tag(c, tags[k], 9), 0);
        fill_client(c, &sh->m[k], (uint64_t)k * 100000);
    }
    tmem_client *gone = tu_client(s);
    ASSERT_EQ(tmem_pool_new(gone, NULL, PERS, NULL), 0);
    ASSERT_EQ(tu_put(gone, 0, 1, 1, 2), 1);
    tmem_client_destroy(gone);
    _exit(0); /* a crash: nothing torn down (a failed check exits 1) */
}

/* The .tma files in dir (up to cap), full paths. */
static int arena_files(const char *dir, char paths[][512], int cap)
{
    DIR *d = opendir(dir);
    ASSERT_TRUE(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tma") && n < cap)
            snprintf(paths[n++], 512, "%s/%s", dir, e->d_name);
    closedir(d);
    return n;
}

/* Recovers path into a fresh client of s; returns its info. */
static tmem_recover_info recover_into(const char *path, tmem_store *s,
                                      tmem_client **cout, int *rc_out)
{
    int fd = open(path, O_RDONLY);
    ASSERT_GE(fd, 0);
    int mfd = memfd_create("stream", 0);
    ASSERT_GE(mfd, 0);
    tmem_recover_info info;
    *rc_out = tmem__arena_recover(fd, mfd, &info);
    close(fd);
    *cout = NULL;
    if (*rc_out == 0) {
        ASSERT_EQ(lseek(mfd, 0, SEEK_SET), 0);
        tmem_client *c = tu_client(s);
        int map[TMEM_MAX_POOLS];
        ASSERT_EQ(tmem__client_restore(c, mfd, map, NULL), 0);
        ASSERT_EQ(map[0], 0);
        ASSERT_EQ(map[2], 2);
        ASSERT_EQ(map[3], 3);
        ASSERT_EQ(map[1], -1);
        *cout = c;
    }
    close(mfd);
    return info;
}

/* Every page of the model is there and right; every other is absent.
 * Returns how many were missing (allowed up to lost). */
static uint64_t check_model(tmem_client *c, const struct model *m,
                            uint64_t lost)
{
    uint64_t missing = 0;
    for (int p = 0; p < NPOOL; p++) {
        if (p == 1)
            continue;
        for (int o = 0; o < NOBJ; o++)
            for (int i = 0; i < NIDX; i++) {
                uint8_t got[TMEM_PAGE_SIZE], want[TMEM_PAGE_SIZE];
                tmem_oid oid = tu_oid((uint64_t)o);
                int r = tmem_page_get(c, p, &oid, (uint32_t)i, got);
                if (!m->seed[p][o][i]) {
                    ASSERT_EQ(r, 0);
                    continue;
                }
                if (r == 0 && missing < lost) {
                    missing++;
                    continue;
                }
                ASSERT_EQ(r, 1);
                tu_page(want, m->seed[p][o][i] - 1);
                ASSERT_MEM_EQ(got, want, TMEM_PAGE_SIZE);
            }
    }
    return missing;
}

static uint64_t model_pages(const struct model *m)
{
    uint64_t n = 0;
    for (int p = 0; p < NPOOL; p++)
        for (int o = 0; o < NOBJ; o++)
            for (int i = 0; i < NIDX; i++)
                n += m->seed[p][o][i] != 0;
    return n;
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp --sparse=always '%s' '%s'", from, to);
    ASSERT_EQ(system(cmd), 0);
}

/* Runs the child; returns the shared model (munmap by the caller). */
static struct shared *crash_child(char *dir)
{
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(sh != MAP_FAILED);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
        child(dir, sh);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return sh;
}

static void rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
}

TEST(recover_after_crash_every_page_as_last_put)
{
    char dir[] = "/tmp/tmem-recover-XXXXXX";
    struct shared *sh = crash_child(dir);
    char paths[8][512];
    ASSERT_EQ(arena_files(dir, paths, 8), 2); /* the third left: removed */
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    int seen = 0;
    for (int f = 0; f < 2; f++) {
        int fd = open(paths[f], O_RDONLY);
        tmem_recover_info peek;
        ASSERT_EQ(tmem__arena_file_peek(fd, &peek), 0);
        close(fd);
        ASSERT_EQ(peek.tag_len, 9u);
        ASSERT_TRUE(!peek.dead);
        int k = memcmp(peek.tag, "tenant-b", 9) == 0;
        ASSERT_TRUE(k || memcmp(peek.tag, "tenant-a", 9) == 0);
        seen |= 1 << k;
        tmem_client *c;
        int rc;
        tmem_recover_info info = recover_into(paths[f], s, &c, &rc);
        ASSERT_EQ(rc, 0);
        ASSERT_EQ(info.bad, 0u);
        ASSERT_EQ(info.pools, 3u);
        ASSERT_EQ(info.pages, model_pages(&sh->m[k]));
        ASSERT_EQ(check_model(c, &sh->m[k], 0), 0u);
        tmem_client_destroy(c);
    }
    ASSERT_EQ(seen, 3);
    tmem_store_destroy(s);
    munmap(sh, sizeof *sh);
    rm_dir(dir);
}

/* A changed byte in a record's payload loses that record's names only;
 * a damaged header or a cut file is refused; a dying arena keeps
 * nothing. */
TEST(recover_damaged_files)
{
    char dir[] = "/tmp/tmem-recover-XXXXXX";
    struct shared *sh = crash_child(dir);
    char paths[8][512], copy[600];
    ASSERT_EQ(arena_files(dir, paths, 8), 2);
    snprintf(copy, sizeof copy, "%s/copy", dir);
    int fd = open(paths[0], O_RDONLY);
    tmem_recover_info peek;
    ASSERT_EQ(tmem__arena_file_peek(fd, &peek), 0);
    close(fd);
    const struct model *m = &sh->m[memcmp(peek.tag, "tenant-b", 9) == 0];
    tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
    /* the first live DATA record's payload, one byte changed */
    copy_file(paths[0], copy);
    fd = open(copy, O_RDWR);
    struct stat stt;
    ASSERT_EQ(fstat(fd, &stt), 0);
    char *base = mmap(NULL, (size_t)stt.st_size, PROT_READ | PROT_WRITE,
                      MAP_SHARED, fd, 0);
    ASSERT_TRUE(base != MAP_FAILED);
    int flipped = 0;
    for (uint32_t h = 4; h < TMEM_ARENA_HPS && !flipped; h++) {
        const tmem_arena_handle *e =
            tmem__arena_handle_at(base, (size_t)stt.st_size, h);
        uint64_t loc = e ? atomic_load(&((tmem_arena_handle *)e)->loc) : 0;
        /* data no alias names (its one reference is its own name) */
        if (!TMEM_ALOC_LIVE(loc) || TMEM_ALOC_ALIAS(loc) ||
            atomic_load(&((tmem_arena_handle *)e)->ref) != 1)
            continue;
        tmem_arena_rec *r = (tmem_arena_rec *)(base +
                                               ((size_t)TMEM_ALOC_SEG(loc)
                                                << TMEM_ARENA_SEG_SHIFT) +
                                               TMEM_ALOC_OFF(loc));
        if (atomic_load(&r->state) != TMEM_REC_LIVE)
            continue;
        ((char *)(r + 1))[r->len / 2] ^= 0x40;
        flipped = 1;
    }
    ASSERT_TRUE(flipped);
    tmem_client *c;
    int rc;
    tmem_recover_info info = recover_into(copy, s, &c, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(info.bad, 1u);
    uint64_t want = model_pages(m);
    ASSERT_EQ(info.pages, want - 1);
    ASSERT_EQ(check_model(c, m, 1), 1u);
    tmem_client_destroy(c);
    /* a dying arena: nothing to keep */
    ((tmem_arena_hdr *)base)->state = TMEM_ARENA_DEAD;
    info = recover_into(copy, s, &c, &rc);
    ASSERT_EQ(rc, 0);
    ASSERT_TRUE(info.dead);
    ASSERT_EQ(info.pages, 0u);
    tmem_client_destroy(c);
    /* the magic changed, then the version */
    ((tmem_arena_hdr *)base)->magic ^= 1;
    int mfd = memfd_create("stream", 0);
    ASSERT_EQ(tmem__arena_recover(fd, mfd, &info), -EPROTO);
    ASSERT_EQ(tmem__arena_file_peek(fd, &info), -EPROTO);
    ((tmem_arena_hdr *)base)->magic ^= 1;
    ((tmem_arena_hdr *)base)->version = 99;
    ASSERT_EQ(tmem__arena_recover(fd, mfd, &info), -EPROTO);
    munmap(base, (size_t)stt.st_size);
    /* cut to one segment */
    ASSERT_EQ(ftruncate(fd, TMEM_ARENA_SEG_SIZE), 0);
    ASSERT_EQ(tmem__arena_recover(fd, mfd, &info), -EPROTO);
    /* an empty file, and not a file at all */
    ASSERT_EQ(ftruncate(fd, 0), 0);
    ASSERT_EQ(tmem__arena_recover(fd, mfd, &info), -EPROTO);
    close(fd);
    ASSERT_EQ(tmem__arena_recover(-1, mfd, &info), -EBADF);
    close(mfd);
    tmem_store_destroy(s);
    munmap(sh, sizeof *sh);
    rm_dir(dir);
}

/* A store with an arena directory that cannot be written: a persistent
 * pool is refused, the store says why, nothing is left behind. */
TEST(recover_arena_dir_errors)
{
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.arena_dir = "/nonexistent/tmem-arenas";
    tmem_store *s = NULL;
    ASSERT_EQ(tmem_store_create(&cfg, &s), 0);
    tmem_client *c = tu_client(s);
    ASSERT_LT(tmem_pool_new(c, NULL, PERS, NULL), 0);
    ASSERT_GE(tmem_pool_new(c, NULL, EPH, NULL), 0); /* no arena needed */
    ASSERT_EQ(tmem__client_set_tag(c, "x", TMEM_ARENA_TAG_MAX + 1),
              TMEM_EINVAL);
    tmem_store_destroy(s);
}

/* ---- kill -9 in the middle of churn, compaction running ---------------- */

#define CHURN_KEYS 3000

struct churn {
    uint64_t seed[CHURN_KEYS]; /* acknowledged: seed + 1, 0 flushed */
    _Atomic int64_t inflight;  /* the key of the operation under way */
    uint64_t inflight_new;     /* ... and what it makes it (0 flushed) */
    _Atomic uint64_t compactions, ops;
};

static void churn_child(const char *dir, struct churn *ch, uint64_t seed)
{
    tmem_store_config cfg;
    tmem_store_config_init(&cfg);
    cfg.arena_dir = dir;
    tmem_store *s = NULL;
    if (tmem_store_create(&cfg, &s) != 0 ||
        tmem_store_start_maintenance(s) != 0)
        _exit(2);
    tmem_client *c = tu_client(s);
    ASSERT_EQ(tmem__client_set_tag(c, "churn", 6), 0);
    ASSERT_EQ(tmem_pool_new(c, NULL, PERS, NULL), 0);
    for (uint64_t n = 0;; n++) {
        uint64_t r = tu_rand(&seed);
        int64_t k = (int64_t)(r % CHURN_KEYS);
        /* zero, same-filled, text and half-random pages: records of many
         * sizes (fill pages too: in a file arena they are records), so
         * segments go sparse and compaction moves what is left */
        static const uint64_t kind[4] = {0, 1, 2, 4};
        uint64_t v = (r >> 20) % 4 == 0
                         ? 0
                         : (r >> 24) * 5 + kind[(r >> 16) % 4] + 1;
        ch->inflight_new = v;
        atomic_store(&ch->inflight, k);
        tmem_oid o = tu_oid((uint64_t)k / 100);
        if (v)
            ASSERT_EQ(tu_put(c, 0, (uint64_t)k / 100, (uint32_t)(k % 100),
                             v - 1),
                      1);
        else
            ASSERT_GE(tmem_page_flush(c, 0, &o, (uint32_t)(k % 100)), 0);
        ch->seed[k] = v;
        atomic_store(&ch->inflight, -1);
        if (n % 512 == 0) {
            tmem_global_stats g;
            if (tmem_store_stats(s, &g) == 0)
                atomic_store(&ch->compactions, g.compact_background);
            atomic_store(&ch->ops, n);
        }
    }
}

TEST(recover_kill9_during_churn_with_compaction)
{
    uint64_t seed = (uint64_t)getpid();
    const char *env = getenv("TMEM_TEST_SEED");
    if (env)
        seed = strtoull(env, NULL, 0);
    fprintf(stderr, "  seed %llu (TMEM_TEST_SEED)\n", (unsigned long long)seed);
    struct churn *ch = mmap(NULL, sizeof *ch, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(ch != MAP_FAILED);
    uint64_t compactions = 0;
    for (int round = 0; round < 4; round++) {
        char dir[] = "/tmp/tmem-recover-XXXXXX";
        ASSERT_TRUE(mkdtemp(dir) != NULL);
        memset(ch, 0, sizeof *ch);
        atomic_store(&ch->inflight, -1);
        uint64_t rs = tu_rand(&seed);
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0)
            churn_child(dir, ch, rs);
        usleep(150000 + (useconds_t)(rs % 400000)); /* 150-550 ms */
        kill(pid, SIGKILL);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(st)); /* a failed check would exit */
        char paths[4][512];
        ASSERT_EQ(arena_files(dir, paths, 4), 1);
        tmem_store *s = tu_store(0, TMEM_COMPRESS_LZ4);
        int fd = open(paths[0], O_RDONLY), mfd = memfd_create("s", 0);
        tmem_recover_info info;
        ASSERT_EQ(tmem__arena_recover(fd, mfd, &info), 0);
        close(fd);
        ASSERT_EQ(lseek(mfd, 0, SEEK_SET), 0);
        tmem_client *c = tu_client(s);
        ASSERT_EQ(tmem__client_restore(c, mfd, NULL, NULL), 0);
        close(mfd);
        int64_t fl = atomic_load(&ch->inflight);
        uint64_t present = 0;
        for (int64_t k = 0; k < CHURN_KEYS; k++) {
            uint8_t got[TMEM_PAGE_SIZE], want[TMEM_PAGE_SIZE];
            tmem_oid o = tu_oid((uint64_t)k / 100);
            int r = tmem_page_get(c, 0, &o, (uint32_t)(k % 100), got);
            uint64_t v = ch->seed[k];
            if (k == fl && r == (ch->inflight_new ? 1 : 0)) {
                v = ch->inflight_new; /* the operation under way did land */
                if (r == 1) {
                    tu_page(want, v - 1);
                    if (memcmp(got, want, TMEM_PAGE_SIZE) != 0)
                        v = ch->seed[k]; /* ... or not: the old page */
                }
            }
            ASSERT_EQ(r, v ? 1 : 0);
            if (v) {
                tu_page(want, v - 1);
                ASSERT_MEM_EQ(got, want, TMEM_PAGE_SIZE);
            }
            present += r == 1;
        }
        compactions += atomic_load(&ch->compactions);
        fprintf(stderr,
                "  round %d: %llu operations, %llu pages back exactly, %llu "
                "records failed checks, %llu compaction steps\n",
                round, (unsigned long long)atomic_load(&ch->ops),
                (unsigned long long)present, (unsigned long long)info.bad,
                (unsigned long long)atomic_load(&ch->compactions));
        tmem_store_destroy(s);
        rm_dir(dir);
    }
    ASSERT_GT(compactions, 0); /* the crashes met compaction */
    munmap(ch, sizeof *ch);
}
