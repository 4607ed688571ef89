/* Check suite for commands/service.c: unit-name rules, systemctl output
 * parsing from fixtures, `unsupported` without systemd, and every command
 * end to end against a stand-in systemctl (tests/fixtures/commands/systemctl). */
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
#include "commands/service.h"

#include "cmd_harness.h"

static char dir[64];
static char fake[128];

static const char *fixture_dir(void)
{
    static char path[512];
    const char *fixtures = getenv("GUESTD_FIXTURES");
    ck_assert_msg(fixtures != NULL, "GUESTD_FIXTURES is not set");
    snprintf(path, sizeof(path), "%s/commands/systemctl", fixtures);
    return path;
}

/* The stand-in systemctl and its fixtures, copied to a fresh directory
 * that also plays /run/systemd/system. */
static void setup(void)
{
    harness_setup();
    snprintf(dir, sizeof(dir), "/tmp/check_service.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp %s/* %s/ && chmod +x %s/fake-systemctl", fixture_dir(), dir,
             dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(fake, sizeof(fake), "%s/fake-systemctl", dir);
    gd_service_set_paths(dir, fake, GD_SERVICE_TIMEOUT_MS);
}

static void teardown(void)
{
    harness_teardown();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return strdup("");
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The arguments of the last systemctl call the stand-in logged. */
static char *last_call(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/calls.log", dir);
    char *log = read_text(path);
    size_t n = strlen(log);
    if (n && log[n - 1] == '\n') log[--n] = '\0';
    char *last = strrchr(log, '\n');
    char *out = strdup(last ? last + 1 : log);
    free(log);
    return out;
}

static int calls(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/calls.log", dir);
    char *log = read_text(path);
    int n = 0;
    for (char *p = log; *p; p++)
        n += *p == '\n';
    free(log);
    return n;
}

/* ---- unit names ---- */

START_TEST(test_unit_names)
{
    static const char *const good[][2] = {
        {"nginx", "nginx.service"},
        {"nginx.service", "nginx.service"},
        {"getty@tty1", "getty@tty1.service"},
        {"getty@tty1.service", "getty@tty1.service"},
        {"systemd-fsck@dev-disk-by\\x2duuid-0b6c.service",
         "systemd-fsck@dev-disk-by\\x2duuid-0b6c.service"},
        {"-.mount", "-.mount"},
        {"foo.bar", "foo.bar.service"},
        {"apt-daily.timer", "apt-daily.timer"},
        {"user@0.service", "user@0.service"},
        {"a@b@c.service", "a@b@c.service"},
        {"dbus.socket", "dbus.socket"},
        {"--help", "--help.service"}, /* valid for systemd; passed after "--" */
    };
    char out[GD_UNIT_NAME_MAX], err[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_msg(gd_unit_name_normalize(good[i][0], out, sizeof(out), err, sizeof(err)) == 0,
                      "%s: %s", good[i][0], err);
        ck_assert_str_eq(out, good[i][1]);
    }
    char longest[300];
    memset(longest, 'a', 247);
    strcpy(longest + 247, ".service"); /* 255 bytes: the most systemd takes */
    ck_assert_int_eq(gd_unit_name_normalize(longest, out, sizeof(out), err, sizeof(err)), 0);
    memset(longest, 'a', 248);
    strcpy(longest + 248, ".service");
    ck_assert_int_eq(gd_unit_name_normalize(longest, out, sizeof(out), err, sizeof(err)), -EINVAL);

    static const char *const bad[] = {
        "",          "@.service", "@x.service", "foo@.service", "a b",       "../etc/passwd",
        "a/b",       "x;reboot",  "$(reboot)",  "`id`",         "é.service", "a\tb",
        "*.service", "nginx?",    "a|b",        "a'b",          "@",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(gd_unit_name_normalize(bad[i], out, sizeof(out), err, sizeof(err)) == -EINVAL,
                      "'%s' was accepted", bad[i]);
    ck_assert_int_eq(gd_unit_name_normalize("foo@.service", out, sizeof(out), err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "template"));
}
END_TEST

/* ---- parsing ---- */

START_TEST(test_parse_list_fixture)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/list-units.txt", fixture_dir());
    char *text = read_text(path);
    cJSON *list = cJSON_CreateArray();
    ck_assert_int_eq(gd_service_parse_list(text, list), 7);
    static const char *const want[7][5] = {
        {"apparmor.service", "loaded", "active", "exited", "Load AppArmor profiles"},
        {"auditd.service", "not-found", "inactive", "dead", "auditd.service"},
        {"cron.service", "loaded", "active", "running",
         "Regular background program processing daemon"},
        {"getty@tty1.service", "loaded", "active", "running", "Getty on tty1"},
        {"nginx.service", "loaded", "failed", "failed",
         "A high performance web server and a reverse proxy server"},
        {"systemd-fsck@dev-disk-by\\x2duuid-0b6c.service", "loaded", "active", "exited",
         "File System Check on /dev/disk/by-uuid/0b6c"},
        {"user@0.service", "loaded", "active", "running", "User Manager for UID 0"},
    };
    static const char *const keys[5] = {"name", "load", "active", "sub", "description"};
    for (int i = 0; i < 7; i++)
        for (int k = 0; k < 5; k++)
            ck_assert_str_eq(str_field(cJSON_GetArrayItem(list, i), keys[k]), want[i][k]);
    cJSON_Delete(list);
    free(text);

    list = cJSON_CreateArray();
    ck_assert_int_eq(gd_service_parse_list("", list), 0);
    ck_assert_int_eq(gd_service_parse_list("x.service loaded active\n", list), -EINVAL);
    /* A unit with no description. */
    ck_assert_int_eq(gd_service_parse_list("a.service loaded active running\r\n", list), 1);
    ck_assert_str_eq(str_field(cJSON_GetArrayItem(list, 0), "description"), "");
    cJSON_Delete(list);
}
END_TEST

START_TEST(test_parse_show_fixture)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/show-cron.txt", fixture_dir());
    char *text = read_text(path);
    gd_unit_status_t s;
    ck_assert_int_eq(gd_service_parse_show(text, &s), 0);
    ck_assert_str_eq(s.name, "cron.service");
    ck_assert_str_eq(s.load, "loaded");
    ck_assert_str_eq(s.active, "active");
    ck_assert_str_eq(s.sub, "running");
    ck_assert_str_eq(s.enabled, "enabled");
    ck_assert_int_eq(s.main_pid, 512);
    ck_assert_str_eq(s.description, "Regular background program processing daemon");
    free(text);
    snprintf(path, sizeof(path), "%s/show-missing.txt", fixture_dir());
    text = read_text(path);
    ck_assert_int_eq(gd_service_parse_show(text, &s), 0);
    ck_assert_str_eq(s.load, "not-found");
    ck_assert_str_eq(s.enabled, "");
    free(text);
    ck_assert_int_eq(gd_service_parse_show("garbage\n", &s), -EINVAL);
    ck_assert_int_eq(gd_service_parse_show("", &s), -EINVAL);
}
END_TEST

/* ---- without systemd ---- */

START_TEST(test_unsupported_without_systemd)
{
    gd_service_set_paths("/nonexistent/run/systemd/system", NULL, 0);
    static const char *const cmds[] = {"service.status", "service.start", "service.stop",
                                       "service.restart"};
    expect_error("unsupported", "systemd", "{\"cmd\":\"service.list\"}");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char req[128];
        snprintf(req, sizeof(req), "{\"cmd\":\"%s\",\"args\":{\"name\":\"cron\"}}", cmds[i]);
        expect_error("unsupported", "systemd", req);
    }
    ck_assert_int_eq(calls(), 0);
}
END_TEST

