/* Tests for qemu-ga's framing (transport/qga_framer) and the per-connection
 * choice of dialect (transport/qga_link). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/qga_link.h"

/* What the callbacks saw, as one text: "M:<value>|" for a qemu-ga message,
 * "L:<line>|" for a guestd line, "T|" too large (qemu-ga), "X|" cut by
 * 0xFF, "G|" a guestd line too large. */
static char seen[65536];
static size_t seen_len;
static gd_qga_framer_t fr;
static gd_qga_link_t link_;
static int reset_on_message;
static int pause_on_message;

static void note(const char *tag, const char *data, size_t len)
{
    int n = snprintf(seen + seen_len, sizeof(seen) - seen_len, "%s%.*s|", tag, (int)len, data);
    ck_assert_int_gt(n, 0);
    seen_len += (size_t)n;
}

static void on_message(void *ctx, char *text, size_t len)
{
    ck_assert_int_eq(text[len], '\0');
    note("M:", text, len);
    if (reset_on_message) gd_qga_framer_reset(&fr);
    if (pause_on_message) gd_qga_framer_pause(&fr);
}

static void on_error(void *ctx, gd_qga_frame_error_t what)
{
    note(what == GD_QGA_FRAME_TOO_LARGE ? "T" : what == GD_QGA_FRAME_TOO_DEEP ? "D" : "X", "", 0);
}

static void setup(void)
{
    seen[0] = '\0';
    seen_len = 0;
    reset_on_message = 0;
    pause_on_message = 0;
    gd_qga_framer_init(&fr, 64, on_message, on_error, NULL);
}

static void teardown(void)
{
    gd_qga_framer_free(&fr);
}

static void feed(const char *s)
{
    ck_assert_int_eq(gd_qga_framer_feed(&fr, s, strlen(s)), 0);
}

/* Feeds s one byte at a time. */
static void feed_bytes(const char *s)
{
    for (size_t i = 0; s[i]; i++)
        ck_assert_int_eq(gd_qga_framer_feed(&fr, s + i, 1), 0);
}

START_TEST(framer_object_without_newline_is_a_message)
{
    feed("{\"execute\":\"guest-ping\"}");
    ck_assert_str_eq(seen, "M:{\"execute\":\"guest-ping\"}|");
}
END_TEST

START_TEST(framer_splits_merged_objects_and_skips_whitespace)
{
    feed(" \r\n{\"a\":1}{\"b\":[1,{\"c\":2}]}\n\t{\"d\":3}\n");
    ck_assert_str_eq(seen, "M:{\"a\":1}|M:{\"b\":[1,{\"c\":2}]}|M:{\"d\":3}|");
}
END_TEST

START_TEST(framer_reassembles_byte_by_byte)
{
    feed_bytes("{\"execute\":\"guest-sync\",\"arguments\":{\"id\":5}}{\"x\":\"}\"}");
    ck_assert_str_eq(seen,
                     "M:{\"execute\":\"guest-sync\",\"arguments\":{\"id\":5}}|M:{\"x\":\"}\"}|");
}
END_TEST

START_TEST(framer_braces_and_quotes_inside_strings_do_not_count)
{
    feed("{\"s\":\"{[\\\"}]\\\\\"}{\"t\":1}");
    ck_assert_str_eq(seen, "M:{\"s\":\"{[\\\"}]\\\\\"}|M:{\"t\":1}|");
}
END_TEST

START_TEST(framer_ff_drops_a_partial_value_and_reports_it)
{
    feed("{\"execute\":\"gues\xff{\"execute\":\"guest-ping\"}");
    ck_assert_str_eq(seen, "X|M:{\"execute\":\"guest-ping\"}|");
}
END_TEST

START_TEST(framer_lone_ff_between_values_is_silent)
{
    feed("\xff\xff{\"a\":1}\n\xff{\"b\":2}");
    ck_assert_str_eq(seen, "M:{\"a\":1}|M:{\"b\":2}|");
}
END_TEST

