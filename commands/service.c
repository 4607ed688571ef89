/* service.*: systemd units through systemctl as a child. Unit names are
 * checked against systemd's rules before they reach a command line, and
 * passed after "--" so none can read as an option. */
#include "commands/service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/utf8.h"
#include "commands/child.h"
#include "commands/dispatch.h"

static const char *systemd_dir = "/run/systemd/system";
static const char *systemctl_path = "systemctl";
static uint64_t systemctl_timeout_ms = GD_SERVICE_TIMEOUT_MS;

/* After systemctl exits, how long its pipes may stay open (held by a
 * helper it started) before they are closed anyway. */
#define SERVICE_DRAIN_MS 1000

void gd_service_set_paths(const char *dir, const char *systemctl, uint64_t timeout_ms)
{
    if (dir) systemd_dir = dir;
    if (systemctl) systemctl_path = systemctl;
    if (timeout_ms) systemctl_timeout_ms = timeout_ms;
}

/* ---- unit names (systemd's src/basic/unit-name.c) ---- */

static const char *const unit_types[] = {
    "service",   "mount", "swap", "socket", "target", "device",
    "automount", "timer", "path", "slice",  "scope",  NULL,
};

static int is_unit_type(const char *s)
{
    for (const char *const *t = unit_types; *t; t++)
        if (strcmp(*t, s) == 0) return 1;
    return 0;
}

static int valid_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
           c == '-' || c == '_' || c == '.' || c == '\\';
}

int gd_unit_name_normalize(const char *name, char *out, size_t outlen, char *err, size_t errlen)
{
    if (!*name) {
        snprintf(err, errlen, "the unit name is empty");
        return -EINVAL;
    }
    const char *dot = strrchr(name, '.');
    int has_type = dot && dot != name && is_unit_type(dot + 1);
    int n = snprintf(out, outlen, "%s%s", name, has_type ? "" : ".service");
    if (n < 0 || (size_t)n >= outlen || (size_t)n >= GD_UNIT_NAME_MAX) {
        snprintf(err, errlen, "the unit name is longer than %d bytes", GD_UNIT_NAME_MAX - 1);
        return -EINVAL;
    }
    const char *e = strrchr(out, '.');
    const char *at = NULL;
    for (const char *p = out; p < e; p++) {
        if (*p == '@' && !at)
            at = p;
        else if (*p != '@' && !valid_char(*p)) {
            snprintf(err, errlen,
                     "'%.64s' is not a valid unit name: only letters, digits and \":-_.\\@\"",
                     name);
            return -EINVAL;
        }
    }
    if (e == out || at == out) {
        snprintf(err, errlen, "'%.64s' is not a valid unit name: the prefix is empty", name);
        return -EINVAL;
    }
    if (at && e == at + 1) {
        snprintf(err, errlen, "'%.64s' is a template: name an instance (\"name@instance\")", name);
        return -EINVAL;
    }
    return 0;
}

/* ---- output parsing ---- */

static cJSON *string_sanitized(const char *s, size_t n)
{
    gd_buf_t b;
    gd_buf_init(&b);
    cJSON *item = NULL;
    if (gd_utf8_sanitize(&b, s, n) == 0) item = cJSON_CreateString(b.data ? b.data : "");
    gd_buf_free(&b);
    return item;
}

/* The next space-separated field of [*p, end), or 0 when none is left. */
static size_t next_field(const char **p, const char *end, const char **start)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
    *start = *p;
    while (*p < end && **p != ' ' && **p != '\t')
        (*p)++;
    return (size_t)(*p - *start);
}

