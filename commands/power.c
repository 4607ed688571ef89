/* power.shutdown and power.reboot. The reply goes first; once the channel
 * has written it (the env's after_flush) a timer waits delay_s and the
 * configured command runs as a child in its own session. Its failure can
 * only be logged: the host already has its answer. */
#include "commands/power.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "core/log.h"
#include "commands/child.h"
#include "commands/child_env.h"

#define MAX_ARGS 32
/* After the command exits, how long its pipes may stay open (held by
 * something it started) before they are closed anyway. */
#define POWER_DRAIN_MS 1000

struct power_state_s;
/* The actions waiting out their delay, so that gd_power_shutdown can cancel
 * them (one agent per process). */
static struct power_state_s *delayed;

typedef struct power_state_s {
    struct power_state_s *next; /* in the list of delays running */
    const gd_cmd_env_t *env;
    uv_loop_t *loop;
    uv_timer_t timer;
    gd_child_t child;
    const char *action; /* the command's name, for the log */
    uint64_t delay_ms;
    char line[GD_CFG_STR_MAX]; /* the command line; argv points into it */
    char *argv[MAX_ARGS];
} power_state_t;

static void state_free(uv_handle_t *h)
{
    power_state_t *st = h->data;
    gd_child_free(&st->child);
    free(st);
}

static void child_done(gd_child_t *c)
{
    power_state_t *st = c->data;
    if (c->spawn_error) {
        gd_error("%s: cannot run %s: %s", st->action, st->argv[0], uv_strerror(c->spawn_error));
    } else if (c->term_signal || c->exit_status != 0) {
        const char *msg =
            c->out[GD_CHILD_STDERR].kept.data ? c->out[GD_CHILD_STDERR].kept.data : "";
        gd_error("%s: %s failed (exit %lld, signal %d): %.200s", st->action, st->argv[0],
                 (long long)c->exit_status, c->term_signal, msg);
    } else {
        gd_info("%s: %s done", st->action, st->argv[0]);
    }
    uv_close((uv_handle_t *)&st->timer, state_free);
}

static void unlink_delayed(power_state_t *st)
{
    for (power_state_t **p = &delayed; *p; p = &(*p)->next) {
        if (*p == st) {
            *p = st->next;
            return;
        }
    }
}

static void timer_cb(uv_timer_t *t)
{
    power_state_t *st = t->data;
    unlink_delayed(st);
    gd_info("%s: running %s", st->action, st->argv[0]);
    gd_child_opts_t opts = {
        .argv = st->argv,
        .out = GD_CHILD_CAPTURE,
        .err = GD_CHILD_CAPTURE,
        .max_output = 4096, /* for the log */
        .drain_ms = POWER_DRAIN_MS,
        .done = child_done,
        .data = st,
    };
    gd_child_start(&st->child, st->loop, &opts);
}

/* The reply has been written (or the host went away): start the delay,
 * unless the agent is on its way out. */
static void after_flush(void *arg)
{
    power_state_t *st = arg;
    if (*st->env->stopping) {
        gd_warn("%s: cancelled, the agent is stopping", st->action);
        free(st);
        return;
    }
    uv_timer_init(st->loop, &st->timer);
    st->timer.data = st;
    st->next = delayed;
    delayed = st;
    uv_timer_start(&st->timer, timer_cb, st->delay_ms, 0);
}

static void cancelled_free(uv_handle_t *h)
{
    free(h->data);
}

void gd_power_shutdown(const gd_cmd_env_t *env)
{
    (void)env;
    while (delayed) {
        power_state_t *st = delayed;
        delayed = st->next;
        gd_warn("%s: cancelled, the agent is stopping", st->action);
        uv_timer_stop(&st->timer);
        uv_close((uv_handle_t *)&st->timer, cancelled_free);
    }
}

/* Whether argv0 names an executable, directly or through the children's
 * fixed PATH, the one the child's lookup uses (a cheap
 * check so a host hears about a broken setting before the guest is asked
 * to go down). */
static int find_executable(const char *argv0)
{
    if (strchr(argv0, '/')) return access(argv0, X_OK) == 0 ? 0 : -errno;
    const char *path = GD_CHILD_ENV_PATH;
    char candidate[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n + strlen(argv0) + 2 <= sizeof(candidate)) {
            snprintf(candidate, sizeof(candidate), "%.*s/%s", (int)n, path, argv0);
            if (access(candidate, X_OK) == 0) return 0;
        }
        path += n;
        if (*path == ':') path++;
    }
    return -ENOENT;
}

static void schedule(gd_request_t *req, const cJSON *args, const char *key, const char *line)
{
    power_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        gd_reply_error(req, "internal", "out of memory");
        return;
    }
    snprintf(st->line, sizeof(st->line), "%s", line);
    if (gd_child_split_argv(st->line, st->argv, MAX_ARGS) == 0) {
        free(st);
        gd_reply_error(req, "failed", "%s is empty", key);
        return;
    }
    int rc = find_executable(st->argv[0]);
    if (rc != 0) {
        gd_reply_error(req, "failed", "%s: cannot run %s: %s", key, st->argv[0], strerror(-rc));
        free(st);
        return;
    }
    st->loop = req->env->loop;
    st->action = req->cmd->name;
    st->delay_ms = (uint64_t)gd_arg_int(args, "delay_s", 0) * 1000;
    const gd_cmd_env_t *env = req->env;
    st->env = env;
    gd_info("%s: scheduled in %llu s (%s)", st->action, (unsigned long long)(st->delay_ms / 1000),
            line);
    cJSON *result = cJSON_CreateObject();
    cJSON_AddBoolToObject(result, "scheduled", 1);
    gd_reply_ok(req, result); /* req is gone from here on */
    env->after_flush(env->ctx, after_flush, st);
}

static void cmd_shutdown(gd_request_t *req, const cJSON *args)
{
    schedule(req, args, "commands.poweroff_argv", req->env->config->commands.poweroff_argv);
}

static void cmd_reboot(gd_request_t *req, const cJSON *args)
{
    schedule(req, args, "commands.reboot_argv", req->env->config->commands.reboot_argv);
}

static const gd_arg_spec_t power_args[] = {
    {"delay_s", GD_ARG_INT, 0, 0, GD_POWER_MAX_DELAY_S,
     "seconds to wait after the answer is written (default 0)"},
    {NULL, 0, 0, 0, 0, NULL},
};

const gd_command_t gd_commands_power[] = {
    {"power.shutdown", cmd_shutdown, 0,
     "Powers the guest off (commands.poweroff_argv) after answering.", power_args,
     "{\"scheduled\": true}"},
    {"power.reboot", cmd_reboot, 0, "Reboots the guest (commands.reboot_argv) after answering.",
     power_args, "{\"scheduled\": true}"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};
