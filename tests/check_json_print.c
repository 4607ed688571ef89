/* Check suite for agent/json_print: the text equals cJSON's own printer's,
 * a buffer large enough is reused without allocating, and a line one byte
 * too long for it falls back to the allocating printer and grows it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/json/print.h"

/* cJSON's allocations, counted through its hooks: printing in place makes
 * none. */
static int cjson_allocs;
static void *counting_malloc(size_t n)
{
    cjson_allocs++;
    return malloc(n);
}

static void count_cjson_allocations(void)
{
    cJSON_Hooks hooks = {.malloc_fn = counting_malloc, .free_fn = free};
    cJSON_InitHooks(&hooks);
}

/* {"s":"xxx..."} with a string of n bytes: 8 + n bytes printed. */
static cJSON *object_with_string(size_t n)
{
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "s", s);
    free(s);
    return o;
}

static void assert_prints_as_cjson(gd_buf_t *b, const cJSON *item)
{
    char *want = cJSON_PrintUnformatted(item);
    cjson_allocs = 0;
    ck_assert_int_eq(gd_json_print(b, item), 0);
    ck_assert_str_eq(b->data, want);
    ck_assert_uint_eq(b->len, strlen(want));
    cJSON_free(want);
}

START_TEST(test_same_text_as_cjson)
{
    gd_buf_t b;
    gd_buf_init(&b);
    cJSON *o =
        cJSON_Parse("{\"id\":7,\"ok\":true,\"data\":{\"a\":[1,2.5,\"\\u00e9\\n\"],\"n\":null}}");
    ck_assert_ptr_nonnull(o);
    assert_prints_as_cjson(&b, o); /* empty buffer: the fallback */
    assert_prints_as_cjson(&b, o); /* now in place */
    cJSON_Delete(o);
    gd_buf_free(&b);
}
END_TEST

START_TEST(test_reuses_a_large_enough_buffer)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_buf_reserve(&b, 255), 0); /* capacity 256 */
    ck_assert_uint_eq(b.cap, 256);
    char *before = b.data;
    /* cJSON wants a few bytes to spare beyond the NUL ("5 bytes more than
     * you actually need", its header says). */
    cJSON *fits = object_with_string(256 - 8 - 6);
    assert_prints_as_cjson(&b, fits);
    ck_assert_int_eq(cjson_allocs, 0);
    ck_assert_ptr_eq(b.data, before);
    ck_assert_uint_eq(b.cap, 256);
    cJSON *small = object_with_string(3);
    assert_prints_as_cjson(&b, small); /* shorter: still the same buffer */
    ck_assert_int_eq(cjson_allocs, 0);
    ck_assert_ptr_eq(b.data, before);
    cJSON_Delete(fits);
    cJSON_Delete(small);
    gd_buf_free(&b);
}
END_TEST

START_TEST(test_too_long_by_one_grows_the_buffer)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_buf_reserve(&b, 255), 0);
    cJSON *o = object_with_string(256 - 8); /* 256 bytes: no room for the NUL */
    assert_prints_as_cjson(&b, o);
    ck_assert_int_gt(cjson_allocs, 0);
    ck_assert_uint_ge(b.cap, 257);
    cJSON_Delete(o);
    o = object_with_string(1 << 20); /* a file.read-sized reply */
    assert_prints_as_cjson(&b, o);
    cJSON_Delete(o);
    gd_buf_free(&b);
}
END_TEST

static Suite *json_print_suite(void)
{
    Suite *s = suite_create("json_print");
    TCase *tc = tcase_create("print");
    tcase_add_unchecked_fixture(tc, count_cjson_allocations, NULL);
    tcase_add_test(tc, test_same_text_as_cjson);
    tcase_add_test(tc, test_reuses_a_large_enough_buffer);
    tcase_add_test(tc, test_too_long_by_one_grows_the_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_print_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
