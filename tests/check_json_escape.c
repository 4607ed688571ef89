/* Check suite for core/json/escape: the exact literal for each kind of byte
 * (controls, quote and backslash, valid UTF-8 of every length, each kind of
 * invalid UTF-8), the qemu-ga form, and for every two-byte input and many
 * random ones: the output is valid UTF-8 that cJSON parses back to the
 * input with each invalid byte replaced, as gd_utf8_sanitize does, and is
 * byte for byte what cJSON prints for that replaced text. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json/escape.h"
#include "core/utf8.h"

#define FFFD "\xEF\xBF\xBD"

static gd_buf_t out;

static void setup(void)
{
    gd_buf_init(&out);
}

static void teardown(void)
{
    gd_buf_free(&out);
}

/* The literal for n bytes of s; checks that measuring, writing to memory and
 * appending to a buffer agree and that nothing is written past the end. */
static const char *esc(const char *s, size_t n, unsigned flags)
{
    /* Plain ifs, not ck_assert: Check records every assertion it passes,
     * and the loops below escape a quarter of a million strings. */
    size_t len = gd_json_escape_to(NULL, s, n, flags);
    if (len > GD_JSON_ESCAPED_MAX(n)) ck_abort_msg("%zu bytes for %zu", len, n);
    char *mem = malloc(len + 1);
    if (!mem) ck_abort_msg("out of memory");
    mem[len] = '#';
    if (gd_json_escape_to(mem, s, n, flags) != len) ck_abort_msg("measured and wrote differ");
    if (mem[len] != '#') ck_abort_msg("wrote past the measured length");
    gd_buf_reset(&out);
    if (gd_json_escape(&out, s, n, flags) != 0) ck_abort_msg("gd_json_escape failed");
    if (out.len != len || memcmp(out.data, mem, len) != 0 || out.data[len] != '\0')
        ck_abort_msg("the buffer form differs: %s", out.data);
    free(mem);
    return out.data;
}

/* Both forms of a C string literal's bytes (sizeof - 1 keeps inner NULs). */
#define ESC(lit) esc((lit), sizeof(lit) - 1, 0)
#define ESC_ASCII(lit) esc((lit), sizeof(lit) - 1, GD_JSON_ESC_ASCII)

START_TEST(test_ascii_and_empty)
{
    ck_assert_str_eq(ESC(""), "\"\"");
    ck_assert_str_eq(ESC("hello, world /~ {}[]:"), "\"hello, world /~ {}[]:\"");
    ck_assert_str_eq(ESC("say \"hi\" C:\\dir\\"), "\"say \\\"hi\\\" C:\\\\dir\\\\\"");
    ck_assert_str_eq(ESC("\"\\"), "\"\\\"\\\\\"");
    ck_assert_str_eq(ESC_ASCII("say \"hi\" C:\\dir /"), "\"say \\\"hi\\\" C:\\\\dir /\"");
    /* DEL is printable JSON; qemu-ga's form escapes it, as QEMU does. */
    ck_assert_str_eq(ESC("a\x7f"), "\"a\x7f\"");
    ck_assert_str_eq(ESC_ASCII("a\x7f"), "\"a\\u007F\"");
}
END_TEST

START_TEST(test_every_control_char)
{
    for (unsigned c = 0; c < 0x20; c++) {
        char in[3] = {'<', (char)c, '>'};
        char want[16], want_ascii[16];
        const char *short_form = c == '\b'   ? "\\b"
                                 : c == '\f' ? "\\f"
                                 : c == '\n' ? "\\n"
                                 : c == '\r' ? "\\r"
                                 : c == '\t' ? "\\t"
                                             : NULL;
        if (short_form) {
            snprintf(want, sizeof(want), "\"<%s>\"", short_form);
            snprintf(want_ascii, sizeof(want_ascii), "\"<%s>\"", short_form);
        } else {
            snprintf(want, sizeof(want), "\"<\\u%04x>\"", c);
            snprintf(want_ascii, sizeof(want_ascii), "\"<\\u%04X>\"", c);
        }
        ck_assert_str_eq(esc(in, 3, 0), want);
        ck_assert_str_eq(esc(in, 3, GD_JSON_ESC_ASCII), want_ascii);
    }
    ck_assert_str_eq(ESC("\x1b[2J"), "\"\\u001b[2J\"");
    ck_assert_str_eq(ESC_ASCII("\x1b[2J"), "\"\\u001B[2J\"");
}
END_TEST

