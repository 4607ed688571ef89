/* The one way the agent runs a program (exec, guest-exec and the qemu-ga
 * dialect's helpers, systemctl for service.*, the power commands): spawned
 * with the fixed base environment (plus the caller's entries) in a new
 * session and process group, stdin fed from memory or /dev/null, stdout and
 * stderr read up to a cap each, a time limit that stops the whole group
 * (SIGTERM, then SIGKILL after a grace period), cancellation, and one
 * callback once the child has ended and every handle is closed. */
#ifndef GUESTD_CHILD_H
#define GUESTD_CHILD_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"

#define GD_CHILD_STDOUT 0
#define GD_CHILD_STDERR 1

/* One read from a child's pipe lands in a buffer of this size. */
#define GD_CHILD_READ_BYTES 65536

/* Flags of gd_child_opts_t. */
/* env is the whole environment (qemu-ga's guest-exec), not extra entries. */
#define GD_CHILD_ENV_REPLACE 1u
/* stdin is a pipe fed input (input_len may be 0) and then closed; without
 * it, stdin is /dev/null. */
#define GD_CHILD_STDIN 2u
/* At the timeout SIGKILL at once, no SIGTERM first (systemctl). */
#define GD_CHILD_KILL_AT_TIMEOUT 4u
/* When the child exits, SIGKILL whatever it left running in its group
 * (exec: nothing outlives the command, and the pipes reach EOF). */
#define GD_CHILD_REAP_GROUP 8u

typedef enum {
    GD_CHILD_DISCARD, /* /dev/null */
    GD_CHILD_CAPTURE, /* a pipe of its own, read by the runner */
    GD_CHILD_MERGE,   /* stderr only: into stdout's pipe (qemu-ga's "merged") */
} gd_child_capture_t;

typedef struct gd_child_s gd_child_t;
/* The child has ended (or never started: spawn_error) and every handle is
 * closed; c may be freed (after gd_child_free) or started again here. */
typedef void (*gd_child_done_cb)(gd_child_t *c);
/* Streaming: n bytes of stream which (GD_CHILD_STDOUT/STDERR), within the
 * cap, instead of keeping them; data NULL: the stream ended (not after
 * gd_child_abort). */
typedef void (*gd_child_output_cb)(gd_child_t *c, int which, const char *data, size_t n);

typedef struct gd_child_opts_s {
    char *const *argv; /* argv[0] looked up in the child's PATH; no shell */
    /* "NAME=value" entries (NULL-terminated, or NULL): added to the fixed
     * base of commands/child_env.h, replacing an entry of the same name;
     * with GD_CHILD_ENV_REPLACE, the whole environment. */
    char *const *env;
    const char *cwd;   /* NULL: the agent's */
    const void *input; /* with GD_CHILD_STDIN; copied (and wiped when freed) */
    size_t input_len;
    gd_child_capture_t out, err;
    size_t max_output;   /* bytes taken per stream; the rest read and dropped */
    uint64_t timeout_ms; /* 0: no limit */
    uint64_t grace_ms;   /* after SIGTERM (timeout, cancel), SIGKILL after this */
    uint64_t drain_ms;   /* after the exit, how long a pipe held by a grandchild is waited for */
    unsigned flags;
    gd_child_output_cb output; /* NULL: the output is kept in out[].kept */
    gd_child_done_cb done;
    void *data;
} gd_child_opts_t;

/* One stream read from the child. */
typedef struct gd_child_stream_s {
    uv_pipe_t pipe;
    gd_child_t *child;
    int open;      /* the pipe is initialised and not yet closing */
    gd_buf_t kept; /* without an output callback: what was taken (NUL-terminated) */
    size_t used;   /* bytes counted against max_output (kept or handed over) */
    int truncated; /* bytes past the cap (or past memory) were dropped */
} gd_child_stream_t;

struct gd_child_s {
    /* What the caller reads (in done, or earlier where said). */
    void *data;
    int pid;         /* > 0 once started (also the process group's id), at once */
    int spawn_error; /* negative errno when it could not start, at once */
    int exited;
    int64_t exit_status; /* when exited and term_signal is 0 */
    int term_signal;
    int timed_out;
    int cancelled;
    int aborted;
    gd_child_stream_t out[2]; /* stdout, stderr */

    /* The runner's own. */
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t in;
    uv_write_t in_write;
    uv_timer_t timer;
    int phase;
    int open; /* process, stdin and stream handles not yet closed */
    int proc_init, has_in, term_sent;
    unsigned flags;
    size_t max_output;
    uint64_t grace_ms, drain_ms;
    char *input;
    size_t input_len;
    gd_child_output_cb output;
    gd_child_done_cb done;
    char rbuf[GD_CHILD_READ_BYTES]; /* every read of either pipe lands here */
};

/* Starts the child. Never fails by return: when it cannot start (no such
 * program, a bad cwd, no pipe, no memory) spawn_error is set when this
 * returns, and done is called all the same once its handles are closed. */
void gd_child_start(gd_child_t *c, uv_loop_t *loop, const gd_child_opts_t *opts);
/* SIGTERM to the group now, SIGKILL after the grace period; cancelled is
 * set. Nothing once it has exited. */
void gd_child_cancel(gd_child_t *c);
/* SIGKILL to the group now; the child ends as usual. */
void gd_child_kill(gd_child_t *c);
/* The agent is stopping: SIGKILL to the group and every handle closed now,
 * without waiting for the exit (aborted is set; exited stays 0 if it had
 * not). No output callback after this; done still comes. */
void gd_child_abort(gd_child_t *c);
/* Frees what c holds (kept output, the stdin copy); c itself is the caller's. */
void gd_child_free(gd_child_t *c);

/* Splits a space-separated command line into a NULL-terminated argv that
 * points into buf (modified in place). Returns argc, 0 when empty. */
int gd_child_split_argv(char *buf, char **argv, int max_args);

#endif
