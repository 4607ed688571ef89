/* The agent's life cycle on a real loop: start, timers, runtime changes,
 * reload, and a shutdown that leaves no handle open. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/log.h"

static char dir[64];
static char conf_path[128];
static uv_loop_t loop;
static gd_agent_t agent;
static gd_config_t cfg;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/check_agent.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(conf_path, sizeof(conf_path), "%s/guestd.conf", dir);
    gd_log_set_level(GD_LOG_ERROR);
    gd_config_defaults(&cfg);
    char err[256];
    char spec[200];
    snprintf(spec, sizeof(spec), "channel.spec=unix-listen:%s/agent.sock", dir);
    ck_assert_int_eq(gd_config_set_dotted(&cfg, spec, err, sizeof(err)), 0);
    ck_assert_int_eq(gd_config_set_dotted(&cfg, "metrics.log_path=none", err, sizeof(err)), 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void stop_agent(uv_timer_t *t)
{
    gd_agent_stop(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

/* Runs the agent for ms milliseconds, stops it, and checks the loop closes. */
static void run_for(uint64_t ms)
{
    uv_timer_t stopper;
    uv_timer_init(&loop, &stopper);
    stopper.data = &agent;
    uv_timer_start(&stopper, stop_agent, ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    gd_agent_free(&agent);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(test_shutdown_closes_every_handle)
{
    char err[256];
    ck_assert_int_eq(gd_agent_init(&agent, &loop, &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(gd_agent_start(&agent), 0);
    run_for(30);
    /* The listening socket is removed on the way out. */
    char sock[128];
    snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
    ck_assert_int_eq(access(sock, F_OK), -1);
}
END_TEST

START_TEST(test_stop_before_start_is_clean)
{
    char err[256];
    ck_assert_int_eq(gd_agent_init(&agent, &loop, &cfg, err, sizeof(err)), 0);
    gd_agent_stop(&agent);
    gd_agent_stop(&agent); /* twice is harmless */
    uv_run(&loop, UV_RUN_DEFAULT);
    gd_agent_free(&agent);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_unusable_listen_path_fails_start)
{
    char err[256];
    ck_assert_int_eq(
        gd_config_set_dotted(&cfg, "channel.spec=unix-listen:/nonexistent/dir/s", err, sizeof(err)),
        0);
    ck_assert_int_eq(gd_agent_init(&agent, &loop, &cfg, err, sizeof(err)), 0);
    ck_assert_int_lt(gd_agent_start(&agent), 0);
    ck_assert_int_eq(agent.exit_code, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    gd_agent_free(&agent);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_metrics_timer_runs_at_interval)
{
    char err[256];
    ck_assert_int_eq(gd_config_set_dotted(&cfg, "metrics.interval_ms=100", err, sizeof(err)), 0);
    ck_assert_int_eq(gd_agent_init(&agent, &loop, &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(gd_agent_start(&agent), 0);
    run_for(550);
    /* Five intervals fit; a loaded machine may fire late, never early. */
    ck_assert_uint_ge(agent.metrics_ticks, 2);
    ck_assert_uint_le(agent.metrics_ticks, 5);
    ck_assert_uint_eq(agent.health_ticks, 0); /* 60 s default */
}
END_TEST

static void shorten_interval(uv_timer_t *t)
{
    gd_agent_t *a = t->data;
    gd_config_t next = a->cfg;
    char err[256];
    next.metrics.interval_ms = 100;
    ck_assert_int_eq(gd_agent_apply_config(a, &next, err, sizeof(err)), 0);
    uv_close((uv_handle_t *)t, NULL);
}

START_TEST(test_runtime_interval_change_takes_effect_at_once)
{
    char err[256];
    ck_assert_int_eq(gd_agent_init(&agent, &loop, &cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(gd_agent_start(&agent), 0);
    uv_timer_t changer;
    uv_timer_init(&loop, &changer);
    changer.data = &agent;
    uv_timer_start(&changer, shorten_interval, 20, 0);
    /* The 30 s default would give no tick; the new 100 ms must. */
    run_for(480);
    ck_assert_uint_ge(agent.metrics_ticks, 2);
    ck_assert_int_eq(agent.cfg.metrics.interval_ms, 100);
}
END_TEST

START_TEST(test_non_runtime_key_is_refused)
{
    char err[256];
    ck_assert_int_eq(gd_agent_init(&agent, &loop, &cfg, err, sizeof(err)), 0);
    gd_config_t next = agent.cfg;
    snprintf(next.channel.spec, sizeof(next.channel.spec), "stdio");
    next.health.interval_ms = 1234;
    ck_assert_int_eq(gd_agent_apply_config(&agent, &next, err, sizeof(err)), 1);
    ck_assert_str_eq(err, "channel.spec: not changed (takes a restart)");
    ck_assert_int_eq(agent.cfg.health.interval_ms, 1234);
    ck_assert_str_ne(agent.cfg.channel.spec, "stdio");
    gd_agent_stop(&agent);
    uv_run(&loop, UV_RUN_DEFAULT);
    gd_agent_free(&agent);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_reload_applies_file_and_keeps_old_on_error)
{
    char err[256];
    write_conf("[metrics]\ninterval_ms = 1000\n");
    ck_assert_int_eq(gd_config_load_file(&cfg, conf_path, 0, err, sizeof(err)), 0);
    ck_assert_int_eq(gd_agent_init(&agent, &loop, &cfg, err, sizeof(err)), 0);
    agent.config_path = conf_path;
    char *overrides[] = {"health.interval_ms=7000"};
    agent.overrides = overrides;
    agent.n_overrides = 1;

    write_conf("[metrics]\ninterval_ms = 2000\n[agent]\nlog_level = debug\n");
    ck_assert_int_eq(gd_agent_reload(&agent, err, sizeof(err)), 0);
    ck_assert_int_eq(agent.cfg.metrics.interval_ms, 2000);
    ck_assert_int_eq(agent.cfg.health.interval_ms, 7000); /* --set wins again */
    ck_assert_int_eq(gd_log_get_level(), GD_LOG_DEBUG);

    write_conf("[metrics]\ninterval_ms = fast\n");
    ck_assert_int_eq(gd_agent_reload(&agent, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "guestd.conf:2: metrics.interval_ms: 'fast'"));
    ck_assert_int_eq(agent.cfg.metrics.interval_ms, 2000);

    gd_log_set_level(GD_LOG_ERROR);
    gd_agent_stop(&agent);
    uv_run(&loop, UV_RUN_DEFAULT);
    gd_agent_free(&agent);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *agent_suite(void)
{
    Suite *s = suite_create("agent");
    TCase *life = tcase_create("lifecycle");
    tcase_add_checked_fixture(life, setup, teardown);
    tcase_add_test(life, test_shutdown_closes_every_handle);
    tcase_add_test(life, test_stop_before_start_is_clean);
    tcase_add_test(life, test_unusable_listen_path_fails_start);
    suite_add_tcase(s, life);
    TCase *timers = tcase_create("timers");
    tcase_add_checked_fixture(timers, setup, teardown);
    tcase_set_timeout(timers, 20);
    tcase_add_test(timers, test_metrics_timer_runs_at_interval);
    tcase_add_test(timers, test_runtime_interval_change_takes_effect_at_once);
    suite_add_tcase(s, timers);
    TCase *config = tcase_create("config");
    tcase_add_checked_fixture(config, setup, teardown);
    tcase_add_test(config, test_non_runtime_key_is_refused);
    tcase_add_test(config, test_reload_applies_file_and_keeps_old_on_error);
    suite_add_tcase(s, config);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(agent_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
