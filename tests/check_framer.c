/* Tests for transport/framer: lines out of bytes split and merged anyhow. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/framer.h"

/* What the callbacks saw, in order. A too_large report is an entry with
 * too_large set and no bytes. */
typedef struct {
    int too_large;
    char *data;
    size_t len;
    const char *ptr; /* where the framer's pointer pointed */
} entry_t;

typedef struct {
    entry_t *v;
    size_t n, cap;
    size_t lines, too_large;
    gd_framer_t *framer;
    int reset_on_line; /* reset the framer from inside on_line */
    int pause_on_line; /* pause the framer from inside on_line */
} rec_t;

static gd_framer_t fr;
static rec_t rec;

static void rec_push(rec_t *r, entry_t e)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = realloc(r->v, r->cap * sizeof(*r->v));
        ck_assert_ptr_nonnull(r->v);
    }
    r->v[r->n++] = e;
}

static void on_line(void *ctx, char *line, size_t len)
{
    rec_t *r = ctx;
    ck_assert_int_eq(line[len], '\0');
    entry_t e = {0, malloc(len + 1), len, line};
    ck_assert_ptr_nonnull(e.data);
    memcpy(e.data, line, len + 1);
    rec_push(r, e);
    r->lines++;
    if (r->reset_on_line) gd_framer_reset(r->framer);
    if (r->pause_on_line) gd_framer_pause(r->framer);
}

static void on_too_large(void *ctx)
{
    rec_t *r = ctx;
    entry_t e = {1, NULL, 0, NULL};
    rec_push(r, e);
    r->too_large++;
}

static void setup_with(size_t max_line)
{
    memset(&rec, 0, sizeof(rec));
    rec.framer = &fr;
    gd_framer_init(&fr, max_line, on_line, on_too_large, &rec);
}

static void setup(void)
{
    setup_with(1024);
}

static void teardown(void)
{
    for (size_t i = 0; i < rec.n; i++)
        free(rec.v[i].data);
    free(rec.v);
    gd_framer_free(&fr);
}

/* Feeds a copy of s (the framer writes into what it is fed). */
static int feed_n(const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    int rc = gd_framer_feed(&fr, copy, len);
    free(copy);
    return rc;
}

static int feed(const char *s)
{
    return feed_n(s, strlen(s));
}

static void assert_line(size_t i, const char *want)
{
    ck_assert_uint_lt(i, rec.n);
    ck_assert_msg(!rec.v[i].too_large, "entry %zu is too_large, wanted \"%s\"", i, want);
    ck_assert_uint_eq(rec.v[i].len, strlen(want));
    ck_assert_mem_eq(rec.v[i].data, want, rec.v[i].len);
}

static void assert_too_large(size_t i)
{
    ck_assert_uint_lt(i, rec.n);
    ck_assert_msg(rec.v[i].too_large, "entry %zu is a line, wanted too_large", i);
}

/* ---- basic lines ---- */

START_TEST(test_one_line)
{
    ck_assert_int_eq(feed("{\"id\":1}\n"), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "{\"id\":1}");
}
END_TEST

START_TEST(test_no_newline_no_line)
{
    ck_assert_int_eq(feed("{\"id\":1}"), 0);
    ck_assert_uint_eq(rec.n, 0);
    ck_assert_int_eq(feed("\n"), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "{\"id\":1}");
}
END_TEST

START_TEST(test_split_and_merged)
{
    ck_assert_int_eq(feed("ab"), 0);
    ck_assert_int_eq(feed("c\nde"), 0);
    ck_assert_int_eq(feed("f\ngh\nij"), 0);
    ck_assert_int_eq(feed("\n"), 0);
    ck_assert_uint_eq(rec.n, 4);
    assert_line(0, "abc");
    assert_line(1, "def");
    assert_line(2, "gh");
    assert_line(3, "ij");
}
END_TEST

START_TEST(test_one_byte_feeds)
{
    const char *stream = "{\"id\":1}\n\r\n{\"id\":22}\r\n\n{\"method\":\"ping\"}\nx\n";
    for (const char *p = stream; *p; p++)
        ck_assert_int_eq(feed_n(p, 1), 0);
    ck_assert_uint_eq(rec.n, 4);
    assert_line(0, "{\"id\":1}");
    assert_line(1, "{\"id\":22}");
    assert_line(2, "{\"method\":\"ping\"}");
    assert_line(3, "x");
}
END_TEST

