/* exec and exec.cancel: a program run by the child runner (argv as given,
 * no shell; commands/child.h) in its own process group, fed its stdin,
 * bounded in time and output, answered once it has exited (whatever is left
 * in its group is SIGKILLed then), both its pipes reached EOF and every
 * handle closed.
 *
 * Running execs are found (exec.cancel, shutdown) through the dispatcher's
 * list of requests in flight: an exec's request stays there until its reply,
 * and the reply comes only after the last handle closed, so the request's
 * data is always a live exec. */
#include "commands/exec.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/log.h"
#include "commands/dispatch.h"
#include "commands/exec_internal.h"

#define EXEC_DRAIN_MIN_MS 100 /* least wait for EOF after the exit */

static void cmd_exec(gd_request_t *req, const cJSON *args);

/* ---- small helpers --------------------------------------------------- */

static const struct {
    int num;
    const char *name;
} signal_names[] = {
    {SIGHUP, "HUP"},   {SIGINT, "INT"},     {SIGQUIT, "QUIT"},     {SIGILL, "ILL"},
    {SIGTRAP, "TRAP"}, {SIGABRT, "ABRT"},   {SIGBUS, "BUS"},       {SIGFPE, "FPE"},
    {SIGKILL, "KILL"}, {SIGUSR1, "USR1"},   {SIGSEGV, "SEGV"},     {SIGUSR2, "USR2"},
    {SIGPIPE, "PIPE"}, {SIGALRM, "ALRM"},   {SIGTERM, "TERM"},     {SIGCHLD, "CHLD"},
    {SIGCONT, "CONT"}, {SIGSTOP, "STOP"},   {SIGTSTP, "TSTP"},     {SIGTTIN, "TTIN"},
    {SIGTTOU, "TTOU"}, {SIGURG, "URG"},     {SIGXCPU, "XCPU"},     {SIGXFSZ, "XFSZ"},
    {SIGPROF, "PROF"}, {SIGWINCH, "WINCH"}, {SIGVTALRM, "VTALRM"}, {SIGIO, "IO"},
    {SIGSYS, "SYS"},
};

/* The signal's name without "SIG" ("KILL"), or its number as text. */
static const char *signal_name(int sig, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
        if (signal_names[i].num == sig) return signal_names[i].name;
    snprintf(buf, len, "%d", sig);
    return buf;
}

/* ---- teardown: handles close, then the reply ------------------------- */

static void exec_free(gd_exec_t *e)
{
    gd_child_free(&e->child);
    cJSON_free(e->id_json);
    gd_buf_free(&e->ev);
    free(e);
}

static cJSON *exec_result(gd_exec_t *e, uint64_t started_ns)
{
    cJSON *r = cJSON_CreateObject();
    if (!r) return NULL;
    const gd_child_t *c = &e->child;
    char num[32];
    if (c->term_signal) {
        cJSON_AddNullToObject(r, "exit_code");
        cJSON_AddStringToObject(r, "signal", signal_name(c->term_signal, num, sizeof(num)));
    } else {
        cJSON_AddNumberToObject(r, "exit_code", (double)c->exit_status);
        cJSON_AddNullToObject(r, "signal");
    }
    cJSON_AddBoolToObject(r, "timed_out", c->timed_out);
    cJSON_AddBoolToObject(r, "cancelled", c->cancelled);
    if (gd_exec_add_output(e, r) != 0) {
        cJSON_Delete(r);
        return NULL;
    }
    uint64_t ms = (uv_hrtime() - started_ns) / 1000000u;
    cJSON_AddNumberToObject(r, "duration_ms", (double)ms);
    return r;
}

/* ---- a large response, printed in the thread pool -------------------- */

/* Output up to this size is printed on the loop; more is printed in the
 * thread pool, so the loop does no work in proportion to it (up to
 * 2 x commands.exec_max_output_bytes, 32 MiB at the ceiling). */
#define EXEC_REPLY_INLINE_BYTES 65536

typedef struct exec_line_job_s {
    uv_work_t work;
    gd_request_t *req;
    gd_exec_output_t out;
    char head[256]; /* {"id":..,"ok":true,"result":{ and the scalar members, */
    char *id_json;
    uint64_t duration_ms;
    char *line;
    size_t len;
} exec_line_job_t;

