/* Check suite proving that a steady-state collection cycle makes no heap
 * allocation: this executable interposes malloc and friends (forwarding to
 * glibc's __libc_* entry points) and counts calls while a test says so. */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "collectors/metrics.h"

#if defined(__SANITIZE_ADDRESS__)
#define GD_COUNT_ALLOCS 0 /* ASan owns malloc; the plain build runs this suite */
#elif !defined(__GLIBC__)
#define GD_COUNT_ALLOCS 0 /* musl has no __libc_* entry points to forward to */
#else
#define GD_COUNT_ALLOCS 1
#endif

static atomic_int counting;
static atomic_long allocations;

#if GD_COUNT_ALLOCS
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static void count(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void *malloc(size_t size)
{
    count();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    count();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    count();
    return __libc_realloc(p, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    count();
    void *p = __libc_memalign(align, size);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t size)
{
    count();
    return __libc_memalign(align, size);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

static uv_loop_t loop;
static uint64_t fake_now = 1000000000000ull;

static uint64_t fake_clock(void *ctx)
{
    return fake_now;
}

static void loop_setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    gd_log_set_level(GD_LOG_ERROR);
}

static void loop_teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* One cycle as the agent runs it: the timer fires (a second later), the
 * sample is written into the reused buffer, then the loop runs the
 * thread-pool callbacks (statvfs answers). No ck_assert in here: Check
 * allocates to record where an assertion is. */
static int cycle(gd_metrics_t *m, gd_buf_t *buf)
{
    fake_now += 1000000000ull;
    int r = gd_metrics_collect(m, GD_METRICS_ALL, buf);
    uv_run(&loop, UV_RUN_DEFAULT);
    return r;
}

static long allocations_in_cycles(const char *proc_root, const char *sys_root, int cycles)
{
    gd_config_t cfg;
    gd_config_defaults(&cfg);
    snprintf(cfg.agent.proc_root, sizeof(cfg.agent.proc_root), "%s", proc_root);
    snprintf(cfg.agent.sys_root, sizeof(cfg.agent.sys_root), "%s", sys_root);
    gd_metrics_opts_t opts = {.now_ns = fake_clock};
    gd_metrics_t *m = NULL;
    char err[256];
    ck_assert_int_eq(gd_metrics_new_ex(&m, &loop, &cfg, &opts, err, sizeof(err)), 0);
    ck_assert_uint_eq(gd_metrics_enabled_mask(m) & 0x1ff, 0x1ff); /* all nine run */
    gd_buf_t buf;
    gd_buf_init(&buf);
    for (int i = 0; i < 5; i++) /* warm-up: buffers grow to their files' size */
        ck_assert_int_eq(cycle(m, &buf), 0);
    int failed = 0;
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    for (int i = 0; i < cycles; i++)
        failed |= cycle(m, &buf);
    atomic_store(&counting, 0);
    ck_assert_int_eq(failed, 0);
    ck_assert_uint_eq(gd_metrics_total_errors(m), 0);
    ck_assert_ptr_nonnull(strstr(buf.data, "\"processes\""));
    gd_buf_free(&buf);
    gd_metrics_free(m);
    return atomic_load(&allocations);
}

START_TEST(test_counter_sees_allocations)
{
    /* The harness itself: an allocation while counting is counted. */
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    cJSON *o = cJSON_CreateObject();
    atomic_store(&counting, 0);
    cJSON_Delete(o);
    ck_assert_int_ge(atomic_load(&allocations), GD_COUNT_ALLOCS);
}
END_TEST

START_TEST(test_steady_state_live_machine)
{
    long n = allocations_in_cycles("/proc", "/sys", 200);
    ck_assert_msg(n == 0, "%ld allocations in 200 cycles", n);
}
END_TEST

START_TEST(test_steady_state_fixture)
{
    const char *fixtures = getenv("GUESTD_FIXTURES");
    char proc[512], sys[512];
    ck_assert_ptr_nonnull(fixtures);
    snprintf(proc, sizeof(proc), "%s/proc-snap1", fixtures);
    snprintf(sys, sizeof(sys), "%s/sys-snap", fixtures);
    long n = allocations_in_cycles(proc, sys, 200);
    ck_assert_msg(n == 0, "%ld allocations in 200 cycles", n);
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("collectors_alloc");
    TCase *tc = tcase_create("steady_state");
    tcase_add_checked_fixture(tc, loop_setup, loop_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_counter_sees_allocations);
    if (GD_COUNT_ALLOCS) {
        tcase_add_test(tc, test_steady_state_live_machine);
        tcase_add_test(tc, test_steady_state_fixture);
    } else {
        fprintf(stderr, "collectors_alloc: allocation counting is off under ASan\n");
    }
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(alloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
