/* Check suite for commands/process.c: process.list from a fixture /proc and
 * from the real one (a busy child tops the CPU list), process.kill on real
 * children, signal names. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/log.h"
#include "commands/dispatch.h"
#include "commands/process.h"
#include "commands/process_read.h"

extern char **environ;

#include "cmd_harness.h"

static void setup(void)
{
    harness_setup();
}

static void teardown(void)
{
    harness_teardown();
}

static void use_fixture_proc(void)
{
    const char *fixtures = getenv("GUESTD_FIXTURES");
    ck_assert_msg(fixtures != NULL, "GUESTD_FIXTURES is not set");
    snprintf(agent.cfg.agent.proc_root, sizeof(agent.cfg.agent.proc_root), "%s/commands/proc",
             fixtures);
}

static pid_t spawn_sh(const char *script)
{
    pid_t pid;
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    ck_assert_int_eq(posix_spawnp(&pid, "sh", NULL, NULL, argv, environ), 0);
    return pid;
}

static const cJSON *find_pid(const cJSON *list, int pid)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, list)
    {
        if ((int)num_field(p, "pid") == pid) return p;
    }
    return NULL;
}

/* ---- the reader, on fixtures ---- */

START_TEST(test_parse_stat_with_odd_names)
{
    gd_proc_info_t info;
    ck_assert_int_eq(gd_proc_parse_stat("12 (a) b) c) S 1 12 12 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 "
                                        "99 1000 5 0 0\n",
                                        &info),
                     0);
    ck_assert_int_eq(info.pid, 12);
    ck_assert_str_eq(info.name, "a) b) c");
    ck_assert_int_eq(info.state, 'S');
    ck_assert_int_eq(info.ppid, 1);
    ck_assert_uint_eq(info.cpu_ticks, 10);
    ck_assert_uint_eq(info.start_ticks, 99);
    ck_assert_uint_eq(info.rss_bytes, 5 * (uint64_t)sysconf(_SC_PAGESIZE));
    /* Truncated lines are refused, not read past their end. */
    ck_assert_int_eq(gd_proc_parse_stat("12 (a) S 1 12", &info), -EINVAL);
    ck_assert_int_eq(gd_proc_parse_stat("12 a S 1", &info), -EINVAL);
    ck_assert_int_eq(gd_proc_parse_stat("", &info), -EINVAL);
}
END_TEST

START_TEST(test_list_from_fixture)
{
    use_fixture_proc();
    long page = sysconf(_SC_PAGESIZE);
    cJSON *reply = call("{\"id\":7,\"cmd\":\"process.list\",\"args\":{\"sort_by\":\"rss\"}}");
    const cJSON *list = cJSON_GetObjectItem(result_of(reply), "processes");
    /* 999 has no status file (it ended mid-listing): skipped. */
    ck_assert_int_eq(cJSON_GetArraySize(list), 3);
    const cJSON *p = cJSON_GetArrayItem(list, 0);
    ck_assert_int_eq((int)num_field(p, "pid"), 4242);
    ck_assert_int_eq((int)num_field(p, "ppid"), 1);
    ck_assert_str_eq(str_field(p, "name"), "my (weird) name");
    ck_assert_str_eq(str_field(p, "user"), "4000000"); /* no such user: the number */
    ck_assert_str_eq(str_field(p, "state"), "R");
    ck_assert(num_field(p, "cpu_pct") == 0.0); /* the fixture does not change */
    ck_assert(num_field(p, "rss_bytes") == 10000.0 * page);
    ck_assert_str_eq(str_field(p, "cmdline"), "/usr/bin/py\xEF\xBF\xBDthon -c print(1)");
    ck_assert(num_field(p, "started_at") == 1700000000000.0 + 123456 * 10);

    p = cJSON_GetArrayItem(list, 1);
    ck_assert_int_eq((int)num_field(p, "pid"), 1);
    ck_assert_str_eq(str_field(p, "name"), "systemd");
    ck_assert_str_eq(str_field(p, "user"), "root");
    ck_assert_str_eq(str_field(p, "state"), "S");
    ck_assert_str_eq(str_field(p, "cmdline"), "/sbin/init splash");
    ck_assert(num_field(p, "started_at") == 1700000000050.0);

    p = cJSON_GetArrayItem(list, 2);
    ck_assert_int_eq((int)num_field(p, "pid"), 77);
    ck_assert_str_eq(str_field(p, "name"), "kworker/0:1-events");
    ck_assert_str_eq(str_field(p, "state"), "I");
    ck_assert_str_eq(str_field(p, "cmdline"), "");
    ck_assert(num_field(p, "rss_bytes") == 0.0);
    cJSON_Delete(reply);

    /* limit keeps the first ones of the order. */
    reply = call("{\"cmd\":\"process.list\",\"args\":{\"sort_by\":\"rss\",\"limit\":2}}");
    list = cJSON_GetObjectItem(result_of(reply), "processes");
    ck_assert_int_eq(cJSON_GetArraySize(list), 2);
    ck_assert_int_eq((int)num_field(cJSON_GetArrayItem(list, 1), "pid"), 1);
    cJSON_Delete(reply);
}
END_TEST

