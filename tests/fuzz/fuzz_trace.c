/*
 * libFuzzer target for the balloon trace reader: the bytes are the CSV
 * file of `tmem balloon simulate --trace FILE` (src/tmem/cmd_balloon.c),
 * read through the command itself from a memfd, its output caught in
 * another.
 *
 * Beyond not crashing: the command returns 0 (a trace) or 2 (a bad one,
 * said on stderr), never 1 (the file is readable); a trace gives one
 * output line per input line (the header for the header, a step per row)
 * and steps numbered 1, 2, ... each with five fields.  A broken rule
 * aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../src/tmem/cmds.h"
#include "fuzz.h"

/* Lines as getline reads them: a last line without its "\n" counts. */
static size_t lines_of(const uint8_t *d, size_t n)
{
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += d[i] == '\n';
    return lines + (n && d[n - 1] != '\n');
}

/* Runs the command on the trace in fd `in`, its stdout into fd `out`. */
static int simulate(int in, int out)
{
    char arg[64];
    char *argv[] = {"simulate", "--trace", arg, NULL};
    snprintf(arg, sizeof arg, "/proc/self/fd/%d", in);
    fflush(stdout);
    int saved = dup(1);
    CHECK(saved >= 0 && dup2(out, 1) == 1);
    int rc = cmd_balloon_simulate(NULL, 3, argv);
    fflush(stdout);
    CHECK(dup2(saved, 1) == 1);
    close(saved);
    return rc;
}

/* The output: header, then "step,goal,floor,target,fs_target" rows. */
static void check_output(int out, size_t want_lines)
{
    off_t len = lseek(out, 0, SEEK_END);
    CHECK(len >= 0);
    char *text = malloc((size_t)len + 1);
    CHECK(text != NULL);
    CHECK(pread(out, text, (size_t)len, 0) == len);
    text[len] = '\0';
    size_t lines = 0;
    for (char *l = text, *nl; (nl = strchr(l, '\n')); l = nl + 1) {
        *nl = '\0';
        if (lines > 0) {
            size_t commas = 0;
            for (char *p = l; *p; p++)
                commas += *p == ',';
            CHECK(strtoull(l, NULL, 10) == lines && commas == 4);
        }
        lines++;
    }
    CHECK(lines == want_lines);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int in = memfd_create("trace", 0), out = memfd_create("out", 0);
    CHECK(in >= 0 && out >= 0);
    CHECK(size == 0 || write(in, data, size) == (ssize_t)size);
    int rc = simulate(in, out);
    CHECK(rc == CLI_OK || rc == CLI_USAGE);
    if (rc == CLI_OK)
        check_output(out, lines_of(data, size));
    close(in);
    close(out);
    return 0;
}
