/* Tests for hub/idmap: the hub-unique ids of forwarded requests, mapped
 * back to the asking client and its own id. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hub/idmap.h"

static gd_idmap_t m;

static void setup(void)
{
    gd_idmap_init(&m);
}

static void free_entry(void *ctx, gd_idmap_entry_t *e)
{
    (void)ctx;
    free(e);
}

static void teardown(void)
{
    gd_idmap_drain(&m, free_entry, NULL);
}

START_TEST(same_client_ids_stay_apart)
{
    /* Two clients both asked with id 1: the hub ids tell them apart. */
    ck_assert_int_eq(gd_idmap_add(&m, 10, 1, "1", 1), 0);
    ck_assert_int_eq(gd_idmap_add(&m, 11, 2, "1", 1), 0);
    ck_assert_int_eq(gd_idmap_add(&m, 12, 1, "\"a\"", 3), 0);
    ck_assert_uint_eq(m.count, 3);
    gd_idmap_entry_t *e = gd_idmap_take(&m, 11);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->client, 2);
    ck_assert_str_eq(e->orig, "1");
    free(e);
    e = gd_idmap_take(&m, 12);
    ck_assert_uint_eq(e->client, 1);
    ck_assert_str_eq(e->orig, "\"a\"");
    ck_assert_uint_eq(e->orig_len, 3);
    free(e);
    ck_assert_ptr_null(gd_idmap_take(&m, 12)); /* answered once only */
    ck_assert_ptr_null(gd_idmap_take(&m, 99));
    ck_assert_uint_eq(m.count, 1);
}
END_TEST

START_TEST(forget_client_drops_only_its_entries)
{
    for (uint64_t i = 1; i <= 6; i++)
        ck_assert_int_eq(gd_idmap_add(&m, i, i % 2 ? 7 : 8, "null", 4), 0);
    ck_assert_uint_eq(gd_idmap_forget_client(&m, 7), 3);
    ck_assert_uint_eq(m.count, 3);
    ck_assert_ptr_null(gd_idmap_take(&m, 1));
    gd_idmap_entry_t *e = gd_idmap_take(&m, 2);
    ck_assert_uint_eq(e->client, 8);
    free(e);
    ck_assert_uint_eq(gd_idmap_forget_client(&m, 7), 0);
}
END_TEST

static uint64_t order[8];
static size_t n_order;

static void record(void *ctx, gd_idmap_entry_t *e)
{
    (void)ctx;
    order[n_order++] = e->hub_id;
    free(e);
}

START_TEST(drain_oldest_first)
{
    n_order = 0;
    for (uint64_t i = 1; i <= 4; i++)
        gd_idmap_add(&m, i * 10, 1, "1", 1);
    gd_idmap_drain(&m, record, NULL);
    ck_assert_uint_eq(n_order, 4);
    ck_assert_uint_eq(order[0], 10);
    ck_assert_uint_eq(order[3], 40);
    ck_assert_uint_eq(m.count, 0);
    ck_assert_ptr_null(m.head);
}
END_TEST

START_TEST(parse_hub_ids)
{
    uint64_t v = 0;
    ck_assert_int_eq(gd_idmap_parse("hub-17", &v), 0);
    ck_assert_uint_eq(v, 17);
    ck_assert_int_eq(gd_idmap_parse("hub-18446744073709551615", &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(gd_idmap_parse("hub-18446744073709551616", &v), -EINVAL);
    ck_assert_int_eq(gd_idmap_parse("hub-", &v), -EINVAL);
    ck_assert_int_eq(gd_idmap_parse("hub-07", &v), -EINVAL);
    ck_assert_int_eq(gd_idmap_parse("hub-1x", &v), -EINVAL);
    ck_assert_int_eq(gd_idmap_parse("17", &v), -EINVAL);
    ck_assert_int_eq(gd_idmap_parse("HUB-1", &v), -EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hub_idmap");
    TCase *tc = tcase_create("idmap");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, same_client_ids_stay_apart);
    tcase_add_test(tc, forget_client_drops_only_its_entries);
    tcase_add_test(tc, drain_oldest_first);
    tcase_add_test(tc, parse_hub_ids);
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
