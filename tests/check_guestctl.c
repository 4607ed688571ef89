/* guestctl's pieces: the log-line JSON reader, times, field paths, the
 * summary's numbers, value typing for `call`, file ordering, and guest text
 * escaped on every output path (log show/summary/export, call, watch). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/client.h"
#include "tools/fields.h"
#include "tools/ljson.h"
#include "tools/logcmd.h"
#include "tools/logread.h"
#include "tools/plot.h"
#include "tools/termesc.h"
#include "tools/timefmt.h"

static gd_lj_doc_t doc;

static void setup(void)
{
    gd_lj_init(&doc);
}

static void teardown(void)
{
    gd_lj_free(&doc);
}

static int parse(const char *s)
{
    return gd_lj_parse(&doc, s, strlen(s));
}

START_TEST(test_ljson_accepts_and_rejects)
{
    static const char *const good[] = {
        "{}",
        "[]",
        " {\"a\" : [1, -2.5e3, true, false, null, \"x\\\"y\\u00e9\"]} ",
        "{\"a\":{\"b\":{}}}",
        "0",
        "\"s\"",
        "[[[]]]",
    };
    static const char *const bad[] = {
        "",    "{",     "{\"a\":}",   "[1,]",        "{\"a\":1,}", "01",
        "1.",  "-",     "[1 2]",      "{a:1}",       "\"x",        "\"\\q\"",
        "tru", "{} {}", "[\"\x01\"]", "\"\\u12g4\"", "{\"a\" 1}",  "nul",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(parse(good[i]) == 0, "rejected %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i]) == -1, "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_ljson_tree_and_strings)
{
    ck_assert_int_eq(parse("{\"k\\u00e9y\":\"a\\nb\\ud83d\\ude00\",\"n\":[1,{\"m\":2}]}"), 0);
    const gd_lj_node_t *root = gd_lj_root(&doc);
    const gd_lj_node_t *first = gd_lj_child(&doc, root);
    char buf[64];
    gd_lj_string(first, 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "k\xc3\xa9y");
    gd_lj_string(first, 0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a\nb\xf0\x9f\x98\x80");
    const gd_lj_node_t *n = gd_lj_get(&doc, root, "n");
    ck_assert_int_eq(n->type, GD_LJ_ARRAY);
    ck_assert_int_eq((int)n->text_len, 11); /* the container's own JSON */
    const gd_lj_node_t *one = gd_lj_child(&doc, n);
    ck_assert_double_eq(one->num, 1);
    const gd_lj_node_t *obj = gd_lj_next(&doc, one);
    ck_assert_double_eq(gd_lj_get(&doc, obj, "m")->num, 2);
    ck_assert_ptr_null(gd_lj_next(&doc, obj));
    ck_assert_ptr_null(gd_lj_get(&doc, root, "missing"));
}
END_TEST

START_TEST(test_ljson_numbers_are_exact)
{
    /* The fast path must agree with strtod bit for bit. */
    static const char *const nums[] = {
        "0",
        "-0",
        "12.5",
        "0.1",
        "0.3",
        "99.99",
        "1234567.891",
        "25276026880",
        "0.000001",
        "123456789012345",
        "1234567890123456789",
        "1e3",
        "-2.5E-3",
        "3.14159265358979",
        "0.30000000000000004",
        "8589934592.25",
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        double v;
        ck_assert_int_eq(gd_lj_number(nums[i], strlen(nums[i]), &v), 0);
        ck_assert_msg(v == strtod(nums[i], NULL), "%s: %.17g", nums[i], v);
    }
    double v;
    ck_assert_int_eq(gd_lj_number("0644", 4, &v), -1);
    ck_assert_int_eq(gd_lj_number("1e", 2, &v), -1);
    ck_assert_int_eq(gd_lj_number("+1", 2, &v), -1);
}
END_TEST