int gd_service_parse_list(const char *text, cJSON *services)
{
    int added = 0;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        const char *p = line;
        /* Without --plain (older systemd) a failed unit starts with a bullet. */
        while (p < end && (*p == ' ' || *p == '*'))
            p++;
        if (end - p >= 3 && memcmp(p, "\xE2\x97\x8F", 3) == 0) p += 3;
        const char *f[4];
        size_t len[4];
        int nf = 0;
        while (nf < 4 && (len[nf] = next_field(&p, end, &f[nf])) > 0)
            nf++;
        if (nf == 0) {
            /* An empty line. */
        } else if (nf < 4) {
            return -EINVAL;
        } else {
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            const char *dend = end;
            while (dend > p && (dend[-1] == ' ' || dend[-1] == '\r'))
                dend--;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "name", string_sanitized(f[0], len[0]));
            cJSON_AddItemToObject(o, "load", string_sanitized(f[1], len[1]));
            cJSON_AddItemToObject(o, "active", string_sanitized(f[2], len[2]));
            cJSON_AddItemToObject(o, "sub", string_sanitized(f[3], len[3]));
            cJSON_AddItemToObject(o, "description", string_sanitized(p, (size_t)(dend - p)));
            cJSON_AddItemToArray(services, o);
            added++;
        }
        line = *end ? end + 1 : end;
    }
    return added;
}

static void copy_value(char *dst, size_t len, const char *v, size_t n)
{
    if (n >= len) n = len - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

int gd_service_parse_show(const char *text, gd_unit_status_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        const char *eq = memchr(line, '=', (size_t)(end - line));
        if (eq) {
            size_t klen = (size_t)(eq - line);
            const char *v = eq + 1;
            size_t vlen = (size_t)(end - v);
            if (vlen && v[vlen - 1] == '\r') vlen--;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
            if (KEY("Id"))
                copy_value(out->name, sizeof(out->name), v, vlen);
            else if (KEY("LoadState"))
                copy_value(out->load, sizeof(out->load), v, vlen);
            else if (KEY("ActiveState"))
                copy_value(out->active, sizeof(out->active), v, vlen);
            else if (KEY("SubState"))
                copy_value(out->sub, sizeof(out->sub), v, vlen);
            else if (KEY("UnitFileState"))
                copy_value(out->enabled, sizeof(out->enabled), v, vlen);
            else if (KEY("Description"))
                copy_value(out->description, sizeof(out->description), v, vlen);
            else if (KEY("MainPID"))
                out->main_pid = strtol(v, NULL, 10);
#undef KEY
        }
        line = *end ? end + 1 : end;
    }
    return out->load[0] && out->active[0] ? 0 : -EINVAL;
}

/* ---- running systemctl ---- */

typedef enum { OP_LIST, OP_STATUS, OP_START, OP_STOP, OP_RESTART } service_op_t;

static const char *const op_verbs[] = {"list-units", "show", "start", "stop", "restart"};

typedef struct service_state_s {
    gd_request_t *req;
    service_op_t op;
    int showing;  /* a start/stop/restart done, now reading the new state */
    int stopping; /* the agent is stopping: no further systemctl call */
    char unit[GD_UNIT_NAME_MAX];
    gd_child_t child;
} service_state_t;

static void service_done(gd_child_t *c);
static void cmd_list(gd_request_t *req, const cJSON *args);
static void cmd_status(gd_request_t *req, const cJSON *args);
static void cmd_start(gd_request_t *req, const cJSON *args);
static void cmd_stop(gd_request_t *req, const cJSON *args);
static void cmd_restart(gd_request_t *req, const cJSON *args);

static void run_systemctl(service_state_t *st, uv_loop_t *loop)
{
    /* Added to the fixed base: systemctl's output made plain to parse. */
    static char *const env[] = {"LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0",
                                "SYSTEMD_LOG_COLOR=0", NULL};
    char *argv[12];
    int n = 0;
    argv[n++] = (char *)systemctl_path;
    argv[n++] = "--no-pager";
    argv[n++] = "--no-ask-password";
    if (st->op == OP_LIST) {
        argv[n++] = "--no-legend";
        argv[n++] = "--plain";
        argv[n++] = "--full";
        argv[n++] = "--all";
        argv[n++] = "--type=service";
        argv[n++] = "list-units";
    } else if (st->op == OP_STATUS || st->showing) {
        argv[n++] = "--property=Id,LoadState,ActiveState,SubState,UnitFileState,MainPID,"
                    "Description";
        argv[n++] = "show";
        argv[n++] = "--";
        argv[n++] = st->unit;
    } else {
        argv[n++] = (char *)op_verbs[st->op];
        argv[n++] = "--";
        argv[n++] = st->unit;
    }
    argv[n] = NULL;
    gd_child_opts_t opts = {
        .argv = argv,
        .env = env,
        .out = GD_CHILD_CAPTURE,
        .err = GD_CHILD_CAPTURE,
        .max_output = GD_SERVICE_MAX_OUTPUT,
        .timeout_ms = systemctl_timeout_ms,
        .drain_ms = SERVICE_DRAIN_MS,
        /* The whole group at once: systemctl may have helpers (a polkit agent). */
        .flags = GD_CHILD_KILL_AT_TIMEOUT,
        .done = service_done,
        .data = st,
    };
    gd_child_start(&st->child, loop, &opts);
}

