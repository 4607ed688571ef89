/* Check suite for commands/exec: real children on a real loop, driven
 * through the dispatcher as a host would, with replies and exec.output events
 * recorded in the order the host would see them. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "agent/agent.h"
#include "core/base64.h"
#include "core/config.h"
#include "commands/dispatch.h"
#include "commands/exec.h"

/* ---- harness: a loop, a bus, a dispatcher, an agent around them -------- */

/* One line the host would have received: a reply or an event. */
typedef struct {
    int is_event;
    char *line; /* as sent, without the newline */
    size_t len;
    cJSON *json;
    uint64_t at_ns;
} out_t;

static uv_loop_t loop;
static gd_agent_t agent;
static gd_dispatch_t disp;
static gd_bus_sub_t sub;
static uv_timer_t guard;
static int guard_fired;
static out_t *outs;
static size_t n_outs, cap_outs;

static void record(int is_event, const char *line, size_t len)
{
    while (len > 0 && line[len - 1] == '\n')
        len--;
    if (n_outs == cap_outs) {
        cap_outs = cap_outs ? cap_outs * 2 : 64;
        outs = realloc(outs, cap_outs * sizeof(*outs));
        ck_assert_ptr_nonnull(outs);
    }
    out_t *o = &outs[n_outs++];
    o->is_event = is_event;
    o->line = malloc(len + 1);
    ck_assert_ptr_nonnull(o->line);
    memcpy(o->line, line, len);
    o->line[len] = '\0';
    o->len = len;
    o->json = cJSON_ParseWithLength(line, len);
    ck_assert_msg(o->json != NULL, "not JSON: %.200s", o->line);
    o->at_ns = uv_hrtime();
}

static void on_send(void *ctx, uint64_t conn_gen, const char *line, size_t len)
{
    record(0, line, len);
}

static int on_event(gd_bus_sub_t *s, gd_event_t *ev)
{
    record(1, ev->line, ev->len);
    return 0;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as guestd's main() does */
    n_outs = cap_outs = 0;
    outs = NULL;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    memset(&agent, 0, sizeof(agent));
    agent.loop = &loop;
    gd_config_defaults(&agent.cfg);
    ck_assert_int_eq(gd_bus_init(&agent.bus, &loop), 0);
    ck_assert_int_eq(gd_bus_subscribe(&agent.bus, &sub, "test", 8192, on_event, NULL), 0);
    agent.dispatch = &disp;
    gd_agent_env_bind(&agent);
    gd_dispatch_init(&disp, &agent.env, on_send, NULL);
    gd_dispatch_configure(&disp, "*", "", (unsigned)agent.cfg.commands.max_concurrent);
    ck_assert_int_eq(uv_timer_init(&loop, &guard), 0);
}

static void teardown(void)
{
    /* Whatever a failed test left running goes the way of an agent stop. */
    gd_exec_shutdown(&agent.env);
    gd_dispatch_close(&disp);
    gd_bus_unsubscribe(&sub);
    gd_bus_close(&agent.bus, NULL);
    uv_close((uv_handle_t *)&guard, NULL);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    gd_dispatch_free(&disp);
    for (size_t i = 0; i < n_outs; i++) {
        free(outs[i].line);
        cJSON_Delete(outs[i].json);
    }
    free(outs);
}

/* Sends one request line, printf-style. */
static void request(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void request(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    gd_dispatch_line(&disp, 1, line, (size_t)n);
    free(line);
}

static int id_is(const cJSON *json, const char *id)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, "id");
    return cJSON_IsString(v) && strcmp(v->valuestring, id) == 0;
}

/* Index of the reply to id in outs, or -1. */
static long find_reply(const char *id)
{
    for (size_t i = 0; i < n_outs; i++)
        if (!outs[i].is_event && id_is(outs[i].json, id)) return (long)i;
    return -1;
}

static void on_guard(uv_timer_t *t)
{
    guard_fired = 1;
}

/* Arms the guard ms from now. The loop's clock is cached: refresh it first,
 * or a guard armed from a stale time fires at the start of the next
 * uv_run(ONCE), which then blocks in poll for whatever comes next. */
static void guard_start(unsigned ms)
{
    guard_fired = 0;
    uv_update_time(&loop);
    uv_timer_start(&guard, on_guard, ms, 0);
}

/* Runs the loop until the reply to id arrives (or timeout_ms passes). */
static out_t *wait_reply(const char *id, unsigned timeout_ms)
{
    guard_start(timeout_ms);
    long i;
    while ((i = find_reply(id)) < 0 && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&guard);
    ck_assert_msg(i >= 0, "no reply to '%s' within %u ms", id, timeout_ms);
    return &outs[i];
}