START_TEST(framer_ff_inside_a_string_still_resyncs)
{
    feed("{\"a\":\"x\xff{\"b\":1}");
    ck_assert_str_eq(seen, "X|M:{\"b\":1}|");
}
END_TEST

START_TEST(framer_bare_words_strings_and_arrays_are_values)
{
    feed("junk {\"a\":1} 5 \"str\"[1,2]");
    /* A bare word ends at a delimiter: the 5 waits for one. */
    ck_assert_str_eq(seen, "M:junk|M:{\"a\":1}|M:5|M:\"str\"|M:[1,2]|");
    feed("7");
    ck_assert_str_eq(seen, "M:junk|M:{\"a\":1}|M:5|M:\"str\"|M:[1,2]|");
    feed("\n");
    ck_assert_str_eq(seen, "M:junk|M:{\"a\":1}|M:5|M:\"str\"|M:[1,2]|M:7|");
}
END_TEST

START_TEST(framer_too_large_is_reported_at_once_and_skipped)
{
    char big[200];
    memset(big, 'x', sizeof(big));
    memcpy(big, "{\"a\":\"", 6);
    big[sizeof(big) - 1] = '\0';
    feed(big);
    ck_assert_str_eq(seen, "T|"); /* before the value has ended */
    feed("{still inside the string}\"}{\"ok\":1}");
    ck_assert_str_eq(seen, "T|M:{\"ok\":1}|");
    ck_assert_uint_le(fr.buf.cap, 65); /* never more than the limit */
}
END_TEST

/* Nesting is bounded: a value deeper than GD_QGA_FRAME_MAX_DEPTH is
 * reported once and skipped to its end, its depth still followed (a size_t:
 * 2^31 '[' cannot wrap it); the next value is whole. */
START_TEST(framer_too_deep_is_reported_and_skipped)
{
    gd_qga_framer_free(&fr);
    gd_qga_framer_init(&fr, 1 << 20, on_message, on_error, NULL);
    size_t n = GD_QGA_FRAME_MAX_DEPTH;
    char *text = malloc(2 * (n + 2) + 16);
    memset(text, '[', n);
    memset(text + n, ']', n);
    text[2 * n] = '\0';
    feed(text); /* exactly the limit: a message */
    ck_assert_uint_eq(seen_len, 2 + 2 * n + 1);
    ck_assert_str_eq(seen + seen_len - 2, "]|");
    seen_len = 0;
    seen[0] = '\0';
    memset(text, '[', n + 1);
    text[n + 1] = '\0';
    feed(text);
    ck_assert_str_eq(seen, "D|"); /* at once, before the value ends */
    ck_assert_uint_eq(fr.depth, n + 1);
    feed("[{\"a\":\"]]]\"}"); /* still followed: strings and all */
    ck_assert_uint_eq(fr.depth, n + 2);
    memset(text, ']', n + 2);
    text[n + 2] = '\0';
    feed(text);
    ck_assert_uint_eq(fr.depth, 0);
    feed("{\"ok\":1}");
    ck_assert_str_eq(seen, "D|M:{\"ok\":1}|");
    /* Far past any int: the count goes on (2^31 brackets, fed as 1 MiB
     * chunks, would take seconds; the field's width is what matters). */
    ck_assert_uint_ge(sizeof(fr.depth), 8);
    free(text);
}
END_TEST

START_TEST(framer_exactly_the_limit_is_accepted)
{
    char v[65];
    memset(v, ' ', 64);
    v[0] = '{';
    v[63] = '}';
    v[64] = '\0';
    feed(v);
    ck_assert_int_eq(strncmp(seen, "M:{", 3), 0);
    ck_assert_uint_eq(seen_len, 2 + 64 + 1);
}
END_TEST

START_TEST(framer_reset_from_a_callback_ends_the_feed)
{
    reset_on_message = 1;
    feed("{\"a\":1}{\"b\":2}");
    ck_assert_str_eq(seen, "M:{\"a\":1}|");
    reset_on_message = 0;
    feed("{\"c\":3}");
    ck_assert_str_eq(seen, "M:{\"a\":1}|M:{\"c\":3}|");
}
END_TEST

