/* A small child runner for service.* (systemctl) and power.*: uv_spawn in
 * its own process group, stdout and stderr captured up to a cap, an optional
 * time limit (SIGKILL to the group). Never blocks the loop. */
#ifndef GUESTD_SERVICE_CHILD_H
#define GUESTD_SERVICE_CHILD_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"

/* After the child exits, how long its pipes may stay open (held by a
 * grandchild) before they are closed anyway. */
#define GD_CHILD_DRAIN_MS 1000

typedef struct gd_child_s gd_child_t;
typedef void (*gd_child_done_cb)(gd_child_t *c);

struct gd_child_s {
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t timer;
    gd_buf_t out_buf, err_buf; /* what the child wrote, up to max_bytes each */
    size_t max_bytes;
    int out_truncated, err_truncated;
    int spawn_error;     /* negative errno when the child could not start */
    int64_t exit_status; /* valid when term_signal == 0 and spawn_error == 0 */
    int term_signal;
    int timed_out;
    int open_handles;
    char read_buf[8192];
    int exited;
    gd_child_done_cb done;
    void *data; /* the caller's own */
};

/* Runs argv[0] (looked up in env's PATH) with env (NULL: the fixed base of
 * commands/child_env.h; never the agent's own environment), stdin
 * from /dev/null. done is called exactly once, from the loop, after the
 * child exited (or failed to start: spawn_error), both pipes reached EOF and
 * every handle is closed; c may be freed there. timeout_ms 0: no limit. */
void gd_child_run(gd_child_t *c, uv_loop_t *loop, char *const argv[], char *const env[],
                  uint64_t timeout_ms, size_t max_bytes, gd_child_done_cb done, void *data);

/* Splits a space-separated command line into a NULL-terminated argv that
 * points into buf (modified in place). Returns argc, 0 when empty. */
int gd_child_split_argv(char *buf, char **argv, int max_args);

#endif
