/* Check suite for agent/json_keys: duplicate keys found in small and large
 * objects, and a large object of distinct keys checked quickly enough that
 * the default Check timeout (4 s) catches a return to the quadratic scan
 * (25 s for the 90,000 keys of a 1 MiB line). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/json_keys.h"

static cJSON *object_of(int n, int dup_at)
{
    cJSON *o = cJSON_CreateObject();
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i == dup_at ? 0 : i);
        cJSON_AddItemToObject(o, key, cJSON_CreateNumber(i));
    }
    return o;
}

START_TEST(test_small_objects)
{
    cJSON *o = cJSON_Parse("{\"cmd\":\"a\",\"id\":1,\"cmd\":\"b\"}");
    ck_assert_ptr_nonnull(o);
    int oom = -1;
    ck_assert_str_eq(gd_json_duplicate_key(o, &oom), "cmd");
    ck_assert_int_eq(oom, 0);
    cJSON_Delete(o);
    o = cJSON_Parse("{\"cmd\":\"a\",\"id\":1,\"args\":{\"x\":1,\"x\":2}}");
    ck_assert_ptr_null(gd_json_duplicate_key(o, NULL)); /* own members only */
    cJSON_Delete(o);
    o = cJSON_Parse("[1,1]");
    ck_assert_ptr_null(gd_json_duplicate_key(o, NULL));
    cJSON_Delete(o);
    o = cJSON_Parse("{}");
    ck_assert_ptr_null(gd_json_duplicate_key(o, NULL));
    cJSON_Delete(o);
}
END_TEST

START_TEST(test_large_objects)
{
    cJSON *o = object_of(1000, 999);
    ck_assert_str_eq(gd_json_duplicate_key(o, NULL), "k0");
    cJSON_Delete(o);
    o = object_of(17, 16); /* just past the pairwise size */
    ck_assert_str_eq(gd_json_duplicate_key(o, NULL), "k0");
    cJSON_Delete(o);
    o = object_of(1000, -1);
    ck_assert_ptr_null(gd_json_duplicate_key(o, NULL));
    cJSON_Delete(o);
}
END_TEST

START_TEST(test_ninety_thousand_distinct_keys)
{
    cJSON *o = object_of(90000, -1);
    int oom = -1;
    ck_assert_ptr_null(gd_json_duplicate_key(o, &oom));
    ck_assert_int_eq(oom, 0);
    cJSON_Delete(o);
}
END_TEST

static Suite *json_keys_suite(void)
{
    Suite *s = suite_create("json_keys");
    TCase *tc = tcase_create("duplicates");
    tcase_add_test(tc, test_small_objects);
    tcase_add_test(tc, test_large_objects);
    tcase_add_test(tc, test_ninety_thousand_distinct_keys);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_keys_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
