/* guest-exec and guest-exec-status, and the child runner the dialect's other
 * commands use (hwclock, chpasswd). A child runs with uv_spawn in its own
 * session and process group, gets its stdin from the request, has its
 * output captured up to commands.exec_max_output_bytes per stream, and is
 * stopped after a time limit (SIGTERM to the group, SIGKILL after
 * commands.exec_kill_grace_ms), as guestd's own exec. Unlike exec,
 * guest-exec answers at once with the pid; the status and output wait,
 * kept here, until guest-exec-status collects them. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/log.h"
#include "commands/child_env.h"
#include "commands/dispatch.h"
#include "commands/qga_internal.h"

#define QGA_DRAIN_MS 1000      /* after the exit, how long a held pipe is waited for */
#define QGA_KEEP_FINISHED 64   /* guest-exec results nobody collected, kept at most */
#define QGA_CHILD_OUTPUT 65536 /* output kept by the child runner */

typedef struct qga_proc_s qga_proc_t;

typedef struct qga_stream_s {
    uv_pipe_t pipe;
    qga_proc_t *p;
    int open;
    gd_buf_t data;
    int truncated;
} qga_stream_t;

struct qga_proc_s {
    gd_qga_t *q;
    qga_proc_t *next;
    uv_process_t proc;
    uv_timer_t timer;
    uv_pipe_t in;
    uv_write_t wreq;
    qga_stream_t out, err;
    int has_in, timer_open, proc_init;
    int open; /* process and pipe handles not yet closed */
    int spawned, exited, finished, term_sent, timed_out;
    int pid;
    int64_t exit_status;
    int term_signal;
    size_t cap;
    uint64_t grace_ms;
    char *input;
    size_t input_len;
    int counted;       /* in the dispatcher's running */
    int is_exec;       /* guest-exec: kept until guest-exec-status */
    int captured;      /* guest-exec's capture-output asked for something */
    gd_qga_req_t *req; /* the child runner's request */
    gd_qga_child_done done;
    char rbuf[65536];
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
    if (p->input) explicit_bzero(p->input, p->input_len); /* it may be a password */
    gd_buf_free(&p->out.data);
    gd_buf_free(&p->err.data);
    free(p->input);
    free(p);
}

/* ---- the end of a child: every handle closed ---- */

static void finish(qga_proc_t *p)
{
    gd_qga_t *q = p->q;
    p->finished = 1;
    if (p->counted && q->env->dispatch && q->env->dispatch->running > 0)
        q->env->dispatch->running--;
    p->counted = 0;
    if (!p->is_exec) {
        gd_qga_child_result_t res = {
            .spawn_error = p->spawned       ? 0
                           : p->exit_status ? (int)p->exit_status
                                            : -ENOENT,
            .exit_status = p->spawned ? p->exit_status : 0,
            .term_signal = p->term_signal,
            .timed_out = p->timed_out,
            .out = p->out.data.data ? p->out.data.data : "",
            .out_len = p->out.data.len,
            .err = p->err.data.data ? p->err.data.data : "",
            .err_len = p->err.data.len,
        };
        unlink_proc(q, p);
        p->done(p->req, &res);
        proc_free(p);
        return;
    }
    if (!p->spawned) { /* guest-exec already answered the spawn error */
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
        gd_warn("qga: dropping the uncollected result of guest-exec pid %d", oldest->pid);
        unlink_proc(q, oldest);
        proc_free(oldest);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    finish(h->data);
}

static void handle_closed(qga_proc_t *p)
{
    if (--p->open == 0) {
        if (p->timer_open) {
            p->timer_open = 0;
            uv_close((uv_handle_t *)&p->timer, on_timer_closed);
        } else {
            finish(p);
        }
    }
}

static void on_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_stream_closed(uv_handle_t *h)
{
    qga_stream_t *s = h->data;
    handle_closed(s->p);
}

static void close_stream(qga_stream_t *s)
{
    if (!s->open) return;
    s->open = 0;
    uv_close((uv_handle_t *)&s->pipe, on_stream_closed);
}

static void close_handle(qga_proc_t *p, uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, on_closed);
}

/* ---- the running child ---- */

static void kill_group(qga_proc_t *p, int sig)
{
    if (p->spawned && !p->exited && kill(-p->pid, sig) != 0 && errno != ESRCH)
        gd_warn("qga: kill(-%d, %d): %s", p->pid, sig, strerror(errno));
}

static void on_timer(uv_timer_t *t)
{
    qga_proc_t *p = t->data;
    if (p->exited) { /* something it started still holds a pipe */
        close_stream(&p->out);
        close_stream(&p->err);
        return;
    }
    if (!p->term_sent) {
        p->term_sent = 1;
        p->timed_out = 1;
        gd_warn("qga: pid %d ran past its time limit; stopping its process group", p->pid);
        kill_group(p, SIGTERM);
        uv_timer_start(&p->timer, on_timer, p->grace_ms, 0);
    } else {
        kill_group(p, SIGKILL);
    }
}

