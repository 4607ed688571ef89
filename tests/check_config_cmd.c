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
#include "agent/config.h"
#include "agent/log.h"
#include "commands/config.h"
#include "commands/dispatch.h"
#include "commands/table.h"

/* ---- harness: a real dispatcher and loop, replies captured (the same in
 * each check_<family>.c of the commands) ---- */
static uv_loop_t loop;
static gd_agent_t agent;
static gd_dispatch_t disp;
static char *replies[256];
static int n_replies;
static void (*on_reply)(const char *line); /* a test's hook, or NULL */

static void capture(void *ctx, uint64_t conn_gen, const char *line, size_t len)
{
    (void)ctx;
    (void)conn_gen;
    ck_assert_int_lt(n_replies, 256);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(line[len - 1], '\n');
    replies[n_replies++] = strndup(line, len - 1);
    if (on_reply) on_reply(replies[n_replies - 1]);
}

static void harness_setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    memset(&agent, 0, sizeof(agent));
    agent.loop = &loop;
    gd_config_defaults(&agent.cfg);
    gd_dispatch_init(&disp, &agent, capture, NULL);
    gd_dispatch_configure(&disp, agent.cfg.commands.allow, agent.cfg.commands.deny,
                          (unsigned)agent.cfg.commands.max_concurrent);
    agent.dispatch = &disp;
    n_replies = 0;
    on_reply = NULL;
    gd_log_set_level(GD_LOG_ERROR);
}

static void harness_teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT); /* whatever is still running ends */
    gd_dispatch_free(&disp);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    for (int i = 0; i < n_replies; i++)
        free(replies[i]);
}

/* Dispatches one request line and runs the loop until its reply; returns
 * the parsed reply (freed by the caller). */
static cJSON *call(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static cJSON *call(const char *fmt, ...)
{
    char *line;
    va_list ap;
    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&line, fmt, ap), 0);
    va_end(ap);
    int before = n_replies;
    gd_dispatch_line(&disp, 1, line, strlen(line));
    free(line);
    while (n_replies == before)
        ck_assert_msg(uv_run(&loop, UV_RUN_ONCE) != 0 || n_replies > before,
                      "the loop ended without a reply");
    ck_assert_int_eq(n_replies, before + 1);
    cJSON *reply = cJSON_Parse(replies[before]);
    ck_assert_ptr_nonnull(reply);
    return reply;
}

/* The result of an ok reply (owned by reply). */
static const cJSON *result_of(const cJSON *reply)
{
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
    if (!cJSON_IsTrue(ok)) {
        char *text = cJSON_PrintUnformatted(reply);
        ck_abort_msg("expected ok, got %s", text);
    }
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(reply, "result");
    ck_assert_ptr_nonnull(result);
    return result;
}

/* Asserts an error reply with this code; returns its message. */
static const char *error_of(const cJSON *reply, const char *code)
{
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(reply, "error");
    char *text = cJSON_PrintUnformatted(reply);
    ck_assert_msg(cJSON_IsFalse(ok) && err, "expected %s, got %s", code, text);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(err, "code");
    ck_assert_msg(cJSON_IsString(c) && strcmp(c->valuestring, code) == 0, "expected %s, got %s",
                  code, text);
    free(text);
    return cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring;
}

/* Shorthands: a call expected to fail with code (message checked to contain
 * want when non-NULL). */
static void expect_error(const char *code, const char *want, const char *request)
{
    cJSON *reply = call("%s", request);
    const char *msg = error_of(reply, code);
    if (want) ck_assert_msg(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
    cJSON_Delete(reply);
}

__attribute__((unused)) static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsString(v), "field %s is not a string", name);
    return v->valuestring;
}

__attribute__((unused)) static double num_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsNumber(v), "field %s is not a number", name);
    return v->valuedouble;
}
/* ---- end of harness ---- */

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
