/* A small child runner: uv_spawn, captured output, a time limit. */
#include "commands/service_child.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "commands/child_env.h"

static void handle_closed(uv_handle_t *h)
{
    gd_child_t *c = h->data;
    if (--c->open_handles == 0) c->done(c);
}

static void close_handle(gd_child_t *c, uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, handle_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gd_child_t *c = h->data;
    (void)suggested;
    buf->base = c->read_buf; /* read_cb consumes it before the next read */
    buf->len = sizeof(c->read_buf);
}

static int pipes_closing(gd_child_t *c)
{
    return uv_is_closing((uv_handle_t *)&c->out) && uv_is_closing((uv_handle_t *)&c->err);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gd_child_t *c = s->data;
    int is_out = s == (uv_stream_t *)&c->out;
    if (nread < 0) {
        close_handle(c, (uv_handle_t *)s); /* EOF or error: nothing more to read */
        if (c->exited && pipes_closing(c)) close_handle(c, (uv_handle_t *)&c->timer);
        return;
    }
    gd_buf_t *b = is_out ? &c->out_buf : &c->err_buf;
    size_t take = (size_t)nread;
    if (b->len + take > c->max_bytes) {
        take = c->max_bytes > b->len ? c->max_bytes - b->len : 0;
        if (is_out)
            c->out_truncated = 1;
        else
            c->err_truncated = 1;
    }
    if (take && gd_buf_append(b, buf->base, take) != 0) {
        if (is_out)
            c->out_truncated = 1;
        else
            c->err_truncated = 1;
    }
}

/* The child exited but something it started still holds a pipe. */
static void drain_cb(uv_timer_t *t)
{
    gd_child_t *c = t->data;
    close_handle(c, (uv_handle_t *)&c->out);
    close_handle(c, (uv_handle_t *)&c->err);
    close_handle(c, (uv_handle_t *)t);
}

static void exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
    gd_child_t *c = p->data;
    c->exited = 1;
    c->exit_status = exit_status;
    c->term_signal = term_signal;
    close_handle(c, (uv_handle_t *)p);
    uv_timer_stop(&c->timer);
    if (pipes_closing(c))
        close_handle(c, (uv_handle_t *)&c->timer);
    else
        uv_timer_start(&c->timer, drain_cb, GD_CHILD_DRAIN_MS, 0);
}

static void timeout_cb(uv_timer_t *t)
{
    gd_child_t *c = t->data;
    if (c->exited) return;
    c->timed_out = 1;
    /* The whole group: systemctl may have helpers (a polkit agent). */
    kill(-c->proc.pid, SIGKILL);
}

void gd_child_run(gd_child_t *c, uv_loop_t *loop, char *const argv[], char *const env[],
                  uint64_t timeout_ms, size_t max_bytes, gd_child_done_cb done, void *data)
{
    memset(c, 0, sizeof(*c));
    gd_buf_init(&c->out_buf);
    gd_buf_init(&c->err_buf);
    c->max_bytes = max_bytes;
    c->done = done;
    c->data = data;
    uv_pipe_init(loop, &c->out, 0);
    uv_pipe_init(loop, &c->err, 0);
    uv_timer_init(loop, &c->timer);
    c->out.data = c->err.data = c->timer.data = c;
    c->open_handles = 3;

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&c->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&c->err;

    uv_process_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.file = argv[0];
    opt.args = (char **)argv;
    opt.env = (char **)(env ? env : gd_child_env_base());
    opt.exit_cb = exit_cb;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    opt.flags = UV_PROCESS_DETACHED; /* setsid: its own process group */

    int rc = uv_spawn(loop, &c->proc, &opt);
    c->proc.data = c;
    c->open_handles++; /* the process handle is closed, success or failure */
    if (rc != 0) {
        c->spawn_error = rc;
        c->exited = 1;
        close_handle(c, (uv_handle_t *)&c->proc);
        close_handle(c, (uv_handle_t *)&c->timer);
        close_handle(c, (uv_handle_t *)&c->out);
        close_handle(c, (uv_handle_t *)&c->err);
        return;
    }
    uv_read_start((uv_stream_t *)&c->out, alloc_cb, read_cb);
    uv_read_start((uv_stream_t *)&c->err, alloc_cb, read_cb);
    if (timeout_ms) uv_timer_start(&c->timer, timeout_cb, timeout_ms, 0);
}

int gd_child_split_argv(char *buf, char **argv, int max_args)
{
    int argc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t", &save); tok && argc < max_args - 1;
         tok = strtok_r(NULL, " \t", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;
    return argc;
}