static void line_job_free(exec_line_job_t *j)
{
    gd_exec_output_free(&j->out);
    free(j->id_json);
    free(j->line);
    free(j);
}

static size_t line_bound(const exec_line_job_t *j)
{
    return strlen(j->id_json) + sizeof(j->head) + gd_exec_output_bound(&j->out) + 64;
}

static void line_work(uv_work_t *w)
{
    exec_line_job_t *j = w->data;
    j->line = malloc(line_bound(j));
    if (!j->line) return;
    size_t n =
        (size_t)sprintf(j->line, "{\"id\":%s,\"ok\":true,\"result\":{%s", j->id_json, j->head);
    n += gd_exec_output_print(&j->out, j->line + n);
    n += (size_t)sprintf(j->line + n, ",\"duration_ms\":%llu}}\n",
                         (unsigned long long)j->duration_ms);
    j->len = n;
    gd_exec_output_free(&j->out); /* tens of MiB: freed here, not on the loop */
}

static void line_after(uv_work_t *w, int status)
{
    exec_line_job_t *j = w->data;
    if (status != 0 || !j->line) {
        gd_reply_error(j->req, "internal", "out of memory building the result");
    } else {
        gd_reply_line(j->req, j->line, j->len);
        j->line = NULL;
    }
    line_job_free(j);
}

static void line_reserved(gd_request_t *req, int status)
{
    exec_line_job_t *j = req->data;
    req->data = NULL;
    if (status != 0) {
        line_job_free(j);
        gd_reply_error(req, "failed", "the agent is stopping");
        return;
    }
    if (uv_queue_work(req->env->loop, &j->work, line_work, line_after) != 0) {
        line_job_free(j);
        gd_reply_error(req, "internal", "cannot queue the work");
    }
}

/* Hands e's result to the pool; 0, or -ENOMEM with e untouched. */
static int reply_in_pool(gd_exec_t *e, gd_request_t *req)
{
    exec_line_job_t *j = calloc(1, sizeof(*j));
    char *id = j ? gd_request_id_json(req) : NULL;
    if (!id) {
        free(j);
        return -ENOMEM;
    }
    j->id_json = id;
    j->req = req;
    j->work.data = j;
    const gd_child_t *c = &e->child;
    char num[32];
    char code[48];
    if (c->term_signal)
        snprintf(code, sizeof(code), "null,\"signal\":\"%s\"",
                 signal_name(c->term_signal, num, sizeof(num)));
    else
        snprintf(code, sizeof(code), "%lld,\"signal\":null", (long long)c->exit_status);
    snprintf(j->head, sizeof(j->head), "\"exit_code\":%s,\"timed_out\":%s,\"cancelled\":%s,", code,
             c->timed_out ? "true" : "false", c->cancelled ? "true" : "false");
    j->duration_ms = (uv_hrtime() - req->started_ns) / 1000000u;
    gd_exec_output_take(e, &j->out);
    req->data = j;
    if (gd_request_reserve(req, line_bound(j), line_reserved) == 0) line_reserved(req, 0);
    return 0;
}

static void exec_reply(gd_exec_t *e)
{
    gd_request_t *req = e->req;
    const cJSON *argv = cJSON_GetObjectItemCaseSensitive(req->args, "argv");
    const char *argv0 = argv && argv->child ? argv->child->valuestring : "?";
    const char *cwd = gd_arg_string(req->args, "cwd", NULL);
    const gd_child_t *c = &e->child;
    req->data = NULL;
    e->req = NULL;
    if (c->spawn_error) {
        if (cwd)
            gd_reply_error(req, "failed", "cannot run '%s' in '%s': %s", argv0, cwd,
                           strerror(-c->spawn_error));
        else
            gd_reply_error(req, "failed", "cannot run '%s': %s", argv0, strerror(-c->spawn_error));
        return;
    }
    if (e->aborting && !c->exited) {
        gd_reply_error(req, "failed", "the agent stopped; '%s' was killed", argv0);
        return;
    }
    if (!e->stream && c->out[0].kept.len + c->out[1].kept.len > EXEC_REPLY_INLINE_BYTES &&
        reply_in_pool(e, req) == 0)
        return;
    cJSON *r = exec_result(e, req->started_ns);
    if (r)
        gd_reply_ok(req, r);
    else
        gd_reply_error(req, "internal", "out of memory building the result");
}

