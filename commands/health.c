/* health.get: the report comes from the env's hook; the monitor that builds
 * it (agent/health.c) belongs to the composition root. */
#include "commands/health.h"

static void cmd_health_get(gd_request_t *req, const cJSON *args)
{
    (void)args;
    const gd_cmd_env_t *env = req->env;
    cJSON *report = env->health_report ? env->health_report(env->ctx) : NULL;
    gd_reply_ok(req, report ? report : cJSON_CreateObject());
}

const gd_command_t gd_commands_health[] = {
    {"health.get", cmd_health_get, 0, "The agent's health report, computed now.", NULL,
     "status, checks, self, channel, collectors (protocol.md, Health report)"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};