static void state_free(service_state_t *st)
{
    gd_child_free(&st->child);
    free(st);
}

/* The first line of what systemctl said on stderr, for a message. */
static const char *first_line(gd_buf_t *b)
{
    if (!b->data || !b->len) return "no message";
    char *nl = strchr(b->data, '\n');
    if (nl) *nl = '\0';
    return b->data;
}

/* A failed systemctl call: not_found for an unknown unit, else failed. */
static void reply_child_error(service_state_t *st)
{
    gd_child_t *c = &st->child;
    const char *verb = st->showing ? "show" : op_verbs[st->op];
    if (c->spawn_error) {
        gd_reply_error(st->req, "failed", "cannot run %s: %s", systemctl_path,
                       uv_strerror(c->spawn_error));
    } else if (c->timed_out) {
        gd_reply_error(st->req, "timeout", "systemctl %s %s took longer than %llu ms", verb,
                       st->unit, (unsigned long long)systemctl_timeout_ms);
    } else if (c->term_signal) {
        gd_reply_error(st->req, "failed", "systemctl %s was killed by signal %d", verb,
                       c->term_signal);
    } else {
        const char *msg = first_line(&c->out[GD_CHILD_STDERR].kept);
        /* systemctl exits 5 (LSB "not installed") for an unknown unit. */
        int missing = c->exit_status == 5 || strstr(msg, "not found") || strstr(msg, "not loaded");
        gd_buf_t clean;
        gd_buf_init(&clean);
        gd_utf8_sanitize(&clean, msg, strlen(msg));
        gd_reply_error(st->req, missing ? "not_found" : "failed",
                       "systemctl %s %s exited with %lld: %s", verb, st->unit,
                       (long long)c->exit_status, clean.data ? clean.data : "");
        gd_buf_free(&clean);
    }
}

static cJSON *status_result(const gd_unit_status_t *s, int full)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddItemToObject(r, "name", string_sanitized(s->name, strlen(s->name)));
    cJSON_AddItemToObject(r, "active", string_sanitized(s->active, strlen(s->active)));
    cJSON_AddItemToObject(r, "sub", string_sanitized(s->sub, strlen(s->sub)));
    if (!full) return r;
    if (s->enabled[0])
        cJSON_AddItemToObject(r, "enabled", string_sanitized(s->enabled, strlen(s->enabled)));
    else
        cJSON_AddNullToObject(r, "enabled");
    if (s->main_pid > 0)
        cJSON_AddNumberToObject(r, "main_pid", (double)s->main_pid);
    else
        cJSON_AddNullToObject(r, "main_pid");
    cJSON_AddItemToObject(r, "load", string_sanitized(s->load, strlen(s->load)));
    cJSON_AddItemToObject(r, "description",
                          string_sanitized(s->description, strlen(s->description)));
    return r;
}