static void on_idle_closed(uv_handle_t *h)
{
    exec_free(h->data);
}

/* Whether the bus still holds events for a subscriber that takes them. */
static int bus_pending(const gd_bus_t *bus)
{
    if (bus->closing) return 0;
    for (const gd_bus_sub_t *sub = bus->subs; sub; sub = sub->next)
        if (sub->count > 0 && !sub->paused) return 1;
    return 0;
}

/* Streaming: exec.output events reach the channel in the bus's idle pass;
 * the reply waits (an idle pass of its own, so the loop does not block
 * meanwhile) until the bus has handed every queued event over, so the
 * response comes after the exec's last event. A subscriber that refuses
 * events for now (a host away, a full queue) is not waited for. */
static void on_idle(uv_idle_t *idle)
{
    gd_exec_t *e = idle->data;
    if (!e->aborting && bus_pending(e->req->env->bus)) return;
    uv_idle_stop(idle);
    e->idle_active = 0;
    exec_reply(e);
    uv_close((uv_handle_t *)idle, on_idle_closed);
}

/* The child has ended and every one of its handles is closed. */
static void on_child_done(gd_child_t *c)
{
    gd_exec_t *e = c->data;
    if (e->stream && c->pid > 0 && !e->aborting && uv_idle_init(e->loop, &e->idle) == 0) {
        e->idle.data = e;
        e->idle_active = 1;
        uv_idle_start(&e->idle, on_idle);
        return;
    }
    exec_reply(e);
    exec_free(e);
}

/* ---- the process ----------------------------------------------------- */

/* The request's env as "NAME=value" entries for the child runner, which
 * adds them to the fixed base (commands/child_env.h); nothing comes from
 * the agent's own environment. The strings are malloc'd; NULL-terminated. */
static char **build_env(const cJSON *env)
{
    char **envp = calloc((size_t)cJSON_GetArraySize(env) + 1, sizeof(*envp));
    if (!envp) return NULL;
    size_t k = 0;
    for (const cJSON *v = env ? env->child : NULL; v; v = v->next) {
        if (asprintf(&envp[k], "%s=%s", v->string, v->valuestring) < 0) {
            envp[k] = NULL; /* asprintf left it undefined */
            for (size_t i = 0; i < k; i++)
                free(envp[i]);
            free(envp);
            return NULL;
        }
        k++;
    }
    return envp;
}

static void free_env(char **envp)
{
    for (char **p = envp; p && *p; p++)
        free(*p);
    free(envp);
}

/* Checks what the spec cannot: values against the configuration, env's
 * shape, encoding's choices. 0, or -EINVAL with err set. */
static int check_args(gd_request_t *req, const cJSON *args, char *err, size_t len)
{
    const gd_config_t *cfg = req->env->config;
    const cJSON *argv = cJSON_GetObjectItemCaseSensitive(args, "argv");
    if (!cJSON_IsArray(argv)) { /* the dispatcher skips the spec when args is absent */
        snprintf(err, len, "missing argument 'argv'");
        return -EINVAL;
    }
    if (!argv->child || !cJSON_IsString(argv->child) || !argv->child->valuestring[0]) {
        snprintf(err, len, "argument 'argv' must name a program: a non-empty first string");
        return -EINVAL;
    }
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(args, "env");
    for (const cJSON *v = env ? env->child : NULL; v; v = v->next) {
        if (!v->string[0] || strchr(v->string, '=')) {
            snprintf(err, len, "env: '%.64s' is not a variable name", v->string);
            return -EINVAL;
        }
        if (!cJSON_IsString(v)) {
            snprintf(err, len, "env: the value of '%.64s' must be a string", v->string);
            return -EINVAL;
        }
    }
    int64_t timeout = gd_arg_int(args, "timeout_ms", cfg->commands.exec_timeout_ms);
    if (timeout > cfg->commands.exec_max_timeout_ms) {
        snprintf(err, len, "timeout_ms %lld is over commands.exec_max_timeout_ms (%lld)",
                 (long long)timeout, (long long)cfg->commands.exec_max_timeout_ms);
        return -EINVAL;
    }
    int64_t max_out = gd_arg_int(args, "max_output_bytes", cfg->commands.exec_max_output_bytes);
    if (max_out > cfg->commands.exec_max_output_bytes) {
        snprintf(err, len, "max_output_bytes %lld is over commands.exec_max_output_bytes (%lld)",
                 (long long)max_out, (long long)cfg->commands.exec_max_output_bytes);
        return -EINVAL;
    }
    const char *enc = gd_arg_string(args, "encoding", "utf8");
    if (strcmp(enc, "utf8") != 0 && strcmp(enc, "base64") != 0) {
        snprintf(err, len, "encoding must be \"utf8\" or \"base64\", not \"%.32s\"", enc);
        return -EINVAL;
    }
    return 0;
}

