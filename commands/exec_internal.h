/* Private to the exec family (exec.c: the process and its life; exec_output.c:
 * what it writes): the state of one running exec. */
#ifndef GUESTD_EXEC_INTERNAL_H
#define GUESTD_EXEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "core/buf.h"
#include "commands/command.h"

#define GD_EXEC_READ_BYTES 65536 /* one read from a child's pipe */
#define GD_EXEC_CHUNK_TEXT 16384 /* most output bytes in one exec.output event */
#define GD_EXEC_CHUNK_B64 12288  /* raw bytes per base64 event (16 KiB encoded) */

typedef struct gd_exec_s gd_exec_t;

/* One output stream of the child. */
typedef struct gd_exec_stream_s {
    uv_pipe_t pipe;
    gd_exec_t *exec;
    const char *name; /* "stdout" / "stderr", as in events and result keys */
    int closing;
    size_t used;   /* bytes counted against max_output_bytes (kept or streamed) */
    int truncated; /* bytes past the cap were read and dropped */
    /* Kept for the response (not streaming); grows up to the cap only. */
    char *kept;
    size_t kept_cap;
    /* Streaming text: the first bytes of a UTF-8 sequence that the last read
     * cut, sent with the next chunk. */
    unsigned char carry[4];
    size_t carry_len;
    char rbuf[GD_EXEC_READ_BYTES]; /* every read of this pipe lands here */
} gd_exec_stream_t;

typedef enum {
    GD_EXEC_TIMER_TIMEOUT, /* running: the timeout */
    GD_EXEC_TIMER_GRACE,   /* SIGTERM sent: SIGKILL when it fires */
    GD_EXEC_TIMER_DRAIN,   /* exited: stop waiting for EOF when it fires */
} gd_exec_timer_phase_t;

struct gd_exec_s {
    gd_request_t *req;
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t in;
    uv_write_t in_write;
    gd_exec_stream_t out[2];
    uv_timer_t timer;
    uv_idle_t idle; /* streaming: the reply waits for the bus */
    gd_exec_timer_phase_t phase;

    int open; /* of proc, in, out[0..1]: initialised and not yet closed */
    int has_in;
    int spawned;
    int spawn_err; /* negative errno from uv_spawn */
    int exited;
    int64_t exit_status;
    int term_signal;
    int term_sent; /* SIGTERM went to the group (timeout or cancel) */
    int timed_out;
    int cancelled;
    int aborting; /* the agent is stopping */
    int idle_active;

    int stream;
    int base64;
    size_t max_output;
    uint64_t grace_ms;
    int pgid;
    char *id_json; /* the request id as JSON (NULL: none), for exec.output events */
    gd_buf_t ev;   /* reused for event data */
};

/* exec_output.c */

/* Sets up out[which] (0 stdout, 1 stderr) and its pipe handle. */
void gd_exec_stream_init(gd_exec_t *e, int which);
/* Starts reading; at EOF or error the stream closes itself. */
int gd_exec_stream_start(gd_exec_stream_t *st);
/* Stops reading, sends what streaming held back, closes the pipe; the exec
 * hears of it through gd_exec_handle_closed(). Safe to call twice. */
void gd_exec_stream_close(gd_exec_stream_t *st);
void gd_exec_stream_free(gd_exec_stream_t *st);
/* Adds stdout/stderr (or *_b64) and *_truncated to result, and drops the
 * kept bytes. 0 or -ENOMEM. */
int gd_exec_add_output(gd_exec_t *e, cJSON *result);

/* A finished exec's output, taken from it so that a pool thread can print
 * the response (a large one is never printed on the loop). */
typedef struct gd_exec_output_s {
    char *kept[2]; /* stdout, stderr: malloc'd, or NULL */
    size_t n[2];
    int truncated[2];
    int base64;
} gd_exec_output_t;

/* Moves the kept bytes of e's streams into o. */
void gd_exec_output_take(gd_exec_t *e, gd_exec_output_t *o);
/* At least the length gd_exec_output_print writes (exact for base64; for
 * text, 6 bytes per byte, what escaping a control byte costs). */
size_t gd_exec_output_bound(const gd_exec_output_t *o);
/* Writes "stdout":..,"stderr":..,"stdout_truncated":..,"stderr_truncated":..
 * as gd_exec_add_output's members print, to dst; returns the length. */
size_t gd_exec_output_print(const gd_exec_output_t *o, char *dst);
void gd_exec_output_free(gd_exec_output_t *o);

/* exec.c */

/* One of the exec's handles finished closing. */
void gd_exec_handle_closed(gd_exec_t *e);

#endif