START_TEST(test_time_parse_and_format)
{
    int64_t t;
    ck_assert_int_eq(gd_time_parse("2025-06-01", 0, &t), 0);
    ck_assert_int_eq(t, 1748736000000);
    ck_assert_int_eq(gd_time_parse("2025-06-01T00:01", 0, &t), 0);
    ck_assert_int_eq(t, 1748736060000);
    ck_assert_int_eq(gd_time_parse("2025-06-01 00:00:05.25Z", 0, &t), 0);
    ck_assert_int_eq(t, 1748736005250);
    ck_assert_int_eq(gd_time_parse("2025-06-01T02:00:00+02:00", 0, &t), 0);
    ck_assert_int_eq(t, 1748736000000);
    ck_assert_int_eq(gd_time_parse("2024-02-29T23:59:59-0130", 0, &t), 0);
    ck_assert_int_eq(t, 1709256599000);
    ck_assert_int_eq(gd_time_parse("10m", 1000000000, &t), 0);
    ck_assert_int_eq(t, 1000000000 - 600000);
    ck_assert_int_eq(gd_time_parse("1.5h", 10000000000, &t), 0);
    ck_assert_int_eq(t, 10000000000 - 5400000);
    ck_assert_int_eq(gd_time_parse("3d", 0, &t), 0);
    ck_assert_int_eq(t, -259200000);
    static const char *const bad[] = {"",
                                      "10",
                                      "10x",
                                      "2025-13-01",
                                      "2025-06-01T25:00",
                                      "2025-6-1",
                                      "yesterday",
                                      "2025-06-01T00:00Zjunk"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(gd_time_parse(bad[i], 0, &t) == -1, "accepted %s", bad[i]);
    char buf[40];
    gd_time_format(1748736005250, 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2025-06-01T00:00:05.250Z");
    gd_time_format(1748736005250, 0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2025-06-01T00:00:05Z");
}
END_TEST

static char leaves[1024];
static void on_leaf(void *ctx, const char *path, size_t len, const gd_lj_node_t *leaf)
{
    size_t used = strlen(leaves);
    snprintf(leaves + used, sizeof(leaves) - used, "%s=%.*s;", path, (int)leaf->text_len,
             leaf->text);
}

START_TEST(test_field_paths)
{
    ck_assert_int_eq(
        parse("{\"cpu\":{\"usage_pct\":12.5,\"per_cpu\":[{\"cpu\":0,\"usage_pct\":10},"
              "{\"cpu\":1,\"usage_pct\":15}]},\"filesystems\":[{\"mount\":\"/\",\"used_pct\":40}],"
              "\"network\":[{\"name\":\"eth0\",\"up\":true,\"rx\":1},{\"name\":\"eth0.100\","
              "\"rx\":2}],\"top\":[{\"pid\":7,\"name\":\"x\",\"cpu_pct\":3}],\"plain\":[5,6]}"),
        0);
    const gd_lj_node_t *root = gd_lj_root(&doc);
    leaves[0] = '\0';
    gd_fields_flatten(&doc, root, on_leaf, NULL);
    ck_assert_str_eq(leaves, "cpu.usage_pct=12.5;cpu.per_cpu.0.usage_pct=10;"
                             "cpu.per_cpu.1.usage_pct=15;filesystems./.used_pct=40;"
                             "network.eth0.rx=1;network.eth0.100.rx=2;top.x.cpu_pct=3;"
                             "plain.0=5;plain.1=6;");
    static const struct {
        const char *path;
        double want;
    } finds[] = {
        {"cpu.usage_pct", 12.5},
        {"cpu.per_cpu.1.usage_pct", 15},
        {"filesystems./.used_pct", 40},
        {"network.eth0.rx", 1},
        {"network.eth0.100.rx", 2},
        {"top.x.cpu_pct", 3},
        {"top.x.pid", 7},
        {"plain.1", 6},
    };
    for (size_t i = 0; i < sizeof(finds) / sizeof(finds[0]); i++) {
        const gd_lj_node_t *n = gd_fields_lookup(&doc, root, finds[i].path);
        ck_assert_msg(n && n->type == GD_LJ_NUMBER && n->num == finds[i].want, "%s", finds[i].path);
    }
    ck_assert_ptr_null(gd_fields_lookup(&doc, root, "cpu.nope"));
    ck_assert_ptr_null(gd_fields_lookup(&doc, root, "network.eth1.rx"));
    ck_assert_ptr_null(gd_fields_lookup(&doc, root, "cpu.usage"));
    ck_assert_int_eq(gd_fields_lookup(&doc, root, "network.eth0.up")->type, GD_LJ_TRUE);
}
END_TEST

START_TEST(test_fieldset)
{
    gd_fieldset_t s;
    gd_fieldset_init(&s);
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "field.%d", i);
        ck_assert_int_eq(gd_fieldset_intern(&s, name, strlen(name)), i);
    }
    for (int i = 999; i >= 0; i--) {
        snprintf(name, sizeof(name), "field.%d", i);
        ck_assert_int_eq(gd_fieldset_intern(&s, name, strlen(name)), i);
        ck_assert_int_eq(gd_fieldset_find(&s, name, strlen(name)), i);
    }
    ck_assert_int_eq(gd_fieldset_find(&s, "field.1000", 10), -1);
    ck_assert_str_eq(s.fields[7].name, "field.7");
    gd_fieldset_free(&s);
}
END_TEST

START_TEST(test_percentiles_and_numbers)
{
    double v[] = {5, 1, 4, 2, 3, 10, 9, 8, 7, 6};
    ck_assert_double_eq(gd_log_percentile(v, 10, 50), 5);
    ck_assert_double_eq(gd_log_percentile(v, 10, 95), 10);
    ck_assert_double_eq(gd_log_percentile(v, 10, 10), 1);
    ck_assert_double_eq(gd_log_percentile(v, 10, 11), 2);
    double same[] = {3, 3, 3, 3};
    ck_assert_double_eq(gd_log_percentile(same, 4, 50), 3);
    double one[] = {42};
    ck_assert_double_eq(gd_log_percentile(one, 1, 95), 42);
    /* Many values, many duplicates: matches a sort. */
    enum { N = 10001 };
    double *big = malloc(N * sizeof(double));
    for (int i = 0; i < N; i++)
        big[i] = (double)((i * 7919) % 1000);
    ck_assert_double_eq(gd_log_percentile(big, N, 50), 499);
    ck_assert_double_eq(gd_log_percentile(big, N, 95), 949);
    free(big);
    char buf[40];
    gd_log_format_number(12, buf, sizeof(buf));
    ck_assert_str_eq(buf, "12");
    gd_log_format_number(12.345, buf, sizeof(buf));
    ck_assert_str_eq(buf, "12.35");
    gd_log_format_number(-0.5, buf, sizeof(buf));
    ck_assert_str_eq(buf, "-0.50");
    gd_log_format_number(25276026880, buf, sizeof(buf));
    ck_assert_str_eq(buf, "25276026880");
    gd_log_format_number(1e18, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1e+18");
}
END_TEST

static char *print(cJSON *v)
{
    static char buf[256];
    char *s = cJSON_PrintUnformatted(v);
    snprintf(buf, sizeof(buf), "%s", s);
    cJSON_free(s);
    cJSON_Delete(v);
    return buf;
}

START_TEST(test_call_values_are_typed)
{
    ck_assert_str_eq(print(gd_ctl_value("42")), "42");
    ck_assert_str_eq(print(gd_ctl_value("-1.5")), "-1.5");
    ck_assert_str_eq(print(gd_ctl_value("0644")), "\"0644\"");
    ck_assert_str_eq(print(gd_ctl_value("true")), "true");
    ck_assert_str_eq(print(gd_ctl_value("null")), "null");
    ck_assert_str_eq(print(gd_ctl_value("[\"uname\",\"-a\"]")), "[\"uname\",\"-a\"]");
    ck_assert_str_eq(print(gd_ctl_value("{\"A\":\"1\"}")), "{\"A\":\"1\"}");
    ck_assert_str_eq(print(gd_ctl_value("\"123\"")), "\"123\"");
    ck_assert_str_eq(print(gd_ctl_value("[not json")), "\"[not json\"");
    ck_assert_str_eq(print(gd_ctl_value("/etc/hostname")), "\"/etc/hostname\"");
    ck_assert_str_eq(print(gd_ctl_value("TERM")), "\"TERM\"");
    ck_assert_str_eq(print(gd_ctl_value("")), "\"\"");
    char err[128];
    char *kv[] = {"b=2", "a=x=y"};
    ck_assert_str_eq(print(gd_ctl_build_args("{\"a\":1,\"c\":true}", kv, 2, err, sizeof(err))),
                     "{\"c\":true,\"b\":2,\"a\":\"x=y\"}");
    char *bad[] = {"=1"};
    ck_assert_ptr_null(gd_ctl_build_args(NULL, bad, 1, err, sizeof(err)));
    ck_assert_ptr_null(gd_ctl_build_args("[1]", NULL, 0, err, sizeof(err)));
    gd_ctl_human_bytes(1536, err, sizeof(err));
    ck_assert_str_eq(err, "1.5K");
    gd_ctl_human_bytes(188743680, err, sizeof(err));
    ck_assert_str_eq(err, "180M");
    gd_ctl_human_bytes(12, err, sizeof(err));
    ck_assert_str_eq(err, "12");
}
END_TEST

START_TEST(test_rotated_files_in_time_order)
{
    char *paths[] = {"a/m.ndjson",   "other.log",    "a/m.ndjson.10",
                     "a/m.ndjson.2", "a/m.ndjson.1", "other.log.1"};
    gd_logread_order(paths, 6);
    ck_assert_str_eq(paths[0], "a/m.ndjson.10");
    ck_assert_str_eq(paths[1], "a/m.ndjson.2");
    ck_assert_str_eq(paths[2], "a/m.ndjson.1");
    ck_assert_str_eq(paths[3], "a/m.ndjson");
    ck_assert_str_eq(paths[4], "other.log.1");
    ck_assert_str_eq(paths[5], "other.log");
}
END_TEST

START_TEST(test_plot_steps)
{
    ck_assert_double_eq(gd_plot_nice_step(100, 5), 20);
    ck_assert_double_eq(gd_plot_nice_step(9000, 5), 2000);
    ck_assert_double_eq_tol(gd_plot_nice_step(0.7, 5), 0.2, 1e-12);
    ck_assert_int_eq(gd_plot_time_step(86400000, 6), 21600000);
    ck_assert_int_eq(gd_plot_time_step(270000, 6), 60000);
    ck_assert_int_eq(gd_plot_time_step(5000, 6), 1000);
}
END_TEST

/* A terminal-retitling, screen-clearing process name, as a guest user sets
 * it and the metrics log carries it (JSON-escaped). */
#define EVIL_JSON "\\u001b]0;pwned\\u0007\\u001b[2J"
#define EVIL_SHOWN "\\x1b]0;pwned\\x07\\x1b[2J"

START_TEST(test_escape_text_and_json)
{
    char buf[128];
    const char evil[] = "a\x1b]0;pwned\x07\x1b[2Jb";
    ck_assert_uint_eq(gd_esc(GD_ESC_TEXT, evil, strlen(evil), buf, sizeof(buf)), 25);
    ck_assert_str_eq(buf, "a" EVIL_SHOWN "b");
    gd_esc(GD_ESC_JSON, evil, strlen(evil), buf, sizeof(buf));
    ck_assert_str_eq(buf, "a" EVIL_JSON "b");
    /* C1 CSI (U+009B), DEL, newline, tab, a stray byte; "é" and "€" kept. */
    const char mixed[] = "\xc2\x9b"
                         "2J\x7f\n\t\xff\xc3\xa9\xe2\x82\xac";
    gd_esc(GD_ESC_TEXT, mixed, strlen(mixed), buf, sizeof(buf));
    ck_assert_str_eq(buf, "\\u009b2J\\x7f\\x0a\\x09\\xff\xc3\xa9\xe2\x82\xac");
    gd_esc(GD_ESC_JSON, mixed, strlen(mixed), buf, sizeof(buf));
    ck_assert_str_eq(buf, "\\u009b2J\\u007f\\u000a\\u0009\\ufffd\xc3\xa9\xe2\x82\xac");
    /* Overlong, surrogate and cut sequences are bytes, not characters. */
    gd_esc(GD_ESC_TEXT, "\xc0\x9b\xed\xa0\x80\xe2\x82", 7, buf, sizeof(buf));
    ck_assert_str_eq(buf, "\\xc0\\x9b\\xed\\xa0\\x80\\xe2\\x82");
    /* Cut at a whole escape, never inside one. */
    ck_assert_uint_eq(gd_esc(GD_ESC_TEXT, "ab\x1b", 3, buf, 6), 2);
    ck_assert_str_eq(buf, "ab");
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    gd_esc_write(m, GD_ESC_TEXT, evil, strlen(evil));
    gd_esc_puts(m, GD_ESC_JSON, "\x1b");
    fclose(m);
    ck_assert_str_eq(text, "a" EVIL_SHOWN "b\\u001b");
    free(text);
    ck_assert_uint_eq(gd_snprintf_len(401, 128), 127);
    ck_assert_uint_eq(gd_snprintf_len(-1, 128), 0);
    ck_assert_uint_eq(gd_snprintf_len(5, 128), 5);
}
END_TEST

/* Runs one log command on a file holding text; its stdout (caller frees). */
static char *run_log(int (*cmd)(char **, int, const gd_logcmd_opts_t *, FILE *, FILE *),
                     const char *text, const char **fields, int n_fields)
{
    char path[] = "/tmp/guestctl-esc-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *files[] = {path};
    gd_logcmd_opts_t o = {.fields = fields, .n_fields = n_fields, .width = 40};
    char *out = NULL, *err = NULL;
    size_t olen = 0, elen = 0;
    FILE *fo = open_memstream(&out, &olen), *fe = open_memstream(&err, &elen);
    ck_assert_int_eq(cmd(files, 1, &o, fo, fe), 0);
    fclose(fo);
    fclose(fe);
    unlink(path);
    ck_assert_msg(!memchr(err, 0x1b, elen), "raw ESC on stderr: %s", err);
    free(err);
    ck_assert_msg(!memchr(out, 0x1b, olen), "raw ESC in: %s", out);
    return out;
}

static const char evil_log[] =
    "{\"event\":\"metrics\",\"seq\":1,\"ts\":1700000000000,\"data\":{\"processes\":{\"top\":["
    "{\"pid\":7,\"name\":\"" EVIL_JSON "\",\"cpu_pct\":3}]},\"note\":\"x\\u001by\\u007f\"}}\n"
    "{\"event\":\"metrics\\u001b[2J\",\"seq\":2,\"ts\":1700000001000,\"data\":{\"note\":"
    "\"\xc2\x9b\"}}\n";

START_TEST(test_log_commands_escape_guest_text)
{
    char *out = run_log(gd_log_summary, evil_log, NULL, 0);
    ck_assert_msg(strstr(out, "\nprocesses.top." EVIL_SHOWN ".cpu_pct  "), "%s", out);
    free(out);
    out = run_log(gd_log_export_csv, evil_log, NULL, 0);
    ck_assert_msg(strncmp(out, "ts,time,event,processes.top." EVIL_SHOWN ".cpu_pct\n", 48) == 0,
                  "%s", out);
    ck_assert_msg(strstr(out, ",metrics\\x1b[2J,"), "%s", out);
    free(out);
    const char *note[] = {"note", "processes.top." EVIL_SHOWN ".cpu_pct"};
    out = run_log(gd_log_show, evil_log, note, 1);
    ck_assert_msg(strstr(out, " metrics note=x\\x1by\\x7f\n"), "%s", out);
    ck_assert_msg(strstr(out, " metrics\\x1b[2J note=\\u009b\n"), "%s", out);
    free(out);
    /* Without --field, the line itself: valid JSON, C1 escaped as JSON. */
    out = run_log(gd_log_show, evil_log, NULL, 0);
    ck_assert_msg(strstr(out, "\"note\":\"\\u009b\"}}\n"), "%s", out);
    ck_assert_ptr_null(strstr(out, "\xc2\x9b"));
    free(out);
}
END_TEST

/* A label of 401 digits (the pid of a crafted line) is cut to the 127 bytes
 * of the name buffer, not copied 401 bytes long out of it. */
START_TEST(test_long_label_is_cut)
{
    char line[1024], digits[402];
    memset(digits, '7', 401);
    digits[401] = '\0';
    snprintf(line, sizeof(line), "{\"top\":[{\"pid\":%s,\"cpu_pct\":3}]}", digits);
    ck_assert_int_eq(parse(line), 0);
    leaves[0] = '\0';
    gd_fields_flatten(&doc, gd_lj_root(&doc), on_leaf, NULL);
    char want[256];
    snprintf(want, sizeof(want), "top.%.127s.cpu_pct=3;", digits);
    ck_assert_str_eq(leaves, want);
    char path[256];
    snprintf(path, sizeof(path), "top.%.127s.cpu_pct", digits);
    const gd_lj_node_t *n = gd_fields_lookup(&doc, gd_lj_root(&doc), path);
    ck_assert_ptr_nonnull(n);
    ck_assert_double_eq(n->num, 3);
}
END_TEST

/* A fake agent on a unix socket: writes text to the first client. */
static pid_t fake_agent(const char *sock, const char *text)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int c = accept(l, NULL, NULL);
        if (c >= 0 && write(c, text, strlen(text)) == (ssize_t)strlen(text)) {
            char b[4096];
            while (read(c, b, sizeof(b)) > 0) {
            }
        }
        _exit(0);
    }
    close(l);
    return pid;
}

