/* Health on a real agent and loop: each check driven into each state (a
 * host that comes and goes, RSS and fd limits, a blocked loop, a collector
 * whose /proc file turns to garbage, a subscriber that lags, a metrics log
 * that cannot be written or lacks space), a status change published as an
 * event at once, the tick, and the sd_notify messages on a test socket. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/agent.h"
#include "core/config.h"
#include "agent/health.h"
#include "core/log.h"
#include "transport/channel.h"

static char dir[64];
static uv_loop_t loop;
static gd_agent_t agent;
static gd_config_t cfg;
static gd_bus_sub_t watcher;
static char statuses[64][16]; /* of the health events seen, in order */
static int n_statuses;
static int host_fd = -1;

static void set(const char *assignment)
{
    char err[256];
    ck_assert_msg(gd_config_set_dotted(&cfg, assignment, err, sizeof(err)) == 0, "%s", err);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/check_health.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    gd_log_set_level(GD_LOG_ERROR);
    gd_config_defaults(&cfg);
    char a[200];
    snprintf(a, sizeof(a), "channel.spec=unix-listen:%s/agent.sock", dir);
    set(a);
    snprintf(a, sizeof(a), "metrics.log_path=%s/log/metrics.ndjson", dir);
    set(a);
    set("health.min_free_bytes=0");
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    n_statuses = 0;
    host_fd = -1;
}

