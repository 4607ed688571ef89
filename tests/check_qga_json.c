/* Tests for commands/qga_json: exact 64-bit integers in, QEMU's printing out. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "commands/qga/json.h"

static char err[256];

static cJSON *parse(const char *s)
{
    err[0] = '\0';
    return gd_qga_json_parse(s, strlen(s), err, sizeof(err));
}

/* Prints v (consumed) and compares with want. */
static void expect_print(cJSON *v, const char *want)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_qga_json_print(&b, v), 0);
    ck_assert_str_eq(b.data, want);
    gd_buf_free(&b);
    cJSON_Delete(v);
}

START_TEST(integers_past_2_53_stay_exact)
{
    cJSON *v = parse("{\"id\": 9007199254740993, \"max\": 9223372036854775807, \"neg\": -5}");
    ck_assert_ptr_nonnull(v);
    int64_t x;
    ck_assert_int_eq(gd_qga_json_get_int(cJSON_GetObjectItem(v, "id"), &x), 0);
    ck_assert(x == INT64_C(9007199254740993));
    ck_assert_int_eq(gd_qga_json_get_int(cJSON_GetObjectItem(v, "max"), &x), 0);
    ck_assert(x == INT64_MAX);
    ck_assert_int_eq(gd_qga_json_get_int(cJSON_GetObjectItem(v, "neg"), &x), 0);
    ck_assert(x == -5);
    /* ... and print back as they came. */
    expect_print(v, "{\"id\": 9007199254740993, \"max\": 9223372036854775807, \"neg\": -5}");
}
END_TEST

START_TEST(only_integer_literals_in_range_are_integers)
{
    cJSON *v = parse("[1.0, 1e3, 9223372036854775808, \"7\", true, 12]");
    ck_assert_ptr_nonnull(v);
    int64_t x;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(gd_qga_json_get_int(cJSON_GetArrayItem(v, i), &x), -22);
    ck_assert_int_eq(gd_qga_json_get_int(cJSON_GetArrayItem(v, 5), &x), 0);
    ck_assert_int_eq(x, 12);
    cJSON_Delete(v);
}
END_TEST

START_TEST(numbers_inside_strings_do_not_shift_the_literals)
{
    cJSON *v = parse("{\"s\": \"12 \\\" 34\", \"n\": [5, {\"k\": \"-1\", \"m\": 6}]}");
    ck_assert_ptr_nonnull(v);
    expect_print(v, "{\"s\": \"12 \\\" 34\", \"n\": [5, {\"k\": \"-1\", \"m\": 6}]}");
}
END_TEST

START_TEST(parse_errors_in_qemu_ga_words)
{
    ck_assert_ptr_null(parse("{\"a\": 1, \"a\": 2}"));
    ck_assert_str_eq(err, "JSON parse error, duplicate key");
    ck_assert_ptr_null(parse("{\"x\": {\"b\": 1, \"b\": 1}}"));
    ck_assert_str_eq(err, "JSON parse error, duplicate key");
    ck_assert_ptr_null(parse("garbage"));
    ck_assert_ptr_nonnull(strstr(err, "JSON parse error"));
    ck_assert_ptr_null(parse("{\"a\": 1} x"));
    ck_assert_ptr_nonnull(strstr(err, "'x'"));
    ck_assert_ptr_null(gd_qga_json_parse("{\"a\":\"\0\"}", 9, err, sizeof(err)));
    /* An escaped NUL would cut the string short: refused anywhere. */
    ck_assert_ptr_null(parse("{\"execute\": \"guest-file-open\", \"arguments\": "
                             "{\"path\": \"/tmp/a\\u0000b\"}}"));
    ck_assert_str_eq(err, "JSON parse error, \\u0000 is not supported");
    ck_assert_ptr_null(parse("{\"execute\": \"guest-ping\\u0000x\"}"));
    ck_assert_str_eq(err, "JSON parse error, \\u0000 is not supported");
    cJSON *ok = parse("{\"arguments\": {\"path\": \"/tmp/a\\\\u0000b\"}}");
    ck_assert_ptr_nonnull(ok); /* a backslash, then u0000 */
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(ok, "arguments"), "path")->valuestring,
                     "/tmp/a\\u0000b");
    cJSON_Delete(ok);
    /* Duplicates at every depth, in arrays too. */
    ck_assert_ptr_null(parse("{\"execute\": \"guest-exec\", \"arguments\": {\"path\": \"x\", "
                             "\"arg\": [], \"arg\": [\"y\"]}}"));
    ck_assert_str_eq(err, "JSON parse error, duplicate key");
    ck_assert_ptr_null(parse("{\"a\": [{\"k\": 1, \"k\": 2}]}"));
    ck_assert_str_eq(err, "JSON parse error, duplicate key");
    ck_assert_ptr_null(parse("{\"a\": \"\xc3\"}"));
    ck_assert_str_eq(err, "JSON parse error, invalid UTF-8 sequence");
}
END_TEST

START_TEST(print_uses_qemu_spacing)
{
    expect_print(parse("{\"return\":{},\"id\":\"x1\"}"), "{\"return\": {}, \"id\": \"x1\"}");
    expect_print(parse("[ ]"), "[]");
    expect_print(parse("[true,false,null,[1,2]]"), "[true, false, null, [1, 2]]");
}
END_TEST

START_TEST(print_escapes_like_qemu)
{
    /* Quotes, backslashes, controls, DEL and everything past ASCII; '/' as is. */
    cJSON *s = cJSON_CreateString("a\"b\\c\n\t\x01\x7f/\xc3\xa9\xe2\x80\x9c\xf0\x9f\x98\x80");
    expect_print(s, "\"a\\\"b\\\\c\\n\\t\\u0001\\u007F/\\u00E9\\u201C\\uD83D\\uDE00\"");
    /* An invalid byte becomes U+FFFD. */
    expect_print(cJSON_CreateString("x\xffy"), "\"x\\uFFFDy\"");
}
END_TEST

START_TEST(exact_integers_made_here)
{
    expect_print(gd_qga_json_int(INT64_C(1795322268867963000)), "1795322268867963000");
    expect_print(gd_qga_json_uint(UINT64_MAX), "18446744073709551615");
    expect_print(gd_qga_json_int(-1), "-1");
    cJSON *o = cJSON_CreateObject();
    gd_qga_json_add_int(o, "pid", 42);
    cJSON *dup = cJSON_Duplicate(o, 1); /* the text travels with a copy */
    cJSON_Delete(o);
    expect_print(dup, "{\"pid\": 42}");
}
END_TEST

START_TEST(doubles_print_shortest_round_trip)
{
    expect_print(cJSON_CreateNumber(0.18), "0.18");
    expect_print(cJSON_CreateNumber(1700000000.5), "1700000000.5");
    expect_print(cJSON_CreateNumber(3.0), "3");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qga_json");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, integers_past_2_53_stay_exact);
    tcase_add_test(tc, only_integer_literals_in_range_are_integers);
    tcase_add_test(tc, numbers_inside_strings_do_not_shift_the_literals);
    tcase_add_test(tc, parse_errors_in_qemu_ga_words);
    suite_add_tcase(s, tc);
    tc = tcase_create("print");
    tcase_add_test(tc, print_uses_qemu_spacing);
    tcase_add_test(tc, print_escapes_like_qemu);
    tcase_add_test(tc, exact_integers_made_here);
    tcase_add_test(tc, doubles_print_shortest_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
