/* The system calls behind each endpoint kind. */
#include "transport/endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

int gd_ep_set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -errno;
    return 0;
}

int gd_ep_virtio_open(const char *path, int *fd)
{
    int f = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0) return -errno;
    *fd = f;
    return 0;
}

int gd_ep_virtio_host_connected(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    int r;
    do {
        r = poll(&p, 1, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (p.revents & (POLLERR | POLLNVAL)) return -EIO;
    return !(p.revents & POLLHUP);
}

int gd_ep_set_async(int fd, int on)
{
    if (on && fcntl(fd, F_SETOWN, getpid()) < 0) return -errno;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    flags = on ? (flags | O_ASYNC) : (flags & ~O_ASYNC);
    if (fcntl(fd, F_SETFL, flags) < 0) return -errno;
    return 0;
}

static int unix_address(const char *path, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr->sun_path)) return -ENAMETOOLONG;
    strcpy(addr->sun_path, path);
    return 0;
}

int gd_ep_unix_listen(const char *path, int *fd)
{
    struct sockaddr_un addr;
    int r = unix_address(path, &addr);
    if (r < 0) return r;
    int f = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f < 0) return -errno;
    /* A socket file left by an earlier run would make bind fail. Remove it
     * only when it is a socket, never a file someone put there. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
    if (bind(f, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(f, 4) < 0) {
        r = -errno;
        close(f);
        return r;
    }
    *fd = f;
    return 0;
}

int gd_ep_unix_connect(const char *path, int *fd)
{
    struct sockaddr_un addr;
    int r = unix_address(path, &addr);
    if (r < 0) return r;
    int f = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f < 0) return -errno;
    /* A unix connect completes at once or fails at once: no need to wait. */
    if (connect(f, (struct sockaddr *)&addr, sizeof(addr)) < 0 || gd_ep_set_nonblock(f) < 0) {
        r = -errno;
        close(f);
        return r;
    }
    *fd = f;
    return 0;
}

int gd_ep_vsock_listen(unsigned port, int *fd)
{
    int f = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f < 0) return -errno;
    struct sockaddr_vm addr;
    memset(&addr, 0, sizeof(addr));
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = VMADDR_CID_ANY;
    addr.svm_port = port;
    if (bind(f, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(f, 4) < 0) {
        int r = -errno;
        close(f);
        return r;
    }
    *fd = f;
    return 0;
}

int gd_ep_accept(int listen_fd, int *fd)
{
    int f;
    do {
        f = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (f < 0 && errno == EINTR);
    if (f < 0) return -errno;
    *fd = f;
    return 0;
}

int gd_ep_reserve_open(int *fd)
{
    int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (f < 0) return -errno;
    *fd = f;
    return 0;
}