START_TEST(test_nul_in_the_middle)
{
    ck_assert_str_eq(ESC("a\0b"), "\"a\\u0000b\"");
    ck_assert_str_eq(ESC("\0\0"), "\"\\u0000\\u0000\"");
    ck_assert_str_eq(ESC_ASCII("a\0b"), "\"a\\u0000b\"");
    /* Only n bytes are read: what follows is not part of the string. */
    ck_assert_str_eq(esc("abc", 2, 0), "\"ab\"");
}
END_TEST

START_TEST(test_valid_utf8_kept)
{
    /* The first and last code point of each length, and common text. */
    static const char *const valid[] = {
        "\xC2\x80",         "\xDF\xBF",         "\xE0\xA0\x80",
        "\xEF\xBF\xBF",     "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF",
        "caf\xC3\xA9",      "\xE2\x82\xAC 5",   "\xF0\x9F\x98\x80!",
        "\xED\x9F\xBF",     "\xEE\x80\x80",     "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
        "\xEF\xBB\xBF BOM", "\xEF\xBF\xBD",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "\"%s\"", valid[i]);
        ck_assert_str_eq(esc(valid[i], strlen(valid[i]), 0), want);
    }
}
END_TEST

START_TEST(test_valid_utf8_in_ascii_form)
{
    ck_assert_str_eq(ESC_ASCII("\xC2\x80"), "\"\\u0080\"");
    ck_assert_str_eq(ESC_ASCII("caf\xC3\xA9"), "\"caf\\u00E9\"");
    ck_assert_str_eq(ESC_ASCII("\xE2\x80\x9Cz"), "\"\\u201Cz\"");
    ck_assert_str_eq(ESC_ASCII("\xEF\xBF\xBF"), "\"\\uFFFF\"");
    /* Past U+FFFF: a UTF-16 surrogate pair. */
    ck_assert_str_eq(ESC_ASCII("\xF0\x90\x80\x80"), "\"\\uD800\\uDC00\"");
    ck_assert_str_eq(ESC_ASCII("\xF0\x9F\x98\x80"), "\"\\uD83D\\uDE00\"");
    ck_assert_str_eq(ESC_ASCII("\xF4\x8F\xBF\xBF"), "\"\\uDBFF\\uDFFF\"");
}
END_TEST

START_TEST(test_line_and_paragraph_separators)
{
    /* Valid JSON as they are (RFC 8259), and cJSON prints them so; only
     * the ASCII form escapes them, like every other non-ASCII. */
    ck_assert_str_eq(ESC("a\xE2\x80\xA8z\xE2\x80\xA9"), "\"a\xE2\x80\xA8z\xE2\x80\xA9\"");
    ck_assert_str_eq(ESC_ASCII("a\xE2\x80\xA8z\xE2\x80\xA9"), "\"a\\u2028z\\u2029\"");
}
END_TEST

