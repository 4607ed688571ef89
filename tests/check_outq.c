/* Tests for transport/outq: responses kept, events dropped oldest first, no
 * torn lines, partial writes resumed byte-exactly. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/bus.h"
#include "transport/outq.h"

static gd_outq_t q;
static gd_buf_t want; /* the byte stream the host should read */

static void setup(void)
{
    gd_outq_init(&q, 1 << 20);
    gd_buf_init(&want);
}

static void teardown(void)
{
    gd_outq_clear(&q);
    gd_buf_free(&want);
}

/* Events of the same shape and one-digit seq all have the same length. */
static gd_event_t *event(uint64_t seq)
{
    gd_event_t *ev = gd_event_new_raw("metrics", seq, 1700000000000, "{\"load1\":0.5}", 13);
    ck_assert_ptr_nonnull(ev);
    ck_assert_int_eq(ev->refs, 1);
    ck_assert_int_eq(ev->line[ev->len - 1], '\n');
    return ev;
}

static size_t event_len(void)
{
    gd_event_t *ev = event(1);
    size_t len = ev->len;
    gd_event_unref(ev);
    return len;
}

/* Writes everything with writes of the given sizes in turn (a write is cut
 * to what peek offers, as write(2) would take at most that). */
static void drain(gd_buf_t *got, const size_t *sizes, size_t nsizes)
{
    size_t i = 0;
    for (;;) {
        const char *data;
        size_t avail = gd_outq_peek(&q, &data);
        if (avail == 0) break;
        ck_assert_uint_le(avail, q.bytes);
        ck_assert_uint_le(q.event_bytes, q.bytes);
        size_t n = sizes[i++ % nsizes];
        if (n > avail) n = avail;
        ck_assert_int_eq(gd_buf_append(got, data, n), 0);
        size_t before = q.bytes;
        gd_outq_advance(&q, n);
        ck_assert_uint_eq(q.bytes, before - n);
    }
    ck_assert(gd_outq_empty(&q));
    ck_assert_uint_eq(q.bytes, 0);
    ck_assert_uint_eq(q.event_bytes, 0);
    ck_assert_uint_eq(q.queued_lines, 0);
    ck_assert_uint_eq(q.head_off, 0);
}

static void drain_all_and_compare(void)
{
    static const size_t whole[] = {SIZE_MAX};
    gd_buf_t got;
    gd_buf_init(&got);
    drain(&got, whole, 1);
    ck_assert_uint_eq(got.len, want.len);
    ck_assert_mem_eq(got.data, want.data, want.len);
    gd_buf_free(&got);
}

static void push_response(const char *line)
{
    ck_assert_int_eq(gd_outq_push_response(&q, line, strlen(line)), 0);
}

/* Pushes ev and lets the queue hold the only reference left. */
static void push_event(gd_event_t *ev)
{
    ck_assert_int_eq(gd_outq_push_event(&q, ev), 0);
    gd_event_unref(ev);
}

static void expect(const char *data, size_t len)
{
    ck_assert_int_eq(gd_buf_append(&want, data, len), 0);
}

static void expect_event(const gd_event_t *ev)
{
    expect(ev->line, ev->len);
}

/* ---- order and partial writes ---- */

START_TEST(test_empty)
{
    const char *data = "x";
    ck_assert(gd_outq_empty(&q));
    ck_assert_uint_eq(gd_outq_peek(&q, &data), 0);
    gd_outq_advance(&q, 0);
    ck_assert_uint_eq(gd_outq_clear(&q), 0);
    ck_assert(!gd_outq_over_limit(&q));
}
END_TEST

START_TEST(test_order_preserved)
{
    gd_event_t *e1 = event(1), *e2 = event(2);
    push_response("{\"id\":1,\"result\":{}}\n");
    expect("{\"id\":1,\"result\":{}}\n", 21);
    expect_event(e1);
    push_event(e1);
    push_response("{\"id\":2,\"result\":{}}\n");
    expect("{\"id\":2,\"result\":{}}\n", 21);
    expect_event(e2);
    push_event(e2);
    ck_assert_uint_eq(q.queued_lines, 4);
    ck_assert_uint_eq(q.bytes, want.len);
    ck_assert_uint_eq(q.event_bytes, want.len - 42);
    drain_all_and_compare();
}
END_TEST