START_TEST(test_thousand_lines_one_feed)
{
    gd_buf_t in;
    gd_buf_init(&in);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(gd_buf_printf(&in, "{\"id\":%d}\n", i), 0);
    /* Fed directly, so the pointers can be checked against the input. */
    ck_assert_int_eq(gd_framer_feed(&fr, in.data, in.len), 0);
    ck_assert_uint_eq(rec.n, 1000);
    for (int i = 0; i < 1000; i++) {
        char want[32];
        snprintf(want, sizeof(want), "{\"id\":%d}", i);
        assert_line((size_t)i, want);
        /* Whole lines inside the chunk are passed in place, not copied. */
        ck_assert(rec.v[i].ptr >= in.data && rec.v[i].ptr < in.data + in.len);
    }
    /* Nothing was left over, so nothing was ever buffered. */
    ck_assert_uint_eq(fr.buf.cap, 0);
    gd_buf_free(&in);
}
END_TEST

START_TEST(test_in_place_overwrites_only_terminators)
{
    char in[] = "ab\r\ncd\nef";
    ck_assert_int_eq(gd_framer_feed(&fr, in, sizeof(in) - 1), 0);
    ck_assert_uint_eq(rec.n, 2);
    ck_assert_ptr_eq(rec.v[0].ptr, in);
    ck_assert_ptr_eq(rec.v[1].ptr, in + 4);
    ck_assert_mem_eq(in, "ab\0\0cd\0ef", sizeof(in) - 1);
    /* The unterminated tail was copied: the caller may reuse its buffer. */
    memset(in, 'z', sizeof(in) - 1);
    ck_assert_int_eq(feed("\n"), 0);
    ck_assert_uint_eq(rec.n, 3);
    assert_line(2, "ef");
}
END_TEST

/* ---- CRLF and empty lines ---- */

START_TEST(test_crlf_stripped)
{
    ck_assert_int_eq(feed("a\r\nbc\r\n"), 0);
    ck_assert_uint_eq(rec.n, 2);
    assert_line(0, "a");
    assert_line(1, "bc");
}
END_TEST

START_TEST(test_crlf_split_between_feeds)
{
    ck_assert_int_eq(feed("abc\r"), 0);
    ck_assert_uint_eq(rec.n, 0);
    ck_assert_int_eq(feed("\n"), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "abc");
}
END_TEST

START_TEST(test_only_one_cr_stripped)
{
    ck_assert_int_eq(feed("a\r\r\n"), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "a\r");
}
END_TEST

START_TEST(test_cr_inside_line_kept)
{
    ck_assert_int_eq(feed("a\rb\n"), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "a\rb");
}
END_TEST

START_TEST(test_empty_lines_skipped)
{
    ck_assert_int_eq(feed("\n\n\r\n"), 0);
    ck_assert_int_eq(feed("\r"), 0);
    ck_assert_int_eq(feed("\n\nx\n\n"), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "x");
    ck_assert_uint_eq(rec.too_large, 0);
}
END_TEST

START_TEST(test_nul_bytes_passed_through)
{
    static const char in[] = "a\0b\n\0\n";
    ck_assert_int_eq(feed_n(in, sizeof(in) - 1), 0);
    ck_assert_uint_eq(rec.n, 2);
    ck_assert_uint_eq(rec.v[0].len, 3);
    ck_assert_mem_eq(rec.v[0].data, "a\0b", 3);
    ck_assert_uint_eq(rec.v[1].len, 1);
    ck_assert_int_eq(rec.v[1].data[0], '\0');
}
END_TEST

START_TEST(test_nul_bytes_across_feeds)
{
    ck_assert_int_eq(feed_n("a\0", 2), 0);
    ck_assert_int_eq(feed_n("\0b\n", 3), 0);
    ck_assert_uint_eq(rec.n, 1);
    ck_assert_uint_eq(rec.v[0].len, 4);
    ck_assert_mem_eq(rec.v[0].data, "a\0\0b", 4);
}
END_TEST

/* ---- the limit ---- */

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

START_TEST(test_exactly_max_line_accepted)
{
    setup_with(16);
    char *s = repeat('x', 16);
    ck_assert_int_eq(feed(s), 0);
    ck_assert_int_eq(feed("\n"), 0);
    ck_assert_int_eq(feed(s), 0); /* and the same inside one chunk */
    ck_assert_int_eq(feed("\n"), 0);
    ck_assert_uint_eq(rec.too_large, 0);
    ck_assert_uint_eq(rec.n, 2);
    assert_line(0, s);
    assert_line(1, s);
    free(s);
}
END_TEST