static void cmd_exec(gd_request_t *req, const cJSON *args)
{
    char err[256];
    if (check_args(req, args, err, sizeof(err)) != 0) {
        gd_reply_error(req, "invalid_args", "%s", err);
        return;
    }
    const gd_config_t *cfg = req->env->config;
    const cJSON *argv_json = cJSON_GetObjectItemCaseSensitive(args, "argv");
    const cJSON *stdin_json = cJSON_GetObjectItemCaseSensitive(args, "stdin");
    int argc = cJSON_GetArraySize(argv_json);

    gd_exec_t *e = calloc(1, sizeof(*e));
    char **argv = calloc((size_t)argc + 1, sizeof(*argv));
    char **envp = build_env(cJSON_GetObjectItemCaseSensitive(args, "env"));
    char *id_json = req->id ? cJSON_PrintUnformatted(req->id) : NULL;
    if (!e || !argv || !envp || (req->id && !id_json)) {
        free(e);
        free(argv);
        free_env(envp);
        cJSON_free(id_json);
        gd_reply_error(req, "internal", "out of memory");
        return;
    }
    e->id_json = id_json;
    int i = 0;
    for (const cJSON *a = argv_json->child; a; a = a->next)
        argv[i++] = a->valuestring;

    e->req = req;
    e->loop = req->env->loop;
    e->stream = gd_arg_bool(args, "stream", 0);
    e->base64 = strcmp(gd_arg_string(args, "encoding", "utf8"), "base64") == 0;
    gd_buf_init(&e->ev);
    req->data = e;

    gd_child_opts_t opts = {
        .argv = argv,
        .env = envp,
        .cwd = gd_arg_string(args, "cwd", NULL),
        .input = stdin_json ? stdin_json->valuestring : NULL,
        .input_len = stdin_json ? strlen(stdin_json->valuestring) : 0,
        .out = GD_CHILD_CAPTURE,
        .err = GD_CHILD_CAPTURE,
        .max_output =
            (size_t)gd_arg_int(args, "max_output_bytes", cfg->commands.exec_max_output_bytes),
        .timeout_ms = (uint64_t)gd_arg_int(args, "timeout_ms", cfg->commands.exec_timeout_ms),
        .grace_ms = (uint64_t)cfg->commands.exec_kill_grace_ms,
        .flags = GD_CHILD_REAP_GROUP | (stdin_json ? GD_CHILD_STDIN : 0),
        .output = e->stream ? gd_exec_stream_output : NULL,
        .done = on_child_done,
        .data = e,
    };
    opts.drain_ms = opts.grace_ms > EXEC_DRAIN_MIN_MS ? opts.grace_ms : EXEC_DRAIN_MIN_MS;
    gd_child_start(&e->child, e->loop, &opts);
    free(argv);
    free_env(envp);
}

/* ---- cancel and shutdown --------------------------------------------- */

/* The exec behind an in-flight request, or NULL for other commands. */
static gd_exec_t *request_exec(gd_request_t *r)
{
    return r->cmd && r->cmd->handler == cmd_exec ? r->data : NULL;
}