START_TEST(test_peek_offers_rest_of_head_only)
{
    push_response("{\"id\":1}\n");
    push_response("{\"id\":2}\n");
    const char *data;
    ck_assert_uint_eq(gd_outq_peek(&q, &data), 9);
    ck_assert_mem_eq(data, "{\"id\":1}\n", 9);
    gd_outq_advance(&q, 4);
    ck_assert_uint_eq(q.head_off, 4);
    ck_assert_uint_eq(gd_outq_peek(&q, &data), 5);
    ck_assert_mem_eq(data, "\":1}\n", 5);
    gd_outq_advance(&q, 5);
    ck_assert_uint_eq(q.head_off, 0);
    ck_assert_uint_eq(q.queued_lines, 1);
    ck_assert_uint_eq(gd_outq_peek(&q, &data), 9);
    ck_assert_mem_eq(data, "{\"id\":2}\n", 9);
}
END_TEST

START_TEST(test_odd_partial_writes_reassemble)
{
    static const size_t sizes[] = {1, 3, 7, 2, 13, 5, 31, 1, 1, 64, 17};
    for (int i = 0; i < 50; i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "{\"id\":%d,\"result\":\"%.*s\"}\n", i, i % 17,
                         "abcdefghijklmnopq");
        push_response(line);
        expect(line, (size_t)n);
        gd_event_t *ev = event((uint64_t)(i % 10));
        expect_event(ev);
        push_event(ev);
    }
    gd_buf_t got;
    gd_buf_init(&got);
    drain(&got, sizes, sizeof(sizes) / sizeof(sizes[0]));
    ck_assert_uint_eq(got.len, want.len);
    ck_assert_mem_eq(got.data, want.data, want.len);
    gd_buf_free(&got);
}
END_TEST

START_TEST(test_event_bytes_point_at_event)
{
    gd_event_t *ev = event(1);
    ck_assert_int_eq(gd_outq_push_event(&q, ev), 0);
    ck_assert_int_eq(ev->refs, 2);
    const char *data;
    ck_assert_uint_eq(gd_outq_peek(&q, &data), ev->len);
    ck_assert_ptr_eq(data, ev->line); /* referenced, not copied */
    gd_outq_advance(&q, ev->len);
    ck_assert_int_eq(ev->refs, 1);
    gd_event_unref(ev);
}
END_TEST

START_TEST(test_response_is_copied)
{
    char line[] = "{\"id\":1}\n";
    ck_assert_int_eq(gd_outq_push_response(&q, line, sizeof(line) - 1), 0);
    memset(line, 'z', sizeof(line) - 1);
    expect("{\"id\":1}\n", 9);
    drain_all_and_compare();
}
END_TEST

/* ---- the bound ---- */

