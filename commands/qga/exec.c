/* guest-exec and guest-exec-status, and the children the dialect's other
 * commands run (hwclock, chpasswd). A child runs through the child runner
 * (commands/child.h) in its own session and process group, gets its stdin
 * from the request, has its output captured up to
 * commands.exec_max_output_bytes per stream, and is stopped after a time
 * limit (SIGTERM to the group, SIGKILL after commands.exec_kill_grace_ms),
 * as guestd's own exec. Unlike exec, guest-exec answers at once with the
 * pid; the status and output wait, kept here, until guest-exec-status
 * collects them. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/log.h"
#include "commands/child.h"
#include "commands/dispatch.h"
#include "commands/qga/internal.h"

#define QGA_DRAIN_MS 1000      /* after the exit, how long a held pipe is waited for */
#define QGA_KEEP_FINISHED 64   /* guest-exec results nobody collected, kept at most */
#define QGA_CHILD_OUTPUT 65536 /* output kept by the child runner */

typedef struct qga_proc_s qga_proc_t;

struct qga_proc_s {
    gd_qga_t *q;
    qga_proc_t *next;
    gd_child_t child;
    int finished;      /* the child ended and its handles are closed */
    int counted;       /* in the dispatcher's running */
    int is_exec;       /* guest-exec: kept until guest-exec-status */
    gd_qga_req_t *req; /* the child runner's request */
    gd_qga_child_done done;
};

struct gd_qga_execs_s {
    qga_proc_t *procs;
};

static struct gd_qga_execs_s *execs_of(gd_qga_t *q)
{
    if (!q->execs) q->execs = calloc(1, sizeof(*q->execs));
    return q->execs;
}