/* Runs the loop for about ms milliseconds. */
static void run_for(unsigned ms)
{
    guard_start(ms);
    while (!guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
}

static const cJSON *result_of(const out_t *o)
{
    ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o->json, "ok")), "not ok: %.300s",
                  o->line);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o->json, "result");
    ck_assert(cJSON_IsObject(r));
    return r;
}

static const char *error_code(const out_t *o)
{
    ck_assert_msg(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o->json, "ok")),
                  "not an error: %.300s", o->line);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o->json, "error");
    return cJSON_GetObjectItemCaseSensitive(err, "code")->valuestring;
}

static const char *error_message(const out_t *o)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o->json, "error");
    return cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring;
}

static const char *str(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    ck_assert_msg(cJSON_IsString(v), "'%s' is not a string", key);
    return v->valuestring;
}

static double num(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    ck_assert_msg(cJSON_IsNumber(v), "'%s' is not a number", key);
    return v->valuedouble;
}

static int flag(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    ck_assert_msg(cJSON_IsBool(v), "'%s' is not a boolean", key);
    return cJSON_IsTrue(v);
}

static int is_null(const cJSON *r, const char *key)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, key));
}

/* Runs one exec to completion and returns its result (which must be ok). */
static const cJSON *run_exec(const char *id, const char *args_json)
{
    request("{\"id\":\"%s\",\"cmd\":\"exec\",\"args\":%s}", id, args_json);
    return result_of(wait_reply(id, 20000));
}

/* Whether any process of group pgid is still alive. The test process is made
 * a subreaper, so orphaned members are its children: reap the dead ones, then
 * kill(-pgid, 0) says ESRCH once nothing of the group is left. */
static int group_alive(int pgid)
{
    while (waitpid(-pgid, NULL, WNOHANG) > 0)
        ;
    return !(kill(-pgid, 0) == -1 && errno == ESRCH);
}

/* Waits up to ms for the group to be gone; returns whether it is. */
static int group_gone_within(int pgid, unsigned ms)
{
    for (unsigned waited = 0; waited <= ms; waited += 10) {
        if (!group_alive(pgid)) return 1;
        usleep(10000);
    }
    return 0;
}

static long vm_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

/* ---- basics ------------------------------------------------------------ */

START_TEST(test_true)
{
    const cJSON *r = run_exec("t", "{\"argv\":[\"true\"]}");
    ck_assert_int_eq((int)num(r, "exit_code"), 0);
    ck_assert(is_null(r, "signal"));
    ck_assert(!flag(r, "timed_out"));
    ck_assert(!flag(r, "cancelled"));
    ck_assert_str_eq(str(r, "stdout"), "");
    ck_assert_str_eq(str(r, "stderr"), "");
    ck_assert(!flag(r, "stdout_truncated"));
    ck_assert(!flag(r, "stderr_truncated"));
    ck_assert(num(r, "duration_ms") >= 0 && num(r, "duration_ms") < 5000);
    ck_assert_uint_eq(disp.running, 0);
}
END_TEST

START_TEST(test_false_is_ok)
{
    const cJSON *r = run_exec("f", "{\"argv\":[\"false\"]}");
    ck_assert_int_eq((int)num(r, "exit_code"), 1);
    ck_assert(is_null(r, "signal"));
}
END_TEST

START_TEST(test_exit_code_and_both_streams)
{
    const cJSON *r =
        run_exec("x", "{\"argv\":[\"sh\",\"-c\",\"echo out; echo err >&2; exit 42\"]}");
    ck_assert_int_eq((int)num(r, "exit_code"), 42);
    ck_assert_str_eq(str(r, "stdout"), "out\n");
    ck_assert_str_eq(str(r, "stderr"), "err\n");
}
END_TEST

START_TEST(test_killed_by_signal)
{
    const cJSON *r = run_exec("k", "{\"argv\":[\"sh\",\"-c\",\"kill -KILL $$\"]}");
    ck_assert(is_null(r, "exit_code"));
    ck_assert_str_eq(str(r, "signal"), "KILL");
    ck_assert(!flag(r, "timed_out"));
}
END_TEST

START_TEST(test_stdin_round_trip)
{
    const cJSON *r = run_exec("i", "{\"argv\":[\"cat\"],\"stdin\":\"hello\\nw\\u00f6rld\\n\"}");
    ck_assert_str_eq(str(r, "stdout"), "hello\nw\xC3\xB6rld\n");
    /* Without stdin the child reads /dev/null: EOF at once, no hang. */
    r = run_exec("n", "{\"argv\":[\"cat\"]}");
    ck_assert_str_eq(str(r, "stdout"), "");
    r = run_exec("e", "{\"argv\":[\"cat\"],\"stdin\":\"\"}");
    ck_assert_str_eq(str(r, "stdout"), "");
}
END_TEST

