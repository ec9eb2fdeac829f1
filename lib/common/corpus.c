/*
 * Corpus loader (corpus.h).  Owns nothing after it returns: the caller
 * gets one buffer of npages * 4096 bytes.  A zstd file is decoded as a
 * stream into a buffer that doubles as it fills, so frames without a
 * content size work too; the result must still be whole pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "common/corpus.h"
#include "common/mem.h"

#define IN_CHUNK (128 * 1024)

/* Reads up to n bytes; returns bytes read (short only at EOF) or -errno. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Grows *buf to hold at least need bytes; returns 0 or -ENOMEM. */
static int grow(void **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : (size_t)1 << 20;
    while (n < need)
        n *= 2;
    void *p = tmem__realloc(*buf, n);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

/* Decodes the zstd stream on fd (first `have` bytes already in in). */
static int load_zst(int fd, char *in, size_t have, void **out, size_t *len)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    void *buf = NULL;
    size_t cap = 0, used = 0, hint = 0;
    int rc = ds ? 0 : -ENOMEM;
    while (rc == 0 && have > 0) {
        ZSTD_inBuffer ib = {in, have, 0};
        while (rc == 0 && ib.pos < ib.size) {
            if ((rc = grow(&buf, &cap, used + ZSTD_DStreamOutSize())) < 0)
                break;
            ZSTD_outBuffer ob = {(char *)buf + used, cap - used, 0};
            size_t z = ZSTD_decompressStream(ds, &ob, &ib);
            if (ZSTD_isError(z))
                rc = -EINVAL;
            hint = z;
            used += ob.pos;
        }
        ssize_t r = rc == 0 ? read_full(fd, in, IN_CHUNK) : 0;
        if (r < 0)
            rc = (int)r;
        have = r > 0 ? (size_t)r : 0;
    }
    ZSTD_freeDStream(ds);
    if (rc == 0 && hint != 0)
        rc = -EINVAL; /* the stream ends inside a frame: truncated */
    if (rc < 0) {
        tmem__free(buf);
        return rc;
    }
    *out = buf;
    *len = used;
    return 0;
}

/* Reads the rest of a raw file (first `have` bytes in in). */
static int load_raw(int fd, char *in, size_t have, void **out, size_t *len)
{
    void *buf = NULL;
    size_t cap = 0, used = 0;
    while (have > 0) {
        if (grow(&buf, &cap, used + have) < 0) {
            tmem__free(buf);
            return -ENOMEM;
        }
        memcpy((char *)buf + used, in, have);
        used += have;
        ssize_t r = read_full(fd, in, IN_CHUNK);
        if (r < 0) {
            tmem__free(buf);
            return (int)r;
        }
        have = (size_t)r;
    }
    *out = buf;
    *len = used;
    return 0;
}

int tmem__corpus_load(const char *path, void **pages, size_t *npages)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = -ENOMEM;
    void *buf = NULL;
    size_t len = 0;
    char *in = tmem__malloc(IN_CHUNK);
    if (!in)
        goto out_close;
    ssize_t r = read_full(fd, in, IN_CHUNK);
    if (r < 0) {
        rc = (int)r;
        goto out_free;
    }
    if (r >= 4 && (uint8_t)in[0] == 0x28 && (uint8_t)in[1] == 0xB5 &&
        (uint8_t)in[2] == 0x2F && (uint8_t)in[3] == 0xFD)
        rc = load_zst(fd, in, (size_t)r, &buf, &len);
    else
        rc = load_raw(fd, in, (size_t)r, &buf, &len);
    if (rc == 0 && len % TMEM_CORPUS_PAGE != 0) {
        tmem__free(buf);
        rc = -EINVAL;
    }
    if (rc == 0) {
        *pages = len ? buf : NULL;
        if (!len)
            tmem__free(buf);
        *npages = len / TMEM_CORPUS_PAGE;
    }
out_free:
    tmem__free(in);
out_close:
    close(fd);
    return rc;
}

void tmem__corpus_free(void *pages, size_t npages)
{
    (void)npages;
    tmem__free(pages);
}

const char *tmem__corpus_default(void)
{
    static const char *const fixed[] = {
        "../shared/corpus/pages-a.bin.zst",
        "/work/shared/corpus/pages-a.bin.zst",
    };
    const char *env = getenv("TMEM_CORPUS");
    if (env && *env && access(env, R_OK) == 0)
        return env;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (access(fixed[i], R_OK) == 0)
            return fixed[i];
    return NULL;
}
