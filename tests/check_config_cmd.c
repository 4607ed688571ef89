/* Check suite for commands/config.c (config.get, config.set) and for the
 * command policy (commands.allow / commands.deny) as a host meets it. */
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
#include "commands/config.h"
#include "commands/dispatch.h"
#include "commands/table.h"

#include "cmd_harness.h"

static void setup(void)
{
    harness_setup();
}

static void teardown(void)
{
    harness_teardown();
}

/* ---- config.get ---- */

START_TEST(test_get_all)
{
    cJSON *reply = call("{\"cmd\":\"config.get\"}");
    const cJSON *r = result_of(reply);
    /* Every key of the table, under its section, with its effective value. */
    int keys = 0;
    for (const gd_cfg_key_t *k = gd_config_keys; k->name; k++, keys++) {
        const cJSON *section = cJSON_GetObjectItemCaseSensitive(r, k->section);
        ck_assert_msg(cJSON_IsObject(section), "no section %s", k->section);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(section, k->name);
        ck_assert_msg(v != NULL, "no key %s.%s", k->section, k->name);
        cJSON *want = gd_config_value_json(&agent.cfg, k);
        ck_assert_msg(cJSON_Compare(v, want, 1), "%s.%s differs", k->section, k->name);
        cJSON_Delete(want);
    }
    int seen = 0;
    const cJSON *section, *v;
    cJSON_ArrayForEach(section, r) cJSON_ArrayForEach(v, section) seen++;
    ck_assert_int_eq(seen, keys);
    ck_assert(num_field(cJSON_GetObjectItem(r, "metrics"), "interval_ms") == 30000);
    ck_assert_str_eq(str_field(cJSON_GetObjectItem(r, "agent"), "log_level"), "info");
    cJSON_Delete(reply);
}
END_TEST

START_TEST(test_get_one)
{
    cJSON *reply = call("{\"cmd\":\"config.get\",\"args\":{\"key\":\"metrics.interval_ms\"}}");
    const cJSON *r = result_of(reply);
    ck_assert_str_eq(str_field(r, "key"), "metrics.interval_ms");
    ck_assert(num_field(r, "value") == 30000);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "runtime")));
    cJSON_Delete(reply);

    reply = call("{\"cmd\":\"config.get\",\"args\":{\"key\":\"channel.spec\"}}");
    r = result_of(reply);
    ck_assert_str_eq(str_field(r, "value"), "virtio-serial:/dev/virtio-ports/org.guestd.agent.0");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "runtime")));
    cJSON_Delete(reply);

    /* The policy keys read as not runtime: a host cannot change them. */
    reply = call("{\"cmd\":\"config.get\",\"args\":{\"key\":\"commands.deny\"}}");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(result_of(reply), "runtime")));
    cJSON_Delete(reply);
}
END_TEST

START_TEST(test_get_errors)
{
    expect_error("invalid_args", "no configuration key 'metrics.nope'",
                 "{\"cmd\":\"config.get\",\"args\":{\"key\":\"metrics.nope\"}}");
    expect_error("invalid_args", "no configuration key",
                 "{\"cmd\":\"config.get\",\"args\":{\"key\":\"interval_ms\"}}");
    expect_error("invalid_args", "key", "{\"cmd\":\"config.get\",\"args\":{\"key\":1}}");
}
END_TEST

/* ---- config.set ---- */