/* More stdin than a pipe holds: the write completes over several turns while
 * the child's output is read at the same time. */
START_TEST(test_stdin_large)
{
    size_t n = 300000;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    text[n] = '\0';
    request("{\"id\":\"big\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"cat\"],\"stdin\":\"%s\"}}",
            text);
    const cJSON *r = result_of(wait_reply("big", 20000));
    ck_assert_uint_eq(strlen(str(r, "stdout")), n);
    ck_assert(strcmp(str(r, "stdout"), text) == 0);
    free(text);
}
END_TEST

/* A child that exits without reading its stdin: the write fails (EPIPE),
 * the agent lives on and answers. */
START_TEST(test_stdin_not_read)
{
    size_t n = 1000000;
    char *text = malloc(n + 1);
    memset(text, 'z', n);
    text[n] = '\0';
    request("{\"id\":\"nr\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"true\"],\"stdin\":\"%s\"}}",
            text);
    free(text);
    const cJSON *r = result_of(wait_reply("nr", 20000));
    ck_assert_int_eq((int)num(r, "exit_code"), 0);
}
END_TEST

/* The child's environment is exactly the documented base plus the request's
 * env: nothing leaks from the agent's own. */
START_TEST(test_env_is_clean_base_plus_request)
{
    /* What systemd puts in the agent's environment, and a HOME of its own:
     * none of it reaches the child. */
    setenv("GUESTD_TEST_LEAK", "1", 1);
    setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
    setenv("WATCHDOG_USEC", "30000000", 1);
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_max=256", 1);
    char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", "/home/agent", 1);
    const char *expect = "FOO=bar baz\nHOME=/root\nLANG=C.UTF-8\n"
                         "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n";
    const cJSON *r =
        run_exec("env", "{\"argv\":[\"sh\",\"-c\",\"env -0 | sort -z | tr '\\\\0' '\\\\n'\"],"
                        "\"env\":{\"FOO\":\"bar baz\"}}");
    /* sh adds PWD (and some shells SHLVL, _); compare without them. */
    char got[1024] = "";
    char *copy = strdup(str(r, "stdout"));
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strncmp(l, "PWD=", 4) && strncmp(l, "SHLVL=", 6) && strncmp(l, "_=", 2) &&
            strncmp(l, "OLDPWD=", 7))
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s\n", l);
    free(copy);
    if (saved_home)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    free(saved_home);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("GLIBC_TUNABLES");
    ck_assert_str_eq(got, expect);

    /* env replaces a base entry: PATH from the request decides lookups. */
    r = run_exec("path", "{\"argv\":[\"sh\",\"-c\",\"echo $PATH\"],\"env\":{\"PATH\":\"/bin\"}}");
    ck_assert_str_eq(str(r, "stdout"), "/bin\n");
}
END_TEST

/* A key repeated inside args is refused (cJSON's lookups would take the
 * first argv, and env would get both), and so is a NUL in an argument. */
