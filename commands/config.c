/* config.get and config.set: loops over gd_config_keys, no code per key. A
 * value set here lives until the agent restarts or reloads its file. */
#include "commands/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/utf8.h"

/* Keys a host may not change even though they are runtime keys: the policy
 * that decides what the host may do. */
static const char *const host_locked[] = {"commands.allow", "commands.deny", NULL};

static int is_host_locked(const char *dotted)
{
    for (const char *const *k = host_locked; *k; k++)
        if (strcmp(*k, dotted) == 0) return 1;
    return 0;
}

/* One key's value; strings from a file are not promised to be UTF-8. */
static cJSON *value_json(const gd_config_t *cfg, const gd_cfg_key_t *key)
{
    cJSON *v = gd_config_value_json(cfg, key);
    if (cJSON_IsString(v) && !gd_utf8_valid(v->valuestring, strlen(v->valuestring))) {
        gd_buf_t clean;
        gd_buf_init(&clean);
        gd_utf8_sanitize(&clean, v->valuestring, strlen(v->valuestring));
        cJSON_Delete(v);
        v = cJSON_CreateString(clean.data ? clean.data : "");
        gd_buf_free(&clean);
    }
    return v;
}

static cJSON *key_result(const gd_config_t *cfg, const gd_cfg_key_t *key)
{
    char dotted[128];
    snprintf(dotted, sizeof(dotted), "%s.%s", key->section, key->name);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "key", dotted);
    cJSON_AddItemToObject(r, "value", value_json(cfg, key));
    cJSON_AddBoolToObject(r, "runtime", key->runtime && !is_host_locked(dotted));
    return r;
}

static const gd_cfg_key_t *find_or_reply(gd_request_t *req, const char *dotted)
{
    const gd_cfg_key_t *key = gd_config_find(dotted);
    if (!key) gd_reply_error(req, "invalid_args", "no configuration key '%.128s'", dotted);
    return key;
}

static void cmd_get(gd_request_t *req, const cJSON *args)
{
    const gd_config_t *cfg = req->env->config;
    const char *dotted = gd_arg_string(args, "key", NULL);
    if (dotted) {
        const gd_cfg_key_t *key = find_or_reply(req, dotted);
        if (key) gd_reply_ok(req, key_result(cfg, key));
        return;
    }
    cJSON *result = cJSON_CreateObject();
    for (const gd_cfg_key_t *k = gd_config_keys; k->name; k++) {
        cJSON *section = cJSON_GetObjectItemCaseSensitive(result, k->section);
        if (!section) section = cJSON_AddObjectToObject(result, k->section);
        cJSON_AddItemToObject(section, k->name, value_json(cfg, k));
    }
    gd_reply_ok(req, result);
}

/* The JSON value as the text the configuration parser reads. */
static int value_text(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsString(v)) {
        if (strlen(v->valuestring) >= len) return -1;
        snprintf(buf, len, "%s", v->valuestring);
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || floor(d) != d || fabs(d) > 9007199254740992.0) return -1;
        snprintf(buf, len, "%lld", (long long)d);
    } else {
        return -1;
    }
    return 0;
}

static void cmd_set(gd_request_t *req, const cJSON *args)
{
    const gd_cmd_env_t *env = req->env;
    const char *dotted = gd_arg_string(args, "key", "");
    const gd_cfg_key_t *key = find_or_reply(req, dotted);
    if (!key) return;
    if (is_host_locked(dotted)) {
        gd_reply_error(req, "invalid_args",
                       "%s is the agent's policy: it is set in the configuration file only",
                       dotted);
        return;
    }
    if (!key->runtime) {
        gd_reply_error(req, "invalid_args",
                       "%s is read at startup only: change the configuration file and restart",
                       dotted);
        return;
    }
    char text[GD_CFG_STR_MAX], err[512];
    if (value_text(cJSON_GetObjectItemCaseSensitive(args, "value"), text, sizeof(text)) != 0) {
        char range[256];
        gd_config_describe_range(key, range, sizeof(range));
        gd_reply_error(req, "invalid_args",
                       "%s: the value must be a string, a boolean or an "
                       "integer (allowed: %s)",
                       dotted, range);
        return;
    }
    gd_config_t next = *env->config;
    if (gd_config_set_value(&next, key, text, err, sizeof(err)) != 0 ||
        gd_config_validate(&next, err, sizeof(err)) != 0) {
        gd_reply_error(req, "invalid_args", "%s", err);
        return;
    }
    if (env->apply_config(env->ctx, &next, err, sizeof(err)) != 0) {
        gd_reply_error(req, "failed", "%s", err);
        return;
    }
    gd_reply_ok(req, key_result(env->config, key));
}

static const gd_arg_spec_t get_args[] = {
    {"key", GD_ARG_STRING, 0, 0, 0, "\"section.key\"; without it, the whole configuration"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const gd_arg_spec_t set_args[] = {
    {"key", GD_ARG_STRING, 1, 0, 0, "\"section.key\" of a runtime key"},
    {"value", GD_ARG_ANY, 1, 0, 0, "a string, boolean or integer, checked like the file's"},
    {NULL, 0, 0, 0, 0, NULL},
};

const gd_command_t gd_commands_config[] = {
    {"config.get", cmd_get, 0, "The effective configuration, or one key of it.", get_args,
     "{section: {key: value}} for all keys; {key, value, runtime} for one"},
    {"config.set", cmd_set, 0, "Changes a runtime key now (until restart or reload).", set_args,
     "{key, value, runtime}: the new value"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};
