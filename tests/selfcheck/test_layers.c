/*
 * Dependencies point one way, programs -> lib -> common (STYLE.md), and a
 * program uses the public headers or a lib module's interface headers,
 * never a module's private ones (named *_internal.h).  Read from the
 * #include lines of src/, lib/ and their headers:
 *   - src/: no *_internal.h of a lib module, no path into lib/ or into
 *     another program ("../"),
 *   - lib/: nothing from src/,
 *   - lib/common: nothing from another lib module.
 * Known exceptions are listed with why they stand; one that is gone is
 * said, so the list can shrink.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "../runner.h"

static const struct {
    const char *file, *header, *why;
} known[] = {
    {NULL, NULL, NULL}, /* none today */
};
#define NKNOWN (sizeof known / sizeof known[0])

static int known_seen[NKNOWN];

/* The rule file breaks by including header, or NULL. */
static const char *broken_rule(const char *file, const char *header)
{
    size_t n = strlen(header);
    if (!strncmp(file, "src/", 4)) {
        if (n > 11 && !strcmp(header + n - 11, "_internal.h") &&
            strchr(header, '/'))
            return "a program includes a lib module's private header";
        if (!strncmp(header, "../", 3))
            return "a program reaches into another directory";
    }
    if (!strncmp(file, "lib/", 4) &&
        (strstr(header, "src/") || strstr(header, "../")))
        return "lib depends on a program (or reaches out by path)";
    if (!strncmp(file, "lib/common/", 11) && strchr(header, '/') &&
        strncmp(header, "common/", 7) && strncmp(header, "tmem/", 5) &&
        strncmp(header, "sys/", 4) && strncmp(header, "linux/", 6))
        return "lib/common depends on another lib module";
    return NULL;
}

static int excused(const char *file, const char *header)
{
    for (size_t i = 0; i < NKNOWN; i++)
        if (known[i].file && !strcmp(file, known[i].file) &&
            !strcmp(header, known[i].header))
            return known_seen[i] = 1;
    return 0;
}

/* Checks every #include of one file; returns the violations. */
static int check_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512], header[256];
    int bad = 0;
    ASSERT_TRUE(f != NULL);
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, " # include %*[<\"]%255[^>\"]", header) != 1)
            continue;
        const char *why = broken_rule(path, header);
        if (why && !excused(path, header)) {
            fprintf(stderr, "  %s: #include %s: %s\n", path, header, why);
            bad++;
        }
    }
    fclose(f);
    return bad;
}

/* Every .c and .h one level below dir (src/<prog>/, lib/<module>/). */
static int check_tree(const char *dir)
{
    DIR *top = opendir(dir);
    int bad = 0;
    ASSERT_TRUE(top != NULL);
    for (struct dirent *d; (d = readdir(top));) {
        char sub[512];
        if (d->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof sub, "%s/%s", dir, d->d_name);
        DIR *in = opendir(sub);
        if (!in)
            continue;
        for (struct dirent *e; (e = readdir(in));) {
            size_t n = strlen(e->d_name);
            char path[1024];
            if (n < 3 || e->d_name[n - 2] != '.' ||
                (e->d_name[n - 1] != 'c' && e->d_name[n - 1] != 'h'))
                continue;
            snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
            bad += check_file(path);
        }
        closedir(in);
    }
    closedir(top);
    return bad;
}

TEST(layers_one_way_includes)
{
    int bad = check_tree("src") + check_tree("lib");
    for (size_t i = 0; i < NKNOWN && known[i].file; i++)
        printf("  %s %s -> %s: %s\n",
               known_seen[i] ? "known exception:" : "exception gone, drop it:",
               known[i].file, known[i].header, known[i].why);
    ASSERT_EQ(bad, 0);
}