START_TEST(test_duplicate_keys_and_nul_in_args_refused)
{
    static const struct {
        const char *args, *code, *message;
    } bad[] = {
        {"{\"argv\":[\"true\"],\"argv\":[\"false\"]}", "invalid_args",
         "the key 'argv' appears twice in args"},
        {"{\"argv\":[\"true\"],\"env\":{\"A\":\"1\",\"A\":\"2\"}}", "invalid_args",
         "the key 'A' appears twice in args"},
        {"{\"argv\":[\"echo\",\"a\\u0000b\"]}", "invalid_args",
         "a string in args holds \\u0000 (a NUL character), which would cut it short"},
        {"{\"argv\":[\"true\"],\"env\":{\"A\\u0000B\":\"1\"}}", "invalid_args",
         "a string in args holds \\u0000 (a NUL character), which would cut it short"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char id[8];
        snprintf(id, sizeof(id), "d%zu", i);
        request("{\"id\":\"%s\",\"cmd\":\"exec\",\"args\":%s}", id, bad[i].args);
        out_t *o = wait_reply(id, 1000);
        ck_assert_msg(strcmp(error_code(o), bad[i].code) == 0, "%s: %s", bad[i].args,
                      error_code(o));
        ck_assert_str_eq(error_message(o), bad[i].message);
    }
    /* The root's own duplicates stay invalid_request. */
    request("{\"id\":\"root\",\"cmd\":\"exec\",\"cmd\":\"ping\"}");
    ck_assert_str_eq(error_code(wait_reply("root", 1000)), "invalid_request");
    ck_assert_uint_eq(disp.running, 0);
    /* The same key in two different objects is fine. */
    const cJSON *r =
        run_exec("two", "{\"argv\":[\"sh\",\"-c\",\"echo $argv\"],\"env\":{\"argv\":\"x\"}}");
    ck_assert_str_eq(str(r, "stdout"), "x\n");
}
END_TEST

START_TEST(test_cwd)
{
    const cJSON *r = run_exec("cwd", "{\"argv\":[\"pwd\"],\"cwd\":\"/tmp\"}");
    ck_assert_str_eq(str(r, "stdout"), "/tmp\n");
}
END_TEST

/* ---- output encodings and limits --------------------------------------- */

/* printf writes 0xFF 'a' NUL 'b' '\n'. */
#define NON_UTF8_ARGV "[\"printf\",\"\\\\377a\\\\000b\\\\n\"]"

START_TEST(test_non_utf8_text)
{
    request("{\"id\":\"u\",\"cmd\":\"exec\",\"args\":{\"argv\":" NON_UTF8_ARGV "}}");
    out_t *o = wait_reply("u", 20000);
    result_of(o);
    /* The invalid byte became U+FFFD; the NUL is kept, escaped. */
    ck_assert_msg(strstr(o->line, "\"stdout\":\"\xEF\xBF\xBD"
                                  "a\\u0000b\\n\"") != NULL,
                  "%s", o->line);
}
END_TEST

START_TEST(test_non_utf8_base64)
{
    const cJSON *r = run_exec("b", "{\"argv\":" NON_UTF8_ARGV ",\"encoding\":\"base64\"}");
    ck_assert_str_eq(str(r, "stdout_b64"), "/2EAYgo=");
    ck_assert_str_eq(str(r, "stderr_b64"), "");
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(r, "stdout"));
}
END_TEST

START_TEST(test_truncation_small_cap)
{
    const cJSON *r = run_exec("tr", "{\"argv\":[\"sh\",\"-c\",\"head -c 5000 /dev/zero; "
                                    "echo short >&2\"],\"max_output_bytes\":100,"
                                    "\"encoding\":\"base64\"}");
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_base64_decode(&b, str(r, "stdout_b64"), strlen(str(r, "stdout_b64"))), 0);
    ck_assert_uint_eq(b.len, 100);
    for (size_t i = 0; i < b.len; i++)
        ck_assert_int_eq(b.data[i], 0);
    gd_buf_free(&b);
    ck_assert(flag(r, "stdout_truncated"));
    ck_assert(!flag(r, "stderr_truncated"));
    ck_assert_int_eq((int)num(r, "exit_code"), 0); /* the writer was never blocked */
}
END_TEST

/* 100 MB of output with the default 1 MiB cap: truncated, and the memory
 * of the process running the agent does not grow with the output. */
static long rss_base, rss_peak;
static uv_timer_t rss_timer;

static void on_rss_sample(uv_timer_t *t)
{
    if (find_reply("big") >= 0)
        return; /* from here on the test's own copy of the reply counts too */
    long kib = vm_rss_kib();
    if (kib > rss_peak) rss_peak = kib;
}

START_TEST(test_large_output_bounded_memory)
{
    ck_assert_int_eq((int)agent.cfg.commands.exec_max_output_bytes, 1048576);
    rss_base = rss_peak = vm_rss_kib();
    uv_timer_init(&loop, &rss_timer);
    uv_timer_start(&rss_timer, on_rss_sample, 5, 5);
    uint64_t t0 = uv_hrtime();
    request("{\"id\":\"big\",\"cmd\":\"exec\",\"args\":{\"argv\":"
            "[\"head\",\"-c\",\"100000000\",\"/dev/zero\"]}}");
    out_t *o = wait_reply("big", 60000);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    uv_close((uv_handle_t *)&rss_timer, NULL);
    long rss_reply = vm_rss_kib();
    const cJSON *r = result_of(o);
    ck_assert(flag(r, "stdout_truncated"));
    ck_assert(!flag(r, "stderr_truncated"));
    ck_assert_int_eq((int)num(r, "exit_code"), 0);
    /* 1 MiB of NULs, each sent as \u0000. */
    const char *p = strstr(o->line, "\"stdout\":\"");
    ck_assert_ptr_nonnull(p);
    p += 10;
    size_t zeros = 0;
    while (strncmp(p, "\\u0000", 6) == 0) {
        zeros++;
        p += 6;
    }
    ck_assert_uint_eq(zeros, 1048576);
    ck_assert_int_eq(*p, '"');
    fprintf(stderr,
            "exec 100 MB /dev/zero: %.2f s; RSS base %ld KiB, peak while running +%ld KiB, "
            "after the reply +%ld KiB (the test holds the reply line too)\n",
            secs, rss_base, rss_peak - rss_base, rss_reply - rss_base);
    /* While the output flows and the reply is built: the 1 MiB kept, the
     * read buffers, and the 6 MiB reply line (printed in the thread pool
     * while the loop, and this sampler, run on). */
    long bound_kib = 4 * 1024 + 6 * 1024;
#if defined(__SANITIZE_ADDRESS__)
    /* ASan adds its shadow (an eighth of what is touched) and keeps freed
     * blocks in quarantine instead of reusing them. */
    bound_kib += 2 * 1024;
#endif
    ck_assert_int_lt(rss_peak - rss_base, bound_kib);
}
END_TEST

