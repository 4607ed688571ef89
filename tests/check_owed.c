/* Tests for the replies owed (core/owed.c): what a reservation may take of
 * the out-queue's bound, who waits, in which order, and when the channel
 * may read again. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "core/owed.h"

static gd_owed_t o;
static size_t queued;
static int rooms;
static char order[16];
static int norder;

static size_t get_queued(void *ctx)
{
    return queued;
}

static void on_room(void *ctx)
{
    rooms++;
}

typedef struct {
    gd_owed_waiter_t w;
    char name;
    int status;
} waiter_t;

static void on_granted(gd_owed_waiter_t *w, int status)
{
    waiter_t *x = (waiter_t *)w;
    x->status = status;
    order[norder++] = x->name;
}

static void setup(void)
{
    queued = 0;
    rooms = 0;
    norder = 0;
    gd_owed_init(&o, 1000, get_queued, on_room, NULL);
}

static waiter_t waiter(char name)
{
    waiter_t x = {{NULL, 0, on_granted}, name, 99};
    return x;
}

START_TEST(test_within_the_bound_granted_at_once)
{
    waiter_t a = waiter('a'), b = waiter('b');
    queued = 300;
    ck_assert_int_eq(gd_owed_reserve(&o, &a.w, 400), 0);
    ck_assert_int_eq(gd_owed_reserve(&o, &b.w, 300), 0);
    ck_assert_uint_eq(o.reserved, 700);
    ck_assert(gd_owed_admitting(&o, queued)); /* 1000: at the bound, not over */
    queued = 301;
    ck_assert(!gd_owed_admitting(&o, queued));
    ck_assert_int_eq(norder, 0); /* granted now: no callback */
}
END_TEST

START_TEST(test_over_the_bound_waits_and_stops_reading)
{
    waiter_t a = waiter('a'), b = waiter('b'), c = waiter('c');
    ck_assert_int_eq(gd_owed_reserve(&o, &a.w, 800), 0);
    ck_assert_int_eq(gd_owed_reserve(&o, &b.w, 300), 1);
    ck_assert_int_eq(gd_owed_reserve(&o, &c.w, 1), 1); /* behind b, though it would fit */
    ck_assert(!gd_owed_admitting(&o, 0));
    ck_assert_uint_eq(o.waits, 2);
    gd_owed_run(&o);
    ck_assert_int_eq(norder, 0);
    gd_owed_release(&o, 800);
    ck_assert_int_eq(rooms, 1);  /* the owner is told, and runs later */
    ck_assert_int_eq(norder, 0); /* never from inside release */
    gd_owed_run(&o);
    ck_assert_int_eq(norder, 2);
    ck_assert_int_eq(order[0], 'b');
    ck_assert_int_eq(order[1], 'c');
    ck_assert_int_eq(b.status, 0);
    ck_assert_uint_eq(o.reserved, 301);
    ck_assert(gd_owed_admitting(&o, 0));
}
END_TEST

START_TEST(test_larger_than_the_bound_goes_alone)
{
    waiter_t a = waiter('a'), big = waiter('B');
    ck_assert_int_eq(gd_owed_reserve(&o, &big.w, 5000), 0); /* nothing owed: granted */
    gd_owed_release(&o, 5000);
    ck_assert_int_eq(gd_owed_reserve(&o, &a.w, 10), 0);
    ck_assert_int_eq(gd_owed_reserve(&o, &big.w, 5000), 1);
    gd_owed_release(&o, 10);
    queued = 1; /* one byte still queued: not alone yet */
    gd_owed_run(&o);
    ck_assert_int_eq(norder, 0);
    queued = 0;
    gd_owed_poke(&o);
    gd_owed_run(&o);
    ck_assert_int_eq(norder, 1);
    ck_assert_uint_eq(o.reserved, 5000);
}
END_TEST

START_TEST(test_close_cancels_the_waiters)
{
    waiter_t a = waiter('a'), b = waiter('b');
    ck_assert_int_eq(gd_owed_reserve(&o, &a.w, 1000), 0);
    ck_assert_int_eq(gd_owed_reserve(&o, &b.w, 1), 1);
    gd_owed_close(&o);
    ck_assert_int_eq(norder, 1);
    ck_assert_int_eq(b.status, -ECANCELED);
    ck_assert_uint_eq(o.reserved, 1000);
    waiter_t c = waiter('c');
    ck_assert_int_eq(gd_owed_reserve(&o, &c.w, 5000), 0); /* stopping: never waits */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("owed");
    TCase *tc = tcase_create("reserve");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_within_the_bound_granted_at_once);
    tcase_add_test(tc, test_over_the_bound_waits_and_stops_reading);
    tcase_add_test(tc, test_larger_than_the_bound_goes_alone);
    tcase_add_test(tc, test_close_cancels_the_waiters);
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
