/* ping and info: the agent's identity and its command list. */
#include "commands/info.h"

#include "commands/table.h"

struct list_ctx {
    const gd_dispatch_t *dispatch;
    cJSON *list;
    int names_only;
};

static void add_command(const gd_command_t *cmd, void *opaque)
{
    struct list_ctx *ctx = opaque;
    int enabled = gd_dispatch_allowed(ctx->dispatch, cmd->name);
    if (ctx->names_only) {
        if (enabled) cJSON_AddItemToArray(ctx->list, cJSON_CreateString(cmd->name));
        return;
    }
    cJSON *entry = cJSON_CreateObject();
    cJSON_AddStringToObject(entry, "name", cmd->name);
    cJSON_AddBoolToObject(entry, "enabled", enabled);
    cJSON_AddStringToObject(entry, "summary", cmd->summary);
    cJSON_AddItemToArray(ctx->list, entry);
}

cJSON *gd_info_command_list(const gd_dispatch_t *d, int names_only)
{
    struct list_ctx ctx = {d, cJSON_CreateArray(), names_only};
    gd_command_foreach(add_command, &ctx);
    return ctx.list;
}

static void cmd_ping(gd_request_t *req, const cJSON *args)
{
    cJSON *result = cJSON_CreateObject();
    cJSON_AddBoolToObject(result, "pong", 1);
    gd_reply_ok(req, result);
}

static void cmd_info(gd_request_t *req, const cJSON *args)
{
    cJSON *result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "agent", "guestd");
    cJSON_AddStringToObject(result, "version", GUESTD_VERSION);
    cJSON_AddNumberToObject(result, "protocol", GD_PROTOCOL_VERSION);
    cJSON_AddNumberToObject(result, "started_at", (double)req->env->started_at_ms);
    cJSON_AddItemToObject(result, "commands", gd_info_command_list(req->dispatch, 0));
    gd_reply_ok(req, result);
}

const gd_command_t gd_commands_info[] = {
    {"ping", cmd_ping, 0, "Answers at once: a liveness check.", NULL, "{\"pong\": true}"},
    {"info", cmd_info, 0, "The agent's name, version, protocol and every command.", NULL,
     "agent, version, protocol, started_at, commands: [{name, enabled, summary}]"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};