static void cmd_exec_cancel(gd_request_t *req, const cJSON *args)
{
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(args, "request_id");
    if (!target) {
        gd_reply_error(req, "invalid_args", "missing argument 'request_id'");
        return;
    }
    int found = 0;
    for (gd_request_t *r = req->dispatch->inflight; r; r = r->next) {
        gd_exec_t *e = request_exec(r);
        if (!e || e->child.pid <= 0 || !r->id || !cJSON_Compare(r->id, target, 1)) continue;
        found++;
        gd_child_cancel(&e->child);
    }
    if (!found) {
        char *text = cJSON_PrintUnformatted(target);
        gd_reply_error(req, "not_found", "no running exec has request_id %.128s",
                       text ? text : "?");
        cJSON_free(text);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "cancelled", 1);
    gd_reply_ok(req, r);
}

static void exec_abort(gd_exec_t *e)
{
    e->aborting = 1;
    if (e->idle_active) { /* finished, waiting to reply after its events */
        uv_idle_stop(&e->idle);
        e->idle_active = 0;
        exec_reply(e);
        uv_close((uv_handle_t *)&e->idle, on_idle_closed);
        return;
    }
    gd_child_abort(&e->child);
}

void gd_exec_shutdown(const gd_cmd_env_t *env)
{
    if (!env->dispatch) return;
    gd_request_t *next;
    for (gd_request_t *r = env->dispatch->inflight; r; r = next) {
        next = r->next;
        gd_exec_t *e = request_exec(r);
        if (e && !e->aborting) exec_abort(e);
    }
}

/* ---- the family ------------------------------------------------------ */

static const gd_arg_spec_t exec_args[] = {
    {"argv", GD_ARG_STRING_ARRAY, 1, 0, 0,
     "the program and its arguments; argv[0] is looked up in PATH; no shell"},
    {"env", GD_ARG_OBJECT, 0, 0, 0,
     "variables (string values) added to the fixed base environment PATH, LANG=C.UTF-8, "
     "HOME=/root; nothing is inherited from the agent"},
    {"cwd", GD_ARG_STRING, 0, 0, 0, "working directory (default: the agent's)"},
    {"stdin", GD_ARG_STRING, 0, 0, 0, "text written to standard input, which is then closed"},
    {"timeout_ms", GD_ARG_INT, 0, 1, 86400000,
     "SIGTERM to the process group after this, SIGKILL after commands.exec_kill_grace_ms "
     "(default commands.exec_timeout_ms, at most commands.exec_max_timeout_ms)"},
    {"max_output_bytes", GD_ARG_INT, 0, 0, 16777216, /* the ceiling of the key */
     "bytes kept per stream; the rest is read and dropped (default and most "
     "commands.exec_max_output_bytes)"},
    {"stream", GD_ARG_BOOL, 0, 0, 0,
     "send output as exec.output events (at most 16 KiB each) as it comes; the response then "
     "carries empty stdout/stderr"},
    {"encoding", GD_ARG_STRING, 0, 0, 0,
     "\"utf8\" (invalid bytes become U+FFFD) or \"base64\" (stdout_b64/stderr_b64)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const gd_arg_spec_t cancel_args[] = {
    {"request_id", GD_ARG_ANY, 1, 0, 0, "the id of the exec request to stop"},
    {NULL, 0, 0, 0, 0, NULL},
};

const gd_command_t gd_commands_exec[] = {
    {"exec", cmd_exec, GD_CMD_CONCURRENT,
     "Runs a program (no shell) with a timeout, bounded output and optional streaming.", exec_args,
     "exit_code (int, null when killed by a signal), signal (\"TERM\", \"KILL\"... or null), "
     "timed_out, cancelled, stdout and stderr (or stdout_b64 and stderr_b64; empty when "
     "streamed), stdout_truncated, stderr_truncated, duration_ms"},
    {"exec.cancel", cmd_exec_cancel, 0,
     "Stops a running exec: SIGTERM to its process group, SIGKILL after the grace period.",
     cancel_args, "{\"cancelled\": true}; the exec's own response follows with its signal"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};