/* ---- time limits and process groups ------------------------------------ */

START_TEST(test_timeout_kills_group)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    uint64_t t0 = uv_hrtime();
    const cJSON *r = run_exec("to", "{\"argv\":[\"sh\",\"-c\",\"echo $$; sleep 100 & sleep 100\"],"
                                    "\"timeout_ms\":300}");
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    ck_assert(flag(r, "timed_out"));
    ck_assert(!flag(r, "cancelled"));
    ck_assert(is_null(r, "exit_code"));
    ck_assert_str_eq(str(r, "signal"), "TERM");
    ck_assert_msg(ms >= 300 && ms < 300 + agent.cfg.commands.exec_kill_grace_ms, "%.0f ms", ms);
    int pgid = atoi(str(r, "stdout"));
    ck_assert_int_gt(pgid, 1);
    ck_assert_msg(group_gone_within(pgid, 1000), "group %d still has live members", pgid);
}
END_TEST

/* A group that ignores SIGTERM gets SIGKILL after the grace period. */
START_TEST(test_timeout_grace_then_kill)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    agent.cfg.commands.exec_kill_grace_ms = 300;
    uint64_t t0 = uv_hrtime();
    const cJSON *r = run_exec("tk", "{\"argv\":[\"sh\",\"-c\",\"trap '' TERM; echo $$; sleep 100; "
                                    "echo survived\"],\"timeout_ms\":200}");
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    ck_assert(flag(r, "timed_out"));
    ck_assert_str_eq(str(r, "signal"), "KILL");
    ck_assert_msg(ms >= 500 && ms < 1500, "%.0f ms", ms);
    int pgid = atoi(str(r, "stdout"));
    ck_assert_msg(group_gone_within(pgid, 1000), "group %d still has live members", pgid);
}
END_TEST

/* The child exits, leaving a background child that holds its stdout: the
 * group is killed at the exit, so the reply comes at once and nothing stays. */
START_TEST(test_exit_kills_leftovers)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    uint64_t t0 = uv_hrtime();
    const cJSON *r = run_exec("bg", "{\"argv\":[\"sh\",\"-c\",\"echo $$; sleep 100 &\"]}");
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    ck_assert_int_eq((int)num(r, "exit_code"), 0);
    ck_assert(!flag(r, "timed_out"));
    ck_assert_msg(ms < 1000, "%.0f ms", ms);
    int pgid = atoi(str(r, "stdout"));
    ck_assert_msg(group_gone_within(pgid, 1000), "group %d still has live members", pgid);
}
END_TEST

/* A grandchild that left the group (setsid) and holds the pipes open: the
 * agent stops waiting for EOF a grace period after the exit. */
START_TEST(test_escaped_grandchild_does_not_hold_reply)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    agent.cfg.commands.exec_kill_grace_ms = 200;
    uint64_t t0 = uv_hrtime();
    const cJSON *r =
        run_exec("esc", "{\"argv\":[\"sh\",\"-c\",\"setsid sleep 3 & echo started\"]}");
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    ck_assert_int_eq((int)num(r, "exit_code"), 0);
    ck_assert_str_eq(str(r, "stdout"), "started\n");
    ck_assert_msg(ms < 1500, "%.0f ms", ms);
}
END_TEST

/* ---- streaming ---------------------------------------------------------- */