static void unlink_proc(gd_qga_t *q, qga_proc_t *p)
{
    if (!q->execs) return;
    for (qga_proc_t **pp = &q->execs->procs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

static void proc_free(qga_proc_t *p)
{
    gd_child_free(&p->child); /* wipes the stdin copy: it may be a password */
    free(p);
}

/* ---- the end of a child: every handle closed ---- */

static void finish(gd_child_t *c)
{
    qga_proc_t *p = c->data;
    gd_qga_t *q = p->q;
    p->finished = 1;
    if (p->counted && q->env->dispatch && q->env->dispatch->running > 0)
        q->env->dispatch->running--;
    p->counted = 0;
    if (!p->is_exec) {
        const gd_buf_t *out = &c->out[GD_CHILD_STDOUT].kept, *err = &c->out[GD_CHILD_STDERR].kept;
        gd_qga_child_result_t res = {
            .spawn_error = c->spawn_error,
            .exit_status = c->exit_status,
            .term_signal = c->term_signal,
            .timed_out = c->timed_out,
            .out = out->data ? out->data : "",
            .out_len = out->len,
            .err = err->data ? err->data : "",
            .err_len = err->len,
        };
        unlink_proc(q, p);
        p->done(p->req, &res);
        proc_free(p);
        return;
    }
    if (c->spawn_error) { /* guest-exec already answered the spawn error */
        unlink_proc(q, p);
        proc_free(p);
        return;
    }
    /* Results nobody collects must not pile up for ever. */
    size_t kept = 0;
    qga_proc_t *oldest = NULL;
    for (qga_proc_t *o = q->execs->procs; o; o = o->next) {
        if (o->is_exec && o->finished) {
            kept++;
            oldest = o; /* the list is newest first */
        }
    }
    if (kept > QGA_KEEP_FINISHED && oldest) {
        gd_warn("qga: dropping the uncollected result of guest-exec pid %d", oldest->child.pid);
        unlink_proc(q, oldest);
        proc_free(oldest);
    }
}

/* Starts argv for a qemu-ga command: env as qemu-ga's (replacing the
 * environment; NULL: the fixed base), input on stdin (none: /dev/null).
 * NULL when out of memory; else the child's spawn_error says whether it
 * runs, and finish() comes either way. */
static qga_proc_t *spawn(gd_qga_t *q, int is_exec, char *const argv[], char *const env[],
                         const void *input, size_t input_len, gd_child_capture_t out,
                         gd_child_capture_t err, size_t cap, uint64_t timeout_ms)
{
    struct gd_qga_execs_s *ex = execs_of(q);
    qga_proc_t *p = ex ? calloc(1, sizeof(*p)) : NULL;
    if (!p) return NULL;
    p->q = q;
    p->is_exec = is_exec;
    p->next = ex->procs;
    ex->procs = p;
    gd_child_opts_t opts = {
        .argv = argv,
        .env = env,
        .input = input,
        .input_len = input_len,
        .out = out,
        .err = err,
        .max_output = cap,
        .timeout_ms = timeout_ms,
        .grace_ms = (uint64_t)q->env->config->commands.exec_kill_grace_ms,
        .drain_ms = QGA_DRAIN_MS,
        .flags = (env ? GD_CHILD_ENV_REPLACE : 0) | (input_len ? GD_CHILD_STDIN : 0),
        .done = finish,
        .data = p,
    };
    gd_child_start(&p->child, q->loop, &opts);
    return p;
}

int gd_qga_run_child(gd_qga_req_t *req, char *const argv[], const void *input, size_t input_len,
                     gd_qga_child_done done)
{
    gd_qga_t *q = req->qga;
    qga_proc_t *p = spawn(q, 0, argv, NULL, input, input_len, GD_CHILD_CAPTURE, GD_CHILD_CAPTURE,
                          QGA_CHILD_OUTPUT, (uint64_t)q->env->config->commands.exec_timeout_ms);
    if (!p) return -ENOMEM;
    p->req = req;
    p->done = done; /* also for a spawn error: finish() reports it */
    return 0;
}

/* ---- guest-exec ---- */

/* capture-output: a boolean (both streams apart) or a mode name. */
static int capture_mode(const cJSON *v, int *mode)
{
    static const char *const names[] = {"none", "stdout", "stderr", "separated", "merged"};
    if (!v) {
        *mode = 0;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        *mode = cJSON_IsTrue(v) ? 3 : 0;
        return 0;
    }
    for (int i = 0; cJSON_IsString(v) && i < 5; i++) {
        if (strcmp(v->valuestring, names[i]) == 0) {
            *mode = i;
            return 0;
        }
    }
    return -EINVAL;
}

static char **string_vector(const char *first, const cJSON *list)
{
    int n = cJSON_GetArraySize(list);
    char **v = calloc((size_t)n + 2, sizeof(*v));
    if (!v) return NULL;
    int i = 0;
    if (first) v[i++] = (char *)first;
    for (const cJSON *e = list ? list->child : NULL; e; e = e->next)
        v[i++] = e->valuestring;
    return v;
}

static void cmd_exec(gd_qga_req_t *req, const cJSON *args)
{
    gd_qga_t *q = req->qga;
    const gd_config_t *cfg = q->env->config;
    gd_dispatch_t *d = q->env->dispatch;
    const char *path = gd_arg_string(args, "path", "");
    int mode;
    if (capture_mode(cJSON_GetObjectItemCaseSensitive(args, "capture-output"), &mode) != 0) {
        gd_qga_reply_error(req, "GenericError",
                           "Invalid parameter 'capture-output': expected a boolean or one of "
                           "none, stdout, stderr, separated, merged");
        return;
    }
    if (d->running >= d->max_concurrent) {
        gd_qga_reply_error(req, "GenericError",
                           "%u commands are already running (commands.max_concurrent)", d->running);
        return;
    }
    gd_buf_t input;
    gd_buf_init(&input);
    const char *b64 = gd_arg_string(args, "input-data", NULL);
    if (b64 && gd_base64_decode(&input, b64, strlen(b64)) != 0) {
        gd_buf_free(&input);
        gd_qga_reply_error(req, "GenericError", "Parameter 'input-data' is not valid base64");
        return;
    }
    char **argv = string_vector(path, cJSON_GetObjectItemCaseSensitive(args, "arg"));
    const cJSON *env_list = cJSON_GetObjectItemCaseSensitive(args, "env");
    char **envp = env_list ? string_vector(NULL, env_list) : NULL;
    if (!argv || (env_list && !envp)) {
        free(argv);
        free(envp);
        gd_buf_free(&input);
        gd_qga_reply_error(req, "GenericError", "out of memory");
        return;
    }
    /* capture-output's modes: none, stdout, stderr, separated, merged. */
    static const gd_child_capture_t outs[] = {GD_CHILD_DISCARD, GD_CHILD_CAPTURE, GD_CHILD_DISCARD,
                                              GD_CHILD_CAPTURE, GD_CHILD_CAPTURE};
    static const gd_child_capture_t errs[] = {GD_CHILD_DISCARD, GD_CHILD_DISCARD, GD_CHILD_CAPTURE,
                                              GD_CHILD_CAPTURE, GD_CHILD_MERGE};
    qga_proc_t *p = spawn(q, 1, argv, envp, input.data, input.len, outs[mode], errs[mode],
                          (size_t)cfg->commands.exec_max_output_bytes,
                          (uint64_t)cfg->commands.exec_max_timeout_ms);
    free(argv);
    free(envp);
    gd_buf_free(&input);
    int err = p ? p->child.spawn_error : -ENOMEM;
    if (err != 0) {
        gd_qga_reply_error(req, "GenericError",
                           "Guest agent command failed, error was 'Failed to execute child "
                           "process \xe2\x80\x9c%s\xe2\x80\x9d (%s)'",
                           path, strerror(-err));
        return;
    }
    p->counted = 1;
    d->running++;
    gd_info("qga: guest-exec %s: pid %d", path, p->child.pid);
    cJSON *r = cJSON_CreateObject();
    gd_qga_json_add_int(r, "pid", p->child.pid);
    gd_qga_reply(req, r);
}

static void add_output(cJSON *r, const char *data_key, const char *trunc_key,
                       const gd_child_stream_t *s)
{
    if (s->kept.len == 0) return;
    gd_buf_t b64;
    gd_buf_init(&b64);
    if (gd_base64_encode(&b64, s->kept.data, s->kept.len) == 0) {
        cJSON_AddStringToObject(r, data_key, b64.data);
        cJSON_AddBoolToObject(r, trunc_key, s->truncated);
    }
    gd_buf_free(&b64);
}

/* ---- a finished child's status with large output, built in the pool ---- */

/* Output up to this size is encoded on the loop; more is encoded and printed
 * in the thread pool, so the loop does no work in proportion to it (up to
 * 2 x commands.exec_max_output_bytes, 44 MiB of base64 at the ceiling). */
#define QGA_STATUS_INLINE_BYTES 65536

typedef struct status_job_s {
    uv_work_t work;
    gd_qga_req_t *req;
    gd_buf_t out, err; /* the output, taken from the finished child */
    int out_truncated, err_truncated;
    int term_signal;
    int64_t exit_status;
    char *id_json; /* the request's id, printed; NULL without one */
    char *line;    /* the reply line, built in the pool */
    size_t len, cap;
} status_job_t;

static void status_job_free(status_job_t *j)
{
    gd_buf_free(&j->out);
    gd_buf_free(&j->err);
    free(j->id_json);
    free(j->line);
    free(j);
}

/* Appends printf text to the line, never past its capacity. */
static void put_text(status_job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put_text(status_job_t *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(j->line + j->len, j->cap - j->len, fmt, ap);
    va_end(ap);
    if (n > 0) j->len += (size_t)n < j->cap - j->len ? (size_t)n : j->cap - j->len - 1;
}

/* Appends , "KEY": "BASE64", "KEY-truncated": BOOL as the loop's printer
 * would (json.c: ": " and ", " separators, members in insertion order). */
static void put_output(status_job_t *j, const char *key, const gd_buf_t *data, int truncated)
{
    if (data->len == 0) return;
    put_text(j, ", \"%s-data\": \"", key);
    j->len += gd_base64_encode_to(j->line + j->len, data->data, data->len);
    put_text(j, "\", \"%s-truncated\": %s", key, truncated ? "true" : "false");
}

/* The line's size: the fixed text (under 160 bytes: head, two pairs of
 * member names, tail), the base64 and the id. */
static size_t status_line_size(const status_job_t *j)
{
    return 256 + gd_base64_encoded_len(j->out.len) + gd_base64_encoded_len(j->err.len) +
           (j->id_json ? strlen(j->id_json) : 0);
}

static void status_work(uv_work_t *w)
{
    status_job_t *j = w->data;
    j->cap = status_line_size(j);
    j->line = malloc(j->cap);
    if (!j->line) return;
    if (j->term_signal)
        put_text(j, "{\"return\": {\"exited\": true, \"signal\": %d", j->term_signal);
    else
        put_text(j, "{\"return\": {\"exited\": true, \"exitcode\": %lld",
                 (long long)j->exit_status);
    put_output(j, "out", &j->out, j->out_truncated);
    put_output(j, "err", &j->err, j->err_truncated);
    put_text(j, "}%s%s}\n", j->id_json ? ", \"id\": " : "", j->id_json ? j->id_json : "");
    /* The raw output is let go here too: freeing tens of MiB costs the loop. */
    gd_buf_free(&j->out);
    gd_buf_free(&j->err);
}

static void status_after(uv_work_t *w, int status)
{
    status_job_t *j = w->data;
    if (status != 0 || !j->line) {
        gd_qga_reply_error(j->req, "GenericError", status ? "cancelled" : "out of memory");
    } else {
        char *line = j->line;
        j->line = NULL;
        gd_qga_reply_line(j->req, line, line, j->len);
    }
    status_job_free(j);
}

static void status_reserved(gd_qga_req_t *req, int status)
{
    status_job_t *j = req->data;
    if (status != 0) {
        status_job_free(j);
        gd_qga_reply_error(req, "GenericError", "the agent is stopping");
        return;
    }
    if (uv_queue_work(req->qga->loop, &j->work, status_work, status_after) != 0) {
        status_job_free(j);
        gd_qga_reply_error(req, "GenericError", "cannot queue the work");
    }
}

/* Hands p's result to the pool (p is forgotten here); 0, or -ENOMEM with
 * p untouched. */
static int reply_status_in_pool(gd_qga_req_t *req, qga_proc_t *p)
{
    status_job_t *j = calloc(1, sizeof(*j));
    if (!j) return -ENOMEM;
    if (gd_qga_id_json(req, &j->id_json) != 0) {
        free(j);
        return -ENOMEM;
    }
    j->req = req;
    j->work.data = j;
    gd_child_stream_t *out = &p->child.out[GD_CHILD_STDOUT], *err = &p->child.out[GD_CHILD_STDERR];
    j->term_signal = p->child.term_signal;
    j->exit_status = p->child.exit_status;
    j->out = out->kept;
    j->out_truncated = out->truncated;
    gd_buf_init(&out->kept);
    j->err = err->kept;
    j->err_truncated = err->truncated;
    gd_buf_init(&err->kept);
    req->data = j;
    if (gd_qga_reserve(req, status_line_size(j), status_reserved) == 0) status_reserved(req, 0);
    return 0;
}

static void cmd_exec_status(gd_qga_req_t *req, const cJSON *args)
{
    gd_qga_t *q = req->qga;
    int64_t pid = 0;
    gd_qga_json_get_int(cJSON_GetObjectItemCaseSensitive(args, "pid"), &pid);
    qga_proc_t *p = q->execs ? q->execs->procs : NULL;
    while (p && !(p->is_exec && p->child.pid > 0 && p->child.pid == pid))
        p = p->next;
    if (!p) {
        gd_qga_reply_error(req, "GenericError", "Invalid parameter 'pid'");
        return;
    }
    const gd_child_t *c = &p->child;
    if (p->finished && c->out[0].kept.len + c->out[1].kept.len > QGA_STATUS_INLINE_BYTES &&
        reply_status_in_pool(req, p) == 0) {
        unlink_proc(q, p); /* reaped: the pid is forgotten */
        proc_free(p);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "exited", p->finished);
    if (!p->finished) {
        gd_qga_reply(req, r);
        return;
    }
    if (c->term_signal)
        gd_qga_json_add_int(r, "signal", c->term_signal);
    else
        gd_qga_json_add_int(r, "exitcode", c->exit_status);
    add_output(r, "out-data", "out-truncated", &c->out[GD_CHILD_STDOUT]);
    add_output(r, "err-data", "err-truncated", &c->out[GD_CHILD_STDERR]);
    unlink_proc(q, p); /* reaped: the pid is forgotten */
    proc_free(p);
    gd_qga_reply(req, r);
}

/* ---- stop ---- */

void gd_qga_exec_stop(gd_qga_t *q)
{
    if (!q->execs) return;
    for (qga_proc_t *p = q->execs->procs; p; p = p->next)
        if (!p->finished) gd_child_abort(&p->child);
}

void gd_qga_exec_free(gd_qga_t *q)
{
    if (!q->execs) return;
    while (q->execs->procs) {
        qga_proc_t *p = q->execs->procs;
        q->execs->procs = p->next;
        proc_free(p);
    }
    free(q->execs);
    q->execs = NULL;
}

static const gd_qga_arg_t exec_args[] = {
    {"path", QGA_ARG_STR, 1},           {"arg", QGA_ARG_STR_LIST, 0},
    {"env", QGA_ARG_STR_LIST, 0},       {"input-data", QGA_ARG_STR, 0},
    {"capture-output", QGA_ARG_ANY, 0}, {NULL, 0, 0},
};
static const gd_qga_arg_t status_args[] = {{"pid", QGA_ARG_INT, 1}, {NULL, 0, 0}};

const gd_qga_cmd_t gd_qga_cmds_exec[] = {
    {"guest-exec-status", cmd_exec_status, 0, "exec", status_args},
    {"guest-exec", cmd_exec, 0, "exec", exec_args},
    {NULL, NULL, 0, NULL, NULL},
};