START_TEST(test_exactly_max_line_in_one_chunk)
{
    setup_with(16);
    ck_assert_int_eq(feed("0123456789abcdef\n0123456789abcdefg\nok\n"), 0);
    ck_assert_uint_eq(rec.n, 3);
    assert_line(0, "0123456789abcdef");
    assert_too_large(1);
    assert_line(2, "ok");
}
END_TEST

START_TEST(test_max_line_plus_one_rejected)
{
    setup_with(16);
    char *s = repeat('x', 17);
    ck_assert_int_eq(feed(s), 0);
    /* Reported as soon as the limit is passed, before the '\n' arrives. */
    ck_assert_uint_eq(rec.too_large, 1);
    ck_assert_int_eq(feed("\n"), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_too_large(0);
    free(s);
}
END_TEST

START_TEST(test_limit_passed_by_a_later_feed)
{
    setup_with(16);
    ck_assert_int_eq(feed("0123456789abcdef"), 0); /* exactly the limit, kept */
    ck_assert_uint_eq(rec.too_large, 0);
    ck_assert_int_eq(feed("g"), 0); /* one more byte: too large at once */
    ck_assert_uint_eq(rec.too_large, 1);
    ck_assert_int_eq(feed("hij\nok\n"), 0);
    ck_assert_uint_eq(rec.n, 2);
    assert_too_large(0);
    assert_line(1, "ok");
}
END_TEST

START_TEST(test_cr_counts_toward_limit)
{
    setup_with(16);
    ck_assert_int_eq(feed("0123456789abcde\r\n"), 0);  /* 15 + '\r': fits */
    ck_assert_int_eq(feed("0123456789abcdef\r\n"), 0); /* 16 + '\r': does not */
    ck_assert_uint_eq(rec.n, 2);
    assert_line(0, "0123456789abcde");
    assert_too_large(1);
}
END_TEST

START_TEST(test_oversize_then_valid)
{
    setup_with(16);
    ck_assert_int_eq(feed("{\"id\":1,\"pad\":\"xxxxxxxxxxxxxxxx\"}\n{\"id\":2}\n"), 0);
    ck_assert_uint_eq(rec.n, 2);
    assert_too_large(0);
    assert_line(1, "{\"id\":2}");
    ck_assert_uint_eq(rec.too_large, 1);
}
END_TEST

START_TEST(test_oversize_split_across_many_feeds)
{
    setup_with(1024);
    char *chunk = repeat('x', 100);
    ck_assert_int_eq(feed("{\"id\":1}\nyy"), 0);
    for (int i = 0; i < 500; i++)
        ck_assert_int_eq(feed(chunk), 0);
    ck_assert_int_eq(feed("zz\n{\"id\":2}\n"), 0);
    ck_assert_uint_eq(rec.n, 3);
    assert_line(0, "{\"id\":1}");
    assert_too_large(1);
    assert_line(2, "{\"id\":2}");
    ck_assert_uint_eq(rec.too_large, 1);
    free(chunk);
}
END_TEST

START_TEST(test_oversize_one_byte_feeds)
{
    setup_with(8);
    const char *stream = "0123456789abcdef\nok\n";
    for (const char *p = stream; *p; p++)
        ck_assert_int_eq(feed_n(p, 1), 0);
    ck_assert_uint_eq(rec.n, 2);
    assert_too_large(0);
    assert_line(1, "ok");
}
END_TEST

START_TEST(test_two_oversize_lines_two_reports)
{
    setup_with(4);
    ck_assert_int_eq(feed("aaaaaa\nbbbb"), 0);
    ck_assert_int_eq(feed("bb\ncccccc\nok\n"), 0);
    ck_assert_uint_eq(rec.n, 4);
    assert_too_large(0);
    assert_too_large(1);
    assert_too_large(2);
    assert_line(3, "ok");
}
END_TEST

START_TEST(test_memory_bounded_without_newline)
{
    setup_with(1024);
    char *chunk = repeat('x', 1000); /* not a divisor of the limit */
    for (int i = 0; i < 1049; i++) { /* ~1 MiB */
        ck_assert_int_eq(feed(chunk), 0);
        ck_assert_uint_le(fr.buf.cap, 1024 + 1);
    }
    ck_assert_uint_eq(rec.too_large, 1);
    ck_assert_uint_eq(rec.lines, 0);
    /* The buffer holds at most one line: a long line that fits reuses it. */
    ck_assert_int_eq(feed("\n"), 0);
    char *fits = repeat('y', 1024);
    ck_assert_int_eq(feed_n(fits, 600), 0);
    ck_assert_int_eq(feed_n(fits + 600, 424), 0);
    ck_assert_int_eq(feed("\n"), 0);
    ck_assert_uint_le(fr.buf.cap, 1024 + 1);
    ck_assert_uint_eq(rec.lines, 1);
    assert_line(1, fits);
    free(fits);
    free(chunk);
}
END_TEST

START_TEST(test_memory_bounded_one_mib_in_one_feed)
{
    setup_with(1024);
    size_t n = 1 << 20;
    char *big = repeat('x', n);
    ck_assert_int_eq(gd_framer_feed(&fr, big, n), 0);
    /* Known too large at once, never copied. */
    ck_assert_uint_eq(rec.too_large, 1);
    ck_assert_uint_eq(fr.buf.cap, 0);
    free(big);
}
END_TEST

/* ---- reset ---- */

START_TEST(test_reset_drops_partial)
{
    ck_assert_int_eq(feed("{\"id\":"), 0);
    gd_framer_reset(&fr);
    ck_assert_int_eq(feed("{\"id\":2}\n"), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "{\"id\":2}");
}
END_TEST

START_TEST(test_reset_ends_discarding)
{
    setup_with(4);
    ck_assert_int_eq(feed("toolong"), 0);
    ck_assert_uint_eq(rec.too_large, 1);
    gd_framer_reset(&fr); /* a new host: its first line is not the old tail */
    ck_assert_int_eq(feed("ok\n"), 0);
    ck_assert_uint_eq(rec.n, 2);
    assert_line(1, "ok");
}
END_TEST

START_TEST(test_reset_from_callback_stops_feed)
{
    rec.reset_on_line = 1;
    ck_assert_int_eq(feed("a\nb\nc"), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "a");
    rec.reset_on_line = 0;
    ck_assert_int_eq(feed("d\n"), 0);
    ck_assert_uint_eq(rec.n, 2);
    assert_line(1, "d");
}
END_TEST

/* The channel pauses the framer once the replies owed pass the bound: the
 * feed stops after that line, says how much it took, and the rest fed
 * again later gives the same lines as one feed would. */
START_TEST(test_pause_from_callback_stops_after_the_line)
{
    rec.pause_on_line = 1;
    char in[] = "a\nbb\r\nccc\ndd";
    size_t len = sizeof(in) - 1;
    ck_assert_int_eq(gd_framer_feed(&fr, in, len), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "a");
    ck_assert_uint_eq(fr.fed, 2);
    size_t off = fr.fed;
    ck_assert_int_eq(gd_framer_feed(&fr, in + off, len - off), 0);
    ck_assert_uint_eq(rec.n, 2);
    assert_line(1, "bb");
    ck_assert_uint_eq(fr.fed, 4);
    off += fr.fed;
    rec.pause_on_line = 0;
    ck_assert_int_eq(gd_framer_feed(&fr, in + off, len - off), 0);
    ck_assert_uint_eq(fr.fed, len - off); /* no pause: all taken, "dd" kept */
    ck_assert_uint_eq(rec.n, 3);
    assert_line(2, "ccc");
    ck_assert_int_eq(feed("\n"), 0);
    assert_line(3, "dd");
}
END_TEST

START_TEST(test_pause_completing_a_kept_partial_line)
{
    ck_assert_int_eq(feed("par"), 0);
    rec.pause_on_line = 1;
    char in[] = "tial\nnext\n";
    ck_assert_int_eq(gd_framer_feed(&fr, in, sizeof(in) - 1), 0);
    ck_assert_uint_eq(rec.n, 1);
    assert_line(0, "partial");
    ck_assert_uint_eq(fr.fed, 5);
}
END_TEST

START_TEST(test_null_callbacks)
{
    gd_framer_t f;
    gd_framer_init(&f, 4, NULL, NULL, NULL);
    char in[] = "ok\ntoolong\nab";
    ck_assert_int_eq(gd_framer_feed(&f, in, sizeof(in) - 1), 0);
    ck_assert_uint_eq(f.buf.len, 2);
    gd_framer_free(&f);
}
END_TEST

/* ---- random splits against a reference ---- */

/* The reference: split at '\n' with the whole stream in hand. */
static void reference(const char *s, size_t len, size_t max_line, rec_t *out)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\n') continue;
        size_t n = i - start;
        if (n > max_line) {
            rec_push(out, (entry_t){1, NULL, 0, NULL});
        } else {
            if (n > 0 && s[start + n - 1] == '\r') n--;
            if (n > 0) {
                entry_t e = {0, malloc(n + 1), n, NULL};
                memcpy(e.data, s + start, n);
                rec_push(out, e);
            }
        }
        start = i + 1;
    }
    if (len - start > max_line) rec_push(out, (entry_t){1, NULL, 0, NULL});
}