static void teardown(void)
{
    char cmd[128];
    if (host_fd >= 0) close(host_fd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Records the status of every health event. */
static int on_event(gd_bus_sub_t *sub, gd_event_t *ev)
{
    if (strcmp(ev->name, "health") != 0 || n_statuses >= 64) return 0;
    const char *p = strstr(ev->line + ev->data_off, "\"status\":\"");
    ck_assert_ptr_nonnull(p);
    sscanf(p + 10, "%15[a-z]", statuses[n_statuses++]);
    return 0;
}

static void start(void)
{
    char err[256];
    ck_assert_int_eq(gd_agent_init(&agent, &loop, &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(gd_bus_subscribe(&agent.bus, &watcher, "test", 256, on_event, NULL), 0);
    ck_assert_int_eq(gd_agent_start(&agent), 0);
}

static void stop_agent(uv_timer_t *t)
{
    gd_agent_stop(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static void finish(void)
{
    uv_timer_t stopper;
    uv_timer_init(&loop, &stopper);
    stopper.data = &agent;
    uv_timer_start(&stopper, stop_agent, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    gd_agent_free(&agent);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static void run_ms(uint64_t ms)
{
    uint64_t end = uv_hrtime() + ms * 1000000u;
    /* A few iterations at least: a change noticed in one is delivered in
     * the next. */
    for (int i = 0; i < 5 || uv_hrtime() < end; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
}

/* Runs the loop until pred() holds; fails after timeout_ms. */
static void run_until(int (*pred)(void), uint64_t timeout_ms, const char *what)
{
    uint64_t end = uv_hrtime() + timeout_ms * 1000000u;
    while (!pred()) {
        ck_assert_msg(uv_hrtime() < end, "timed out waiting for %s", what);
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void connect_host(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", dir);
    host_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(host_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static int attached(void)
{
    gd_channel_stats_t st;
    gd_channel_stats(agent.channel, &st);
    return st.attached;
}

static int detached(void)
{
    return !attached();
}

/* The status of check name in a fresh report; the detail into detail. */
static const char *check(const char *name, char *detail, size_t len)
{
    static char status[16];
    cJSON *r = gd_health_report(&agent);
    const cJSON *c;
    status[0] = '\0';
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(r, "checks"))
    {
        if (strcmp(cJSON_GetObjectItem(c, "name")->valuestring, name) != 0) continue;
        snprintf(status, sizeof(status), "%s", cJSON_GetObjectItem(c, "status")->valuestring);
        if (detail) snprintf(detail, len, "%s", cJSON_GetObjectItem(c, "detail")->valuestring);
    }
    cJSON_Delete(r);
    ck_assert_msg(status[0], "no check %s", name);
    return status;
}

static const char *overall(void)
{
    static char status[16];
    cJSON *r = gd_health_report(&agent);
    snprintf(status, sizeof(status), "%s", cJSON_GetObjectItem(r, "status")->valuestring);
    cJSON_Delete(r);
    return status;
}

START_TEST(test_report_has_every_check_and_is_ok_with_a_host)
{
    start();
    connect_host();
    run_until(attached, 5000, "the host to attach");
    run_ms(50);
    cJSON *r = gd_health_report(&agent);
    static const char *const names[] = {"loop",       "memory", "fds",        "channel",
                                        "collectors", "events", "metrics_log"};
    const cJSON *checks = cJSON_GetObjectItem(r, "checks");
    ck_assert_int_eq(cJSON_GetArraySize(checks), 7);
    for (int i = 0; i < 7; i++) {
        const cJSON *c = cJSON_GetArrayItem(checks, i);
        ck_assert_str_eq(cJSON_GetObjectItem(c, "name")->valuestring, names[i]);
        ck_assert_msg(strcmp(cJSON_GetObjectItem(c, "status")->valuestring, "ok") == 0, "%s: %s",
                      names[i], cJSON_GetObjectItem(c, "detail")->valuestring);
    }
    ck_assert_str_eq(cJSON_GetObjectItem(r, "status")->valuestring, "ok");
    const cJSON *self = cJSON_GetObjectItem(r, "self");
    /* Bytes, not pages or KiB: more than 64 KiB (the static musl test
     * process is ~800 KiB, the glibc one several MiB). */
    ck_assert_double_gt(cJSON_GetObjectItem(self, "rss_bytes")->valuedouble, 1 << 16);
    ck_assert_double_gt(cJSON_GetObjectItem(self, "fds")->valuedouble, 3);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(self, "loop_lag_ms"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(self, "wakeups"));
    const cJSON *ch = cJSON_GetObjectItem(r, "channel");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(ch, "connected")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(ch, "last_rx_ms_ago")));
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(r, "collectors")));
    const cJSON *ml = cJSON_GetObjectItem(r, "metrics_log");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(ml, "ok")));
    cJSON_Delete(r);
    finish();
}
END_TEST

START_TEST(test_host_coming_and_going_publishes_at_once)
{
    start();
    run_ms(30);
    char detail[400];
    ck_assert_str_eq(check("channel", detail, sizeof(detail)), "degraded");
    ck_assert_str_eq(detail, "no host attached");
    ck_assert_int_eq(gd_health_status(&agent), GD_HEALTH_DEGRADED);
    int before = n_statuses;
    connect_host();
    /* health.interval_ms is 60 s: only a change can publish this soon. */
    uint64_t t0 = uv_hrtime();
    run_until(attached, 5000, "the host to attach");
    run_ms(20);
    ck_assert_int_eq(n_statuses, before + 1);
    ck_assert_str_eq(statuses[before], "ok");
    ck_assert_uint_lt(uv_hrtime() - t0, 1000000000u);
    ck_assert_str_eq(check("channel", detail, sizeof(detail)), "ok");
    ck_assert_ptr_nonnull(strstr(detail, "last spoke"));
    close(host_fd);
    host_fd = -1;
    run_until(detached, 5000, "the host to detach");
    run_ms(20);
    ck_assert_int_eq(n_statuses, before + 2);
    ck_assert_str_eq(statuses[before + 1], "degraded");
    finish();
}
END_TEST

/* The static musl test process is ~800 KiB, below the smallest limit the
 * configuration takes (1 MiB): 2 MiB more, touched, make any build bigger. */
static void over_a_mib(void)
{
    static char *ballast;
    if (!ballast) ballast = malloc(2 << 20);
    ck_assert_ptr_nonnull(ballast);
    for (size_t i = 0; i < (size_t)2 << 20; i += 4096) /* volatile: kept, every page */
        ((volatile char *)ballast)[i] = 1;
}

START_TEST(test_memory_limit)
{
    over_a_mib();
    set("health.max_rss_bytes=1048576"); /* the config's floor; we are bigger */
    start();
    char detail[400];
    ck_assert_str_eq(check("memory", detail, sizeof(detail)), "failing");
    ck_assert_str_eq(overall(), "failing");
    ck_assert_ptr_nonnull(strstr(detail, "limit 1048576"));
    /* 20% headroom: above the 80% warning line. */
    cJSON *r = gd_health_report(&agent);
    double rss = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "self"), "rss_bytes")->valuedouble;
    cJSON_Delete(r);
    agent.cfg.health.max_rss_bytes = (int64_t)(rss * 1.2);
    ck_assert_str_eq(check("memory", NULL, 0), "degraded");
    agent.cfg.health.max_rss_bytes = INT64_C(17179869184);
    ck_assert_str_eq(check("memory", NULL, 0), "ok");
    finish();
}
END_TEST

START_TEST(test_fd_limit)
{
    start();
    /* Enough descriptors that the limits below are fine-grained. */
    int extra[64];
    for (int i = 0; i < 64; i++)
        extra[i] = open("/dev/null", O_RDONLY);
    cJSON *r = gd_health_report(&agent);
    int fds = (int)cJSON_GetObjectItem(cJSON_GetObjectItem(r, "self"), "fds")->valuedouble;
    cJSON_Delete(r);
    ck_assert_int_ge(fds, 64);
    struct rlimit old, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    rl = old;
    rl.rlim_cur = (rlim_t)(fds + fds / 6 + 1); /* ~85% used */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    char detail[400];
    ck_assert_str_eq(check("fds", detail, sizeof(detail)), "degraded");
    rl.rlim_cur = (rlim_t)(fds + 2); /* ~97% used */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_str_eq(check("fds", NULL, 0), "failing");
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    for (int i = 0; i < 64; i++)
        close(extra[i]);
    ck_assert_str_eq(check("fds", NULL, 0), "ok");
    finish();
}
END_TEST

static void busy_150ms(uv_timer_t *t)
{
    uint64_t end = uv_hrtime() + 150000000u;
    while (uv_hrtime() < end) {
    }
    uv_close((uv_handle_t *)t, NULL);
}

START_TEST(test_a_blocked_loop_is_seen)
{
    set("health.max_loop_lag_ms=100");
    start();
    connect_host();
    run_until(attached, 5000, "the host to attach");
    run_ms(20);
    ck_assert_str_eq(check("loop", NULL, 0), "ok");
    int before = n_statuses;
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, busy_150ms, 0, 0);
    run_ms(50);
    char detail[400];
    ck_assert_str_eq(check("loop", detail, sizeof(detail)), "degraded");
    ck_assert_ptr_nonnull(strstr(detail, "limit 100 ms"));
    cJSON *r = gd_health_report(&agent);
    ck_assert_double_ge(
        cJSON_GetObjectItem(cJSON_GetObjectItem(r, "self"), "loop_lag_ms")->valuedouble, 150);
    cJSON_Delete(r);
    ck_assert_int_gt(n_statuses, before); /* published when it was noticed */
    ck_assert_str_eq(statuses[n_statuses - 1], "degraded");
    finish();
}
END_TEST

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int cycles_seen;
static int on_metrics(gd_bus_sub_t *sub, gd_event_t *ev)
{
    if (strcmp(ev->name, "metrics") == 0) cycles_seen++;
    return 0;
}
static int target_cycles;
static int enough_cycles(void)
{
    return cycles_seen >= target_cycles;
}

START_TEST(test_a_failing_collector)
{
    char a[200], loadavg[160];
    snprintf(a, sizeof(a), "agent.proc_root=%s", dir);
    set(a);
    set("metrics.collectors=load");
    set("metrics.interval_ms=100");
    snprintf(loadavg, sizeof(loadavg), "%s/loadavg", dir);
    write_file(loadavg, "0.50 0.40 0.30 2/100 1234\n");
    start();
    gd_bus_sub_t counter;
    cycles_seen = 0;
    ck_assert_int_eq(gd_bus_subscribe(&agent.bus, &counter, "count", 64, on_metrics, NULL), 0);
    target_cycles = 2;
    run_until(enough_cycles, 5000, "two metrics cycles");
    char detail[400];
    ck_assert_str_eq(check("collectors", detail, sizeof(detail)), "ok");
    write_file(loadavg, "garbage\n");
    target_cycles = cycles_seen + 2;
    run_until(enough_cycles, 5000, "two more cycles");
    ck_assert_str_eq(check("collectors", detail, sizeof(detail)), "degraded");
    ck_assert_ptr_nonnull(strstr(detail, "failing: load"));
    write_file(loadavg, "0.50 0.40 0.30 2/100 1234\n");
    target_cycles = cycles_seen + 2;
    run_until(enough_cycles, 5000, "two more cycles");
    ck_assert_str_eq(check("collectors", detail, sizeof(detail)), "ok");
    gd_bus_unsubscribe(&counter);
    finish();
}
END_TEST

static int refuse(gd_bus_sub_t *sub, gd_event_t *ev)
{
    return 1;
}

START_TEST(test_dropped_events)
{
    start();
    connect_host(); /* all else ok, so the change shows */
    run_until(attached, 5000, "the host to attach");
    run_ms(20);
    ck_assert_str_eq(check("events", NULL, 0), "ok");
    int before = n_statuses;
    /* A subscriber that never takes anything: its one-slot queue lags. */
    gd_bus_sub_t stuck;
    ck_assert_int_eq(gd_bus_subscribe(&agent.bus, &stuck, "stuck", 1, refuse, NULL), 0);
    for (int i = 0; i < 3; i++)
        gd_bus_publish_raw(&agent.bus, "test", "{}", 2);
    run_ms(20);
    char detail[400];
    ck_assert_str_eq(check("events", detail, sizeof(detail)), "degraded");
    ck_assert_ptr_nonnull(strstr(detail, "dropped since start"));
    ck_assert_int_gt(n_statuses, before);
    gd_bus_unsubscribe(&stuck);
    finish();
}
END_TEST

START_TEST(test_metrics_log_unwritable)
{
    char a[200], blocker[128];
    snprintf(blocker, sizeof(blocker), "%s/file", dir);
    write_file(blocker, "x");
    snprintf(a, sizeof(a), "metrics.log_path=%s/file/metrics.ndjson", dir);
    set(a);
    start();
    run_ms(100); /* the log opens in the thread pool */
    char detail[400];
    ck_assert_str_eq(check("metrics_log", detail, sizeof(detail)), "degraded");
    ck_assert_ptr_nonnull(strstr(detail, "cannot open"));
    ck_assert_ptr_nonnull(strstr(detail, "Not a directory"));
    finish();
}
END_TEST

START_TEST(test_metrics_log_free_space)
{
    set("health.min_free_bytes=1099511627776"); /* 1 TiB: more than /tmp has */
    start();
    run_ms(100);
    char detail[400];
    ck_assert_str_eq(check("metrics_log", detail, sizeof(detail)), "degraded");
    ck_assert_ptr_nonnull(strstr(detail, "bytes free"));
    agent.cfg.health.min_free_bytes = 0;
    ck_assert_str_eq(check("metrics_log", NULL, 0), "ok");
    finish();
}
END_TEST

START_TEST(test_metrics_log_off)
{
    set("metrics.log_path=none");
    start();
    char detail[400];
    ck_assert_str_eq(check("metrics_log", detail, sizeof(detail)), "ok");
    ck_assert_str_eq(detail, "off");
    ck_assert_ptr_null(gd_health_metrics_log(&agent));
    finish();
}
END_TEST

START_TEST(test_tick_publishes_every_interval)
{
    set("health.interval_ms=100");
    /* Ticks count from the loop's clock, refreshed here: on a loaded machine
     * start() itself can take a while, and the bound below counts from
     * before it. */
    uv_update_time(&loop);
    uint64_t began = uv_hrtime();
    start();
    run_ms(550);
    uint64_t elapsed_ms = (uv_hrtime() - began) / 1000000u;
    /* A tick every 100 ms: late on a loaded machine, never early, so no
     * more than the elapsed time holds (the loop's millisecond clock may
     * lag the real one by up to 1 ms). */
    ck_assert_int_ge(n_statuses, 2);
    ck_assert_int_le(n_statuses, (int)((elapsed_ms + 1) / 100));
    ck_assert_str_eq(statuses[0], "degraded"); /* no host */
    finish();
}
END_TEST

static int notify_fd = -1;

static void notify_socket(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    ck_assert_int_eq(bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
}

/* Every datagram received, as "msg|msg|...". */
static void received(char *all, size_t len)
{
    char buf[2048];
    size_t used = 0;
    all[0] = '\0';
    ssize_t n;
    while ((n = recv(notify_fd, buf, sizeof(buf) - 1, 0)) > 0) {
        buf[n] = '\0';
        used += (size_t)snprintf(all + used, len - used, "%s|", buf);
    }
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

START_TEST(test_sd_notify_ready_status_watchdog_stopping)
{
    notify_socket();
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_USEC", "100000", 1); /* shorter than health.interval_ms */
    setenv("WATCHDOG_PID", pid, 1);
    start();
    run_ms(420);
    finish();
    static char all[65536];
    received(all, sizeof(all));
    ck_assert_msg(strncmp(all, "READY=1\nSTATUS=degraded: channel: no host attached\n", 51) == 0,
                  "%s", all);
    /* Every 50 ms: about 8 in 420 ms; at least 4 on a loaded machine. */
    ck_assert_int_ge(count(all, "WATCHDOG=1"), 4);
    ck_assert_int_le(count(all, "WATCHDOG=1"), 9);
    ck_assert_ptr_nonnull(strstr(all, "STOPPING=1|"));
    ck_assert_str_eq(all + strlen(all) - 11, "STOPPING=1|");
    close(notify_fd);
}
END_TEST

START_TEST(test_sd_notify_failing_starves_the_watchdog)
{
    notify_socket();
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_USEC", "100000", 1);
    setenv("WATCHDOG_PID", pid, 1);
    over_a_mib();
    set("health.max_rss_bytes=1048576");
    set("health.interval_ms=100");
    start();
    run_ms(350);
    finish();
    static char all[65536];
    received(all, sizeof(all));
    ck_assert_msg(strncmp(all, "READY=1\nSTATUS=failing: memory:", 31) == 0, "%s", all);
    ck_assert_int_eq(count(all, "WATCHDOG=1"), 0);
    ck_assert_ptr_nonnull(strstr(all, "STOPPING=1"));
    close(notify_fd);
}
END_TEST

static Suite *health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("checks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_report_has_every_check_and_is_ok_with_a_host);
    tcase_add_test(tc, test_host_coming_and_going_publishes_at_once);
    tcase_add_test(tc, test_memory_limit);
    tcase_add_test(tc, test_fd_limit);
    tcase_add_test(tc, test_a_blocked_loop_is_seen);
    tcase_add_test(tc, test_a_failing_collector);
    tcase_add_test(tc, test_dropped_events);
    tcase_add_test(tc, test_metrics_log_unwritable);
    tcase_add_test(tc, test_metrics_log_free_space);
    tcase_add_test(tc, test_metrics_log_off);
    suite_add_tcase(s, tc);

    tc = tcase_create("events");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_tick_publishes_every_interval);
    suite_add_tcase(s, tc);

    tc = tcase_create("systemd");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_sd_notify_ready_status_watchdog_stopping);
    tcase_add_test(tc, test_sd_notify_failing_starves_the_watchdog);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(health_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