START_TEST(test_stream_order)
{
    request("{\"id\":\"s\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"sh\",\"-c\","
            "\"printf one; sleep 0.2; printf two >&2; sleep 0.2; printf three\"],"
            "\"stream\":true}}");
    out_t *o = wait_reply("s", 20000);
    const cJSON *r = result_of(o);
    ck_assert_int_eq((int)num(r, "exit_code"), 0);
    ck_assert_str_eq(str(r, "stdout"), "");
    ck_assert_str_eq(str(r, "stderr"), "");
    /* Events before the reply, in the order the output came. */
    const char *want[][2] = {{"stdout", "one"}, {"stderr", "two"}, {"stdout", "three"}};
    size_t k = 0;
    for (size_t i = 0; i < n_outs; i++) {
        if (!outs[i].is_event) continue;
        ck_assert_msg(&outs[i] < o, "an event came after the reply");
        ck_assert_str_eq(str(outs[i].json, "event"), "exec.output");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(outs[i].json, "data");
        ck_assert_str_eq(str(d, "request_id"), "s");
        ck_assert_uint_lt(k, 3);
        ck_assert_str_eq(str(d, "stream"), want[k][0]);
        ck_assert_str_eq(str(d, "data"), want[k][1]);
        k++;
    }
    ck_assert_uint_eq(k, 3);
}
END_TEST

/* Big streamed text: chunks of at most 16 KiB, each valid UTF-8 cut on
 * sequence boundaries (3-byte characters across 16384-byte chunks), the
 * concatenation equal to the output; the last event precedes the reply. */
