/* guestctl's pieces: the log-line JSON reader, times, field paths, the
 * summary's numbers, value typing for `call`, and file ordering. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/client.h"
#include "tools/fields.h"
#include "tools/ljson.h"
#include "tools/logcmd.h"
#include "tools/logread.h"
#include "tools/plot.h"
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
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
