/* Check suite for agent/history: the ring of "metrics" events behind
 * metrics.history, fed by a real bus on a real loop. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/history.h"

static uv_loop_t loop;
static gd_bus_t bus;
static int64_t clock_ms = 1795317741000LL;

static int64_t fake_clock(void)
{
    return clock_ms;
}

static void bus_setup(void)
{
    ck_assert_uint_eq(gd_event_live_count(), 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(gd_bus_init(&bus, &loop), 0);
    bus.now_ms = fake_clock;
}

static void bus_teardown(void)
{
    gd_bus_close(&bus, NULL);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_uint_eq(gd_event_live_count(), 0); /* every reference dropped */
}

/* Publishes a metrics sample {"n":N} one second after the previous. */
static uint64_t publish_sample(int n)
{
    char data[32];
    int len = snprintf(data, sizeof(data), "{\"n\":%d}", n);
    clock_ms += 1000;
    uint64_t seq = gd_bus_publish_raw(&bus, "metrics", data, (size_t)len);
    ck_assert_uint_gt(seq, 0);
    return seq;
}

static void deliver(void)
{
    for (int i = 0; i < 3; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

/* "seq:n seq:n ..." of a query's result, and checks the shape. */
static void describe(cJSON *result, char *out, size_t len)
{
    out[0] = '\0';
    const cJSON *samples = cJSON_GetObjectItem(result, "samples");
    ck_assert(cJSON_IsArray(samples));
    /* data is raw JSON: print and parse back to see it is the sample. */
    char *text = cJSON_PrintUnformatted(result);
    cJSON *parsed = cJSON_Parse(text);
    ck_assert_ptr_nonnull(parsed);
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(parsed, "samples"))
    {
        const cJSON *seq = cJSON_GetObjectItem(s, "seq");
        const cJSON *ts = cJSON_GetObjectItem(s, "ts");
        const cJSON *n = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "data"), "n");
        ck_assert(cJSON_IsNumber(seq) && cJSON_IsNumber(ts) && cJSON_IsNumber(n));
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%d:%d", used ? " " : "", (int)seq->valuedouble,
                 n->valueint);
    }
    cJSON_Delete(parsed);
    cJSON_free(text);
    cJSON_Delete(result);
}

START_TEST(test_keeps_the_last_capacity_samples_oldest_first)
{
    gd_history_t *h;
    char got[256], want[256];
    ck_assert_int_eq(gd_history_new(&h, &bus, 3), 0);
    uint64_t first = publish_sample(1);
    publish_sample(2);
    gd_bus_publish(&bus, "health", NULL); /* not a sample: not kept */
    publish_sample(3);
    publish_sample(4);
    publish_sample(5);
    deliver();
    describe(gd_history_query(h, 0, 0), got, sizeof(got));
    /* seqs: 1 2 (health 3) 4 5 6 -> the last three samples. */
    snprintf(want, sizeof(want), "%d:3 %d:4 %d:5", (int)first + 3, (int)first + 4, (int)first + 5);
    ck_assert_str_eq(got, want);
    gd_history_free(h);
}
END_TEST

START_TEST(test_since_seq_and_limit_page_forward)
{
    gd_history_t *h;
    char got[256], want[256];
    ck_assert_int_eq(gd_history_new(&h, &bus, 10), 0);
    uint64_t s1 = publish_sample(1);
    publish_sample(2);
    publish_sample(3);
    publish_sample(4);
    deliver();
    /* since_seq is exclusive. */
    describe(gd_history_query(h, s1 + 1, 0), got, sizeof(got));
    snprintf(want, sizeof(want), "%d:3 %d:4", (int)s1 + 2, (int)s1 + 3);
    ck_assert_str_eq(got, want);
    /* limit takes the oldest, so the next page starts after the last seq. */
    describe(gd_history_query(h, 0, 2), got, sizeof(got));
    snprintf(want, sizeof(want), "%d:1 %d:2", (int)s1, (int)s1 + 1);
    ck_assert_str_eq(got, want);
    describe(gd_history_query(h, s1 + 1, 2), got, sizeof(got));
    snprintf(want, sizeof(want), "%d:3 %d:4", (int)s1 + 2, (int)s1 + 3);
    ck_assert_str_eq(got, want);
    describe(gd_history_query(h, s1 + 3, 2), got, sizeof(got));
    ck_assert_str_eq(got, "");
    gd_history_free(h);
}
END_TEST

START_TEST(test_ts_is_the_events)
{
    gd_history_t *h;
    ck_assert_int_eq(gd_history_new(&h, &bus, 4), 0);
    publish_sample(7);
    deliver();
    cJSON *r = gd_history_query(h, 0, 0);
    const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "samples"), 0);
    ck_assert_double_eq(cJSON_GetObjectItem(s, "ts")->valuedouble, (double)clock_ms);
    ck_assert(cJSON_IsRaw(cJSON_GetObjectItem(s, "data")));
    ck_assert_str_eq(cJSON_GetObjectItem(s, "data")->valuestring, "{\"n\":7}");
    cJSON_Delete(r);
    gd_history_free(h);
}
END_TEST

START_TEST(test_capacity_zero_keeps_nothing)
{
    gd_history_t *h;
    char got[64];
    ck_assert_int_eq(gd_history_new(&h, &bus, 0), 0);
    publish_sample(1);
    deliver();
    describe(gd_history_query(h, 0, 0), got, sizeof(got));
    ck_assert_str_eq(got, "");
    gd_history_free(h);
}
END_TEST

START_TEST(test_free_drops_references_and_unsubscribes)
{
    gd_history_t *h;
    ck_assert_int_eq(gd_history_new(&h, &bus, 5), 0);
    publish_sample(1);
    publish_sample(2);
    deliver();
    ck_assert_uint_eq(gd_event_live_count(), 2);
    publish_sample(3); /* queued for the history, not yet delivered */
    gd_history_free(h);
    deliver();
    publish_sample(4); /* nobody listens any more */
    deliver();
    ck_assert_uint_eq(gd_event_live_count(), 0);
    ck_assert_uint_eq(gd_bus_total_lagged(&bus), 0);
}
END_TEST

START_TEST(test_bursts_do_not_lag)
{
    /* Many events between two delivery passes (exec output) must not make
     * the history count as a lagging subscriber. */
    gd_history_t *h;
    char got[256];
    ck_assert_int_eq(gd_history_new(&h, &bus, 2), 0);
    for (int i = 0; i < 200; i++)
        gd_bus_publish(&bus, "exec.output", NULL);
    publish_sample(1);
    deliver();
    ck_assert_uint_eq(gd_bus_total_lagged(&bus), 0);
    describe(gd_history_query(h, 0, 0), got, sizeof(got));
    ck_assert_ptr_nonnull(strstr(got, ":1"));
    gd_history_free(h);
}
END_TEST

static Suite *history_suite(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("ring");
    tcase_add_checked_fixture(tc, bus_setup, bus_teardown);
    tcase_add_test(tc, test_keeps_the_last_capacity_samples_oldest_first);
    tcase_add_test(tc, test_since_seq_and_limit_page_forward);
    tcase_add_test(tc, test_ts_is_the_events);
    tcase_add_test(tc, test_capacity_zero_keeps_nothing);
    tcase_add_test(tc, test_free_drops_references_and_unsubscribes);
    tcase_add_test(tc, test_bursts_do_not_lag);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(history_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