START_TEST(test_stream_chunks_split_utf8_safely)
{
    char path[] = "/tmp/guestd-exec-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = 100000, len = n * 3;
    char *text = malloc(len + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(text + i * 3, "\xE2\x82\xAC", 3); /* the euro sign */
    text[len] = '\0';
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    request(
        "{\"id\":\"big\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"cat\",\"%s\"],\"stream\":true}}",
        path);
    out_t *o = wait_reply("big", 20000);
    unlink(path);
    result_of(o);
    gd_buf_t all;
    gd_buf_init(&all);
    for (size_t i = 0; i < n_outs; i++) {
        if (!outs[i].is_event) continue;
        ck_assert(&outs[i] < o);
        const char *data = str(cJSON_GetObjectItemCaseSensitive(outs[i].json, "data"), "data");
        ck_assert_uint_le(strlen(data), 16384);
        ck_assert_uint_eq(strlen(data) % 3, 0);
        gd_buf_puts(&all, data);
    }
    ck_assert_uint_eq(all.len, len);
    ck_assert(memcmp(all.data, text, len) == 0);
    gd_buf_free(&all);
    free(text);
}
END_TEST

START_TEST(test_stream_base64_and_cap)
{
    request("{\"id\":\"sb\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"head\",\"-c\",\"100000\","
            "\"/dev/zero\"],\"stream\":true,\"encoding\":\"base64\",\"max_output_bytes\":30000}}");
    out_t *o = wait_reply("sb", 20000);
    const cJSON *r = result_of(o);
    ck_assert(flag(r, "stdout_truncated"));
    ck_assert_str_eq(str(r, "stdout_b64"), "");
    size_t total = 0;
    for (size_t i = 0; i < n_outs; i++) {
        if (!outs[i].is_event) continue;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(outs[i].json, "data");
        ck_assert_str_eq(str(d, "encoding"), "base64");
        gd_buf_t b;
        gd_buf_init(&b);
        ck_assert_int_eq(gd_base64_decode(&b, str(d, "data"), strlen(str(d, "data"))), 0);
        ck_assert_uint_le(b.len, 12288);
        total += b.len;
        gd_buf_free(&b);
    }
    ck_assert_uint_eq(total, 30000);
}
END_TEST

/* ---- cancel ------------------------------------------------------------- */

START_TEST(test_cancel)
{
    uint64_t t0 = uv_hrtime();
    request("{\"id\":\"c1\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"sleep\",\"100\"]}}");
    run_for(50);
    request("{\"id\":\"x\",\"cmd\":\"exec.cancel\",\"args\":{\"request_id\":\"c1\"}}");
    out_t *c = wait_reply("x", 1000);
    ck_assert(flag(result_of(c), "cancelled"));
    const cJSON *r = result_of(wait_reply("c1", 5000));
    ck_assert(is_null(r, "exit_code"));
    ck_assert_str_eq(str(r, "signal"), "TERM");
    ck_assert(flag(r, "cancelled"));
    ck_assert(!flag(r, "timed_out"));
    ck_assert((double)(uv_hrtime() - t0) / 1e6 < 2000);
}
END_TEST

START_TEST(test_cancel_matches_id_exactly)
{
    request("{\"id\":7,\"cmd\":\"exec\",\"args\":{\"argv\":[\"sleep\",\"100\"]}}");
    request("{\"id\":\"a\",\"cmd\":\"exec.cancel\",\"args\":{\"request_id\":\"7\"}}");
    ck_assert_str_eq(error_code(wait_reply("a", 1000)), "not_found");
    request("{\"id\":\"b\",\"cmd\":\"exec.cancel\",\"args\":{\"request_id\":\"nope\"}}");
    ck_assert_str_eq(error_code(wait_reply("b", 1000)), "not_found");
    request("{\"id\":\"c\",\"cmd\":\"exec.cancel\",\"args\":{\"request_id\":7}}");
    ck_assert(flag(result_of(wait_reply("c", 1000)), "cancelled"));
    /* The numeric id's reply. */
    guard_start(5000);
    const out_t *seven = NULL;
    while (!seven && !guard_fired) {
        for (size_t i = 0; i < n_outs && !seven; i++) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(outs[i].json, "id");
            if (cJSON_IsNumber(id) && id->valueint == 7) seven = &outs[i];
        }
        if (!seven) uv_run(&loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&guard);
    ck_assert_ptr_nonnull(seven);
    ck_assert_str_eq(str(result_of(seven), "signal"), "TERM");
    /* Once answered, the exec is gone. */
    request("{\"id\":\"d\",\"cmd\":\"exec.cancel\",\"args\":{\"request_id\":7}}");
    ck_assert_str_eq(error_code(wait_reply("d", 1000)), "not_found");
}
END_TEST

/* ---- cannot start --------------------------------------------------------- */

START_TEST(test_missing_binary)
{
    request("{\"id\":\"m\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"/nonexistent/prog\",\"x\"]}}");
    out_t *o = wait_reply("m", 5000);
    ck_assert_str_eq(error_code(o), "failed");
    ck_assert_str_eq(error_message(o), "cannot run '/nonexistent/prog': No such file or directory");
    request("{\"id\":\"p\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"guestd-no-such-program\"]}}");
    o = wait_reply("p", 5000);
    ck_assert_str_eq(error_code(o), "failed");
    ck_assert(strstr(error_message(o), "No such file or directory") != NULL);
    ck_assert_uint_eq(disp.running, 0);
}
END_TEST

START_TEST(test_not_executable)
{
    char path[] = "/tmp/guestd-exec-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    chmod(path, 0644);
    request("{\"id\":\"ne\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"%s\"]}}", path);
    out_t *o = wait_reply("ne", 5000);
    unlink(path);
    ck_assert_str_eq(error_code(o), "failed");
    ck_assert(strstr(error_message(o), "Permission denied") != NULL);
}
END_TEST

START_TEST(test_bad_cwd)
{
    request("{\"id\":\"cw\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"true\"],"
            "\"cwd\":\"/nonexistent-dir\"}}");
    out_t *o = wait_reply("cw", 5000);
    ck_assert_str_eq(error_code(o), "failed");
    ck_assert_str_eq(error_message(o),
                     "cannot run 'true' in '/nonexistent-dir': No such file or directory");
}
END_TEST

START_TEST(test_invalid_args)
{
    static const char *const bad[] = {
        "{\"argv\":[]}",
        "{\"argv\":[\"\"]}",
        "{\"argv\":\"true\"}",
        "{\"argv\":[\"true\"],\"env\":{\"A\":1}}",
        "{\"argv\":[\"true\"],\"env\":{\"A=B\":\"x\"}}",
        "{\"argv\":[\"true\"],\"timeout_ms\":3600001}",
        "{\"argv\":[\"true\"],\"timeout_ms\":0}",
        "{\"argv\":[\"true\"],\"max_output_bytes\":1048577}",
        "{\"argv\":[\"true\"],\"encoding\":\"hex\"}",
        "{\"argv\":[\"true\"],\"shell\":true}",
        "{}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char id[8];
        snprintf(id, sizeof(id), "v%zu", i);
        request("{\"id\":\"%s\",\"cmd\":\"exec\",\"args\":%s}", id, bad[i]);
        ck_assert_msg(strcmp(error_code(wait_reply(id, 1000)), "invalid_args") == 0, "%s", bad[i]);
    }
    request("{\"id\":\"noargs\",\"cmd\":\"exec\"}");
    ck_assert_str_eq(error_code(wait_reply("noargs", 1000)), "invalid_args");
    request("{\"id\":\"nocancel\",\"cmd\":\"exec.cancel\"}");
    ck_assert_str_eq(error_code(wait_reply("nocancel", 1000)), "invalid_args");
    ck_assert_uint_eq(disp.running, 0);
}
END_TEST

/* ---- concurrency -------------------------------------------------------- */

START_TEST(test_eight_execs_pings_and_busy)
{
    ck_assert_int_eq((int)agent.cfg.commands.max_concurrent, 8);
    for (int i = 0; i < 8; i++)
        request("{\"id\":\"s%d\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"sleep\",\"100\"]}}", i);
    run_for(50);
    ck_assert_uint_eq(disp.running, 8);
    /* 1,000 pings, each answered while the eight run. */
    uint64_t worst = 0;
    for (int i = 0; i < 1000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "p%d", i);
        uint64_t t0 = uv_hrtime();
        request("{\"id\":\"%s\",\"cmd\":\"ping\"}", id);
        out_t *o = wait_reply(id, 1000);
        if (uv_hrtime() - t0 > worst) worst = uv_hrtime() - t0;
        ck_assert(flag(result_of(o), "pong"));
        if (i % 100 == 0) uv_run(&loop, UV_RUN_NOWAIT);
    }
    request("{\"id\":\"ninth\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"true\"]}}");
    ck_assert_str_eq(error_code(wait_reply("ninth", 1000)), "busy");
    /* exec.cancel is not bounded: it works with every slot taken. */
    for (int i = 0; i < 8; i++) {
        char id[16];
        snprintf(id, sizeof(id), "k%d", i);
        request("{\"id\":\"%s\",\"cmd\":\"exec.cancel\",\"args\":{\"request_id\":\"s%d\"}}", id, i);
        ck_assert(flag(result_of(wait_reply(id, 1000)), "cancelled"));
    }
    for (int i = 0; i < 8; i++) {
        char id[16];
        snprintf(id, sizeof(id), "s%d", i);
        ck_assert_str_eq(str(result_of(wait_reply(id, 5000)), "signal"), "TERM");
    }
    ck_assert_uint_eq(disp.running, 0);
    fprintf(stderr, "1000 pings with 8 execs running: worst %.3f ms (in process)\n",
            (double)worst / 1e6);
}
END_TEST