static void on_exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    qga_proc_t *p = proc->data;
    p->exited = 1;
    p->exit_status = exit_status;
    p->term_signal = term_signal;
    uv_timer_stop(&p->timer);
    close_handle(p, (uv_handle_t *)&p->proc);
    if (p->has_in) close_handle(p, (uv_handle_t *)&p->in);
    if (p->out.open || p->err.open) uv_timer_start(&p->timer, on_timer, QGA_DRAIN_MS, 0);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    qga_stream_t *s = h->data;
    (void)suggested;
    buf->base = s->p->rbuf;
    buf->len = sizeof(s->p->rbuf);
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    qga_stream_t *s = st->data;
    qga_proc_t *p = s->p;
    if (nread < 0) {
        close_stream(s);
        return;
    }
    size_t take = (size_t)nread;
    if (s->data.len + take > p->cap) {
        take = p->cap > s->data.len ? p->cap - s->data.len : 0;
        s->truncated = 1;
    }
    if (take && gd_buf_append(&s->data, buf->base, take) != 0) s->truncated = 1;
}

static void on_written(uv_write_t *w, int status)
{
    qga_proc_t *p = w->data;
    close_handle(p, (uv_handle_t *)&p->in); /* written, or the child closed it: EOF */
}

/* capture: 0 none, 1 stdout, 2 stderr, 3 both apart, 4 both into stdout. */
static qga_proc_t *spawn(gd_qga_t *q, char *const argv[], char *const env[], const void *input,
                         size_t input_len, int capture, size_t cap, uint64_t timeout_ms, int *err)
{
    const gd_config_t *cfg = q->env->config;
    qga_proc_t *p = calloc(1, sizeof(*p));
    if (!p || (input_len && !(p->input = malloc(input_len)))) {
        free(p);
        *err = -ENOMEM;
        return NULL;
    }
    p->q = q;
    p->cap = cap;
    p->grace_ms = (uint64_t)cfg->commands.exec_kill_grace_ms;
    if (input_len) memcpy(p->input, input, input_len);
    p->input_len = input_len;
    gd_buf_init(&p->out.data);
    gd_buf_init(&p->err.data);
    p->out.p = p->err.p = p;

    int fds_in[2] = {-1, -1}, fds_out[2] = {-1, -1}, fds_err[2] = {-1, -1};
    int rc = 0;
    if (input_len) rc = uv_pipe(fds_in, 0, 0);
    if (rc == 0 && capture) rc = uv_pipe(fds_out, 0, 0);
    if (rc == 0 && (capture == 2 || capture == 3)) rc = uv_pipe(fds_err, 0, 0);
    uv_stdio_container_t stdio[3];
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_IGNORE;
    if (input_len) {
        stdio[0].flags = UV_INHERIT_FD;
        stdio[0].data.fd = fds_in[0];
    }
    if (capture == 1 || capture == 3 || capture == 4) {
        stdio[1].flags = UV_INHERIT_FD;
        stdio[1].data.fd = fds_out[1];
    }
    if (capture == 4) {
        stdio[2].flags = UV_INHERIT_FD;
        stdio[2].data.fd = fds_out[1];
    } else if (capture == 2 || capture == 3) {
        stdio[2].flags = UV_INHERIT_FD;
        stdio[2].data.fd = fds_err[1];
    }
    uv_timer_init(q->loop, &p->timer);
    p->timer.data = p;
    p->timer_open = 1;
    if (rc == 0) {
        uv_process_options_t opts;
        memset(&opts, 0, sizeof(opts));
        opts.exit_cb = on_exit_cb;
        opts.file = argv[0];
        opts.args = (char **)argv;
        /* qemu-ga's env replaces the environment; without one, the fixed base. */
        opts.env = (char **)(env ? env : gd_child_env_base());
        opts.flags = UV_PROCESS_DETACHED; /* its own session: a kill reaches the group */
        opts.stdio_count = 3;
        opts.stdio = stdio;
        p->proc.data = p;
        rc = uv_spawn(q->loop, &p->proc, &opts);
        p->proc_init = 1;
        p->open++; /* the process handle is closed, success or not */
    }
    /* The child's ends belong to the child now. */
    if (fds_in[0] >= 0) close(fds_in[0]);
    if (fds_out[1] >= 0) close(fds_out[1]);
    if (fds_err[1] >= 0) close(fds_err[1]);
    struct {
        qga_stream_t *s;
        int fd;
    } streams[2] = {{&p->out, fds_out[0]}, {&p->err, fds_err[0]}};
    for (int i = 0; i < 2; i++) {
        if (streams[i].fd < 0) continue;
        uv_pipe_init(q->loop, &streams[i].s->pipe, 0);
        streams[i].s->pipe.data = streams[i].s;
        if (uv_pipe_open(&streams[i].s->pipe, streams[i].fd) != 0) close(streams[i].fd);
        streams[i].s->open = 1;
        p->open++;
    }
    if (fds_in[1] >= 0) {
        uv_pipe_init(q->loop, &p->in, 0);
        p->in.data = p;
        if (uv_pipe_open(&p->in, fds_in[1]) != 0) close(fds_in[1]);
        p->has_in = 1;
        p->open++;
    }
    struct gd_qga_execs_s *ex = execs_of(q);
    if (!ex) rc = rc ? rc : -ENOMEM;
    if (ex) {
        p->next = ex->procs;
        ex->procs = p;
    }
    if (rc != 0) {
        /* Nothing ran: close what was opened; finish() frees it. */
        *err = rc;
        p->exit_status = rc;
        if (p->open) {
            if (p->proc_init) close_handle(p, (uv_handle_t *)&p->proc);
            close_stream(&p->out);
            close_stream(&p->err);
            if (p->has_in) close_handle(p, (uv_handle_t *)&p->in);
        } else {
            p->timer_open = 0;
            uv_close((uv_handle_t *)&p->timer, on_timer_closed);
        }
        return p;
    }
    p->spawned = 1;
    p->pid = p->proc.pid;
    for (int i = 0; i < 2; i++) {
        qga_stream_t *s = i ? &p->err : &p->out;
        if (s->open && uv_read_start((uv_stream_t *)&s->pipe, alloc_cb, read_cb) != 0)
            close_stream(s);
    }
    if (p->has_in) {
        uv_buf_t b = uv_buf_init(p->input, (unsigned)p->input_len);
        p->wreq.data = p;
        if (uv_write(&p->wreq, (uv_stream_t *)&p->in, &b, 1, on_written) != 0)
            close_handle(p, (uv_handle_t *)&p->in);
    }
    uv_update_time(q->loop); /* the limit counts from now, not the cached loop time */
    uv_timer_start(&p->timer, on_timer, timeout_ms, 0);
    *err = 0;
    return p;
}