START_TEST(test_this_machine)
{
    /* The real paths: on a guest without systemd as init, unsupported. */
    gd_service_set_paths("/run/systemd/system", "systemctl", 0);
    if (access("/run/systemd/system", F_OK) == 0)
        return; /* systemd runs here: covered by the VM tests */
    expect_error("unsupported", "does not run systemd", "{\"cmd\":\"service.list\"}");
}
END_TEST

/* ---- with the stand-in systemctl ---- */

START_TEST(test_list)
{
    cJSON *reply = call("{\"cmd\":\"service.list\"}");
    const cJSON *list = cJSON_GetObjectItem(result_of(reply), "services");
    ck_assert_int_eq(cJSON_GetArraySize(list), 7);
    const cJSON *nginx = cJSON_GetArrayItem(list, 4);
    ck_assert_str_eq(str_field(nginx, "name"), "nginx.service");
    ck_assert_str_eq(str_field(nginx, "active"), "failed");
    cJSON_Delete(reply);
    char *args = last_call();
    ck_assert_str_eq(args, "--no-pager --no-ask-password --no-legend --plain --full --all "
                           "--type=service list-units");
    free(args);
}
END_TEST

/* systemctl starts from the children's fixed environment plus what makes its
 * output plain; nothing of the agent's own (systemd's NOTIFY_SOCKET,
 * WATCHDOG_USEC, GLIBC_TUNABLES, its PATH and HOME) reaches it. */