START_TEST(test_events_dropped_oldest_first)
{
    size_t L = event_len();
    q.limit = 3 * L;
    gd_event_t *ev[6];
    for (int i = 0; i < 6; i++) {
        ev[i] = event((uint64_t)i + 1);
        gd_event_ref(ev[i]);
        push_event(ev[i]);
        ck_assert_uint_le(q.bytes, q.limit);
    }
    ck_assert_uint_eq(q.dropped_events, 3);
    ck_assert_uint_eq(q.queued_lines, 3);
    ck_assert_uint_eq(q.bytes, 3 * L);
    /* The dropped ones were released, the kept ones are still referenced. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ev[i]->refs, 1);
    for (int i = 3; i < 6; i++) {
        ck_assert_int_eq(ev[i]->refs, 2);
        expect_event(ev[i]);
    }
    drain_all_and_compare();
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(ev[i]->refs, 1);
        gd_event_unref(ev[i]);
    }
}
END_TEST

START_TEST(test_unstarted_head_event_may_be_dropped)
{
    size_t L = event_len();
    q.limit = 2 * L;
    gd_event_t *e1 = event(1), *e2 = event(2), *e3 = event(3);
    push_event(e1);
    expect_event(e2);
    push_event(e2);
    expect_event(e3);
    push_event(e3);
    ck_assert_uint_eq(q.dropped_events, 1);
    drain_all_and_compare();
}
END_TEST

START_TEST(test_head_in_progress_never_dropped)
{
    size_t L = event_len();
    q.limit = 2 * L;
    gd_event_t *e1 = event(1);
    gd_buf_t got;
    gd_buf_init(&got);
    expect_event(e1);
    push_event(e1);
    /* The writer got 5 bytes of e1 out, then EAGAIN. */
    const char *data;
    ck_assert_uint_eq(gd_outq_peek(&q, &data), L);
    ck_assert_int_eq(gd_buf_append(&got, data, 5), 0);
    gd_outq_advance(&q, 5);

    gd_event_t *last = NULL;
    for (int i = 2; i <= 9; i++) {
        gd_event_t *ev = event((uint64_t)i);
        if (i == 9) last = gd_event_ref(ev);
        push_event(ev);
        ck_assert_uint_le(q.bytes, q.limit);
        ck_assert_uint_eq(q.head_off, 5); /* still e1, still half-written */
    }
    /* e1's rest and e9 fit (2L - 5); e2..e8 went, oldest first. */
    ck_assert_uint_eq(q.dropped_events, 7);
    ck_assert_uint_eq(q.queued_lines, 2);
    expect_event(last);
    gd_event_unref(last);

    static const size_t whole[] = {SIZE_MAX};
    drain(&got, whole, 1);
    /* The host reads e1 whole, then e9: no torn line. */
    ck_assert_uint_eq(got.len, want.len);
    ck_assert_mem_eq(got.data, want.data, want.len);
    gd_buf_free(&got);
}
END_TEST

START_TEST(test_head_in_progress_bigger_than_limit_kept)
{
    size_t L = event_len();
    q.limit = L / 2;
    gd_event_t *e1 = event(1);
    gd_event_ref(e1);
    push_event(e1);
    /* Alone and unstarted over the limit: dropped at once. */
    ck_assert_uint_eq(q.dropped_events, 1);
    ck_assert(gd_outq_empty(&q));
    ck_assert_int_eq(e1->refs, 1);

    q.limit = L;
    push_event(e1); /* the queue now holds the only reference */
    gd_outq_advance(&q, 1);
    q.limit = 0; /* whatever the bound, a started line is finished */
    gd_event_t *e2 = event(2);
    push_event(e2);
    ck_assert_uint_eq(q.dropped_events, 2);
    ck_assert_uint_eq(q.queued_lines, 1);
    ck_assert_uint_eq(q.bytes, L - 1);
    ck_assert_uint_eq(q.event_bytes, L - 1);
}
END_TEST

START_TEST(test_responses_kept_over_limit)
{
    q.limit = 16;
    for (int i = 0; i < 10; i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "{\"id\":%d,\"result\":{\"ok\":true}}\n", i);
        push_response(line);
        expect(line, (size_t)n);
    }
    ck_assert(gd_outq_over_limit(&q));
    ck_assert_uint_eq(q.queued_lines, 10);
    /* An event behind them does not fit; it goes, they stay. */
    push_event(event(1));
    ck_assert_uint_eq(q.dropped_events, 1);
    ck_assert_uint_eq(q.queued_lines, 10);
    ck_assert_uint_eq(q.event_bytes, 0);
    drain_all_and_compare();
    ck_assert(!gd_outq_over_limit(&q));
}
END_TEST

START_TEST(test_events_between_responses_dropped_responses_kept)
{
    size_t L = event_len();
    q.limit = 2 * L + 40;
    gd_event_t *e3 = event(3), *e4 = event(4);
    push_response("{\"id\":1}\n");
    expect("{\"id\":1}\n", 9);
    push_event(event(1));
    push_response("{\"id\":2}\n");
    expect("{\"id\":2}\n", 9);
    push_event(event(2));
    expect_event(e3);
    push_event(e3); /* 18 + 3L > limit: e1 goes */
    ck_assert_uint_eq(q.dropped_events, 1);
    expect_event(e4);
    push_event(e4); /* e2 goes */
    ck_assert_uint_eq(q.dropped_events, 2);
    ck_assert_uint_eq(q.queued_lines, 4);
    drain_all_and_compare();
}
END_TEST