/* ---- shutdown ------------------------------------------------------------- */

START_TEST(test_shutdown_kills_and_closes)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char path[] = "/tmp/guestd-exec-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    request("{\"id\":\"sd\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"sh\",\"-c\",\"echo $$ > %s; "
            "sleep 100 & sleep 100\"]}}",
            path);
    request("{\"id\":\"sds\",\"cmd\":\"exec\",\"args\":{\"argv\":[\"sleep\",\"100\"],"
            "\"stream\":true}}");
    int pgid = 0;
    for (int i = 0; i < 200 && pgid <= 0; i++) {
        run_for(10);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%d", &pgid) != 1) pgid = 0;
            fclose(f);
        }
    }
    unlink(path);
    ck_assert_int_gt(pgid, 1);
    gd_exec_shutdown(&agent.env);
    out_t *o = wait_reply("sd", 2000);
    ck_assert_str_eq(error_code(o), "failed");
    ck_assert_str_eq(error_code(wait_reply("sds", 2000)), "failed");
    ck_assert_msg(group_gone_within(pgid, 1000), "group %d still has live members", pgid);
    ck_assert_uint_eq(disp.running, 0);
    /* teardown asserts uv_loop_close() == 0: no handle was left open. */
}
END_TEST

static Suite *exec_suite(void)
{
    Suite *s = suite_create("exec");
    struct {
        const char *name;
        const TTest *tests[12];
    } cases[] = {
        {"basics",
         {test_true, test_false_is_ok, test_exit_code_and_both_streams, test_killed_by_signal,
          test_stdin_round_trip, test_stdin_large, test_stdin_not_read,
          test_env_is_clean_base_plus_request, test_cwd, NULL}},
        {"output",
         {test_non_utf8_text, test_non_utf8_base64, test_truncation_small_cap,
          test_large_output_bounded_memory, NULL}},
        {"limits",
         {test_timeout_kills_group, test_timeout_grace_then_kill, test_exit_kills_leftovers,
          test_escaped_grandchild_does_not_hold_reply, NULL}},
        {"stream",
         {test_stream_order, test_stream_chunks_split_utf8_safely, test_stream_base64_and_cap,
          NULL}},
        {"cancel", {test_cancel, test_cancel_matches_id_exactly, NULL}},
        {"errors",
         {test_missing_binary, test_not_executable, test_bad_cwd, test_invalid_args,
          test_duplicate_keys_and_nul_in_args_refused, NULL}},
        {"concurrency", {test_eight_execs_pings_and_busy, NULL}},
        {"shutdown", {test_shutdown_kills_and_closes, NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        for (const TTest *const *t = cases[i].tests; *t; t++)
            tcase_add_test(tc, *t);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(exec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