/* The channel stops the framer once the replies owed pass the bound: the
 * feed says how much it took, the rest goes in again later. */
START_TEST(framer_pause_from_a_callback_ends_the_feed_after_the_value)
{
    pause_on_message = 1;
    const char *in = "{\"a\":1} 7 {\"b\":2}";
    size_t len = strlen(in);
    ck_assert_int_eq(gd_qga_framer_feed(&fr, in, len), 0);
    ck_assert_str_eq(seen, "M:{\"a\":1}|");
    ck_assert_uint_eq(fr.fed, 7);
    size_t off = fr.fed;
    ck_assert_int_eq(gd_qga_framer_feed(&fr, in + off, len - off), 0);
    ck_assert_str_eq(seen, "M:{\"a\":1}|M:7|");
    ck_assert_uint_eq(fr.fed, 3); /* " 7 ": the space that ended the word is taken */
    off += fr.fed;
    ck_assert_int_eq(gd_qga_framer_feed(&fr, in + off, len - off), 0);
    ck_assert_str_eq(seen, "M:{\"a\":1}|M:7|M:{\"b\":2}|");
    ck_assert_uint_eq(fr.fed, len - off);
}
END_TEST

/* ---- the link ---- */

static void l_line(void *ctx, char *line, size_t len)
{
    ck_assert_int_eq(line[len], '\0');
    note("L:", line, len);
}

static void l_too_large(void *ctx)
{
    note("G", "", 0);
}

static void l_message(void *ctx, char *text, size_t len)
{
    note("M:", text, len);
    if (pause_on_message) gd_qga_link_pause(&link_);
}

static void l_error(void *ctx, gd_qga_frame_error_t what)
{
    note(what == GD_QGA_FRAME_TOO_LARGE ? "T" : "X", "", 0);
}

static const gd_qga_link_cbs_t lcbs = {l_line, l_too_large, l_message, l_error};

static void link_with(gd_dialect_t d)
{
    gd_qga_link_init(&link_, d, 64, &lcbs, NULL);
}

static void lfeed(const char *s)
{
    char copy[4096];
    size_t n = strlen(s);
    memcpy(copy, s, n + 1);
    ck_assert_int_eq(gd_qga_link_feed(&link_, copy, n), 0);
}

static void link_teardown(void)
{
    gd_qga_link_free(&link_);
}

START_TEST(link_auto_guestd_request_takes_the_line_framer)
{
    link_with(GD_DIALECT_AUTO);
    lfeed("{\"id\":1,\"cmd\":\"ping\"}\n{\"id\":2,\"cmd\":\"info\"}\r\n");
    ck_assert_int_eq(link_.mode, GD_LINK_GUESTD);
    ck_assert_str_eq(seen, "L:{\"id\":1,\"cmd\":\"ping\"}|L:{\"id\":2,\"cmd\":\"info\"}|");
    link_teardown();
}
END_TEST

START_TEST(link_auto_guestd_keeps_line_semantics_after_the_object)
{
    /* Junk after the first object stays on its line, as guestd frames it. */
    link_with(GD_DIALECT_AUTO);
    lfeed("{\"cmd\":\"ping\"} junk");
    ck_assert_str_eq(seen, "");
    lfeed("\n");
    ck_assert_str_eq(seen, "L:{\"cmd\":\"ping\"} junk|");
    link_teardown();
}
END_TEST

START_TEST(link_auto_qemu_ga_request_without_newline)
{
    link_with(GD_DIALECT_AUTO);
    lfeed("{\"execute\":\"guest-ping\"}");
    ck_assert_int_eq(link_.mode, GD_LINK_QGA);
    ck_assert_str_eq(seen, "M:{\"execute\":\"guest-ping\"}|");
    lfeed("{\"execute\":\"guest-info\"}\n{\"cmd\":\"ping\"}");
    ck_assert_str_eq(seen, "M:{\"execute\":\"guest-ping\"}|M:{\"execute\":\"guest-info\"}|"
                           "M:{\"cmd\":\"ping\"}|");
    link_teardown();
}
END_TEST

