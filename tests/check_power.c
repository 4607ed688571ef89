/* Check suite for commands/power.c: the reply goes out first, then the
 * configured command (a harmless substitute here) runs after delay_s. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/log.h"
#include "commands/dispatch.h"
#include "commands/power.h"

#include "cmd_harness.h"

static char dir[64];
static char marker[128];
static int marker_at_reply = -1; /* whether the marker existed when the reply was sent */
static uint64_t reply_ns;

static void note_reply(const char *line)
{
    (void)line;
    marker_at_reply = access(marker, F_OK) == 0;
    reply_ns = uv_hrtime();
}

static void setup(void)
{
    harness_setup();
    snprintf(dir, sizeof(dir), "/tmp/check_power.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(marker, sizeof(marker), "%s/done", dir);
    marker_at_reply = -1;
    on_reply = note_reply;
}

static void teardown(void)
{
    harness_teardown();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void set_argv(char *field, const char *fmt, const char *arg)
{
    snprintf(field, GD_CFG_STR_MAX, fmt, arg);
}

START_TEST(test_reboot_answers_then_runs)
{
    set_argv(agent.cfg.commands.reboot_argv, "touch %s", marker);
    cJSON *reply = call("{\"id\":\"r1\",\"cmd\":\"power.reboot\"}");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(result_of(reply), "scheduled")));
    ck_assert_str_eq(cJSON_GetObjectItem(reply, "id")->valuestring, "r1");
    cJSON_Delete(reply);
    ck_assert_int_eq(marker_at_reply, 0); /* not yet when the answer went out */
    uv_run(&loop, UV_RUN_DEFAULT);        /* the timer, the child, its exit */
    ck_assert_int_eq(access(marker, F_OK), 0);
}
END_TEST

/* The command starts from the children's fixed environment (PATH, LANG,
 * HOME): what systemd put in the agent's (NOTIFY_SOCKET, WATCHDOG_USEC,
 * GLIBC_TUNABLES), its PATH and HOME do not reach it. */
START_TEST(test_environment_is_fixed)
{
    setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
    setenv("WATCHDOG_USEC", "30000000", 1);
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_max=256", 1);
    char *saved_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", "/opt/agent/bin:/usr/bin:/bin", 1);
    set_argv(agent.cfg.commands.reboot_argv, "cp /proc/self/environ %s", marker);
    cJSON *reply = call("{\"cmd\":\"power.reboot\"}");
    result_of(reply);
    cJSON_Delete(reply);
    uv_run(&loop, UV_RUN_DEFAULT);
    setenv("PATH", saved_path, 1);
    free(saved_path);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("GLIBC_TUNABLES");
    static const char want[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\0"
                               "LANG=C.UTF-8\0HOME=/root\0";
    char got[1024];
    FILE *f = fopen(marker, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(got, 1, sizeof(got), f);
    fclose(f);
    ck_assert_uint_eq(n, sizeof(want) - 1);
    ck_assert_int_eq(memcmp(got, want, n), 0);
}
END_TEST

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

START_TEST(test_shutdown_after_delay)
{
    set_argv(agent.cfg.commands.poweroff_argv, "touch %s", marker);
    cJSON *reply = call("{\"cmd\":\"power.shutdown\",\"args\":{\"delay_s\":1}}");
    result_of(reply);
    cJSON_Delete(reply);
    ck_assert_int_eq(marker_at_reply, 0);
    /* Half a second in, nothing has run. */
    uv_timer_t peek;
    uv_timer_init(&loop, &peek);
    uv_timer_start(&peek, stop_loop, 500, 0);
    peek.data = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(access(marker, F_OK), -1);
    uv_close((uv_handle_t *)&peek, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(access(marker, F_OK), 0);
    uint64_t ms = (uv_hrtime() - reply_ns) / 1000000;
    ck_assert_msg(ms >= 950, "ran %llu ms after the reply", (unsigned long long)ms);
}
END_TEST

START_TEST(test_failing_command_still_answered)
{
    /* The host has its answer before the command runs: a failure is logged. */
    set_argv(agent.cfg.commands.reboot_argv, "false%s", "");
    cJSON *reply = call("{\"cmd\":\"power.reboot\"}");
    result_of(reply);
    cJSON_Delete(reply);
    uv_run(&loop, UV_RUN_DEFAULT);
}
END_TEST

START_TEST(test_agent_stop_cancels_delayed)
{
    set_argv(agent.cfg.commands.reboot_argv, "touch %s", marker);
    cJSON *reply = call("{\"cmd\":\"power.reboot\",\"args\":{\"delay_s\":60}}");
    result_of(reply);
    cJSON_Delete(reply);
    gd_power_shutdown(&agent.env);
    uint64_t t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT); /* ends at once: nothing is left waiting */
    ck_assert_uint_lt((uv_hrtime() - t0) / 1000000, 1000);
    ck_assert_int_eq(access(marker, F_OK), -1);

    /* Answered while the agent was already stopping: never started. */
    agent.stopping = 1;
    reply = call("{\"cmd\":\"power.reboot\"}");
    result_of(reply);
    cJSON_Delete(reply);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(access(marker, F_OK), -1);
}
END_TEST

START_TEST(test_errors)
{
    set_argv(agent.cfg.commands.reboot_argv, "%s/no-such-program now", dir);
    expect_error("failed", "commands.reboot_argv: cannot run", "{\"cmd\":\"power.reboot\"}");
    set_argv(agent.cfg.commands.poweroff_argv, "no-such-program-in-path%s", "");
    expect_error("failed", "No such file or directory", "{\"cmd\":\"power.shutdown\"}");
    set_argv(agent.cfg.commands.poweroff_argv, "   %s", "");
    expect_error("failed", "commands.poweroff_argv is empty", "{\"cmd\":\"power.shutdown\"}");
    expect_error("invalid_args", "delay_s", "{\"cmd\":\"power.reboot\",\"args\":{\"delay_s\":-1}}");
    expect_error("invalid_args", "delay_s",
                 "{\"cmd\":\"power.reboot\",\"args\":{\"delay_s\":86401}}");
    expect_error("invalid_args", "delay_s",
                 "{\"cmd\":\"power.reboot\",\"args\":{\"delay_s\":\"5\"}}");
    expect_error("invalid_args", "unknown argument",
                 "{\"cmd\":\"power.shutdown\",\"args\":{\"force\":true}}");
    /* None of them scheduled anything. */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_NOWAIT), 0);
}
END_TEST

START_TEST(test_forbidden_by_policy)
{
    gd_dispatch_configure(&disp, "*", "power.*", 8);
    set_argv(agent.cfg.commands.reboot_argv, "touch %s", marker);
    expect_error("forbidden", "policy", "{\"cmd\":\"power.reboot\"}");
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(access(marker, F_OK), -1);
}
END_TEST

static Suite *power_suite(void)
{
    Suite *s = suite_create("power");
    TCase *tc = tcase_create("power");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reboot_answers_then_runs);
    tcase_add_test(tc, test_environment_is_fixed);
    tcase_add_test(tc, test_shutdown_after_delay);
    tcase_add_test(tc, test_failing_command_still_answered);
    tcase_add_test(tc, test_agent_stop_cancels_delayed);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_forbidden_by_policy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(power_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
