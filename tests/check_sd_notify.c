/* Check suite for agent/sd_notify: the datagram reaches a path socket and an
 * abstract one, and the environment is read the way systemd sets it (an
 * unset socket is no error; a watchdog meant for another pid is not ours). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/sd_notify.h"

/* Binds a datagram socket at name (a path, or "@name"); returns its fd. */
static int listen_at(const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    ck_assert_uint_lt(len, sizeof(sa.sun_path));
    memcpy(sa.sun_path, name, len);
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    else
        salen++;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, salen), 0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    ck_assert_int_eq(n, (ssize_t)strlen(want));
    buf[n] = '\0';
    ck_assert_str_eq(buf, want);
}

START_TEST(test_notify_path_socket)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/guestd-notify-%d", (int)getpid());
    unlink(path);
    int fd = listen_at(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(gd_sd_notify("READY=1\nSTATUS=ok\n"), 1);
    expect_datagram(fd, "READY=1\nSTATUS=ok\n");
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(test_notify_abstract_socket)
{
    char name[64];
    snprintf(name, sizeof(name), "@guestd-notify-%d", (int)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    ck_assert_int_eq(gd_sd_notify("WATCHDOG=1"), 1);
    expect_datagram(fd, "WATCHDOG=1");
    close(fd);
}
END_TEST

START_TEST(test_notify_without_manager)
{
    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(gd_sd_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    ck_assert_int_eq(gd_sd_notify("READY=1"), -EINVAL);
    /* Nobody listening there: the error, not a block or a crash. */
    setenv("NOTIFY_SOCKET", "/nonexistent/guestd-notify", 1);
    ck_assert_int_lt(gd_sd_notify("READY=1"), 0);
}
END_TEST

START_TEST(test_watchdog_environment)
{
    char pid[16], other[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    snprintf(other, sizeof(other), "%d", (int)getpid() + 1);
    unsetenv("WATCHDOG_PID");
    unsetenv("WATCHDOG_USEC");
    ck_assert_uint_eq(gd_sd_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    ck_assert_uint_eq(gd_sd_watchdog_usec(), 30000000);
    setenv("WATCHDOG_PID", pid, 1);
    ck_assert_uint_eq(gd_sd_watchdog_usec(), 30000000);
    setenv("WATCHDOG_PID", other, 1); /* inherited by a child: not ours */
    ck_assert_uint_eq(gd_sd_watchdog_usec(), 0);
    setenv("WATCHDOG_PID", pid, 1);
    setenv("WATCHDOG_USEC", "30s", 1);
    ck_assert_uint_eq(gd_sd_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "-5", 1);
    ck_assert_uint_eq(gd_sd_watchdog_usec(), 0);
}
END_TEST

static Suite *sd_notify_suite(void)
{
    Suite *s = suite_create("sd_notify");
    TCase *tc = tcase_create("notify");
    tcase_add_test(tc, test_notify_path_socket);
    tcase_add_test(tc, test_notify_abstract_socket);
    tcase_add_test(tc, test_notify_without_manager);
    tcase_add_test(tc, test_watchdog_environment);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sd_notify_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
