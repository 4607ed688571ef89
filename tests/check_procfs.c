/* Check suite for the procfs reader (collectors/procfs), the rates helper
 * (collectors/rate) and the sample writer (collectors/jsonw). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json/writer.h"
#include "collectors/procfs.h"
#include "collectors/rate.h"

static char dir[64];

static void tmp_setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/gd-procfs-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void tmp_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Rewrites the file in place (same inode), as the kernel changes a file. */
static void write_file(const char *rel, const char *text, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* ---- paths ---------------------------------------------------------------- */

START_TEST(test_path_join)
{
    char out[64];
    ck_assert_int_eq(gd_procfs_path(out, sizeof(out), "/proc", "stat"), 0);
    ck_assert_str_eq(out, "/proc/stat");
    ck_assert_int_eq(gd_procfs_path(out, sizeof(out), "/tmp/x/", "/net/dev"), 0);
    ck_assert_str_eq(out, "/tmp/x/net/dev");
    ck_assert_int_eq(gd_procfs_path(out, sizeof(out), "/", "uptime"), 0);
    ck_assert_str_eq(out, "/uptime");
    ck_assert_int_eq(gd_procfs_path(out, 8, "/proc", "diskstats"), -ENAMETOOLONG);
}
END_TEST

/* ---- reading ------------------------------------------------------------- */

START_TEST(test_missing_file_is_enoent)
{
    gd_procfile_t f;
    ck_assert_int_eq(gd_procfile_open(&f, dir, "pressure/cpu"), -ENOENT);
    ck_assert_int_eq(f.fd, -1);
    gd_procfile_close(&f); /* safe on a file that never opened */
}
END_TEST

START_TEST(test_reread_sees_new_content_through_same_fd)
{
    gd_procfile_t f;
    write_file("loadavg", "0.18 0.21 0.09 1/92 7491\n", 25);
    ck_assert_int_eq(gd_procfile_open(&f, dir, "loadavg"), 0);
    ck_assert_int_eq(gd_procfile_read(&f), 25);
    ck_assert_str_eq(f.buf.data, "0.18 0.21 0.09 1/92 7491\n");
    int fd = f.fd;
    write_file("loadavg", "1.5 1 0\n", 8);
    ck_assert_int_eq(gd_procfile_read(&f), 8);
    ck_assert_str_eq(f.buf.data, "1.5 1 0\n");
    ck_assert_int_eq(f.fd, fd);
    gd_procfile_close(&f);
    ck_assert_int_eq(f.fd, -1);
}
END_TEST

START_TEST(test_buffer_grows_to_file_and_never_shrinks)
{
    size_t big = 20000;
    char *text = malloc(big);
    for (size_t i = 0; i < big; i++)
        text[i] = (i % 80 == 79) ? '\n' : (char)('a' + i % 26);
    write_file("big", text, big);
    gd_procfile_t f;
    ck_assert_int_eq(gd_procfile_open(&f, dir, "big"), 0);
    ck_assert_int_eq(gd_procfile_read(&f), (ssize_t)big);
    ck_assert_int_eq(memcmp(f.buf.data, text, big), 0);
    ck_assert_int_eq(f.buf.data[big], '\0');
    size_t cap = f.buf.cap;
    ck_assert_uint_gt(cap, big);
    char *data = f.buf.data;
    write_file("big", "short\n", 6);
    ck_assert_int_eq(gd_procfile_read(&f), 6);
    ck_assert_str_eq(f.buf.data, "short\n");
    ck_assert_uint_eq(f.buf.cap, cap); /* kept */
    write_file("big", text, big);
    ck_assert_int_eq(gd_procfile_read(&f), (ssize_t)big);
    ck_assert_ptr_eq(f.buf.data, data); /* no reallocation the second time */
    gd_procfile_close(&f);
    free(text);
}
END_TEST

START_TEST(test_real_proc_stat_reads_whole)
{
    /* /proc/stat is generated per read and is longer than the first buffer
     * on most machines (the intr line): one read must hold it all. */
    gd_procfile_t f;
    ck_assert_int_eq(gd_procfile_open(&f, "/proc", "stat"), 0);
    ssize_t n = gd_procfile_read(&f);
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(f.buf.data, "\nbtime "));
    ck_assert_int_eq(f.buf.data[n - 1], '\n');
    ck_assert_int_gt(gd_procfile_read(&f), 0); /* pread again from offset 0 */
    ck_assert_int_eq(strncmp(f.buf.data, "cpu ", 4), 0);
    gd_procfile_close(&f);
}
END_TEST