START_TEST(test_overlongs)
{
    ck_assert_str_eq(ESC("\xC0\x80"), "\"" FFFD FFFD "\"");
    ck_assert_str_eq(ESC("\xC1\xBF"), "\"" FFFD FFFD "\"");
    ck_assert_str_eq(ESC("\xE0\x80\x80"), "\"" FFFD FFFD FFFD "\"");
    ck_assert_str_eq(ESC("\xE0\x9F\xBF"), "\"" FFFD FFFD FFFD "\"");
    ck_assert_str_eq(ESC("\xF0\x80\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\"");
    ck_assert_str_eq(ESC("\xF0\x8F\xBF\xBF"), "\"" FFFD FFFD FFFD FFFD "\"");
    /* The overlong '/' of old path-traversal tricks does not become '/'. */
    ck_assert_str_eq(ESC("..\xC0\xAF"), "\".." FFFD FFFD "\"");
    ck_assert_str_eq(ESC_ASCII("\xC0\x80"), "\"\\uFFFD\\uFFFD\"");
}
END_TEST

START_TEST(test_surrogates_and_past_max)
{
    ck_assert_str_eq(ESC("\xED\xA0\x80"), "\"" FFFD FFFD FFFD "\"");
    ck_assert_str_eq(ESC("\xED\xBF\xBF"), "\"" FFFD FFFD FFFD "\"");
    /* CESU-8's pair for U+1F600: six invalid bytes, not one emoji. */
    ck_assert_str_eq(ESC("\xED\xA0\xBD\xED\xB8\x80"), "\"" FFFD FFFD FFFD FFFD FFFD FFFD "\"");
    ck_assert_str_eq(ESC_ASCII("\xED\xA0\x80"), "\"\\uFFFD\\uFFFD\\uFFFD\"");
    /* U+110000 and beyond. */
    ck_assert_str_eq(ESC("\xF4\x90\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\"");
}
END_TEST

START_TEST(test_truncated_sequences)
{
    /* At the end of the input: each byte of the cut sequence on its own. */
    ck_assert_str_eq(ESC("a\xC3"), "\"a" FFFD "\"");
    ck_assert_str_eq(ESC("a\xE2\x82"), "\"a" FFFD FFFD "\"");
    ck_assert_str_eq(ESC("a\xF0\x9F\x98"), "\"a" FFFD FFFD FFFD "\"");
    ck_assert_str_eq(ESC_ASCII("a\xE2\x82"), "\"a\\uFFFD\\uFFFD\"");
    /* n cuts a valid sequence short: the same. */
    ck_assert_str_eq(esc("\xE2\x82\xAC", 2, 0), "\"" FFFD FFFD "\"");
    /* In the middle: the byte that breaks the sequence is kept. */
    ck_assert_str_eq(ESC("\xE2\x82Z"), "\"" FFFD FFFD "Z\"");
    ck_assert_str_eq(ESC("\xC3\"x"), "\"" FFFD "\\\"x\"");
    ck_assert_str_eq(ESC("\xF0\x9F\xC3\xA9"), "\"" FFFD FFFD "\xC3\xA9\"");
    ck_assert_str_eq(ESC("\xE2\n"), "\"" FFFD "\\n\"");
}
END_TEST

START_TEST(test_bytes_never_in_utf8)
{
    for (unsigned c = 0xF5; c <= 0xFF; c++) {
        char in[4] = {'x', (char)c, '\x80', 'y'};
        ck_assert_str_eq(esc(in, 4, 0), "\"x" FFFD FFFD "y\"");
        ck_assert_str_eq(esc(in, 4, GD_JSON_ESC_ASCII), "\"x\\uFFFD\\uFFFDy\"");
    }
    ck_assert_str_eq(ESC("\xFE\xFF"), "\"" FFFD FFFD "\"");
}
END_TEST

START_TEST(test_lone_continuation_bytes)
{
    ck_assert_str_eq(ESC("\x80"), "\"" FFFD "\"");
    ck_assert_str_eq(ESC("a\xBFz"), "\"a" FFFD "z\"");
    ck_assert_str_eq(ESC("\x80\x80\x80\x80\x80"), "\"" FFFD FFFD FFFD FFFD FFFD "\"");
    /* A fifth byte after a complete sequence is a stray. */
    ck_assert_str_eq(ESC("\xF0\x9F\x98\x80\x80"), "\"\xF0\x9F\x98\x80" FFFD "\"");
}
END_TEST

START_TEST(test_appends)
{
    gd_buf_reset(&out);
    ck_assert_int_eq(gd_buf_puts(&out, "{\"k\":"), 0);
    ck_assert_int_eq(gd_json_escape(&out, "v\n", 2, 0), 0);
    ck_assert_int_eq(gd_json_escape(&out, "", 0, GD_JSON_ESC_ASCII), 0);
    ck_assert_str_eq(out.data, "{\"k\":\"v\\n\"\"\"");
    ck_assert_uint_eq(out.len, strlen("{\"k\":\"v\\n\"\"\""));
}
END_TEST

START_TEST(test_worst_case_bound)
{
    char in[256];
    memset(in, 0x01, sizeof(in));
    ck_assert_uint_eq(gd_json_escape_to(NULL, in, sizeof(in), 0), GD_JSON_ESCAPED_MAX(sizeof(in)));
    memset(in, 0xFF, sizeof(in));
    ck_assert_uint_eq(gd_json_escape_to(NULL, in, sizeof(in), GD_JSON_ESC_ASCII),
                      GD_JSON_ESCAPED_MAX(sizeof(in)));
    ck_assert_uint_eq(gd_json_escape_to(NULL, in, sizeof(in), 0), 3 * sizeof(in) + 2);
}
END_TEST

/* ---- the output as a JSON parser and a UTF-8 check see it ---- */

/* Checks both forms of s[0..n): valid UTF-8 (and ASCII alone in the qemu-ga
 * form), parsed by cJSON to one string, the same in both forms, and equal to
 * s with invalid bytes replaced (s holds no NUL: cJSON stops at one). */
static void check_parses_back(const char *s, size_t n)
{
    gd_buf_t want;
    gd_buf_init(&want);
    if (gd_utf8_sanitize(&want, s, n) != 0) ck_abort_msg("out of memory");
    const char *sane = want.data ? want.data : "";
    for (int ascii = 0; ascii < 2; ascii++) {
        const char *lit = esc(s, n, ascii ? GD_JSON_ESC_ASCII : 0);
        size_t len = strlen(lit);
        if (!gd_utf8_valid(lit, len)) ck_abort_msg("not UTF-8: %s", lit);
        for (size_t i = 0; ascii && i < len; i++)
            if ((unsigned char)lit[i] < 0x20 || (unsigned char)lit[i] >= 0x7F)
                ck_abort_msg("byte 0x%02x at %zu of %s", (unsigned char)lit[i], i, lit);
        cJSON *v = cJSON_ParseWithLength(lit, len);
        if (!cJSON_IsString(v)) ck_abort_msg("cJSON refused %s", lit);
        if (strcmp(v->valuestring, sane) != 0)
            ck_abort_msg("%s parsed to %s, not %s", lit, v->valuestring, sane);
        cJSON_Delete(v);
        if (!ascii) {
            /* The one form on the guestd wire: what cJSON prints for the
             * replaced text (replies built as cJSON trees) is the same. */
            cJSON *str = cJSON_CreateString(sane);
            char *printed = cJSON_PrintUnformatted(str);
            if (strcmp(printed, esc(s, n, 0)) != 0)
                ck_abort_msg("cJSON prints %s, the escaper %s", printed, out.data);
            cJSON_free(printed);
            cJSON_Delete(str);
        }
    }
    gd_buf_free(&want);
}

START_TEST(test_every_two_byte_input_parses)
{
    for (unsigned a = 1; a < 256; a++)
        for (unsigned b = 1; b < 256; b++) {
            char in[2] = {(char)a, (char)b};
            check_parses_back(in, 2);
        }
}
END_TEST

/* Random strings from bytes chosen to hit sequence edges often. */
START_TEST(test_random_inputs_parse)
{
    static const unsigned char pool[] = {'a',  '"',  '\\', '\n', 0x01, 0x1f, 0x7f, 0x80,
                                         0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf,
                                         0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
    uint32_t seed = 12345;
    char in[24];
    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % sizeof(in);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (char)pool[(seed >> 16) % sizeof(pool)];
        }
        check_parses_back(in, n);
    }
}
END_TEST

/* Valid text in, the same bytes out of cJSON: nothing is lost or changed. */
START_TEST(test_valid_input_round_trips)
{
    static const char *const texts[] = {
        "plain",
        "tab\there, \"quoted\", back\\slash, bell\x07, esc\x1b[0m, del\x7f",
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE2\x80\xA8 \xEF\xBF\xBD \xF4\x8F\xBF\xBF",
        "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xE4\xB8\x96\xE7\x95\x8C",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        for (int ascii = 0; ascii < 2; ascii++) {
            const char *lit = esc(texts[i], strlen(texts[i]), ascii ? GD_JSON_ESC_ASCII : 0);
            cJSON *v = cJSON_Parse(lit);
            ck_assert_ptr_nonnull(v);
            ck_assert_str_eq(v->valuestring, texts[i]);
            cJSON_Delete(v);
        }
    }
}
END_TEST

static Suite *json_escape_suite(void)
{
    Suite *s = suite_create("json_escape");
    TCase *exact = tcase_create("exact");
    tcase_add_checked_fixture(exact, setup, teardown);
    tcase_add_test(exact, test_ascii_and_empty);
    tcase_add_test(exact, test_every_control_char);
    tcase_add_test(exact, test_nul_in_the_middle);
    tcase_add_test(exact, test_valid_utf8_kept);
    tcase_add_test(exact, test_valid_utf8_in_ascii_form);
    tcase_add_test(exact, test_line_and_paragraph_separators);
    tcase_add_test(exact, test_overlongs);
    tcase_add_test(exact, test_surrogates_and_past_max);
    tcase_add_test(exact, test_truncated_sequences);
    tcase_add_test(exact, test_bytes_never_in_utf8);
    tcase_add_test(exact, test_lone_continuation_bytes);
    tcase_add_test(exact, test_appends);
    tcase_add_test(exact, test_worst_case_bound);
    suite_add_tcase(s, exact);
    TCase *parsed = tcase_create("parsed");
    tcase_add_checked_fixture(parsed, setup, teardown);
    tcase_set_timeout(parsed, 60);
    tcase_add_test(parsed, test_every_two_byte_input_parses);
    tcase_add_test(parsed, test_random_inputs_parse);
    tcase_add_test(parsed, test_valid_input_round_trips);
    suite_add_tcase(s, parsed);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_escape_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
