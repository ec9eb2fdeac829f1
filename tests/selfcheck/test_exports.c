/*
 * Library hygiene: $BUILD/libtmem.so exports the public API and nothing
 * else.  Every defined dynamic symbol (nm -D --defined-only) must be a
 * function the public headers (include/tmem) declare; the compiler is
 * the judge (a file that takes the address of every exported name,
 * compiled against those headers alone), so a test hook, a fault
 * injector or any tmem__ internal shows up by name.  And every function
 * the headers declare (scripts/api_names.sh) must be exported, or the
 * shared library misses API.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runner.h"

#define MAX_SYMS 1024

struct syms {
    char *name[MAX_SYMS];
    int n;
};

static const char *build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

/* Runs cmd (sh -c) and keeps the first word of each output line. */
static void read_words(const char *cmd, struct syms *out)
{
    FILE *p = popen(cmd, "r");
    char line[512];
    ASSERT_TRUE(p != NULL);
    while (fgets(line, sizeof line, p)) {
        char *w = strtok(line, " \t\n");
        if (!w)
            continue;
        ASSERT_LT(out->n, MAX_SYMS);
        out->name[out->n++] = strdup(w);
    }
    ASSERT_EQ(pclose(p), 0);
}

/* The linker's own markers in every shared object, not API. */
static int linker_symbol(const char *s)
{
    static const char *const own[] = {"_init", "_fini",       "_edata",
                                      "_end",  "__bss_start", NULL};
    for (int i = 0; own[i]; i++)
        if (strcmp(s, own[i]) == 0)
            return 1;
    return 0;
}

static void syms_free(struct syms *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->name[i]);
    s->n = 0;
}

/* The defined dynamic symbols of libtmem.so, the linker's own left out. */
static void exported(struct syms *out)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "nm -D --defined-only --format=posix %s/libtmem.so", build_dir());
    read_words(cmd, out);
    int n = 0;
    for (int i = 0; i < out->n; i++) {
        if (linker_symbol(out->name[i]))
            free(out->name[i]);
        else
            out->name[n++] = out->name[i];
    }
    out->n = n;
    ASSERT_GT(out->n, 0);
}

/* "#include <tmem/x.h>" for every public header, into f. */
static void include_public(FILE *f)
{
    DIR *d = opendir("include/tmem");
    ASSERT_TRUE(d != NULL);
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > 2 && strcmp(e->d_name + n - 2, ".h") == 0)
            fprintf(f, "#include <tmem/%s>\n", e->d_name);
    }
    closedir(d);
}

TEST(exports_only_public_api)
{
    struct syms s = {0};
    char path[] = "/tmp/tmem-exports-XXXXXX.c", cmd[512];
    exported(&s);
    int fd = mkstemps(path, 2);
    ASSERT_GE(fd, 0);
    FILE *f = fdopen(fd, "w");
    ASSERT_TRUE(f != NULL);
    include_public(f);
    fprintf(f, "void *tmem_exported_[] = {\n");
    for (int i = 0; i < s.n; i++)
        fprintf(f, "    (void *)&%s,\n", s.name[i]);
    fprintf(f, "};\n");
    fclose(f);
    /* an undeclared name is a compile error that names it */
    snprintf(cmd, sizeof cmd,
             "${CC:-cc} -std=c11 -Iinclude -fsyntax-only %s 2>&1 | "
             "grep -o \"[^ ]* undeclared\" | sort -u >&2; "
             "${CC:-cc} -std=c11 -Iinclude -fsyntax-only %s 2>/dev/null",
             path, path);
    int rc = system(cmd);
    unlink(path);
    if (rc != 0)
        tmem_test_fail(__FILE__, __LINE__,
                       "libtmem.so exports names that include/tmem/*.h "
                       "does not declare (above)");
    /* and no hook, even a declared one, ships */
    for (int i = 0; i < s.n; i++)
        if (strstr(s.name[i], "_test_") || strstr(s.name[i], "fault_") ||
            strstr(s.name[i], "inject") || !strncmp(s.name[i], "tmem__", 6))
            tmem_test_fail(__FILE__, __LINE__, "libtmem.so exports %s",
                           s.name[i]);
    printf("  %d exported symbols, all declared in include/tmem\n", s.n);
    syms_free(&s);
}

TEST(exports_cover_public_api)
{
    struct syms have = {0}, want = {0};
    exported(&have);
    read_words("sh scripts/api_names.sh", &want);
    ASSERT_GT(want.n, 10);
    int missing = 0;
    for (int i = 0; i < want.n; i++) {
        int found = 0;
        for (int j = 0; j < have.n && !found; j++)
            found = strcmp(want.name[i], have.name[j]) == 0;
        if (!found) {
            fprintf(stderr, "  declared, not exported: %s\n", want.name[i]);
            missing++;
        }
    }
    ASSERT_EQ(missing, 0);
    syms_free(&have);
    syms_free(&want);
}