START_TEST(test_set_runtime_keys)
{
    cJSON *reply =
        call("{\"cmd\":\"config.set\",\"args\":{\"key\":\"metrics.interval_ms\",\"value\":5000}}");
    const cJSON *r = result_of(reply);
    ck_assert_str_eq(str_field(r, "key"), "metrics.interval_ms");
    ck_assert(num_field(r, "value") == 5000);
    cJSON_Delete(reply);
    ck_assert_int_eq(agent.cfg.metrics.interval_ms, 5000);

    /* config.get sees it. */
    reply = call("{\"cmd\":\"config.get\",\"args\":{\"key\":\"metrics.interval_ms\"}}");
    ck_assert(num_field(result_of(reply), "value") == 5000);
    cJSON_Delete(reply);

    /* A number as a string, an enum by name, a log level that takes effect. */
    reply = call("{\"cmd\":\"config.set\",\"args\":{\"key\":\"health.interval_ms\","
                 "\"value\":\"2500\"}}");
    ck_assert(num_field(result_of(reply), "value") == 2500);
    cJSON_Delete(reply);
    ck_assert_int_eq(agent.cfg.health.interval_ms, 2500);
    reply =
        call("{\"cmd\":\"config.set\",\"args\":{\"key\":\"agent.log_level\",\"value\":\"warn\"}}");
    ck_assert_str_eq(str_field(result_of(reply), "value"), "warn");
    cJSON_Delete(reply);
    ck_assert_int_eq(gd_log_get_level(), GD_LOG_WARN);
    reply = call("{\"cmd\":\"config.set\",\"args\":{\"key\":\"commands.file_max_bytes\","
                 "\"value\":1024}}");
    result_of(reply);
    cJSON_Delete(reply);
    ck_assert_int_eq(agent.cfg.commands.file_max_bytes, 1024);
}
END_TEST

START_TEST(test_set_refused)
{
    /* Read at startup only. */
    expect_error(
        "invalid_args", "channel.spec is read at startup only",
        "{\"cmd\":\"config.set\",\"args\":{\"key\":\"channel.spec\",\"value\":\"stdio\"}}");
    expect_error("invalid_args", "startup only",
                 "{\"cmd\":\"config.set\",\"args\":{\"key\":\"commands.reboot_argv\","
                 "\"value\":\"sh -c evil\"}}");
    /* The policy. */
    expect_error("invalid_args", "policy",
                 "{\"cmd\":\"config.set\",\"args\":{\"key\":\"commands.deny\",\"value\":\"\"}}");
    expect_error("invalid_args", "policy",
                 "{\"cmd\":\"config.set\",\"args\":{\"key\":\"commands.allow\",\"value\":\"*\"}}");
    /* Out of range, wrong type, not a whole number, cross-key rule. */
    expect_error("invalid_args", "out of range",
                 "{\"cmd\":\"config.set\",\"args\":{\"key\":\"metrics.interval_ms\",\"value\":5}}");
    expect_error(
        "invalid_args", "not an integer",
        "{\"cmd\":\"config.set\",\"args\":{\"key\":\"metrics.interval_ms\",\"value\":\"soon\"}}");
    expect_error(
        "invalid_args", "must be a string, a boolean or an integer",
        "{\"cmd\":\"config.set\",\"args\":{\"key\":\"metrics.interval_ms\",\"value\":1.5}}");
    expect_error(
        "invalid_args", "must be a string, a boolean or an integer",
        "{\"cmd\":\"config.set\",\"args\":{\"key\":\"metrics.interval_ms\",\"value\":[1]}}");
    expect_error(
        "invalid_args", "must be a string, a boolean or an integer",
        "{\"cmd\":\"config.set\",\"args\":{\"key\":\"metrics.interval_ms\",\"value\":null}}");
    expect_error(
        "invalid_args", "not one of",
        "{\"cmd\":\"config.set\",\"args\":{\"key\":\"agent.log_level\",\"value\":\"loud\"}}");
    expect_error("invalid_args", "poll_max_ms",
                 "{\"cmd\":\"config.set\",\"args\":{\"key\":\"channel.poll_ms\",\"value\":60000}}");
    expect_error("invalid_args", "no configuration key",
                 "{\"cmd\":\"config.set\",\"args\":{\"key\":\"metrics.nope\",\"value\":1}}");
    expect_error("invalid_args", "missing argument 'value'",
                 "{\"cmd\":\"config.set\",\"args\":{\"key\":\"metrics.interval_ms\"}}");
    /* Nothing changed. */
    gd_config_t defaults;
    gd_config_defaults(&defaults);
    ck_assert_int_eq(memcmp(&defaults, &agent.cfg, sizeof(defaults)), 0);
}
END_TEST

/* config.set cannot raise a runtime key that sizes memory or concurrency
 * past its ceiling: refused with the ceiling named, nothing changed. */
