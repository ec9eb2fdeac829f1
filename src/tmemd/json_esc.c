/*
 * JSON string escaping for the status page's data (web.h): tenant names
 * are tenant-supplied, so nothing of theirs is copied that could end a
 * string, change the encoding or be read as markup.
 */
#include "web.h"

#include <stdio.h>

/* Whether byte c is copied as it is. */
static int plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' &&
           c != '>' && c != '&' && c != '\'';
}

size_t tmemd_json_escape(char *out, size_t cap, const char *s)
{
    size_t len = 0;
    int full = 0; /* once one escape did not fit, nothing more is written */
    if (cap > 0)
        out[0] = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        size_t n;
        if (plain(*p)) {
            e[0] = (char)*p;
            n = 1;
        } else if (*p == '"' || *p == '\\') {
            e[0] = '\\';
            e[1] = (char)*p;
            n = 2;
        } else {
            n = (size_t)snprintf(e, sizeof e, "\\u%04x", *p);
        }
        if (!full && len + n < cap)
            for (size_t i = 0; i < n; i++)
                out[len + i] = e[i];
        else
            full = 1;
        if (!full)
            out[len + n] = 0;
        len += n;
    }
    return len;
}
