/*
 * Helpers of the status page tests (tests/web): two tenants with pages
 * in a real tmemd, headless Chromium run with a deadline, and reading
 * what it dumped.
 */
#ifndef TEST_WEB_UTIL_H
#define TEST_WEB_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <tmem/client.h>

#include "../lib/tmemd_harness.h"

#define WU_CHROMIUM "/usr/bin/chromium"

/* The tenants every test makes: alpha reports tswap figures (resident
 * WU_RESIDENT, target WU_TARGET pages), beta none. */
enum {
    WU_ALPHA_PERS = 20,
    WU_ALPHA_EPH = 6,
    WU_BETA_PERS = 9,
    WU_RESIDENT = 300,
    WU_TARGET = 256,
};
/* Connects alpha (c[0]) and beta (c[1]) to d and puts their pages. */
void wu_two_tenants(const th_daemon *d, tmem_conn *c[2]);
/* Sets alpha's reported resident pages (its target stays WU_TARGET). */
void wu_set_resident(tmem_conn *alpha, unsigned long long resident);

/* Runs Chromium headless on url with the extra flags (NULL-terminated),
 * its standard output into out_path, a fresh profile removed after;
 * kills it (its whole process group) and fails the test when it runs
 * longer than timeout_s.  Returns its exit status. */
int wu_chromium(const char *url, const char *const *extra, const char *out_path,
                int timeout_s);
/* Skips the test when Chromium is not installed. */
void wu_need_chromium(void);

/* A whole file, NUL-terminated (malloc'd), or NULL; *len its size. */
char *wu_slurp(const char *path, size_t *len);
/* In the tag of dom that contains marker (e.g. id="pool"), the number
 * in attr="N"; -1 when there is no such tag or attribute. */
long wu_attr(const char *dom, const char *marker, const char *attr);
/* The body of an HTTP response (after its header), or NULL. */
const char *wu_body(const char *resp);
/* A fresh directory /tmp/tmem-web-XXXXXX into dir[32]; tl_rm_tree
 * (tests/lib/tmpdir.h) removes one with everything in it. */
void wu_tmpdir(char dir[32]);

#endif