START_TEST(link_auto_first_message_split_across_reads)
{
    link_with(GD_DIALECT_AUTO);
    lfeed("{\"exec");
    ck_assert_int_eq(link_.mode, GD_LINK_UNDECIDED);
    lfeed("ute\":\"guest-sync\",\"arguments\":{\"id\":1}");
    ck_assert_int_eq(link_.mode, GD_LINK_UNDECIDED);
    lfeed("}");
    ck_assert_int_eq(link_.mode, GD_LINK_QGA);
    ck_assert_str_eq(seen, "M:{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1}}|");
    link_teardown();
}
END_TEST

START_TEST(link_auto_ff_first_means_qemu_ga)
{
    link_with(GD_DIALECT_AUTO);
    lfeed("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":9}}");
    ck_assert_int_eq(link_.mode, GD_LINK_QGA);
    ck_assert_str_eq(seen, "M:{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":9}}|");
    link_teardown();
}
END_TEST

START_TEST(link_auto_junk_or_newline_inside_object_means_guestd)
{
    link_with(GD_DIALECT_AUTO);
    lfeed("hello\n");
    ck_assert_int_eq(link_.mode, GD_LINK_GUESTD);
    ck_assert_str_eq(seen, "L:hello|");
    link_teardown();
    seen[0] = '\0';
    seen_len = 0;
    link_with(GD_DIALECT_AUTO);
    lfeed("{\"execute\":\n\"guest-ping\"}\n");
    ck_assert_int_eq(link_.mode, GD_LINK_GUESTD);
    ck_assert_str_eq(seen, "L:{\"execute\":|L:\"guest-ping\"}|");
    link_teardown();
}
END_TEST

START_TEST(link_auto_oversized_first_line_is_guestd_too_large)
{
    link_with(GD_DIALECT_AUTO);
    char big[100];
    memset(big, 'a', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 1] = '\0';
    lfeed(big);
    ck_assert_int_eq(link_.mode, GD_LINK_GUESTD);
    ck_assert_str_eq(seen, "G|");
    lfeed("\n{\"cmd\":\"ping\"}\n");
    ck_assert_str_eq(seen, "G|L:{\"cmd\":\"ping\"}|");
    link_teardown();
}
END_TEST

START_TEST(link_reset_starts_a_new_choice)
{
    link_with(GD_DIALECT_AUTO);
    lfeed("{\"execute\":\"guest-ping\"}");
    ck_assert_int_eq(link_.mode, GD_LINK_QGA);
    lfeed("{\"execute\":");
    gd_qga_link_reset(&link_); /* the host went; a guestd host comes */
    ck_assert_int_eq(link_.mode, GD_LINK_UNDECIDED);
    lfeed("{\"cmd\":\"ping\"}\n");
    ck_assert_int_eq(link_.mode, GD_LINK_GUESTD);
    ck_assert_str_eq(seen, "M:{\"execute\":\"guest-ping\"}|L:{\"cmd\":\"ping\"}|");
    link_teardown();
}
END_TEST

START_TEST(link_pinned_dialects_never_guess)
{
    link_with(GD_DIALECT_GUESTD);
    lfeed("{\"execute\":\"guest-ping\"}\n");
    ck_assert_str_eq(seen, "L:{\"execute\":\"guest-ping\"}|");
    link_teardown();
    seen[0] = '\0';
    seen_len = 0;
    link_with(GD_DIALECT_QGA);
    lfeed("{\"cmd\":\"ping\"}");
    ck_assert_str_eq(seen, "M:{\"cmd\":\"ping\"}|");
    link_teardown();
}
END_TEST

/* Paused while replaying what came before the choice: the link keeps the
 * rest itself and gives it first at the next feed, even an empty one. */
