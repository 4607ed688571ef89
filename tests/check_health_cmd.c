/* Check suite for commands/health.c: health.get answers with what the env's
 * report hook builds (the agent's monitor, agent/health.c), and {} without
 * one. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_harness.h"

static int reports;
static void *report_ctx;

static cJSON *fake_report(void *ctx)
{
    reports++;
    report_ctx = ctx;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "status", "degraded");
    cJSON_AddNumberToObject(r, "n", reports);
    return r;
}

static void setup(void)
{
    harness_setup();
    reports = 0;
    report_ctx = NULL;
}

static void teardown(void)
{
    harness_teardown();
}

/* The reply to request, printed, is want. */
static void expect_reply(const char *request, const char *want)
{
    cJSON *reply = call("%s", request);
    char *text = cJSON_PrintUnformatted(reply);
    ck_assert_str_eq(text, want);
    free(text);
    cJSON_Delete(reply);
}

START_TEST(test_reply_is_the_hooks_report)
{
    agent.env.health_report = fake_report;
    expect_reply("{\"id\":7,\"cmd\":\"health.get\"}",
                 "{\"id\":7,\"ok\":true,\"result\":{\"status\":\"degraded\",\"n\":1}}");
    ck_assert_int_eq(reports, 1);
    ck_assert_ptr_eq(report_ctx, &agent); /* the root's own context */
}
END_TEST

START_TEST(test_no_hook_answers_empty)
{
    agent.env.health_report = NULL;
    expect_reply("{\"id\":1,\"cmd\":\"health.get\"}", "{\"id\":1,\"ok\":true,\"result\":{}}");
}
END_TEST

/* The agent's own hook, before its monitor exists: {} as before. */
START_TEST(test_agent_hook_without_monitor)
{
    expect_reply("{\"id\":2,\"cmd\":\"health.get\"}", "{\"id\":2,\"ok\":true,\"result\":{}}");
}
END_TEST

static Suite *health_cmd_suite(void)
{
    Suite *s = suite_create("health_cmd");
    TCase *tc = tcase_create("health.get");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reply_is_the_hooks_report);
    tcase_add_test(tc, test_no_hook_answers_empty);
    tcase_add_test(tc, test_agent_hook_without_monitor);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(health_cmd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