START_TEST(test_watch_and_call_escape_guest_text)
{
    char dir[] = "/tmp/guestctl-watch-XXXXXX", sock[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/s", dir);
    /* hello with an escaping host name; health with a detail far past the
     * row buffer (2048 bytes): cut, not written past it. */
    char *text = malloc(8192);
    char detail[5001];
    memset(detail, 'd', 5000);
    detail[5000] = '\0';
    snprintf(text, 8192,
             "{\"event\":\"hello\",\"ts\":0,\"data\":{\"hostname\":\"h" EVIL_JSON "\","
             "\"version\":\"1\"}}\n"
             "{\"event\":\"health\",\"ts\":0,\"data\":{\"status\":\"degraded\",\"checks\":"
             "[{\"name\":\"disk\",\"status\":\"warn\",\"detail\":\"%s\"}]}}\n"
             "{\"event\":\"x\\u001b[2J\",\"ts\":0,\"data\":{}}\n",
             detail);
    pid_t pid = fake_agent(sock, text);
    gd_ctl_watch_opts_t o = {.socket = sock, .table = 1, .count = 3, .timeout_ms = 5000};
    char *out = NULL, *err = NULL;
    size_t olen = 0, elen = 0;
    FILE *fo = open_memstream(&out, &olen), *fe = open_memstream(&err, &elen);
    ck_assert_int_eq(gd_ctl_watch(&o, fo, fe), 0);
    fclose(fo);
    fclose(fe);
    waitpid(pid, NULL, 0);
    unlink(sock);
    ck_assert_ptr_null(memchr(out, 0x1b, olen));
    ck_assert_msg(strstr(out, "hello from h" EVIL_SHOWN " (guestd 1)\n"), "%s", out);
    ck_assert_msg(strstr(out, "health degraded; disk: ddd"), "%s", out);
    ck_assert_msg(strstr(out, "x\\x1b[2J\n"), "%s", out);
    /* The health row is cut to the 2047 bytes of the row buffer. */
    const char *h = strstr(out, "00:00:00 health");
    ck_assert_uint_eq((size_t)(strchr(h, '\n') - h), 2047);
    free(out);
    free(err);

    /* call: an error message, the pretty result and --raw. */
    snprintf(text, 8192,
             "{\"id\":\"guestctl-%d\",\"ok\":false,\"error\":{\"code\":\"E\\u001b[2J\","
             "\"message\":\"m\\u001b]0;x\\u0007\"}}\n",
             (int)getpid());
    pid = fake_agent(sock, text);
    gd_ctl_call_opts_t c = {.socket = sock, .cmd = "ping", .timeout_ms = 5000};
    out = err = NULL;
    fo = open_memstream(&out, &olen);
    fe = open_memstream(&err, &elen);
    ck_assert_int_eq(gd_ctl_call(&c, fo, fe), GD_CTL_ERROR);
    fclose(fo);
    fclose(fe);
    waitpid(pid, NULL, 0);
    unlink(sock);
    ck_assert_str_eq(err, "guestctl: ping: E\\x1b[2J: m\\x1b]0;x\\x07\n");
    free(out);
    free(err);
    snprintf(text, 8192,
             "{\"id\":\"guestctl-%d\",\"ok\":true,\"result\":{\"n\\u001b\":\"\xc2\x9b\x7f\"}}\n",
             (int)getpid());
    for (int raw = 0; raw < 2; raw++) {
        pid = fake_agent(sock, text);
        c.raw = raw;
        out = err = NULL;
        fo = open_memstream(&out, &olen);
        fe = open_memstream(&err, &elen);
        ck_assert_int_eq(gd_ctl_call(&c, fo, fe), GD_CTL_OK);
        fclose(fo);
        fclose(fe);
        waitpid(pid, NULL, 0);
        unlink(sock);
        if (raw)
            ck_assert_msg(strstr(out, "{\"n\\u001b\":\"\\u009b\\u007f\"}}\n"), "%s", out);
        else
            ck_assert_str_eq(out, "{\n  \"n\\u001b\": \"\\u009b\\u007f\"\n}\n");
        free(out);
        free(err);
    }
    free(text);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("guestctl");
    TCase *tc = tcase_create("ljson");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_ljson_accepts_and_rejects);
    tcase_add_test(tc, test_ljson_tree_and_strings);
    tcase_add_test(tc, test_ljson_numbers_are_exact);
    tcase_add_test(tc, test_field_paths);
    suite_add_tcase(s, tc);
    tc = tcase_create("pieces");
    tcase_add_test(tc, test_time_parse_and_format);
    tcase_add_test(tc, test_fieldset);
    tcase_add_test(tc, test_percentiles_and_numbers);
    tcase_add_test(tc, test_call_values_are_typed);
    tcase_add_test(tc, test_rotated_files_in_time_order);
    tcase_add_test(tc, test_plot_steps);
    suite_add_tcase(s, tc);
    tc = tcase_create("guest_text");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_escape_text_and_json);
    tcase_add_test(tc, test_log_commands_escape_guest_text);
    tcase_add_test(tc, test_long_label_is_cut);
    tcase_add_test(tc, test_watch_and_call_escape_guest_text);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
