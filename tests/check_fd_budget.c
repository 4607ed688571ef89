/* Check suite for the fd budget (core/fd_budget.c): the shares of the
 * open-file limit, pinned for the limits a guest meets, never more than
 * the limit, and read from RLIMIT_NOFILE; and the collectors' pool that
 * counts the files they keep open. */
#include <check.h>
#include <stdint.h>
#include <sys/resource.h>

#include "core/fd_budget.h"
#include "collectors/collector.h"

static void expect(uint64_t limit, size_t headroom, size_t commands, size_t collectors,
                   size_t files, unsigned max_commands)
{
    gd_fd_budget_t b;
    gd_fd_budget_compute(&b, limit);
    ck_assert_uint_eq(b.headroom, headroom);
    ck_assert_uint_eq(b.commands, commands);
    ck_assert_uint_eq(b.collectors, collectors);
    ck_assert_uint_eq(b.file_handles, files);
    ck_assert_uint_eq(b.max_commands, max_commands);
}

START_TEST(shares_of_the_usual_limits)
{
    /* systemd's default soft limit: every share full, 64 commands. */
    expect(1024, 64, 264, 348, 174, 64);
    /* The integration test's limit (docs/configuration.md's example). */
    expect(256, 64, 96, 48, 24, 22);
    expect(128, 64, 32, 16, 8, 6);
    /* systemd's hard limit, and more: the caps. */
    expect(524288, 64, 264, 65536, 1024, 64);
    expect(UINT64_MAX, 64, 264, 65536, 1024, 64);
}
END_TEST

START_TEST(shares_never_exceed_the_limit)
{
    static const uint64_t limits[] = {0, 1, 2, 7, 16, 64, 100, 255, 344, 1000, 4096, 65536};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        gd_fd_budget_t b;
        gd_fd_budget_compute(&b, limits[i]);
        ck_assert_uint_le(b.headroom + b.commands + b.collectors + b.file_handles, limits[i]);
        ck_assert_uint_ge(b.max_commands, 1);
        ck_assert_uint_le(b.max_commands, GD_FD_COMMANDS_MAX);
    }
}
END_TEST

START_TEST(from_rlimit_reads_the_soft_limit)
{
    struct rlimit old, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    rl = old;
    rl.rlim_cur = 256;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    gd_fd_budget_t b;
    gd_fd_budget_from_rlimit(&b);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_uint_eq(b.limit, 256);
    ck_assert_uint_eq(b.file_handles, 24);
}
END_TEST

START_TEST(pool_counts_up_to_its_budget)
{
    gd_fd_pool_t p = {.budget = 2};
    ck_assert_int_eq(gd_fd_pool_take(&p), 1);
    ck_assert_int_eq(gd_fd_pool_take(&p), 1);
    ck_assert_int_eq(gd_fd_pool_take(&p), 0); /* past it: open and close each time */
    ck_assert_uint_eq(p.held, 2);
    gd_fd_pool_give(&p);
    ck_assert_int_eq(gd_fd_pool_take(&p), 1);
    gd_fd_pool_give(&p);
    gd_fd_pool_give(&p);
    gd_fd_pool_give(&p); /* one too many never wraps */
    ck_assert_uint_eq(p.held, 0);
}
END_TEST

static Suite *fd_budget_suite(void)
{
    Suite *s = suite_create("fd_budget");
    TCase *tc = tcase_create("shares");
    tcase_add_test(tc, shares_of_the_usual_limits);
    tcase_add_test(tc, shares_never_exceed_the_limit);
    tcase_add_test(tc, from_rlimit_reads_the_soft_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("pool");
    tcase_add_test(tc, pool_counts_up_to_its_budget);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fd_budget_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