START_TEST(test_environment_is_fixed)
{
    setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
    setenv("WATCHDOG_USEC", "30000000", 1);
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_max=256", 1);
    char *saved_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", "/opt/agent/bin:/usr/bin:/bin", 1);
    cJSON *reply = call("{\"cmd\":\"service.list\"}");
    setenv("PATH", saved_path, 1);
    free(saved_path);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("GLIBC_TUNABLES");
    ck_assert_ptr_nonnull(result_of(reply));
    cJSON_Delete(reply);
    char path[128];
    snprintf(path, sizeof(path), "%s/environ.txt", dir);
    char *env = read_text(path);
    ck_assert_str_eq(env, "HOME=/root\n"
                          "LANG=C.UTF-8\n"
                          "LC_ALL=C\n"
                          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                          "SYSTEMD_COLORS=0\n"
                          "SYSTEMD_LOG_COLOR=0\n"
                          "SYSTEMD_PAGER=\n");
    free(env);
}
END_TEST

START_TEST(test_status)
{
    cJSON *reply = call("{\"cmd\":\"service.status\",\"args\":{\"name\":\"cron\"}}");
    const cJSON *r = result_of(reply);
    ck_assert_str_eq(str_field(r, "name"), "cron.service");
    ck_assert_str_eq(str_field(r, "active"), "active");
    ck_assert_str_eq(str_field(r, "sub"), "running");
    ck_assert_str_eq(str_field(r, "enabled"), "enabled");
    ck_assert_int_eq((int)num_field(r, "main_pid"), 512);
    cJSON_Delete(reply);
    char *args = last_call();
    ck_assert_str_eq(args, "--no-pager --no-ask-password "
                           "--property=Id,LoadState,ActiveState,SubState,UnitFileState,MainPID,"
                           "Description show -- cron.service");
    free(args);

    /* No main process: null. */
    reply = call("{\"cmd\":\"service.status\",\"args\":{\"name\":\"idle.service\"}}");
    r = result_of(reply);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r, "main_pid")));
    ck_assert_str_eq(str_field(r, "active"), "inactive");
    ck_assert_str_eq(str_field(r, "enabled"), "disabled");
    cJSON_Delete(reply);

    expect_error("not_found", "nosuch.service",
                 "{\"cmd\":\"service.status\",\"args\":{\"name\":\"nosuch\"}}");
    expect_error("failed", "cannot parse",
                 "{\"cmd\":\"service.status\",\"args\":{\"name\":\"garbled\"}}");
}
END_TEST

static void change(const char *verb, const char *name, const char *active)
{
    cJSON *reply = call("{\"cmd\":\"service.%s\",\"args\":{\"name\":\"%s\"}}", verb, name);
    const cJSON *r = result_of(reply);
    ck_assert_str_eq(str_field(r, "name"), "myapp.service");
    ck_assert_str_eq(str_field(r, "active"), active);
    cJSON_Delete(reply);
}

