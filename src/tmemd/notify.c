/*
 * systemd's readiness protocol (sd_notify(3)) without libsystemd: a
 * datagram to the socket $NOTIFY_SOCKET names (a path, or "@name" in the
 * abstract namespace).  The unit is Type=notify: systemd counts tmemd as
 * started once it serves, which, after a crash, is once every tenant's
 * persistent pages are recovered (recover.c).
 */
#include "tmemd.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void tmemd_notify(const char *state)
{
    const char *p = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = p ? strlen(p) : 0;
    if (n < 2 || n >= sizeof sa.sun_path || (p[0] != '/' && p[0] != '@'))
        return; /* not under systemd, or nothing we can address */
    memcpy(sa.sun_path, p, n);
    if (p[0] == '@')
        sa.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
        tmemd_log("cannot tell systemd %s", state);
    close(fd);
}