START_TEST(test_random_splits_match_reference)
{
    const size_t max_line = 64;
    uint32_t seed = 12345u + (uint32_t)_i;
#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 8) & 0xffffff)
    setup_with(max_line);
    gd_buf_t s;
    gd_buf_init(&s);
    for (int i = 0; i < 400; i++) {
        size_t n = RND() % 10 == 0 ? max_line + RND() % 200 : RND() % (max_line + 2);
        for (size_t k = 0; k < n; k++) {
            char c = "abc{}\":\r\0"[RND() % 9];
            ck_assert_int_eq(gd_buf_append(&s, &c, 1), 0);
        }
        const char *end = RND() % 3 ? "\n" : "\r\n";
        ck_assert_int_eq(gd_buf_puts(&s, end), 0);
    }
    rec_t want = {0};
    reference(s.data, s.len, max_line, &want);

    char *copy = malloc(s.len);
    memcpy(copy, s.data, s.len);
    for (size_t off = 0; off < s.len;) {
        size_t n = RND() % 3 == 0 ? 1 : RND() % 300;
        if (n > s.len - off) n = s.len - off;
        ck_assert_int_eq(gd_framer_feed(&fr, copy + off, n), 0);
        ck_assert_uint_le(fr.buf.cap, max_line + 1);
        off += n;
    }
    ck_assert_uint_eq(rec.n, want.n);
    for (size_t i = 0; i < want.n; i++) {
        ck_assert_int_eq(rec.v[i].too_large, want.v[i].too_large);
        ck_assert_uint_eq(rec.v[i].len, want.v[i].len);
        if (want.v[i].len) ck_assert_mem_eq(rec.v[i].data, want.v[i].data, want.v[i].len);
        free(want.v[i].data);
    }
    free(want.v);
    free(copy);
    gd_buf_free(&s);
#undef RND
}
END_TEST

