/* Check suite for agent/json_keys: duplicate keys found in small and large
 * objects, and a large object of distinct keys checked quickly enough that
 * the default Check timeout (4 s) catches a return to the quadratic scan
 * (25 s for the 90,000 keys of a 1 MiB line). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json/keys.h"

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

/* Duplicates at any depth, inside arrays too. */
START_TEST(test_deep_duplicates)
{
    static const struct {
        const char *json, *dup;
    } cases[] = {
        {"{\"cmd\":\"a\",\"args\":{\"argv\":[\"x\"],\"argv\":[\"y\"]}}", "argv"},
        {"{\"args\":{\"env\":{\"A\":\"1\",\"B\":\"2\",\"A\":\"3\"}}}", "A"},
        {"{\"a\":[1,{\"k\":1},[{\"z\":1,\"z\":2}]]}", "z"},
        {"{\"a\":{\"k\":1},\"b\":{\"k\":1}}", NULL}, /* the same key in two objects */
        {"[[{\"k\":1}],{\"k\":2}]", NULL},
        {"{\"x\":1,\"x\":1}", "x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *o = cJSON_Parse(cases[i].json);
        ck_assert_ptr_nonnull(o);
        int oom = -1;
        const char *dup = gd_json_duplicate_key_deep(o, &oom);
        ck_assert_int_eq(oom, 0);
        if (cases[i].dup)
            ck_assert_msg(dup && strcmp(dup, cases[i].dup) == 0, "%s: %s", cases[i].json,
                          dup ? dup : "(none)");
        else
            ck_assert_msg(dup == NULL, "%s: %s", cases[i].json, dup);
        cJSON_Delete(o);
    }
    ck_assert_ptr_null(gd_json_duplicate_key_deep(NULL, NULL));
}
END_TEST

/* An escaped NUL is found in keys and values at its depth; a backslash
 * followed by "u0000" is not one. */
START_TEST(test_escaped_nul)
{
    static const struct {
        const char *json;
        size_t depth;
    } cases[] = {
        {"{\"cmd\":\"ping\"}", 0},
        {"{\"cmd\":\"ping\\u0000x\"}", 1},
        {"{\"id\":\"\\u0000\",\"cmd\":\"ping\"}", 1},
        {"{\"a\\u0000\":1}", 1},
        {"{\"args\":{\"path\":\"/tmp/a\\u0000b\"}}", 2},
        {"{\"args\":{\"env\":{\"K\":\"\\u00001\"}}}", 3},
        {"{\"args\":{\"argv\":[\"x\",\"\\u0000\"]}}", 3},
        {"{\"args\":{\"s\":\"\\\\u0000\"}}", 0},                  /* \\ then u0000 */
        {"{\"args\":{\"s\":\"\\\\\\u0000\"}}", 2},                /* \\ then \u0000 */
        {"{\"args\":{\"s\":\"\\u00000\\\\u0000\",\"t\":[]}}", 2}, /* the first counts */
        {"{\"a\":\"}]\",\"b\":{\"c\":\"\\u0000\"}}", 2},          /* brackets in strings */
        {"{\"a\":\"\\\"\\u0000\"}", 1},                           /* after an escaped quote */
        {"{\"a\":\"\\u0001\\u00a0\\u1000\"}", 0},
        {"[\"\\u0000\"]", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *o = cJSON_Parse(cases[i].json);
        ck_assert_msg(o != NULL, "%s does not parse", cases[i].json);
        cJSON_Delete(o);
        ck_assert_msg(
            gd_json_escaped_nul_depth(cases[i].json, strlen(cases[i].json)) == cases[i].depth,
            "%s: depth %zu, not %zu", cases[i].json,
            gd_json_escaped_nul_depth(cases[i].json, strlen(cases[i].json)), cases[i].depth);
    }
    /* The length bounds the scan: no NUL terminator needed. */
    ck_assert_uint_eq(gd_json_escaped_nul_depth("{\"a\":\"\\u000", 10), 0);
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
    tcase_add_test(tc, test_deep_duplicates);
    tcase_add_test(tc, test_escaped_nul);
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
