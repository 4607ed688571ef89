/* Regression tests for what the fuzz harnesses (tests/fuzz/) found, one
 * TCase per finding, so each stays fixed in the plain and ASan builds too,
 * not only in the clang fuzz build. The input that found it is also kept in
 * tests/fuzz/regressions/<harness>/ and replayed by tests/fuzz/run.sh. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "agent/agent.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/utf8.h"
#include "commands/dispatch.h"
#include "commands/qga/json.h"
#include "commands/system.h"
#include "tools/client.h"
#include "tools/logread.h"
#include "tools/timefmt.h"

static char tmp[64];
static char proc_dir[128], etc_dir[128];

static void put(const char *dir, const char *rel, const char *data)
{
    size_t len = strlen(data);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    /* mkdir -p of the directories in rel */
    for (char *p = path + strlen(dir) + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
        *p = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void tree_setup(void)
{
    gd_log_set_level(GD_LOG_ERROR);
    snprintf(tmp, sizeof(tmp), "/tmp/guestd-fuzzreg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(proc_dir, sizeof(proc_dir), "%s/proc", tmp);
    snprintf(etc_dir, sizeof(etc_dir), "%s/etc", tmp);
    ck_assert_int_eq(mkdir(proc_dir, 0755), 0);
    ck_assert_int_eq(mkdir(etc_dir, 0755), 0);
}

static void tree_teardown(void)
{
    nftw(tmp, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- fuzz_procfs: system.info copied file bytes into the reply as they
 * were, so a machine-id, os-release, timezone or cpuinfo holding bytes that
 * are not UTF-8 made a reply line that is not UTF-8 (protocol.md promises
 * UTF-8; a strict host decoder fails on the whole line). ---- */

/* Every string of the result is valid UTF-8 and the printed reply is too. */
static void assert_utf8(cJSON *r)
{
    char *text = cJSON_PrintUnformatted(r);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(gd_utf8_valid(text, strlen(text)), "system.info is not UTF-8: %s", text);
    free(text);
}

START_TEST(test_system_info_bytes_not_utf8)
{
    /* What fuzz_procfs found first: a machine-id that is not text. */
    put(etc_dir, "machine-id", "\x0a\x06\x07\x03Inter\xff|\n");
    put(etc_dir, "os-release", "NAME=\"Deb\xe9\xff\"\nID=x\xc3\nPRETTY_NAME='\xed\xa0\x80'\n");
    put(etc_dir, "timezone", "Europe/Z\xfcrich\n");
    put(proc_dir, "cpuinfo", "model name\t: CPU \xc0\xaf @ 2GHz\n");
    put(proc_dir, "sys/kernel/random/boot_id", "\xfe\xff\n");
    cJSON *r = gd_system_info(proc_dir, etc_dir, "guest", NULL);
    ck_assert_ptr_nonnull(r);
    assert_utf8(r);
    /* Each bad byte became U+FFFD; the good ones are kept. */
    const cJSON *os = cJSON_GetObjectItemCaseSensitive(r, "os");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(os, "name")->valuestring,
                     "Deb\xef\xbf\xbd\xef\xbf\xbd");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(r, "timezone")->valuestring,
                     "Europe/Z\xef\xbf\xbdrich");
    cJSON_Delete(r);
}
END_TEST

START_TEST(test_system_info_hostname_not_utf8)
{
    /* The hostname is the kernel's nodename, any bytes root set. */
    cJSON *r = gd_system_info(proc_dir, etc_dir, "host\xff\xfename", NULL);
    ck_assert_ptr_nonnull(r);
    assert_utf8(r);
    cJSON_Delete(r);
}
END_TEST

/* ---- fuzz_qga_json: a parse error quoted the bad token with strcspn, which
 * reads to a NUL, past text[0..len) (qga_json.h: "Parses the whole of
 * text[0..len)"). The framers put a NUL at text[len], so no reply read
 * past its line; a caller that did not would have. ASan sees it here. ---- */

START_TEST(test_qga_json_error_reads_only_len_bytes)
{
    static const char *const bad[] = {"[1] x", "{\"a\":1}}", "{\"execute\":", "1 2", "tru"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);
        char *text = malloc(len); /* exactly len bytes: no NUL after them */
        ck_assert_ptr_nonnull(text);
        memcpy(text, bad[i], len);
        char err[256];
        cJSON *v = gd_qga_json_parse(text, len, err, sizeof(err));
        ck_assert_msg(v == NULL, "'%s' parsed", bad[i]);
        ck_assert_ptr_nonnull(strstr(err, "JSON parse error"));
        free(text);
    }
}
END_TEST

/* ---- fuzz_dispatch: error messages quote what the host sent, cut with
 * '%.64s' (unit names, unknown fields, command names) or by the 512-byte
 * message buffer; a cut inside a UTF-8 sequence made the reply line invalid
 * UTF-8, though the request was valid. ---- */

static char *last_reply;

static void capture(void *ctx, uint64_t conn_gen, const char *line, size_t len)
{
    free(last_reply);
    last_reply = strndup(line, len);
}

static void assert_reply_utf8(gd_dispatch_t *d, const char *request, const char *code)
{
    gd_dispatch_line(d, 1, request, strlen(request));
    ck_assert_ptr_nonnull(last_reply);
    ck_assert_msg(gd_utf8_valid(last_reply, strlen(last_reply)), "reply is not UTF-8: %s",
                  last_reply);
    cJSON *r = cJSON_Parse(last_reply);
    ck_assert_ptr_nonnull(r);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(r, "error"), "code");
    ck_assert_msg(cJSON_IsString(c) && strcmp(c->valuestring, code) == 0, "%s", last_reply);
    cJSON_Delete(r);
    free(last_reply);
    last_reply = NULL;
}