/* ---- splitting and numbers ------------------------------------------------- */

START_TEST(test_lines_and_fields_split_in_place)
{
    char text[] = "cpu  4654 0 4760\ncpu0\t1693 0 1762\n\nlast";
    char *cursor = text, *line, *f[8];
    line = gd_procfs_line(&cursor);
    ck_assert_str_eq(line, "cpu  4654 0 4760");
    ck_assert_int_eq(gd_procfs_split(line, f, 8), 4);
    ck_assert_str_eq(f[0], "cpu");
    ck_assert_str_eq(f[3], "4760");
    line = gd_procfs_line(&cursor);
    ck_assert_int_eq(gd_procfs_split(line, f, 2), 2); /* stops at max */
    ck_assert_str_eq(f[0], "cpu0");
    ck_assert_str_eq(f[1], "1693");
    line = gd_procfs_line(&cursor);
    ck_assert_str_eq(line, "");
    ck_assert_int_eq(gd_procfs_split(line, f, 8), 0);
    ck_assert_str_eq(gd_procfs_line(&cursor), "last");
    ck_assert_ptr_null(gd_procfs_line(&cursor));
}
END_TEST

START_TEST(test_numbers_are_strict)
{
    uint64_t v;
    double d;
    ck_assert_int_eq(gd_procfs_u64("18446744073709551615", &v), 0);
    ck_assert(v == UINT64_MAX);
    ck_assert_int_eq(gd_procfs_u64("18446744073709551616", &v), -EINVAL);
    ck_assert_int_eq(gd_procfs_u64("12kB", &v), -EINVAL);
    ck_assert_int_eq(gd_procfs_u64("-1", &v), -EINVAL);
    ck_assert_int_eq(gd_procfs_u64("", &v), -EINVAL);
    ck_assert_int_eq(gd_procfs_decimal("1419.54", &d), 0);
    ck_assert_double_eq_tol(d, 1419.54, 1e-9);
    ck_assert_int_eq(gd_procfs_decimal("7", &d), 0);
    ck_assert_double_eq(d, 7.0);
    ck_assert_int_eq(gd_procfs_decimal("0.5x", &d), -EINVAL);
    ck_assert_int_eq(gd_procfs_decimal("avg10=1", &d), -EINVAL);
}
END_TEST

/* ---- rates --------------------------------------------------------------- */

START_TEST(test_rate_primes_then_divides)
{
    gd_rate_t r = {0};
    ck_assert_double_eq(gd_rate_update(&r, 1000, 1.0), 0.0); /* priming */
    ck_assert_double_eq(gd_rate_update(&r, 3000, 2.0), 1000.0);
    ck_assert_double_eq(gd_rate_update(&r, 3000, 0.5), 0.0);
    ck_assert_double_eq(gd_rate_update(&r, 3500, 0.0), 0.0); /* no window */
    ck_assert_double_eq(gd_rate_update(&r, 4500, 4.0), 250.0);
}
END_TEST

START_TEST(test_counter_wraps_and_resets)
{
    ck_assert_uint_eq(gd_counter_delta(10, 25), 15);
    /* 32-bit counter (a 32-bit kernel's net counters) wrapping. */
    ck_assert_uint_eq(gd_counter_delta(UINT32_MAX - 5, 10), 16);
    /* 64-bit counter wrapping. */
    ck_assert(gd_counter_delta(UINT64_MAX - 1, 3) == 5);
    /* A counter that went back from low values was reset: no spike. */
    ck_assert_uint_eq(gd_counter_delta(5000, 20), 0);
    ck_assert_uint_eq(gd_counter_delta(UINT64_C(1) << 40, 7), 0);
    gd_rate_t r = {0};
    gd_rate_update(&r, UINT32_MAX - 99, 1.0);
    ck_assert_double_eq(gd_rate_update(&r, 100, 2.0), 100.0);
}
END_TEST

