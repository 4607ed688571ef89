/* Check suite for the id a reply echoes: whatever the id's type and value,
 * the reply line carries it exactly as cJSON's printer writes it (the
 * integer fast path in commands/dispatch.c must not change a byte). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_harness.h"

/* (Only strings and numbers are ids: protocol.md.) The id as cJSON prints it once parsed: what
 * every reply carried before integers took the fast path. */
static char *printed_by_cjson(const char *literal)
{
    cJSON *v = cJSON_Parse(literal);
    ck_assert_ptr_nonnull(v);
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return text;
}

START_TEST(test_reply_echoes_id_as_cjson_prints_it)
{
    static const char *ids[] = {
        "0",
        "7",
        "-3",
        "42.0",
        "1e3",
        "2147483647",
        "2147483648",
        "-2147483649",
        "999999999999999",
        "-999999999999999",
        "1000000000000000",
        "123456789012345678",
        "1.5",
        "-0",
        "-0.0",
        "0.1",
        "1e-7",
        "1e300",
        "\"7\"",
        "\"\"",
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char *want = printed_by_cjson(ids[i]);
        cJSON *reply = call("{\"id\":%s,\"cmd\":\"ping\"}", ids[i]);
        cJSON_Delete(reply);
        const char *line = replies[n_replies - 1];
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "{\"id\":%s,\"ok\":true,", want);
        ck_assert_msg(strncmp(line, prefix, strlen(prefix)) == 0, "id %s: got %s, want prefix %s",
                      ids[i], line, prefix);
        cJSON_free(want);
    }
}
END_TEST

START_TEST(test_error_reply_echoes_integer_id)
{
    cJSON *reply = call("{\"id\":123456,\"cmd\":\"no.such.command\"}");
    cJSON_Delete(reply);
    ck_assert_msg(strncmp(replies[n_replies - 1], "{\"id\":123456,\"ok\":false,", 24) == 0, "%s",
                  replies[n_replies - 1]);
}
END_TEST

static Suite *dispatch_id_suite(void)
{
    Suite *s = suite_create("dispatch_id");
    TCase *tc = tcase_create("id");
    tcase_add_checked_fixture(tc, harness_setup, harness_teardown);
    tcase_add_test(tc, test_reply_echoes_id_as_cjson_prints_it);
    tcase_add_test(tc, test_error_reply_echoes_integer_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dispatch_id_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