START_TEST(test_set_above_a_ceiling)
{
    int checked = 0;
    for (const gd_cfg_key_t *k = gd_config_keys; k->name; k++) {
        if (!k->ceiling || !k->runtime) continue;
        char req[256], want[128];
        snprintf(req, sizeof(req),
                 "{\"cmd\":\"config.set\",\"args\":{\"key\":\"%s.%s\",\"value\":%lld}}", k->section,
                 k->name, (long long)k->max + 1);
        snprintf(want, sizeof(want), "%s.%s: %lld is above the ceiling of %lld, ", k->section,
                 k->name, (long long)k->max + 1, (long long)k->max);
        expect_error("invalid_args", want, req);
        /* Far above too (what issue 16 saw: 2^40 bytes, 10^6 commands). */
        snprintf(req, sizeof(req),
                 "{\"cmd\":\"config.set\",\"args\":{\"key\":\"%s.%s\",\"value\":%lld}}", k->section,
                 k->name, (long long)INT64_C(1099511627776));
        expect_error("invalid_args", "is above the ceiling of", req);
        checked++;
    }
    ck_assert_int_eq(checked, 4); /* top_processes, max_concurrent, exec output, file size */
    gd_config_t defaults;
    gd_config_defaults(&defaults);
    ck_assert_int_eq(memcmp(&defaults, &agent.cfg, sizeof(defaults)), 0);
    /* At the ceiling it is taken. */
    cJSON *reply = call("{\"cmd\":\"config.set\",\"args\":{\"key\":\"commands.max_concurrent\","
                        "\"value\":64}}");
    result_of(reply);
    cJSON_Delete(reply);
    ck_assert_int_eq(agent.cfg.commands.max_concurrent, 64);
    ck_assert_uint_eq(disp.max_concurrent, 64);
}
END_TEST

/* ---- policy ---- */

START_TEST(test_policy_deny_exec)
{
    gd_dispatch_configure(&disp, "*", "exec*", 8);
    expect_error("forbidden", "'exec' is disabled by the agent's policy",
                 "{\"cmd\":\"exec\",\"args\":{\"argv\":[\"true\"]}}");
    expect_error("forbidden", "exec.cancel",
                 "{\"cmd\":\"exec.cancel\",\"args\":{\"request_id\":1}}");
    cJSON *reply = call("{\"cmd\":\"info\"}");
    const cJSON *list = cJSON_GetObjectItem(result_of(reply), "commands");
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, list)
    {
        const char *name = str_field(c, "name");
        int enabled = cJSON_IsTrue(cJSON_GetObjectItem(c, "enabled"));
        ck_assert_msg(enabled == (strncmp(name, "exec", 4) != 0), "%s enabled=%d", name, enabled);
        ck_assert_ptr_nonnull(gd_command_find(name));
        n++;
    }
    ck_assert_int_ge(n, 20);
    cJSON_Delete(reply);
    /* The rest still answers. */
    reply = call("{\"cmd\":\"config.get\",\"args\":{\"key\":\"commands.deny\"}}");
    result_of(reply);
    cJSON_Delete(reply);
}
END_TEST

START_TEST(test_policy_allow_list)
{
    gd_dispatch_configure(&disp, "ping, info, config.get", "", 8);
    cJSON *reply = call("{\"cmd\":\"config.get\",\"args\":{\"key\":\"agent.log_level\"}}");
    result_of(reply);
    cJSON_Delete(reply);
    expect_error(
        "forbidden", "config.set",
        "{\"cmd\":\"config.set\",\"args\":{\"key\":\"agent.log_level\",\"value\":\"debug\"}}");
    expect_error("forbidden", NULL,
                 "{\"cmd\":\"file.read\",\"args\":{\"path\":\"/etc/hostname\"}}");
}
END_TEST

static Suite *config_cmd_suite(void)
{
    Suite *s = suite_create("config_cmd");
    TCase *tc = tcase_create("get");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_get_all);
    tcase_add_test(tc, test_get_one);
    tcase_add_test(tc, test_get_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("set");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_set_runtime_keys);
    tcase_add_test(tc, test_set_refused);
    tcase_add_test(tc, test_set_above_a_ceiling);
    suite_add_tcase(s, tc);

    tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_policy_deny_exec);
    tcase_add_test(tc, test_policy_allow_list);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_cmd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
