/*
 * tmemd's status page, served beside /metrics by metrics.c's HTTP server:
 * GET / is one HTML page (web_page.c: its CSS and JavaScript inline, no
 * resource from anywhere else) that polls GET /status.json every second
 * (status_json.c) and draws the pool use by tenant and each tswap
 * tenant's resident memory against its target.
 */
#ifndef TMEMD_WEB_H
#define TMEMD_WEB_H

#include <stddef.h>

struct tmemd;

/* json_esc.c: s as the inside of a JSON string into out[cap], always
 * NUL-terminated when cap > 0.  The text is ASCII: quote, backslash,
 * control characters, bytes over 0x7e and the HTML-significant < > & '
 * become escapes, so a tenant's name can close neither a JSON string nor
 * a script element.  An escape never is cut in half.  Returns the length
 * the whole text needs (without the NUL), like snprintf. */
size_t tmemd_json_escape(char *out, size_t cap, const char *s);

/* status_json.c: the status as JSON into a malloc'd *out; returns its
 * length or a negative error.  docs/tmemd.8 (STATUS PAGE) has its keys. */
int tmemd_status_json(struct tmemd *d, char **out);

/* web_page.c: the page (NUL-terminated). */
extern const char tmemd_status_page[];

#endif
