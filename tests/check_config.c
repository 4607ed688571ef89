/* Tests for agent/config: the key table, defaults, --set, INI files and
 * their error messages, validation, and dumps that load back unchanged. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

static char tmpdir[256];
static char err[2048];

static void setup_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "%s/guestd-config-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    err[0] = '\0';
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void teardown_tmpdir(void)
{
    nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Writes text to tmpdir/name and leaves its path in path. */
static void write_conf(char *path, size_t len, const char *name, const char *text)
{
    snprintf(path, len, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* Loads text as a file over defaults and expects -EINVAL, the error
 * "PATH:" followed by want_after_path, and the defaults left as they were. */
static void expect_file_error(const char *text, const char *want_after_path)
{
    char path[512], want[2048];
    gd_config_t cfg, before;

    write_conf(path, sizeof(path), "bad.conf", text);
    gd_config_defaults(&cfg);
    before = cfg;
    ck_assert_int_eq(gd_config_load_file(&cfg, path, 0, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:%s", path, want_after_path);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
}

static void expect_set_error(const char *assignment, const char *want)
{
    gd_config_t cfg, before;

    gd_config_defaults(&cfg);
    before = cfg;
    ck_assert_int_eq(gd_config_set_dotted(&cfg, assignment, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
}

static void set_ok(gd_config_t *cfg, const char *assignment)
{
    err[0] = '\0';
    ck_assert_msg(gd_config_set_dotted(cfg, assignment, err, sizeof(err)) == 0, "%s: %s",
                  assignment, err);
}

static char *dump_to_string(const gd_config_t *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    gd_config_dump(cfg, out);
    ck_assert_int_eq(fclose(out), 0);
    return text;
}

/* Dumps cfg to a file, loads it over a configuration where every key
 * differs from cfg's value wherever the table allows, and expects cfg back
 * byte for byte. */
static void expect_round_trip(const gd_config_t *cfg)
{
    char path[512];
    gd_config_t back;

    char *text = dump_to_string(cfg);
    write_conf(path, sizeof(path), "dump.conf", text);
    free(text);

    gd_config_defaults(&back);
    set_ok(&back, "agent.log_level=error");
    set_ok(&back, "channel.poll_ms=11");
    set_ok(&back, "metrics.collectors=cpu");
    set_ok(&back, "commands.deny=*");
    set_ok(&back, "metrics.log_fsync=never");
    ck_assert_int_eq(gd_config_load_file(&back, path, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(memcmp(&back, cfg, sizeof(back)), 0);
}

/* --- the table ---------------------------------------------------------- */

START_TEST(table_lists_every_key_in_dump_order)
{
    char all[2048] = "", runtime[2048] = "";

    for (const gd_cfg_key_t *k = gd_config_keys; k->name != NULL; k++) {
        char dotted[128];
        snprintf(dotted, sizeof(dotted), "%s%s.%s", all[0] ? "," : "", k->section, k->name);
        strcat(all, dotted);
        if (k->runtime) {
            snprintf(dotted, sizeof(dotted), "%s%s.%s", runtime[0] ? "," : "", k->section, k->name);
            strcat(runtime, dotted);
        }
    }
    ck_assert_str_eq(all, "agent.log_level,agent.proc_root,agent.sys_root,agent.state_dir,"
                          "channel.spec,channel.poll_ms,channel.poll_max_ms,"
                          "channel.max_message_bytes,channel.out_queue_bytes,"
                          "channel.dialect,channel.qga_spec,channel.qga_dialect,"
                          "metrics.interval_ms,metrics.collectors,metrics.top_processes,"
                          "metrics.history,metrics.log_path,metrics.log_max_bytes,"
                          "metrics.log_keep,metrics.log_fsync,"
                          "health.interval_ms,health.max_rss_bytes,health.min_free_bytes,"
                          "health.max_loop_lag_ms,"
                          "commands.allow,commands.deny,commands.max_concurrent,"
                          "commands.exec_timeout_ms,commands.exec_max_timeout_ms,"
                          "commands.exec_kill_grace_ms,commands.exec_max_output_bytes,"
                          "commands.file_max_bytes,commands.poweroff_argv,"
                          "commands.reboot_argv,commands.fsfreeze_timeout_ms");
    ck_assert_str_eq(runtime, "agent.log_level,channel.poll_ms,channel.poll_max_ms,"
                              "metrics.interval_ms,metrics.top_processes,metrics.log_fsync,"
                              "health.interval_ms,health.max_rss_bytes,health.min_free_bytes,"
                              "health.max_loop_lag_ms,"
                              "commands.allow,commands.deny,commands.max_concurrent,"
                              "commands.exec_timeout_ms,commands.exec_max_timeout_ms,"
                              "commands.exec_kill_grace_ms,commands.exec_max_output_bytes,"
                              "commands.file_max_bytes,commands.fsfreeze_timeout_ms");
}
END_TEST

START_TEST(table_defaults_parse_and_format_back)
{
    gd_config_t cfg;
    char value[512];

    gd_config_defaults(&cfg);
    for (const gd_cfg_key_t *k = gd_config_keys; k->name != NULL; k++) {
        ck_assert_ptr_nonnull(k->help);
        ck_assert_msg(gd_config_set_value(&cfg, k, k->default_value, err, sizeof(err)) == 0, "%s",
                      err);
        gd_config_format_value(&cfg, k, value, sizeof(value));
        ck_assert_str_eq(value, k->default_value);
    }
}
END_TEST

START_TEST(table_find_takes_section_dot_key)
{
    const gd_cfg_key_t *k = gd_config_find("metrics.interval_ms");
    ck_assert_ptr_nonnull(k);
    ck_assert_str_eq(k->section, "metrics");
    ck_assert_str_eq(k->name, "interval_ms");
    ck_assert_str_eq(gd_config_find("health.interval_ms")->section, "health");
    ck_assert_ptr_null(gd_config_find("interval_ms"));
    ck_assert_ptr_null(gd_config_find("metrics"));
    ck_assert_ptr_null(gd_config_find("metrics."));
    ck_assert_ptr_null(gd_config_find(".interval_ms"));
    ck_assert_ptr_null(gd_config_find("metrics.interval"));
    ck_assert_ptr_null(gd_config_find("metrics.interval_ms.x"));
    ck_assert_ptr_null(gd_config_find("Metrics.interval_ms"));
    ck_assert_ptr_null(gd_config_find(""));
}
END_TEST

/* --- defaults ----------------------------------------------------------- */

START_TEST(defaults_are_pinned)
{
    gd_config_t cfg;

    memset(&cfg, 0x5a, sizeof(cfg));
    gd_config_defaults(&cfg);

    ck_assert_int_eq(cfg.agent.log_level, GD_LOG_INFO);
    ck_assert_str_eq(cfg.agent.proc_root, "/proc");
    ck_assert_str_eq(cfg.agent.sys_root, "/sys");
    ck_assert_str_eq(cfg.agent.state_dir, "/var/lib/guestd");

    ck_assert_str_eq(cfg.channel.spec, "virtio-serial:/dev/virtio-ports/org.guestd.agent.0");
    ck_assert_int_eq(cfg.channel.poll_ms, 100);
    ck_assert_int_eq(cfg.channel.poll_max_ms, 5000);
    ck_assert_int_eq(cfg.channel.max_message_bytes, 1048576);
    ck_assert_int_eq(cfg.channel.out_queue_bytes, 4194304);

    ck_assert_int_eq(cfg.metrics.interval_ms, 30000);
    ck_assert_str_eq(cfg.metrics.collectors, "all");
    ck_assert_int_eq(cfg.metrics.top_processes, 5);
    ck_assert_int_eq(cfg.metrics.history, 120);
    ck_assert_str_eq(cfg.metrics.log_path, "/var/log/guestd/metrics.ndjson");
    ck_assert_int_eq(cfg.metrics.log_max_bytes, 10485760);
    ck_assert_int_eq(cfg.metrics.log_keep, 5);
    ck_assert_int_eq(cfg.metrics.log_fsync, GD_FSYNC_ROTATE);

    ck_assert_int_eq(cfg.health.interval_ms, 60000);
    ck_assert_int_eq(cfg.health.max_rss_bytes, 67108864);
    ck_assert_int_eq(cfg.health.min_free_bytes, 67108864);
    ck_assert_int_eq(cfg.health.max_loop_lag_ms, 500);

    ck_assert_str_eq(cfg.commands.allow, "*");
    ck_assert_str_eq(cfg.commands.deny, "");
    ck_assert_int_eq(cfg.commands.max_concurrent, 8);
    ck_assert_int_eq(cfg.commands.exec_timeout_ms, 30000);
    ck_assert_int_eq(cfg.commands.exec_max_timeout_ms, 3600000);
    ck_assert_int_eq(cfg.commands.exec_kill_grace_ms, 2000);
    ck_assert_int_eq(cfg.commands.exec_max_output_bytes, 1048576);
    ck_assert_int_eq(cfg.commands.file_max_bytes, 16777216);
    ck_assert_str_eq(cfg.commands.poweroff_argv, "systemctl poweroff");
    ck_assert_str_eq(cfg.commands.reboot_argv, "systemctl reboot");
}
END_TEST

START_TEST(defaults_are_the_same_bytes_whatever_was_there)
{
    gd_config_t a, b;

    memset(&a, 0x00, sizeof(a));
    memset(&b, 0xff, sizeof(b));
    gd_config_defaults(&a);
    gd_config_defaults(&b);
    ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
}
END_TEST

START_TEST(defaults_pass_validation)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    ck_assert_int_eq(gd_config_validate(&cfg, err, sizeof(err)), 0);
}
END_TEST

/* --- --set -------------------------------------------------------------- */

START_TEST(set_overrides_each_type)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    set_ok(&cfg, "metrics.interval_ms=100");
    set_ok(&cfg, "agent.log_level=debug");
    set_ok(&cfg, "metrics.log_fsync=always");
    set_ok(&cfg, "commands.poweroff_argv=/sbin/shutdown -h now");
    set_ok(&cfg, "commands.allow=");
    set_ok(&cfg, "metrics.log_max_bytes=1099511627776");
    set_ok(&cfg, "health.min_free_bytes=0");
    set_ok(&cfg, "channel.spec=unix-connect:/run/a=b");

    ck_assert_int_eq(cfg.metrics.interval_ms, 100);
    ck_assert_int_eq(cfg.agent.log_level, GD_LOG_DEBUG);
    ck_assert_int_eq(cfg.metrics.log_fsync, GD_FSYNC_ALWAYS);
    ck_assert_str_eq(cfg.commands.poweroff_argv, "/sbin/shutdown -h now");
    ck_assert_str_eq(cfg.commands.allow, "");
    ck_assert_int_eq(cfg.metrics.log_max_bytes, INT64_C(1099511627776));
    ck_assert_int_eq(cfg.health.min_free_bytes, 0);
    ck_assert_str_eq(cfg.channel.spec, "unix-connect:/run/a=b");
    /* Untouched keys keep their defaults. */
    ck_assert_int_eq(cfg.health.interval_ms, 60000);
    ck_assert_str_eq(cfg.commands.reboot_argv, "systemctl reboot");
}
END_TEST

START_TEST(set_every_enum_choice_is_its_index)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    set_ok(&cfg, "agent.log_level=error");
    ck_assert_int_eq(cfg.agent.log_level, GD_LOG_ERROR);
    set_ok(&cfg, "agent.log_level=warn");
    ck_assert_int_eq(cfg.agent.log_level, GD_LOG_WARN);
    set_ok(&cfg, "agent.log_level=info");
    ck_assert_int_eq(cfg.agent.log_level, GD_LOG_INFO);
    set_ok(&cfg, "agent.log_level=debug");
    ck_assert_int_eq(cfg.agent.log_level, GD_LOG_DEBUG);
    set_ok(&cfg, "metrics.log_fsync=never");
    ck_assert_int_eq(cfg.metrics.log_fsync, GD_FSYNC_NEVER);
    set_ok(&cfg, "metrics.log_fsync=rotate");
    ck_assert_int_eq(cfg.metrics.log_fsync, GD_FSYNC_ROTATE);
    set_ok(&cfg, "metrics.log_fsync=always");
    ck_assert_int_eq(cfg.metrics.log_fsync, GD_FSYNC_ALWAYS);
}
END_TEST

START_TEST(set_accepts_both_ends_of_a_range)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    set_ok(&cfg, "channel.poll_ms=10");
    ck_assert_int_eq(cfg.channel.poll_ms, 10);
    set_ok(&cfg, "channel.poll_ms=60000");
    ck_assert_int_eq(cfg.channel.poll_ms, 60000);
    set_ok(&cfg, "health.max_rss_bytes=17179869184");
    ck_assert_int_eq(cfg.health.max_rss_bytes, INT64_C(17179869184));
    set_ok(&cfg, "metrics.top_processes=+7");
    ck_assert_int_eq(cfg.metrics.top_processes, 7);
    set_ok(&cfg, "metrics.top_processes=007");
    ck_assert_int_eq(cfg.metrics.top_processes, 7);
}
END_TEST

START_TEST(set_errors_name_the_assignment)
{
    expect_set_error("metrics.interval_ms=5", "--set metrics.interval_ms=5: metrics.interval_ms: "
                                              "5 is out of range (allowed: 100..86400000)");
    expect_set_error("metrics.interval_ms",
                     "--set metrics.interval_ms: expected section.key=value");
    expect_set_error("X", "--set X: expected section.key=value");
    expect_set_error("interval_ms=5", "--set interval_ms=5: expected section.key=value");
    expect_set_error("=5", "--set =5: expected section.key=value");
    expect_set_error("foo.bar=1", "--set foo.bar=1: unknown key 'foo.bar'");
    expect_set_error("metrics.interval=1",
                     "--set metrics.interval=1: unknown key 'metrics.interval'");
    expect_set_error("agent.log_level=loud",
                     "--set agent.log_level=loud: agent.log_level: 'loud' is "
                     "not one of error|warn|info|debug");
    expect_set_error("metrics.log_fsync=Always",
                     "--set metrics.log_fsync=Always: metrics.log_fsync: "
                     "'Always' is not one of never|rotate|always");
}
END_TEST

START_TEST(set_integers_are_whole_decimal_text)
{
    expect_set_error("metrics.interval_ms=abc",
                     "--set metrics.interval_ms=abc: metrics.interval_ms: "
                     "'abc' is not an integer (allowed: 100..86400000)");
    expect_set_error("metrics.interval_ms=", "--set metrics.interval_ms=: metrics.interval_ms: "
                                             "'' is not an integer (allowed: 100..86400000)");
    expect_set_error("metrics.interval_ms=100ms", "--set metrics.interval_ms=100ms: "
                                                  "metrics.interval_ms: '100ms' is not an integer "
                                                  "(allowed: 100..86400000)");
    expect_set_error("metrics.interval_ms= 100", "--set metrics.interval_ms= 100: "
                                                 "metrics.interval_ms: ' 100' is not an integer "
                                                 "(allowed: 100..86400000)");
    expect_set_error("metrics.interval_ms=0x100", "--set metrics.interval_ms=0x100: "
                                                  "metrics.interval_ms: '0x100' is not an integer "
                                                  "(allowed: 100..86400000)");
    expect_set_error("metrics.interval_ms=-", "--set metrics.interval_ms=-: metrics.interval_ms: "
                                              "'-' is not an integer (allowed: 100..86400000)");
    expect_set_error("metrics.interval_ms=99999999999999999999",
                     "--set metrics.interval_ms=99999999999999999999: metrics.interval_ms: "
                     "99999999999999999999 is out of range (allowed: 100..86400000)");
    expect_set_error("metrics.interval_ms=-1", "--set metrics.interval_ms=-1: metrics.interval_ms: "
                                               "-1 is out of range (allowed: 100..86400000)");
    expect_set_error("metrics.interval_ms=86400001",
                     "--set metrics.interval_ms=86400001: metrics.interval_ms: "
                     "86400001 is out of range (allowed: 100..86400000)");
    expect_set_error("metrics.log_max_bytes=1099511627777",
                     "--set metrics.log_max_bytes=1099511627777: metrics.log_max_bytes: "
                     "1099511627777 is out of range (allowed: 4096..1099511627776)");
}
END_TEST

START_TEST(set_strings_must_fit_a_config_line)
{
    char assignment[600], want[1200], value[300];

    memset(value, 'x', 256);
    value[256] = '\0';
    snprintf(assignment, sizeof(assignment), "channel.spec=%s", value);
    snprintf(want, sizeof(want), "--set %s: channel.spec: value is longer than 255 bytes",
             assignment);
    expect_set_error(assignment, want);

    expect_set_error("agent.proc_root=", "--set agent.proc_root=: agent.proc_root: "
                                         "value must not be empty");
    expect_set_error("commands.allow= info", "--set commands.allow= info: commands.allow: "
                                             "value starts or ends with a space");
    expect_set_error("commands.allow=info ", "--set commands.allow=info : commands.allow: "
                                             "value starts or ends with a space");
    expect_set_error("commands.allow=a\tb", "--set commands.allow=a\tb: commands.allow: "
                                            "value contains a control character");
    expect_set_error("commands.allow=a\nb", "--set commands.allow=a\nb: commands.allow: "
                                            "value contains a control character");
    expect_set_error("commands.allow=info ;x",
                     "--set commands.allow=info ;x: commands.allow: value has ';' at the start "
                     "or after a space, which a config file reads as a comment");
    expect_set_error("commands.allow=;x", "--set commands.allow=;x: commands.allow: value has ';' "
                                          "at the start or after a space, which a config file "
                                          "reads as a comment");
}
END_TEST

START_TEST(set_string_of_255_bytes_and_inner_semicolon_are_kept)
{
    gd_config_t cfg;
    char assignment[600], value[300];

    memset(value, 'y', 255);
    value[255] = '\0';
    snprintf(assignment, sizeof(assignment), "channel.spec=%s", value);
    gd_config_defaults(&cfg);
    set_ok(&cfg, assignment);
    ck_assert_str_eq(cfg.channel.spec, value);
    set_ok(&cfg, "commands.deny=a;b");
    ck_assert_str_eq(cfg.commands.deny, "a;b");
}
END_TEST

START_TEST(set_shorter_string_leaves_no_trace_of_the_longer_one)
{
    gd_config_t a, b;

    gd_config_defaults(&a);
    gd_config_defaults(&b);
    set_ok(&a, "metrics.collectors=cpu,memory,disk,network");
    set_ok(&a, "metrics.collectors=cpu");
    set_ok(&b, "metrics.collectors=cpu");
    ck_assert_int_eq(memcmp(&a, &b, sizeof(a)), 0);
}
END_TEST

/* No key's range reaches INT64_MAX yet; one that does must still refuse a
 * number past it rather than store the clamped value. */
static const gd_cfg_key_t wide_key = {
    "test",    "wide", GD_CFG_INT, offsetof(gd_config_t, metrics.history), "0", INT64_MIN,
    INT64_MAX, NULL,   1,          "A test integer with the widest range", NULL};

START_TEST(set_integer_overflow_is_out_of_range)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    ck_assert_int_eq(gd_config_set_value(&cfg, &wide_key, "9223372036854775807", err, sizeof(err)),
                     0);
    ck_assert_int_eq(cfg.metrics.history, INT64_MAX);
    ck_assert_int_eq(gd_config_set_value(&cfg, &wide_key, "-9223372036854775808", err, sizeof(err)),
                     0);
    ck_assert_int_eq(cfg.metrics.history, INT64_MIN);
    ck_assert_int_eq(gd_config_set_value(&cfg, &wide_key, "9223372036854775808", err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "test.wide: 9223372036854775808 is out of range (allowed: "
                          "-9223372036854775808..9223372036854775807)");
    ck_assert_int_eq(gd_config_set_value(&cfg, &wide_key, "-9223372036854775809", err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "test.wide: -9223372036854775809 is out of range (allowed: "
                          "-9223372036854775808..9223372036854775807)");
    ck_assert_int_eq(cfg.metrics.history, INT64_MIN);
}
END_TEST

/* --- BOOL, which no key uses yet --------------------------------------- */

static const gd_cfg_key_t bool_key = {.section = "test",
                                      .name = "flag",
                                      .type = GD_CFG_BOOL,
                                      .offset = offsetof(gd_config_t, metrics.top_processes),
                                      .default_value = "false",
                                      .runtime = 1,
                                      .help = "A test flag"};

START_TEST(bool_accepts_the_usual_words)
{
    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "On"};
    static const char *const no[] = {"false", "no", "off", "0", "False", "OFF"};
    gd_config_t cfg;
    char value[16];

    gd_config_defaults(&cfg);
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        cfg.metrics.top_processes = 42;
        ck_assert_int_eq(gd_config_set_value(&cfg, &bool_key, yes[i], err, sizeof(err)), 0);
        ck_assert_int_eq(cfg.metrics.top_processes, 1);
        gd_config_format_value(&cfg, &bool_key, value, sizeof(value));
        ck_assert_str_eq(value, "true");
        ck_assert_int_eq(gd_config_set_value(&cfg, &bool_key, no[i], err, sizeof(err)), 0);
        ck_assert_int_eq(cfg.metrics.top_processes, 0);
        gd_config_format_value(&cfg, &bool_key, value, sizeof(value));
        ck_assert_str_eq(value, "false");
    }
}
END_TEST

START_TEST(bool_rejects_other_words)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    ck_assert_int_eq(gd_config_set_value(&cfg, &bool_key, "maybe", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "test.flag: 'maybe' is not a boolean (allowed: true|false)");
    ck_assert_int_eq(gd_config_set_value(&cfg, &bool_key, "", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "test.flag: '' is not a boolean (allowed: true|false)");
    ck_assert_int_eq(gd_config_set_value(&cfg, &bool_key, "2", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "test.flag: '2' is not a boolean (allowed: true|false)");
    ck_assert_int_eq(cfg.metrics.top_processes, 5);
}
END_TEST

START_TEST(bool_is_a_json_boolean)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    ck_assert_int_eq(gd_config_set_value(&cfg, &bool_key, "yes", err, sizeof(err)), 0);
    cJSON *v = gd_config_value_json(&cfg, &bool_key);
    ck_assert_int_eq(cJSON_IsTrue(v), 1);
    cJSON_Delete(v);
    ck_assert_int_eq(gd_config_set_value(&cfg, &bool_key, "no", err, sizeof(err)), 0);
    v = gd_config_value_json(&cfg, &bool_key);
    ck_assert_int_eq(cJSON_IsFalse(v), 1);
    cJSON_Delete(v);
}
END_TEST

/* --- files -------------------------------------------------------------- */

START_TEST(file_fixture_sets_exact_values)
{
    char path[512];
    gd_config_t cfg;
    const char *fixtures = getenv("GUESTD_FIXTURES");

    ck_assert_ptr_nonnull(fixtures);
    snprintf(path, sizeof(path), "%s/config/example.conf", fixtures);
    gd_config_defaults(&cfg);
    ck_assert_msg(gd_config_load_file(&cfg, path, 0, err, sizeof(err)) == 0, "%s", err);

    ck_assert_str_eq(cfg.commands.allow, "info, metrics.*, file.read");
    ck_assert_str_eq(cfg.commands.deny, "");
    ck_assert_str_eq(cfg.commands.poweroff_argv, "/sbin/shutdown -h now");
    ck_assert_int_eq(cfg.commands.max_concurrent, 2);
    ck_assert_int_eq(cfg.agent.log_level, GD_LOG_DEBUG);
    ck_assert_str_eq(cfg.agent.proc_root, "/srv/fixture/proc"); /* indented */
    ck_assert_int_eq(cfg.metrics.interval_ms, 2500);            /* the last of two */
    ck_assert_int_eq(cfg.metrics.history, 50);                  /* inline comment */
    ck_assert_int_eq(cfg.metrics.log_keep, 3);                  /* ':' separator */
    ck_assert_int_eq(cfg.metrics.log_fsync, GD_FSYNC_ALWAYS);
    ck_assert_str_eq(cfg.metrics.log_path, "none");
    ck_assert_str_eq(cfg.channel.spec, "unix-listen:/run/guestd/agent.sock");
    ck_assert_int_eq(cfg.channel.poll_ms, 20);
    /* Keys the file leaves out keep what cfg had. */
    ck_assert_int_eq(cfg.channel.poll_max_ms, 5000);
    ck_assert_str_eq(cfg.agent.sys_root, "/sys");
    ck_assert_str_eq(cfg.commands.reboot_argv, "systemctl reboot");
}
END_TEST

START_TEST(file_indented_line_is_a_key_not_a_continuation)
{
    char path[512];
    gd_config_t cfg;

    write_conf(path, sizeof(path), "indent.conf",
               "[metrics]\ninterval_ms = 200\n    top_processes = 7\n\t history = 9\n");
    gd_config_defaults(&cfg);
    ck_assert_msg(gd_config_load_file(&cfg, path, 0, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(cfg.metrics.interval_ms, 200);
    ck_assert_int_eq(cfg.metrics.top_processes, 7);
    ck_assert_int_eq(cfg.metrics.history, 9);
}
END_TEST

START_TEST(file_crlf_and_no_final_newline)
{
    char path[512];
    gd_config_t cfg;

    write_conf(path, sizeof(path), "crlf.conf",
               "[health]\r\nmax_loop_lag_ms = 42\r\n[agent]\r\nsys_root = /srv/sys");
    gd_config_defaults(&cfg);
    ck_assert_msg(gd_config_load_file(&cfg, path, 0, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(cfg.health.max_loop_lag_ms, 42);
    ck_assert_str_eq(cfg.agent.sys_root, "/srv/sys");
}
END_TEST

START_TEST(file_value_errors_name_file_and_line)
{
    expect_file_error("[metrics]\n; comment\ninterval_ms = abc\n",
                      "3: metrics.interval_ms: 'abc' is not an integer (allowed: 100..86400000)");
    expect_file_error("[metrics]\n\ninterval_ms = 5\n",
                      "3: metrics.interval_ms: 5 is out of range (allowed: 100..86400000)");
    expect_file_error("[agent]\nlog_level = loud\n",
                      "2: agent.log_level: 'loud' is not one of error|warn|info|debug");
    expect_file_error("[metrics]\nlog_fsync = sometimes\n",
                      "2: metrics.log_fsync: 'sometimes' is not one of never|rotate|always");
    expect_file_error("[channel]\npoll_ms =\n",
                      "2: channel.poll_ms: '' is not an integer (allowed: 10..60000)");
    expect_file_error("[agent]\nstate_dir =\n", "2: agent.state_dir: value must not be empty");
}
END_TEST

START_TEST(file_string_too_long)
{
    char text[600], value[300];

    memset(value, 'z', 256);
    value[256] = '\0';
    snprintf(text, sizeof(text), "[channel]\nspec = %s\n", value);
    expect_file_error(text, "2: channel.spec: value is longer than 255 bytes");
}
END_TEST

START_TEST(file_unknown_keys_and_sections)
{
    expect_file_error("[metrics]\ninterval_ms = 100\nintreval_ms = 100\n",
                      "3: unknown key 'metrics.intreval_ms'");
    expect_file_error("[agent]\n[bogus]\nx = 1\n", "3: unknown key 'bogus.x'");
    expect_file_error("log_level = info\n", "1: unknown key 'log_level' (outside any [section])");
    expect_file_error("[Agent]\nlog_level = info\n", "2: unknown key 'Agent.log_level'");
}
END_TEST

START_TEST(file_syntax_errors)
{
    expect_file_error("[agent]\nlog_level info\n", "2: syntax error");
    expect_file_error("[agent\nlog_level = info\n", "1: syntax error");
}
END_TEST

START_TEST(file_first_error_in_line_order_wins)
{
    expect_file_error("[agent]\nbroken\nlog_level = loud\n", "2: syntax error");
    expect_file_error("[agent]\nlog_level = loud\nbroken\n",
                      "2: agent.log_level: 'loud' is not one of error|warn|info|debug");
    expect_file_error("[agent]\nnope = 1\nlog_level = loud\n", "2: unknown key 'agent.nope'");
}
END_TEST

START_TEST(file_line_too_long)
{
    char text[1400];

    /* 1023 bytes before the newline: one more than fits. */
    memcpy(text, "[metrics]\ncollectors = ", 23);
    memset(text + 23, 'c', 1023 - 13);
    strcpy(text + 23 + 1023 - 13, "\n");
    expect_file_error(text, "2: line is longer than 1022 bytes");

    /* 1022 bytes fit: the line is read, and its value is refused instead. */
    text[23 + 1022 - 13] = '\n';
    text[23 + 1022 - 13 + 1] = '\0';
    expect_file_error(text, "2: metrics.collectors: value is longer than 255 bytes");
}
END_TEST

START_TEST(file_failed_load_leaves_cfg_unchanged)
{
    char path[512];
    gd_config_t cfg, before;

    write_conf(path, sizeof(path), "half.conf",
               "[metrics]\ninterval_ms = 1000\n[commands]\nallow = info\nmax_concurrent = 0\n");
    gd_config_defaults(&cfg);
    set_ok(&cfg, "metrics.interval_ms=4000");
    before = cfg;
    ck_assert_int_eq(gd_config_load_file(&cfg, path, 0, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
    ck_assert_int_eq(cfg.metrics.interval_ms, 4000);
}
END_TEST

START_TEST(file_missing)
{
    char path[512], want[1024];
    gd_config_t cfg, before;

    snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
    gd_config_defaults(&cfg);
    set_ok(&cfg, "metrics.history=7");
    before = cfg;

    ck_assert_int_eq(gd_config_load_file(&cfg, path, 0, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);

    err[0] = '\0';
    ck_assert_int_eq(gd_config_load_file(&cfg, path, 1, err, sizeof(err)), 0);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
}
END_TEST

START_TEST(file_directory_cannot_be_read)
{
    char want[1024];
    gd_config_t cfg, before;

    gd_config_defaults(&cfg);
    before = cfg;
    /* missing_ok is about absence only: a directory is still an error. */
    ck_assert_int_eq(gd_config_load_file(&cfg, tmpdir, 1, err, sizeof(err)), -EISDIR);
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
}
END_TEST

START_TEST(file_empty_changes_nothing)
{
    char path[512];
    gd_config_t cfg, before;

    write_conf(path, sizeof(path), "empty.conf", "; nothing here\n\n[agent]\n");
    gd_config_defaults(&cfg);
    set_ok(&cfg, "agent.log_level=warn");
    before = cfg;
    ck_assert_int_eq(gd_config_load_file(&cfg, path, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
}
END_TEST

/* --- validate ----------------------------------------------------------- */

START_TEST(validate_poll_ms_within_poll_max_ms)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    set_ok(&cfg, "channel.poll_ms=5000");
    ck_assert_int_eq(gd_config_validate(&cfg, err, sizeof(err)), 0);
    set_ok(&cfg, "channel.poll_ms=5001");
    ck_assert_int_eq(gd_config_validate(&cfg, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "channel.poll_ms (5001) must not be greater than channel.poll_max_ms "
                          "(5000)");
}
END_TEST

START_TEST(validate_exec_timeout_within_max)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    set_ok(&cfg, "commands.exec_max_timeout_ms=1000");
    ck_assert_int_eq(gd_config_validate(&cfg, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "commands.exec_timeout_ms (30000) must not be greater than "
                          "commands.exec_max_timeout_ms (1000)");
    set_ok(&cfg, "commands.exec_timeout_ms=1000");
    ck_assert_int_eq(gd_config_validate(&cfg, err, sizeof(err)), 0);
}
END_TEST

/* --- assemble: what main() and SIGHUP's reload both run ------------------ */

START_TEST(assemble_file_then_sets_in_order)
{
    char path[512];
    gd_config_t cfg, want;
    char *sets[] = {"metrics.interval_ms=4000", "agent.log_level=warn", "metrics.interval_ms=6000"};

    write_conf(path, sizeof(path), "a.conf",
               "[metrics]\ninterval_ms = 2000\n[health]\n"
               "interval_ms = 3000\n");
    ck_assert_msg(gd_config_assemble(path, sets, 3, &cfg, err, sizeof(err)) == 0, "%s", err);
    gd_config_defaults(&want);
    want.metrics.interval_ms = 6000; /* the last --set wins over the file */
    want.health.interval_ms = 3000;  /* the file wins over the default */
    want.agent.log_level = GD_LOG_WARN;
    ck_assert_int_eq(memcmp(&cfg, &want, sizeof(cfg)), 0);

    /* No overrides: the file over the defaults, nothing else. */
    ck_assert_int_eq(gd_config_assemble(path, NULL, 0, &cfg, err, sizeof(err)), 0);
    want.metrics.interval_ms = 2000;
    want.agent.log_level = GD_LOG_INFO;
    ck_assert_int_eq(memcmp(&cfg, &want, sizeof(cfg)), 0);
}
END_TEST

/* Each step's failure is reported and leaves *out as it was. */
START_TEST(assemble_failures_leave_out_alone)
{
    char path[512], absent[512], want[1024];
    gd_config_t cfg, before;
    char *bad_set[] = {"metrics.interval_ms=500", "nope.key=1"};
    char *crossed[] = {"channel.poll_ms=2000"};

    memset(&cfg, 0xab, sizeof(cfg));
    before = cfg;
    snprintf(absent, sizeof(absent), "%s/absent.conf", tmpdir);
    ck_assert_int_eq(gd_config_assemble(absent, NULL, 0, &cfg, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", absent);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);

    write_conf(path, sizeof(path), "b.conf", "[channel]\npoll_max_ms = 1000\n");
    ck_assert_int_eq(gd_config_assemble(path, bad_set, 2, &cfg, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strncmp(err, "--set nope.key=1: ", 18) == 0, "%s", err);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);

    ck_assert_int_eq(gd_config_assemble(path, crossed, 1, &cfg, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "channel.poll_ms (2000) must not be greater than channel.poll_max_ms "
                          "(1000)");
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
}
END_TEST

/* --- dump --------------------------------------------------------------- */

START_TEST(dump_writes_a_comment_and_a_line_per_key)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    set_ok(&cfg, "metrics.interval_ms=1500");
    char *text = dump_to_string(&cfg);
    ck_assert_ptr_nonnull(strstr(text, "\n[metrics]\n"
                                       "; Time between metric samples (default: 30000; allowed: "
                                       "100..86400000; runtime)\n"
                                       "interval_ms = 1500\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n; Comma-separated fnmatch patterns; deny wins over "
                                       "allow (default: \"\"; allowed: up to 255 bytes; "
                                       "runtime)\ndeny =\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n; Least severe messages logged (default: info; "
                                       "allowed: error|warn|info|debug; runtime)\n"
                                       "log_level = info\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n; Where procfs is mounted (default: /proc; allowed: "
                                       "1..255 bytes; restart)\nproc_root = /proc\n"));

    int keys = 0, comments = 0, sections = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == ';')
            comments++;
        else if (line[0] == '[')
            sections++;
        else
            keys++;
    }
    ck_assert_int_eq(sections, 5);
    ck_assert_int_eq(keys, 35);
    ck_assert_int_eq(comments, 35 + 2);
    free(text);
}
END_TEST

START_TEST(dump_of_defaults_loads_back)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    expect_round_trip(&cfg);
}
END_TEST

START_TEST(dump_after_changes_loads_back)
{
    gd_config_t cfg;
    char assignment[600], value[300];

    gd_config_defaults(&cfg);
    set_ok(&cfg, "agent.log_level=warn");
    set_ok(&cfg, "agent.state_dir=/var/lib/guest d #1=a:b \"q\" x;y [s]");
    set_ok(&cfg, "commands.poweroff_argv=/sbin/shutdown -h now");
    set_ok(&cfg, "commands.allow=info, metrics.*,  file.read");
    set_ok(&cfg, "commands.deny=");
    set_ok(&cfg, "metrics.collectors=#cpu");
    set_ok(&cfg, "metrics.log_fsync=never");
    set_ok(&cfg, "metrics.log_max_bytes=1099511627776");
    set_ok(&cfg, "health.min_free_bytes=0");
    set_ok(&cfg, "channel.poll_ms=10");
    memset(value, 'v', 255);
    value[0] = '/';
    value[100] = ' ';
    value[255] = '\0';
    snprintf(assignment, sizeof(assignment), "channel.spec=%s", value);
    set_ok(&cfg, assignment);
    expect_round_trip(&cfg);
}
END_TEST

START_TEST(dump_is_stable)
{
    gd_config_t cfg, back;
    char path[512];

    gd_config_defaults(&cfg);
    set_ok(&cfg, "commands.reboot_argv=/sbin/reboot -f");
    char *first = dump_to_string(&cfg);
    write_conf(path, sizeof(path), "first.conf", first);
    gd_config_defaults(&back);
    ck_assert_int_eq(gd_config_load_file(&back, path, 0, err, sizeof(err)), 0);
    char *second = dump_to_string(&back);
    ck_assert_str_eq(first, second);
    free(first);
    free(second);
}
END_TEST

/* --- values as JSON and text -------------------------------------------- */

static char *json_of(const gd_config_t *cfg, const char *dotted)
{
    const gd_cfg_key_t *k = gd_config_find(dotted);
    ck_assert_ptr_nonnull(k);
    cJSON *v = gd_config_value_json(cfg, k);
    ck_assert_ptr_nonnull(v);
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return text;
}

static void expect_json(const gd_config_t *cfg, const char *dotted, const char *want)
{
    char *text = json_of(cfg, dotted);
    ck_assert_str_eq(text, want);
    free(text);
}

START_TEST(json_values_are_typed)
{
    gd_config_t cfg;

    gd_config_defaults(&cfg);
    set_ok(&cfg, "metrics.log_max_bytes=1099511627776");
    set_ok(&cfg, "commands.poweroff_argv=/sbin/poweroff \"-f\"");
    expect_json(&cfg, "metrics.interval_ms", "30000");
    expect_json(&cfg, "metrics.log_max_bytes", "1099511627776");
    expect_json(&cfg, "health.min_free_bytes", "67108864");
    expect_json(&cfg, "agent.log_level", "\"info\"");
    expect_json(&cfg, "metrics.log_fsync", "\"rotate\"");
    expect_json(&cfg, "commands.deny", "\"\"");
    expect_json(&cfg, "commands.poweroff_argv", "\"/sbin/poweroff \\\"-f\\\"\"");
}
END_TEST

START_TEST(format_value_is_what_the_dump_writes)
{
    gd_config_t cfg;
    char buf[64];

    gd_config_defaults(&cfg);
    gd_config_format_value(&cfg, gd_config_find("metrics.log_fsync"), buf, sizeof(buf));
    ck_assert_str_eq(buf, "rotate");
    gd_config_format_value(&cfg, gd_config_find("health.max_rss_bytes"), buf, sizeof(buf));
    ck_assert_str_eq(buf, "67108864");
    gd_config_format_value(&cfg, gd_config_find("agent.state_dir"), buf, 8);
    ck_assert_str_eq(buf, "/var/li");
}
END_TEST

START_TEST(describe_range_per_type)
{
    char buf[128];

    gd_config_describe_range(gd_config_find("metrics.interval_ms"), buf, sizeof(buf));
    ck_assert_str_eq(buf, "100..86400000");
    gd_config_describe_range(gd_config_find("metrics.log_max_bytes"), buf, sizeof(buf));
    ck_assert_str_eq(buf, "4096..1099511627776");
    gd_config_describe_range(gd_config_find("agent.log_level"), buf, sizeof(buf));
    ck_assert_str_eq(buf, "error|warn|info|debug");
    gd_config_describe_range(gd_config_find("metrics.log_fsync"), buf, sizeof(buf));
    ck_assert_str_eq(buf, "never|rotate|always");
    gd_config_describe_range(gd_config_find("channel.spec"), buf, sizeof(buf));
    ck_assert_str_eq(buf, "1..255 bytes");
    gd_config_describe_range(gd_config_find("commands.deny"), buf, sizeof(buf));
    ck_assert_str_eq(buf, "up to 255 bytes");
    gd_config_describe_range(&bool_key, buf, sizeof(buf));
    ck_assert_str_eq(buf, "true|false");
}
END_TEST

START_TEST(describe_range_truncates_safely)
{
    char buf[16];

    memset(buf, '#', sizeof(buf));
    gd_config_describe_range(gd_config_find("agent.log_level"), buf, 8);
    ck_assert_str_eq(buf, "error|w");
    ck_assert_int_eq(buf[8], '#');
    gd_config_describe_range(gd_config_find("metrics.interval_ms"), buf, 4);
    ck_assert_str_eq(buf, "100");
}
END_TEST

START_TEST(key_differs_per_key)
{
    gd_config_t a, b;

    gd_config_defaults(&a);
    gd_config_defaults(&b);
    set_ok(&b, "metrics.interval_ms=1000");
    set_ok(&b, "commands.deny=exec");
    for (const gd_cfg_key_t *k = gd_config_keys; k->name != NULL; k++) {
        int changed =
            k == gd_config_find("metrics.interval_ms") || k == gd_config_find("commands.deny");
        ck_assert_msg(gd_config_key_differs(&a, &b, k) == changed, "%s.%s", k->section, k->name);
    }
}
END_TEST

/* --- ceilings: what a host could otherwise raise without bound -------- */

static const struct {
    const char *key;
    int64_t ceiling;
} ceilings[] = {
    {"channel.max_message_bytes", 67108864}, /* 64 MiB */
    {"channel.out_queue_bytes", 134217728},  /* 128 MiB */
    {"metrics.top_processes", 100},
    {"metrics.history", 2880},
    {"commands.max_concurrent", 64},              /* = GD_FD_COMMANDS_MAX */
    {"commands.exec_max_output_bytes", 16777216}, /* 16 MiB */
    {"commands.file_max_bytes", 50331648},        /* 48 MiB */
};

START_TEST(ceilings_are_pinned_and_explained)
{
    size_t capped = 0;
    for (const gd_cfg_key_t *k = gd_config_keys; k->name != NULL; k++)
        if (k->ceiling != NULL) capped++;
    ck_assert_uint_eq(capped, sizeof(ceilings) / sizeof(ceilings[0]));
    for (size_t i = 0; i < sizeof(ceilings) / sizeof(ceilings[0]); i++) {
        const gd_cfg_key_t *k = gd_config_find(ceilings[i].key);
        ck_assert_ptr_nonnull(k);
        ck_assert_msg(k->ceiling != NULL && strlen(k->ceiling) > 10, "%s", ceilings[i].key);
        ck_assert_int_eq(k->max, ceilings[i].ceiling);
    }
}
END_TEST

START_TEST(ceilings_accept_their_value_and_refuse_one_more)
{
    gd_config_t cfg;
    char value[32], want[512], range[64];

    for (size_t i = 0; i < sizeof(ceilings) / sizeof(ceilings[0]); i++) {
        const gd_cfg_key_t *k = gd_config_find(ceilings[i].key);
        gd_config_defaults(&cfg);
        snprintf(value, sizeof(value), "%lld", (long long)ceilings[i].ceiling);
        ck_assert_int_eq(gd_config_set_value(&cfg, k, value, err, sizeof(err)), 0);
        gd_config_t before = cfg;
        snprintf(value, sizeof(value), "%lld", (long long)ceilings[i].ceiling + 1);
        ck_assert_int_eq(gd_config_set_value(&cfg, k, value, err, sizeof(err)), -EINVAL);
        gd_config_describe_range(k, range, sizeof(range));
        snprintf(want, sizeof(want), "%s: %s is above the ceiling of %lld, %s (allowed: %s)",
                 ceilings[i].key, value, (long long)ceilings[i].ceiling, k->ceiling, range);
        ck_assert_str_eq(err, want);
        ck_assert_int_eq(memcmp(&before, &cfg, sizeof(cfg)), 0);
    }
    /* The whole message of one, as a user reads it. */
    gd_config_defaults(&cfg);
    ck_assert_int_eq(gd_config_set_dotted(&cfg, "commands.max_concurrent=1024", err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "--set commands.max_concurrent=1024: commands.max_concurrent: 1024 is "
                          "above the ceiling of 64, what the agent's open-file budget holds for "
                          "commands (allowed: 1..64)");
    ck_assert_int_eq(cfg.commands.max_concurrent, 8);
}
END_TEST

START_TEST(ceilings_hold_in_a_file_too)
{
    char path[] = "/tmp/guestd-ceiling-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "[commands]\nfile_max_bytes = 1073741824\n";
    ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    gd_config_t cfg;
    gd_config_defaults(&cfg);
    ck_assert_int_eq(gd_config_load_file(&cfg, path, 0, err, sizeof(err)), -EINVAL);
    unlink(path);
    ck_assert_msg(strstr(err, ":2: commands.file_max_bytes: 1073741824 is above the ceiling of "
                              "50331648, qemu-ga's own guest-file-read limit") != NULL,
                  "%s", err);
    ck_assert_int_eq(cfg.commands.file_max_bytes, 16777216);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase_create("table");
    tcase_add_test(tc, table_lists_every_key_in_dump_order);
    tcase_add_test(tc, table_defaults_parse_and_format_back);
    tcase_add_test(tc, table_find_takes_section_dot_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("defaults");
    tcase_add_test(tc, defaults_are_pinned);
    tcase_add_test(tc, defaults_are_the_same_bytes_whatever_was_there);
    tcase_add_test(tc, defaults_pass_validation);
    suite_add_tcase(s, tc);

    tc = tcase_create("set");
    tcase_add_test(tc, set_overrides_each_type);
    tcase_add_test(tc, set_every_enum_choice_is_its_index);
    tcase_add_test(tc, set_accepts_both_ends_of_a_range);
    tcase_add_test(tc, set_errors_name_the_assignment);
    tcase_add_test(tc, set_integers_are_whole_decimal_text);
    tcase_add_test(tc, set_integer_overflow_is_out_of_range);
    tcase_add_test(tc, set_strings_must_fit_a_config_line);
    tcase_add_test(tc, set_string_of_255_bytes_and_inner_semicolon_are_kept);
    tcase_add_test(tc, set_shorter_string_leaves_no_trace_of_the_longer_one);
    suite_add_tcase(s, tc);

    tc = tcase_create("ceilings");
    tcase_add_test(tc, ceilings_are_pinned_and_explained);
    tcase_add_test(tc, ceilings_accept_their_value_and_refuse_one_more);
    tcase_add_test(tc, ceilings_hold_in_a_file_too);
    suite_add_tcase(s, tc);

    tc = tcase_create("bool");
    tcase_add_test(tc, bool_accepts_the_usual_words);
    tcase_add_test(tc, bool_rejects_other_words);
    tcase_add_test(tc, bool_is_a_json_boolean);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup_tmpdir, teardown_tmpdir);
    tcase_add_test(tc, file_fixture_sets_exact_values);
    tcase_add_test(tc, file_indented_line_is_a_key_not_a_continuation);
    tcase_add_test(tc, file_crlf_and_no_final_newline);
    tcase_add_test(tc, file_value_errors_name_file_and_line);
    tcase_add_test(tc, file_string_too_long);
    tcase_add_test(tc, file_unknown_keys_and_sections);
    tcase_add_test(tc, file_syntax_errors);
    tcase_add_test(tc, file_first_error_in_line_order_wins);
    tcase_add_test(tc, file_line_too_long);
    tcase_add_test(tc, file_failed_load_leaves_cfg_unchanged);
    tcase_add_test(tc, file_missing);
    tcase_add_test(tc, file_directory_cannot_be_read);
    tcase_add_test(tc, file_empty_changes_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("validate");
    tcase_add_test(tc, validate_poll_ms_within_poll_max_ms);
    tcase_add_test(tc, validate_exec_timeout_within_max);
    suite_add_tcase(s, tc);

    tc = tcase_create("assemble");
    tcase_add_checked_fixture(tc, setup_tmpdir, teardown_tmpdir);
    tcase_add_test(tc, assemble_file_then_sets_in_order);
    tcase_add_test(tc, assemble_failures_leave_out_alone);
    suite_add_tcase(s, tc);

    tc = tcase_create("dump");
    tcase_add_checked_fixture(tc, setup_tmpdir, teardown_tmpdir);
    tcase_add_test(tc, dump_writes_a_comment_and_a_line_per_key);
    tcase_add_test(tc, dump_of_defaults_loads_back);
    tcase_add_test(tc, dump_after_changes_loads_back);
    tcase_add_test(tc, dump_is_stable);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_test(tc, json_values_are_typed);
    tcase_add_test(tc, format_value_is_what_the_dump_writes);
    tcase_add_test(tc, describe_range_per_type);
    tcase_add_test(tc, describe_range_truncates_safely);
    tcase_add_test(tc, key_differs_per_key);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