START_TEST(test_error_message_cut_inside_utf8)
{
    gd_agent_t agent;
    gd_dispatch_t d;
    memset(&agent, 0, sizeof(agent));
    gd_config_defaults(&agent.cfg);
    agent.dispatch = &d;
    gd_agent_env_bind(&agent);
    gd_dispatch_init(&d, &agent.env, capture, NULL);
    /* 63 ASCII bytes, then a 2-byte character across the 64-byte cut. */
    char name[200], line[400];
    memset(name, 'a', 63);
    strcpy(name + 63, "\xc3\xa9tail");
    snprintf(line, sizeof(line), "{\"id\":1,\"cmd\":\"ping\",\"%s\":1}", name);
    assert_reply_utf8(&d, line, "invalid_request"); /* unknown request field '%.64s' */
    memset(name, 'b', 127);
    strcpy(name + 127, "\xe2\x82\xac");
    snprintf(line, sizeof(line), "{\"id\":2,\"cmd\":\"%s\"}", name);
    assert_reply_utf8(&d, line, "unknown_command"); /* no command '%.128s' */
    gd_dispatch_free(&d);
}
END_TEST

/* ---- found reading the qemu-ga printer while writing fuzz_qga_json:
 * print_string took strlen() of the rest of the string for every character,
 * so printing was quadratic: 1 MiB took 5 s on the loop, and a
 * guest-file-read of 16 MiB (21 MiB of base64) about half an hour. ---- */

START_TEST(test_qga_print_is_linear)
{
    size_t n = 2u << 20;
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, 'A', n);
    s[n] = '\0';
    cJSON *v = cJSON_CreateString(s);
    free(s);
    gd_buf_t out;
    gd_buf_init(&out);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ck_assert_int_eq(gd_qga_json_print(&out, v), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    ck_assert_uint_eq(out.len, n + 2);
    /* Linear is tens of milliseconds (ASan included); quadratic is ~20 s. */
    ck_assert_msg(secs < 2.0, "printing a 2 MiB string took %.1f s", secs);
    gd_buf_free(&out);
    cJSON_Delete(v);
}
END_TEST

