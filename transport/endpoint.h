/* The system calls behind each endpoint kind: open a virtio-serial port,
 * listen/accept/connect on unix and vsock sockets. Every fd comes back
 * non-blocking and close-on-exec; errors are negative errnos. */
#ifndef GUESTD_ENDPOINT_H
#define GUESTD_ENDPOINT_H

int gd_ep_virtio_open(const char *path, int *fd);
/* A virtio-serial port reports POLLHUP for as long as no host has it open. */
int gd_ep_virtio_host_connected(int fd);
/* O_ASYNC with this process as owner: the driver sends SIGIO when the host
 * side opens or closes the port. */
int gd_ep_set_async(int fd, int on);

int gd_ep_unix_listen(const char *path, int *fd);
int gd_ep_unix_connect(const char *path, int *fd);
int gd_ep_vsock_listen(unsigned port, int *fd);
int gd_ep_accept(int listen_fd, int *fd);
int gd_ep_set_nonblock(int fd);
/* An fd held in reserve (/dev/null, which systemd's DevicePolicy=closed
 * allows): a listener at its open-file limit closes it to accept the
 * pending connection, instead of leaving it pending and the listener
 * readable (a busy loop). */
int gd_ep_reserve_open(int *fd);

#endif