/* ---- sample writer --------------------------------------------------------- */

START_TEST(test_writer_numbers_and_nesting)
{
    gd_buf_t b;
    gd_jw_t w;
    gd_buf_init(&b);
    gd_jw_init(&w, &b);
    gd_jw_obj_begin(&w);
    gd_jw_key(&w, "a");
    gd_jw_num(&w, 12.5);
    gd_jw_key(&w, "b");
    gd_jw_num(&w, 0.0);
    gd_jw_key(&w, "c");
    gd_jw_num(&w, 3.14159);
    gd_jw_key(&w, "d");
    gd_jw_num(&w, -0.004); /* rounds to zero: no "-0.0" */
    gd_jw_key(&w, "e");
    gd_jw_num(&w, 1.0 / 0.0);
    gd_jw_key(&w, "f");
    gd_jw_num(&w, -2.999);
    gd_jw_key(&w, "g");
    gd_jw_arr_begin(&w);
    gd_jw_u64(&w, UINT64_MAX);
    gd_jw_i64(&w, -42);
    gd_jw_bool(&w, 1);
    gd_jw_null(&w);
    gd_jw_obj_begin(&w);
    gd_jw_obj_end(&w);
    gd_jw_arr_end(&w);
    gd_jw_key(&w, "h");
    gd_jw_num(&w, 2e15);
    gd_jw_obj_end(&w);
    ck_assert_int_eq(gd_jw_error(&w), 0);
    ck_assert_str_eq(b.data, "{\"a\":12.5,\"b\":0.0,\"c\":3.14,\"d\":0.0,\"e\":0.0,\"f\":-3.0,"
                             "\"g\":[18446744073709551615,-42,true,null,{}],"
                             "\"h\":2000000000000000.0}");
    gd_buf_free(&b);
}
END_TEST

START_TEST(test_writer_escapes_strings)
{
    gd_buf_t b;
    gd_jw_t w;
    gd_buf_init(&b);
    gd_jw_init(&w, &b);
    gd_jw_str(&w, "a\"b\\c\n\x01 \xc3\xa9 \xff!");
    ck_assert_int_eq(gd_jw_error(&w), 0);
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\u0001 \xc3\xa9 \xef\xbf\xbd!\"");
    gd_buf_free(&b);
}
END_TEST

START_TEST(test_writer_reports_unbalanced)
{
    gd_buf_t b;
    gd_jw_t w;
    gd_buf_init(&b);
    gd_jw_init(&w, &b);
    gd_jw_obj_begin(&w);
    ck_assert_int_eq(gd_jw_error(&w), -EINVAL);
    gd_jw_obj_end(&w);
    gd_jw_obj_end(&w);
    ck_assert_int_eq(gd_jw_error(&w), -EINVAL);
    gd_buf_free(&b);
}
END_TEST

static Suite *procfs_suite(void)
{
    Suite *s = suite_create("procfs");
    TCase *tc = tcase_create("paths");
    tcase_add_test(tc, test_path_join);
    suite_add_tcase(s, tc);

    tc = tcase_create("reading");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_missing_file_is_enoent);
    tcase_add_test(tc, test_reread_sees_new_content_through_same_fd);
    tcase_add_test(tc, test_buffer_grows_to_file_and_never_shrinks);
    tcase_add_test(tc, test_real_proc_stat_reads_whole);
    suite_add_tcase(s, tc);

    tc = tcase_create("splitting");
    tcase_add_test(tc, test_lines_and_fields_split_in_place);
    tcase_add_test(tc, test_numbers_are_strict);
    suite_add_tcase(s, tc);

    tc = tcase_create("rates");
    tcase_add_test(tc, test_rate_primes_then_divides);
    tcase_add_test(tc, test_counter_wraps_and_resets);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_test(tc, test_writer_numbers_and_nesting);
    tcase_add_test(tc, test_writer_escapes_strings);
    tcase_add_test(tc, test_writer_reports_unbalanced);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(procfs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
