/* The agent's one child runner: see child.h.
 *
 * The life of one child (every step is a callback on the loop):
 *   spawn -> read stdout/stderr, write stdin -> exit -> both pipes at EOF ->
 *   every handle closed (the timer last) -> done.
 * The timer is the timeout (SIGTERM to the group), then the grace period
 * (SIGKILL), and after the exit a bound on waiting for EOF: a grandchild that
 * left the group with setsid() may hold the pipes open for ever. */
#include "commands/child.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "commands/child_env.h"

enum {
    PHASE_TIMEOUT, /* running: the timeout */
    PHASE_GRACE,   /* SIGTERM sent: SIGKILL when it fires */
    PHASE_DRAIN,   /* exited: stop waiting for EOF when it fires */
};

static void on_timer(uv_timer_t *t);

static void signal_group(gd_child_t *c, int sig)
{
    if (kill(-c->pid, sig) != 0 && errno != ESRCH)
        gd_warn("child: kill(-%d, %d): %s", c->pid, sig, strerror(errno));
}

static void drop_input(gd_child_t *c)
{
    if (c->input) explicit_bzero(c->input, c->input_len); /* it may be a password */
    free(c->input);
    c->input = NULL;
    c->input_len = 0;
}

/* ---- teardown: handles close, the timer last, then done ---------------- */

static void on_timer_closed(uv_handle_t *h)
{
    gd_child_t *c = h->data;
    c->done(c); /* c may be gone from here on */
}

static void handle_closed(gd_child_t *c)
{
    if (--c->open == 0) uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void close_handle(gd_child_t *c, uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, on_closed);
}

static void on_stream_closed(uv_handle_t *h)
{
    gd_child_stream_t *st = h->data;
    handle_closed(st->child);
}

/* Stops reading, tells a streaming caller the stream ended, closes the pipe.
 * Safe to call twice. */
static void close_stream(gd_child_stream_t *st)
{
    if (!st->open) return;
    st->open = 0;
    gd_child_t *c = st->child;
    uv_read_stop((uv_stream_t *)&st->pipe);
    if (c->output && !c->aborted) c->output(c, (int)(st - c->out), NULL, 0);
    uv_close((uv_handle_t *)&st->pipe, on_stream_closed);
}

/* ---- output ------------------------------------------------------------- */

/* Takes what fits under the cap (kept, or handed to the output callback);
 * the rest is dropped. */
