/* Check suite for commands/child: the one child runner, with real children
 * (/bin/sh, cat, env) on a real loop: exit status and signal, the time
 * limit and cancellation stopping the whole process group, output caps,
 * the fixed environment, stdin, and a program that cannot start. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "commands/child.h"
#include "commands/child_env.h"

static uv_loop_t loop;
static uv_timer_t guard;
static uv_timer_t aux; /* a test's own timer: cancel or abort after a while */
static gd_child_t child;
static int done_calls;
static uint64_t started_ns, done_ns;

/* What a streaming child handed over, per stream, and its ends. */
static gd_buf_t streamed[2];
static int stream_ends[2];

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as guestd's main() does */
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(uv_timer_init(&loop, &guard), 0);
    done_calls = 0;
    for (int i = 0; i < 2; i++) {
        gd_buf_init(&streamed[i]);
        stream_ends[i] = 0;
    }
}

static void teardown(void)
{
    gd_child_free(&child);
    for (int i = 0; i < 2; i++)
        gd_buf_free(&streamed[i]);
    uv_close((uv_handle_t *)&guard, NULL);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    /* Every handle the runner opened is closed: a leaked one fails here. */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static void on_done(gd_child_t *c)
{
    ck_assert_ptr_eq(c, &child);
    ck_assert_ptr_eq(c->data, &loop);
    done_calls++;
    done_ns = uv_hrtime();
}

static void on_output(gd_child_t *c, int which, const char *data, size_t n)
{
    ck_assert_ptr_eq(c, &child);
    ck_assert(which == GD_CHILD_STDOUT || which == GD_CHILD_STDERR);
    if (!data) {
        stream_ends[which]++;
        return;
    }
    ck_assert_int_eq(gd_buf_append(&streamed[which], data, n), 0);
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    gd_child_abort(&child); /* so that teardown's loop ends */
    ck_abort_msg("the child did not end in time");
}

/* Options for argv that capture both streams, 64 KiB each, 10 s limit. */
static gd_child_opts_t opts_for(char *const *argv)
{
    gd_child_opts_t o = {
        .argv = argv,
        .out = GD_CHILD_CAPTURE,
        .err = GD_CHILD_CAPTURE,
        .max_output = 65536,
        .timeout_ms = 10000,
        .grace_ms = 100,
        .drain_ms = 1000,
        .done = on_done,
        .data = &loop,
    };
    return o;
}

static void start(const gd_child_opts_t *o)
{
    uv_timer_start(&guard, on_guard, 15000, 0);
    started_ns = uv_hrtime();
    gd_child_start(&child, &loop, o);
}

/* Runs the loop until done has been called once. */
static void wait_done(void)
{
    while (done_calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&guard);
    ck_assert_int_eq(done_calls, 1);
}

static void run(const gd_child_opts_t *o)
{
    start(o);
    wait_done();
}

static uint64_t elapsed_ms(void)
{
    return (done_ns - started_ns) / 1000000u;
}

static const char *out_text(int which)
{
    return child.out[which].kept.data ? child.out[which].kept.data : "";
}

/* Whether pid is gone (or a zombie nobody reaped yet), within 2 s. */
static int process_gone(pid_t pid)
{
    for (int i = 0; i < 200; i++) {
        if (kill(pid, 0) != 0 && errno == ESRCH) return 1;
        char path[64], stat[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(stat, 1, sizeof(stat) - 1, f);
            fclose(f);
            stat[n] = '\0';
            const char *paren = strrchr(stat, ')');
            if (paren && paren[1] == ' ' && paren[2] == 'Z') return 1;
        }
        usleep(10000);
    }
    return 0;
}

/* ---- exit status and signal --------------------------------------------- */

START_TEST(exit_code_and_both_streams)
{
    char *const argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 7", NULL};
    gd_child_opts_t o = opts_for(argv);
    run(&o);
    ck_assert_int_eq(child.spawn_error, 0);
    ck_assert_int_gt(child.pid, 0);
    ck_assert_int_eq(child.exited, 1);
    ck_assert_int_eq(child.exit_status, 7);
    ck_assert_int_eq(child.term_signal, 0);
    ck_assert_int_eq(child.timed_out, 0);
    ck_assert_int_eq(child.cancelled, 0);
    ck_assert_str_eq(out_text(GD_CHILD_STDOUT), "out\n");
    ck_assert_str_eq(out_text(GD_CHILD_STDERR), "err\n");
    ck_assert_int_eq(child.out[0].truncated, 0);
    ck_assert_int_eq(child.out[1].truncated, 0);
}
END_TEST

START_TEST(killed_by_a_signal)
{
    char *const argv[] = {"/bin/sh", "-c", "kill -USR1 $$; sleep 5", NULL};
    gd_child_opts_t o = opts_for(argv);
    run(&o);
    ck_assert_int_eq(child.exited, 1);
    ck_assert_int_eq(child.term_signal, SIGUSR1);
    ck_assert_int_eq(child.timed_out, 0);
}
END_TEST

START_TEST(own_session_and_process_group)
{
    /* cat is the child itself: its pid, process group and session are one. */
    char *const argv[] = {"cat", "/proc/self/stat", NULL};
    gd_child_opts_t o = opts_for(argv);
    run(&o);
    ck_assert_int_eq(child.exit_status, 0);
    int pid = 0, pgrp = 0, session = 0;
    const char *paren = strrchr(out_text(GD_CHILD_STDOUT), ')');
    ck_assert_ptr_nonnull(paren);
    ck_assert_int_eq(sscanf(out_text(GD_CHILD_STDOUT), "%d", &pid), 1);
    ck_assert_int_eq(sscanf(paren + 2, "%*c %*d %d %d", &pgrp, &session), 2);
    ck_assert_int_eq(pid, child.pid);
    ck_assert_int_eq(pgrp, child.pid);
    ck_assert_int_eq(session, child.pid);
    ck_assert_int_ne(session, (int)getsid(0));
}
END_TEST

/* ---- time limit, cancel, abort ------------------------------------------ */

START_TEST(timeout_terminates)
{
    char *const argv[] = {"/bin/sh", "-c", "sleep 30", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.timeout_ms = 200;
    o.grace_ms = 5000;
    run(&o);
    ck_assert_int_eq(child.timed_out, 1);
    ck_assert_int_eq(child.cancelled, 0);
    ck_assert_int_eq(child.term_signal, SIGTERM);
    ck_assert_uint_ge(elapsed_ms(), 200);
    ck_assert_uint_lt(elapsed_ms(), 3000); /* not the grace period, not the sleep */
}
END_TEST

/* sh and the sleep it started both ignore SIGTERM: the SIGKILL after the
 * grace period reaches the whole group, grandchild included. */
START_TEST(timeout_kills_the_whole_group)
{
    char *const argv[] = {"/bin/sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.timeout_ms = 200;
    o.grace_ms = 300;
    run(&o);
    ck_assert_int_eq(child.timed_out, 1);
    ck_assert_int_eq(child.term_signal, SIGKILL);
    ck_assert_uint_ge(elapsed_ms(), 500);
    ck_assert_uint_lt(elapsed_ms(), 5000);
    int grandchild = atoi(out_text(GD_CHILD_STDOUT));
    ck_assert_int_gt(grandchild, 0);
    ck_assert_msg(process_gone(grandchild), "the grandchild %d outlived the timeout", grandchild);
}
END_TEST

START_TEST(kill_at_timeout_skips_sigterm)
{
    char *const argv[] = {"/bin/sh", "-c", "trap '' TERM; sleep 30", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.timeout_ms = 200;
    o.grace_ms = 20000; /* would be waited for after a SIGTERM */
    o.flags = GD_CHILD_KILL_AT_TIMEOUT;
    run(&o);
    ck_assert_int_eq(child.timed_out, 1);
    ck_assert_int_eq(child.term_signal, SIGKILL);
    ck_assert_uint_lt(elapsed_ms(), 5000);
}
END_TEST

static void cancel_cb(uv_timer_t *t)
{
    (void)t;
    gd_child_cancel(&child);
}

START_TEST(cancel_terminates_the_group)
{
    char *const argv[] = {"/bin/sh", "-c", "sleep 30 & echo $!; wait", NULL};
    gd_child_opts_t o = opts_for(argv);
    uv_timer_t *t = &aux;
    uv_timer_init(&loop, t);
    start(&o);
    uv_timer_start(t, cancel_cb, 200, 0);
    wait_done();
    uv_close((uv_handle_t *)t, NULL); /* teardown's loop finishes it */
    ck_assert_int_eq(child.cancelled, 1);
    ck_assert_int_eq(child.timed_out, 0);
    ck_assert_int_eq(child.term_signal, SIGTERM);
    ck_assert_uint_lt(elapsed_ms(), 5000);
    int grandchild = atoi(out_text(GD_CHILD_STDOUT));
    ck_assert_int_gt(grandchild, 0);
    ck_assert(process_gone(grandchild));
    /* Cancelling what has ended does nothing. */
    gd_child_cancel(&child);
    ck_assert_int_eq(child.term_signal, SIGTERM);
}
END_TEST

static void abort_cb(uv_timer_t *t)
{
    (void)t;
    gd_child_abort(&child);
}

START_TEST(abort_closes_everything_at_once)
{
    char *const argv[] = {"/bin/sh", "-c", "echo started; exec sleep 30", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.output = on_output;
    uv_timer_t *t = &aux;
    uv_timer_init(&loop, t);
    start(&o);
    int pid = child.pid;
    uv_timer_start(t, abort_cb, 200, 0);
    wait_done();
    uv_close((uv_handle_t *)t, NULL); /* teardown's loop finishes it */
    ck_assert_int_eq(child.aborted, 1);
    ck_assert_int_eq(child.exited, 0);
    ck_assert_str_eq(streamed[0].data, "started\n");
    /* No end of stream is reported after an abort. */
    ck_assert_int_eq(stream_ends[0] + stream_ends[1], 0);
    ck_assert(process_gone(pid));
}
END_TEST

START_TEST(reap_group_at_exit)
{
    /* sh exits at once; the sleep it left holds stdout. */
    char *const argv[] = {"/bin/sh", "-c", "sleep 30 & echo $!", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.drain_ms = 20000;
    o.flags = GD_CHILD_REAP_GROUP;
    run(&o);
    ck_assert_int_eq(child.exit_status, 0);
    ck_assert_uint_lt(elapsed_ms(), 5000); /* EOF came: the drain bound was not needed */
    ck_assert(process_gone(atoi(out_text(GD_CHILD_STDOUT))));
}
END_TEST

START_TEST(drain_bounds_a_held_pipe)
{
    /* Without REAP_GROUP a background process keeps the pipe open: the
     * runner stops waiting for EOF after drain_ms. */
    char *const argv[] = {"/bin/sh", "-c", "sleep 30 & echo $!", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.drain_ms = 300;
    run(&o);
    int grandchild = atoi(out_text(GD_CHILD_STDOUT));
    ck_assert_int_gt(grandchild, 0);
    ck_assert_int_eq(kill(grandchild, 0), 0); /* still there */
    kill(grandchild, SIGKILL);
    ck_assert_int_eq(child.exit_status, 0);
    ck_assert_uint_ge(elapsed_ms(), 300);
    ck_assert_uint_lt(elapsed_ms(), 5000);
}
END_TEST

/* ---- output ------------------------------------------------------------- */

START_TEST(output_cap_truncates)
{
    char *const argv[] = {"/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; printf 1234 >&2",
                          NULL};
    gd_child_opts_t o = opts_for(argv);
    o.max_output = 1000;
    run(&o);
    ck_assert_int_eq(child.exit_status, 0);
    ck_assert_uint_eq(child.out[0].kept.len, 1000);
    ck_assert_int_eq(child.out[0].truncated, 1);
    ck_assert_uint_eq(strspn(out_text(0), "x"), 1000);
    ck_assert_str_eq(out_text(GD_CHILD_STDERR), "1234");
    ck_assert_int_eq(child.out[1].truncated, 0);
    /* Memory stays at the cap, not at what was written. */
    ck_assert_uint_le(child.out[0].kept.cap, 1001);
}
END_TEST

START_TEST(output_at_the_cap_is_not_truncated)
{
    char *const argv[] = {"/bin/sh", "-c", "printf 12345", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.max_output = 5;
    run(&o);
    ck_assert_str_eq(out_text(0), "12345");
    ck_assert_int_eq(child.out[0].truncated, 0);
}
END_TEST

START_TEST(merged_and_discarded_streams)
{
    char *const argv[] = {"/bin/sh", "-c", "echo a; echo b >&2; echo c", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.err = GD_CHILD_MERGE;
    run(&o);
    ck_assert_str_eq(out_text(GD_CHILD_STDOUT), "a\nb\nc\n");
    ck_assert_uint_eq(child.out[1].kept.len, 0);

    gd_child_free(&child);
    done_calls = 0;
    o.out = GD_CHILD_DISCARD;
    o.err = GD_CHILD_CAPTURE;
    run(&o);
    ck_assert_uint_eq(child.out[0].kept.len, 0);
    ck_assert_str_eq(out_text(GD_CHILD_STDERR), "b\n");
}
END_TEST

START_TEST(streaming_hands_output_over)
{
    char *const argv[] = {"/bin/sh", "-c", "printf abcdef; printf 12 >&2", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.max_output = 4;
    o.output = on_output;
    run(&o);
    ck_assert_str_eq(streamed[0].data, "abcd");
    ck_assert_str_eq(streamed[1].data, "12");
    ck_assert_int_eq(child.out[0].truncated, 1);
    ck_assert_int_eq(child.out[1].truncated, 0);
    ck_assert_uint_eq(child.out[0].used, 4);
    ck_assert_int_eq(stream_ends[0], 1);
    ck_assert_int_eq(stream_ends[1], 1);
    ck_assert_ptr_null(child.out[0].kept.data); /* nothing kept when streamed */
}
END_TEST

/* ---- environment -------------------------------------------------------- */

/* env's output, sorted, as one string of lines. */
static char *sorted_lines(const char *text)
{
    char *copy = strdup(text);
    char *lines[64];
    int n = 0;
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char *t = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = t;
        }
    char *out = calloc(1, strlen(text) + 2);
    for (int i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    free(copy);
    return out;
}

START_TEST(environment_is_the_base)
{
    /* Set in this process: a child must not see it, nor this HOME or PATH. */
    setenv("GUESTD_CHECK_CHILD_LEAK", "1", 1);
    setenv("HOME", "/home/check-child", 1);
    char *const argv[] = {"env", NULL};
    gd_child_opts_t o = opts_for(argv);
    run(&o);
    unsetenv("GUESTD_CHECK_CHILD_LEAK");
    ck_assert_int_eq(child.exit_status, 0);
    char *got = sorted_lines(out_text(0));
    ck_assert_str_eq(got, "HOME=/root\nLANG=C.UTF-8\nPATH=" GD_CHILD_ENV_PATH "\n");
    free(got);
}
END_TEST

START_TEST(environment_extras_add_and_replace)
{
    char *const env[] = {"FOO=bar baz", "HOME=/tmp", NULL};
    char *const argv[] = {"env", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.env = env;
    run(&o);
    char *got = sorted_lines(out_text(0));
    ck_assert_str_eq(got, "FOO=bar baz\nHOME=/tmp\nLANG=C.UTF-8\nPATH=" GD_CHILD_ENV_PATH "\n");
    free(got);
}
END_TEST

START_TEST(environment_replaced_whole)
{
    char *const env[] = {"ONLY=1", NULL};
    char *const argv[] = {"/usr/bin/env", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.env = env;
    o.flags = GD_CHILD_ENV_REPLACE;
    run(&o);
    ck_assert_str_eq(out_text(0), "ONLY=1\n");
}
END_TEST

/* ---- stdin -------------------------------------------------------------- */

START_TEST(stdin_fed_then_closed)
{
    /* Larger than a pipe's buffer, with NULs: written as the child reads. */
    size_t n = 300000;
    char *input = malloc(n);
    for (size_t i = 0; i < n; i++)
        input[i] = (char)(i % 251);
    char *const argv[] = {"cat", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.flags = GD_CHILD_STDIN;
    o.input = input;
    o.input_len = n;
    o.max_output = n;
    run(&o);
    ck_assert_int_eq(child.exit_status, 0);
    ck_assert_uint_eq(child.out[0].kept.len, n);
    ck_assert_int_eq(memcmp(child.out[0].kept.data, input, n), 0);
    ck_assert_ptr_null(child.input); /* the copy is gone once written */
    free(input);
}
END_TEST

START_TEST(stdin_empty_or_absent_is_eof)
{
    char *const argv[] = {"/bin/sh", "-c", "wc -c; ls -l /proc/self/fd/0 >&2", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.flags = GD_CHILD_STDIN; /* an empty pipe */
    run(&o);
    ck_assert_int_eq(atoi(out_text(0)), 0);
    ck_assert_ptr_nonnull(strstr(out_text(1), "pipe:"));

    gd_child_free(&child);
    done_calls = 0;
    o.flags = 0; /* /dev/null */
    run(&o);
    ck_assert_int_eq(atoi(out_text(0)), 0);
    ck_assert_ptr_nonnull(strstr(out_text(1), "/dev/null"));
}
END_TEST

/* ---- a program that cannot start ---------------------------------------- */

START_TEST(missing_program)
{
    char *const argv[] = {"/nonexistent/guestd-no-such-program", NULL};
    gd_child_opts_t o = opts_for(argv);
    start(&o);
    /* Known at once, before the loop runs. */
    ck_assert_int_eq(child.spawn_error, -ENOENT);
    ck_assert_int_eq(child.pid, 0);
    ck_assert_int_eq(done_calls, 0);
    wait_done();
    ck_assert_int_eq(child.exited, 0);
    ck_assert_str_eq(strerror(-child.spawn_error), "No such file or directory");
}
END_TEST

START_TEST(missing_program_in_path)
{
    char *const argv[] = {"guestd-no-such-program", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.flags = GD_CHILD_STDIN;
    o.input = "secret";
    o.input_len = 6;
    run(&o);
    ck_assert_int_eq(child.spawn_error, -ENOENT);
    ck_assert_ptr_null(child.input);
}
END_TEST

START_TEST(bad_working_directory)
{
    char *const argv[] = {"/bin/sh", "-c", "true", NULL};
    gd_child_opts_t o = opts_for(argv);
    o.cwd = "/nonexistent-guestd-dir";
    run(&o);
    ck_assert_int_eq(child.spawn_error, -ENOENT);
    ck_assert_int_eq(child.pid, 0);
}
END_TEST

/* No descriptor left for the pipes: a clear error before any spawn, and
 * done still comes once (the runner's path without a process handle). */
START_TEST(no_descriptor_for_the_pipes)
{
    struct rlimit old, low;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    int top = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(top, 0);
    low = old;
    low.rlim_cur = (rlim_t)top + 1;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fill[256], n_fill = 0; /* the holes below the limit */
    while (n_fill < 256 && (fill[n_fill] = open("/dev/null", O_RDONLY)) >= 0)
        n_fill++;
    char *const argv[] = {"/bin/sh", "-c", "true", NULL};
    gd_child_opts_t o = opts_for(argv);
    start(&o);
    int err = child.spawn_error;
    for (int i = 0; i < n_fill; i++)
        close(fill[i]);
    close(top);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_int_eq(err, -EMFILE);
    ck_assert_int_eq(child.pid, 0);
    wait_done();
    ck_assert_int_eq(child.exited, 0);
}
END_TEST

START_TEST(split_argv)
{
    char line[] = "  /sbin/shutdown\t-h   now ";
    char *argv[3];
    ck_assert_int_eq(gd_child_split_argv(line, argv, 3), 2);
    ck_assert_str_eq(argv[0], "/sbin/shutdown");
    ck_assert_str_eq(argv[1], "-h");
    ck_assert_ptr_null(argv[2]);
    char empty[] = " \t ";
    ck_assert_int_eq(gd_child_split_argv(empty, argv, 3), 0);
}
END_TEST

static Suite *child_suite(void)
{
    Suite *s = suite_create("child");
    struct {
        const char *name;
        const TTest *tests[8];
    } cases[] = {
        {"status", {exit_code_and_both_streams, killed_by_a_signal, own_session_and_process_group}},
        {"limits",
         {timeout_terminates, timeout_kills_the_whole_group, kill_at_timeout_skips_sigterm,
          cancel_terminates_the_group, abort_closes_everything_at_once, reap_group_at_exit,
          drain_bounds_a_held_pipe}},
        {"output",
         {output_cap_truncates, output_at_the_cap_is_not_truncated, merged_and_discarded_streams,
          streaming_hands_output_over}},
        {"environment",
         {environment_is_the_base, environment_extras_add_and_replace, environment_replaced_whole}},
        {"stdin", {stdin_fed_then_closed, stdin_empty_or_absent_is_eof}},
        {"errors",
         {missing_program, missing_program_in_path, bad_working_directory,
          no_descriptor_for_the_pipes, split_argv}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        for (int j = 0; j < 8 && cases[i].tests[j]; j++)
            tcase_add_test(tc, cases[i].tests[j]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(child_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
