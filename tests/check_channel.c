/* Check suite for transport/channel's accessors: gd_channel_stats as a host
 * attaches, speaks and leaves, and a virtio-serial port that is missing. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "core/log.h"
#include "transport/channel.h"

static uv_loop_t loop;
static gd_channel_t *ch;
static char dir[32], sock[96];
static int lines, attaches;
static uint64_t last_gen;

static void on_attach(void *ctx, uint64_t gen)
{
    (void)ctx;
    attaches++;
    last_gen = gen;
}

static void on_line(void *ctx, uint64_t gen, char *line, size_t len)
{
    (void)ctx;
    (void)gen;
    (void)line;
    (void)len;
    lines++;
}

static const gd_channel_cbs_t cbs = {.on_attach = on_attach, .on_line = on_line};

static void setup(void)
{
    gd_log_set_level(GD_LOG_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/check_channel.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ch = NULL;
    lines = attaches = 0;
}

static void teardown(void)
{
    if (ch) gd_channel_close(ch, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    gd_channel_free(ch);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Opens kind:dir/name (its path left in sock) and checks the stats of a
 * channel no host is attached to. */
static void open_channel(const char *kind, const char *name, int port_missing)
{
    char err[256], spec[128];
    snprintf(sock, sizeof(sock), "%s/%s", dir, name);
    snprintf(spec, sizeof(spec), "%s:%s", kind, sock);
    ck_assert_msg(
        gd_channel_new(&ch, &loop, spec, 4096, 65536, 10, 100, &cbs, NULL, err, sizeof(err)) == 0,
        "%s", err);
    ck_assert_msg(gd_channel_start(ch, err, sizeof(err)) == 0, "%s", err);
    gd_channel_stats_t st;
    gd_channel_stats(ch, &st);
    ck_assert_int_eq(st.attached, 0);
    ck_assert_int_eq(st.port_missing, port_missing);
    ck_assert_str_eq(st.path, sock);
    ck_assert_uint_eq(st.attaches, 0);
    ck_assert_uint_eq(st.lines_in, 0);
}

/* Runs the loop until *counter reaches want; fails after two seconds. */
static void run_until(const int *counter, int want)
{
    uint64_t end = uv_hrtime() + 2000000000u;
    while (*counter < want) {
        ck_assert_msg(uv_hrtime() < end, "timed out (%d of %d)", *counter, want);
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

START_TEST(test_stats_follow_a_host)
{
    open_channel("unix-listen", "s.sock", 0); /* a listener, not a port */
    gd_channel_stats_t st;

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    run_until(&attaches, 1);
    ck_assert_uint_eq(gd_channel_gen(ch), last_gen);
    ck_assert_int_eq(write(fd, "{\"cmd\":\"a\"}\n{\"cmd\":\"b\"}\n", 24), 24);
    run_until(&lines, 2);
    gd_channel_send_reply(ch, last_gen, "{\"ok\":true}\n", 12);
    char buf[64];
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 12);

    gd_channel_stats(ch, &st);
    ck_assert_int_eq(st.attached, 1);
    ck_assert_uint_eq(st.attaches, 1);
    ck_assert_uint_eq(st.lines_in, 2);
    ck_assert_uint_eq(st.bytes_in, 24);
    ck_assert_uint_eq(st.lines_out, 1);
    ck_assert_uint_eq(st.bytes_out, 12);
    ck_assert_int_eq(st.out_over_limit, 0);
    ck_assert_uint_eq(st.out_bytes, 0);
    ck_assert_int_ge(st.last_rx_ms, st.attached_since_ms);

    /* Lines the owner framed itself (qemu-ga's framing) count the same. */
    gd_channel_count_line_in(ch);
    gd_channel_stats(ch, &st);
    ck_assert_uint_eq(st.lines_in, 3);
    close(fd);
}
END_TEST

START_TEST(test_missing_port)
{
    open_channel("virtio-serial", "no-such-port", 1);
}
END_TEST

START_TEST(test_bad_spec_leaves_nothing)
{
    char err[256];
    gd_channel_t *bad = (gd_channel_t *)&err; /* overwritten with NULL */
    ck_assert_int_eq(gd_channel_new(&bad, &loop, "carrier-pigeon:x", 4096, 65536, 10, 100, &cbs,
                                    NULL, err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_nonnull(strstr(err, "carrier-pigeon"));
}
END_TEST

static Suite *channel_suite(void)
{
    Suite *s = suite_create("channel");
    TCase *tc = tcase_create("stats");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_stats_follow_a_host);
    tcase_add_test(tc, test_missing_port);
    tcase_add_test(tc, test_bad_spec_leaves_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(channel_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