static void stream_take(gd_child_stream_t *st, const char *data, size_t n)
{
    gd_child_t *c = st->child;
    size_t room = c->max_output - st->used;
    size_t take = n < room ? n : room;
    if (take < n) st->truncated = 1;
    if (take == 0) return;
    if (c->output) {
        st->used += take;
        c->output(c, (int)(st - c->out), data, take);
        return;
    }
    gd_buf_t *b = &st->kept;
    if (b->len + take + 1 > b->cap) {
        /* Doubling, but never past the cap: max_output may be 16 MiB. */
        size_t cap = b->cap ? b->cap * 2 : 4096;
        if (cap < b->len + take + 1) cap = b->len + take + 1;
        if (cap > c->max_output + 1) cap = c->max_output + 1;
        char *p = realloc(b->data, cap);
        if (!p) {
            st->truncated = 1; /* keep what we have rather than fail the child */
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, take);
    b->len += take;
    b->data[b->len] = '\0';
    st->used += take;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gd_child_stream_t *st = h->data;
    (void)suggested;
    /* Both pipes share it: a read is consumed before the next one starts. */
    *buf = uv_buf_init(st->child->rbuf, sizeof(st->child->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gd_child_stream_t *st = s->data;
    if (nread > 0)
        stream_take(st, buf->base, (size_t)nread);
    else if (nread < 0) /* UV_EOF, or an error that ends the stream all the same */
        close_stream(st);
}

/* ---- the process -------------------------------------------------------- */

/* SIGTERM to the group now, SIGKILL after the grace period. */
static void terminate(gd_child_t *c)
{
    if (c->pid <= 0 || c->exited || c->term_sent) return;
    c->term_sent = 1;
    signal_group(c, SIGTERM);
    c->phase = PHASE_GRACE;
    uv_timer_start(&c->timer, on_timer, c->grace_ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    gd_child_t *c = t->data;
    switch (c->phase) {
    case PHASE_TIMEOUT:
        c->timed_out = 1;
        gd_debug("child: pid %d ran past its time limit; stopping its process group", c->pid);
        if (c->flags & GD_CHILD_KILL_AT_TIMEOUT)
            signal_group(c, SIGKILL);
        else
            terminate(c);
        break;
    case PHASE_GRACE:
        if (!c->exited) signal_group(c, SIGKILL);
        break;
    case PHASE_DRAIN:
        /* Something outside the group (it called setsid) still holds a pipe. */
        for (int i = 0; i < 2; i++)
            close_stream(&c->out[i]);
        break;
    }
}

static void on_child_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    gd_child_t *c = p->data;
    c->exited = 1;
    c->exit_status = exit_status;
    c->term_signal = term_signal;
    /* While the group has members its id cannot be reused; when it has
     * none this is ESRCH (the id would have to be recycled within
     * microseconds to hit another group). */
    if (c->flags & GD_CHILD_REAP_GROUP) signal_group(c, SIGKILL);
    uv_timer_stop(&c->timer);
    close_handle(c, (uv_handle_t *)&c->proc);
    if (c->has_in) close_handle(c, (uv_handle_t *)&c->in);
    if (c->out[0].open || c->out[1].open) {
        c->phase = PHASE_DRAIN;
        uv_timer_start(&c->timer, on_timer, c->drain_ms, 0);
    }
}

static void on_stdin_written(uv_write_t *w, int status)
{
    gd_child_t *c = w->data;
    (void)status; /* written, or the child closed its end (EPIPE): either way, EOF */
    drop_input(c);
    close_handle(c, (uv_handle_t *)&c->in);
}

/* The child's environment: the fixed base minus the entries env replaces,
 * then env's (or env alone with GD_CHILD_ENV_REPLACE). Nothing comes from
 * the agent's own environment. The array is malloc'd, the strings are
 * borrowed; NULL when out of memory. */
static char **build_env(char *const *env, unsigned flags)
{
    char *const *base = flags & GD_CHILD_ENV_REPLACE ? NULL : gd_child_env_base();
    size_t n_env = 0;
    while (env && env[n_env])
        n_env++;
    char **envp = calloc(GD_CHILD_ENV_BASE_COUNT + n_env + 1, sizeof(*envp));
    if (!envp) return NULL;
    size_t k = 0;
    for (size_t i = 0; base && base[i]; i++) {
        size_t name_len = strcspn(base[i], "=") + 1; /* "NAME=" */
        int replaced = 0;
        for (size_t j = 0; j < n_env && !replaced; j++)
            replaced = strncmp(env[j], base[i], name_len) == 0;
        if (!replaced) envp[k++] = base[i];
    }
    for (size_t j = 0; j < n_env; j++)
        envp[k++] = env[j];
    return envp;
}

static void init_stream(gd_child_t *c, int which, int fd)
{
    gd_child_stream_t *st = &c->out[which];
    uv_pipe_init(c->loop, &st->pipe, 0);
    st->pipe.data = st;
    st->open = 1;
    c->open++;
    if (uv_pipe_open(&st->pipe, fd) != 0) {
        close(fd);
        close_stream(st);
    } else if (uv_read_start((uv_stream_t *)&st->pipe, on_alloc, on_read) != 0) {
        close_stream(st);
    }
}

static void start_stdin(gd_child_t *c, int fd)
{
    uv_pipe_init(c->loop, &c->in, 0);
    c->in.data = c;
    c->has_in = 1;
    c->open++;
    if (uv_pipe_open(&c->in, fd) != 0) {
        close(fd);
        close_handle(c, (uv_handle_t *)&c->in);
        return;
    }
    uv_buf_t buf = uv_buf_init(c->input, (unsigned)c->input_len);
    c->in_write.data = c;
    if (c->input_len == 0 ||
        uv_write(&c->in_write, (uv_stream_t *)&c->in, &buf, 1, on_stdin_written) != 0) {
        drop_input(c);
        close_handle(c, (uv_handle_t *)&c->in);
    }
}

void gd_child_start(gd_child_t *c, uv_loop_t *loop, const gd_child_opts_t *o)
{
    memset(c, 0, sizeof(*c));
    c->data = o->data;
    c->loop = loop;
    c->flags = o->flags;
    c->max_output = o->max_output;
    c->grace_ms = o->grace_ms;
    c->drain_ms = o->drain_ms;
    c->output = o->output;
    c->done = o->done;
    for (int i = 0; i < 2; i++) {
        c->out[i].child = c;
        gd_buf_init(&c->out[i].kept);
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;

    /* Pipes made here rather than by uv_spawn, so that stdout and stderr can
     * share one (merged). Close-on-exec: no other child inherits them. */
    int child_fd[3] = {-1, -1, -1}, parent_fd[3] = {-1, -1, -1}; /* stdin, stdout, stderr */
    char **envp = build_env(o->env, o->flags);
    int rc = envp ? 0 : -ENOMEM;
    if (rc == 0 && (o->flags & GD_CHILD_STDIN) && o->input_len) {
        c->input = malloc(o->input_len);
        if (c->input) {
            memcpy(c->input, o->input, o->input_len);
            c->input_len = o->input_len;
        } else {
            rc = -ENOMEM;
        }
    }
    for (int i = 0; i < 3 && rc == 0; i++) {
        int want = i == 0   ? (o->flags & GD_CHILD_STDIN) != 0
                   : i == 1 ? o->out == GD_CHILD_CAPTURE || o->err == GD_CHILD_MERGE
                            : o->err == GD_CHILD_CAPTURE;
        int fds[2];
        if (!want || (rc = uv_pipe(fds, 0, 0)) != 0) continue;
        child_fd[i] = fds[i == 0 ? 0 : 1]; /* stdin: the read end; output: the write end */
        parent_fd[i] = fds[i == 0 ? 1 : 0];
    }
    if (o->err == GD_CHILD_MERGE) child_fd[2] = child_fd[1];

    if (rc == 0) {
        uv_stdio_container_t stdio[3];
        for (int i = 0; i < 3; i++) {
            /* UV_IGNORE: libuv gives the child /dev/null. */
            stdio[i].flags = child_fd[i] >= 0 ? UV_INHERIT_FD : UV_IGNORE;
            stdio[i].data.fd = child_fd[i];
        }
        uv_process_options_t opts;
        memset(&opts, 0, sizeof(opts));
        opts.exit_cb = on_child_exit;
        opts.file = o->argv[0];
        opts.args = (char **)o->argv;
        opts.env = envp;
        opts.cwd = o->cwd;
        /* DETACHED is setsid(): a new session and process group, so a
         * timeout or a cancel reaches every process the command started. */
        opts.flags = UV_PROCESS_DETACHED;
        opts.stdio_count = 3;
        opts.stdio = stdio;
        c->proc.data = c;
        /* libuv reports a failed chdir or execve of the child here, not as
         * an exit: the child never ran. */
        rc = uv_spawn(loop, &c->proc, &opts);
        c->proc_init = 1;
        c->open++; /* the process handle must be closed, success or failure */
    }
    free(envp);
    /* The child's ends belong to the child now. */
    for (int i = 0; i < 3; i++)
        if (child_fd[i] >= 0 && !(i == 2 && o->err == GD_CHILD_MERGE)) close(child_fd[i]);

    if (rc != 0) {
        c->spawn_error = rc;
        gd_debug("child: cannot run '%s': %s", o->argv[0], uv_strerror(rc));
        drop_input(c);
        for (int i = 0; i < 3; i++)
            if (parent_fd[i] >= 0) close(parent_fd[i]);
        if (c->proc_init)
            close_handle(c, (uv_handle_t *)&c->proc);
        else
            uv_close((uv_handle_t *)&c->timer, on_timer_closed);
        return;
    }
    c->pid = c->proc.pid;
    gd_debug("child: started '%s' as pid %d", o->argv[0], c->pid);
    for (int i = 0; i < 2; i++)
        if (parent_fd[1 + i] >= 0) init_stream(c, i, parent_fd[1 + i]);
    if (parent_fd[0] >= 0) start_stdin(c, parent_fd[0]);
    if (o->timeout_ms) {
        c->phase = PHASE_TIMEOUT;
        /* The loop's cached time may be older than this request (a long
         * iteration, the spawn): the limit counts from now, never less. */
        uv_update_time(loop);
        uv_timer_start(&c->timer, on_timer, o->timeout_ms, 0);
    }
}

/* ---- cancel, kill, abort ------------------------------------------------ */

void gd_child_cancel(gd_child_t *c)
{
    if (c->pid <= 0 || c->exited || c->aborted) return;
    c->cancelled = 1;
    terminate(c);
}

void gd_child_kill(gd_child_t *c)
{
    if (c->pid > 0 && !c->exited && !c->aborted) signal_group(c, SIGKILL);
}

void gd_child_abort(gd_child_t *c)
{
    if (c->aborted) return;
    c->aborted = 1;
    if (c->pid > 0 && !c->exited) signal_group(c, SIGKILL);
    uv_timer_stop(&c->timer);
    if (c->proc_init) close_handle(c, (uv_handle_t *)&c->proc);
    if (c->has_in) close_handle(c, (uv_handle_t *)&c->in);
    for (int i = 0; i < 2; i++)
        close_stream(&c->out[i]);
}

void gd_child_free(gd_child_t *c)
{
    for (int i = 0; i < 2; i++)
        gd_buf_free(&c->out[i].kept);
    drop_input(c);
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
