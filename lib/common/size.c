#include "size.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int tmem__parse_size(const char *s, uint64_t *out)
{
    static const char units[] = "KMGT";
    char *end;

    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (errno || end == s)
        return -EINVAL;
    int c = *end & ~0x20;
    const char *u = c ? strchr(units, c) : NULL;
    if (u) {
        unsigned shift = 10u * (unsigned)(u - units + 1);
        if (v > (UINT64_MAX >> shift))
            return -ERANGE;
        v <<= shift;
        end++;
        if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
            end += strlen(end);
    }
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
}
