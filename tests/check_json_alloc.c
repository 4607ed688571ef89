/* Check suite for core/json/alloc: blocks come back aligned and writable,
 * a freed block is reused by its thread, each thread keeps at most
 * GD_JSON_CACHE_PER_CLASS blocks of a class, large blocks and blocks freed
 * by another thread go back to the C library, and cJSON parses, prints and
 * deletes through the cache without growing it. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/json/alloc.h"

static void drain(void)
{
    gd_json_cache_drain();
}

START_TEST(test_blocks_are_aligned_and_writable)
{
    static const size_t sizes[] = {1, 16, 31, 32, 33, 64, 100, 128, 200, 256, 257, 4096};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *p = gd_json_alloc(sizes[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 16, 0);
        memset(p, 0xa5, sizes[i]);
        gd_json_free(p);
    }
    gd_json_free(NULL); /* like free(NULL) */
}
END_TEST

START_TEST(test_freed_block_is_reused_by_its_class)
{
    void *a = gd_json_alloc(40);
    gd_json_free(a);
    ck_assert_uint_eq(gd_json_cache_blocks(), 1);
    void *b = gd_json_alloc(64); /* same class (33..64) */
    ck_assert_ptr_eq(a, b);
    ck_assert_uint_eq(gd_json_cache_blocks(), 0);
    void *c = gd_json_alloc(20); /* another class: a new block */
    ck_assert_ptr_ne(c, b);
    gd_json_free(b);
    gd_json_free(c);
    ck_assert_uint_eq(gd_json_cache_blocks(), 2);
}
END_TEST

START_TEST(test_cache_is_bounded_per_class)
{
    enum { N = 3 * GD_JSON_CACHE_PER_CLASS };
    void *blocks[N];
    for (int i = 0; i < N; i++)
        blocks[i] = gd_json_alloc(100);
    for (int i = 0; i < N; i++)
        gd_json_free(blocks[i]);
    ck_assert_uint_eq(gd_json_cache_blocks(), GD_JSON_CACHE_PER_CLASS);
    gd_json_cache_drain();
    ck_assert_uint_eq(gd_json_cache_blocks(), 0);
}
END_TEST

START_TEST(test_large_blocks_are_not_cached)
{
    void *p = gd_json_alloc(GD_JSON_CACHE_MAX_BLOCK + 1);
    ck_assert_ptr_nonnull(p);
    gd_json_free(p);
    ck_assert_uint_eq(gd_json_cache_blocks(), 0);
    ck_assert_ptr_null(gd_json_alloc(SIZE_MAX - 8)); /* no overflow */
}
END_TEST

struct other_thread {
    void *block;
    size_t blocks_after;
};

static void *free_elsewhere(void *arg)
{
    struct other_thread *t = arg;
    gd_json_free(t->block);
    t->blocks_after = gd_json_cache_blocks();
    return NULL;
}

START_TEST(test_block_freed_by_another_thread_goes_to_libc)
{
    struct other_thread t = {.block = gd_json_alloc(50)};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, free_elsewhere, &t), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_uint_eq(t.blocks_after, 0);         /* not in the other thread's cache */
    ck_assert_uint_eq(gd_json_cache_blocks(), 0); /* nor in this one's */
}
END_TEST

START_TEST(test_cjson_through_the_cache)
{
    cJSON_Hooks hooks = {.malloc_fn = gd_json_alloc, .free_fn = gd_json_free};
    cJSON_InitHooks(&hooks);
    const char *line = "{\"id\":7,\"cmd\":\"exec\",\"args\":{\"argv\":[\"/bin/echo\",\"a "
                       "string long enough to need the 64-byte class\"],\"timeout_ms\":500}}";
    size_t high = 0;
    for (int i = 0; i < 1000; i++) {
        cJSON *req = cJSON_Parse(line);
        ck_assert_ptr_nonnull(req);
        cJSON *reply = cJSON_CreateObject();
        cJSON_AddItemToObject(reply, "id", cJSON_Duplicate(cJSON_GetObjectItem(req, "id"), 1));
        cJSON_AddBoolToObject(reply, "ok", 1);
        cJSON_AddItemToObject(reply, "result", cJSON_Duplicate(req, 1));
        char *text = cJSON_PrintUnformatted(reply);
        ck_assert_ptr_nonnull(text);
        ck_assert_ptr_nonnull(strstr(text, "\"timeout_ms\":500"));
        cJSON_free(text);
        cJSON_Delete(reply);
        cJSON_Delete(req);
        if (gd_json_cache_blocks() > high) high = gd_json_cache_blocks();
    }
    /* The same request every time: the cache reaches its working set and
     * stays there. */
    ck_assert_uint_gt(high, 0);
    ck_assert_uint_le(high, GD_JSON_CACHE_CLASSES * GD_JSON_CACHE_PER_CLASS);
    cJSON_InitHooks(NULL);
}
END_TEST

static Suite *json_alloc_suite(void)
{
    Suite *s = suite_create("json_alloc");
    TCase *tc = tcase_create("cache");
    tcase_add_checked_fixture(tc, drain, drain);
    tcase_add_test(tc, test_blocks_are_aligned_and_writable);
    tcase_add_test(tc, test_freed_block_is_reused_by_its_class);
    tcase_add_test(tc, test_cache_is_bounded_per_class);
    tcase_add_test(tc, test_large_blocks_are_not_cached);
    tcase_add_test(tc, test_block_freed_by_another_thread_goes_to_libc);
    tcase_add_test(tc, test_cjson_through_the_cache);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_alloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
