/* systemd notification without libsystemd: see sd_notify.h. */
#include "agent/sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Fills sa from $NOTIFY_SOCKET: an absolute path, or "@name" for the
 * abstract namespace. Returns the address length, 0 when unset, or
 * -EINVAL for a value that is neither. */
static int notify_address(struct sockaddr_un *sa)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return 0;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len < 2 || len > sizeof(sa->sun_path))
        return -EINVAL;
    /* A path needs its terminating NUL inside sun_path; an abstract name
     * does not have one. */
    if (path[0] == '/' && len == sizeof(sa->sun_path)) return -EINVAL;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, len);
    if (path[0] == '@') sa->sun_path[0] = '\0';
    return (int)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
}

int gd_sd_notify(const char *state)
{
    struct sockaddr_un sa;
    int salen = notify_address(&sa);
    if (salen <= 0) return salen;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    ssize_t n;
    do {
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                   (socklen_t)salen);
    } while (n < 0 && errno == EINTR);
    int err = n < 0 ? -errno : 1;
    close(fd);
    return err;
}

/* A decimal without sign or trailing garbage, or 0. */
static uint64_t env_u64(const char *name)
{
    const char *s = getenv(name);
    if (!s || *s < '0' || *s > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    return errno || *end ? 0 : (uint64_t)v;
}

uint64_t gd_sd_watchdog_usec(void)
{
    /* systemd sets WATCHDOG_PID so a child that inherits the environment
     * does not take the watchdog for its own. */
    if (getenv("WATCHDOG_PID") && env_u64("WATCHDOG_PID") != (uint64_t)getpid()) return 0;
    return env_u64("WATCHDOG_USEC");
}