START_TEST(test_list_missing_proc_root)
{
    snprintf(agent.cfg.agent.proc_root, sizeof(agent.cfg.agent.proc_root), "/nonexistent/proc");
    expect_error("not_found", "reading processes", "{\"cmd\":\"process.list\"}");
}
END_TEST

START_TEST(test_list_sorted_by_cpu_and_rss)
{
    pid_t busy = spawn_sh("while :; do :; done");
    usleep(100 * 1000);
    cJSON *reply = call("{\"cmd\":\"process.list\",\"args\":{\"sort_by\":\"cpu\"}}");
    const cJSON *list = cJSON_GetObjectItem(result_of(reply), "processes");
    ck_assert_int_gt(cJSON_GetArraySize(list), 2);
    double prev = 1e9;
    const cJSON *p;
    cJSON_ArrayForEach(p, list)
    {
        double cpu = num_field(p, "cpu_pct");
        ck_assert_msg(cpu <= prev, "not sorted by cpu: %f after %f", cpu, prev);
        prev = cpu;
    }
    const cJSON *child = find_pid(list, busy);
    ck_assert_ptr_nonnull(child);
    /* Any share at all: on a loaded 2-core machine the loop may get a few
     * percent of a core in this window, while an idle process shows 0. */
    ck_assert_msg(num_field(child, "cpu_pct") > 1.0, "a busy loop at %f%%",
                  num_field(child, "cpu_pct"));
    ck_assert_int_eq((int)num_field(child, "ppid"), (int)getpid());
    ck_assert_str_eq(str_field(child, "name"), "sh");
    ck_assert_str_eq(str_field(child, "cmdline"), "sh -c while :; do :; done");
    double now_ms = (double)time(NULL) * 1000;
    ck_assert_msg(fabs(num_field(child, "started_at") - now_ms) < 5000, "started_at %f, now %f",
                  num_field(child, "started_at"), now_ms);
    cJSON_Delete(reply);

    reply = call("{\"cmd\":\"process.list\",\"args\":{\"sort_by\":\"rss\",\"limit\":5}}");
    list = cJSON_GetObjectItem(result_of(reply), "processes");
    ck_assert_int_eq(cJSON_GetArraySize(list), 5);
    prev = 1e18;
    cJSON_ArrayForEach(p, list)
    {
        double rss = num_field(p, "rss_bytes");
        ck_assert_msg(rss <= prev, "not sorted by rss");
        prev = rss;
    }
    cJSON_Delete(reply);
    kill(busy, SIGKILL);
    waitpid(busy, NULL, 0);
}
END_TEST

START_TEST(test_list_bad_args)
{
    expect_error("invalid_args", "sort_by",
                 "{\"cmd\":\"process.list\",\"args\":{\"sort_by\":\"mem\"}}");
    expect_error("invalid_args", "limit", "{\"cmd\":\"process.list\",\"args\":{\"limit\":0}}");
    expect_error("invalid_args", "limit", "{\"cmd\":\"process.list\",\"args\":{\"limit\":\"5\"}}");
    expect_error("invalid_args", "unknown argument",
                 "{\"cmd\":\"process.list\",\"args\":{\"user\":\"x\"}}");
}
END_TEST

/* ---- process.kill ---- */

static void kill_and_expect(const char *signal_json, int want)
{
    pid_t child = spawn_sh("sleep 100");
    cJSON *reply = call("{\"cmd\":\"process.kill\",\"args\":{\"pid\":%d,\"signal\":%s}}",
                        (int)child, signal_json);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(result_of(reply), "killed")));
    cJSON_Delete(reply);
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == want, "signal %s: status %x",
                  signal_json, status);
}

START_TEST(test_kill_by_name_and_number)
{
    kill_and_expect("\"TERM\"", SIGTERM);
    kill_and_expect("\"SIGKILL\"", SIGKILL);
    kill_and_expect("\"usr1\"", SIGUSR1);
    kill_and_expect("9", SIGKILL);
    kill_and_expect("\"15\"", SIGTERM);

    /* Default: TERM. */
    pid_t child = spawn_sh("sleep 100");
    cJSON *reply = call("{\"cmd\":\"process.kill\",\"args\":{\"pid\":%d}}", (int)child);
    result_of(reply);
    cJSON_Delete(reply);
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}
END_TEST

START_TEST(test_kill_gone_pid)
{
    pid_t child = spawn_sh("exit 0");
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    char req[128];
    snprintf(req, sizeof(req), "{\"cmd\":\"process.kill\",\"args\":{\"pid\":%d}}", (int)child);
    expect_error("not_found", "no process", req);
}
END_TEST

static int thread_tid;
static int tid_pipe[2], done_pipe[2];

