/* Check suite for commands/system (system.info) and commands/metrics
 * (metrics.get, metrics.history) through the real dispatcher, against the
 * fixture trees of a real Debian 12 guest. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/agent.h"
#include "core/history.h"
#include "core/log.h"
#include "collectors/metrics.h"
#include "commands/dispatch.h"
#include "commands/system.h"

static char proc_dir[200], etc_dir[200];

static void paths_setup(void)
{
    const char *fixtures = getenv("GUESTD_FIXTURES");
    ck_assert_ptr_nonnull(fixtures);
    snprintf(proc_dir, sizeof(proc_dir), "%s/proc-snap1", fixtures);
    snprintf(etc_dir, sizeof(etc_dir), "%s/sysinfo-etc", fixtures);
    gd_log_set_level(GD_LOG_ERROR);
}

static const char *s_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    ck_assert_msg(cJSON_IsString(v), "%s.%s is not a string", a, b ? b : "");
    return v->valuestring;
}

/* ---- system.info ---------------------------------------------------------- */

START_TEST(test_system_info_from_fixtures)
{
    cJSON *r = gd_system_info(proc_dir, etc_dir, "guest1", NULL);
    struct utsname u;
    ck_assert_int_eq(uname(&u), 0);
    ck_assert_str_eq(s_at(r, "hostname", NULL), "guest1");
    ck_assert_str_eq(s_at(r, "os", "id"), "debian");
    ck_assert_str_eq(s_at(r, "os", "name"), "Debian GNU/Linux");
    ck_assert_str_eq(s_at(r, "os", "version"), "12 (bookworm)");
    ck_assert_str_eq(s_at(r, "os", "version_id"), "12");
    ck_assert_str_eq(s_at(r, "os", "pretty_name"), "Debian GNU/Linux 12 (bookworm)");
    ck_assert_str_eq(s_at(r, "kernel", "release"), u.release);
    ck_assert_str_eq(s_at(r, "kernel", "version"), u.version);
    ck_assert_str_eq(s_at(r, "arch", NULL), u.machine);
    ck_assert_str_eq(s_at(r, "cpu", "model"), "AMD EPYC");
    ck_assert_double_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "cpu"), "count")->valuedouble,
                        2);
    ck_assert_double_eq(cJSON_GetObjectItem(r, "memory_total_bytes")->valuedouble,
                        24683620.0 * 1024);
    ck_assert_str_eq(s_at(r, "boot_id", NULL), "9ac8c375-8790-4e93-8ec2-dfbd76a4560a");
    ck_assert_str_eq(s_at(r, "machine_id", NULL), "3d1219c7c4c5404aaa1f6d2a48adfda4");
    ck_assert_str_eq(s_at(r, "timezone", NULL), "Etc/UTC");
    ck_assert_double_eq_tol(cJSON_GetObjectItem(r, "uptime_s")->valuedouble, 1438.82, 1e-9);
    cJSON_Delete(r);
}
END_TEST

START_TEST(test_system_info_fallbacks)
{
    /* No os-release, machine-id or timezone; localtime links into zoneinfo. */
    char dir[] = "/tmp/gd-etc-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char link[64];
    snprintf(link, sizeof(link), "%s/localtime", dir);
    ck_assert_int_eq(symlink("/usr/share/zoneinfo/Europe/Paris", link), 0);
    cJSON *r = gd_system_info(proc_dir, dir, NULL, "given-boot-id");
    ck_assert_str_eq(s_at(r, "timezone", NULL), "Europe/Paris");
    ck_assert_str_eq(s_at(r, "os", "id"), "linux");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "os"), "version")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r, "machine_id")));
    ck_assert_str_eq(s_at(r, "boot_id", NULL), "given-boot-id");
    struct utsname u;
    uname(&u);
    ck_assert_str_eq(s_at(r, "hostname", NULL), u.nodename);
    cJSON_Delete(r);
    unlink(link);
    rmdir(dir);
}
END_TEST