START_TEST(test_response_push_drops_events)
{
    size_t L = event_len();
    q.limit = 2 * L;
    gd_event_t *e2 = event(2);
    push_event(event(1));
    expect_event(e2);
    push_event(e2);
    ck_assert_uint_eq(q.dropped_events, 0);
    /* A response that does not fit makes room by dropping the oldest event,
     * so over_limit means "responses alone fill the bound". */
    push_response("{\"id\":7}\n");
    expect("{\"id\":7}\n", 9);
    ck_assert_uint_eq(q.dropped_events, 1);
    ck_assert(!gd_outq_over_limit(&q));
    drain_all_and_compare();
}
END_TEST

START_TEST(test_tail_kept_right_after_drops)
{
    /* Dropping the last item must leave the tail valid for the next push. */
    q.limit = 9;
    push_response("{\"id\":1}\n");
    push_event(event(1)); /* dropped: it was the tail */
    ck_assert_uint_eq(q.dropped_events, 1);
    push_response("{\"id\":2}\n");
    expect("{\"id\":1}\n{\"id\":2}\n", 18);
    drain_all_and_compare();
}
END_TEST

/* ---- clear ---- */

START_TEST(test_clear_frees_everything)
{
    gd_event_t *kept = event(1);
    ck_assert_int_eq(gd_outq_push_event(&q, kept), 0);
    push_response("{\"id\":1}\n");
    push_event(event(2));
    push_response("{\"id\":2}\n");
    gd_outq_advance(&q, 3); /* the host left mid-line */
    ck_assert_int_eq(kept->refs, 2);
    ck_assert_uint_eq(gd_outq_clear(&q), 4);
    ck_assert_int_eq(kept->refs, 1);
    ck_assert(gd_outq_empty(&q));
    ck_assert_uint_eq(q.bytes, 0);
    ck_assert_uint_eq(q.event_bytes, 0);
    ck_assert_uint_eq(q.head_off, 0);
    ck_assert_uint_eq(q.queued_lines, 0);
    const char *data;
    ck_assert_uint_eq(gd_outq_peek(&q, &data), 0);
    gd_event_unref(kept);

    /* Usable again, from a clean line boundary. */
    push_response("{\"id\":3}\n");
    expect("{\"id\":3}\n", 9);
    drain_all_and_compare();
}
END_TEST

START_TEST(test_clear_keeps_drop_count)
{
    q.limit = 0;
    push_event(event(1));
    ck_assert_uint_eq(q.dropped_events, 1);
    gd_outq_clear(&q);
    ck_assert_uint_eq(q.dropped_events, 1);
    ck_assert_uint_eq(q.limit, 0);
}
END_TEST

static Suite *outq_suite(void)
{
    Suite *s = suite_create("outq");

    TCase *tc = tcase_create("order");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_order_preserved);
    tcase_add_test(tc, test_peek_offers_rest_of_head_only);
    tcase_add_test(tc, test_odd_partial_writes_reassemble);
    tcase_add_test(tc, test_event_bytes_point_at_event);
    tcase_add_test(tc, test_response_is_copied);
    suite_add_tcase(s, tc);

    tc = tcase_create("bound");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_events_dropped_oldest_first);
    tcase_add_test(tc, test_unstarted_head_event_may_be_dropped);
    tcase_add_test(tc, test_head_in_progress_never_dropped);
    tcase_add_test(tc, test_head_in_progress_bigger_than_limit_kept);
    tcase_add_test(tc, test_responses_kept_over_limit);
    tcase_add_test(tc, test_events_between_responses_dropped_responses_kept);
    tcase_add_test(tc, test_response_push_drops_events);
    tcase_add_test(tc, test_tail_kept_right_after_drops);
    suite_add_tcase(s, tc);

    tc = tcase_create("clear");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_clear_frees_everything);
    tcase_add_test(tc, test_clear_keeps_drop_count);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(outq_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
