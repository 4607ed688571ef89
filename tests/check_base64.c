/* Check suite for agent/base64: RFC 4648 test vectors, round trips of every
 * length, and the strict decoder's refusals. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

/* RFC 4648 section 10. */
static const char *const vectors[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

START_TEST(test_encode_rfc_vectors)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        gd_buf_t b;
        gd_buf_init(&b);
        ck_assert_int_eq(gd_base64_encode(&b, vectors[i][0], strlen(vectors[i][0])), 0);
        ck_assert_str_eq(b.data ? b.data : "", vectors[i][1]);
        ck_assert_uint_eq(b.len, gd_base64_encoded_len(strlen(vectors[i][0])));
        gd_buf_free(&b);
    }
}
END_TEST

START_TEST(test_decode_rfc_vectors)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        gd_buf_t b;
        gd_buf_init(&b);
        ck_assert_int_eq(gd_base64_decode(&b, vectors[i][1], strlen(vectors[i][1])), 0);
        ck_assert_uint_eq(b.len, strlen(vectors[i][0]));
        ck_assert_mem_eq(b.data, vectors[i][0], b.len);
        gd_buf_free(&b);
    }
}
END_TEST

START_TEST(test_binary_bytes)
{
    const unsigned char bin[] = {0xFF, 0x61, 0x00, 0x62, 0x0A};
    char out[16];
    ck_assert_uint_eq(gd_base64_encode_to(out, bin, sizeof(bin)), 8);
    ck_assert_str_eq(out, "/2EAYgo=");
    unsigned char back[8];
    size_t n = 0;
    ck_assert_int_eq(gd_base64_decode_to(back, "+/+/", 4, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(back[0], 0xFB);
    ck_assert_uint_eq(back[1], 0xFF);
    ck_assert_uint_eq(back[2], 0xBF);
}
END_TEST

/* Every length from 0 to 300 with every byte value: decode(encode(x)) == x,
 * and the encoding's length is the promised one. */
START_TEST(test_round_trip_lengths)
{
    unsigned char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 97 + 13);
    for (size_t n = 0; n <= sizeof(data); n++) {
        gd_buf_t enc, dec;
        gd_buf_init(&enc);
        gd_buf_init(&dec);
        ck_assert_int_eq(gd_base64_encode(&enc, data, n), 0);
        ck_assert_uint_eq(enc.len, gd_base64_encoded_len(n));
        ck_assert_int_eq(gd_base64_decode(&dec, enc.data ? enc.data : "", enc.len), 0);
        ck_assert_uint_eq(dec.len, n);
        ck_assert(dec.len <= gd_base64_decoded_max(enc.len));
        if (n) ck_assert_mem_eq(dec.data, data, n);
        gd_buf_free(&enc);
        gd_buf_free(&dec);
    }
}
END_TEST

START_TEST(test_decode_without_padding)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_base64_decode(&b, "Zm9vYg", 6), 0);
    ck_assert_str_eq(b.data, "foob");
    gd_buf_reset(&b);
    ck_assert_int_eq(gd_base64_decode(&b, "Zm9vYmE", 7), 0);
    ck_assert_str_eq(b.data, "fooba");
    gd_buf_free(&b);
}
END_TEST

START_TEST(test_decode_refuses)
{
    static const char *const bad[] = {
        "Z",        /* one character cannot hold a byte */
        "Zm9vY",    /* nor can a quantum of one */
        "Zm9v\n",   /* whitespace */
        "Zm 9v",    /* whitespace inside */
        "Zm9-",     /* URL-safe alphabet */
        "Zm9_",     /* URL-safe alphabet */
        "Zg=",      /* incomplete padding */
        "Zg===",    /* too much padding */
        "====",     /* padding only */
        "Z===",     /* padding after one character */
        "Zg==Zg==", /* padding in the middle */
        "Zh==",     /* non-zero unused bits (not canonical) */
        "Zm9=",     /* non-zero unused bits */
        "Zm\x80v",  /* a byte outside ASCII */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gd_buf_t b;
        gd_buf_init(&b);
        ck_assert_int_eq(gd_buf_puts(&b, "kept"), 0);
        ck_assert_msg(gd_base64_decode(&b, bad[i], strlen(bad[i])) == -EINVAL, "accepted '%s'",
                      bad[i]);
        ck_assert_str_eq(b.data, "kept"); /* nothing appended on failure */
        gd_buf_free(&b);
    }
}
END_TEST

START_TEST(test_appends)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_buf_puts(&b, "x="), 0);
    ck_assert_int_eq(gd_base64_encode(&b, "foo", 3), 0);
    ck_assert_str_eq(b.data, "x=Zm9v");
    ck_assert_int_eq(gd_base64_decode(&b, "YmFy", 4), 0);
    ck_assert_str_eq(b.data, "x=Zm9vbar");
    gd_buf_free(&b);
}
END_TEST

static Suite *base64_suite(void)
{
    Suite *s = suite_create("base64");
    TCase *enc = tcase_create("encode");
    tcase_add_test(enc, test_encode_rfc_vectors);
    tcase_add_test(enc, test_binary_bytes);
    tcase_add_test(enc, test_appends);
    suite_add_tcase(s, enc);
    TCase *dec = tcase_create("decode");
    tcase_add_test(dec, test_decode_rfc_vectors);
    tcase_add_test(dec, test_decode_without_padding);
    tcase_add_test(dec, test_decode_refuses);
    suite_add_tcase(s, dec);
    TCase *rt = tcase_create("round_trip");
    tcase_add_test(rt, test_round_trip_lengths);
    suite_add_tcase(s, rt);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(base64_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