START_TEST(test_os_release_quoting)
{
    const char *text = "NAME=Plain\nPRETTY_NAME=\"Quoted \\\"one\\\" \\\\ here\"\n"
                       "VERSION='single quoted'\nID_LIKE=debian\nID=ubuntu\n";
    char v[64];
    ck_assert_int_eq(gd_os_release_value(text, "NAME", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "Plain");
    ck_assert_int_eq(gd_os_release_value(text, "PRETTY_NAME", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "Quoted \"one\" \\ here");
    ck_assert_int_eq(gd_os_release_value(text, "VERSION", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "single quoted");
    ck_assert_int_eq(gd_os_release_value(text, "ID", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "ubuntu"); /* not ID_LIKE */
    ck_assert_int_eq(gd_os_release_value(text, "VERSION_ID", v, sizeof(v)), -ENOENT);
}
END_TEST

/* ---- the commands through the dispatcher ------------------------------------ */

static uv_loop_t loop;
static gd_agent_t agent;
static gd_dispatch_t dispatch;
static cJSON *reply;

static void on_send(void *ctx, uint64_t conn_gen, const char *line, size_t len)
{
    cJSON_Delete(reply);
    reply = cJSON_ParseWithLength(line, len);
    ck_assert_ptr_nonnull(reply);
}

static void agent_setup(void)
{
    paths_setup();
    memset(&agent, 0, sizeof(agent));
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    agent.loop = &loop;
    gd_config_defaults(&agent.cfg);
    snprintf(agent.cfg.agent.proc_root, sizeof(agent.cfg.agent.proc_root), "%s", proc_dir);
    snprintf(agent.hostname, sizeof(agent.hostname), "guest1");
    ck_assert_int_eq(gd_bus_init(&agent.bus, &loop), 0);
    ck_assert_int_eq(gd_history_new(&agent.history, &agent.bus, 4), 0);
    char err[256];
    ck_assert_int_eq(gd_metrics_new(&agent.metrics, &loop, &agent.cfg, err, sizeof(err)), 0);
    agent.dispatch = &dispatch;
    gd_agent_env_bind(&agent);
    gd_dispatch_init(&dispatch, &agent.env, on_send, NULL);
    reply = NULL;
}

static void agent_teardown(void)
{
    cJSON_Delete(reply);
    reply = NULL;
    gd_dispatch_free(&dispatch);
    gd_metrics_free(agent.metrics);
    gd_history_free(agent.history);
    gd_bus_close(&agent.bus, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static const cJSON *call(const char *line)
{
    gd_dispatch_line(&dispatch, 1, line, strlen(line));
    ck_assert_ptr_nonnull(reply);
    return reply;
}

static const char *error_code(const cJSON *r)
{
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")));
    return cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "code")->valuestring;
}

static const cJSON *result(const cJSON *r)
{
    ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")), "not ok");
    return cJSON_GetObjectItem(r, "result");
}

START_TEST(test_metrics_get_all_and_some)
{
    const cJSON *r = result(call("{\"id\":1,\"cmd\":\"metrics.get\"}"));
    ck_assert_double_eq_tol(cJSON_GetObjectItem(r, "uptime_s")->valuedouble, 1438.82, 1e-9);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(r, "cpu"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(r, "processes"));
    r = result(call("{\"id\":2,\"cmd\":\"metrics.get\",\"args\":{\"collectors\":[\"load\"]}}"));
    ck_assert_int_eq(cJSON_GetArraySize(r), 1);
    ck_assert_double_eq_tol(
        cJSON_GetObjectItem(cJSON_GetObjectItem(r, "load"), "load1")->valuedouble, 2.02, 1e-9);
}
END_TEST

START_TEST(test_metrics_get_rejects_unknown_collector)
{
    const cJSON *r =
        call("{\"id\":3,\"cmd\":\"metrics.get\",\"args\":{\"collectors\":[\"cpu\",\"gpu\"]}}");
    ck_assert_str_eq(error_code(r), "invalid_args");
    ck_assert_ptr_nonnull(strstr(
        cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "message")->valuestring, "'gpu'"));
    r = call("{\"id\":4,\"cmd\":\"metrics.get\",\"args\":{\"collectors\":\"cpu\"}}");
    ck_assert_str_eq(error_code(r), "invalid_args");
}
END_TEST

START_TEST(test_metrics_history_pages)
{
    for (int i = 0; i < 3; i++)
        gd_bus_publish_raw(&agent.bus, "metrics", "{\"uptime_s\":1.0}", 16);
    for (int i = 0; i < 3; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    const cJSON *r = result(call("{\"id\":5,\"cmd\":\"metrics.history\"}"));
    const cJSON *samples = cJSON_GetObjectItem(r, "samples");
    ck_assert_int_eq(cJSON_GetArraySize(samples), 3);
    double first = cJSON_GetObjectItem(cJSON_GetArrayItem(samples, 0), "seq")->valuedouble;
    ck_assert_double_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(samples, 0), "data"), "uptime_s")
            ->valuedouble,
        1.0);
    char line[128];
    snprintf(line, sizeof(line),
             "{\"id\":6,\"cmd\":\"metrics.history\",\"args\":{\"since_seq\":%.0f,\"limit\":1}}",
             first);
    samples = cJSON_GetObjectItem(result(call(line)), "samples");
    ck_assert_int_eq(cJSON_GetArraySize(samples), 1);
    ck_assert_double_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(samples, 0), "seq")->valuedouble,
                        first + 1);
    r = call("{\"id\":7,\"cmd\":\"metrics.history\",\"args\":{\"limit\":-1}}");
    ck_assert_str_eq(error_code(r), "invalid_args");
}
END_TEST

START_TEST(test_system_info_command)
{
    const cJSON *r = result(call("{\"id\":8,\"cmd\":\"system.info\"}"));
    ck_assert_str_eq(s_at(r, "hostname", NULL), "guest1");
    ck_assert_str_eq(s_at(r, "cpu", "model"), "AMD EPYC");
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(r, "os"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(r, "timezone"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(r, "machine_id"));
    r = call("{\"id\":9,\"cmd\":\"system.info\",\"args\":{\"x\":1}}");
    ck_assert_str_eq(error_code(r), "invalid_args");
}
END_TEST

static Suite *system_suite(void)
{
    Suite *s = suite_create("system_info");
    TCase *tc = tcase_create("system_info");
    tcase_add_checked_fixture(tc, paths_setup, NULL);
    tcase_add_test(tc, test_system_info_from_fixtures);
    tcase_add_test(tc, test_system_info_fallbacks);
    tcase_add_test(tc, test_os_release_quoting);
    suite_add_tcase(s, tc);

    tc = tcase_create("commands");
    tcase_add_checked_fixture(tc, agent_setup, agent_teardown);
    tcase_add_test(tc, test_metrics_get_all_and_some);
    tcase_add_test(tc, test_metrics_get_rejects_unknown_collector);
    tcase_add_test(tc, test_metrics_history_pages);
    tcase_add_test(tc, test_system_info_command);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(system_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