static void *parked_thread(void *arg)
{
    (void)arg;
    thread_tid = (int)gettid();
    char c;
    ck_assert_int_eq(write(tid_pipe[1], "x", 1), 1); /* tid published */
    ck_assert_int_eq(read(done_pipe[0], &c, 1), 1);  /* until the test is done */
    return NULL;
}

/* A thread id of the agent is the agent: kill() of it signals every thread,
 * so it is refused like the agent's own pid (and the agent lives on). */
START_TEST(test_kill_agent_thread_refused)
{
    ck_assert_int_eq(pipe(tid_pipe), 0);
    ck_assert_int_eq(pipe(done_pipe), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, parked_thread, NULL), 0);
    char c;
    ck_assert_int_eq(read(tid_pipe[0], &c, 1), 1);
    ck_assert_int_ne(thread_tid, (int)getpid());
    char req[128];
    snprintf(req, sizeof(req),
             "{\"cmd\":\"process.kill\",\"args\":{\"pid\":%d,\"signal\":\"KILL\"}}", thread_tid);
    expect_error("invalid_args", "is a thread of the agent", req);
    ck_assert_int_eq(write(done_pipe[1], "x", 1), 1);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    for (int i = 0; i < 2; i++) {
        close(tid_pipe[i]);
        close(done_pipe[i]);
    }
}
END_TEST

START_TEST(test_kill_bad_args)
{
    static const char *const bad[] = {"\"FOO\"", "\"SIGFOO\"",   "0",     "65", "-9",
                                      "\"\"",    "\"RTMIN+99\"", "\"9x\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[128];
        snprintf(req, sizeof(req), "{\"cmd\":\"process.kill\",\"args\":{\"pid\":1,\"signal\":%s}}",
                 bad[i]);
        expect_error("invalid_args", "signal", req);
    }
    expect_error("invalid_args", "signal",
                 "{\"cmd\":\"process.kill\",\"args\":{\"pid\":1,\"signal\":true}}");
    expect_error("invalid_args", "pid", "{\"cmd\":\"process.kill\",\"args\":{\"pid\":0}}");
    expect_error("invalid_args", "pid", "{\"cmd\":\"process.kill\",\"args\":{\"pid\":-1}}");
    expect_error("invalid_args", "pid", "{\"cmd\":\"process.kill\",\"args\":{\"pid\":\"1\"}}");
    expect_error("invalid_args", "missing argument 'pid'",
                 "{\"cmd\":\"process.kill\",\"args\":{}}");
    /* Without an args object at all: still refused, never kill(0, ...). */
    expect_error("invalid_args", "pid", "{\"cmd\":\"process.kill\"}");
    char req[128];
    snprintf(req, sizeof(req), "{\"cmd\":\"process.kill\",\"args\":{\"pid\":%d}}", (int)getpid());
    expect_error("invalid_args", "the agent itself", req);
}
END_TEST

START_TEST(test_kill_not_permitted)
{
    if (geteuid() == 0) return; /* root may signal anything: nothing to refuse */
    expect_error("failed", "Operation not permitted",
                 "{\"cmd\":\"process.kill\",\"args\":{\"pid\":1,\"signal\":\"CONT\"}}");
}
END_TEST

START_TEST(test_signal_names)
{
    const struct {
        const char *json;
        int signo;
    } cases[] = {
        {"\"HUP\"", SIGHUP},
        {"\"sigint\"", SIGINT},
        {"\"Kill\"", SIGKILL},
        {"\"STOP\"", SIGSTOP},
        {"\"CONT\"", SIGCONT},
        {"\"RTMIN\"", SIGRTMIN},
        {"\"RTMIN+2\"", SIGRTMIN + 2},
        {"\"SIGRTMAX-1\"", SIGRTMAX - 1},
        {"1", 1},
        {"\"64\"", 64},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *v = cJSON_Parse(cases[i].json);
        ck_assert_msg(gd_signal_parse(v) == cases[i].signo, "%s", cases[i].json);
        cJSON_Delete(v);
    }
    char buf[16];
    ck_assert_str_eq(gd_signal_name(SIGTERM, buf, sizeof(buf)), "TERM");
    ck_assert_str_eq(gd_signal_name(SIGRTMIN + 3, buf, sizeof(buf)), "RTMIN+3");
    ck_assert_ptr_null(gd_signal_name(0, buf, sizeof(buf)));
}
END_TEST

static Suite *process_suite(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("list");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_parse_stat_with_odd_names);
    tcase_add_test(tc, test_list_from_fixture);
    tcase_add_test(tc, test_list_missing_proc_root);
    tcase_add_test(tc, test_list_sorted_by_cpu_and_rss);
    tcase_add_test(tc, test_list_bad_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("kill");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_kill_by_name_and_number);
    tcase_add_test(tc, test_kill_gone_pid);
    tcase_add_test(tc, test_kill_bad_args);
    tcase_add_test(tc, test_kill_agent_thread_refused);
    tcase_add_test(tc, test_kill_not_permitted);
    tcase_add_test(tc, test_signal_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(process_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