START_TEST(link_pause_during_the_replay_keeps_the_rest)
{
    link_with(GD_DIALECT_AUTO);
    pause_on_message = 1;
    char in[] = "{\"execute\":\"a\"}{\"execute\":\"b\"}{\"execute\":\"c\"}";
    ck_assert_int_eq(gd_qga_link_feed(&link_, in, sizeof(in) - 1), 0);
    ck_assert_uint_eq(link_.fed, sizeof(in) - 1); /* all kept by the link */
    ck_assert_str_eq(seen, "M:{\"execute\":\"a\"}|");
    char more[] = "{\"execute\":\"d\"}";
    ck_assert_int_eq(gd_qga_link_feed(&link_, more, sizeof(more) - 1), 0);
    ck_assert_uint_eq(link_.fed, 0); /* paused on what it kept: nothing of more */
    ck_assert_str_eq(seen, "M:{\"execute\":\"a\"}|M:{\"execute\":\"b\"}|");
    pause_on_message = 0;
    ck_assert_int_eq(gd_qga_link_feed(&link_, more, 0), 0);
    ck_assert_str_eq(seen, "M:{\"execute\":\"a\"}|M:{\"execute\":\"b\"}|M:{\"execute\":\"c\"}|");
    ck_assert_int_eq(gd_qga_link_feed(&link_, more, sizeof(more) - 1), 0);
    ck_assert_uint_eq(link_.fed, sizeof(more) - 1);
    ck_assert_str_eq(seen, "M:{\"execute\":\"a\"}|M:{\"execute\":\"b\"}|M:{\"execute\":\"c\"}|"
                           "M:{\"execute\":\"d\"}|");
    link_teardown();
}
END_TEST

START_TEST(link_is_request)
{
    ck_assert(gd_qga_is_request("{\"execute\":\"x\"}", 15));
    ck_assert(gd_qga_is_request("{\"exec-oob\":\"x\"}", 16));
    ck_assert(!gd_qga_is_request("{\"cmd\":\"x\"}", 11));
    ck_assert(!gd_qga_is_request("[\"execute\"]", 11));
    ck_assert(!gd_qga_is_request("{\"execute\":", 11));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qga_framing");
    TCase *tc = tcase_create("framer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, framer_object_without_newline_is_a_message);
    tcase_add_test(tc, framer_splits_merged_objects_and_skips_whitespace);
    tcase_add_test(tc, framer_reassembles_byte_by_byte);
    tcase_add_test(tc, framer_braces_and_quotes_inside_strings_do_not_count);
    tcase_add_test(tc, framer_ff_drops_a_partial_value_and_reports_it);
    tcase_add_test(tc, framer_lone_ff_between_values_is_silent);
    tcase_add_test(tc, framer_ff_inside_a_string_still_resyncs);
    tcase_add_test(tc, framer_bare_words_strings_and_arrays_are_values);
    tcase_add_test(tc, framer_too_deep_is_reported_and_skipped);
    tcase_add_test(tc, framer_too_large_is_reported_at_once_and_skipped);
    tcase_add_test(tc, framer_exactly_the_limit_is_accepted);
    tcase_add_test(tc, framer_reset_from_a_callback_ends_the_feed);
    tcase_add_test(tc, framer_pause_from_a_callback_ends_the_feed_after_the_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("link");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, link_auto_guestd_request_takes_the_line_framer);
    tcase_add_test(tc, link_auto_guestd_keeps_line_semantics_after_the_object);
    tcase_add_test(tc, link_auto_qemu_ga_request_without_newline);
    tcase_add_test(tc, link_auto_first_message_split_across_reads);
    tcase_add_test(tc, link_auto_ff_first_means_qemu_ga);
    tcase_add_test(tc, link_auto_junk_or_newline_inside_object_means_guestd);
    tcase_add_test(tc, link_auto_oversized_first_line_is_guestd_too_large);
    tcase_add_test(tc, link_reset_starts_a_new_choice);
    tcase_add_test(tc, link_pinned_dialects_never_guess);
    tcase_add_test(tc, link_pause_during_the_replay_keeps_the_rest);
    tcase_add_test(tc, link_is_request);
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
