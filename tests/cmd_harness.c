/* The command-test harness: a real dispatcher on a real loop, with the
 * replies captured, shared by the check_<family>.c suites of commands/. */
#include "cmd_harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

uv_loop_t loop;
gd_agent_t agent;
gd_dispatch_t disp;
char *replies[256];
int n_replies;
void (*on_reply)(const char *line);

static void capture(void *ctx, uint64_t conn_gen, const char *line, size_t len)
{
    (void)ctx;
    (void)conn_gen;
    ck_assert_int_lt(n_replies, 256);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(line[len - 1], '\n');
    replies[n_replies++] = strndup(line, len - 1);
    if (on_reply) on_reply(replies[n_replies - 1]);
}

void harness_setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    memset(&agent, 0, sizeof(agent));
    agent.loop = &loop;
    gd_config_defaults(&agent.cfg);
    gd_fd_budget_from_rlimit(&agent.fds);
    agent.dispatch = &disp;
    gd_agent_env_bind(&agent);
    gd_dispatch_init(&disp, &agent.env, capture, NULL);
    gd_dispatch_configure(&disp, agent.cfg.commands.allow, agent.cfg.commands.deny,
                          (unsigned)agent.cfg.commands.max_concurrent);
    n_replies = 0;
    on_reply = NULL;
    gd_log_set_level(GD_LOG_ERROR);
}

void harness_teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT); /* whatever is still running ends */
    gd_dispatch_free(&disp);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    for (int i = 0; i < n_replies; i++)
        free(replies[i]);
}

/* Dispatches one request line and runs the loop until its reply; returns
 * the parsed reply (freed by the caller). */
cJSON *call(const char *fmt, ...)
{
    char *line;
    va_list ap;
    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&line, fmt, ap), 0);
    va_end(ap);
    int before = n_replies;
    gd_dispatch_line(&disp, 1, line, strlen(line));
    free(line);
    while (n_replies == before)
        ck_assert_msg(uv_run(&loop, UV_RUN_ONCE) != 0 || n_replies > before,
                      "the loop ended without a reply");
    ck_assert_int_eq(n_replies, before + 1);
    cJSON *reply = cJSON_Parse(replies[before]);
    ck_assert_ptr_nonnull(reply);
    return reply;
}

/* The result of an ok reply (owned by reply). */
const cJSON *result_of(const cJSON *reply)
{
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
    if (!cJSON_IsTrue(ok)) {
        char *text = cJSON_PrintUnformatted(reply);
        ck_abort_msg("expected ok, got %s", text);
    }
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(reply, "result");
    ck_assert_ptr_nonnull(result);
    return result;
}

/* Asserts an error reply with this code; returns its message. */
const char *error_of(const cJSON *reply, const char *code)
{
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(reply, "error");
    char *text = cJSON_PrintUnformatted(reply);
    ck_assert_msg(cJSON_IsFalse(ok) && err, "expected %s, got %s", code, text);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(err, "code");
    ck_assert_msg(cJSON_IsString(c) && strcmp(c->valuestring, code) == 0, "expected %s, got %s",
                  code, text);
    free(text);
    return cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring;
}

/* Shorthands: a call expected to fail with code (message checked to contain
 * want when non-NULL). */
void expect_error(const char *code, const char *want, const char *request)
{
    cJSON *reply = call("%s", request);
    const char *msg = error_of(reply, code);
    if (want) ck_assert_msg(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
    cJSON_Delete(reply);
}

const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsString(v), "field %s is not a string", name);
    return v->valuestring;
}

double num_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(cJSON_IsNumber(v), "field %s is not a number", name);
    return v->valuedouble;
}