/* ---- fuzz_logread: guestctl turned a guest's "ts" into a time_t or an
 * int64 by a plain cast; a ts of 1e27 is undefined behaviour (UBSan aborts)
 * and left gmtime_r's struct unset. A guest writes the log and the events:
 * guestctl on the host must take any number. ---- */

START_TEST(test_watch_row_with_absurd_ts)
{
    static const char *const events[] = {
        "{\"event\":\"metrics\",\"ts\":1.74874e27,\"data\":{}}",
        "{\"event\":\"metrics\",\"ts\":-1e300,\"data\":{}}",
        "{\"event\":\"metrics\",\"ts\":1e400,\"data\":{}}",
    };
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        cJSON *ev = cJSON_Parse(events[i]);
        ck_assert_ptr_nonnull(ev);
        char row[128];
        gd_ctl_table_row(ev, row, sizeof(row));
        ck_assert_msg(row[0] == '-' && row[1] == ' ', "time column of '%s': %s", events[i], row);
        cJSON_Delete(ev);
    }
}
END_TEST

static int count_line(void *ctx, const gd_logrec_t *rec)
{
    (*(int *)ctx)++;
    return 0;
}

START_TEST(test_log_line_with_absurd_ts_is_bad)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/metrics.ndjson", tmp);
    put(tmp, "metrics.ndjson",
        "{\"event\":\"metrics\",\"seq\":1e30,\"ts\":1.7e27,\"data\":{}}\n"
        "{\"event\":\"metrics\",\"seq\":2,\"ts\":-9.3e18,\"data\":{}}\n"
        "{\"event\":\"metrics\",\"seq\":3,\"ts\":1748736180000,\"data\":{}}\n");
    char *files[1] = {path};
    gd_logread_opts_t o;
    memset(&o, 0, sizeof(o));
    gd_logread_stats_t st;
    char err[128];
    int n = 0;
    ck_assert_int_eq(gd_logread_run(files, 1, &o, count_line, &n, &st, err, sizeof(err)), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(st.bad, 2);
    ck_assert_int_eq(st.first_ts, 1748736180000);
}
END_TEST

/* --since/--until "1e50d": the relative time's milliseconds were cast to
 * int64 unchecked (undefined behaviour past 2^63). Not a time: refused. */
START_TEST(test_relative_time_out_of_range)
{
    int64_t ms = 0;
    ck_assert_int_eq(gd_time_parse("1e50d", 1750000000000, &ms), -1);
    ck_assert_int_eq(gd_time_parse("1e999s", 1750000000000, &ms), -1);
    ck_assert_int_eq(gd_time_parse("90s", 1750000000000, &ms), 0);
    ck_assert_int_eq(ms, 1750000000000 - 90000);
}
END_TEST

static Suite *fuzz_regressions_suite(void)
{
    Suite *s = suite_create("fuzz_regressions");
    TCase *tc = tcase_create("system_info_utf8");
    tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
    tcase_add_test(tc, test_system_info_bytes_not_utf8);
    tcase_add_test(tc, test_system_info_hostname_not_utf8);
    suite_add_tcase(s, tc);
    tc = tcase_create("guestctl_ts");
    tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
    tcase_add_test(tc, test_watch_row_with_absurd_ts);
    tcase_add_test(tc, test_log_line_with_absurd_ts_is_bad);
    tcase_add_test(tc, test_relative_time_out_of_range);
    suite_add_tcase(s, tc);
    tc = tcase_create("reply_utf8");
    tcase_add_test(tc, test_error_message_cut_inside_utf8);
    suite_add_tcase(s, tc);
    tc = tcase_create("qga_json");
    tcase_add_test(tc, test_qga_json_error_reads_only_len_bytes);
    tcase_add_test(tc, test_qga_print_is_linear);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fuzz_regressions_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