static Suite *framer_suite(void)
{
    Suite *s = suite_create("framer");

    TCase *tc = tcase_create("lines");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_one_line);
    tcase_add_test(tc, test_no_newline_no_line);
    tcase_add_test(tc, test_split_and_merged);
    tcase_add_test(tc, test_one_byte_feeds);
    tcase_add_test(tc, test_thousand_lines_one_feed);
    tcase_add_test(tc, test_in_place_overwrites_only_terminators);
    tcase_add_test(tc, test_nul_bytes_passed_through);
    tcase_add_test(tc, test_nul_bytes_across_feeds);
    tcase_add_test(tc, test_null_callbacks);
    suite_add_tcase(s, tc);

    tc = tcase_create("crlf_and_empty");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_crlf_stripped);
    tcase_add_test(tc, test_crlf_split_between_feeds);
    tcase_add_test(tc, test_only_one_cr_stripped);
    tcase_add_test(tc, test_cr_inside_line_kept);
    tcase_add_test(tc, test_empty_lines_skipped);
    suite_add_tcase(s, tc);

    /* These re-initialise the framer with their own limit: setup's framer
     * has allocated nothing yet, so nothing leaks. */
    tc = tcase_create("limit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_exactly_max_line_accepted);
    tcase_add_test(tc, test_exactly_max_line_in_one_chunk);
    tcase_add_test(tc, test_max_line_plus_one_rejected);
    tcase_add_test(tc, test_limit_passed_by_a_later_feed);
    tcase_add_test(tc, test_cr_counts_toward_limit);
    tcase_add_test(tc, test_oversize_then_valid);
    tcase_add_test(tc, test_oversize_split_across_many_feeds);
    tcase_add_test(tc, test_oversize_one_byte_feeds);
    tcase_add_test(tc, test_two_oversize_lines_two_reports);
    tcase_add_test(tc, test_memory_bounded_without_newline);
    tcase_add_test(tc, test_memory_bounded_one_mib_in_one_feed);
    suite_add_tcase(s, tc);

    tc = tcase_create("reset");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reset_drops_partial);
    tcase_add_test(tc, test_reset_ends_discarding);
    tcase_add_test(tc, test_reset_from_callback_stops_feed);
    tcase_add_test(tc, test_pause_from_callback_stops_after_the_line);
    tcase_add_test(tc, test_pause_completing_a_kept_partial_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_random_splits_match_reference, 0, 20);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(framer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