static void service_done(gd_child_t *c)
{
    service_state_t *st = c->data;
    if (c->spawn_error || c->timed_out || c->term_signal || c->exit_status != 0) {
        reply_child_error(st);
        state_free(st);
        return;
    }
    const char *out = c->out[GD_CHILD_STDOUT].kept.data ? c->out[GD_CHILD_STDOUT].kept.data : "";
    if (st->op == OP_LIST) {
        cJSON *result = cJSON_CreateObject();
        cJSON *list = cJSON_AddArrayToObject(result, "services");
        if (gd_service_parse_list(out, list) < 0) {
            cJSON_Delete(result);
            gd_reply_error(st->req, "failed", "cannot parse the output of systemctl list-units");
        } else {
            gd_reply_ok(st->req, result);
        }
    } else if (st->op == OP_STATUS || st->showing) {
        gd_unit_status_t s;
        if (gd_service_parse_show(out, &s) != 0) {
            gd_reply_error(st->req, "failed", "cannot parse the output of systemctl show");
        } else if (strcmp(s.load, "not-found") == 0) {
            gd_reply_error(st->req, "not_found", "no unit %s", st->unit);
        } else {
            if (!s.name[0]) snprintf(s.name, sizeof(s.name), "%s", st->unit);
            gd_reply_ok(st->req, status_result(&s, st->op == OP_STATUS));
        }
    } else if (st->stopping) {
        gd_reply_error(st->req, "failed", "the agent stopped after systemctl %s %s",
                       op_verbs[st->op], st->unit);
    } else {
        /* The change is done: read the state it left. */
        uv_loop_t *loop = st->req->env->loop;
        gd_child_free(c);
        st->showing = 1;
        run_systemctl(st, loop);
        return;
    }
    state_free(st);
}

static void start_op(gd_request_t *req, const cJSON *args, service_op_t op)
{
    if (access(systemd_dir, F_OK) != 0) {
        gd_reply_error(req, "unsupported", "this guest does not run systemd (no %s)", systemd_dir);
        return;
    }
    service_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        gd_reply_error(req, "internal", "out of memory");
        return;
    }
    st->req = req;
    req->data = st; /* found again by gd_service_shutdown */
    st->op = op;
    if (op != OP_LIST) {
        char err[256];
        if (gd_unit_name_normalize(gd_arg_string(args, "name", ""), st->unit, sizeof(st->unit), err,
                                   sizeof(err)) != 0) {
            free(st);
            gd_reply_error(req, "invalid_args", "%s", err);
            return;
        }
    }
    run_systemctl(st, req->env->loop);
}

void gd_service_shutdown(const gd_cmd_env_t *env)
{
    if (!env->dispatch) return;
    for (gd_request_t *req = env->dispatch->inflight; req; req = req->next) {
        if (req->cmd->handler != cmd_list && req->cmd->handler != cmd_status &&
            req->cmd->handler != cmd_start && req->cmd->handler != cmd_stop &&
            req->cmd->handler != cmd_restart)
            continue;
        service_state_t *st = req->data;
        st->stopping = 1;
        gd_child_kill(&st->child);
    }
}

static void cmd_list(gd_request_t *req, const cJSON *args)
{
    start_op(req, args, OP_LIST);
}

static void cmd_status(gd_request_t *req, const cJSON *args)
{
    start_op(req, args, OP_STATUS);
}

static void cmd_start(gd_request_t *req, const cJSON *args)
{
    start_op(req, args, OP_START);
}

static void cmd_stop(gd_request_t *req, const cJSON *args)
{
    start_op(req, args, OP_STOP);
}

static void cmd_restart(gd_request_t *req, const cJSON *args)
{
    start_op(req, args, OP_RESTART);
}

static const gd_arg_spec_t name_args[] = {
    {"name", GD_ARG_STRING, 1, 0, 0,
     "a unit name (\"nginx\" means \"nginx.service\"), checked against systemd's rules"},
    {NULL, 0, 0, 0, 0, NULL},
};

#define CHANGE_RESULT "{name, active, sub}: the state after the change"

const gd_command_t gd_commands_service[] = {
    {"service.list", cmd_list, GD_CMD_CONCURRENT, "Every systemd service unit and its state.", NULL,
     "{\"services\": [{name, load, active, sub, description}]}"},
    {"service.status", cmd_status, GD_CMD_CONCURRENT, "One unit's state.", name_args,
     "{name, active, sub, enabled, main_pid, load, description}"},
    {"service.start", cmd_start, GD_CMD_CONCURRENT, "Starts a unit and waits for the job.",
     name_args, CHANGE_RESULT},
    {"service.stop", cmd_stop, GD_CMD_CONCURRENT, "Stops a unit and waits for the job.", name_args,
     CHANGE_RESULT},
    {"service.restart", cmd_restart, GD_CMD_CONCURRENT, "Restarts a unit and waits for the job.",
     name_args, CHANGE_RESULT},
    {NULL, NULL, 0, NULL, NULL, NULL},
};
