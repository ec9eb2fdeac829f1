/*
 * Run under `tmem run --budget 2M` by tests/run: a heap buffer much bigger
 * than the budget, filled with a pattern and pushed out of RAM by touching
 * other memory, then handed to read(2), write(2), recv(2) and send(2)
 * while its pages are in the store; and stdio and readdir, which glibc
 * runs on its own buffers.  Every byte is checked.  Exit 0 when all came
 * through, 1 with the failing step on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MB (1u << 20)
#define BIG (24 * MB)

static int fail(const char *what)
{
    fprintf(stderr, "syscall_buffers: %s: %s\n", what, strerror(errno));
    return 1;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 131 + seed + (i >> 12));
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 131 + seed + (i >> 12)))
            return 0;
    return 1;
}

/* Touches other memory so tswap puts the buffers out, and waits a bit. */
static void push_out(void)
{
    static unsigned char *other;
    if (!other)
        other = malloc(BIG);
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < BIG; i += 4096)
            other[i] = (unsigned char)(i + round);
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
}

static int pipe_round(unsigned char *src, unsigned char *dst, size_t n)
{
    int p[2];
    if (pipe(p) < 0)
        return fail("pipe");
    size_t done = 0;
    while (done < n) { /* a pipe holds 64 KiB: interleave */
        size_t k = n - done < 65536 ? n - done : 65536;
        if (write(p[1], src + done, k) != (ssize_t)k)
            return fail("write from evicted pages");
        for (size_t got = 0; got < k;) {
            ssize_t r = read(p[0], dst + done + got, k - got);
            if (r <= 0)
                return fail("read into evicted pages");
            got += (size_t)r;
        }
        done += k;
    }
    close(p[0]);
    close(p[1]);
    return 0;
}

static int sock_round(unsigned char *src, unsigned char *dst, size_t n)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return fail("socketpair");
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < 65536 ? n - done : 65536;
        if (send(sv[0], src + done, k, 0) != (ssize_t)k)
            return fail("send from evicted pages");
        for (size_t got = 0; got < k;) {
            ssize_t r = recv(sv[1], dst + done + got, k - got, 0);
            if (r <= 0)
                return fail("recv into evicted pages");
            got += (size_t)r;
        }
        done += k;
    }
    close(sv[0]);
    close(sv[1]);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    unsigned char *a = malloc(BIG), *b = malloc(BIG);
    if (!a || !b)
        return fail("malloc");
    fill(a, BIG, 7);
    memset(b, 0, BIG);
    push_out();
    if (pipe_round(a, b, BIG))
        return 1;
    if (!same(b, BIG, 7)) {
        fprintf(stderr, "syscall_buffers: pipe: bytes differ\n");
        return 1;
    }
    fill(a, BIG, 9);
    memset(b, 0, BIG);
    push_out();
    if (sock_round(a, b, BIG))
        return 1;
    if (!same(b, BIG, 9)) {
        fprintf(stderr, "syscall_buffers: socket: bytes differ\n");
        return 1;
    }
    /* stdio: glibc's own reads and writes on the stream's buffer */
    char path[512];
    snprintf(path, sizeof path, "%s/syscall_buffers.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return fail("fopen w");
    push_out();
    for (int i = 0; i < 20000; i++)
        fprintf(f, "line %d %u\n", i, (unsigned)(i * 2654435761u));
    if (fclose(f))
        return fail("fclose");
    push_out();
    f = fopen(path, "r");
    if (!f)
        return fail("fopen r");
    char line[64];
    for (int i = 0; i < 20000; i++) {
        char want[64];
        snprintf(want, sizeof want, "line %d %u\n", i,
                 (unsigned)(i * 2654435761u));
        if (!fgets(line, sizeof line, f) || strcmp(line, want)) {
            fprintf(stderr, "syscall_buffers: stdio line %d differs\n", i);
            return 1;
        }
    }
    fclose(f);
    /* readdir: glibc fills its directory stream with getdents */
    DIR *d = opendir(dir);
    if (!d)
        return fail("opendir");
    push_out();
    int seen = 0;
    for (struct dirent *e; (e = readdir(d));)
        seen += !strcmp(e->d_name, "syscall_buffers.txt");
    closedir(d);
    if (seen != 1) {
        fprintf(stderr, "syscall_buffers: readdir did not see the file\n");
        return 1;
    }
    unlink(path);
    printf("syscall_buffers: ok\n");
    return 0;
}