int gd_qga_run_child(gd_qga_req_t *req, char *const argv[], const void *input, size_t input_len,
                     gd_qga_child_done done)
{
    gd_qga_t *q = req->qga;
    int err = 0;
    qga_proc_t *p = spawn(q, argv, NULL, input, input_len, 3, QGA_CHILD_OUTPUT,
                          (uint64_t)q->env->config->commands.exec_timeout_ms, &err);
    if (!p) return err;
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
    int err = 0;
    qga_proc_t *p = spawn(q, argv, envp, input.data, input.len, mode,
                          (size_t)cfg->commands.exec_max_output_bytes,
                          (uint64_t)cfg->commands.exec_max_timeout_ms, &err);
    free(argv);
    free(envp);
    gd_buf_free(&input);
    if (p) p->is_exec = 1;
    if (err != 0) {
        gd_qga_reply_error(req, "GenericError",
                           "Guest agent command failed, error was 'Failed to execute child "
                           "process \xe2\x80\x9c%s\xe2\x80\x9d (%s)'",
                           path, strerror(-err));
        return;
    }
    p->captured = mode != 0;
    p->counted = 1;
    d->running++;
    gd_info("qga: guest-exec %s: pid %d", path, p->pid);
    cJSON *r = cJSON_CreateObject();
    gd_qga_json_add_int(r, "pid", p->pid);
    gd_qga_reply(req, r);
}

static void add_output(cJSON *r, const char *data_key, const char *trunc_key, qga_stream_t *s)
{
    if (s->data.len == 0) return;
    gd_buf_t b64;
    gd_buf_init(&b64);
    if (gd_base64_encode(&b64, s->data.data, s->data.len) == 0) {
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
 * would (qga_json.c: ": " and ", " separators, members in insertion order). */
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
    j->term_signal = p->term_signal;
    j->exit_status = p->exit_status;
    j->out = p->out.data;
    j->out_truncated = p->out.truncated;
    gd_buf_init(&p->out.data);
    j->err = p->err.data;
    j->err_truncated = p->err.truncated;
    gd_buf_init(&p->err.data);
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
    while (p && !(p->is_exec && p->spawned && p->pid == pid))
        p = p->next;
    if (!p) {
        gd_qga_reply_error(req, "GenericError", "Invalid parameter 'pid'");
        return;
    }
    if (p->finished && p->out.data.len + p->err.data.len > QGA_STATUS_INLINE_BYTES &&
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
    if (p->term_signal)
        gd_qga_json_add_int(r, "signal", p->term_signal);
    else
        gd_qga_json_add_int(r, "exitcode", p->exit_status);
    add_output(r, "out-data", "out-truncated", &p->out);
    add_output(r, "err-data", "err-truncated", &p->err);
    unlink_proc(q, p); /* reaped: the pid is forgotten */
    proc_free(p);
    gd_qga_reply(req, r);
}

/* ---- stop ---- */

void gd_qga_exec_stop(gd_qga_t *q)
{
    if (!q->execs) return;
    for (qga_proc_t *p = q->execs->procs; p; p = p->next) {
        if (p->finished) continue;
        kill_group(p, SIGKILL);
        uv_timer_stop(&p->timer);
        if (!p->exited && p->spawned) close_handle(p, (uv_handle_t *)&p->proc);
        if (p->has_in) close_handle(p, (uv_handle_t *)&p->in);
        close_stream(&p->out);
        close_stream(&p->err);
    }
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
