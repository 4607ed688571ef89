/* Check suite for core/log.c: levels, and the hold while filesystems are
 * frozen (lines kept in order and written at the release, the overflow
 * counted and said in one line). stderr is a temporary file here. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static char path[64];
static int saved_stderr = -1;

static void setup(void)
{
    snprintf(path, sizeof(path), "/tmp/check_log.XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    gd_log_set_level(GD_LOG_INFO);
}

static void teardown(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    unlink(path);
}

/* What stderr got, with each line's timestamp prefix left out. */
static char *written(void)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char out[1 << 16];
    size_t n = 0;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        const char *msg = strstr(line, "]: ") ? strstr(line, "]: ") : line;
        const char *level = strstr(line, "] ");
        if (level) msg = level + 2; /* "error: ...", "info: ..." */
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", msg);
    }
    fclose(f);
    out[n] = '\0';
    return out;
}

START_TEST(test_levels)
{
    gd_info("one");
    gd_debug("not shown");
    gd_warn("two %d", 2);
    ck_assert_str_eq(written(), "info: one\nwarn: two 2\n");
}
END_TEST

START_TEST(test_hold_keeps_lines_until_release)
{
    gd_info("before");
    gd_log_hold();
    gd_info("while frozen %d", 1);
    gd_error("while frozen %d", 2);
    ck_assert_str_eq(written(), "info: before\n"); /* nothing reached stderr */
    ck_assert_uint_eq(gd_log_release(), 0);
    gd_info("after");
    ck_assert_str_eq(written(),
                     "info: before\ninfo: while frozen 1\nerror: while frozen 2\ninfo: after\n");
    ck_assert_uint_eq(gd_log_release(), 0); /* no hold: nothing */
}
END_TEST

START_TEST(test_hold_overflow_is_counted)
{
    gd_log_hold();
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    int n = 100; /* ~100 KB, far past GD_LOG_HOLD_BYTES */
    for (int i = 0; i < n; i++)
        gd_info("%03d %s", i, big);
    ck_assert_str_eq(written(), "");
    uint64_t dropped = gd_log_release();
    char *out = written();
    int kept = 0;
    for (char *p = out; (p = strstr(p, "info: ")); p++)
        kept++;
    ck_assert_int_gt(kept, 0);
    ck_assert_uint_eq((uint64_t)kept + dropped, (uint64_t)n);
    ck_assert_uint_le(strlen(out), GD_LOG_HOLD_BYTES + 200);
    ck_assert_ptr_nonnull(strstr(out, "info: 000 x")); /* the first are kept */
    char want[128];
    snprintf(want, sizeof(want), "warn: log: %llu line(s) dropped while filesystems were frozen",
             (unsigned long long)dropped);
    ck_assert_ptr_nonnull(strstr(out, want));
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("hold");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_levels);
    tcase_add_test(tc, test_hold_keeps_lines_until_release);
    tcase_add_test(tc, test_hold_overflow_is_counted);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