START_TEST(test_start_stop_restart)
{
    change("start", "myapp", "active");
    char path[128];
    snprintf(path, sizeof(path), "%s/calls.log", dir);
    char *log = read_text(path);
    ck_assert_ptr_nonnull(strstr(log, "--no-pager --no-ask-password start -- myapp.service\n"));
    free(log);
    char *args = last_call();
    ck_assert_ptr_nonnull(strstr(args, "show -- myapp.service"));
    free(args);
    change("stop", "myapp.service", "inactive");
    change("restart", "myapp", "active");
    ck_assert_int_eq(calls(), 6); /* each change, then a show */
}
END_TEST

START_TEST(test_change_errors)
{
    expect_error("not_found", "not found",
                 "{\"cmd\":\"service.start\",\"args\":{\"name\":\"nosuch\"}}");
    expect_error("not_found", "not loaded",
                 "{\"cmd\":\"service.stop\",\"args\":{\"name\":\"nosuch\"}}");
    expect_error("failed", "Job for failing.service failed",
                 "{\"cmd\":\"service.restart\",\"args\":{\"name\":\"failing\"}}");
    ck_assert_int_eq(calls(), 3); /* no show after a failed change */
}
END_TEST

START_TEST(test_timeout)
{
    gd_service_set_paths(NULL, NULL, 300);
    uint64_t t0 = uv_hrtime();
    expect_error("timeout", "300 ms", "{\"cmd\":\"service.start\",\"args\":{\"name\":\"slow\"}}");
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    /* The loop's clock is cached at the start of an iteration: allow a little. */
    ck_assert_msg(ms >= 250 && ms < 3000, "took %llu ms", (unsigned long long)ms);
}
END_TEST

static void stop_agent(uv_timer_t *t)
{
    gd_service_shutdown(&agent.env);
    uv_close((uv_handle_t *)t, NULL);
}

START_TEST(test_agent_stop_kills_systemctl)
{
    uv_timer_t stopper;
    uv_timer_init(&loop, &stopper);
    uv_timer_start(&stopper, stop_agent, 100, 0);
    uint64_t t0 = uv_hrtime();
    expect_error("failed", "killed by signal 9",
                 "{\"cmd\":\"service.start\",\"args\":{\"name\":\"slow\"}}");
    ck_assert_uint_lt((uv_hrtime() - t0) / 1000000, 2000);
}
END_TEST

START_TEST(test_invalid_names_never_run)
{
    static const char *const bad[] = {"foo@.service", "a b", "../x", "$(reboot)", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[128];
        snprintf(req, sizeof(req), "{\"cmd\":\"service.start\",\"args\":{\"name\":\"%s\"}}",
                 bad[i]);
        expect_error("invalid_args", NULL, req);
    }
    expect_error("invalid_args", "missing argument 'name'",
                 "{\"cmd\":\"service.status\",\"args\":{}}");
    expect_error("invalid_args", "name", "{\"cmd\":\"service.stop\",\"args\":{\"name\":5}}");
    expect_error("invalid_args", "unknown argument",
                 "{\"cmd\":\"service.list\",\"args\":{\"all\":true}}");
    ck_assert_int_eq(calls(), 0);
}
END_TEST

START_TEST(test_no_systemctl)
{
    gd_service_set_paths(NULL, "/nonexistent/systemctl", 0);
    expect_error("failed", "cannot run /nonexistent/systemctl", "{\"cmd\":\"service.list\"}");
}
END_TEST

static Suite *service_suite(void)
{
    Suite *s = suite_create("service");
    TCase *tc = tcase_create("parsing");
    tcase_add_test(tc, test_unit_names);
    tcase_add_test(tc, test_parse_list_fixture);
    tcase_add_test(tc, test_parse_show_fixture);
    suite_add_tcase(s, tc);

    tc = tcase_create("commands");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_unsupported_without_systemd);
    tcase_add_test(tc, test_this_machine);
    tcase_add_test(tc, test_list);
    tcase_add_test(tc, test_status);
    tcase_add_test(tc, test_environment_is_fixed);
    tcase_add_test(tc, test_start_stop_restart);
    tcase_add_test(tc, test_change_errors);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_agent_stop_kills_systemctl);
    tcase_add_test(tc, test_invalid_names_never_run);
    tcase_add_test(tc, test_no_systemctl);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(service_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
